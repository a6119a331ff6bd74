//! Staff login (issue 12, item 3): password and a second factor of the member's own, under the
//! customers' password lockout rule per account and per client address (an IPv4 address or an
//! IPv6 /64, `domain::throttle::client_network`).
//!
//! A member logs in with their password and the current code of a TOTP of their own
//! (`domain::staff::STAFF_TOTP`), provisioned by `otp-backend staff add` (or renewed by
//! `staff totp`), its secret sealed with the master keys and bound to the member. Every
//! attempt is counted by `count_attempt` under `Policy::password_throttle` on two keys, the
//! account and the address it comes from, in the transaction that audits it: ten failures lock
//! the account (from anywhere) and the address (for every account), and while either lock holds
//! every attempt is refused, the right one included. A code matched in the window is spent
//! with a compare-and-set on the member's last step in that same transaction, whatever the
//! password, so an observed code is good for one attempt only.

use protocol::{Algorithm, KeyUri, Secret, StepMatch};
use serde_json::json;
use zeroize::Zeroizing;

use crate::domain::staff::{staff_code, STAFF_TOTP};
use crate::domain::{fields, Attempt};
use crate::store::{NewAudit, StaffRow, ThrottleKey};

use super::super::passwords::count_attempt;
use super::{now_i64, Actor, Engine, EngineError, Result, StaffMember};

/// The issuer shown in the staff member's authenticator app.
const ISSUER: &str = "OTP Bank staff";

/// A staff member's new second factor, to be shown to them once (as an otpauth URI and its QR
/// code) and never again: only its sealed secret is kept. `Debug` redacts the secret.
#[derive(Debug)]
pub struct SecondFactor {
    pub key: KeyUri,
}

impl SecondFactor {
    pub(super) fn new(login_id: &str) -> Result<(SecondFactor, Secret)> {
        let secret = Secret::generate(Algorithm::Sha1);
        let key = KeyUri::new(
            secret.clone(),
            STAFF_TOTP,
            Some(ISSUER.to_owned()),
            login_id.to_owned(),
        )
        .map_err(|e| EngineError::Internal(anyhow::anyhow!("staff key URI: {}", e.code())))?;
        Ok((SecondFactor { key }, secret))
    }

    /// The otpauth URI for the authenticator app (holds the secret: show once, never log).
    pub fn uri(&self) -> Zeroizing<String> {
        self.key.to_uri()
    }
}

/// A new staff account and its second factor.
#[derive(Debug)]
pub struct NewStaff {
    pub id: i64,
    pub second_factor: SecondFactor,
}

/// What a staff login attempt comes to.
#[derive(Debug)]
pub enum StaffLogin {
    Ok(StaffMember),
    /// Unknown login ID, wrong password, missing, wrong or used code, or a disabled account:
    /// one answer for all of them.
    Invalid,
    /// Too many failures on this account or from this address: every attempt is refused,
    /// the right one included, until `until` (Unix seconds).
    Locked {
        until: i64,
    },
}

impl Engine {
    /// Give a new staff member (created in `tx`, id `staff_id`) a second factor: a fresh
    /// secret sealed under the newest master key, bound to the member.
    pub(super) async fn seal_second_factor(
        &self,
        tx: &mut crate::store::Tx<'_>,
        staff_id: i64,
        secret: &Secret,
    ) -> Result<()> {
        self.sealing_key_ready(tx).await?;
        let sealed = self.keys().seal_staff_totp(staff_id, secret)?;
        tx.set_staff_totp(staff_id, &sealed).await?;
        Ok(())
    }

    /// Replace a staff member's second factor (a lost or replaced phone): the old one stops
    /// working at once, and so do the member's console sessions. Audited with the reason.
    ///
    /// # Errors
    /// `UNKNOWN_STAFF`, a missing or malformed reason, or the database is unavailable.
    pub async fn renew_staff_totp(
        &self,
        login_id: &str,
        reason: &str,
        actor: &Actor,
    ) -> Result<SecondFactor> {
        let reason = fields::reason(reason)?;
        let row = self
            .store()
            .staff_by_login(login_id)
            .await?
            .ok_or(EngineError::NotFound {
                code: "UNKNOWN_STAFF",
                message: "no staff member has this login ID",
            })?;
        let (factor, secret) = SecondFactor::new(&row.login_id)?;
        let now = now_i64(self.now());
        let mut tx = self.store().begin().await?;
        self.seal_second_factor(&mut tx, row.id, &secret).await?;
        let sessions = tx.delete_sessions_of_staff(row.id).await?;
        tx.audit(&NewAudit {
            detail: Some(
                json!({ "staff_id": row.id, "reason": reason, "sessions_ended": sessions })
                    .to_string(),
            ),
            ..actor.audit("staff_totp_renew", "ok", now)
        })
        .await?;
        tx.commit().await?;
        Ok(factor)
    }

