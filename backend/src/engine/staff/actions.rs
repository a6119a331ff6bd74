//! Staff actions on a customer's token: unlock, resend the setup mail, revoke, reprovision.
//! Revoke and reprovision reuse the lifecycle's and the issuance's own code in the staff
//! transaction.

use rand::Rng;
use serde_json::json;
use zeroize::Zeroizing;

use crate::domain::issuance::issuance_expires_at;
use crate::domain::{self, fields, DomainError, Event, SetupRefusal, TokenState};
use crate::engine::{now_i64, Actor, Engine, EngineError, Result};
use crate::store::{NewAudit, NewStaffRequest, StoreError, TokenRow, Tx};

use super::{PasswordChoice, Permission, Reprovisioned, StaffDone, StaffMember};

impl Engine {
    /// The customer's token `user_id`, checked to belong to the customer.
    async fn customer_token(&self, customer_id: i64, user_id: &str) -> Result<TokenRow> {
        let user_id = protocol::UserId::parse(user_id)?;
        self.store()
            .token_by_user_id(user_id.as_str())
            .await?
            .filter(|t| t.customer_id == customer_id)
            .ok_or_else(|| DomainError::UnknownToken.into())
    }

    /// Lift a lock (operator or supervisor).
    ///
    /// # Errors
    /// Forbidden, no reason, a token not of this customer, or a token that is not locked.
    pub async fn staff_unlock(
        &self,
        staff: &StaffMember,
        customer_id: i64,
        user_id: &str,
        reason: &str,
        ip: Option<String>,
    ) -> Result<()> {
        staff.require(Permission::Unlock)?;
        let row = self.customer_token(customer_id, user_id).await?;
        self.unlock(&row.user_id, &staff.actor(ip), reason).await?;
        Ok(())
    }

