//! The harness of the end-to-end journeys: a backend served on `127.0.0.1:0` on a fresh
//! database (SQLite, or a new PostgreSQL database on `OTP_TEST_PG_URL`) with a manual clock,
//! its mail outbox worker, a real SMTP server on loopback (Debian's `python3-aiosmtpd`, writing
//! a maildir), and the customer's browser (test-support's cookie-keeping client, with the
//! customer's mailbox).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test harness: a failed step should stop loudly

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use backend::config::{Argon2Config, Config, Sensitive};
use backend::engine::{Actor, Engine, ManualClock};
use backend::mail::{MailConfig, MailWorker, SmtpTls};
use backend::web::AppState;
use zeroize::Zeroizing;

pub use test_support::{
    download_url, free_port, mailed_password_in, mails_in_folder, parse_mail, Browser, Db, Mail,
    Page, TestDb, MASTER_KEY, T0,
};

/// A real SMTP server on loopback: aiosmtpd's Mailbox handler delivering into a maildir.
pub struct SmtpServer {
    pub port: u16,
    pub maildir: PathBuf,
    child: Option<Child>,
}

impl SmtpServer {
    pub fn start(port: u16, maildir: &Path) -> SmtpServer {
        for sub in ["tmp", "new", "cur"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        let child = Command::new("/usr/bin/python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd (apt-get install python3-aiosmtpd; scripts/test.sh does)");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpServer {
            port,
            maildir: maildir.to_owned(),
            child: Some(child),
        }
    }

    /// Stop this server (only the process this harness started).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Every mail delivered so far, as raw RFC 5322 text, oldest first.
    pub fn mails(&self) -> Vec<String> {
        let mut files: Vec<_> = ["new", "cur"]
            .iter()
            .filter_map(|d| std::fs::read_dir(self.maildir.join(d)).ok())
            .flatten()
            .filter_map(Result::ok)
            .map(|e| {
                let p = e.path();
                let t = e.metadata().and_then(|m| m.modified()).ok();
                (t, p)
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, p)| std::fs::read_to_string(p).ok())
            .collect()
    }

    /// Wait until at least `n` mails arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        loop {
            let m = self.mails();
            if m.len() >= n {
                return m;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} mail(s) at the SMTP server, got {}",
                m.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running backend with its mail worker.
pub struct TestEnv {
    pub base: String,
    pub addr: SocketAddr,
    pub state: AppState,
    pub engine: Engine,
    pub clock: Arc<ManualClock>,
    pub cfg: Config,
    pub db: TestDb,
    server: tokio::task::JoinHandle<std::io::Result<bool>>,
    mailer: Option<backend::mail::MailTask>,
    staff_secrets: Arc<std::sync::Mutex<std::collections::HashMap<String, protocol::Secret>>>,
}

pub fn config(db: &TestDb, port: u16, smtp_port: Option<u16>) -> Config {
    let mut cfg = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        data_dir: db.dir.path().to_owned(),
        database_url: Some(Sensitive(db.url.clone())),
        master_key: Some(Sensitive(MASTER_KEY.into())),
        api_keys: vec![backend::config::ApiKey {
            name: "ib".into(),
            key: Sensitive("host-test-key-0123456789abcdef0123456789".into()),
        }],
        argon2: Argon2Config {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        },
        ..Config::default()
    };
    // The staff journey reads the console in English first, then switches (the console's
    // default, Japanese, is tested in the backend's staff tests).
    cfg.staff.language = "en".into();
    cfg.mail = MailConfig {
        smtp_host: smtp_port.map(|_| "127.0.0.1".to_owned()),
        smtp_port,
        tls: SmtpTls::None,
        retry_base_secs: 1,
        retry_max_secs: 2,
        poll_ms: 100,
        ..MailConfig::default()
    };
    cfg
}

impl TestEnv {
    /// A backend on a fresh database, mailing to `smtp_port` (or to files when `None`).
    pub async fn start(db: Db, smtp_port: Option<u16>) -> TestEnv {
        let db = TestDb::new(db).await;
        let port = free_port();
        let cfg = config(&db, port, smtp_port);
        TestEnv::start_with(db, cfg, Arc::new(ManualClock::new(T0))).await
    }

