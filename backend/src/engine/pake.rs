//! Provisioning v2 (issue 18; the protocol and its reasons are in `protocol::pake`): the
//! activation password never reaches the server, and the secret leaves it sealed under a key
//! only the app that knows the password can derive.
//!
//! - At issuance ([`Engine::activation_credential`]) the server, which holds the password the
//!   customer just typed, makes the issuance's OPAQUE record (bound to a user ID chosen then),
//!   and the v1 Argon2 hash beside it only while v1 is served; afterwards only those are kept,
//!   the hash until setup (or voiding) clears it.
//! - `start` counts one of the issuance's activation attempts with the engine's one rule
//!   (`setup_refusal` and the conditional `count_activation_attempt`, as v1 does) and records the
//!   sealed exchange in the same transaction: an exchange that never finishes (wrong password,
//!   swapped messages, a timeout of [`EXCHANGE_TTL_SECS`]) stays counted, with no rule of its
//!   own, and concurrent starts get no more exchanges than attempts.
//! - `finish` takes the exchange once, checks the app's key confirmation, and on success gives
//!   the attempt back and provisions the token (once, as v1) in one transaction.

use std::sync::Arc;

use zeroize::Zeroizing;

use protocol::pake::{self, PakeError, PasswordFile, ServerKey, ServerPending};
use protocol::wire::v2::{
    SetupFinishRequest, SetupFinishResponse, SetupStartRequest, SetupStartResponse,
};
use protocol::{Secret, Sensitive, ServiceId, UserId};

use crate::crypto::Sealed;
use crate::domain::{DomainError, TokenState};
use crate::store::{NewAudit, TokenRow, Tx};

use super::{now_i64, snapshot, Actor, Engine, EngineError, Result};

/// How long a started exchange may wait for its finish.
pub const EXCHANGE_TTL_SECS: i64 = 120;

/// The label the OPAQUE server key is sealed under (a restore's key check opens it too).
pub const SERVER_KEY_LABEL: &str = "server-key";

/// What an exchange's sealed state is bound to: its ID and the user ID it was started for, so a
/// row pointed at another token does not open (and provisions nothing).
fn exchange_label(exchange_id: &str, user_id: &str) -> String {
    format!("exchange:{exchange_id}:{user_id}")
}

fn pake_internal(e: PakeError) -> EngineError {
    EngineError::Internal(anyhow::Error::new(e))
}

fn replayed() -> EngineError {
    EngineError::Conflict {
        code: "PAKE_REPLAYED",
        message: "this setup request was already used; start the setup again",
    }
}

fn unknown_exchange() -> EngineError {
    EngineError::NotFound {
        code: "SETUP_EXCHANGE_UNKNOWN",
        message: "no such setup exchange, or it has already finished; start the setup again",
    }
}

fn expired_exchange() -> EngineError {
    EngineError::Conflict {
        code: "SETUP_EXCHANGE_EXPIRED",
        message: "the setup exchange took longer than 2 minutes and counts as a failed attempt; start the setup again",
    }
}

fn not_registered() -> EngineError {
    EngineError::Conflict {
        code: "SETUP_V2_NOT_REGISTERED",
        message: "this token was issued before provisioning v2 and cannot be set up with it; issue a new token",
    }
}

fn message_format() -> EngineError {
    EngineError::Invalid {
        field: "pake_message",
        code: "PAKE_MESSAGE_FORMAT",
        message: "a provisioning message is malformed".to_owned(),
    }
}

impl Engine {
    /// The deployment's OPAQUE server key: made on first use and stored sealed under the
    /// current master key (a concurrent first use by another process wins; both then use it).
    pub(crate) async fn pake_server_key(&self) -> Result<Arc<ServerKey>> {
        self.inner
            .pake_key
            .get_or_try_init(|| async {
                let store = &self.inner.store;
                let keys = &self.inner.keys;
                let sealed = match store.pake_server_key().await? {
                    Some(s) => s,
                    None => {
                        let fresh = ServerKey::generate();
                        let mut tx = store.begin().await?;
                        self.sealing_key_ready(&mut tx).await?;
                        let sealed = keys.seal_pake(SERVER_KEY_LABEL, &fresh.to_bytes())?;
                        tx.insert_pake_server_key(&sealed, now_i64(self.now()))
                            .await?;
                        tx.commit().await?;
                        store
                            .pake_server_key()
                            .await?
                            .ok_or(EngineError::Unavailable)?
                    }
                };
                let bytes = keys.open_pake(SERVER_KEY_LABEL, &sealed)?;
                Ok(Arc::new(
                    ServerKey::from_bytes(&bytes).map_err(pake_internal)?,
                ))
            })
            .await
            .cloned()
    }

