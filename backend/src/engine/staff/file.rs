//! The customer file staff look at: search, the customer's page, the audit trail and its
//! export. Every search, opening and export is itself audited.

use serde_json::json;

use crate::domain::DomainError;
use crate::engine::{now_i64, token_view, Engine, Result, StaffTokenView};
use crate::store::{AuditRow, CustomerRow, NewAudit};

use super::{Permission, RequestView, StaffMember};

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
    /// The customer's latest transfers, newest first: payee account, amount and whether
    /// transaction authentication was used.
    pub transfers: Vec<crate::store::TransferRow>,
    /// Mail that has not reached the customer (a failed send waiting for another try, or one
    /// given up on), newest first: support sees why a download link or a mailed password never
    /// came, and to which address.
    pub undelivered: Vec<crate::store::UndeliveredMail>,
}

impl Engine {
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
            detail: Some(json!({ "q": q, "found": found.len() }).to_string()),
            ..actor.audit("staff_search", "ok", now_i64(self.now()))
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
            customer_id: Some(customer_id),
            ..actor.audit("staff_view", "ok", now_i64(self.now()))
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
            transfers: self.store().recent_transfers(customer_id, 20).await?,
            undelivered: self.store().undelivered_mail_of(customer_id, 20).await?,
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
            customer_id: Some(customer_id),
            detail: Some(json!({ "rows": rows }).to_string()),
            ..actor.audit("staff_export_audit", "ok", now_i64(self.now()))
        })
        .await?;
        Ok(())
    }
}
