//! Durable storage on SQLite (embedded default) or PostgreSQL (scale-out), through sqlx.
//!
//! One set of runtime queries (`sqlx::query_as` + `FromRow`) serves both databases through
//! sqlx's `Any` driver: the SQL is kept to what both dialects share (`$n` parameters, which
//! SQLite also understands; `RETURNING`; partial indexes; integers for times and flags), and a
//! single store test suite runs against both. Compile-checked macros would need one copy of
//! every query per dialect and a live database at build time; the shared test suite is the
//! cheaper guard. Migrations are per dialect (`migrations/sqlite`, `migrations/postgres`).
//!
//! All SQL lives here. Replay protection and failure counting are single conditional UPDATEs
//! whose row count decides, so they hold across processes sharing one PostgreSQL. On SQLite all
//! writes go through one connection (SQLite has one writer anyway; this avoids the busy-snapshot
//! errors a deferred transaction gets when it upgrades to a write).

use std::collections::HashSet;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Executor, FromRow, Transaction};

use crate::crypto::Sealed;
use crate::domain::{DomainError, TokenState};

mod screens;
pub use screens::{LinkRow, MailRow, NewMail, SessionRow, TransferRow};
mod ops;
pub use ops::{AppliedMigration, OutboxStats, SealedSecret};
mod staff;
pub use staff::{NewStaffRequest, StaffRequestRow, StaffRow, StaffSessionRow};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    /// The `n`th (1-based) bind parameter of a generated statement whose parameters appear in
    /// order. SQLite gets anonymous `?`: sqlx looks every named parameter up by number, a linear
    /// scan in SQLite, which is quadratic over a multi-row statement's hundreds of parameters.
    fn param(self, n: usize) -> String {
        match self {
            DbKind::Sqlite => "?".to_owned(),
            DbKind::Postgres => format!("${n}"),
        }
    }
}

/// Store errors: either the database is unavailable, or a constraint said no.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL (use sqlite:// or postgres://)")]
    UnsupportedUrl,
    #[error(transparent)]
    Domain(#[from] DomainError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        // One helper turns unique violations into conflicts for every caller.
        if let sqlx::Error::Database(db) = &e {
            if db.is_unique_violation() {
                return StoreError::Conflict(db.constraint().unwrap_or("unique").to_owned());
            }
        }
        StoreError::Unavailable(e)
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, Clone, FromRow)]
pub struct CustomerRow {
    pub id: i64,
    pub login_id: String,
    pub name: String,
    pub email: Option<String>,
    pub login_password_hash: String,
    pub confirmation_password_hash: String,
    pub reissue_waived: i64,
    pub created_at: i64,
    pub password_failures: i64,
    pub password_locked_at: Option<i64>,
}

/// A token row. No `Debug`: it carries the sealed secret and a password hash.
#[derive(Clone, FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub customer_id: i64,
    pub user_id: String,
    pub service_id: String,
    pub state: String,
    pub email: String,
    pub algorithm: String,
    pub digits: i64,
    pub period: i64,
    pub secret_key_id: Option<String>,
    pub secret_enc: Option<Vec<u8>>,
    pub secret_format: Option<i64>,
    pub activation_password_hash: String,
    pub activation_failures: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub link_opened_at: Option<i64>,
    pub provisioned_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub deactivated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub voided_at: Option<i64>,
    pub void_reason: Option<String>,
    pub last_step: i64,
    pub drift: i64,
    pub failures: i64,
    pub locked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub device: Option<String>,
}

impl TokenRow {
    /// # Errors
    /// A state string the code does not know (a corrupt row).
    pub fn state(&self) -> Result<TokenState, DomainError> {
        TokenState::from_str(&self.state)
    }

    pub fn sealed(&self) -> Option<Sealed> {
        Some(Sealed {
            key_id: self.secret_key_id.clone()?,
            format: self.secret_format?,
            blob: self.secret_enc.clone()?,
        })
    }
}

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

pub struct NewCustomer<'a> {
    pub login_id: &'a str,
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub login_password_hash: &'a str,
    pub confirmation_password_hash: &'a str,
    pub now: i64,
}

