-- Provisioning v2 (issue 18, protocol::pake): the OPAQUE registration record each issuance
-- gets beside its activation password's Argon2 hash (v1, off by default, still uses the hash),
-- in a table of its own so the tokens rows every verification rewrites stay as small as they
-- were (it is read once, at setup);
-- the deployment's OPAQUE server key, sealed under a master key like token secrets; and the
-- started exchanges. An exchange's state is sealed too and cleared when it finishes or found
-- expired (2 minutes); the row stays, so an app nonce is refused when seen again for the same
-- token. Rows are few: each one spent an activation attempt (at most 5 per issuance) or
-- provisioned the token.
CREATE TABLE pake_records (
    token_id    BIGINT PRIMARY KEY REFERENCES tokens(id),
    record      BYTEA NOT NULL
);
CREATE TABLE pake_server_key (
    id          BIGINT PRIMARY KEY CHECK (id = 1),
    key_id      TEXT NOT NULL,
    key_enc     BYTEA NOT NULL,
    key_format  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE TABLE pake_exchanges (
    exchange_id TEXT PRIMARY KEY,
    token_id    BIGINT NOT NULL REFERENCES tokens(id),
    app_nonce   TEXT NOT NULL,
    key_id      TEXT,
    state_enc   BYTEA,
    state_format BIGINT,
    device      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    UNIQUE (token_id, app_nonce)
);
