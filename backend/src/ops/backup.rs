//! `backup --to FILE`, `restore --from FILE` and `check` for the embedded SQLite database.
//!
//! A backup is `VACUUM INTO` on a reader connection: one read transaction, so verifications
//! and mail go on while it runs (WAL mode) and the copy is the database as of one instant.
//! The copy is written to `FILE.partial` (0600), checked (integrity, schema), fsync'd and
//! renamed, so `FILE` is either a complete, checked backup or absent. It holds the sealed
//! secrets but never the master key, which operators keep apart.
//!
//! A restore checks a staged copy beside the live database before it replaces anything:
//! SQLite's integrity check, that every migration recorded is one this binary knows (and then
//! brings an older backup's schema up to date), and that the configured master keys open every
//! secret in it. Only then, and only if no process holds the live database open, does it move
//! the live database aside (`otp.db.before-restore-<time>`) and rename the copy in.
//!
//! PostgreSQL is backed up with its own tools (`pg_dump`, or base backups with WAL archiving
//! for point-in-time recovery); `check` runs the same schema and key checks against it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use sqlx::{Connection as _, Executor as _};

use crate::config::Config;
use crate::crypto::{KeySource, Keyring};
use crate::store::{ConnectOpts, Store};

const PG_HINT: &str = "the database is PostgreSQL: back it up with pg_dump (or base backups with WAL archiving for point-in-time recovery) and restore with pg_restore, then run `otp-backend check`; see the README's runbook";

/// What a backup wrote.
#[derive(Debug)]
pub struct BackupSummary {
    pub path: PathBuf,
    pub bytes: u64,
    pub tokens: i64,
    pub secrets_by_key: Vec<(String, i64)>,
    pub schema_version: Option<i64>,
    pub took: std::time::Duration,
}

/// What the checks of a database found.
#[derive(Debug, Default)]
pub struct CheckSummary {
    pub schema_version: Option<i64>,
    /// Migrations applied by this check (an older backup brought up to date).
    pub migrated: usize,
    pub tokens: i64,
    /// Secrets opened with the configured keys, per key id.
    pub secrets_by_key: Vec<(String, i64)>,
}

/// What a restore did.
#[derive(Debug)]
pub struct RestoreSummary {
    pub check: CheckSummary,
    pub target: PathBuf,
    /// Where the database that was replaced now is (none when there was none).
    pub previous: Option<PathBuf>,
    pub dry_run: bool,
}

/// The file of a `sqlite:` URL.
///
/// # Errors
/// Not a SQLite URL, or an in-memory database.
pub fn sqlite_path(url: &str) -> anyhow::Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .context(PG_HINT)?;
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        bail!("an in-memory SQLite database cannot be backed up or restored");
    }
    Ok(PathBuf::from(path))
}

/// Refuses a file that is not an SQLite database at once, by its header. Opened, SQLite's
/// "file is not a database" (code 26) is only met on a connection, which the pool retried for
/// its whole wait (30 s, twice) with an error line each time. An empty file passes: SQLite
/// takes it as an empty database, and the schema check says what it is.
fn ensure_sqlite_file(path: &Path) -> anyhow::Result<()> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(16);
    std::fs::File::open(path)
        .and_then(|f| f.take(16).read_to_end(&mut head))
        .with_context(|| format!("cannot read {}", path.display()))?;
    if head.is_empty() || head == b"SQLite format 3\0" {
        return Ok(());
    }
    bail!(
        "{} is not an SQLite database (an otp-backend database or backup is one)",
        path.display()
    )
}

fn sqlite_url(path: &Path, mode: &str) -> anyhow::Result<String> {
    let p = path
        .to_str()
        .with_context(|| format!("{} is not a UTF-8 path", path.display()))?;
    Ok(format!("sqlite://{p}?mode={mode}"))
}

fn small_store(url: &str) -> anyhow::Result<Store> {
    Ok(Store::connect(
        url,
        &ConnectOpts {
            max_connections: 2,
            acquire_timeout: CLI_ACQUIRE_TIMEOUT,
            ..ConnectOpts::default()
        },
    )?)
}

