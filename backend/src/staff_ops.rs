//! What the support staff console does (issue 7), as engine operations: staff login, customer
//! search and file, and the staff actions — unlock, resend the setup mail, revoke, reprovision
//! — each with a mandatory reason, each audited with the staff member's ID (`staff:<id>`) in
//! the transaction that makes the change.
//!
//! Roles: an operator searches, views, unlocks and resends the setup mail; a supervisor also
//! revokes and reprovisions. With the four-eyes rule on, a revoke or reprovision is only a
//! request until a second supervisor approves it; the request holds no password (a generated
//! activation password is hashed when it is generated, and shown once to the requester).
//!
//! Staff never get a secret, a code or a password back from here, except the one generated
//! activation password of a reprovision, returned once to be read out to the customer. No HTTP
//! here; SQL stays in `store`.

use rand::Rng;
use serde_json::json;
use zeroize::Zeroizing;

use crate::domain::{self, DomainError, Event, TokenState};
use crate::engine::{now_i64, rules, Actor, Engine, EngineError, Result};
use crate::store::{
    AuditRow, CustomerRow, NewAudit, NewStaffRequest, NewToken, StaffRequestRow, StaffRow,
    StoreError, TokenRow, Tx,
};

/// A staff role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Operator,
    Supervisor,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "operator" => Some(Role::Operator),
            "supervisor" => Some(Role::Supervisor),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Supervisor => "supervisor",
        }
    }
}

/// What a staff member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Search, view a customer, export the audit trail.
    View,
    Unlock,
    ResendSetup,
    Revoke,
    Reprovision,
    /// Approve or reject another supervisor's request (four-eyes).
    Approve,
}

impl Role {
    pub fn may(self, p: Permission) -> bool {
        match p {
            Permission::View | Permission::Unlock | Permission::ResendSetup => true,
            Permission::Revoke | Permission::Reprovision | Permission::Approve => {
                self == Role::Supervisor
            }
        }
    }
}

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
            Err(forbidden("your role does not allow this action"))
        }
    }
}

/// How the customer's new activation password is set in a reprovision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordChoice {
    /// The customer issues the new token in internet banking, choosing the password there;
    /// staff only waive the next-day rule.
    Customer,
    /// A password is generated, shown once to the staff member to read out, stored hashed; the
    /// new issuance is mailed at once.
    Generated,
}

impl PasswordChoice {
    pub fn as_str(self) -> &'static str {
        match self {
            PasswordChoice::Customer => "customer",
            PasswordChoice::Generated => "generated",
        }
    }
}

