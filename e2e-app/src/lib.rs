//! Harness for the desktop app's end-to-end journey (`tests/journey.rs`): a real backend on
//! loopback (the `otp-backend` binary), its bank screens driven over HTTP as a browser would
//! (cookies, CSRF fields, redirects), the mailed download link read from the `.eml` outbox, an
//! Xvfb display, and the app itself started by tauri-driver over Debian's WebKitWebDriver.
//!
//! It depends on the app core only to read the OS keystore the way the app does (and to write a
//! pin as the app reads it), and on no backend code: the backend is a process, as in
//! production, optionally behind a TLS proxy ([`TlsProxy`]) as behind a bank's load balancer.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub use test_support::{free_port, mail_body_text, Browser, Page};
use test_support::{mails_in_folder, Log, OnDrop, ServerProcess};

/// The workspace's `target/` directory (or `CARGO_TARGET_DIR`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Sends SIGTERM (tauri-driver must get TERM, not KILL, so it stops WebKitWebDriver too).
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

async fn wait_for_port(port: u16, what: &str, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{what} did not listen on port {port} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Fields 3 and on of `/proc/<pid>/stat` (after the command name, which is in parentheses and
/// may hold spaces).
fn stat_fields(pid: &str) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(") ").map(|(_, r)| r)?;
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// The newest running process of this executable: its pid and start time (clock ticks after
/// boot, field 22 of `/proc/<pid>/stat`).
fn newest_process(exe: &Path) -> Result<(String, u64)> {
    let exe = std::fs::canonicalize(exe)?;
    let mut newest: Option<(String, u64)> = None;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(target) = std::fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        if target != exe {
            continue;
        }
        let pid = entry.file_name().to_string_lossy().into_owned();
        let Some(ticks) = stat_fields(&pid).and_then(|f| f.get(19)?.parse::<u64>().ok()) else {
            continue;
        };
        if newest.as_ref().is_none_or(|(_, n)| ticks > *n) {
            newest = Some((pid, ticks));
        }
    }
    newest.ok_or_else(|| anyhow!("{} is not running", exe.display()))
}

/// When the newest running process of this executable started, in Unix milliseconds (from
/// `/proc/<pid>/stat` and `/proc/uptime`; 10 ms resolution).
///
/// # Errors
/// No such process, or `/proc` unreadable.
pub fn process_start_epoch_ms(exe: &Path) -> Result<f64> {
    let (_, ticks) = newest_process(exe)?;
    // Boot time from the uptime (10 ms precision; `btime` in /proc/stat is whole seconds).
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")?
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow!("bad /proc/uptime"))?;
    let now_ms = app::codes::device_now_ms() as f64;
    let boot_ms = now_ms - uptime * 1000.0;
    // USER_HZ is 100 on Linux for /proc (CLK_TCK).
    Ok(boot_ms + ticks as f64 * 10.0)
}

/// The environment WebKitGTK's web process of the newest running `exe` started with (what the
/// app passed on to it), as `NAME=value` entries.
///
/// # Errors
/// The app is not running, or has no web process.
pub fn web_process_environment(exe: &Path) -> Result<Vec<String>> {
    let (app_pid, _) = newest_process(exe)?;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let pid = entry.file_name().to_string_lossy().into_owned();
        let Some(fields) = stat_fields(&pid) else {
            continue;
        };
        // The parent is field 4; the web process is the app's own child.
        if fields.get(1) != Some(&app_pid) {
            continue;
        }
        let is_web_process = std::fs::read_link(entry.path().join("exe"))
            .is_ok_and(|t| t.file_name().is_some_and(|n| n == "WebKitWebProcess"));
        if is_web_process {
            let environ = std::fs::read(entry.path().join("environ"))?;
            return Ok(environ
                .split(|b| *b == 0)
                .filter(|v| !v.is_empty())
                .map(|v| String::from_utf8_lossy(v).into_owned())
                .collect());
        }
    }
    bail!("the app (pid {app_pid}) has no WebKitWebProcess child")
}

// --- display --------------------------------------------------------------------------------------

/// An Xvfb server of our own (phone-sized screen), so the test needs no desktop.
pub struct Xvfb {
    child: Child,
    /// e.g. `:7`.
    pub display: String,
}