    /// Check a staff login: password, then the member's own code, under the lockout rule per
    /// account and per address (module doc). Audited either way as `staff_login` (outcomes
    /// `ok`, `invalid`, `bad_code`, `replayed`, `disabled`, `locked`), a lock as `staff_lock`;
    /// never with the password or the code.
    ///
    /// # Errors
    /// The database is unavailable, hashing is saturated (`Unavailable`), or a sealed second
    /// factor does not open.
    pub async fn staff_login(
        &self,
        login_id: &str,
        password: Zeroizing<String>,
        code: Zeroizing<String>,
        ip: Option<String>,
    ) -> Result<StaffLogin> {
        let row = self.store().staff_by_login(login_id).await?;
        let phc = match &row {
            Some(r) => r.password_hash.clone(),
            None => self.dummy_phc().await?,
        };
        // The password is checked for a disabled or locked account too: the answer takes as
        // long, and a disabled one says no more than a wrong password.
        let password_right = self.password_ok(password, phc).await? && row.is_some();
        let secret = match row.as_ref().and_then(|r| Some((r.id, r.sealed_totp()?))) {
            Some((id, sealed)) => Some(self.keys().open_staff_totp(id, &sealed)?),
            None => None,
        };
        let now = self.now();
        let at = now_i64(now);
        let throttle = self.policy().password_throttle();
        let mut keys = Vec::new();
        if let Some(r) = &row {
            keys.push(ThrottleKey::staff(r.id));
        }
        if let Some(ip) = &ip {
            keys.push(ThrottleKey::staff_ip(ip));
        }
        let actor = Actor::new(
            row.as_ref()
                .map_or_else(|| "staff".to_owned(), |r| format!("staff:{}", r.id)),
            ip.clone(),
        );
        for _ in 0..8 {
            let mut tx = self.store().begin().await?;
            // The code is matched against the last step as this transaction sees it.
            let last_step = match &row {
                Some(r) => tx
                    .staff(r.id)
                    .await?
                    .and_then(|r| r.totp_last_step)
                    .and_then(|s| u64::try_from(s).ok()),
                None => None,
            };
            let matched = match &secret {
                Some(s) => staff_code(s, &code, last_step, self.policy(), now),
                None => StepMatch::NoMatch,
            };
            let disabled = row.as_ref().is_some_and(|r| r.disabled_at.is_some());
            let right = password_right && !disabled && matches!(matched, StepMatch::Accepted(_));
            let Some(counted) = count_attempt(&mut tx, &throttle, &keys, right, at).await? else {
                continue;
            };
            let locked_out = matches!(counted.attempt, Attempt::Locked { .. });
            if let (Some(r), StepMatch::Accepted(step), false) = (&row, matched, locked_out) {
                let step = i64::try_from(step).unwrap_or(i64::MAX);
                if !tx.spend_staff_step(r.id, step).await? {
                    // The same code, spent by a concurrent attempt: decide again.
                    continue;
                }
            }
            let outcome = match counted.attempt {
                Attempt::Locked { .. } => "locked",
                Attempt::Right => "ok",
                _ if !password_right => "invalid",
                _ if disabled => "disabled",
                _ if matches!(matched, StepMatch::Replayed(_)) => "replayed",
                _ => "bad_code",
            };
            tx.audit(&actor.audit("staff_login", outcome, at)).await?;
            for ((key, seen), next) in keys.iter().zip(&counted.seen).zip(&counted.next) {
                if next.locked_at == Some(at) && seen.locked_at != Some(at) {
                    let (who, scope) = match &row {
                        Some(r) if *key == ThrottleKey::staff(r.id) => {
                            (actor.name.clone(), "account")
                        }
                        _ => ("staff".to_owned(), "ip"),
                    };
                    tx.audit(&NewAudit {
                        actor: &who,
                        detail: Some(
                            json!({ "scope": scope, "failures": next.failures }).to_string(),
                        ),
                        ..actor.audit("staff_lock", "locked", at)
                    })
                    .await?;
                }
            }
            tx.commit().await?;
            if right {
                // Counters nobody has touched for a day (or a lock time, if longer) are over.
                let horizon = i64::try_from(self.policy().password_lock_seconds)
                    .unwrap_or(i64::MAX)
                    .max(86_400);
                self.store()
                    .purge_throttles(at.saturating_sub(horizon))
                    .await?;
            }
            return Ok(match (counted.attempt, row) {
                (Attempt::Right, Some(r)) => StaffLogin::Ok(StaffMember::of(&r)?),
                (Attempt::Locked { until }, _) | (Attempt::JustLocked { until }, _) => {
                    StaffLogin::Locked {
                        until: until.unwrap_or(at),
                    }
                }
                _ => StaffLogin::Invalid,
            });
        }
        Err(EngineError::Unavailable)
    }

    /// Re-seal every staff second factor not under the current master key (`keys rotate`).
    pub(crate) async fn reseal_staff_totps(&self) -> Result<u64> {
        let current = self.keys().current_id();
        let cli = Actor::cli();
        let mut done = 0u64;
        loop {
            let rows: Vec<StaffRow> = self.store().staff_not_under_key(&current, 500).await?;
            if rows.is_empty() {
                return Ok(done);
            }
            for row in rows {
                let Some(sealed) = row.sealed_totp() else {
                    continue;
                };
                let secret = self.keys().open_staff_totp(row.id, &sealed)?;
                let resealed = self.keys().seal_staff_totp(row.id, &secret)?;
                let mut tx = self.store().begin().await?;
                if tx
                    .reseal_staff_totp(row.id, &sealed.key_id, &resealed)
                    .await?
                {
                    tx.audit(&NewAudit {
                        detail: Some(
                            json!({ "staff_id": row.id, "from": sealed.key_id, "to": resealed.key_id })
                                .to_string(),
                        ),
                        ..cli.audit("key_rotate", "ok", now_i64(self.now()))
                    })
                    .await?;
                    tx.commit().await?;
                    done += 1;
                }
            }
        }
    }
}
