//! The IPC surface: thin `#[tauri::command]`s over the `app` core. Each one parses its
//! arguments, calls the core, and copies what the screen needs into a view type. None returns
//! a secret (STYLE §3): codes, labels, parameters and seconds only.
//!
//! 取引認証 (transaction authentication) has its commands in [`transaction`].

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use app::lock::{locks_after_background, AppLock};
use app::{AppError, ClockWarning, ProvisioningClient, SecretStore, TokenKind, TokenMeta, Vault};
use protocol::{DeviceInfo, Sensitive};
use serde::Serialize;
use tauri::State;
use tokio::sync::{Mutex, MutexGuard};
use zeroize::Zeroizing;

use crate::error::ShellError;
use crate::guard::{Clipboard, ScreenGuard};
use crate::link::SetupLink;

pub mod transaction;

/// The shell's managed state: the vault (opened on first use, so a keystore that was locked at
/// start-up is retried), the provisioning client, a setup link waiting for the UI, the app
/// lock's session, the clipboard and the screen guard.
pub struct Shell {
    vault: Mutex<Option<Vault>>,
    data_dir: PathBuf,
    store: Result<Arc<dyn SecretStore>, AppError>,
    client: Result<ProvisioningClient, AppError>,
    pending_link: std::sync::Mutex<Option<SetupLink>>,
    device: DeviceInfo,
    session: std::sync::Mutex<Session>,
    clipboard: OnceLock<Arc<dyn Clipboard>>,
    clipboard_clear_after: Duration,
    screen_guard: OnceLock<ScreenGuard>,
    /// [`app::install::reconcile`] has run in this process (set once it succeeded).
    install_checked: std::sync::Mutex<bool>,
}

/// The app lock's state in this run.
#[derive(Debug, Default)]
struct Session {
    /// The PIN (or biometrics) was given in this run, or no PIN was set when a command
    /// asked, and the app has not locked since.
    unlocked: bool,
    /// When the app went to the background, while it is there.
    hidden: Option<Hidden>,
    /// Counts the locks of this run: an "open" decided on a keystore read made before a lock
    /// that came meanwhile does not undo it.
    locks: u64,
}

impl Session {
    /// The run locks: the PIN (if one is set) is asked again.
    fn close(&mut self) {
        self.unlocked = false;
        self.locks += 1;
    }
}

/// When the app went to the background: the device's wall clock, and a steady one.
#[derive(Debug, Clone, Copy)]
struct Hidden {
    /// Device Unix ms.
    at_ms: u64,
    at: Instant,
}

