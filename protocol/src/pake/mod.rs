//! Provisioning v2 (issue 18): the activation password never leaves the phone, and the token's
//! secret arrives sealed under a key only the two ends of a password-authenticated key exchange
//! (PAKE) know.
//!
//! # The threat
//!
//! In v1 the app sends the activation password inside TLS and gets the secret back in the clear
//! inside TLS. Whoever reads that TLS session (a corporate proxy with its own root, a mis-issued
//! certificate, a logging load balancer, a compromised TLS terminator) gets the token forever.
//! With v2 such a reader sees only PAKE messages and a ciphertext: it cannot open the secret,
//! not even if it later learns the activation password (the session key comes from ephemeral
//! Diffie-Hellman keys), and it cannot test candidate passwords offline against what it saw.
//!
//! # Which PAKE: OPAQUE (RFC 9807) through `opaque-ke`
//!
//! - **SPAKE2** (RFC 9382; RustCrypto's `spake2` crate): balanced. Both sides hold the same
//!   password-derived value `w`, so the server must store the activation password or `w`,
//!   which is a password *equivalent*: whoever steals the issuance table can run the exchange as
//!   the app and receive the secret, no guessing needed. The crate also implements a pre-RFC
//!   draft (its own M/N points and transcript), has no key confirmation of its own, and is at
//!   0.4 / 0.5-pre.
//! - **SPAKE2+** (RFC 9383): augmented (the server stores a verifier), which the issue prefers,
//!   but no well-kept Rust crate implements it; writing the group arithmetic ourselves is what
//!   "well-kept crates" forbids.
//! - **CPace**: balanced like SPAKE2 (same storage problem), and its Rust crates are small
//!   experiments.
//! - **OPAQUE** (RFC 9807, `opaque-ke` 4.x by Meta, audited by NCC Group in 2021, used for
//!   WhatsApp's encrypted backups): augmented *and* the password never reaches the server even
//!   at login (it is blinded by an OPRF). The server stores a registration record, not the
//!   password nor an equivalent: a stolen record does not let anyone run the exchange as the app;
//!   it allows an offline guess only together with the server's OPRF seed, and then each guess
//!   costs an Argon2id run. It has key confirmation built in (the 3DH MACs of `KE2` and `KE3`),
//!   takes exactly the two round trips the issue asks for, and binds identities and an
//!   application context into its transcript. We pick OPAQUE.
//!
//! Suite: OPRF and 3DH over ristretto255, SHA-512, KSF Argon2id (m = 19 MiB, t = 2, p = 1;
//! fixed here, because records made with one KSF never open with another).
//!
//! # The messages
//!
//! ```text
//! app                                                   server
//! client_start(pw) ── SetupStartRequest {service_id, user_id, KE1, app_nonce} ──▶
//!                                         server_respond(key, record, req): exchange_id, KE2
//!      ◀── SetupStartResponse {exchange_id, KE2 (ends in the server's MAC)} ──
//! on_server_reply: verifies the server MAC (wrong password or a swapped message fails here)
//!      ── SetupFinishRequest {exchange_id, KE3 (the client's MAC)} ──▶
//!                                         on_finish: verifies the client MAC, then seal(secret)
//!      ◀── SetupFinishResponse {sealed secret (AES-256-GCM), params, server_time, ...} ──
//! open_sealed: the secret
//! ```
//!
//! - **Identities**: OPAQUE's client identity is `user:<service id>:<user id>` and its server
//!   identity `service:<service id>`, both in the record's envelope (made at issuance) and in
//!   the 3DH transcript: a record made for one user never completes an exchange for another.
//! - **Context** (RFC 9807 §6.1, in both MACs): `otp-soft-token/v2/provisioning`, then the
//!   service ID, user ID, app nonce and exchange ID, each length-prefixed: an exchange is bound
//!   to this issuance and this run.
//! - **Seal key**: `HKDF-SHA256(salt = SHA-256(context ‖ KE1 ‖ KE2 ‖ KE3), ikm = OPAQUE
//!   session key, info = "otp-soft-token/v2/seal")`, 32 bytes, used once with AES-256-GCM; the
//!   associated data is the transcript hash, the IDs, the TOTP params, the server time, the
//!   issuer and the label, so none of those can be changed in transit either.
//!
//! # What the server stores
//!
//! - Once per deployment: a [`ServerKey`] (OPAQUE's `ServerSetup`: OPRF seed and the server's
//!   static 3DH key pair), secret, stored encrypted under the master key like token secrets.
//!   Losing it invalidates every record not yet used; rotating it needs re-issuance.
//! - Per issuance, instead of the activation password's Argon2 hash: the [`PasswordFile`]
//!   (OPAQUE registration record, 193 bytes with our version byte), made by [`register`] at
//!   issuance while the server holds the password the customer just typed; then the password is
//!   dropped. Treat the record as sensitive (it is what an offline guess needs, with the seed).
//! - Per started exchange, for at most 2 minutes: the [`ServerPending`] bytes (they contain the
//!   session key and the expected client MAC: secret, store encrypted), keyed by exchange ID.
//!
//! # Attempts (for the backend)
//!
//! A wrong password shows on the *app* side first (`on_server_reply` fails), and the app then
//! sends nothing. So count the attempt when the exchange *starts*: reserve one of the 5
//! attempts in the same conditional statement that creates the pending exchange, and give it
//! back only when `on_finish` succeeds. An exchange that is never finished (wrong password,
//! swapped messages, a 2-minute timeout) then counts as a failure with no extra rule, and 5
//! concurrent starts cannot get more than 5 guesses. Every error of
//! [`ServerPending::on_finish`] but [`PakeError::ExchangeMismatch`] is a wrong password.
//! Refuse a start whose `app_nonce` this issuance has seen before (a replayed first message);
//! even if let through, a replay only yields a fresh exchange nobody can finish.
//!
//! # What it does not protect against
//!
//! A compromised phone (malware reading the password as it is typed, or the keystore
//! afterwards), a customer who gives the password away, and online guessing within the 5
//! attempts. It does not authenticate the server beyond "knows this issuance's record" (the app
//! may pin [`ClientConfirmed::server_public_key`] per service ID for that).

