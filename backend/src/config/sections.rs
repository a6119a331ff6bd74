//! The configuration's sections (`[totp]`, `[verify]`, `[argon2]`, `[web]`, `[staff]`,
//! `[bank]`, `[app_api]`, `[mail]`) with their defaults and checks; `Config` in `mod.rs` holds
//! them.

use serde::Deserialize;

use lettre::message::Mailbox;
use protocol::Sensitive;

/// A bearer API key for the bank's host.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    /// Shown in audit events as `host:<name>`.
    pub name: String,
    pub key: Sensitive<String>,
}

/// TOTP profile for new tokens.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TotpConfig {
    pub algorithm: String,
    pub digits: u8,
    pub period: u32,
}

impl Default for TotpConfig {
    fn default() -> Self {
        TotpConfig {
            algorithm: "SHA1".into(),
            digits: 6,
            period: 60,
        }
    }
}

/// Group-commit tuning for verifications.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifyConfig {
    pub max_batch: usize,
    /// Concurrent batch transactions; `0`: 1 on SQLite, 2 on PostgreSQL.
    pub workers: usize,
}

impl Default for VerifyConfig {
    fn default() -> Self {
        VerifyConfig {
            max_batch: 256,
            workers: 0,
        }
    }
}

/// Password hashing cost (Argon2id). Defaults are OWASP's recommendation.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Argon2Config {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Argon2Config {
    /// # Errors
    /// A cost no hasher can run, or one that would exhaust memory (over 1 GiB a hash, times
    /// one hash per core).
    pub fn validate(&self) -> Result<(), String> {
        if self.iterations == 0
            || self.parallelism == 0
            || self.memory_kib < self.parallelism.saturating_mul(8)
        {
            return Err(
                "argon2: iterations and parallelism >= 1, memory_kib >= 8 x parallelism".into(),
            );
        }
        if self.memory_kib > 1_048_576 || self.iterations > 20 || self.parallelism > 16 {
            return Err(
                "argon2: at most memory_kib 1048576 (1 GiB), iterations 20, parallelism 16".into(),
            );
        }
        Ok(())
    }

    /// Below every one of OWASP's equivalent minimums for Argon2id (46 MiB with 1 pass, 19 MiB
    /// with 2, 12 MiB with 3, 9 MiB with 4, 7 MiB with 5): said at start, not refused (the
    /// test suites hash at a toy cost on purpose).
    pub fn below_owasp_minimum(&self) -> bool {
        const MINIMUMS: [(u32, u32); 5] = [
            (47_104, 1),
            (19_456, 2),
            (12_288, 3),
            (9_216, 4),
            (7_168, 5),
        ];
        !MINIMUMS
            .iter()
            .any(|&(m, t)| self.memory_kib >= m && self.iterations >= t)
    }
}

impl Default for Argon2Config {
    fn default() -> Self {
        Argon2Config {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

/// `[web]`: the customer screens.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// The base URL customers reach the screens at (mailed links point here); default
    /// `http://<listen>`. An `https://` URL makes the session cookie `Secure`.
    pub public_url: Option<String>,
    /// A session idle this long ends (seconds).
    pub session_idle_secs: u64,
    /// Days a mailed download link stays valid.
    pub link_ttl_days: u32,
    pub app_store_url: String,
    pub play_store_url: String,
    /// A customer session ends this long after login however active it is (seconds).
    pub session_max_secs: u64,
    /// Peers (load balancers, reverse proxies) whose forwarding header names the client, as
    /// address blocks; empty: the socket's peer is the client (see `web::client_ip`).
    pub trusted_proxies: Vec<crate::web::client_ip::Cidr>,
    /// The header the trusted proxies write: `x-forwarded-for` or `forwarded`.
    pub client_ip_header: crate::web::client_ip::ForwardedHeader,
    /// `/metrics` answers only to `Authorization: Bearer <metrics_key>` (32+ characters);
    /// without a key it is off (404).
    pub metrics_key: Option<Sensitive<String>>,
    /// Failed customer logins (a wrong password, an unknown login ID, a locked account) one
    /// client (an IPv4 address, an IPv6 /64) may make in any `login_failures_window_secs`
    /// (attempts still running count as possible failures until they end); beyond, its logins
    /// wait, unchecked, until the oldest failure leaves the window. Against one address spraying a
    /// common password across many login IDs, each below its account's own lock. Generous, as
    /// many customers may share one address (a carrier's NAT).
    pub login_failures_per_client: u32,
    pub login_failures_window_secs: u64,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig {
            public_url: None,
            session_idle_secs: 600,
            link_ttl_days: 7,
            app_store_url: "https://apps.apple.com/jp/app/id0000000000".into(),
            play_store_url: "https://play.google.com/store/apps/details?id=jp.example.otpbank"
                .into(),
            session_max_secs: 12 * 3600,
            trusted_proxies: Vec::new(),
            client_ip_header: crate::web::client_ip::ForwardedHeader::default(),
            metrics_key: None,
            login_failures_per_client: 100,
            login_failures_window_secs: 600,
        }
    }
}

/// `[staff]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaffConfig {
    /// A staff session idle this long ends (seconds); shorter than the customers'.
    pub session_idle_secs: u64,
    /// A revoke or reprovision takes effect only when a second supervisor approves it.
    pub four_eyes: bool,
    /// Audit events per page of the customer page's timeline.
    pub audit_page_size: i64,
    /// A staff session ends this long after login however active it is (seconds): a shift.
    pub session_max_secs: u64,
    /// The console's language until a member switches (`ja` or `en`; `OTP_STAFF_LANGUAGE`).
    pub language: String,
}

