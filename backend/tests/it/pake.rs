//! Provisioning v2 (issue 18) over a real listener: the happy path, and the attacks the PAKE is
//! there for. A recording of a setup does not open the secret, even with the right password;
//! a man in the middle who swaps PAKE messages is detected and counted; a replayed first
//! message is refused; five failed attempts kill the issuance, also when the exchanges are
//! started concurrently; an exchange left unfinished expires after 2 minutes and counts; v1 is
//! refused by default.

use backend::config::Config;
use backend::domain::{Outcome, Purpose};
use protocol::pake::{client_start, ClientStart, PakeError};
use protocol::wire::v2::{
    HexBytes, SetupFinishRequest, SetupFinishResponse, SetupStartRequest, SetupStartResponse,
};
use protocol::{code_at, Secret, Sensitive, ServiceId, TotpParams, UserId};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::both_dbs;
use crate::support::*;

const RIGHT: &str = "1234";

struct PakeServer {
    base: String,
    http: reqwest::Client,
    env: Env,
}

/// v2 only, as a deployment runs by default; limits high enough that the tests meet the
/// attempt rule, not the rate limits.
fn v2_only(cfg: &mut Config) {
    cfg.app_api = backend::config::AppApiConfig {
        per_ip: 1000,
        per_user_id: 1000,
        ..Default::default()
    };
}

