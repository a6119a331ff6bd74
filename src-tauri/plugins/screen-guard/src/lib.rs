//! Screen-capture guard of the soft-token app (issue 17, item 2), as a Tauri 2 mobile plugin.
//!
//! - Android (`android/`): sets `FLAG_SECURE` on the activity's window when the plugin loads,
//!   i.e. at app start: screenshots and recordings show black, the recent-apps thumbnail is
//!   blank, non-secure displays (casting) show nothing.
//! - iOS (`ios/`): covers the window with an opaque view when the app resigns active and removes
//!   it when it becomes active again, so the app-switcher snapshot holds no code. iOS offers no
//!   way to block screenshots or recordings of an app in front.
//! - Desktop: nothing (the plugin registers no native half).
//!
//! Its Android manifest also keeps the app's data off Auto Backup and device-to-device
//! transfers (`android/src/main/AndroidManifest.xml`, merged into the app's): the Keystore's
//! secrets never travel, so a token list carried without them would only open on "the token
//! settings are missing" on the new phone.
//!
//! Verified on devices only: this workspace builds and tests the desktop app.

use tauri::plugin::{Builder, TauriPlugin};
use tauri::Runtime;

#[cfg(target_os = "ios")]
tauri::ios_plugin_binding!(init_plugin_screen_guard);

/// The plugin; register it on phones (`#[cfg(mobile)]`).
pub fn init<R: Runtime>() -> TauriPlugin<R> {
    Builder::new("screen-guard")
        .setup(|_app, _api| {
            #[cfg(target_os = "android")]
            _api.register_android_plugin("jp.example_bank.otp.screenguard", "ScreenGuardPlugin")?;
            #[cfg(target_os = "ios")]
            _api.register_ios_plugin(init_plugin_screen_guard)?;
            Ok(())
        })
        .build()
}
