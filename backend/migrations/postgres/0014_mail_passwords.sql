-- メール通知パスワード (issue 19): one-time passwords mailed to the customer's registered
-- address for issuance, transfers to new payees and e-mail changes by customers without an
-- active token. Stored as an Argon2 hash only; bound to the web session that asked for it (a
-- logout or a timeout ends it) and to the request it confirms; single use; short-lived.
CREATE TABLE mail_passwords (
    id              BIGSERIAL PRIMARY KEY,
    customer_id     BIGINT NOT NULL REFERENCES customers(id),
    session_hash    TEXT NOT NULL,
    purpose         TEXT NOT NULL,
    request_key     TEXT NOT NULL,
    code_hash       TEXT NOT NULL,
    sends           BIGINT NOT NULL DEFAULT 1,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    used_at         BIGINT
);
CREATE UNIQUE INDEX mail_passwords_request ON mail_passwords (session_hash, request_key);
CREATE INDEX mail_passwords_customer ON mail_passwords (customer_id);