impl Default for StaffConfig {
    fn default() -> Self {
        StaffConfig {
            session_idle_secs: 300,
            four_eyes: false,
            audit_page_size: 25,
            session_max_secs: 8 * 3600,
            language: "ja".into(),
        }
    }
}

impl StaffConfig {
    /// # Errors
    /// The first setting out of range, named.
    pub fn validate(&self) -> Result<(), String> {
        if !(60..=3600).contains(&self.session_idle_secs) {
            return Err("staff.session_idle_secs must be 60..=3600".into());
        }
        if self.session_max_secs < self.session_idle_secs || self.session_max_secs > 86_400 {
            return Err("staff.session_max_secs must be session_idle_secs..=86400".into());
        }
        if !(5..=500).contains(&self.audit_page_size) {
            return Err("staff.audit_page_size must be 5..=500".into());
        }
        if !matches!(self.language.as_str(), "ja" | "en") {
            return Err(format!(
                "staff.language (OTP_STAFF_LANGUAGE) must be \"ja\" or \"en\", not {:?}",
                self.language
            ));
        }
        Ok(())
    }
}

/// What kind of institution the bank is: it decides how its screens and mails refer to
/// it (the manual's 当組合 is a credit union's word; a bank says 当行, a shinkin bank 当金庫).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BankKind {
    #[default]
    Bank,
    CreditUnion,
    Shinkin,
}

/// `[bank]`: the institution's name, how it calls itself and how customers reach it. One
/// setting, used by every screen and every mail (`{bank}`, `{we}`, `{contact}` in their
/// words; see [`BankConfig::fill`]).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct BankConfig {
    /// The name in Japanese, as the header and the mails show it.
    pub name: String,
    /// The name in English.
    pub name_en: String,
    pub kind: BankKind,
    /// Where a customer calls for help (a locked token, a mail they did not expect), in
    /// Japanese: number and hours.
    pub contact: String,
    /// The same in English.
    pub contact_en: String,
}

impl Default for BankConfig {
    fn default() -> Self {
        BankConfig {
            name: "OTPバンク".into(),
            name_en: "OTP Bank".into(),
            kind: BankKind::Bank,
            contact:
                "OTPバンク インターネットバンキング サポートデスク 0120-000-000（平日 9:00～17:00）"
                    .into(),
            contact_en:
                "OTP Bank internet banking support desk, 0120-000-000 (weekdays 9:00-17:00 JST)"
                    .into(),
        }
    }
}

impl BankConfig {
    /// # Errors
    /// An empty or over-long name or contact line, or one with control characters.
    pub fn validate(&self) -> Result<(), String> {
        for (key, v, max) in [
            ("bank.name", &self.name, 40),
            ("bank.name_en", &self.name_en, 80),
            ("bank.contact", &self.contact, 200),
            ("bank.contact_en", &self.contact_en, 200),
        ] {
            let n = v.trim().chars().count();
            if n == 0 || n > max || v.chars().any(char::is_control) {
                return Err(format!("{key} must be 1-{max} characters on one line"));
            }
        }
        Ok(())
    }

    /// How the institution refers to itself: 当組合 / 当行 / 当金庫 (`en`: "us").
    pub fn we(&self, en: bool) -> &'static str {
        match (self.kind, en) {
            (_, true) => "us",
            (BankKind::Bank, false) => "当行",
            (BankKind::CreditUnion, false) => "当組合",
            (BankKind::Shinkin, false) => "当金庫",
        }
    }

    /// `text` with `{bank}`, `{we}` and `{contact}` replaced by this institution's words, in
    /// Japanese or (`en`) English.
    pub fn fill(&self, text: &str, en: bool) -> String {
        if !text.contains('{') {
            return text.to_owned();
        }
        let (name, contact) = if en {
            (&self.name_en, &self.contact_en)
        } else {
            (&self.name, &self.contact)
        };
        text.replace("{bank}", name)
            .replace("{we}", self.we(en))
            .replace("{contact}", contact)
    }
}