impl Xvfb {
    /// Starts `Xvfb -displayfd` and waits for it to report its display number.
    ///
    /// # Errors
    /// Xvfb missing or not starting.
    pub fn start() -> Result<Xvfb> {
        let mut child = Command::new("Xvfb")
            .args([
                "-displayfd",
                "1",
                "-screen",
                "0",
                "390x844x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting Xvfb (apt-get install xvfb)")?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| anyhow!("no Xvfb stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let n: u32 = line
            .trim()
            .parse()
            .context("Xvfb did not report a display")?;
        Ok(Xvfb {
            child,
            display: format!(":{n}"),
        })
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

// --- the backend ----------------------------------------------------------------------------------

/// A customer the journey logs in as.
pub struct Customer {
    /// Login ID.
    pub login_id: &'static str,
    /// Login password.
    pub password: &'static str,
    /// Confirmation (transaction) password.
    pub confirmation: &'static str,
}

/// `otp-backend serve` on a free loopback port, over SQLite in a temporary directory.
pub struct Backend {
    /// Stopped gracefully (SIGTERM) when the backend is dropped.
    _server: ServerProcess,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// Its data directory (database, keys, `outbox/`).
    pub data_dir: PathBuf,
}

impl Backend {
    fn bin() -> PathBuf {
        std::env::var_os("OTP_BACKEND_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| target_dir().join("debug/otp-backend"))
    }

    fn command(data_dir: &Path, listen: &str) -> Command {
        let mut cmd = Command::new(Backend::bin());
        cmd.env("OTP_DATA_DIR", data_dir)
            .env("OTP_LISTEN", listen)
            .env("OTP_LOG", "warn")
            .env_remove("OTP_CONFIG")
            .env_remove("OTP_DATABASE_URL");
        cmd
    }

    /// Creates the customer with the CLI (passwords on stdin), then serves.
    ///
    /// # Errors
    /// The binary missing (build it: `cargo build -p backend`), or not coming up.
    pub async fn start(data_dir: &Path, customer: &Customer) -> Result<Backend> {
        Backend::start_with(data_dir, customer, None).await
    }

    /// As [`Backend::start`], with the backend's request log (its production log at `info`
    /// plus tower-http's line per request: method and matched route, never a body) written to
    /// [`Backend::log_path`] instead of the test's standard error.
    ///
    /// # Errors
    /// As [`Backend::start`].
    pub async fn start_logging_requests(data_dir: &Path, customer: &Customer) -> Result<Backend> {
        Backend::start_with(data_dir, customer, Some(Backend::log_path_in(data_dir))).await
    }

    /// `<data dir>.log`: beside the data directory, which the backend wants to itself (0700).
    fn log_path_in(data_dir: &Path) -> PathBuf {
        let mut path = data_dir.as_os_str().to_owned();
        path.push(".log");
        PathBuf::from(path)
    }

    /// Where [`Backend::start_logging_requests`] writes the backend's log.
    pub fn log_path(&self) -> PathBuf {
        Backend::log_path_in(&self.data_dir)
    }

    /// The requests the backend has logged so far (`start_logging_requests` only), one
    /// `request{method=… route=…}` per request the server received, in order.
    ///
    /// # Errors
    /// The log cannot be read.
    pub fn requests(&self) -> Result<Vec<String>> {
        let log = std::fs::read_to_string(self.log_path())?;
        Ok(log
            .lines()
            .filter(|l| l.contains("started processing request"))
            .filter_map(|l| {
                let start = l.find("request{")?;
                let end = start + l[start..].find('}')?;
                // Field values as tracing prints them, quoted or not: without the quotes.
                Some(l.get(start..=end)?.replace('"', ""))
            })
            .collect())
    }

    async fn start_with(
        data_dir: &Path,
        customer: &Customer,
        log: Option<PathBuf>,
    ) -> Result<Backend> {
        let port = free_port();
        let listen = format!("127.0.0.1:{port}");
        let mut add = Backend::command(data_dir, &listen)
            .args([
                "customer",
                "add",
                "--login-id",
                customer.login_id,
                "--name",
                "山田 太郎",
            ])
            .args(["--email", "taro@example.com"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", Backend::bin().display()))?;
        if let Some(mut stdin) = add.stdin.take() {
            use std::io::Write;
            writeln!(stdin, "{}\n{}", customer.password, customer.confirmation)?;
        }
        let out = add.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "customer add failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let mut serve = tokio::process::Command::from(Backend::command(data_dir, &listen));
        serve.arg("serve");
        let log = match log {
            Some(path) => {
                serve
                    .env("OTP_LOG", "info,sqlx=warn,tower_http=debug")
                    .env_remove("OTP_LOG_JSON");
                Log::File(path)
            }
            None => Log::PassOn,
        };
        let server = ServerProcess::start(serve, log, OnDrop::Terminate)
            .await
            .with_context(|| format!("starting {} serve", Backend::bin().display()))?;
        Ok(Backend {
            base_url: server.base_url.clone(),
            _server: server,
            data_dir: data_dir.to_owned(),
        })
    }

    /// Waits for the issuance mail in the file outbox and returns the download URL in it.
    ///
    /// # Errors
    /// No mail within the timeout, or no link in it.
    /// The メール通知パスワード mailed for issuance (issue 19), from the `.eml` outbox.
    pub async fn mailed_password_from_mail(&self, timeout: Duration) -> Result<String> {
        let outbox = self.data_dir.join("outbox");
        let deadline = Instant::now() + timeout;
        loop {
            for raw in mails_in_folder(&outbox) {
                let body = mail_body_text(&raw);
                let mut lines = body.lines();
                if lines.by_ref().any(|l| l.contains("■メール通知パスワード")) {
                    if let Some(code) = lines.next() {
                        return Ok(code.trim().to_owned());
                    }
                }
            }
            if Instant::now() > deadline {
                bail!("no メール通知パスワード mail in {}", outbox.display());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn download_url_from_mail(&self, timeout: Duration) -> Result<String> {
        let outbox = self.data_dir.join("outbox");
        let deadline = Instant::now() + timeout;
        let prefix = format!("{}/dl/", self.base_url);
        loop {
            for raw in mails_in_folder(&outbox) {
                let body = mail_body_text(&raw);
                if let Some(url) = body.split_whitespace().find(|w| w.starts_with(&prefix)) {
                    return Ok(url.to_owned());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "no issuance mail with a download link in {}",
                    outbox.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

// --- TLS in front of the backend -----------------------------------------------------------------

/// The workspace's TLS proxy ([`test_support::TlsProxy`]) in front of the backend, with the
/// pin of its server key as the app writes pins (`sha256/<base64>`).
pub struct TlsProxy {
    proxy: test_support::TlsProxy,
    /// The pin of the server certificate's key, computed from the key.
    pub pin: String,
}

impl std::ops::Deref for TlsProxy {
    type Target = test_support::TlsProxy;
    fn deref(&self) -> &test_support::TlsProxy {
        &self.proxy
    }
}

impl TlsProxy {
    /// Starts the proxy in front of `backend` (`http://127.0.0.1:<port>`).
    ///
    /// # Errors
    /// Certificate generation or binding failed.
    pub async fn start(backend: &str) -> Result<TlsProxy> {
        let proxy = test_support::TlsProxy::start(backend).await?;
        let pin = app::pinning::Pin::of_spki(&proxy.leaf_spki_der).to_text();
        Ok(TlsProxy { proxy, pin })
    }
}

// --- the bank screens, as a browser uses them -------------------------------------------------------

/// A browser on the bank screens as a person uses them: test-support's [`Browser`] sending this
/// `User-Agent`, following redirects (a page's [`Page::path`] tells where it ended), posting
/// with `Origin` and `Referer` as a form submit does, and giving up on a request after 30 s.
pub fn browser(base: &str, user_agent: &'static str) -> Browser {
    Browser::with(
        base,
        test_support::Options {
            user_agent: Some(user_agent),
            follow_redirects: true,
            same_origin_posts: true,
            timeout: Some(Duration::from_secs(30)),
            ..test_support::Options::default()
        },
    )
}

// --- the app, through tauri-driver -------------------------------------------------------------------

/// `tauri-driver` (which runs WebKitWebDriver, which runs the app) on free ports.
pub struct Driver {
    child: Child,
    port: u16,
}

/// How long the app may take to start and open its WebDriver session (under a second here; a
/// debug build on a busy machine a few), and how many times it is started before the test
/// fails.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(45);
const LAUNCH_ATTEMPTS: u32 = 2;

impl Driver {
    /// Starts tauri-driver with `env` (inherited by the app it starts).
    ///
    /// # Errors
    /// tauri-driver missing (`cargo install tauri-driver --locked --version ^2`).
    pub async fn start(env: &[(&str, String)]) -> Result<Driver> {
        let port = free_port();
        let native = free_port();
        let bin = std::env::var_os("TAURI_DRIVER")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/tauri-driver"))
            })
            .filter(|p| p.exists())
            .unwrap_or_else(|| PathBuf::from("tauri-driver"));
        let mut cmd = Command::new(bin);
        cmd.args([
            "--port",
            &port.to_string(),
            "--native-port",
            &native.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().context("starting tauri-driver")?;
        let driver = Driver { child, port };
        wait_for_port(port, "tauri-driver", Duration::from_secs(30)).await?;
        Ok(driver)
    }

    /// Starts the app at `application` with `args` and opens a WebDriver session on it.
    ///
    /// # Errors
    /// The session cannot be created (the app did not start).
    pub async fn launch(&self, application: &Path, args: &[String]) -> Result<fantoccini::Client> {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": application, "args": args }),
        );
        // When the app dies as it starts, WebKitWebDriver waits for it without end (seen once
        // on a busy machine: GTK did not initialise, and the journey hung until CI's limit).
        // So each session request has a deadline, and a second one is made: tauri-driver
        // takes a new request after one that timed out (tried with an app that exits at once).
        let url = format!("http://127.0.0.1:{}", self.port);
        for attempt in 1..=LAUNCH_ATTEMPTS {
            let mut builder = fantoccini::ClientBuilder::native();
            builder.capabilities(caps.clone());
            match tokio::time::timeout(LAUNCH_TIMEOUT, builder.connect(&url)).await {
                Ok(client) => return client.context("creating a WebDriver session on the app"),
                Err(_) => eprintln!(
                    "the app opened no WebDriver session within {} s (attempt {attempt} of \
                     {LAUNCH_ATTEMPTS}): it did not start; its output is above",
                    LAUNCH_TIMEOUT.as_secs()
                ),
            }
        }
        bail!("the app did not start ({LAUNCH_ATTEMPTS} attempts; its output is above)")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}
