//! The token lifecycle and the verification rules (DESIGN §4, §5), free of HTTP and SQL.
//!
//! Nothing here reads a clock: every function takes `now` (unix seconds). The store applies the
//! decisions made here with conditional statements, so that two processes deciding at once
//! cannot both win.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, Offset as _};
use serde::{Deserialize, Serialize};

use protocol::{Code, Secret, StepMatch, TotpParams};

/// Lifecycle states of a token (DESIGN §4). Lock is a flag, not a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenState {
    /// Issued in internet banking; the mailed link not opened yet.
    Issued,
    /// The download link was opened; the app may now be set up.
    LinkOpened,
    /// The app received the secret; waiting for the first code (BOK001).
    Provisioned,
    /// In use: login and transfers need a code.
    Active,
    /// The customer ended OTP use (BOS001).
    Deactivated,
    /// Staff revoked it (lost or stolen phone).
    Revoked,
    /// The issuance died before provisioning: expired, too many wrong activation passwords,
    /// or replaced by a new issuance.
    Voided,
}

impl TokenState {
    pub const ALL: [TokenState; 7] = [
        TokenState::Issued,
        TokenState::LinkOpened,
        TokenState::Provisioned,
        TokenState::Active,
        TokenState::Deactivated,
        TokenState::Revoked,
        TokenState::Voided,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenState::Issued => "issued",
            TokenState::LinkOpened => "link_opened",
            TokenState::Provisioned => "provisioned",
            TokenState::Active => "active",
            TokenState::Deactivated => "deactivated",
            TokenState::Revoked => "revoked",
            TokenState::Voided => "voided",
        }
    }

    /// Live tokens count against "one live token per customer".
    pub fn is_live(self) -> bool {
        matches!(
            self,
            TokenState::Issued
                | TokenState::LinkOpened
                | TokenState::Provisioned
                | TokenState::Active
        )
    }

    /// The status label BOP001 shows (Japanese, English).
    pub fn label(self) -> (&'static str, &'static str) {
        match self {
            TokenState::Issued | TokenState::LinkOpened | TokenState::Provisioned => {
                ("トークン発行済", "Token issued")
            }
            TokenState::Active => ("利用中", "In use"),
            TokenState::Deactivated | TokenState::Revoked => ("利用解除済", "Deactivated"),
            TokenState::Voided => ("未発行", "Not issued"),
        }
    }
}

impl fmt::Display for TokenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TokenState {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        TokenState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| DomainError::Corrupt(format!("unknown token state {s:?}")))
    }
}

/// What happens to a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    OpenLink,
    Provision,
    Activate,
    Deactivate,
    Revoke,
    Void,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::OpenLink => "open_link",
            Event::Provision => "provision",
            Event::Activate => "activate",
            Event::Deactivate => "deactivate",
            Event::Revoke => "revoke",
            Event::Void => "void",
        }
    }
}

/// The lifecycle's transition function. Illegal transitions are errors, never silent no-ops.
///
/// # Errors
/// [`DomainError::IllegalTransition`] naming the state and the event.
pub fn transition(state: TokenState, event: Event) -> Result<TokenState, DomainError> {
    use Event as E;
    use TokenState as S;
    let next = match (state, event) {
        (S::Issued | S::LinkOpened, E::OpenLink) => S::LinkOpened,
        (S::LinkOpened, E::Provision) => S::Provisioned,
        (S::Provisioned, E::Activate) => S::Active,
        (S::Provisioned | S::Active, E::Deactivate) => S::Deactivated,
        (S::Issued | S::LinkOpened | S::Provisioned | S::Active, E::Revoke) => S::Revoked,
        (S::Issued | S::LinkOpened, E::Void) => S::Voided,
        _ => return Err(DomainError::IllegalTransition { state, event }),
    };
    Ok(next)
}

/// Why a code is being checked; decides which states accept it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    Login,
    Transfer,
    Activation,
    Deactivation,
}

