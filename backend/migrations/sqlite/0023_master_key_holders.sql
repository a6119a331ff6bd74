-- Which master keys each running server has (written at start and every minute, after the
-- key file is read again): `keys activate` refuses a key a server seen in the last minutes
-- lacks, since that server could then open no re-sealed secret. Rows of servers gone for a day
-- are deleted as others write theirs.
CREATE TABLE master_key_holders (
    instance TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    key_ids TEXT NOT NULL,
    seen_at INTEGER NOT NULL
);
