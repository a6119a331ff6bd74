-- /readyz writes here (one row, upserted) to learn whether the database takes writes: a full
-- disk or a read-only database still answers SELECT 1 (issue 13).
CREATE TABLE readiness_probe (
    id INTEGER PRIMARY KEY,
    at BIGINT NOT NULL
);
