//! The one error type of the `protocol` crate (STYLE §2).
//!
//! Every variant names what was wrong with the caller's input, never the input itself: several
//! of these are raised while handling secrets, codes and passwords, and an error message is the
//! kind of text that ends up in logs. Callers (UI, console, tests) match on [`ProtocolError::code`],
//! which is stable; the English messages may be reworded.

/// Why a protocol value was rejected.
///
/// The messages never contain the offending value, so they are safe to log.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ProtocolError {
    /// TOTP codes must have 6 or 8 digits (RFC 4226 §5.3 allows 6–8; we support the two
    /// lengths authenticator apps agree on). Holds the rejected digit count.
    #[error("a TOTP code must have 6 or 8 digits, not {0}")]
    InvalidDigits(u8),
    /// The TOTP time step must be 1..=300 seconds. Holds the rejected period.
    #[error("the TOTP period must be between 1 and 300 seconds, not {0}")]
    InvalidPeriod(u32),
    /// A one-time code was not exactly the expected number of ASCII digits.
    #[error("the one-time code must be exactly the expected number of digits")]
    CodeFormat,
    /// A secret was not valid RFC 4648 base32 (or was empty).
    #[error("the secret is not valid base32")]
    SecretFormat,
    /// A secret decoded to fewer than 16 bytes (RFC 4226 §4 R6 requires at least 128 bits).
    #[error("the secret is shorter than the 128 bits RFC 4226 requires")]
    SecretTooShort,
    /// A service ID was not exactly 8 ASCII digits.
    #[error("a service ID must be exactly 8 digits")]
    ServiceIdFormat,
    /// A user ID was not exactly 12 ASCII digits (or a serial was out of range).
    #[error("a user ID must be exactly 12 digits")]
    UserIdFormat,
    /// A user ID had 12 digits but its last (Damm) check digit did not match: almost certainly a
    /// typing mistake.
    #[error("the user ID's check digit does not match; please check the ID for typos")]
    UserIdCheckDigit,
}

impl ProtocolError {
    /// The stable, machine-readable code for this error (`SCREAMING_SNAKE_CASE`).
    ///
    /// These strings are part of the API: UI, console and tests match on them.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::InvalidDigits(_) => "INVALID_DIGITS",
            ProtocolError::InvalidPeriod(_) => "INVALID_PERIOD",
            ProtocolError::CodeFormat => "CODE_FORMAT",
            ProtocolError::SecretFormat => "SECRET_FORMAT",
            ProtocolError::SecretTooShort => "SECRET_TOO_SHORT",
            ProtocolError::ServiceIdFormat => "SERVICE_ID_FORMAT",
            ProtocolError::UserIdFormat => "USER_ID_FORMAT",
            ProtocolError::UserIdCheckDigit => "USER_ID_CHECK_DIGIT",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_screaming_snake_case() {
        let all = [
            ProtocolError::InvalidDigits(7),
            ProtocolError::InvalidPeriod(0),
            ProtocolError::CodeFormat,
            ProtocolError::SecretFormat,
            ProtocolError::SecretTooShort,
            ProtocolError::ServiceIdFormat,
            ProtocolError::UserIdFormat,
            ProtocolError::UserIdCheckDigit,
        ];
        let mut codes: Vec<&str> = all.iter().map(ProtocolError::code).collect();
        for code in &codes {
            assert!(
                code.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{code}: callers match on codes, so they follow one stable shape"
            );
        }
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(
            codes.len(),
            all.len(),
            "two variants must never share a code"
        );
        assert_eq!(
            ProtocolError::UserIdCheckDigit.code(),
            "USER_ID_CHECK_DIGIT"
        );
    }

    #[test]
    fn messages_are_english_sentences() {
        assert_eq!(
            ProtocolError::InvalidDigits(7).to_string(),
            "a TOTP code must have 6 or 8 digits, not 7"
        );
        assert!(!ProtocolError::CodeFormat.to_string().is_empty());
    }
}
