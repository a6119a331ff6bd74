-- メール通知パスワード (issue 19): one-time passwords mailed to the customer's registered
-- address for issuance, transfers to new payees and e-mail changes by customers without an
-- active token. Stored as an Argon2 hash only; bound to the web session that asked for it (a
-- logout or a timeout ends it) and to the request it confirms; single use; short-lived.
CREATE TABLE mail_passwords (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id     INTEGER NOT NULL REFERENCES customers(id),
    session_hash    TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    request_key     TEXT NOT NULL,
    code_hash       TEXT NOT NULL,
    sends           INTEGER NOT NULL DEFAULT 1,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    used_at         INTEGER
);
CREATE UNIQUE INDEX mail_passwords_request ON mail_passwords (session_hash, request_key);
CREATE INDEX mail_passwords_customer ON mail_passwords (customer_id);
