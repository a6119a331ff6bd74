//! The soft-token backend: the token lifecycle and verification rules (`domain`), durable
//! storage on SQLite or PostgreSQL (`store`), secrets at rest (`crypto`), the engine every
//! transport calls (`engine`), and the HTTP transports (`web`).
//!
//! Depends on `protocol` for the TOTP contract; must not depend on the app or the Tauri shell.

pub mod config;
pub mod crypto;
pub mod domain;
pub mod engine;
pub mod mail;
pub mod metrics;
pub mod ops;
pub mod store;
pub mod web;

use std::sync::Arc;

use anyhow::Context as _;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::config::Config;
use crate::crypto::{KeySource, Keyring, PasswordHasher};
use crate::engine::{Clock, Engine, EngineConfig, SystemClock};
use crate::store::{ConnectOpts, DbKind, Store};
use crate::web::{AppState, HostKey};

/// What start-up found and made, for the start-up message.
#[derive(Debug, Default)]
pub struct Startup {
    pub created_master_key: bool,
    pub created_host_key: bool,
}

/// The data directory holds the database (activation-password hashes, CSRF tokens, download
/// links), the key files and the outbox: it is created 0700, and an existing one that group or
/// others can read is refused, as a readable `master.key` is. The default SQLite file is
/// created 0600 before SQLite opens it (its `-wal` and `-shm` files copy its mode).
///
/// # Errors
/// The directory cannot be created, or is readable by group or others.
pub fn prepare_data_dir(cfg: &Config) -> anyhow::Result<()> {
    let dir = &cfg.data_dir;
    if !dir.exists() {
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        b.create(dir)
            .with_context(|| format!("cannot create data directory {}", dir.display()))?;
    }
    refuse_if_shared(dir, "data directory", "chmod 700")?;
    if cfg.database_url.is_none() {
        let db = dir.join("otp.db");
        if !db.exists() {
            // A master key and no database: not a first start, but a data volume that did not
            // mount, or a database moved away. Made anew, the database would be empty and the
            // server would serve no one's tokens, saying nothing.
            // Only the data directory's own key file (one kept elsewhere, a vault's mount,
            // is there before any database).
            if cfg.master_key.is_none()
                && cfg.master_key_file.is_none()
                && cfg.master_key_path().exists()
            {
                anyhow::bail!(
                    "the data directory {} has a master key but no database (otp.db): is the data volume mounted? Restore the database (otp-backend restore --from FILE), or, to start afresh, move {} away first",
                    dir.display(),
                    cfg.master_key_path().display()
                );
            }
            private_file(&db)
                .with_context(|| format!("cannot create database file {}", db.display()))?;
        }
    }
    Ok(())
}

/// Refuse `path` when group or others may read (or write) it.
fn refuse_if_shared(path: &std::path::Path, what: &str, fix: &str) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "{what} {} is open to group or others (mode {mode:o}); {fix} it (the server will not start)",
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (path, what, fix);
    Ok(())
}

/// Create a file that only this user can read (0600).
fn private_file(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
}

/// Connect to the database and run migrations.
///
/// # Errors
/// A data directory open to others, unsupported URL, database unreachable, failed migration.
pub async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    prepare_data_dir(cfg)?;
    let store = Store::connect(
        &cfg.database_url(),
        &ConnectOpts {
            wal_restart_mib: cfg.sqlite_wal_restart_mib,
            ..ConnectOpts::default()
        },
    )?;
    // The pools answer "unavailable" after half a second (requests must not queue behind a
    // database that is down), but opening the first connection of a busy server, TLS and
    // password exchange included, can take longer: start-up waits for a first answer for a
    // while, and the connection it opened stays in the pool for what follows.
    let patience = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while let Err(e) = store.ping().await {
        if std::time::Instant::now() >= patience {
            return Err(e)
                .with_context(|| format!("cannot reach database {}", cfg.database_display()));
        }
        tracing::debug!(error = %e, "database not reachable yet at start-up; retrying");
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate database {}", cfg.database_display()))?;
    Ok(store)
}

