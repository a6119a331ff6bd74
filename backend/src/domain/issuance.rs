//! Issuance rules (DESIGN §4): who may issue now (the next-day rule), when an issuance
//! expires, and why an app setup is refused.

use chrono::NaiveDate;

use super::{tokyo_date, TokenState};

/// Why a customer may not issue a token now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueBlock {
    /// A live token exists (issued, set up, or in use).
    LiveToken(TokenState),
    /// OTP use ended today (Tokyo date); issuing again is possible from the next day.
    NextDay { deactivated_on: NaiveDate },
}

/// The next-day rule (DESIGN §4): after deactivation a customer may issue again from the next
/// Asia/Tokyo calendar date, unless staff waived it. `latest` is the customer's newest token
/// (state, deactivated or revoked at), with expiry already applied.
pub fn may_issue(
    latest: Option<(TokenState, Option<i64>)>,
    waived: bool,
    now: i64,
) -> Result<(), IssueBlock> {
    match latest {
        Some((state, _)) if state.is_live() => Err(IssueBlock::LiveToken(state)),
        Some((TokenState::Deactivated, Some(at))) if !waived => {
            let day = tokyo_date(at);
            if tokyo_date(now) > day {
                Ok(())
            } else {
                Err(IssueBlock::NextDay {
                    deactivated_on: day,
                })
            }
        }
        _ => Ok(()),
    }
}

/// Whether an issuance has expired unprovisioned at `now`.
pub fn issuance_expired(state: TokenState, expires_at: i64, now: i64) -> bool {
    matches!(state, TokenState::Issued | TokenState::LinkOpened) && now >= expires_at
}

/// When an issuance made at `now` expires unprovisioned (DESIGN §4: default 7 days). Used by
/// issuance, by a staff reprovision and by a resent setup mail alike.
pub fn issuance_expires_at(now: i64, ttl_days: u32) -> i64 {
    now.saturating_add(i64::from(ttl_days) * 86_400)
}

/// Why the app's initial setup is refused (DESIGN §4: only after the link was opened, only
/// before expiry, only once, only while fewer than the allowed wrong activation passwords).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetupRefusal {
    LinkNotOpened,
    Expired,
    /// Too many wrong activation passwords: the issuance is dead.
    Dead,
    AlreadyProvisioned,
    /// Deactivated or revoked.
    NotUsable,
}

/// What the setup rule needs to know about an issuance, read inside the transaction that
/// counts the attempt.
#[derive(Debug, Clone, Copy)]
pub struct SetupView<'a> {
    pub state: TokenState,
    pub expires_at: i64,
    pub void_reason: Option<&'a str>,
    /// Activation-password attempts counted so far.
    pub attempts: i64,
}

/// The one setup rule: `None` when an activation password may be tried now. An issuance whose
/// allowed attempts are all counted is dead even before the last one has been voided, so a
/// right password that arrives after the last allowed attempt learns nothing.
pub fn setup_refusal(v: SetupView<'_>, max_attempts: u32, now: i64) -> Option<SetupRefusal> {
    let dead =
        v.void_reason == Some("activation_failures") || v.attempts >= i64::from(max_attempts);
    match v.state {
        TokenState::Provisioned | TokenState::Active => Some(SetupRefusal::AlreadyProvisioned),
        TokenState::Deactivated | TokenState::Revoked => Some(SetupRefusal::NotUsable),
        TokenState::Voided if dead => Some(SetupRefusal::Dead),
        TokenState::Voided => Some(SetupRefusal::Expired),
        // Dead says more than expired: its last attempt's window may be what ended it.
        TokenState::LinkOpened if dead => Some(SetupRefusal::Dead),
        TokenState::Issued | TokenState::LinkOpened if now >= v.expires_at => {
            Some(SetupRefusal::Expired)
        }
        TokenState::Issued => Some(SetupRefusal::LinkNotOpened),
        TokenState::LinkOpened => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_day_rule_uses_tokyo_dates() {
        // 2026-11-25 23:59:59 JST = 2026-11-25 14:59:59 UTC
        let deact = 1_795_618_799; // 2026-11-25T14:59:59Z
        assert_eq!(tokyo_date(deact).to_string(), "2026-11-25");
        let latest = Some((TokenState::Deactivated, Some(deact - 3600)));
        assert_eq!(
            may_issue(latest, false, deact),
            Err(IssueBlock::NextDay {
                deactivated_on: tokyo_date(deact)
            }),
            "the same Tokyo day, one second before midnight, is refused"
        );
        assert_eq!(
            may_issue(latest, false, deact + 1),
            Ok(()),
            "from 00:00:00 JST the next day it is allowed"
        );
        assert_eq!(
            may_issue(latest, true, deact),
            Ok(()),
            "staff may waive the wait"
        );
        assert_eq!(
            may_issue(Some((TokenState::Active, None)), true, deact),
            Err(IssueBlock::LiveToken(TokenState::Active)),
            "waiving the wait never allows two live tokens"
        );
        assert_eq!(may_issue(None, false, deact), Ok(()));
        assert_eq!(
            may_issue(Some((TokenState::Voided, None)), false, deact),
            Ok(())
        );
        assert_eq!(
            may_issue(Some((TokenState::Revoked, Some(deact))), false, deact),
            Ok(())
        );
    }

    #[test]
    fn setup_refusals() {
        let v = |state, attempts| SetupView {
            state,
            expires_at: 100,
            void_reason: None,
            attempts,
        };
        assert_eq!(setup_refusal(v(TokenState::LinkOpened, 0), 5, 99), None);
        assert_eq!(
            setup_refusal(v(TokenState::LinkOpened, 0), 5, 100),
            Some(SetupRefusal::Expired),
            "expiry is at expires_at exactly"
        );
        assert_eq!(
            setup_refusal(v(TokenState::Issued, 0), 5, 99),
            Some(SetupRefusal::LinkNotOpened)
        );
        assert_eq!(
            setup_refusal(v(TokenState::LinkOpened, 5), 5, 99),
            Some(SetupRefusal::Dead),
            "the fifth counted attempt kills it before it is voided"
        );
        assert_eq!(
            setup_refusal(
                SetupView {
                    void_reason: Some("activation_failures"),
                    ..v(TokenState::Voided, 5)
                },
                5,
                99
            ),
            Some(SetupRefusal::Dead)
        );
        assert_eq!(
            setup_refusal(v(TokenState::Voided, 0), 5, 99),
            Some(SetupRefusal::Expired)
        );
        assert_eq!(
            setup_refusal(v(TokenState::Active, 0), 5, 99),
            Some(SetupRefusal::AlreadyProvisioned)
        );
        assert_eq!(
            setup_refusal(v(TokenState::Revoked, 0), 5, 99),
            Some(SetupRefusal::NotUsable)
        );
        assert_eq!(issuance_expires_at(1000, 7), 1000 + 7 * 86_400);
    }

    #[test]
    fn issuance_expiry() {
        assert!(issuance_expired(TokenState::Issued, 100, 100));
        assert!(!issuance_expired(TokenState::Issued, 100, 99));
        assert!(
            !issuance_expired(TokenState::Provisioned, 100, 1000),
            "a set-up token does not expire"
        );
    }
}
