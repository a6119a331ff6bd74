//! The verification batch writer: one store interface ([`BatchWriter::run`]) for both
//! databases. The engine supplies the decisions ([`BatchLogic`]); the writer reads the rows,
//! applies the compare-and-set updates, writes the audit events and notices of the decisions
//! whose updates landed and commits, durable before it returns: on SQLite in one
//! transaction, on PostgreSQL in two statements per round and no transaction held across a
//! round trip (`run_pg`).
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
///
/// A batch goes in rounds. Each round the store reads the pending tokens' rows, the logic
/// decides ([`BatchLogic::decide`]) and hands over what those decisions write
/// ([`BatchLogic::writes`]), and the store compare-and-sets the updates and writes the events
/// of the tokens whose update landed (and of jobs that update nothing), then says which
/// landed ([`BatchLogic::landed`]). A round repeats only for tokens whose row another process
/// changed between the read and the write.
pub trait BatchLogic: Send + 'static {
    /// User IDs whose jobs still need a decision, sorted (empty when all have landed).
    fn pending(&self) -> Vec<String>;
    /// Decide the pending jobs against their rows as read now; the updates to compare-and-set.
    fn decide(&mut self, rows: Vec<TokenRow>) -> Vec<TokenUpdate>;
    /// The audit events and notices of the jobs just decided, each with the token whose update
    /// it waits for: written only if that update lands (otherwise the job is decided again);
    /// `None`, written in any case. Jobs still pending after the last round (rows that kept
    /// changing) are answered "unavailable" and write nothing.
    fn writes(&mut self) -> RoundWrites;
    /// Which of the last round's updates landed (the others' tokens are decided again). Only
    /// here do the round's decisions become final: a round whose write fails never gets here,
    /// and its jobs stay pending (answered "unavailable": nothing of them was written).
    fn landed(&mut self, landed: &HashSet<i64>);
}

/// What one round of a batch writes besides the token rows (see [`BatchLogic::writes`]).
#[derive(Default)]
pub struct RoundWrites {
    pub audits: Vec<(Option<i64>, PendingAudit)>,
    pub mails: Vec<(Option<i64>, NoticeMail)>,
}

impl RoundWrites {
    /// Keep only the writes whose token's update landed (or that wait for none).
    fn keep_landed(self, landed: &HashSet<i64>) -> (Vec<PendingAudit>, Vec<NoticeMail>) {
        let holds = |t: &Option<i64>| t.is_none_or(|id| landed.contains(&id));
        (
            self.audits
                .into_iter()
                .filter_map(|(t, a)| holds(&t).then_some(a))
                .collect(),
            self.mails
                .into_iter()
                .filter_map(|(t, m)| holds(&t).then_some(m))
                .collect(),
        )
    }
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
    conn: Option<WriterConn>,
}

