//! The IPC surface: thin `#[tauri::command]`s over the `app` core. Each one parses its
//! arguments, calls the core, and copies what the screen needs into a view type. None returns
//! a secret (STYLE §3): codes, labels, parameters and seconds only.

use std::path::PathBuf;
use std::sync::Arc;

use app::{AppError, ClockWarning, ProvisioningClient, SecretStore, TokenKind, TokenMeta, Vault};
use protocol::{DeviceInfo, Sensitive};
use serde::Serialize;
use tauri::State;
use tokio::sync::{Mutex, MutexGuard};

use crate::error::ShellError;
use crate::link::SetupLink;

/// The shell's managed state: the vault (opened on first use, so a keystore that was locked at
/// start-up is retried), the provisioning client, and a setup link waiting for the UI.
pub struct Shell {
    vault: Mutex<Option<Vault>>,
    data_dir: PathBuf,
    store: Result<Arc<dyn SecretStore>, AppError>,
    client: Result<ProvisioningClient, AppError>,
    pending_link: std::sync::Mutex<Option<SetupLink>>,
    device: DeviceInfo,
}

impl Shell {
    /// The state for a data directory, keystore and client. Nothing is opened yet.
    pub fn new(
        data_dir: PathBuf,
        store: Result<Arc<dyn SecretStore>, AppError>,
        client: Result<ProvisioningClient, AppError>,
        link: Option<SetupLink>,
    ) -> Shell {
        Shell {
            vault: Mutex::new(None),
            data_dir,
            store,
            client,
            pending_link: std::sync::Mutex::new(link),
            device: DeviceInfo {
                platform: std::env::consts::OS.to_owned(),
                model: std::env::consts::ARCH.to_owned(),
                os_version: String::new(),
                app_version: env!("CARGO_PKG_VERSION").to_owned(),
            },
        }
    }

    /// Records a setup link for [`take_setup_link`] (the newest wins).
    pub fn set_pending_link(&self, link: SetupLink) {
        *self
            .pending_link
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(link);
    }

    /// The vault, opened if it was not yet.
    async fn vault(&self) -> Result<tokio::sync::MappedMutexGuard<'_, Vault>, ShellError> {
        let mut guard = self.vault.lock().await;
        if guard.is_none() {
            let store = self.store.clone()?;
            *guard = Some(Vault::open(&self.data_dir, store)?);
        }
        MutexGuard::try_map(guard, Option::as_mut)
            .map_err(|_| ShellError::App(AppError::MetadataIo))
    }

    fn client(&self) -> Result<&ProvisioningClient, ShellError> {
        self.client.as_ref().map_err(|e| ShellError::App(e.clone()))
    }
}

/// About the app, for the settings screen and to show the scan button on phones only.
#[derive(Debug, Serialize)]
pub struct AppInfo {
    version: &'static str,
    mobile: bool,
}

/// A token as the UI lists it (no secret).
#[derive(Debug, Serialize)]
pub struct TokenView {
    id: String,
    kind: TokenKind,
    issuer: Option<String>,
    label: String,
    service_id: Option<String>,
    user_id: Option<String>,
    algorithm: &'static str,
    digits: u8,
    period: u32,
    added_at: u64,
    clock_offset_secs: i64,
    clock_checked_at: Option<u64>,
}

impl From<&TokenMeta> for TokenView {
    fn from(t: &TokenMeta) -> TokenView {
        TokenView {
            id: t.id.clone(),
            kind: t.kind,
            issuer: t.issuer.clone(),
            label: t.label.clone(),
            service_id: t.service_id.as_ref().map(|s| s.as_str().to_owned()),
            user_id: t.user_id.as_ref().map(|u| u.as_str().to_owned()),
            algorithm: t.params.algorithm.as_str(),
            digits: t.params.digits,
            period: t.params.period,
            added_at: t.added_at,
            clock_offset_secs: t.clock_offset.0,
            clock_checked_at: t.clock_checked_at,
        }
    }
}

/// One frame of the code screen.
#[derive(Debug, Serialize)]
pub struct CodeFrame {
    code: String,
    next_code: String,
    seconds_left: u32,
    period: u32,
    clock_warning: Option<ClockWarning>,
}

/// The outcome of a clock check against the token's backend.
#[derive(Debug, Serialize)]
pub struct ClockView {
    offset_secs: i64,
    warning: bool,
}

#[tauri::command]
pub fn app_info() -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION"),
        mobile: cfg!(any(target_os = "android", target_os = "ios")),
    }
}

#[tauri::command]
pub async fn list_tokens(shell: State<'_, Shell>) -> Result<Vec<TokenView>, ShellError> {
    Ok(shell
        .vault()
        .await?
        .tokens()
        .iter()
        .map(TokenView::from)
        .collect())
}

#[tauri::command]
pub async fn code_frame(shell: State<'_, Shell>, id: String) -> Result<CodeFrame, ShellError> {
    let view = shell
        .vault()
        .await?
        .code_view(&id, app::codes::device_now())?;
    Ok(CodeFrame {
        code: view.code.as_str().to_owned(),
        next_code: view.next_code.as_str().to_owned(),
        seconds_left: view.seconds_left,
        period: view.period,
        clock_warning: view.clock_warning,
    })
}

#[tauri::command]
pub async fn check_clock(shell: State<'_, Shell>, id: String) -> Result<ClockView, ShellError> {
    let client = shell.client()?;
    let mut vault = shell.vault().await?;
    let warning = app::check_clock(client, &mut vault, &id).await?;
    Ok(ClockView {
        offset_secs: vault.token(&id)?.clock_offset.0,
        warning: warning.is_some(),
    })
}

#[tauri::command]
pub async fn setup_token(
    shell: State<'_, Shell>,
    service_id: String,
    user_id: String,
    activation_password: Sensitive<String>,
    agreed: bool,
) -> Result<TokenView, ShellError> {
    if !agreed {
        return Err(ShellError::TermsNotAgreed);
    }
    let input = app::SetupInput {
        service_id,
        user_id,
        activation_password,
        device: shell.device.clone(),
    };
    // Checked before the keystore or the network is touched, so a typo is answered at once.
    input.validate()?;
    let client = shell.client()?;
    let mut vault = shell.vault().await?;
    let (meta, _warning) = app::setup_token(client, &mut vault, &input).await?;
    Ok(TokenView::from(&meta))
}

#[tauri::command]
pub async fn delete_token(shell: State<'_, Shell>, id: String) -> Result<(), ShellError> {
    Ok(shell.vault().await?.delete(&id)?)
}

#[tauri::command]
pub async fn import_otpauth(
    shell: State<'_, Shell>,
    uri: Sensitive<String>,
) -> Result<TokenView, ShellError> {
    let key = app::import::parse_otpauth(uri.expose())?;
    let meta = shell
        .vault()
        .await?
        .add_imported(&key, app::codes::device_now())?;
    Ok(TokenView::from(&meta))
}

#[tauri::command]
pub fn take_setup_link(shell: State<'_, Shell>) -> Option<SetupLink> {
    shell
        .pending_link
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}
