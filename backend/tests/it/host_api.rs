//! The host API over a real listener: every bad input it must refuse, and the happy path.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::*;

pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub env: Env,
}

impl Server {
    pub async fn start(db: Db) -> Server {
        let env = Env::new(db).await;
        let base = listen(&env.state).await;
        Server {
            base,
            http: reqwest::Client::new(),
            env,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let res = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(API_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let res = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }
}

fn code_of(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journey_over_http() {
    let s = Server::start(Db::Sqlite).await;
    let (st, v) = s
        .post("/host/v1/customers", json!({"login_id": "taro01", "name": "山田太郎", "email": "taro@example.jp", "login_password": "loginpass1", "confirmation_password": "conf123"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let (st, v) = s.post("/host/v1/customers", json!({"login_id": "taro01", "login_password": "loginpass1", "confirmation_password": "conf123"})).await;
    assert_eq!((st, code_of(&v)), (StatusCode::CONFLICT, "CUSTOMER_EXISTS"));

    let (st, v) = s
        .post(
            "/host/v1/customers/taro01/tokens",
            json!({"email": "taro@example.jp", "activation_password": "1234"}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let uid = v["user_id"].as_str().unwrap().to_owned();
    assert_eq!(v["service_id"], "10112231");
    assert_eq!(v["state"], "issued");

    // Verification on an issued token: an answer, not an error.
    let (st, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/verify"),
            json!({"code": "123456", "purpose": "login"}),
        )
        .await;
    assert_eq!(
        (st, v["result"].as_str()),
        (StatusCode::OK, Some("not_active"))
    );
    let (st, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/activate"),
            json!({"code": "123456"}),
        )
        .await;
    assert_eq!(
        (st, v["result"].as_str()),
        (StatusCode::OK, Some("not_active")),
        "activation needs a provisioned token"
    );

    s.env.engine.open_link(&uid, &host()).await.unwrap();
    let secret = s.env.provision(&uid).await;
    let (_, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/activate"),
            json!({"code": s.env.code(&secret, 0).as_str()}),
        )
        .await;
    assert_eq!(
        (v["result"].as_str(), v["state"].as_str()),
        (Some("ok"), Some("active")),
        "{v}"
    );
    let (_, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/verify"),
            json!({"code": s.env.code(&secret, 0).as_str(), "purpose": "login"}),
        )
        .await;
    assert_eq!(v["result"], "replayed");
    let (_, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/verify"),
            json!({"code": "000000", "purpose": "transfer"}),
        )
        .await;
    assert_eq!(
        (v["result"].as_str(), v["attempts_left"].as_u64()),
        (Some("invalid"), Some(4))
    );
    for _ in 0..4 {
        s.post(
            &format!("/host/v1/tokens/{uid}/verify"),
            json!({"code": "000000", "purpose": "transfer"}),
        )
        .await;
    }
    let (_, v) = s.get(&format!("/host/v1/tokens/{uid}")).await;
    assert_eq!(
        (v["locked"].as_bool(), v["state"].as_str()),
        (Some(true), Some("active"))
    );
    let (_, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/verify"),
            json!({"code": s.env.code(&secret, 1).as_str(), "purpose": "login"}),
        )
        .await;
    assert_eq!(v["result"], "locked");
    let (st, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/unlock"),
            json!({"reason": ""}),
        )
        .await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "REASON_REQUIRED"),
        "one reason rule (domain::fields::reason) for every transport"
    );
    let (st, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/unlock"),
            json!({"reason": "identity confirmed by phone"}),
        )
        .await;
    assert_eq!((st, v["locked"].as_bool()), (StatusCode::OK, Some(false)));
    s.env.clock.advance(60);
    let (_, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/deactivate"),
            json!({"code": s.env.code(&secret, 0).as_str()}),
        )
        .await;
    assert_eq!(
        (v["result"].as_str(), v["state"].as_str()),
        (Some("ok"), Some("deactivated"))
    );
    let (st, v) = s
        .post(
            "/host/v1/customers/taro01/tokens",
            json!({"email": "taro@example.jp", "activation_password": "1234"}),
        )
        .await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::CONFLICT, "REISSUE_NEXT_DAY")
    );

    // Metrics count the verifications by outcome.
    let text = s
        .http
        .get(format!("{}/metrics", s.base))
        .bearer_auth(METRICS_KEY)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"otp_verifications_total{outcome="replayed"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"otp_verifications_total{outcome="invalid"} 4"#),
        "{text}"
    );
    assert!(
        text.contains("otp_verify_duration_seconds_bucket"),
        "{text}"
    );
    // The audit names the host and its address.
    let audit = s.env.audit(&uid).await;
    assert!(
        audit
            .iter()
            .all(|a| a.actor == "host:ib" || a.actor == "app"),
        "{audit:?}"
    );
    assert!(audit
        .iter()
        .filter(|a| a.actor == "host:ib")
        .all(|a| a.ip.as_deref() == Some("127.0.0.1")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_bad_requests() {
    let s = Server::start(Db::Sqlite).await;
    let (uid, _) = s.env.active_token("jiro001").await;
    let url = |p: &str| format!("{}{p}", s.base);
    let verify = url(&format!("/host/v1/tokens/{uid}/verify"));

    // Authentication.
    let res = s
        .http
        .post(&verify)
        .json(&json!({"code": "123456", "purpose": "login"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "UNAUTHENTICATED"
    );
    let res = s
        .http
        .post(&verify)
        .bearer_auth("host-test-key-0123456789abcdef012345678X")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "a wrong key");
    let res = s
        .http
        .get(url(&format!("/host/v1/tokens/{uid}")))
        .header("authorization", format!("Basic {API_KEY}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "not a bearer key");

    // Body problems.
    let res = s
        .http
        .post(&verify)
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body("{\"code\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["code"], "MALFORMED_JSON");
    let res = s
        .http
        .post(&verify)
        .bearer_auth(API_KEY)
        .header("content-type", "text/plain")
        .body(r#"{"code":"123456","purpose":"login"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "UNSUPPORTED_MEDIA_TYPE"
    );
    let huge = json!({"code": "1".repeat(64 * 1024), "purpose": "login"});
    let (st, v) = s.post(&format!("/host/v1/tokens/{uid}/verify"), huge).await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "BODY_TOO_LARGE")
    );
    let (st, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/verify"),
            json!({"code": "123456"}),
        )
        .await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY")
    );
    assert!(v["message"].as_str().unwrap().contains("purpose"), "{v}");
    let (st, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/verify"),
            json!({"code": "123456", "purpose": "shopping"}),
        )
        .await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY")
    );
    let (st, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/verify"),
            json!({"code": "123456", "purpose": "login", "extra": 1}),
        )
        .await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "INVALID_BODY"),
        "unknown fields are refused"
    );
    let (st, v) = s
        .post(
            "/host/v1/customers/jiro001/tokens",
            json!({"email": "x@example.jp", "activation_password": 98765432}),
        )
        .await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        !v.to_string().contains("98765432"),
        "errors never echo a password: {v}"
    );

    // Codes.
    for bad in ["12345", "1234567", "12345a", " 123456", "123456789"] {
        let (st, v) = s
            .post(
                &format!("/host/v1/tokens/{uid}/verify"),
                json!({"code": bad, "purpose": "login"}),
            )
            .await;
        assert_eq!(
            (st, code_of(&v)),
            (StatusCode::UNPROCESSABLE_ENTITY, "CODE_FORMAT"),
            "{bad:?}"
        );
    }
    let (_, v) = s.get(&format!("/host/v1/tokens/{uid}")).await;
    assert_eq!(
        v["failures"], 0,
        "malformed codes are refused before they touch the token"
    );
    let (st, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/verify"),
            json!({"code": "12345678", "purpose": "login"}),
        )
        .await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "CODE_FORMAT"),
        "8 digits for a 6-digit token"
    );

    // User IDs.
    let (st, v) = s.get("/host/v1/tokens/12345").await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "USER_ID_FORMAT")
    );
    let mut wrong_check = uid.clone();
    let last = wrong_check.pop().unwrap();
    wrong_check.push(if last == '0' { '1' } else { '0' });
    let (st, v) = s.get(&format!("/host/v1/tokens/{wrong_check}")).await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "USER_ID_CHECK_DIGIT")
    );
    let unknown = protocol::UserId::from_serial(12_345_678_901).unwrap();
    let (st, v) = s
        .post(
            &format!("/host/v1/tokens/{unknown}/verify"),
            json!({"code": "123456", "purpose": "login"}),
        )
        .await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::NOT_FOUND, "UNKNOWN_USER_ID")
    );
    let (st, v) = s
        .post(
            "/host/v1/customers/nobody99/tokens",
            json!({"email": "x@example.jp", "activation_password": "1234"}),
        )
        .await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::NOT_FOUND, "UNKNOWN_CUSTOMER")
    );

    // Field validation on creation and issuance.
    for (body, code) in [
        (
            json!({"login_id": "ab", "login_password": "loginpass1", "confirmation_password": "conf123"}),
            "INVALID_LOGIN_ID",
        ),
        (
            json!({"login_id": "abcd1", "login_password": "short", "confirmation_password": "conf123"}),
            "INVALID_LOGIN_PASSWORD",
        ),
        (
            json!({"login_id": "abcd1", "login_password": "loginpass1", "confirmation_password": "conf!23"}),
            "INVALID_CONFIRMATION_PASSWORD",
        ),
        (
            json!({"login_id": "abcd1", "email": "nope", "login_password": "loginpass1", "confirmation_password": "conf123"}),
            "INVALID_EMAIL",
        ),
    ] {
        let (st, v) = s.post("/host/v1/customers", body).await;
        assert_eq!((st, code_of(&v)), (StatusCode::UNPROCESSABLE_ENTITY, code));
    }
    s.env.customer("saburo1").await;
    for (body, code) in [
        (
            json!({"email": "a@b", "activation_password": "1234"}),
            "INVALID_EMAIL",
        ),
        (
            json!({"email": "a@example.jp", "activation_password": "123"}),
            "INVALID_ACTIVATION_PASSWORD",
        ),
        (
            json!({"email": "a@example.jp", "activation_password": "123456789"}),
            "INVALID_ACTIVATION_PASSWORD",
        ),
        (
            json!({"email": "a@example.jp", "activation_password": "12a4"}),
            "INVALID_ACTIVATION_PASSWORD",
        ),
    ] {
        let (st, v) = s.post("/host/v1/customers/saburo1/tokens", body).await;
        assert_eq!((st, code_of(&v)), (StatusCode::UNPROCESSABLE_ENTITY, code));
    }
    assert!(
        s.env
            .engine
            .store()
            .latest_token(2)
            .await
            .unwrap()
            .is_none(),
        "nothing half-written on refusal"
    );

    // Illegal lifecycle transitions over HTTP.
    let (st, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/unlock"),
            json!({"reason": "x"}),
        )
        .await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "REASON_REQUIRED"),
        "the host API's reasons follow the one reason rule (3-500 characters)"
    );
    let (st, v) = s
        .post(
            &format!("/host/v1/tokens/{uid}/unlock"),
            json!({"reason": "caller verified"}),
        )
        .await;
    assert_eq!(
        (st, code_of(&v)),
        (StatusCode::CONFLICT, "NOT_LOCKED"),
        "not locked is a conflict with the token's state, not a bad field"
    );
}