use aes_gcm::{Aes256Gcm, KeyInit};
use hkdf::Hkdf;
use opaque_ke::argon2::{self, Argon2};
use opaque_ke::errors::ProtocolError as OpaqueError;
use opaque_ke::{CipherSuite, Ristretto255, TripleDh};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::ids::{ServiceId, UserId};
use crate::totp::TotpParams;

mod client;
mod registration;
mod server;
#[cfg(test)]
mod tests;

pub use client::{client_start, ClientConfirmed, ClientStart};
pub use registration::{register, PasswordFile, ServerKey};
pub use server::{server_respond, ServerConfirmed, ServerPending};

/// The OPAQUE cipher suite: ristretto255, 3DH with SHA-512, Argon2id as KSF.
struct Suite;

impl CipherSuite for Suite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, Sha512>;
    type Ksf = Argon2<'static>;
}

/// Argon2id memory in KiB. Fixed: records made with other parameters do not open.
pub const KSF_MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id passes.
pub const KSF_ITERATIONS: u32 = 2;
/// Argon2id lanes.
pub const KSF_PARALLELISM: u32 = 1;

const CONTEXT_LABEL: &[u8] = b"otp-soft-token/v2/provisioning";
const SEAL_INFO: &[u8] = b"otp-soft-token/v2/seal";
const AAD_LABEL: &[u8] = b"otp-soft-token/v2/sealed-secret";
/// Version byte of our encodings of [`PasswordFile`] and [`ServerPending`].
const FORMAT_V1: u8 = 1;
const APP_NONCE_LEN: usize = 32;
const EXCHANGE_ID_LEN: usize = 16;
const GCM_NONCE_LEN: usize = 12;

/// Why a provisioning v2 step failed. Messages never contain keys, passwords or secrets.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone, Copy)]
pub enum PakeError {
    /// A message or field did not have the expected shape (length, encoding, group element).
    #[error("a provisioning message is malformed")]
    MessageFormat,
    /// The app could not verify the server's key confirmation: the activation password is
    /// wrong, or a message was swapped or altered on the way.
    #[error("the server's key confirmation did not verify (wrong activation password or an altered exchange)")]
    ServerNotConfirmed,
    /// The server could not verify the app's key confirmation: count it as a wrong activation
    /// password.
    #[error("the app's key confirmation did not verify")]
    ClientNotConfirmed,
    /// A finish message names another exchange, or a response names another token.
    #[error("the message belongs to another exchange or token")]
    ExchangeMismatch,
    /// The sealed secret did not authenticate under the exchange's key.
    #[error("the sealed secret could not be opened")]
    SealOpen,
    /// Stored bytes (server key, record, pending exchange) are corrupt or of an unknown version.
    #[error("stored provisioning state is corrupt or of an unknown version")]
    StateFormat,
    /// The cryptographic library failed in a way no input should cause.
    #[error("internal error in the key exchange")]
    Internal,
}

