//! The OTP engine: the one API every transport (host API, screens, app API, staff console, CLI,
//! load tool) calls. It composes the pure domain rules with the store inside transactions, so
//! that each decision and its audit event commit together.
//!
//! Verifications go through a group-commit batcher: many verifications share one transaction,
//! and each is answered only after that transaction is durable. A commit (an fsync) per request
//! would cap throughput at the disk's sync rate.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Mutex};
use zeroize::Zeroizing;

use protocol::{Algorithm, Code, DeviceInfo, ProtocolError, Secret, ServiceId, TotpParams, UserId};

use crate::crypto::{CryptoError, Keyring, PasswordHasher};
use crate::domain::{
    self, Decision, DomainError, Event, Outcome, Policy, Purpose, TokenSnapshot, TokenState,
};
use crate::mail::compose::Notice;
use crate::metrics::Metrics;
use crate::store::{NewAudit, NewCustomer, NewToken, Store, StoreError, TokenRow, TokenUpdate};

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
}

/// Everything an engine call can refuse, with stable machine codes.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        code: &'static str,
        message: String,
    },
    #[error(transparent)]
    Domain(#[from] DomainError),
    #[error("the code must be {0} digits")]
    CodeFormat(u8),
    #[error("the download link has not been opened yet")]
    LinkNotOpened,
    #[error("the issuance has expired; issue a new token")]
    IssuanceExpired,
    #[error("wrong activation password")]
    WrongActivationPassword { attempts_left: u32 },
    #[error("too many wrong activation passwords; the issuance is void, issue a new token")]
    IssuanceDead,
    #[error("the token was already set up")]
    AlreadyProvisioned,
    #[error("the token is no longer valid")]
    TokenNotUsable,
    #[error("the service is temporarily unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl EngineError {
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Invalid { code, .. } => code,
            EngineError::Domain(d) => d.code(),
            EngineError::CodeFormat(_) => "CODE_FORMAT",
            EngineError::LinkNotOpened => "LINK_NOT_OPENED",
            EngineError::IssuanceExpired => "ISSUANCE_EXPIRED",
            EngineError::WrongActivationPassword { .. } => "WRONG_ACTIVATION_PASSWORD",
            EngineError::IssuanceDead => "ISSUANCE_DEAD",
            EngineError::AlreadyProvisioned => "ALREADY_PROVISIONED",
            EngineError::TokenNotUsable => "TOKEN_NOT_USABLE",
            EngineError::Unavailable => "UNAVAILABLE",
            EngineError::Internal(_) => "INTERNAL",
        }
    }

    fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> Self {
        EngineError::Invalid {
            field,
            code,
            message: message.into(),
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(err) => {
                tracing::warn!(error = %err, "database unavailable");
                EngineError::Unavailable
            }
            StoreError::Domain(d) => EngineError::Domain(d),
            other => EngineError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<CryptoError> for EngineError {
    fn from(e: CryptoError) -> Self {
        EngineError::Internal(anyhow::Error::new(e))
    }
}

impl From<ProtocolError> for EngineError {
    fn from(e: ProtocolError) -> Self {
        let field = match e {
            ProtocolError::UserIdFormat | ProtocolError::UserIdCheckDigit => "user_id",
            ProtocolError::ServiceIdFormat => "service_id",
            ProtocolError::CodeFormat => "code",
            _ => "params",
        };
        EngineError::Invalid {
            field,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

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

/// A token as the host API and screens show it. No secret, no hashes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenStatus {
    pub user_id: String,
    pub service_id: String,
    pub state: TokenState,
    pub locked: bool,
    pub failures: i64,
    pub algorithm: String,
    pub digits: i64,
    pub period: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub link_opened_at: Option<i64>,
    pub provisioned_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub deactivated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

/// What issuance returns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Issued {
    pub service_id: String,
    pub user_id: String,
    pub state: TokenState,
    pub expires_at: i64,
}

/// What provisioning returns to the app: the secret, once.
#[derive(Debug)]
pub struct Provisioned {
    pub secret: Secret,
    pub params: TotpParams,
    pub service_id: ServiceId,
    pub user_id: UserId,
    pub server_time: u64,
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
}

struct Job {
    user_id: String,
    code: Zeroizing<String>,
    purpose: Purpose,
    actor: Actor,
    reply: oneshot::Sender<Result<VerifyReport>>,
}

struct Inner {
    store: Store,
    keys: Keyring,
    hasher: PasswordHasher,
    clock: Box<dyn Clock>,
    cfg: EngineConfig,
    metrics: Metrics,
}

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
    jobs: mpsc::Sender<Job>,
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
        state: row.state()?,
        params,
        last_step: u64::try_from(row.last_step).ok(),
        drift: row.drift,
        locked_at: row.locked_at,
    })
}

fn issued_of(row: &TokenRow) -> Result<Issued> {
    Ok(Issued {
        service_id: row.service_id.clone(),
        user_id: row.user_id.clone(),
        state: row.state()?,
        expires_at: row.expires_at,
    })
}

fn status_of(row: &TokenRow, policy: &Policy, now: i64) -> Result<TokenStatus> {
    let mut state = row.state()?;
    if domain::issuance_expired(state, row.expires_at, now) {
        state = TokenState::Voided;
    }
    Ok(TokenStatus {
        user_id: row.user_id.clone(),
        service_id: row.service_id.clone(),
        state,
        locked: policy.is_locked(row.locked_at, now),
        failures: row.failures,
        algorithm: row.algorithm.clone(),
        digits: row.digits,
        period: row.period,
        issued_at: row.issued_at,
        expires_at: row.expires_at,
        link_opened_at: row.link_opened_at,
        provisioned_at: row.provisioned_at,
        activated_at: row.activated_at,
        deactivated_at: row.deactivated_at,
        revoked_at: row.revoked_at,
        last_used_at: row.last_used_at,
    })
}

/// Validation shared by every transport.
pub mod rules {
    /// 4–8 digits (DESIGN §3).
    pub fn activation_password(p: &str) -> bool {
        (4..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
    }
    /// 6–12 half-width alphanumerics (DESIGN §3).
    pub fn confirmation_password(p: &str) -> bool {
        (6..=12).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric())
    }
    /// Login passwords: 8–32 printable ASCII.
    pub fn login_password(p: &str) -> bool {
        (8..=32).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_graphic())
    }
    /// Login IDs: 4–32 of `[A-Za-z0-9_.-]`.
    pub fn login_id(s: &str) -> bool {
        (4..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    }
    /// A pragmatic e-mail check: one `@`, a dotted domain, no spaces or controls, at most 254.
    pub fn email(s: &str) -> bool {
        if s.len() > 254 || s.is_empty() || !s.is_ascii() {
            return false;
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return false;
        };
        !local.is_empty()
            && local.len() <= 64
            && !local.contains('@')
            && local
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>[]\\,;:\"".contains(&b))
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    }
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
            clock,
            cfg,
            metrics,
        });
        inner.store.spawn_checkpointer();
        let (tx, rx) = mpsc::channel::<Job>(max_batch * workers * 4);
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..workers {
            let inner = inner.clone();
            let rx = rx.clone();
            tokio::spawn(async move { run_worker(inner, rx, max_batch).await });
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

    /// Hash a password with Argon2id, off the async threads.
    ///
    /// # Errors
    /// The hasher failed.
    pub async fn hash_password(&self, password: Zeroizing<String>) -> Result<String> {
        let hasher = self.inner.hasher.clone();
        tokio::task::spawn_blocking(move || hasher.hash(&password))
            .await
            .map_err(|e| EngineError::Internal(e.into()))?
            .map_err(EngineError::from)
    }

    /// Check a password against its stored hash, off the async threads.
    pub(crate) async fn password_ok(
        &self,
        password: Zeroizing<String>,
        phc: String,
    ) -> Result<bool> {
        let hasher = self.inner.hasher.clone();
        tokio::task::spawn_blocking(move || hasher.verify(&password, &phc))
            .await
            .map_err(|e| EngineError::Internal(e.into()))
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

    /// Create an internet-banking customer.
    ///
    /// # Errors
    /// Invalid fields (one error naming the first bad field), or an existing login ID.
    pub async fn create_customer(
        &self,
        login_id: &str,
        name: &str,
        email: Option<&str>,
        login_password: Zeroizing<String>,
        confirmation_password: Zeroizing<String>,
        actor: &Actor,
    ) -> Result<i64> {
        if !rules::login_id(login_id) {
            return Err(EngineError::invalid(
                "login_id",
                "INVALID_LOGIN_ID",
                "login_id must be 4-32 characters of A-Z a-z 0-9 _ . -",
            ));
        }
        if name.chars().count() > 100 {
            return Err(EngineError::invalid(
                "name",
                "INVALID_NAME",
                "name must be at most 100 characters",
            ));
        }
        if let Some(e) = email {
            if !rules::email(e) {
                return Err(EngineError::invalid(
                    "email",
                    "INVALID_EMAIL",
                    "email is not a valid address",
                ));
            }
        }
        if !rules::login_password(&login_password) {
            return Err(EngineError::invalid(
                "login_password",
                "INVALID_LOGIN_PASSWORD",
                "login_password must be 8-32 printable ASCII characters",
            ));
        }
        if !rules::confirmation_password(&confirmation_password) {
            return Err(EngineError::invalid(
                "confirmation_password",
                "INVALID_CONFIRMATION_PASSWORD",
                "confirmation_password must be 6-12 half-width letters and digits",
            ));
        }
        let login_hash = self.hash_password(login_password).await?;
        let confirm_hash = self.hash_password(confirmation_password).await?;
        let now = now_i64(self.now());
        let mut tx = self.inner.store.begin().await?;
        let id = match tx
            .insert_customer(&NewCustomer {
                login_id,
                name,
                email,
                login_password_hash: &login_hash,
                confirmation_password_hash: &confirm_hash,
                now,
            })
            .await
        {
            Ok(id) => id,
            Err(StoreError::Conflict(_)) => return Err(DomainError::CustomerExists.into()),
            Err(e) => return Err(e.into()),
        };
        tx.audit(&NewAudit {
            at: now,
            actor: &actor.name,
            customer_id: Some(id),
            action: "customer_create",
            outcome: "ok",
            ip: actor.ip.as_deref(),
            ..Default::default()
        })
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Issue a soft token for a customer (the internet-banking application).
    ///
    /// # Errors
    /// Invalid e-mail or activation password, unknown customer, a live token, the next-day rule.
    pub async fn issue_token(
        &self,
        login_id: &str,
        email: &str,
        activation_password: Zeroizing<String>,
        actor: &Actor,
    ) -> Result<Issued> {
        if !rules::email(email) {
            return Err(EngineError::invalid(
                "email",
                "INVALID_EMAIL",
                "email is not a valid address",
            ));
        }
        if !rules::activation_password(&activation_password) {
            return Err(EngineError::invalid(
                "activation_password",
                "INVALID_ACTIVATION_PASSWORD",
                "activation_password must be 4-8 digits",
            ));
        }
        let customer = self
            .inner
            .store
            .customer_by_login(login_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        let act_hash = self.hash_password(activation_password).await?;
        Ok(self
            .issue_hashed(customer.id, email, &act_hash, None, actor)
            .await?
            .0)
    }

    /// Issuance with the activation password already hashed (the screens hash it at the input
    /// step, so the confirm step never holds it). In one transaction: the token, its download
    /// link (code stored hashed) and the mail carrying the link in the outbox. With a
    /// `request_key` (the confirm form's), a repeated request returns the first issuance and
    /// sends nothing more. Returns the issuance and its download URL.
    ///
    /// # Errors
    /// As [`Engine::issue_token`].
    pub async fn issue_hashed(
        &self,
        customer_id: i64,
        email: &str,
        act_hash: &str,
        request_key: Option<&str>,
        actor: &Actor,
    ) -> Result<(Issued, Option<Zeroizing<String>>)> {
        if !rules::email(email) {
            return Err(EngineError::invalid(
                "email",
                "INVALID_EMAIL",
                "email is not a valid address",
            ));
        }
        if let Some(key) = request_key {
            if let Some(row) = self
                .inner
                .store
                .token_by_request_key(customer_id, key)
                .await?
            {
                return Ok((issued_of(&row)?, None));
            }
        }
        let res = self
            .issue_in_tx(customer_id, email, act_hash, request_key, actor)
            .await;
        match (res, request_key) {
            // A double submit that lost the race to the first: answer with the first.
            (Err(EngineError::Domain(DomainError::LiveTokenExists(_))), Some(key)) => {
                match self
                    .inner
                    .store
                    .token_by_request_key(customer_id, key)
                    .await?
                {
                    Some(row) => Ok((issued_of(&row)?, None)),
                    None => Err(DomainError::LiveTokenExists(TokenState::Issued).into()),
                }
            }
            (res, _) => res.map(|(i, url)| (i, Some(url))),
        }
    }

    async fn issue_in_tx(
        &self,
        customer_id: i64,
        email: &str,
        act_hash: &str,
        request_key: Option<&str>,
        actor: &Actor,
    ) -> Result<(Issued, Zeroizing<String>)> {
        let now = now_i64(self.now());
        let policy = &self.inner.cfg.policy;
        let params = self.inner.cfg.params;
        let mut tx = self.inner.store.begin().await?;
        let latest = tx.latest_token(customer_id).await?;
        let mut latest_state = None;
        if let Some(row) = &latest {
            let state = row.state()?;
            if domain::issuance_expired(state, row.expires_at, now) {
                tx.void(row.id, state, "expired", now).await?;
                latest_state = Some((TokenState::Voided, None));
            } else {
                latest_state = Some((state, row.deactivated_at));
            }
        }
        let customer = tx
            .customer(customer_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        let waived = customer.reissue_waived != 0;
        if let Err(block) = domain::may_issue(latest_state, waived, now) {
            drop(tx);
            self.audit_refusal(
                customer.id,
                None,
                "issue",
                DomainError::from(block).code(),
                actor,
            )
            .await;
            return Err(DomainError::from(block).into());
        }
        let expires_at = now + i64::from(policy.issuance_ttl_days) * 86_400;
        let service_id = self.inner.cfg.service_id.as_str().to_owned();
        let mut user_id = None;
        for _ in 0..8 {
            let candidate = random_user_id()?;
            match tx
                .insert_token(&NewToken {
                    customer_id: customer.id,
                    user_id: candidate.as_str(),
                    service_id: &service_id,
                    email,
                    algorithm: params.algorithm.as_str(),
                    digits: i64::from(params.digits),
                    period: i64::from(params.period),
                    activation_password_hash: act_hash,
                    issued_at: now,
                    expires_at,
                })
                .await
            {
                Ok(id) => {
                    user_id = Some((candidate, id));
                    break;
                }
                // A random user ID collided: on PostgreSQL the failed statement aborted the
                // transaction, so only SQLite may retry in place; both are astronomically rare.
                Err(StoreError::Conflict(c))
                    if c.contains("user_id")
                        && self.inner.store.kind() == crate::store::DbKind::Sqlite =>
                {
                    continue
                }
                Err(StoreError::Conflict(_)) => {
                    return Err(DomainError::LiveTokenExists(TokenState::Issued).into());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let (user_id, token_id) = user_id.ok_or_else(|| {
            EngineError::Internal(anyhow::anyhow!("could not allocate a user ID"))
        })?;
        if let Some(key) = request_key {
            tx.set_token_request_key(token_id, key).await?;
        }
        let url = crate::mail::enqueue_issuance(
            &mut tx,
            &self.inner.cfg.links,
            customer.id,
            token_id,
            email,
            &service_id,
            user_id.as_str(),
            now,
        )
        .await?;
        if waived {
            tx.set_reissue_waived(customer.id, false).await?;
        }
        tx.audit(&NewAudit {
            at: now,
            actor: &actor.name,
            customer_id: Some(customer.id),
            user_id: Some(user_id.as_str()),
            action: "issue",
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: waived.then(|| r#"{"next_day_rule":"waived"}"#.to_owned()),
        })
        .await?;
        tx.commit().await?;
        Ok((
            Issued {
                service_id,
                user_id: user_id.as_str().to_owned(),
                state: TokenState::Issued,
                expires_at,
            },
            url,
        ))
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
                at: now,
                actor: &actor.name,
                customer_id: Some(customer_id),
                user_id,
                action,
                outcome,
                ip: actor.ip.as_deref(),
                detail: None,
            })
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, action, "could not audit a refusal");
        }
    }

    /// The token's status.
    ///
    /// # Errors
    /// A malformed or unknown user ID.
    pub async fn token_status(&self, user_id: &str) -> Result<TokenStatus> {
        let user_id = UserId::parse(user_id)?;
        let row = self
            .inner
            .store
            .token_by_user_id(user_id.as_str())
            .await?
            .ok_or(DomainError::UnknownToken)?;
        status_of(&row, &self.inner.cfg.policy, now_i64(self.now()))
    }

    /// Apply a plain lifecycle event (no code involved) in one transaction with its audit event.
    async fn apply_event(
        &self,
        user_id: &str,
        event: Event,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<TokenStatus> {
        let user_id = UserId::parse(user_id)?;
        let now = now_i64(self.now());
        let mut tx = self.inner.store.begin().await?;
        let row = tx
            .token(user_id.as_str())
            .await?
            .ok_or(DomainError::UnknownToken)?;
        let state = row.state()?;
        if event == Event::OpenLink && domain::issuance_expired(state, row.expires_at, now) {
            return Err(EngineError::IssuanceExpired);
        }
        let next = match domain::transition(state, event) {
            Ok(n) => n,
            Err(e) => {
                drop(tx);
                self.audit_refusal(
                    row.customer_id,
                    Some(user_id.as_str()),
                    event.as_str(),
                    e.code(),
                    actor,
                )
                .await;
                return Err(e.into());
            }
        };
        let stamp = match event {
            Event::OpenLink if row.link_opened_at.is_none() => Some("link_opened_at"),
            Event::Revoke => Some("revoked_at"),
            Event::Deactivate => Some("deactivated_at"),
            Event::Void => Some("voided_at"),
            _ => None,
        };
        if !tx.set_state(row.id, state, next, stamp, now).await? {
            return Err(EngineError::Unavailable);
        }
        tx.audit(&NewAudit {
            at: now,
            actor: &actor.name,
            customer_id: Some(row.customer_id),
            user_id: Some(user_id.as_str()),
            action: event.as_str(),
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: reason.map(|r| serde_json::json!({ "reason": r }).to_string()),
        })
        .await?;
        tx.commit().await?;
        self.token_status(user_id.as_str()).await
    }

    /// Record that the mailed download link was opened (DESIGN §4: setup is refused before).
    ///
    /// # Errors
    /// Unknown token, expired issuance, or a token past this stage.
    pub async fn open_link(&self, user_id: &str, actor: &Actor) -> Result<TokenStatus> {
        self.apply_event(user_id, Event::OpenLink, actor, None)
            .await
    }

    /// Staff revoke (lost or stolen phone): the token stops verifying at once.
    ///
    /// # Errors
    /// Unknown token or a token that is not live.
    pub async fn revoke(&self, user_id: &str, actor: &Actor, reason: &str) -> Result<TokenStatus> {
        self.apply_event(user_id, Event::Revoke, actor, Some(reason))
            .await
    }

    /// Lift a lock (staff, or the host on staff's behalf).
    ///
    /// # Errors
    /// Unknown token; [`DomainError::IllegalTransition`]-like refusal when it is not locked is
    /// reported as `NOT_LOCKED`.
    pub async fn unlock(&self, user_id: &str, actor: &Actor, reason: &str) -> Result<TokenStatus> {
        let user_id = UserId::parse(user_id)?;
        let now = now_i64(self.now());
        let mut tx = self.inner.store.begin().await?;
        let row = tx
            .token(user_id.as_str())
            .await?
            .ok_or(DomainError::UnknownToken)?;
        if !tx.unlock(row.id).await? {
            return Err(EngineError::invalid(
                "user_id",
                "NOT_LOCKED",
                "the token is not locked",
            ));
        }
        tx.audit(&NewAudit {
            at: now,
            actor: &actor.name,
            customer_id: Some(row.customer_id),
            user_id: Some(user_id.as_str()),
            action: "unlock",
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: Some(serde_json::json!({ "reason": reason }).to_string()),
        })
        .await?;
        tx.commit().await?;
        self.token_status(user_id.as_str()).await
    }

    /// The app's initial setup: hand out the secret once (DESIGN §4).
    ///
    /// # Errors
    /// Unknown IDs, link not opened, expired or dead issuance, wrong activation password,
    /// already provisioned.
    pub async fn provision(
        &self,
        service_id: &ServiceId,
        user_id: &UserId,
        activation_password: Zeroizing<String>,
        device: &DeviceInfo,
        actor: &Actor,
    ) -> Result<Provisioned> {
        let now_u = self.now();
        let now = now_i64(now_u);
        let row = self
            .inner
            .store
            .token_by_user_id(user_id.as_str())
            .await?
            .filter(|r| r.service_id == service_id.as_str())
            .ok_or(DomainError::UnknownToken)?;
        let audit = |outcome: &'static str| NewAudit {
            at: now,
            actor: &actor.name,
            customer_id: Some(row.customer_id),
            user_id: Some(user_id.as_str()),
            action: "provision",
            outcome,
            ip: actor.ip.as_deref(),
            detail: None,
        };
        let state = row.state()?;
        let refusal = match state {
            TokenState::Issued if now < row.expires_at => Some(EngineError::LinkNotOpened),
            TokenState::Issued | TokenState::LinkOpened if now >= row.expires_at => {
                Some(EngineError::IssuanceExpired)
            }
            TokenState::LinkOpened => None,
            TokenState::Voided if row.void_reason.as_deref() == Some("activation_failures") => {
                Some(EngineError::IssuanceDead)
            }
            TokenState::Voided => Some(EngineError::IssuanceExpired),
            TokenState::Provisioned | TokenState::Active => Some(EngineError::AlreadyProvisioned),
            _ => Some(EngineError::TokenNotUsable),
        };
        if let Some(err) = refusal {
            self.audit_now(audit(err.code())).await?;
            return Err(err);
        }
        let ok = self
            .password_ok(activation_password, row.activation_password_hash.clone())
            .await?;
        let mut tx = self.inner.store.begin().await?;
        if !ok {
            let failures = tx.count_activation_failure(row.id).await?;
            let max = i64::from(self.inner.cfg.policy.max_activation_failures);
            let err = if failures >= max {
                tx.void(row.id, TokenState::LinkOpened, "activation_failures", now)
                    .await?;
                EngineError::IssuanceDead
            } else {
                EngineError::WrongActivationPassword {
                    attempts_left: u32::try_from(max - failures).unwrap_or(0),
                }
            };
            tx.audit(&audit(err.code())).await?;
            tx.commit().await?;
            return Err(err);
        }
        let params = snapshot(&row)?.params;
        let secret = Secret::generate(params.algorithm);
        let sealed = self.inner.keys.seal(user_id.as_str(), &secret)?;
        let device_json =
            serde_json::to_string(device).map_err(|e| EngineError::Internal(e.into()))?;
        if !tx.provision(row.id, &sealed, &device_json, now).await? {
            // Someone else provisioned (or voided) it between our read and this write.
            return Err(EngineError::AlreadyProvisioned);
        }
        tx.audit(&NewAudit {
            detail: Some(
                serde_json::json!({ "platform": device.platform, "model": device.model })
                    .to_string(),
            ),
            ..audit("ok")
        })
        .await?;
        tx.commit().await?;
        Ok(Provisioned {
            secret,
            params,
            service_id: service_id.clone(),
            user_id: user_id.clone(),
            server_time: now_u,
        })
    }

    /// Audit a setup attempt that [`Engine::provision`] did not audit itself: one naming no
    /// known token, or one the app API's rate limit refused. Best effort: a failure to write is
    /// logged, and the refusal stands either way.
    pub async fn audit_app_refusal(&self, user_id: &str, outcome: &str, actor: &Actor) {
        let customer_id = match self.inner.store.token_by_user_id(user_id).await {
            Ok(row) => row.map(|r| r.customer_id),
            Err(_) => None,
        };
        let now = now_i64(self.now());
        let res = self
            .audit_now(NewAudit {
                at: now,
                actor: &actor.name,
                customer_id,
                user_id: Some(user_id),
                action: "provision",
                outcome,
                ip: actor.ip.as_deref(),
                detail: None,
            })
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, outcome, "could not audit an app API refusal");
        }
    }

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
                actor,
                reply,
            })
            .await
            .map_err(|_| EngineError::Unavailable)?;
        let res = rx.await.map_err(|_| EngineError::Unavailable)?;
        match &res {
            Ok(r) => self
                .inner
                .metrics
                .observe_verify(r.result.as_str(), started.elapsed()),
            Err(e) => self
                .inner
                .metrics
                .observe_verify(e.code(), started.elapsed()),
        }
        res
    }

    /// Check the master keys against the database before serving (refuse to serve with secrets
    /// we cannot decrypt), and record a check value for the current key.
    ///
    /// # Errors
    /// A key in use that we do not have, or a key whose check value does not open.
    pub async fn check_keys(&self) -> anyhow::Result<()> {
        let store = &self.inner.store;
        let keys = &self.inner.keys;
        let have = keys.key_ids();
        for (key_id, check) in store.key_checks().await? {
            if have.contains(&key_id) {
                keys.verify_check(&key_id, &check).map_err(|_| {
                    anyhow::anyhow!("master key {key_id} does not match the key that sealed this database's secrets (wrong key file or OTP_MASTER_KEY)")
                })?;
            }
        }
        for (key_id, n) in store.keys_in_use().await? {
            if !have.contains(&key_id) {
                anyhow::bail!("{n} token secret(s) are sealed under master key {key_id}, which is not configured; restore the key file or set OTP_MASTER_KEY");
            }
        }
        let current = keys.current_id();
        let check = keys.key_check(&current)?;
        let mut tx = store.begin().await?;
        tx.insert_key_check(&current, &check, now_i64(self.now()))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Re-seal every secret under the current key, a row at a time (each its own small
    /// transaction, so verification goes on meanwhile). Returns how many were re-sealed.
    ///
    /// # Errors
    /// Database or crypto failures; rows done so far stay done, and a rerun continues.
    pub async fn reseal_all(&self) -> Result<u64> {
        let current = self.inner.keys.current_id();
        let mut done = 0u64;
        loop {
            let rows = self.inner.store.tokens_not_under_key(&current, 500).await?;
            if rows.is_empty() {
                return Ok(done);
            }
            for row in rows {
                let Some(sealed) = row.sealed() else { continue };
                let secret = self.inner.keys.open(&row.user_id, &sealed)?;
                let resealed = self.inner.keys.seal(&row.user_id, &secret)?;
                let mut tx = self.inner.store.begin().await?;
                if tx.reseal(row.id, &sealed.key_id, &resealed).await? {
                    tx.audit(&NewAudit {
                        at: now_i64(self.now()),
                        actor: "cli",
                        customer_id: Some(row.customer_id),
                        user_id: Some(&row.user_id),
                        action: "key_rotate",
                        outcome: "ok",
                        detail: Some(
                            serde_json::json!({ "from": sealed.key_id, "to": resealed.key_id })
                                .to_string(),
                        ),
                        ..Default::default()
                    })
                    .await?;
                    tx.commit().await?;
                    done += 1;
                }
            }
        }
    }

    /// Create a staff account (roles: operator, supervisor).
    ///
    /// # Errors
    /// Bad role or password, or an existing login ID.
    pub async fn create_staff(
        &self,
        login_id: &str,
        name: &str,
        role: &str,
        password: Zeroizing<String>,
    ) -> Result<i64> {
        if !matches!(role, "operator" | "supervisor") {
            return Err(EngineError::invalid(
                "role",
                "INVALID_ROLE",
                "role must be operator or supervisor",
            ));
        }
        if !rules::login_id(login_id) {
            return Err(EngineError::invalid(
                "login_id",
                "INVALID_LOGIN_ID",
                "login_id must be 4-32 characters of A-Z a-z 0-9 _ . -",
            ));
        }
        if password.len() < 12 || password.len() > 128 {
            return Err(EngineError::invalid(
                "password",
                "INVALID_PASSWORD",
                "staff passwords must be 12-128 characters",
            ));
        }
        let hash = self.hash_password(password).await?;
        let now = now_i64(self.now());
        let mut tx = self.inner.store.begin().await?;
        let id = match tx.insert_staff(login_id, name, role, &hash, now).await {
            Ok(id) => id,
            Err(StoreError::Conflict(_)) => {
                return Err(EngineError::invalid(
                    "login_id",
                    "STAFF_EXISTS",
                    "a staff member with this login ID exists",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        tx.audit(&NewAudit {
            at: now,
            actor: "cli",
            action: "staff_create",
            outcome: "ok",
            detail: Some(serde_json::json!({ "staff_id": id, "role": role }).to_string()),
            ..Default::default()
        })
        .await?;
        tx.commit().await?;
        Ok(id)
    }
}

fn random_user_id() -> Result<UserId> {
    use rand::Rng;
    // 11 random digits plus the check digit: user IDs cannot be enumerated.
    let serial: u64 = rand::rngs::OsRng.gen_range(10_000_000_000..100_000_000_000);
    Ok(UserId::from_serial(serial)?)
}

async fn run_worker(inner: Arc<Inner>, rx: Arc<Mutex<mpsc::Receiver<Job>>>, max_batch: usize) {
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

/// What the plan decided for one job; written (audit, notice) only once its token's update
/// has landed.
struct Planned {
    report: Result<VerifyReport>,
    /// The row as it was when decided (for audit and notices).
    row: Option<TokenRow>,
    /// (action, outcome, detail) audit events, in order.
    audits: Vec<(&'static str, &'static str, Option<String>)>,
    notice: Option<(Notice, String)>,
}

/// A token's state while a batch is planned: the row as read, and as the batch leaves it.
struct Working {
    original: TokenRow,
    current: TokenRow,
}

fn action_of(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Login => "verify_login",
        Purpose::Transfer => "verify_transfer",
        Purpose::Activation => "activate",
        Purpose::Deactivation => "deactivate",
    }
}

/// Decide one job against the token's working state, updating that state as the store will.
fn plan_one(inner: &Inner, job: &Job, work: Option<&mut Working>, now_u: u64) -> Planned {
    let now = now_i64(now_u);
    let policy = &inner.cfg.policy;
    let action = action_of(job.purpose);
    let Some(work) = work else {
        return Planned {
            report: Err(DomainError::UnknownToken.into()),
            row: None,
            audits: vec![(action, "unknown_token", None)],
            notice: None,
        };
    };
    let row = &mut work.current;
    let planned = |report, audits, notice, row: &TokenRow| Planned {
        report,
        row: Some(row.clone()),
        audits,
        notice,
    };
    let snap = match snapshot(row) {
        Ok(s) => s,
        Err(e) => return planned(Err(e), vec![], None, row),
    };
    let Ok(code) = Code::parse(&job.code, snap.params.digits) else {
        return planned(
            Err(EngineError::CodeFormat(snap.params.digits)),
            vec![],
            None,
            row,
        );
    };
    let decision = match row.sealed() {
        Some(sealed) if job.purpose.accepts(snap.state) => {
            match inner.keys.open(&row.user_id, &sealed) {
                Ok(secret) => domain::decide(&snap, &secret, &code, job.purpose, policy, now_u),
                Err(e) => return planned(Err(e.into()), vec![], None, row),
            }
        }
        _ => Decision::NotActive,
    };
    let report = |result, attempts_left, row: &TokenRow| VerifyReport {
        result,
        attempts_left,
        state: row.state().unwrap_or(snap.state),
        locked: policy.is_locked(row.locked_at, now),
    };
    match decision {
        Decision::Accept { step, drift } => {
            let next = match job.purpose.event() {
                Some(ev) => match domain::transition(snap.state, ev) {
                    Ok(next) => next,
                    Err(e) => return planned(Err(e.into()), vec![], None, row),
                },
                None => snap.state,
            };
            row.last_step = i64::try_from(step).unwrap_or(i64::MAX);
            row.drift = drift;
            row.failures = 0;
            row.locked_at = None;
            row.last_used_at = Some(now);
            row.state = next.as_str().to_owned();
            let notice = match job.purpose.event() {
                Some(Event::Activate) => {
                    row.activated_at = Some(now);
                    Some((Notice::Activated, now.to_string()))
                }
                Some(Event::Deactivate) => {
                    row.deactivated_at = Some(now);
                    Some((Notice::Deactivated, now.to_string()))
                }
                _ => None,
            };
            let r = report(Outcome::Ok, None, row);
            planned(Ok(r), vec![(action, "ok", None)], notice, row)
        }
        // OWASP ASVS V2.8.5: a reused code is refused, logged and the customer told.
        Decision::Replay { step } => planned(
            Ok(report(Outcome::Replayed, None, row)),
            vec![(action, "replayed", None)],
            Some((Notice::Replayed, step.to_string())),
            row,
        ),
        Decision::Locked => planned(
            Ok(report(Outcome::Locked, None, row)),
            vec![(action, "locked", None)],
            None,
            row,
        ),
        Decision::NotActive => planned(
            Ok(report(Outcome::NotActive, None, row)),
            vec![(action, "not_active", None)],
            None,
            row,
        ),
        Decision::Fail => {
            let max = i64::from(policy.max_failures);
            // A lifted timed lock starts the count again.
            row.failures = if row.locked_at.is_some() {
                1
            } else {
                row.failures + 1
            };
            if row.failures >= max {
                row.locked_at = Some(now);
                let detail = serde_json::json!({ "failures": row.failures }).to_string();
                let r = report(Outcome::Locked, Some(0), row);
                planned(
                    Ok(r),
                    vec![(action, "invalid", None), ("lock", "locked", Some(detail))],
                    Some((Notice::Locked, now.to_string())),
                    row,
                )
            } else {
                row.locked_at = None;
                let left = u32::try_from((max - row.failures).max(0)).unwrap_or(0);
                let r = report(Outcome::Invalid, Some(left), row);
                planned(Ok(r), vec![(action, "invalid", None)], None, row)
            }
        }
    }
}

/// The update that makes a token what the plan left it, if it is still what was read.
fn token_update(w: &Working) -> TokenUpdate {
    let (o, c) = (&w.original, &w.current);
    TokenUpdate {
        id: c.id,
        last_step: c.last_step,
        drift: c.drift,
        failures: c.failures,
        locked_at: c.locked_at,
        state: c.state.clone(),
        last_used_at: c.last_used_at,
        activated_at: c.activated_at,
        deactivated_at: c.deactivated_at,
        expect_last_step: o.last_step,
        expect_failures: o.failures,
        expect_state: o.state.clone(),
        expect_locked_at: o.locked_at,
    }
}

/// A batch of verifications in one transaction: read every token once (locked, on PostgreSQL),
/// decide every job in memory in arrival order, then write every changed token with one
/// conditional UPDATE that holds only where the row is still exactly as read. A token whose
/// row changed meanwhile (another process) is read again and its jobs decided again, so replay
/// protection and failure counting hold across processes. Audit events and notices are written
/// for the final decisions only, in the same transaction.
async fn process_batch(
    inner: &Inner,
    conn: &mut sqlx::AnyConnection,
    batch: &[Job],
) -> Result<Vec<Result<VerifyReport>>, StoreError> {
    let now_u = inner.clock.now();
    let now = now_i64(now_u);
    let mut tx = inner.store.begin_on(conn).await?;
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    let mut planned: Vec<Option<Planned>> = batch.iter().map(|_| None).collect();
    for _round in 0..8 {
        if pending.is_empty() {
            break;
        }
        let mut ids: Vec<&str> = pending.iter().map(|&i| batch[i].user_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let rows = tx.read_tokens_for_update(&ids).await?;
        let mut work: HashMap<String, Working> = rows
            .into_iter()
            .map(|r| {
                (
                    r.user_id.clone(),
                    Working {
                        original: r.clone(),
                        current: r,
                    },
                )
            })
            .collect();
        for &i in &pending {
            let job = &batch[i];
            planned[i] = Some(plan_one(inner, job, work.get_mut(&job.user_id), now_u));
        }
        let updates: Vec<TokenUpdate> = work
            .values()
            .filter(|w| {
                w.current.last_step != w.original.last_step
                    || w.current.failures != w.original.failures
                    || w.current.locked_at != w.original.locked_at
                    || w.current.state != w.original.state
            })
            .map(token_update)
            .collect();
        let landed = tx.apply_token_updates(&updates).await?;
        let lost: std::collections::HashSet<i64> = updates
            .iter()
            .map(|u| u.id)
            .filter(|id| !landed.contains(id))
            .collect();
        pending.retain(|&i| {
            planned[i]
                .as_ref()
                .and_then(|p| p.row.as_ref())
                .is_some_and(|r| lost.contains(&r.id))
        });
    }
    if !pending.is_empty() {
        // Never seen: rows that keep changing under us. Answer honestly rather than loop.
        for &i in &pending {
            planned[i] = Some(Planned {
                report: Err(EngineError::Unavailable),
                row: None,
                audits: vec![],
                notice: None,
            });
        }
    }
    let mut out = Vec::with_capacity(batch.len());
    for (job, p) in batch.iter().zip(planned) {
        let Some(p) = p else {
            out.push(Err(EngineError::Unavailable));
            continue;
        };
        for (action, outcome, detail) in &p.audits {
            tx.audit(&NewAudit {
                at: now,
                actor: &job.actor.name,
                customer_id: p.row.as_ref().map(|r| r.customer_id),
                user_id: Some(&job.user_id),
                action,
                outcome,
                ip: job.actor.ip.as_deref(),
                detail: detail.clone(),
            })
            .await?;
        }
        if let (Some((notice, key)), Some(row)) = (p.notice, p.row.as_ref()) {
            crate::mail::enqueue_notice(&mut tx, row, notice, &key, now).await?;
        }
        out.push(p.report);
    }
    tx.commit().await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::rules;

    #[test]
    fn field_rules() {
        assert!(rules::activation_password("1234"));
        assert!(rules::activation_password("12345678"));
        assert!(!rules::activation_password("123"));
        assert!(!rules::activation_password("123456789"));
        assert!(!rules::activation_password("12a4"));
        assert!(
            !rules::activation_password("１２３４"),
            "full-width digits are refused"
        );
        assert!(rules::confirmation_password("abc123"));
        assert!(!rules::confirmation_password("abc12"));
        assert!(!rules::confirmation_password("abc123abc123x"));
        assert!(!rules::confirmation_password("abc 123"));
        assert!(rules::email("taro@example.co.jp"));
        for bad in [
            "",
            "taro",
            "taro@",
            "@example.com",
            "taro@example",
            "ta ro@example.com",
            "taro@@example.com",
            "taro@example..com",
            "たろう@example.com",
        ] {
            assert!(!rules::email(bad), "{bad:?} must be refused");
        }
    }
}