/// A token as staff see it: lifecycle, lock, dates and the device recorded at setup. No secret,
/// no hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StaffTokenView {
    pub user_id: String,
    pub service_id: String,
    pub state: TokenState,
    pub locked: bool,
    pub failures: i64,
    pub email: String,
    pub issued_at: i64,
    pub expires_at: i64,
    pub link_opened_at: Option<i64>,
    pub provisioned_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub deactivated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub locked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub void_reason: Option<String>,
    /// platform, model, OS version, app version, as the app reported them at setup.
    pub device: Option<protocol::DeviceInfo>,
}

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
    fn of(r: &StaffRequestRow) -> RequestView {
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

/// Which page of a customer's audit timeline to show.
#[derive(Debug, Clone, Copy)]
pub struct TimelinePage {
    /// Rows older than this event id; `None`: the newest.
    pub before_id: Option<i64>,
    pub limit: i64,
}

/// What a customer's page shows.
#[derive(Debug, Clone)]
pub struct CustomerFile {
    pub id: i64,
    pub login_id: String,
    pub name: String,
    pub email: Option<String>,
    pub reissue_waived: bool,
    pub created_at: i64,
    /// Newest first; the first is the current one.
    pub tokens: Vec<StaffTokenView>,
    pub pending: Option<RequestView>,
    /// A page of the audit timeline, newest first (read before this opening is recorded, so
    /// the newest row is the last thing that happened, not the look itself).
    pub timeline: Vec<AuditRow>,
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

fn forbidden(message: &str) -> EngineError {
    EngineError::Invalid {
        field: "staff",
        code: "STAFF_FORBIDDEN",
        message: message.to_owned(),
    }
}

fn invalid(field: &'static str, code: &'static str, message: &str) -> EngineError {
    EngineError::Invalid {
        field,
        code,
        message: message.to_owned(),
    }
}

fn stale() -> EngineError {
    invalid(
        "user_id",
        "STAFF_STALE",
        "the customer's token changed meanwhile; reload the page and check again",
    )
}

/// A reason is mandatory: 3–500 characters, no control characters.
///
/// # Errors
/// `REASON_REQUIRED` or `INVALID_REASON`.
pub fn check_reason(reason: &str) -> Result<&str> {
    let r = reason.trim();
    if r.chars().count() < 3 {
        return Err(invalid(
            "reason",
            "REASON_REQUIRED",
            "a reason of at least 3 characters is required",
        ));
    }
    if r.chars().count() > 500 || r.chars().any(char::is_control) {
        return Err(invalid(
            "reason",
            "INVALID_REASON",
            "the reason must be at most 500 characters on one line",
        ));
    }
    Ok(r)
}

/// An 8-digit activation password from the OS CSPRNG.
fn generate_activation_password() -> Zeroizing<String> {
    let n: u32 = rand::rngs::OsRng.gen_range(0..100_000_000);
    Zeroizing::new(format!("{n:08}"))
}

fn token_view(row: &TokenRow, policy: &domain::Policy, now: i64) -> Result<StaffTokenView> {
    let mut state = row.state()?;
    if domain::issuance_expired(state, row.expires_at, now) {
        state = TokenState::Voided;
    }
    Ok(StaffTokenView {
        user_id: row.user_id.clone(),
        service_id: row.service_id.clone(),
        state,
        locked: policy.is_locked(row.locked_at, now),
        failures: row.failures,
        email: row.email.clone(),
        issued_at: row.issued_at,
        expires_at: row.expires_at,
        link_opened_at: row.link_opened_at,
        provisioned_at: row.provisioned_at,
        activated_at: row.activated_at,
        deactivated_at: row.deactivated_at,
        revoked_at: row.revoked_at,
        locked_at: row.locked_at,
        last_used_at: row.last_used_at,
        void_reason: row.void_reason.clone(),
        device: row
            .device
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok()),
    })
}

impl Engine {
    /// Check a staff login ID and password (Argon2id); audited either way, never with the
    /// password.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn staff_login(
        &self,
        login_id: &str,
        password: Zeroizing<String>,
        ip: Option<String>,
    ) -> Result<Option<StaffMember>> {
        let row = self.store().staff_by_login(login_id).await?;
        let phc = match &row {
            Some(r) => r.password_hash.clone(),
            None => self.dummy_phc().await?,
        };
        // The password is checked for a disabled account too: the answer takes as long, and
        // says no more, than for a wrong password.
        let password_right = self.password_ok(password, phc).await? && row.is_some();
        let disabled = row.as_ref().is_some_and(|r| r.disabled_at.is_some());
        let ok = password_right && !disabled;
        let (actor, outcome) = match (&row, password_right, disabled) {
            (Some(r), true, false) => (format!("staff:{}", r.id), "ok"),
            (Some(r), true, true) => (format!("staff:{}", r.id), "disabled"),
            _ => ("staff".to_owned(), "invalid"),
        };
        self.audit_now(NewAudit {
            at: now_i64(self.now()),
            actor: &actor,
            action: "staff_login",
            outcome,
            ip: ip.as_deref(),
            ..Default::default()
        })
        .await?;
        match row.filter(|_| ok) {
            Some(r) => Ok(Some(StaffMember::of(&r)?)),
            None => Ok(None),
        }
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
        let reason = check_reason(reason)?;
        let now = now_i64(self.now());
        let mut tx = self.store().begin().await?;
        let Some(id) = tx
            .set_staff_disabled(login_id, disabled.then_some(now))
            .await?
        else {
            return match self.store().staff_by_login(login_id).await? {
                Some(_) => Ok(false),
                None => Err(invalid(
                    "login_id",
                    "UNKNOWN_STAFF",
                    "no staff member has this login ID",
                )),
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
                at: now,
                actor: &actor.name,
                customer_id: Some(*customer_id),
                user_id: user_id.as_deref(),
                action: "request_cancelled",
                outcome: "ok",
                ip: actor.ip.as_deref(),
                detail: Some(
                    json!({ "request_id": request_id, "kind": kind, "reason": "the requester's account was disabled" })
                        .to_string(),
                ),
            })
            .await?;
        }
        tx.audit(&NewAudit {
            at: now,
            actor: &actor.name,
            action: if disabled {
                "staff_disable"
            } else {
                "staff_enable"
            },
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: Some(
                json!({
                    "staff_id": id,
                    "reason": reason,
                    "sessions_ended": sessions,
                    "requests_cancelled": cancelled.len(),
                })
                .to_string(),
            ),
            ..Default::default()
        })
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Search customers by login ID (exact or prefix), user ID, or e-mail address. Audited
    /// (who looked for whom), with the query and the number of customers found.
    ///
    /// # Errors
    /// Forbidden, or the database is unavailable.
    pub async fn staff_search(
        &self,
        staff: &StaffMember,
        q: &str,
        ip: Option<String>,
    ) -> Result<Vec<CustomerRow>> {
        staff.require(Permission::View)?;
        let q = q.trim();
        if q.is_empty() || q.len() > 254 {
            return Ok(Vec::new());
        }
        let found = self.store().search_customers(q, 50).await?;
        let actor = staff.actor(ip);
        self.audit_now(NewAudit {
            at: now_i64(self.now()),
            actor: &actor.name,
            action: "staff_search",
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: Some(json!({ "q": q, "found": found.len() }).to_string()),
            ..Default::default()
        })
        .await?;
        Ok(found)
    }

    /// A customer's page: the account, every token (newest first), any pending request. Each
    /// opening is audited.
    ///
    /// # Errors
    /// Forbidden, unknown customer, or the database is unavailable.
    pub async fn staff_customer(
        &self,
        staff: &StaffMember,
        customer_id: i64,
        timeline: TimelinePage,
        ip: Option<String>,
    ) -> Result<CustomerFile> {
        staff.require(Permission::View)?;
        let c = self
            .store()
            .customer_by_id(customer_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        let rows = self
            .store()
            .audit_for_customer(
                customer_id,
                timeline.limit.clamp(1, 10_000),
                timeline.before_id,
            )
            .await?;
        // Who opened whose file, and when.
        let actor = staff.actor(ip);
        self.audit_now(NewAudit {
            at: now_i64(self.now()),
            actor: &actor.name,
            customer_id: Some(customer_id),
            action: "staff_view",
            outcome: "ok",
            ip: actor.ip.as_deref(),
            ..Default::default()
        })
        .await?;
        let now = now_i64(self.now());
        let tokens = self
            .store()
            .tokens_of_customer(customer_id)
            .await?
            .iter()
            .map(|r| token_view(r, self.policy(), now))
            .collect::<Result<Vec<_>>>()?;
        let pending = self
            .store()
            .pending_request_of(customer_id)
            .await?
            .as_ref()
            .map(RequestView::of);
        Ok(CustomerFile {
            id: c.id,
            login_id: c.login_id,
            name: c.name,
            email: c.email,
            reissue_waived: c.reissue_waived != 0,
            created_at: c.created_at,
            tokens,
            pending,
            timeline: rows,
        })
    }

    /// The customer's whole audit trail, newest first (for the CSV export: every event, read
    /// a page at a time, none cut off).
    ///
    /// # Errors
    /// Forbidden, or the database is unavailable.
    pub async fn staff_audit_all(
        &self,
        staff: &StaffMember,
        customer_id: i64,
    ) -> Result<Vec<AuditRow>> {
        const PAGE: i64 = 10_000;
        staff.require(Permission::View)?;
        let mut all: Vec<AuditRow> = Vec::new();
        loop {
            let before = all.last().map(|a| a.id);
            let page = self
                .store()
                .audit_for_customer(customer_id, PAGE, before)
                .await?;
            let short = i64::try_from(page.len()).unwrap_or(0) < PAGE;
            all.extend(page);
            if short {
                return Ok(all);
            }
        }
    }

    /// Record that a staff member exported a customer's audit trail (data leaving the system).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn staff_audit_export(
        &self,
        staff: &StaffMember,
        customer_id: i64,
        rows: usize,
        ip: Option<String>,
    ) -> Result<()> {
        staff.require(Permission::View)?;
        let actor = staff.actor(ip);
        self.audit_now(NewAudit {
            at: now_i64(self.now()),
            actor: &actor.name,
            customer_id: Some(customer_id),
            action: "staff_export_audit",
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: Some(json!({ "rows": rows }).to_string()),
            ..Default::default()
        })
        .await?;
        Ok(())
    }

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
        let reason = check_reason(reason)?;
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
        let reason = check_reason(reason)?;
        let row = self.customer_token(customer_id, user_id).await?;
        let actor = staff.actor(ip);
        let now = now_i64(self.now());
        let mut tx = self.store().begin().await?;
        let row = tx
            .token(&row.user_id)
            .await?
            .ok_or(DomainError::UnknownToken)?;
        let state = row.state()?;
        if !matches!(state, TokenState::Issued | TokenState::LinkOpened) {
            return Err(invalid(
                "user_id",
                "NOT_AWAITING_SETUP",
                "the setup mail can only be resent for a token not set up yet",
            ));
        }
        let expires_at = now + i64::from(self.policy().issuance_ttl_days) * 86_400;
        if !tx.extend_issuance(row.id, expires_at).await? {
            return Err(stale());
        }
        let expired = tx.expire_download_links(row.id, now).await?;
        let links = &self.config().links;
        let mut raw = Zeroizing::new([0u8; 20]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, raw.as_mut());
        let code = Zeroizing::new(hex::encode(raw.as_ref()));
        let link_expires = now + i64::from(links.link_ttl_days) * 86_400;
        let link_id = tx
            .insert_download_link(
                row.id,
                &crate::mail::link_code_hash(&code),
                now,
                link_expires,
            )
            .await?;
        let url = Zeroizing::new(format!(
            "{}/dl/{}",
            links.public_url.trim_end_matches('/'),
            code.as_str()
        ));
        let mail =
            crate::mail::compose::issuance(&url, &row.service_id, &row.user_id, link_expires);
        tx.enqueue_mail(&crate::store::NewMail {
            dedupe_key: &format!("resend:{}:{link_id}", row.user_id),
            kind: "issuance",
            customer_id: Some(row.customer_id),
            user_id: Some(&row.user_id),
            to_addr: &row.email,
            subject: &mail.subject,
            body: &mail.body,
            now,
        })
        .await?;
        tx.audit(&NewAudit {
            at: now,
            actor: &actor.name,
            customer_id: Some(row.customer_id),
            user_id: Some(&row.user_id),
            action: "resend_setup_mail",
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: Some(json!({ "reason": reason, "links_expired": expired }).to_string()),
        })
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Revoke a token (lost or stolen phone): it stops verifying at once. With `four_eyes`, a
    /// request a second supervisor must approve.
    ///
    /// # Errors
    /// Forbidden, no reason, a token not of this customer or not live, a request pending.
    pub async fn staff_revoke(
        &self,
        staff: &StaffMember,
        customer_id: i64,
        user_id: &str,
        reason: &str,
        four_eyes: bool,
        ip: Option<String>,
    ) -> Result<StaffDone> {
        staff.require(Permission::Revoke)?;
        let reason = check_reason(reason)?;
        let row = self.customer_token(customer_id, user_id).await?;
        let now = now_i64(self.now());
        let state = row.state()?;
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
        if four_eyes {
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
        revoke_in_tx(
            &mut tx,
            &row.user_id,
            &actor,
            json!({ "reason": reason }),
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
        four_eyes: bool,
        ip: Option<String>,
    ) -> Result<Reprovisioned> {
        staff.require(Permission::Reprovision)?;
        let reason = check_reason(reason)?;
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        if let Some(e) = email {
            if !rules::email(e) {
                return Err(invalid(
                    "email",
                    "INVALID_EMAIL",
                    "email is not a valid address",
                ));
            }
        }
        let customer = self
            .store()
            .customer_by_id(customer_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        let latest = self.store().latest_token(customer_id).await?;
        if latest.as_ref().map(|t| t.user_id.as_str()) != expected_user_id {
            return Err(stale());
        }
        let (generated, act_hash, to) = match choice {
            PasswordChoice::Customer => (None, None, None),
            PasswordChoice::Generated => {
                let to = email
                    .map(str::to_owned)
                    .or_else(|| customer.email.clone())
                    .or_else(|| latest.as_ref().map(|t| t.email.clone()))
                    .ok_or_else(|| {
                        invalid(
                            "email",
                            "EMAIL_REQUIRED",
                            "there is no address on file: give the address for the new token",
                        )
                    })?;
                let password = generate_activation_password();
                let hash = self.hash_password(password.clone()).await?;
                (Some(password), Some(hash), Some(to))
            }
        };
        let actor = staff.actor(ip);
        let now = now_i64(self.now());
        let mut tx = self.store().begin().await?;
        if four_eyes {
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
                return Err(invalid(
                    "staff",
                    "REQUEST_PENDING",
                    "a request for this customer is already waiting for approval",
                ))
            }
            Err(e) => return Err(e.into()),
        };
        tx.audit(&NewAudit {
            at: req.now,
            actor: &actor.name,
            customer_id: Some(req.customer_id),
            user_id: req.user_id,
            action: if req.kind == "revoke" {
                "revoke_requested"
            } else {
                "reprovision_requested"
            },
            outcome: "pending",
            ip: actor.ip.as_deref(),
            detail: Some(json!({ "request_id": id, "reason": req.reason }).to_string()),
        })
        .await?;
        Ok(id)
    }

    async fn reprovision_in_tx(
        &self,
        tx: &mut Tx<'_>,
        actor: &Actor,
        plan: &ReprovisionPlan<'_>,
        now: i64,
    ) -> Result<Option<String>> {
        let latest = tx.latest_token(plan.customer_id).await?;
        if latest.as_ref().map(|t| t.user_id.as_str()) != plan.expected_user_id {
            return Err(stale());
        }
        let mut revoked = None;
        if let Some(row) = &latest {
            let state = row.state()?;
            if domain::issuance_expired(state, row.expires_at, now) {
                tx.void(row.id, state, "expired", now).await?;
            } else if state.is_live() {
                revoke_in_tx(tx, &row.user_id, actor, plan.detail.clone(), now).await?;
                revoked = Some(row.user_id.clone());
            }
        }
        let mut detail = plan.detail.clone();
        detail["revoked_user_id"] = json!(revoked);
        let (Some(email), Some(act_hash)) = (plan.email, plan.act_hash) else {
            // The customer chooses the password in internet banking: only waive the wait.
            tx.set_reissue_waived(plan.customer_id, true).await?;
            tx.audit(&NewAudit {
                at: now,
                actor: &actor.name,
                customer_id: Some(plan.customer_id),
                action: "reprovision",
                outcome: "ok",
                ip: actor.ip.as_deref(),
                detail: Some(detail.to_string()),
                ..Default::default()
            })
            .await?;
            return Ok(None);
        };
        // Revoked above (or nothing live): the next-day rule is waived by staff.
        domain::may_issue(None, true, now).map_err(DomainError::from)?;
        let params = self.config().params;
        let service_id = self.config().service_id.as_str().to_owned();
        let expires_at = now + i64::from(self.policy().issuance_ttl_days) * 86_400;
        let serial: u64 = rand::rngs::OsRng.gen_range(10_000_000_000..100_000_000_000);
        let user_id = protocol::UserId::from_serial(serial)?;
        let token_id = match tx
            .insert_token(&NewToken {
                customer_id: plan.customer_id,
                user_id: user_id.as_str(),
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
            Ok(id) => id,
            // A random user ID collided (astronomically rare) or a token appeared meanwhile.
            Err(StoreError::Conflict(_)) => return Err(stale()),
            Err(e) => return Err(e.into()),
        };
        crate::mail::enqueue_issuance(
            tx,
            &self.config().links,
            plan.customer_id,
            token_id,
            email,
            &service_id,
            user_id.as_str(),
            now,
        )
        .await?;
        detail["new_user_id"] = json!(user_id.as_str());
        detail["email_changed"] = json!(latest.as_ref().is_some_and(|t| t.email != email));
        tx.audit(&NewAudit {
            at: now,
            actor: &actor.name,
            customer_id: Some(plan.customer_id),
            user_id: Some(user_id.as_str()),
            action: "issue",
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: Some(json!({ "next_day_rule": "waived", "by": "reprovision" }).to_string()),
        })
        .await?;
        tx.audit(&NewAudit {
            at: now,
            actor: &actor.name,
            customer_id: Some(plan.customer_id),
            user_id: Some(user_id.as_str()),
            action: "reprovision",
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: Some(detail.to_string()),
        })
        .await?;
        Ok(Some(user_id.as_str().to_owned()))
    }

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
            return Err(forbidden(
                "a request must be approved by a second supervisor, not the one who made it",
            ));
        }
        // Disabling cancels a member's requests; this holds should one slip in between.
        if self.staff_member(req.requested_by).await?.is_none() {
            return Err(forbidden(
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
            return Err(decided());
        }
        let new_user_id = match req.kind.as_str() {
            "revoke" => {
                let user_id = req.user_id.clone().ok_or_else(stale)?;
                revoke_in_tx(&mut tx, &user_id, &actor, detail, now).await?;
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
            at: now,
            actor: &actor.name,
            customer_id: Some(req.customer_id),
            user_id: req.user_id.as_deref(),
            action: "request_approved",
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: Some(
                json!({ "request_id": req.id, "kind": req.kind, "requested_by": req.requested_by })
                    .to_string(),
            ),
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
        let reason = check_reason(reason)?;
        if cancel {
            if req.requested_by != staff.id {
                return Err(forbidden(
                    "only the staff member who made a request can withdraw it",
                ));
            }
        } else {
            staff.require(Permission::Approve)?;
            if req.requested_by == staff.id {
                return Err(forbidden(
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
            return Err(decided());
        }
        tx.audit(&NewAudit {
            at: now,
            actor: &actor.name,
            customer_id: Some(req.customer_id),
            user_id: req.user_id.as_deref(),
            action: if cancel {
                "request_cancelled"
            } else {
                "request_rejected"
            },
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: Some(
                json!({ "request_id": req.id, "kind": req.kind, "reason": reason }).to_string(),
            ),
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
            .ok_or_else(decided)
    }
}

fn decided() -> EngineError {
    invalid(
        "request",
        "REQUEST_NOT_PENDING",
        "no such request is waiting for approval",
    )
}

struct ReprovisionPlan<'a> {
    customer_id: i64,
    expected_user_id: Option<&'a str>,
    /// With `act_hash`: issue now to this address. Without: the customer issues in IB.
    email: Option<&'a str>,
    act_hash: Option<&'a str>,
    detail: serde_json::Value,
}

/// Revoke a live token in the caller's transaction, with its audit event.
async fn revoke_in_tx(
    tx: &mut Tx<'_>,
    user_id: &str,
    actor: &Actor,
    detail: serde_json::Value,
    now: i64,
) -> Result<()> {
    let row = tx.token(user_id).await?.ok_or(DomainError::UnknownToken)?;
    let state = row.state()?;
    let next = domain::transition(state, Event::Revoke)?;
    if !tx
        .set_state(row.id, state, next, Some("revoked_at"), now)
        .await?
    {
        return Err(stale());
    }
    tx.audit(&NewAudit {
        at: now,
        actor: &actor.name,
        customer_id: Some(row.customer_id),
        user_id: Some(user_id),
        action: "revoke",
        outcome: "ok",
        ip: actor.ip.as_deref(),
        detail: Some(detail.to_string()),
    })
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_issue_says() {
        for p in [
            Permission::View,
            Permission::Unlock,
            Permission::ResendSetup,
        ] {
            assert!(Role::Operator.may(p), "operators may {p:?}");
            assert!(Role::Supervisor.may(p), "supervisors may {p:?}");
        }
        for p in [
            Permission::Revoke,
            Permission::Reprovision,
            Permission::Approve,
        ] {
            assert!(!Role::Operator.may(p), "operators may not {p:?}");
            assert!(Role::Supervisor.may(p), "supervisors may {p:?}");
        }
    }

    #[test]
    fn reasons_are_mandatory() {
        assert_eq!(
            check_reason("  ").err().map(|e| e.code()),
            Some("REASON_REQUIRED")
        );
        assert_eq!(
            check_reason("ab").err().map(|e| e.code()),
            Some("REASON_REQUIRED")
        );
        assert_eq!(
            check_reason("a\nb c").err().map(|e| e.code()),
            Some("INVALID_REASON")
        );
        assert_eq!(check_reason(" lost phone ").ok(), Some("lost phone"));
    }

    #[test]
    fn generated_passwords_are_valid_activation_passwords() {
        for _ in 0..50 {
            let p = generate_activation_password();
            assert!(rules::activation_password(&p), "8 digits, always");
        }
    }
}
