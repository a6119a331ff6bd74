//! The token vault: each token's secret in a [`SecretStore`] (the OS keystore), and the
//! non-secret metadata (label, IDs, parameters, clock offset, dates) in `tokens.json` in the
//! app's data directory (DESIGN §8).
//!
//! Rules that keep tokens from being lost silently:
//! - the metadata file is written atomically (temporary file, `fsync`, rename, `fsync` of the
//!   directory), so a crash leaves the old or the new file, never half of one;
//! - a metadata file that does not parse is an error ([`AppError::MetadataCorrupt`]) and is
//!   never overwritten: [`Vault::open`] refuses, and nothing else writes;
//! - the keystore also holds an index of token IDs (not secret), so a metadata file that
//!   disappeared while tokens exist is an error ([`AppError::MetadataMissing`]), not an empty
//!   vault;
//! - a token listed in the metadata whose secret is gone shows [`AppError::SecretMissing`] when
//!   its code is asked for; it stays listed until the user deletes it.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use protocol::{KeyUri, Secret, ServiceId, SetupResponse, TotpParams, UserId};
use serde::{Deserialize, Serialize};

use crate::codes::{ClockOffset, CodeView};
use crate::error::AppError;
use crate::keystore::{load_secret, SecretStore};

/// The metadata file's name inside the data directory.
pub const METADATA_FILE: &str = "tokens.json";
/// The metadata format this code writes and reads.
const FORMAT_VERSION: u32 = 1;
/// Keystore entry holding the list of token IDs (token IDs start with `tok-`, so no clash).
const INDEX_ENTRY: &str = "vault-index";

/// Where a token came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Set up from the bank's backend (service ID + user ID + activation password).
    Bank,
    /// Imported from an `otpauth://` URI (a QR code of some other service).
    Imported,
}

/// A token's non-secret metadata, as listed by the code screen and the settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenMeta {
    /// The vault's ID for the token (`tok-` + 16 hex digits); also the keystore entry's name.
    pub id: String,
    /// Bank token or imported.
    pub kind: TokenKind,
    /// Issuer to show, if known.
    pub issuer: Option<String>,
    /// Label (account) to show.
    pub label: String,
    /// The bank service (bank tokens only).
    pub service_id: Option<ServiceId>,
    /// The bank user ID (bank tokens only).
    pub user_id: Option<UserId>,
    /// Algorithm, digits, period.
    pub params: TotpParams,
    /// Server clock minus device clock, as last measured (0 for imported tokens).
    pub clock_offset: ClockOffset,
    /// When the token was added (device Unix seconds).
    pub added_at: u64,
    /// When the clock offset was last measured (device Unix seconds).
    pub clock_checked_at: Option<u64>,
}

#[derive(Serialize, Deserialize)]
struct MetadataFile {
    version: u32,
    tokens: Vec<TokenMeta>,
}

