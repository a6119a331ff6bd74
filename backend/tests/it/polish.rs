//! What a Japanese customer trips over (issue 14, items 1–6): full-width digits on every edge,
//! the way out of a locked token's login screen, BOP001 offering only what each state allows,
//! the app setup naming the wrong field, every error a page in the customer's language, and one
//! setting for the institution's name, self-reference and contact line.

use serde_json::{json, Value};

use backend::config::{BankConfig, BankKind};
use backend::domain::{Outcome, Purpose};

use crate::both_dbs;
use crate::staff::{Browser, Server};
use crate::support::*;
use test_support::Page;

both_dbs!(
    full_width_digits_are_digits_on_every_edge,
    a_locked_customer_is_told_what_happened_and_can_leave,
    bop001_offers_only_what_each_state_allows,
);

/// What a Japanese input method types for `s`'s digits.
fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap(),
            c => c,
        })
        .collect()
}

async fn login(b: &Browser, login: &str) -> Page {
    let form = b.get("/login").await;
    b.post(
        "/login",
        &[
            ("csrf", &form.input("csrf")),
            ("login_id", login),
            ("password", "loginpass1"),
        ],
    )
    .await
}

/// A code that is none of the token's codes around now.
fn wrong_code(env: &Env, secret: &protocol::Secret) -> String {
    let near: Vec<String> = (-2..=2)
        .map(|o| env.code(secret, o).as_str().to_owned())
        .collect();
    (0..10)
        .map(|d| format!("{d}{d}{d}{d}{d}{d}"))
        .find(|c| !near.contains(c))
        .unwrap()
}

async fn lock_token(env: &Env, uid: &str, secret: &protocol::Secret) {
    let bad = wrong_code(env, secret);
    for _ in 0..env.cfg.policy.max_failures {
        env.engine
            .verify(uid, z(&bad), Purpose::Login, host())
            .await
            .unwrap();
    }
    assert!(env.engine.token_status(uid).await.unwrap().locked);
}

