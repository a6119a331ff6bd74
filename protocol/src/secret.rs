//! Secret material: the TOTP shared secret ([`Secret`]) and a wrapper for passwords and codes
//! ([`Sensitive`]).
//!
//! Both types zeroize their memory on drop and print `[redacted]` from `Debug`, so a stray
//! `{:?}` or `tracing` field cannot leak them (STYLE §3). [`Secret`] deliberately has no
//! `Display` and no `Serialize`: the one place a secret crosses the wire is
//! [`crate::wire::WireSecret`], and reading the bytes takes an explicit [`Secret::expose`].

use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::algorithm::Algorithm;
use crate::error::ProtocolError;

/// RFC 4226 §4 R6: the shared secret must be at least 128 bits.
pub const MIN_SECRET_LEN: usize = 16;

/// The base32 alphabet we emit: RFC 4648 §6, upper case, no padding (what the Key URI format and
/// authenticator apps expect).
const BASE32: base32::Alphabet = base32::Alphabet::Rfc4648 { padding: false };

/// A TOTP/HOTP shared secret (the HMAC key of RFC 4226 §5).
///
/// Invariants: the bytes live in a [`Zeroizing`] buffer, so they are wiped when the value is
/// dropped (every clone wipes its own copy). `Debug` prints exactly `Secret([redacted])`. There is
/// no `Display` and no `Serialize`. Equality is constant-time.
///
/// [`Secret::from_bytes`] accepts any length (it is how stored secrets are loaded back); the
/// 128-bit minimum is enforced where secrets enter from text, in [`Secret::from_base32`].
#[derive(Clone)]
pub struct Secret(Zeroizing<Vec<u8>>);

impl Secret {
    /// Wraps raw secret bytes. The vector is moved in, not copied, so no unzeroized copy is left
    /// behind by this call.
    pub fn from_bytes(bytes: Vec<u8>) -> Secret {
        Secret(Zeroizing::new(bytes))
    }

    /// Generates a fresh secret from the operating system's CSPRNG ([`OsRng`]), as long as the
    /// HMAC's output: 20 bytes for SHA-1, 32 for SHA-256, 64 for SHA-512 (RFC 4226 §4 R6
    /// recommends 160 bits; RFC 2104 §3 says keys longer than the output add no strength).
    ///
    /// # Panics
    ///
    /// Only if the operating system cannot provide randomness at all (`OsRng` panics then).
    /// Issuing a token without a random secret must never silently succeed.
    pub fn generate(algorithm: Algorithm) -> Secret {
        let mut bytes = Zeroizing::new(vec![0u8; algorithm.secret_len()]);
        OsRng.fill_bytes(&mut bytes);
        Secret(bytes)
    }

    /// The raw secret bytes. Named so that every read of the secret is easy to find in review.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Length of the secret in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret has no bytes (only possible via [`Secret::from_bytes`]).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The secret as RFC 4648 §6 base32: upper case, no `=` padding, as the Key URI format's
    /// `secret` parameter wants it. The returned string is itself zeroized on drop.
    pub fn to_base32(&self) -> Zeroizing<String> {
        Zeroizing::new(base32::encode(BASE32, &self.0))
    }

