//! Where token secrets live: the OS keystore, behind the [`SecretStore`] trait (STYLE §3).
//!
//! [`KeyringStore`] is the real one, through the `keyring` 4 family (`keyring-core` plus one
//! store crate per target, chosen at compile time):
//!
//! | target  | store crate                       | where the secret goes                        |
//! |---------|-----------------------------------|----------------------------------------------|
//! | Linux   | `linux-keyutils-keyring-store`    | kernel keyutils: session + persistent keyring |
//! | iOS     | `apple-native-keyring-store` (`protected`) | the data-protection Keychain        |
//! | macOS   | `apple-native-keyring-store` (`keychain`)  | the login Keychain (developers only) |
//! | Android | `android-native-keyring-store`    | SharedPreferences encrypted by a Keystore key |
//!
//! On Linux the kernel store was chosen over Secret Service because it needs no D-Bus session and
//! no unlocked `gnome-keyring-daemon`, so it works headless; a secret set by one process is read
//! by a later process (even in another session) through the per-user persistent keyring, until
//! reboot or until that keyring expires (`/proc/sys/kernel/keys/persistent_keyring_expiry`,
//! default 3 days, reset by every use). A secret lost that way shows as
//! [`AppError::SecretMissing`]; the customer sets the token up again.
//!
//! What binds the secret to this device (issue 12, item 8):
//! - iOS: every entry is created with the access policy `WhenUnlockedThisDeviceOnly`, passed as
//!   the `access-policy` entry modifier of the protected store ([`entry_modifiers`]): the item
//!   is readable only while the phone is unlocked and is never restored from a backup to
//!   another device (the crate's default, `WhenUnlocked`, would travel in an encrypted backup);
//! - Android: the store encrypts its SharedPreferences file with an AES-GCM key generated
//!   inside the Android Keystore, which never hands out key material (not exportable, by the
//!   Keystore's design); a backup of the file is ciphertext that no other device can open. The
//!   store takes no modifiers (it refuses any), so none are passed;
//! - Linux (tests, development): the kernel keyring of the user; nothing leaves the machine.
//!
//! [`MemoryStore`] is for tests of logic and for the shell's mock builder; it never persists.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyring_core::{CredentialStore, Entry};
use protocol::Secret;
use zeroize::Zeroizing;

use crate::error::AppError;

/// A keystore for secrets, keyed by a token ID (an ASCII string chosen by the vault).
///
/// "No entry" is `Ok(None)` from [`SecretStore::get`] and `Ok(false)` from
/// [`SecretStore::delete`], never an error.
pub trait SecretStore: Send + Sync {
    /// Stores (or replaces) the secret for `id`.
    ///
    /// # Errors
    /// [`AppError::KeystoreUnavailable`] or [`AppError::KeystoreFailure`].
    fn set(&self, id: &str, secret: &[u8]) -> Result<(), AppError>;

    /// The secret for `id`, if there is one.
    ///
    /// # Errors
    /// As [`SecretStore::set`].
    fn get(&self, id: &str) -> Result<Option<Zeroizing<Vec<u8>>>, AppError>;

    /// Removes the secret for `id`; `Ok(false)` when there was none.
    ///
    /// # Errors
    /// As [`SecretStore::set`].
    fn delete(&self, id: &str) -> Result<bool, AppError>;
}

/// Maps a keyring error to ours. The keyring error itself is not kept or printed: one variant
/// (`BadEncoding`) carries the stored bytes.
fn keystore_error(e: &keyring_core::Error) -> AppError {
    match e {
        keyring_core::Error::NoStorageAccess(_) | keyring_core::Error::NoDefaultStore => {
            AppError::KeystoreUnavailable
        }
        _ => AppError::KeystoreFailure,
    }
}

/// The OS keystore through `keyring-core`. Entries are `(service, token id)`, created with the
/// platform's [`entry_modifiers`].
pub struct KeyringStore {
    store: Arc<CredentialStore>,
    service: String,
    modifiers: HashMap<&'static str, &'static str>,
}

/// A target operating system, for [`entry_modifiers`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Os {
    /// iOS: the protected (data-protection) Keychain.
    Ios,
    /// Android: SharedPreferences under an Android Keystore key.
    Android,
    /// Anything else (Linux, macOS for developers).
    Other,
}

impl Os {
    /// The OS this build runs on.
    pub fn current() -> Os {
        if cfg!(target_os = "ios") {
            Os::Ios
        } else if cfg!(target_os = "android") {
            Os::Android
        } else {
            Os::Other
        }
    }
}