impl Hidden {
    /// Whether the app must lock at `now_ms`: by the wall clock ([`locks_after_background`]:
    /// too long away, or the clock set back), or by the steady clock (a clock set back by less
    /// than the time away). The steady clock may stop while a phone sleeps, so it is the second
    /// witness, not the only one.
    fn locks_at(&self, now_ms: u64) -> bool {
        locks_after_background(self.at_ms, now_ms)
            || self.at.elapsed() > Duration::from_secs(app::lock::BACKGROUND_GRACE_SECS)
    }
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
            session: std::sync::Mutex::new(Session::default()),
            clipboard: OnceLock::new(),
            clipboard_clear_after: app::clipboard::CLEAR_AFTER,
            screen_guard: OnceLock::new(),
            install_checked: std::sync::Mutex::new(false),
        }
    }

    /// Sets how long a copied code stays on the clipboard (tests shorten it).
    pub fn with_clipboard_clear_after(self, after: Duration) -> Shell {
        Shell {
            clipboard_clear_after: after,
            ..self
        }
    }

    /// Installs the clipboard (once; later calls are ignored).
    pub fn set_clipboard(&self, clipboard: Arc<dyn Clipboard>) {
        let _ = self.clipboard.set(clipboard);
    }

    /// Records what the screen guard did at start-up (once).
    pub fn set_screen_guard(&self, guard: ScreenGuard) {
        let _ = self.screen_guard.set(guard);
    }

    fn session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn lock(&self) -> Result<AppLock, ShellError> {
        self.check_install()?;
        Ok(AppLock::new(self.store.clone()?, &self.data_dir))
    }

    /// Before the lock or the vault is first read: a removed install's PIN and tokens left in
    /// the keystore (iOS keeps Keychain items after the app is deleted) are deleted, once per
    /// process ([`app::install`]). A failure (a keystore locked at start-up) is retried by the
    /// next command.
    fn check_install(&self) -> Result<(), ShellError> {
        let mut checked = self
            .install_checked
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !*checked {
            let store = self.store.clone()?;
            app::install::reconcile(&self.data_dir, &store, app::codes::device_now_ms())?;
            *checked = true;
        }
        Ok(())
    }

    /// Refuses with `APP_LOCKED` while a PIN is set and not given in this run.
    ///
    /// With no PIN set the run is open, and the session remembers it: the codes shown each
    /// second then ask the keystore nothing (on a phone each read is a Keystore or Keychain
    /// call). A PIN is set through [`lock_set`], which is for an open run and leaves it open
    /// (one set by a second copy of the app on the same desktop is seen when this run next
    /// locks); the lock button and a minute in the background close the run as with a PIN,
    /// and the next command reads the lock's entry again. The session is not held across that
    /// read (a slow keystore would hold every other command up); a lock that comes meanwhile
    /// wins, by the session's count of locks.
    ///
    /// Away in the background for longer than the lock allows closes the run here too, not
    /// only when the return is reported ([`Shell::app_visible`]): a command can come first (the
    /// page's ticker resuming, a copy from the screen left open).
    fn ensure_unlocked(&self) -> Result<(), ShellError> {
        let locks = {
            let mut session = self.session();
            if session
                .hidden
                .is_some_and(|h| h.locks_at(app::codes::device_now_ms()))
            {
                // Closed once: the time away is settled (the return then reports it locked).
                session.hidden = None;
                session.close();
            }
            if session.unlocked {
                return Ok(());
            }
            session.locks
        };
        if self.lock()?.status(app::codes::device_now_ms())?.enabled {
            return Err(ShellError::App(AppError::AppLocked));
        }
        let mut session = self.session();
        if session.locks == locks {
            session.unlocked = true;
        }
        Ok(())
    }

    /// The app went to the background (the earliest time counts).
    pub fn app_hidden(&self, now_ms: u64) {
        let mut session = self.session();
        session.hidden.get_or_insert(Hidden {
            at_ms: now_ms,
            at: Instant::now(),
        });
    }

    /// The app is back; locks it when it was away for more than a minute. Returns whether the
    /// app is locked now (a PIN is set and not given since).
    pub fn app_visible(&self, now_ms: u64) -> bool {
        let enabled = self
            .lock()
            .and_then(|l| Ok(l.status(now_ms)?.enabled))
            .unwrap_or(false);
        let mut session = self.session();
        if let Some(hidden) = session.hidden.take() {
            if hidden.locks_at(now_ms) {
                session.close();
            }
        }
        enabled && !session.unlocked
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
            self.check_install()?;
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
    /// What the screen guard did at start-up (`None` until it ran).
    screen_guard: Option<ScreenGuard>,
}

/// The app lock as the UI sees it.
#[derive(Debug, Serialize)]
pub struct LockView {
    /// A PIN is set.
    enabled: bool,
    /// The PIN must be given before anything else.
    locked: bool,
    /// Consecutive wrong PINs.
    failures: u32,
    /// Seconds before the next PIN is taken.
    retry_after_secs: u64,
    /// Ten wrong PINs: the token must be reprovisioned through the bank.
    locked_out: bool,
    /// The device's biometrics may unlock now: a phone, and the customer turned it on.
    biometric: bool,
    /// The customer's choice of biometric unlock (the settings' switch on a phone).
    biometric_on: bool,
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

/// One frame of the code screen. No `Debug`: it holds this step's code and the next.
#[derive(Serialize)]
pub struct CodeFrame {
    code: String,
    next_code: String,
    seconds_left: u32,
    period: u32,
    clock_warning: Option<ClockWarning>,
    /// The device second the frame was made at (Unix seconds): the page counts the seconds
    /// left from it, not from when it asked.
    at_secs: u64,
}

/// The outcome of a clock check against the token's backend.
#[derive(Debug, Serialize)]
pub struct ClockView {
    offset_secs: i64,
    warning: bool,
}

#[tauri::command]
pub fn app_info(shell: State<'_, Shell>) -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION"),
        mobile: cfg!(any(target_os = "android", target_os = "ios")),
        screen_guard: shell.screen_guard.get().cloned(),
    }
}