impl PakeServer {
    async fn start(db: Db) -> PakeServer {
        let env = Env::with_config(db, v2_only).await;
        let base = listen(&env.state).await;
        PakeServer {
            base,
            http: reqwest::Client::new(),
            env,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// A customer whose token's link was opened: ready for setup. Returns the user ID.
    async fn ready(&self, login: &str) -> String {
        self.env.customer(login).await;
        let uid = self.env.issue(login).await;
        self.env.engine.open_link(&uid, &host()).await.unwrap();
        uid
    }

    async fn start_setup(&self, req: &SetupStartRequest) -> (StatusCode, Value) {
        self.post("/app/v2/setup/start", &serde_json::to_value(req).unwrap())
            .await
    }

    async fn finish_setup(&self, req: &SetupFinishRequest) -> (StatusCode, Value) {
        self.post("/app/v2/setup/finish", &serde_json::to_value(req).unwrap())
            .await
    }

    /// The same path posted with each body at once; answers in the bodies' order.
    async fn concurrently(&self, path: &str, bodies: Vec<Value>) -> Vec<(StatusCode, Value)> {
        let tasks: Vec<_> = bodies
            .into_iter()
            .map(|body| {
                let http = self.http.clone();
                let url = format!("{}{path}", self.base);
                tokio::spawn(async move {
                    let res = http.post(url).json(&body).send().await.unwrap();
                    let status = res.status();
                    (status, res.json().await.unwrap_or(Value::Null))
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    async fn failures(&self, uid: &str) -> i64 {
        self.row(uid).await.activation_failures
    }

    async fn row(&self, uid: &str) -> backend::store::TokenRow {
        self.env
            .engine
            .store()
            .token_by_user_id(uid)
            .await
            .unwrap()
            .unwrap()
    }
}

fn app(uid: &str, password: &str) -> (ClientStart, SetupStartRequest) {
    client_start(
        ServiceId::parse("10112231").unwrap(),
        UserId::parse(uid).unwrap(),
        Sensitive(password.to_owned()),
        device(),
    )
    .unwrap()
}

/// A v1 setup request for `uid` with the right activation password.
fn v1_setup_body(uid: &str) -> Value {
    json!({
        "service_id": "10112231",
        "user_id": uid,
        "activation_password": RIGHT,
        "device": {"platform": "android", "model": "Pixel 8", "os_version": "15", "app_version": "1.0.0"}
    })
}

fn code_of(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

fn start_response(v: &Value) -> SetupStartResponse {
    serde_json::from_value(v.clone()).unwrap()
}

/// The whole setup as the app runs it; returns the secret and every message both sides sent,
/// as JSON (what a reader of the TLS session would have).
async fn full_setup(s: &PakeServer, uid: &str) -> (Secret, [Value; 4]) {
    full_setup_with(s, uid, RIGHT).await
}

async fn full_setup_with(s: &PakeServer, uid: &str, password: &str) -> (Secret, [Value; 4]) {
    let (state, req) = app(uid, password);
    let (status, start_res) = s.start_setup(&req).await;
    assert_eq!(status, StatusCode::OK, "{start_res}");
    let (confirmed, finish) = state.on_server_reply(&start_response(&start_res)).unwrap();
    let (status, finish_res) = s.finish_setup(&finish).await;
    assert_eq!(status, StatusCode::OK, "{finish_res}");
    let sealed: SetupFinishResponse = serde_json::from_value(finish_res.clone()).unwrap();
    let secret = confirmed.open_sealed(&sealed).unwrap();
    let recording = [
        serde_json::to_value(&req).unwrap(),
        start_res,
        serde_json::to_value(&finish).unwrap(),
        finish_res,
    ];
    (secret, recording)
}

async fn a_setup_provisions_once_with_the_secret_sealed(db: Db) {
    let s = PakeServer::start(db).await;
    let uid = s.ready("pake01").await;
    let (secret, recording) = full_setup(&s, &uid).await;
    assert_eq!(
        s.failures(&uid).await,
        0,
        "the proved attempt was given back"
    );
    assert_eq!(s.row(&uid).await.state.as_str(), "provisioned");
    for v in &recording {
        let text = v.to_string();
        assert!(!text.contains("activation_password"), "{text}");
        assert!(
            !text.contains(secret.to_base32().as_str()),
            "the secret never travels in clear"
        );
    }
    // The secret the app opened is the token's: it activates.
    let code = code_at(&secret, &TotpParams::default(), s.env.now());
    let r = s
        .env
        .engine
        .verify(
            &uid,
            Zeroizing::new(code.as_str().to_owned()),
            Purpose::Activation,
            host(),
        )
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
    // Once only, as v1.
    let (_, req) = app(&uid, RIGHT);
    let (status, v) = s.start_setup(&req).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code_of(&v), "ALREADY_PROVISIONED");
    // Audited like v1, naming the protocol, never the password.
    let audit = s.env.audit(&uid).await;
    let provision: Vec<_> = audit.iter().filter(|a| a.action == "provision").collect();
    assert!(
        provision
            .iter()
            .any(|a| a.outcome == "ok" && a.detail.as_deref().unwrap_or("").contains("v2")),
        "{:?}",
        provision.iter().map(|a| &a.outcome).collect::<Vec<_>>()
    );
    assert!(provision.iter().any(|a| a.outcome == "started"));
}

/// Issue 18 item 5: every byte of a successful setup, together with the right activation
/// password, does not open the sealed secret; and the recording offers no check of a candidate
/// password (the right one and a wrong one fail the same way).
async fn a_recording_does_not_open_the_secret_even_with_the_password(db: Db) {
    let s = PakeServer::start(db).await;
    let uid = s.ready("pake02").await;
    let (secret, [_start_req, start_res, _finish_req, finish_res]) = full_setup(&s, &uid).await;
    let recorded_ke2 = start_response(&start_res);
    let sealed: SetupFinishResponse = serde_json::from_value(finish_res).unwrap();
    let mut outcomes = Vec::new();
    for candidate in [RIGHT, "9999", "12345678"] {
        // The eavesdropper runs the app's side with the candidate against the recorded reply:
        // its KE1 has fresh ephemeral keys and blind, so the recorded KE2 does not verify.
        let (state, _) = app(&uid, candidate);
        let outcome = match state.on_server_reply(&recorded_ke2) {
            Err(e) => Err(e),
            Ok((confirmed, _)) => confirmed.open_sealed(&sealed).map(|opened| {
                assert!(opened != secret, "the recording opened the secret");
            }),
        };
        outcomes.push(outcome);
    }
    assert!(
        outcomes
            .iter()
            .all(|o| *o == Err(PakeError::ServerNotConfirmed)),
        "the right password and wrong ones fail alike: {outcomes:?}"
    );
}

/// A man in the middle swapping PAKE messages: the app detects a swapped KE2, the server a
/// swapped or altered KE3; every such exchange is a counted failure.
async fn a_man_in_the_middle_is_detected_and_counted(db: Db) {
    let s = PakeServer::start(db).await;
    let uid = s.ready("pake03").await;

    // 1. The app starts; the MITM starts its own exchange (guessing a password) and hands the
    //    app its own KE2 instead of the app's. The app refuses it and sends nothing.
    let (app_state, app_req) = app(&uid, RIGHT);
    let (status, app_res) = s.start_setup(&app_req).await;
    assert_eq!(status, StatusCode::OK);
    let (mitm_state, mitm_req) = app(&uid, "9999");
    let (status, mitm_res) = s.start_setup(&mitm_req).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        app_state
            .on_server_reply(&start_response(&mitm_res))
            .unwrap_err(),
        PakeError::ServerNotConfirmed,
        "a swapped KE2 is detected by the app"
    );
    // (the MITM's own guess fails on its side too)
    assert_eq!(
        mitm_state
            .on_server_reply(&start_response(&app_res))
            .unwrap_err(),
        PakeError::ServerNotConfirmed
    );
    assert_eq!(
        s.failures(&uid).await,
        2,
        "both exchanges hold a counted attempt"
    );

    // 2. An honest exchange whose KE3 the MITM moves to another exchange, or alters: the
    //    server detects it, answers with the wrong-password refusal, and the attempt counts.
    let (a, a_req) = app(&uid, RIGHT);
    let (_, a_res) = s.start_setup(&a_req).await;
    let (b, b_req) = app(&uid, RIGHT);
    let (_, b_res) = s.start_setup(&b_req).await;
    let (_, a_finish) = a.on_server_reply(&start_response(&a_res)).unwrap();
    let (_, b_finish) = b.on_server_reply(&start_response(&b_res)).unwrap();
    let swapped = SetupFinishRequest {
        exchange_id: b_finish.exchange_id.clone(),
        key_confirmation: a_finish.key_confirmation.clone(),
    };
    let (status, v) = s.finish_setup(&swapped).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(code_of(&v), "WRONG_ACTIVATION_PASSWORD");
    let mut altered = a_finish.key_confirmation.0.clone();
    altered[0] ^= 1;
    let (status, v) = s
        .finish_setup(&SetupFinishRequest {
            exchange_id: a_finish.exchange_id.clone(),
            key_confirmation: HexBytes(altered),
        })
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    assert_eq!(v["attempts_left"], 1, "{v}");
    // A failed finish used its exchange up: the genuine KE3 now finds nothing.
    let (status, v) = s.finish_setup(&a_finish).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    assert_eq!(code_of(&v), "SETUP_EXCHANGE_UNKNOWN");
    assert_eq!(s.failures(&uid).await, 4);
    assert_eq!(s.row(&uid).await.state.as_str(), "link_opened");
    let audit = s.env.audit(&uid).await;
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "provision" && a.outcome == "WRONG_ACTIVATION_PASSWORD")
            .count(),
        2
    );
}

async fn a_replayed_first_message_is_refused(db: Db) {
    let s = PakeServer::start(db).await;
    let uid = s.ready("pake04").await;
    let (_state, req) = app(&uid, RIGHT);
    let (status, _) = s.start_setup(&req).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = s.start_setup(&req).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(code_of(&v), "PAKE_REPLAYED");
    assert_eq!(
        s.failures(&uid).await,
        1,
        "a refused replay counts nothing more"
    );
    // Concurrent replays of a fresh message: one exchange at most.
    let (_state, req) = app(&uid, RIGHT);
    let body = serde_json::to_value(&req).unwrap();
    let answers = s.concurrently("/app/v2/setup/start", vec![body; 4]).await;
    let ok = answers
        .iter()
        .filter(|(st, _)| *st == StatusCode::OK)
        .count();
    assert_eq!(ok, 1, "{answers:?}");
    assert_eq!(s.failures(&uid).await, 2);
    assert!(answers.iter().all(|(st, v)| *st == StatusCode::OK
        || code_of(v) == "PAKE_REPLAYED"
        || *st == StatusCode::SERVICE_UNAVAILABLE));
}

/// Five failed exchanges (abandoned by the app, or refused by the server) and the issuance is
/// dead: the right password is refused, and once nothing is open the token is voided.
async fn five_failures_kill_the_issuance(db: Db) {
    let s = PakeServer::start(db).await;
    let uid = s.ready("pake05").await;
    for i in 0..5 {
        let (state, req) = app(&uid, "9999");
        let (status, res) = s.start_setup(&req).await;
        assert_eq!(status, StatusCode::OK, "attempt {i}: {res}");
        // The app sees the wrong password and sends nothing; every other one, a MITM sends a
        // made-up confirmation.
        assert!(state.on_server_reply(&start_response(&res)).is_err());
        if i % 2 == 1 {
            let fake = SetupFinishRequest {
                exchange_id: start_response(&res).exchange_id,
                key_confirmation: HexBytes(vec![7; 64]),
            };
            let (status, _) = s.finish_setup(&fake).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
        }
    }
    assert_eq!(s.failures(&uid).await, 5);
    let (_, req) = app(&uid, RIGHT);
    let (status, v) = s.start_setup(&req).await;
    assert_eq!(status, StatusCode::GONE, "{v}");
    assert_eq!(code_of(&v), "ISSUANCE_DEAD");
    // Once the abandoned exchanges have expired, the issuance is voided.
    s.env.clock.advance(121);
    let (_, req) = app(&uid, RIGHT);
    let (status, v) = s.start_setup(&req).await;
    assert_eq!(code_of(&v), "ISSUANCE_DEAD", "{status} {v}");
    let row = s.row(&uid).await;
    assert_eq!(row.state.as_str(), "voided");
    assert_eq!(row.void_reason.as_deref(), Some("activation_failures"));
}

/// Five starts that are never finished (someone who knows the user ID, without the password)
/// end the issuance when the last of them expires, with no further call: before, it stayed
/// "link opened" until something called again (up to the 7 days of an issuance), the
/// customer could not apply again meanwhile, and staff could resend its setup mail.
async fn five_unfinished_starts_end_the_issuance_when_the_last_expires(db: Db) {
    let s = PakeServer::start(db).await;
    let uid = s.ready("pake09").await;
    for i in 0..5 {
        let (_, req) = app(&uid, "9999");
        let (status, res) = s.start_setup(&req).await;
        assert_eq!(status, StatusCode::OK, "attempt {i}: {res}");
    }
    s.env.clock.advance(121);
    // The customer applies again: the dead issuance gives way.
    let again = s.env.issue("pake09").await;
    assert_ne!(again, uid);
    let row = s.row(&uid).await;
    assert_eq!(row.state.as_str(), "voided");
    assert_eq!(row.void_reason.as_deref(), Some("activation_failures"));
}

/// An exchange's sealed state names the token it was started for: its row pointed at another
/// token (a write to the database, without the master key) provisions nothing. Before, the
/// finish took the token from the row, and whoever knew one issuance's password could have
/// the other's secret sealed for them.
async fn an_exchange_moved_to_another_token_provisions_nothing(db: Db) {
    let s = PakeServer::start(db).await;
    let a = s.ready("pake10").await;
    let b = s.ready("pake11").await;
    let (state, req) = app(&a, RIGHT);
    let (status, start_res) = s.start_setup(&req).await;
    assert_eq!(status, StatusCode::OK, "{start_res}");
    let (_, finish) = state.on_server_reply(&start_response(&start_res)).unwrap();
    {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&s.env.db.url).await.unwrap();
        sqlx::query(&format!(
            "UPDATE pake_exchanges SET token_id = (SELECT id FROM tokens WHERE user_id = '{b}') \
             WHERE token_id = (SELECT id FROM tokens WHERE user_id = '{a}')"
        ))
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    }
    let (status, v) = s.finish_setup(&finish).await;
    assert_ne!(status, StatusCode::OK, "{v}");
    assert_eq!(
        s.row(&b).await.state.as_str(),
        "link_opened",
        "nothing provisioned"
    );
}

/// Many exchanges started at once get no more than five guesses between them.
async fn concurrent_starts_get_at_most_five_guesses(db: Db) {
    let s = PakeServer::start(db).await;
    let uid = s.ready("pake06").await;
    let apps: Vec<_> = (0..12).map(|_| app(&uid, RIGHT)).collect();
    let bodies = apps
        .iter()
        .map(|(_, req)| serde_json::to_value(req).unwrap())
        .collect();
    let answers = s.concurrently("/app/v2/setup/start", bodies).await;
    let ok: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, (st, _))| *st == StatusCode::OK)
        .map(|(i, _)| i)
        .collect();
    assert!(!ok.is_empty() && ok.len() <= 5, "{answers:?}");
    assert_eq!(s.failures(&uid).await, i64::try_from(ok.len()).unwrap());
    for (st, v) in &answers {
        assert!(
            *st == StatusCode::OK
                || code_of(v) == "ISSUANCE_DEAD"
                || *st == StatusCode::SERVICE_UNAVAILABLE,
            "{st} {v}"
        );
    }
    // All of them finished at once: the secret is handed out once.
    let mut finishes = Vec::new();
    for (i, (state, _)) in apps.into_iter().enumerate() {
        if ok.contains(&i) {
            let (_, finish) = state
                .on_server_reply(&start_response(&answers[i].1))
                .unwrap();
            finishes.push(finish);
        }
    }
    let bodies = finishes
        .iter()
        .map(|f| serde_json::to_value(f).unwrap())
        .collect();
    let done = s.concurrently("/app/v2/setup/finish", bodies).await;
    let provisioned = done.iter().filter(|(st, _)| *st == StatusCode::OK).count();
    assert_eq!(provisioned, 1, "{done:?}");
    assert!(done
        .iter()
        .all(|(st, v)| *st == StatusCode::OK || code_of(v) == "ALREADY_PROVISIONED"));
}

/// An exchange not finished within 2 minutes is refused, and its attempt stays counted.
async fn an_unfinished_exchange_expires_and_counts(db: Db) {
    let s = PakeServer::start(db).await;
    let uid = s.ready("pake07").await;
    let (state, req) = app(&uid, RIGHT);
    let (_, res) = s.start_setup(&req).await;
    let (_, finish) = state.on_server_reply(&start_response(&res)).unwrap();
    s.env.clock.advance(120);
    let (status, v) = s.finish_setup(&finish).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    assert_eq!(code_of(&v), "SETUP_EXCHANGE_EXPIRED");
    assert_eq!(s.failures(&uid).await, 1);
    let (status, v) = s.finish_setup(&finish).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    // A new exchange still works, and the expired one stays counted.
    full_setup(&s, &uid).await;
    assert_eq!(s.failures(&uid).await, 1);
}

/// A supervisor's reprovision of `login`'s token `uid` to a new phone, with a generated
/// activation password (applied, or queued for a second supervisor under four eyes).
async fn reprovision_generated(
    env: &Env,
    sup: &backend::engine::staff::StaffMember,
    login: &str,
    uid: &str,
) -> backend::engine::staff::Reprovisioned {
    env.engine
        .staff_reprovision(
            sup,
            crate::staff::customer_id(env, login).await,
            Some(uid),
            "new phone",
            backend::engine::staff::PasswordChoice::Generated,
            Some("new@example.jp"),
            None,
        )
        .await
        .unwrap()
}

/// Issue 18 item 4: the staff's generated activation passwords work the same way (the
/// reprovision makes the OPAQUE record, also when a second supervisor approves it later).
async fn a_staff_generated_password_provisions_through_v2(db: Db) {
    use backend::engine::staff::StaffDone;
    let s = PakeServer::start(db).await;
    let (uid, _) = s.env.active_token("pake09").await;
    let sup = crate::staff::staff(&s.env, "sup0001", "supervisor").await;
    let r = reprovision_generated(&s.env, &sup, "pake09", &uid).await;
    let password = r.generated_password.unwrap();
    let new_uid = match r.done {
        StaffDone::Applied { new_user_id } => new_user_id.unwrap(),
        StaffDone::Requested { request_id } => {
            let second = crate::staff::staff(&s.env, "sup0002", "supervisor").await;
            s.env
                .engine
                .staff_approve(&second, request_id, None)
                .await
                .unwrap()
                .unwrap()
        }
    };
    s.env.engine.open_link(&new_uid, &host()).await.unwrap();
    let (wrong, req) = app(&new_uid, "00000000");
    let (_, res) = s.start_setup(&req).await;
    assert!(wrong.on_server_reply(&start_response(&res)).is_err());
    let (secret, _) = full_setup_with(&s, &new_uid, password.as_str()).await;
    let code = code_at(&secret, &TotpParams::default(), s.env.now());
    let r = s
        .env
        .engine
        .verify(
            &new_uid,
            Zeroizing::new(code.as_str().to_owned()),
            Purpose::Activation,
            host(),
        )
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
}

async fn v1_is_refused_by_default(db: Db) {
    assert!(!backend::config::AppApiConfig::default().allow_v1_setup);
    let s = PakeServer::start(db).await;
    let uid = s.ready("pake08").await;
    let (status, v) = s.post("/app/v1/setup", &v1_setup_body(&uid)).await;
    assert_eq!(status, StatusCode::GONE, "{v}");
    assert_eq!(code_of(&v), "SETUP_V1_DISABLED");
    assert_eq!(s.failures(&uid).await, 0);
    assert_eq!(s.row(&uid).await.state.as_str(), "link_opened");
}

/// The stop-24 review's gap: with v1 off (the default) an issuance kept the v1 Argon2 hash of
/// its 4 to 8 digits beside the OPAQUE record, so a thief of the database alone could guess
/// them offline and then set the token up through v2. With v1 off no hash is written; v1
/// refuses such a token without spending an attempt; v2 sets it up as before.
async fn with_v1_off_an_issuance_keeps_no_password_hash(db: Db) {
    let s = PakeServer::start(db).await;
    let uid = s.ready("pake10").await;
    let kept = s.row(&uid).await.activation_password_hash;
    assert!(
        !kept.contains("argon2"),
        "an issuance with v1 off keeps no v1 hash: {kept:?}"
    );
    assert_eq!(kept, "");
    // The engine's v1 path (as a server with v1 turned on later would call it).
    let err = s
        .env
        .engine
        .provision(
            &ServiceId::parse("10112231").unwrap(),
            &UserId::parse(&uid).unwrap(),
            Zeroizing::new(RIGHT.to_owned()),
            &device(),
            &host(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "SETUP_V1_NOT_REGISTERED");
    // Over HTTP, from a server on the same database with v1 turned on.
    let mut v1_on = s.env.cfg.clone();
    v1_on.app_api.allow_v1_setup = true;
    let (state, _) = backend::build(&v1_on, Box::new(s.env.clock.clone()))
        .await
        .unwrap();
    let base = listen(&state).await;
    let res = s
        .http
        .post(format!("{base}/app/v1/setup"))
        .json(&v1_setup_body(&uid))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let v: Value = res.json().await.unwrap();
    assert_eq!(code_of(&v), "SETUP_V1_NOT_REGISTERED");
    assert_eq!(s.failures(&uid).await, 0, "no attempt spent");
    let (secret, _) = full_setup(&s, &uid).await;
    let r = s
        .env
        .engine
        .verify(
            &uid,
            Zeroizing::new(
                code_at(&secret, &TotpParams::default(), s.env.now())
                    .as_str()
                    .to_owned(),
            ),
            Purpose::Activation,
            host(),
        )
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
}

/// With v1 on, the hash is kept for setup only: once the token is set up (either way) it is
/// gone from the row.
async fn the_v1_hash_goes_once_the_token_is_set_up(db: Db) {
    let env = Env::new(db).await;
    env.customer("pake11").await;
    let uid = env.issue("pake11").await;
    let row = |uid: String| {
        let store = env.engine.store().clone();
        async move { store.token_by_user_id(&uid).await.unwrap().unwrap() }
    };
    assert!(row(uid.clone())
        .await
        .activation_password_hash
        .starts_with("$argon2"));
    env.engine.open_link(&uid, &host()).await.unwrap();
    env.provision(&uid).await;
    assert_eq!(
        row(uid.clone()).await.activation_password_hash,
        "",
        "v1 setup"
    );
    env.customer("pake12").await;
    let uid = env.issue("pake12").await;
    env.engine.open_link(&uid, &host()).await.unwrap();
    env.provision_v2(&uid, "1234").await.unwrap();
    assert_eq!(row(uid).await.activation_password_hash, "", "v2 setup");
    // An issuance that expired unused is voided by the next application: its hash goes too.
    env.customer("pake16").await;
    let first = env.issue("pake16").await;
    env.clock.advance(8 * 86_400);
    env.issue("pake16").await;
    let voided = row(first).await;
    assert_eq!(voided.state.as_str(), "voided");
    assert_eq!(voided.activation_password_hash, "", "voided");
}

/// Migration 0019 clears the v1 hash of every token no longer awaiting setup (set up, voided),
/// once: a database from before it (its rows as then: a set-up token still with its hash) is
/// brought forward, and a pending issuance keeps its hash. The migration is run again on the
/// same database by forgetting that it ran.
async fn migration_0019_clears_the_hash_of_tokens_past_setup(db: Db) {
    use sqlx::Connection as _;
    let env = Env::new(db).await;
    let (active, _) = env.active_token("pake18").await;
    env.customer("pake19").await;
    let pending = env.issue("pake19").await;
    let bare = env.engine.hash_password(z("1234")).await.unwrap();
    let mut c = sqlx::AnyConnection::connect(&env.db.url).await.unwrap();
    // As a database before 0019 had it.
    sqlx::query("UPDATE tokens SET activation_password_hash = $1 WHERE user_id = $2")
        .bind(&bare)
        .bind(&active)
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 19")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    assert_eq!(kept_hash(&env.engine, &active).await, bare);
    let (state, _) = backend::build(&env.cfg, Box::new(env.clock.clone()))
        .await
        .unwrap();
    assert_eq!(
        kept_hash(&state.engine, &active).await,
        "",
        "set up: cleared"
    );
    assert!(
        kept_hash(&state.engine, &pending)
            .await
            .starts_with("$argon2"),
        "awaiting setup (v1 on here): kept"
    );
}

/// The row's kept v1 hash, read from the store of `engine`.
async fn kept_hash(engine: &backend::engine::Engine, uid: &str) -> String {
    engine
        .store()
        .token_by_user_id(uid)
        .await
        .unwrap()
        .unwrap()
        .activation_password_hash
}

/// Issuances made while v1 was on keep their hash only until a server starts with v1 off (the
/// real `serve`): then the hashes of tokens v2 can set up are dropped, and v2 still sets them
/// up. A token issued before v2 (a bare hash, no OPAQUE record) keeps its only credential.
async fn serving_with_v1_off_drops_the_hashes_v2_does_not_need(db: Db) {
    use backend::engine::staff::StaffDone;
    let env = Env::with_config(db, |c| c.staff.four_eyes = true).await;
    env.customer("pake13").await;
    let uid = env.issue("pake13").await;
    env.engine.open_link(&uid, &host()).await.unwrap();
    env.customer("pake14").await;
    let cid = crate::staff::customer_id(&env, "pake14").await;
    let bare = env.engine.hash_password(z("5678")).await.unwrap();
    let (old, _) = env
        .engine
        .issue_hashed(cid, "old@example.jp", &bare, None, &host())
        .await
        .unwrap();
    assert!(kept_hash(&env.engine, &uid).await.starts_with("$argon2"));
    // A four-eyes reprovision queued meanwhile: its credential carries the hash too.
    let (active, _) = env.active_token("pake17").await;
    let sup = crate::staff::staff(&env, "sup0001", "supervisor").await;
    let r = reprovision_generated(&env, &sup, "pake17", &active).await;
    let StaffDone::Requested { request_id } = r.done else {
        panic!("four eyes: a request")
    };
    let params = |engine: backend::engine::Engine| async move {
        engine
            .store()
            .staff_request(request_id)
            .await
            .unwrap()
            .unwrap()
            .params
    };
    assert!(params(env.engine.clone()).await.contains("$argon2"));
    // A CLI command with v1 off (its default) changes nothing: only a serving server drops.
    let mut v1_off = env.cfg.clone();
    v2_only(&mut v1_off);
    let (other, _) = backend::build(&v1_off, Box::new(env.clock.clone()))
        .await
        .unwrap();
    drop(other);
    assert!(kept_hash(&env.engine, &uid).await.starts_with("$argon2"));
    let server = crate::process::Proc::start(&env.db, &[]).await;
    assert_eq!(
        kept_hash(&env.engine, &uid).await,
        "",
        "dropped at start-up"
    );
    assert_eq!(
        kept_hash(&env.engine, &old.user_id).await,
        bare,
        "pre-v2: kept"
    );
    let queued = params(env.engine.clone()).await;
    assert!(
        !queued.contains("$argon2") && queued.contains("pake1$"),
        "the pending request keeps its OPAQUE record, not the hash: {queued}"
    );
    assert!(server
        .logs
        .lock()
        .unwrap()
        .iter()
        .any(|l| l.contains("dropped the v1 activation-password hashes")));
    drop(server);
    env.provision_v2(&uid, "1234").await.unwrap();
}

/// A staff request queued while v1 was on carries the v1 hash in its credential; approved by a
/// server with v1 off, the new token keeps none (and v2 sets it up with the generated password).
async fn a_request_queued_with_v1_on_and_approved_with_v1_off_keeps_no_hash(db: Db) {
    use backend::engine::staff::StaffDone;
    let env = Env::with_config(db, |c| c.staff.four_eyes = true).await;
    let (uid, _) = env.active_token("pake15").await;
    let sup = crate::staff::staff(&env, "sup0001", "supervisor").await;
    let second = crate::staff::staff(&env, "sup0002", "supervisor").await;
    let r = reprovision_generated(&env, &sup, "pake15", &uid).await;
    let password = r.generated_password.unwrap();
    let StaffDone::Requested { request_id } = r.done else {
        panic!("four eyes: a request waits for a second supervisor")
    };
    let mut cfg = env.cfg.clone();
    v2_only(&mut cfg);
    let (state, _) = backend::build(&cfg, Box::new(env.clock.clone()))
        .await
        .unwrap();
    let new_uid = state
        .engine
        .staff_approve(&second, request_id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept_hash(&state.engine, &new_uid).await, "");
    state.engine.open_link(&new_uid, &host()).await.unwrap();
    setup_v2(&state.engine, &cfg.issuer, &new_uid, password.as_str())
        .await
        .unwrap();
}

both_dbs!(
    migration_0019_clears_the_hash_of_tokens_past_setup,
    with_v1_off_an_issuance_keeps_no_password_hash,
    the_v1_hash_goes_once_the_token_is_set_up,
    serving_with_v1_off_drops_the_hashes_v2_does_not_need,
    a_request_queued_with_v1_on_and_approved_with_v1_off_keeps_no_hash,
    a_setup_provisions_once_with_the_secret_sealed,
    a_recording_does_not_open_the_secret_even_with_the_password,
    a_man_in_the_middle_is_detected_and_counted,
    a_replayed_first_message_is_refused,
    five_failures_kill_the_issuance,
    concurrent_starts_get_at_most_five_guesses,
    an_unfinished_exchange_expires_and_counts,
    a_staff_generated_password_provisions_through_v2,
    v1_is_refused_by_default,
    five_unfinished_starts_end_the_issuance_when_the_last_expires,
    an_exchange_moved_to_another_token_provisions_nothing,
);
