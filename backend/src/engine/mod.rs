//! The OTP engine: the one API every transport (host API, screens, app API, staff console, CLI,
//! load tool) calls. It composes the pure domain rules with the store inside transactions, so
//! that each decision and its audit event commit together.
//!
//! One use case a file: `customers`, `issuance`, `lifecycle`, `provision`, `transfers`,
//! `keys`, `staff/`, and `verify/` (the group-commit batcher). Every rule they apply lives in
//! `domain`; every statement in `store`. Errors: `error`; how a token is shown: `views`.

mod credential;
mod customers;
mod devices;
mod error;
pub mod health;
mod issuance;
mod keys;
mod lifecycle;
mod mail_password;
mod pake;
mod passwords;
mod provision;
pub mod sessions;
pub mod staff;
mod transfers;
mod verify;
mod views;

pub use customers::{Login, Overview, PasswordCheck};
pub use devices::{KnownDevice, KNOWN_DEVICE_SECS};
pub use error::{EngineError, Result};
pub use issuance::Issued;
pub use lifecycle::LinkOpened;
pub use mail_password::{MailCheck, MailSend};
pub use pake::{EXCHANGE_TTL_SECS, SERVER_KEY_LABEL as PAKE_SERVER_KEY_LABEL};
pub use provision::Provisioned;
pub use transfers::{TransferDone, TransferRequest};
pub use verify::VerifyReport;
use views::status_of;
pub(crate) use views::token_view;
pub use views::{StaffTokenView, TokenStatus};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, Mutex};

use protocol::{Algorithm, ServiceId, TotpParams};

use crate::crypto::{Keyring, PasswordHasher};
use crate::domain::{DomainError, Policy, TokenSnapshot};
use crate::metrics::Metrics;
use crate::store::{NewAudit, Store, TokenRow};

/// A source of the current unix time; injected so tests control time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    }
}

/// A clock tests set by hand.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    pub fn new(t: u64) -> Self {
        ManualClock(AtomicU64::new(t))
    }
    pub fn set(&self, t: u64) {
        self.0.store(t, Ordering::SeqCst);
    }
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl<C: Clock> Clock for Arc<C> {
    fn now(&self) -> u64 {
        (**self).now()
    }
}

/// Who acts, and from where, for the audit trail.
#[derive(Debug, Clone)]
pub struct Actor {
    /// e.g. `host:ib`, `customer:12`, `app`, `staff:3`, `cli`.
    pub name: String,
    pub ip: Option<String>,
}

impl Actor {
    pub fn new(name: impl Into<String>, ip: Option<String>) -> Self {
        Actor {
            name: name.into(),
            ip,
        }
    }
    pub fn cli() -> Self {
        Actor::new("cli", None)
    }

    /// An audit event by this actor (DESIGN §5: who, what, when, from where, outcome); the
    /// customer, the token and the detail are added with struct update syntax.
    pub fn audit<'a>(&'a self, action: &'a str, outcome: &'a str, at: i64) -> NewAudit<'a> {
        NewAudit {
            at,
            actor: &self.name,
            action,
            outcome,
            ip: self.ip.as_deref(),
            ..NewAudit::default()
        }
    }
}

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub policy: Policy,
    pub params: TotpParams,
    pub service_id: ServiceId,
    /// Verifications per group commit, at most.
    pub max_batch: usize,
    /// Where the mailed download links point and how long they live.
    pub links: crate::mail::LinkSettings,
    /// Concurrent batch transactions (1 on SQLite: it has one writer).
    pub verify_workers: usize,
    /// Whether revoke and reprovision wait for a second supervisor.
    pub four_eyes: crate::domain::staff::FourEyes,
    /// The institution's name, self-reference and contact line, for the mails.
    pub bank: crate::config::BankConfig,
    /// Transfer limits and the transaction-authentication policy.
    pub transfers: crate::domain::transfer::TransferRules,
    /// Whether provisioning v1 is served (`app_api.allow_v1_setup`): only then does an
    /// issuance keep the v1 Argon2 hash of its activation password beside the OPAQUE record.
    pub v1_setup: bool,
}

