//! SQL for the customer screens and mail: the outbox, download links, web sessions, transfers
//! and issuance request keys (migration 0002). Same rules as the parent module: runtime
//! queries shared by SQLite and PostgreSQL, decisions by conditional statements.

use sqlx::FromRow;

use super::{Result, Store, TokenRow, Tx, TOKEN_COLUMNS};

/// A mail to put in the outbox.
#[derive(Debug, Clone)]
pub struct NewMail<'a> {
    /// One mail per event: the insert is ignored when this key exists.
    pub dedupe_key: &'a str,
    pub kind: &'a str,
    pub customer_id: Option<i64>,
    pub user_id: Option<&'a str>,
    pub to_addr: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub now: i64,
}

/// A row of the outbox. No `Debug`: an unsent issuance mail's body holds a download-link code.
#[derive(Clone, FromRow)]
pub struct MailRow {
    pub id: i64,
    pub dedupe_key: String,
    pub kind: String,
    pub customer_id: Option<i64>,
    pub user_id: Option<String>,
    pub to_addr: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub claimed_until: Option<i64>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub sent_at: Option<i64>,
}

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

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct TransferRow {
    pub id: i64,
    pub customer_id: i64,
    pub request_key: String,
    pub payee: String,
    pub amount: i64,
    pub user_id: Option<String>,
    pub created_at: i64,
}

const MAIL_COLUMNS: &str = "id, dedupe_key, kind, customer_id, user_id, to_addr, subject, body, \
    created_at, next_attempt_at, claimed_until, attempts, last_error, sent_at";

impl Store {
    /// Mail due for sending at `now`: unsent, not in backoff, not claimed by a live worker.
    pub async fn due_mail(&self, now: i64, limit: i64) -> Result<Vec<MailRow>> {
        Ok(sqlx::query_as::<_, MailRow>(&format!(
            "SELECT {MAIL_COLUMNS} FROM mail_outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until < $1) ORDER BY id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Claim a mail for sending until `until`; false when another worker has it or it was sent.
    pub async fn claim_mail(&self, id: i64, now: i64, until: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE mail_outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id = $2 AND sent_at IS NULL AND (claimed_until IS NULL OR claimed_until < $3)",
        )
        .bind(until)
        .bind(id)
        .bind(now)
        .execute(&self.write)
        .await?
        .rows_affected()
            == 1)
    }

    /// Record a sent mail and clear its body (it may hold a download-link code).
    pub async fn mail_sent(&self, id: i64, now: i64) -> Result<()> {
        sqlx::query(
            "UPDATE mail_outbox SET sent_at = $1, body = '', claimed_until = NULL, last_error = NULL WHERE id = $2",
        )
        .bind(now)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Record a failed attempt; the mail is tried again from `next_attempt_at`.
    pub async fn mail_failed(&self, id: i64, next_attempt_at: i64, error: &str) -> Result<()> {
        sqlx::query(
            "UPDATE mail_outbox SET next_attempt_at = $1, claimed_until = NULL, last_error = $2 WHERE id = $3",
        )
        .bind(next_attempt_at)
        .bind(error)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The outbox, oldest first (operations and tests).
    pub async fn outbox(&self, limit: i64) -> Result<Vec<MailRow>> {
        Ok(sqlx::query_as::<_, MailRow>(&format!(
            "SELECT {MAIL_COLUMNS} FROM mail_outbox ORDER BY id LIMIT $1"
        ))
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

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

    pub async fn transfers(&self, customer_id: i64) -> Result<Vec<TransferRow>> {
        Ok(sqlx::query_as::<_, TransferRow>(
            "SELECT id, customer_id, request_key, payee, amount, user_id, created_at FROM transfers \
             WHERE customer_id = $1 ORDER BY id",
        )
        .bind(customer_id)
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn transfer_by_key(&self, request_key: &str) -> Result<Option<TransferRow>> {
        Ok(sqlx::query_as::<_, TransferRow>(
            "SELECT id, customer_id, request_key, payee, amount, user_id, created_at FROM transfers \
             WHERE request_key = $1",
        )
        .bind(request_key)
        .fetch_optional(&self.read)
        .await?)
    }
}

impl Tx<'_> {
    /// Put a mail in the outbox; false when a mail for the same event is there already.
    pub async fn enqueue_mail(&mut self, m: &NewMail<'_>) -> Result<bool> {
        Ok(sqlx::query(
            "INSERT INTO mail_outbox (dedupe_key, kind, customer_id, user_id, to_addr, subject, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(m.dedupe_key)
        .bind(m.kind)
        .bind(m.customer_id)
        .bind(m.user_id)
        .bind(m.to_addr)
        .bind(m.subject)
        .bind(m.body)
        .bind(m.now)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

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

    /// # Errors
    /// [`super::StoreError::Conflict`] when a transfer with this request key exists.
    pub async fn insert_transfer(
        &mut self,
        customer_id: i64,
        request_key: &str,
        payee: &str,
        amount: i64,
        user_id: Option<&str>,
        now: i64,
    ) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO transfers (customer_id, request_key, payee, amount, user_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(customer_id)
        .bind(request_key)
        .bind(payee)
        .bind(amount)
        .bind(user_id)
        .bind(now)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }
}
