//! Configuration: a TOML file (optional) with environment overrides, and embedded defaults
//! under `./data` when there is no configuration at all.
//!
//! Secrets in the configuration (database URL, API keys, master key) are held in types that
//! print `[redacted]`, so showing the configuration never shows them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use zeroize::Zeroizing;

pub use protocol::Sensitive;

use crate::domain::Policy;

mod sections;
pub use sections::*;

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: SQLite file `otp.db` in `data_dir`.
    pub database_url: Option<Sensitive<String>>,
    /// Key file; default `master.key` in `data_dir`, created 0600 on first run.
    pub master_key_file: Option<PathBuf>,
    /// Keys given directly (`id:hex`, comma separated); overrides the key file.
    pub master_key: Option<Sensitive<String>>,
    /// Host API keys. When none are configured, a key is generated into
    /// `data_dir/host-api.key` (0600) on first run.
    pub api_keys: Vec<ApiKey>,
    pub service_id: String,
    pub issuer: String,
    pub log_json: bool,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Open client connections at most (`OTP_MAX_CONNECTIONS`); one more is answered 503. Kept
    /// below the process's descriptor limit.
    pub max_connections: usize,
    /// SQLite: the write-ahead log's size, in MiB, past which the checkpointer restarts it
    /// (`OTP_SQLITE_WAL_RESTART_MIB`, 1..=1024, default 128; see
    /// `store::ConnectOpts::wal_restart_mib`).
    pub sqlite_wal_restart_mib: u32,
    pub policy: Policy,
    pub totp: TotpConfig,
    pub verify: VerifyConfig,
    pub argon2: Argon2Config,
    pub app_api: AppApiConfig,
    pub mail: MailConfig,
    pub web: WebConfig,
    pub staff: StaffConfig,
    pub bank: BankConfig,
    /// Transfer limits and when transaction authentication (取引認証) is asked.
    pub transfers: crate::domain::transfer::TransferRules,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            database_url: None,
            master_key_file: None,
            master_key: None,
            api_keys: Vec::new(),
            service_id: "10112231".into(),
            issuer: "OTP Bank".into(),
            log_json: false,
            body_limit: 16 * 1024,
            max_connections: 4096,
            sqlite_wal_restart_mib: crate::store::WAL_RESTART_MIB,
            policy: Policy::default(),
            totp: TotpConfig::default(),
            verify: VerifyConfig::default(),
            argon2: Argon2Config::default(),
            app_api: AppApiConfig::default(),
            mail: MailConfig::default(),
            web: WebConfig::default(),
            staff: StaffConfig::default(),
            bank: BankConfig::default(),
            transfers: crate::domain::transfer::TransferRules::default(),
        }
    }
}

/// Configuration errors, in English, naming the setting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("config file {0}: {1}")]
    Parse(PathBuf, String),
    #[error("environment variable {0}: {1}")]
    Env(&'static str, String),
    #[error("{0}")]
    Invalid(String),
}

/// The one rule for a host API key, configured or in `host-api.key`: a `[A-Za-z0-9._-]+` name
/// and at least 32 characters of key. The message names the key by its name, never the key.
///
/// # Errors
/// What is wrong, in English.
pub fn check_api_key(name: &str, key: &str) -> Result<(), String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err("api key names must be [A-Za-z0-9._-]+".into());
    }
    if key.len() < 32 {
        return Err(format!("api key {name:?} must be at least 32 characters"));
    }
    Ok(())
}

