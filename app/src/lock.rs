//! The app lock (issue 17, item 1): an optional 4–6 digit PIN asked when the app starts and
//! when it comes back after more than [`BACKGROUND_GRACE_SECS`] in the background.
//!
//! - The PIN is never stored. The keystore entry [`LOCK_ENTRY`] holds an Argon2id hash of it
//!   (PHC string: salt and parameters included) with the failure counter and the time before
//!   which no new attempt is taken. The keystore (not the data directory) keeps it, so the
//!   counter cannot be reset by editing or deleting a file.
//! - Wrong PINs cost time: after the n-th consecutive failure the next attempt is taken only
//!   after 2^(n-1) seconds (1, 2, 4, … s), never longer whatever the device's clock did. A PIN
//!   of the wrong form is refused without counting. The failure is counted and stored *before* the hash
//!   is checked, so killing the app mid-check does not win a free attempt. After
//!   [`MAX_FAILURES`] the PIN is not taken any more: the app tells the customer to have the
//!   token reprovisioned through the bank. Nothing is wiped silently.
//! - Every attempt, setting, change and removal is written to a local audit file
//!   ([`AUDIT_FILE`], JSON lines, mode 0600) with its time and the failure count, never the PIN.
//! - Changing or removing the PIN needs the current PIN, under the same delays.
//!
//! Time is passed in (Unix milliseconds), so the rules are tested at exact instants.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use protocol::Sensitive;
use serde::{Deserialize, Serialize};

use crate::error::AppError;
use crate::keystore::SecretStore;

/// Keystore entry of the lock (token IDs start with `tok-`; the vault's index is another name).
pub const LOCK_ENTRY: &str = "app-lock";
/// The local audit file in the data directory.
pub const AUDIT_FILE: &str = "app-lock-audit.jsonl";
/// Consecutive wrong PINs after which the PIN is no longer taken.
pub const MAX_FAILURES: u32 = 10;
/// Background time after which the app locks again.
pub const BACKGROUND_GRACE_SECS: u64 = 60;

/// The lock as stored in the keystore.
#[derive(Serialize, Deserialize, Clone)]
struct Record {
    v: u32,
    /// Argon2id PHC string of the PIN.
    phc: String,
    /// Consecutive wrong PINs.
    failures: u32,
    /// No attempt is taken before this (Unix ms).
    not_before_ms: u64,
    /// Biometric unlock, turned on by the customer with the PIN (off until then; records
    /// written before it existed read as off).
    #[serde(default)]
    biometric: bool,
}

/// What the lock screen and the settings need to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LockStatus {
    /// A PIN is set.
    pub enabled: bool,
    /// Consecutive wrong PINs so far.
    pub failures: u32,
    /// Seconds before the next attempt is taken (0: now).
    pub retry_after_secs: u64,
    /// [`MAX_FAILURES`] reached: the PIN is no longer taken.
    pub locked_out: bool,
    /// The customer turned biometric unlock on (phones offer it then).
    pub biometric: bool,
}

/// The delay after `failures` consecutive wrong PINs: 2^(failures-1) seconds, 0 for none.
pub fn delay_secs(failures: u32) -> u64 {
    match failures {
        0 => 0,
        n => 1u64 << (n - 1).min(20),
    }
}

/// Milliseconds before the next attempt is taken at `now_ms` (the record as
/// [`AppLock::load_at`] leaves it).
fn wait_ms(r: &Record, now_ms: u64) -> u64 {
    r.not_before_ms.saturating_sub(now_ms)
}

/// Whether the app must lock again when it comes back at `now_ms` after going to the background
/// at `hidden_at_ms` (device wall-clock times): after more than [`BACKGROUND_GRACE_SECS`], or
/// when the clock went back meanwhile. A phone's clock can be set back in its settings with no
/// passcode; counting a step back as no time away let that undo the re-lock.
pub fn locks_after_background(hidden_at_ms: u64, now_ms: u64) -> bool {
    now_ms < hidden_at_ms || now_ms - hidden_at_ms > BACKGROUND_GRACE_SECS * 1000
}

