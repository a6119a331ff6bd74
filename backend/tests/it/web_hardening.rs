//! Issue 12 items 4, 5, 7, 10 and issue 14 item 9: each test tries the attack against the
//! router (with the client address a socket would give it) or the real binary.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use sha2::{Digest, Sha256};
use tower::ServiceExt;

use crate::both_dbs;
use crate::support::*;

both_dbs!(
    readiness_writes_at_most_once_a_second,
    get_login_writes_no_session_row,
    customer_sessions_end_after_twelve_hours_however_active,
    staff_sessions_end_after_eight_hours_however_active,
);

/// One response, its headers and body as text.
struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> Option<&str> {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
    }

    /// The value of a cookie this answer sets.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .map(|rest| rest.split(';').next().unwrap_or("").to_owned())
    }

    fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a CSRF field")
            + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

/// Send `req` to the application as if from `peer`.
async fn send(app: &Router, peer: &str, mut req: Request<Body>) -> Answer {
    let addr: SocketAddr = peer.parse().unwrap();
    req.extensions_mut().insert(ConnectInfo(addr));
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = axum::body::to_bytes(res.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

fn get_with_cookie(path: &str, cookie: &str) -> Request<Body> {
    Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

fn post_form(path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Request<Body> {
    let body = form
        .iter()
        .map(|(k, v)| format!("{k}={}", urlencode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut b =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(body)).unwrap()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

const PEER: &str = "192.0.2.10:50000";

// --- item 4: /lang?back= -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_returns_only_to_the_screens_own_paths() {
    let env = Env::new(Db::Sqlite).await;
    let app = backend::web::app(env.state.clone());
    let attacks = [
        // Chromium strips the TAB and follows //evil.example.
        "/%09/evil.example/phish",
        "/%0d%0aSet-Cookie:%20sid=forged",
        "/top%0d%0aLocation:%20https://evil.example",
        "//evil.example",
        "/\\evil.example",
        "https://evil.example/",
        "/otp/../..//evil.example",
        "/dl/abc/../../evil",
        "/dl/",
        "/%2F%2Fevil.example",
        "",
    ];
    for back in attacks {
        let r = send(&app, PEER, get(&format!("/lang?to=en&back={back}"))).await;
        // Control characters are refused at the edge (web::text_guard) before /lang sees them.
        assert!(
            (r.status, r.location()) == (StatusCode::SEE_OTHER, Some("/top"))
                || (r.status == StatusCode::BAD_REQUEST && r.location().is_none()),
            "back={back:?} must land on /top (or be refused), never elsewhere and never a 500: {:?}",
            (r.status, r.location())
        );
    }
    for back in ["/otp/issue", "/transfer/confirm", "/login", "/dl/Ab3-x_9"] {
        let r = send(&app, PEER, get(&format!("/lang?to=en&back={back}"))).await;
        assert_eq!(r.location(), Some(back), "a screen's own path is kept");
    }
    for back in [
        "/staff/%09/evil.example",
        "/staff%0d%0aX:%20y",
        "//evil.example",
    ] {
        let r = send(&app, PEER, get(&format!("/staff/lang?to=ja&back={back}"))).await;
        // Control characters are refused at the edge (web::text_guard) before the switch.
        assert!(
            (r.status, r.location()) == (StatusCode::SEE_OTHER, Some("/staff"))
                || (r.status == StatusCode::BAD_REQUEST && r.location().is_none()),
            "the console's switch: back={back:?}: {:?}",
            (r.status, r.location())
        );
    }
}

// --- item 10: GET /login, absolute lifetimes, HSTS, /metrics ------------------------------------

async fn get_login_writes_no_session_row(db: Db) {
    let env = Env::new(db).await;
    env.customer("visit001").await;
    let app = backend::web::app(env.state.clone());
    for _ in 0..50 {
        let r = send(&app, PEER, get("/login")).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    assert_eq!(
        env.engine.store().session_count().await.unwrap(),
        0,
        "a visit to the login form writes nothing (unauthenticated write load on SQLite's one writer)"
    );
    // The login form's CSRF is a double-submit cookie.
    let form = send(&app, PEER, get("/login")).await;
    let cookie = form
        .set_cookie("login_csrf")
        .expect("the double-submit cookie");
    assert_eq!(cookie, form.csrf(), "the form carries the cookie's token");
    fn creds(csrf: &str) -> [(&'static str, &str); 3] {
        [
            ("login_id", "visit001"),
            ("password", "loginpass1"),
            ("csrf", csrf),
        ]
    }
    let token = form.csrf();
    let token = token.as_str();
    let r = send(&app, PEER, post_form("/login", None, &creds(token))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "token without its cookie");
    let other = send(&app, PEER, get("/login"))
        .await
        .set_cookie("login_csrf")
        .unwrap();
    let r = send(
        &app,
        PEER,
        post_form(
            "/login",
            Some(&format!("login_csrf={other}")),
            &creds(token),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "token of another form");
    let r = send(
        &app,
        PEER,
        post_form("/login", Some(&format!("login_csrf={cookie}")), &creds("")),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "empty token");
    assert_eq!(env.engine.store().session_count().await.unwrap(), 0);
    let r = send(
        &app,
        PEER,
        post_form(
            "/login",
            Some(&format!("login_csrf={cookie}")),
            &creds(token),
        ),
    )
    .await;
    assert_eq!(
        (r.status, r.location()),
        (StatusCode::SEE_OTHER, Some("/top")),
        "{}",
        r.body
    );
    let sid = r.set_cookie("sid").expect("the session cookie");
    assert_eq!(
        r.set_cookie("login_csrf").as_deref(),
        Some(""),
        "the form's cookie is cleared"
    );
    assert_eq!(
        env.engine.store().session_count().await.unwrap(),
        1,
        "the login wrote one"
    );
    let top = send(&app, PEER, get_with_cookie("/top", &format!("sid={sid}"))).await;
    assert_eq!(top.status, StatusCode::OK);
}

/// A logged-in customer session written straight into the store (as a login would).
async fn customer_session(env: &Env, login: &str) -> String {
    env.customer(login).await;
    let customer = env
        .engine
        .store()
        .customer_by_login(login)
        .await
        .unwrap()
        .unwrap();
    let id = format!("{login}-session-id-0123456789abcdef");
    let now = env.now() as i64;
    env.engine
        .store()
        .insert_session(&backend::store::SessionRow {
            id_hash: hex::encode(Sha256::digest(id.as_bytes())),
            customer_id: Some(customer.id),
            stage: "full".into(),
            csrf: "c".repeat(64),
            created_at: now,
            last_seen_at: now,
            draft: None,
        })
        .await
        .unwrap();
    format!("sid={id}")
}

async fn customer_sessions_end_after_twelve_hours_however_active(db: Db) {
    let env = Env::new(db).await;
    let app = backend::web::app(env.state.clone());
    let cookie = customer_session(&env, "long001").await;
    // Active every 9 minutes (the idle timeout is 10) for 12 hours less a minute.
    let mut elapsed = 0;
    while elapsed + 540 < 12 * 3600 {
        env.clock.advance(540);
        elapsed += 540;
        let r = send(&app, PEER, get_with_cookie("/top", &cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "live at {elapsed} s");
    }
    env.clock.advance(12 * 3600 - elapsed);
    let r = send(&app, PEER, get_with_cookie("/top", &cookie)).await;
    assert_eq!(
        r.location(),
        Some("/login?timeout=1"),
        "twelve hours after login the session is over, however active"
    );
    assert_eq!(env.engine.store().session_count().await.unwrap(), 0);
}

async fn staff_sessions_end_after_eight_hours_however_active(db: Db) {
    let env = Env::new(db).await;
    let app = backend::web::app(env.state.clone());
    let staff_id = env
        .engine
        .create_staff("shift01", "Support", "operator", z("staff-password-123"))
        .await
        .unwrap()
        .id;
    let id = "staff-session-id-0123456789abcdef";
    let now = env.now() as i64;
    env.engine
        .store()
        .insert_staff_session(&backend::store::StaffSessionRow {
            id_hash: hex::encode(Sha256::digest(id.as_bytes())),
            staff_id,
            csrf: "c".repeat(64),
            created_at: now,
            last_seen_at: now,
        })
        .await
        .unwrap();
    let cookie = format!("staff_sid={id}");
    let mut elapsed = 0;
    while elapsed + 240 < 8 * 3600 {
        env.clock.advance(240);
        elapsed += 240;
        let r = send(&app, PEER, get_with_cookie("/staff", &cookie)).await;
        assert_eq!(r.status, StatusCode::OK, "live at {elapsed} s");
    }
    env.clock.advance(8 * 3600 - elapsed);
    let r = send(&app, PEER, get_with_cookie("/staff", &cookie)).await;
    assert!(
        r.location().is_some_and(|l| l.starts_with("/staff/login")),
        "eight hours after login the console session is over: {:?}",
        r.location()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_transport_security_when_served_over_https() {
    let env = Env::with_config(Db::Sqlite, |c| {
        c.web.public_url = Some("https://bank.example.jp".into());
    })
    .await;
    let app = backend::web::app(env.state.clone());
    for path in [
        "/login",
        "/staff/login",
        "/app/v1/time",
        "/healthz",
        "/nowhere",
    ] {
        let r = send(&app, PEER, get(path)).await;
        assert_eq!(
            r.headers
                .get(header::STRICT_TRANSPORT_SECURITY)
                .and_then(|v| v.to_str().ok()),
            Some("max-age=31536000"),
            "{path}: a browser must never fall back to plain HTTP"
        );
    }
    let plain = Env::new(Db::Sqlite).await;
    let r = send(&backend::web::app(plain.state.clone()), PEER, get("/login")).await;
    assert!(
        r.headers.get(header::STRICT_TRANSPORT_SECURITY).is_none(),
        "no HSTS over plain HTTP (development)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_not_open_to_anyone() {
    let env = Env::with_config(Db::Sqlite, |c| c.web.metrics_key = None).await;
    let app = backend::web::app(env.state.clone());
    let r = send(&app, PEER, get("/metrics")).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "without web.metrics_key the metrics are off: {}",
        r.body
    );
    assert!(!r.body.contains("otp_"), "{}", r.body);
    for path in ["/healthz", "/readyz"] {
        assert_eq!(
            send(&app, PEER, get(path)).await.status,
            StatusCode::OK,
            "{path} stays open"
        );
    }

    const KEY: &str = METRICS_KEY;
    let env = Env::new(Db::Sqlite).await;
    let app = backend::web::app(env.state.clone());
    let with = |auth: &str| {
        Request::get("/metrics")
            .header(header::AUTHORIZATION, auth)
            .body(Body::empty())
            .unwrap()
    };
    assert_eq!(
        send(&app, PEER, get("/metrics")).await.status,
        StatusCode::UNAUTHORIZED
    );
    for wrong in [
        "Bearer metrics-test-key-0123456789abcdef012",
        "Bearer ",
        &format!("Basic {KEY}"),
        &format!("Bearer {KEY}x"),
    ] {
        let r = send(&app, PEER, with(wrong)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{wrong}");
        assert!(!r.body.contains("otp_"));
    }
    let r = send(&app, PEER, with(&format!("Bearer {KEY}"))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("# TYPE otp_verifications counter"),
        "{}",
        r.body
    );

    let short = backend::build(
        &backend::config::Config {
            web: backend::config::WebConfig {
                metrics_key: Some(backend::config::Sensitive("short".into())),
                ..Default::default()
            },
            ..env.cfg.clone()
        },
        Box::new(backend::engine::SystemClock),
    )
    .await;
    assert!(
        short.is_err_and(|e| e.to_string().contains("metrics_key")),
        "a guessable metrics key is refused at start-up"
    );
}

// --- item 5 and issue 14 item 9: app API rate limits --------------------------------------------

/// A setup attempt for an unknown user ID from `peer`, with optional forwarding headers.
async fn setup_from(app: &Router, peer: &str, headers: &[(&str, &str)], serial: u64) -> Answer {
    let user_id = protocol::UserId::from_serial(900_000 + serial).unwrap();
    let body = serde_json::json!({
        "service_id": "10112231",
        "user_id": user_id.as_str(),
        "activation_password": "1234",
        "device": {"platform": "android", "model": "Pixel 8", "os_version": "15", "app_version": "1.0.0"}
    });
    let mut b = Request::post("/app/v1/setup").header(header::CONTENT_TYPE, "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(app, peer, b.body(Body::from(body.to_string())).unwrap()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ipv6_client_cannot_escape_the_limit_by_changing_address_in_its_64() {
    let env = Env::new(Db::Sqlite).await;
    let app = backend::web::app(env.state.clone());
    let mut limited = 0;
    for i in 1..=15u64 {
        let peer = format!("[2001:db8:77:1:{i:x}:{i:x}:{i:x}:{i:x}]:40000");
        let r = setup_from(&app, &peer, &[], i).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    assert_eq!(limited, 5, "one /64 is one client: 10 attempts, then 429");
    let r = setup_from(&app, "[2001:db8:77:2::1]:40000", &[], 99).await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "the next /64 is another client"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_table_does_not_refuse_every_new_client() {
    let env = Env::with_config(Db::Sqlite, |c| c.app_api.max_keys = 20).await;
    let app = backend::web::app(env.state.clone());
    for i in 0..40u64 {
        let peer = format!("198.51.100.{i}:40000");
        let r = setup_from(&app, &peer, &[], i).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "client {i} is served (a flood of addresses must not lock out everyone)"
        );
    }
    assert!(env.state.app_api.tracked_keys() <= 40, "bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_across_a_minute_boundary_gets_only_the_limit() {
    let env = Env::new(Db::Sqlite).await;
    let app = backend::web::app(env.state.clone());
    // T0 is 30 s into a minute: move to its last second.
    env.clock.advance(29);
    for i in 0..10 {
        let r = setup_from(&app, PEER, &[], i).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    }
    env.clock.advance(1); // the next minute starts
    let r = setup_from(&app, PEER, &[], 10).await;
    assert_eq!(
        r.status,
        StatusCode::TOO_MANY_REQUESTS,
        "10 per minute means 10 in any 60 seconds, not 20 across a boundary"
    );
    assert_eq!(
        r.headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
        Some("59"),
        "Retry-After: when the burst leaves the window"
    );
    env.clock.advance(59);
    assert_eq!(
        setup_from(&app, PEER, &[], 11).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_each_customer_has_their_own_budget() {
    let env = Env::with_config(Db::Sqlite, |c| {
        c.web.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
    })
    .await;
    let app = backend::web::app(env.state.clone());
    let lb = "10.1.2.3:40000";
    // Twenty customers through one load balancer: each is someone else.
    for i in 0..20u64 {
        let xff = format!("203.0.113.{i}");
        let r = setup_from(&app, lb, &[("x-forwarded-for", &xff)], i).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "customer {i} is not limited by the others"
        );
    }
    // One customer still gets 10, whatever it prepends to the header.
    let mut limited = 0;
    for i in 0..12u64 {
        let xff = format!("198.18.0.{i}, 203.0.113.200");
        if setup_from(&app, lb, &[("x-forwarded-for", &xff)], 100 + i)
            .await
            .status
            == StatusCode::TOO_MANY_REQUESTS
        {
            limited += 1;
        }
    }
    assert_eq!(limited, 2, "the rightmost untrusted hop is the client");
    // A peer that is not a trusted proxy cannot choose its address.
    let mut limited = 0;
    for i in 0..12u64 {
        let xff = format!("203.0.113.{}", 50 + i);
        if setup_from(
            &app,
            "192.0.2.99:40000",
            &[("x-forwarded-for", &xff)],
            200 + i,
        )
        .await
        .status
            == StatusCode::TOO_MANY_REQUESTS
        {
            limited += 1;
        }
    }
    assert_eq!(limited, 2, "an untrusted peer's header is ignored");
    // The audit names the client, not the proxy.
    let uid = protocol::UserId::from_serial(900_000).unwrap();
    let audit = env.audit(uid.as_str()).await;
    assert!(
        audit.iter().any(|a| a.ip.as_deref() == Some("203.0.113.0")),
        "{audit:?}"
    );
}

// --- item 7: file modes -------------------------------------------------------------------------

const BIN: &str = env!("CARGO_BIN_EXE_otp-backend");

/// Every path under `dir` (itself included) with its mode.
fn modes(dir: &std::path::Path) -> Vec<(std::path::PathBuf, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = vec![(
        dir.to_owned(),
        std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
    )];
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(modes(&p));
        } else {
            out.push((
                p.clone(),
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            ));
        }
    }
    out
}

/// Whether user `nobody` can read `path` (only meaningful as root, as CI runs).
fn nobody_reads(path: &std::path::Path) -> bool {
    std::process::Command::new("runuser")
        .args(["-u", "nobody", "--", "cat"])
        .arg(path)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success()
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_local_user_reads_nothing_in_the_data_directory() {
    use std::os::unix::fs::PermissionsExt;
    // A parent others may pass through, as /var/lib is.
    let parent = tempfile::tempdir().unwrap();
    std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = parent.path().join("data");
    let envs = |data: &std::path::Path| {
        vec![
            ("OTP_DATA_DIR", data.display().to_string()),
            ("OTP_LISTEN", "127.0.0.1:0".to_owned()),
        ]
    };
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("serve")
        .env_remove("OTP_CONFIG")
        .env_remove("OTP_MASTER_KEY")
        .env_remove("OTP_API_KEYS")
        .env_remove("OTP_DATABASE_URL")
        .envs(envs(&data));
    let server = test_support::ServerProcess::start(
        cmd,
        test_support::Log::Keep,
        test_support::OnDrop::Kill,
    )
    .await
    .unwrap();
    let base = server.base_url.clone();
    // Write everything there is to write: a customer, an issuance (its mail in the outbox).
    let key = std::fs::read_to_string(data.join("host-api.key")).unwrap();
    let key = key.trim().split_once(':').unwrap().1.to_owned();
    let http = reqwest::Client::new();
    let add = tokio::process::Command::new(BIN)
        .args([
            "customer",
            "add",
            "--login-id",
            "modes001",
            "--email",
            "m@example.jp",
        ])
        .env_remove("OTP_CONFIG")
        .env_remove("OTP_MASTER_KEY")
        .env_remove("OTP_API_KEYS")
        .env_remove("OTP_DATABASE_URL")
        .envs(envs(&data))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        let mut add = add;
        let mut input = add.stdin.take().unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut input, b"loginpass1\nconf123\n")
            .await
            .unwrap();
        drop(input);
        assert!(add.wait().await.unwrap().success());
    }
    let res = http
        .post(format!("{base}/host/v1/customers/modes001/tokens"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"email": "m@example.jp", "activation_password": "1234"}))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.text().await.unwrap());
    let outbox = data.join("outbox");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    // A whole mail (the worker writes `<id>.eml.part`, then renames it).
    while test_support::mails_in_folder(&outbox).is_empty() {
        assert!(std::time::Instant::now() < deadline, "the mail was written");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let all = modes(&data);
    for name in [
        "otp.db",
        "otp.db-wal",
        "otp.db-shm",
        "master.key",
        "host-api.key",
    ] {
        assert!(
            all.iter().any(|(p, _)| p.ends_with(name)),
            "{name} is there: {all:?}"
        );
    }
    for (path, mode) in &all {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{} is {mode:o}", path.display());
    }
    if is_root() {
        assert!(
            !nobody_reads(&data.join("otp.db")),
            "the directory keeps others out"
        );
        // Even with the directory opened by mistake, every file keeps others out.
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o711)).unwrap();
        std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o711)).unwrap();
        for (path, _) in modes(&data).iter().filter(|(p, _)| p.is_file()) {
            assert!(!nobody_reads(path), "another user read {}", path.display());
        }
        std::fs::set_permissions(&outbox, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    } else {
        eprintln!("not root: the runuser checks are skipped (CI runs them as root)");
    }
    drop(server);

    // A data directory or host API key others can read: the server refuses to start.
    let refused = |what: &'static str| {
        let envs = envs(&data);
        async move {
            let out = tokio::process::Command::new(BIN)
                .arg("serve")
                .env_remove("OTP_CONFIG")
                .env_remove("OTP_MASTER_KEY")
                .env_remove("OTP_API_KEYS")
                .env_remove("OTP_DATABASE_URL")
                .envs(envs)
                .output()
                .await
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            assert!(!out.status.success(), "{what}: the server must not start");
            err
        }
    };
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = refused("a 0755 data directory").await;
    assert!(
        err.contains("data directory") && err.contains("chmod 700"),
        "{err}"
    );
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::set_permissions(
        data.join("host-api.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = refused("a 0644 host-api.key").await;
    assert!(
        err.contains("host API key") && err.contains("chmod 600"),
        "{err}"
    );
}

/// `/readyz` needs no key, and each call was a durable write on the database (on SQLite its
/// one write connection): a flood of them queued the bank's own writes. A write probe that went
/// through now stands for a second: five calls in it write once (the probe row keeps the
/// first call's time, though the test's clock moved on), and after it the next call writes.
async fn readiness_writes_at_most_once_a_second(db: Db) {
    use sqlx::Connection as _;
    let env = Env::new(db).await;
    let base = listen(&env.state).await;
    let http = reqwest::Client::new();
    let ready = || {
        let http = http.clone();
        let url = format!("{base}/readyz");
        async move { http.get(url).send().await.unwrap().status().as_u16() }
    };
    let url = env.db.url.clone();
    let probed_at = || {
        let url = url.clone();
        async move {
            let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
            let (at,): (i64,) = sqlx::query_as("SELECT at FROM readiness_probe WHERE id = 1")
                .fetch_one(&mut c)
                .await
                .unwrap();
            at
        }
    };
    assert_eq!(ready().await, 200);
    let first = probed_at().await;
    env.clock.advance(10);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..5 {
        calls.spawn(ready());
    }
    assert!(calls.join_all().await.iter().all(|s| *s == 200));
    assert_eq!(probed_at().await, first, "one write stands for the second");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(ready().await, 200);
    assert_eq!(
        probed_at().await,
        first + 10,
        "a second later: written again"
    );
}
