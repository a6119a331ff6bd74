//! The app's initial setup (DESIGN §4): the secret is handed out once, only after the mailed
//! link was opened, only with the right activation password, each attempt counted before the
//! password is checked.

use zeroize::Zeroizing;

use protocol::{DeviceInfo, Secret, ServiceId, TotpParams, UserId};

use crate::domain::issuance::{setup_refusal, SetupRefusal, SetupView};
use crate::domain::{DomainError, TokenState};
use crate::store::{NewAudit, TokenRow};

use super::{now_i64, snapshot, Actor, Engine, EngineError, Result};

/// The domain's setup refusal (`domain::issuance::setup_refusal`) for a token row as read in the
/// transaction that decides (v1 and v2 setup both ask it).
///
/// # Errors
/// A state string the code does not know (a corrupt row).
pub(crate) fn setup_refusal_of(
    row: &TokenRow,
    max_attempts: u32,
    now: i64,
) -> Result<Option<SetupRefusal>> {
    let view = SetupView {
        state: row.state,
        expires_at: row.expires_at,
        void_reason: row.void_reason.as_deref(),
        attempts: row.activation_failures,
    };
    Ok(setup_refusal(view, max_attempts, now))
}

/// v1 asked to set up a token issued with no v1 hash (v1 was off at its issuance).
fn v1_not_registered() -> EngineError {
    EngineError::Conflict {
        code: "SETUP_V1_NOT_REGISTERED",
        message:
            "this token was issued for provisioning v2 only; set it up with /app/v2/setup/start",
    }
}

/// Seconds the last allowed v1 attempt has to be answered: its password check (queued behind
/// at most a few others, then one Argon2 run). Past it, an attempt never answered (the check
/// failed, the process stopped) has ended the issuance.
pub(super) const V1_ATTEMPT_WINDOW_SECS: i64 = 60;

/// Count one activation attempt on `row`, in `tx` (the engine's one attempt rule, for v1 and
/// v2): only if nobody counted meanwhile and the token still awaits setup. The last allowed
/// attempt also ends the issuance once its `window` passes, so an attempt never answered (v1:
/// a password check that failed, a process stopped; v2: an exchange never finished) leaves
/// nothing awaiting setup: the next application voids it as dead instead of waiting out the
/// issuance's days. Returns whether it was counted.
///
/// # Errors
/// The database is unavailable.
pub(super) async fn count_setup_attempt(
    tx: &mut crate::store::Tx<'_>,
    row: &TokenRow,
    max: u32,
    now: i64,
    window: i64,
) -> Result<bool> {
    if !tx
        .count_activation_attempt(row.id, row.activation_failures)
        .await?
    {
        return Ok(false);
    }
    if row.activation_failures + 1 >= i64::from(max) {
        tx.end_issuance_by(row.id, now.saturating_add(window))
            .await?;
    }
    Ok(true)
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

impl Engine {
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
        let row = self.inner.store.token_by_user_id(user_id.as_str()).await?;
        let row = match row {
            Some(r) if r.service_id == service_id.as_str() => r,
            // The field that is wrong is named, and the answer tells nothing of the user ID: a
            // service ID this server does not serve is refused as such whether or not the user
            // ID exists (a token issued under an earlier service ID still matches above).
            _ if *service_id != self.inner.cfg.service_id => {
                return Err(DomainError::UnknownService.into())
            }
            _ => return Err(DomainError::UnknownToken.into()),
        };
        let audit = |outcome: &'static str| NewAudit {
            customer_id: Some(row.customer_id),
            user_id: Some(user_id.as_str()),
            detail: None,
            ..actor.audit("provision", outcome, now)
        };
        let max = self.policy().max_activation_failures;
        // Count the attempt before the password is checked, deciding on the state read in the
        // transaction that counts it: at most `max` passwords are ever checked, and once they
        // are spent every attempt, the right one included, hears the same refusal.
        let mut attempts = None;
        for _ in 0..8 {
            let mut tx = self.inner.store.begin().await?;
            let row = tx
                .token(user_id.as_str())
                .await?
                .ok_or(DomainError::UnknownToken)?;
            let refusal = setup_refusal_of(&row, max, now)?.map(EngineError::from);
            // A token issued while v1 was off has no v1 hash: refused before an attempt is
            // spent (v2 sets it up).
            let refusal = refusal.or_else(|| {
                row.activation_password_hash
                    .is_empty()
                    .then(v1_not_registered)
            });
            if let Some(err) = refusal {
                tx.audit(&audit(err.code())).await?;
                tx.commit().await?;
                return Err(err);
            }
            if count_setup_attempt(&mut tx, &row, max, now, V1_ATTEMPT_WINDOW_SECS).await? {
                tx.commit().await?;
                attempts = Some(row.activation_failures + 1);
                break;
            }
        }
        let attempts = attempts.ok_or(EngineError::Unavailable)?;
        let ok = self
            .password_ok(activation_password, row.activation_password_hash.clone())
            .await?;
        let mut tx = self.inner.store.begin().await?;
        if !ok {
            let max = i64::from(max);
            let err = if attempts >= max {
                tx.void(row.id, TokenState::LinkOpened, "activation_failures", now)
                    .await?;
                EngineError::IssuanceDead
            } else {
                EngineError::WrongActivationPassword {
                    attempts_left: u32::try_from(max - attempts).unwrap_or(0),
                }
            };
            tx.audit(&audit(err.code())).await?;
            tx.commit().await?;
            return Err(err);
        }
        self.sealing_key_ready(&mut tx).await?;
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
                customer_id,
                user_id: Some(user_id),
                detail: None,
                ..actor.audit("provision", outcome, now)
            })
            .await;
        if let Err(e) = res {
            tracing::warn!(error = %e, outcome, "could not audit an app API refusal");
        }
    }
}
