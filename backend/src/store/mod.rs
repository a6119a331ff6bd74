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
mod ops;
mod outbox;
mod pake;
mod sessions;
mod staff;
mod throttles;
mod tokens;
mod transfers;
mod writer;

pub use audit::{AuditRow, NewAudit, PendingAudit};
pub use customers::{CustomerRow, NewCustomer};
pub use links::LinkRow;
pub use mail_passwords::{MailPasswordRow, NewMailPassword};
pub use ops::{AppliedMigration, OutboxStats, SealedSecret};
pub use outbox::{MailRow, NewMail, UndeliveredMail};
pub use pake::PakeExchangeRow;
pub use sessions::SessionRow;
pub use staff::{NewStaffRequest, StaffRequestRow, StaffRow, StaffSessionRow};
pub use throttles::ThrottleKey;
pub use tokens::{NewToken, TokenRow, TokenUpdate};
pub use transfers::{NewTransfer, PayeeRow, TransferRow};
pub use writer::{BatchFeed, BatchLogic, BatchWriter, NoticeMail, RoundWrites};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbKind {
    Sqlite,
    Postgres,
}

impl DbKind {
    /// The dialect of a database URL: `sqlite:…`, or `postgres:…` / `postgresql:…`.
    pub fn of_url(url: &str) -> Option<DbKind> {
        if url.starts_with("sqlite:") {
            Some(DbKind::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(DbKind::Postgres)
        } else {
            None
        }
    }

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
    /// PostgreSQL: the verification writers' connections, native rather than `Any`, so that a
    /// batch's values travel as typed arrays (sqlx's `Any` driver has none; see
    /// `writer::PG_WRITE_ROUND`).
    pg_batch: Option<sqlx::PgPool>,
    kind: DbKind,
    /// The database file, on SQLite (not in memory): the verification writer's own connection
    /// (see [`Store::spawn_batch_thread`]).
    sqlite_file: Option<std::path::PathBuf>,
    /// When a dedicated writer last failed to connect, and why (see [`Store::dedicated_writer`]).
    writer_down: std::sync::Arc<std::sync::Mutex<Option<(std::time::Instant, String)>>>,
    /// SQLite: every write transaction holds this shared; the checkpointer takes it exclusive
    /// to restart the log (see [`Store::spawn_checkpointer`]). Fair: once the checkpointer
    /// waits, new transactions wait behind it, so it cannot be starved by a busy writer.
    checkpoint_gate: std::sync::Arc<tokio::sync::RwLock<()>>,
    /// When a commit last failed for want of space or on an I/O error (see
    /// [`Store::write_probe`]).
    commit_failed: CommitFailed,
    /// When the write probe last went through, and the lock that lets one probe run at a time
    /// (see [`Store::write_probe`]).
    probe: std::sync::Arc<tokio::sync::Mutex<Option<std::time::Instant>>>,
    /// SQLite: the checkpointer's RESTART mark, in log pages ([`ConnectOpts::wal_restart_mib`]).
    wal_restart_pages: i64,
}

/// How long a write probe that went through stands for the next ones (see
/// [`Store::write_probe`]).
const PROBE_REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// When a commit last failed for want of space (or on an I/O error), shared by the store and
/// its transactions.
type CommitFailed = std::sync::Arc<std::sync::Mutex<Option<std::time::Instant>>>;

/// How long after a commit failed for want of space the store still reports that it cannot
/// write, even if a small probe fits (a disk that is full to the last byte can still take a
/// one-row write into log space a failed transaction left).
const COMMIT_FAILURE_MEMORY: Duration = Duration::from_secs(3);

/// A pooled PostgreSQL connection idle this long is pinged before it is used (see
/// [`Store::connect`]).
const STALE_AFTER: Duration = Duration::from_millis(250);

/// Whether an error means the database could not write its data: a full disk, a quota, an I/O
/// error (SQLite's SQLITE_FULL, SQLITE_IOERR; PostgreSQL's class 53 "insufficient resources"
/// and 58 "system error"). An I/O error of the driver itself is the disk's only on SQLite, a
/// file; on PostgreSQL it is the connection (a restart, a network cut), which `/readyz`
/// already reports as unreachable while it lasts. Counted there, it kept `/readyz` at 503 for
/// three seconds after the database was back (`database_goes_away_and_comes_back` failed
/// whenever the writer met its cut connection as an I/O error rather than as the server's
/// "terminating connection" message). Read by the database's kind: PostgreSQL's disk full,
/// 53100, was once taken for a SQLite code and missed.
fn is_write_failure(kind: DbKind, e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code().unwrap_or_default();
            // By the database's kind, not by the code's look: many SQLSTATEs are all digits
            // (53100 "disk full" read as a number is no SQLite code this knows).
            match kind {
                DbKind::Sqlite => code
                    .parse::<i32>()
                    .is_ok_and(|n| matches!(n & 0xff, 10 | 13)),
                DbKind::Postgres => code.starts_with("53") || code.starts_with("58"),
            }
        }
        sqlx::Error::Io(_) => kind == DbKind::Sqlite,
        _ => false,
    }
}

