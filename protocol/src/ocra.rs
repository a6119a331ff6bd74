//! OCRA (RFC 6287) and the transaction authentication (取引認証) built on it.
//!
//! # What this answers
//!
//! Malware in the customer's browser (man-in-the-browser) can change a transfer's payee after the
//! customer typed a valid TOTP code: the code proves "the customer is here", not "the customer
//! wants *this* transfer". With transaction authentication the phone shows what the bank
//! received, the customer checks it there, and the code is an OCRA response over a question that
//! commits to the payee and amount: the server recomputes it from the transfer *it* received, so
//! a code made for another payee or amount fails.
//!
//! # The suite: [`TRANSACTION_SUITE`] = `OCRA-1:HOTP-SHA256-8:QN27-T1M`
//!
//! - **HOTP-SHA256-8**: HMAC-SHA-256 under a 256-bit derived key, 8 digits (10^8 codes; with
//!   the shared 5-failure lock an online guesser's chance is 5·10^-8 per token).
//! - **QN27**: a *numeric* question, because the typed fallback is digits the customer copies
//!   off the transfer screen, and numeric questions are what keypad tokens accept, should the
//!   bank ever hand out hardware OCRA tokens for the same accounts. The question is the 27-digit
//!   canonical form of [`Transaction::question`]:
//!
//!   | digits | field | rule |
//!   | --- | --- | --- |
//!   | 4 | bank code (金融機関コード) | exactly 4 digits |
//!   | 3 | branch code (支店コード) | exactly 3 digits |
//!   | 1 | account type (預金種目) | Zengin code: 1 普通, 2 当座 |
//!   | 7 | account number (口座番号) | exactly 7 digits |
//!   | 12 | amount in yen | 1..=999,999,999,999, zero-padded to 12 digits |
//!
//!   Every field has a fixed width, so the mapping from transfers to questions is injective:
//!   any change of bank, branch, type, account or amount is a different question, and so
//!   (but for a 10^-8 HMAC collision) a different code. RFC 6287 §5.2 turns a numeric question
//!   into a big integer; with a fixed total width the dropped leading zeros lose nothing.
//!   The payee *name* is not in the question: money moves by the account, not the name (the
//!   receiving bank checks names), and a name cannot be typed on a keypad.
//! - **T1M**: the 60-second time step of the TOTP profile, so the app shows one code with a
//!   countdown and the server needs no per-token counter in sync (a `C` counter would, and a
//!   lost response would desynchronise it). Single use comes from the server's replay rule
//!   ([`match_transaction_code`] returns the step to record, as TOTP's `match_step` does).
//! - No `P` (the app lock guards the phone) and no `S`.
//!
//! # QR and typed fallback give the same question
//!
//! The QR ([`TransactionChallenge`]) carries the 27-digit question itself, plus the service and
//! user ID (which token), the payee name (shown, not signed) and a one-time nonce. The typed
//! fallback asks for the same fields: bank code, branch code, account type, account number and
//! amount; [`Transaction::new`] builds the same question from them. The issue text says "account
//! number + amount"; a question built from those alone would let malware move the money to the
//! same account number at another bank or branch, breaking "any change fails", so the typed form
//! also takes the 4+3 digits of bank and branch (printed beside the QR) and the account type.
//! The nonce is *not* in the question (a typed path could not reproduce it): it names the
//! challenge, so the server can tie a code to the confirmation screen it rendered and the app
//! can refuse a QR it has already answered; freshness of the code comes from `T`.
//!
//! # Key separation
//!
//! The OCRA key is `HKDF-SHA256(ikm = TOTP secret, salt = none, info = TRANSACTION_KEY_INFO)`
//! ([`transaction_key`]), 32 bytes. TOTP is HMAC-SHA-1 under the raw secret over an 8-byte
//! counter; OCRA is HMAC-SHA-256 under a key that is a one-way function of it, over a message
//! that starts with the suite string. Neither key can be computed from the other's codes, so a
//! TOTP code is never a transaction code, nor the other way round, beyond chance.
//!
//! # The generic part
//!
//! [`OcraSuite`] parses any `OCRA-1` suite with `HOTP-SHA1/SHA256/SHA512-t` (t = 4..=10) and the
//! data inputs `C`, `QA/QN/QH xx`, `PSHA1/PSHA256/PSHA512`, `Snnn`, `T<n>S/M/H`, and [`ocra`]
//! computes the response. It passes every RFC 6287 Appendix C vector and agrees with PyPI's
//! `oath` on random inputs (`protocol/tests/ocra.rs`).

