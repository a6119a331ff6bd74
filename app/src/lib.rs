//! The authenticator core: everything the soft-token app does, without any UI (DESIGN §8).
//!
//! - [`keystore`]: the [`SecretStore`] trait and the OS keystore behind it ([`KeyringStore`],
//!   keyring 4 family, one store crate per target);
//! - [`vault`]: the tokens: secrets in the keystore, metadata in a JSON file written atomically;
//! - [`client`]: the provisioning client (reqwest + rustls) and the service directory;
//! - [`pinning`]: the backend's public keys pinned per service (the client's TLS verifier);
//! - [`codes`]: the code screen's numbers and the clock offset against the server;
//! - [`import`]: `otpauth://` URIs as generic tokens;
//! - [`install`]: this install told apart from a removed one's leftovers in the keystore;
//! - [`lock`]: the app lock (PIN hash and failure count in the keystore, growing delays);
//! - [`clipboard`]: when a copied code is cleared from the clipboard;
//! - [`error`]: [`AppError`], with a stable code and Japanese and English texts.
//!
//! [`setup_token`] and [`check_clock`] join them for the shell. This crate must not depend on
//! Tauri or on the backend; secrets never leave it except into the keystore (the shell gets
//! codes to display, never a secret).

pub mod client;
pub mod clipboard;
pub mod codes;
pub mod error;
pub mod import;
pub mod install;
pub mod keystore;
pub mod lock;
pub mod pinning;
pub mod vault;

pub use client::{ClockReading, Directory, Provisioned, ProvisioningClient, Timeouts};
pub use codes::{ClockOffset, ClockWarning, CodeView, TransactionView, CLOCK_WARNING_SECS};
pub use error::AppError;
pub use keystore::{KeyringStore, MemoryStore, SecretStore};
pub use vault::{TokenKind, TokenMeta, Vault};

use protocol::{DeviceInfo, Sensitive, ServiceId, SetupRequest, UserId};

/// What the setup screen collects.
#[derive(Debug, Clone)]
pub struct SetupInput {
    /// As typed (8 digits).
    pub service_id: String,
    /// As typed (12 digits, the last a check digit).
    pub user_id: String,
    /// As typed (4–8 digits).
    pub activation_password: Sensitive<String>,
    /// This device.
    pub device: DeviceInfo,
}

impl SetupInput {
    /// Checks the input on the device, before anything is sent: ID formats, the user ID's
    /// check digit (a typo never reaches the server), the activation password's format.
    ///
    /// # Errors
    /// [`AppError::InvalidServiceId`], [`AppError::InvalidUserId`], [`AppError::UserIdTypo`],
    /// [`AppError::InvalidActivationPassword`].
    pub fn validate(&self) -> Result<SetupRequest, AppError> {
        let service_id = ServiceId::parse(self.service_id.trim())?;
        let user_id = UserId::parse(self.user_id.trim())?;
        let p = self.activation_password.expose();
        if !(4..=8).contains(&p.len()) || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AppError::InvalidActivationPassword);
        }
        Ok(SetupRequest {
            service_id,
            user_id,
            activation_password: self.activation_password.clone(),
            device: self.device.clone(),
        })
    }
}

/// The initial setup, end to end: validate, call the backend once, store the secret and the
/// metadata (with the clock offset measured on the exchange). Returns the new token and, when
/// the device clock is off by more than 30 s, the warning to show.
///
/// It holds `vault` across the request. A caller that shares the vault (the shell, whose code
/// screen asks for a frame every second) validates, calls [`ProvisioningClient::setup`] with the
/// vault free, then [`store_provisioned`].
///
/// # Errors
/// Any [`AppError`] of [`SetupInput::validate`], [`ProvisioningClient::setup`] and
/// [`Vault::add_provisioned`].
pub async fn setup_token(
    client: &ProvisioningClient,
    vault: &mut Vault,
    input: &SetupInput,
) -> Result<(TokenMeta, Option<ClockWarning>), AppError> {
    let request = input.validate()?;
    let provisioned = client.setup(&request).await?;
    store_provisioned(vault, provisioned)
}

