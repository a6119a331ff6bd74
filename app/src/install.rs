//! This install, told apart from an earlier one whose keystore entries outlived it.
//!
//! Deleting the app deletes its data directory, but not always its keystore entries: iOS keeps
//! Keychain items after the app is removed, and so do the desktops' stores (macOS Keychain,
//! Windows Credential Manager, Secret Service; the kernel keyring goes with the session).
//! Android's Keystore goes with the app. A customer who deleted the app and
//! installed it again then met the old install's PIN lock (a PIN they may not remember, for
//! tokens that are not listed) and, behind it, "the token settings file is missing, contact
//! support": the vault's rule that a missing metadata file beside a keystore index is an error
//! ([`AppError::MetadataMissing`]), meant for a file lost within one install.
//!
//! So each install leaves a marker ([`INSTALL_FILE`]) in its data directory, and the shell calls
//! [`reconcile`] before it first reads the lock or the vault. A data directory that holds none
//! of the app's files is a new install: what the keystore still holds of the app (tokens listed
//! in the vault's index, the PIN lock) belongs to a removed one and is deleted, tokens first.
//! A data directory with the app's files but no marker is an install from before the marker:
//! it is adopted as it is. With the marker there, nothing changes: a metadata file lost within
//! this install is still [`AppError::MetadataMissing`].
//!
//! Deleting the data directory (a rooted phone, a desktop user) therefore resets the PIN lock
//! only together with every token's secret the keystore's index lists (the vault writes a
//! token's ID into the index before its secret, so no secret is missing from it). The tokens
//! are deleted before the lock, and no file is written until both are gone: a start stopped
//! part way finds a data directory still without the app's files and repeats what is left.
//!
//! One case cannot be told from a reinstall: a token list lost before this marker existed, on
//! an install with no PIN ever set (so no audit file either). Its tokens, unusable without
//! their list, are deleted at the upgrade instead of shown as `METADATA_MISSING`.

use std::path::Path;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::keystore::SecretStore;
use crate::lock::{AppLock, AUDIT_FILE, LOCK_ENTRY};
use crate::vault::{self, Vault, METADATA_FILE};

/// The marker's name inside the data directory.
pub const INSTALL_FILE: &str = "install.json";

/// What [`reconcile`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Install {
    /// This install's data directory, marked at an earlier start.
    Known,
    /// The first start of a version with the marker, on an install from before it: the app's
    /// files were there and are kept.
    Adopted,
    /// A new install; the keystore held nothing of an earlier one.
    New,
    /// A new install; the keystore still held a removed install's tokens or PIN lock, and they
    /// were deleted.
    Cleared {
        /// Token secrets deleted.
        tokens: usize,
        /// The old PIN lock was deleted.
        pin: bool,
    },
}

#[derive(Serialize, Deserialize)]
struct Marker {
    version: u32,
    /// Device Unix ms of the install's first start.
    installed_at_ms: u64,
}

