-- A mail the worker gave up on (an address the mailer cannot parse): never sent, not counted
-- as waiting, forgotten with the sent mail.
ALTER TABLE mail_outbox ADD COLUMN given_up_at BIGINT;