    /// Parses a base32 secret as people and authenticator apps write it.
    ///
    /// Accepted: lower or upper case, ASCII spaces anywhere (secrets are often shown in groups
    /// of four), and optional trailing `=` padding (if present it must be the exact RFC 4648 §6
    /// padding for the length).
    ///
    /// # Errors
    ///
    /// - [`ProtocolError::SecretFormat`] if the text is empty (after removing spaces), contains a
    ///   character outside the base32 alphabet, has misplaced or wrong padding, or has a length no
    ///   base32 encoding can have.
    /// - [`ProtocolError::SecretTooShort`] if it decodes to fewer than 16 bytes (RFC 4226 §4 R6).
    pub fn from_base32(s: &str) -> Result<Secret, ProtocolError> {
        // Normalise into a buffer sized up front, so it never reallocates and leaves an
        // unzeroized copy of the secret on the heap.
        let mut clean = Zeroizing::new(String::with_capacity(s.len()));
        let mut padding = 0usize;
        for c in s.chars() {
            match c {
                ' ' => {}
                '=' => padding += 1,
                // Anything after padding means the '=' was not trailing.
                _ if padding > 0 => return Err(ProtocolError::SecretFormat),
                'A'..='Z' | '2'..='7' => clean.push(c),
                'a'..='z' => clean.push(c.to_ascii_uppercase()),
                _ => return Err(ProtocolError::SecretFormat),
            }
        }
        if clean.is_empty() {
            return Err(ProtocolError::SecretFormat);
        }
        // RFC 4648 §6: the final quantum is 2, 4, 5 or 7 characters (or a full 8); other lengths
        // cannot come from any byte string. Padding, if any, fills that quantum to 8 exactly.
        let expected_padding = match clean.len() % 8 {
            0 => 0,
            2 => 6,
            4 => 4,
            5 => 3,
            7 => 1,
            _ => return Err(ProtocolError::SecretFormat),
        };
        if padding != 0 && padding != expected_padding {
            return Err(ProtocolError::SecretFormat);
        }
        let bytes = base32::decode(BASE32, &clean).ok_or(ProtocolError::SecretFormat)?;
        let secret = Secret::from_bytes(bytes);
        if secret.len() < MIN_SECRET_LEN {
            return Err(ProtocolError::SecretTooShort);
        }
        Ok(secret)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// Constant-time: comparing secrets must not reveal how long their common prefix is.
impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}

impl Eq for Secret {}

impl ZeroizeOnDrop for Secret {}

/// A password, one-time code or other value that must not be logged and must not outlive its use.
///
/// `Debug` prints `[redacted]`; the value is zeroized on drop; read it with
/// [`Sensitive::expose`]. Unlike [`Secret`] it is `Serialize`/`Deserialize` (transparently, as the
/// inner value): it travels inside request DTOs such as
/// [`crate::wire::SetupRequest::activation_password`], which is the point of the type. Note that
/// serde's own buffers (e.g. the JSON text) are outside our control.
///
/// There is no `PartialEq`: comparing passwords or codes must go through a constant-time or
/// password-hash comparison chosen at the call site.
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sensitive<T: Zeroize>(pub T);

impl<T: Zeroize> Sensitive<T> {
    /// Wraps a value.
    pub fn new(value: T) -> Sensitive<T> {
        Sensitive(value)
    }

    /// The wrapped value. Named so that every read is easy to find in review.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T: Zeroize> From<T> for Sensitive<T> {
    fn from(value: T) -> Sensitive<T> {
        Sensitive(value)
    }
}

impl<T: Zeroize> fmt::Debug for Sensitive<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<T: Zeroize> Drop for Sensitive<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Sensitive<T> {}

#[cfg(test)]
mod tests {
    use super::*;

    const RFC_SECRET: &[u8] = b"12345678901234567890";
    const RFC_SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    #[test]
    fn base32_round_trip_is_upper_case_without_padding() {
        let secret = Secret::from_bytes(RFC_SECRET.to_vec());
        assert_eq!(
            secret.to_base32().as_str(),
            RFC_SECRET_B32,
            "RFC 6238's ASCII secret has a well-known base32 form"
        );
        let odd = Secret::from_bytes(vec![0xAB; 17]);
        let text = odd.to_base32();
        assert!(!text.contains('='), "the Key URI format omits padding");
        assert_eq!(Secret::from_base32(&text), Ok(odd));
    }

    #[test]
    fn from_base32_accepts_human_forms() {
        let want = Secret::from_bytes(RFC_SECRET.to_vec());
        for text in [
            RFC_SECRET_B32,
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
            "  gezd GNBV gy3t QOJQ gezd GNBV gy3t QOJQ  ",
        ] {
            assert_eq!(
                Secret::from_base32(text).as_ref(),
                Ok(&want),
                "{text:?}: case and grouping spaces carry no information"
            );
        }
        // 17 bytes -> 28 characters -> 4 '=' of padding.
        let odd = Secret::from_bytes(vec![0x5A; 17]);
        let padded = format!("{}====", odd.to_base32().as_str());
        assert_eq!(
            Secret::from_base32(&padded),
            Ok(odd),
            "correct padding is optional, not wrong"
        );
    }

