//! Secrets at rest and password hashing.
//!
//! Token secrets are sealed with AES-256-GCM under a master key. Each sealed value carries the
//! key id beside it (so keys rotate) and a format version (so the format can evolve); the
//! associated data binds the ciphertext to its token's user ID, so a ciphertext copied onto
//! another row does not decrypt. Master keys come from a key file (created 0600 on first run)
//! or from the environment; the last key listed is the one new secrets are sealed with.
//!
//! Every password (login, confirmation, activation, staff) is hashed with Argon2id
//! ([`PasswordHasher`], in `password.rs`).

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::rngs::OsRng;
use rand::RngCore;
use zeroize::Zeroizing;

use protocol::Secret;

/// The only sealed-secret format so far: 12-byte nonce || ciphertext+tag.
pub const SECRET_FORMAT_V1: i64 = 1;
const NONCE_LEN: usize = 12;
const KEY_CHECK_PLAINTEXT: &[u8] = b"otp master key check v1";

/// Errors about master keys and sealed values. Messages never contain key material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("master key file {0} does not exist")]
    KeyFileMissing(PathBuf),
    #[error("master key file {path} is readable by group or others (mode {mode:o}); chmod 600 it")]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    #[error("master key source is malformed: {0}")]
    Malformed(String),
    #[error("master key {0} is not available")]
    UnknownKey(String),
    #[error("sealed secret could not be opened (wrong key, or the ciphertext was tampered with or moved to another token)")]
    Open,
    #[error("sealed secret has unknown format version {0}")]
    Format(i64),
    #[error("key file I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("keys rotate needs a master key file, and the keys come from OTP_MASTER_KEY: append `,NEWID:64-hex-digits` to it on every instance and restart them (new secrets are sealed under the new key; existing ones stay under the old, which must stay too)")]
    RotateFromEnvironment,
}

/// A 256-bit master key; zeroized on drop, never printed.
#[derive(Clone)]
struct MasterKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// A sealed token secret as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub format: i64,
    pub blob: Vec<u8>,
}

/// Where the master keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A file of `key_id:hex` lines; created with one fresh key (mode 0600) when `create` is set
    /// and the file does not exist. The last line is the current key; a line ending in
    /// `:standby` (`keys add`) is a key this process opens with but does not make current by
    /// itself: the database makes it current once `keys activate` has checked it in, on every
    /// instance that has it (see `Engine::sealing_key_ready`).
    File { path: PathBuf, create: bool },
    /// The same format, from an environment variable (comma or newline separated).
    Env(String),
}

#[derive(Debug, Default)]
struct KeySet {
    keys: HashMap<String, MasterKey>,
    current: String,
    /// Keys the file has on standby only (never on a line of their own without the mark): the
    /// database may make one of them current ([`Keyring::use_current`]); a key the file has
    /// superseded it may not.
    standby: std::collections::HashSet<String>,
    /// The keys have a standby line, activated since or not (`keys add` was used: instances
    /// with key files of their own).
    two_step: bool,
}

/// The master keys in use. Cheap to clone; reloadable from its source so that a running server
/// picks up a key that `keys rotate` added, without a restart.
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<RwLock<KeySet>>,
    source: Option<KeySource>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("key_ids", &self.key_ids())
            .field("current", &self.current_id())
            .finish()
    }
}

/// The suffix of a key line that is not made current by the file (`keys add`).
const STANDBY: &str = ":standby";

