//! The app API over a real listener: setup exactly once, each refusal with its stable code, the
//! audit trail, rate limits with Retry-After, and the time endpoint.

use backend::config::Config;
use backend::domain::{Outcome, Purpose};
use protocol::{code_at, Secret, SetupResponse, TimeResponse, TotpParams};
use reqwest::StatusCode;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::both_dbs;
use crate::support::*;

struct AppServer {
    base: String,
    http: reqwest::Client,
    env: Env,
}

impl AppServer {
    async fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> AppServer {
        let env = Env::with_config(db, tweak).await;
        let base = listen(&env.state).await;
        AppServer {
            base,
            http: reqwest::Client::new(),
            env,
        }
    }

    async fn setup(
        &self,
        user_id: &str,
        password: &str,
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let res = self
            .http
            .post(format!("{}/app/v1/setup", self.base))
            .json(&json!({
                "service_id": "10112231",
                "user_id": user_id,
                "activation_password": password,
                "device": {"platform": "android", "model": "Pixel 8", "os_version": "15", "app_version": "1.0.0"}
            }))
            .send()
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        (status, headers, res.json().await.unwrap_or(Value::Null))
    }

    /// A customer with an issued token (link not opened yet); returns the user ID.
    async fn issued(&self, login: &str) -> String {
        self.env.customer(login).await;
        self.env.issue(login).await
    }
}

fn code_of(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

/// A user ID with a valid check digit that no token has.
fn unknown_user(serial: u64) -> String {
    protocol::UserId::from_serial(serial)
        .unwrap()
        .as_str()
        .to_owned()
}

fn generous(cfg: &mut Config) {
    cfg.app_api.per_ip = 1000;
    cfg.app_api.per_user_id = 1000;
}

async fn setup_once_with_every_refusal(db: Db) {
    let s = AppServer::start(db, generous).await;
    let uid = s.issued("taro01").await;

    let (st, h, v) = s.setup(&uid, "1234").await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::CONFLICT, "LINK_NOT_OPENED"),
        "no secret before the mailed link was opened: {v}"
    );
    assert_eq!(h[reqwest::header::CACHE_CONTROL], "no-store");

    s.env.engine.open_link(&uid, &host()).await.unwrap();
    let (st, _, v) = s.setup(&uid, "9999").await;
    assert_eq!(
        (st, code_of(&v), v["attempts_left"].as_u64()),
        (
            StatusCode::UNAUTHORIZED,
            "WRONG_ACTIVATION_PASSWORD",
            Some(4)
        ),
        "{v}"
    );

    let (st, h, v) = s.setup(&uid, "1234").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        h[reqwest::header::CACHE_CONTROL],
        "no-store",
        "the answer holding the secret must not be cached"
    );
    let resp: SetupResponse = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(resp.user_id.as_str(), uid);
    assert_eq!(
        resp.server_time, T0,
        "the server time is the engine's clock"
    );
    assert_eq!(resp.params, TotpParams::default());
    assert_eq!(resp.issuer, "OTP Bank");
    assert_eq!(resp.label, uid);
    // The secret handed out is the one the server verifies against.
    let secret: Secret = resp.secret.0.clone();
    let code = code_at(&secret, &resp.params, s.env.now());
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

    let (st, _, v) = s.setup(&uid, "1234").await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::CONFLICT, "ALREADY_PROVISIONED"),
        "the secret is handed out exactly once: {v}"
    );
    assert!(v.get("secret").is_none());

    let ghost = unknown_user(12_345_678_901);
    let (st, _, v) = s.setup(&ghost, "1234").await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::NOT_FOUND, "UNKNOWN_USER_ID")
    );

    // Malformed input never reaches the engine.
    let (st, _, v) = s.setup("999800000001", "1234").await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY")
    );
    assert!(
        !v.to_string().contains("1234"),
        "errors never echo the password: {v}"
    );

    // Every attempt is audited, with the IP, and never with the password.
    let audit = s.env.audit(&uid).await;
    let outcomes: Vec<&str> = audit
        .iter()
        .filter(|a| a.action == "provision")
        .map(|a| a.outcome.as_str())
        .collect();
    for expected in [
        "LINK_NOT_OPENED",
        "WRONG_ACTIVATION_PASSWORD",
        "ok",
        "ALREADY_PROVISIONED",
    ] {
        assert!(outcomes.contains(&expected), "{expected} in {outcomes:?}");
    }
    for a in audit.iter().filter(|a| a.action == "provision") {
        assert_eq!(a.actor, "app");
        assert_eq!(a.ip.as_deref(), Some("127.0.0.1"));
        // The free-text fields (ids and times are numbers that may hold these digits by chance).
        let text = format!("{} {} {} {:?}", a.actor, a.action, a.outcome, a.detail);
        assert!(!text.contains("1234") && !text.contains("9999"), "{text}");
    }
    let ghost_audit = s.env.audit(&ghost).await;
    assert_eq!(
        ghost_audit
            .iter()
            .map(|a| (a.action.as_str(), a.outcome.as_str()))
            .collect::<Vec<_>>(),
        vec![("provision", "UNKNOWN_USER_ID")],
        "an attempt on an unknown user ID is audited too"
    );
}

