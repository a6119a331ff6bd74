//! A backend on 127.0.0.1:0 with a SQLite database in a temp dir, on a clock that runs with real
//! time plus an adjustable skew (the "server whose time is off"), and helpers that walk a token
//! through issuance the way the bank's host does.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use app::{
    Directory, KeyringStore, MemoryStore, ProvisioningClient, SecretStore, SetupInput, Timeouts,
    Vault,
};
use backend::config::{ApiKey, Argon2Config, Config};
use backend::engine::{Clock, Engine};
use protocol::{DeviceInfo, Sensitive};
use serde_json::{json, Value};

pub const MASTER_KEY: &str =
    "test1:0101010101010101010101010101010101010101010101010101010101010101";
pub const API_KEY: &str = "host-test-key-0123456789abcdef0123456789";
pub const SERVICE_ID: &str = "10112231";

/// Real time plus a skew in seconds.
#[derive(Debug, Default)]
pub struct SkewClock(AtomicI64);

impl SkewClock {
    pub fn set_skew(&self, secs: i64) {
        self.0.store(secs, Ordering::SeqCst);
    }
}

impl Clock for SkewClock {
    fn now(&self) -> u64 {
        app::codes::device_now().saturating_add_signed(self.0.load(Ordering::SeqCst))
    }
}

pub struct Backend {
    pub base: String,
    pub engine: Engine,
    pub clock: Arc<SkewClock>,
    pub http: reqwest::Client,
    /// The data directory (database, outbox); kept alive as long as the backend.
    pub _data: tempfile::TempDir,
}

impl Backend {
    pub async fn start(skew: i64, tweak: impl FnOnce(&mut Config)) -> Backend {
        let dir = tempfile::tempdir().unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            // The server refuses a data directory others can read (tempdir makes it 0755).
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        let mut cfg = Config {
            data_dir: dir.path().to_owned(),
            database_url: Some(Sensitive(format!(
                "sqlite://{}?mode=rwc",
                dir.path().join("otp.db").display()
            ))),
            master_key: Some(Sensitive(MASTER_KEY.into())),
            api_keys: vec![ApiKey {
                name: "ib".into(),
                key: Sensitive(API_KEY.into()),
            }],
            argon2: Argon2Config {
                memory_kib: 8,
                iterations: 1,
                parallelism: 1,
            },
            ..Config::default()
        };
        tweak(&mut cfg);
        let clock = Arc::new(SkewClock::default());
        clock.set_skew(skew);
        let (state, _) = backend::build(&cfg, Box::new(clock.clone())).await.unwrap();
        let engine = state.engine.clone();
        let cfg_max_connections = cfg.max_connections;
        let app = backend::web::app(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The server's own accept loop, as `otp-backend serve` runs it.
        tokio::spawn(backend::web::serve::serve(
            listener,
            app,
            cfg_max_connections,
            std::future::pending(),
        ));
        Backend {
            base: format!("http://{addr}"),
            engine,
            clock,
            http: reqwest::Client::new(),
            _data: dir,
        }
    }

    /// A client whose directory points the bank's service ID at this backend.
    pub fn client(&self) -> ProvisioningClient {
        let mut dir = Directory::bundled().unwrap();
        dir.set(&SERVICE_ID.parse().unwrap(), &self.base).unwrap();
        ProvisioningClient::with_timeouts(dir, Timeouts::default()).unwrap()
    }

    pub async fn host_post(&self, path: &str, body: Value) -> (reqwest::StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}/host/v1{path}", self.base))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// The bank's host creates the customer and issues a token (activation password `1234`).
    /// Returns the user ID.
    pub async fn issue(&self, login: &str) -> String {
        let (st, v) = self
            .host_post(
                "/customers",
                json!({"login_id": login, "name": "山田太郎", "email": "taro@example.jp",
                       "login_password": "loginpass1", "confirmation_password": "conf123"}),
            )
            .await;
        assert!(st.is_success(), "{v}");
        let (st, v) = self
            .host_post(
                &format!("/customers/{login}/tokens"),
                json!({"email": "taro@example.jp", "activation_password": "1234"}),
            )
            .await;
        assert!(st.is_success(), "{v}");
        v["user_id"].as_str().unwrap().to_owned()
    }

    /// The customer opens the mailed download link: the mail worker writes the outbox as .eml
    /// files (the embedded default, no SMTP configured), the link is read from the issuance
    /// mail for `user_id` and fetched over HTTP, as the phone's browser would.
    pub async fn open_link(&self, user_id: &str) {
        let worker = backend::mail::MailWorker::new(
            self.engine.store().clone(),
            &backend::mail::MailConfig::default(),
            self._data.path(),
        )
        .unwrap();
        worker.run_once().await.unwrap();
        let outbox = self._data.path().join("outbox");
        let mail = std::fs::read_dir(&outbox)
            .unwrap()
            .map(|e| tests::parse_mail(&std::fs::read_to_string(e.unwrap().path()).unwrap()))
            .find(|m| m.body.contains(user_id) && m.body.contains("/dl/"))
            .expect("the issuance mail for this user ID is in the outbox");
        let url = tests::download_url(&mail);
        let path = &url[url.find("/dl/").unwrap()..];
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .header("user-agent", "Mozilla/5.0 (Linux; Android 15; Pixel 8)")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "the download page opens");
    }
}

pub fn input(user_id: &str, password: &str) -> SetupInput {
    SetupInput {
        service_id: SERVICE_ID.into(),
        user_id: user_id.into(),
        activation_password: Sensitive::new(password.to_owned()),
        device: DeviceInfo {
            platform: "linux".into(),
            model: "test".into(),
            os_version: "6".into(),
            app_version: env!("CARGO_PKG_VERSION").into(),
        },
    }
}

pub fn memory_vault() -> (tempfile::TempDir, Vault) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let vault = Vault::open(dir.path(), store).unwrap();
    (dir, vault)
}

/// A keystore service name no other test or run uses.
pub fn unique_service(tag: &str) -> String {
    use rand::RngCore;
    let mut b = [0u8; 6];
    rand::rngs::OsRng.fill_bytes(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("jp.example-bank.otp.test.{tag}.{hex}")
}

pub fn keyring_store(service: &str) -> Arc<dyn SecretStore> {
    Arc::new(KeyringStore::platform(service).unwrap())
}