impl Purpose {
    pub const ALL: [Purpose; 4] = [
        Purpose::Login,
        Purpose::Transfer,
        Purpose::Activation,
        Purpose::Deactivation,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Transfer => "transfer",
            Purpose::Activation => "activation",
            Purpose::Deactivation => "deactivation",
        }
    }

    /// Whether a token in `state` may verify a code for this purpose.
    pub fn accepts(self, state: TokenState) -> bool {
        match self {
            Purpose::Login | Purpose::Transfer => state == TokenState::Active,
            Purpose::Activation => state == TokenState::Provisioned,
            Purpose::Deactivation => matches!(state, TokenState::Active | TokenState::Provisioned),
        }
    }

    /// The transition a successful verification for this purpose performs, if any.
    pub fn event(self) -> Option<Event> {
        match self {
            Purpose::Activation => Some(Event::Activate),
            Purpose::Deactivation => Some(Event::Deactivate),
            Purpose::Login | Purpose::Transfer => None,
        }
    }
}

impl FromStr for Purpose {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Purpose::ALL.into_iter().find(|p| p.as_str() == s).ok_or(())
    }
}

/// The answer to a verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Invalid,
    Replayed,
    Locked,
    NotActive,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Ok,
        Outcome::Invalid,
        Outcome::Replayed,
        Outcome::Locked,
        Outcome::NotActive,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Invalid => "invalid",
            Outcome::Replayed => "replayed",
            Outcome::Locked => "locked",
            Outcome::NotActive => "not_active",
        }
    }
}

/// Verification and lifecycle policy (DESIGN §4, §5); all of it configurable.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// Steps accepted either side of the drift-corrected current step.
    pub window: u32,
    /// The learned drift never exceeds this many steps either way, so a chain of future codes
    /// cannot walk the window away from real time.
    pub max_drift: u32,
    /// Consecutive failures that lock the token.
    pub max_failures: u32,
    /// Seconds after which a lock lifts by itself; `None`: only staff unlock.
    pub lock_seconds: Option<u64>,
    /// Days an issuance stays usable before the app is set up.
    pub issuance_ttl_days: u32,
    /// Wrong activation passwords that kill an issuance.
    pub max_activation_failures: u32,
    /// Consecutive wrong login or confirmation passwords that lock a customer's password use.
    pub max_password_failures: u32,
    /// Seconds a password lock lasts.
    pub password_lock_seconds: u64,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            window: 1,
            max_drift: 2,
            max_failures: 5,
            lock_seconds: None,
            issuance_ttl_days: 7,
            max_activation_failures: 5,
            max_password_failures: 10,
            password_lock_seconds: 1800,
        }
    }
}

impl Policy {
    /// # Errors
    /// A policy that would make the system unsafe or unusable.
    pub fn validate(&self) -> Result<(), String> {
        if self.window > 5 {
            return Err("policy.window must be at most 5 steps".into());
        }
        if self.max_drift > 10 {
            return Err("policy.max_drift must be at most 10 steps".into());
        }
        if self.max_failures == 0 || self.max_failures > 20 {
            return Err("policy.max_failures must be 1..=20".into());
        }
        if self.max_password_failures == 0 || self.max_password_failures > 50 {
            return Err("policy.max_password_failures must be 1..=50".into());
        }
        if self.max_activation_failures == 0 || self.max_activation_failures > 20 {
            return Err("policy.max_activation_failures must be 1..=20".into());
        }
        if self.issuance_ttl_days == 0 || self.issuance_ttl_days > 90 {
            return Err("policy.issuance_ttl_days must be 1..=90".into());
        }
        Ok(())
    }

    /// Locks at or before this instant have lifted; `-1` when locks never lift by themselves
    /// (no stored lock time is negative). Used verbatim in the store's conditional updates.
    pub fn unlock_before(&self, now: i64) -> i64 {
        match self.lock_seconds {
            Some(s) => now.saturating_sub(i64::try_from(s).unwrap_or(i64::MAX)),
            None => -1,
        }
    }

    /// Whether a lock set at `locked_at` still holds at `now`.
    pub fn is_locked(&self, locked_at: Option<i64>, now: i64) -> bool {
        locked_at.is_some_and(|at| at > self.unlock_before(now))
    }
}

/// What verification needs to know about a token, as read from the store.
#[derive(Debug, Clone)]
pub struct TokenSnapshot {
    pub state: TokenState,
    pub params: TotpParams,
    pub last_step: Option<u64>,
    pub drift: i64,
    pub locked_at: Option<i64>,
}