/// How long a backup or restore waits for a connection. The server's half second is for
/// answering requests during an outage; here an operator waits for a command, and opening a
/// file (SQLite reads its header, takes its locks and sets WAL mode on the way) can take more
/// than half a second on a busy machine: the restore once failed "pool timed out" on a loaded
/// CI host with nothing wrong with the file.
const CLI_ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A new empty file only the owner can read: a backup holds password hashes and sealed
/// secrets.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    opts.open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}

fn sync_file(path: &Path) -> anyhow::Result<()> {
    std::fs::OpenOptions::new()
        .read(true)
        .open(path)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("cannot fsync {}", path.display()))
}

fn sync_dir_of(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
    }
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Remove a SQLite file and its `-wal`/`-shm` companions, if there.
fn remove_db_files(path: &Path) {
    for p in [
        path.to_owned(),
        with_suffix(path, "-wal"),
        with_suffix(path, "-shm"),
    ] {
        let _ = std::fs::remove_file(p);
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// `otp-backend backup --to FILE`: an online, consistent copy of the SQLite database.
///
/// # Errors
/// PostgreSQL, no database yet, `to` exists, or the copy failed or does not check out (in
/// which case nothing is left at `to`).
pub async fn backup(cfg: &Config, to: &Path) -> anyhow::Result<BackupSummary> {
    let url = cfg.database_url();
    let source = sqlite_path(&url)?;
    if !source.is_file() {
        bail!(
            "there is no database at {} to back up (check OTP_DATA_DIR / database_url)",
            source.display()
        );
    }
    if to.exists() {
        bail!(
            "{} exists; a backup never overwrites a file (give each backup its own name)",
            to.display()
        );
    }
    let partial = with_suffix(to, ".partial");
    // A `.partial` is only ever an interrupted backup of ours.
    remove_db_files(&partial);
    create_private(&partial)?;
    let started = std::time::Instant::now();
    let result = async {
        let store = small_store(&url)?;
        let partial_str = partial
            .to_str()
            .with_context(|| format!("{} is not a UTF-8 path", partial.display()))?;
        let copied = store.vacuum_into(partial_str).await;
        store.close().await;
        copied.with_context(|| format!("copying {} failed", source.display()))?;
        let took = started.elapsed();
        let copy = small_store(&sqlite_url(&partial, "rw")?)?;
        let inspected = inspect_copy(&copy).await;
        copy.close().await;
        let (tokens, secrets_by_key, schema_version) = inspected?;
        self_contained(&partial).await?;
        sync_file(&partial)?;
        std::fs::rename(&partial, to)
            .with_context(|| format!("cannot rename {} to {}", partial.display(), to.display()))?;
        sync_dir_of(to);
        let bytes = std::fs::metadata(to).map(|m| m.len()).unwrap_or(0);
        Ok::<_, anyhow::Error>(BackupSummary {
            path: to.to_owned(),
            bytes,
            tokens,
            secrets_by_key,
            schema_version,
            took,
        })
    }
    .await;
    if result.is_err() {
        remove_db_files(&partial);
    }
    result
}

/// Fold a copy's write-ahead log into its file and leave it in rollback-journal mode: one
/// self-contained file that can be renamed, copied, or opened from read-only media. (The
/// store's pools close their handles on worker threads, possibly after `close` returns; a
/// connection of our own, waiting on SQLite's busy timeout, is the reliable way.)
async fn self_contained(path: &Path) -> anyhow::Result<()> {
    let mut conn = sqlx::AnyConnection::connect(&sqlite_url(path, "rw")?).await?;
    let res = async {
        conn.execute("PRAGMA busy_timeout = 5000").await?;
        conn.execute("PRAGMA journal_mode = DELETE").await?;
        Ok::<_, sqlx::Error>(())
    }
    .await;
    conn.close().await.ok();
    res.with_context(|| format!("cannot finish {}", path.display()))?;
    if with_suffix(path, "-wal").exists() {
        bail!(
            "{} still has a write-ahead log beside it; try again",
            path.display()
        );
    }
    let _ = std::fs::remove_file(with_suffix(path, "-shm"));
    Ok(())
}

async fn inspect_copy(copy: &Store) -> anyhow::Result<(i64, Vec<(String, i64)>, Option<i64>)> {
    let integrity = copy.integrity_check().await?;
    if integrity != ["ok"] {
        bail!(
            "the copy failed SQLite's integrity check: {}",
            integrity.join("; ")
        );
    }
    let schema = copy
        .applied_migrations()
        .await?
        .iter()
        .map(|m| m.version)
        .max();
    Ok((copy.token_count().await?, copy.keys_in_use().await?, schema))
}

/// The master keys as configured (`OTP_MASTER_KEY`, or the key file), never creating one.
/// `None`: no key configured and no key file.
///
/// # Errors
/// A key that is configured but unusable (malformed, world-readable).
pub fn configured_keys(cfg: &Config) -> anyhow::Result<Option<Keyring>> {
    if let Some(keys) = &cfg.master_key {
        let (ring, _) =
            Keyring::load(KeySource::Env(keys.0.clone())).context("OTP_MASTER_KEY / master_key")?;
        return Ok(Some(ring));
    }
    let path = cfg.master_key_path();
    if !path.exists() {
        return Ok(None);
    }
    let (ring, _) = Keyring::load(KeySource::File {
        path: path.clone(),
        create: false,
    })
    .with_context(|| format!("master key file {}", path.display()))?;
    Ok(Some(ring))
}

/// Check a database: integrity (SQLite), that its migrations are all known to this binary
/// (and, with `migrate`, bring it up to date), and that `keys` open every sealed secret.
///
/// # Errors
/// The first check that fails, worded for an operator.
pub async fn check_database(
    store: &Store,
    keys: Option<&Keyring>,
    key_hint: &str,
    migrate: bool,
) -> anyhow::Result<CheckSummary> {
    let integrity = store
        .integrity_check()
        .await
        .context("it is not a readable otp-backend database")?;
    if integrity != ["ok"] {
        bail!(
            "it fails SQLite's integrity check: {}",
            integrity.join("; ")
        );
    }
    let applied = store.applied_migrations().await?;
    if applied.is_empty() {
        bail!("it holds no otp-backend schema (not an otp-backend database, or an empty one)");
    }
    if let Some(m) = applied.iter().find(|m| !m.known) {
        bail!(
            "it was written by a newer otp-backend: migration {} is unknown to this version ({}); use that version or newer",
            m.version,
            env!("CARGO_PKG_VERSION")
        );
    }
    if let Some(m) = applied.iter().find(|m| !m.success) {
        bail!(
            "migration {} is recorded as failed in it; it cannot be used",
            m.version
        );
    }
    let known = store.known_migrations();
    let pending = known
        .iter()
        .filter(|v| !applied.iter().any(|m| m.version == **v))
        .count();
    let mut summary = CheckSummary::default();
    if pending > 0 {
        if !migrate {
            bail!("{pending} migration(s) are not applied yet: run `otp-backend migrate`");
        }
        store
            .migrate()
            .await
            .context("bringing its schema up to date failed")?;
        summary.migrated = pending;
    }
    summary.schema_version = known.iter().max().copied();
    summary.tokens = store.token_count().await?;

    // Keys: every check value we have a key for must open, and every secret must open.
    let have = keys.map(Keyring::key_ids).unwrap_or_default();
    if let Some(keys) = keys {
        for (key_id, check) in store.key_checks().await? {
            if have.contains(&key_id) && keys.verify_check(&key_id, &check).is_err() {
                bail!(
                    "master key {key_id} ({key_hint}) is not the key that sealed this database's secrets (same id, other bytes)"
                );
            }
        }
    }
    let mut opened: std::collections::BTreeMap<String, i64> = Default::default();
    let mut missing: std::collections::BTreeMap<String, i64> = Default::default();
    let mut failed: std::collections::BTreeMap<String, i64> = Default::default();
    // One sealed secret: counted under its key as opened, failed or missing. `open` opens it
    // with the configured keys; what it opens is dropped (and zeroized) at once: only whether
    // it opens counts.
    let mut tally = |key: &str, open: &dyn Fn(&Keyring) -> bool| {
        let key = key.to_owned();
        match keys {
            Some(k) if have.contains(&key) => {
                if open(k) {
                    *opened.entry(key).or_default() += 1;
                } else {
                    *failed.entry(key).or_default() += 1;
                }
            }
            _ => *missing.entry(key).or_default() += 1,
        }
    };
    let mut after = 0;
    loop {
        let batch = store.sealed_secrets_after(after, 500).await?;
        let Some(last) = batch.last() else { break };
        after = last.id;
        for s in batch {
            tally(&s.sealed.key_id, &|k| k.open(&s.user_id, &s.sealed).is_ok());
        }
    }
    // Staff members' second factors and the OPAQUE server key are sealed under the same keys,
    // and the server does not start without theirs either.
    for (staff_id, sealed) in store.sealed_staff_totps().await? {
        tally(&sealed.key_id, &|k| {
            k.open_staff_totp(staff_id, &sealed).is_ok()
        });
    }
    if let Some(sealed) = store.pake_server_key().await? {
        tally(&sealed.key_id, &|k| {
            k.open_pake(crate::engine::PAKE_SERVER_KEY_LABEL, &sealed)
                .is_ok()
        });
    }
    let describe = |m: &std::collections::BTreeMap<String, i64>| {
        m.iter()
            .map(|(k, n)| format!("{n} under {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !missing.is_empty() {
        let n: i64 = missing.values().sum();
        bail!(
            "{n} secret(s) are sealed under master key(s) that are not configured ({}); {key_hint} does not have them. Put the master key file kept with this backup in place (mode 0600) or set OTP_MASTER_KEY",
            describe(&missing)
        );
    }
    if !failed.is_empty() {
        let n: i64 = failed.values().sum();
        bail!(
            "{n} secret(s) do not open with the configured master keys ({}): wrong key, or a damaged database",
            describe(&failed)
        );
    }
    summary.secrets_by_key = opened.into_iter().collect();
    Ok(summary)
}

fn key_hint(cfg: &Config) -> String {
    if cfg.master_key.is_some() {
        "OTP_MASTER_KEY".to_owned()
    } else {
        format!("the master key file {}", cfg.master_key_path().display())
    }
}

/// `otp-backend check`: the configured database (SQLite or PostgreSQL) against this binary
/// and the configured keys. Changes nothing.
///
/// # Errors
/// Database unreachable or a check failed.
pub async fn check(cfg: &Config) -> anyhow::Result<CheckSummary> {
    existing_database(cfg)?;
    let store = small_store(&cfg.database_url())?;
    let keys = configured_keys(cfg)?;
    let res = check_database(&store, keys.as_ref(), &key_hint(cfg), false).await;
    store.close().await;
    res.with_context(|| format!("database {}", cfg.database_display()))
}

/// Refuses a configured SQLite database that does not exist (or is not SQLite), for the
/// commands that only look: opened, it would be created, with a master key beside it, in a
/// data directory given by mistake. PostgreSQL passes (its server says what it has).
///
/// # Errors
/// No such file, or not an SQLite database.
pub fn existing_database(cfg: &Config) -> anyhow::Result<()> {
    if let Ok(path) = sqlite_path(&cfg.database_url()) {
        if std::fs::metadata(&path).map_or(true, |m| m.len() == 0) {
            bail!(
                "database {} does not exist or is empty (check OTP_DATA_DIR or OTP_DATABASE_URL; `otp-backend migrate` makes a new one in a data directory without a master key, `otp-backend restore` puts a backup there)",
                path.display()
            );
        }
        ensure_sqlite_file(&path)?;
    }
    Ok(())
}

/// `otp-backend restore --from FILE`: check a backup and put it in place of the configured
/// SQLite database.
///
/// # Errors
/// PostgreSQL, an unusable backup, keys that do not open it, or a database in use. In every
/// case the live database is left as it was.
pub async fn restore(cfg: &Config, from: &Path, dry_run: bool) -> anyhow::Result<RestoreSummary> {
    let url = cfg.database_url();
    let target = sqlite_path(&url)?;
    if !from.is_file() {
        bail!("{} is not a file", from.display());
    }
    ensure_sqlite_file(from).context("nothing was replaced")?;
    if let (Ok(a), Ok(b)) = (from.canonicalize(), target.canonicalize()) {
        if a == b {
            bail!("{} is the live database itself", from.display());
        }
    }
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let keys = configured_keys(cfg)?;
    let staged = with_suffix(&target, &format!(".restore-{}", std::process::id()));
    remove_db_files(&staged);
    let created = create_private(&staged)?;
    // The database it replaces (or its directory) says whose the restored one is: a restore run
    // as root, as operators often do, left a root-owned database the service's user could not
    // open. Given through the file just created (`create_new`: never a link someone put there),
    // not by its name, which the data directory's owner could point elsewhere meanwhile.
    if !dry_run {
        if let Err(e) = give_to_owner(&created, &target) {
            drop(created);
            remove_db_files(&staged);
            return Err(e);
        }
    }
    drop(created);
    let checked = async {
        // The bytes only, into the 0600 file made above: `fs::copy` also gave it the backup's
        // mode (a 0644 backup made a 0644 database).
        {
            let mut src = std::fs::File::open(from)
                .with_context(|| format!("cannot read {}", from.display()))?;
            let mut dst = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&staged)
                .with_context(|| format!("cannot write {}", staged.display()))?;
            std::io::copy(&mut src, &mut dst)
                .with_context(|| format!("cannot copy {} beside the database", from.display()))?;
        }
        let store = small_store(&sqlite_url(&staged, "rw")?)?;
        let res = check_database(&store, keys.as_ref(), &key_hint(cfg), true).await;
        store.close().await;
        let summary = res?;
        self_contained(&staged).await?;
        sync_file(&staged)?;
        Ok::<_, anyhow::Error>(summary)
    }
    .await
    .with_context(|| format!("{} was not restored (nothing was replaced)", from.display()));
    let check = match checked {
        Ok(c) if !dry_run => c,
        other => {
            remove_db_files(&staged);
            return other.map(|check| RestoreSummary {
                check,
                target,
                previous: None,
                dry_run,
            });
        }
    };
    match swap_in(&target, &staged).await {
        Ok(previous) => Ok(RestoreSummary {
            check,
            target,
            previous,
            dry_run,
        }),
        Err(e) => {
            remove_db_files(&staged);
            Err(e)
        }
    }
}

/// Give `staged` (the file just created) the owner and group of `target` (the database it
/// replaces), or of its directory when there is none yet. A database that is a symbolic link
/// is refused. Changing a file's owner needs root; as the owner itself nothing changes.
#[cfg(unix)]
fn give_to_owner(staged: &std::fs::File, target: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let reference = match std::fs::symlink_metadata(target) {
        Ok(m) if m.file_type().is_symlink() => bail!(
            "{} is a symbolic link: restore into the directory it points to instead (nothing was replaced)",
            target.display()
        ),
        Ok(_) => target.to_owned(),
        Err(_) => target
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."))
            .to_owned(),
    };
    let want = std::fs::metadata(&reference)
        .with_context(|| format!("cannot read the owner of {}", reference.display()))?;
    let have = staged.metadata()?;
    if (have.uid(), have.gid()) == (want.uid(), want.gid()) {
        return Ok(());
    }
    std::os::unix::fs::fchown(staged, Some(want.uid()), Some(want.gid())).with_context(|| {
        format!(
            "cannot give the restored database to the owner of {} ({}:{}); run the restore as that user or as root (nothing was replaced)",
            reference.display(),
            want.uid(),
            want.gid()
        )
    })
}

#[cfg(not(unix))]
fn give_to_owner(_staged: &std::fs::File, _target: &Path) -> anyhow::Result<()> {
    Ok(())
}

/// Move the live database aside and the staged copy in, if no process has the live one open.
async fn swap_in(target: &Path, staged: &Path) -> anyhow::Result<Option<PathBuf>> {
    let previous = if target.exists() {
        // A running server always holds a connection (its WAL checkpointer); in WAL mode an
        // open connection keeps SQLite's shared lock, so an exclusive lock is proof that none is
        // running. The checkpoint folds the log into the file that is kept aside.
        let mut conn = sqlx::AnyConnection::connect(&sqlite_url(target, "rw")?).await?;
        let locked = async {
            conn.execute("PRAGMA busy_timeout = 2000").await?;
            conn.execute("PRAGMA locking_mode = EXCLUSIVE").await?;
            conn.execute("BEGIN EXCLUSIVE").await?;
            conn.execute("COMMIT").await?;
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await?;
            Ok::<_, sqlx::Error>(())
        }
        .await;
        conn.close().await.ok();
        if locked.is_err() {
            bail!(
                "the database {} is in use: stop every otp-backend process on it before restoring (nothing was replaced)",
                target.display()
            );
        }
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "otp.db".to_owned());
        let aside = target.with_file_name(format!("{name}.before-restore-{}", unix_now()));
        // Kept aside under a second name first, and only then replaced by one rename: at every
        // moment the database's name holds a whole database (moved away first, a crash before
        // the rename left none, and the next start made an empty one).
        if let Err(e) = std::fs::hard_link(target, &aside) {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                bail!(
                    "{} exists already (another restore this second?): nothing was replaced",
                    aside.display()
                );
            }
            // A filesystem without hard links: moved aside, as before (a crash before the
            // rename below leaves no `otp.db`; `serve` then refuses rather than start empty).
            std::fs::rename(target, &aside)
                .with_context(|| format!("cannot move {} aside", target.display()))?;
        }
        // Its write-ahead log was folded into the file above (the TRUNCATE checkpoint under
        // the exclusive lock); what is left of it goes aside too, and the `-shm` index is
        // dropped (whoever opens the file next rebuilds it), so no log of the old database
        // stays beside the new one.
        let wal = with_suffix(target, "-wal");
        if wal.exists() {
            std::fs::rename(&wal, with_suffix(&aside, "-wal"))
                .with_context(|| format!("cannot move {} aside", wal.display()))?;
        }
        let _ = std::fs::remove_file(with_suffix(target, "-shm"));
        Some(aside)
    } else {
        None
    };
    std::fs::rename(staged, target)
        .with_context(|| format!("cannot rename {} to {}", staged.display(), target.display()))?;
    sync_dir_of(target);
    Ok(previous)
}

/// The line a command prints for per-key secret counts.
pub fn describe_keys(by_key: &[(String, i64)]) -> String {
    if by_key.is_empty() {
        return "no sealed secrets".to_owned();
    }
    by_key
        .iter()
        .map(|(k, n)| format!("{n} secret(s) under master key {k}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_paths_from_urls() {
        assert_eq!(
            sqlite_path("sqlite:///var/lib/otp/otp.db?mode=rwc").unwrap(),
            PathBuf::from("/var/lib/otp/otp.db")
        );
        assert_eq!(
            sqlite_path("sqlite:data/otp.db").unwrap(),
            PathBuf::from("data/otp.db")
        );
        assert!(sqlite_path("sqlite::memory:").is_err());
        let pg = sqlite_path("postgres://otp@db/otp")
            .unwrap_err()
            .to_string();
        assert!(pg.contains("pg_dump"), "{pg}");
    }
}