    /// Send the setup mail again with a fresh download link; every earlier link of the token
    /// stops working, and the issuance's wait for setup starts again. Only for a token not set
    /// up yet.
    ///
    /// # Errors
    /// Forbidden, no reason, a token not of this customer, or a token already set up or dead.
    pub async fn staff_resend_setup(
        &self,
        staff: &StaffMember,
        customer_id: i64,
        user_id: &str,
        reason: &str,
        ip: Option<String>,
    ) -> Result<()> {
        staff.require(Permission::ResendSetup)?;
        let reason = fields::reason(reason)?;
        let row = self.customer_token(customer_id, user_id).await?;
        let actor = staff.actor(ip);
        let now = now_i64(self.now());
        let mut tx = self.store().begin().await?;
        let row = tx
            .token(&row.user_id)
            .await?
            .ok_or(DomainError::UnknownToken)?;
        let state = row.state;
        if !matches!(state, TokenState::Issued | TokenState::LinkOpened) {
            return Err(EngineError::Conflict {
                code: "NOT_AWAITING_SETUP",
                message: "the setup mail can only be resent for a token not set up yet",
            });
        }
        // Expired unprovisioned (DESIGN §4), or its activation attempts all counted, the
        // issuance is dead even before something marks it void: a resend would bring it back
        // (with no attempt left, and the customer unable to apply again meanwhile). A new
        // issuance is the way. The setup rule decides, as for the app.
        let max = self.policy().max_activation_failures;
        match crate::engine::provision::setup_refusal_of(&row, max, now)? {
            Some(SetupRefusal::Dead) => return Err(EngineError::IssuanceDead),
            Some(SetupRefusal::Expired) => return Err(EngineError::IssuanceExpired),
            _ => {}
        }
        let expires_at = issuance_expires_at(now, self.policy().issuance_ttl_days);
        if !tx.extend_issuance(row.id, expires_at).await? {
            return Err(EngineError::Stale);
        }
        let expired = tx.expire_download_links(row.id, now).await?;
        crate::mail::enqueue_issuance(
            &mut tx,
            &self.config().bank,
            &self.config().links,
            row.customer_id,
            row.id,
            &row.email,
            &row.service_id,
            &row.user_id,
            now,
            true,
        )
        .await?;
        tx.audit(&NewAudit {
            customer_id: Some(row.customer_id),
            user_id: Some(&row.user_id),
            detail: Some(json!({ "reason": reason, "links_expired": expired }).to_string()),
            ..actor.audit("resend_setup_mail", "ok", now)
        })
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revoke a token (lost or stolen phone): it stops verifying at once. With `four_eyes`, a
    /// request a second supervisor must approve (`domain::staff::FourEyes`).
    ///
    /// # Errors
    /// Forbidden, no reason, a token not of this customer or not live, a request pending.
    pub async fn staff_revoke(
        &self,
        staff: &StaffMember,
        customer_id: i64,
        user_id: &str,
        reason: &str,
        ip: Option<String>,
    ) -> Result<StaffDone> {
        staff.require(Permission::Revoke)?;
        let reason = fields::reason(reason)?;
        let row = self.customer_token(customer_id, user_id).await?;
        let now = now_i64(self.now());
        let state = row.state;
        if domain::transition(state, Event::Revoke).is_err()
            || domain::issuance_expired(state, row.expires_at, now)
        {
            return Err(DomainError::IllegalTransition {
                state,
                event: Event::Revoke,
            }
            .into());
        }
        let actor = staff.actor(ip);
        let mut tx = self.store().begin().await?;
        if self.config().four_eyes.needs_approval(Permission::Revoke) {
            let id = self
                .queue_request(
                    &mut tx,
                    &actor,
                    NewStaffRequest {
                        kind: "revoke",
                        customer_id,
                        user_id: Some(&row.user_id),
                        reason,
                        params: "{}",
                        requested_by: staff.id,
                        now,
                    },
                )
                .await?;
            tx.commit().await?;
            return Ok(StaffDone::Requested { request_id: id });
        }
        self.event_in_tx(
            &mut tx,
            &row.user_id,
            Event::Revoke,
            &actor,
            Some(json!({ "reason": reason })),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(StaffDone::Applied { new_user_id: None })
    }

    /// Reprovision: revoke the customer's live token (if any) and start a new issuance usable
    /// at once (the next-day rule waived). `expected_user_id` is the token the staff member saw
    /// (None: the customer had none); a different current token refuses, so a repeated submit
    /// never reprovisions twice. With [`PasswordChoice::Customer`] the customer issues in
    /// internet banking; with [`PasswordChoice::Generated`] the new token is issued now to
    /// `email` (else the address on file, else the last token's), and the generated password
    /// is returned once. With `four_eyes`, a request a second supervisor must approve.
    ///
    /// # Errors
    /// Forbidden, no reason, a bad or missing address, a changed token, a request pending.
    #[allow(clippy::too_many_arguments)] // reason: one staff action's inputs, named at its call
    pub async fn staff_reprovision(
        &self,
        staff: &StaffMember,
        customer_id: i64,
        expected_user_id: Option<&str>,
        reason: &str,
        choice: PasswordChoice,
        email: Option<&str>,
        ip: Option<String>,
    ) -> Result<Reprovisioned> {
        staff.require(Permission::Reprovision)?;
        let reason = fields::reason(reason)?;
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        if let Some(e) = email {
            fields::email(e)?;
        }
        let customer = self
            .store()
            .customer_by_id(customer_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        let latest = self.store().latest_token(customer_id).await?;
        if latest.as_ref().map(|t| t.user_id.as_str()) != expected_user_id {
            return Err(EngineError::Stale);
        }
        let (generated, act_hash, to) = match choice {
            PasswordChoice::Customer => (None, None, None),
            PasswordChoice::Generated => {
                let to = email
                    .map(str::to_owned)
                    .or_else(|| customer.email.clone())
                    .or_else(|| latest.as_ref().map(|t| t.email.clone()))
                    .ok_or(EngineError::Invalid {
                        field: "email",
                        code: "EMAIL_REQUIRED",
                        message: "there is no address on file: give the address for the new token"
                            .to_owned(),
                    })?;
                let password = generate_activation_password();
                let hash = self.activation_credential(password.clone()).await?;
                (Some(password), Some(hash), Some(to))
            }
        };
        let actor = staff.actor(ip);
        let now = now_i64(self.now());
        let mut tx = self.store().begin().await?;
        if self
            .config()
            .four_eyes
            .needs_approval(Permission::Reprovision)
        {
            let params = json!({
                "mode": choice.as_str(),
                "email": email,
                "act_hash": act_hash,
            })
            .to_string();
            let id = self
                .queue_request(
                    &mut tx,
                    &actor,
                    NewStaffRequest {
                        kind: "reprovision",
                        customer_id,
                        user_id: expected_user_id,
                        reason,
                        params: &params,
                        requested_by: staff.id,
                        now,
                    },
                )
                .await?;
            tx.commit().await?;
            return Ok(Reprovisioned {
                done: StaffDone::Requested { request_id: id },
                generated_password: generated,
            });
        }
        let plan = ReprovisionPlan {
            customer_id,
            expected_user_id,
            email: to.as_deref(),
            act_hash: act_hash.as_deref(),
            detail: json!({ "reason": reason, "mode": choice.as_str() }),
        };
        let new_user_id = self.reprovision_in_tx(&mut tx, &actor, &plan, now).await?;
        tx.commit().await?;
        Ok(Reprovisioned {
            done: StaffDone::Applied { new_user_id },
            generated_password: generated,
        })
    }

    async fn queue_request(
        &self,
        tx: &mut Tx<'_>,
        actor: &Actor,
        req: NewStaffRequest<'_>,
    ) -> Result<i64> {
        let id = match tx.insert_staff_request(&req).await {
            Ok(id) => id,
            Err(StoreError::Conflict(_)) => {
                return Err(EngineError::Conflict {
                    code: "REQUEST_PENDING",
                    message: "a request for this customer is already waiting for approval",
                })
            }
            Err(e) => return Err(e.into()),
        };
        tx.audit(&NewAudit {
            customer_id: Some(req.customer_id),
            user_id: req.user_id,
            detail: Some(json!({ "request_id": id, "reason": req.reason }).to_string()),
            ..actor.audit(
                if req.kind == "revoke" {
                    "revoke_requested"
                } else {
                    "reprovision_requested"
                },
                "pending",
                req.now,
            )
        })
        .await?;
        Ok(id)
    }

    pub(super) async fn reprovision_in_tx(
        &self,
        tx: &mut Tx<'_>,
        actor: &Actor,
        plan: &ReprovisionPlan<'_>,
        now: i64,
    ) -> Result<Option<String>> {
        let latest = tx.latest_token(plan.customer_id).await?;
        if latest.as_ref().map(|t| t.user_id.as_str()) != plan.expected_user_id {
            return Err(EngineError::Stale);
        }
        let mut revoked = None;
        if let Some(row) = &latest {
            let state = row.state;
            if self.void_if_ended(tx, row, now).await? {
                // Ended unprovisioned: voided, as a customer's new application does.
            } else if state.is_live() {
                self.event_in_tx(
                    tx,
                    &row.user_id,
                    Event::Revoke,
                    actor,
                    Some(plan.detail.clone()),
                    now,
                )
                .await?;
                revoked = Some(row.user_id.clone());
            }
        }
        let mut detail = plan.detail.clone();
        detail["revoked_user_id"] = json!(revoked);
        let (Some(email), Some(act_hash)) = (plan.email, plan.act_hash) else {
            // The customer chooses the password in internet banking: only waive the wait.
            tx.set_reissue_waived(plan.customer_id, true).await?;
            tx.audit(&NewAudit {
                customer_id: Some(plan.customer_id),
                detail: Some(detail.to_string()),
                ..actor.audit("reprovision", "ok", now)
            })
            .await?;
            return Ok(None);
        };
        // Revoked above (or nothing live): the next-day rule is waived by staff.
        domain::may_issue(None, true, now).map_err(DomainError::from)?;
        let new = self
            .insert_issuance(
                tx,
                plan.customer_id,
                email,
                act_hash,
                actor,
                now,
                Some(json!({ "next_day_rule": "waived", "by": "reprovision" })),
            )
            .await
            // A token appeared meanwhile: what staff saw is no longer so.
            .map_err(|e| match e {
                EngineError::Domain(DomainError::LiveTokenExists(_)) => EngineError::Stale,
                e => e,
            })?;
        let user_id = new.issued.user_id;
        detail["new_user_id"] = json!(user_id.as_str());
        detail["email_changed"] = json!(latest.as_ref().is_some_and(|t| t.email != email));
        tx.audit(&NewAudit {
            customer_id: Some(plan.customer_id),
            user_id: Some(user_id.as_str()),
            detail: Some(detail.to_string()),
            ..actor.audit("reprovision", "ok", now)
        })
        .await?;
        Ok(Some(user_id))
    }
}

pub(super) struct ReprovisionPlan<'a> {
    pub customer_id: i64,
    pub expected_user_id: Option<&'a str>,
    /// With `act_hash`: issue now to this address. Without: the customer issues in IB.
    pub email: Option<&'a str>,
    pub act_hash: Option<&'a str>,
    pub detail: serde_json::Value,
}

/// An 8-digit activation password from the OS CSPRNG.
fn generate_activation_password() -> Zeroizing<String> {
    let n: u32 = rand::rngs::OsRng.gen_range(0..100_000_000);
    Zeroizing::new(format!("{n:08}"))
}