    /// Start on a new database with the default test configuration changed by `tweak`.
    pub async fn start_tweaked(
        db: Db,
        smtp_port: Option<u16>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestEnv {
        let db = TestDb::new(db).await;
        let port = free_port();
        let mut cfg = config(&db, port, smtp_port);
        tweak(&mut cfg);
        TestEnv::start_with(db, cfg, Arc::new(ManualClock::new(T0))).await
    }

    /// Start (or restart) on an existing database and configuration.
    pub async fn start_with(db: TestDb, cfg: Config, clock: Arc<ManualClock>) -> TestEnv {
        let (state, _) = backend::build(&cfg, Box::new(clock.clone()))
            .await
            .expect("build");
        let listener = tokio::net::TcpListener::bind(cfg.listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = backend::web::app(state.clone());
        // The server's own accept loop, as `otp-backend serve` runs it (connection cap,
        // header-read timeout, the connection rules), not `axum::serve`.
        let server = tokio::spawn(backend::web::serve::serve(
            listener,
            app,
            cfg.max_connections,
            std::future::pending(),
        ));
        let mailer = MailWorker::new(state.engine.store().clone(), &cfg.mail, &cfg.data_dir)
            .unwrap()
            .spawn();
        TestEnv {
            base: format!("http://{addr}"),
            addr,
            engine: state.engine.clone(),
            state,
            clock,
            cfg,
            db,
            server,
            mailer: Some(mailer),
            staff_secrets: Arc::default(),
        }
    }

    /// Stop serving and mailing; returns what a restart needs.
    pub async fn shutdown(mut self) -> (TestDb, Config, Arc<ManualClock>) {
        self.server.abort();
        if let Some(m) = self.mailer.take() {
            m.abort();
        }
        let _ = self.server.await;
        self.engine.store().close().await;
        (self.db, self.cfg, self.clock)
    }

    pub async fn customer(&self, login: &str, email: &str) -> i64 {
        self.engine
            .create_customer(
                login,
                "山田太郎",
                Some(email),
                z("loginpass1"),
                z("conf123"),
                &Actor::cli(),
            )
            .await
            .unwrap()
    }

    /// A browser-like client (keeps cookies, does not follow redirects).
    pub fn client(&self) -> Client {
        Client {
            mail: match self.cfg.mail.smtp_host {
                None => MailTap::Files(self.cfg.data_dir.join("outbox")),
                Some(_) => MailTap::Outbox(self.engine.store().clone()),
            },
            browser: Browser::new(&self.base),
        }
    }

    /// The app's side of setup, as the app runs it (provisioning v2: the deployment's default
    /// has v1 off, so its issuances keep no v1 hash), with the engine's calls in place of HTTP
    /// (the provisioning API's own tests cover the HTTP side): returns the secret.
    pub async fn provision(&self, user_id: &str, activation_password: &str) -> protocol::Secret {
        let (state, start) = protocol::pake::client_start(
            protocol::ServiceId::parse(&self.cfg.service_id).unwrap(),
            protocol::UserId::parse(user_id).unwrap(),
            protocol::Sensitive(activation_password.to_owned()),
            protocol::DeviceInfo {
                platform: "android".into(),
                model: "Pixel 8".into(),
                os_version: "15".into(),
                app_version: "1.0.0".into(),
            },
        )
        .unwrap();
        let app = Actor::new("app", None);
        let reply = self.engine.setup_start(&start, &app).await.unwrap();
        let (confirmed, finish) = state.on_server_reply(&reply).unwrap();
        let sealed = self
            .engine
            .setup_finish(&finish, &self.cfg.issuer, &app)
            .await
            .unwrap();
        confirmed.open_sealed(&sealed).unwrap()
    }

    /// The code the app shows now.
    pub fn code(&self, secret: &protocol::Secret) -> String {
        protocol::code_at(secret, &protocol::TotpParams::default(), self.clock_now())
            .as_str()
            .to_owned()
    }

    /// The transaction code (取引認証) the app shows now for `transaction`.
    pub fn tx_code(
        &self,
        secret: &protocol::Secret,
        transaction: &protocol::ocra::Transaction,
    ) -> String {
        protocol::ocra::transaction_code(secret, transaction, self.clock_now())
            .as_str()
            .to_owned()
    }

    /// Mails written as `.eml` files (no SMTP configured), waiting until `n` are there.
    pub async fn file_mails(&self, n: usize) -> Vec<Mail> {
        let dir = self.cfg.data_dir.join("outbox");
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let mails = mails_in(&dir);
            if mails.len() >= n {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} .eml file(s) in {}",
                dir.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn clock_now(&self) -> u64 {
        use backend::engine::Clock;
        self.clock.now()
    }

    /// Move to the next 60-second step (so a new code is not a replay).
    pub fn next_step(&self) {
        self.clock.advance(60);
    }
}

/// A staff member's second factor as their authenticator app has it, and their current code
/// on the test clock.
#[derive(Clone)]
pub struct StaffCodes {
    store: backend::store::Store,
    clock: Arc<ManualClock>,
    secrets: Arc<std::sync::Mutex<std::collections::HashMap<String, protocol::Secret>>>,
}

impl StaffCodes {
    /// The member's code now; when they have used this step already, the clock moves on to
    /// the next staff step first (a code works once).
    ///
    /// # Panics
    /// For a login `TestEnv::staff` did not make.
    pub async fn code(&self, login: &str) -> String {
        use backend::domain::staff::STAFF_TOTP;
        use backend::engine::Clock;
        let secret = self
            .secrets
            .lock()
            .unwrap()
            .get(login)
            .cloned()
            .expect("a staff member made by TestEnv::staff");
        let used = self
            .store
            .staff_by_login(login)
            .await
            .unwrap()
            .and_then(|r| r.totp_last_step)
            .unwrap_or(-1);
        while i64::try_from(STAFF_TOTP.step_at(self.clock.now())).unwrap() <= used {
            self.clock.advance(u64::from(STAFF_TOTP.period));
        }
        protocol::code_at(&secret, &STAFF_TOTP, self.clock.now())
            .as_str()
            .to_owned()
    }
}

impl TestEnv {
    /// A staff member with `password`; the second factor `create_staff` shows once is kept
    /// (read back from its otpauth URI) for [`TestEnv::staff_codes`]. Returns the member's id.
    pub async fn staff(&self, login: &str, role: &str, password: &str) -> i64 {
        let created = self
            .engine
            .create_staff(login, login, role, z(password))
            .await
            .unwrap();
        let key = protocol::KeyUri::parse(&created.second_factor.uri()).unwrap();
        self.staff_secrets
            .lock()
            .unwrap()
            .insert(login.to_owned(), key.secret);
        created.id
    }

    /// Where the staff members' current codes come from.
    pub fn staff_codes(&self) -> StaffCodes {
        StaffCodes {
            store: self.engine.store().clone(),
            clock: self.clock.clone(),
            secrets: self.staff_secrets.clone(),
        }
    }
}

pub fn z(s: &str) -> Zeroizing<String> {
    Zeroizing::new(s.to_owned())
}

/// A customer's browser ([`Browser`]: cookies kept, redirects not followed) and where they
/// read their mail.
pub struct Client {
    pub browser: Browser,
    /// Where the customer reads the メール通知パスワード.
    pub mail: MailTap,
}

impl std::ops::Deref for Client {
    type Target = Browser;
    fn deref(&self) -> &Browser {
        &self.browser
    }
}

/// Where a test reads the mails the backend sent, for the メール通知パスワード (issue 19).
#[derive(Clone)]
pub enum MailTap {
    /// `.eml` files (no SMTP configured).
    Files(PathBuf),
    /// The loopback SMTP server's maildir.
    Maildir(PathBuf),
    /// Mail still waiting in the outbox (the SMTP server is down).
    Outbox(backend::store::Store),
}

fn mails_in(dir: &Path) -> Vec<Mail> {
    mails_in_folder(dir).iter().map(|t| parse_mail(t)).collect()
}

impl MailTap {
    /// Every メール通知パスワード received so far, oldest first.
    pub async fn mailed_passwords(&self) -> Vec<String> {
        match self {
            MailTap::Files(dir) => mails_in(dir)
                .iter()
                .filter_map(|m| mailed_password_in(&m.body))
                .collect(),
            MailTap::Maildir(dir) => {
                let mut all = mails_in(&dir.join("cur"));
                all.extend(mails_in(&dir.join("new")));
                all.iter()
                    .filter_map(|m| mailed_password_in(&m.body))
                    .collect()
            }
            MailTap::Outbox(store) => store
                .outbox(10_000)
                .await
                .unwrap()
                .iter()
                .filter(|m| m.kind == "mail_password")
                .filter_map(|m| mailed_password_in(&m.body))
                .collect(),
        }
    }

    /// Wait for more than `seen` mailed passwords; returns the newest.
    pub async fn next_mailed_password(&self, seen: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let all = self.mailed_passwords().await;
            if all.len() > seen {
                return all.last().unwrap().clone();
            }
            assert!(
                Instant::now() < deadline,
                "no new メール通知パスワード arrived"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Client {
    /// Log in with the password (and the code, when the OTP screen comes).
    pub async fn login(&self, login_id: &str, password: &str) -> Page {
        let form = self.get("/login").await;
        self.post(
            "/login",
            &[
                ("csrf", &form.csrf()),
                ("login_id", login_id),
                ("password", password),
            ],
        )
        .await
    }

    /// Walk the three issuance steps, with the メール通知パスワード from `self.mail`; returns
    /// the complete page.
    pub async fn issue(&self, email: &str, activation_password: &str) -> Page {
        let seen = self.mail.mailed_passwords().await.len();
        let input = self.get("/otp/issue").await;
        assert_eq!(input.status, 200, "issuance input:\n{}", input.body);
        let r = self
            .post(
                "/otp/issue",
                &[
                    ("csrf", &input.csrf()),
                    ("email", email),
                    ("email2", email),
                    ("activation_password", activation_password),
                    ("activation_password2", activation_password),
                ],
            )
            .await;
        assert_eq!(r.location.as_deref(), Some("/otp/issue/confirm"));
        let confirm = self.get("/otp/issue/confirm").await;
        let mailed = self.mail.next_mailed_password(seen).await;
        let r = self
            .post(
                "/otp/issue/confirm",
                &[
                    ("csrf", &confirm.csrf()),
                    ("request_key", &confirm.input("request_key")),
                    ("confirmation_password", "conf123"),
                    ("mail_password", &mailed),
                ],
            )
            .await;
        assert_eq!(r.location.as_deref(), Some("/otp/issue/complete"));
        self.get("/otp/issue/complete").await
    }
}
