//! SQL for the support staff console (migration 0004): staff accounts and sessions, customer
//! search, the customer's tokens and audit timeline, download-link renewal, and the four-eyes
//! requests. Same rules as the parent module: runtime queries shared by SQLite and PostgreSQL,
//! decisions by conditional statements.

use sqlx::FromRow;

use crate::crypto::Sealed;

use super::tokens::TOKEN_COLUMNS;
use super::{AuditRow, CustomerRow, Result, Store, TokenRow, Tx};

/// A staff account. No `Debug`: it carries the password hash.
#[derive(Clone, FromRow)]
pub struct StaffRow {
    pub id: i64,
    pub login_id: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: i64,
    /// When the account was disabled; it cannot log in while set.
    pub disabled_at: Option<i64>,
    /// The second factor's secret, sealed (migration 0012); `None`: no second factor yet.
    pub totp_key_id: Option<String>,
    pub totp_enc: Option<Vec<u8>>,
    pub totp_format: Option<i64>,
    /// The last step whose code was accepted (or spent by a failed login).
    pub totp_last_step: Option<i64>,
}

impl StaffRow {
    /// The sealed second-factor secret, if the member has one.
    pub fn sealed_totp(&self) -> Option<Sealed> {
        Some(Sealed {
            key_id: self.totp_key_id.clone()?,
            format: self.totp_format?,
            blob: self.totp_enc.clone()?,
        })
    }
}

const STAFF_COLUMNS: &str = "id, login_id, name, role, password_hash, created_at, disabled_at, \
    totp_key_id, totp_enc, totp_format, totp_last_step";

/// A staff session. `id_hash` is the SHA-256 of the cookie value.
#[derive(Debug, Clone, FromRow)]
pub struct StaffSessionRow {
    pub id_hash: String,
    pub staff_id: i64,
    pub csrf: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

/// A four-eyes request. `params` is JSON and may hold a password hash: no `Debug`.
#[derive(Clone, FromRow)]
pub struct StaffRequestRow {
    pub id: i64,
    pub kind: String,
    pub customer_id: i64,
    pub user_id: Option<String>,
    pub reason: String,
    pub params: String,
    pub requested_by: i64,
    pub requested_at: i64,
    pub status: String,
    pub decided_by: Option<i64>,
    pub decided_at: Option<i64>,
    pub outcome: Option<String>,
}

const REQUEST_COLUMNS: &str = "id, kind, customer_id, user_id, reason, params, requested_by, \
    requested_at, status, decided_by, decided_at, outcome";

/// A request to put in the queue.
pub struct NewStaffRequest<'a> {
    pub kind: &'a str,
    pub customer_id: i64,
    pub user_id: Option<&'a str>,
    pub reason: &'a str,
    pub params: &'a str,
    pub requested_by: i64,
    pub now: i64,
}

impl Store {
    pub async fn staff_by_login(&self, login_id: &str) -> Result<Option<StaffRow>> {
        Ok(sqlx::query_as::<_, StaffRow>(&format!(
            "SELECT {STAFF_COLUMNS} FROM staff WHERE login_id = $1"
        ))
        .bind(login_id)
        .fetch_optional(&self.read)
        .await?)
    }

