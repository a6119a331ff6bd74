-- Issue 15: every verification writes one audit row, and each index on audit_events is one more
-- page written (and fsync'd) per row at a random place. `audit_user` served no screen or API
-- (the staff file reads a customer's trail through `audit_customer`); it is dropped.
DROP INDEX IF EXISTS audit_user;