/// A token's verification state to write, and what it must still be for the write to hold.
pub struct TokenUpdate {
    pub id: i64,
    pub last_step: i64,
    pub drift: i64,
    pub failures: i64,
    pub locked_at: Option<i64>,
    pub state: String,
    pub last_used_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub deactivated_at: Option<i64>,
    pub expect_last_step: i64,
    pub expect_failures: i64,
    pub expect_state: String,
    pub expect_locked_at: Option<i64>,
}

pub struct NewToken<'a> {
    pub customer_id: i64,
    pub user_id: &'a str,
    pub service_id: &'a str,
    pub email: &'a str,
    pub algorithm: &'a str,
    pub digits: i64,
    pub period: i64,
    pub activation_password_hash: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
}

const TOKEN_COLUMNS: &str = "id, customer_id, user_id, service_id, state, email, algorithm, digits, \
    period, secret_key_id, secret_enc, secret_format, activation_password_hash, activation_failures, \
    issued_at, expires_at, link_opened_at, provisioned_at, activated_at, deactivated_at, revoked_at, \
    voided_at, void_reason, last_step, drift, failures, locked_at, last_used_at, device";

/// The store: a read pool and a write pool (the same pool on PostgreSQL).
#[derive(Clone, Debug)]
pub struct Store {
    read: AnyPool,
    write: AnyPool,
    kind: DbKind,
}

/// Options for connecting.
#[derive(Debug, Clone)]
pub struct ConnectOpts {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
}

