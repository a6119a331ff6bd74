//! Password hashing (Argon2id) off the async threads, and the throttled password check every
//! customer password and every staff login goes through (DESIGN §5: the one lockout rule of
//! `domain::throttle`, applied by one compare-and-set in the store: [`count_attempt`]).
//!
//! Argon2 costs memory (19 MiB a hash by default): hashing runs on one thread per core behind
//! [`HashGate`], with a short queue; beyond it the answer is "unavailable, retry", so a flood of
//! unauthenticated login attempts cannot grow the process without bound.

use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

use crate::domain::{Attempt, DomainError, PasswordAt, Throttle, ThrottleState};
use crate::store::{CustomerRow, NewAudit, ThrottleKey, Tx};

use super::{now_i64, Actor, Engine, EngineError, KnownDevice, PasswordCheck, Result};

/// Bounds password hashing: a few threads of its own do every hash, with a short queue in
/// front; beyond the queue the answer is "unavailable, retry" at once. Dedicated threads also
/// bound what the allocator keeps: each thread that ever ran an Argon2 hash keeps its 19 MiB
/// block in its own malloc arena, so hashing on tokio's blocking pool (up to 512 threads)
/// leaves the process hundreds of megabytes larger after a burst.
pub(crate) struct HashGate {
    jobs: std::sync::mpsc::SyncSender<HashJob>,
}

type HashJob = Box<dyn FnOnce() + Send>;

impl std::fmt::Debug for HashGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashGate")
    }
}

impl HashGate {
    /// `threads` hashing threads (they end when the gate is dropped), `queue` jobs waiting.
    pub(crate) fn new(threads: usize, queue: usize) -> HashGate {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<HashJob>(queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password hashing thread");
            }
        }
        HashGate { jobs }
    }

    /// Sized to the machine: one hashing thread per core (what bounds memory: 19 MiB a hash by
    /// default), 64 waiting per core (waiting costs no hash memory, only time).
    pub(crate) fn for_this_machine() -> HashGate {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        HashGate::new(cores, cores * 64)
    }

    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move || {
            // The request is gone (timed out, client left): its hash would only delay the
            // ones still waiting behind it.
            if tx.is_closed() {
                return;
            }
            let _ = tx.send(work());
        });
        match self.jobs.try_send(job) {
            Ok(()) => rx.await.map_err(|_| EngineError::Unavailable),
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                tracing::warn!("password hashing saturated; refusing with retry");
                Err(EngineError::Unavailable)
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Err(EngineError::Unavailable),
        }
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
    /// counted by [`count_attempt`] in the transaction that audits it, so a success never
    /// clears a lock it did not see and a burst cannot pass the lock.
    #[allow(clippy::too_many_arguments)] // reason: the audit wording differs per caller
    pub(crate) async fn throttled_password(
        &self,
        path: PasswordPath,
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
        self.record_password_attempt(path, c, right, actor, action, ok_outcome, fail_outcome)
            .await
    }

    /// Record one attempt at the customer's passwords whose rightness the caller has judged
    /// (one password, or the confirmation and mailed passwords together): the lockout rule's
    /// decision applied by a compare-and-set on the counters as read in the transaction that
    /// records it, with its audit events.
    #[allow(clippy::too_many_arguments)] // reason: the audit wording differs per caller
    pub(crate) async fn record_password_attempt(
        &self,
        path: PasswordPath,
        c: &CustomerRow,
        right: bool,
        actor: &Actor,
        action: &str,
        ok_outcome: Option<&str>,
        fail_outcome: &str,
    ) -> Result<PasswordCheck> {
        let now = now_i64(self.now());
        let throttle = self.policy().password_throttle();
        let device = match path {
            PasswordPath::KnownDeviceLogin(d) => Some(d.tag()),
            _ => None,
        };
        let audit = |outcome| NewAudit {
            customer_id: Some(c.id),
            detail: device
                .as_ref()
                .map(|d| serde_json::json!({ "known_device": d }).to_string()),
            ..actor.audit(action, outcome, now)
        };
        let until = |at: i64| throttle.until(at).unwrap_or(at);
        let keys = path.keys(c.id);
        for _ in 0..8 {
            let mut tx = self.store().begin().await?;
            let Some(counted) = count_attempt(&mut tx, &throttle, &keys, right, now).await? else {
                // Another attempt changed the counters meanwhile: decide again on theirs.
                continue;
            };
            let check = match counted.attempt {
                Attempt::Right => {
                    if let Some(o) = ok_outcome {
                        tx.audit(&audit(o)).await?;
                    }
                    if let Some(lifted) = path.at().lifts() {
                        let key = ThrottleKey::customer(lifted, c.id);
                        match lift_counter(&mut tx, &throttle, &key, now).await? {
                            None => continue,
                            Some(Some(failures)) => {
                                tx.audit(&NewAudit {
                                    action: "password_lock",
                                    detail: Some(
                                        serde_json::json!({ "by": "known_device", "known_device": device, "failures": failures })
                                            .to_string(),
                                    ),
                                    ..audit("cleared")
                                })
                                .await?;
                            }
                            Some(None) => {}
                        }
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
                        detail: Some(
                            // The count of the key that locked (the confirmation password's own,
                            // say, while the shared one was reset by a login).
                            {
                                let failures =
                                    counted.next.iter().map(|s| s.failures).max().unwrap_or(0);
                                match &device {
                                    Some(d) => serde_json::json!({ "failures": failures, "scope": "known_devices", "known_device": d }),
                                    None => serde_json::json!({ "failures": failures }),
                                }
                            }
                            .to_string(),
                        ),
                        ..audit("locked")
                    })
                    .await?;
                    PasswordCheck::Locked { until: until(now) }
                }
                Attempt::Locked { until: ends } => {
                    tx.audit(&audit("password_locked")).await?;
                    // The end of the lock that holds, on whichever key it is (the
                    // confirmation password's own, say, while the shared one is clear).
                    PasswordCheck::Locked {
                        until: ends.unwrap_or(now),
                    }
                }
            };
            tx.commit().await?;
            return Ok(check);
        }
        Err(EngineError::Unavailable)
    }
}

