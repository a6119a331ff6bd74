-- When a mail's sending first failed, on the mail worker's clock: a mailed one-time password
-- whose sends have failed for its whole life is given up on, not sent stale (the worker never
-- compares its clock with the engine's created_at).
ALTER TABLE mail_outbox ADD COLUMN first_failed_at INTEGER;
