-- A transfer's reference as a bank shows it (issue 14 item 8): the Asia/Tokyo date and six
-- random characters, e.g. 20261126-7F3K9Q (domain::transfer). Unique: a collision is drawn
-- again. Transfers made before this migration get their date and their number instead
-- (20261125-000001): zeros and ones never occur in a new reference's random part.
ALTER TABLE transfers ADD COLUMN reference TEXT;
UPDATE transfers
   SET reference = strftime('%Y%m%d', created_at + 32400, 'unixepoch') || '-' || printf('%06d', id)
 WHERE reference IS NULL;
CREATE UNIQUE INDEX transfers_reference ON transfers(reference);