    #[test]
    fn from_base32_rejects_bad_text() {
        for (text, why) in [
            ("", "empty"),
            ("    ", "only spaces"),
            (
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1",
                "'1' is not in the RFC 4648 alphabet",
            ),
            (
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ8",
                "'8' is not in the RFC 4648 alphabet",
            ),
            ("GEZDGNBVGY3TQOJQ-GEZDGNBVGY3TQOJQ", "hyphen"),
            ("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQé", "non-ASCII"),
            ("GEZDGNBVGY3TQOJQ=GEZDGNBVGY3TQOJQ", "padding in the middle"),
            (
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQA",
                "33 chars: no byte string encodes to 8n+1",
            ),
            (
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQAAA",
                "8n+3 chars is impossible",
            ),
            (
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQAAAAAA",
                "8n+6 chars is impossible",
            ),
            (
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ=",
                "padding where none is due",
            ),
            (
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQAAAA==",
                "wrong amount of padding",
            ),
        ] {
            assert_eq!(
                Secret::from_base32(text),
                Err(ProtocolError::SecretFormat),
                "{why}"
            );
        }
    }

    #[test]
    fn from_base32_enforces_128_bits() {
        let fifteen = Secret::from_bytes(vec![1; 15]).to_base32();
        assert_eq!(
            Secret::from_base32(&fifteen),
            Err(ProtocolError::SecretTooShort),
            "RFC 4226 §4 R6: fewer than 128 bits is too weak"
        );
        let sixteen = Secret::from_bytes(vec![1; 16]).to_base32();
        assert_eq!(Secret::from_base32(&sixteen).map(|s| s.len()), Ok(16));
    }

    #[test]
    fn generate_uses_the_hash_output_length_and_differs_each_time() {
        for (algorithm, len) in [
            (Algorithm::Sha1, 20),
            (Algorithm::Sha256, 32),
            (Algorithm::Sha512, 64),
        ] {
            let a = Secret::generate(algorithm);
            let b = Secret::generate(algorithm);
            assert_eq!(
                a.len(),
                len,
                "{algorithm:?}: secret as long as the HMAC output"
            );
            assert_ne!(a, b, "two CSPRNG draws of >=160 bits never collide");
        }
    }

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::from_bytes(RFC_SECRET.to_vec());
        let shown = format!("{secret:?} {secret:#?}");
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert!(
            !shown.contains("1234"),
            "Debug must not show the bytes: {shown}"
        );
        assert!(
            !shown.contains("GEZD"),
            "Debug must not show the base32: {shown}"
        );

        let password = Sensitive::new(String::from("83726154"));
        assert_eq!(format!("{password:?}"), "[redacted]");
        assert_eq!(format!("{password:#?}"), "[redacted]");
        assert_eq!(password.expose(), "83726154");
    }

    #[test]
    fn sensitive_serializes_transparently() {
        let password: Sensitive<String> = "4321".to_string().into();
        let json = serde_json::to_string(&password).unwrap();
        assert_eq!(json, "\"4321\"", "it crosses the wire as the bare value");
        let back: Sensitive<String> = serde_json::from_str(&json).unwrap();
        assert_eq!(back.expose(), "4321");
    }

    #[test]
    fn secret_equality_is_by_value() {
        let a = Secret::from_bytes(vec![1, 2, 3]);
        assert_eq!(a, a.clone());
        assert_ne!(a, Secret::from_bytes(vec![1, 2, 4]));
        assert_ne!(a, Secret::from_bytes(vec![1, 2]), "a prefix is not equal");
        assert!(Secret::from_bytes(Vec::new()).is_empty());
    }
}
