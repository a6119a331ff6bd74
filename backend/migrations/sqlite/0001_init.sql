-- Initial schema (SQLite). Times are unix seconds (INTEGER) so the same queries run on
-- SQLite and PostgreSQL; flags are NULL-able timestamps rather than booleans for the same reason.

CREATE TABLE customers (
    id                          INTEGER PRIMARY KEY AUTOINCREMENT,
    login_id                    TEXT NOT NULL UNIQUE,
    name                        TEXT NOT NULL DEFAULT '',
    email                       TEXT,
    login_password_hash         TEXT NOT NULL,
    confirmation_password_hash  TEXT NOT NULL,
    -- staff may waive the next-day rule for the next issuance (reprovisioning)
    reissue_waived              INTEGER NOT NULL DEFAULT 0,
    created_at                  INTEGER NOT NULL
);

CREATE TABLE tokens (
    id                      INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id             INTEGER NOT NULL REFERENCES customers(id),
    user_id                 TEXT NOT NULL UNIQUE,
    service_id              TEXT NOT NULL,
    state                   TEXT NOT NULL,
    email                   TEXT NOT NULL,
    algorithm               TEXT NOT NULL,
    digits                  INTEGER NOT NULL,
    period                  INTEGER NOT NULL,
    -- AES-256-GCM: nonce || ciphertext, the key id beside it, and a format version
    secret_key_id           TEXT,
    secret_enc              BLOB,
    secret_format           INTEGER,
    activation_password_hash TEXT NOT NULL,
    activation_failures     INTEGER NOT NULL DEFAULT 0,
    issued_at               INTEGER NOT NULL,
    expires_at              INTEGER NOT NULL,
    link_opened_at          INTEGER,
    provisioned_at          INTEGER,
    activated_at            INTEGER,
    deactivated_at          INTEGER,
    revoked_at              INTEGER,
    voided_at               INTEGER,
    void_reason             TEXT,
    -- verification state: the last accepted step (-1: none), learned drift in steps,
    -- consecutive failures and the lock
    last_step               INTEGER NOT NULL DEFAULT -1,
    drift                   INTEGER NOT NULL DEFAULT 0,
    failures                INTEGER NOT NULL DEFAULT 0,
    locked_at               INTEGER,
    last_used_at            INTEGER,
    device                  TEXT
);
CREATE INDEX tokens_customer ON tokens(customer_id, id);
-- one live token per customer
CREATE UNIQUE INDEX tokens_one_live ON tokens(customer_id)
    WHERE state IN ('issued', 'link_opened', 'provisioned', 'active');
CREATE INDEX tokens_key ON tokens(secret_key_id);

CREATE TABLE audit_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    customer_id INTEGER,
    user_id     TEXT,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    ip          TEXT,
    detail      TEXT
);
CREATE INDEX audit_customer ON audit_events(customer_id, id);
CREATE INDEX audit_user ON audit_events(user_id, id);

CREATE TABLE staff (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    login_id        TEXT NOT NULL UNIQUE,
    name            TEXT NOT NULL DEFAULT '',
    role            TEXT NOT NULL CHECK (role IN ('operator', 'supervisor')),
    password_hash   TEXT NOT NULL,
    created_at      INTEGER NOT NULL
);

-- one row per master key that has encrypted anything: a known plaintext encrypted under the
-- key, so start-up can tell a wrong key from a right one before serving
CREATE TABLE master_keys (
    key_id      TEXT PRIMARY KEY,
    check_enc   BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