/// Stores what [`ProvisioningClient::setup`] brought: the new token, and the clock warning to
/// show, if any.
///
/// # Errors
/// Any [`AppError`] of [`Vault::add_provisioned`].
pub fn store_provisioned(
    vault: &mut Vault,
    provisioned: Provisioned,
) -> Result<(TokenMeta, Option<ClockWarning>), AppError> {
    let meta = vault.add_provisioned(
        &provisioned.response,
        provisioned.clock_offset,
        codes::device_now(),
    )?;
    Ok((meta, provisioned.clock_offset.warning()))
}

/// Measures a bank token's clock offset against its backend again and stores it. Returns the
/// warning to show, if any. Imported tokens have no server: nothing is measured.
///
/// It holds `vault` across the request. A caller that shares the vault (the shell, whose code
/// screen asks for a frame every second) uses [`clock_server`] and [`store_clock_reading`]
/// with the request between them and the vault free meanwhile.
///
/// # Errors
/// [`AppError::NoSuchToken`]; the client's transport errors; metadata errors.
pub async fn check_clock(
    client: &ProvisioningClient,
    vault: &mut Vault,
    token_id: &str,
) -> Result<Option<ClockWarning>, AppError> {
    let Some(service_id) = clock_server(vault, token_id)? else {
        return Ok(None);
    };
    let reading = client.server_time(&service_id).await?;
    store_clock_reading(vault, token_id, &reading)
}

/// The service whose backend measures `token_id`'s clock: `None` for an imported token.
///
/// # Errors
/// [`AppError::NoSuchToken`].
pub fn clock_server(vault: &Vault, token_id: &str) -> Result<Option<ServiceId>, AppError> {
    Ok(vault.token(token_id)?.service_id.clone())
}

/// Stores a clock reading taken for `token_id`; the warning to show, if any.
///
/// # Errors
/// [`AppError::NoSuchToken`] (deleted while the server was asked); metadata errors.
pub fn store_clock_reading(
    vault: &mut Vault,
    token_id: &str,
    reading: &ClockReading,
) -> Result<Option<ClockWarning>, AppError> {
    vault.set_clock_offset(token_id, reading.offset, codes::device_now())?;
    Ok(reading.offset.warning())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(service: &str, user: &str, password: &str) -> SetupInput {
        SetupInput {
            service_id: service.into(),
            user_id: user.into(),
            activation_password: Sensitive::new(password.to_owned()),
            device: DeviceInfo {
                platform: "linux".into(),
                model: "test".into(),
                os_version: "1".into(),
                app_version: "0.1.0".into(),
            },
        }
    }

    #[test]
    fn setup_input_is_checked_on_the_device() {
        let good_user = UserId::from_serial(99_980_000_000).unwrap();
        let good_user = good_user.as_str();
        assert!(input("10112231", good_user, "1234").validate().is_ok());
        assert_eq!(
            input("1011223", good_user, "1234").validate().unwrap_err(),
            AppError::InvalidServiceId
        );
        let mut typo = good_user.to_owned();
        let last = typo.pop().unwrap();
        typo.push(if last == '0' { '1' } else { '0' });
        assert_eq!(
            input("10112231", &typo, "1234").validate().unwrap_err(),
            AppError::UserIdTypo,
            "a mistyped user ID never reaches the server"
        );
        assert_eq!(
            input("10112231", "12345", "1234").validate().unwrap_err(),
            AppError::InvalidUserId
        );
        for bad in ["123", "123456789", "12a4"] {
            assert_eq!(
                input("10112231", good_user, bad).validate().unwrap_err(),
                AppError::InvalidActivationPassword
            );
        }
        let shown = format!("{:?}", input("10112231", good_user, "98765"));
        assert!(!shown.contains("98765"), "{shown}");
    }
}
