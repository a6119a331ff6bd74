//! Fresh databases and the constants every test configuration shares.

use std::net::TcpListener;

use sqlx::Connection;

/// The tests' manual clock starts here: 2026-11-25 12:00:30 JST (03:00:30 UTC), 30 s into a
/// 60 s step.
pub const T0: u64 = 1_795_575_630;

/// The master key of every test configuration (`<key id>:<64 hex digits>`).
pub const MASTER_KEY: &str =
    "test1:0101010101010101010101010101010101010101010101010101010101010101";

/// The host API key (`ib`) of every test configuration.
pub const API_KEY: &str = "host-test-key-0123456789abcdef0123456789";

/// Which database a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A fresh database and a private data directory (mode 0700, as the server demands).
pub struct TestDb {
    /// The `database_url` to configure.
    pub url: String,
    /// The data directory (the SQLite file lives in it).
    pub dir: tempfile::TempDir,
    /// The PostgreSQL database's name: dropped when the test passes; a failed test's is kept for
    /// a look (its name is printed) until `scripts/test.sh` drops it, six hours later.
    pub pg_name: Option<String>,
}

impl Drop for TestDb {
    /// A passing test's PostgreSQL database is dropped, so a day of test runs does not leave
    /// thousands of them (each a few MiB, and all fsync'd by PostgreSQL's recovery after a
    /// crash). Connections still open (the test's server) are ended (`WITH (FORCE)`).
    fn drop(&mut self) {
        let Some(name) = self.pg_name.take() else {
            return;
        };
        if std::thread::panicking() {
            eprintln!("kept the failed test's PostgreSQL database {name}");
            return;
        }
        // Drop runs inside the test's runtime, which cannot be blocked on: a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                let mut conn = sqlx::AnyConnection::connect(&pg_admin_url()).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                anyhow::Ok(())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("could not drop a test database (scripts/test.sh will): {e:#}"),
            Err(_) => eprintln!("could not drop a test database (scripts/test.sh will)"),
        }
    }
}

/// The PostgreSQL admin URL `scripts/test.sh` exports (it installs and starts the server).
pub fn pg_admin_url() -> String {
    std::env::var("OTP_TEST_PG_URL").expect(
        "OTP_TEST_PG_URL is not set: run scripts/test.sh, which starts PostgreSQL and sets it",
    )
}

impl TestDb {
    /// A new SQLite file, or a new PostgreSQL database named `otp_t_<unix time>_<random>` (the
    /// time lets `scripts/test.sh` drop only stale ones).
    pub async fn new(db: Db) -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            // The server refuses a data directory others can read (tempdir makes it 0755).
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        match db {
            Db::Sqlite => TestDb {
                url: format!("sqlite://{}?mode=rwc", dir.path().join("otp.db").display()),
                dir,
                pg_name: None,
            },
            Db::Postgres => {
                sqlx::any::install_default_drivers();
                let admin = pg_admin_url();
                let secs = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                let name = format!("otp_t_{secs}_{}", hex::encode(rand::random::<[u8; 6]>()));
                let mut conn = sqlx::AnyConnection::connect(&admin)
                    .await
                    .expect("connect to PostgreSQL admin URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .unwrap();
                conn.close().await.ok();
                let base = admin.rsplit_once('/').map(|(b, _)| b.to_owned()).unwrap();
                TestDb {
                    url: format!("{base}/{name}"),
                    dir,
                    pg_name: Some(name),
                }
            }
        }
    }
}

/// A loopback port nobody listens on right now (bound and released: good enough for a test on
/// one machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
