//! The verification batch writer: one store interface ([`BatchWriter::run`]) for both
//! databases. The engine supplies the decisions ([`BatchLogic`]); the writer reads the rows,
//! applies the compare-and-set updates, writes the audit events and notices of the final
//! decisions and commits, all in one transaction, durable before it returns.
//!
//! On a SQLite file the writer is an OS thread that owns one connection (rusqlite, on the same
//! `libsqlite3-sys`, so the same SQLite library and its locks, as sqlx) with prepared, cached
//! statements: a batch is a handful of in-process calls and one fsync, instead of one async hop
//! to sqlx's worker thread per statement (issue 15: those hops were two thirds of a batch's
//! time). The thread takes its batches itself ([`BatchFeed`], [`Store::spawn_batch_thread`]):
//! when a commit ends, what queued meanwhile is the next batch at once, without a hop through
//! an async task and back. Elsewhere (PostgreSQL, an in-memory SQLite) the same batch runs
//! over a sqlx connection of its own ([`BatchWriter::run`]).

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::audit::{PendingAudit, INSERT_AUDIT};
use super::outbox::INSERT_MAIL;
use super::tokens::{
    TokenRow, TokenUpdate, TOKEN_COLUMNS, UPDATE_TOKEN_IF_UNCHANGED,
    UPDATE_TOKEN_SAME_STATE_IF_UNCHANGED,
};
use super::{DbKind, NewMail, Result, Store, StoreError, Tx};

/// At most this many read–decide–write rounds per batch (a round repeats only for tokens whose
/// row another process changed meanwhile).
const ROUNDS: usize = 8;

/// A notice mail to queue with a batch. The address is the customer's, or the token's when the
/// customer has none (looked up in the batch's transaction).
pub struct NoticeMail {
    pub dedupe_key: String,
    pub kind: &'static str,
    pub customer_id: i64,
    pub user_id: String,
    pub token_email: String,
    pub subject: String,
    pub body: String,
    pub now: i64,
}

/// The engine's side of a batch: decisions only, no I/O. On SQLite it runs on the writer's
/// thread, inside the write transaction.
pub trait BatchLogic: Send + 'static {
    /// User IDs whose jobs still need a decision, sorted (empty when all have landed).
    fn pending(&self) -> Vec<String>;
    /// Decide the pending jobs against their rows as read now; the updates to compare-and-set.
    fn decide(&mut self, rows: Vec<TokenRow>) -> Vec<TokenUpdate>;
    /// Which of the last round's updates landed (the others' tokens are decided again).
    fn landed(&mut self, landed: &HashSet<i64>);
    /// The audit events and notices of the final decisions. Jobs still pending after the last
    /// round (rows that kept changing) are answered "unavailable" and write nothing.
    fn writes(&mut self) -> (Vec<PendingAudit>, Vec<NoticeMail>);
}

/// Where the SQLite writer thread takes its batches from, and hands them back: the engine's
/// queue of verifications. Both run on the writer thread, so they may block it.
pub trait BatchFeed: Send + 'static {
    type Logic: BatchLogic;
    /// Wait for the next batch; `None` when the queue has closed (the thread then ends).
    fn next_batch(&mut self) -> Option<Self::Logic>;
    /// The batch, committed (durable) with its decisions, or the cause it was not (nothing
    /// of it written).
    fn finished(&mut self, result: Result<Self::Logic>);
}

/// A long-lived batch writer over a sqlx connection of its own (one per verification worker,
/// where [`Store::spawn_batch_thread`] does not apply).
pub struct BatchWriter {
    store: Store,
    /// Taken when first needed, and again after a failure.
    conn: Option<sqlx::AnyConnection>,
}