/// Which of a customer's passwords an attempt is at: `domain::throttle::PasswordAt` (what
/// each counts on, and what a right one lifts), with the known device a login was typed on
/// (`engine::devices`), whose audit events name it ([`KnownDevice::tag`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PasswordPath {
    Login,
    KnownDeviceLogin(KnownDevice),
    Confirmation,
}

impl PasswordPath {
    fn at(self) -> PasswordAt {
        match self {
            PasswordPath::Login => PasswordAt::Login,
            PasswordPath::KnownDeviceLogin(_) => PasswordAt::KnownDeviceLogin,
            PasswordPath::Confirmation => PasswordAt::Confirmation,
        }
    }

    fn keys(self, customer_id: i64) -> Vec<ThrottleKey> {
        self.at()
            .counts_on()
            .iter()
            .map(|&counter| ThrottleKey::customer(counter, customer_id))
            .collect()
    }
}

/// Clear `key`'s counter after a right password that lifts it (`PasswordAt::lifts`), in `tx`,
/// by a compare-and-set. `None`: a concurrent attempt changed it first (the caller tries
/// again); `Some(Some(failures))`: a lock that held was lifted; `Some(None)`: no lock held.
async fn lift_counter(
    tx: &mut Tx<'_>,
    throttle: &Throttle,
    key: &ThrottleKey,
    now: i64,
) -> Result<Option<Option<i64>>> {
    let seen = tx
        .throttle(key)
        .await?
        .ok_or(DomainError::UnknownCustomer)?;
    let (clear, lifted) = throttle.lift(seen, now);
    if seen != clear && !tx.set_throttle(key, seen, clear, now).await? {
        return Ok(None);
    }
    Ok(Some(lifted))
}

/// One attempt, counted under the lockout rule on each of its keys.
#[derive(Debug)]
pub(crate) struct Counted {
    /// What the rule decided for the attempt as a whole (`Throttle::attempt_all`).
    pub(crate) attempt: Attempt,
    /// Each key's counters as read, and as left; in the order of the keys.
    pub(crate) seen: Vec<ThrottleState>,
    pub(crate) next: Vec<ThrottleState>,
}

/// Count one attempt (`right` or not) in `tx` under `throttle` on every one of `keys` (a
/// customer's passwords; a staff account and the address it is tried from): read each key's
/// counters, let `domain::throttle` decide on them, and write each change with a
/// compare-and-set on the counters as read. `None`: a concurrent attempt changed a counter
/// first; the caller drops `tx` (nothing of this attempt was written) and tries again in a
/// new transaction, deciding on the counters that attempt left. The caller commits `tx` with
/// its audit events, so an attempt's count and its audit stand or fall together.
///
/// # Errors
/// `UNKNOWN_CUSTOMER` for a customer key without its customer; the database is unavailable.
pub(crate) async fn count_attempt(
    tx: &mut Tx<'_>,
    throttle: &Throttle,
    keys: &[ThrottleKey],
    right: bool,
    now: i64,
) -> Result<Option<Counted>> {
    let mut seen = Vec::with_capacity(keys.len());
    for key in keys {
        seen.push(
            tx.throttle(key)
                .await?
                .ok_or(DomainError::UnknownCustomer)?,
        );
    }
    let (attempt, next) = throttle.attempt_all(&seen, right, now);
    for ((key, s), n) in keys.iter().zip(&seen).zip(&next) {
        if n != s && !tx.set_throttle(key, *s, *n, now).await? {
            return Ok(None);
        }
    }
    Ok(Some(Counted {
        attempt,
        seen,
        next,
    }))
}
