//! The soft-token app's Tauri 2 shell (DESIGN §8): the `app` core behind thin commands, the
//! deep link from the download page, the clipboard, and on phones the QR scanner.
//!
//! Everything the app decides lives in `app/`; this crate wires it to a webview and must not
//! grow logic of its own. It must not depend on the backend.
//!
//! [`run`] is the real app; [`build`] registers state and commands on any [`tauri::Builder`], so
//! the commands are tested with `tauri::test::mock_builder()` (STYLE §5).
//!
//! Environment overrides (desktop runs and tests):
//! - `OTP_APP_DIRECTORY`: JSON `{"<service id>": "<base url>"}` merged over the bundled
//!   directory (`http://` only to loopback; an `https://` URL keeps the bundled pins);
//! - `OTP_APP_DATA_DIR`: where the metadata file lives (default: the OS app data directory),
//!   honoured only with `OTP_APP_KEYSTORE_SERVICE`: a data directory of its own over the
//!   default keystore would be a new install beside the real one, and a new install deletes
//!   what the keystore holds of a removed one (`app::install`);
//! - `OTP_APP_KEYSTORE_SERVICE`: the keystore service name (default `jp.example-bank.otp`).
//!
//! Test-only, honoured by debug builds alone (`debug_assertions`: a release build never reads
//! `OTP_APP_TEST_CA` and refuses pinned entries, as before), so the desktop e2e can pin a
//! backend served over TLS with a CA made in the test:
//! - `OTP_APP_DIRECTORY` entries may also be `{"url": "https://…", "pins": ["sha256/…", …]}`
//!   (at least two distinct pins, as in `app/directory.json`); a release build refuses the
//!   whole override, as it always did for anything but a URL;
//! - `OTP_APP_TEST_CA`: a PEM file of CA certificates trusted besides the bundled public roots
//!   (the chain and the pin are still both checked).

pub mod commands;
pub mod error;
pub mod guard;
pub mod link;
#[cfg(all(desktop, target_os = "linux"))]
pub mod paint;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use app::{AppError, Directory, KeyringStore, ProvisioningClient, SecretStore};
use tauri::{Emitter, Manager, Runtime};

pub use commands::Shell;
pub use error::ShellError;
pub use guard::{Clipboard, MemoryClipboard, ScreenGuard};
pub use link::SetupLink;

/// The event the UI listens to when a setup link arrives while it runs (it then calls
/// `take_setup_link`).
pub const SETUP_LINK_EVENT: &str = "setup-link";

/// The event the UI gets when the app locked itself after a long absence (phones).
pub const APP_LOCKED_EVENT: &str = "app-locked";

/// What the shell is started with.
pub struct ShellConfig {
    /// Metadata directory; `None`: the OS app data directory.
    pub data_dir: Option<PathBuf>,
    /// The keystore (an error is reported by every command that needs it).
    pub store: Result<Arc<dyn SecretStore>, AppError>,
    /// Service ID → backend.
    pub directory: Result<Directory, AppError>,
    /// A PEM file of CA certificates the provisioning client trusts besides the public roots.
    /// Set from the environment (`OTP_APP_TEST_CA`) by debug builds only: a release build's
    /// [`ShellConfig::from_env`] leaves it `None`.
    pub test_ca: Option<PathBuf>,
    /// A setup link the app was started with.
    pub link: Option<SetupLink>,
    /// The clipboard; `None`: the system clipboard through the clipboard plugin.
    pub clipboard: Option<Arc<dyn Clipboard>>,
    /// How long a copied code stays on the clipboard.
    pub clipboard_clear_after: Duration,
}

impl ShellConfig {
    /// The configuration of the real app: the platform keystore, the bundled directory, the
    /// overrides above, and a setup link among the command-line arguments.
    ///
    /// Call it first thing on the main thread: on Linux the keystore joins a session keyring for
    /// the calling thread, and threads started later inherit it.
    pub fn from_env() -> ShellConfig {
        let service_override = std::env::var("OTP_APP_KEYSTORE_SERVICE").ok();
        let data_dir = data_dir_override(
            std::env::var_os("OTP_APP_DATA_DIR"),
            service_override.as_deref(),
        );
        let service = service_override.unwrap_or_else(|| app::keystore::DEFAULT_SERVICE.to_owned());
        let store = KeyringStore::platform(&service).map(|s| Arc::new(s) as Arc<dyn SecretStore>);
        let directory = Directory::bundled().and_then(|mut dir| {
            if let Ok(json) = std::env::var("OTP_APP_DIRECTORY") {
                merge_directory(&mut dir, &json)?;
            }
            Ok(dir)
        });
        ShellConfig {
            data_dir,
            store,
            directory,
            test_ca: test_ca_from_env(),
            link: SetupLink::from_args(std::env::args().skip(1)),
            clipboard: None,
            clipboard_clear_after: app::clipboard::CLEAR_AFTER,
        }
    }
}