impl PakeError {
    /// The stable, machine-readable code for this error.
    pub fn code(&self) -> &'static str {
        match self {
            PakeError::MessageFormat => "PAKE_MESSAGE_FORMAT",
            PakeError::ServerNotConfirmed => "PAKE_SERVER_NOT_CONFIRMED",
            PakeError::ClientNotConfirmed => "PAKE_CLIENT_NOT_CONFIRMED",
            PakeError::ExchangeMismatch => "PAKE_EXCHANGE_MISMATCH",
            PakeError::SealOpen => "PAKE_SEAL_OPEN",
            PakeError::StateFormat => "PAKE_STATE_FORMAT",
            PakeError::Internal => "PAKE_INTERNAL",
        }
    }
}

fn ksf() -> Result<Argon2<'static>, PakeError> {
    let params = argon2::Params::new(KSF_MEMORY_KIB, KSF_ITERATIONS, KSF_PARALLELISM, None)
        .map_err(|_| PakeError::Internal)?;
    Ok(Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        params,
    ))
}

fn client_identity(service_id: &ServiceId, user_id: &UserId) -> String {
    format!("user:{}:{}", service_id.as_str(), user_id.as_str())
}

fn server_identity(service_id: &ServiceId) -> String {
    format!("service:{}", service_id.as_str())
}

/// The OPRF key is per credential: one user's OPRF output says nothing about another's.
fn credential_identifier(service_id: &ServiceId, user_id: &UserId) -> String {
    format!(
        "otp-soft-token/v2/{}/{}",
        service_id.as_str(),
        user_id.as_str()
    )
}

fn push_lp(out: &mut Vec<u8>, part: &[u8]) {
    // Every part is far below 4 GiB (IDs, nonces, PAKE messages, issuer and label).
    out.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(part);
}

fn context(
    service_id: &ServiceId,
    user_id: &UserId,
    app_nonce: &[u8],
    exchange_id: &[u8],
) -> Vec<u8> {
    let mut c = CONTEXT_LABEL.to_vec();
    for part in [
        service_id.as_str().as_bytes(),
        user_id.as_str().as_bytes(),
        app_nonce,
        exchange_id,
    ] {
        push_lp(&mut c, part);
    }
    c
}

/// The key both sides derive after the exchange, and the transcript hash it is bound to.
struct SealKey {
    key: Zeroizing<[u8; 32]>,
    transcript: [u8; 32],
}

impl SealKey {
    fn derive(
        session_key: &[u8],
        context: &[u8],
        ke1: &[u8],
        ke2: &[u8],
        ke3: &[u8],
    ) -> Result<SealKey, PakeError> {
        let mut t = Vec::new();
        for part in [context, ke1, ke2, ke3] {
            push_lp(&mut t, part);
        }
        let transcript: [u8; 32] = Sha256::digest(&t).into();
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(&transcript), session_key)
            .expand(SEAL_INFO, &mut key[..])
            .map_err(|_| PakeError::Internal)?;
        Ok(SealKey { key, transcript })
    }

    fn associated_data(
        &self,
        service_id: &ServiceId,
        user_id: &UserId,
        params: &TotpParams,
        server_time: u64,
        issuer: &str,
        label: &str,
    ) -> Vec<u8> {
        let mut aad = AAD_LABEL.to_vec();
        push_lp(&mut aad, &self.transcript);
        push_lp(&mut aad, service_id.as_str().as_bytes());
        push_lp(&mut aad, user_id.as_str().as_bytes());
        push_lp(&mut aad, params.algorithm.as_str().as_bytes());
        aad.push(params.digits);
        aad.extend_from_slice(&params.period.to_be_bytes());
        aad.extend_from_slice(&server_time.to_be_bytes());
        push_lp(&mut aad, issuer.as_bytes());
        push_lp(&mut aad, label.as_bytes());
        aad
    }

    fn cipher(&self) -> Result<Aes256Gcm, PakeError> {
        Aes256Gcm::new_from_slice(&self.key[..]).map_err(|_| PakeError::Internal)
    }
}

fn login_error(e: OpaqueError, on_auth_failure: PakeError) -> PakeError {
    match e {
        OpaqueError::InvalidLoginError | OpaqueError::ReflectedValueError => on_auth_failure,
        OpaqueError::SerializationError | OpaqueError::SizeError { .. } => PakeError::MessageFormat,
        _ => PakeError::Internal,
    }
}

/// Reads the length-prefixed parts written by [`push_lp`].
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self) -> Result<&'a [u8], PakeError> {
        let (len, tail) = self
            .0
            .split_first_chunk::<4>()
            .ok_or(PakeError::StateFormat)?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| PakeError::StateFormat)?;
        if tail.len() < len {
            return Err(PakeError::StateFormat);
        }
        let (part, tail) = tail.split_at(len);
        self.0 = tail;
        Ok(part)
    }
}