/// Options for connecting.
#[derive(Debug, Clone)]
pub struct ConnectOpts {
    pub max_connections: u32,
    /// How long a request waits for a connection before it is answered "unavailable". Under a
    /// second, so that during a database outage every answer (and `/readyz`) comes within one
    /// instead of hanging on connection attempts. SQLite's write pool waits at least
    /// [`SQLITE_WRITE_QUEUE`] (there it queues for the one writer; it is never an outage).
    pub acquire_timeout: Duration,
    /// SQLite: the write-ahead log's size (MiB) past which the background checkpointer makes
    /// it start again from its beginning (RESTART). With readers always active a PASSIVE
    /// checkpoint copies pages back but the log never restarts, and grows without bound.
    ///
    /// A RESTART holds every verification for about 15 ms (measured: 12–18 ms on average, at
    /// most 22–31), whatever the log's size, since the PASSIVE checkpoint before it has copied
    /// back nearly all of it. The mark sets how often that happens under load: at 4 MiB on
    /// every 250 ms tick, which made SQLite's p99 at c=32 about 17 ms against a p50 of 4 ms;
    /// at 32 MiB about once a second (p99 10–11 ms); at 128 MiB about once in three seconds
    /// (p99 8–11 ms). README, Benchmarks. SQLite's own checkpoint inside a commit
    /// (`wal_autocheckpoint`) is set at twice the mark: only the safety net should the
    /// checkpointer fall behind or stop (at 4,000 pages it fired inside verification batches).
    pub wal_restart_mib: u32,
}

impl Default for ConnectOpts {
    fn default() -> Self {
        ConnectOpts {
            max_connections: 16,
            acquire_timeout: Duration::from_millis(500),
            wal_restart_mib: WAL_RESTART_MIB,
        }
    }
}

/// How long a SQLite connection waits for a lock another connection holds (`busy_timeout`):
/// the pools' connections and the verification writer's.
pub(crate) const SQLITE_BUSY_TIMEOUT_MS: u32 = 5000;

/// How long SQLite's write pool lets a request queue for its one connection.
pub const SQLITE_WRITE_QUEUE: Duration = Duration::from_secs(5);

/// After a dedicated writer failed to connect, further attempts within this time fail at once
/// with the same cause, so verifications queued behind a failed attempt are answered at once
/// rather than each waiting out a new connection attempt.
const WRITER_RETRY_AFTER: Duration = Duration::from_millis(1000);

/// The default for [`ConnectOpts::wal_restart_mib`]: 128 MiB.
pub const WAL_RESTART_MIB: u32 = 128;

/// SQLite pages (4 KiB each) in `mib` MiB of write-ahead log.
const fn wal_pages(mib: u32) -> i64 {
    mib as i64 * 256
}

/// SQLite's own checkpoint inside a commit (`wal_autocheckpoint`), in log pages: the safety net
/// at twice the checkpointer's mark (see [`ConnectOpts::wal_restart_mib`]).
const fn wal_autocheckpoint(restart_pages: i64) -> i64 {
    2 * restart_pages
}

// No `journal_size_limit`: truncating the log after every reset made each new stretch of it
// grow the file again, and with `synchronous = FULL` every growth is a metadata fsync: a 25 %
// fall in verifications/s on SQLite (measured, see the README's benchmarks). The RESTART above
// bounds the log without it (the file is rewritten from its start, never past its peak), an
// idle log is truncated to nothing (TRUNCATE below), and `Store::close` truncates it.