    /// Re-seal the OPAQUE server key under the current master key (key rotation). Returns
    /// whether it was re-sealed.
    pub(crate) async fn reseal_pake_server_key(&self) -> Result<bool> {
        let current = self.inner.keys.current_id();
        let Some(sealed) = self.inner.store.pake_server_key().await? else {
            return Ok(false);
        };
        if sealed.key_id == current {
            return Ok(false);
        }
        let keys = &self.inner.keys;
        let bytes = keys.open_pake(SERVER_KEY_LABEL, &sealed)?;
        let resealed = keys.seal_pake(SERVER_KEY_LABEL, &bytes)?;
        let mut tx = self.inner.store.begin().await?;
        let done = tx.reseal_pake_server_key(&sealed.key_id, &resealed).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// What an issuance keeps of the activation password the customer (or staff's generator)
    /// just gave: for v2, its OPAQUE record, which binds the user ID, so the user ID is chosen
    /// here and the issuance takes it from the credential; and, only while v1 is served
    /// ([`EngineConfig::v1_setup`](super::EngineConfig)), its Argon2 hash for v1. A v1 hash
    /// beside the record would let a thief of the database alone guess the 4 to 8 digits
    /// offline and then run v2, so with v1 off none is made (the PHC part is empty). One
    /// string (`pake1$<user id>$<record hex>$<PHC>`), so the screens' drafts and the staff's
    /// queued requests carry it where they carried the hash. As private as a password hash.
    ///
    /// # Errors
    /// Hashing saturated or failed; the server key could not be loaded.
    pub async fn activation_credential(&self, password: Zeroizing<String>) -> Result<String> {
        let key = self.pake_server_key().await?;
        let user_id = super::issuance::random_user_id()?;
        let service_id: ServiceId = self.inner.cfg.service_id.clone();
        let pw = Sensitive(password.to_string());
        let uid = user_id.clone();
        let record = self
            .inner
            .hash_gate
            .run(move || pake::register(&key, &service_id, &uid, &pw).map(|r| r.to_bytes()))
            .await?
            .map_err(pake_internal)?;
        let phc = if self.inner.cfg.v1_setup {
            self.hash_password(password).await?
        } else {
            String::new()
        };
        Ok(super::credential::encode(&user_id, &record, &phc))
    }

    /// With v1 off: drop the v1 hashes that issuances made while it was on still keep, where
    /// v2 can set the token up (it has an OPAQUE record) and setup is still ahead, and the ones
    /// in the credentials of pending four-eyes reprovisions. Run at start-up; returns how many
    /// were dropped.
    ///
    /// # Errors
    /// Database failures.
    pub async fn drop_unused_v1_hashes(&self) -> Result<u64> {
        let mut tx = self.inner.store.begin().await?;
        let mut n = tx.drop_v1_hashes_of_v2_issuances().await?;
        tx.commit().await?;
        for r in self.inner.store.staff_requests("pending", 100_000).await? {
            let Ok(mut params) = serde_json::from_str::<serde_json::Value>(&r.params) else {
                continue;
            };
            let stripped = match params
                .get("act_hash")
                .and_then(serde_json::Value::as_str)
                .map(super::credential::without_v1_hash)
            {
                Some(Ok(Some(s))) => s,
                Some(Err(_)) => {
                    // Said, not fatal: one bad request must not stop the server.
                    tracing::warn!(
                        request_id = r.id,
                        "a pending request's activation credential is corrupt; left as it is"
                    );
                    continue;
                }
                _ => continue,
            };
            params["act_hash"] = serde_json::Value::String(stripped);
            let mut tx = self.inner.store.begin().await?;
            // Only if still pending and unchanged (a decision meanwhile clears the params).
            if tx
                .replace_request_params(r.id, &r.params, &params.to_string())
                .await?
            {
                n += 1;
            }
            tx.commit().await?;
        }
        Ok(n)
    }

    /// The token a setup names, refusing as v1 does an unknown service or user ID.
    async fn setup_row(&self, service_id: &ServiceId, user_id: &UserId) -> Result<TokenRow> {
        match self.inner.store.token_by_user_id(user_id.as_str()).await? {
            Some(r) if r.service_id == service_id.as_str() => Ok(r),
            _ if *service_id != self.inner.cfg.service_id => {
                Err(DomainError::UnknownService.into())
            }
            _ => Err(DomainError::UnknownToken.into()),
        }
    }

    /// `POST /app/v2/setup/start`: count an activation attempt and answer the app's `KE1`.
    ///
    /// # Errors
    /// As [`Engine::provision`] for the token's state (unknown IDs, link not opened, expired,
    /// dead, already provisioned); `PAKE_REPLAYED` for an app nonce this token has seen;
    /// `SETUP_V2_NOT_REGISTERED` for a token issued before v2; `PAKE_MESSAGE_FORMAT`.
    pub async fn setup_start(
        &self,
        req: &SetupStartRequest,
        actor: &Actor,
    ) -> Result<SetupStartResponse> {
        let now = now_i64(self.now());
        let row = self.setup_row(&req.service_id, &req.user_id).await?;
        let user_id = req.user_id.as_str();
        let audit = |outcome: &'static str, detail: serde_json::Value| NewAudit {
            customer_id: Some(row.customer_id),
            user_id: Some(user_id),
            detail: Some(detail.to_string()),
            ..actor.audit("provision", outcome, now)
        };
        let v2 = serde_json::json!({ "protocol": "v2", "step": "start" });
        // Answered before anything is counted: a malformed message spends no attempt.
        let prepared = match self.inner.store.pake_record(row.id).await? {
            None => None,
            Some(record) => {
                let key = self.pake_server_key().await?;
                let file = PasswordFile::from_bytes(&record).map_err(pake_internal)?;
                let (pending, response) =
                    pake::server_respond(&key, &file, req).map_err(|e| match e {
                        PakeError::MessageFormat => message_format(),
                        e => pake_internal(e),
                    })?;
                let xid = hex::encode(pending.exchange_id());
                let sealed = self.inner.keys.seal_pake(
                    &exchange_label(&xid, req.user_id.as_str()),
                    &pending.to_bytes(),
                )?;
                Some((xid, sealed, response))
            }
        };
        let nonce = hex::encode(req.app_nonce.as_slice());
        let device =
            serde_json::to_string(&req.device).map_err(|e| EngineError::Internal(e.into()))?;
        let max = self.policy().max_activation_failures;
        for _ in 0..8 {
            let mut tx = self.inner.store.begin().await?;
            let row = tx.token(user_id).await?.ok_or(DomainError::UnknownToken)?;
            let open = tx.expire_pake_exchanges(row.id, now).await?;
            if let Some(refusal) = super::provision::setup_refusal_of(&row, max, now)? {
                let err = EngineError::from(refusal);
                self.void_if_spent(&mut tx, &row, open, now).await?;
                tx.audit(&audit(err.code(), v2)).await?;
                tx.commit().await?;
                return Err(err);
            }
            let Some((xid, sealed, response)) = &prepared else {
                let err = not_registered();
                tx.audit(&audit(err.code(), v2)).await?;
                tx.commit().await?;
                return Err(err);
            };
            if tx.pake_nonce_seen(row.id, &nonce).await? {
                let err = replayed();
                tx.audit(&audit(err.code(), v2)).await?;
                tx.commit().await?;
                return Err(err);
            }
            // The engine's one attempt rule (as v1): counted only if nobody counted meanwhile
            // and the token still awaits setup; the exchange is recorded in the same
            // transaction, so it exists exactly when its attempt was counted.
            if super::provision::count_setup_attempt(&mut tx, &row, max, now, EXCHANGE_TTL_SECS)
                .await?
            {
                if !tx
                    .insert_pake_exchange(
                        xid,
                        row.id,
                        &nonce,
                        sealed,
                        &device,
                        now,
                        now.saturating_add(EXCHANGE_TTL_SECS),
                    )
                    .await?
                {
                    // The same nonce started concurrently: nothing of this one is kept.
                    drop(tx);
                    let err = replayed();
                    self.audit_refusal(
                        row.customer_id,
                        Some(user_id),
                        "provision",
                        err.code(),
                        actor,
                    )
                    .await;
                    return Err(err);
                }
                // The last allowed attempt ended the issuance with its exchange's window
                // (`count_setup_attempt`): five starts never finished leave nothing awaiting
                // setup (a wrong password is never told here).
                let detail = serde_json::json!({
                    "protocol": "v2",
                    "step": "start",
                    "attempt": row.activation_failures + 1,
                });
                tx.audit(&audit("started", detail)).await?;
                tx.commit().await?;
                return Ok(response.clone());
            }
        }
        Err(EngineError::Unavailable)
    }

