//! The staff console (issue 7) in a real browser: Playwright (`tests/browser/staff.mjs`)
//! driving Debian's chromium through every action with both roles, on two backends (the
//! four-eyes rule off, and on). The script reports a reprovision's generated activation
//! password to a small control server (never to its output), and asks it for each staff
//! member's current code (their second factor) at login; this test then checks what the
//! browser did in the databases, and sets the reprovisioned token up with that password while
//! the old device's codes are refused. Screenshots go to `tests/artifacts/staff/`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use backend::domain::{Outcome, Purpose, TokenState};
use backend::engine::Actor;
use serde_json::{json, Value};

use tests::{free_port, Db, StaffCodes, TestDb, TestEnv};

const STAFF_PW: &str = "staff-password-123";

#[derive(Default)]
struct Reported {
    /// (user ID, generated activation password) of the reprovision the browser made.
    generated: Option<(String, String)>,
}

async fn generated(State(r): State<Arc<Mutex<Reported>>>, Json(v): Json<Value>) -> Json<Value> {
    r.lock().unwrap().generated = Some((
        v["user_id"].as_str().unwrap().to_owned(),
        v["password"].as_str().unwrap().to_owned(),
    ));
    Json(json!({ "ok": true }))
}

/// An active token (issued, link opened, set up, activated); returns its user ID and secret.
async fn active(env: &TestEnv, login: &str) -> (String, protocol::Secret) {
    env.customer(login, &format!("{login}@example.jp")).await;
    let issued = env
        .engine
        .issue_token(
            login,
            &format!("{login}@example.jp"),
            tests::z("1234"),
            &Actor::cli(),
        )
        .await
        .unwrap();
    env.engine
        .open_link(&issued.user_id, &Actor::cli())
        .await
        .unwrap();
    let secret = env.provision(&issued.user_id, "1234").await;
    let r = env
        .engine
        .verify(
            &issued.user_id,
            tests::z(&env.code(&secret)),
            Purpose::Activation,
            Actor::cli(),
        )
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
    env.next_step();
    (issued.user_id, secret)
}

async fn staff(env: &TestEnv, login: &str, role: &str) -> i64 {
    env.staff(login, role, STAFF_PW).await
}

