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

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Executor, Transaction};

use crate::domain::DomainError;

mod audit;
mod customers;
mod keys;
mod links;
mod mail_passwords;
mod outbox;
mod sessions;
mod staff;
mod tokens;
mod transfers;

pub use audit::{AuditRow, NewAudit};
pub use customers::{CustomerRow, NewCustomer};
pub use links::LinkRow;
pub use mail_passwords::{MailPasswordRow, NewMailPassword};
pub use outbox::{MailRow, NewMail};
pub use sessions::SessionRow;
pub use staff::{NewStaffRequest, StaffRequestRow, StaffRow, StaffSessionRow};
pub use tokens::{NewToken, TokenRow, TokenUpdate};
pub use transfers::TransferRow;

use audit::PendingAudit;

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
}

/// What a transaction holds besides the connection: the dialect, and audit events not yet
/// inserted.
pub struct TxState {
    kind: DbKind,
    audits: Vec<PendingAudit>,
}

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
}