impl Store {
    /// On a SQLite file, start the verification writer: an OS thread with its own connection
    /// that takes batches from `feed`, runs and commits each, and hands it back, until the
    /// feed closes. Elsewhere (or if no thread can be started) the feed comes back, for a
    /// [`BatchWriter`].
    ///
    /// # Errors
    /// The feed, when this store has no writer thread.
    pub fn spawn_batch_thread<F: BatchFeed>(&self, feed: F) -> std::result::Result<(), F> {
        let Some(path) = self
            .sqlite_file
            .clone()
            .filter(|_| self.kind == DbKind::Sqlite)
        else {
            return Err(feed);
        };
        // The feed goes to the thread through a slot, so that it comes back if the thread
        // cannot be started.
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(feed)));
        let theirs = slot.clone();
        let store = self.clone();
        let spawned = std::thread::Builder::new()
            .name("otp-sqlite-writer".into())
            .spawn(move || {
                let feed = theirs.lock().ok().and_then(|mut f| f.take());
                if let Some(feed) = feed {
                    writer_thread(&store, &path, feed);
                }
            });
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::warn!(error = %e, "no writer thread; batches use a sqlx connection");
                match slot.lock().ok().and_then(|mut f| f.take()) {
                    Some(feed) => Err(feed),
                    None => Ok(()),
                }
            }
        }
    }

    /// A batch writer for a verification worker, over a sqlx connection of its own.
    pub fn batch_writer(&self) -> BatchWriter {
        BatchWriter {
            store: self.clone(),
            conn: None,
        }
    }
}

/// The SQLite writer thread's loop: one batch after another on one connection (opened on first
/// use: the file may not exist before migrations; opened again after a failure: the connection
/// may be broken).
fn writer_thread<F: BatchFeed>(store: &Store, path: &Path, mut feed: F) {
    let autocheckpoint = store.wal_autocheckpoint_pages();
    let mut conn: Option<rusqlite::Connection> = None;
    while let Some(mut logic) = feed.next_batch() {
        // Held until the batch has committed, as every write transaction holds it.
        let gate = store.gate_blocking();
        let res = run_on_thread(&mut conn, path, autocheckpoint, &mut logic);
        drop(gate);
        feed.finished(match res {
            Ok(()) => Ok(logic),
            Err(e) => {
                if is_write_failure(&e) {
                    store.note_commit_failure();
                }
                Err(store_err(&e))
            }
        });
    }
}

impl BatchWriter {
    /// Run one batch in one transaction and commit it (durably) before returning the logic,
    /// which holds the decisions.
    ///
    /// # Errors
    /// Database unavailable (the real cause); nothing of the batch was written.
    pub async fn run<L: BatchLogic>(&mut self, logic: L) -> Result<L> {
        if self.conn.is_none() {
            self.conn = Some(self.store.dedicated_writer().await?);
        }
        let Some(c) = self.conn.as_mut() else {
            return Err(unavailable("no writer connection"));
        };
        let mut logic = logic;
        let res = run_sqlx(&self.store, c, &mut logic).await;
        if res.is_err() {
            // The connection may be broken; take a fresh one for the next batch.
            self.conn = None;
        }
        res.map(|()| logic)
    }
}

fn unavailable(msg: &'static str) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::other(msg)))
}

/// SQLite's own message, with its extended code, as the store's "unavailable".
fn store_err(e: &rusqlite::Error) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::other(format!(
        "SQLite writer: {e}"
    ))))
}

/// A full disk or an I/O error (the store's `/readyz` remembers those).
fn is_write_failure(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure)
    )
}

fn open_writer(path: &Path, autocheckpoint: i64) -> rusqlite::Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    // The settings of the sqlx connections (store/mod.rs): WAL, synchronous=FULL so every
    // commit is fsync'd before it returns, the same busy wait and checkpoint safety net.
    // (The pragmas that answer with their new value are read back; `pragma_update` refuses
    // an answer.)
    let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(rusqlite::Error::InvalidParameterName(format!(
            "journal_mode stayed {mode}"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_millis(u64::from(
        super::SQLITE_BUSY_TIMEOUT_MS,
    )))?;
    let _: i64 =
        conn.pragma_update_and_check(None, "wal_autocheckpoint", autocheckpoint, |r| r.get(0))?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// One batch on the writer thread, on its connection (opened when missing).
fn run_on_thread<L: BatchLogic>(
    conn: &mut Option<rusqlite::Connection>,
    path: &Path,
    autocheckpoint: i64,
    logic: &mut L,
) -> rusqlite::Result<()> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(open_writer(path, autocheckpoint)?),
    };
    let res = run_sqlite(c, logic);
    if res.is_err() {
        *conn = None;
    }
    res
}