struct Inner {
    store: Store,
    keys: Keyring,
    hasher: PasswordHasher,
    hash_gate: passwords::HashGate,
    clock: Box<dyn Clock>,
    cfg: EngineConfig,
    metrics: Metrics,
    /// The deployment's OPAQUE server key, once loaded (provisioning v2).
    pake_key: tokio::sync::OnceCell<Arc<protocol::pake::ServerKey>>,
    /// This process, among the servers that record their master keys (`keys.rs`).
    instance: String,
    /// When this engine last forgot old failed logins (`Engine::forget_old_login_failures`).
    login_failures_purged: std::sync::atomic::AtomicU64,
}

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    jobs: mpsc::Sender<verify::Job>,
}

/// Unix seconds as the store keeps them (saturating: no stored time is near the limit).
pub(crate) fn now_i64(t: u64) -> i64 {
    i64::try_from(t).unwrap_or(i64::MAX)
}

fn snapshot(row: &TokenRow) -> Result<TokenSnapshot> {
    let algorithm: Algorithm = row
        .algorithm
        .parse()
        .map_err(|_| DomainError::Corrupt(format!("algorithm {:?}", row.algorithm)))?;
    let params = TotpParams::new(
        algorithm,
        u8::try_from(row.digits).unwrap_or(0),
        u32::try_from(row.period).unwrap_or(0),
    )?;
    Ok(TokenSnapshot {
        state: row.state,
        params,
        last_step: u64::try_from(row.last_step).ok(),
        last_tx_step: u64::try_from(row.last_tx_step).ok(),
        drift: row.drift,
        locked_at: row.locked_at,
    })
}

impl Engine {
    /// Build the engine and start its verification workers on the current runtime.
    pub fn start(
        store: Store,
        keys: Keyring,
        hasher: PasswordHasher,
        clock: Box<dyn Clock>,
        cfg: EngineConfig,
        metrics: Metrics,
    ) -> Engine {
        let workers = cfg.verify_workers.max(1);
        let max_batch = cfg.max_batch.max(1);
        let inner = Arc::new(Inner {
            store,
            keys,
            hasher,
            hash_gate: passwords::HashGate::for_this_machine(),
            clock,
            cfg,
            metrics,
            pake_key: tokio::sync::OnceCell::new(),
            instance: hex::encode(rand::random::<[u8; 8]>()),
            login_failures_purged: std::sync::atomic::AtomicU64::new(0),
        });
        inner.store.spawn_checkpointer();
        let (tx, rx) = mpsc::channel::<verify::Job>(max_batch * workers * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers {
            let inner = inner.clone();
            let rx = rx.clone();
            tokio::spawn(async move { verify::run_worker(inner, rx, max_batch, workers).await });
        }
        Engine { inner, jobs: tx }
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn keys(&self) -> &Keyring {
        &self.inner.keys
    }

    pub fn policy(&self) -> &Policy {
        &self.inner.cfg.policy
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    pub fn hasher(&self) -> &PasswordHasher {
        &self.inner.hasher
    }

    /// Record one audit event in a transaction of its own.
    pub(crate) async fn audit_now(&self, e: NewAudit<'_>) -> Result<()> {
        let mut tx = self.store().begin().await?;
        tx.audit(&e).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_refusal(
        &self,
        customer_id: i64,
        user_id: Option<&str>,
        action: &str,
        outcome: &str,
        actor: &Actor,
    ) {
        let now = now_i64(self.now());
        let res = self
            .audit_now(NewAudit {
                customer_id: Some(customer_id),
                user_id,
                detail: None,
                ..actor.audit(action, outcome, now)
            })
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, action, "could not audit a refusal");
        }
    }
}
