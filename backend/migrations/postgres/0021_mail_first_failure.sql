-- When a mail's sending first failed, on the mail worker's clock: a mailed one-time password
-- whose sends have failed for its whole life is given up on, not sent stale (the worker never
-- compares its clock with the engine's created_at).
ALTER TABLE mail_outbox ADD COLUMN first_failed_at BIGINT;
-- Mail that failed before this column existed: its next try's time stands in for the first
-- failure (on the worker's clock, and never earlier than it: giving up comes later, not sooner).
UPDATE mail_outbox SET first_failed_at = next_attempt_at
    WHERE sent_at IS NULL AND given_up_at IS NULL AND last_error IS NOT NULL;
