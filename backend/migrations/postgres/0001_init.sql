-- Initial schema (PostgreSQL). Times are unix seconds (BIGINT) so the same queries run on
-- SQLite and PostgreSQL; flags are NULL-able timestamps rather than booleans for the same reason.

CREATE TABLE customers (
    id                          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login_id                    TEXT NOT NULL UNIQUE,
    name                        TEXT NOT NULL DEFAULT '',
    email                       TEXT,
    login_password_hash         TEXT NOT NULL,
    confirmation_password_hash  TEXT NOT NULL,
    -- staff may waive the next-day rule for the next issuance (reprovisioning)
    reissue_waived              BIGINT NOT NULL DEFAULT 0,
    created_at                  BIGINT NOT NULL
);

CREATE TABLE tokens (
    id                      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id             BIGINT NOT NULL REFERENCES customers(id),
    user_id                 TEXT NOT NULL UNIQUE,
    service_id              TEXT NOT NULL,
    state                   TEXT NOT NULL,
    email                   TEXT NOT NULL,
    algorithm               TEXT NOT NULL,
    digits                  BIGINT NOT NULL,
    period                  BIGINT NOT NULL,
    -- AES-256-GCM: nonce || ciphertext, the key id beside it, and a format version
    secret_key_id           TEXT,
    secret_enc              BYTEA,
    secret_format           BIGINT,
    activation_password_hash TEXT NOT NULL,
    activation_failures     BIGINT NOT NULL DEFAULT 0,
    issued_at               BIGINT NOT NULL,
    expires_at              BIGINT NOT NULL,
    link_opened_at          BIGINT,
    provisioned_at          BIGINT,
    activated_at            BIGINT,
    deactivated_at          BIGINT,
    revoked_at              BIGINT,
    voided_at               BIGINT,
    void_reason             TEXT,
    -- verification state: the last accepted step (-1: none), learned drift in steps,
    -- consecutive failures and the lock
    last_step               BIGINT NOT NULL DEFAULT -1,
    drift                   BIGINT NOT NULL DEFAULT 0,
    failures                BIGINT NOT NULL DEFAULT 0,
    locked_at               BIGINT,
    last_used_at            BIGINT,
    device                  TEXT
);
CREATE INDEX tokens_customer ON tokens(customer_id, id);
-- one live token per customer
CREATE UNIQUE INDEX tokens_one_live ON tokens(customer_id)
    WHERE state IN ('issued', 'link_opened', 'provisioned', 'active');
CREATE INDEX tokens_key ON tokens(secret_key_id);

CREATE TABLE audit_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    customer_id BIGINT,
    user_id     TEXT,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    ip          TEXT,
    detail      TEXT
);
CREATE INDEX audit_customer ON audit_events(customer_id, id);
CREATE INDEX audit_user ON audit_events(user_id, id);

CREATE TABLE staff (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    login_id        TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL DEFAULT '',
    role            TEXT NOT NULL CHECK (role IN ('operator', 'supervisor')),
    password_hash   TEXT NOT NULL,
    created_at      BIGINT NOT NULL
);

-- one row per master key that has encrypted anything: a known plaintext encrypted under the
-- key, so start-up can tell a wrong key from a right one before serving
CREATE TABLE master_keys (
    key_id      TEXT PRIMARY KEY,
    check_enc   BYTEA NOT NULL,
    created_at  BIGINT NOT NULL
);