/// The entry modifiers every keystore entry is created with on `os` (see the module docs).
pub fn entry_modifiers(os: Os) -> HashMap<&'static str, &'static str> {
    match os {
        // apple-native-keyring-store's protected store: kSecAttrAccessibleWhenUnlockedThisDeviceOnly.
        Os::Ios => HashMap::from([("access-policy", "WhenUnlockedThisDeviceOnly")]),
        // The Android store refuses every modifier; its key is non-exportable by construction.
        Os::Android | Os::Other => HashMap::new(),
    }
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

/// The default keystore service name: one per app, so tokens of other apps never collide.
pub const DEFAULT_SERVICE: &str = "jp.example-bank.otp";

impl KeyringStore {
    /// The platform's keystore (see the module table), under `service`.
    ///
    /// On Linux this first makes sure the calling thread has a session keyring (creating an
    /// anonymous one if the process has none), since the keyutils store adds keys to it and
    /// links them into the persistent keyring from there. Call it before spawning threads that
    /// use the store, or use the store from the thread that made it.
    ///
    /// # Errors
    /// [`AppError::KeystoreUnavailable`] when the platform store cannot be opened, or on a
    /// target without a supported store.
    pub fn platform(service: &str) -> Result<KeyringStore, AppError> {
        let store = platform_store()?;
        Ok(KeyringStore::with_store(store, service).with_modifiers(entry_modifiers(Os::current())))
    }

    /// A keystore over any `keyring-core` store (e.g. its mock store, in tests), without
    /// modifiers.
    pub fn with_store(store: Arc<CredentialStore>, service: &str) -> KeyringStore {
        KeyringStore {
            store,
            service: service.to_owned(),
            modifiers: HashMap::new(),
        }
    }

    /// The same keystore, creating entries with `modifiers`.
    pub fn with_modifiers(self, modifiers: HashMap<&'static str, &'static str>) -> KeyringStore {
        KeyringStore { modifiers, ..self }
    }

    fn entry(&self, id: &str) -> Result<Entry, AppError> {
        Entry::new_in_store_with_modifiers(&self.store, &self.service, id, &self.modifiers)
            .map_err(|e| keystore_error(&e))
    }
}

#[cfg(target_os = "linux")]
fn platform_store() -> Result<Arc<CredentialStore>, AppError> {
    use linux_keyutils::{KeyRing, KeyRingIdentifier};
    // KEYCTL_GET_KEYRING_ID with create: joins a new anonymous session keyring only when the
    // thread has none, otherwise returns the existing one.
    KeyRing::from_special_id(KeyRingIdentifier::Session, true)
        .map_err(|_| AppError::KeystoreUnavailable)?;
    let store: Arc<CredentialStore> =
        linux_keyutils_keyring_store::Store::new().map_err(|e| keystore_error(&e))?;
    Ok(store)
}

#[cfg(target_os = "ios")]
fn platform_store() -> Result<Arc<CredentialStore>, AppError> {
    let store: Arc<CredentialStore> =
        apple_native_keyring_store::protected::Store::new().map_err(|e| keystore_error(&e))?;
    Ok(store)
}

#[cfg(target_os = "macos")]
fn platform_store() -> Result<Arc<CredentialStore>, AppError> {
    let store: Arc<CredentialStore> =
        apple_native_keyring_store::keychain::Store::new().map_err(|e| keystore_error(&e))?;
    Ok(store)
}

#[cfg(target_os = "android")]
fn platform_store() -> Result<Arc<CredentialStore>, AppError> {
    let store: Arc<CredentialStore> =
        android_native_keyring_store::Store::new().map_err(|e| keystore_error(&e))?;
    Ok(store)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "ios",
    target_os = "macos",
    target_os = "android"
)))]
fn platform_store() -> Result<Arc<CredentialStore>, AppError> {
    Err(AppError::KeystoreUnavailable)
}

impl SecretStore for KeyringStore {
    fn set(&self, id: &str, secret: &[u8]) -> Result<(), AppError> {
        self.entry(id)?
            .set_secret(secret)
            .map_err(|e| keystore_error(&e))
    }

    fn get(&self, id: &str) -> Result<Option<Zeroizing<Vec<u8>>>, AppError> {
        match self.entry(id)?.get_secret() {
            Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(keystore_error(&e)),
        }
    }

