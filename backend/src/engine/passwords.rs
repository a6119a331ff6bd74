//! Password hashing (Argon2id) off the async threads, and the throttled password check every
//! customer password goes through (DESIGN §5: the one lockout rule of `domain::throttle`,
//! applied by one compare-and-set in the store).
//!
//! Argon2 costs memory (19 MiB a hash by default): hashing runs at most one per core at a time
//! behind [`HashGate`], with a short queue; beyond it the answer is "unavailable, retry", so a
//! flood of unauthenticated login attempts cannot grow the process without bound.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::domain::{Attempt, DomainError};
use crate::store::{CustomerRow, NewAudit};

use super::{now_i64, Actor, Engine, EngineError, PasswordCheck, Result};

/// Bounds concurrent password hashing: `permits` at once, `queue` more waiting, the rest
/// refused at once.
#[derive(Debug)]
pub(crate) struct HashGate {
    permits: Arc<Semaphore>,
    /// Hashes running or waiting.
    waiting: AtomicUsize,
    /// Running and waiting together, at most.
    limit: usize,
}

impl HashGate {
    pub(crate) fn new(permits: usize, queue: usize) -> HashGate {
        HashGate {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            waiting: AtomicUsize::new(0),
            limit: permits.max(1) + queue,
        }
    }

    /// Sized to the machine: one hash per core, eight waiting per core.
    pub(crate) fn for_this_machine() -> HashGate {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        HashGate::new(cores, cores * 8)
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.limit {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("password hashing saturated; refusing with retry");
            return Err(EngineError::Unavailable);
        }
        let permit = self.permits.clone().acquire_owned().await;
        let res = match permit {
            Ok(permit) => tokio::task::spawn_blocking(move || {
                let out = work();
                drop(permit);
                out
            })
            .await
            .map_err(|e| EngineError::Internal(e.into())),
            Err(_) => Err(EngineError::Unavailable),
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        res
    }
}

impl Engine {
    /// Hash a password with Argon2id, off the async threads.
    ///
    /// # Errors
    /// The hasher failed, or hashing is saturated (`Unavailable`).
    pub async fn hash_password(&self, password: Zeroizing<String>) -> Result<String> {
        let hasher = self.inner.hasher.clone();
        self.inner
            .hash_gate
            .run(move || hasher.hash(&password))
            .await?
            .map_err(EngineError::from)
    }

    /// Check a password against its stored hash, off the async threads.
    pub(crate) async fn password_ok(
        &self,
        password: Zeroizing<String>,
        phc: String,
    ) -> Result<bool> {
        let hasher = self.inner.hasher.clone();
        self.inner
            .hash_gate
            .run(move || hasher.verify(&password, &phc))
            .await
    }

    /// The hash of a random password under the configured cost, checked in place of a real one
    /// when a login ID is unknown, so the answer takes as long as for a known one.
    pub(crate) async fn dummy_phc(&self) -> Result<String> {
        static DUMMY_PHC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        if let Some(p) = DUMMY_PHC.get() {
            return Ok(p.clone());
        }
        let p = self
            .hash_password(Zeroizing::new(hex::encode(rand::random::<[u8; 16]>())))
            .await?;
        Ok(DUMMY_PHC.get_or_init(|| p).clone())
    }

    /// Check one of a customer's passwords under the password lockout rule
    /// (`Policy::password_throttle`): while locked every attempt is refused, the right one
    /// included (audited as `password_locked`), after the same Argon2 work; the outcome is
    /// applied by a compare-and-set on the counters as read in the transaction that records
    /// it, so a success never clears a lock it did not see and a burst cannot pass the lock.
    #[allow(clippy::too_many_arguments)] // reason: the audit wording differs per caller
    pub(crate) async fn throttled_password(
        &self,
        c: &CustomerRow,
        password: Zeroizing<String>,
        phc: String,
        actor: &Actor,
        action: &str,
        ok_outcome: Option<&str>,
        fail_outcome: &str,
    ) -> Result<PasswordCheck> {
        // Locked already: the same Argon2 work as an unlocked check, its answer unused, so a
        // locked account does not answer faster than one that is not.
        let right = self.password_ok(password, phc).await?;
        self.record_password_attempt(c, right, actor, action, ok_outcome, fail_outcome)
            .await
    }

    /// Record one attempt at the customer's passwords whose rightness the caller has judged
    /// (one password, or the confirmation and mailed passwords together): the lockout rule's
    /// decision applied by a compare-and-set on the counters as read in the transaction that
    /// records it, with its audit events.
    pub(crate) async fn record_password_attempt(
        &self,
        c: &CustomerRow,
        right: bool,
        actor: &Actor,
        action: &str,
        ok_outcome: Option<&str>,
        fail_outcome: &str,
    ) -> Result<PasswordCheck> {
        let now = now_i64(self.now());
        let throttle = self.policy().password_throttle();
        let audit = |outcome| NewAudit {
            customer_id: Some(c.id),
            ..actor.audit(action, outcome, now)
        };
        let until = |at: i64| throttle.until(at).unwrap_or(at);
        for _ in 0..8 {
            let mut tx = self.store().begin().await?;
            let seen = tx
                .customer_throttle(c.id)
                .await?
                .ok_or(DomainError::UnknownCustomer)?;
            let (attempt, next) = throttle.attempt(seen, right, now);
            if next != seen && !tx.set_customer_throttle(c.id, seen, next).await? {
                // Another attempt changed the counters meanwhile: decide again on theirs.
                continue;
            }
            let check = match attempt {
                Attempt::Right => {
                    if let Some(o) = ok_outcome {
                        tx.audit(&audit(o)).await?;
                    }
                    PasswordCheck::Right
                }
                Attempt::Wrong { .. } => {
                    tx.audit(&audit(fail_outcome)).await?;
                    PasswordCheck::Wrong
                }
                Attempt::JustLocked { .. } => {
                    tx.audit(&audit(fail_outcome)).await?;
                    tx.audit(&NewAudit {
                        action: "password_lock",
                        detail: Some(serde_json::json!({ "failures": next.failures }).to_string()),
                        ..audit("locked")
                    })
                    .await?;
                    PasswordCheck::Locked { until: until(now) }
                }
                Attempt::Locked { .. } => {
                    tx.audit(&audit("password_locked")).await?;
                    PasswordCheck::Locked {
                        until: until(seen.locked_at.unwrap_or(now)),
                    }
                }
            };
            tx.commit().await?;
            return Ok(check);
        }
        Err(EngineError::Unavailable)
    }
}
