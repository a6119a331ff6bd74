//! Four-eyes requests: approving (never one's own), rejecting, withdrawing.

use serde_json::json;

use crate::domain::{fields, DomainError, Event};
use crate::engine::{now_i64, Engine, EngineError, Result};
use crate::store::{NewAudit, StaffRequestRow};

use super::actions::ReprovisionPlan;
use super::{Permission, StaffMember};

/// A pending (or decided) four-eyes request, without its parameters' password hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RequestView {
    pub id: i64,
    pub kind: String,
    pub customer_id: i64,
    pub user_id: Option<String>,
    pub reason: String,
    pub requested_by: i64,
    pub requested_at: i64,
    pub status: String,
    /// For a reprovision: `customer` or `generated`.
    pub mode: Option<String>,
    /// For a reprovision: the address the new issuance goes to, when not the one on file.
    pub email: Option<String>,
}

impl RequestView {
    pub(super) fn of(r: &StaffRequestRow) -> RequestView {
        let params: serde_json::Value = serde_json::from_str(&r.params).unwrap_or_default();
        let s = |k: &str| params.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        RequestView {
            id: r.id,
            kind: r.kind.clone(),
            customer_id: r.customer_id,
            user_id: r.user_id.clone(),
            reason: r.reason.clone(),
            requested_by: r.requested_by,
            requested_at: r.requested_at,
            status: r.status.clone(),
            mode: s("mode"),
            email: s("email"),
        }
    }
}

impl Engine {
    /// Requests waiting for approval, oldest first.
    ///
    /// # Errors
    /// Forbidden, or the database is unavailable.
    pub async fn staff_pending(&self, staff: &StaffMember) -> Result<Vec<RequestView>> {
        staff.require(Permission::View)?;
        Ok(self
            .store()
            .staff_requests("pending", 200)
            .await?
            .iter()
            .map(RequestView::of)
            .collect())
    }

    /// Approve another supervisor's request: it takes effect now, in the transaction that
    /// marks it approved. Never one's own.
    ///
    /// # Errors
    /// Forbidden (not a supervisor, or one's own request), unknown or decided request, or the
    /// action itself refused (the token changed meanwhile).
    pub async fn staff_approve(
        &self,
        staff: &StaffMember,
        request_id: i64,
        ip: Option<String>,
    ) -> Result<Option<String>> {
        staff.require(Permission::Approve)?;
        let req = self.pending_request(request_id).await?;
        if req.requested_by == staff.id {
            return Err(EngineError::forbidden(
                "a request must be approved by a second supervisor, not the one who made it",
            ));
        }
        // Disabling cancels a member's requests; this holds should one slip in between.
        if self.staff_member(req.requested_by).await?.is_none() {
            return Err(EngineError::forbidden(
                "the staff member who made this request is disabled; it cannot be approved",
            ));
        }
        let actor = staff.actor(ip);
        let now = now_i64(self.now());
        let params: serde_json::Value = serde_json::from_str(&req.params).unwrap_or_default();
        let s = |k: &str| params.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let detail = json!({
            "reason": req.reason,
            "request_id": req.id,
            "requested_by": req.requested_by,
        });
        let mut tx = self.store().begin().await?;
        if !tx
            .decide_staff_request(req.id, "approved", staff.id, "ok", now)
            .await?
        {
            return Err(not_pending());
        }
        let new_user_id = match req.kind.as_str() {
            "revoke" => {
                let user_id = req.user_id.clone().ok_or(EngineError::Stale)?;
                self.event_in_tx(&mut tx, &user_id, Event::Revoke, &actor, Some(detail), now)
                    .await?;
                None
            }
            _ => {
                let act_hash = s("act_hash");
                let email = match &act_hash {
                    None => None,
                    Some(_) => {
                        let c = tx
                            .customer(req.customer_id)
                            .await?
                            .ok_or(DomainError::UnknownCustomer)?;
                        let last = tx.latest_token(req.customer_id).await?;
                        s("email").or(c.email).or_else(|| last.map(|t| t.email))
                    }
                };
                let mut detail = detail;
                detail["mode"] = json!(s("mode"));
                let plan = ReprovisionPlan {
                    customer_id: req.customer_id,
                    expected_user_id: req.user_id.as_deref(),
                    email: email.as_deref(),
                    act_hash: act_hash.as_deref(),
                    detail,
                };
                self.reprovision_in_tx(&mut tx, &actor, &plan, now).await?
            }
        };
        tx.audit(&NewAudit {
            customer_id: Some(req.customer_id),
            user_id: req.user_id.as_deref(),
            detail: Some(
                json!({ "request_id": req.id, "kind": req.kind, "requested_by": req.requested_by })
                    .to_string(),
            ),
            ..actor.audit("request_approved", "ok", now)
        })
        .await?;
        tx.commit().await?;
        Ok(new_user_id)
    }

    /// Reject another supervisor's request, or withdraw one's own (`cancel`). A staff member
    /// can withdraw only their own request, and reject only someone else's.
    ///
    /// # Errors
    /// Forbidden, unknown or decided request, no reason.
    pub async fn staff_decline(
        &self,
        staff: &StaffMember,
        request_id: i64,
        cancel: bool,
        reason: &str,
        ip: Option<String>,
    ) -> Result<()> {
        let req = self.pending_request(request_id).await?;
        let reason = fields::reason(reason)?;
        if cancel {
            if req.requested_by != staff.id {
                return Err(EngineError::forbidden(
                    "only the staff member who made a request can withdraw it",
                ));
            }
        } else {
            staff.require(Permission::Approve)?;
            if req.requested_by == staff.id {
                return Err(EngineError::forbidden(
                    "withdraw your own request instead of rejecting it",
                ));
            }
        }
        let actor = staff.actor(ip);
        let now = now_i64(self.now());
        let status = if cancel { "cancelled" } else { "rejected" };
        let mut tx = self.store().begin().await?;
        if !tx
            .decide_staff_request(req.id, status, staff.id, status, now)
            .await?
        {
            return Err(not_pending());
        }
        tx.audit(&NewAudit {
            customer_id: Some(req.customer_id),
            user_id: req.user_id.as_deref(),
            detail: Some(
                json!({ "request_id": req.id, "kind": req.kind, "reason": reason }).to_string(),
            ),
            ..actor.audit(
                if cancel {
                    "request_cancelled"
                } else {
                    "request_rejected"
                },
                "ok",
                now,
            )
        })
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn pending_request(&self, id: i64) -> Result<StaffRequestRow> {
        self.store()
            .staff_request(id)
            .await?
            .filter(|r| r.status == "pending")
            .ok_or(not_pending())
    }
}

fn not_pending() -> EngineError {
    EngineError::Conflict {
        code: "REQUEST_NOT_PENDING",
        message: "no such request is waiting for approval",
    }
}
