//! The OCRA suite string (RFC 6287 §6) and what it names: hash, digits and data inputs.

use std::fmt;
use std::str::FromStr;

use super::OcraError;
use crate::totp::Algorithm;

/// The characters a question may use (`QA`, `QN`, `QH` of RFC 6287 §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuestionFormat {
    /// `A`: ASCII letters and digits, sent as bytes.
    Alphanumeric,
    /// `N`: decimal digits, sent as the big-endian hex of their value.
    Numeric,
    /// `H`: hex digits, sent as bytes.
    Hex,
}

/// A parsed OCRA suite (RFC 6287 §6): `OCRA-1:HOTP-<hash>-<digits>:<data inputs>`.
///
/// Invariants: the hash is SHA-1/256/512; digits are 4..=10 (RFC 6287 also allows 0, "no
/// truncation", whose output format the RFC leaves open: rejected here); a question format is
/// present; data inputs appear at most once, in the RFC's order `C`, `Q`, `P`, `S`, `T`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OcraSuite {
    pub(super) text: String,
    pub(super) hash: Algorithm,
    pub(super) digits: u8,
    pub(super) counter: bool,
    pub(super) question: QuestionFormat,
    pub(super) question_len: u8,
    pub(super) password: Option<Algorithm>,
    pub(super) session_len: Option<u16>,
    pub(super) time_step: Option<u32>,
}

impl OcraSuite {
    /// Parses a suite string, case-sensitively as RFC 6287 writes it.
    ///
    /// `QFxx` records a maximum question length of 4..=64, but [`ocra`](super::ocra) does not
    /// enforce it: RFC 6287's own Appendix C.2 uses `QA08` with 16-character (concatenated)
    /// questions.
    ///
    /// # Errors
    ///
    /// [`OcraError::SuiteFormat`] for anything outside the grammar above.
    pub fn parse(text: &str) -> Result<OcraSuite, OcraError> {
        // ASCII only: the slicing below is by bytes.
        if !text.is_ascii() {
            return Err(OcraError::SuiteFormat);
        }
        let mut parts = text.split(':');
        let (Some("OCRA-1"), Some(function), Some(inputs), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(OcraError::SuiteFormat);
        };
        let mut function = function.split('-');
        let (Some("HOTP"), Some(hash), Some(digits), None) = (
            function.next(),
            function.next(),
            function.next(),
            function.next(),
        ) else {
            return Err(OcraError::SuiteFormat);
        };
        let hash = hash_name(hash)?;
        let digits = small_number(digits, 4, 10)?;

        let mut suite = OcraSuite {
            text: text.to_owned(),
            hash,
            digits: u8::try_from(digits).map_err(|_| OcraError::SuiteFormat)?,
            counter: false,
            question: QuestionFormat::Numeric,
            question_len: 0,
            password: None,
            session_len: None,
            time_step: None,
        };
        // Each input may appear once and only after those before it in "CQPST".
        let mut next_allowed = 0;
        for input in inputs.split('-') {
            let kind = input.chars().next().ok_or(OcraError::SuiteFormat)?;
            let position = "CQPST".find(kind).ok_or(OcraError::SuiteFormat)?;
            if position < next_allowed {
                return Err(OcraError::SuiteFormat);
            }
            next_allowed = position + 1;
            let rest = &input[1..];
            match kind {
                'C' if rest.is_empty() => suite.counter = true,
                'Q' => {
                    let mut chars = rest.chars();
                    suite.question = match chars.next() {
                        Some('A') => QuestionFormat::Alphanumeric,
                        Some('N') => QuestionFormat::Numeric,
                        Some('H') => QuestionFormat::Hex,
                        _ => return Err(OcraError::SuiteFormat),
                    };
                    let len = chars.as_str();
                    if len.len() != 2 {
                        return Err(OcraError::SuiteFormat);
                    }
                    suite.question_len = u8::try_from(small_number(len, 4, 64)?)
                        .map_err(|_| OcraError::SuiteFormat)?;
                }
                'P' => suite.password = Some(hash_name(rest)?),
                'S' if rest.len() == 3 => {
                    suite.session_len = Some(
                        u16::try_from(small_number(rest, 1, 512)?)
                            .map_err(|_| OcraError::SuiteFormat)?,
                    );
                }
                'T' => suite.time_step = Some(time_step(rest)?),
                _ => return Err(OcraError::SuiteFormat),
            }
        }
        if suite.question_len == 0 {
            return Err(OcraError::SuiteFormat);
        }
        Ok(suite)
    }

    /// The suite string, exactly as parsed (it is the first part of the HMAC input).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The HMAC hash function.
    pub fn hash(&self) -> Algorithm {
        self.hash
    }

    /// Digits of the response (4..=10).
    pub fn digits(&self) -> u8 {
        self.digits
    }

    /// Whether the suite has a `C` counter input.
    pub fn has_counter(&self) -> bool {
        self.counter
    }

    /// The question format and its declared maximum length (`QFxx`).
    pub fn question(&self) -> (QuestionFormat, u8) {
        (self.question, self.question_len)
    }

    /// The hash of the `P` input, if the suite has one.
    pub fn password_hash(&self) -> Option<Algorithm> {
        self.password
    }

    /// The length in bytes of the `S` input, if the suite has one.
    pub fn session_len(&self) -> Option<u16> {
        self.session_len
    }

    /// Seconds per time step of the `T` input, if the suite has one.
    pub fn time_step_secs(&self) -> Option<u32> {
        self.time_step
    }

    /// The `T` value at `unix_secs`: whole time steps since the Unix epoch (RFC 6287 §5.1).
    /// `None` if the suite has no `T`.
    pub fn timestamp_at(&self, unix_secs: u64) -> Option<u64> {
        self.time_step.map(|step| unix_secs / u64::from(step))
    }
}

impl FromStr for OcraSuite {
    type Err = OcraError;

    fn from_str(s: &str) -> Result<OcraSuite, OcraError> {
        OcraSuite::parse(s)
    }
}

impl fmt::Display for OcraSuite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn hash_name(s: &str) -> Result<Algorithm, OcraError> {
    match s {
        "SHA1" => Ok(Algorithm::Sha1),
        "SHA256" => Ok(Algorithm::Sha256),
        "SHA512" => Ok(Algorithm::Sha512),
        _ => Err(OcraError::SuiteFormat),
    }
}

/// A decimal number of 1–3 ASCII digits within `min..=max`.
fn small_number(s: &str, min: u32, max: u32) -> Result<u32, OcraError> {
    if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(OcraError::SuiteFormat);
    }
    let n: u32 = s.parse().map_err(|_| OcraError::SuiteFormat)?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(OcraError::SuiteFormat)
    }
}

/// `TG` of RFC 6287 §6: `[1-59]S`, `[1-59]M` or `[1-48]H` (0H would be a zero-length step).
fn time_step(s: &str) -> Result<u32, OcraError> {
    let (number, unit) = s.split_at(s.len().saturating_sub(1));
    let (max, secs) = match unit {
        "S" => (59, 1),
        "M" => (59, 60),
        "H" => (48, 3600),
        _ => return Err(OcraError::SuiteFormat),
    };
    if number.len() > 2 {
        return Err(OcraError::SuiteFormat);
    }
    Ok(small_number(number, 1, max)? * secs)
}