/// Item 1: １２３４５６ as typed by a Japanese input method is accepted wherever digits are
/// asked for: the issuance's activation password and the OTP login code on the screens, the
/// host API's code, the app API's activation password. (Watched failing before the change:
/// 422 "4～8桁の半角数字", 422 "6桁", and 200 `invalid` from the host API.)
async fn full_width_digits_are_digits_on_every_edge(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;

    // Screens: the activation password at issuance.
    env.customer("zenkaku1").await;
    let b = srv.browser();
    assert_eq!(
        login(&b, "zenkaku1").await.location.as_deref(),
        Some("/top")
    );
    let input = b.get("/otp/issue").await;
    let r = b
        .post(
            "/otp/issue",
            &[
                ("csrf", &input.input("csrf")),
                ("email", "phone@example.jp"),
                ("email2", "phone@example.jp"),
                ("activation_password", &full_width("4821")),
                ("activation_password2", &full_width("4821")),
            ],
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some("/otp/issue/confirm"),
        "full-width activation password accepted: {}",
        r.body
    );

    // Screens: the code at login.
    let (uid, secret) = env.active_token("zenkaku2").await;
    let b = srv.browser();
    assert_eq!(
        login(&b, "zenkaku2").await.location.as_deref(),
        Some("/login/otp")
    );
    let form = b.get("/login/otp").await;
    let r = b
        .post(
            "/login/otp",
            &[
                ("csrf", &form.input("csrf")),
                ("code", &full_width(&env.code(&secret, 1))),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/top"), "{}", r.body);
    assert_eq!(
        env.engine.token_status(&uid).await.unwrap().failures,
        0,
        "not counted as a failure"
    );

    // Host API: the verification's code.
    let http = reqwest::Client::new();
    let (uid, secret) = env.active_token("zenkaku3").await;
    let v: Value = http
        .post(format!("{}/host/v1/tokens/{uid}/verify", srv.base))
        .bearer_auth(API_KEY)
        .json(&json!({ "code": full_width(&env.code(&secret, 1)), "purpose": "login" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["result"], "ok", "{v}");

    // App API: the activation password at setup.
    env.customer("zenkaku4").await;
    let uid = env.issue("zenkaku4").await;
    env.engine.open_link(&uid, &host()).await.unwrap();
    let res = http
        .post(format!("{}/app/v1/setup", srv.base))
        .json(&json!({
            "service_id": "10112231",
            "user_id": uid,
            "activation_password": full_width("1234"),
            "device": {"platform": "android", "model": "Pixel 8", "os_version": "15", "app_version": "1.0.0"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
}

/// Item 2: a customer whose token is locked is not left on a code form that cannot succeed:
/// the OTP screen says what happened, that the bank must lift the lock (or when it lifts by
/// itself), the contact line, and offers logout, which works.
async fn a_locked_customer_is_told_what_happened_and_can_leave(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    let (uid, secret) = env.active_token("locked01").await;
    lock_token(env, &uid, &secret).await;

    let b = srv.browser();
    assert_eq!(
        login(&b, "locked01").await.location.as_deref(),
        Some("/login/otp")
    );
    let page = b.get("/login/otp").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("id=\"otp-locked\""), "{}", page.body);
    assert!(
        page.body.contains("ロックされています"),
        "what happened: {}",
        page.body
    );
    assert!(
        page.text_of("lock-lifts")
            .unwrap()
            .contains("当行でのお手続きが必要"),
        "an untimed lock is lifted by the bank: {}",
        page.body
    );
    let contact = page.text_of("lock-contact").unwrap();
    assert!(
        contact.contains(&BankConfig::default().contact),
        "the contact line from the configuration: {contact}"
    );
    assert!(
        !page.body.contains("name=\"code\""),
        "no code form while locked"
    );
    // A code posted anyway (an old tab) gets the same page.
    let r = b
        .post(
            "/login/otp",
            &[
                ("csrf", &page.input("csrf")),
                ("code", &env.code(&secret, 1)),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("id=\"otp-locked\""));
    // The way out.
    let r = b.post("/logout", &[("csrf", &page.input("csrf"))]).await;
    assert_eq!(r.location.as_deref(), Some("/login?bye=1"));
    assert_eq!(
        b.get("/login/otp").await.location.as_deref(),
        Some("/login")
    );

    // A timed lock says when it lifts, in Japan time; in English when chosen.
    let srv = Server::start(Db::Sqlite, |c| c.policy.lock_seconds = Some(1800)).await;
    let env = &srv.env;
    let (uid, secret) = env.active_token("locked02").await;
    lock_token(env, &uid, &secret).await;
    let until = chrono::DateTime::from_timestamp(i64::try_from(env.now()).unwrap() + 1800, 0)
        .unwrap()
        .with_timezone(&backend::domain::jst());
    let b = srv.browser();
    login(&b, "locked02").await;
    let page = b.get("/login/otp").await;
    let lifts = page.text_of("lock-lifts").unwrap();
    assert!(
        lifts.contains(&until.format("%Y年%m月%d日 %H:%M").to_string())
            && lifts.contains("自動的に解除"),
        "{lifts}"
    );
    b.get("/lang?to=en&back=/login/otp").await;
    let page = b.get("/login/otp").await;
    assert!(
        page.text_of("lock-lifts").unwrap().contains(
            &until
                .format("The lock lifts by itself at %Y-%m-%d %H:%M")
                .to_string()
        ),
        "{}",
        page.body
    );
    assert!(page
        .text_of("lock-contact")
        .unwrap()
        .contains("0120-000-000"));
    assert!(page.body.contains("id=\"otp-logout\""));
}

/// The action links BOP001 shows, in order.
fn links(page: &Page) -> Vec<&'static str> {
    ["issue", "activate", "deactivate"]
        .into_iter()
        .filter(|a| page.body.contains(&format!("id=\"link-{a}\"")))
        .collect()
}

/// Item 3: every state of BOP001 offers exactly the applications that state allows, and never
/// a refusal worded for another state (after deactivation it said 「利用開始前のため、利用解除は
/// できません。」).
async fn bop001_offers_only_what_each_state_allows(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    env.customer("states01").await;
    let b = srv.browser();
    login(&b, "states01").await;
    let bop = || async { b.get("/otp").await };

    let p = bop().await;
    assert_eq!(links(&p), ["issue"], "no token yet");

    let uid = env.issue("states01").await;
    let p = bop().await;
    assert_eq!(
        links(&p),
        Vec::<&str>::new(),
        "issued: nothing to apply for"
    );
    assert!(p.body.contains("id=\"no-actions\""));
    assert!(p.body.contains("初期設定を完了してから"), "what to do next");

    env.engine.open_link(&uid, &host()).await.unwrap();
    let p = bop().await;
    assert_eq!(links(&p), Vec::<&str>::new(), "link opened, app not set up");

    let secret = env.provision(&uid).await;
    let p = bop().await;
    assert_eq!(links(&p), ["activate", "deactivate"], "set up in the app");

    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Activation, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
    let p = bop().await;
    assert_eq!(links(&p), ["deactivate"], "in use");

    let r = env
        .engine
        .verify(&uid, env.code(&secret, 1), Purpose::Deactivation, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
    let p = bop().await;
    assert_eq!(links(&p), Vec::<&str>::new(), "deactivated today");
    assert!(
        p.body.contains("翌日以降"),
        "when issuing opens again: {}",
        p.body
    );
    assert!(
        !p.body.contains("利用開始前"),
        "no refusal worded for another state: {}",
        p.body
    );

    env.clock.advance(86_400);
    let b = srv.browser();
    login(&b, "states01").await;
    let p = b.get("/otp").await;
    assert_eq!(links(&p), ["issue"], "the next day");
}

/// Item 4: a wrong service ID is named as such, whether or not the user ID exists (so the
/// answer tells nothing about user IDs); a wrong user ID under the right service ID is named as
/// that. (Before the change: `UNKNOWN_USER_ID` for both.)
#[tokio::test]
async fn the_app_setup_names_the_wrong_field() {
    let srv = Server::start(Db::Sqlite, |_| {}).await;
    let env = &srv.env;
    env.customer("svcid001").await;
    let uid = env.issue("svcid001").await;
    env.engine.open_link(&uid, &host()).await.unwrap();
    let http = reqwest::Client::new();
    let setup = |service: &'static str, user: String| {
        let (http, base) = (http.clone(), srv.base.clone());
        async move {
            let res = http
                .post(format!("{base}/app/v1/setup"))
                .json(&json!({
                    "service_id": service,
                    "user_id": user,
                    "activation_password": "1234",
                    "device": {"platform": "android", "model": "Pixel 8", "os_version": "15", "app_version": "1.0.0"}
                }))
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    // Another well-formed user ID (its check digit right) that was never issued.
    let mut n: u64 = uid.parse().unwrap();
    let unknown_user = loop {
        n = (n + 1) % 1_000_000_000_000;
        let s = format!("{n:012}");
        if protocol::UserId::parse(&s).is_ok() {
            break s;
        }
    };
    let (status, v) = setup("10112239", uid.clone()).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (404, Some("UNKNOWN_SERVICE_ID")),
        "{v}"
    );
    let (status, v) = setup("10112239", unknown_user.clone()).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (404, Some("UNKNOWN_SERVICE_ID")),
        "the same answer for an unknown user ID: {v}"
    );
    let (status, v) = setup("10112231", unknown_user).await;
    assert_eq!(
        (status, v["code"].as_str()),
        (404, Some("UNKNOWN_USER_ID")),
        "{v}"
    );
    // And the right pair still sets up.
    let (status, v) = setup("10112231", uid).await;
    assert_eq!(status, 200, "{v}");
}

/// Item 5: every error a customer can reach is a page in the bank's layout, in Japanese (or
/// English when chosen): a body over the limit, an unknown page, a wrong method, a body that
/// is not a form. (Before the change: English plain text, "Failed to buffer
/// the request body…" for the 413.)
#[tokio::test]
async fn every_error_a_customer_can_reach_is_a_page_in_their_language() {
    let srv = Server::start(Db::Sqlite, |_| {}).await;
    let http = reqwest::Client::new();
    let page = |res: reqwest::Response| async move {
        let status = res.status().as_u16();
        let ctype = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let csp = res.headers().contains_key("content-security-policy");
        (status, ctype, csp, res.text().await.unwrap())
    };
    let big = "x".repeat(20 * 1024);
    let cases: Vec<(u16, reqwest::RequestBuilder, &str)> = vec![
        (
            413,
            http.post(format!("{}/login", srv.base))
                .form(&[("login_id", "taro"), ("password", big.as_str())]),
            "大きすぎます",
        ),
        (
            404,
            http.get(format!("{}/no-such-page", srv.base)),
            "見つかりませんでした",
        ),
        (
            405,
            http.put(format!("{}/login", srv.base)),
            "受け付けられません",
        ),
        (
            415,
            http.post(format!("{}/login", srv.base))
                .json(&json!({"login_id": "taro"})),
            "読み取れませんでした",
        ),
    ];
    for (want, req, words) in cases {
        let (status, ctype, csp, body) = page(req.send().await.unwrap()).await;
        assert_eq!(status, want, "{body}");
        assert!(
            ctype.starts_with("text/html"),
            "{want}: a page, not {ctype}"
        );
        assert!(csp, "{want}: with the screens' security headers");
        assert!(body.contains(words), "{want}: {body}");
        assert!(body.contains("<html lang=\"ja\""), "{want}: in Japanese");
        assert!(body.contains("href=\"/top\""), "{want}: a way on");
    }
    let (status, _, _, body) = page(
        http.post(format!("{}/login", srv.base))
            .header("cookie", "lang=en")
            .form(&[("login_id", "taro"), ("password", big.as_str())])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 413);
    assert!(body.contains("What was sent is too large"), "{body}");
    // The APIs keep their JSON.
    let res = http
        .post(format!("{}/app/v1/setup", srv.base))
        .header("content-type", "application/json")
        .body(format!("{{\"x\":\"{big}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["code"], "BODY_TOO_LARGE");
}

/// Item 6: the greeting is 「ようこそ、<name> 様」, and the institution's name, the way it refers
/// to itself and its contact line come from one setting, on the screens and in the mails.
#[tokio::test]
async fn one_setting_names_the_institution_everywhere() {
    let srv = Server::start(Db::Sqlite, |c| {
        c.bank = BankConfig {
            name: "みらい信用組合".into(),
            name_en: "Mirai Credit Union".into(),
            kind: BankKind::CreditUnion,
            contact: "みらい信用組合 0120-111-222（平日 9:00～17:00）".into(),
            contact_en: "Mirai Credit Union, 0120-111-222 (weekdays)".into(),
        };
    })
    .await;
    let env = &srv.env;
    env.customer("brand001").await;
    let b = srv.browser();
    login(&b, "brand001").await;
    let top = b.get("/top").await;
    assert_eq!(
        top.text_of("greeting").as_deref(),
        Some("ようこそ、Taro 様"),
        "{}",
        top.body
    );
    assert!(top.body.contains("みらい信用組合 インターネットバンキング"));
    assert!(
        top.body.contains("0120-111-222"),
        "the contact line on every page"
    );
    assert!(!top.body.contains("OTPバンク") && !top.body.contains("当行"));
    b.get("/lang?to=en&back=/top").await;
    let top = b.get("/top").await;
    assert_eq!(top.text_of("greeting").as_deref(), Some("Welcome, Taro"));
    assert!(top.body.contains("Mirai Credit Union Internet Banking"));

    // The staff console's frame too (the test harness sets its language to English).
    let staff = b.get("/staff/login").await;
    assert!(
        staff.body.contains("Mirai Credit Union · Staff console"),
        "{}",
        staff.body
    );
    assert!(!staff.body.contains("OTP Bank"));

    // A locked token: the screens say 当組合; the notice mail too, signed with the name.
    let (uid, secret) = env.active_token("brand002").await;
    lock_token(env, &uid, &secret).await;
    let b = srv.browser();
    login(&b, "brand002").await;
    let page = b.get("/login/otp").await;
    assert!(
        page.text_of("lock-lifts").unwrap().contains("当組合"),
        "{}",
        page.body
    );
    let mails = env.engine.store().outbox(100).await.unwrap();
    let locked = mails
        .iter()
        .find(|m| m.kind == "notice_locked")
        .expect("the lock notice");
    assert!(
        locked.body.contains("当組合までお問い合わせ"),
        "{}",
        locked.body
    );
    assert!(locked.body.contains("みらい信用組合"), "{}", locked.body);
    assert!(locked.body.contains("0120-111-222"), "{}", locked.body);
    for m in &mails {
        assert!(
            !m.body.contains("当行") && !m.body.contains("OTPバンク"),
            "{}: {}",
            m.kind,
            m.body
        );
    }
}

/// The default configuration is coherent: a bank called OTPバンク says 当行, never 当組合, on
/// the screens' words and in the mails.
#[test]
fn the_default_institution_speaks_with_one_voice() {
    let bank = BankConfig::default();
    assert_eq!(bank.we(false), "当行");
    assert!(bank.name.contains("バンク"));
    assert_eq!(bank.fill("{we}まで", false), "当行まで");
    assert_eq!(bank.fill("contact {we}", true), "contact us");
    assert!(bank.validate().is_ok());
    assert!(BankConfig {
        name: String::new(),
        ..BankConfig::default()
    }
    .validate()
    .is_err());
}