use std::fmt;
use std::str::FromStr;

use hkdf::Hkdf;
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::rngs::OsRng;
use rand::RngCore;
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::ids::{ServiceId, UserId};
use crate::secret::Secret;
use crate::totp::{match_candidates, Algorithm, Code, StepMatch};

/// The OCRA suite of this system's transaction authentication (see the module doc for why).
pub const TRANSACTION_SUITE: &str = "OCRA-1:HOTP-SHA256-8:QN27-T1M";

/// HKDF `info` of [`transaction_key`]. Changing it changes every transaction code.
pub const TRANSACTION_KEY_INFO: &[u8] = b"otp-soft-token/v1/transaction-authentication/OCRA-1";

/// Seconds per time step of [`TRANSACTION_SUITE`] (`T1M`).
pub const TRANSACTION_STEP_SECS: u64 = 60;

/// Largest amount the 12-digit field carries (yen).
pub const MAX_AMOUNT_YEN: u64 = 999_999_999_999;

/// The OCRA question field is 128 bytes (RFC 6287 §5.1).
const QUESTION_BYTES: usize = 128;

/// Why an OCRA suite, input, transaction or challenge was rejected.
///
/// Messages never contain the offending value (it may be a password or a key's output).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum OcraError {
    /// The suite string is not a supported `OCRA-1` suite (RFC 6287 §6).
    #[error("the OCRA suite is malformed or unsupported")]
    SuiteFormat,
    /// The suite needs a data input the caller did not give (`"counter"`, `"password"`,
    /// `"session"`, `"timestamp"`).
    #[error("the OCRA suite needs the {0} input")]
    MissingInput(&'static str),
    /// The caller gave a data input the suite does not use.
    #[error("the OCRA suite does not use the {0} input")]
    UnexpectedInput(&'static str),
    /// The question has characters its format does not allow, or does not fit 128 bytes.
    #[error("the OCRA question does not match the suite's question format")]
    QuestionFormat,
    /// The session information does not have the suite's `Snnn` length.
    #[error("the OCRA session information has the wrong length")]
    SessionLength,
    /// A bank code must be exactly 4 digits.
    #[error("a bank code must be exactly 4 digits")]
    BankCode,
    /// A branch code must be exactly 3 digits.
    #[error("a branch code must be exactly 3 digits")]
    BranchCode,
    /// The account type must be 1 (普通) or 2 (当座).
    #[error("the account type must be 1 (ordinary) or 2 (current)")]
    AccountType,
    /// An account number must be exactly 7 digits.
    #[error("an account number must be exactly 7 digits")]
    AccountNumber,
    /// The amount must be 1..=999,999,999,999 yen.
    #[error("the amount must be between 1 and 999,999,999,999 yen")]
    Amount,
    /// The payee name must be 1..=48 characters without control characters.
    #[error("the payee name must be 1 to 48 characters without control characters")]
    PayeeName,
    /// A QR payload was not a well-formed `OTX1` challenge.
    #[error("the transaction challenge is malformed")]
    ChallengeFormat,
}

impl OcraError {
    /// The stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            OcraError::SuiteFormat => "OCRA_SUITE_FORMAT",
            OcraError::MissingInput(_) => "OCRA_INPUT_MISSING",
            OcraError::UnexpectedInput(_) => "OCRA_INPUT_UNEXPECTED",
            OcraError::QuestionFormat => "OCRA_QUESTION_FORMAT",
            OcraError::SessionLength => "OCRA_SESSION_LENGTH",
            OcraError::BankCode => "TX_BANK_CODE",
            OcraError::BranchCode => "TX_BRANCH_CODE",
            OcraError::AccountType => "TX_ACCOUNT_TYPE",
            OcraError::AccountNumber => "TX_ACCOUNT_NUMBER",
            OcraError::Amount => "TX_AMOUNT",
            OcraError::PayeeName => "TX_PAYEE_NAME",
            OcraError::ChallengeFormat => "TX_CHALLENGE_FORMAT",
        }
    }
}

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
    text: String,
    hash: Algorithm,
    digits: u8,
    counter: bool,
    question: QuestionFormat,
    question_len: u8,
    password: Option<Algorithm>,
    session_len: Option<u16>,
    time_step: Option<u32>,
}

