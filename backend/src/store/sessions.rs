//! Customer web sessions (the id kept only as its SHA-256).

use sqlx::FromRow;

use super::{Result, Store};

/// A web session. `id_hash` is the SHA-256 of the cookie value.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub id_hash: String,
    pub customer_id: Option<i64>,
    pub stage: String,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub draft: Option<String>,
}

impl Store {
    pub async fn session(&self, id_hash: &str) -> Result<Option<SessionRow>> {
        Ok(sqlx::query_as::<_, SessionRow>(
            "SELECT id_hash, customer_id, stage, csrf, created_at, last_seen_at, draft FROM web_sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.read)
        .await?)
    }

    pub async fn insert_session(&self, s: &SessionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO web_sessions (id_hash, customer_id, stage, csrf, created_at, last_seen_at, draft) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&s.id_hash)
        .bind(s.customer_id)
        .bind(&s.stage)
        .bind(&s.csrf)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.draft.as_deref())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Extend a session seen at `now`, only if it was seen after `idle_before` and created
    /// after `created_before` (its absolute lifetime); false: it timed out (or is gone).
    pub async fn touch_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_before: i64,
        created_before: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE web_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at > $3 \
             AND created_at > $4",
        )
        .bind(now)
        .bind(id_hash)
        .bind(idle_before)
        .bind(created_before)
        .execute(&self.write)
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn set_session_draft(&self, id_hash: &str, draft: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE web_sessions SET draft = $1 WHERE id_hash = $2")
            .bind(draft)
            .bind(id_hash)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Forget sessions idle since before `idle_before` or created before `created_before`.
    pub async fn purge_sessions(&self, idle_before: i64, created_before: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM web_sessions WHERE last_seen_at <= $1 OR created_at <= $2")
                .bind(idle_before)
                .bind(created_before)
                .execute(&self.write)
                .await?
                .rows_affected(),
        )
    }

    /// How many customer sessions exist (operations and tests).
    pub async fn session_count(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM web_sessions")
            .fetch_one(&self.read)
            .await?;
        Ok(n)
    }
}