impl Config {
    /// Load from `path` (if given) and apply `OTP_*` environment overrides.
    ///
    /// # Errors
    /// Unreadable or malformed file, malformed overrides, invalid values.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let mut cfg = match path {
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| ConfigError::Read(p.to_owned(), e))?;
                toml::from_str(&text)
                    .map_err(|e| ConfigError::Parse(p.to_owned(), e.message().to_owned()))?
            }
            None => Config::default(),
        };
        cfg.apply_env(|k| std::env::var(k).ok())?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(v) = get("OTP_LISTEN") {
            self.listen = v
                .parse()
                .map_err(|_| ConfigError::Env("OTP_LISTEN", "expected host:port".into()))?;
        }
        if let Some(v) = get("OTP_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = get("OTP_DATABASE_URL") {
            self.database_url = Some(Sensitive(v));
        }
        if let Some(v) = get("OTP_MASTER_KEY_FILE") {
            self.master_key_file = Some(v.into());
        }
        if let Some(v) = get("OTP_MASTER_KEY") {
            self.master_key = Some(Sensitive(v));
        }
        if let Some(v) = get("OTP_API_KEYS") {
            // name:key,name:key
            let mut keys = Vec::new();
            for part in v.split(',').filter(|p| !p.trim().is_empty()) {
                let (name, key) = part.split_once(':').ok_or_else(|| {
                    ConfigError::Env("OTP_API_KEYS", "expected name:key[,name:key]".into())
                })?;
                keys.push(ApiKey {
                    name: name.trim().to_owned(),
                    key: Sensitive(key.trim().to_owned()),
                });
            }
            self.api_keys = keys;
        }
        if let Some(v) = get("OTP_LOG_JSON") {
            self.log_json = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = get("OTP_MAX_CONNECTIONS") {
            self.max_connections = v
                .parse()
                .map_err(|_| ConfigError::Env("OTP_MAX_CONNECTIONS", "expected a number".into()))?;
        }
        if let Some(v) = get("OTP_SQLITE_WAL_RESTART_MIB") {
            self.sqlite_wal_restart_mib = v.parse().map_err(|_| {
                ConfigError::Env("OTP_SQLITE_WAL_RESTART_MIB", "expected a number".into())
            })?;
        }
        if let Some(v) = get("OTP_SERVICE_ID") {
            self.service_id = v;
        }
        if let Some(v) = get("OTP_STAFF_LANGUAGE") {
            self.staff.language = v;
        }
        Ok(())
    }

    /// # Errors
    /// The first invalid setting, named.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.policy.validate().map_err(ConfigError::Invalid)?;
        self.argon2.validate().map_err(ConfigError::Invalid)?;
        self.app_api.validate().map_err(ConfigError::Invalid)?;
        self.transfers.validate().map_err(ConfigError::Invalid)?;
        self.staff.validate().map_err(ConfigError::Invalid)?;
        protocol::ServiceId::parse(&self.service_id)
            .map_err(|_| ConfigError::Invalid("service_id must be 8 digits".into()))?;
        self.totp_params()?;
        for k in &self.api_keys {
            check_api_key(&k.name, &k.key.0).map_err(ConfigError::Invalid)?;
        }
        if self.body_limit < 1024 || self.body_limit > 1024 * 1024 {
            return Err(ConfigError::Invalid(
                "body_limit must be 1 KiB..1 MiB".into(),
            ));
        }
        if self.max_connections == 0 {
            return Err(ConfigError::Invalid(
                "max_connections must be at least 1".into(),
            ));
        }
        if !(1..=1024).contains(&self.sqlite_wal_restart_mib) {
            return Err(ConfigError::Invalid(
                "sqlite_wal_restart_mib must be 1..=1024".into(),
            ));
        }
        self.mail.validate().map_err(ConfigError::Invalid)?;
        self.bank.validate().map_err(ConfigError::Invalid)?;
        if self.web.session_idle_secs < 60 || self.web.link_ttl_days == 0 {
            return Err(ConfigError::Invalid(
                "web.session_idle_secs must be >= 60 and web.link_ttl_days >= 1".into(),
            ));
        }
        if self.web.login_failures_per_client == 0
            || !(60..=86_400).contains(&self.web.login_failures_window_secs)
        {
            return Err(ConfigError::Invalid(
                "web.login_failures_per_client must be >= 1 and web.login_failures_window_secs 60..=86400"
                    .into(),
            ));
        }
        if self.verify.max_batch == 0 || self.verify.max_batch > 4096 {
            return Err(ConfigError::Invalid(
                "verify.max_batch must be 1..=4096".into(),
            ));
        }
        Ok(())
    }

    /// # Errors
    /// An unknown algorithm, or digits/period out of range.
    pub fn totp_params(&self) -> Result<protocol::TotpParams, ConfigError> {
        let alg = self.totp.algorithm.parse().map_err(|_| {
            ConfigError::Invalid("totp.algorithm must be SHA1, SHA256 or SHA512".into())
        })?;
        protocol::TotpParams::new(alg, self.totp.digits, self.totp.period)
            .map_err(|e| ConfigError::Invalid(format!("totp: {e}")))
    }

    /// The database URL in effect (the default SQLite file when none is set).
    pub fn database_url(&self) -> Zeroizing<String> {
        match &self.database_url {
            Some(u) => Zeroizing::new(u.0.clone()),
            None => Zeroizing::new(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("otp.db").display()
            )),
        }
    }

    /// The database URL with any password masked (in the user part, or a `password=`
    /// parameter), for start-up messages.
    pub fn database_display(&self) -> String {
        let url = self.database_url();
        let (base, query) = url.split_once('?').unwrap_or((url.as_ref(), ""));
        let base = match (base.find("://"), base.rfind('@')) {
            (Some(s), Some(at)) if at > s => {
                let creds = &base[s + 3..at];
                let user = creds.split(':').next().unwrap_or("");
                format!("{}{user}:[redacted]{}", &base[..s + 3], &base[at..])
            }
            _ => base.to_string(),
        };
        if query.is_empty() {
            return base;
        }
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}=[redacted]"),
                _ => kv.to_owned(),
            })
            .collect();
        format!("{base}?{}", query.join("&"))
    }

    /// A warning when the database is PostgreSQL on another host and the connection does not
    /// check the server's certificate and name (`sslmode=verify-full`): with `prefer` (the
    /// default) or `require`, whoever sits on the path can pose as the database, and with
    /// `verify-ca` whoever holds any publicly trusted certificate. `None` for SQLite, a Unix
    /// socket, or this machine.
    pub fn database_tls_warning(&self) -> Option<String> {
        use sqlx::postgres::{PgConnectOptions, PgSslMode};
        let url = self.database_url();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return None;
        }
        let opts: PgConnectOptions = url.parse().ok()?;
        let host = opts.get_host().trim_matches(['[', ']']);
        let local = opts.get_socket().is_some()
            || host.starts_with('/')
            || host.eq_ignore_ascii_case("localhost")
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        // Only `verify-full` checks the name: the driver (sqlx with rustls) trusts the public
        // web roots beside `sslrootcert`, so under `verify-ca` any public certificate passes.
        let checked = matches!(opts.get_ssl_mode(), PgSslMode::VerifyFull);
        (!local && !checked).then(|| {
            format!(
                "PostgreSQL at {host} without sslmode=verify-full: add it (and sslrootcert=<the CA's PEM> for a private CA) to the database URL, or anyone on the path can pose as the database"
            )
        })
    }

    /// The public base URL of the customer screens, without a trailing slash.
    pub fn public_url(&self) -> String {
        match &self.web.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.listen),
        }
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }

    pub fn host_key_path(&self) -> PathBuf {
        self.data_dir.join("host-api.key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn defaults_are_valid_and_env_overrides_apply() {
        let mut cfg = Config::default();
        cfg.validate().unwrap();
        let env: HashMap<&str, &str> = HashMap::from([
            ("OTP_LISTEN", "0.0.0.0:9000"),
            ("OTP_DATABASE_URL", "postgres://otp:s3cret@localhost/otp"),
            ("OTP_API_KEYS", "ib:0123456789abcdef0123456789abcdef"),
        ]);
        cfg.apply_env(|k| env.get(k).map(|v| (*v).to_owned()))
            .unwrap();
        assert_eq!(cfg.listen.port(), 9000);
        assert_eq!(cfg.api_keys[0].name, "ib");
        assert_eq!(
            cfg.database_display(),
            "postgres://otp:[redacted]@localhost/otp"
        );
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("0123456789abcdef"),
            "Debug must hide secrets: {shown}"
        );
    }

    /// A lock of no time never held (unlimited guessing of codes and passwords), and an Argon2
    /// cost of gigabytes killed the server at the first login: both refused at start.
    #[test]
    fn locks_that_never_hold_and_ruinous_hash_costs_are_refused() {
        let mut cfg = Config::default();
        cfg.policy.lock_seconds = Some(0);
        assert!(cfg.validate().is_err());
        cfg.policy.lock_seconds = Some(900);
        cfg.validate().unwrap();
        cfg.policy.password_lock_seconds = 0;
        assert!(cfg.validate().is_err());
        cfg.policy.password_lock_seconds = 1800;
        cfg.argon2.memory_kib = 8 * 1024 * 1024;
        assert!(cfg.validate().is_err());
        cfg.argon2 = Argon2Config {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        };
        cfg.validate().unwrap();
        assert!(
            cfg.argon2.below_owasp_minimum(),
            "a toy cost is said at start"
        );
        assert!(!Argon2Config::default().below_owasp_minimum());
        cfg.argon2.iterations = 0;
        assert!(cfg.validate().is_err());
    }

    /// A database on another host whose certificate is not checked is warned about at start;
    /// a password given as a URL parameter is masked like one in the user part.
    #[test]
    fn a_remote_database_without_a_checked_certificate_is_warned_about() {
        let with = |url: &str| Config {
            database_url: Some(Sensitive(url.to_owned())),
            ..Config::default()
        };
        for quiet in [
            "sqlite:///var/lib/otp/otp.db",
            "postgres://otp:pw@localhost/otp",
            "postgres://otp:pw@127.0.0.1:5432/otp",
            "postgres://otp:pw@[::1]/otp",
            "postgres://otp@localhost/otp?host=/var/run/postgresql",
            "postgres://otp:pw@db.bank.internal/otp?sslmode=verify-full&sslrootcert=/etc/otp/ca.pem",
        ] {
            assert_eq!(with(quiet).database_tls_warning(), None, "{quiet}");
        }
        for loud in [
            "postgres://otp:pw@db.bank.internal/otp",
            "postgres://otp:pw@10.0.0.5/otp?sslmode=require",
            "postgresql://otp:pw@db.bank.internal:5433/otp?sslmode=prefer",
            // The name is not checked: any publicly trusted certificate would pass.
            "postgres://otp:pw@10.0.0.5/otp?sslmode=verify-ca&sslrootcert=/etc/otp/ca.pem",
        ] {
            let w = with(loud).database_tls_warning().unwrap_or_default();
            assert!(
                w.contains("sslmode=verify-full") && !w.contains("pw"),
                "{loud}: {w}"
            );
        }
        assert_eq!(
            with("postgres://otp@db/otp?sslmode=require&password=s3cret").database_display(),
            "postgres://otp:[redacted]@db/otp?sslmode=require&password=[redacted]"
        );
    }

    /// A password over plain SMTP only to this machine (before, any host was accepted and the
    /// password crossed the network in clear).
    #[test]
    fn a_mail_password_needs_tls_unless_the_relay_is_local() {
        let mail = |host: &str, tls: SmtpTls| MailConfig {
            smtp_host: Some(host.to_owned()),
            tls,
            username: Some("otp".into()),
            password: Some(Sensitive("pw".into())),
            ..MailConfig::default()
        };
        let err = mail("smtp.bank.example", SmtpTls::None)
            .validate()
            .unwrap_err();
        assert!(err.contains("in clear"), "{err}");
        assert!(!err.contains("pw\""), "the password is not repeated");
        for ok in [
            mail("smtp.bank.example", SmtpTls::Starttls),
            mail("smtp.bank.example", SmtpTls::Tls),
            mail("127.0.0.1", SmtpTls::None),
            mail("localhost", SmtpTls::None),
            mail("[::1]", SmtpTls::None),
        ] {
            ok.validate().unwrap();
        }
    }

    #[test]
    fn bad_settings_are_named() {
        let bad_env: HashMap<&str, &str> = HashMap::from([("OTP_LISTEN", "nonsense")]);
        let err = Config::default()
            .apply_env(|k| bad_env.get(k).map(|v| (*v).to_owned()))
            .unwrap_err();
        assert!(err.to_string().contains("OTP_LISTEN"));
        let short = Config {
            api_keys: vec![ApiKey {
                name: "ib".into(),
                key: Sensitive("short".into()),
            }],
            ..Config::default()
        };
        assert!(short
            .validate()
            .unwrap_err()
            .to_string()
            .contains("32 characters"));
        let no_mark = Config {
            sqlite_wal_restart_mib: 0,
            ..Config::default()
        };
        assert!(no_mark
            .validate()
            .unwrap_err()
            .to_string()
            .contains("sqlite_wal_restart_mib must be 1..=1024"));
        let bad_mark: HashMap<&str, &str> = HashMap::from([("OTP_SQLITE_WAL_RESTART_MIB", "lots")]);
        assert!(Config::default()
            .apply_env(|k| bad_mark.get(k).map(|v| (*v).to_owned()))
            .unwrap_err()
            .to_string()
            .contains("OTP_SQLITE_WAL_RESTART_MIB"));
        let bad: Result<Config, _> = toml::from_str("listen = \"127.0.0.1:1\"\nunknown_key = 1\n");
        assert!(bad.is_err(), "unknown settings are refused, not ignored");
        let parsed: Config =
            toml::from_str("[policy]\nmax_failures = 3\nlock_seconds = 900\n[totp]\ndigits = 8\n")
                .unwrap();
        assert_eq!(parsed.policy.max_failures, 3);
        assert_eq!(
            Config::default().staff.language,
            "ja",
            "staff read Japanese"
        );
        let staff: Config = toml::from_str("[staff]\nlanguage = \"en\"\n").unwrap();
        assert_eq!(staff.staff.language, "en");
        let mut cfg = Config::default();
        cfg.apply_env(|k| (k == "OTP_STAFF_LANGUAGE").then(|| "en".to_owned()))
            .unwrap();
        assert_eq!(cfg.staff.language, "en");
        assert_eq!(parsed.totp_params().unwrap().digits, 8);
    }
}
