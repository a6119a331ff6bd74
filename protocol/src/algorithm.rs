//! The HMAC hash function of a token (RFC 6238 §1.2), on its own so that [`crate::secret`]
//! (which sizes a new secret by it) and [`crate::totp`] (which computes codes with it) both
//! take it from here and not from each other.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The HMAC hash function (RFC 6238 §1.2 allows SHA-1, SHA-256 and SHA-512).
///
/// Serialized as `"SHA1"`, `"SHA256"`, `"SHA512"`, the spelling of the Key URI `algorithm`
/// parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Algorithm {
    /// HMAC-SHA-1: the RFC 6238 default and the only one every authenticator app supports.
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    /// The canonical name: `"SHA1"`, `"SHA256"` or `"SHA512"`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }

    /// Length in bytes of a generated secret: the hash's output length (20, 32 or 64), which is
    /// what RFC 6238 Appendix B's test secrets use and what RFC 2104 §3 recommends.
    pub fn secret_len(&self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }

    pub(crate) fn to_totp_rs(self) -> totp_rs::Algorithm {
        match self {
            Algorithm::Sha1 => totp_rs::Algorithm::SHA1,
            Algorithm::Sha256 => totp_rs::Algorithm::SHA256,
            Algorithm::Sha512 => totp_rs::Algorithm::SHA512,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An algorithm name other than SHA1, SHA256 or SHA512 (any case). Holds the rejected name.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("unknown TOTP algorithm {0:?}; expected SHA1, SHA256 or SHA512")]
pub struct UnknownAlgorithm(pub String);

impl UnknownAlgorithm {
    /// Stable code: `"UNKNOWN_ALGORITHM"`.
    pub fn code(&self) -> &'static str {
        "UNKNOWN_ALGORITHM"
    }
}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Case-insensitive `SHA1` / `SHA256` / `SHA512`. No other spellings (`SHA-1`, `sha_256`):
    /// the Key URI format and our database use exactly these.
    ///
    /// # Errors
    ///
    /// [`UnknownAlgorithm`] for anything else.
    fn from_str(s: &str) -> Result<Algorithm, UnknownAlgorithm> {
        [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512]
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownAlgorithm(s.chars().take(32).collect()))
    }
}