    fn delete(&self, id: &str) -> Result<bool, AppError> {
        match self.entry(id)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring_core::Error::NoEntry) => Ok(false),
            Err(e) => Err(keystore_error(&e)),
        }
    }
}

/// An in-memory keystore for tests of logic (nothing persists; dropping it forgets everything).
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Zeroizing<Vec<u8>>>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemoryStore([redacted])")
    }
}

impl MemoryStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Zeroizing<Vec<u8>>>> {
        // A panic while holding the lock cannot leave the map half-updated (single inserts).
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl SecretStore for MemoryStore {
    fn set(&self, id: &str, secret: &[u8]) -> Result<(), AppError> {
        self.lock()
            .insert(id.to_owned(), Zeroizing::new(secret.to_vec()));
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<Zeroizing<Vec<u8>>>, AppError> {
        Ok(self.lock().get(id).cloned())
    }

    fn delete(&self, id: &str) -> Result<bool, AppError> {
        Ok(self.lock().remove(id).is_some())
    }
}

/// Loads a [`Secret`] from a store.
///
/// # Errors
/// Keystore errors; `Ok(None)` when there is no entry.
pub fn load_secret(store: &dyn SecretStore, id: &str) -> Result<Option<Secret>, AppError> {
    Ok(store
        .get(id)?
        .map(|bytes| Secret::from_bytes(bytes.as_slice().to_vec())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_round_trip_and_no_entry_is_none() {
        let s = MemoryStore::default();
        assert_eq!(s.get("a").unwrap(), None);
        s.set("a", b"0123456789abcdef").unwrap();
        assert_eq!(
            s.get("a").unwrap().as_deref().map(Vec::as_slice),
            Some(&b"0123456789abcdef"[..])
        );
        assert!(s.delete("a").unwrap());
        assert!(!s.delete("a").unwrap(), "deleting nothing is not an error");
        assert!(!format!("{s:?}").contains("0123"));
    }

    /// A store that records the modifiers of every entry it builds, over keyring-core's mock.
    struct Recording {
        mock: Arc<CredentialStore>,
        seen: Mutex<Vec<HashMap<String, String>>>,
    }

    impl keyring_core::api::CredentialStoreApi for Recording {
        fn vendor(&self) -> String {
            "recording".into()
        }
        fn id(&self) -> String {
            "recording".into()
        }
        fn build(
            &self,
            service: &str,
            user: &str,
            modifiers: Option<&HashMap<&str, &str>>,
        ) -> keyring_core::Result<Entry> {
            let mods = modifiers
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            self.seen.lock().unwrap().push(mods);
            self.mock.build(service, user, None)
        }
        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    }

    #[test]
    fn ios_entries_are_device_bound_and_android_gets_no_modifiers() {
        assert_eq!(
            entry_modifiers(Os::Ios),
            HashMap::from([("access-policy", "WhenUnlockedThisDeviceOnly")]),
            "iOS items must not travel in a backup to another device (not the default WhenUnlocked)"
        );
        assert!(
            entry_modifiers(Os::Android).is_empty(),
            "the Android store refuses any modifier: passing one would break every entry"
        );
        assert!(entry_modifiers(Os::Other).is_empty());
        assert_eq!(Os::current(), Os::Other, "these tests run on Linux");
    }

    #[test]
    fn every_entry_is_built_with_the_platform_modifiers() {
        let recording = Arc::new(Recording {
            mock: keyring_core::mock::Store::new().unwrap(),
            seen: Mutex::new(Vec::new()),
        });
        let store: Arc<CredentialStore> = recording.clone();
        let s = KeyringStore::with_store(store, "test.service")
            .with_modifiers(entry_modifiers(Os::Ios));
        s.set("t1", b"0123456789abcdef").unwrap();
        let _ = s.get("t1").unwrap();
        s.delete("t1").unwrap();
        let seen = recording.seen.lock().unwrap();
        assert_eq!(seen.len(), 3, "set, get and delete each build an entry");
        for mods in seen.iter() {
            assert_eq!(
                mods.get("access-policy").map(String::as_str),
                Some("WhenUnlockedThisDeviceOnly"),
                "{mods:?}"
            );
        }
    }

    #[test]
    fn keyring_store_over_the_mock_store_maps_no_entry() {
        let mock: Arc<CredentialStore> = keyring_core::mock::Store::new().unwrap();
        let s = KeyringStore::with_store(mock, "test.service");
        assert_eq!(s.get("t1").unwrap(), None, "no entry is Ok(None)");
        assert!(!s.delete("t1").unwrap());
    }
}
