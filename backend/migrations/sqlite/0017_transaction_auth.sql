-- Transaction authentication (取引認証, issue 16) and transfers as Zengin has them.
-- A token's last accepted transaction step: its own, beside last_step, so a TOTP code and a
-- transaction code of the same minute never replay each other.
ALTER TABLE tokens ADD COLUMN last_tx_step INTEGER NOT NULL DEFAULT -1;

-- The payee account (transfers made before this migration have only the name).
ALTER TABLE transfers ADD COLUMN bank_code TEXT;
ALTER TABLE transfers ADD COLUMN branch_code TEXT;
ALTER TABLE transfers ADD COLUMN account_type TEXT;
ALTER TABLE transfers ADD COLUMN account_number TEXT;
-- 1 when the account had not been transferred to before.
ALTER TABLE transfers ADD COLUMN new_payee INTEGER NOT NULL DEFAULT 0;
-- The transaction's digest (protocol::ocra::Transaction::digest_hex) when it was authenticated
-- with a transaction code; NULL when the ordinary one-time password (or none) was asked.
ALTER TABLE transfers ADD COLUMN tx_digest TEXT;
-- The Asia/Tokyo day's total per customer is read by the daily limit.
CREATE INDEX transfers_customer_created ON transfers(customer_id, created_at);

-- Registered payees (登録振込先): an account the customer transferred to, once per account.
CREATE TABLE payees (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id     INTEGER NOT NULL REFERENCES customers(id),
    bank_code       TEXT NOT NULL,
    branch_code     TEXT NOT NULL,
    account_type    TEXT NOT NULL,
    account_number  TEXT NOT NULL,
    name            TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER NOT NULL,
    UNIQUE (customer_id, bank_code, branch_code, account_type, account_number)
);
