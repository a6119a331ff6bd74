//! The app's side of the exchange: start with the activation password, confirm the server,
//! open the sealed secret.

use std::fmt;

use aes_gcm::aead::{Aead, Payload};
use aes_gcm::Nonce;
use opaque_ke::{ClientLogin, ClientLoginFinishParameters, CredentialResponse, Identifiers};
use rand::rngs::OsRng;
use rand::RngCore;

use super::{
    client_identity, context, ksf, login_error, server_identity, PakeError, SealKey, Suite,
    APP_NONCE_LEN, EXCHANGE_ID_LEN, GCM_NONCE_LEN,
};
use crate::ids::{ServiceId, UserId};
use crate::secret::{Secret, Sensitive, MIN_SECRET_LEN};
use crate::wire::v2::{
    HexBytes, SetupFinishRequest, SetupFinishResponse, SetupStartRequest, SetupStartResponse,
};
use crate::wire::DeviceInfo;

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