fn parse_keys(text: &str) -> Result<KeySet, CryptoError> {
    let mut set = KeySet::default();
    // Keys on a line of their own without the standby mark: current once, never standby again.
    let mut active = std::collections::HashSet::new();
    for entry in text
        .split(['\n', ','])
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (entry, standby) = match entry.strip_suffix(STANDBY) {
            Some(key) => (key, true),
            None => (entry, false),
        };
        let (id, hex_key) = entry
            .split_once(':')
            .ok_or_else(|| CryptoError::Malformed("expected key_id:hex".into()))?;
        let id = id.trim();
        if id.is_empty()
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(CryptoError::Malformed(
                "key id must be non-empty [A-Za-z0-9_-]".into(),
            ));
        }
        let bytes = Zeroizing::new(
            hex::decode(hex_key.trim())
                .map_err(|_| CryptoError::Malformed(format!("key {id} is not hex")))?,
        );
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| CryptoError::Malformed(format!("key {id} is not 32 bytes")))?;
        // A key named twice (a standby key activated: `keys activate` appends its line again)
        // must be the same key.
        if set.keys.get(id).is_some_and(|k| *k.0 != arr) {
            return Err(CryptoError::Malformed(format!(
                "key {id} appears twice with different values"
            )));
        }
        set.keys
            .insert(id.to_owned(), MasterKey(Zeroizing::new(arr)));
        set.two_step |= standby;
        if !standby {
            active.insert(id.to_owned());
            set.standby.remove(id);
            set.current = id.to_owned();
        } else if !active.contains(id) {
            set.standby.insert(id.to_owned());
        }
    }
    if set.keys.is_empty() {
        return Err(CryptoError::Malformed("no keys".into()));
    }
    if set.current.is_empty() {
        return Err(CryptoError::Malformed(
            "every key is on standby: none is current".into(),
        ));
    }
    Ok(set)
}

fn new_key_line() -> (String, Zeroizing<String>) {
    let mut key = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(key.as_mut());
    let id = format!(
        "k{}-{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S"),
        hex::encode(&OsRng.next_u32().to_be_bytes()[..2])
    );
    let line = Zeroizing::new(format!("{id}:{}\n", hex::encode(key.as_ref())));
    (id, line)
}

#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), CryptoError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(CryptoError::KeyFilePermissions {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), CryptoError> {
    Ok(())
}

