-- Support staff console (PostgreSQL): staff sessions, kept apart from customer sessions, and the
-- four-eyes requests (a revoke or reprovision waiting for a second supervisor).

-- Staff sessions: the cookie carries a random id, the table only its SHA-256. Separate from
-- web_sessions so a customer's session can never stand for a staff member's.
CREATE TABLE staff_sessions (
    id_hash         TEXT PRIMARY KEY,
    staff_id        BIGINT NOT NULL REFERENCES staff(id),
    csrf            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL
);
CREATE INDEX staff_sessions_seen ON staff_sessions(last_seen_at);

-- A revoke or reprovision requested by one supervisor, taking effect only when another
-- approves it (config staff.four_eyes). status: pending, approved, rejected, cancelled.
-- params is JSON: the new address and password mode of a reprovision, and the Argon2id hash of
-- a generated activation password (never the password itself).
CREATE TABLE staff_requests (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('revoke', 'reprovision')),
    customer_id     BIGINT NOT NULL REFERENCES customers(id),
    user_id         TEXT,
    reason          TEXT NOT NULL,
    params          TEXT NOT NULL DEFAULT '{}',
    requested_by    BIGINT NOT NULL REFERENCES staff(id),
    requested_at    BIGINT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending',
    decided_by      BIGINT REFERENCES staff(id),
    decided_at      BIGINT,
    outcome         TEXT
);
CREATE INDEX staff_requests_status ON staff_requests(status, id);
-- one pending request per customer: a second would act on a state the first changes
CREATE UNIQUE INDEX staff_requests_one_pending ON staff_requests(customer_id) WHERE status = 'pending';

-- search by e-mail on file and by the address a token was issued to
CREATE INDEX customers_email ON customers(email);
CREATE INDEX tokens_email ON tokens(email);