/// `[app_api]`: rate limits of the app API.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct AppApiConfig {
    /// Setup attempts per client (IPv4 address or IPv6 /64) in any window.
    pub per_ip: u32,
    /// Setup attempts per user ID in any window.
    pub per_user_id: u32,
    /// Window length in seconds (the window slides: it ends now).
    pub window_secs: u64,
    /// Most clients, and most user IDs, tracked at once; beyond it the least recently seen
    /// are forgotten, so memory stays bounded under a flood.
    pub max_keys: usize,
    /// Serve provisioning v1 (`POST /app/v1/setup`: the activation password and the secret
    /// inside TLS only). Off by default: apps use v2 (`/app/v2/setup/start` and `/finish`,
    /// issue 18), and v1 answers 410 `SETUP_V1_DISABLED`. Turn it on only for apps too old to
    /// speak v2, for as short a time as possible. Only while it is on does an issuance keep
    /// the v1 Argon2 hash of its activation password (a thief of the database alone could
    /// guess it offline); a server started with it off drops the hashes left from before.
    pub allow_v1_setup: bool,
}

impl Default for AppApiConfig {
    fn default() -> Self {
        AppApiConfig {
            per_ip: 10,
            per_user_id: 5,
            window_secs: 60,
            max_keys: 100_000,
            allow_v1_setup: false,
        }
    }
}

impl AppApiConfig {
    /// # Errors
    /// A zero limit or window, or a window longer than a day.
    pub fn validate(&self) -> Result<(), String> {
        if self.per_ip == 0 || self.per_user_id == 0 || self.max_keys == 0 {
            return Err("app_api.per_ip, per_user_id and max_keys must be at least 1".into());
        }
        if self.per_ip > 1000 || self.per_user_id > 1000 {
            return Err("app_api.per_ip and per_user_id must be at most 1000".into());
        }
        if !(1..=86_400).contains(&self.window_secs) {
            return Err("app_api.window_secs must be 1..=86400".into());
        }
        Ok(())
    }
}

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on the same host or network only).
    None,
    /// STARTTLS upgrade (submission, port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// `[mail]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MailConfig {
    /// The sender, e.g. `OTP Bank <noreply@bank.example>`.
    pub from: String,
    /// SMTP server; unset: mails are written as `.eml` files to `data_dir/outbox`.
    pub smtp_host: Option<String>,
    pub smtp_port: Option<u16>,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Sensitive<String>>,
    /// First retry delay; doubles per attempt up to `retry_max_secs`.
    pub retry_base_secs: u64,
    pub retry_max_secs: u64,
    /// How often the worker looks at the outbox, in milliseconds.
    pub poll_ms: u64,
    /// The longest one mail's send may take (connection, greeting, TLS, every command and the
    /// data), in seconds; then the attempt fails and is retried later. A server that accepts
    /// and then says nothing must not stop the worker. Below the claim on a mail (120 s), so
    /// no other instance takes a mail still being sent.
    pub send_timeout_secs: u64,
    /// Days a sent mail's row is kept (address, kind, user ID, when; its body goes when it is
    /// sent), for support to see what was sent; then it is forgotten.
    pub keep_sent_days: u32,
    /// Hours a mail is retried after its first failed send; then the worker gives up on it (as
    /// a mail server gives up on a message after days of failures), and the staff console
    /// shows it. A mail server that refuses one address for good (550 "no such user") left
    /// that mail retried for ever, and the "outbox stuck" alert on.
    pub give_up_after_hours: u32,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig {
            from: "OTP Bank <noreply@bank.example>".into(),
            smtp_host: None,
            smtp_port: None,
            tls: SmtpTls::default(),
            username: None,
            password: None,
            retry_base_secs: 5,
            retry_max_secs: 900,
            poll_ms: 1000,
            send_timeout_secs: 60,
            keep_sent_days: 90,
            give_up_after_hours: 120,
        }
    }
}

impl MailConfig {
    /// # Errors
    /// A sender that is not a mailbox, or a retry policy that is zero.
    pub fn validate(&self) -> Result<(), String> {
        self.from
            .parse::<Mailbox>()
            .map_err(|_| "mail.from must be an address like `Bank <noreply@bank.example>`")?;
        if self.retry_base_secs == 0 || self.retry_max_secs < self.retry_base_secs {
            return Err("mail.retry_base_secs must be >= 1 and <= mail.retry_max_secs".into());
        }
        if self.poll_ms == 0 {
            return Err("mail.poll_ms must be >= 1".into());
        }
        if self.keep_sent_days == 0 {
            return Err("mail.keep_sent_days must be >= 1".into());
        }
        if !(1..=2160).contains(&self.give_up_after_hours) {
            return Err("mail.give_up_after_hours must be 1..=2160 (90 days)".into());
        }
        if !(1..=90).contains(&self.send_timeout_secs) {
            return Err("mail.send_timeout_secs must be 1..=90 (below the 120 s claim)".into());
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("mail.password needs mail.username".into());
        }
        // A password over plain SMTP crosses the network readable: only to this machine.
        let loopback = self.smtp_host.as_deref().is_some_and(|h| {
            h.eq_ignore_ascii_case("localhost")
                || h.trim_matches(['[', ']'])
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        });
        if self.password.is_some()
            && self.smtp_host.is_some()
            && self.tls == SmtpTls::None
            && !loopback
        {
            return Err(
                "mail.password with mail.tls = \"none\" would send it in clear: use starttls or tls (plain SMTP with a password only to localhost)"
                    .into(),
            );
        }
        Ok(())
    }
}