fn open_private(path: &Path, create_new: bool) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    if create_new {
        opts.write(true).create_new(true);
    } else {
        opts.append(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
}

impl Keyring {
    /// Load keys from their source.
    ///
    /// # Errors
    /// A missing file (unless `create`), a file readable by others, or malformed content.
    pub fn load(source: KeySource) -> Result<(Keyring, bool), CryptoError> {
        let mut created = false;
        let set = match &source {
            KeySource::Env(text) => parse_keys(text)?,
            KeySource::File { path, create } => {
                if !path.exists() {
                    if !create {
                        return Err(CryptoError::KeyFileMissing(path.clone()));
                    }
                    if let Some(dir) = path.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    let (_, line) = new_key_line();
                    let mut f = open_private(path, true)?;
                    f.write_all(line.as_bytes())?;
                    f.sync_all()?;
                    created = true;
                }
                check_permissions(path)?;
                parse_keys(&Zeroizing::new(std::fs::read_to_string(path)?))?
            }
        };
        Ok((
            Keyring {
                inner: Arc::new(RwLock::new(set)),
                source: Some(source),
            },
            created,
        ))
    }

    /// A keyring with one fixed key, for tests and tools.
    pub fn from_hex(id: &str, hex_key: &str) -> Result<Keyring, CryptoError> {
        Ok(Keyring {
            inner: Arc::new(RwLock::new(parse_keys(&format!("{id}:{hex_key}"))?)),
            source: None,
        })
    }

    /// Re-read the source (a rotation elsewhere may have added a key).
    ///
    /// # Errors
    /// As [`Keyring::load`]; on error the keys in memory stay as they were.
    pub fn reload(&self) -> Result<(), CryptoError> {
        let Some(source) = &self.source else {
            return Ok(());
        };
        let text = match source {
            KeySource::Env(text) => Zeroizing::new(text.clone()),
            KeySource::File { path, .. } => {
                check_permissions(path)?;
                Zeroizing::new(std::fs::read_to_string(path)?)
            }
        };
        let mut set = parse_keys(&text)?;
        if let Ok(mut guard) = self.inner.write() {
            // A standby key the database made current here ([`Keyring::use_current`]) stays
            // current while the file still has it on standby.
            if guard.current != set.current && set.standby.contains(&guard.current) {
                set.current = std::mem::take(&mut guard.current);
            }
            *guard = set;
        }
        Ok(())
    }

    /// Read the key file and take the keys it has that this process has not got, each as a
    /// key the database may make current (as one on standby); nothing else changes: no key is
    /// dropped or changed, and the current key stays (a file copied or edited by hand while the
    /// servers run must not take a key they still open secrets with). Returns the ids taken.
    ///
    /// # Errors
    /// As [`Keyring::reload`]; then nothing changed.
    pub fn learn_new_keys(&self) -> Result<Vec<String>, CryptoError> {
        let Some(KeySource::File { path, .. }) = &self.source else {
            return Ok(Vec::new());
        };
        check_permissions(path)?;
        let read = parse_keys(&Zeroizing::new(std::fs::read_to_string(path)?))?;
        let mut guard = self
            .inner
            .write()
            .map_err(|_| CryptoError::Malformed("keyring poisoned".into()))?;
        let mut taken = Vec::new();
        for (id, key) in read.keys {
            if !guard.keys.contains_key(&id) {
                guard.standby.insert(id.clone());
                guard.keys.insert(id.clone(), key);
                taken.push(id);
            }
        }
        Ok(taken)
    }

    /// Forget a key [`Keyring::learn_new_keys`] took (its check value did not match).
    pub fn forget(&self, key_id: &str) {
        if let Ok(mut guard) = self.inner.write() {
            if guard.current != key_id {
                guard.keys.remove(key_id);
                guard.standby.remove(key_id);
            }
        }
    }

    /// Whether the keys have a standby line, activated since or not (`keys add` was used):
    /// instances with key files of their own, which `keys rotate` would leave without the new
    /// key.
    pub fn has_standby(&self) -> bool {
        self.inner.read().is_ok_and(|s| s.two_step)
    }

    /// Append a fresh key to the key file and make it current. Returns its id.
    ///
    /// # Errors
    /// When the keys come from the environment (rotate them there), or on I/O errors.
    pub fn add_key(&self) -> Result<String, CryptoError> {
        let (id, line) = new_key_line();
        self.append_with(|_| Ok(line))?;
        Ok(id)
    }

    /// Append a fresh key on standby (`keys add`): opened with, not made current by the file.
    /// Returns its id.
    ///
    /// # Errors
    /// As [`Keyring::add_key`].
    pub fn add_standby_key(&self) -> Result<String, CryptoError> {
        let (id, line) = new_key_line();
        self.append_with(|_| Ok(Zeroizing::new(format!("{}{STANDBY}\n", line.trim_end()))))?;
        Ok(id)
    }

    /// Make a key this file has current (`keys activate`): its line is appended again, without
    /// the standby mark (the file is only ever appended to).
    ///
    /// # Errors
    /// [`CryptoError::UnknownKey`] if the file does not have it; as [`Keyring::add_key`].
    pub fn activate(&self, key_id: &str) -> Result<(), CryptoError> {
        // The line is made from the file as read under its lock, not from memory.
        self.append_with(|old| {
            let key = old
                .keys
                .get(key_id)
                .ok_or_else(|| CryptoError::UnknownKey(key_id.into()))?;
            Ok(Zeroizing::new(format!(
                "{key_id}:{}\n",
                hex::encode(key.0.as_ref())
            )))
        })
    }

    /// Seal under `key_id` from now on in this process, if it has that key (the database's
    /// newest, which a standby line does not make current by itself). Returns whether it does.
    ///
    /// Only a key the file has on standby: one it has superseded is retired here, whatever the
    /// database's order says (a restore of an older database, say).
    pub fn use_current(&self, key_id: &str) -> bool {
        let Ok(mut guard) = self.inner.write() else {
            return false;
        };
        if guard.current == key_id {
            return true;
        }
        if !guard.standby.contains(key_id) {
            return false;
        }
        key_id.clone_into(&mut guard.current);
        true
    }

    /// Append the line `make` builds from the file's keys as read under the file's lock; the
    /// file with it must parse before anything is written.
    fn append_with(
        &self,
        make: impl FnOnce(&KeySet) -> Result<Zeroizing<String>, CryptoError>,
    ) -> Result<(), CryptoError> {
        let Some(KeySource::File { path, .. }) = &self.source else {
            return Err(CryptoError::RotateFromEnvironment);
        };
        // Appended in place, under an exclusive lock on the key file itself (another `keys
        // rotate` waits here): the file keeps its owner, its mode, its inode (a bind-mounted
        // file, a symbolic link's target). The whole text is checked before and after; a key
        // file whose last line has no newline gets one first (the new key was glued to it, the
        // file no longer parsed, and the next start refused to serve).
        check_permissions(path)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)?;
        #[cfg(unix)]
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(std::io::Error::from)?;
        let mut old = Zeroizing::new(String::new());
        std::io::Read::read_to_string(&mut file, &mut old)?;
        let line = make(&parse_keys(&old)?)?;
        let mut add = Zeroizing::new(String::with_capacity(line.len() + 1));
        if !old.is_empty() && !old.ends_with('\n') {
            add.push('\n');
        }
        add.push_str(&line);
        parse_keys(&Zeroizing::new(format!("{}{}", old.as_str(), add.as_str())))?;
        file.write_all(add.as_bytes())?;
        file.sync_all()?;
        let mut now = Zeroizing::new(String::new());
        std::io::Read::read_to_string(&mut std::fs::File::open(path)?, &mut now)?;
        parse_keys(&now)?;
        drop(file);
        self.reload()
    }

    pub fn current_id(&self) -> String {
        self.inner
            .read()
            .map(|s| s.current.clone())
            .unwrap_or_default()
    }

    pub fn key_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .inner
            .read()
            .map(|s| s.keys.keys().cloned().collect())
            .unwrap_or_default();
        ids.sort();
        ids
    }

    fn cipher(&self, key_id: &str) -> Result<Aes256Gcm, CryptoError> {
        let guard = self
            .inner
            .read()
            .map_err(|_| CryptoError::UnknownKey(key_id.into()))?;
        let key = guard
            .keys
            .get(key_id)
            .ok_or_else(|| CryptoError::UnknownKey(key_id.into()))?;
        Aes256Gcm::new_from_slice(key.0.as_ref())
            .map_err(|_| CryptoError::UnknownKey(key_id.into()))
    }

    fn seal_bytes(
        &self,
        key_id: &str,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<Vec<u8>, CryptoError> {
        let cipher = self.cipher(key_id)?;
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| CryptoError::Open)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ct.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        Ok(blob)
    }

    fn open_bytes(
        &self,
        key_id: &str,
        blob: &[u8],
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if blob.len() < NONCE_LEN + 16 {
            return Err(CryptoError::Open);
        }
        let cipher = match self.cipher(key_id) {
            Ok(c) => c,
            Err(CryptoError::UnknownKey(_)) => {
                // A key added by `keys rotate` in another process: pick it up and retry once.
                self.reload()?;
                self.cipher(key_id)?
            }
            Err(e) => return Err(e),
        };
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }

    /// Seal a token secret under the current key, bound to `user_id`.
    ///
    /// # Errors
    /// Only if the keyring is empty or poisoned.
    pub fn seal(&self, user_id: &str, secret: &Secret) -> Result<Sealed, CryptoError> {
        let key_id = self.current_id();
        let blob = self.seal_bytes(&key_id, secret.expose(), &aad(user_id))?;
        Ok(Sealed {
            key_id,
            format: SECRET_FORMAT_V1,
            blob,
        })
    }

    /// Open a sealed token secret.
    ///
    /// # Errors
    /// Unknown key, unknown format, or authentication failure (wrong key, tampering, or a
    /// ciphertext that belongs to another token).
    pub fn open(&self, user_id: &str, sealed: &Sealed) -> Result<Secret, CryptoError> {
        if sealed.format != SECRET_FORMAT_V1 {
            return Err(CryptoError::Format(sealed.format));
        }
        let plain = self.open_bytes(&sealed.key_id, &sealed.blob, &aad(user_id))?;
        Ok(Secret::from_bytes(plain.to_vec()))
    }

    /// Seal a staff member's second-factor secret under the current key, bound to that
    /// member (a sealed secret copied to another member's row, or to a token, does not open).
    ///
    /// # Errors
    /// Only if the keyring is empty or poisoned.
    pub fn seal_staff_totp(&self, staff_id: i64, secret: &Secret) -> Result<Sealed, CryptoError> {
        let key_id = self.current_id();
        let blob = self.seal_bytes(&key_id, secret.expose(), &staff_aad(staff_id))?;
        Ok(Sealed {
            key_id,
            format: SECRET_FORMAT_V1,
            blob,
        })
    }

    /// Open a staff member's sealed second-factor secret.
    ///
    /// # Errors
    /// As [`Keyring::open`].
    pub fn open_staff_totp(&self, staff_id: i64, sealed: &Sealed) -> Result<Secret, CryptoError> {
        if sealed.format != SECRET_FORMAT_V1 {
            return Err(CryptoError::Format(sealed.format));
        }
        let plain = self.open_bytes(&sealed.key_id, &sealed.blob, &staff_aad(staff_id))?;
        Ok(Secret::from_bytes(plain.to_vec()))
    }

    /// Seal provisioning-v2 state (the deployment's OPAQUE server key, a started exchange)
    /// under the current key, bound to `label` (state sealed for one label does not open as
    /// another, nor as a token secret).
    ///
    /// # Errors
    /// Only if the keyring is empty or poisoned.
    pub fn seal_pake(&self, label: &str, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let key_id = self.current_id();
        let blob = self.seal_bytes(&key_id, plaintext, &pake_aad(label))?;
        Ok(Sealed {
            key_id,
            format: SECRET_FORMAT_V1,
            blob,
        })
    }

    /// Open state sealed with [`Keyring::seal_pake`] under the same `label`.
    ///
    /// # Errors
    /// As [`Keyring::open`].
    pub fn open_pake(
        &self,
        label: &str,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.format != SECRET_FORMAT_V1 {
            return Err(CryptoError::Format(sealed.format));
        }
        self.open_bytes(&sealed.key_id, &sealed.blob, &pake_aad(label))
    }

    /// Seal a known-device cookie's contents under the current key, bound to the login ID it
    /// was issued for (a cookie of one login ID does not open for another, nor as any other
    /// sealed thing).
    ///
    /// # Errors
    /// Only if the keyring is empty or poisoned.
    pub fn seal_device(&self, login_id: &str, plaintext: &[u8]) -> Result<Sealed, CryptoError> {
        let key_id = self.current_id();
        let blob = self.seal_bytes(&key_id, plaintext, &device_aad(login_id))?;
        Ok(Sealed {
            key_id,
            format: SECRET_FORMAT_V1,
            blob,
        })
    }

    /// Open a known-device cookie's contents sealed for `login_id`. Only under a key this
    /// process holds: the cookie comes from the client, and an unknown key id must not make
    /// the keyring re-read its file (as [`Keyring::open`] does for a key rotated elsewhere).
    ///
    /// # Errors
    /// Unknown key, or authentication failure (forged, altered, or issued for another login).
    pub fn open_device(
        &self,
        login_id: &str,
        sealed: &Sealed,
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if sealed.format != SECRET_FORMAT_V1 || !self.key_ids().contains(&sealed.key_id) {
            return Err(CryptoError::UnknownKey(sealed.key_id.clone()));
        }
        self.open_bytes(&sealed.key_id, &sealed.blob, &device_aad(login_id))
    }

    /// A known plaintext sealed under `key_id`, stored so start-up can detect a wrong key.
    ///
    /// # Errors
    /// Unknown key.
    pub fn key_check(&self, key_id: &str) -> Result<Vec<u8>, CryptoError> {
        self.seal_bytes(key_id, KEY_CHECK_PLAINTEXT, key_id.as_bytes())
    }

    /// Whether `check` (from [`Keyring::key_check`]) opens under our key of that id.
    ///
    /// # Errors
    /// Unknown key or a key that does not open the check value.
    pub fn verify_check(&self, key_id: &str, check: &[u8]) -> Result<(), CryptoError> {
        let plain = self.open_bytes(key_id, check, key_id.as_bytes())?;
        if plain.as_slice() == KEY_CHECK_PLAINTEXT {
            Ok(())
        } else {
            Err(CryptoError::Open)
        }
    }
}

fn aad(user_id: &str) -> Vec<u8> {
    format!("otp-token-secret:v1:{user_id}").into_bytes()
}

fn pake_aad(label: &str) -> Vec<u8> {
    format!("otp-pake-state:v1:{label}").into_bytes()
}

fn device_aad(login_id: &str) -> Vec<u8> {
    format!("otp-known-device:v1:{login_id}").into_bytes()
}

fn staff_aad(staff_id: i64) -> Vec<u8> {
    format!("otp-staff-totp:v1:{staff_id}").into_bytes()
}

mod password;
pub use password::PasswordHasher;

#[cfg(test)]
mod tests;