impl Store {
    /// Connect (lazily: a database that is down now fails requests, not start-up, unless
    /// `migrate` is called).
    ///
    /// # Errors
    /// An unsupported or malformed URL.
    pub fn connect(url: &str, opts: &ConnectOpts) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let kind = DbKind::of_url(url).ok_or(StoreError::UnsupportedUrl)?;
        let connect_opts = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let wal_restart_pages = wal_pages(opts.wal_restart_mib);
        let autocheckpoint = wal_autocheckpoint(wal_restart_pages);
        let base = || {
            AnyPoolOptions::new()
                .acquire_timeout(opts.acquire_timeout)
                // No ping before every acquire: a dead connection fails the statement, the
                // request answers "unavailable" and the pool replaces it. The ping was a round
                // trip per group commit.
                .test_before_acquire(false)
                // But after a PostgreSQL restart every idle connection is dead, and each failed
                // one request before the pool had replaced them all: `/readyz` and the screens
                // answered 503 for a while after the database was back. A connection idle for
                // longer than STALE_AFTER is pinged first (a dead one is closed and another
                // taken); under load connections come back within milliseconds and are not.
                .before_acquire(move |conn, meta| {
                    Box::pin(async move {
                        use sqlx::Connection as _;
                        if kind == DbKind::Postgres && meta.idle_for >= STALE_AFTER {
                            return Ok(conn.ping().await.is_ok());
                        }
                        Ok(true)
                    })
                })
                .after_connect(move |conn, _| {
                    Box::pin(async move {
                        if kind == DbKind::Sqlite {
                            // WAL lets readers run beside the writer; synchronous=FULL makes every
                            // commit durable (fsync'd) before it returns.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = FULL").await?;
                            conn.execute(
                                format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}").as_str(),
                            )
                            .await?;
                            // Checkpoints run in the background (Store::spawn_checkpointer),
                            // not inside a committing verification batch.
                            conn.execute(
                                format!("PRAGMA wal_autocheckpoint = {autocheckpoint}").as_str(),
                            )
                            .await?;
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
            DbKind::Sqlite => base()
                .max_connections(1)
                .acquire_timeout(opts.acquire_timeout.max(SQLITE_WRITE_QUEUE))
                // When a COMMIT fails on SQLite (SQLITE_FULL, SQLITE_IOERR) SQLite has already
                // rolled the transaction back, so sqlx's ROLLBACK fails too and the connection
                // stays marked as inside a transaction: every later BEGIN on it fails ("non-zero
                // transaction depth") and, this pool having one connection, every write answers
                // 503 until a restart (issue 13, after a full disk). A connection that cannot
                // begin a transaction is closed on its way back, and a fresh one opened.
                .after_release(|conn, _| {
                    Box::pin(async move {
                        use sqlx::Connection as _;
                        Ok(match conn.begin_with("BEGIN DEFERRED").await {
                            Ok(tx) => tx.rollback().await.is_ok(),
                            Err(_) => false,
                        })
                    })
                })
                .connect_lazy_with(connect_opts),
            DbKind::Postgres => read.clone(),
        };
        let pg_batch = match kind {
            DbKind::Postgres => Some(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(opts.max_connections)
                    .acquire_timeout(opts.acquire_timeout)
                    .test_before_acquire(false)
                    .connect_lazy_with(
                        sqlx::postgres::PgConnectOptions::from_str(url)?
                            .disable_statement_logging(),
                    ),
            ),
            DbKind::Sqlite => None,
        };
        Ok(Store {
            read,
            write,
            pg_batch,
            kind,
            sqlite_file: match kind {
                DbKind::Sqlite => writer::sqlite_file(url),
                DbKind::Postgres => None,
            },
            writer_down: std::sync::Arc::default(),
            checkpoint_gate: std::sync::Arc::default(),
            commit_failed: CommitFailed::default(),
            probe: std::sync::Arc::default(),
            wal_restart_pages,
        })
    }

    /// SQLite's own checkpoint inside a commit, in log pages ([`wal_autocheckpoint`]).
    pub(crate) fn wal_autocheckpoint_pages(&self) -> i64 {
        wal_autocheckpoint(self.wal_restart_pages)
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

    /// Whether the database takes a write: one committed upsert of a one-row table, through
    /// the same write path as every other transaction. A full disk, a read-only file or a
    /// standby answers `SELECT 1` but fails here.
    ///
    /// One probe at a time, and a probe that went through stands for [`PROBE_REUSE`]: `/readyz`
    /// needs no key, and before, each call was a durable write on SQLite's one write
    /// connection, so a flood of them queued the bank's own writes behind it. A failed probe
    /// stands for nothing (the next call probes again).
    ///
    /// # Errors
    /// The write failed.
    pub async fn write_probe(&self, now: u64) -> Result<()> {
        {
            let mut last = self.probe.lock().await;
            if !last.is_some_and(|t| t.elapsed() < PROBE_REUSE) {
                *last = None;
                let mut tx = self.begin().await?;
                sqlx::query(
                    "INSERT INTO readiness_probe (id, at) VALUES (1, $1) \
                     ON CONFLICT (id) DO UPDATE SET at = excluded.at",
                )
                .bind(i64::try_from(now).unwrap_or(i64::MAX))
                .execute(&mut *tx.0)
                .await?;
                tx.commit().await?;
                *last = Some(std::time::Instant::now());
            }
        }
        let recent = self
            .commit_failed
            .lock()
            .ok()
            .and_then(|at| *at)
            .is_some_and(|at| at.elapsed() < COMMIT_FAILURE_MEMORY);
        if recent {
            return Err(StoreError::Unavailable(sqlx::Error::Io(
                std::io::Error::other(
                    "a commit failed for want of space or on an I/O error just now",
                ),
            )));
        }
        Ok(())
    }

    /// Close both pools, every connection with them (the file handles too: a backup or a
    /// restore switches the file's journal mode next, which needs them all gone).
    ///
    /// One `Pool::close` is not enough (sqlx 0.8.6): a connection on its way back through
    /// `after_release` while the pool closes lands in the idle queue after `close` emptied it
    /// and, on a one-connection pool, `close` returns with it still open. Closing again closes
    /// what landed there.
    ///
    /// On SQLite the write-ahead log is folded back and truncated first (best effort): a
    /// stopped server, or a backup taken after it, leaves a small log, not one at its peak (a
    /// RESTART checkpoint reuses the log file but never shrinks it, and the verification
    /// worker's own connection may outlive the pools).
    pub async fn close(&self) {
        if self.kind == DbKind::Sqlite && !self.write.is_closed() {
            let _gate = self.checkpoint_gate.write().await;
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(&self.write)
                .await
            {
                tracing::debug!(error = %e, "closing checkpoint failed; the log stays as it is");
            }
        }
        if let Some(pool) = &self.pg_batch {
            pool.close().await;
        }
        for pool in [&self.read, &self.write] {
            for _ in 0..50 {
                pool.close().await;
                if pool.size() == 0 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }

    /// Begin a write transaction.
    ///
    /// # Errors
    /// Database unreachable.
    pub async fn begin(&self) -> Result<Tx<'static>> {
        let gate = self.gate().await;
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
                _gate: gate,
                commit_failed: self.commit_failed.clone(),
            },
        ))
    }

    /// Remember that a commit failed for want of space or on an I/O error (see
    /// [`Store::write_probe`]).
    fn note_commit_failure(&self) {
        if let Ok(mut at) = self.commit_failed.lock() {
            *at = Some(std::time::Instant::now());
        }
    }

    /// [`Store::gate`] for the SQLite writer thread (which exists only on SQLite, and is not an
    /// async runtime's thread).
    fn gate_blocking(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.checkpoint_gate.blocking_read()
    }

    /// The checkpoint gate, shared, for a write transaction (SQLite only).
    async fn gate(&self) -> Option<tokio::sync::OwnedRwLockReadGuard<()>> {
        match self.kind {
            DbKind::Sqlite => Some(self.checkpoint_gate.clone().read_owned().await),
            DbKind::Postgres => None,
        }
    }

    /// On SQLite, keep the write-ahead log small from a background task, so commits on the
    /// verification path do not pay for checkpoints. Every quarter second a PASSIVE checkpoint
    /// (never blocks anyone) copies the log back into the database. That alone does not bound
    /// the log: the writer starts it again from its beginning only when no reader uses it, and
    /// under steady load some reader always does (each started while the log had pages not yet
    /// copied back), so it grows (to ~80 MB in issue 13). So past its mark
    /// ([`ConnectOpts::wal_restart_mib`]) a
    /// RESTART checkpoint runs with write transactions held at the checkpoint gate, for the few
    /// milliseconds the readers of old snapshots take to finish (new ones read the database
    /// file), after which the next commit
    /// writes the log from its start (the file is not grown past its peak); and a log that
    /// has stopped growing is emptied (TRUNCATE), which is also what gives the space back after
    /// a full disk. No-op on PostgreSQL.
    pub fn spawn_checkpointer(&self) {
        if self.kind != DbKind::Sqlite {
            return;
        }
        let pool = self.read.clone();
        let gate = self.checkpoint_gate.clone();
        let restart_pages = self.wal_restart_pages;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_log = -1;
            // Whether the log file was emptied since the log last changed: after a RESTART with
            // no writes since, the log holds no frames but its file is still at its peak.
            let mut truncated = false;
            loop {
                tick.tick().await;
                if pool.is_closed() {
                    return;
                }
                // (busy, pages in the log, pages copied back).
                let log = match sqlx::query_as::<_, (i64, i64, i64)>(
                    "PRAGMA wal_checkpoint(PASSIVE)",
                )
                .fetch_one(&pool)
                .await
                {
                    Ok((_, log, _)) => log,
                    Err(e) => {
                        tracing::debug!(error = %e, "background WAL checkpoint failed; retrying");
                        // A full disk, say: try to empty the log as soon as it is quiet.
                        last_log
                    }
                };
                if log != last_log {
                    truncated = false;
                }
                let idle = log == last_log && !truncated;
                last_log = log;
                // Idle first: a RESTART leaves the frame count as it was until the next write,
                // so a log left past the mark by the last commit would be restarted on every
                // tick and never emptied (CI saw it stay at 7 MiB).
                let mode = if idle {
                    "TRUNCATE"
                } else if log >= restart_pages {
                    "RESTART"
                } else {
                    continue;
                };
                // No write transaction runs meanwhile (SQLite's own lock is not fair: a
                // checkpoint waiting for it can lose to a busy writer for seconds on end).
                let exclusive = gate.write().await;
                let done = restart_checkpoint(&pool, mode).await;
                drop(exclusive);
                match done {
                    Ok((0, _, _)) if mode == "TRUNCATE" => {
                        last_log = 0;
                        truncated = true;
                    }
                    Ok(_) => {}
                    Err(e) => tracing::debug!(error = %e, mode, "WAL checkpoint failed; retrying"),
                }
            }
        });
    }
}