/// Checks the PIN's format: 4 to 6 ASCII digits.
///
/// # Errors
/// [`AppError::PinFormat`].
pub fn check_pin_format(pin: &str) -> Result<(), AppError> {
    if (4..=6).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AppError::PinFormat)
    }
}

/// The app lock over a keystore, with its audit file in the data directory.
pub struct AppLock {
    store: Arc<dyn SecretStore>,
    audit: PathBuf,
    params: Params,
}

impl std::fmt::Debug for AppLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppLock")
            .field("audit", &self.audit)
            .finish_non_exhaustive()
    }
}

/// Every read-and-write of the lock's record in this process goes one at a time: a PIN check
/// reads the failure count and stores it plus one before it hashes, and two checks side by side
/// would both read the same count, each storing the same next one (the shell runs the PIN
/// commands on the async runtime's threads, off the main thread, so they can run side by side).
/// Held across the hash too, so a second check waits for the first's delay to be stored and is
/// then refused for it.
static RECORD: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn hold() -> std::sync::MutexGuard<'static, ()> {
    RECORD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl AppLock {
    /// The lock over `store`, auditing into `data_dir`, hashing with OWASP's Argon2id
    /// parameters (19 MiB, 2 passes).
    pub fn new(store: Arc<dyn SecretStore>, data_dir: &Path) -> AppLock {
        AppLock::with_params(store, data_dir, Params::new(19 * 1024, 2, 1, None))
    }

    /// As [`AppLock::new`] with other Argon2 parameters (tests use cheap ones); defaults if
    /// the parameters are invalid.
    pub fn with_params(
        store: Arc<dyn SecretStore>,
        data_dir: &Path,
        params: Result<Params, argon2::Error>,
    ) -> AppLock {
        AppLock {
            store,
            audit: data_dir.join(AUDIT_FILE),
            params: params.unwrap_or_default(),
        }
    }

    fn load(&self) -> Result<Option<Record>, AppError> {
        match self.store.get(LOCK_ENTRY)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|_| AppError::KeystoreFailure),
        }
    }

    /// The record at `now_ms`, its wait never longer than the delay its failures earned. The
    /// wait is stored as a time of the device's wall clock: a clock that was far ahead when a
    /// PIN was mistyped, then put right, would otherwise hold the PIN (and biometrics) off for as
    /// long as it had been ahead. Such a wait starts again from now, and is stored so.
    fn load_at(&self, now_ms: u64) -> Result<Option<Record>, AppError> {
        let Some(mut r) = self.load()? else {
            return Ok(None);
        };
        let earned = delay_secs(r.failures).saturating_mul(1000);
        if r.not_before_ms.saturating_sub(now_ms) > earned {
            r.not_before_ms = now_ms.saturating_add(earned);
            self.save(&r)?;
        }
        Ok(Some(r))
    }

    fn save(&self, record: &Record) -> Result<(), AppError> {
        let bytes = serde_json::to_vec(record).map_err(|_| AppError::KeystoreFailure)?;
        self.store.set(LOCK_ENTRY, &bytes)
    }

    fn hash(&self, pin: &str) -> Result<String, AppError> {
        let salt = SaltString::generate(&mut rand::rngs::OsRng);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
            .hash_password(pin.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|_| AppError::KeystoreFailure)
    }

    /// Appends one line to the audit file (best effort: an audit failure never locks the
    /// customer out of their own token).
    fn audit(&self, now_ms: u64, event: &str, failures: u32) {
        self.audit_line(
            &serde_json::json!({ "at_ms": now_ms, "event": event, "failures": failures }),
        );
    }

    fn audit_line(&self, line: &serde_json::Value) {
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).append(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        if let Some(dir) = self.audit.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if let Ok(mut f) = opts.open(&self.audit) {
            let _ = writeln!(f, "{line}");
        }
    }

    /// The lock's state at `now_ms`.
    ///
    /// # Errors
    /// Keystore errors.
    pub fn status(&self, now_ms: u64) -> Result<LockStatus, AppError> {
        // `load_at` may store a shortened wait: not over a check's stored count.
        let _held = hold();
        Ok(match self.load_at(now_ms)? {
            None => LockStatus {
                enabled: false,
                failures: 0,
                retry_after_secs: 0,
                locked_out: false,
                biometric: false,
            },
            Some(r) => LockStatus {
                enabled: true,
                failures: r.failures,
                retry_after_secs: wait_ms(&r, now_ms).div_ceil(1000),
                locked_out: r.failures >= MAX_FAILURES,
                biometric: r.biometric,
            },
        })
    }

    /// Sets a PIN where none is set.
    ///
    /// # Errors
    /// [`AppError::PinFormat`]; [`AppError::LockAlreadySet`] (change it instead); keystore
    /// errors.
    pub fn set(&self, pin: &Sensitive<String>, now_ms: u64) -> Result<(), AppError> {
        check_pin_format(pin.expose())?;
        let _held = hold();
        if self.load()?.is_some() {
            return Err(AppError::LockAlreadySet);
        }
        let record = Record {
            v: 1,
            phc: self.hash(pin.expose())?,
            failures: 0,
            not_before_ms: 0,
            biometric: false,
        };
        self.save(&record)?;
        self.audit(now_ms, "pin_set", 0);
        Ok(())
    }

    /// Checks a PIN, under the delays and the failure limit (see the module docs).
    ///
    /// # Errors
    /// [`AppError::LockNotSet`]; [`AppError::PinTryLater`] before the delay has passed (the
    /// PIN is not looked at and nothing is counted); [`AppError::WrongPin`];
    /// [`AppError::PinLockedOut`] at the limit; keystore errors (then nothing was checked).
    pub fn verify(&self, pin: &Sensitive<String>, now_ms: u64) -> Result<(), AppError> {
        let _held = hold();
        self.verify_held(pin, now_ms)
    }

    /// [`AppLock::verify`], the record held ([`hold`]).
    fn verify_held(&self, pin: &Sensitive<String>, now_ms: u64) -> Result<(), AppError> {
        let mut record = self.load_at(now_ms)?.ok_or(AppError::LockNotSet)?;
        if record.failures >= MAX_FAILURES {
            self.audit(now_ms, "attempt_after_lockout", record.failures);
            return Err(AppError::PinLockedOut);
        }
        let wait = wait_ms(&record, now_ms);
        if wait > 0 {
            return Err(AppError::PinTryLater {
                retry_after_secs: wait.div_ceil(1000),
            });
        }
        // The form is no secret: a PIN of the wrong form is refused without costing an attempt.
        check_pin_format(pin.expose())?;
        // Count first, check second: an interrupted check is a counted failure.
        let stored_phc = record.phc.clone();
        record.failures += 1;
        let delay = delay_secs(record.failures);
        record.not_before_ms = now_ms.saturating_add(delay * 1000);
        self.save(&record)?;
        let right = PasswordHash::new(&stored_phc).is_ok_and(|parsed| {
            Argon2::default()
                .verify_password(pin.expose().as_bytes(), &parsed)
                .is_ok()
        });
        if right {
            record.failures = 0;
            record.not_before_ms = 0;
            self.save(&record)?;
            self.audit(now_ms, "unlock", 0);
            return Ok(());
        }
        self.audit(now_ms, "wrong_pin", record.failures);
        if record.failures >= MAX_FAILURES {
            self.audit(now_ms, "locked_out", record.failures);
            return Err(AppError::PinLockedOut);
        }
        Err(AppError::WrongPin {
            retry_after_secs: delay,
            attempts_left: MAX_FAILURES - record.failures,
        })
    }

    /// Replaces the PIN; needs the current one.
    ///
    /// # Errors
    /// [`AppError::PinFormat`] for the new PIN (checked first, nothing counted); any error of
    /// [`AppLock::verify`] for the current one.
    pub fn change(
        &self,
        current: &Sensitive<String>,
        new: &Sensitive<String>,
        now_ms: u64,
    ) -> Result<(), AppError> {
        check_pin_format(new.expose())?;
        let _held = hold();
        self.verify_held(current, now_ms)?;
        let biometric = self.load()?.is_some_and(|r| r.biometric);
        let record = Record {
            v: 1,
            phc: self.hash(new.expose())?,
            failures: 0,
            not_before_ms: 0,
            biometric,
        };
        self.save(&record)?;
        self.audit(now_ms, "pin_changed", 0);
        Ok(())
    }

    /// Removes the lock; needs the current PIN.
    ///
    /// # Errors
    /// Any error of [`AppLock::verify`]; keystore errors.
    pub fn remove(&self, current: &Sensitive<String>, now_ms: u64) -> Result<(), AppError> {
        let _held = hold();
        self.verify_held(current, now_ms)?;
        self.store.delete(LOCK_ENTRY)?;
        self.audit(now_ms, "pin_removed", 0);
        Ok(())
    }

    /// After [`MAX_FAILURES`], when the customer chose to start over (the shell deletes the
    /// tokens first): removes the lock and audits it.
    ///
    /// # Errors
    /// [`AppError::AppLocked`] unless locked out; keystore errors.
    pub fn reset_after_lockout(&self, now_ms: u64) -> Result<(), AppError> {
        let _held = hold();
        let record = self.load()?.ok_or(AppError::LockNotSet)?;
        if record.failures < MAX_FAILURES {
            return Err(AppError::AppLocked);
        }
        self.store.delete(LOCK_ENTRY)?;
        self.audit(now_ms, "reset_after_lockout", record.failures);
        Ok(())
    }

    /// A new install found a removed install's PIN lock in the keystore (iOS keeps Keychain
    /// items after the app is deleted; see [`crate::install`]), and deleted its `tokens`
    /// secrets first: deletes the lock and audits both. Returns whether there was a lock.
    ///
    /// # Errors
    /// Keystore errors.
    pub(crate) fn clear_previous_install(
        &self,
        now_ms: u64,
        tokens: usize,
    ) -> Result<bool, AppError> {
        let _held = hold();
        let had = self.store.delete(LOCK_ENTRY)?;
        self.audit_line(&serde_json::json!({
            "at_ms": now_ms,
            "event": "previous_install_cleared",
            "tokens": tokens,
            "pin": had,
        }));
        Ok(had)
    }

    /// Turns biometric unlock on or off; needs the PIN (under its delays, as any attempt).
    /// Off until the customer turns it on: anyone who knows the phone's passcode can enroll a
    /// finger or a face of their own, so the PIN's holder chooses whether the phone's
    /// biometrics may stand in for it.
    ///
    /// # Errors
    /// Any error of [`AppLock::verify`]; keystore errors.
    pub fn set_biometric(
        &self,
        pin: &Sensitive<String>,
        on: bool,
        now_ms: u64,
    ) -> Result<(), AppError> {
        let _held = hold();
        self.verify_held(pin, now_ms)?;
        let mut record = self.load()?.ok_or(AppError::LockNotSet)?;
        record.biometric = on;
        self.save(&record)?;
        self.audit(now_ms, if on { "biometric_on" } else { "biometric_off" }, 0);
        Ok(())
    }

    /// Records an unlock by the device's biometrics (phones): only when the customer turned it
    /// on, not during a wrong PIN's delay (biometrics do not skip it), never once locked out.
    ///
    /// # Errors
    /// [`AppError::LockNotSet`], [`AppError::BiometricOff`], [`AppError::PinTryLater`],
    /// [`AppError::PinLockedOut`]; keystore errors.
    pub fn biometric_unlock(&self, now_ms: u64) -> Result<(), AppError> {
        let _held = hold();
        let record = self.load_at(now_ms)?.ok_or(AppError::LockNotSet)?;
        if record.failures >= MAX_FAILURES {
            return Err(AppError::PinLockedOut);
        }
        if !record.biometric {
            return Err(AppError::BiometricOff);
        }
        let wait = wait_ms(&record, now_ms);
        if wait > 0 {
            return Err(AppError::PinTryLater {
                retry_after_secs: wait.div_ceil(1000),
            });
        }
        self.audit(now_ms, "unlock_biometric", record.failures);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::MemoryStore;

    /// A keystore that takes its time to answer, as a phone's does.
    struct SlowStore(MemoryStore);

    impl SecretStore for SlowStore {
        fn set(&self, id: &str, secret: &[u8]) -> Result<(), AppError> {
            self.0.set(id, secret)
        }
        fn get(&self, id: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, AppError> {
            // Read as asked, answered later.
            let read = self.0.get(id);
            std::thread::sleep(std::time::Duration::from_millis(40));
            read
        }
        fn delete(&self, id: &str) -> Result<bool, AppError> {
            self.0.delete(id)
        }
    }

    /// PIN checks sent side by side (a script in the WebView; the shell runs the commands on
    /// several threads) each counted one failure: both read the same count and stored the same
    /// next one, so four at once cost one failure and one delay. Every wrong PIN checked is
    /// counted now, and the others wait for the delay.
    #[test]
    fn pins_checked_side_by_side_are_each_counted() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(SlowStore(MemoryStore::default()));
        let params = || Params::new(8, 1, 1, None);
        AppLock::with_params(store.clone(), dir.path(), params())
            .set(&pin("4826"), T0)
            .unwrap();
        let answers: Vec<Result<(), AppError>> = std::thread::scope(|s| {
            let tries: Vec<_> = (0..4)
                .map(|_| {
                    let lock = AppLock::with_params(store.clone(), dir.path(), params());
                    s.spawn(move || lock.verify(&pin("1111"), T0))
                })
                .collect();
            tries.into_iter().map(|t| t.join().unwrap()).collect()
        });
        let wrong = answers
            .iter()
            .filter(|a| matches!(a, Err(AppError::WrongPin { .. })))
            .count();
        let counted = AppLock::with_params(store.clone(), dir.path(), params())
            .status(T0)
            .unwrap()
            .failures;
        assert_eq!(u32::try_from(wrong).unwrap(), counted, "{answers:?}");
        assert_eq!(
            counted, 1,
            "one checked, the others refused for its delay: {answers:?}"
        );
    }

    fn pin(p: &str) -> Sensitive<String> {
        Sensitive::new(p.to_owned())
    }

    fn lock() -> (tempfile::TempDir, Arc<MemoryStore>, AppLock) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemoryStore::default());
        let lock = AppLock::with_params(store.clone(), dir.path(), Params::new(8, 1, 1, None));
        (dir, store, lock)
    }

    const T0: u64 = 1_800_000_000_000;

    #[test]
    fn the_pin_is_4_to_6_digits_and_is_never_stored() {
        let (dir, store, lock) = lock();
        for bad in ["123", "1234567", "12a4", "１２３４", ""] {
            assert_eq!(lock.set(&pin(bad), T0), Err(AppError::PinFormat), "{bad}");
        }
        assert!(!lock.status(T0).unwrap().enabled);
        lock.set(&pin("482916"), T0).unwrap();
        assert_eq!(
            lock.set(&pin("1111"), T0),
            Err(AppError::LockAlreadySet),
            "a set PIN is changed with the PIN, not overwritten"
        );
        let stored = String::from_utf8(store.get(LOCK_ENTRY).unwrap().unwrap().to_vec()).unwrap();
        assert!(
            stored.contains("$argon2id$") && !stored.contains("482916"),
            "{stored}"
        );
        let audit = std::fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
        assert!(
            audit.contains("pin_set") && !audit.contains("482916"),
            "{audit}"
        );
        assert!(lock.status(T0).unwrap().enabled);
        lock.verify(&pin("482916"), T0).unwrap();
    }

    /// The wait after a wrong PIN was stored as a wall-clock time: a phone whose clock was far
    /// ahead (a drained battery, a hand-set year), one wrong PIN, the clock put right, and
    /// neither the PIN nor biometrics were taken for years, with no way out (the app was not
    /// locked out, so no reset was offered). Anyone holding the phone could do it on purpose.
    /// The wait is at most the delay the failures earned, whatever the clock did.
    #[test]
    fn a_clock_set_back_cannot_stretch_the_wait() {
        let (_dir, _store, lock) = lock();
        lock.set(&pin("2468"), T0).unwrap();
        lock.set_biometric(&pin("2468"), true, T0).unwrap();
        let ahead = T0 + 10 * 365 * 86_400_000;
        assert!(matches!(
            lock.verify(&pin("1357"), ahead),
            Err(AppError::WrongPin {
                retry_after_secs: 1,
                ..
            })
        ));
        assert!(lock.status(T0).unwrap().retry_after_secs <= 1);
        assert_eq!(lock.biometric_unlock(T0 + 1000), Ok(()));
        lock.verify(&pin("2468"), T0 + 1000).unwrap();
    }

    /// A PIN of the wrong form (too short, too long, not digits) is refused without counting:
    /// three digits typed by mistake cost one of the ten attempts before. The form is no
    /// secret, so refusing it early tells nothing.
    #[test]
    fn a_malformed_pin_costs_no_attempt() {
        let (_dir, _store, lock) = lock();
        lock.set(&pin("2468"), T0).unwrap();
        for bad in ["246", "2468246", "24a8", ""] {
            assert_eq!(
                lock.verify(&pin(bad), T0),
                Err(AppError::PinFormat),
                "{bad:?}"
            );
        }
        assert_eq!(lock.status(T0).unwrap().failures, 0);
        lock.verify(&pin("2468"), T0).unwrap();
    }

    #[test]
    fn wrong_pins_cost_1_2_4_seconds_and_the_tenth_locks_out_without_wiping() {
        let (dir, store, lock) = lock();
        lock.set(&pin("2468"), T0).unwrap();
        let mut now = T0;
        for n in 1..MAX_FAILURES {
            let expected = 1u64 << (n - 1);
            assert_eq!(
                lock.verify(&pin("1357"), now),
                Err(AppError::WrongPin {
                    retry_after_secs: expected,
                    attempts_left: MAX_FAILURES - n
                }),
                "failure {n}"
            );
            // Before the delay has passed even the right PIN is not looked at, and not counted.
            assert_eq!(
                lock.verify(&pin("2468"), now + expected * 1000 - 1),
                Err(AppError::PinTryLater {
                    retry_after_secs: 1
                }),
                "failure {n}: the delay holds for the right PIN too"
            );
            assert_eq!(lock.status(now).unwrap().failures, n);
            assert_eq!(lock.status(now).unwrap().retry_after_secs, expected);
            now += expected * 1000;
        }
        assert_eq!(lock.verify(&pin("1357"), now), Err(AppError::PinLockedOut));
        assert!(lock.status(now).unwrap().locked_out);
        assert_eq!(
            lock.verify(&pin("2468"), now + 86_400_000),
            Err(AppError::PinLockedOut),
            "after ten, not even the right PIN: the customer reprovisions through the bank"
        );
        assert_eq!(
            lock.biometric_unlock(now),
            Err(AppError::PinLockedOut),
            "nor biometrics"
        );
        assert!(
            store.get(LOCK_ENTRY).unwrap().is_some(),
            "nothing is wiped silently"
        );
        let audit = std::fs::read_to_string(dir.path().join(AUDIT_FILE)).unwrap();
        assert_eq!(audit.matches("\"wrong_pin\"").count(), 10, "{audit}");
        assert!(audit.contains("locked_out"));
        assert!(!audit.contains("1357") && !audit.contains("2468"));
    }

    #[test]
    fn biometric_unlock_is_off_until_turned_on_with_the_pin_and_skips_no_delay() {
        let (_dir, _store, lock) = lock();
        lock.set(&pin("2468"), T0).unwrap();
        assert!(!lock.status(T0).unwrap().biometric, "off at first");
        assert_eq!(lock.biometric_unlock(T0), Err(AppError::BiometricOff));
        assert!(matches!(
            lock.set_biometric(&pin("1111"), true, T0),
            Err(AppError::WrongPin { .. })
        ));
        assert!(
            !lock.status(T0).unwrap().biometric,
            "a wrong PIN turns nothing on"
        );
        assert!(matches!(
            lock.set_biometric(&pin("2468"), true, T0),
            Err(AppError::PinTryLater { .. })
        ));
        lock.set_biometric(&pin("2468"), true, T0 + 1000).unwrap();
        assert!(lock.status(T0 + 1000).unwrap().biometric);
        lock.biometric_unlock(T0 + 1000).unwrap();
        // A wrong PIN's delay holds for biometrics too.
        let _ = lock.verify(&pin("0000"), T0 + 2000);
        assert!(matches!(
            lock.biometric_unlock(T0 + 2500),
            Err(AppError::PinTryLater { .. })
        ));
        lock.biometric_unlock(T0 + 3000).unwrap();
        // Kept across a PIN change; off again with the PIN.
        lock.change(&pin("2468"), &pin("13579"), T0 + 4000).unwrap();
        assert!(lock.status(T0 + 4000).unwrap().biometric);
        lock.set_biometric(&pin("13579"), false, T0 + 5000).unwrap();
        assert_eq!(
            lock.biometric_unlock(T0 + 5000),
            Err(AppError::BiometricOff)
        );
    }

    #[test]
    fn the_right_pin_resets_the_count_and_the_count_survives_a_restart() {
        let (dir, store, lock) = lock();
        lock.set(&pin("2468"), T0).unwrap();
        assert!(matches!(
            lock.verify(&pin("0000"), T0),
            Err(AppError::WrongPin { .. })
        ));
        assert!(matches!(
            lock.verify(&pin("0000"), T0 + 1000),
            Err(AppError::WrongPin { .. })
        ));
        // A new process (same keystore) sees the count and the delay.
        let again = AppLock::with_params(store.clone(), dir.path(), Params::new(8, 1, 1, None));
        assert_eq!(again.status(T0 + 1000).unwrap().failures, 2);
        assert_eq!(
            again.verify(&pin("2468"), T0 + 1500),
            Err(AppError::PinTryLater {
                retry_after_secs: 2
            })
        );
        again.verify(&pin("2468"), T0 + 3000).unwrap();
        assert_eq!(again.status(T0 + 3000).unwrap().failures, 0);
    }

    #[test]
    fn change_and_remove_need_the_current_pin() {
        let (_dir, store, lock) = lock();
        assert_eq!(lock.verify(&pin("1234"), T0), Err(AppError::LockNotSet));
        lock.set(&pin("1234"), T0).unwrap();
        assert_eq!(
            lock.change(&pin("1234"), &pin("12"), T0),
            Err(AppError::PinFormat)
        );
        assert!(matches!(
            lock.change(&pin("9999"), &pin("5678"), T0),
            Err(AppError::WrongPin { .. })
        ));
        lock.verify(&pin("1234"), T0 + 1000).unwrap();
        lock.change(&pin("1234"), &pin("567890"), T0 + 1000)
            .unwrap();
        assert!(matches!(
            lock.verify(&pin("1234"), T0 + 1000),
            Err(AppError::WrongPin { .. })
        ));
        assert!(matches!(
            lock.remove(&pin("1234"), T0 + 5000),
            Err(AppError::WrongPin { .. })
        ));
        assert!(lock.status(T0).unwrap().enabled);
        lock.remove(&pin("567890"), T0 + 10_000).unwrap();
        assert!(!lock.status(T0).unwrap().enabled);
        assert!(store.get(LOCK_ENTRY).unwrap().is_none());
    }

    #[test]
    fn the_app_locks_after_more_than_sixty_seconds_away() {
        assert!(!locks_after_background(T0, T0 + 60_000));
        assert!(locks_after_background(T0, T0 + 60_001));
        assert!(
            locks_after_background(T0, T0 - 5),
            "a clock set back locks: it must not undo the re-lock"
        );
        assert!(!locks_after_background(T0, T0), "no time away");
        assert_eq!(delay_secs(0), 0);
        assert_eq!(delay_secs(1), 1);
        assert_eq!(delay_secs(4), 8);
    }
}