/// The decision for one code; the store turns it into one conditional UPDATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Accept `step`; remember `drift`; perform the purpose's transition if any.
    Accept {
        step: u64,
        drift: i64,
    },
    /// The code belongs to a step at or before the last accepted one.
    Replay {
        step: u64,
    },
    /// Wrong code: count a failure.
    Fail,
    Locked,
    NotActive,
}

/// The inclusive range of steps tried at `now`: the window centred on the learned drift, the
/// drift itself clamped to `max_drift`.
pub fn window(snapshot: &TokenSnapshot, policy: &Policy, now: u64) -> (u64, u64) {
    let current = snapshot.params.step_at(now);
    let max_drift = i64::from(policy.max_drift);
    let centre = current.saturating_add_signed(snapshot.drift.clamp(-max_drift, max_drift));
    let w = u64::from(policy.window);
    (centre.saturating_sub(w), centre.saturating_add(w))
}

/// Decide on a code (DESIGN §5). The caller has already parsed `code` to the token's digits.
pub fn decide(
    snapshot: &TokenSnapshot,
    secret: &Secret,
    code: &Code,
    purpose: Purpose,
    policy: &Policy,
    now: u64,
) -> Decision {
    if !purpose.accepts(snapshot.state) {
        return Decision::NotActive;
    }
    if policy.is_locked(snapshot.locked_at, i64::try_from(now).unwrap_or(i64::MAX)) {
        return Decision::Locked;
    }
    let (first, last) = window(snapshot, policy, now);
    match protocol::match_step(
        secret,
        &snapshot.params,
        code,
        first,
        last,
        snapshot.last_step,
    ) {
        StepMatch::Accepted(step) => {
            let current = snapshot.params.step_at(now);
            let max_drift = i64::from(policy.max_drift);
            let offset = i64::try_from(step).unwrap_or(i64::MAX)
                - i64::try_from(current).unwrap_or(i64::MAX);
            Decision::Accept {
                step,
                drift: offset.clamp(-max_drift, max_drift),
            }
        }
        StepMatch::Replayed(step) => Decision::Replay { step },
        StepMatch::NoMatch => Decision::Fail,
    }
}

/// Japan Standard Time; Japan keeps no daylight saving, so a fixed offset is exact.
pub fn jst() -> FixedOffset {
    // east_opt only fails for offsets beyond ±24 h; the fallback is unreachable.
    FixedOffset::east_opt(9 * 3600).unwrap_or_else(|| chrono::Utc.fix())
}

/// The Asia/Tokyo calendar date of a unix time.
pub fn tokyo_date(unix: i64) -> NaiveDate {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .with_timezone(&jst())
        .date_naive()
}

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

/// Domain errors: what a caller can act on, with stable codes.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum DomainError {
    #[error("illegal transition: cannot {} a token that is {}", .event.as_str(), .state.as_str())]
    IllegalTransition { state: TokenState, event: Event },
    #[error("the customer already has a live token ({0})")]
    LiveTokenExists(TokenState),
    #[error("OTP use ended on {0}; a new token can be issued from the next day (Asia/Tokyo)")]
    NextDay(NaiveDate),
    #[error("no such customer")]
    UnknownCustomer,
    #[error("no such token")]
    UnknownToken,
    #[error("customer login ID already exists")]
    CustomerExists,
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl DomainError {
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::IllegalTransition { .. } => "ILLEGAL_TRANSITION",
            DomainError::LiveTokenExists(_) => "LIVE_TOKEN_EXISTS",
            DomainError::NextDay(_) => "REISSUE_NEXT_DAY",
            DomainError::UnknownCustomer => "UNKNOWN_CUSTOMER",
            DomainError::UnknownToken => "UNKNOWN_USER_ID",
            DomainError::CustomerExists => "CUSTOMER_EXISTS",
            DomainError::Corrupt(_) => "INTERNAL",
        }
    }
}