/// How long a RESTART or TRUNCATE checkpoint waits for readers on an older snapshot. SQLite
/// holds its write lock (and the checkpointer our gate) while it waits, so every write waits
/// with it: with the connections' 5 s busy timeout, a reader that stays (a `backup`'s
/// `VACUUM INTO` from another process) held verifications up to 5 s. A log that could not
/// restart now is restarted on a later tick.
const CHECKPOINT_READER_WAIT_MS: u32 = 50;

/// A RESTART or TRUNCATE checkpoint on a pool connection, waiting at most
/// [`CHECKPOINT_READER_WAIT_MS`] for readers; the connection's busy timeout is restored (or
/// the connection dropped from the pool).
async fn restart_checkpoint(
    pool: &sqlx::AnyPool,
    mode: &str,
) -> std::result::Result<(i64, i64, i64), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    conn.execute(format!("PRAGMA busy_timeout = {CHECKPOINT_READER_WAIT_MS}").as_str())
        .await?;
    let done = sqlx::query_as::<_, (i64, i64, i64)>(&format!("PRAGMA wal_checkpoint({mode})"))
        .fetch_one(&mut *conn)
        .await;
    let restore = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}");
    if conn.execute(restore.as_str()).await.is_err() {
        // Not back to the pool with the short wait.
        drop(conn.detach());
    }
    done
}

