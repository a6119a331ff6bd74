//! What an engine call can refuse: typed variants a caller can act on, each with a stable
//! machine code (STYLE §2). Transports map them once: `web::error` to JSON, the screens to
//! Japanese pages.

use protocol::ProtocolError;

use crate::crypto::CryptoError;
use crate::domain::fields::FieldError;
use crate::domain::{DomainError, SetupRefusal};
use crate::store::StoreError;

/// Everything an engine call can refuse, with stable machine codes.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{message}")]
    Invalid {
        field: &'static str,
        code: &'static str,
        message: String,
    },
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The caller's role (or the four-eyes rule) does not allow it.
    #[error("{message}")]
    Forbidden {
        code: &'static str,
        message: &'static str,
    },
    /// What the caller saw has changed meanwhile; reload and check again.
    #[error("the customer's token changed meanwhile; reload the page and check again")]
    Stale,
    /// The thing is not in a state that allows it (already so, already pending, decided).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: &'static str,
    },
    /// No such thing (beyond the domain's unknown customer and token).
    #[error("{message}")]
    NotFound {
        code: &'static str,
        message: &'static str,
    },
    #[error("the code must be {0} digits")]
    CodeFormat(u8),
    #[error("the download link has not been opened yet")]
    LinkNotOpened,
    #[error("the issuance has expired; issue a new token")]
    IssuanceExpired,
    #[error("wrong activation password")]
    WrongActivationPassword { attempts_left: u32 },
    #[error("too many wrong activation passwords; the issuance is void, issue a new token")]
    IssuanceDead,
    #[error("the token was already set up")]
    AlreadyProvisioned,
    #[error("the token is no longer valid")]
    TokenNotUsable,
    #[error("the service is temporarily unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl EngineError {
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Invalid { code, .. } => code,
            EngineError::Domain(d) => d.code(),
            EngineError::Forbidden { code, .. }
            | EngineError::Conflict { code, .. }
            | EngineError::NotFound { code, .. } => code,
            EngineError::Stale => "STAFF_STALE",
            EngineError::CodeFormat(_) => "CODE_FORMAT",
            EngineError::LinkNotOpened => "LINK_NOT_OPENED",
            EngineError::IssuanceExpired => "ISSUANCE_EXPIRED",
            EngineError::WrongActivationPassword { .. } => "WRONG_ACTIVATION_PASSWORD",
            EngineError::IssuanceDead => "ISSUANCE_DEAD",
            EngineError::AlreadyProvisioned => "ALREADY_PROVISIONED",
            EngineError::TokenNotUsable => "TOKEN_NOT_USABLE",
            EngineError::Unavailable => "UNAVAILABLE",
            EngineError::Internal(_) => "INTERNAL",
        }
    }

    /// The role does not allow it.
    pub(crate) fn forbidden(message: &'static str) -> Self {
        EngineError::Forbidden {
            code: "STAFF_FORBIDDEN",
            message,
        }
    }
}

impl From<FieldError> for EngineError {
    fn from(e: FieldError) -> Self {
        EngineError::Invalid {
            field: e.field,
            code: e.code,
            message: e.message.to_owned(),
        }
    }
}

impl From<SetupRefusal> for EngineError {
    fn from(r: SetupRefusal) -> Self {
        match r {
            SetupRefusal::LinkNotOpened => EngineError::LinkNotOpened,
            SetupRefusal::Expired => EngineError::IssuanceExpired,
            SetupRefusal::Dead => EngineError::IssuanceDead,
            SetupRefusal::AlreadyProvisioned => EngineError::AlreadyProvisioned,
            SetupRefusal::NotUsable => EngineError::TokenNotUsable,
        }
    }
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(err) => {
                tracing::warn!(error = %err, "database unavailable");
                EngineError::Unavailable
            }
            StoreError::Domain(d) => EngineError::Domain(d),
            other => EngineError::Internal(anyhow::Error::new(other)),
        }
    }
}

impl From<CryptoError> for EngineError {
    fn from(e: CryptoError) -> Self {
        EngineError::Internal(anyhow::Error::new(e))
    }
}

impl From<ProtocolError> for EngineError {
    fn from(e: ProtocolError) -> Self {
        let field = match e {
            ProtocolError::UserIdFormat | ProtocolError::UserIdCheckDigit => "user_id",
            ProtocolError::ServiceIdFormat => "service_id",
            ProtocolError::CodeFormat => "code",
            _ => "params",
        };
        EngineError::Invalid {
            field,
            code: e.code(),
            message: e.to_string(),
        }
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;