    /// An issuance whose attempts are all counted, none of them still open: void it (as v1
    /// voids it at the last wrong password).
    async fn void_if_spent(
        &self,
        tx: &mut Tx<'_>,
        row: &TokenRow,
        open: i64,
        now: i64,
    ) -> Result<()> {
        let max = i64::from(self.policy().max_activation_failures);
        if open == 0 && row.activation_failures >= max && row.state == TokenState::LinkOpened {
            tx.void(row.id, TokenState::LinkOpened, "activation_failures", now)
                .await?;
        }
        Ok(())
    }

    /// `POST /app/v2/setup/finish`: check the app's key confirmation and hand out the secret,
    /// sealed, once.
    ///
    /// # Errors
    /// `SETUP_EXCHANGE_UNKNOWN` (no such exchange, or finished), `SETUP_EXCHANGE_EXPIRED`;
    /// `WRONG_ACTIVATION_PASSWORD` / `ISSUANCE_DEAD` for a confirmation that does not verify;
    /// the token's state refusals as [`Engine::provision`].
    pub async fn setup_finish(
        &self,
        req: &SetupFinishRequest,
        issuer: &str,
        actor: &Actor,
    ) -> Result<SetupFinishResponse> {
        let now_u = self.now();
        let now = now_i64(now_u);
        if req.exchange_id.as_slice().len() != 16 {
            return Err(EngineError::Invalid {
                field: "exchange_id",
                code: "PAKE_MESSAGE_FORMAT",
                message: "exchange_id must be 16 bytes".to_owned(),
            });
        }
        let xid = hex::encode(req.exchange_id.as_slice());
        let max = self.policy().max_activation_failures;
        let mut tx = self.inner.store.begin().await?;
        let Some(x) = tx.take_pake_exchange(&xid).await? else {
            return Err(unknown_exchange());
        };
        let user_id = tx
            .user_id_of(x.token_id)
            .await?
            .ok_or(DomainError::UnknownToken)?;
        let row = tx.token(&user_id).await?.ok_or(DomainError::UnknownToken)?;
        let audit = |outcome: &'static str, detail: serde_json::Value| NewAudit {
            customer_id: Some(row.customer_id),
            user_id: Some(user_id.as_str()),
            detail: Some(detail.to_string()),
            ..actor.audit("provision", outcome, now)
        };
        let v2 = serde_json::json!({ "protocol": "v2", "step": "finish" });
        let Some(sealed) = x.sealed else {
            return Err(unknown_exchange());
        };
        if x.expires_at <= now {
            // Its attempt stays counted: a timeout is a failure.
            let open = tx.expire_pake_exchanges(row.id, now).await?;
            self.void_if_spent(&mut tx, &row, open, now).await?;
            let err = expired_exchange();
            tx.audit(&audit(err.code(), v2)).await?;
            tx.commit().await?;
            return Err(err);
        }
        let Ok(pending) = open_pending(self, &xid, &user_id, &sealed) else {
            // Not the token it was started for (or not sealed by us): nothing is handed out.
            return Err(unknown_exchange());
        };
        let confirmed = match pending.on_finish(req) {
            Ok(c) => c,
            Err(PakeError::ExchangeMismatch) => return Err(unknown_exchange()),
            Err(_) => {
                // A wrong password (or an altered exchange): its attempt stays counted.
                let open = tx.expire_pake_exchanges(row.id, now).await?;
                let attempts = row.activation_failures;
                let err = if attempts >= i64::from(max) {
                    self.void_if_spent(&mut tx, &row, open, now).await?;
                    EngineError::IssuanceDead
                } else {
                    EngineError::WrongActivationPassword {
                        attempts_left: u32::try_from(i64::from(max) - attempts).unwrap_or(0),
                    }
                };
                tx.audit(&audit(err.code(), v2)).await?;
                tx.commit().await?;
                return Err(err);
            }
        };
        // The password is proved: the attempt is given back, and the token is provisioned
        // if it still awaits setup (the rule v1 applies, on the state read here).
        tx.release_activation_attempt(row.id).await?;
        let row = tx.token(&user_id).await?.ok_or(DomainError::UnknownToken)?;
        if let Some(refusal) = super::provision::setup_refusal_of(&row, max, now)? {
            let err = EngineError::from(refusal);
            drop(tx);
            self.audit_refusal(
                row.customer_id,
                Some(&user_id),
                "provision",
                err.code(),
                actor,
            )
            .await;
            return Err(err);
        }
        self.sealing_key_ready(&mut tx).await?;
        let params = snapshot(&row)?.params;
        let secret = Secret::generate(params.algorithm);
        let at_rest = self.inner.keys.seal(&user_id, &secret)?;
        if !tx.provision(row.id, &at_rest, &x.device, now).await? {
            return Err(EngineError::AlreadyProvisioned);
        }
        let device: serde_json::Value =
            serde_json::from_str(&x.device).unwrap_or(serde_json::Value::Null);
        tx.audit(&audit(
            "ok",
            serde_json::json!({
                "protocol": "v2",
                "platform": device.get("platform"),
                "model": device.get("model"),
            }),
        ))
        .await?;
        let response = confirmed
            .seal(&secret, params, now_u, issuer.to_owned(), user_id.clone())
            .map_err(pake_internal)?;
        tx.commit().await?;
        Ok(response)
    }
}

fn open_pending(
    engine: &Engine,
    xid: &str,
    user_id: &str,
    sealed: &Sealed,
) -> Result<ServerPending> {
    let bytes = engine
        .inner
        .keys
        .open_pake(&exchange_label(xid, user_id), sealed)?;
    ServerPending::from_bytes(&bytes).map_err(pake_internal)
}
