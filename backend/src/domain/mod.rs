//! Every rule of the system (DESIGN §4, §5), free of HTTP and SQL: the token lifecycle here
//! (states, events, the transition function, errors); verification in [`verify`]; the one
//! lockout rule in [`throttle`]; issuance and setup rules in [`issuance`]; one check per input
//! field in [`fields`]; staff roles and the four-eyes policy in [`staff`]; a transfer's
//! reference in [`transfer`].
//!
//! Nothing here reads a clock: every function takes `now` (unix seconds). The store applies the
//! decisions made here with conditional statements, so that two processes deciding at once
//! cannot both win.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, FixedOffset, NaiveDate, Offset as _};
use serde::{Deserialize, Serialize};

pub mod fields;
pub mod issuance;
pub mod mail_password;
pub mod staff;
pub mod throttle;
pub mod transfer;
pub mod verify;

pub use issuance::{issuance_expired, may_issue, IssueBlock, SetupRefusal};
pub use throttle::{Attempt, CustomerCounter, PasswordAt, Throttle, ThrottleState};
pub use verify::{decide, window, Decision, Policy, TokenSnapshot};

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

/// For reading a stored state (`#[sqlx(try_from = "String")]` on the row).
impl TryFrom<String> for TokenState {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
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
    /// Transaction authentication (取引認証, issue 16): an 8-digit OCRA code over the transfer's
    /// payee account and amount ([`verify::decide_transaction`]), never a TOTP code.
    Transaction,
}

impl Purpose {
    pub const ALL: [Purpose; 5] = [
        Purpose::Login,
        Purpose::Transfer,
        Purpose::Activation,
        Purpose::Deactivation,
        Purpose::Transaction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Login => "login",
            Purpose::Transfer => "transfer",
            Purpose::Activation => "activation",
            Purpose::Deactivation => "deactivation",
            Purpose::Transaction => "transaction",
        }
    }

    /// Whether a token in `state` may verify a code for this purpose.
    pub fn accepts(self, state: TokenState) -> bool {
        match self {
            Purpose::Login | Purpose::Transfer | Purpose::Transaction => {
                state == TokenState::Active
            }
            Purpose::Activation => state == TokenState::Provisioned,
            Purpose::Deactivation => matches!(state, TokenState::Active | TokenState::Provisioned),
        }
    }

    /// The transition a successful verification for this purpose performs, if any.
    pub fn event(self) -> Option<Event> {
        match self {
            Purpose::Activation => Some(Event::Activate),
            Purpose::Deactivation => Some(Event::Deactivate),
            Purpose::Login | Purpose::Transfer | Purpose::Transaction => None,
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
    #[error("this server does not serve that service ID")]
    UnknownService,
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
            DomainError::UnknownService => "UNKNOWN_SERVICE_ID",
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
}