/// A batch writer's connection: native on PostgreSQL (typed array parameters), `Any` on an
/// in-memory SQLite.
enum WriterConn {
    Any(sqlx::AnyConnection),
    Pg(sqlx::PgConnection),
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
    /// Run one batch and commit it (durably) before returning the logic, which holds the
    /// decisions: on SQLite in one transaction, on PostgreSQL two statements per round, each
    /// its own transaction (`run_pg`). If a later round fails on PostgreSQL, the earlier
    /// rounds are committed: the logic comes back with the failed round's jobs still pending.
    ///
    /// # Errors
    /// Database unavailable (the real cause); nothing of the batch was written.
    pub async fn run<L: BatchLogic>(&mut self, logic: L) -> Result<L> {
        if self.conn.is_none() {
            self.conn = Some(match self.store.kind {
                DbKind::Postgres => {
                    let mut conn = self.store.dedicated_pg_writer().await?;
                    // The batch's two statements find tokens by key, and the server keeps
                    // their plans for the connection's life. Planned while the table was
                    // small (a new database: the first verifications come while it fills),
                    // the plan is a sequential scan, kept until an ANALYZE happens to
                    // invalidate it: in half the load runs every batch scanned the whole table
                    // (issue 15, stop 18). Index access is right at every size, so this
                    // session never scans tokens in full.
                    sqlx::query("SET enable_seqscan = off")
                        .execute(&mut conn)
                        .await?;
                    // Planned once: with typed arrays the planner sees each batch's size, and
                    // would plan every batch anew (a custom plan) instead of keeping one.
                    sqlx::query("SET plan_cache_mode = force_generic_plan")
                        .execute(&mut conn)
                        .await?;
                    WriterConn::Pg(conn)
                }
                DbKind::Sqlite => WriterConn::Any(self.store.dedicated_writer().await?),
            });
        }
        let Some(c) = self.conn.as_mut() else {
            return Err(unavailable("no writer connection"));
        };
        let mut logic = logic;
        let res = match c {
            WriterConn::Pg(c) => run_pg(c, &mut logic).await,
            WriterConn::Any(c) => run_sqlx(&self.store, c, &mut logic)
                .await
                .map_err(|e| (e, 0)),
        };
        let Err((e, round)) = res else {
            return Ok(logic);
        };
        // The connection may be broken; take a fresh one for the next batch.
        self.conn = None;
        if let StoreError::Unavailable(cause) = &e {
            if super::is_write_failure(self.store.kind, cause) {
                self.store.note_commit_failure();
            }
        }
        if round == 0 {
            return Err(e);
        }
        // Earlier rounds are committed: their jobs keep their answers.
        tracing::warn!(error = %e, round, "verification batch: a later round failed; its jobs answer unavailable");
        Ok(logic)
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
        let writes = logic.writes();
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
        let (audits, mails) = writes.keep_landed(&landed);
        write_events_sqlite(&tx, &audits, &mails)?;
    }
    tx.commit()
}

/// A round's audit events and notices, on the writer thread's transaction.
fn write_events_sqlite(
    tx: &rusqlite::Transaction<'_>,
    audits: &[PendingAudit],
    mails: &[NoticeMail],
) -> rusqlite::Result<()> {
    {
        let mut ins = tx.prepare_cached(INSERT_AUDIT)?;
        for a in audits {
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
    for m in mails {
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
    Ok(())
}

/// One batch over a sqlx connection on SQLite (an in-memory database): one transaction, as on
/// the writer thread.
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
        let rows = tx.read_tokens(&refs).await?;
        let updates = logic.decide(rows);
        let writes = logic.writes();
        let landed = tx.apply_token_updates(&updates).await?;
        logic.landed(&landed);
        let (audits, mails) = writes.keep_landed(&landed);
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
    }
    tx.commit().await
}

/// A batch on PostgreSQL that failed in its `.1`th round: the rounds before it are committed
/// (and their jobs answered); the jobs still pending are answered "unavailable".
type PgFailure = (StoreError, usize);

/// One batch on PostgreSQL. No transaction spans a round trip: each round is two statements,
/// each its own transaction. The first reads the pending tokens' rows; the server decides;
/// the second ([`PG_WRITE_ROUND`]) compare-and-sets the updates and, in the same statement,
/// inserts the audit events and notices of the tokens whose update landed and of the jobs
/// that update nothing. So a batch costs two round trips instead of five (BEGIN, SELECT ...
/// FOR UPDATE, UPDATE, INSERT, COMMIT), no row stays locked while the server decides, and the
/// SQL is the same for every batch (the values travel as typed arrays), so each statement is
/// prepared once per connection, not once per batch size. The compare-and-set is what keeps a
/// code single-use across workers and processes: a row changed since it was read does not
/// match, and its jobs are decided again in the next round.
async fn run_pg<L: BatchLogic>(
    conn: &mut sqlx::PgConnection,
    logic: &mut L,
) -> std::result::Result<(), PgFailure> {
    for round in 0..ROUNDS {
        let ids = logic.pending();
        if ids.is_empty() {
            break;
        }
        pg_round(conn, logic, &ids).await.map_err(|e| (e, round))?;
    }
    Ok(())
}

/// Tries of a round's write when PostgreSQL broke a deadlock by aborting it (two statements
/// locking the same tokens in opposite orders). The statement is atomic and compare-and-set,
/// so running it again is safe.
const PG_DEADLOCK_TRIES: usize = 3;

async fn pg_round<L: BatchLogic>(
    conn: &mut sqlx::PgConnection,
    logic: &mut L,
    ids: &[String],
) -> Result<()> {
    let rows = sqlx::query_as::<_, TokenRow>(&PG_READ_TOKENS)
        .bind(ids)
        .fetch_all(&mut *conn)
        .await?;
    let updates = logic.decide(rows);
    let writes = logic.writes();
    if updates.is_empty() && writes.audits.is_empty() && writes.mails.is_empty() {
        logic.landed(&HashSet::new());
        return Ok(());
    }
    let mut tries = 0;
    let landed = loop {
        tries += 1;
        match pg_write_round(&updates, &writes)
            .fetch_all(&mut *conn)
            .await
        {
            Ok(ids) => break ids.into_iter().map(|(id,)| id).collect::<HashSet<i64>>(),
            Err(sqlx::Error::Database(d))
                if tries < PG_DEADLOCK_TRIES && d.code().as_deref() == Some("40P01") =>
            {
                tracing::debug!("verification batch: deadlock broken by PostgreSQL; writing again");
            }
            Err(e) => return Err(e.into()),
        }
    };
    logic.landed(&landed);
    Ok(())
}

/// The rows of the pending tokens (no lock: the write is a compare-and-set), one probe of the
/// `user_id` index per token. The `LIMIT 1` (the column is unique) keeps the planner from
/// flattening the lateral subquery into a join it could run as a scan of the whole table; with
/// `user_id = ANY(array)` it took a bitmap scan for every batch. `$1` is the user IDs, a
/// `text[]`.
static PG_READ_TOKENS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT t.* FROM unnest($1::text[]) AS j(uid) \
         CROSS JOIN LATERAL (SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_id = j.uid LIMIT 1) AS t"
    )
});

