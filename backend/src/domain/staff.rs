//! Staff roles and permissions, and the four-eyes policy (issue 7): an operator searches,
//! views, unlocks and resends the setup mail; a supervisor also revokes and reprovisions, and
//! approves another supervisor's request. With four-eyes on, revoke and reprovision are
//! requests until a second supervisor approves them.

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
    fn four_eyes_covers_revoke_and_reprovision_only() {
        assert!(FourEyes(true).needs_approval(Permission::Revoke));
        assert!(FourEyes(true).needs_approval(Permission::Reprovision));
        assert!(!FourEyes(true).needs_approval(Permission::Unlock));
        assert!(!FourEyes(false).needs_approval(Permission::Revoke));
    }
}
