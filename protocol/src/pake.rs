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

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
use hkdf::Hkdf;
use opaque_ke::argon2::{self, Argon2};
use opaque_ke::errors::ProtocolError as OpaqueError;
use opaque_ke::{
    CipherSuite, ClientLogin, ClientLoginFinishParameters, ClientRegistration,
    ClientRegistrationFinishParameters, CredentialFinalization, CredentialRequest,
    CredentialResponse, Identifiers, Ristretto255, ServerLogin, ServerLoginParameters,
    ServerRegistration, ServerSetup, TripleDh,
};
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::ids::{ServiceId, UserId};
use crate::secret::{Secret, Sensitive, MIN_SECRET_LEN};
use crate::totp::TotpParams;
use crate::wire::v2::{
    HexBytes, SealedSecret, SetupFinishRequest, SetupFinishResponse, SetupStartRequest,
    SetupStartResponse,
};
use crate::wire::DeviceInfo;

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

// --- server-side long-term state ---------------------------------------------------------

/// The server's long-term OPAQUE state (`ServerSetup`: OPRF seed and static 3DH key pair).
///
/// One per deployment, generated once, stored encrypted under the master key. `Debug` is
/// redacted; [`ServerKey::to_bytes`] is zeroized on drop.
pub struct ServerKey(ServerSetup<Suite>);

impl ServerKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> ServerKey {
        ServerKey(ServerSetup::<Suite>::new(&mut OsRng))
    }

    /// The serialized key (128 bytes: OPRF seed, static secret key, a dummy public key). Secret: store it encrypted.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.serialize().to_vec())
    }

    /// Loads a key stored with [`ServerKey::to_bytes`].
    ///
    /// # Errors
    ///
    /// [`PakeError::StateFormat`] for bytes that are not a valid key.
    pub fn from_bytes(bytes: &[u8]) -> Result<ServerKey, PakeError> {
        ServerSetup::<Suite>::deserialize(bytes)
            .map(ServerKey)
            .map_err(|_| PakeError::StateFormat)
    }

    /// The server's static public key (32 bytes), which the app may pin per service ID.
    pub fn public_key(&self) -> Vec<u8> {
        self.0.keypair().public().serialize().to_vec()
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey([redacted])")
    }
}

/// An issuance's OPAQUE registration record: what the server keeps instead of the activation
/// password (RFC 9807 §5: the client's public key, masking key and envelope).
///
/// Not password-equivalent (it cannot be used to run the exchange as the app), but with the
/// [`ServerKey`] it allows offline guessing at one Argon2id run per guess: keep it as private as
/// a password hash. `Debug` is redacted.
pub struct PasswordFile(ServerRegistration<Suite>);

impl PasswordFile {
    /// The record as stored: a version byte and the RFC 9807 encoding.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![FORMAT_V1]);
        out.extend_from_slice(&self.0.serialize());
        out
    }

    /// Loads a record stored with [`PasswordFile::to_bytes`].
    ///
    /// # Errors
    ///
    /// [`PakeError::StateFormat`] for an unknown version or invalid bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<PasswordFile, PakeError> {
        match bytes.split_first() {
            Some((&FORMAT_V1, rest)) => ServerRegistration::<Suite>::deserialize(rest)
                .map(PasswordFile)
                .map_err(|_| PakeError::StateFormat),
            _ => Err(PakeError::StateFormat),
        }
    }
}

impl fmt::Debug for PasswordFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordFile([redacted])")
    }
}

