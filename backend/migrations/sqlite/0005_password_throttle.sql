-- Consecutive wrong passwords (login or confirmation) per customer, and the lock they cause:
-- without it a customer's passwords could be guessed without limit.
ALTER TABLE customers ADD COLUMN password_failures INTEGER NOT NULL DEFAULT 0;
ALTER TABLE customers ADD COLUMN password_locked_at INTEGER;