impl Default for ConnectOpts {
    fn default() -> Self {
        ConnectOpts {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

impl Store {
    /// Connect (lazily: a database that is down now fails requests, not start-up, unless
    /// `migrate` is called).
    ///
    /// # Errors
    /// An unsupported or malformed URL.
    pub fn connect(url: &str, opts: &ConnectOpts) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let kind = if url.starts_with("sqlite:") {
            DbKind::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            DbKind::Postgres
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let connect_opts = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let base = || {
            AnyPoolOptions::new()
                .acquire_timeout(opts.acquire_timeout)
                // No ping before every acquire: a dead connection fails the statement, the
                // request answers "unavailable" and the pool replaces it. The ping was a round
                // trip per group commit.
                .test_before_acquire(false)
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if kind == DbKind::Sqlite {
                            // WAL lets readers run beside the writer; synchronous=FULL makes every
                            // commit durable (fsync'd) before it returns.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute("PRAGMA busy_timeout = 5000").await?;
                            // Checkpoints run in the background (Store::spawn_checkpointer),
                            // not inside a committing verification batch; this bound is only
                            // the safety net should that task stop.
                            conn.execute("PRAGMA wal_autocheckpoint = 20000").await?;
                            conn.execute("PRAGMA foreign_keys = ON").await?;
                            // Sorts and UPDATE ... FROM (VALUES ...) use scratch tables: keep them
                            // in memory, not in temporary files created and deleted per batch.
                            conn.execute("PRAGMA temp_store = MEMORY").await?;
                        }
                        Ok(())
                    })
                })
        };
        let read = base()
            .max_connections(opts.max_connections)
            .connect_lazy_with(connect_opts.clone());
        let write = match kind {
            DbKind::Sqlite => base().max_connections(1).connect_lazy_with(connect_opts),
            DbKind::Postgres => read.clone(),
        };
        Ok(Store { read, write, kind })
    }

    pub fn kind(&self) -> DbKind {
        self.kind
    }

    /// Run the embedded migrations for this dialect.
    ///
    /// # Errors
    /// Database unreachable or a migration failed.
    pub async fn migrate(&self) -> Result<()> {
        let migrator = match self.kind {
            DbKind::Sqlite => &SQLITE_MIGRATIONS,
            DbKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.run(&self.write).await?;
        Ok(())
    }

    /// Whether the database answers.
    ///
    /// # Errors
    /// Database unreachable.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }

    /// Begin a write transaction.
    ///
    /// # Errors
    /// Database unreachable.
    pub async fn begin(&self) -> Result<Tx<'static>> {
        let tx = match self.kind {
            // IMMEDIATE takes SQLite's write lock at once (waiting under busy_timeout), so a
            // transaction that reads before it writes never fails on a snapshot another writer
            // moved on.
            DbKind::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            DbKind::Postgres => self.write.begin().await?,
        };
        Ok(Tx(
            tx,
            TxState {
                kind: self.kind,
                audits: Vec::new(),
            },
        ))
    }

    /// On SQLite, copy the write-ahead log back into the database every half second from a
    /// reader connection (PASSIVE: never blocks the writer), so commits on the verification
    /// path do not pay for checkpoints. No-op on PostgreSQL.
    pub fn spawn_checkpointer(&self) {
        if self.kind != DbKind::Sqlite {
            return;
        }
        let pool = self.read.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(500));
            loop {
                tick.tick().await;
                if pool.is_closed() {
                    return;
                }
                if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                    .execute(&pool)
                    .await
                {
                    tracing::debug!(error = %e, "background WAL checkpoint failed; retrying");
                }
            }
        });
    }

    /// A write connection of its own, out of the pool (for a long-lived worker).
    ///
    /// # Errors
    /// Database unreachable.
    pub async fn dedicated_writer(&self) -> Result<sqlx::AnyConnection> {
        Ok(self.write.acquire().await?.detach())
    }

    /// Begin a write transaction on a connection from [`Store::dedicated_writer`].
    ///
    /// # Errors
    /// Database unreachable.
    pub async fn begin_on<'c>(&self, conn: &'c mut sqlx::AnyConnection) -> Result<Tx<'c>> {
        use sqlx::Connection as _;
        let tx = match self.kind {
            DbKind::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            DbKind::Postgres => conn.begin().await?,
        };
        Ok(Tx(
            tx,
            TxState {
                kind: self.kind,
                audits: Vec::new(),
            },
        ))
    }

    pub async fn customer_by_login(&self, login_id: &str) -> Result<Option<CustomerRow>> {
        Ok(
            sqlx::query_as::<_, CustomerRow>("SELECT * FROM customers WHERE login_id = $1")
                .bind(login_id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    pub async fn customer_by_id(&self, id: i64) -> Result<Option<CustomerRow>> {
        Ok(
            sqlx::query_as::<_, CustomerRow>("SELECT * FROM customers WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    pub async fn token_by_user_id(&self, user_id: &str) -> Result<Option<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// The customer's newest token, if any.
    pub async fn latest_token(&self, customer_id: i64) -> Result<Option<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE customer_id = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(customer_id)
        .fetch_optional(&self.read)
        .await?)
    }

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

    /// Key ids that seal at least one secret, with how many.
    pub async fn keys_in_use(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT secret_key_id, COUNT(*) FROM tokens WHERE secret_key_id IS NOT NULL \
             GROUP BY secret_key_id ORDER BY secret_key_id",
        )
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn key_checks(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(
            sqlx::query_as("SELECT key_id, check_enc FROM master_keys ORDER BY key_id")
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// Up to `limit` tokens whose secret is sealed under a key other than `key_id`.
    pub async fn tokens_not_under_key(&self, key_id: &str, limit: i64) -> Result<Vec<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_key_id IS NOT NULL AND secret_key_id <> $1 \
             ORDER BY id LIMIT $2"
        ))
        .bind(key_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }
}

/// An audit event held until the transaction's end.
struct PendingAudit {
    at: i64,
    actor: String,
    customer_id: Option<i64>,
    user_id: Option<String>,
    action: String,
    outcome: String,
    ip: Option<String>,
    detail: Option<String>,
}

/// What a transaction holds besides the connection: the dialect, and audit events not yet
/// inserted.
pub struct TxState {
    kind: DbKind,
    audits: Vec<PendingAudit>,
}

/// Audit rows per multi-row INSERT (8 parameters each, well under both databases' limits).
const AUDIT_CHUNK: usize = 256;

/// A write transaction. Dropping it without [`Tx::commit`] rolls back.
///
/// Group commit wants few statements per verification: audit events are collected and inserted
/// with multi-row INSERTs just before COMMIT (still inside the transaction, so an event is
/// durable exactly when the state it describes is).
pub struct Tx<'c>(Transaction<'c, Any>, TxState);

impl Tx<'_> {
    /// Write the pending audit events, then commit.
    ///
    /// # Errors
    /// The commit failed; nothing was written.
    pub async fn commit(mut self) -> Result<()> {
        self.flush_audits().await?;
        self.0.commit().await?;
        Ok(())
    }

    /// Record an audit event; it is inserted in this transaction, before it commits.
    ///
    /// # Errors
    /// Only when a full chunk of pending events is written and the database fails.
    pub async fn audit(&mut self, e: &NewAudit<'_>) -> Result<()> {
        self.1.audits.push(PendingAudit {
            at: e.at,
            actor: e.actor.to_owned(),
            customer_id: e.customer_id,
            user_id: e.user_id.map(str::to_owned),
            action: e.action.to_owned(),
            outcome: e.outcome.to_owned(),
            ip: e.ip.map(str::to_owned),
            detail: e.detail.clone(),
        });
        if self.1.audits.len() >= AUDIT_CHUNK {
            self.flush_audits().await?;
        }
        Ok(())
    }

    async fn flush_audits(&mut self) -> Result<()> {
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

    /// Read the rows of `user_ids` with one SELECT. On PostgreSQL the rows are locked in id
    /// order, so concurrent batches (other workers, other processes) queue on each other
    /// instead of deadlocking; SQLite has one writer and needs no row locks.
    ///
    /// # Errors
    /// Database unavailable.
    pub async fn read_tokens_for_update(&mut self, user_ids: &[&str]) -> Result<Vec<TokenRow>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> =
            (1..=user_ids.len()).map(|i| self.1.kind.param(i)).collect();
        let lock = match self.1.kind {
            DbKind::Postgres => " FOR UPDATE",
            DbKind::Sqlite => "",
        };
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_id IN ({}) ORDER BY id{lock}",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as::<_, TokenRow>(&sql);
        for u in user_ids {
            q = q.bind(*u);
        }
        Ok(q.fetch_all(&mut *self.0).await?)
    }

    /// Write the verification state of many tokens with one statement, each only if its row
    /// is still exactly as read (last step, failures, state, lock): a compare-and-set, so a
    /// step accepted elsewhere meanwhile can never be accepted again here. Returns the ids
    /// that were written.
    ///
    /// # Errors
    /// Database unavailable.
    pub async fn apply_token_updates(&mut self, updates: &[TokenUpdate]) -> Result<HashSet<i64>> {
        const COLS: usize = 13;
        let mut landed = HashSet::new();
        for chunk in updates.chunks(256) {
            let mut values = Vec::with_capacity(chunk.len());
            for i in 0..chunk.len() {
                let b = i * COLS;
                let p = |k: usize| self.1.kind.param(b + k);
                values.push(format!(
                    "(CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS BIGINT), \
                     CAST({} AS BIGINT), CAST({} AS TEXT), CAST({} AS BIGINT), CAST({} AS BIGINT), \
                     CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS BIGINT), CAST({} AS TEXT), \
                     CAST({} AS BIGINT))",
                    p(1), p(2), p(3), p(4), p(5), p(6), p(7), p(8), p(9), p(10), p(11), p(12), p(13)
                ));
            }
            // NULLs travel as -1 (no stored time or step is negative) so every value has a type.
            let sql = format!(
                "WITH v(v_id, v_last_step, v_drift, v_failures, v_locked_at, v_state, v_last_used_at, \
                        v_activated_at, v_deactivated_at, x_last_step, x_failures, x_state, x_locked_at) \
                 AS (VALUES {}) \
                 UPDATE tokens SET last_step = v_last_step, drift = v_drift, failures = v_failures, \
                    locked_at = NULLIF(v_locked_at, -1), state = v_state, \
                    last_used_at = NULLIF(v_last_used_at, -1), activated_at = NULLIF(v_activated_at, -1), \
                    deactivated_at = NULLIF(v_deactivated_at, -1) \
                 FROM v \
                 WHERE id = v_id AND last_step = x_last_step AND failures = x_failures \
                   AND state = x_state AND COALESCE(locked_at, -1) = x_locked_at \
                 RETURNING id",
                values.join(", ")
            );
            let mut q = sqlx::query_as::<_, (i64,)>(&sql);
            for u in chunk {
                q = q
                    .bind(u.id)
                    .bind(u.last_step)
                    .bind(u.drift)
                    .bind(u.failures)
                    .bind(u.locked_at.unwrap_or(-1))
                    .bind(u.state.as_str())
                    .bind(u.last_used_at.unwrap_or(-1))
                    .bind(u.activated_at.unwrap_or(-1))
                    .bind(u.deactivated_at.unwrap_or(-1))
                    .bind(u.expect_last_step)
                    .bind(u.expect_failures)
                    .bind(u.expect_state.as_str())
                    .bind(u.expect_locked_at.unwrap_or(-1));
            }
            for (id,) in q.fetch_all(&mut *self.0).await? {
                landed.insert(id);
            }
        }
        Ok(landed)
    }

    /// # Errors
    /// [`StoreError::Conflict`] when the login ID exists.
    pub async fn insert_customer(&mut self, c: &NewCustomer<'_>) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO customers (login_id, name, email, login_password_hash, confirmation_password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(c.login_id)
        .bind(c.name)
        .bind(c.email)
        .bind(c.login_password_hash)
        .bind(c.confirmation_password_hash)
        .bind(c.now)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }

    pub async fn customer(&mut self, id: i64) -> Result<Option<CustomerRow>> {
        Ok(
            sqlx::query_as::<_, CustomerRow>("SELECT * FROM customers WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *self.0)
                .await?,
        )
    }

    /// Count a wrong password for a customer, locking at `max`, unless already locked (a lifted
    /// lock restarts the count): one conditional UPDATE. `None`: it was locked, nothing counted.
    pub async fn count_password_failure(
        &mut self,
        customer_id: i64,
        max: i64,
        now: i64,
        unlock_before: i64,
    ) -> Result<Option<(i64, bool)>> {
        let row: Option<(i64, Option<i64>)> = sqlx::query_as(
            "UPDATE customers SET \
               password_failures = CASE WHEN password_locked_at IS NULL THEN password_failures + 1 ELSE 1 END, \
               password_locked_at = CASE WHEN (CASE WHEN password_locked_at IS NULL THEN password_failures + 1 ELSE 1 END) >= $1 \
                                    THEN $2 ELSE NULL END \
             WHERE id = $3 AND (password_locked_at IS NULL OR password_locked_at <= $4) \
             RETURNING password_failures, password_locked_at",
        )
        .bind(max)
        .bind(now)
        .bind(customer_id)
        .bind(unlock_before)
        .fetch_optional(&mut *self.0)
        .await?;
        Ok(row.map(|(n, locked)| (n, locked.is_some())))
    }

    /// A right password: the count starts again and a lifted lock is cleared.
    pub async fn reset_password_failures(&mut self, customer_id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE customers SET password_failures = 0, password_locked_at = NULL \
             WHERE id = $1 AND (password_failures <> 0 OR password_locked_at IS NOT NULL)",
        )
        .bind(customer_id)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    pub async fn set_reissue_waived(&mut self, customer_id: i64, waived: bool) -> Result<()> {
        sqlx::query("UPDATE customers SET reissue_waived = $1 WHERE id = $2")
            .bind(i64::from(waived))
            .bind(customer_id)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    pub async fn token(&mut self, user_id: &str) -> Result<Option<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&mut *self.0)
        .await?)
    }

    pub async fn latest_token(&mut self, customer_id: i64) -> Result<Option<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE customer_id = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(customer_id)
        .fetch_optional(&mut *self.0)
        .await?)
    }

    /// # Errors
    /// [`StoreError::Conflict`] on a duplicate user ID or a second live token.
    pub async fn insert_token(&mut self, t: &NewToken<'_>) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO tokens (customer_id, user_id, service_id, state, email, algorithm, digits, period, \
             activation_password_hash, issued_at, expires_at) \
             VALUES ($1, $2, $3, 'issued', $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(t.customer_id)
        .bind(t.user_id)
        .bind(t.service_id)
        .bind(t.email)
        .bind(t.algorithm)
        .bind(t.digits)
        .bind(t.period)
        .bind(t.activation_password_hash)
        .bind(t.issued_at)
        .bind(t.expires_at)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }

    /// Move a token from `from` to `to`, stamping `stamp_column` with `now`, only if it is still
    /// in `from`. Returns whether it moved (false: someone else changed it first).
    pub async fn set_state(
        &mut self,
        token_id: i64,
        from: TokenState,
        to: TokenState,
        stamp_column: Option<&'static str>,
        now: i64,
    ) -> Result<bool> {
        let stamp = match stamp_column {
            Some(col) => format!(", {col} = $4"),
            None => String::new(),
        };
        let sql = format!("UPDATE tokens SET state = $1{stamp} WHERE id = $2 AND state = $3");
        let mut q = sqlx::query(&sql)
            .bind(to.as_str())
            .bind(token_id)
            .bind(from.as_str());
        if stamp_column.is_some() {
            q = q.bind(now);
        }
        Ok(q.execute(&mut *self.0).await?.rows_affected() == 1)
    }

    pub async fn void(
        &mut self,
        token_id: i64,
        from: TokenState,
        reason: &str,
        now: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE tokens SET state = 'voided', voided_at = $1, void_reason = $2 WHERE id = $3 AND state = $4",
        )
        .bind(now)
        .bind(reason)
        .bind(token_id)
        .bind(from.as_str())
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Store the sealed secret and the device, moving link_opened → provisioned, once.
    pub async fn provision(
        &mut self,
        token_id: i64,
        sealed: &Sealed,
        device: &str,
        now: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE tokens SET state = 'provisioned', secret_key_id = $1, secret_enc = $2, secret_format = $3, \
             device = $4, provisioned_at = $5 WHERE id = $6 AND state = 'link_opened' AND secret_enc IS NULL",
        )
        .bind(&sealed.key_id)
        .bind(&sealed.blob)
        .bind(sealed.format)
        .bind(device)
        .bind(now)
        .bind(token_id)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Count a wrong activation password; returns the new count.
    pub async fn count_activation_failure(&mut self, token_id: i64) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as(
            "UPDATE tokens SET activation_failures = activation_failures + 1 WHERE id = $1 RETURNING activation_failures",
        )
        .bind(token_id)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(n)
    }

    /// Lift a lock. Returns whether the token was locked.
    pub async fn unlock(&mut self, token_id: i64) -> Result<bool> {
        Ok(sqlx::query("UPDATE tokens SET locked_at = NULL, failures = 0 WHERE id = $1 AND locked_at IS NOT NULL")
            .bind(token_id)
            .execute(&mut *self.0)
            .await?
            .rows_affected()
            == 1)
    }

    /// Replace a token's sealed secret if it is still sealed under `old_key_id`.
    pub async fn reseal(
        &mut self,
        token_id: i64,
        old_key_id: &str,
        sealed: &Sealed,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE tokens SET secret_key_id = $1, secret_enc = $2, secret_format = $3 \
             WHERE id = $4 AND secret_key_id = $5",
        )
        .bind(&sealed.key_id)
        .bind(&sealed.blob)
        .bind(sealed.format)
        .bind(token_id)
        .bind(old_key_id)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn insert_key_check(&mut self, key_id: &str, check: &[u8], now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO master_keys (key_id, check_enc, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(key_id)
        .bind(check)
        .bind(now)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    /// # Errors
    /// [`StoreError::Conflict`] when the login ID exists.
    pub async fn insert_staff(
        &mut self,
        login_id: &str,
        name: &str,
        role: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO staff (login_id, name, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(login_id)
        .bind(name)
        .bind(role)
        .bind(password_hash)
        .bind(now)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }
}
