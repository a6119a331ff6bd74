//! What the support staff console does (issue 7), as engine operations: staff accounts here;
//! login with a second factor under the lockout rule in [`login`]; the customer file in [`file`]; the actions (unlock, resend the setup mail,
//! revoke, reprovision), each with a mandatory reason and audited with the staff member's ID
//! (`staff:<id>`) in the transaction that makes the change, in [`actions`]; four-eyes
//! requests in [`requests`]. Roles and the four-eyes policy are rules: `domain::staff`.
//!
//! Staff never get a secret, a code or a password back from here, except the one generated
//! activation password of a reprovision, returned once to be read out to the customer. No HTTP
//! here; SQL stays in `store`.

mod actions;
mod file;
mod login;
mod requests;

pub use file::{CustomerFile, TimelinePage};
pub use login::{NewStaff, SecondFactor, StaffLogin};
pub use requests::RequestView;

use serde_json::json;
use zeroize::Zeroizing;

pub use crate::domain::staff::{PasswordChoice, Permission, Role};
use crate::domain::{fields, DomainError};
use crate::store::{NewAudit, StaffRow, StoreError};

use super::{now_i64, Actor, Engine, EngineError, Result};

/// A logged-in staff member.
#[derive(Debug, Clone)]
pub struct StaffMember {
    pub id: i64,
    pub login_id: String,
    pub name: String,
    pub role: Role,
}

impl StaffMember {
    fn of(row: &StaffRow) -> Result<StaffMember> {
        Ok(StaffMember {
            id: row.id,
            login_id: row.login_id.clone(),
            name: row.name.clone(),
            role: Role::parse(&row.role)
                .ok_or_else(|| DomainError::Corrupt(format!("staff role {:?}", row.role)))?,
        })
    }

    /// The audit actor: `staff:<id>`.
    pub fn actor(&self, ip: Option<String>) -> Actor {
        Actor::new(format!("staff:{}", self.id), ip)
    }

    /// # Errors
    /// `STAFF_FORBIDDEN` when the role does not allow it.
    pub fn require(&self, p: Permission) -> Result<()> {
        if self.role.may(p) {
            Ok(())
        } else {
            Err(EngineError::forbidden(
                "your role does not allow this action",
            ))
        }
    }
}

/// The result of a revoke or reprovision.
#[derive(Debug)]
pub enum StaffDone {
    /// It took effect. For a reprovision, the new token's user ID (generated mode).
    Applied { new_user_id: Option<String> },
    /// Four-eyes: it waits for a second supervisor.
    Requested { request_id: i64 },
}

/// A reprovision's outcome, with the generated password (shown once) when there is one.
#[derive(Debug)]
pub struct Reprovisioned {
    pub done: StaffDone,
    /// Read out to the customer once; never stored in clear, never logged.
    pub generated_password: Option<Zeroizing<String>>,
}

impl Engine {
    /// Create a staff account (roles: operator, supervisor) with its second factor
    /// ([`login`]), returned once for the new member's authenticator app.
    ///
    /// # Errors
    /// Bad role or password, or an existing login ID.
    pub async fn create_staff(
        &self,
        login_id: &str,
        name: &str,
        role: &str,
        password: Zeroizing<String>,
    ) -> Result<NewStaff> {
        if Role::parse(role).is_none() {
            return Err(EngineError::Invalid {
                field: "role",
                code: "INVALID_ROLE",
                message: "role must be operator or supervisor".to_owned(),
            });
        }
        fields::login_id(login_id)?;
        fields::staff_password(&password)?;
        let hash = self.hash_password(password).await?;
        let now = now_i64(self.now());
        let mut tx = self.inner.store.begin().await?;
        let id = match tx.insert_staff(login_id, name, role, &hash, now).await {
            Ok(id) => id,
            Err(StoreError::Conflict(_)) => {
                return Err(EngineError::Conflict {
                    code: "STAFF_EXISTS",
                    message: "a staff member with this login ID exists",
                })
            }
            Err(e) => return Err(e.into()),
        };
        let (second_factor, secret) = SecondFactor::new(login_id)?;
        self.seal_second_factor(&mut tx, id, &secret).await?;
        tx.audit(&NewAudit {
            at: now,
            actor: "cli",
            action: "staff_create",
            outcome: "ok",
            detail: Some(
                serde_json::json!({ "staff_id": id, "role": role, "second_factor": "totp" })
                    .to_string(),
            ),
            ..Default::default()
        })
        .await?;
        tx.commit().await?;
        Ok(NewStaff { id, second_factor })
    }

    /// The staff member with this id (a session's), if the account still exists and is not
    /// disabled.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn staff_member(&self, id: i64) -> Result<Option<StaffMember>> {
        match self.store().staff_by_id(id).await? {
            Some(r) if r.disabled_at.is_none() => Ok(Some(StaffMember::of(&r)?)),
            _ => Ok(None),
        }
    }

    /// Disable a staff account (a leaver, a suspected compromise), or enable it again. A
    /// disabled member cannot log in, and their console sessions end at once; the account and
    /// its audit history stay. Audited with the reason. `Ok(false)`: it was already so.
    ///
    /// # Errors
    /// `UNKNOWN_STAFF`, a missing or malformed reason, or the database is unavailable.
    pub async fn set_staff_disabled(
        &self,
        login_id: &str,
        disabled: bool,
        reason: &str,
        actor: &Actor,
    ) -> Result<bool> {
        let reason = fields::reason(reason)?;
        let now = now_i64(self.now());
        let mut tx = self.store().begin().await?;
        let Some(id) = tx
            .set_staff_disabled(login_id, disabled.then_some(now))
            .await?
        else {
            return match self.store().staff_by_login(login_id).await? {
                Some(_) => Ok(false),
                None => Err(EngineError::NotFound {
                    code: "UNKNOWN_STAFF",
                    message: "no staff member has this login ID",
                }),
            };
        };
        let sessions = tx.delete_sessions_of_staff(id).await?;
        // A request the member made waits for nobody's approval once they are disabled: the
        // account may be disabled because it was misused, and an approval would carry out
        // what they asked (a reprovision to an address of their choosing).
        let cancelled = if disabled {
            tx.cancel_requests_of_staff(id, now).await?
        } else {
            Vec::new()
        };
        for (request_id, customer_id, user_id, kind) in &cancelled {
            tx.audit(&NewAudit {
                customer_id: Some(*customer_id),
                user_id: user_id.as_deref(),
                detail: Some(
                                json!({ "request_id": request_id, "kind": kind, "reason": "the requester's account was disabled" })
                                    .to_string(),
                            ),
                ..actor.audit("request_cancelled", "ok", now)
            })
            .await?;
        }
        tx.audit(&NewAudit {
            detail: Some(
                json!({
                    "staff_id": id,
                    "reason": reason,
                    "sessions_ended": sessions,
                    "requests_cancelled": cancelled.len(),
                })
                .to_string(),
            ),
            ..actor.audit(
                if disabled {
                    "staff_disable"
                } else {
                    "staff_enable"
                },
                "ok",
                now,
            )
        })
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
