-- A staff account can be disabled (a leaver, a suspected compromise): it cannot log in and its
-- console sessions end; the account and its audit history stay.
ALTER TABLE staff ADD COLUMN disabled_at BIGINT;