/// The vault. Not internally synchronised: the shell keeps it behind one lock.
pub struct Vault {
    dir: PathBuf,
    store: Arc<dyn SecretStore>,
    tokens: Vec<TokenMeta>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.dir)
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// Opens the vault in `data_dir` (created if missing) over `store`.
    ///
    /// # Errors
    /// [`AppError::MetadataCorrupt`] if the metadata file does not parse (it is left as is);
    /// [`AppError::MetadataMissing`] if there is no metadata file but the keystore's index lists
    /// tokens; [`AppError::MetadataIo`] if the directory or file cannot be read; keystore errors.
    pub fn open(data_dir: &Path, store: Arc<dyn SecretStore>) -> Result<Vault, AppError> {
        std::fs::create_dir_all(data_dir).map_err(|_| AppError::MetadataIo)?;
        let path = data_dir.join(METADATA_FILE);
        let tokens = match std::fs::read(&path) {
            Ok(bytes) => {
                let file: MetadataFile =
                    serde_json::from_slice(&bytes).map_err(|_| AppError::MetadataCorrupt)?;
                if file.version != FORMAT_VERSION {
                    return Err(AppError::MetadataCorrupt);
                }
                repair_index(store.as_ref(), &file.tokens);
                file.tokens
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let listed = read_index(store.as_ref())?;
                // An ID whose secret is not there is no token (an adding stopped before its
                // secret was stored); one that cannot be told counts as one.
                let tokens = listed
                    .iter()
                    .filter(|id| {
                        !id.starts_with("tok-") || store.get(id).map_or(true, |s| s.is_some())
                    })
                    .count();
                if tokens > 0 {
                    return Err(AppError::MetadataMissing { tokens });
                }
                if !listed.is_empty() {
                    store.delete(INDEX_ENTRY)?;
                }
                Vec::new()
            }
            Err(_) => return Err(AppError::MetadataIo),
        };
        Ok(Vault {
            dir: data_dir.to_owned(),
            store,
            tokens,
        })
    }

    /// The registered tokens, in the order they were added.
    pub fn tokens(&self) -> &[TokenMeta] {
        &self.tokens
    }

    /// One token's metadata.
    ///
    /// # Errors
    /// [`AppError::NoSuchToken`].
    pub fn token(&self, id: &str) -> Result<&TokenMeta, AppError> {
        self.tokens
            .iter()
            .find(|t| t.id == id)
            .ok_or(AppError::NoSuchToken)
    }

    /// Registers a bank token from the backend's setup answer.
    ///
    /// # Errors
    /// [`AppError::DuplicateToken`] if this service + user ID is already registered; keystore
    /// and metadata errors (after which nothing was added).
    pub fn add_provisioned(
        &mut self,
        response: &SetupResponse,
        offset: ClockOffset,
        now: u64,
    ) -> Result<TokenMeta, AppError> {
        if self.tokens.iter().any(|t| {
            t.service_id.as_ref() == Some(&response.service_id)
                && t.user_id.as_ref() == Some(&response.user_id)
        }) {
            return Err(AppError::DuplicateToken);
        }
        let meta = TokenMeta {
            id: new_token_id(),
            kind: TokenKind::Bank,
            issuer: Some(response.issuer.clone()),
            label: response.label.clone(),
            service_id: Some(response.service_id.clone()),
            user_id: Some(response.user_id.clone()),
            params: response.params,
            clock_offset: offset,
            added_at: now,
            clock_checked_at: Some(now),
        };
        self.add(meta, &response.secret.0)
    }

    /// Registers a generic token from an `otpauth://` URI (see [`crate::import`]).
    ///
    /// # Errors
    /// [`AppError::DuplicateToken`] for the same issuer and account; keystore and metadata
    /// errors.
    pub fn add_imported(&mut self, key: &KeyUri, now: u64) -> Result<TokenMeta, AppError> {
        if self.tokens.iter().any(|t| {
            t.kind == TokenKind::Imported && t.issuer == key.issuer && t.label == key.account
        }) {
            return Err(AppError::DuplicateToken);
        }
        let meta = TokenMeta {
            id: new_token_id(),
            kind: TokenKind::Imported,
            issuer: key.issuer.clone(),
            label: key.account.clone(),
            service_id: None,
            user_id: None,
            params: key.params,
            clock_offset: ClockOffset(0),
            added_at: now,
            clock_checked_at: None,
        };
        self.add(meta, &key.secret)
    }

    fn add(&mut self, meta: TokenMeta, secret: &Secret) -> Result<TokenMeta, AppError> {
        let mut next = self.tokens.clone();
        next.push(meta.clone());
        // The index first: no secret is ever in the keystore without its ID in the index, which
        // is what a wipe and a new install's clearing delete by (`crate::install`), whatever
        // stops the app part way. An ID listed without its secret is no token ([`Vault::open`]).
        write_index_of(self.store.as_ref(), &next)?;
        let stored = self
            .store
            .set(&meta.id, secret.expose())
            .and_then(|()| self.save(&next));
        if let Err(e) = stored {
            // Leave no orphan secret behind; the first error is the one to report.
            let _ = self.store.delete(&meta.id);
            let _ = write_index_of(self.store.as_ref(), &self.tokens);
            return Err(e);
        }
        self.tokens = next;
        Ok(meta)
    }

    /// Deletes a token: its keystore entry first, then its metadata (DESIGN §8: deleting a
    /// token removes its keystore entry). A secret that is already gone is not an error.
    ///
    /// # Errors
    /// [`AppError::NoSuchToken`]; keystore errors (then nothing was changed); metadata errors
    /// (then the secret is gone and the token is still listed: deleting again finishes it).
    pub fn delete(&mut self, id: &str) -> Result<(), AppError> {
        self.token(id)?;
        self.store.delete(id)?;
        let next: Vec<TokenMeta> = self.tokens.iter().filter(|t| t.id != id).cloned().collect();
        self.save(&next)?;
        self.tokens = next;
        self.write_index()
    }

    /// Deletes every token: each secret the keystore's index or the metadata file names (when
    /// it can be read), then the metadata and the index. For the forgotten-PIN reset, which
    /// must not leave a secret behind because the metadata file was edited, emptied or broken:
    /// the keystore's index is the list the file cannot change. Returns how many secrets were
    /// there.
    ///
    /// # Errors
    /// Keystore errors (then some secrets may be gone and the rest still there: wiping again
    /// finishes it); [`AppError::MetadataIo`] when the empty metadata cannot be written.
    pub fn wipe(data_dir: &Path, store: &dyn SecretStore) -> Result<usize, AppError> {
        let mut ids = read_index(store)?;
        if let Ok(bytes) = std::fs::read(data_dir.join(METADATA_FILE)) {
            if let Ok(file) = serde_json::from_slice::<MetadataFile>(&bytes) {
                ids.extend(file.tokens.into_iter().map(|t| t.id));
            }
        }
        let deleted = delete_secrets(store, ids)?;
        std::fs::create_dir_all(data_dir).map_err(|_| AppError::MetadataIo)?;
        save_metadata(data_dir, &[])?;
        store.delete(INDEX_ENTRY)?;
        Ok(deleted)
    }

    /// Deletes every secret the keystore's index lists, then the index; no file is touched.
    /// For a new install clearing what a removed one left in the keystore ([`crate::install`]):
    /// its data directory holds no metadata file, and none may be written before the old PIN
    /// is gone too. Returns how many secrets were there.
    ///
    /// # Errors
    /// Keystore errors (then some secrets may be gone: deleting again finishes it).
    pub(crate) fn delete_indexed(store: &dyn SecretStore) -> Result<usize, AppError> {
        let deleted = delete_secrets(store, read_index(store)?)?;
        store.delete(INDEX_ENTRY)?;
        Ok(deleted)
    }

    /// Records a new clock offset measurement for a token.
    ///
    /// # Errors
    /// [`AppError::NoSuchToken`]; metadata errors.
    pub fn set_clock_offset(
        &mut self,
        id: &str,
        offset: ClockOffset,
        now: u64,
    ) -> Result<(), AppError> {
        self.token(id)?;
        let mut next = self.tokens.clone();
        for t in next.iter_mut().filter(|t| t.id == id) {
            t.clock_offset = offset;
            t.clock_checked_at = Some(now);
        }
        self.save(&next)?;
        self.tokens = next;
        Ok(())
    }

    /// The code screen's frame for a token at `device_now` (device Unix seconds), corrected by
    /// the token's clock offset.
    ///
    /// # Errors
    /// [`AppError::NoSuchToken`]; [`AppError::SecretMissing`] if the keystore lost the secret;
    /// keystore errors.
    pub fn code_view(&self, id: &str, device_now: u64) -> Result<CodeView, AppError> {
        let meta = self.token(id)?;
        let secret = load_secret(self.store.as_ref(), id)?.ok_or(AppError::SecretMissing)?;
        Ok(CodeView::at(
            &secret,
            &meta.params,
            device_now,
            meta.clock_offset,
        ))
    }

    /// The 取引認証 frame of a bank token for `transaction` at `device_now` (typed fallback, or
    /// a scanned challenge checked with [`Vault::challenge_token`]).
    ///
    /// # Errors
    /// [`AppError::NoSuchToken`]; [`AppError::NotBankToken`] for an imported token;
    /// [`AppError::SecretMissing`]; keystore errors.
    pub fn transaction_view(
        &self,
        id: &str,
        transaction: protocol::ocra::Transaction,
        device_now: u64,
    ) -> Result<crate::codes::TransactionView, AppError> {
        let meta = self.token(id)?;
        if meta.kind != TokenKind::Bank {
            return Err(AppError::NotBankToken);
        }
        let secret = load_secret(self.store.as_ref(), id)?.ok_or(AppError::SecretMissing)?;
        Ok(crate::codes::TransactionView::at(
            &secret,
            transaction,
            device_now,
            meta.clock_offset,
        ))
    }

    /// The bank token a scanned 取引認証 QR is for (its service and user ID).
    ///
    /// # Errors
    /// [`AppError::ChallengeForOtherToken`] when no bank token here has those IDs.
    pub fn challenge_token(
        &self,
        challenge: &protocol::ocra::TransactionChallenge,
    ) -> Result<&TokenMeta, AppError> {
        self.tokens
            .iter()
            .find(|t| {
                t.kind == TokenKind::Bank
                    && t.service_id.as_ref() == Some(&challenge.service_id)
                    && t.user_id.as_ref() == Some(&challenge.user_id)
            })
            .ok_or(AppError::ChallengeForOtherToken)
    }

    fn save(&self, tokens: &[TokenMeta]) -> Result<(), AppError> {
        save_metadata(&self.dir, tokens)
    }

    fn write_index(&self) -> Result<(), AppError> {
        write_index_of(self.store.as_ref(), &self.tokens)
    }
}