/// Makes an issuance's [`PasswordFile`] from the activation password the customer chose, at
/// issuance time (both halves of OPAQUE registration run here, on the server, which holds the
/// password at that moment anyway; afterwards only the record is kept). Runs Argon2id once.
///
/// # Errors
///
/// [`PakeError::Internal`] only if the library fails on valid input.
pub fn register(
    server_key: &ServerKey,
    service_id: &ServiceId,
    user_id: &UserId,
    activation_password: &Sensitive<String>,
) -> Result<PasswordFile, PakeError> {
    let password = activation_password.expose().as_bytes();
    let start = ClientRegistration::<Suite>::start(&mut OsRng, password)
        .map_err(|_| PakeError::Internal)?;
    let response = ServerRegistration::<Suite>::start(
        &server_key.0,
        start.message,
        credential_identifier(service_id, user_id).as_bytes(),
    )
    .map_err(|_| PakeError::Internal)?;
    let client = client_identity(service_id, user_id);
    let server = server_identity(service_id);
    let ksf = ksf()?;
    let finish = start
        .state
        .finish(
            &mut OsRng,
            password,
            response.message,
            ClientRegistrationFinishParameters::new(
                Identifiers {
                    client: Some(client.as_bytes()),
                    server: Some(server.as_bytes()),
                },
                Some(&ksf),
            ),
        )
        .map_err(|_| PakeError::Internal)?;
    Ok(PasswordFile(ServerRegistration::<Suite>::finish(
        finish.message,
    )))
}

// --- the app's side ---------------------------------------------------------------------

/// The app between sending [`SetupStartRequest`] and receiving [`SetupStartResponse`].
///
/// Holds the activation password (zeroized on drop) and the OPRF blind and ephemeral key.
/// `Debug` is redacted.
pub struct ClientStart {
    login: ClientLogin<Suite>,
    password: Sensitive<String>,
    service_id: ServiceId,
    user_id: UserId,
    app_nonce: [u8; APP_NONCE_LEN],
    ke1: Vec<u8>,
}

impl fmt::Debug for ClientStart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientStart([redacted])")
    }
}

/// Starts a v2 setup: the request to `POST /app/v2/setup/start` and the state to keep.
///
/// # Errors
///
/// [`PakeError::Internal`] only if the library fails on valid input.
pub fn client_start(
    service_id: ServiceId,
    user_id: UserId,
    activation_password: Sensitive<String>,
    device: DeviceInfo,
) -> Result<(ClientStart, SetupStartRequest), PakeError> {
    let start = ClientLogin::<Suite>::start(&mut OsRng, activation_password.expose().as_bytes())
        .map_err(|_| PakeError::Internal)?;
    let ke1 = start.message.serialize().to_vec();
    let mut app_nonce = [0u8; APP_NONCE_LEN];
    OsRng.fill_bytes(&mut app_nonce);
    let request = SetupStartRequest {
        service_id: service_id.clone(),
        user_id: user_id.clone(),
        pake_message: HexBytes(ke1.clone()),
        app_nonce: HexBytes(app_nonce.to_vec()),
        device,
    };
    let state = ClientStart {
        login: start.state,
        password: activation_password,
        service_id,
        user_id,
        app_nonce,
        ke1,
    };
    Ok((state, request))
}

impl ClientStart {
    /// Verifies the server's key confirmation inside `KE2` and produces the app's (`KE3`).
    ///
    /// # Errors
    ///
    /// [`PakeError::ServerNotConfirmed`] for a wrong activation password or an altered or
    /// swapped `KE2` (show "wrong activation password"; the server counts the attempt);
    /// [`PakeError::MessageFormat`] for a malformed reply.
    pub fn on_server_reply(
        self,
        reply: &SetupStartResponse,
    ) -> Result<(ClientConfirmed, SetupFinishRequest), PakeError> {
        let exchange_id = reply.exchange_id.as_slice();
        if exchange_id.len() != EXCHANGE_ID_LEN {
            return Err(PakeError::MessageFormat);
        }
        let ke2 = reply.pake_message.as_slice();
        let response =
            CredentialResponse::<Suite>::deserialize(ke2).map_err(|_| PakeError::MessageFormat)?;
        let ctx = context(
            &self.service_id,
            &self.user_id,
            &self.app_nonce,
            exchange_id,
        );
        let client = client_identity(&self.service_id, &self.user_id);
        let server = server_identity(&self.service_id);
        let ksf = ksf()?;
        let finish = self
            .login
            .finish(
                &mut OsRng,
                self.password.expose().as_bytes(),
                response,
                ClientLoginFinishParameters::new(
                    Some(&ctx),
                    Identifiers {
                        client: Some(client.as_bytes()),
                        server: Some(server.as_bytes()),
                    },
                    Some(&ksf),
                ),
            )
            .map_err(|e| login_error(e, PakeError::ServerNotConfirmed))?;
        let ke3 = finish.message.serialize().to_vec();
        let seal = SealKey::derive(&finish.session_key, &ctx, &self.ke1, ke2, &ke3)?;
        let confirmed = ClientConfirmed {
            seal,
            service_id: self.service_id.clone(),
            user_id: self.user_id.clone(),
            server_public_key: finish.server_s_pk.serialize().to_vec(),
        };
        let request = SetupFinishRequest {
            exchange_id: HexBytes(exchange_id.to_vec()),
            key_confirmation: HexBytes(ke3),
        };
        Ok((confirmed, request))
    }
}

