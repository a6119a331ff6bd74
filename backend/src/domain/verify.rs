//! Verifying a code (DESIGN §5): the window centred on the learned, bounded drift; replay
//! refusal; the decision the store turns into one conditional UPDATE. Pure: `now` is passed in.

use serde::{Deserialize, Serialize};

use protocol::{Code, Secret, StepMatch, TotpParams};

use super::throttle::Throttle;
use super::{Purpose, TokenState};

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
        // A lock of no time never holds: unlimited guessing of codes and passwords.
        if self
            .lock_seconds
            .is_some_and(|s| !(60..=2_592_000).contains(&s))
        {
            return Err(
                "policy.lock_seconds must be 60..=2592000 (30 days), or unset (staff unlock only)"
                    .into(),
            );
        }
        if !(60..=2_592_000).contains(&self.password_lock_seconds) {
            return Err("policy.password_lock_seconds must be 60..=2592000 (30 days)".into());
        }
        Ok(())
    }

    /// The lockout rule for token codes.
    pub fn token_throttle(&self) -> Throttle {
        Throttle {
            max: self.max_failures,
            lock_seconds: self.lock_seconds,
        }
    }

    /// The lockout rule for a customer's login and confirmation passwords, and for staff
    /// passwords.
    pub fn password_throttle(&self) -> Throttle {
        Throttle {
            max: self.max_password_failures,
            lock_seconds: Some(self.password_lock_seconds),
        }
    }

    /// Whether a token lock set at `locked_at` still holds at `now`.
    pub fn is_locked(&self, locked_at: Option<i64>, now: i64) -> bool {
        self.token_throttle().is_locked(locked_at, now)
    }
}

/// What verification needs to know about a token, as read from the store.
#[derive(Debug, Clone)]
pub struct TokenSnapshot {
    pub state: TokenState,
    pub params: TotpParams,
    pub last_step: Option<u64>,
    /// The last accepted transaction-authentication step (its own, so a TOTP code accepted in
    /// a minute does not make that minute's transaction code a replay, nor the other way).
    pub last_tx_step: Option<u64>,
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
    if purpose == Purpose::Transaction {
        // Key separation: a TOTP code is never a transaction code (decide_transaction is).
        return Decision::Fail;
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

/// Decide a transaction-authentication code (取引認証, issue 16): the OCRA response of
/// `protocol::ocra` for `transaction` (the transfer as the bank received it), under the key
/// derived from the token's secret for this purpose only. The same gates as [`decide`] (an
/// active token, not locked); the window is the policy's `window` around the current minute
/// (OCRA's `T1M`, without TOTP's drift: the two clocks are the phone's, but the transaction
/// step has no learned offset of its own); replay is judged against the token's last accepted
/// *transaction* step. A failure counts toward the token's one lock, as a TOTP failure does.
pub fn decide_transaction(
    snapshot: &TokenSnapshot,
    secret: &Secret,
    code: &Code,
    transaction: &protocol::ocra::Transaction,
    policy: &Policy,
    now: u64,
) -> Decision {
    if !Purpose::Transaction.accepts(snapshot.state) {
        return Decision::NotActive;
    }
    if policy.is_locked(snapshot.locked_at, i64::try_from(now).unwrap_or(i64::MAX)) {
        return Decision::Locked;
    }
    let current = protocol::ocra::transaction_step_at(now);
    let w = u64::from(policy.window);
    match protocol::ocra::match_transaction_code(
        secret,
        transaction,
        code,
        current.saturating_sub(w),
        current.saturating_add(w),
        snapshot.last_tx_step,
    ) {
        StepMatch::Accepted(step) => Decision::Accept {
            step,
            drift: snapshot.drift,
        },
        StepMatch::Replayed(step) => Decision::Replay { step },
        StepMatch::NoMatch => Decision::Fail,
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
            last_tx_step: None,
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
                if purpose == Purpose::Transaction && purpose.accepts(st) {
                    assert_eq!(d, Decision::Fail, "a TOTP code is never a transaction code");
                } else if purpose.accepts(st) {
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
        assert_eq!(forever.token_throttle().unlock_before(now), -1);
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

    fn transfer(account: &str, amount: u64) -> protocol::ocra::Transaction {
        protocol::ocra::Transaction::new(
            "0001",
            "123",
            protocol::ocra::AccountType::Ordinary,
            account,
            amount,
        )
        .unwrap()
    }

    #[test]
    fn a_transaction_code_works_once_for_its_own_transfer_only() {
        let p = Policy::default();
        let tx = transfer("1234567", 150_000);
        let minute = protocol::ocra::transaction_step_at(NOW);
        let c = protocol::ocra::transaction_code(&secret(), &tx, NOW);
        let mut s = snap(TokenState::Active);
        assert_eq!(
            decide_transaction(&s, &secret(), &c, &tx, &p, NOW),
            Decision::Accept {
                step: minute,
                drift: 0
            }
        );
        // Any other account or amount: a failure (man-in-the-browser).
        for other in [transfer("1234568", 150_000), transfer("1234567", 150_001)] {
            assert_eq!(
                decide_transaction(&s, &secret(), &c, &other, &p, NOW),
                Decision::Fail
            );
        }
        // Key separation, both ways.
        let totp = code(TotpParams::default().step_at(NOW));
        assert_eq!(
            decide_transaction(&s, &secret(), &totp, &tx, &p, NOW),
            Decision::Fail
        );
        assert_eq!(
            decide(&s, &secret(), &c, Purpose::Transfer, &p, NOW),
            Decision::Fail
        );
        // Its own replay clock: a TOTP step accepted this minute does not replay it, its own does.
        s.last_step = Some(TotpParams::default().step_at(NOW));
        assert!(matches!(
            decide_transaction(&s, &secret(), &c, &tx, &p, NOW),
            Decision::Accept { .. }
        ));
        s.last_tx_step = Some(minute);
        assert_eq!(
            decide_transaction(&s, &secret(), &c, &tx, &p, NOW),
            Decision::Replay { step: minute }
        );
        // Locked and inactive tokens refuse it.
        s.last_tx_step = None;
        s.locked_at = Some(1);
        assert_eq!(
            decide_transaction(&s, &secret(), &c, &tx, &p, NOW),
            Decision::Locked
        );
        assert_eq!(
            decide_transaction(&snap(TokenState::Provisioned), &secret(), &c, &tx, &p, NOW),
            Decision::NotActive
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
