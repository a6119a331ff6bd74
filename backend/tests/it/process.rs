//! The real `otp-backend` binary: start-up refusals, two processes on one PostgreSQL, a
//! database that goes away and comes back, graceful shutdown.

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use test_support::{Log, OnDrop, ServerProcess};
use tokio::process::Command;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_otp-backend");

/// An `otp-backend serve` process on the test's database, its logs collected (the workspace's
/// server runner, `test_support::ServerProcess`, with this suite's environment).
pub(crate) struct Proc {
    server: ServerProcess,
    pub(crate) base: String,
    /// Everything the server wrote to stderr (its logs).
    pub(crate) logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Proc {
    pub(crate) async fn start(db: &TestDb, extra: &[(&str, &str)]) -> Proc {
        Proc::start_without(db, extra, &[]).await
    }

    /// Start with `remove` taken out of the environment the defaults set.
    async fn start_without(db: &TestDb, extra: &[(&str, &str)], remove: &[&str]) -> Proc {
        Proc::start_opts(db, extra, remove, None).await
    }

    /// Start with `remove` taken out of the environment, and, given `nofile_soft`, with the
    /// soft limit on open files lowered to it (as a distribution's default 1,024 would be).
    pub(crate) async fn start_opts(
        db: &TestDb,
        extra: &[(&str, &str)],
        remove: &[&str],
        nofile_soft: Option<u64>,
    ) -> Proc {
        let mut cmd = match nofile_soft {
            None => {
                let mut c = Command::new(BIN);
                c.arg("serve");
                c
            }
            Some(n) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -Sn {n} && exec \"$0\" serve"))
                    .arg(BIN);
                c
            }
        };
        cmd.env("OTP_LISTEN", "127.0.0.1:0")
            .env("OTP_DATA_DIR", db.dir.path())
            .env("OTP_DATABASE_URL", &db.url)
            .env("OTP_MASTER_KEY", MASTER_KEY)
            .env("OTP_API_KEYS", format!("ib:{API_KEY}"))
            .env_remove("OTP_CONFIG");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        for k in remove {
            cmd.env_remove(k);
        }
        let server = ServerProcess::start(cmd, Log::Keep, OnDrop::Kill)
            .await
            .unwrap();
        Proc {
            base: server.base_url.clone(),
            logs: server.log_handle(),
            server,
        }
    }

    pub(crate) fn pid(&self) -> u32 {
        self.server.pid()
    }

    async fn verify(&self, http: &reqwest::Client, uid: &str, code: &str) -> (u16, Value) {
        verify_at(http, &self.base, uid, code).await
    }

    /// Kill the process with SIGKILL (no shutdown of any kind) and wait for it.
    pub(crate) async fn kill9(self) {
        self.server.kill9().await;
    }
}

pub(crate) async fn verify_at(
    http: &reqwest::Client,
    base: &str,
    uid: &str,
    code: &str,
) -> (u16, Value) {
    {
        let res = http
            .post(format!("{base}/host/v1/tokens/{uid}/verify"))
            .bearer_auth(API_KEY)
            .json(&json!({"code": code, "purpose": "transfer"}))
            .send()
            .await
            .unwrap();
        (
            res.status().as_u16(),
            res.json().await.unwrap_or(Value::Null),
        )
    }
}

/// Run the binary to completion; (success, stderr).
async fn run(args: &[&str], envs: &[(&str, String)]) -> (bool, String) {
    let (ok, _, err) = run_with_stdin(args, envs, "", None).await;
    (ok, err)
}