/// `OTP_APP_DATA_DIR`, honoured only beside a keystore service of its own
/// (`OTP_APP_KEYSTORE_SERVICE`): over the real install's keystore, an empty directory would be
/// taken for a reinstall, which deletes that install's tokens and PIN.
fn data_dir_override(dir: Option<std::ffi::OsString>, service: Option<&str>) -> Option<PathBuf> {
    let dir = dir?;
    if service.is_none_or(str::is_empty) {
        eprintln!(
            "OTP_APP_DATA_DIR is ignored without OTP_APP_KEYSTORE_SERVICE (it would take the real install's keystore for a removed one's)"
        );
        return None;
    }
    Some(PathBuf::from(dir))
}

/// `OTP_APP_TEST_CA`, read by debug builds only.
#[cfg(debug_assertions)]
fn test_ca_from_env() -> Option<PathBuf> {
    std::env::var_os("OTP_APP_TEST_CA").map(PathBuf::from)
}

/// Release builds trust the public roots alone, whatever the environment says.
#[cfg(not(debug_assertions))]
fn test_ca_from_env() -> Option<PathBuf> {
    None
}

/// Whether `OTP_APP_DIRECTORY` may replace a service's pins: debug builds (tests) only.
const PIN_OVERRIDES: bool = cfg!(debug_assertions);

fn merge_directory(dir: &mut Directory, json: &str) -> Result<(), AppError> {
    merge_directory_with(dir, json, PIN_OVERRIDES)
}

fn merge_directory_with(
    dir: &mut Directory,
    json: &str,
    pin_overrides: bool,
) -> Result<(), AppError> {
    let overrides: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_str(json).map_err(|_| AppError::BadResponse)?;
    for (service, entry) in overrides {
        let service_id = protocol::ServiceId::parse(&service)?;
        match entry {
            serde_json::Value::String(url) => dir.set(&service_id, &url)?,
            pinned @ serde_json::Value::Object(_) if pin_overrides => {
                // Checked exactly as a bundled entry (https needs two distinct pins).
                let one =
                    Directory::from_json(&serde_json::json!({ &service: pinned }).to_string())?;
                dir.set(&service_id, one.base_url(&service_id)?)?;
                dir.set_pins(&service_id, one.pins(&service_id)?.to_vec())?;
            }
            _ => return Err(AppError::BadResponse),
        }
    }
    Ok(())
}

/// The provisioning client: the public roots, plus in a debug build the test CA if one is set.
fn provisioning_client(
    directory: Directory,
    test_ca: Option<&std::path::Path>,
) -> Result<ProvisioningClient, AppError> {
    let Some(path) = test_ca else {
        return ProvisioningClient::new(directory);
    };
    // An unreadable or broken file is an error, never a silent fallback.
    let roots = std::fs::read(path)
        .ok()
        .and_then(|pem| app::pinning::public_roots_and_pem(&pem))
        .ok_or(AppError::UntrustedServer)?;
    ProvisioningClient::with_roots(directory, app::Timeouts::default(), roots)
}