impl Store {
    /// A write connection of its own, out of the pool (for a long-lived worker). After a failed
    /// attempt, attempts within [`WRITER_RETRY_AFTER`] fail at once with the same cause.
    ///
    /// # Errors
    /// Database unreachable: the real cause (refused, timed out, …).
    pub async fn dedicated_writer(&self) -> Result<sqlx::AnyConnection> {
        self.detach_writer(&self.write).await
    }

    /// On PostgreSQL, a native connection of its own for a verification writer, as
    /// [`Store::dedicated_writer`].
    ///
    /// # Errors
    /// Database unreachable (or failed to connect within the last second), or not PostgreSQL.
    pub(crate) async fn dedicated_pg_writer(&self) -> Result<sqlx::PgConnection> {
        match &self.pg_batch {
            Some(pool) => self.detach_writer(pool).await,
            None => Err(StoreError::Unavailable(sqlx::Error::Io(
                std::io::Error::other("not a PostgreSQL store"),
            ))),
        }
    }

    async fn detach_writer<DB: sqlx::Database>(
        &self,
        pool: &sqlx::Pool<DB>,
    ) -> Result<DB::Connection> {
        if let Some(cause) = self.recent_writer_failure() {
            return Err(StoreError::Unavailable(sqlx::Error::Io(
                std::io::Error::other(cause),
            )));
        }
        match pool.acquire().await {
            Ok(conn) => {
                if let Ok(mut down) = self.writer_down.lock() {
                    *down = None;
                }
                Ok(conn.detach())
            }
            Err(e) => {
                if let Ok(mut down) = self.writer_down.lock() {
                    *down = Some((std::time::Instant::now(), e.to_string()));
                }
                Err(e.into())
            }
        }
    }