/// Run the binary with `stdin`, in `cwd`; (success, stdout, stderr).
pub(crate) async fn run_with_stdin(
    args: &[&str],
    envs: &[(&str, String)],
    stdin: &str,
    cwd: Option<&std::path::Path>,
) -> (bool, String, String) {
    use tokio::io::AsyncWriteExt;
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("OTP_CONFIG")
        .env_remove("OTP_MASTER_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    if let Some(dir) = cwd {
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    // A command refused before it reads stdin (bad arguments) closes it: a broken pipe here is
    // expected, and the exit status tells the story.
    let _ = input.write_all(stdin.as_bytes()).await;
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_accept_a_code_once() {
    let env = Env::new(Db::Postgres).await;
    let (uid, secret) = env.active_token("multi01").await;
    let a = Proc::start(&env.db, &[]).await;
    let b = Proc::start(&env.db, &[]).await;
    // The servers use the real clock; compute the code for real time.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = protocol::code_at(&secret, &protocol::TotpParams::default(), now);
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let p = if i % 2 == 0 {
            a.base.clone()
        } else {
            b.base.clone()
        };
        let (http, uid, code) = (http.clone(), uid.clone(), code.as_str().to_owned());
        tasks.push(tokio::spawn(async move {
            verify_at(&http, &p, &uid, &code).await.1["result"]
                .as_str()
                .unwrap_or("error")
                .to_owned()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let ok = results.iter().filter(|r| *r == "ok").count();
    let replayed = results.iter().filter(|r| *r == "replayed").count();
    assert_eq!(
        (ok, replayed),
        (1, 39),
        "two processes on one PostgreSQL accept one code once: {results:?}"
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_goes_away_and_comes_back() {
    let env = Env::new(Db::Postgres).await;
    let (uid, secret) = env.active_token("outage1").await;
    let p = Proc::start(&env.db, &[]).await;
    let http = reqwest::Client::new();
    // Several pooled connections, idle when the database goes away: each is dead after it.
    let mut warm = tokio::task::JoinSet::new();
    for _ in 0..8 {
        warm.spawn(http.get(format!("{}/readyz", p.base)).send());
    }
    while let Some(res) = warm.join_next().await {
        assert_eq!(res.unwrap().unwrap().status().as_u16(), 200);
    }
    let name = env.db.pg_name.clone().unwrap();
    let admin = pg_admin_url();
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    env.engine.store().close().await;
    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
        .execute(&mut conn)
        .await
        .unwrap();
    sqlx::query(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
    ))
    .execute(&mut conn)
    .await
    .unwrap();

    let (status, body) = p.verify(&http, &uid, "123456").await;
    assert_eq!(
        status, 503,
        "requests fail cleanly while the database is away: {body}"
    );
    assert_eq!(body["code"], "UNAVAILABLE");
    let ready = http.get(format!("{}/readyz", p.base)).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    // Away for a moment, as a restart is.
    tokio::time::sleep(Duration::from_millis(500)).await;

    sqlx::query(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
        .execute(&mut conn)
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = protocol::code_at(&secret, &protocol::TotpParams::default(), now);
    let mut last = (0, Value::Null);
    for _ in 0..50 {
        last = p.verify(&http, &uid, code.as_str()).await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(last.0, 200, "the server recovers by itself: {:?}", last.1);
    assert_eq!(last.1["result"], "ok");
    // Every later request finds a live connection: the pool's dead ones are not handed out.
    for _ in 0..8 {
        let ready = http.get(format!("{}/readyz", p.base)).send().await.unwrap();
        assert_eq!(
            ready.status().as_u16(),
            200,
            "ready once the database is back"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_refuses_missing_or_wrong_master_key() {
    let dir = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        // The server refuses a data directory others can read (tempdir makes it 0755).
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let data = dir.path().to_str().unwrap().to_owned();
    let base = [
        ("OTP_DATA_DIR", data.clone()),
        ("OTP_API_KEYS", format!("ib:{API_KEY}")),
    ];
    // First run creates the key file and seals a secret.
    let (ok, out, err) = run_with_stdin(&["migrate"], &base, "", None).await;
    assert!(ok, "{err}");
    assert!(
        out.contains("created (schema version"),
        "a new database says so: {out}"
    );
    let (ok, out, err) = run_with_stdin(&["migrate"], &base, "", None).await;
    assert!(
        ok && out.contains("is up to date (schema version"),
        "{out}{err}"
    );
    let mut cfg = backend::config::Config::load(None).unwrap();
    cfg.data_dir = dir.path().to_owned();
    cfg.argon2 = backend::config::Argon2Config {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
    {
        let (st, _) = backend::build_default(&cfg).await.unwrap();
        let e = &st.engine;
        e.create_customer("keyuser", "", None, z("loginpass1"), z("conf123"), &host())
            .await
            .unwrap();
        let uid = e
            .issue_token("keyuser", "k@example.jp", z("1234"), &host())
            .await
            .unwrap()
            .user_id;
        e.open_link(&uid, &host()).await.unwrap();
        // v1 is off in this default configuration: the app's v2 setup.
        setup_v2(e, &cfg.issuer, &uid, "1234").await.unwrap();
        e.store().close().await;
    }
    let key_file = dir.path().join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777,
            0o600,
            "created 0600"
        );
    }
    let saved = std::fs::read(&key_file).unwrap();

    // Missing key file: refuse, do not make a new key.
    std::fs::remove_file(&key_file).unwrap();
    let (ok, err) = run(
        &["serve"],
        &[
            base[0].clone(),
            base[1].clone(),
            ("OTP_LISTEN", "127.0.0.1:0".into()),
        ],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("master key") && err.contains("will not start"),
        "{err}"
    );
    assert!(!key_file.exists(), "a missing key is not silently replaced");

    // Wrong key (same id, other bytes) from the environment.
    let id = String::from_utf8(saved.clone())
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let (ok, err) = run(
        &["serve"],
        &[
            base[0].clone(),
            ("OTP_LISTEN", "127.0.0.1:0".into()),
            ("OTP_MASTER_KEY", format!("{id}:{}", "ab".repeat(32))),
        ],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("does not match"), "{err}");

    // World-readable key file.
    std::fs::write(&key_file, &saved).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let (ok, err) = run(
            &["serve"],
            &[base[0].clone(), ("OTP_LISTEN", "127.0.0.1:0".into())],
        )
        .await;
        assert!(!ok);
        assert!(err.contains("chmod 600"), "{err}");
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    // keys rotate re-seals under a new key and the server still starts.
    let (ok, out) = run(&["keys", "rotate"], &base).await;
    assert!(ok, "{out}");
    let text = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(
        text.lines().count(),
        2,
        "the old key stays until no secret uses it"
    );
    // `keys status` lists the old key at 0 secrets (the runbook keeps its line until then).
    let old_id = text.lines().next().unwrap().split(':').next().unwrap();
    let (ok, out, err) = run_with_stdin(&["keys", "status"], &base, "", None).await;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("  {old_id}: 0 secret(s)")),
        "the old key at 0: {out}"
    );
    // Instances with key files of their own: `keys add` puts a key on standby (the file is
    // copied to every instance), `keys activate` makes it current and re-seals; a retired key
    // is not made current again.
    let (ok, out, err) = run_with_stdin(&["keys", "add"], &base, "", None).await;
    assert!(ok, "{err}");
    let added = std::fs::read_to_string(&key_file).unwrap();
    let standby = added.lines().last().unwrap();
    assert!(standby.ends_with(":standby"), "{}", added.lines().count());
    let new_id = standby.split(':').next().unwrap().to_owned();
    assert!(
        out.contains(&format!("otp-backend keys activate {new_id}")),
        "says what comes next: {out}"
    );
    let rotated_id = added
        .lines()
        .nth(1)
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    assert!(
        out.contains(&format!("current key: {rotated_id}")),
        "still the rotated one: {out}"
    );
    let (ok, _, err) = run_with_stdin(&["keys", "rotate"], &base, "", None).await;
    assert!(!ok, "rotate on a file of the two-step kind");
    assert!(err.contains("keys on standby"), "{err}");
    let (ok, out, err) =
        run_with_stdin(&["keys", "activate", new_id.as_str()], &base, "", None).await;
    assert!(ok, "{err}");
    assert!(out.contains(&format!("current key: {new_id}")), "{out}");
    assert!(
        out.contains(&format!("  {rotated_id}: 0 secret(s)")),
        "re-sealed: {out}"
    );
    let (ok, _, err) = run_with_stdin(&["keys", "activate", old_id], &base, "", None).await;
    assert!(!ok);
    assert!(err.contains("retired"), "{err}");
    // With the keys in the environment, rotate refuses and says what to do instead.
    let text = std::fs::read_to_string(&key_file).unwrap();
    // (Without the standby line: with one, rotate refuses for that reason first.)
    let env_keys = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.ends_with(":standby"))
        .collect::<Vec<_>>()
        .join(",");
    let (ok, err) = run(
        &["keys", "rotate"],
        &[base[0].clone(), ("OTP_MASTER_KEY", env_keys)],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("keys rotate needs a master key file") && err.contains("every instance"),
        "{err}"
    );

    // Bad configuration is named.
    let (ok, err) = run(&["serve"], &[("OTP_LISTEN", "not-an-address".into())]).await;
    assert!(!ok && err.contains("OTP_LISTEN"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let env = Env::new(Db::Sqlite).await;
    let p = Proc::start(&env.db, &[]).await;
    env.engine.store().close().await;
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for i in 0..20 {
        let (http, base) = (http.clone(), p.base.clone());
        tasks.push(tokio::spawn(async move {
            http.post(format!("{base}/host/v1/customers"))
                .bearer_auth(API_KEY)
                .json(&json!({"login_id": format!("grace{i:03}"), "login_password": "loginpass1", "confirmation_password": "conf123"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
        }));
    }
    // Let the requests arrive (argon2 at full cost keeps them busy), then ask to stop.
    tokio::time::sleep(Duration::from_millis(100)).await;
    p.server.send_term();
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    let status = tokio::time::timeout(Duration::from_secs(30), p.server.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "clean exit on SIGTERM");
    let answered = codes.iter().filter(|c| matches!(c, Ok(201))).count();
    assert!(answered > 0, "some requests were in flight");
    assert!(
        codes.iter().all(|c| matches!(c, Ok(201)) || c.is_err()),
        "in-flight requests complete; later ones are refused at connect, never cut off: {codes:?}"
    );
}

/// At SIGTERM the mail worker stops before the database closes. It used to poll on into the
/// closed pool, so a shutdown could end with a false "mail outbox unavailable" warning (seen
/// after every load run at stop 15). Polling every millisecond makes the race likely.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_the_mail_worker_before_closing_the_database() {
    let env = Env::new(Db::Sqlite).await;
    env.engine.store().close().await;
    let config = env.db.dir.path().join("fast-mail.toml");
    std::fs::write(&config, "[mail]\npoll_ms = 1\n").unwrap();
    let config = config.display().to_string();
    for round in 0..5 {
        let p = Proc::start(&env.db, &[("OTP_CONFIG", &config)]).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let logs = p.logs.clone();
        p.server.send_term();
        let status = tokio::time::timeout(Duration::from_secs(30), p.server.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "clean exit on SIGTERM");
        let logs = logs.lock().unwrap().join("\n");
        assert!(
            logs.contains("closing the database"),
            "round {round}: the shutdown ran: {logs}"
        );
        assert!(
            !logs.contains("mail outbox unavailable"),
            "round {round}: the mail worker polled a closed database: {logs}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_never_contain_secrets_codes_or_passwords() {
    let env = Env::new(Db::Sqlite).await;
    let p = Proc::start(&env.db, &[("OTP_LOG_JSON", "1"), ("OTP_LOG", "trace")]).await;
    env.engine.store().close().await;
    let http = reqwest::Client::new();
    let post = |path: String, body: Value| {
        let http = http.clone();
        let url = format!("{}{path}", p.base);
        async move {
            http.post(url)
                .bearer_auth(API_KEY)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    post("/host/v1/customers".into(), json!({"login_id": "logcheck", "login_password": "Lg-pass-7731", "confirmation_password": "Cf8812xq"})).await;
    let issued = post(
        "/host/v1/customers/logcheck/tokens".into(),
        json!({"email": "log@example.jp", "activation_password": "482915"}),
    )
    .await;
    let uid = issued["user_id"].as_str().unwrap().to_owned();
    // Provision through a second engine on the same database, then verify over HTTP.
    // The server runs v1 off (the default), so the issuance kept no v1 hash: v2 setup.
    let cfg2 = config_for(&env.db);
    let env2 = backend::build_default(&cfg2).await.unwrap().0;
    env2.engine.open_link(&uid, &host()).await.unwrap();
    let p2_secret = setup_v2(&env2.engine, &cfg2.issuer, &uid, "482915")
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = protocol::code_at(&p2_secret, &protocol::TotpParams::default(), now);
    let r = post(
        format!("/host/v1/tokens/{uid}/activate"),
        json!({"code": code.as_str()}),
    )
    .await;
    assert_eq!(r["result"], "ok");
    post(
        format!("/host/v1/tokens/{uid}/verify"),
        json!({"code": "000000", "purpose": "login"}),
    )
    .await;
    // The issuance's setup mail, written to the outbox folder (no SMTP here): its log line
    // names the file, never the download link in it (a bearer credential).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !p
        .logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("mail written to file"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the setup mail was not written"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = p.logs.lock().unwrap().join("\n");
    // A download link's code, never (the route's pattern `/dl/{code}` may be named).
    assert!(
        logs.match_indices("/dl/")
            .all(|(i, _)| logs[i + 4..].starts_with('{')),
        "the log holds a download link: {logs}"
    );
    let json_lines: Vec<&str> = logs.lines().filter(|l| l.starts_with('{')).collect();
    assert!(
        json_lines.len() > 5,
        "JSON logs were written at trace level: {logs}"
    );
    for l in &json_lines {
        serde_json::from_str::<Value>(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
    }
    let b32 = p2_secret.to_base32();
    for needle in [
        "Lg-pass-7731",
        "Cf8812xq",
        "482915",
        code.as_str(),
        b32.as_str(),
        API_KEY,
        &MASTER_KEY[6..],
    ] {
        assert!(
            !logs.contains(needle),
            "the log contains a secret ({} chars): {logs}",
            needle.len()
        );
    }
    assert!(
        logs.contains("/host/v1/tokens/{user_id}/verify"),
        "request spans name the route pattern: {logs}"
    );
    assert!(
        !logs.contains(&format!("/host/v1/tokens/{uid}/")),
        "request spans never carry concrete paths (they hold user IDs and link codes)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_rotate_while_a_server_runs() {
    let db = TestDb::new(Db::Postgres).await;
    let data = db.dir.path().to_str().unwrap().to_owned();
    let envs = [
        ("OTP_DATA_DIR", data.clone()),
        ("OTP_DATABASE_URL", db.url.clone()),
        ("OTP_API_KEYS", format!("ib:{API_KEY}")),
    ];
    // The server owns a key file (created on first run), not an environment key.
    let p = Proc::start_without(&db, &[], &["OTP_MASTER_KEY"]).await;
    let mut cfg = backend::config::Config::load(None).unwrap();
    cfg.data_dir = db.dir.path().to_owned();
    cfg.database_url = Some(backend::config::Sensitive(db.url.clone()));
    cfg.argon2 = backend::config::Argon2Config {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };
    let (st, _) = backend::build_default(&cfg).await.unwrap();
    let e = &st.engine;
    e.create_customer("rotate1", "", None, z("loginpass1"), z("conf123"), &host())
        .await
        .unwrap();
    let uid = e
        .issue_token("rotate1", "r@example.jp", z("1234"), &host())
        .await
        .unwrap()
        .user_id;
    e.open_link(&uid, &host()).await.unwrap();
    // v1 is off in this default configuration: the app's v2 setup.
    let secret = setup_v2(e, &cfg.issuer, &uid, "1234").await.unwrap();
    let http = reqwest::Client::new();
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    let params = protocol::TotpParams::default();
    let step = params.step_at(now());
    let (status, r) = verify_at(
        &http,
        &p.base,
        &uid,
        protocol::code_at_step(&secret, &params, step - 1).as_str(),
    )
    .await;
    assert_eq!(
        (status, r["result"].as_str()),
        (200, Some("not_active")),
        "{r}"
    );
    let activate = http
        .post(format!("{}/host/v1/tokens/{uid}/activate", p.base))
        .bearer_auth(API_KEY)
        .json(&json!({"code": protocol::code_at_step(&secret, &params, step - 1).as_str()}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(activate["result"], "ok");
    let before = e.store().keys_in_use().await.unwrap();
    let (ok, out, err) = run_with_stdin(&["keys", "rotate"], &envs, "", None).await;
    assert!(ok, "{err}");
    // The token's secret and the OPAQUE server key (issue 18).
    assert!(out.contains("2 secret(s) re-sealed"), "{out}");
    let after = e.store().keys_in_use().await.unwrap();
    assert_eq!(after.len(), 1);
    assert_ne!(
        before[0].0, after[0].0,
        "the secret is sealed under the new key"
    );
    // The running server has never seen the new key; it must pick it up and keep verifying.
    let (status, r) = verify_at(
        &http,
        &p.base,
        &uid,
        protocol::code_at_step(&secret, &params, step).as_str(),
    )
    .await;
    assert_eq!(
        (status, r["result"].as_str()),
        (200, Some("ok")),
        "no downtime across a rotation: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_adds_customers_and_staff_and_serve_says_where_things_are() {
    let dir = tempfile::tempdir().unwrap();
    let fast = [(
        "OTP_DATA_DIR",
        dir.path().join("data").to_str().unwrap().to_owned(),
    )];
    let (ok, out, err) = run_with_stdin(
        &[
            "customer",
            "add",
            "--login-id",
            "cli0001",
            "--email",
            "c@example.jp",
        ],
        &fast,
        "loginpass1\nconf123\n",
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("customer cli0001 created"), "{out}");
    assert!(
        !err.contains("loginpass1") && !out.contains("conf123"),
        "passwords are never echoed"
    );
    let (ok, _, err) = run_with_stdin(
        &["customer", "add", "--login-id", "cli0001"],
        &fast,
        "loginpass1\nconf123\n",
        None,
    )
    .await;
    assert!(!ok && err.contains("CUSTOMER_EXISTS"), "{err}");
    let (ok, _, err) = run_with_stdin(
        &["customer", "add", "--login-id", "cli0002"],
        &fast,
        "loginpass1\nbad!\n",
        None,
    )
    .await;
    assert!(
        !ok && err.contains("INVALID_CONFIRMATION_PASSWORD"),
        "{err}"
    );
    let (ok, out, err) = run_with_stdin(
        &[
            "staff",
            "add",
            "--login-id",
            "ops0001",
            "--role",
            "supervisor",
        ],
        &fast,
        "a-long-staff-passphrase\n",
        None,
    )
    .await;
    assert!(ok && out.contains("supervisor"), "{err}");
    // The second factor, shown once: a QR code drawn in the terminal and the otpauth URI.
    let uri = out
        .lines()
        .find(|l| l.starts_with("otpauth://"))
        .unwrap_or_else(|| panic!("an otpauth URI in {out}"));
    let key = protocol::KeyUri::parse(uri).unwrap();
    assert_eq!(key.account, "ops0001");
    assert_eq!(key.params, backend::domain::staff::STAFF_TOTP);
    assert!(
        out.contains('\u{2588}') && out.contains('\u{2580}'),
        "a QR code in Unicode half blocks: {out}"
    );
    assert!(!err.contains(uri), "the URI goes to standard output only");
    // A new one (a lost phone) replaces it.
    let (ok, out2, err) = run_with_stdin(
        &[
            "staff",
            "totp",
            "--login-id",
            "ops0001",
            "--reason",
            "phone lost",
        ],
        &fast,
        "",
        None,
    )
    .await;
    assert!(ok, "{err}");
    let uri2 = out2.lines().find(|l| l.starts_with("otpauth://")).unwrap();
    assert_ne!(
        protocol::KeyUri::parse(uri2).unwrap().secret,
        key.secret,
        "a new secret"
    );
    let (ok, _, err) = run_with_stdin(
        &["staff", "add", "--login-id", "ops0002", "--role", "admin"],
        &fast,
        "a-long-staff-passphrase\n",
        None,
    )
    .await;
    assert!(
        !ok && err.contains("operator"),
        "roles are operator or supervisor: {err}"
    );
    let (ok, _, err) = run_with_stdin(
        &[
            "staff",
            "add",
            "--login-id",
            "ops0003",
            "--role",
            "operator",
        ],
        &fast,
        "short\n",
        None,
    )
    .await;
    assert!(!ok && err.contains("INVALID_PASSWORD"), "{err}");
    // A leaver: disabled with a reason, twice (no change), an unknown login, then enabled.
    let staff_cmd = |verb: &'static str, login: &'static str, reason: Option<&'static str>| {
        let mut args = vec!["staff", verb, "--login-id", login];
        if let Some(r) = reason {
            args.extend(["--reason", r]);
        }
        args
    };
    let (ok, out, err) = run_with_stdin(
        &staff_cmd("disable", "ops0001", Some("left the bank")),
        &fast,
        "",
        None,
    )
    .await;
    assert!(ok && out.contains("staff ops0001 disabled"), "{out}{err}");
    let (ok, out, err) = run_with_stdin(
        &staff_cmd("disable", "ops0001", Some("left the bank")),
        &fast,
        "",
        None,
    )
    .await;
    assert!(ok && out.contains("already disabled"), "{out}{err}");
    let (ok, _, err) = run_with_stdin(
        &staff_cmd("disable", "nobody01", Some("left the bank")),
        &fast,
        "",
        None,
    )
    .await;
    assert!(!ok && err.contains("UNKNOWN_STAFF"), "{err}");
    let (ok, _, err) =
        run_with_stdin(&staff_cmd("disable", "ops0001", None), &fast, "", None).await;
    assert!(
        !ok && err.contains("--reason"),
        "a reason is required: {err}"
    );
    let (ok, out, err) = run_with_stdin(
        &staff_cmd("enable", "ops0001", Some("came back")),
        &fast,
        "",
        None,
    )
    .await;
    assert!(ok && out.contains("staff ops0001 enabled"), "{out}{err}");

    // No configuration at all: serve from ./data in the working directory and say where.
    let cwd = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env_remove("OTP_CONFIG")
        .env_remove("OTP_MASTER_KEY")
        .env_remove("OTP_DATA_DIR")
        .env_remove("OTP_DATABASE_URL")
        .env_remove("OTP_API_KEYS")
        .env("OTP_LISTEN", "127.0.0.1:0")
        .current_dir(cwd.path());
    let server = ServerProcess::start(cmd, Log::Keep, OnDrop::Kill)
        .await
        .unwrap();
    let seen = server.logs().join("\n");
    for what in [
        "data/otp.db",
        "data/master.key",
        "data/host-api.key",
        "openapi.json",
    ] {
        assert!(seen.contains(what), "start-up names {what}: {seen}");
    }
    for f in ["data/otp.db", "data/master.key", "data/host-api.key"] {
        assert!(cwd.path().join(f).exists(), "{f} created");
    }
    let key = std::fs::read_to_string(cwd.path().join("data/host-api.key")).unwrap();
    assert!(
        !seen.contains(key.trim().split(':').nth(1).unwrap()),
        "the key's value is never logged"
    );
}

/// Typed at a terminal, the passwords of `customer add` are not shown: the terminal's echo
/// is off while each is read (a shoulder or the scrollback saw them). Run under `script`
/// (util-linux), which gives the command a pseudo-terminal; each password is typed after its
/// prompt, as a person would.
#[test]
fn passwords_typed_at_a_terminal_are_not_shown() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").to_str().unwrap().to_owned();
    let mut child = std::process::Command::new("script")
        .args([
            "-q",
            "-e",
            "-c",
            &format!("{BIN} customer add --login-id tty00001"),
            "/dev/null",
        ])
        .env_remove("OTP_CONFIG")
        .env_remove("OTP_MASTER_KEY")
        .env("OTP_DATA_DIR", &data)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("script (util-linux) runs");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let wait_for = |what: &str, seen: &mut String| {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !seen.contains(what) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("no {what:?} in {seen:?}"),
            }
        }
    };
    wait_for("login password: ", &mut seen);
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(b"TtyLogin-8841x\n").unwrap();
    wait_for("confirmation password: ", &mut seen);
    std::thread::sleep(Duration::from_millis(300));
    stdin.write_all(b"TtyConf5521\n").unwrap();
    wait_for("customer tty00001 created", &mut seen);
    assert!(child.wait().unwrap().success());
    assert!(
        !seen.contains("TtyLogin-8841x") && !seen.contains("TtyConf5521"),
        "a password was shown on the terminal: {seen:?}"
    );
}

/// Behind a load balancer that `web.trusted_proxies` does not name, every client is the
/// balancer's address, and the per-client limits hold all customers back together. A request
/// carrying a forwarding header from a peer that is not trusted says so in the log, once, as a
/// warning naming the setting (never the header's content).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarding_header_from_an_untrusted_peer_is_reported_once() {
    let db = TestDb::new(Db::Sqlite).await;
    let p = Proc::start(&db, &[]).await;
    let http = reqwest::Client::new();
    for _ in 0..3 {
        let res = http
            .post(format!("{}/login", p.base))
            .header("x-forwarded-for", "203.0.113.77")
            .form(&[("login_id", "x"), ("password", "y")])
            .send()
            .await
            .unwrap();
        assert!(res.status().is_client_error(), "{}", res.status());
    }
    // The log is read from the process as it comes.
    let mut logs = String::new();
    for _ in 0..50 {
        logs = p.logs.lock().unwrap().join("\n");
        if logs.contains("web.trusted_proxies") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(logs.contains("web.trusted_proxies"), "{logs}");
    let logs = p.logs.lock().unwrap().join("\n");
    assert_eq!(
        logs.matches("so the header was ignored").count(),
        1,
        "said once: {logs}"
    );
    assert!(
        !logs.contains("203.0.113.77"),
        "the header's content is not logged"
    );
}