/// One batch on the writer thread. IMMEDIATE takes the write lock at once, so the rows read
/// cannot change before the updates (other connections wait under busy_timeout); the updates
/// are still compare-and-set, as on PostgreSQL.
fn run_sqlite<L: BatchLogic>(
    conn: &mut rusqlite::Connection,
    logic: &mut L,
) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for _ in 0..ROUNDS {
        let ids = logic.pending();
        if ids.is_empty() {
            break;
        }
        let mut rows = Vec::with_capacity(ids.len());
        {
            let mut read = tx.prepare_cached(&format!(
                "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_id = ?1"
            ))?;
            for id in &ids {
                if let Some(row) = read.query_row([id], token_row).optional()? {
                    rows.push(row);
                }
            }
        }
        let updates = logic.decide(rows);
        let mut landed = HashSet::with_capacity(updates.len());
        {
            for u in &updates {
                let mut set = tx.prepare_cached(if u.state == u.expect_state {
                    UPDATE_TOKEN_SAME_STATE_IF_UNCHANGED
                } else {
                    UPDATE_TOKEN_IF_UNCHANGED
                })?;
                let n = set.execute(params![
                    u.last_step,
                    u.drift,
                    u.failures,
                    u.locked_at,
                    u.state.as_str(),
                    u.last_used_at,
                    u.activated_at,
                    u.deactivated_at,
                    u.last_tx_step,
                    u.id,
                    u.expect_last_step,
                    u.expect_failures,
                    u.expect_state.as_str(),
                    u.expect_locked_at,
                    u.expect_last_tx_step,
                ])?;
                if n == 1 {
                    landed.insert(u.id);
                }
            }
        }
        logic.landed(&landed);
    }
    let (audits, mails) = logic.writes();
    {
        let mut ins = tx.prepare_cached(INSERT_AUDIT)?;
        for a in &audits {
            ins.execute(params![
                a.at,
                a.actor,
                a.customer_id,
                a.user_id,
                a.action,
                a.outcome,
                a.ip,
                a.detail
            ])?;
        }
    }
    for m in &mails {
        let email: Option<Option<String>> = tx
            .prepare_cached("SELECT email FROM customers WHERE id = ?1")?
            .query_row([m.customer_id], |r| r.get(0))
            .optional()?;
        let to = email.flatten().unwrap_or_else(|| m.token_email.clone());
        tx.prepare_cached(INSERT_MAIL)?.execute(params![
            m.dedupe_key,
            m.kind,
            m.customer_id,
            m.user_id,
            to,
            m.subject,
            m.body,
            m.now
        ])?;
    }
    tx.commit()
}

/// One batch over a sqlx connection (PostgreSQL: the rows are locked in id order).
async fn run_sqlx<L: BatchLogic>(
    store: &Store,
    conn: &mut sqlx::AnyConnection,
    logic: &mut L,
) -> Result<()> {
    let mut tx: Tx<'_> = store.begin_on(conn).await?;
    for _ in 0..ROUNDS {
        let ids = logic.pending();
        if ids.is_empty() {
            break;
        }
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let rows = tx.read_tokens_for_update(&refs).await?;
        let updates = logic.decide(rows);
        let landed = tx.apply_token_updates(&updates).await?;
        logic.landed(&landed);
    }
    let (audits, mails) = logic.writes();
    tx.1.audits.extend(audits);
    for m in &mails {
        let to = tx
            .customer(m.customer_id)
            .await?
            .and_then(|c| c.email)
            .unwrap_or_else(|| m.token_email.clone());
        tx.enqueue_mail(&NewMail {
            dedupe_key: &m.dedupe_key,
            kind: m.kind,
            customer_id: Some(m.customer_id),
            user_id: Some(&m.user_id),
            to_addr: &to,
            subject: &m.subject,
            body: &m.body,
            now: m.now,
        })
        .await?;
    }
    tx.commit().await
}

