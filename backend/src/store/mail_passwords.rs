//! メール通知パスワード rows: the Argon2 hash of a mailed one-time password, the web session and
//! request it belongs to, how often it was sent, when it expires and when it was used. Every
//! change is one conditional statement, so a burst of submissions uses a password once.

use sqlx::FromRow;

use super::{Result, Store, Tx};

/// A mailed password. No `Debug`: `code_hash` is the hash of a live one-time password.
#[derive(Clone, FromRow)]
pub struct MailPasswordRow {
    pub id: i64,
    pub customer_id: i64,
    pub session_hash: String,
    pub purpose: String,
    pub request_key: String,
    pub code_hash: String,
    pub sends: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

const COLUMNS: &str = "id, customer_id, session_hash, purpose, request_key, code_hash, sends, \
    created_at, expires_at, used_at";

/// A mailed password to store.
pub struct NewMailPassword<'a> {
    pub customer_id: i64,
    pub session_hash: &'a str,
    pub purpose: &'a str,
    pub request_key: &'a str,
    pub code_hash: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

impl Store {
    /// A mailed password by its id (the mail worker: whether a mail still carries it).
    pub async fn mail_password_by_id(&self, id: i64) -> Result<Option<MailPasswordRow>> {
        Ok(sqlx::query_as::<_, MailPasswordRow>(&format!(
            "SELECT {COLUMNS} FROM mail_passwords WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// The password mailed for this session's request, if any.
    pub async fn mail_password(
        &self,
        session_hash: &str,
        request_key: &str,
    ) -> Result<Option<MailPasswordRow>> {
        Ok(sqlx::query_as::<_, MailPasswordRow>(&format!(
            "SELECT {COLUMNS} FROM mail_passwords WHERE session_hash = $1 AND request_key = $2"
        ))
        .bind(session_hash)
        .bind(request_key)
        .fetch_optional(&self.read)
        .await?)
    }
}

impl Tx<'_> {
    pub async fn mail_password(
        &mut self,
        session_hash: &str,
        request_key: &str,
    ) -> Result<Option<MailPasswordRow>> {
        Ok(sqlx::query_as::<_, MailPasswordRow>(&format!(
            "SELECT {COLUMNS} FROM mail_passwords WHERE session_hash = $1 AND request_key = $2"
        ))
        .bind(session_hash)
        .bind(request_key)
        .fetch_optional(&mut *self.0)
        .await?)
    }

    /// Mailed passwords sent to the customer since `since` (resends included, counted by the
    /// rows sent or resent since then).
    pub async fn mail_passwords_sent_since(&mut self, customer_id: i64, since: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "SELECT CAST(COALESCE(SUM(sends), 0) AS BIGINT) FROM mail_passwords \
             WHERE customer_id = $1 AND created_at > $2",
        )
        .bind(customer_id)
        .bind(since)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(n)
    }

    /// # Errors
    /// [`super::StoreError::Conflict`] when this session's request has one already (a
    /// concurrent first send won).
    pub async fn insert_mail_password(&mut self, m: &NewMailPassword<'_>) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO mail_passwords (customer_id, session_hash, purpose, request_key, code_hash, \
             sends, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, 1, $6, $7) RETURNING id",
        )
        .bind(m.customer_id)
        .bind(m.session_hash)
        .bind(m.purpose)
        .bind(m.request_key)
        .bind(m.code_hash)
        .bind(m.now)
        .bind(m.expires_at)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }

    /// A resend: a new password in place of the old, only if the row was sent `seen_sends`
    /// times (compare-and-set: two concurrent resends count as two). Returns whether written.
    pub async fn resend_mail_password(
        &mut self,
        id: i64,
        seen_sends: i64,
        code_hash: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE mail_passwords SET code_hash = $1, sends = sends + 1, created_at = $2, \
             expires_at = $3, used_at = NULL WHERE id = $4 AND sends = $5",
        )
        .bind(code_hash)
        .bind(now)
        .bind(expires_at)
        .bind(id)
        .bind(seen_sends)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Use a password once: only while unused, unexpired at `now` and still the one that was
    /// checked (`code_hash`: a resend meanwhile replaced it). Returns whether this call used it.
    pub async fn use_mail_password(&mut self, id: i64, code_hash: &str, now: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE mail_passwords SET used_at = $1 \
             WHERE id = $2 AND used_at IS NULL AND expires_at > $1 AND code_hash = $3",
        )
        .bind(now)
        .bind(id)
        .bind(code_hash)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// End every live password of a web session (logout). Returns how many ended.
    pub async fn end_session_mail_passwords(
        &mut self,
        session_hash: &str,
        now: i64,
    ) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE mail_passwords SET expires_at = $1 WHERE session_hash = $2 AND expires_at > $1",
        )
        .bind(now)
        .bind(session_hash)
        .execute(&mut *self.0)
        .await?
        .rows_affected())
    }
}