impl OcraSuite {
    /// Parses a suite string, case-sensitively as RFC 6287 writes it.
    ///
    /// `QFxx` records a maximum question length of 4..=64, but [`ocra`] does not enforce it:
    /// RFC 6287's own Appendix C.2 uses `QA08` with 16-character (concatenated) questions.
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
fn encode_question(format: QuestionFormat, q: &str) -> Result<[u8; QUESTION_BYTES], OcraError> {
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

// --- transaction authentication -----------------------------------------------------------

/// 預金種目: the account type, with its Zengin code digit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccountType {
    /// 普通 (ordinary deposit), code 1.
    Ordinary,
    /// 当座 (current account), code 2.
    Current,
}

impl AccountType {
    /// The Zengin code digit: `'1'` or `'2'`.
    pub fn code(&self) -> char {
        match self {
            AccountType::Ordinary => '1',
            AccountType::Current => '2',
        }
    }

    /// The Japanese label the customer sees: `普通` / `当座`.
    pub fn label_ja(&self) -> &'static str {
        match self {
            AccountType::Ordinary => "普通",
            AccountType::Current => "当座",
        }
    }

    /// Parses the Zengin code digit.
    ///
    /// # Errors
    ///
    /// [`OcraError::AccountType`] for anything but `'1'` or `'2'`.
    pub fn from_code(c: char) -> Result<AccountType, OcraError> {
        match c {
            '1' => Ok(AccountType::Ordinary),
            '2' => Ok(AccountType::Current),
            _ => Err(OcraError::AccountType),
        }
    }
}

/// What a transaction code commits to: the payee account and the amount.
///
/// Invariants: bank code 4 digits, branch code 3 digits, account number 7 digits, amount
/// 1..=[`MAX_AMOUNT_YEN`]. The payee name is deliberately not here (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Transaction {
    bank_code: String,
    branch_code: String,
    account_type: AccountType,
    account_number: String,
    amount_yen: u64,
}

fn digits_exact(s: &str, len: usize, err: OcraError) -> Result<String, OcraError> {
    if s.len() == len && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(s.to_owned())
    } else {
        Err(err)
    }
}

impl Transaction {
    /// Builds a transaction from its fields (the typed fallback and the backend both use this).
    ///
    /// Strict: no spaces, no full-width digits; the UI normalises what the customer typed.
    ///
    /// # Errors
    ///
    /// [`OcraError::BankCode`], [`OcraError::BranchCode`], [`OcraError::AccountNumber`] or
    /// [`OcraError::Amount`] for the first field that breaks its rule.
    pub fn new(
        bank_code: &str,
        branch_code: &str,
        account_type: AccountType,
        account_number: &str,
        amount_yen: u64,
    ) -> Result<Transaction, OcraError> {
        let bank_code = digits_exact(bank_code, 4, OcraError::BankCode)?;
        let branch_code = digits_exact(branch_code, 3, OcraError::BranchCode)?;
        let account_number = digits_exact(account_number, 7, OcraError::AccountNumber)?;
        if !(1..=MAX_AMOUNT_YEN).contains(&amount_yen) {
            return Err(OcraError::Amount);
        }
        Ok(Transaction {
            bank_code,
            branch_code,
            account_type,
            account_number,
            amount_yen,
        })
    }

    /// Parses the 27-digit canonical question back into a transaction (the QR path).
    ///
    /// # Errors
    ///
    /// [`OcraError::QuestionFormat`] unless `question` is 27 ASCII digits; then the field
    /// errors of [`Transaction::new`] and [`OcraError::AccountType`].
    pub fn from_question(question: &str) -> Result<Transaction, OcraError> {
        if question.len() != 27 || !question.bytes().all(|b| b.is_ascii_digit()) {
            return Err(OcraError::QuestionFormat);
        }
        let account_type = AccountType::from_code(question[7..8].chars().next().unwrap_or(' '))?;
        let amount: u64 = question[15..27]
            .parse()
            .map_err(|_| OcraError::QuestionFormat)?;
        Transaction::new(
            &question[0..4],
            &question[4..7],
            account_type,
            &question[8..15],
            amount,
        )
    }

    /// 金融機関コード (4 digits).
    pub fn bank_code(&self) -> &str {
        &self.bank_code
    }

    /// 支店コード (3 digits).
    pub fn branch_code(&self) -> &str {
        &self.branch_code
    }

