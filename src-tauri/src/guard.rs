//! The phone's guards that live in the shell (issue 17): the clipboard a copied code goes to,
//! and the screen-capture guard applied at start-up.
//!
//! Screen capture, per platform:
//! - Android: `FLAG_SECURE` on the app's window (our `tauri-plugin-screen-guard`, loaded at
//!   start): no screenshots, no screen recording or casting of the app (the window shows black),
//!   a blank thumbnail in the recent-apps list. It does not stop a camera pointed at the screen,
//!   nor a rooted phone or an accessibility service reading the screen's text.
//! - iOS: a privacy cover over the window whenever the app resigns active, so the app-switcher
//!   snapshot shows no code. iOS lets no app block screenshots or screen recording; the cover
//!   does not stop them while the app is in front.
//! - Desktop (the Linux build for tests): nothing; [`ScreenGuard`] says so.
//!
//! The native parts are verified on a device only; here the hook's call at start-up is tested.

use std::sync::Arc;

use serde::Serialize;
use tauri::{AppHandle, Runtime};

use crate::error::ShellError;

/// What the screen-capture guard did when the app started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScreenGuard {
    /// `flag_secure` (Android), `privacy_cover` (iOS) or `none` (desktop).
    pub protection: &'static str,
}

/// Applies the platform's screen-capture guard: on phones the native plugin registered with
/// the app does the work as it loads; this records what the platform gets.
pub fn screen_guard_on_start() -> ScreenGuard {
    ScreenGuard {
        protection: if cfg!(target_os = "android") {
            "flag_secure"
        } else if cfg!(target_os = "ios") {
            "privacy_cover"
        } else {
            "none"
        },
    }
}

/// The system clipboard as the shell uses it.
pub trait Clipboard: Send + Sync + 'static {
    /// Writes a code, marked as a secret where the platform has such a mark.
    ///
    /// # Errors
    /// [`ShellError::Clipboard`].
    fn write_secret(&self, text: &str) -> Result<(), ShellError>;
    /// The clipboard's text, if it can be read.
    fn read(&self) -> Option<String>;
    /// Empties the clipboard.
    ///
    /// # Errors
    /// [`ShellError::Clipboard`].
    fn clear(&self) -> Result<(), ShellError>;
}

/// The clipboard through tauri-plugin-clipboard-manager: `write_secret` keeps the code out of
/// clipboard managers' history on desktops, flags it `EXTRA_IS_SENSITIVE` on Android 13+ (no
/// preview) and keeps it local on iOS (no Universal Clipboard).
pub struct PluginClipboard<R: Runtime>(pub AppHandle<R>);

impl<R: Runtime> Clipboard for PluginClipboard<R> {
    fn write_secret(&self, text: &str) -> Result<(), ShellError> {
        use tauri_plugin_clipboard_manager::ClipboardExt;
        self.0
            .clipboard()
            .write_secret(text)
            .map_err(|_| ShellError::Clipboard)
    }

    fn read(&self) -> Option<String> {
        use tauri_plugin_clipboard_manager::ClipboardExt;
        self.0.clipboard().read_text().ok()
    }

    fn clear(&self) -> Result<(), ShellError> {
        use tauri_plugin_clipboard_manager::ClipboardExt;
        self.0
            .clipboard()
            .clear()
            .map_err(|_| ShellError::Clipboard)
    }
}

/// An in-memory clipboard for tests.
#[derive(Default)]
pub struct MemoryClipboard(std::sync::Mutex<Option<String>>);

impl MemoryClipboard {
    /// Puts text there as another app would.
    pub fn put(&self, text: &str) {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(text.to_owned());
    }
}

impl Clipboard for MemoryClipboard {
    fn write_secret(&self, text: &str) -> Result<(), ShellError> {
        self.put(text);
        Ok(())
    }

    fn read(&self) -> Option<String> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn clear(&self) -> Result<(), ShellError> {
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        Ok(())
    }
}

/// The clipboard of a running app.
pub fn plugin_clipboard<R: Runtime>(handle: &AppHandle<R>) -> Arc<dyn Clipboard> {
    Arc::new(PluginClipboard(handle.clone()))
}
