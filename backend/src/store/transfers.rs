//! Transfers, once per request key, each with its unique reference.

use sqlx::FromRow;

use super::{Result, Store, Tx};

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
}

impl Store {
    pub async fn transfers(&self, customer_id: i64) -> Result<Vec<TransferRow>> {
        Ok(sqlx::query_as::<_, TransferRow>(
            "SELECT id, customer_id, request_key, payee, amount, user_id, created_at, reference \
             FROM transfers \
             WHERE customer_id = $1 ORDER BY id",
        )
        .bind(customer_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Whether the customer has transferred to this payee before (a registered payee).
    pub async fn payee_used(&self, customer_id: i64, payee: &str) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT id FROM transfers WHERE customer_id = $1 AND payee = $2 LIMIT 1",
        )
        .bind(customer_id)
        .bind(payee)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.is_some())
    }

    pub async fn transfer_by_key(&self, request_key: &str) -> Result<Option<TransferRow>> {
        Ok(sqlx::query_as::<_, TransferRow>(
            "SELECT id, customer_id, request_key, payee, amount, user_id, created_at, reference \
             FROM transfers \
             WHERE request_key = $1",
        )
        .bind(request_key)
        .fetch_optional(&self.read)
        .await?)
    }
}

impl Tx<'_> {
    /// # Errors
    /// [`super::StoreError::Conflict`] when a transfer with this request key, or this
    /// reference, exists.
    #[allow(clippy::too_many_arguments)] // reason: one column each
    pub async fn insert_transfer(
        &mut self,
        customer_id: i64,
        request_key: &str,
        reference: &str,
        payee: &str,
        amount: i64,
        user_id: Option<&str>,
        now: i64,
    ) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO transfers \
             (customer_id, request_key, payee, amount, user_id, created_at, reference) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(customer_id)
        .bind(request_key)
        .bind(payee)
        .bind(amount)
        .bind(user_id)
        .bind(now)
        .bind(reference)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }
}