/// The current code of a staff member, for the browser's login form: `{"base": "1" | "4",
/// "login": …}` (backend 1 or the four-eyes backend).
async fn staff_code(
    State(codes): State<Arc<[StaffCodes; 2]>>,
    Json(v): Json<Value>,
) -> Json<Value> {
    let which = usize::from(v["base"].as_str() == Some("4"));
    let code = codes[which].code(v["login"].as_str().unwrap()).await;
    Json(json!({ "code": code }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_console_in_chromium_every_action_both_roles() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script_dir = root.join("browser");
    assert!(
        script_dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in tests/browser (scripts/test.sh does)"
    );
    // Backend 1: four-eyes off.
    let env = TestEnv::start(Db::Sqlite, None).await;
    let op = staff(&env, "op0001", "operator").await;
    let sup_a = staff(&env, "supA001", "supervisor").await;
    env.customer("plain001", "plain@example.jp").await;
    let (lock_uid, _) = active(&env, "lock0001").await;
    for _ in 0..5 {
        env.engine
            .verify(&lock_uid, tests::z("000000"), Purpose::Login, Actor::cli())
            .await
            .unwrap();
    }
    env.customer("mail0001", "mail0001@example.jp").await;
    let mail_uid = env
        .engine
        .issue_token(
            "mail0001",
            "mail0001@example.jp",
            tests::z("1234"),
            &Actor::cli(),
        )
        .await
        .unwrap()
        .user_id;
    let (lost_uid, lost_secret) = active(&env, "lost0001").await;
    let (move_uid, move_secret) = active(&env, "move0001").await;
    let (self_uid, _) = active(&env, "self0001").await;
    // Backend 2: four-eyes on.
    let db4 = TestDb::new(Db::Sqlite).await;
    let mut cfg4 = tests::config(&db4, free_port(), None);
    cfg4.staff.four_eyes = true;
    let env4 = TestEnv::start_with(
        db4,
        cfg4,
        Arc::new(backend::engine::ManualClock::new(tests::T0)),
    )
    .await;
    staff(&env4, "op0001", "operator").await;
    let a4 = staff(&env4, "supA001", "supervisor").await;
    let b4 = staff(&env4, "supB001", "supervisor").await;
    let (four_uid, _) = active(&env4, "four0001").await;

    let reported = Arc::new(Mutex::new(Reported::default()));
    let codes = Arc::new([env.staff_codes(), env4.staff_codes()]);
    let app = Router::new()
        .route("/generated", post(generated))
        .with_state(reported.clone())
        .merge(
            Router::new()
                .route("/staff-code", post(staff_code))
                .with_state(codes),
        );
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let control = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let artifacts = root.join("artifacts/staff");
    std::fs::create_dir_all(&artifacts).unwrap();
    let out = tokio::process::Command::new("node")
        .arg(script_dir.join("staff.mjs"))
        .env("BASE_URL", &env.base)
        .env("BASE4_URL", &env4.base)
        .env("CONTROL_URL", &control)
        .env("ARTIFACTS", &artifacts)
        .env("CHROMIUM", "/usr/bin/chromium")
        .env("STAFF_PW", STAFF_PW)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), out)
        .await
        .expect("the staff journey finishes within 5 minutes")
        .expect("run node (Node 20)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "staff browser journey failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("STAFF JOURNEY OK"), "{stdout}");

    // What the browser did, as the databases and audit trails have it.
    let audit_of = |e: &TestEnv, login: &'static str| {
        let store = e.engine.store().clone();
        async move {
            let c = store.customer_by_login(login).await.unwrap().unwrap();
            store.audit_for_customer(c.id, 1000, None).await.unwrap()
        }
    };
    let status = env.engine.token_status(&lock_uid).await.unwrap();
    assert!(!status.locked, "the operator unlocked it");
    assert!(audit_of(&env, "lock0001")
        .await
        .iter()
        .any(|a| a.action == "unlock" && a.actor == format!("staff:{op}")));
    let outbox = env.engine.store().outbox(200).await.unwrap();
    assert_eq!(
        outbox
            .iter()
            .filter(|m| m.kind == "issuance" && m.user_id.as_deref() == Some(&mail_uid))
            .count(),
        2,
        "the setup mail was resent"
    );
    assert!(audit_of(&env, "mail0001")
        .await
        .iter()
        .any(|a| a.action == "resend_setup_mail" && a.actor == format!("staff:{op}")));
    assert_eq!(
        env.engine.token_status(&lost_uid).await.unwrap().state,
        TokenState::Revoked
    );
    let r = env
        .engine
        .verify(
            &lost_uid,
            tests::z(&env.code(&lost_secret)),
            Purpose::Login,
            Actor::cli(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.result,
        Outcome::NotActive,
        "a revoked token's codes are refused"
    );
    assert!(audit_of(&env, "lost0001")
        .await
        .iter()
        .any(|a| a.action == "revoke" && a.actor == format!("staff:{sup_a}")));
    // The generated-password reprovision: the new token sets up with the password the
    // supervisor read out, activates; the old phone's codes are refused.
    let (new_uid, password) = reported.lock().unwrap().generated.clone().unwrap();
    assert_ne!(new_uid, move_uid);
    let mail = outbox
        .iter()
        .find(|m| m.kind == "issuance" && m.user_id.as_deref() == Some(&new_uid))
        .expect("the new setup mail");
    assert_eq!(mail.to_addr, "move-new@example.jp");
    // (The mail worker has sent it and cleared its body; open the link as the engine does.)
    env.engine.open_link(&new_uid, &Actor::cli()).await.unwrap();
    let secret = env.provision(&new_uid, &password).await;
    let r = env
        .engine
        .verify(
            &new_uid,
            tests::z(&env.code(&secret)),
            Purpose::Activation,
            Actor::cli(),
        )
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok, "the reprovisioned token works");
    let r = env
        .engine
        .verify(
            &move_uid,
            tests::z(&env.code(&move_secret)),
            Purpose::Login,
            Actor::cli(),
        )
        .await
        .unwrap();
    assert_eq!(
        r.result,
        Outcome::NotActive,
        "the old phone's codes are refused"
    );
    // The customer-chosen reprovision: old token revoked, the next-day rule waived.
    assert_eq!(
        env.engine.token_status(&self_uid).await.unwrap().state,
        TokenState::Revoked
    );
    let c = env
        .engine
        .store()
        .customer_by_login("self0001")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.reissue_waived, 1);
    // Four-eyes: revoked by the second supervisor, requested by the first.
    assert_eq!(
        env4.engine.token_status(&four_uid).await.unwrap().state,
        TokenState::Revoked
    );
    let a = audit_of(&env4, "four0001").await;
    assert!(a
        .iter()
        .any(|x| x.action == "revoke_requested" && x.actor == format!("staff:{a4}")));
    assert!(a
        .iter()
        .any(|x| x.action == "revoke" && x.actor == format!("staff:{b4}")));
    for name in [
        "login",
        "customer-locked",
        "customer-unlocked",
        "resend",
        "operator-no-revoke",
        "revoked",
        "reprovision-form",
        "reprovisioned-generated",
        "reprovisioned-customer",
        "approvals-own",
        "approvals-other",
        "four-eyes-revoked",
    ] {
        let p = artifacts.join(format!("{name}.png"));
        assert!(p.exists(), "screenshot {} missing", p.display());
    }
}
