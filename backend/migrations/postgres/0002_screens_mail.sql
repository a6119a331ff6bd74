-- Customer screens and mail (PostgreSQL): the mail outbox, download-link codes, sessions,
-- transfers, and the issuance request key that makes 確定する idempotent.

-- Mail waiting to be sent, written in the same transaction as the decision it reports
-- (issuance, OTP use started/ended, lock, replayed code). The worker claims a row, sends it,
-- and stamps sent_at; a failure pushes next_attempt_at back (backoff). The body is cleared once
-- sent, since an issuance mail carries a download-link code.
CREATE TABLE mail_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- one mail per event: a second insert for the same event is ignored
    dedupe_key      TEXT NOT NULL UNIQUE,
    kind            TEXT NOT NULL,
    customer_id     BIGINT,
    user_id         TEXT,
    to_addr         TEXT NOT NULL,
    subject         TEXT NOT NULL,
    body            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL DEFAULT 0,
    claimed_until   BIGINT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    sent_at         BIGINT
);
CREATE INDEX mail_outbox_due ON mail_outbox(sent_at, next_attempt_at);

-- The mailed download link: only the SHA-256 of the code (128+ random bits) is stored.
CREATE TABLE download_links (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    token_id        BIGINT NOT NULL REFERENCES tokens(id),
    code_hash       TEXT NOT NULL UNIQUE,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    first_opened_at BIGINT,
    open_count      BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX download_links_token ON download_links(token_id);

-- Internet-banking sessions; the cookie carries the id, the table only its SHA-256.
-- stage: 'anon' (before login), 'otp' (password accepted, OTP screen pending), 'full'.
CREATE TABLE web_sessions (
    id_hash         TEXT PRIMARY KEY,
    customer_id     BIGINT REFERENCES customers(id),
    stage           TEXT NOT NULL,
    csrf            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    -- JSON: the issuance or transfer in progress (never a plaintext password)
    draft           TEXT
);
CREATE INDEX web_sessions_seen ON web_sessions(last_seen_at);

CREATE TABLE transfers (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id     BIGINT NOT NULL REFERENCES customers(id),
    request_key     TEXT NOT NULL UNIQUE,
    payee           TEXT NOT NULL,
    amount          BIGINT NOT NULL,
    user_id         TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX transfers_customer ON transfers(customer_id, id);

-- The key of the confirm form that issued a token: a second submit finds the first issuance.
ALTER TABLE tokens ADD COLUMN request_key TEXT;
CREATE UNIQUE INDEX tokens_request_key ON tokens(request_key);