/// A request whose body the server answers without reading to its end (too large, of a type
/// not taken) leaves the connection unusable: the server must close it after the answer (RFC
/// 9112 §9.3, §9.6), and it must say so with `Connection: close`. Without the header a client
/// puts the connection back in its pool, and its next request can go into a socket being
/// closed: "connection closed before message completed" (`refuses_bad_requests` failed so,
/// once, in a full run). Answers to bodies read in full keep the connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unread_body_closes_the_connection_and_says_so() {
    let s = Server::start(Db::Sqlite).await;
    let (uid, secret) = s.env.active_token("saburo01").await;
    let verify = format!("{}/host/v1/tokens/{uid}/verify", s.base);
    let close = |res: &reqwest::Response| {
        res.headers()
            .get(reqwest::header::CONNECTION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    let huge = json!({"code": "1".repeat(64 * 1024), "purpose": "login"});
    let res = s
        .http
        .post(&verify)
        .bearer_auth(API_KEY)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        close(&res).as_deref(),
        Some("close"),
        "413 over a body left unread"
    );
    let res = s
        .http
        .post(&verify)
        .bearer_auth(API_KEY)
        .header("content-type", "text/plain")
        .body(r#"{"code":"123456","purpose":"login"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        close(&res).as_deref(),
        Some("close"),
        "415 over a body left unread"
    );
    // A body read in full (however the request ends) keeps the connection for the next one.
    let code = s.env.code(&secret, 0);
    let res = s
        .http
        .post(&verify)
        .bearer_auth(API_KEY)
        .json(&json!({"code": code.as_str(), "purpose": "login"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(close(&res), None);
    let res = s
        .http
        .post(&verify)
        .bearer_auth(API_KEY)
        .json(&json!({"code": "12345", "purpose": "login"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(close(&res), None, "a refusal after the body was read");
    // And a client that reuses its connections meets no closed one.
    for _ in 0..100 {
        for body in [&huge, &json!({"code": "12345", "purpose": "login"})] {
            let res = s
                .http
                .post(&verify)
                .bearer_auth(API_KEY)
                .json(body)
                .send()
                .await;
            assert!(res.is_ok(), "{res:?}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_endpoints_and_openapi() {
    let s = Server::start(Db::Sqlite).await;
    let res = s
        .http
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let res = s
        .http
        .get(format!("{}/readyz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The OpenAPI document is served without a key and describes every route.
    let doc: Value = s
        .http
        .get(format!("{}/host/v1/openapi.json", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    for p in [
        "/customers",
        "/customers/{login_id}/tokens",
        "/tokens/{user_id}",
        "/tokens/{user_id}/verify",
        "/tokens/{user_id}/activate",
        "/tokens/{user_id}/deactivate",
        "/tokens/{user_id}/unlock",
    ] {
        assert!(paths.contains(&p), "{p} missing from the OpenAPI document");
        // And the route exists: without a key it answers 401, not 404.
        let concrete = p
            .replace("{login_id}", "taro01")
            .replace("{user_id}", "999800000001");
        let res = if p == "/tokens/{user_id}" {
            s.http
                .get(format!("{}/host/v1{concrete}", s.base))
                .send()
                .await
                .unwrap()
        } else {
            s.http
                .post(format!("{}/host/v1{concrete}", s.base))
                .json(&json!({}))
                .send()
                .await
                .unwrap()
        };
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{p}");
    }
    let codes = doc["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
        .as_array()
        .unwrap();
    for c in [
        "CODE_FORMAT",
        "UNKNOWN_USER_ID",
        "REISSUE_NEXT_DAY",
        "UNAUTHENTICATED",
        "BODY_TOO_LARGE",
    ] {
        assert!(codes.iter().any(|x| x == c), "{c} undocumented");
    }
}

/// The keys in `host-api.key` meet the rules of configured keys (at least 32 characters, a
/// `[A-Za-z0-9._-]+` name). Before, a line `ib:short` (or `ib:`, an empty key) loaded as is
/// and `Bearer short` authenticated.
#[tokio::test]
async fn a_short_key_in_the_host_key_file_is_refused_at_start() {
    use std::os::unix::fs::PermissionsExt;
    let db = TestDb::new(Db::Sqlite).await;
    for (line, why) in [
        ("ib:short\n", "a short key"),
        ("ib:\n", "an empty key"),
        (
            "i b:0123456789abcdef0123456789abcdef\n",
            "a name with a space",
        ),
    ] {
        let mut cfg = config_for(&db);
        cfg.api_keys = vec![];
        let path = cfg.data_dir.join("host-api.key");
        std::fs::write(&path, line).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let refused = backend::build_default(&cfg).await.err();
        let msg = refused.map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(
            msg.contains("host-api.key") && msg.contains("api key"),
            "{why} is refused, naming the file: {msg:?}"
        );
        assert!(
            !msg.contains("short"),
            "the key itself is not repeated: {msg}"
        );
    }
    // A well-formed file still serves.
    let mut cfg = config_for(&db);
    cfg.api_keys = vec![];
    let path = cfg.data_dir.join("host-api.key");
    std::fs::write(&path, "ib:0123456789abcdef0123456789abcdef\n").unwrap();
    assert!(backend::build_default(&cfg).await.is_ok());
}
