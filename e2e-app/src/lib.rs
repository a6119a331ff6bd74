//! Harness for the desktop app's end-to-end journey (`tests/journey.rs`): a real backend on
//! loopback (the `otp-backend` binary), its bank screens driven over HTTP as a browser would
//! (cookies, CSRF fields, redirects), the mailed download link read from the `.eml` outbox, an
//! Xvfb display, and the app itself started by tauri-driver over Debian's WebKitWebDriver.
//!
//! It depends on the app core only to read the OS keystore the way the app does (and to write a
//! pin as the app reads it), and on no backend code: the backend is a process, as in
//! production, optionally behind a TLS proxy ([`TlsProxy`]) as behind a bank's load balancer.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A free loopback port (bound and released; good enough for a test on one machine).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

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

/// When the newest running process of this executable started, in Unix milliseconds (from
/// `/proc/<pid>/stat` and `/proc/uptime`; 10 ms resolution).
///
/// # Errors
/// No such process, or `/proc` unreadable.
pub fn process_start_epoch_ms(exe: &Path) -> Result<f64> {
    let exe = std::fs::canonicalize(exe)?;
    let mut newest: Option<u64> = None;
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(target) = std::fs::read_link(entry.path().join("exe")) else {
            continue;
        };
        if target != exe {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses and may hold spaces).
        let after = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or("");
        // starttime is field 22; `after` starts at field 3.
        let ticks: u64 = after
            .split_whitespace()
            .nth(19)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow!("bad /proc stat"))?;
        newest = Some(newest.map_or(ticks, |n| n.max(ticks)));
    }
    let ticks = newest.ok_or_else(|| anyhow!("{} is not running", exe.display()))?;
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
    child: Child,
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
        let log = std::fs::File::create(Backend::log_path_in(data_dir))?;
        Backend::start_with(data_dir, customer, Some(log)).await
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
        log: Option<std::fs::File>,
    ) -> Result<Backend> {
        let port = free_port()?;
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
        let mut serve = Backend::command(data_dir, &listen);
        serve.arg("serve").stdout(Stdio::null());
        match log {
            Some(file) => serve
                .env("OTP_LOG", "info,sqlx=warn,tower_http=debug")
                .env_remove("OTP_LOG_JSON")
                .stderr(Stdio::from(file)),
            None => serve.stderr(Stdio::inherit()),
        };
        let child = serve.spawn()?;
        let backend = Backend {
            child,
            base_url: format!("http://{listen}"),
            data_dir: data_dir.to_owned(),
        };
        wait_for_port(port, "otp-backend", Duration::from_secs(60)).await?;
        Ok(backend)
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
            if let Ok(entries) = std::fs::read_dir(&outbox) {
                for entry in entries.flatten() {
                    let raw = std::fs::read_to_string(entry.path())?;
                    let body = mail_body_text(&raw);
                    let mut lines = body.lines();
                    if lines.by_ref().any(|l| l.contains("■メール通知パスワード")) {
                        if let Some(code) = lines.next() {
                            return Ok(code.trim().to_owned());
                        }
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
            if let Ok(entries) = std::fs::read_dir(&outbox) {
                for entry in entries.flatten() {
                    let raw = std::fs::read_to_string(entry.path())?;
                    let body = mail_body_text(&raw);
                    if let Some(url) = body.split_whitespace().find(|w| w.starts_with(&prefix)) {
                        return Ok(url.to_owned());
                    }
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

impl Drop for Backend {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

/// The text of a single-part mail, its transfer encoding undone (7bit, quoted-printable or
/// base64: whichever lettre chose for the Japanese body).
pub fn mail_body_text(raw: &str) -> String {
    let raw = raw.replace("\r\n", "\n");
    let (headers, body) = raw.split_once("\n\n").unwrap_or(("", raw.as_str()));
    let encoding = headers
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-transfer-encoding")
                .then(|| v.trim().to_ascii_lowercase())
        })
        .unwrap_or_default();
    match encoding.as_str() {
        "base64" => String::from_utf8_lossy(&base64_decode(body)).into_owned(),
        "quoted-printable" => String::from_utf8_lossy(&qp_decode(body)).into_owned(),
        _ => body.to_owned(),
    }
}

fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    };
    let (mut out, mut acc, mut bits) = (Vec::new(), 0u32, 0u32);
    for v in text.bytes().filter_map(value) {
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

fn qp_decode(text: &str) -> Vec<u8> {
    let bytes = text.replace("=\n", "").into_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&String::from_utf8_lossy(&bytes[i + 1..i + 3]), 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

// --- TLS in front of the backend -----------------------------------------------------------------

/// A TLS-terminating proxy on loopback in front of the backend (which serves plain HTTP, as
/// behind a bank's load balancer), its certificate for `localhost` issued by a CA made here
/// (rcgen), as in `app/tests/it/pinning.rs`. It counts connections, completed handshakes and
/// the decrypted bytes it forwarded: a handshake the app refused lets none through.
pub struct TlsProxy {
    /// `https://localhost:<port>`.
    pub base_url: String,
    /// The test CA's certificate, PEM (for the app's debug-only `OTP_APP_TEST_CA`).
    pub ca_pem: String,
    /// The pin of the server certificate's key, `sha256/<base64>`, computed from the key.
    pub pin: String,
    connections: Arc<AtomicUsize>,
    handshakes_ok: Arc<AtomicUsize>,
    plaintext_in: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    /// Starts the proxy in front of `backend` (`http://127.0.0.1:<port>`), on the current
    /// tokio runtime.
    ///
    /// # Errors
    /// Certificate generation or binding failed.
    pub async fn start(backend: &str) -> Result<TlsProxy> {
        let backend_addr = backend.trim_start_matches("http://").to_owned();
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "e2e-app pinning test CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let leaf_key = rcgen::KeyPair::generate()?;
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?
            .signed_by(&leaf_key, &ca, &ca_key)?;
        let pin = app::pinning::Pin::of_spki(&leaf_key.public_key_der()).to_text();

        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(rustls::pki_types::PrivatePkcs8KeyDer::from(
                leaf_key.serialize_der(),
            )),
        )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let connections = Arc::new(AtomicUsize::new(0));
        let handshakes_ok = Arc::new(AtomicUsize::new(0));
        let plaintext_in = Arc::new(AtomicUsize::new(0));
        let (conns, oks, bytes) = (
            connections.clone(),
            handshakes_ok.clone(),
            plaintext_in.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                conns.fetch_add(1, Ordering::SeqCst);
                let (acceptor, backend_addr) = (acceptor.clone(), backend_addr.clone());
                let (oks, bytes) = (oks.clone(), bytes.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return; // the client refused the handshake
                    };
                    oks.fetch_add(1, Ordering::SeqCst);
                    let Ok(upstream) = tokio::net::TcpStream::connect(&backend_addr).await else {
                        return;
                    };
                    let (mut client_r, mut client_w) = tokio::io::split(tls);
                    let (mut up_r, mut up_w) = upstream.into_split();
                    let to_backend = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match client_r.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            bytes.fetch_add(n, Ordering::SeqCst);
                            if up_w.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = up_w.shutdown().await;
                    };
                    let to_client = async {
                        let _ = tokio::io::copy(&mut up_r, &mut client_w).await;
                        let _ = client_w.shutdown().await;
                    };
                    tokio::join!(to_backend, to_client);
                });
            }
        });
        Ok(TlsProxy {
            base_url: format!("https://localhost:{port}"),
            ca_pem: ca.pem(),
            pin,
            connections,
            handshakes_ok,
            plaintext_in,
            task,
        })
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed.
    pub fn handshakes_ok(&self) -> usize {
        self.handshakes_ok.load(Ordering::SeqCst)
    }

    /// Decrypted application bytes received from clients (and forwarded to the backend).
    pub fn plaintext_in(&self) -> usize {
        self.plaintext_in.load(Ordering::SeqCst)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

// --- the bank screens, as a browser uses them -------------------------------------------------------

/// A browser session on the bank screens: cookies kept, redirects followed, CSRF fields read.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
    user_agent: &'static str,
}

/// A page as the browser got it.
pub struct Page {
    /// Final URL path after redirects.
    pub path: String,
    /// HTTP status of the final response.
    pub status: u16,
    /// HTML.
    pub body: String,
}

impl Page {
    /// The value of a hidden (or any) input named `name`.
    ///
    /// # Errors
    /// No such input.
    pub fn input_value(&self, name: &str) -> Result<String> {
        let needle = format!("name=\"{name}\"");
        let at = self
            .body
            .find(&needle)
            .ok_or_else(|| anyhow!("no input {name} on {}", self.path))?;
        let tag_start = self.body[..at].rfind('<').unwrap_or(0);
        let tag_end = at + self.body[at..].find('>').unwrap_or(0);
        let tag = &self.body[tag_start..tag_end];
        let v = tag
            .split("value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| anyhow!("input {name} has no value"))?;
        Ok(html_unescape(v))
    }

    /// The `href` of the element with this `id`.
    ///
    /// # Errors
    /// No such element.
    pub fn href_of(&self, id: &str) -> Result<String> {
        let at = self
            .body
            .find(&format!("id=\"{id}\""))
            .ok_or_else(|| anyhow!("no #{id} on {}", self.path))?;
        let tag_start = self.body[..at].rfind('<').unwrap_or(0);
        let tag_end = at + self.body[at..].find('>').unwrap_or(0);
        let tag = &self.body[tag_start..tag_end];
        let v = tag
            .split("href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| anyhow!("#{id} has no href"))?;
        Ok(html_unescape(v))
    }
}

/// Undoes HTML escaping: the named entities a template engine emits and any numeric one
/// (minijinja writes `/` as `&#x2f;`).
fn html_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Browser {
    /// A new browser with no cookies, at `base`.
    ///
    /// # Errors
    /// The HTTP client cannot be built.
    pub fn new(base: &str, user_agent: &'static str) -> Result<Browser> {
        Ok(Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(30))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            cookies: BTreeMap::new(),
            user_agent,
        })
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&mut self, resp: &reqwest::Response) {
        for value in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or("");
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || text.to_ascii_lowercase().contains("max-age=0") {
                    self.cookies.remove(k.trim());
                } else {
                    self.cookies
                        .insert(k.trim().to_owned(), v.trim().to_owned());
                }
            }
        }
    }

    async fn follow(&mut self, mut resp: reqwest::Response) -> Result<Page> {
        for _ in 0..10 {
            self.keep_cookies(&resp);
            let status = resp.status();
            if status.is_redirection() {
                let location = resp
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| anyhow!("redirect without Location"))?
                    .to_owned();
                let url = if location.starts_with('/') {
                    format!("{}{location}", self.base)
                } else {
                    location
                };
                resp = self
                    .http
                    .get(&url)
                    .header(reqwest::header::COOKIE, self.cookie_header())
                    .header(reqwest::header::USER_AGENT, self.user_agent)
                    .send()
                    .await?;
                continue;
            }
            let path = resp.url().path().to_owned();
            let body = resp.text().await?;
            return Ok(Page {
                path,
                status: status.as_u16(),
                body,
            });
        }
        bail!("too many redirects")
    }

    /// GET a path (or a full URL).
    ///
    /// # Errors
    /// Transport errors.
    pub async fn get(&mut self, path_or_url: &str) -> Result<Page> {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.base)
        };
        let resp = self
            .http
            .get(url)
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(reqwest::header::USER_AGENT, self.user_agent)
            .send()
            .await?;
        self.follow(resp).await
    }

    /// POST a form, as its submit button would.
    ///
    /// # Errors
    /// Transport errors.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Result<Page> {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header(reqwest::header::COOKIE, self.cookie_header())
            .header(reqwest::header::USER_AGENT, self.user_agent)
            .header(reqwest::header::ORIGIN, &self.base)
            .header(reqwest::header::REFERER, format!("{}{path}", self.base))
            .form(form)
            .send()
            .await?;
        self.follow(resp).await
    }
}