/// Registers the shell's state and commands on `builder`; `on_setup` runs at the end of the
/// app's setup (the real app wires the deep-link plugin there).
pub fn build<R, F>(
    builder: tauri::Builder<R>,
    config: ShellConfig,
    on_setup: F,
) -> tauri::Builder<R>
where
    R: Runtime,
    F: FnOnce(&mut tauri::App<R>) + Send + 'static,
{
    #[cfg(not(mobile))]
    let builder = builder.invoke_handler(tauri::generate_handler![
        commands::app_info,
        commands::list_tokens,
        commands::code_frame,
        commands::transaction::transaction_frame,
        commands::transaction::scan_transaction,
        commands::check_clock,
        commands::setup_token,
        commands::delete_token,
        commands::import_otpauth,
        commands::take_setup_link,
        commands::copy_code,
        commands::lock_status,
        commands::lock_unlock,
        commands::lock_set,
        commands::lock_change,
        commands::lock_remove,
        commands::lock_now,
        commands::lock_reset,
        commands::vault_start_over,
        commands::lock_biometric_set,
        commands::app_hidden,
        commands::app_visible,
    ]);
    #[cfg(mobile)]
    let builder = builder.invoke_handler(tauri::generate_handler![
        commands::app_info,
        commands::list_tokens,
        commands::code_frame,
        commands::transaction::transaction_frame,
        commands::transaction::scan_transaction,
        commands::check_clock,
        commands::setup_token,
        commands::delete_token,
        commands::import_otpauth,
        commands::take_setup_link,
        commands::copy_code,
        commands::lock_status,
        commands::lock_unlock,
        commands::lock_set,
        commands::lock_change,
        commands::lock_remove,
        commands::lock_now,
        commands::lock_reset,
        commands::vault_start_over,
        commands::lock_biometric_set,
        commands::app_hidden,
        commands::app_visible,
        commands::lock_biometric,
    ]);
    let test_ca = config.test_ca;
    let client = config
        .directory
        .and_then(|dir| provisioning_client(dir, test_ca.as_deref()));
    let clipboard = config.clipboard;
    let clear_after = config.clipboard_clear_after;
    // Runs once the Shell is managed: the screen guard's start-up hook and the clipboard.
    let start = move |app: &mut tauri::App<R>| {
        let shell = app.state::<Shell>();
        shell.set_screen_guard(guard::screen_guard_on_start());
        shell.set_clipboard(clipboard.unwrap_or_else(|| guard::plugin_clipboard(app.handle())));
    };
    match config.data_dir {
        // Known now (tests, `OTP_APP_DATA_DIR`): managed before the app is built.
        Some(dir) => builder
            .manage(
                Shell::new(dir, config.store, client, config.link)
                    .with_clipboard_clear_after(clear_after),
            )
            .setup(move |app| {
                start(app);
                on_setup(app);
                Ok(())
            }),
        // The OS app data directory is known once the app exists.
        None => builder.setup(move |app| {
            let dir = app.path().app_data_dir()?;
            app.manage(
                Shell::new(dir, config.store, client, config.link)
                    .with_clipboard_clear_after(clear_after),
            );
            start(app);
            on_setup(app);
            Ok(())
        }),
    }
}

/// Hands a link the OS opened the app with to the UI, if it is a setup link.
fn accept_link<R: Runtime>(handle: &tauri::AppHandle<R>, url: &str) {
    if let Some(link) = SetupLink::parse(url) {
        handle.state::<Shell>().set_pending_link(link.clone());
        // The UI may not listen yet (cold start): it then takes the link when it starts.
        let _ = handle.emit(SETUP_LINK_EVENT, link);
    }
}

/// The app.
#[cfg_attr(mobile, tauri::mobile_entry_point)]
pub fn run() {
    // Before anything starts a thread or the WebView: its web process inherits the choice.
    #[cfg(all(desktop, target_os = "linux"))]
    paint::choose();
    let config = ShellConfig::from_env();
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_clipboard_manager::init())
        .plugin(tauri_plugin_deep_link::init());
    #[cfg(mobile)]
    let builder = builder
        .plugin(tauri_plugin_barcode_scanner::init())
        .plugin(tauri_plugin_biometric::init())
        .plugin(tauri_plugin_screen_guard::init());
    // Phones report going to the background and back; the lock starts counting then.
    // `try_state`: without `OTP_APP_DATA_DIR` the Shell is managed in the setup hook, after the
    // window exists, and `state` would panic on an event that came first.
    #[cfg(mobile)]
    let builder = builder.on_window_event(|window, event| {
        let Some(shell) = window.try_state::<Shell>() else {
            return;
        };
        let now = app::codes::device_now_ms();
        match event {
            tauri::WindowEvent::Suspended => shell.app_hidden(now),
            // iOS says `Suspended` when the app only resigns active (the Face ID prompt, Control
            // Center, a system alert) but `Resumed` only on a return from the background: the
            // focus coming back ends that absence too, or every biometric unlock locked the app
            // again a minute later. (`app_visible` locks only after more than a minute away.)
            tauri::WindowEvent::Resumed | tauri::WindowEvent::Focused(true) => {
                if shell.app_visible(now) {
                    let _ = window.emit(APP_LOCKED_EVENT, ());
                }
            }
            _ => {}
        }
    });
    let builder = build(builder, config, |app| {
        use tauri_plugin_deep_link::DeepLinkExt;
        let handle = app.handle().clone();
        if let Ok(Some(urls)) = app.deep_link().get_current() {
            for url in urls {
                accept_link(&handle, url.as_str());
            }
        }
        app.deep_link().on_open_url(move |event| {
            for url in event.urls() {
                accept_link(&handle, url.as_str());
            }
        });
    });
    match builder.build(tauri::generate_context!()) {
        Ok(app) => app.run(|_, _| {}),
        Err(e) => {
            eprintln!("the app could not start: {e}");
            std::process::exit(1);
        }
    }
}
