//! The audit trail (DESIGN §5): events written in the transaction of the change they
//! describe, collected and inserted with multi-row INSERTs just before COMMIT.

use sqlx::FromRow;

use super::{Result, Store, Tx};

#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct AuditRow {
    pub id: i64,
    pub at: i64,
    pub actor: String,
    pub customer_id: Option<i64>,
    pub user_id: Option<String>,
    pub action: String,
    pub outcome: String,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

/// An audit event to write (DESIGN §5: who, what, when, from where, outcome). Never holds a
/// secret, code or password.
#[derive(Debug, Clone, Default)]
pub struct NewAudit<'a> {
    pub at: i64,
    pub actor: &'a str,
    pub customer_id: Option<i64>,
    pub user_id: Option<&'a str>,
    pub action: &'a str,
    pub outcome: &'a str,
    pub ip: Option<&'a str>,
    pub detail: Option<String>,
}

/// An audit event held until the transaction's end (owned, so that it can travel to the
/// batch writer's thread).
pub struct PendingAudit {
    pub(super) at: i64,
    pub(super) actor: String,
    pub(super) customer_id: Option<i64>,
    pub(super) user_id: Option<String>,
    pub(super) action: String,
    pub(super) outcome: String,
    pub(super) ip: Option<String>,
    pub(super) detail: Option<String>,
}

impl From<&NewAudit<'_>> for PendingAudit {
    fn from(e: &NewAudit<'_>) -> Self {
        PendingAudit {
            at: e.at,
            actor: e.actor.to_owned(),
            customer_id: e.customer_id,
            user_id: e.user_id.map(str::to_owned),
            action: e.action.to_owned(),
            outcome: e.outcome.to_owned(),
            ip: e.ip.map(str::to_owned),
            detail: e.detail.clone(),
        }
    }
}

/// One audit row (the SQLite batch writer's prepared statement; [`Tx::audit`] collects rows
/// into multi-row INSERTs of the same columns).
pub(super) const INSERT_AUDIT: &str = "INSERT INTO audit_events \
    (at, actor, customer_id, user_id, action, outcome, ip, detail) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// Audit rows per multi-row INSERT (8 parameters each, well under both databases' limits).
const AUDIT_CHUNK: usize = 256;

impl Store {
    /// Audit events, newest first.
    pub async fn audit_for_user(
        &self,
        user_id: &str,
        limit: i64,
        before_id: Option<i64>,
    ) -> Result<Vec<AuditRow>> {
        Ok(sqlx::query_as::<_, AuditRow>(
            "SELECT * FROM audit_events WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// The newest events of one action (staff logins, account changes: events that belong to
    /// no customer), newest first.
    pub async fn audit_by_action(&self, action: &str, limit: i64) -> Result<Vec<AuditRow>> {
        Ok(sqlx::query_as::<_, AuditRow>(
            "SELECT * FROM audit_events WHERE action = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(action)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn audit_count(&self, action: &str, outcome: &str) -> Result<i64> {
        let (n,): (i64,) =
            sqlx::query_as("SELECT COUNT(*) FROM audit_events WHERE action = $1 AND outcome = $2")
                .bind(action)
                .bind(outcome)
                .fetch_one(&self.read)
                .await?;
        Ok(n)
    }
}

impl Tx<'_> {
    /// Record an audit event; it is inserted in this transaction, before it commits.
    ///
    /// # Errors
    /// Only when a full chunk of pending events is written and the database fails.
    pub async fn audit(&mut self, e: &NewAudit<'_>) -> Result<()> {
        self.1.audits.push(PendingAudit::from(e));
        if self.1.audits.len() >= AUDIT_CHUNK {
            self.flush_audits().await?;
        }
        Ok(())
    }

    pub(super) async fn flush_audits(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.1.audits);
        for chunk in pending.chunks(AUDIT_CHUNK) {
            let mut sql = String::from(
                "INSERT INTO audit_events (at, actor, customer_id, user_id, action, outcome, ip, detail) VALUES ",
            );
            let kind = self.1.kind;
            for i in 0..chunk.len() {
                let b = i * 8;
                if i > 0 {
                    sql.push_str(", ");
                }
                let row: Vec<String> = (1..=8).map(|k| kind.param(b + k)).collect();
                sql.push('(');
                sql.push_str(&row.join(", "));
                sql.push(')');
            }
            let mut q = sqlx::query(&sql);
            for e in chunk {
                q = q
                    .bind(e.at)
                    .bind(e.actor.as_str())
                    .bind(e.customer_id)
                    .bind(e.user_id.as_deref())
                    .bind(e.action.as_str())
                    .bind(e.outcome.as_str())
                    .bind(e.ip.as_deref())
                    .bind(e.detail.as_deref());
            }
            q.execute(&mut *self.0).await?;
        }
        Ok(())
    }
}
