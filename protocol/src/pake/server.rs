//! The server's side of the exchange: answer the start from the password file, check the
//! app's confirmation, seal the secret for it.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::Nonce;
use opaque_ke::{
    CredentialFinalization, CredentialRequest, Identifiers, ServerLogin, ServerLoginParameters,
};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use super::{
    client_identity, context, credential_identifier, login_error, push_lp, server_identity,
    PakeError, PasswordFile, Reader, SealKey, ServerKey, Suite, APP_NONCE_LEN, EXCHANGE_ID_LEN,
    FORMAT_V1, GCM_NONCE_LEN,
};
use crate::ids::{ServiceId, UserId};
use crate::secret::Secret;
use crate::totp::TotpParams;
use crate::wire::v2::{
    HexBytes, SealedSecret, SetupFinishRequest, SetupFinishResponse, SetupStartRequest,
    SetupStartResponse,
};

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
