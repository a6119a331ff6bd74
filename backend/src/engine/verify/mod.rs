//! Verifying codes (DESIGN §5) through a group-commit batcher: many verifications share one
//! transaction, and each is answered only after that transaction is durable. A commit (an
//! fsync) per request would cap throughput at the disk's sync rate. [`plan`] decides one job
//! against a token's working state; [`batch`] runs one batch's transaction.

mod batch;
use batch::process_batch;
mod plan;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Mutex};
use zeroize::Zeroizing;

use protocol::UserId;

use crate::domain::{Outcome, Purpose, TokenState};
use crate::store::StoreError;

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
    user_id: String,
    code: Zeroizing<String>,
    purpose: Purpose,
    /// For [`Purpose::Transaction`]: the transfer as the bank received it.
    transaction: Option<protocol::ocra::Transaction>,
    actor: Actor,
    reply: oneshot::Sender<Result<VerifyReport>>,
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
                user_id: user_id.as_str().to_owned(),
                code,
                purpose,
                transaction,
                actor,
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

pub(crate) async fn run_worker(
    inner: Arc<Inner>,
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    max_batch: usize,
) {
    let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
    // The worker keeps its own connection: taking one from the pool per batch costs a task
    // hop on return and a wait on acquire, which at thousands of batches a second is most of a
    // batch's time.
    let mut writer: Option<sqlx::AnyConnection> = None;
    loop {
        {
            let mut rx = rx.lock().await;
            match rx.recv().await {
                Some(job) => batch.push(job),
                None => return,
            }
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
        }
        // One lock order for every transaction, so concurrent batches on PostgreSQL never
        // deadlock on each other's rows.
        batch.sort_by(|a, b| a.user_id.cmp(&b.user_id));
        let started = Instant::now();
        let mut connect_error = None;
        if writer.is_none() {
            match inner.store.dedicated_writer().await {
                Ok(conn) => writer = Some(conn),
                Err(e) => connect_error = Some(e),
            }
        }
        let results = match (writer.as_mut(), connect_error) {
            (Some(conn), _) => process_batch(&inner, conn, &batch).await,
            // The real cause (refused, timed out, ...) goes to the log below.
            (None, Some(e)) => Err(e),
            (None, None) => Err(StoreError::Unavailable(sqlx::Error::PoolClosed)),
        };
        if results.is_err() {
            // The connection may be broken; take a fresh one for the next batch.
            writer = None;
        }
        inner.metrics.observe_batch(batch.len(), started.elapsed());
        match results {
            Ok(results) => {
                for (job, res) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(res);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, size = batch.len(), "verification batch failed; answering unavailable");
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(EngineError::Unavailable));
                }
                // Do not spin on a database that is down.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}