/// The app after the server proved knowledge of the record: holds the seal key.
/// `Debug` is redacted.
pub struct ClientConfirmed {
    seal: SealKey,
    service_id: ServiceId,
    user_id: UserId,
    server_public_key: Vec<u8>,
}

impl fmt::Debug for ClientConfirmed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientConfirmed([redacted])")
    }
}

impl ClientConfirmed {
    /// The server's static public key as the record names it (32 bytes), for pinning.
    pub fn server_public_key(&self) -> &[u8] {
        &self.server_public_key
    }

    /// Opens the sealed secret of `POST /app/v2/setup/finish`'s answer. The params, server
    /// time, issuer and label in `response` are authenticated by this call too.
    ///
    /// # Errors
    ///
    /// [`PakeError::ExchangeMismatch`] if the response names another token;
    /// [`PakeError::MessageFormat`] for a malformed nonce; [`PakeError::SealOpen`] if the
    /// ciphertext or any authenticated field was altered, or the secret is shorter than 128
    /// bits.
    pub fn open_sealed(self, response: &SetupFinishResponse) -> Result<Secret, PakeError> {
        if response.service_id != self.service_id || response.user_id != self.user_id {
            return Err(PakeError::ExchangeMismatch);
        }
        let nonce = response.sealed_secret.nonce.as_slice();
        if nonce.len() != GCM_NONCE_LEN {
            return Err(PakeError::MessageFormat);
        }
        let aad = self.seal.associated_data(
            &response.service_id,
            &response.user_id,
            &response.params,
            response.server_time,
            &response.issuer,
            &response.label,
        );
        let plaintext = self
            .seal
            .cipher()?
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: response.sealed_secret.ciphertext.as_slice(),
                    aad: &aad,
                },
            )
            .map_err(|_| PakeError::SealOpen)?;
        let secret = Secret::from_bytes(plaintext);
        if secret.len() < MIN_SECRET_LEN {
            return Err(PakeError::SealOpen);
        }
        Ok(secret)
    }
}

// --- the server's side ----------------------------------------------------------------------

/// The server between answering the start and receiving the finish: store it (encrypted,
/// [`ServerPending::to_bytes`]) under its exchange ID for at most 2 minutes.
///
/// Holds the session key and the expected client MAC. `Debug` is redacted.
pub struct ServerPending {
    login: ServerLogin<Suite>,
    service_id: ServiceId,
    user_id: UserId,
    app_nonce: [u8; APP_NONCE_LEN],
    exchange_id: [u8; EXCHANGE_ID_LEN],
    ke1: Vec<u8>,
    ke2: Vec<u8>,
}

impl fmt::Debug for ServerPending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerPending([redacted])")
    }
}

