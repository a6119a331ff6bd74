-- Failed customer logins per client (an address, an IPv6 /64, or a known device's login ID),
-- for the spray limit (web.login_failures_per_client in web.login_failures_window_secs): kept
-- in the database so that every instance on it counts the same failures. Rows older than the
-- window are deleted from time to time (at most once a minute per instance).
CREATE TABLE login_failures (
    id BIGSERIAL PRIMARY KEY,
    client TEXT NOT NULL,
    at BIGINT NOT NULL
);
CREATE INDEX login_failures_client ON login_failures(client, at);
CREATE INDEX login_failures_at ON login_failures(at);