#[tauri::command]
pub async fn list_tokens(shell: State<'_, Shell>) -> Result<Vec<TokenView>, ShellError> {
    shell.ensure_unlocked()?;
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
    shell.ensure_unlocked()?;
    let vault = shell.vault().await?;
    let now = app::codes::device_now();
    let view = vault.code_view(&id, now)?;
    Ok(CodeFrame {
        code: view.code.as_str().to_owned(),
        next_code: view.next_code.as_str().to_owned(),
        seconds_left: view.seconds_left,
        period: view.period,
        clock_warning: view.clock_warning,
        at_secs: now,
    })
}

#[tauri::command]
pub async fn check_clock(shell: State<'_, Shell>, id: String) -> Result<ClockView, ShellError> {
    shell.ensure_unlocked()?;
    let client = shell.client()?;
    // The vault is free while the server is asked: the code screen's frames need it every
    // second, and a slow or unreachable network held them (and the first code) back.
    // Its own statement: the guard of a `match` scrutinee would live through the whole match.
    let service_id = app::clock_server(&*shell.vault().await?, &id)?;
    let reading = match service_id {
        Some(service_id) => Some(client.server_time(&service_id).await?),
        None => None,
    };
    let mut vault = shell.vault().await?;
    let warning = match &reading {
        Some(reading) => app::store_clock_reading(&mut vault, &id, reading)?,
        None => None,
    };
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
    shell.ensure_unlocked()?;
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
    let request = input.validate()?;
    let client = shell.client()?;
    // The vault is opened first: a keystore that cannot open is reported before the bank
    // provisions the secret, which it does only once. It is free while the bank's server is
    // asked (up to the client's timeout on a bad network), so the codes already on the phone
    // keep coming meanwhile; it is taken again to store the new token.
    drop(shell.vault().await?);
    let provisioned = client.setup(&request).await?;
    let mut vault = shell.vault().await?;
    let (meta, _warning) = app::store_provisioned(&mut vault, provisioned)?;
    Ok(TokenView::from(&meta))
}

#[tauri::command]
pub async fn delete_token(shell: State<'_, Shell>, id: String) -> Result<(), ShellError> {
    shell.ensure_unlocked()?;
    Ok(shell.vault().await?.delete(&id)?)
}

#[tauri::command]
pub async fn import_otpauth(
    shell: State<'_, Shell>,
    uri: Sensitive<String>,
) -> Result<TokenView, ShellError> {
    shell.ensure_unlocked()?;
    let key = app::import::parse_otpauth(uri.expose())?;
    let meta = shell
        .vault()
        .await?
        .add_imported(&key, app::codes::device_now())?;
    Ok(TokenView::from(&meta))
}

/// The link the app was opened with (or the newest since), once. A locked app hands out none
/// and keeps it until the PIN is given, so the setup form never comes up over the lock screen
/// and the link is not lost: the UI takes it after the unlock.
#[tauri::command]
pub fn take_setup_link(shell: State<'_, Shell>) -> Option<SetupLink> {
    shell.ensure_unlocked().ok()?;
    shell
        .pending_link
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take()
}

