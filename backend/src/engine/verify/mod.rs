//! Verifying codes (DESIGN §5) through a group-commit batcher: many verifications share one
//! transaction, and each is answered only after that transaction is durable. A commit (an
//! fsync) per request would cap throughput at the disk's sync rate. [`plan`] decides one job
//! against a token's working state; [`batch`] runs one batch's transaction.

mod batch;
use batch::Batch;
mod plan;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Mutex};
use zeroize::Zeroizing;

use protocol::UserId;

use crate::domain::{Outcome, Purpose, TokenState};

use super::{Actor, Engine, EngineError, Inner, Result};

/// The answer to a verification.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct VerifyReport {
    pub result: Outcome,
    /// Failures left before the lock, after an `invalid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempts_left: Option<u32>,
    /// The token's state after the verification.
    pub state: TokenState,
    pub locked: bool,
}

pub(crate) struct Job {
    request: Request,
    reply: oneshot::Sender<Result<VerifyReport>>,
}

/// What a verification asks, as the batch decides it.
pub(crate) struct Request {
    user_id: String,
    code: Zeroizing<String>,
    purpose: Purpose,
    /// For [`Purpose::Transaction`]: the transfer as the bank received it.
    transaction: Option<protocol::ocra::Transaction>,
    actor: Actor,
}

impl Engine {
    /// Verify a code for a purpose. Activation and deactivation move the lifecycle on success,
    /// atomically with the verification.
    ///
    /// # Errors
    /// A malformed user ID or code, an unknown token, or the database being unavailable. The
    /// verification outcomes themselves (invalid, replayed, locked, not active) are not errors.
    pub async fn verify(
        &self,
        user_id: &str,
        code: Zeroizing<String>,
        purpose: Purpose,
        actor: Actor,
    ) -> Result<VerifyReport> {
        if purpose == Purpose::Transaction {
            return Err(EngineError::Invalid {
                field: "transaction",
                code: "TRANSACTION_REQUIRED",
                message: "a transaction code is verified against its transaction".into(),
            });
        }
        self.submit(user_id, code, purpose, None, actor).await
    }

    /// Verify a transaction-authentication code (取引認証, issue 16): the 8-digit OCRA code
    /// the app computed for `transaction` (the transfer as the bank received it). Single use
    /// through the same group commit as TOTP codes; a wrong code counts toward the same lock.
    ///
    /// # Errors
    /// As [`Engine::verify`].
    pub async fn verify_transaction(
        &self,
        user_id: &str,
        code: Zeroizing<String>,
        transaction: protocol::ocra::Transaction,
        actor: Actor,
    ) -> Result<VerifyReport> {
        if code.len() != 8 || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EngineError::CodeFormat(8));
        }
        self.submit(
            user_id,
            code,
            Purpose::Transaction,
            Some(transaction),
            actor,
        )
        .await
    }

    async fn submit(
        &self,
        user_id: &str,
        code: Zeroizing<String>,
        purpose: Purpose,
        transaction: Option<protocol::ocra::Transaction>,
        actor: Actor,
    ) -> Result<VerifyReport> {
        let started = Instant::now();
        let user_id = UserId::parse(user_id)?;
        if !matches!(code.len(), 6 | 8) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EngineError::CodeFormat(self.inner.cfg.params.digits));
        }
        let (reply, rx) = oneshot::channel();
        self.jobs
            .send(Job {
                request: Request {
                    user_id: user_id.as_str().to_owned(),
                    code,
                    purpose,
                    transaction,
                    actor,
                },
                reply,
            })
            .await
            .map_err(|_| EngineError::Unavailable)?;
        let res = rx.await.map_err(|_| EngineError::Unavailable)?;
        match &res {
            Ok(r) => {
                let m = &self.inner.metrics;
                m.observe_verify(r.result.as_str(), started.elapsed());
                // This verification locked the token (later refusals are `locked` too).
                if r.result == Outcome::Locked && r.attempts_left == Some(0) {
                    m.observe_lock();
                }
            }
            Err(e) => self
                .inner
                .metrics
                .observe_verify(e.code(), started.elapsed()),
        }
        res
    }
}

/// One verification worker. `workers` is how many draw from the same queue: with one, the
/// next batch is what queued while the last one committed; with several, a worker that has
/// just finished gathers (see [`gather`]), or it would commit the one or two jobs that arrived
/// as it became free.
///
/// On a SQLite file the worker is the store's writer thread, which takes its batches from the
/// queue itself ([`Feed`]); elsewhere it is this task, with a connection of its own.
pub(crate) async fn run_worker(
    inner: Arc<Inner>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    max_batch: usize,
    workers: usize,
) {
    let feed = Feed {
        inner: inner.clone(),
        rx,
        max_batch,
        replies: Vec::with_capacity(max_batch),
        started: Instant::now(),
    };
    let Err(mut feed) = inner.store.spawn_batch_thread(feed) else {
        return;
    };
    // The worker keeps its own writer (a connection of its own): taking a connection from the
    // pool per batch costs a task hop on return and a wait on acquire, which at thousands of
    // batches a second is most of a batch's time. While a batch commits, the next one gathers
    // in the channel.
    let mut writer = inner.store.batch_writer();
    // The last batch: how many it answered, and how long it took.
    let mut last = (0usize, Duration::ZERO);
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    loop {
        {
            let mut rx = feed.rx.lock().await;
            match rx.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
            drain(&mut rx, &mut batch, max_batch);
            if workers > 1 {
                gather(&mut rx, &mut batch, max_batch, last).await;
            }
        }
        let logic = feed.start(&mut batch);
        let size = feed.replies.len();
        let res = writer.run(logic).await;
        last = (size, feed.started.elapsed());
        if feed.answer(res).is_err() {
            // Do not spin on a database that is down.
            tokio::time::sleep(FAILED_PAUSE).await;
        }
    }
}

