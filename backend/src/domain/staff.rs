//! Staff roles and permissions, and the four-eyes policy (issue 7): an operator searches,
//! views, unlocks and resends the setup mail; a supervisor also revokes and reprovisions, and
//! approves another supervisor's request. With four-eyes on, revoke and reprovision are
//! requests until a second supervisor approves them. A staff member's second factor: a TOTP
//! of their own, checked by the tokens' window and replay rules.

use protocol::{Algorithm, Code, Secret, StepMatch, TotpParams};

use super::verify::{window, Policy, TokenSnapshot};
use super::TokenState;

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

    pub fn may(self, p: Permission) -> bool {
        match p {
            Permission::View | Permission::Unlock | Permission::ResendSetup => true,
            Permission::Revoke | Permission::Reprovision | Permission::Approve => {
                self == Role::Supervisor
            }
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

/// The four-eyes policy: which actions wait for a second supervisor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FourEyes(pub bool);

impl FourEyes {
    /// Whether `p` is only a request until a second supervisor approves it.
    pub fn needs_approval(self, p: Permission) -> bool {
        self.0 && matches!(p, Permission::Revoke | Permission::Reprovision)
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

/// Staff codes: what every authenticator app reads (HMAC-SHA-1, 6 digits, 30 s), whatever
/// profile the bank's customer tokens use.
pub const STAFF_TOTP: TotpParams = TotpParams {
    algorithm: Algorithm::Sha1,
    digits: 6,
    period: 30,
};

/// A staff member's code at `now`: the tokens' window (`policy.window` steps either side of
/// the current step; staff codes learn no drift) and RFC 6238 §5.2's replay rule against the
/// last step the member used. The caller records an accepted step with a compare-and-set in
/// the transaction that counts the attempt, so a code works once even when sent twice at once.
pub fn staff_code(
    secret: &Secret,
    code: &str,
    last_step: Option<u64>,
    policy: &Policy,
    now: u64,
) -> StepMatch {
    let Ok(code) = Code::parse(code, STAFF_TOTP.digits) else {
        return StepMatch::NoMatch;
    };
    let at = TokenSnapshot {
        state: TokenState::Active,
        params: STAFF_TOTP,
        last_step,
        last_tx_step: None,
        drift: 0,
        locked_at: None,
    };
    let (first, last) = window(&at, policy, now);
    protocol::match_step(secret, &STAFF_TOTP, &code, first, last, last_step)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::code_at_step;

    #[test]
    fn staff_codes_use_the_window_and_work_once() {
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        let policy = Policy::default();
        let now = 1_700_000_010; // step 56_666_667 at 30 s
        let step = STAFF_TOTP.step_at(now);
        let code = |s: u64| code_at_step(&secret, &STAFF_TOTP, s).as_str().to_owned();
        assert_eq!(
            staff_code(&secret, &code(step), None, &policy, now),
            StepMatch::Accepted(step)
        );
        assert_eq!(
            staff_code(&secret, &code(step - 1), None, &policy, now),
            StepMatch::Accepted(step - 1),
            "one step of delay is accepted (policy.window)"
        );
        assert_eq!(
            staff_code(&secret, &code(step + 2), None, &policy, now),
            StepMatch::NoMatch,
            "outside the window"
        );
        assert_eq!(
            staff_code(&secret, &code(step), Some(step), &policy, now),
            StepMatch::Replayed(step),
            "a used step is a replay"
        );
        assert_eq!(
            staff_code(&secret, &code(step - 1), Some(step), &policy, now),
            StepMatch::Replayed(step - 1),
            "so is an older one"
        );
        for bad in ["", "12345", "1234567", "abcdef"] {
            assert_eq!(
                staff_code(&secret, bad, None, &policy, now),
                StepMatch::NoMatch
            );
        }
    }

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
    fn four_eyes_covers_revoke_and_reprovision_only() {
        assert!(FourEyes(true).needs_approval(Permission::Revoke));
        assert!(FourEyes(true).needs_approval(Permission::Reprovision));
        assert!(!FourEyes(true).needs_approval(Permission::Unlock));
        assert!(!FourEyes(false).needs_approval(Permission::Revoke));
    }
}