    /// 預金種目.
    pub fn account_type(&self) -> AccountType {
        self.account_type
    }

    /// 口座番号 (7 digits).
    pub fn account_number(&self) -> &str {
        &self.account_number
    }

    /// The amount in yen.
    pub fn amount_yen(&self) -> u64 {
        self.amount_yen
    }

    /// The canonical OCRA question: bank(4) branch(3) type(1) account(7) amount(12, zero-padded),
    /// 27 digits. Injective: two different transactions never share a question.
    pub fn question(&self) -> String {
        format!(
            "{}{}{}{}{:012}",
            self.bank_code,
            self.branch_code,
            self.account_type.code(),
            self.account_number,
            self.amount_yen
        )
    }

    /// SHA-256 of `TRANSACTION_SUITE || 0x00 || question`, hex: what the audit records to name
    /// the transaction without repeating its fields (never the code).
    pub fn digest_hex(&self) -> String {
        let mut h = Sha256::new();
        h.update(TRANSACTION_SUITE.as_bytes());
        h.update([0]);
        h.update(self.question().as_bytes());
        hex::encode(h.finalize())
    }
}

/// The parsed [`TRANSACTION_SUITE`].
pub fn transaction_suite() -> OcraSuite {
    OcraSuite {
        text: TRANSACTION_SUITE.to_owned(),
        hash: Algorithm::Sha256,
        digits: 8,
        counter: false,
        question: QuestionFormat::Numeric,
        question_len: 27,
        password: None,
        session_len: None,
        time_step: Some(60),
    }
}

/// The OCRA key of transaction authentication, derived from the token's TOTP secret for this
/// purpose only: `HKDF-SHA256(salt = none, ikm = secret, info = TRANSACTION_KEY_INFO)`, 32 bytes
/// (RFC 5869). See the module doc for why this separates TOTP and transaction codes.
pub fn transaction_key(totp_secret: &Secret) -> Secret {
    let hk = Hkdf::<Sha256>::new(None, totp_secret.expose());
    let mut okm = Zeroizing::new(vec![0u8; 32]);
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit, so `expand` cannot fail; on the
    // impossible error the key stays all-zero only in `okm`, and we return an empty secret,
    // whose codes the server never sees from a real app.
    if hk.expand(TRANSACTION_KEY_INFO, &mut okm).is_err() {
        return Secret::from_bytes(Vec::new());
    }
    Secret::from_bytes(okm.to_vec())
}

/// The transaction time step at `unix_secs` (`T1M`: minutes since the epoch).
pub fn transaction_step_at(unix_secs: u64) -> u64 {
    unix_secs / TRANSACTION_STEP_SECS
}

/// The 8-digit transaction code for `transaction` at time step `step`, from the token's TOTP
/// secret (the key is derived with [`transaction_key`]).
pub fn transaction_code_at_step(
    totp_secret: &Secret,
    transaction: &Transaction,
    step: u64,
) -> Code {
    let key = transaction_key(totp_secret);
    let question = transaction.question();
    let input = OcraInput {
        question: &question,
        timestamp: Some(step),
        ..OcraInput::default()
    };
    // The suite is fixed and the question is 27 digits by construction, so this cannot fail;
    // fail closed with an empty code (which matches nothing) rather than panic.
    ocra(&transaction_suite(), &key, &input)
        .unwrap_or_else(|_| Code::from_computed(Zeroizing::new(String::new())))
}

/// The transaction code valid at `unix_secs`.
pub fn transaction_code(totp_secret: &Secret, transaction: &Transaction, unix_secs: u64) -> Code {
    transaction_code_at_step(totp_secret, transaction, transaction_step_at(unix_secs))
}

/// Checks a transaction code against every step in `first..=last` with the replay rule of
/// [`crate::totp::match_step`]: constant-time over all steps, newest fresh match wins, a match
/// at or before `last_accepted` is [`StepMatch::Replayed`].
///
/// The caller records an accepted step atomically with the transfer (exactly once), and counts
/// [`StepMatch::NoMatch`] as a failure toward the token's lock.
pub fn match_transaction_code(
    totp_secret: &Secret,
    transaction: &Transaction,
    code: &Code,
    first: u64,
    last: u64,
    last_accepted: Option<u64>,
) -> StepMatch {
    let key = transaction_key(totp_secret);
    let question = transaction.question();
    let suite = transaction_suite();
    let candidates = (first..=last).map(|step| {
        let input = OcraInput {
            question: &question,
            timestamp: Some(step),
            ..OcraInput::default()
        };
        let candidate = ocra(&suite, &key, &input)
            .unwrap_or_else(|_| Code::from_computed(Zeroizing::new(String::new())));
        (step, candidate)
    });
    match_candidates(code, candidates, last_accepted)
}