/// One round's writes on PostgreSQL, in one statement (one transaction): the compare-and-set
/// of every update ($1–$15; each lands only where the row is still exactly as read: last step,
/// transaction step, failures, state, lock), then the audit events ($16–$24) and notices
/// ($25–$33) whose token's update landed or that wait for none, in the order given. Returns
/// the ids that landed.
///
/// The values travel as typed arrays, one per column, in PostgreSQL's binary format: nothing
/// to parse. They were JSON text before (sqlx's `Any` driver has no arrays), and parsing it
/// was 16 % of PostgreSQL's CPU under load, still 11 % as `json` (issue 15, stops 20–21).
/// The writer's session plans it once (`plan_cache_mode = force_generic_plan`, see
/// [`BatchWriter::run`]): seeing the arrays' lengths, PostgreSQL otherwise kept planning each
/// batch anew, and c=32 lost 7 % where c=128 gained 7 % (three pairs each; with the generic
/// plan +6 % and +11 %).
///
/// The tokens are found through `id = ANY($1)`, not only by the join with the rows: the
/// planner takes a set-returning function for 100 rows, so on a table of a few thousand
/// tokens it chose a sequential scan and a hash join for every batch (stop 18). With the
/// array it scans the primary key, which also locks the rows in id order in every statement.
const PG_WRITE_ROUND: &str = "WITH v AS ( \
        SELECT * FROM unnest($1::int8[], $2::int8[], $3::int8[], $4::int8[], $5::int8[], \
            $6::text[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[], \
            $12::int8[], $13::text[], $14::int8[], $15::int8[]) \
        AS v(id, last_step, drift, failures, locked_at, state, last_used_at, activated_at, \
            deactivated_at, last_tx_step, x_last_step, x_failures, x_state, x_locked_at, \
            x_last_tx_step) \
    ), u AS ( \
        UPDATE tokens t SET last_step = v.last_step, drift = v.drift, failures = v.failures, \
            locked_at = v.locked_at, state = v.state, last_used_at = v.last_used_at, \
            activated_at = v.activated_at, deactivated_at = v.deactivated_at, \
            last_tx_step = v.last_tx_step \
        FROM v \
        WHERE t.id = ANY($1::int8[]) \
          AND t.id = v.id AND t.last_step = v.x_last_step AND t.failures = v.x_failures \
          AND t.state = v.x_state AND t.locked_at IS NOT DISTINCT FROM v.x_locked_at \
          AND t.last_tx_step = v.x_last_tx_step \
        RETURNING t.id \
    ), a AS ( \
        INSERT INTO audit_events (at, actor, customer_id, user_id, action, outcome, ip, detail) \
        SELECT e.at, e.actor, e.customer_id, e.user_id, e.action, e.outcome, e.ip, e.detail \
        FROM unnest($16::int8[], $17::int8[], $18::text[], $19::int8[], $20::text[], \
            $21::text[], $22::text[], $23::text[], $24::text[]) WITH ORDINALITY \
            AS e(token, at, actor, customer_id, user_id, action, outcome, ip, detail, n) \
        WHERE e.token IS NULL OR e.token IN (SELECT id FROM u) \
        ORDER BY e.n \
    ), m AS ( \
        INSERT INTO mail_outbox (dedupe_key, kind, customer_id, user_id, to_addr, subject, body, \
            created_at) \
        SELECT e.dedupe_key, e.kind, e.customer_id, e.user_id, \
            COALESCE((SELECT c.email FROM customers c WHERE c.id = e.customer_id), e.token_email), \
            e.subject, e.body, e.now \
        FROM unnest($25::int8[], $26::text[], $27::text[], $28::int8[], $29::text[], \
            $30::text[], $31::text[], $32::text[], $33::int8[]) WITH ORDINALITY \
            AS e(token, dedupe_key, kind, customer_id, user_id, token_email, subject, body, now, n) \
        WHERE e.token IS NULL OR e.token IN (SELECT id FROM u) \
        ORDER BY e.n \
        ON CONFLICT (dedupe_key) DO NOTHING \
    ) \
    SELECT id FROM u";