/// Copies the token's current code to the clipboard, marked as a secret (kept out of clipboard
/// history; Android 13+ hides it from the preview; iOS keeps it off other devices), and clears
/// the clipboard after 30 s if it still holds that code (a newer copy is left alone).
#[tauri::command]
pub async fn copy_code(shell: State<'_, Shell>, id: String) -> Result<(), ShellError> {
    shell.ensure_unlocked()?;
    let view = shell
        .vault()
        .await?
        .code_view(&id, app::codes::device_now())?;
    let code = Zeroizing::new(view.code.as_str().to_owned());
    let clipboard = shell
        .clipboard
        .get()
        .cloned()
        .ok_or(ShellError::Clipboard)?;
    clipboard.write_secret(&code)?;
    let after = shell.clipboard_clear_after;
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(after).await;
        let current = clipboard.read().map(Zeroizing::new);
        if app::clipboard::still_holds(current.as_deref().map(String::as_str), &code) {
            let _ = clipboard.clear();
        }
    });
    Ok(())
}

fn lock_view(shell: &Shell) -> Result<LockView, ShellError> {
    let status = shell.lock()?.status(app::codes::device_now_ms())?;
    let unlocked = shell.session().unlocked;
    Ok(LockView {
        enabled: status.enabled,
        locked: status.enabled && !unlocked,
        failures: status.failures,
        retry_after_secs: status.retry_after_secs,
        locked_out: status.locked_out,
        biometric: status.enabled
            && status.biometric
            && cfg!(any(target_os = "android", target_os = "ios")),
        biometric_on: status.enabled && status.biometric,
    })
}

#[tauri::command]
pub fn lock_status(shell: State<'_, Shell>) -> Result<LockView, ShellError> {
    lock_view(&shell)
}

// The commands that hash a PIN (Argon2id, 19 MiB, two passes: a tenth of a second or more on a
// phone) run on the async runtime's threads (`async`), not on the main thread, where a
// synchronous command runs and where the WebView waits meanwhile.

#[tauri::command(async)]
pub fn lock_unlock(
    shell: State<'_, Shell>,
    pin: Sensitive<String>,
) -> Result<LockView, ShellError> {
    shell.lock()?.verify(&pin, app::codes::device_now_ms())?;
    shell.session().unlocked = true;
    lock_view(&shell)
}

#[tauri::command(async)]
pub fn lock_set(shell: State<'_, Shell>, pin: Sensitive<String>) -> Result<LockView, ShellError> {
    shell.ensure_unlocked()?;
    shell.lock()?.set(&pin, app::codes::device_now_ms())?;
    shell.session().unlocked = true;
    lock_view(&shell)
}

#[tauri::command(async)]
pub fn lock_change(
    shell: State<'_, Shell>,
    current: Sensitive<String>,
    new: Sensitive<String>,
) -> Result<LockView, ShellError> {
    shell.ensure_unlocked()?;
    shell
        .lock()?
        .change(&current, &new, app::codes::device_now_ms())?;
    lock_view(&shell)
}

#[tauri::command(async)]
pub fn lock_remove(
    shell: State<'_, Shell>,
    current: Sensitive<String>,
) -> Result<LockView, ShellError> {
    shell.ensure_unlocked()?;
    shell
        .lock()?
        .remove(&current, app::codes::device_now_ms())?;
    lock_view(&shell)
}

/// Turns biometric unlock on or off (phones; the capability grants it there only); needs the
/// PIN, under its delays.
#[tauri::command(async)]
pub fn lock_biometric_set(
    shell: State<'_, Shell>,
    pin: Sensitive<String>,
    on: bool,
) -> Result<LockView, ShellError> {
    shell.ensure_unlocked()?;
    shell
        .lock()?
        .set_biometric(&pin, on, app::codes::device_now_ms())?;
    lock_view(&shell)
}

/// Locks the app now (the lock button), if a PIN is set.
#[tauri::command]
pub fn lock_now(shell: State<'_, Shell>) -> Result<LockView, ShellError> {
    shell.session().close();
    lock_view(&shell)
}