// --- the app, through tauri-driver -------------------------------------------------------------------

/// `tauri-driver` (which runs WebKitWebDriver, which runs the app) on free ports.
pub struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts tauri-driver with `env` (inherited by the app it starts).
    ///
    /// # Errors
    /// tauri-driver missing (`cargo install tauri-driver --locked --version ^2`).
    pub async fn start(env: &[(&str, String)]) -> Result<Driver> {
        let port = free_port()?;
        let native = free_port()?;
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
        let client = fantoccini::ClientBuilder::native()
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .context("creating a WebDriver session on the app")?;
        Ok(client)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        terminate(&mut self.child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mail_bodies_are_decoded_whatever_the_transfer_encoding() {
        let url = "http://127.0.0.1:8080/dl/0123456789abcdef0123456789abcdef01234567";
        let plain = format!("Subject: x\r\n\r\nダウンロード\r\n{url}\r\n");
        assert!(mail_body_text(&plain).contains(url));

        let qp = "Content-Transfer-Encoding: quoted-printable\r\n\r\n=E3=83=80 http://127.0.0.1:8080/dl/0123456789abcdef0123=\r\n456789abcdef01234567\r\n";
        let text = mail_body_text(qp);
        assert!(text.contains(url), "{text}");
        assert!(text.contains('ダ'));

        // base64 of "ok http://127.0.0.1:8080/dl/ab"
        let b64 = "Content-Transfer-Encoding: base64\r\n\r\nb2sgaHR0cDovLzEyNy4wLjAu\r\nMTo4MDgwL2RsL2Fi\r\n";
        assert_eq!(mail_body_text(b64), "ok http://127.0.0.1:8080/dl/ab");
    }

    #[test]
    fn reads_inputs_and_links_from_html() {
        let page = Page {
            path: "/x".into(),
            status: 200,
            body: r#"<form><input type="hidden" name="csrf" value="a&amp;b"><a class="btn" id="open-app" href="otpbank:&#x2f;&#x2f;setup?service_id=1&amp;user_id=2&#61;">open</a> &unknown; &"#.into(),
        };
        assert_eq!(page.input_value("csrf").unwrap(), "a&b");
        assert_eq!(
            page.href_of("open-app").unwrap(),
            "otpbank://setup?service_id=1&user_id=2="
        );
        assert_eq!(html_unescape("a &unknown; & b"), "a &unknown; & b");
        assert!(page.input_value("nope").is_err());
    }
}
