//! The OCRA response (RFC 6287 §5): the data inputs laid out after the suite string, HMAC,
//! and the dynamic truncation of RFC 4226.

use std::fmt;

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use super::{OcraError, OcraSuite, QuestionFormat, QUESTION_BYTES};
use crate::secret::Secret;
use crate::totp::{Algorithm, Code};

/// The data inputs of one OCRA computation (RFC 6287 §5.1). Give exactly those the suite names.
///
/// `Debug` redacts the password and session information.
#[derive(Clone, Copy, Default)]
pub struct OcraInput<'a> {
    /// `C`: the counter.
    pub counter: Option<u64>,
    /// `Q`: the question (challenge), in the suite's format.
    pub question: &'a str,
    /// `P`: the PIN or password in the clear; hashed with the suite's `P` hash here.
    pub password: Option<&'a [u8]>,
    /// `S`: session information, exactly `Snnn` bytes.
    pub session: Option<&'a [u8]>,
    /// `T`: time steps since the epoch (see [`OcraSuite::timestamp_at`]).
    pub timestamp: Option<u64>,
}

impl fmt::Debug for OcraInput<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |present: bool| if present { "[redacted]" } else { "None" };
        f.debug_struct("OcraInput")
            .field("counter", &self.counter)
            .field("question", &self.question)
            .field("password", &redacted(self.password.is_some()))
            .field("session", &redacted(self.session.is_some()))
            .field("timestamp", &self.timestamp)
            .finish()
    }
}

/// The OCRA response (RFC 6287 §5.2): `HOTP-H-t(K, suite || 0x00 || C || Q || P || S || T)`,
/// dynamically truncated (RFC 4226 §5.3) to the suite's digits.
///
/// # Errors
///
/// [`OcraError::MissingInput`] / [`OcraError::UnexpectedInput`] when the inputs given do not
/// match the suite; [`OcraError::QuestionFormat`] for a question outside its format or longer
/// than the 128-byte field; [`OcraError::SessionLength`] for session information of the wrong
/// length.
pub fn ocra(suite: &OcraSuite, key: &Secret, input: &OcraInput<'_>) -> Result<Code, OcraError> {
    let message = data_input(suite, input)?;
    let mac = hmac(suite.hash, key.expose(), &message);
    Ok(Code::from_computed(truncate(&mac, suite.digits)))
}

fn data_input(suite: &OcraSuite, input: &OcraInput<'_>) -> Result<Zeroizing<Vec<u8>>, OcraError> {
    let mut m = Zeroizing::new(Vec::with_capacity(
        suite.text.len() + 1 + 8 + 128 + 64 + 512 + 8,
    ));
    m.extend_from_slice(suite.text.as_bytes());
    m.push(0);
    match (suite.counter, input.counter) {
        (true, Some(c)) => m.extend_from_slice(&c.to_be_bytes()),
        (true, None) => return Err(OcraError::MissingInput("counter")),
        (false, Some(_)) => return Err(OcraError::UnexpectedInput("counter")),
        (false, None) => {}
    }
    m.extend_from_slice(&encode_question(suite.question, input.question)?);
    match (suite.password, input.password) {
        (Some(hash), Some(p)) => m.extend_from_slice(&digest(hash, p)),
        (Some(_), None) => return Err(OcraError::MissingInput("password")),
        (None, Some(_)) => return Err(OcraError::UnexpectedInput("password")),
        (None, None) => {}
    }
    match (suite.session_len, input.session) {
        (Some(len), Some(s)) if s.len() == usize::from(len) => m.extend_from_slice(s),
        (Some(_), Some(_)) => return Err(OcraError::SessionLength),
        (Some(_), None) => return Err(OcraError::MissingInput("session")),
        (None, Some(_)) => return Err(OcraError::UnexpectedInput("session")),
        (None, None) => {}
    }
    match (suite.time_step, input.timestamp) {
        (Some(_), Some(t)) => m.extend_from_slice(&t.to_be_bytes()),
        (Some(_), None) => return Err(OcraError::MissingInput("timestamp")),
        (None, Some(_)) => return Err(OcraError::UnexpectedInput("timestamp")),
        (None, None) => {}
    }
    Ok(m)
}