/// Deletes the token secrets `ids` name (token entries only: an edited file or index must not
/// name the lock's own entry), each once. Returns how many were there.
fn delete_secrets(store: &dyn SecretStore, mut ids: Vec<String>) -> Result<usize, AppError> {
    ids.retain(|id| id.starts_with("tok-"));
    ids.sort_unstable();
    ids.dedup();
    let mut deleted = 0;
    for id in &ids {
        if store.delete(id)? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// Writes the keystore's index of `tokens`' IDs (none: no index).
fn write_index_of(store: &dyn SecretStore, tokens: &[TokenMeta]) -> Result<(), AppError> {
    let ids: Vec<&str> = tokens.iter().map(|t| t.id.as_str()).collect();
    if ids.is_empty() {
        store.delete(INDEX_ENTRY)?;
        return Ok(());
    }
    let bytes = serde_json::to_vec(&ids).map_err(|_| AppError::KeystoreFailure)?;
    store.set(INDEX_ENTRY, &bytes)
}

/// At open, best effort (a keystore that cannot answer now does not keep the list from
/// showing): a secret the index lists but the metadata file does not (an adding stopped after
/// its secret was stored, before the file was written; or an older version's) is deleted, and
/// the index is made the file's list again, with every token the file lists (an older version
/// wrote the index last, so a stopped adding could leave a listed token out of it, and out of
/// what a wipe deletes).
fn repair_index(store: &dyn SecretStore, tokens: &[TokenMeta]) {
    let Ok(listed) = read_index(store) else {
        return;
    };
    let known: std::collections::HashSet<&str> = tokens.iter().map(|t| t.id.as_str()).collect();
    let mut same = listed.len() == known.len();
    for id in &listed {
        if !known.contains(id.as_str()) {
            same = false;
            if id.starts_with("tok-") && store.delete(id).is_err() {
                return;
            }
        }
    }
    if !same {
        let _ = write_index_of(store, tokens);
    }
}

/// Writes the metadata file of `dir` with `tokens`.
fn save_metadata(dir: &Path, tokens: &[TokenMeta]) -> Result<(), AppError> {
    let file = MetadataFile {
        version: FORMAT_VERSION,
        tokens: tokens.to_vec(),
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(|_| AppError::MetadataIo)?;
    write_atomic(dir, METADATA_FILE, &bytes).map_err(|_| AppError::MetadataIo)
}

pub(crate) fn read_index(store: &dyn SecretStore) -> Result<Vec<String>, AppError> {
    match store.get(INDEX_ENTRY)? {
        None => Ok(Vec::new()),
        // An unreadable index still means "there were tokens".
        Some(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|_| vec![String::new()])),
    }
}

fn new_token_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("tok-{hex}")
}

/// Writes `dir/name` atomically: a temporary file beside it, flushed to disk, renamed over the
/// old file, and the directory flushed so the rename itself survives a crash. Mode 0600 on Unix.
pub(crate) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let result = (|| {
        let mut f = opts.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, dir.join(name))?;
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keystore::MemoryStore;
    use protocol::WireSecret;

    fn response(user: &str) -> SetupResponse {
        SetupResponse {
            service_id: "10112231".parse().unwrap(),
            user_id: user.parse().unwrap(),
            secret: WireSecret(Secret::from_bytes(b"12345678901234567890".to_vec())),
            params: TotpParams::default(),
            server_time: 1_700_000_000,
            issuer: "OTP Bank".into(),
            label: user.into(),
        }
    }

    fn user_id(serial: u64) -> String {
        UserId::from_serial(serial).unwrap().as_str().to_owned()
    }

    /// A keystore that notes, as each token's secret is stored, whether the index already
    /// listed it.
    #[derive(Default)]
    struct Watching {
        inner: MemoryStore,
        unlisted_secrets: std::sync::atomic::AtomicUsize,
    }

    impl SecretStore for Watching {
        fn set(&self, id: &str, secret: &[u8]) -> Result<(), AppError> {
            if id.starts_with("tok-") && !read_index(&self.inner)?.iter().any(|l| l == id) {
                self.unlisted_secrets
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            self.inner.set(id, secret)
        }
        fn get(&self, id: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, AppError> {
            self.inner.get(id)
        }
        fn delete(&self, id: &str) -> Result<bool, AppError> {
            self.inner.delete(id)
        }
    }

    /// No secret is ever stored before its ID is in the index: the index is what a wipe and a
    /// new install's clearing delete by, so a secret outside it (the app stopped between the
    /// two writes, as the index came last before) outlived both, and with a token list put
    /// back by hand showed its codes with no PIN.
    #[test]
    fn a_secret_is_stored_only_once_the_index_lists_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Watching::default());
        let mut v = Vault::open(dir.path(), store.clone()).unwrap();
        v.add_provisioned(&response(&user_id(99_980_000_001)), ClockOffset(0), 1)
            .unwrap();
        v.add_provisioned(&response(&user_id(99_980_000_002)), ClockOffset(0), 2)
            .unwrap();
        assert_eq!(
            store
                .unlisted_secrets
                .load(std::sync::atomic::Ordering::SeqCst),
            0
        );
        assert_eq!(read_index(store.as_ref()).unwrap().len(), 2);
    }

    /// What a stopped adding leaves is put right at the next open: a secret no token lists is
    /// deleted, a token the index missed is listed, and an ID listed without a secret (and no
    /// token list at all) is no token.
    #[test]
    fn open_puts_right_what_a_stopped_adding_left() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let mut v = Vault::open(dir.path(), store.clone()).unwrap();
        let kept = v
            .add_provisioned(&response(&user_id(99_980_000_001)), ClockOffset(0), 1)
            .unwrap()
            .id;
        // A secret stored, its token never written to the file; the index without the token.
        store.set("tok-00000000000000aa", b"orphan").unwrap();
        store
            .set(INDEX_ENTRY, br#"["tok-00000000000000aa"]"#)
            .unwrap();
        let v = Vault::open(dir.path(), store.clone()).unwrap();
        assert_eq!(v.tokens().len(), 1);
        assert!(store.get("tok-00000000000000aa").unwrap().is_none());
        assert_eq!(read_index(store.as_ref()).unwrap(), vec![kept.clone()]);

        // No token list, and the index names only an ID whose secret never came.
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        store
            .set(INDEX_ENTRY, br#"["tok-00000000000000bb"]"#)
            .unwrap();
        assert!(Vault::open(dir.path(), store.clone())
            .unwrap()
            .tokens()
            .is_empty());
        assert!(store.get(INDEX_ENTRY).unwrap().is_none());
    }

    #[test]
    fn add_list_reopen_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let mut v = Vault::open(dir.path(), store.clone()).unwrap();
        assert!(v.tokens().is_empty());
        let a = v
            .add_provisioned(&response(&user_id(1)), ClockOffset(3), 10)
            .unwrap();
        let b = v
            .add_provisioned(&response(&user_id(2)), ClockOffset(0), 11)
            .unwrap();
        assert_eq!(
            v.add_provisioned(&response(&user_id(1)), ClockOffset(0), 12),
            Err(AppError::DuplicateToken)
        );

        let text = std::fs::read_to_string(dir.path().join(METADATA_FILE)).unwrap();
        assert!(
            !text.contains("GEZDGNBV"),
            "the metadata file holds no secret: {text}"
        );

        let mut v = Vault::open(dir.path(), store.clone()).unwrap();
        assert_eq!(
            v.tokens(),
            &[a.clone(), b.clone()],
            "metadata survives reopening"
        );
        v.code_view(&a.id, 1_700_000_000).unwrap();

        v.delete(&a.id).unwrap();
        assert_eq!(store.get(&a.id).unwrap(), None, "delete removes the secret");
        assert_eq!(v.code_view(&a.id, 0).unwrap_err(), AppError::NoSuchToken);
        let v = Vault::open(dir.path(), store.clone()).unwrap();
        assert_eq!(v.tokens(), &[b]);
    }

    #[test]
    fn transaction_codes_are_for_bank_tokens_and_scans_find_theirs() {
        use protocol::ocra::{AccountType, ChallengeNonce, Transaction, TransactionChallenge};
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let mut v = Vault::open(dir.path(), store).unwrap();
        let bank = v
            .add_provisioned(&response(&user_id(1)), ClockOffset(0), 10)
            .unwrap();
        let key = KeyUri::parse(
            "otpauth://totp/Other:me?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Other",
        )
        .unwrap();
        let imported = v.add_imported(&key, 11).unwrap();
        let tx =
            Transaction::new("0001", "123", AccountType::Ordinary, "1234567", 150_000).unwrap();
        let view = v
            .transaction_view(&bank.id, tx.clone(), 1_700_000_000)
            .unwrap();
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        assert_eq!(
            view.code.as_str(),
            protocol::ocra::transaction_code(&secret, &tx, 1_700_000_000).as_str()
        );
        assert_eq!(
            v.transaction_view(&imported.id, tx.clone(), 1_700_000_000)
                .unwrap_err(),
            AppError::NotBankToken
        );
        let mut challenge = TransactionChallenge {
            service_id: "10112231".parse().unwrap(),
            user_id: user_id(1).parse().unwrap(),
            transaction: tx,
            payee_name: "ﾔﾏﾀﾞ ﾀﾛｳ".into(),
            nonce: ChallengeNonce::generate(),
        };
        assert_eq!(v.challenge_token(&challenge).unwrap().id, bank.id);
        challenge.user_id = user_id(2).parse().unwrap();
        assert_eq!(
            v.challenge_token(&challenge).unwrap_err(),
            AppError::ChallengeForOtherToken
        );
    }

    #[test]
    fn corrupt_metadata_is_an_error_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let mut v = Vault::open(dir.path(), store.clone()).unwrap();
        v.add_provisioned(&response(&user_id(1)), ClockOffset(0), 1)
            .unwrap();
        let path = dir.path().join(METADATA_FILE);
        std::fs::write(&path, b"{\"version\":1,\"tokens\":[{\"id\":").unwrap();
        assert_eq!(
            Vault::open(dir.path(), store.clone()).unwrap_err(),
            AppError::MetadataCorrupt
        );
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"{\"version\":1,\"tokens\":[{\"id\":",
            "a corrupt file is never overwritten"
        );
        std::fs::write(&path, b"{\"version\":9,\"tokens\":[]}").unwrap();
        assert_eq!(
            Vault::open(dir.path(), store).unwrap_err(),
            AppError::MetadataCorrupt,
            "an unknown format version is not read as an empty vault"
        );
    }

    #[test]
    fn missing_metadata_with_tokens_in_the_keystore_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let mut v = Vault::open(dir.path(), store.clone()).unwrap();
        v.add_provisioned(&response(&user_id(1)), ClockOffset(0), 1)
            .unwrap();
        v.add_provisioned(&response(&user_id(2)), ClockOffset(0), 1)
            .unwrap();
        std::fs::remove_file(dir.path().join(METADATA_FILE)).unwrap();
        assert_eq!(
            Vault::open(dir.path(), store.clone()).unwrap_err(),
            AppError::MetadataMissing { tokens: 2 }
        );

        // A vault that was emptied by deleting its tokens opens empty without a file.
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let mut v = Vault::open(dir.path(), store.clone()).unwrap();
        let t = v
            .add_provisioned(&response(&user_id(1)), ClockOffset(0), 1)
            .unwrap();
        v.delete(&t.id).unwrap();
        std::fs::remove_file(dir.path().join(METADATA_FILE)).unwrap();
        assert!(Vault::open(dir.path(), store).unwrap().tokens().is_empty());
    }

    #[test]
    fn lost_secret_shows_as_secret_missing_and_can_be_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let mut v = Vault::open(dir.path(), store.clone()).unwrap();
        let t = v
            .add_provisioned(&response(&user_id(1)), ClockOffset(0), 1)
            .unwrap();
        store.delete(&t.id).unwrap();
        assert_eq!(v.code_view(&t.id, 1).unwrap_err(), AppError::SecretMissing);
        assert_eq!(v.tokens().len(), 1, "the token stays listed");
        v.delete(&t.id).unwrap();
        assert!(v.tokens().is_empty());
    }

    #[test]
    fn clock_offset_is_stored_and_applied() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
        let mut v = Vault::open(dir.path(), store.clone()).unwrap();
        let t = v
            .add_provisioned(&response(&user_id(1)), ClockOffset(0), 1)
            .unwrap();
        let device_now = 1_700_000_010; // 10 s into a 60 s step
        let plain = v.code_view(&t.id, device_now).unwrap();
        v.set_clock_offset(&t.id, ClockOffset(60), 5).unwrap();
        let v = Vault::open(dir.path(), store).unwrap();
        assert_eq!(v.token(&t.id).unwrap().clock_offset, ClockOffset(60));
        assert_eq!(v.token(&t.id).unwrap().clock_checked_at, Some(5));
        let shifted = v.code_view(&t.id, device_now).unwrap();
        assert!(
            shifted.code.ct_eq(&plain.next_code),
            "60 s ahead, the current code is the unshifted next one"
        );
        assert!(shifted.clock_warning.is_some());
    }
}