/// Tells this install from a removed one's leftovers in the keystore (see the module's text),
/// deletes the leftovers, and marks the data directory (created if missing). Idempotent: a
/// start stopped part way repeats what is left at the next start.
///
/// # Errors
/// Keystore errors (nothing is marked: the next start tries again); [`AppError::MetadataIo`]
/// when the data directory cannot be made or read.
pub fn reconcile(
    data_dir: &Path,
    store: &Arc<dyn SecretStore>,
    now_ms: u64,
) -> Result<Install, AppError> {
    std::fs::create_dir_all(data_dir).map_err(|_| AppError::MetadataIo)?;
    let exists = |name: &str| match std::fs::symlink_metadata(data_dir.join(name)) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(_) => Err(AppError::MetadataIo),
    };
    if exists(INSTALL_FILE)? {
        return Ok(Install::Known);
    }
    let found = if exists(METADATA_FILE)? || exists(AUDIT_FILE)? {
        Install::Adopted
    } else {
        let listed = !vault::read_index(store.as_ref())?.is_empty();
        let pin = store.get(LOCK_ENTRY)?.is_some();
        if listed || pin {
            // Tokens first: the lock goes only once no secret is left behind it. No file is
            // written before both are gone (the lock's audit line comes last).
            let tokens = Vault::delete_indexed(store.as_ref())?;
            let lock = AppLock::new(store.clone(), data_dir);
            let pin = lock.clear_previous_install(now_ms, tokens)?;
            Install::Cleared { tokens, pin }
        } else {
            Install::New
        }
    };
    let marker = Marker {
        version: 1,
        installed_at_ms: now_ms,
    };
    // A marker that cannot be written (a full disk) holds nothing up: the next start decides
    // the same way on what is there (this install's files, or nothing left of the old one).
    if let Ok(bytes) = serde_json::to_vec(&marker) {
        let _ = vault::write_atomic(data_dir, INSTALL_FILE, &bytes);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::ClockOffset;
    use crate::keystore::MemoryStore;
    use protocol::{Secret, Sensitive, SetupResponse, TotpParams, UserId, WireSecret};

    const NOW: u64 = 1_800_000_000_000;

    fn response() -> SetupResponse {
        SetupResponse {
            service_id: "10112231".parse().unwrap(),
            user_id: UserId::from_serial(99_980_000_123).unwrap(),
            secret: WireSecret(Secret::from_bytes(b"install-test-secret-012345".to_vec())),
            params: TotpParams::default(),
            server_time: NOW / 1000,
            issuer: "OTP Bank".into(),
            label: "install test".into(),
        }
    }

    fn store() -> Arc<dyn SecretStore> {
        Arc::new(MemoryStore::default())
    }

    /// An install with one token and a PIN, as a customer leaves it.
    fn used_install(dir: &Path, store: &Arc<dyn SecretStore>) -> String {
        assert_eq!(reconcile(dir, store, NOW).unwrap(), Install::New);
        let mut v = Vault::open(dir, store.clone()).unwrap();
        let id = v
            .add_provisioned(&response(), ClockOffset(0), NOW / 1000)
            .unwrap()
            .id;
        let lock = AppLock::with_params(store.clone(), dir, argon2::Params::new(8, 1, 1, None));
        lock.set(&Sensitive::new("4826".to_owned()), NOW).unwrap();
        id
    }

    #[test]
    fn a_reinstall_deletes_what_the_removed_install_left_in_the_keystore() {
        let store = store();
        let old = tempfile::tempdir().unwrap();
        let id = used_install(old.path(), &store);
        // The app is deleted: its data directory goes, the Keychain's entries stay (iOS).
        drop(old);
        let new = tempfile::tempdir().unwrap();
        let dir = new.path().join("data");

        assert_eq!(
            reconcile(&dir, &store, NOW + 1).unwrap(),
            Install::Cleared {
                tokens: 1,
                pin: true
            }
        );
        assert!(
            store.get(&id).unwrap().is_none(),
            "the old token's secret is deleted"
        );
        assert!(
            store.get(LOCK_ENTRY).unwrap().is_none(),
            "the old PIN is deleted"
        );
        let lock = AppLock::new(store.clone(), &dir);
        assert!(!lock.status(NOW + 2).unwrap().enabled);
        let v = Vault::open(&dir, store.clone()).expect("an empty vault, not METADATA_MISSING");
        assert!(v.tokens().is_empty());
        let audit = std::fs::read_to_string(dir.join(AUDIT_FILE)).unwrap();
        assert!(
            audit.contains("\"event\":\"previous_install_cleared\""),
            "{audit}"
        );
        // Marked: the next start is this install's.
        assert_eq!(reconcile(&dir, &store, NOW + 3).unwrap(), Install::Known);
    }

    #[test]
    fn this_install_keeps_its_tokens_and_pin_at_every_start() {
        let store = store();
        let d = tempfile::tempdir().unwrap();
        let id = used_install(d.path(), &store);
        assert_eq!(
            reconcile(d.path(), &store, NOW + 1).unwrap(),
            Install::Known
        );
        assert!(store.get(&id).unwrap().is_some());
        assert!(
            AppLock::new(store.clone(), d.path())
                .status(NOW + 2)
                .unwrap()
                .enabled
        );
        // A metadata file lost within this install is still an error, and nothing is deleted.
        std::fs::remove_file(d.path().join(METADATA_FILE)).unwrap();
        assert_eq!(
            reconcile(d.path(), &store, NOW + 3).unwrap(),
            Install::Known
        );
        assert!(matches!(
            Vault::open(d.path(), store.clone()),
            Err(AppError::MetadataMissing { tokens: 1 })
        ));
        assert!(store.get(&id).unwrap().is_some());
    }

    #[test]
    fn an_install_from_before_the_marker_is_adopted_as_it_is() {
        let store = store();
        let d = tempfile::tempdir().unwrap();
        let id = used_install(d.path(), &store);
        std::fs::remove_file(d.path().join(INSTALL_FILE)).unwrap();
        assert_eq!(
            reconcile(d.path(), &store, NOW + 1).unwrap(),
            Install::Adopted
        );
        assert!(store.get(&id).unwrap().is_some());
        assert!(
            AppLock::new(store.clone(), d.path())
                .status(NOW + 2)
                .unwrap()
                .enabled
        );
        assert_eq!(
            Vault::open(d.path(), store.clone()).unwrap().tokens().len(),
            1
        );
        assert_eq!(
            reconcile(d.path(), &store, NOW + 3).unwrap(),
            Install::Known
        );

        // A PIN set before any token: the lock's audit file is the app's file there.
        let store2: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let d2 = tempfile::tempdir().unwrap();
        let lock = AppLock::with_params(
            store2.clone(),
            d2.path(),
            argon2::Params::new(8, 1, 1, None),
        );
        lock.set(&Sensitive::new("4826".to_owned()), NOW).unwrap();
        assert_eq!(
            reconcile(d2.path(), &store2, NOW + 1).unwrap(),
            Install::Adopted
        );
        assert!(lock.status(NOW + 2).unwrap().enabled, "the PIN stays");
    }

    #[test]
    fn a_new_install_on_an_empty_keystore_is_only_marked() {
        let store = store();
        let d = tempfile::tempdir().unwrap();
        assert_eq!(reconcile(d.path(), &store, NOW).unwrap(), Install::New);
        let marker: Marker =
            serde_json::from_slice(&std::fs::read(d.path().join(INSTALL_FILE)).unwrap()).unwrap();
        assert_eq!(marker.installed_at_ms, NOW);
        assert!(!d.path().join(METADATA_FILE).exists());
    }

    /// A keystore whose first deletion of the lock fails: the start is stopped between the
    /// tokens and the lock.
    struct LockStuck {
        inner: MemoryStore,
        failed: std::sync::atomic::AtomicBool,
    }

    impl SecretStore for LockStuck {
        fn set(&self, id: &str, secret: &[u8]) -> Result<(), AppError> {
            self.inner.set(id, secret)
        }
        fn get(&self, id: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, AppError> {
            self.inner.get(id)
        }
        fn delete(&self, id: &str) -> Result<bool, AppError> {
            if id == LOCK_ENTRY && !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
                return Err(AppError::KeystoreFailure);
            }
            self.inner.delete(id)
        }
    }

    /// A start stopped after the tokens went but before the lock did: no file was written yet,
    /// so the next start still sees a new install and deletes the old PIN. Before, the wiped
    /// vault's empty token list was written first, and the next start adopted it with the
    /// removed install's PIN, which the customer may not know, for good.
    #[test]
    fn a_stopped_clearing_is_finished_at_the_next_start() {
        let store: Arc<dyn SecretStore> = Arc::new(LockStuck {
            inner: MemoryStore::default(),
            failed: std::sync::atomic::AtomicBool::new(false),
        });
        let old = tempfile::tempdir().unwrap();
        let id = used_install(old.path(), &store);
        drop(old);
        let new = tempfile::tempdir().unwrap();
        assert!(matches!(
            reconcile(new.path(), &store, NOW + 1),
            Err(AppError::KeystoreFailure)
        ));
        assert!(store.get(&id).unwrap().is_none(), "the tokens went first");
        assert_eq!(
            std::fs::read_dir(new.path()).unwrap().count(),
            0,
            "nothing written while the old PIN is there"
        );
        assert_eq!(
            reconcile(new.path(), &store, NOW + 2).unwrap(),
            Install::Cleared {
                tokens: 0,
                pin: true
            }
        );
        assert!(
            !AppLock::new(store.clone(), new.path())
                .status(NOW + 3)
                .unwrap()
                .enabled
        );
    }
}
