//! The mail outbox (DESIGN §7): written in the transaction of the event it reports, sent
//! by the mail worker with retries.

use sqlx::FromRow;

use super::{Result, Store, Tx};

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
    /// When the worker gave up on it (never sent; see [`Store::mail_given_up`]).
    pub given_up_at: Option<i64>,
    /// When its sending first failed, on the worker's clock.
    pub first_failed_at: Option<i64>,
}

const MAIL_COLUMNS: &str = "id, dedupe_key, kind, customer_id, user_id, to_addr, subject, body, \
    created_at, next_attempt_at, claimed_until, attempts, last_error, sent_at, given_up_at, \
    first_failed_at";

/// A customer's mail that has not reached them, as the staff console shows it: its sending
/// failed at least once and it waits for another try, or the worker gave up on it. No subject or
/// body (an issuance mail's body holds a download-link code).
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct UndeliveredMail {
    pub id: i64,
    pub customer_id: Option<i64>,
    pub kind: String,
    pub to_addr: String,
    pub created_at: i64,
    pub attempts: i64,
    pub next_attempt_at: i64,
    /// What the mail server (or the worker) said last.
    pub last_error: Option<String>,
    pub given_up_at: Option<i64>,
}

impl Store {
    /// The customer's undelivered mail ([`UndeliveredMail`]), newest first. Found through the
    /// `(sent_at, next_attempt_at)` index: unsent mail is few.
    pub async fn undelivered_mail_of(
        &self,
        customer_id: i64,
        limit: i64,
    ) -> Result<Vec<UndeliveredMail>> {
        Ok(sqlx::query_as::<_, UndeliveredMail>(
            "SELECT id, customer_id, kind, to_addr, created_at, attempts, next_attempt_at, last_error, \
             given_up_at FROM mail_outbox WHERE sent_at IS NULL AND customer_id = $1 \
             AND last_error IS NOT NULL ORDER BY id DESC LIMIT $2",
        )
        .bind(customer_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Every customer's undelivered mail ([`UndeliveredMail`]), newest first (operations:
    /// `otp-backend mail status`).
    pub async fn undelivered_mail(&self, limit: i64) -> Result<Vec<UndeliveredMail>> {
        Ok(sqlx::query_as::<_, UndeliveredMail>(
            "SELECT id, customer_id, kind, to_addr, created_at, attempts, next_attempt_at, last_error, \
             given_up_at FROM mail_outbox WHERE sent_at IS NULL AND last_error IS NOT NULL \
             ORDER BY id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Customers' registered addresses, a page at a time: `(id, login ID, address)` of ids
    /// above `after`, in id order (operations: addresses stored before the address rule).
    pub async fn registered_addresses(
        &self,
        after: i64,
        limit: i64,
    ) -> Result<Vec<(i64, String, String)>> {
        Ok(sqlx::query_as::<_, (i64, String, String)>(
            "SELECT id, login_id, email FROM customers WHERE email IS NOT NULL AND id > $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(after)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Mail due for sending at `now`: unsent, not in backoff, not claimed by a live worker.
    pub async fn due_mail(&self, now: i64, limit: i64) -> Result<Vec<MailRow>> {
        Ok(sqlx::query_as::<_, MailRow>(&format!(
            "SELECT {MAIL_COLUMNS} FROM mail_outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
             AND (claimed_until IS NULL OR claimed_until < $1) AND given_up_at IS NULL \
             ORDER BY id LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Claim a mail for sending until `until`; false when another worker has it, it was sent,
    /// or it is in backoff (another worker failed it since it was listed).
    pub async fn claim_mail(&self, id: i64, now: i64, until: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE mail_outbox SET claimed_until = $1, attempts = attempts + 1 \
             WHERE id = $2 AND sent_at IS NULL AND next_attempt_at <= $3 \
             AND (claimed_until IS NULL OR claimed_until < $3)",
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

    /// Give up on a mail (it will never be sent): clear its body, say why.
    pub async fn mail_given_up(&self, id: i64, now: i64, why: &str) -> Result<()> {
        sqlx::query(
            "UPDATE mail_outbox SET given_up_at = $1, body = '', claimed_until = NULL, last_error = $2 \
             WHERE id = $3 AND sent_at IS NULL",
        )
        .bind(now)
        .bind(why)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Record a failed attempt at `now` (the worker's clock; the first failure's time is
    /// kept); the mail is tried again from `next_attempt_at`.
    pub async fn mail_failed(
        &self,
        id: i64,
        now: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE mail_outbox SET next_attempt_at = $1, claimed_until = NULL, last_error = $2, \
             first_failed_at = COALESCE(first_failed_at, $3) WHERE id = $4",
        )
        .bind(next_attempt_at)
        .bind(error)
        .bind(now)
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Forget mail sent before `before`, a thousand rows per statement (the first purge after
    /// an upgrade may meet every mail ever sent: one statement would hold SQLite's one write
    /// lock for all of it). Found by the `(sent_at, next_attempt_at)` index. Returns how many.
    pub async fn purge_sent_mail(&self, before: i64) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM mail_outbox WHERE id IN (SELECT id FROM mail_outbox \
                 WHERE (sent_at IS NOT NULL AND sent_at < $1) \
                 OR (sent_at IS NULL AND given_up_at < $1) LIMIT 1000)",
            )
            .bind(before)
            .execute(&self.write)
            .await?
            .rows_affected();
            total += n;
            if n < 1000 {
                return Ok(total);
            }
        }
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
}

/// One mail into the outbox, once per `dedupe_key` (both databases, and the SQLite batch
/// writer's rusqlite connection: `$n` parameters bind by position there too).
pub(super) const INSERT_MAIL: &str = "INSERT INTO mail_outbox (dedupe_key, kind, customer_id, \
    user_id, to_addr, subject, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
    ON CONFLICT (dedupe_key) DO NOTHING";

impl Tx<'_> {
    /// Put a mail in the outbox; false when a mail for the same event is there already.
    pub async fn enqueue_mail(&mut self, m: &NewMail<'_>) -> Result<bool> {
        Ok(sqlx::query(INSERT_MAIL)
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
}