/// [`PG_WRITE_ROUND`] with a round's updates, audit events and notices bound, column by column.
fn pg_write_round<'a>(
    updates: &'a [TokenUpdate],
    w: &'a RoundWrites,
) -> sqlx::query::QueryAs<'a, sqlx::Postgres, (i64,), sqlx::postgres::PgArguments> {
    fn col<'a, T: 'a, V>(rows: &'a [T], f: impl Fn(&'a T) -> V) -> Vec<V> {
        rows.iter().map(f).collect()
    }
    let a = &w.audits;
    let m = &w.mails;
    sqlx::query_as(PG_WRITE_ROUND)
        .bind(col(updates, |u| u.id))
        .bind(col(updates, |u| u.last_step))
        .bind(col(updates, |u| u.drift))
        .bind(col(updates, |u| u.failures))
        .bind(col(updates, |u| u.locked_at))
        .bind(col(updates, |u| u.state.as_str()))
        .bind(col(updates, |u| u.last_used_at))
        .bind(col(updates, |u| u.activated_at))
        .bind(col(updates, |u| u.deactivated_at))
        .bind(col(updates, |u| u.last_tx_step))
        .bind(col(updates, |u| u.expect_last_step))
        .bind(col(updates, |u| u.expect_failures))
        .bind(col(updates, |u| u.expect_state.as_str()))
        .bind(col(updates, |u| u.expect_locked_at))
        .bind(col(updates, |u| u.expect_last_tx_step))
        .bind(col(a, |(token, _)| *token))
        .bind(col(a, |(_, e)| e.at))
        .bind(col(a, |(_, e)| e.actor.as_str()))
        .bind(col(a, |(_, e)| e.customer_id))
        .bind(col(a, |(_, e)| e.user_id.as_deref()))
        .bind(col(a, |(_, e)| e.action.as_str()))
        .bind(col(a, |(_, e)| e.outcome.as_str()))
        .bind(col(a, |(_, e)| e.ip.as_deref()))
        .bind(col(a, |(_, e)| e.detail.as_deref()))
        .bind(col(m, |(token, _)| *token))
        .bind(col(m, |(_, e)| e.dedupe_key.as_str()))
        .bind(col(m, |(_, e)| e.kind))
        .bind(col(m, |(_, e)| e.customer_id))
        .bind(col(m, |(_, e)| e.user_id.as_str()))
        .bind(col(m, |(_, e)| e.token_email.as_str()))
        .bind(col(m, |(_, e)| e.subject.as_str()))
        .bind(col(m, |(_, e)| e.body.as_str()))
        .bind(col(m, |(_, e)| e.now))
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
