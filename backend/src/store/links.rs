//! Mailed download links (stored as hashes of their codes) and the issuance request keys
//! that make a double-submitted issuance one issuance.

use sqlx::FromRow;

use super::tokens::TOKEN_COLUMNS;
use super::{Result, Store, TokenRow, Tx};

/// A download link with what its page needs of the token.
#[derive(Debug, Clone, FromRow)]
pub struct LinkRow {
    pub id: i64,
    pub token_id: i64,
    pub expires_at: i64,
    pub first_opened_at: Option<i64>,
    pub open_count: i64,
    pub user_id: String,
    pub service_id: String,
    pub customer_id: i64,
}

impl Store {
    pub async fn download_link(&self, code_hash: &str) -> Result<Option<LinkRow>> {
        Ok(sqlx::query_as::<_, LinkRow>(
            "SELECT l.id, l.token_id, l.expires_at, l.first_opened_at, l.open_count, t.user_id, \
             t.service_id, t.customer_id FROM download_links l JOIN tokens t ON t.id = l.token_id \
             WHERE l.code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.read)
        .await?)
    }

    /// The download link of a token (its first opening is what setup waits for).
    pub async fn link_of_token(&self, token_id: i64) -> Result<Option<LinkRow>> {
        Ok(sqlx::query_as::<_, LinkRow>(
            "SELECT l.id, l.token_id, l.expires_at, l.first_opened_at, l.open_count, t.user_id, \
             t.service_id, t.customer_id FROM download_links l JOIN tokens t ON t.id = l.token_id \
             WHERE l.token_id = $1 ORDER BY l.id DESC LIMIT 1",
        )
        .bind(token_id)
        .fetch_optional(&self.read)
        .await?)
    }

    pub async fn token_by_request_key(
        &self,
        customer_id: i64,
        request_key: &str,
    ) -> Result<Option<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE customer_id = $1 AND request_key = $2"
        ))
        .bind(customer_id)
        .bind(request_key)
        .fetch_optional(&self.read)
        .await?)
    }
}

impl Tx<'_> {
    pub async fn insert_download_link(
        &mut self,
        token_id: i64,
        code_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO download_links (token_id, code_hash, created_at, expires_at) VALUES ($1, $2, $3, $4) RETURNING id",
        )
        .bind(token_id)
        .bind(code_hash)
        .bind(now)
        .bind(expires_at)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }

    /// Count an opening of a link; the first one is stamped. Returns whether this was the first.
    pub async fn record_link_open(&mut self, link_id: i64, now: i64) -> Result<bool> {
        let (first,): (Option<i64>,) = sqlx::query_as(
            "UPDATE download_links SET open_count = open_count + 1, \
             first_opened_at = COALESCE(first_opened_at, $1) WHERE id = $2 RETURNING first_opened_at",
        )
        .bind(now)
        .bind(link_id)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(first == Some(now))
    }

    pub async fn set_token_request_key(&mut self, token_id: i64, request_key: &str) -> Result<()> {
        sqlx::query("UPDATE tokens SET request_key = $1 WHERE id = $2")
            .bind(request_key)
            .bind(token_id)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }
}
