//! The QR payload of transaction authentication: the challenge the confirmation screen shows
//! and the app reads.

use std::fmt;

use rand::rngs::OsRng;
use rand::RngCore;

use super::{OcraError, Transaction};
use crate::ids::{ServiceId, UserId};

/// Prefix and version of the QR payload. `OTX2` since the suite's question became `QA27`
/// (`OTX1` carried the same fields for `QN27`, whose codes are no longer accepted).
pub const CHALLENGE_PREFIX: &str = "OTX2";

/// Longest payee name the challenge carries (characters).
pub const MAX_PAYEE_NAME_CHARS: usize = 48;

/// The one-time nonce of a challenge: 128 random bits, written as 26 base32 characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChallengeNonce([u8; 16]);

impl ChallengeNonce {
    /// A fresh nonce from the OS CSPRNG.
    pub fn generate() -> ChallengeNonce {
        let mut bytes = [0u8; 16];
        OsRng.fill_bytes(&mut bytes);
        ChallengeNonce(bytes)
    }

    /// Wraps known bytes (tests, or a nonce read back from the database).
    pub fn from_bytes(bytes: [u8; 16]) -> ChallengeNonce {
        ChallengeNonce(bytes)
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// RFC 4648 base32, upper case, no padding (26 characters).
    pub fn to_base32(&self) -> String {
        base32::encode(base32::Alphabet::Rfc4648 { padding: false }, &self.0)
    }

    /// Parses [`ChallengeNonce::to_base32`]'s form.
    ///
    /// # Errors
    /// [`OcraError::ChallengeFormat`] unless 26 characters of the RFC 4648 alphabet.
    pub fn from_base32(s: &str) -> Result<ChallengeNonce, OcraError> {
        if s.len() != 26 || !s.bytes().all(|b| matches!(b, b'A'..=b'Z' | b'2'..=b'7')) {
            return Err(OcraError::ChallengeFormat);
        }
        let bytes = base32::decode(base32::Alphabet::Rfc4648 { padding: false }, s)
            .ok_or(OcraError::ChallengeFormat)?;
        let bytes: [u8; 16] = bytes.try_into().map_err(|_| OcraError::ChallengeFormat)?;
        // Canonical only: the last character's unused bits must be zero.
        let again = ChallengeNonce(bytes);
        if again.to_base32() != s {
            return Err(OcraError::ChallengeFormat);
        }
        Ok(again)
    }
}

/// Not secret, but short: a nonce in logs is fine, yet keep `Debug` compact.
impl fmt::Debug for ChallengeNonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChallengeNonce({})", self.to_base32())
    }
}

/// The QR payload of a transaction challenge, rendered by the bank's confirmation screen and
/// scanned by the app:
///
/// ```text
/// OTX2:<service id, 8>:<user id, 12>:<question, 27 digits>:<nonce, 26 base32>:<payee name>
/// ```
///
/// e.g. `OTX2:10112231:999800000009:000112311234567000000150000:AAAA…:ﾔﾏﾀﾞ ﾀﾛｳ`. The version
/// is the prefix; a later format gets `OTX3`. The name is last, so it may contain `:`. The
/// question is [`Transaction::question`], so the app computes over exactly what the server
/// will (and shows the fields decoded from it). The name and nonce are not signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransactionChallenge {
    /// Which bank service the token belongs to.
    pub service_id: ServiceId,
    /// Which token (the app may hold several).
    pub user_id: UserId,
    /// The transfer as the bank received it.
    pub transaction: Transaction,
    /// The payee name (half-width katakana for Zengin; shown, not signed).
    pub payee_name: String,
    /// The one-time nonce naming this challenge.
    pub nonce: ChallengeNonce,
}

impl TransactionChallenge {
    /// The QR text.
    pub fn encode(&self) -> String {
        format!(
            "{CHALLENGE_PREFIX}:{}:{}:{}:{}:{}",
            self.service_id.as_str(),
            self.user_id.as_str(),
            self.transaction.question(),
            self.nonce.to_base32(),
            self.payee_name
        )
    }

    /// Parses a scanned QR text.
    ///
    /// # Errors
    ///
    /// [`OcraError::ChallengeFormat`] for a wrong prefix/version, field count, ID or nonce;
    /// [`OcraError::PayeeName`] for an empty, over-long or control-character name; the errors
    /// of [`Transaction::from_question`].
    pub fn parse(text: &str) -> Result<TransactionChallenge, OcraError> {
        let mut fields = text.splitn(6, ':');
        let (
            Some(CHALLENGE_PREFIX),
            Some(service),
            Some(user),
            Some(question),
            Some(nonce),
            Some(name),
        ) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        )
        else {
            return Err(OcraError::ChallengeFormat);
        };
        let challenge = TransactionChallenge {
            service_id: service.parse().map_err(|_| OcraError::ChallengeFormat)?,
            user_id: user.parse().map_err(|_| OcraError::ChallengeFormat)?,
            transaction: Transaction::from_question(question)?,
            payee_name: name.to_owned(),
            nonce: ChallengeNonce::from_base32(nonce)?,
        };
        check_payee_name(&challenge.payee_name)?;
        Ok(challenge)
    }
}

/// Whether `c` may appear in a Zengin (全銀) payee name: half-width digits, capital letters,
/// space, the half-width katakana but the small ones and the long-vowel mark (banks write
/// ｷﾔﾉﾝ for キャノン and ｺ-ﾋ- for コーヒー), the voiced marks, and `( ) . , - /` and the
/// corner brackets. The bank's transfer screens take only these; the app shows only these.
pub fn is_zengin_char(c: char) -> bool {
    c.is_ascii_digit()
        || c.is_ascii_uppercase()
        || " ().,-/".contains(c)
        || matches!(
            c,
            '\u{FF62}' | '\u{FF63}' | '\u{FF66}' | '\u{FF71}'..='\u{FF9F}'
        )
}

/// 1..=48 characters of the Zengin set ([`is_zengin_char`]): an allow-list, so nothing that
/// turns text around on screen (U+202E and its kin), hides (zero-width and filler characters,
/// variation selectors, tags) or draws over its neighbours (combining marks) reaches the
/// customer's screen, without a list of such characters to keep up.
///
/// # Errors
///
/// [`OcraError::PayeeName`].
pub fn check_payee_name(name: &str) -> Result<(), OcraError> {
    let count = name.chars().count();
    if (1..=MAX_PAYEE_NAME_CHARS).contains(&count) && name.chars().all(is_zengin_char) {
        Ok(())
    } else {
        Err(OcraError::PayeeName)
    }
}
