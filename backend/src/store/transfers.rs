//! Transfers, once per request key, each with its unique reference; the customer's registered
//! payees; the day's total for the daily limit.

use sqlx::FromRow;

use super::{DbKind, Result, Store, StoreError, Tx};

const TRANSFER_COLUMNS: &str = "id, customer_id, request_key, payee, amount, user_id, created_at, \
    reference, bank_code, branch_code, account_type, account_number, new_payee, tx_digest";

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct TransferRow {
    pub id: i64,
    pub customer_id: i64,
    pub request_key: String,
    pub payee: String,
    pub amount: i64,
    pub user_id: Option<String>,
    pub created_at: i64,
    /// `20261126-7F3K9Q` (see `domain::transfer`).
    pub reference: Option<String>,
    /// The payee account (NULL on transfers made before issue 16).
    pub bank_code: Option<String>,
    pub branch_code: Option<String>,
    pub account_type: Option<String>,
    pub account_number: Option<String>,
    /// 1 when the account had not been transferred to before.
    pub new_payee: i64,
    /// The authenticated transaction's digest, when a transaction code was asked.
    pub tx_digest: Option<String>,
}

/// A registered payee (登録振込先).
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct PayeeRow {
    pub id: i64,
    pub customer_id: i64,
    pub bank_code: String,
    pub branch_code: String,
    pub account_type: String,
    pub account_number: String,
    pub name: String,
    pub created_at: i64,
    pub last_used_at: i64,
}

/// A transfer to record.
pub struct NewTransfer<'a> {
    pub customer_id: i64,
    pub request_key: &'a str,
    pub reference: &'a str,
    pub payee: &'a crate::domain::transfer::PayeeAccount,
    pub amount: i64,
    pub user_id: Option<&'a str>,
    pub new_payee: bool,
    pub tx_digest: Option<&'a str>,
    pub now: i64,
}

impl Store {
    pub async fn transfers(&self, customer_id: i64) -> Result<Vec<TransferRow>> {
        Ok(sqlx::query_as::<_, TransferRow>(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE customer_id = $1 ORDER BY id"
        ))
        .bind(customer_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// The customer's latest `limit` transfers, newest first.
    pub async fn recent_transfers(&self, customer_id: i64, limit: i64) -> Result<Vec<TransferRow>> {
        Ok(sqlx::query_as::<_, TransferRow>(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE customer_id = $1 \
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(customer_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// The customer's transfers since `since` (unix seconds), in yen, from the read pool: for
    /// the input screen's check. The recording checks again under its own transaction
    /// ([`Tx::transferred_since`]).
    pub async fn transferred_since(&self, customer_id: i64, since: i64) -> Result<i64> {
        let (total,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM transfers \
             WHERE customer_id = $1 AND created_at >= $2",
        )
        .bind(customer_id)
        .bind(since)
        .fetch_one(&self.read)
        .await?;
        Ok(total)
    }

    /// The customer's registered payee with this account, if any.
    pub async fn payee_by_account(
        &self,
        customer_id: i64,
        payee: &crate::domain::transfer::PayeeAccount,
    ) -> Result<Option<PayeeRow>> {
        Ok(sqlx::query_as::<_, PayeeRow>(
            "SELECT id, customer_id, bank_code, branch_code, account_type, account_number, name, \
             created_at, last_used_at FROM payees \
             WHERE customer_id = $1 AND bank_code = $2 AND branch_code = $3 \
               AND account_type = $4 AND account_number = $5",
        )
        .bind(customer_id)
        .bind(&payee.bank_code)
        .bind(&payee.branch_code)
        .bind(&payee.account_type)
        .bind(&payee.account_number)
        .fetch_optional(&self.read)
        .await?)
    }

    /// The customer's registered payees, most recently used first.
    pub async fn payees(&self, customer_id: i64) -> Result<Vec<PayeeRow>> {
        Ok(sqlx::query_as::<_, PayeeRow>(
            "SELECT id, customer_id, bank_code, branch_code, account_type, account_number, name, \
             created_at, last_used_at FROM payees WHERE customer_id = $1 \
             ORDER BY last_used_at DESC, id DESC LIMIT 50",
        )
        .bind(customer_id)
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn transfer_by_key(&self, request_key: &str) -> Result<Option<TransferRow>> {
        Ok(sqlx::query_as::<_, TransferRow>(&format!(
            "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE request_key = $1"
        ))
        .bind(request_key)
        .fetch_optional(&self.read)
        .await?)
    }
}

impl Tx<'_> {
    /// The customer's transfers since `since` (unix seconds), in yen. On PostgreSQL the
    /// customer's row is locked first, so two transfers of one customer committing at once
    /// cannot both pass the daily limit (SQLite has one writer).
    pub async fn transferred_since(&mut self, customer_id: i64, since: i64) -> Result<i64> {
        if self.1.kind == DbKind::Postgres {
            sqlx::query("SELECT id FROM customers WHERE id = $1 FOR UPDATE")
                .bind(customer_id)
                .execute(&mut *self.0)
                .await?;
        }
        let (total,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM transfers \
             WHERE customer_id = $1 AND created_at >= $2",
        )
        .bind(customer_id)
        .bind(since)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(total)
    }

    /// # Errors
    /// [`StoreError::Conflict`] when a transfer with this request key, or this reference,
    /// exists.
    pub async fn insert_transfer(&mut self, t: &NewTransfer<'_>) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO transfers \
             (customer_id, request_key, payee, amount, user_id, created_at, reference, \
              bank_code, branch_code, account_type, account_number, new_payee, tx_digest) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        )
        .bind(t.customer_id)
        .bind(t.request_key)
        .bind(&t.payee.name)
        .bind(t.amount)
        .bind(t.user_id)
        .bind(t.now)
        .bind(t.reference)
        .bind(&t.payee.bank_code)
        .bind(&t.payee.branch_code)
        .bind(&t.payee.account_type)
        .bind(&t.payee.account_number)
        .bind(i64::from(t.new_payee))
        .bind(t.tx_digest)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }

    /// Register the payee account (or note its use and newest name).
    pub async fn register_payee(
        &mut self,
        customer_id: i64,
        payee: &crate::domain::transfer::PayeeAccount,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO payees (customer_id, bank_code, branch_code, account_type, \
             account_number, name, created_at, last_used_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
             ON CONFLICT (customer_id, bank_code, branch_code, account_type, account_number) \
             DO UPDATE SET name = excluded.name, last_used_at = excluded.last_used_at",
        )
        .bind(customer_id)
        .bind(&payee.bank_code)
        .bind(&payee.branch_code)
        .bind(&payee.account_type)
        .bind(&payee.account_number)
        .bind(&payee.name)
        .bind(now)
        .execute(&mut *self.0)
        .await
        .map_err(StoreError::from)?;
        Ok(())
    }
}
