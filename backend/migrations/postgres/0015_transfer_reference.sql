-- A transfer's reference as a bank shows it (issue 14 item 8): the Asia/Tokyo date and six
-- random characters, e.g. 20261126-7F3K9Q (domain::transfer). Unique: a collision is drawn
-- again. Transfers made before this migration get their date and their number instead
-- (20261125-000001): zeros and ones never occur in a new reference's random part.
ALTER TABLE transfers ADD COLUMN reference TEXT;
UPDATE transfers
   SET reference = to_char(to_timestamp(created_at) AT TIME ZONE 'Asia/Tokyo', 'YYYYMMDD')
                   || '-' || lpad(id::text, 6, '0')
 WHERE reference IS NULL;
ALTER TABLE transfers ALTER COLUMN reference SET NOT NULL;
CREATE UNIQUE INDEX transfers_reference ON transfers(reference);
