-- Staff login hardening (issue 12, item 3): a second factor of their own, and the password
-- lockout rule per account and per client address.

-- The staff member's TOTP secret (SHA-1, 6 digits, 30 s: what every authenticator app
-- reads), sealed with the master keys like token secrets (AES-256-GCM, the key id beside it,
-- bound to the staff member's id), and the last step accepted, so a code works once.
-- NULL: no second factor yet (accounts from before this migration); such a member cannot log
-- in until `otp-backend staff totp` gives them one.
ALTER TABLE staff ADD COLUMN totp_key_id TEXT;
ALTER TABLE staff ADD COLUMN totp_enc BYTEA;
ALTER TABLE staff ADD COLUMN totp_format BIGINT;
ALTER TABLE staff ADD COLUMN totp_last_step BIGINT;

-- Lockout counters of things that are not a row of their own: a staff account
-- ('staff:<id>') and a client address on the staff login ('staff-ip:<ip>'). One table for
-- both, so one compare-and-set serves every key; customers keep theirs on their own row.
CREATE TABLE throttles (
    key         TEXT PRIMARY KEY,
    failures    BIGINT NOT NULL DEFAULT 0,
    locked_at   BIGINT,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX throttles_updated ON throttles(updated_at);