impl From<IssueBlock> for DomainError {
    fn from(b: IssueBlock) -> Self {
        match b {
            IssueBlock::LiveToken(s) => DomainError::LiveTokenExists(s),
            IssueBlock::NextDay { deactivated_on } => DomainError::NextDay(deactivated_on),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{code_at_step, Algorithm};

    fn snap(state: TokenState) -> TokenSnapshot {
        TokenSnapshot {
            state,
            params: TotpParams::default(),
            last_step: None,
            drift: 0,
            locked_at: None,
        }
    }

    fn secret() -> Secret {
        Secret::from_bytes(b"12345678901234567890".to_vec())
    }

    fn code(step: u64) -> Code {
        code_at_step(&secret(), &TotpParams::default(), step)
    }

    const NOW: u64 = 1_700_000_030; // step 28_333_333 at 60 s

    #[test]
    fn every_transition_is_defined_and_illegal_ones_are_errors() {
        use Event as E;
        use TokenState as S;
        let legal = [
            (S::Issued, E::OpenLink, S::LinkOpened),
            (S::LinkOpened, E::OpenLink, S::LinkOpened),
            (S::LinkOpened, E::Provision, S::Provisioned),
            (S::Provisioned, E::Activate, S::Active),
            (S::Active, E::Deactivate, S::Deactivated),
            (S::Provisioned, E::Deactivate, S::Deactivated),
            (S::Active, E::Revoke, S::Revoked),
            (S::Issued, E::Void, S::Voided),
        ];
        for (from, ev, to) in legal {
            assert_eq!(
                transition(from, ev),
                Ok(to),
                "{from} --{}--> {to} must be legal",
                ev.as_str()
            );
        }
        let illegal = [
            (S::Issued, E::Provision),
            (S::Issued, E::Activate),
            (S::Active, E::Activate),
            (S::Active, E::Provision),
            (S::Deactivated, E::Activate),
            (S::Deactivated, E::Deactivate),
            (S::Revoked, E::Revoke),
            (S::Voided, E::OpenLink),
            (S::Provisioned, E::Void),
            (S::Revoked, E::OpenLink),
        ];
        for (from, ev) in illegal {
            assert_eq!(
                transition(from, ev),
                Err(DomainError::IllegalTransition {
                    state: from,
                    event: ev
                }),
                "{from} --{}--> must be refused",
                ev.as_str()
            );
        }
    }

    #[test]
    fn accepts_window_and_refuses_outside() {
        let p = Policy::default();
        let s = snap(TokenState::Active);
        let cur = TotpParams::default().step_at(NOW);
        for d in [-1i64, 0, 1] {
            let st = cur.checked_add_signed(d).unwrap();
            assert_eq!(
                decide(&s, &secret(), &code(st), Purpose::Login, &p, NOW),
                Decision::Accept { step: st, drift: d },
                "offset {d} lies in the ±1 window"
            );
        }
        for d in [-3i64, -2, 2, 3] {
            let st = cur.checked_add_signed(d).unwrap();
            assert_eq!(
                decide(&s, &secret(), &code(st), Purpose::Login, &p, NOW),
                Decision::Fail,
                "offset {d} is outside"
            );
        }
    }

    #[test]
    fn replay_of_last_or_older_step_is_refused() {
        let p = Policy::default();
        let cur = TotpParams::default().step_at(NOW);
        let mut s = snap(TokenState::Active);
        s.last_step = Some(cur);
        assert_eq!(
            decide(&s, &secret(), &code(cur), Purpose::Login, &p, NOW),
            Decision::Replay { step: cur }
        );
        assert_eq!(
            decide(&s, &secret(), &code(cur - 1), Purpose::Login, &p, NOW),
            Decision::Replay { step: cur - 1 }
        );
        assert_eq!(
            decide(&s, &secret(), &code(cur + 1), Purpose::Login, &p, NOW),
            Decision::Accept {
                step: cur + 1,
                drift: 1
            }
        );
    }

    #[test]
    fn drift_is_learned_but_bounded() {
        let p = Policy::default(); // window 1, max drift 2
        let params = TotpParams::default();
        let cur = params.step_at(NOW);
        let mut s = snap(TokenState::Active);
        // A chain of ever-later codes, each submitted at the same real time.
        let mut accepted = vec![];
        for ahead in 1..=6u64 {
            match decide(&s, &secret(), &code(cur + ahead), Purpose::Login, &p, NOW) {
                Decision::Accept { step, drift } => {
                    accepted.push(ahead);
                    s.last_step = Some(step);
                    s.drift = drift;
                    assert!(
                        drift.unsigned_abs() <= u64::from(p.max_drift),
                        "drift must stay bounded"
                    );
                }
                other => {
                    assert_eq!(other, Decision::Fail);
                }
            }
        }
        assert_eq!(
            accepted,
            vec![1, 2, 3],
            "the window may reach max_drift + window steps ahead, never further"
        );
        let (first, last) = window(&s, &p, NOW);
        assert!(last <= cur + u64::from(p.max_drift + p.window));
        assert!(first >= cur - u64::from(p.max_drift + p.window));
        // A hand-made drift beyond the bound (corrupt row) is clamped too.
        s.drift = 1000;
        let (_, last) = window(&s, &p, NOW);
        assert_eq!(last, cur + 3);
    }

    #[test]
    fn negative_drift_is_learned() {
        let p = Policy::default();
        let cur = TotpParams::default().step_at(NOW);
        let mut s = snap(TokenState::Active);
        assert_eq!(
            decide(&s, &secret(), &code(cur - 1), Purpose::Login, &p, NOW),
            Decision::Accept {
                step: cur - 1,
                drift: -1
            }
        );
        s.drift = -1;
        s.last_step = Some(cur - 1);
        assert_eq!(
            decide(&s, &secret(), &code(cur - 2), Purpose::Login, &p, NOW),
            Decision::Replay { step: cur - 2 },
            "with drift -1 the window reaches cur-2, but it is before the last accepted step"
        );
    }

    #[test]
    fn state_and_purpose_gate_verification() {
        let p = Policy::default();
        let cur = TotpParams::default().step_at(NOW);
        for st in TokenState::ALL {
            for purpose in Purpose::ALL {
                let d = decide(&snap(st), &secret(), &code(cur), purpose, &p, NOW);
                if purpose.accepts(st) {
                    assert!(matches!(d, Decision::Accept { .. }), "{st}/{purpose:?}");
                } else {
                    assert_eq!(
                        d,
                        Decision::NotActive,
                        "{st}/{purpose:?} must be not_active"
                    );
                }
            }
        }
        assert!(Purpose::Activation.accepts(TokenState::Provisioned));
        assert!(!Purpose::Login.accepts(TokenState::Provisioned));
    }

    #[test]
    fn lock_holds_until_staff_or_lock_time() {
        let cur = TotpParams::default().step_at(NOW);
        let now = i64::try_from(NOW).unwrap();
        let mut s = snap(TokenState::Active);
        s.locked_at = Some(now - 10_000);
        let forever = Policy::default();
        assert_eq!(
            decide(&s, &secret(), &code(cur), Purpose::Login, &forever, NOW),
            Decision::Locked,
            "even a right code is refused while locked"
        );
        let timed = Policy {
            lock_seconds: Some(600),
            ..Policy::default()
        };
        assert!(
            matches!(
                decide(&s, &secret(), &code(cur), Purpose::Login, &timed, NOW),
                Decision::Accept { .. }
            ),
            "timed lock lifted"
        );
        s.locked_at = Some(now - 599);
        assert_eq!(
            decide(&s, &secret(), &code(cur), Purpose::Login, &timed, NOW),
            Decision::Locked
        );
        assert_eq!(forever.unlock_before(now), -1);
    }

    #[test]
    fn other_profiles_verify() {
        let params = TotpParams::new(Algorithm::Sha256, 8, 30).unwrap();
        let sec = Secret::from_bytes(b"12345678901234567890123456789012".to_vec());
        let mut s = snap(TokenState::Active);
        s.params = params;
        let st = params.step_at(NOW);
        let c = code_at_step(&sec, &params, st);
        assert_eq!(c.as_str().len(), 8);
        assert!(matches!(
            decide(&s, &sec, &c, Purpose::Transfer, &Policy::default(), NOW),
            Decision::Accept { .. }
        ));
    }

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
    fn issuance_expiry() {
        assert!(issuance_expired(TokenState::Issued, 100, 100));
        assert!(!issuance_expired(TokenState::Issued, 100, 99));
        assert!(
            !issuance_expired(TokenState::Provisioned, 100, 1000),
            "a set-up token does not expire"
        );
    }

    #[test]
    fn policy_validation() {
        assert!(Policy::default().validate().is_ok());
        assert!(Policy {
            max_failures: 0,
            ..Policy::default()
        }
        .validate()
        .is_err());
        assert!(Policy {
            window: 50,
            ..Policy::default()
        }
        .validate()
        .is_err());
    }
}