/// A token row from [`TOKEN_COLUMNS`], in their order.
fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRow> {
    Ok(TokenRow {
        id: r.get(0)?,
        customer_id: r.get(1)?,
        user_id: r.get(2)?,
        service_id: r.get(3)?,
        state: r
            .get::<_, String>(4)?
            .parse()
            .map_err(|e: crate::domain::DomainError| {
                rusqlite::Error::FromSqlConversionFailure(
                    4,
                    rusqlite::types::Type::Text,
                    Box::new(e),
                )
            })?,
        email: r.get(5)?,
        algorithm: r.get(6)?,
        digits: r.get(7)?,
        period: r.get(8)?,
        secret_key_id: r.get(9)?,
        secret_enc: r.get(10)?,
        secret_format: r.get(11)?,
        activation_password_hash: r.get(12)?,
        activation_failures: r.get(13)?,
        issued_at: r.get(14)?,
        expires_at: r.get(15)?,
        link_opened_at: r.get(16)?,
        provisioned_at: r.get(17)?,
        activated_at: r.get(18)?,
        deactivated_at: r.get(19)?,
        revoked_at: r.get(20)?,
        voided_at: r.get(21)?,
        void_reason: r.get(22)?,
        last_step: r.get(23)?,
        drift: r.get(24)?,
        failures: r.get(25)?,
        locked_at: r.get(26)?,
        last_used_at: r.get(27)?,
        device: r.get(28)?,
        last_tx_step: r.get(29)?,
    })
}

/// The file of a SQLite URL, or None for an in-memory database.
pub(super) fn sqlite_file(url: &str) -> Option<PathBuf> {
    use std::str::FromStr as _;
    if url.contains("mode=memory") {
        return None;
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::from_str(url).ok()?;
    let name = opts.get_filename();
    let text = name.to_string_lossy();
    if text.is_empty() || text.starts_with(":memory:") || text.starts_with("file:") {
        return None;
    }
    Some(name.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQLite writer's compare-and-set holds only where every column the decision read is
    /// still as read (DESIGN §5: a step accepted elsewhere meanwhile is never accepted again;
    /// a failure counted elsewhere is not lost). Each stale expectation is tried alone.
    #[test]
    fn the_single_row_compare_and_set_refuses_every_stale_read() {
        // Both forms: the one that writes a new state and the one for a state kept.
        for statement in [
            UPDATE_TOKEN_IF_UNCHANGED,
            UPDATE_TOKEN_SAME_STATE_IF_UNCHANGED,
        ] {
            let conn = rusqlite::Connection::open_in_memory().unwrap();
            conn.execute_batch(
                "CREATE TABLE tokens (id INTEGER PRIMARY KEY, last_step INTEGER, drift INTEGER, \
                 failures INTEGER, locked_at INTEGER, state TEXT, last_used_at INTEGER, \
                 activated_at INTEGER, deactivated_at INTEGER, last_tx_step INTEGER); \
                 INSERT INTO tokens VALUES (1, 100, 0, 2, NULL, 'active', 5, 1, NULL, 7);",
            )
            .unwrap();
            // (last_step, failures, state, locked_at, last_tx_step) as read.
            type Read = (i64, i64, &'static str, Option<i64>, i64);
            let update = |read: Read| {
                conn.execute(
                    statement,
                    params![
                        101,
                        0,
                        0,
                        None::<i64>,
                        "active",
                        9,
                        1,
                        None::<i64>,
                        read.4,
                        1,
                        read.0,
                        read.1,
                        read.2,
                        read.3,
                        read.4
                    ],
                )
                .unwrap()
            };
            let fresh: Read = (100, 2, "active", None, 7);
            for stale in [
                (99, 2, "active", None, 7),
                (100, 1, "active", None, 7),
                (100, 2, "provisioned", None, 7),
                (100, 2, "active", Some(5), 7),
                (100, 2, "active", None, 6),
            ] {
                assert_eq!(update(stale), 0, "stale read {stale:?} must not land");
            }
            assert_eq!(update(fresh), 1);
            let row: (i64, i64, String) = conn
                .query_row("SELECT last_step, failures, state FROM tokens", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .unwrap();
            assert_eq!(row, (101, 0, "active".to_owned()), "{statement}");
            assert_eq!(update(fresh), 0, "the same read twice lands once");
        }
    }
}
