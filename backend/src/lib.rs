//! The soft-token backend: the token lifecycle and verification rules (`domain`), durable
//! storage on SQLite or PostgreSQL (`store`), secrets at rest (`crypto`), the engine every
//! transport calls (`engine`), and the HTTP transports (`web`).
//!
//! Depends on `protocol` for the TOTP contract; must not depend on the app or the Tauri shell.

pub mod banking;
pub mod config;
pub mod crypto;
pub mod domain;
pub mod engine;
pub mod mail;
pub mod metrics;
pub mod ops;
pub mod staff_ops;
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

/// Connect to the database and run migrations.
///
/// # Errors
/// Unsupported URL, database unreachable, failed migration.
pub async fn open_store(cfg: &Config) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("cannot create data directory {}", cfg.data_dir.display()))?;
    let store = Store::connect(&cfg.database_url(), &ConnectOpts::default())?;
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

/// The host API keys: from the configuration, or else a generated key in `data_dir`.
///
/// # Errors
/// Unreadable or malformed key file.
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
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        std::io::Write::write_all(&mut opts.open(&path)?, line.as_bytes())?;
        created = true;
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?,
    );
    let mut keys = Vec::new();
    for l in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (name, key) = l
            .split_once(':')
            .with_context(|| format!("{}: expected name:key lines", path.display()))?;
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
        (0, DbKind::Postgres) => 4,
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
            links: mail::LinkSettings {
                public_url: cfg.public_url(),
                link_ttl_days: cfg.web.link_ttl_days,
            },
        },
        metrics::Metrics::default(),
    );
    engine.check_keys().await?;
    Ok((
        AppState {
            engine,
            host_keys: Arc::new(host_keys),
            body_limit: cfg.body_limit,
            app_api: Arc::new(web::app_api::AppApi::new(&cfg.issuer, &cfg.app_api)),
            site: Arc::new(web::pages::Site::new(&cfg.web, &cfg.public_url())?),
            staff: Arc::new(web::staff::Console::new(&cfg.staff)?),
        },
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