/// Answers `POST /app/v2/setup/start` for an issuance whose record is `password_file` (the
/// caller has checked that the issuance may be provisioned and reserved an attempt).
///
/// # Errors
///
/// [`PakeError::MessageFormat`] for a malformed `KE1` or app nonce.
pub fn server_respond(
    server_key: &ServerKey,
    password_file: &PasswordFile,
    request: &SetupStartRequest,
) -> Result<(ServerPending, SetupStartResponse), PakeError> {
    let app_nonce: [u8; APP_NONCE_LEN] = request
        .app_nonce
        .as_slice()
        .try_into()
        .map_err(|_| PakeError::MessageFormat)?;
    let ke1 = request.pake_message.as_slice();
    let credential_request =
        CredentialRequest::<Suite>::deserialize(ke1).map_err(|_| PakeError::MessageFormat)?;
    let mut exchange_id = [0u8; EXCHANGE_ID_LEN];
    OsRng.fill_bytes(&mut exchange_id);
    let ctx = context(
        &request.service_id,
        &request.user_id,
        &app_nonce,
        &exchange_id,
    );
    let client = client_identity(&request.service_id, &request.user_id);
    let server = server_identity(&request.service_id);
    let start = ServerLogin::<Suite>::start(
        &mut OsRng,
        &server_key.0,
        Some(password_file.0.clone()),
        credential_request,
        credential_identifier(&request.service_id, &request.user_id).as_bytes(),
        ServerLoginParameters {
            context: Some(&ctx),
            identifiers: Identifiers {
                client: Some(client.as_bytes()),
                server: Some(server.as_bytes()),
            },
        },
    )
    .map_err(|e| login_error(e, PakeError::MessageFormat))?;
    let ke2 = start.message.serialize().to_vec();
    let response = SetupStartResponse {
        exchange_id: HexBytes(exchange_id.to_vec()),
        pake_message: HexBytes(ke2.clone()),
    };
    let pending = ServerPending {
        login: start.state,
        service_id: request.service_id.clone(),
        user_id: request.user_id.clone(),
        app_nonce,
        exchange_id,
        ke1: ke1.to_vec(),
        ke2,
    };
    Ok((pending, response))
}

impl ServerPending {
    /// The exchange's ID (16 bytes): the key to store this state under.
    pub fn exchange_id(&self) -> &[u8] {
        &self.exchange_id
    }

    /// The token's service.
    pub fn service_id(&self) -> &ServiceId {
        &self.service_id
    }

    /// The token's user ID.
    pub fn user_id(&self) -> &UserId {
        &self.user_id
    }

    /// The app nonce of the start (to refuse a replayed start).
    pub fn app_nonce(&self) -> &[u8] {
        &self.app_nonce
    }

    /// Verifies the app's key confirmation (`KE3`).
    ///
    /// # Errors
    ///
    /// [`PakeError::ExchangeMismatch`] if `request` names another exchange (not an attempt);
    /// [`PakeError::ClientNotConfirmed`] for anything else: a wrong or malformed confirmation
    /// is a wrong activation password.
    pub fn on_finish(self, request: &SetupFinishRequest) -> Result<ServerConfirmed, PakeError> {
        if request.exchange_id.as_slice() != self.exchange_id.as_slice() {
            return Err(PakeError::ExchangeMismatch);
        }
        let ke3 = request.key_confirmation.as_slice();
        let finalization = CredentialFinalization::<Suite>::deserialize(ke3)
            .map_err(|_| PakeError::ClientNotConfirmed)?;
        let ctx = context(
            &self.service_id,
            &self.user_id,
            &self.app_nonce,
            &self.exchange_id,
        );
        let client = client_identity(&self.service_id, &self.user_id);
        let server = server_identity(&self.service_id);
        let finish = self
            .login
            .finish(
                finalization,
                ServerLoginParameters {
                    context: Some(&ctx),
                    identifiers: Identifiers {
                        client: Some(client.as_bytes()),
                        server: Some(server.as_bytes()),
                    },
                },
            )
            .map_err(|_| PakeError::ClientNotConfirmed)?;
        let seal = SealKey::derive(&finish.session_key, &ctx, &self.ke1, &self.ke2, ke3)?;
        Ok(ServerConfirmed {
            seal,
            service_id: self.service_id,
            user_id: self.user_id,
        })
    }

