//! How a token is shown: [`TokenStatus`] for the host API and the screens, and the staff
//! console's [`StaffTokenView`], which is the same status plus what only staff see. One
//! function, [`status_of`], applies expiry and the lock rule for both.

use crate::domain::{self, Policy, TokenState};
use crate::engine::Result;
use crate::store::TokenRow;

/// A token as the host API and screens show it. No secret, no hashes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenStatus {
    pub user_id: String,
    pub service_id: String,
    pub state: TokenState,
    pub locked: bool,
    /// When a lock lifts by itself (unix seconds); `None` when not locked, or when only staff
    /// can lift it (`policy.lock_seconds` unset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locked_until: Option<i64>,
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

/// A token as staff see it: its [`TokenStatus`] plus the address it was issued to, when it
/// locked, why it died and the device recorded at setup. No secret, no hash.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StaffTokenView {
    #[serde(flatten)]
    pub status: TokenStatus,
    pub email: String,
    pub locked_at: Option<i64>,
    pub void_reason: Option<String>,
    /// platform, model, OS version, app version, as the app reported them at setup.
    pub device: Option<protocol::DeviceInfo>,
}

pub(crate) fn status_of(row: &TokenRow, policy: &Policy, now: i64) -> Result<TokenStatus> {
    let mut state = row.state;
    if domain::issuance_expired(state, row.expires_at, now) {
        state = TokenState::Voided;
    }
    let locked = policy.is_locked(row.locked_at, now);
    Ok(TokenStatus {
        user_id: row.user_id.clone(),
        service_id: row.service_id.clone(),
        state,
        locked,
        locked_until: row
            .locked_at
            .filter(|_| locked)
            .and_then(|at| policy.token_throttle().until(at)),
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

pub(crate) fn token_view(row: &TokenRow, policy: &Policy, now: i64) -> Result<StaffTokenView> {
    Ok(StaffTokenView {
        status: status_of(row, policy, now)?,
        email: row.email.clone(),
        locked_at: row.locked_at,
        void_reason: row.void_reason.clone(),
        device: row
            .device
            .as_deref()
            .and_then(|d| serde_json::from_str(d).ok()),
    })
}