// --- the QR payload -------------------------------------------------------------------------

/// Prefix and version of the QR payload.
pub const CHALLENGE_PREFIX: &str = "OTX1";

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
/// OTX1:<service id, 8>:<user id, 12>:<question, 27 digits>:<nonce, 26 base32>:<payee name>
/// ```
///
/// e.g. `OTX1:10112231:999800000009:000112311234567000000150000:AAAA…:ﾔﾏﾀﾞ ﾀﾛｳ`. The version
/// is the prefix; a later format gets `OTX2`. The name is last, so it may contain `:`. The
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

/// 1..=48 characters, no control characters (the Zengin character set is the backend's rule).
///
/// # Errors
///
/// [`OcraError::PayeeName`].
pub fn check_payee_name(name: &str) -> Result<(), OcraError> {
    let count = name.chars().count();
    if (1..=MAX_PAYEE_NAME_CHARS).contains(&count) && !name.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(OcraError::PayeeName)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_questions_become_left_aligned_hex() {
        // RFC 6287 reference: BigInteger(q).toString(16), right-padded with '0'.
        let q = encode_question(QuestionFormat::Numeric, "11111111").unwrap();
        assert_eq!(&q[..3], &[0xA9, 0x8A, 0xC7], "11111111 = 0xA98AC7");
        assert!(q[3..].iter().all(|&b| b == 0));
        let q = encode_question(QuestionFormat::Numeric, "0000000000001").unwrap();
        assert_eq!(q[0], 0x10, "0x1 has one hex digit, completed by a 0 nibble");
        let q = encode_question(QuestionFormat::Numeric, "256").unwrap();
        assert_eq!(&q[..2], &[0x10, 0x00], "0x100 -> '100' + '0'");
        let zero = encode_question(QuestionFormat::Numeric, "00000000").unwrap();
        assert!(zero.iter().all(|&b| b == 0));
    }

    #[test]
    fn hex_questions_keep_odd_nibbles_left_aligned() {
        let q = encode_question(QuestionFormat::Hex, "abC").unwrap();
        assert_eq!(&q[..2], &[0xAB, 0xC0]);
        assert_eq!(
            encode_question(QuestionFormat::Hex, "xyz"),
            Err(OcraError::QuestionFormat)
        );
        assert_eq!(
            encode_question(QuestionFormat::Hex, &"f".repeat(257)),
            Err(OcraError::QuestionFormat),
            "257 nibbles do not fit the 128-byte field"
        );
        assert!(encode_question(QuestionFormat::Hex, &"f".repeat(256)).is_ok());
    }

    #[test]
    fn alphanumeric_questions_are_ascii_letters_and_digits() {
        assert!(encode_question(QuestionFormat::Alphanumeric, "CLI22220SRV11110").is_ok());
        for bad in ["", "a b", "ｱ", "a-b"] {
            assert_eq!(
                encode_question(QuestionFormat::Alphanumeric, bad),
                Err(OcraError::QuestionFormat),
                "{bad:?}"
            );
        }
        assert_eq!(
            encode_question(QuestionFormat::Numeric, "12a"),
            Err(OcraError::QuestionFormat)
        );
    }

    #[test]
    fn the_transaction_suite_constant_parses_to_the_built_in_one() {
        assert_eq!(
            OcraSuite::parse(TRANSACTION_SUITE),
            Ok(transaction_suite()),
            "transaction_suite() is a hand-built copy of the constant; they must agree"
        );
    }

    #[test]
    fn error_codes_are_distinct() {
        let all = [
            OcraError::SuiteFormat,
            OcraError::MissingInput("x"),
            OcraError::UnexpectedInput("x"),
            OcraError::QuestionFormat,
            OcraError::SessionLength,
            OcraError::BankCode,
            OcraError::BranchCode,
            OcraError::AccountType,
            OcraError::AccountNumber,
            OcraError::Amount,
            OcraError::PayeeName,
            OcraError::ChallengeFormat,
        ];
        let mut codes: Vec<_> = all.iter().map(OcraError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "callers match on codes");
    }
}