/// Load the master keys. The key file is created (0600) only for a database that has never
/// sealed anything: a missing key for a database with secrets is an error, not a new key.
///
/// # Errors
/// Missing, unreadable, world-readable or malformed keys.
pub async fn load_keys(cfg: &Config, store: &Store) -> anyhow::Result<(Keyring, bool)> {
    if let Some(keys) = &cfg.master_key {
        let (ring, _) =
            Keyring::load(KeySource::Env(keys.0.clone())).context("OTP_MASTER_KEY / master_key")?;
        return Ok((ring, false));
    }
    let fresh = store.key_checks().await?.is_empty();
    let path = cfg.master_key_path();
    Keyring::load(KeySource::File { path: path.clone(), create: fresh }).with_context(|| {
        format!(
            "master key file {} cannot be used; the database holds secrets sealed under it, so the server will not start without it (restore the file, or set OTP_MASTER_KEY)",
            path.display()
        )
    })
}

/// The host API keys: from the configuration, or else a generated key in `data_dir` (0600;
/// refused, as `master.key` is, when group or others can read it).
///
/// # Errors
/// Unreadable, shared or malformed key file.
pub fn load_host_keys(cfg: &Config) -> anyhow::Result<(Vec<HostKey>, bool)> {
    if !cfg.api_keys.is_empty() {
        return Ok((
            cfg.api_keys
                .iter()
                .map(|k| HostKey::new(&k.name, &k.key.0))
                .collect(),
            false,
        ));
    }
    let path = cfg.host_key_path();
    let mut created = false;
    if !path.exists() {
        let mut raw = Zeroizing::new([0u8; 24]);
        rand::rngs::OsRng.fill_bytes(raw.as_mut());
        let line = Zeroizing::new(format!("default:{}\n", hex::encode(raw.as_ref())));
        std::io::Write::write_all(&mut private_file(&path)?, line.as_bytes())?;
        created = true;
    }
    refuse_if_shared(&path, "host API key file", "chmod 600")?;
    let text = Zeroizing::new(
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    );
    let mut keys = Vec::new();
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, key) = l
            .split_once(':')
            .with_context(|| format!("{}: expected name:key lines", path.display()))?;
        crate::config::check_api_key(name, key)
            .map_err(|why| anyhow::anyhow!("{}: {why}", path.display()))?;
        keys.push(HostKey::new(name, key));
    }
    Ok((keys, created))
}

/// Everything `serve` needs, built from configuration.
///
/// # Errors
/// Any start-up refusal: configuration, database, keys (including keys that do not open the
/// database's secrets).
pub async fn build(cfg: &Config, clock: Box<dyn Clock>) -> anyhow::Result<(AppState, Startup)> {
    let store = open_store(cfg).await?;
    let (keys, created_master_key) = load_keys(cfg, &store).await?;
    let (host_keys, created_host_key) = load_host_keys(cfg)?;
    let hasher = PasswordHasher::new(
        cfg.argon2.memory_kib,
        cfg.argon2.iterations,
        cfg.argon2.parallelism,
    )?;
    let workers = match (cfg.verify.workers, store.kind()) {
        (0, DbKind::Sqlite) => 1,
        // Two batches in flight: measured against four at stop 23 (README, Figures).
        (0, DbKind::Postgres) => 2,
        (n, _) => n,
    };
    let engine = Engine::start(
        store,
        keys,
        hasher,
        clock,
        EngineConfig {
            policy: cfg.policy.clone(),
            params: cfg.totp_params()?,
            service_id: protocol::ServiceId::parse(&cfg.service_id)?,
            max_batch: cfg.verify.max_batch,
            verify_workers: workers,
            four_eyes: domain::staff::FourEyes(cfg.staff.four_eyes),
            bank: cfg.bank.clone(),
            transfers: cfg.transfers.clone(),
            v1_setup: cfg.app_api.allow_v1_setup,
            links: mail::LinkSettings {
                public_url: cfg.public_url(),
                link_ttl_days: cfg.web.link_ttl_days,
            },
        },
        metrics::Metrics::default(),
    );
    engine.check_keys().await?;
    Ok((
        AppState::new(web::Shared {
            engine,
            host_keys: Arc::new(host_keys),
            body_limit: cfg.body_limit,
            app_api: Arc::new(web::app_api::AppApi::new(&cfg.issuer, &cfg.app_api)),
            site: Arc::new(web::pages::Site::new(
                &cfg.web,
                &cfg.bank,
                &cfg.public_url(),
            )?),
            staff: Arc::new(web::staff::Console::new(&cfg.staff, &cfg.bank)?),
        }),
        Startup {
            created_master_key,
            created_host_key,
        },
    ))
}

/// [`build`] with the system clock.
///
/// # Errors
/// As [`build`].
pub async fn build_default(cfg: &Config) -> anyhow::Result<(AppState, Startup)> {
    build(cfg, Box::new(SystemClock)).await
}