    fn recent_writer_failure(&self) -> Option<String> {
        let down = self.writer_down.lock().ok()?;
        let (at, cause) = down.as_ref()?;
        (at.elapsed() < WRITER_RETRY_AFTER)
            .then(|| format!("database unreachable ({cause}); retrying shortly"))
    }

    /// Begin a write transaction on a connection from [`Store::dedicated_writer`].
    ///
    /// # Errors
    /// Database unreachable.
    pub async fn begin_on<'c>(&self, conn: &'c mut sqlx::AnyConnection) -> Result<Tx<'c>> {
        use sqlx::Connection as _;
        let gate = self.gate().await;
        let tx = match self.kind {
            DbKind::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await?,
            DbKind::Postgres => conn.begin().await?,
        };
        Ok(Tx(
            tx,
            TxState {
                kind: self.kind,
                audits: Vec::new(),
                _gate: gate,
                commit_failed: self.commit_failed.clone(),
            },
        ))
    }
}

/// What a transaction holds besides the connection: the dialect, and audit events not yet
/// inserted.
pub struct TxState {
    kind: DbKind,
    audits: Vec<PendingAudit>,
    /// Held until the transaction ends (SQLite only).
    _gate: Option<tokio::sync::OwnedRwLockReadGuard<()>>,
    commit_failed: CommitFailed,
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
        let failed = self.1.commit_failed.clone();
        let kind = self.1.kind;
        let res = async {
            self.flush_audits().await?;
            self.0.commit().await?;
            Ok::<_, StoreError>(())
        }
        .await;
        if let Err(StoreError::Unavailable(e)) = &res {
            if is_write_failure(kind, e) {
                if let Ok(mut at) = failed.lock() {
                    *at = Some(std::time::Instant::now());
                }
            }
        }
        res
    }
}

#[cfg(test)]
mod tests {
    use super::{is_write_failure, DbKind};
    use std::borrow::Cow;

    /// A database's error with an SQLSTATE (PostgreSQL) or an extended result code (SQLite).
    #[derive(Debug)]
    struct Coded(&'static str);

    impl std::fmt::Display for Coded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }

    impl std::error::Error for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(Cow::Borrowed(self.0))
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    fn db(code: &'static str) -> sqlx::Error {
        sqlx::Error::Database(Box::new(Coded(code)))
    }

    fn io() -> sqlx::Error {
        sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset))
    }

    #[test]
    fn only_the_disks_failures_count_as_a_failed_write() {
        use DbKind::{Postgres, Sqlite};
        // SQLite: SQLITE_FULL (13), SQLITE_IOERR (10) and its extended codes (10 | n << 8).
        assert!(is_write_failure(Sqlite, &db("13")));
        assert!(is_write_failure(Sqlite, &db("10")));
        assert!(is_write_failure(Sqlite, &db("3338")), "SQLITE_IOERR_FSYNC");
        assert!(
            !is_write_failure(Sqlite, &db("5")),
            "SQLITE_BUSY is not the disk"
        );
        assert!(
            !is_write_failure(Sqlite, &db("2067")),
            "a constraint is not the disk"
        );
        assert!(
            is_write_failure(Sqlite, &io()),
            "on SQLite an I/O error is the file's"
        );
        // PostgreSQL: class 53 (insufficient resources: 53100 disk full) and 58 (system error).
        assert!(is_write_failure(Postgres, &db("53100")));
        assert!(is_write_failure(Postgres, &db("58030")));
        assert!(
            !is_write_failure(Postgres, &db("57P01")),
            "terminated by an administrator"
        );
        assert!(
            !is_write_failure(Postgres, &db("40001")),
            "a serialization failure"
        );
        assert!(
            !is_write_failure(Postgres, &io()),
            "on PostgreSQL an I/O error is the connection, reported as unreachable"
        );
        assert!(!is_write_failure(Postgres, &sqlx::Error::PoolTimedOut));
    }
}