/// After a batch failed, the next waits this long (the database is likely down).
const FAILED_PAUSE: Duration = Duration::from_millis(50);

/// The verification queue as the store's [`BatchFeed`], and the answering of a batch's
/// callers (the same for the writer thread and the async worker).
struct Feed {
    inner: Arc<Inner>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    max_batch: usize,
    /// The callers of the batch in flight, in its job order.
    replies: Vec<oneshot::Sender<Result<VerifyReport>>>,
    started: Instant,
}

impl Feed {
    /// The batch of `jobs` (taken from it), its callers kept to answer.
    fn start(&mut self, jobs: &mut Vec<Job>) -> Batch {
        // Grouped by token, each token's jobs in arrival order (a stable sort).
        jobs.sort_by(|a, b| a.request.user_id.cmp(&b.request.user_id));
        self.started = Instant::now();
        let (requests, replies): (Vec<Request>, Vec<_>) =
            jobs.drain(..).map(|j| (j.request, j.reply)).unzip();
        self.replies = replies;
        Batch::new(self.inner.clone(), requests)
    }

    /// Answer the batch's callers: each its decision, or all "unavailable" (Err) when the
    /// batch was not written.
    fn answer(&mut self, res: crate::store::Result<Batch>) -> std::result::Result<(), ()> {
        let size = self.replies.len();
        self.inner
            .metrics
            .observe_batch(size, self.started.elapsed());
        match res {
            Ok(done) => {
                for (reply, res) in self.replies.drain(..).zip(done.answers()) {
                    let _ = reply.send(res);
                }
                Ok(())
            }
            Err(e) => {
                // The real cause (refused, timed out, disk full, ...) goes to the log.
                tracing::warn!(error = %e, size, "verification batch failed; answering unavailable");
                for reply in self.replies.drain(..) {
                    let _ = reply.send(Err(EngineError::Unavailable));
                }
                Err(())
            }
        }
    }
}

impl crate::store::BatchFeed for Feed {
    type Logic = Batch;

    fn next_batch(&mut self) -> Option<Batch> {
        let mut jobs = Vec::with_capacity(self.max_batch);
        {
            let mut rx = self.rx.blocking_lock();
            jobs.push(rx.blocking_recv()?);
            drain(&mut rx, &mut jobs, self.max_batch);
        }
        Some(self.start(&mut jobs))
    }

    fn finished(&mut self, res: crate::store::Result<Batch>) {
        if self.answer(res).is_err() {
            std::thread::sleep(FAILED_PAUSE);
        }
    }
}

/// Take what is queued, up to a full batch.
fn drain(rx: &mut mpsc::Receiver<Job>, batch: &mut Vec<Job>, max_batch: usize) {
    while batch.len() < max_batch {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// A batch waits at most this long for the verifications still on their way.
const MAX_GATHER: Duration = Duration::from_millis(2);

/// Group commit's gathering (PostgreSQL's `commit_delay` idea, sized by what was just seen),
/// for several workers on one queue: the callers answered by the last batch usually come back
/// at once with their next code, but a worker that starts the next commit the moment the last
/// one ends takes only the first few of them. So when the last batch answered more than one
/// caller and took long enough for a wait to pay (a slow commit), the next one waits up to a
/// quarter of that time for those callers to come back, besides what queued meanwhile.
///
/// Measured A/B (issue 15, 2026-11-27): on PostgreSQL (four workers) the wait is worth 11–14 %
/// of verifications/s; with SQLite's one worker it cost 13–17 %: the callers of the last batch
/// come back over the next commit's time, not within the wait, so the wait only delayed it.
async fn gather(
    rx: &mut mpsc::Receiver<Job>,
    batch: &mut Vec<Job>,
    max_batch: usize,
    (last_size, last_took): (usize, Duration),
) {
    if last_size < 2 || last_took < Duration::from_millis(1) {
        return;
    }
    let want = (batch.len() + last_size).min(max_batch);
    let budget = (last_took / 4).min(MAX_GATHER);
    let started = Instant::now();
    while batch.len() < want {
        let Some(left) = budget.checked_sub(started.elapsed()) else {
            break;
        };
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(job)) => {
                batch.push(job);
                drain(rx, batch, max_batch);
            }
            // Closed (the batch in hand is still answered) or waited long enough.
            Ok(None) | Err(_) => break,
        }
    }
}
