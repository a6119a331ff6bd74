//! The TOTP contract shared by the soft-token app and the backend.
//!
//! - [`secret`]: [`Secret`] (the shared key) and [`Sensitive`] (passwords, codes), both redacted
//!   in `Debug` and zeroized on drop;
//! - [`totp`]: RFC 6238 parameters, code generation and the replay-aware window match;
//! - [`otpauth`]: the Key URI format (`otpauth://totp/...`);
//! - [`ids`]: service and user IDs (the user ID carries a Damm check digit);
//! - [`wire`]: the JSON DTOs of provisioning;
//! - [`ocra`]: OCRA (RFC 6287) and transaction authentication (取引認証): the suite, the
//!   canonical question, the derived key and the QR payload;
//! - [`pake`]: provisioning v2 (OPAQUE, RFC 9807): both sides' state machines and wire types;
//! - [`error`]: [`ProtocolError`] with stable codes.
//!
//! The crate does no I/O and never reads a clock: time is passed in as Unix seconds, so the
//! same code runs in the backend, on Android and iOS, and in tests at exact instants.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod algorithm;
pub mod error;
pub mod ids;
pub mod ocra;
pub mod otpauth;
pub mod pake;
pub mod secret;
pub mod totp;
pub mod wire;

pub use error::ProtocolError;
pub use ids::{damm_check_digit, ServiceId, UserId};
pub use ocra::{
    match_transaction_code, ocra, transaction_code, transaction_code_at_step, transaction_key,
    transaction_step_at, AccountType, ChallengeNonce, OcraError, OcraInput, OcraSuite, Transaction,
    TransactionChallenge, TRANSACTION_SUITE,
};
pub use otpauth::{KeyUri, OtpauthError};
pub use pake::{
    client_start, register, server_respond, ClientConfirmed, ClientStart, PakeError, PasswordFile,
    ServerConfirmed, ServerKey, ServerPending,
};
pub use secret::{Secret, Sensitive};
pub use totp::{
    code_at, code_at_step, match_step, Algorithm, Code, StepMatch, TotpParams, UnknownAlgorithm,
};
pub use wire::{ApiErrorBody, DeviceInfo, SetupRequest, SetupResponse, TimeResponse, WireSecret};
