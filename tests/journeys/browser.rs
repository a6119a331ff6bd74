//! The whole journey in a real browser: Playwright (npm `playwright-core`) driving Debian's
//! chromium through `tests/browser/journey.mjs`. This test starts the backend and a real SMTP
//! server, plus a small control server the script calls for what a person would do outside
//! the browser: read the mail, set the app up (through the app's provisioning API), read the
//! app's code (which moves the clock one step, so no code is a replay). Screenshots of every screen, Japanese and English, go to
//! `tests/artifacts/screens/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use tests::{download_url, free_port, mailed_password_in, parse_mail, Db, SmtpServer, TestEnv};

struct Control {
    env: TestEnv,
    smtp: SmtpServer,
    secret: Mutex<Option<protocol::Secret>>,
}

type Ctl = State<Arc<Control>>;

async fn mail(
    State(c): Ctl,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Json<Value> {
    let n: usize = q.get("n").and_then(|n| n.parse().ok()).unwrap_or(1);
    // `has`: the newest mail whose text holds it, among at least `n` (mails of one transaction
    // may land in either order).
    let m = match q.get("has") {
        None => parse_mail(&c.smtp.wait_for(n, Duration::from_secs(30)).await[n - 1]),
        Some(has) => {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            loop {
                let mails = c.smtp.wait_for(n, Duration::from_secs(30)).await;
                if let Some(m) = mails
                    .iter()
                    .map(|m| parse_mail(m))
                    .rfind(|m| m.body.contains(has.as_str()))
                {
                    break m;
                }
                assert!(std::time::Instant::now() < deadline, "no mail with {has}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    Json(json!({
        "to": m.to,
        "subject": m.subject,
        "body": m.body,
        "url": m.body.contains("/dl/").then(|| download_url(&m)),
        "mail_password": mailed_password_in(&m.body),
    }))
}

/// The app's side of setup, as the app does it: provisioning v2 (`POST /app/v2/setup/start`
/// and `/finish`, issue 18) with the IDs from the mail and the activation password the
/// customer chose, which never leaves this side.
async fn provision(State(c): Ctl, Json(v): Json<Value>) -> Json<Value> {
    let (state, start) = protocol::pake::client_start(
        "10112231".parse().unwrap(),
        v["user_id"].as_str().unwrap().parse().unwrap(),
        protocol::Sensitive(v["activation_password"].as_str().unwrap().to_owned()),
        protocol::DeviceInfo {
            platform: "android".into(),
            model: "Pixel 8".into(),
            os_version: "15".into(),
            app_version: "1.0.0".into(),
        },
    )
    .unwrap();
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/app/v2/setup/start", c.env.base))
        .json(&start)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        200,
        "the app's setup is accepted once the link was opened"
    );
    let (confirmed, finish) = state.on_server_reply(&res.json().await.unwrap()).unwrap();
    let res = http
        .post(format!("{}/app/v2/setup/finish", c.env.base))
        .json(&finish)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the app's key confirmation is accepted");
    let sealed = res.json().await.unwrap();
    *c.secret.lock().unwrap() = Some(confirmed.open_sealed(&sealed).unwrap());
    Json(json!({ "ok": true }))
}

async fn code(State(c): Ctl) -> Json<Value> {
    c.env.next_step();
    let guard = c.secret.lock().unwrap();
    let code = c.env.code(guard.as_ref().expect("provision first"));
    Json(json!({ "code": code }))
}

/// The app's 取引認証 screen, typed fallback: the transaction code for what the customer typed
/// into the app (bank, branch, account type, account number, amount).
async fn tx_code(State(c): Ctl, Json(v): Json<Value>) -> Json<Value> {
    let s = |k: &str| v[k].as_str().unwrap().to_owned();
    let kind = if s("type") == "2" {
        protocol::ocra::AccountType::Current
    } else {
        protocol::ocra::AccountType::Ordinary
    };
    let transaction = protocol::ocra::Transaction::new(
        &s("bank"),
        &s("branch"),
        kind,
        &s("account"),
        v["amount"].as_u64().unwrap(),
    )
    .unwrap();
    let guard = c.secret.lock().unwrap();
    let code = c
        .env
        .tx_code(guard.as_ref().expect("provision first"), &transaction);
    Json(json!({ "code": code }))
}

async fn advance(State(c): Ctl, Json(v): Json<Value>) -> Json<Value> {
    c.env.clock.advance(v["secs"].as_u64().unwrap());
    Json(json!({ "ok": true }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_in_chromium_with_screenshots() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script_dir = root.join("browser");
    assert!(
        script_dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in tests/browser (scripts/test.sh does)"
    );
    let maildir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(free_port(), maildir.path());
    let env = TestEnv::start(Db::Sqlite, Some(smtp.port)).await;
    env.customer("taro2026", "taro@example.jp").await;
    let base = env.base.clone();
    let ctl = Arc::new(Control {
        env,
        smtp,
        secret: Mutex::new(None),
    });
    let app = Router::new()
        .route("/mail", get(mail))
        .route("/provision", post(provision))
        .route("/code", get(code))
        .route("/advance", post(advance))
        .route("/tx-code", post(tx_code))
        .with_state(ctl.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let control = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let artifacts = root.join("artifacts/screens");
    std::fs::create_dir_all(&artifacts).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(script_dir.join("journey.mjs"))
        .env("BASE_URL", &base)
        .env("CONTROL_URL", &control)
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", "/usr/bin/chromium")
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), out)
        .await
        .expect("the browser journey finishes within 5 minutes")
        .expect("run node (Node 20)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "browser journey failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("JOURNEY OK"), "{stdout}");
    // What the browser did is in the database too.
    let store = ctl.env.engine.store();
    let customer = store.customer_by_login("taro2026").await.unwrap().unwrap();
    let transfers = store.transfers(customer.id).await.unwrap();
    assert_eq!(
        transfers.len(),
        2,
        "the refused man-in-the-browser transfer is not there"
    );
    assert_eq!(transfers[0].account_number.as_deref(), Some("1234567"));
    assert!(
        transfers[0].tx_digest.is_some(),
        "the first, to a new payee over 100,000 yen, was authenticated with a transaction code"
    );
    // The man-in-the-browser attempt: audited and counted as a failure (then reset by the
    // accepted code).
    let uid = ctl
        .env
        .engine
        .overview(customer.id)
        .await
        .unwrap()
        .token
        .unwrap()
        .user_id;
    let audit = store.audit_for_user(&uid, 1000, None).await.unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.action == "verify_transaction" && a.outcome == "invalid"),
        "the changed account's attempt is audited"
    );
    assert_eq!(
        customer.email.as_deref(),
        Some("taro-new@example.jp"),
        "the registered address was changed with a mailed password"
    );
    let ov = ctl.env.engine.overview(customer.id).await.unwrap();
    assert_eq!(
        ov.token.unwrap().state,
        backend::domain::TokenState::Deactivated
    );
    for name in [
        "login",
        "bop001-none",
        "issue-input",
        "issue-confirm",
        "issue-confirm-mailpw-error",
        "issue-complete",
        "download",
        "bok001",
        "bok002",
        "login-otp",
        "transfer-input",
        "transfer-confirm-tx",
        "transfer-confirm-tx-error",
        "transfer-done-tx",
        "bos001",
        "bos002",
        "transfer-confirm-mailpw",
        "email-input",
        "email-confirm",
        "email-done",
    ] {
        for lang in ["ja", "en"] {
            let p = artifacts.join(format!("{name}-{lang}.png"));
            assert!(p.exists(), "screenshot {} missing", p.display());
        }
    }
}