    pub async fn staff_by_id(&self, id: i64) -> Result<Option<StaffRow>> {
        Ok(sqlx::query_as::<_, StaffRow>(&format!(
            "SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Every staff member's sealed second factor, with the member's id (bound into it); for the
    /// key check of a restore. Staff are few: one query.
    pub async fn sealed_staff_totps(&self) -> Result<Vec<(i64, Sealed)>> {
        let rows: Vec<StaffRow> = sqlx::query_as::<_, StaffRow>(&format!(
            "SELECT {STAFF_COLUMNS} FROM staff WHERE totp_key_id IS NOT NULL ORDER BY id"
        ))
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.sealed_totp().map(|s| (r.id, s)))
            .collect())
    }

    /// Up to `limit` staff members whose second factor is sealed under a key other than
    /// `key_id`.
    pub async fn staff_not_under_key(&self, key_id: &str, limit: i64) -> Result<Vec<StaffRow>> {
        Ok(sqlx::query_as::<_, StaffRow>(&format!(
            "SELECT {STAFF_COLUMNS} FROM staff WHERE totp_key_id IS NOT NULL AND totp_key_id <> $1 \
             ORDER BY id LIMIT $2"
        ))
        .bind(key_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Customers whose login ID, e-mail on file, or any token's user ID or address matches
    /// `q` exactly (case-insensitively for addresses), or whose login ID starts with it.
    pub async fn search_customers(&self, q: &str, limit: i64) -> Result<Vec<CustomerRow>> {
        let lower = q.to_lowercase();
        let prefix = format!(
            "{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        Ok(sqlx::query_as::<_, CustomerRow>(
            "SELECT * FROM customers c WHERE c.login_id = $1 OR c.login_id LIKE $2 ESCAPE '\\' \
             OR LOWER(c.email) = $3 \
             OR c.id IN (SELECT t.customer_id FROM tokens t WHERE t.user_id = $1 OR LOWER(t.email) = $3) \
             ORDER BY c.login_id LIMIT $4",
        )
        .bind(q)
        .bind(prefix)
        .bind(lower)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Every token of a customer, newest first.
    pub async fn tokens_of_customer(&self, customer_id: i64) -> Result<Vec<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE customer_id = $1 ORDER BY id DESC"
        ))
        .bind(customer_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// A customer's audit events, newest first: `limit` rows with ids below `before_id`.
    pub async fn audit_for_customer(
        &self,
        customer_id: i64,
        limit: i64,
        before_id: Option<i64>,
    ) -> Result<Vec<AuditRow>> {
        Ok(sqlx::query_as::<_, AuditRow>(
            "SELECT * FROM audit_events WHERE customer_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
        )
        .bind(customer_id)
        .bind(before_id.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn staff_session(&self, id_hash: &str) -> Result<Option<StaffSessionRow>> {
        Ok(sqlx::query_as::<_, StaffSessionRow>(
            "SELECT id_hash, staff_id, csrf, created_at, last_seen_at FROM staff_sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.read)
        .await?)
    }

    pub async fn insert_staff_session(&self, s: &StaffSessionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO staff_sessions (id_hash, staff_id, csrf, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.id_hash)
        .bind(s.staff_id)
        .bind(&s.csrf)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Extend a staff session seen at `now`, only if it was seen after `idle_before`; false:
    /// it timed out (or is gone).
    pub async fn touch_staff_session(
        &self,
        id_hash: &str,
        now: i64,
        idle_before: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE staff_sessions SET last_seen_at = $1 WHERE id_hash = $2 AND last_seen_at > $3",
        )
        .bind(now)
        .bind(id_hash)
        .bind(idle_before)
        .execute(&self.write)
        .await?
        .rows_affected()
            == 1)
    }

    pub async fn delete_staff_session(&self, id_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM staff_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Forget staff sessions idle since before `idle_before`.
    pub async fn purge_staff_sessions(&self, idle_before: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM staff_sessions WHERE last_seen_at <= $1")
                .bind(idle_before)
                .execute(&self.write)
                .await?
                .rows_affected(),
        )
    }

    pub async fn staff_request(&self, id: i64) -> Result<Option<StaffRequestRow>> {
        Ok(sqlx::query_as::<_, StaffRequestRow>(&format!(
            "SELECT {REQUEST_COLUMNS} FROM staff_requests WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Requests in a status, oldest first.
    pub async fn staff_requests(&self, status: &str, limit: i64) -> Result<Vec<StaffRequestRow>> {
        Ok(sqlx::query_as::<_, StaffRequestRow>(&format!(
            "SELECT {REQUEST_COLUMNS} FROM staff_requests WHERE status = $1 ORDER BY id LIMIT $2"
        ))
        .bind(status)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// The pending request of a customer, if any.
    pub async fn pending_request_of(&self, customer_id: i64) -> Result<Option<StaffRequestRow>> {
        Ok(sqlx::query_as::<_, StaffRequestRow>(&format!(
            "SELECT {REQUEST_COLUMNS} FROM staff_requests WHERE customer_id = $1 AND status = 'pending'"
        ))
        .bind(customer_id)
        .fetch_optional(&self.read)
        .await?)
    }
}

impl Tx<'_> {
    /// # Errors
    /// [`StoreError::Conflict`] when the login ID exists.
    pub async fn insert_staff(
        &mut self,
        login_id: &str,
        name: &str,
        role: &str,
        password_hash: &str,
        now: i64,
    ) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO staff (login_id, name, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(login_id)
        .bind(name)
        .bind(role)
        .bind(password_hash)
        .bind(now)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }

    /// The staff member as this transaction sees it (the last accepted step is decided on it).
    pub async fn staff(&mut self, id: i64) -> Result<Option<StaffRow>> {
        Ok(sqlx::query_as::<_, StaffRow>(&format!(
            "SELECT {STAFF_COLUMNS} FROM staff WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&mut *self.0)
        .await?)
    }

    /// Give a staff member a new second factor (sealed), forgetting the old one's last step.
    pub async fn set_staff_totp(&mut self, staff_id: i64, sealed: &Sealed) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE staff SET totp_key_id = $1, totp_enc = $2, totp_format = $3, \
             totp_last_step = NULL WHERE id = $4",
        )
        .bind(&sealed.key_id)
        .bind(&sealed.blob)
        .bind(sealed.format)
        .bind(staff_id)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Spend a step of a staff member's codes, only if it is newer than the last one spent:
    /// the compare-and-set that makes a code work once (RFC 6238 §5.2), even when two logins
    /// send it at the same moment. Returns whether it was spent here.
    pub async fn spend_staff_step(&mut self, staff_id: i64, step: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE staff SET totp_last_step = $1 WHERE id = $2 \
             AND (totp_last_step IS NULL OR totp_last_step < $1)",
        )
        .bind(step)
        .bind(staff_id)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Replace a staff member's sealed second factor if it is still sealed under `old_key_id`.
    pub async fn reseal_staff_totp(
        &mut self,
        staff_id: i64,
        old_key_id: &str,
        sealed: &Sealed,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE staff SET totp_key_id = $1, totp_enc = $2, totp_format = $3 \
             WHERE id = $4 AND totp_key_id = $5",
        )
        .bind(&sealed.key_id)
        .bind(&sealed.blob)
        .bind(sealed.format)
        .bind(staff_id)
        .bind(old_key_id)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Disable a staff account at `now`, or (`None`) enable it again. `Some(id)` when the account
    /// changed; `None` when no account has this login ID or it was already so.
    pub async fn set_staff_disabled(
        &mut self,
        login_id: &str,
        disabled_at: Option<i64>,
    ) -> Result<Option<i64>> {
        let row: Option<(i64,)> = match disabled_at {
            Some(now) => sqlx::query_as(
                "UPDATE staff SET disabled_at = $1 WHERE login_id = $2 AND disabled_at IS NULL \
                     RETURNING id",
            )
            .bind(now)
            .bind(login_id)
            .fetch_optional(&mut *self.0)
            .await?,
            None => {
                sqlx::query_as(
                    "UPDATE staff SET disabled_at = NULL WHERE login_id = $1 \
                     AND disabled_at IS NOT NULL RETURNING id",
                )
                .bind(login_id)
                .fetch_optional(&mut *self.0)
                .await?
            }
        };
        Ok(row.map(|(id,)| id))
    }

    /// Cancel every request of a staff member still waiting for approval (their account is
    /// being disabled), dropping what the requests held; (id, customer, user ID, kind) of each.
    pub async fn cancel_requests_of_staff(
        &mut self,
        staff_id: i64,
        now: i64,
    ) -> Result<Vec<(i64, i64, Option<String>, String)>> {
        Ok(sqlx::query_as(
            "UPDATE staff_requests SET status = 'cancelled', decided_by = $1, decided_at = $2, \
             outcome = 'requester_disabled', params = '{}' \
             WHERE requested_by = $1 AND status = 'pending' \
             RETURNING id, customer_id, user_id, kind",
        )
        .bind(staff_id)
        .bind(now)
        .fetch_all(&mut *self.0)
        .await?)
    }

    /// End every console session of a staff member; how many there were.
    pub async fn delete_sessions_of_staff(&mut self, staff_id: i64) -> Result<u64> {
        Ok(
            sqlx::query("DELETE FROM staff_sessions WHERE staff_id = $1")
                .bind(staff_id)
                .execute(&mut *self.0)
                .await?
                .rows_affected(),
        )
    }

    /// Make every download link of a token unusable from `now` (a fresh one replaces them).
    pub async fn expire_download_links(&mut self, token_id: i64, now: i64) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE download_links SET expires_at = $1 WHERE token_id = $2 AND expires_at > $1",
        )
        .bind(now)
        .bind(token_id)
        .execute(&mut *self.0)
        .await?
        .rows_affected())
    }

    /// End an issuance not yet set up by `expires_at` at the latest (its last allowed attempt's
    /// window: it is dead once that passes, whoever calls or not).
    pub async fn end_issuance_by(&mut self, token_id: i64, expires_at: i64) -> Result<()> {
        sqlx::query(
            "UPDATE tokens SET expires_at = $1 \
             WHERE id = $2 AND state IN ('issued', 'link_opened') AND expires_at > $1",
        )
        .bind(expires_at)
        .bind(token_id)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    /// Give an issuance not yet set up a new expiry (a resent setup mail restarts the wait).
    pub async fn extend_issuance(&mut self, token_id: i64, expires_at: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE tokens SET expires_at = $1 WHERE id = $2 AND state IN ('issued', 'link_opened')",
        )
        .bind(expires_at)
        .bind(token_id)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Replace a pending request's parameters, if they are still `old`. Returns whether it did.
    pub async fn replace_request_params(&mut self, id: i64, old: &str, new: &str) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE staff_requests SET params = $1 WHERE id = $2 AND status = 'pending' AND params = $3",
        )
        .bind(new)
        .bind(id)
        .bind(old)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// # Errors
    /// [`super::StoreError::Conflict`] when the customer already has a pending request.
    pub async fn insert_staff_request(&mut self, r: &NewStaffRequest<'_>) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO staff_requests (kind, customer_id, user_id, reason, params, requested_by, requested_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(r.kind)
        .bind(r.customer_id)
        .bind(r.user_id)
        .bind(r.reason)
        .bind(r.params)
        .bind(r.requested_by)
        .bind(r.now)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }

    /// Decide a pending request, only if it is still pending; false: someone decided first.
    pub async fn decide_staff_request(
        &mut self,
        id: i64,
        status: &str,
        decided_by: i64,
        outcome: &str,
        now: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE staff_requests SET status = $1, decided_by = $2, decided_at = $3, outcome = $4, \
             params = '{}' WHERE id = $5 AND status = 'pending'",
        )
        .bind(status)
        .bind(decided_by)
        .bind(now)
        .bind(outcome)
        .bind(id)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }
}