async fn dead_after_five_wrong_passwords_and_expiry(db: Db) {
    let s = AppServer::start(db, generous).await;
    let uid = s.issued("hanako1").await;
    s.env.engine.open_link(&uid, &host()).await.unwrap();
    for left in [4, 3, 2, 1] {
        let (st, _, v) = s.setup(&uid, "0000").await;
        assert_eq!(
            (st, code_of(&v), v["attempts_left"].as_u64()),
            (
                StatusCode::UNAUTHORIZED,
                "WRONG_ACTIVATION_PASSWORD",
                Some(left)
            )
        );
    }
    let (st, _, v) = s.setup(&uid, "0000").await;
    assert_eq!((st, code_of(&v)), (StatusCode::GONE, "ISSUANCE_DEAD"));
    let (st, _, v) = s.setup(&uid, "1234").await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::GONE, "ISSUANCE_DEAD"),
        "even the right password no longer works: the customer issues again"
    );

    let uid2 = s.issued("jiro01").await;
    s.env.engine.open_link(&uid2, &host()).await.unwrap();
    s.env.clock.advance(8 * 86_400);
    let (st, _, v) = s.setup(&uid2, "1234").await;
    assert_eq!((st, code_of(&v)), (StatusCode::GONE, "ISSUANCE_EXPIRED"));
}

async fn rate_limits_per_user_and_per_ip(db: Db) {
    let s = AppServer::start(db, |c| {
        c.app_api.per_ip = 8;
        c.app_api.per_user_id = 3;
    })
    .await;
    let uid = s.issued("saburo1").await;
    // Per user ID: 3 attempts, then 429 with Retry-After until the first leaves the window.
    for _ in 0..3 {
        let (st, _, v) = s.setup(&uid, "1234").await;
        assert_eq!(code_of(&v), "LINK_NOT_OPENED", "{st}");
    }
    let (st, h, v) = s.setup(&uid, "1234").await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED")
    );
    // The window slides: the attempts at T0 leave it 60 s later.
    assert_eq!(h[reqwest::header::RETRY_AFTER], "60");
    assert_eq!(v["retry_after_secs"].as_u64(), Some(60));
    let (st, _, _) = s.setup(&uid, "1234").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    let limited: Vec<_> = s
        .env
        .audit(&uid)
        .await
        .into_iter()
        .filter(|a| a.outcome == "RATE_LIMITED")
        .collect();
    assert_eq!(
        limited.len(),
        1,
        "the first refusal per window is audited, not every one of a flood"
    );

    // Per IP: other user IDs from the same address run into the IP's limit (8, of which 5 used).
    for serial in 0..3 {
        let (st, _, v) = s
            .setup(&unknown_user(50_000_000_000 + serial), "1234")
            .await;
        assert_eq!(code_of(&v), "UNKNOWN_USER_ID", "{st}");
    }
    let (st, _, v) = s.setup(&unknown_user(50_000_000_100), "1234").await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMITED"),
        "the ninth attempt from one IP in a window"
    );

    // A minute later the customer is let in again (a second earlier, not yet).
    s.env.clock.advance(59);
    let (st, _, _) = s.setup(&uid, "1234").await;
    assert_eq!(st, StatusCode::TOO_MANY_REQUESTS);
    s.env.clock.advance(1);
    let (st, _, v) = s.setup(&uid, "1234").await;
    assert_eq!((st, code_of(&v)), (StatusCode::CONFLICT, "LINK_NOT_OPENED"));
}

async fn time_endpoint(db: Db) {
    let s = AppServer::start(db, |_| {}).await;
    s.env.clock.advance(5);
    let res = s
        .http
        .get(format!("{}/app/v1/time", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[reqwest::header::CACHE_CONTROL], "no-store");
    let t: TimeResponse = res.json().await.unwrap();
    assert_eq!(
        t.server_time,
        T0 + 5,
        "the server's own clock, not the wall clock"
    );
}

both_dbs!(
    setup_once_with_every_refusal,
    dead_after_five_wrong_passwords_and_expiry,
    rate_limits_per_user_and_per_ip,
    time_endpoint,
);