    /// The state as stored between the two requests. Secret: store it encrypted, delete it
    /// when the exchange finishes or after 2 minutes.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(vec![FORMAT_V1]);
        push_lp(&mut out, self.service_id.as_str().as_bytes());
        push_lp(&mut out, self.user_id.as_str().as_bytes());
        push_lp(&mut out, &self.app_nonce);
        push_lp(&mut out, &self.exchange_id);
        push_lp(&mut out, &self.ke1);
        push_lp(&mut out, &self.ke2);
        push_lp(&mut out, &self.login.serialize());
        out
    }

    /// Loads state stored with [`ServerPending::to_bytes`].
    ///
    /// # Errors
    ///
    /// [`PakeError::StateFormat`] for corrupt bytes or an unknown version.
    pub fn from_bytes(bytes: &[u8]) -> Result<ServerPending, PakeError> {
        let Some((&FORMAT_V1, rest)) = bytes.split_first() else {
            return Err(PakeError::StateFormat);
        };
        let mut r = Reader(rest);
        let text = |b: &[u8]| {
            std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| PakeError::StateFormat)
        };
        let service_id: ServiceId = text(r.take()?)?
            .parse()
            .map_err(|_| PakeError::StateFormat)?;
        let user_id: UserId = text(r.take()?)?
            .parse()
            .map_err(|_| PakeError::StateFormat)?;
        let app_nonce = r.take()?.try_into().map_err(|_| PakeError::StateFormat)?;
        let exchange_id = r.take()?.try_into().map_err(|_| PakeError::StateFormat)?;
        let ke1 = r.take()?.to_vec();
        let ke2 = r.take()?.to_vec();
        let login =
            ServerLogin::<Suite>::deserialize(r.take()?).map_err(|_| PakeError::StateFormat)?;
        if !r.0.is_empty() {
            return Err(PakeError::StateFormat);
        }
        Ok(ServerPending {
            login,
            service_id,
            user_id,
            app_nonce,
            exchange_id,
            ke1,
            ke2,
        })
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

/// The server after the app proved knowledge of the password: holds the seal key.
/// `Debug` is redacted.
pub struct ServerConfirmed {
    seal: SealKey,
    service_id: ServiceId,
    user_id: UserId,
}

impl fmt::Debug for ServerConfirmed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerConfirmed([redacted])")
    }
}

impl ServerConfirmed {
    /// Seals the token's secret for the app: the answer to `POST /app/v2/setup/finish`.
    ///
    /// # Errors
    ///
    /// [`PakeError::Internal`] only if AES-GCM fails on valid input.
    pub fn seal(
        self,
        secret: &Secret,
        params: TotpParams,
        server_time: u64,
        issuer: String,
        label: String,
    ) -> Result<SetupFinishResponse, PakeError> {
        let mut nonce = [0u8; GCM_NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = self.seal.associated_data(
            &self.service_id,
            &self.user_id,
            &params,
            server_time,
            &issuer,
            &label,
        );
        let ciphertext = self
            .seal
            .cipher()?
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: secret.expose(),
                    aad: &aad,
                },
            )
            .map_err(|_| PakeError::Internal)?;
        Ok(SetupFinishResponse {
            service_id: self.service_id,
            user_id: self.user_id,
            sealed_secret: SealedSecret {
                nonce: HexBytes(nonce.to_vec()),
                ciphertext: HexBytes(ciphertext),
            },
            params,
            server_time,
            issuer,
            label,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_are_distinct() {
        let all = [
            PakeError::MessageFormat,
            PakeError::ServerNotConfirmed,
            PakeError::ClientNotConfirmed,
            PakeError::ExchangeMismatch,
            PakeError::SealOpen,
            PakeError::StateFormat,
            PakeError::Internal,
        ];
        let mut codes: Vec<_> = all.iter().map(PakeError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len(), "callers match on codes");
    }

    #[test]
    fn context_fields_cannot_run_into_each_other() {
        let s: ServiceId = "10112231".parse().unwrap();
        let u: UserId = "999800000009".parse().unwrap();
        assert_ne!(
            context(&s, &u, &[1, 2], &[3]),
            context(&s, &u, &[1], &[2, 3]),
            "length prefixes keep the nonce and exchange ID apart"
        );
    }
}
