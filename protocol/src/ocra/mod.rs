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
//! # The suite: [`TRANSACTION_SUITE`] = `OCRA-1:HOTP-SHA256-8:QA27-T1M`
//!
//! - **HOTP-SHA256-8**: HMAC-SHA-256 under a 256-bit derived key, 8 digits (10^8 codes; with
//!   the shared 5-failure lock an online guesser's chance is 5·10^-8 per token).
//! - **QA27**: the question is the 27-digit canonical form of [`Transaction::question`], digits
//!   the customer can copy off the transfer screen (the typed fallback), taken as their 27 ASCII
//!   bytes (RFC 6287's alphanumeric format):
//!
//!   | digits | field | rule |
//!   | --- | --- | --- |
//!   | 4 | bank code (金融機関コード) | exactly 4 digits |
//!   | 3 | branch code (支店コード) | exactly 3 digits |
//!   | 1 | account type (預金種目) | Zengin code: 1 普通, 2 当座 |
//!   | 7 | account number (口座番号) | exactly 7 digits |
//!   | 12 | amount in yen | 1..=999,999,999,999, zero-padded to 12 digits |
//!
//!   Every field has a fixed width, so the mapping from transfers to questions is injective,
//!   and 27 bytes that are never zero, zero-filled to the 128-byte field, keep it injective:
//!   any change of bank, branch, type, account or amount is a different field, and so (but for
//!   a 10^-8 HMAC collision) a different code. Not `QN27`, the numeric format (this system's
//!   suite until stop 25): RFC 6287 writes a numeric question as its value's hex digits,
//!   left-aligned and zero-filled on the right, so a question and 16^k times it fill the same
//!   field, and a code for 0001-001-当座-0123456 ¥1,000 also confirmed 0016-019-当座-1975296
//!   ¥16,000 (`protocol/tests/ocra.rs`). The QR's prefix went from `OTX1` to `OTX2` with it,
//!   so an app still computing the numeric form refuses the new QR instead of showing a code
//!   the server refuses (its typed path cannot tell: app and server change together).
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

mod challenge;
mod response;
mod suite;
#[cfg(test)]
mod tests;
mod transaction;

pub use challenge::{
    check_payee_name, is_zengin_char, ChallengeNonce, TransactionChallenge, CHALLENGE_PREFIX,
    MAX_PAYEE_NAME_CHARS,
};
pub use response::{ocra, OcraInput};
pub use suite::{OcraSuite, QuestionFormat};
pub use transaction::{
    match_transaction_code, transaction_code, transaction_code_at_step, transaction_key,
    transaction_step_at, transaction_suite, AccountType, Transaction,
};

/// The OCRA suite of this system's transaction authentication (see the module doc for why).
pub const TRANSACTION_SUITE: &str = "OCRA-1:HOTP-SHA256-8:QA27-T1M";

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
    /// A QR payload was not a well-formed `OTX2` challenge.
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