/// The 128-byte `Q` field: the question's bytes, left-aligned and zero-filled (RFC 6287 §5.1
/// and its reference code: numeric questions become the hex digits of their value, and an odd
/// number of hex digits is completed with a `0` nibble on the right).
pub(super) fn encode_question(
    format: QuestionFormat,
    q: &str,
) -> Result<[u8; QUESTION_BYTES], OcraError> {
    if q.is_empty() {
        return Err(OcraError::QuestionFormat);
    }
    let bytes: Vec<u8> = match format {
        QuestionFormat::Alphanumeric => {
            if !q.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(OcraError::QuestionFormat);
            }
            q.as_bytes().to_vec()
        }
        QuestionFormat::Hex => {
            let nibbles = q
                .chars()
                .map(|c| c.to_digit(16).map(|d| d as u8))
                .collect::<Option<Vec<u8>>>()
                .ok_or(OcraError::QuestionFormat)?;
            pack_nibbles(&nibbles)
        }
        QuestionFormat::Numeric => {
            if !q.bytes().all(|b| b.is_ascii_digit()) {
                return Err(OcraError::QuestionFormat);
            }
            // Guards the big-integer loop below: 310 digits already exceed 128 bytes.
            if q.len() > 310 {
                return Err(OcraError::QuestionFormat);
            }
            let value = decimal_to_bytes(q);
            // The value's hex digits without leading zeros, left-aligned.
            let mut nibbles: Vec<u8> = value.iter().flat_map(|b| [b >> 4, b & 0x0f]).collect();
            if nibbles.first() == Some(&0) {
                nibbles.remove(0);
            }
            pack_nibbles(&nibbles)
        }
    };
    let mut field = [0u8; QUESTION_BYTES];
    field
        .get_mut(..bytes.len())
        .ok_or(OcraError::QuestionFormat)?
        .copy_from_slice(&bytes);
    Ok(field)
}

/// Nibbles to bytes, high nibble first; an odd count gets a `0` nibble appended.
fn pack_nibbles(nibbles: &[u8]) -> Vec<u8> {
    nibbles
        .chunks(2)
        .map(|pair| (pair[0] << 4) | pair.get(1).copied().unwrap_or(0))
        .collect()
}

/// A decimal string's value as minimal big-endian bytes (empty for zero).
fn decimal_to_bytes(digits: &str) -> Vec<u8> {
    let mut value: Vec<u8> = Vec::new();
    for d in digits.bytes() {
        let mut carry = u16::from(d - b'0');
        for byte in value.iter_mut().rev() {
            let v = u16::from(*byte) * 10 + carry;
            *byte = (v & 0xff) as u8;
            carry = v >> 8;
        }
        if carry > 0 {
            value.insert(0, carry as u8);
        }
    }
    value
}

fn digest(hash: Algorithm, data: &[u8]) -> Vec<u8> {
    match hash {
        Algorithm::Sha1 => Sha1::digest(data).to_vec(),
        Algorithm::Sha256 => Sha256::digest(data).to_vec(),
        Algorithm::Sha512 => Sha512::digest(data).to_vec(),
    }
}

fn hmac(hash: Algorithm, key: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
    fn run<M: Mac + KeyInit>(key: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
        // HMAC takes keys of any length (RFC 2104 §2), so this `new_from_slice` cannot fail;
        // an empty output would fail closed in `truncate` anyway.
        match <M as KeyInit>::new_from_slice(key) {
            Ok(mut mac) => {
                mac.update(message);
                Zeroizing::new(mac.finalize().into_bytes().to_vec())
            }
            Err(_) => Zeroizing::new(Vec::new()),
        }
    }
    match hash {
        Algorithm::Sha1 => run::<Hmac<Sha1>>(key, message),
        Algorithm::Sha256 => run::<Hmac<Sha256>>(key, message),
        Algorithm::Sha512 => run::<Hmac<Sha512>>(key, message),
    }
}

/// RFC 4226 §5.3 dynamic truncation to `digits` decimal digits. An impossible short MAC gives
/// an empty code, which matches nothing.
fn truncate(mac: &[u8], digits: u8) -> Zeroizing<String> {
    let offset = mac.last().map_or(0, |b| usize::from(b & 0x0f));
    let Some(&[a, b, c, d]) = mac.get(offset..offset + 4) else {
        return Zeroizing::new(String::new());
    };
    let binary = u64::from(u32::from_be_bytes([a & 0x7f, b, c, d]));
    let value = binary % 10u64.pow(u32::from(digits));
    Zeroizing::new(format!("{value:0width$}", width = usize::from(digits)))
}
