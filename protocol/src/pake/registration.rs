//! The server's long-term state: its OPAQUE key, and the password file registered for each
//! issuance from the activation password.

use std::fmt;

use opaque_ke::{
    ClientRegistration, ClientRegistrationFinishParameters, Identifiers, ServerRegistration,
    ServerSetup,
};
use rand::rngs::OsRng;
use zeroize::Zeroizing;

use super::{
    client_identity, credential_identifier, ksf, server_identity, PakeError, Suite, FORMAT_V1,
};
use crate::ids::{ServiceId, UserId};
use crate::secret::Sensitive;

/// The server's long-term OPAQUE state (`ServerSetup`: OPRF seed and static 3DH key pair).
///
/// One per deployment, generated once, stored encrypted under the master key. `Debug` is
/// redacted; [`ServerKey::to_bytes`] is zeroized on drop.
pub struct ServerKey(pub(super) ServerSetup<Suite>);

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
pub struct PasswordFile(pub(super) ServerRegistration<Suite>);

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