/// After ten wrong PINs: the customer chose to delete the tokens and the PIN, to set the app
/// up again once the bank has reprovisioned the token. Refused unless locked out.
#[tauri::command]
pub async fn lock_reset(shell: State<'_, Shell>) -> Result<LockView, ShellError> {
    let now = app::codes::device_now_ms();
    let lock = shell.lock()?;
    if !lock.status(now)?.locked_out {
        return Err(ShellError::App(AppError::AppLocked));
    }
    {
        // Every secret the keystore holds, whatever the metadata file says (it may have been
        // emptied to keep them, or be broken); the vault is opened anew afterwards.
        let mut vault = shell.vault.lock().await;
        *vault = None;
        Vault::wipe(&shell.data_dir, shell.store.clone()?.as_ref())?;
    }
    lock.reset_after_lockout(now)?;
    shell.session().unlocked = true;
    lock_view(&shell)
}

/// The token list's file is gone while the keystore still lists tokens (`METADATA_MISSING`:
/// deleted or lost within this install), and the customer chose to delete those tokens and set
/// the app up again (the bank reprovisions the token). Refused with `VAULT_INTACT` when the
/// list can be read, and while the app is locked; the PIN stays.
#[tauri::command]
pub async fn vault_start_over(shell: State<'_, Shell>) -> Result<(), ShellError> {
    shell.ensure_unlocked()?;
    shell.check_install()?;
    let store = shell.store.clone()?;
    let mut vault = shell.vault.lock().await;
    if vault.is_some() {
        return Err(ShellError::App(AppError::VaultIntact));
    }
    match Vault::open(&shell.data_dir, store.clone()) {
        Err(AppError::MetadataMissing { .. }) => {}
        Ok(opened) => {
            *vault = Some(opened);
            return Err(ShellError::App(AppError::VaultIntact));
        }
        Err(e) => return Err(e.into()),
    }
    Vault::wipe(&shell.data_dir, store.as_ref())?;
    *vault = Some(Vault::open(&shell.data_dir, store)?);
    Ok(())
}

#[tauri::command]
pub fn app_hidden(shell: State<'_, Shell>) {
    shell.app_hidden(app::codes::device_now_ms());
}

/// Returns whether the app is locked now.
#[tauri::command]
pub fn app_visible(shell: State<'_, Shell>) -> bool {
    shell.app_visible(app::codes::device_now_ms())
}

/// Phones: unlocks with the device's biometrics (tauri-plugin-biometric), unless locked out.
#[cfg(mobile)]
#[tauri::command]
pub async fn lock_biometric<R: tauri::Runtime>(
    app_handle: tauri::AppHandle<R>,
    shell: State<'_, Shell>,
) -> Result<LockView, ShellError> {
    use tauri_plugin_biometric::BiometricExt;
    let lock = shell.lock()?;
    let status = lock.status(app::codes::device_now_ms())?;
    if status.locked_out {
        return Err(ShellError::App(AppError::PinLockedOut));
    }
    // Off: refused before the system's prompt is shown for nothing.
    if !status.biometric {
        return Err(ShellError::App(AppError::BiometricOff));
    }
    app_handle
        .biometric()
        .authenticate(
            "ワンタイムパスワードを表示します".to_owned(),
            tauri_plugin_biometric::AuthOptions {
                allow_device_credential: false,
                ..Default::default()
            },
        )
        .map_err(|_| ShellError::BiometricFailed)?;
    lock.biometric_unlock(app::codes::device_now_ms())?;
    shell.session().unlocked = true;
    lock_view(&shell)
}

#[cfg(test)]
mod hidden_tests {
    use super::*;

    /// The wall clock set back by most of the time away reads 30 s; the steady clock knows it
    /// was longer.
    #[test]
    fn the_steady_clock_locks_when_the_wall_clock_was_set_back_by_part_of_the_time_away() {
        let t = 1_800_000_000_000;
        let at = Instant::now()
            .checked_sub(Duration::from_secs(61))
            .expect("the machine has been up for more than a minute (the build alone takes that)");
        assert!(Hidden { at_ms: t, at }.locks_at(t + 30_000));
        let now = Hidden {
            at_ms: t,
            at: Instant::now(),
        };
        assert!(!now.locks_at(t + 30_000), "30 s by both clocks: open");
        assert!(now.locks_at(t + 61_000), "61 s by the wall clock: locked");
        assert!(now.locks_at(t - 1), "the wall clock set back: locked");
    }
}
