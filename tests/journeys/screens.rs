//! The customer screens over HTTP: every validation error, CSRF, session timeout, double
//! submit, security headers, the download link, ownership, and the lifecycle rules BOP001
//! explains.

use tests::{Db, TestEnv};

use crate::both_dbs;

/// Whether BOP001 offers the link (an `<a>`; a refused one is a `<span>` with the reason).
fn offered(page: &tests::Page, link: &str) -> bool {
    page.body
        .contains(&format!("<a class=\"btn\" id=\"link-{link}\""))
}

both_dbs!(
    full_lifecycle_over_http,
    issuance_double_submit_issues_one_token_and_one_mail,
);

/// Login → issue → link → setup → BOK001 → transfer → BOS001 → login without OTP → next day.
async fn full_lifecycle_over_http(db: Db) {
    let env = TestEnv::start(db, None).await;
    env.customer("taro0001", "taro@example.jp").await;
    let c = env.client();
    let r = c.login("taro0001", "loginpass1").await;
    assert_eq!(
        r.location.as_deref(),
        Some("/top"),
        "no OTP screen before OTP use"
    );
    let bop = c.get("/otp").await;
    assert_eq!(bop.text_of("otp-status").as_deref(), Some("未発行"));
    assert!(bop.body.contains("画面ID : BOP001"));
    assert!(offered(&bop, "issue"), "issuance offered");
    assert!(!offered(&bop, "activate"), "activation not offered yet");
    let complete = c.issue("phone@example.jp", "1234").await;
    let user_id = complete.text_of("user-id").unwrap();
    assert_eq!(complete.text_of("service-id").as_deref(), Some("10112231"));
    let bop = c.get("/otp").await;
    assert_eq!(bop.text_of("otp-status").as_deref(), Some("トークン発行済"));
    assert!(
        bop.body.contains("アプリをダウンロードし"),
        "explains why activation waits"
    );
    // The app's setup is refused before the link is opened.
    let (_, start) = protocol::pake::client_start(
        protocol::ServiceId::parse("10112231").unwrap(),
        protocol::UserId::parse(&user_id).unwrap(),
        protocol::Sensitive("1234".to_owned()),
        protocol::DeviceInfo {
            platform: "ios".into(),
            model: "iPhone".into(),
            os_version: "17".into(),
            app_version: "1".into(),
        },
    )
    .unwrap();
    let early = env
        .engine
        .setup_start(&start, &backend::engine::Actor::new("app", None))
        .await;
    assert_eq!(early.err().map(|e| e.code()), Some("LINK_NOT_OPENED"));
    // Open the link from the mail (written as a file: no SMTP in this test).
    let mails = env.file_mails(3).await;
    let url = tests::download_url(mails.iter().find(|m| m.body.contains("/dl/")).unwrap());
    let path = url.trim_start_matches(&env.base).to_owned();
    let android = c
        .get_as(&url, "Mozilla/5.0 (Linux; Android 14; Pixel 8)")
        .await
        .body;
    assert!(
        android.find("store-googleplay").unwrap() < android.find("store-appstore").unwrap(),
        "Android leads with Google Play"
    );
    assert!(android.contains(&format!(
        "otpbank:&#x2f;&#x2f;setup?service_id=10112231&amp;user_id={user_id}"
    )));
    let iphone = c
        .get_as(
            &url,
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
        )
        .await
        .body;
    assert!(iphone.find("store-appstore").unwrap() < iphone.find("store-googleplay").unwrap());
    assert_eq!(
        c.get("/dl/0123456789abcdef0123456789abcdef01234567")
            .await
            .status,
        404
    );
    assert_eq!(
        c.get(&path).await.status,
        200,
        "reopening shows the page again"
    );
    let secret = env.provision(&user_id, "1234").await;
    // BOK001: a wrong code counts toward the lock and says how many are left.
    let bop = c.get("/otp").await;
    assert!(offered(&bop, "activate"));
    let bok = c.get("/otp/activate").await;
    assert!(bok.body.contains("画面ID : BOK001"));
    let r = c
        .post("/otp/activate", &[("csrf", &bok.csrf()), ("code", "12ab")])
        .await;
    assert_eq!(r.status, 422);
    assert!(r.field_error("code").unwrap().contains("半角数字6桁"));
    let wrong = if env.code(&secret) == "000000" {
        "111111"
    } else {
        "000000"
    };
    let r = c
        .post("/otp/activate", &[("csrf", &bok.csrf()), ("code", wrong)])
        .await;
    assert!(
        r.field_error("code").unwrap().contains("残り4回"),
        "{:?}",
        r.field_error("code")
    );
    let r = c
        .post(
            "/otp/activate",
            &[("csrf", &bok.csrf()), ("code", &env.code(&secret))],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/otp/activate/done"));
    let bok2 = c.get("/otp/activate/done").await;
    assert!(
        bok2.body.contains("画面ID : BOK002") && bok2.body.contains("利用開始登録を受けました")
    );
    assert_eq!(
        c.get("/otp").await.text_of("otp-status").as_deref(),
        Some("利用中")
    );
    // Login now needs the code.
    let c = env.client();
    let r = c.login("taro0001", "loginpass1").await;
    assert_eq!(r.location.as_deref(), Some("/login/otp"));
    assert_eq!(
        c.get("/top").await.location.as_deref(),
        Some("/login/otp"),
        "no menu before the code"
    );
    env.next_step();
    let otp = c.get("/login/otp").await;
    let r = c
        .post(
            "/login/otp",
            &[("csrf", &otp.csrf()), ("code", &env.code(&secret))],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/top"));
    // Transfer: refused without a valid code, recorded with one.
    let input = c.get("/transfer").await;
    let r = c
        .post(
            "/transfer",
            &[("csrf", &input.csrf()), ("payee", ""), ("amount", "0")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.field_error("payee").is_some() && r.field_error("amount").is_some());
    // A new payee: transaction authentication (取引認証) by the default policy.
    let r = c
        .post(
            "/transfer",
            &[
                ("csrf", &input.csrf()),
                ("bank_code", "0001"),
                ("branch_code", "123"),
                ("account_type", "1"),
                ("account_number", "1234567"),
                ("payee", "ﾃｽﾄ ｼﾖｳｼﾞ"),
                ("amount", "12345"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/transfer/confirm"));
    let confirm = c.get("/transfer/confirm").await;
    assert!(confirm.body.contains("id=\"tx-qr\""), "{}", confirm.body);
    let transaction = protocol::ocra::Transaction::new(
        "0001",
        "123",
        protocol::ocra::AccountType::Ordinary,
        "1234567",
        12345,
    )
    .unwrap();
    let key = confirm.input("request_key");
    let r = c
        .post(
            "/transfer/confirm",
            &[
                ("csrf", &confirm.csrf()),
                ("request_key", &key),
                ("confirmation_password", "conf123"),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "no code, no transfer");
    assert!(r.field_error("code").is_some());
    let customer = env
        .engine
        .store()
        .customer_by_login("taro0001")
        .await
        .unwrap()
        .unwrap();
    assert!(env
        .engine
        .store()
        .transfers(customer.id)
        .await
        .unwrap()
        .is_empty());
    env.next_step();
    let form = [
        ("csrf", confirm.csrf()),
        ("request_key", key.clone()),
        ("confirmation_password", "conf123".to_owned()),
        ("code", env.tx_code(&secret, &transaction)),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let r = c.post("/transfer/confirm", &form).await;
    assert_eq!(r.location.as_deref(), Some("/transfer/done"));
    let r2 = c.post("/transfer/confirm", &form).await;
    assert_eq!(
        r2.location.as_deref(),
        Some("/transfer/done"),
        "a double submit lands on done"
    );
    let t = env.engine.store().transfers(customer.id).await.unwrap();
    assert_eq!(t.len(), 1, "one transfer for a double submit");
    assert_eq!((t[0].amount, t[0].payee.as_str()), (12345, "ﾃｽﾄ ｼﾖｳｼﾞ"));
    assert!(
        t[0].tx_digest.is_some(),
        "authenticated with a transaction code"
    );
    assert!(c.get("/transfer/done").await.body.contains("12,345"));
    // BOS001: a wrong confirmation password does not consume the code.
    env.next_step();
    let code = env.code(&secret);
    let bos = c.get("/otp/deactivate").await;
    assert!(bos.body.contains("画面ID : BOS001"));
    let r = c
        .post(
            "/otp/deactivate",
            &[
                ("csrf", &bos.csrf()),
                ("confirmation_password", "wrong99"),
                ("code", &code),
            ],
        )
        .await;
    assert!(r
        .field_error("confirmation_password")
        .unwrap()
        .contains("正しくありません"));
    let r = c
        .post(
            "/otp/deactivate",
            &[
                ("csrf", &bos.csrf()),
                ("confirmation_password", "conf123"),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some("/otp/deactivate/done"),
        "the same code still works"
    );
    assert!(c
        .get("/otp/deactivate/done")
        .await
        .body
        .contains("画面ID : BOS002"));
    let bop = c.get("/otp").await;
    assert_eq!(bop.text_of("otp-status").as_deref(), Some("利用解除済"));
    assert!(
        bop.body.contains("翌日以降"),
        "the next-day rule is explained"
    );
    assert!(!offered(&bop, "issue"));
    // Login has no OTP screen again; the next day issuance is offered.
    let c = env.client();
    assert_eq!(
        c.login("taro0001", "loginpass1").await.location.as_deref(),
        Some("/top")
    );
    env.clock.advance(86_400);
    let c = env.client();
    c.login("taro0001", "loginpass1").await;
    assert!(
        offered(&c.get("/otp").await, "issue"),
        "issuance offered the next day"
    );
}

async fn issuance_double_submit_issues_one_token_and_one_mail(db: Db) {
    let env = TestEnv::start(db, None).await;
    env.customer("double01", "d@example.jp").await;
    let c = env.client();
    c.login("double01", "loginpass1").await;
    let input = c.get("/otp/issue").await;
    c.post(
        "/otp/issue",
        &[
            ("csrf", &input.csrf()),
            ("email", "d-phone@example.jp"),
            ("email2", "d-phone@example.jp"),
            ("activation_password", "1234"),
            ("activation_password2", "1234"),
        ],
    )
    .await;
    let confirm = c.get("/otp/issue/confirm").await;
    let form = [
        ("csrf", confirm.csrf()),
        ("request_key", confirm.input("request_key")),
        ("confirmation_password", "conf123".to_owned()),
        ("mail_password", c.mail.next_mailed_password(0).await),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    // Two submits at once, then a third after.
    let (a, b) = tokio::join!(
        c.post("/otp/issue/confirm", &form),
        c.post("/otp/issue/confirm", &form)
    );
    let third = c.post("/otp/issue/confirm", &form).await;
    for r in [&a, &b, &third] {
        assert_eq!(
            r.location.as_deref(),
            Some("/otp/issue/complete"),
            "{}",
            r.body
        );
    }
    let outbox: Vec<_> = env
        .engine
        .store()
        .outbox(10)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "issuance")
        .collect();
    assert_eq!(outbox.len(), 1, "one mail");
    let customer = env
        .engine
        .store()
        .customer_by_login("double01")
        .await
        .unwrap()
        .unwrap();
    let ov = env.engine.overview(customer.id).await.unwrap();
    assert_eq!(
        ov.token.unwrap().user_id,
        outbox[0].user_id.clone().unwrap(),
        "one token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_issuance_field_rule_has_its_message_and_values_are_kept() {
    let env = TestEnv::start(Db::Sqlite, None).await;
    env.customer("valid001", "v@example.jp").await;
    let c = env.client();
    c.login("valid001", "loginpass1").await;
    let input = c.get("/otp/issue").await;
    let csrf = input.csrf();
    let post = |email: &'static str, email2: &'static str, pw: &'static str, pw2: &'static str| {
        let csrf = csrf.clone();
        let c = &c;
        async move {
            c.post(
                "/otp/issue",
                &[
                    ("csrf", csrf.as_str()),
                    ("email", email),
                    ("email2", email2),
                    ("activation_password", pw),
                    ("activation_password2", pw2),
                ],
            )
            .await
        }
    };
    let r = post("", "", "", "").await;
    assert_eq!(r.status, 422);
    for f in [
        "email",
        "email2",
        "activation_password",
        "activation_password2",
    ] {
        assert_eq!(r.field_error(f).as_deref(), Some("入力して下さい。"), "{f}");
    }
    let r = post("not-an-address", "x@example.jp", "123", "123").await;
    assert!(r.field_error("email").unwrap().contains("形式"));
    assert!(r.field_error("email2").unwrap().contains("一致しません"));
    assert!(r
        .field_error("activation_password")
        .unwrap()
        .contains("4～8桁"));
    assert!(
        r.body.contains("value=\"not-an-address\""),
        "values are kept"
    );
    assert!(!r.body.contains("value=\"123\""), "passwords are not");
    let r = post("a@example.jp", "a@example.jp", "123456789", "1").await;
    assert!(
        r.field_error("activation_password").is_some(),
        "9 digits are too many"
    );
    // Full-width digits, as a Japanese input method types them, are digits (issue 14): the
    // first field passes, and the second is compared as digits too.
    let r = post("a@example.jp", "a@example.jp", "１２３４", "１２３５").await;
    assert!(r.field_error("activation_password").is_none(), "{}", r.body);
    assert!(r
        .field_error("activation_password2")
        .unwrap()
        .contains("一致しません"));
    let r = post("a@example.jp", "a@example.jp", "1234", "1235").await;
    assert!(r
        .field_error("activation_password2")
        .unwrap()
        .contains("一致しません"));
    assert!(r.field_error("activation_password").is_none());
    // Confirm step: format and a wrong confirmation password.
    assert_eq!(
        post("a@example.jp", "a@example.jp", "1234", "1234")
            .await
            .status,
        303
    );
    let confirm = c.get("/otp/issue/confirm").await;
    assert!(confirm.body.contains("a@example.jp"), "the e-mail is shown");
    let key = confirm.input("request_key");
    let mailed = c.mail.next_mailed_password(0).await;
    for (pw, want) in [
        ("", "入力して下さい"),
        ("abc", "半角英数字6～12桁"),
        ("abc!defg", "半角英数字6～12桁"),
        ("wrong123", "正しくありません"),
    ] {
        let r = c
            .post(
                "/otp/issue/confirm",
                &[
                    ("csrf", &csrf),
                    ("request_key", &key),
                    ("confirmation_password", pw),
                    ("mail_password", &mailed),
                ],
            )
            .await;
        assert_eq!(r.status, 422);
        assert!(
            r.field_error("confirmation_password")
                .unwrap()
                .contains(want),
            "{pw:?}"
        );
    }
    assert!(
        env.engine
            .store()
            .outbox(10)
            .await
            .unwrap()
            .iter()
            .all(|m| m.kind == "mail_password"),
        "nothing issued on error (only the メール通知パスワード was mailed)"
    );
    // 戻る keeps the e-mail; 申込を中止する forgets it.
    assert!(c
        .get("/otp/issue")
        .await
        .body
        .contains("value=\"a@example.jp\""));
    let r = c.post("/otp/issue/cancel", &[("csrf", &csrf)]).await;
    assert_eq!(r.location.as_deref(), Some("/otp"));
    assert!(!c
        .get("/otp/issue")
        .await
        .body
        .contains("value=\"a@example.jp\""));
    // English.
    let r = c.get("/lang?to=en&back=/otp/issue").await;
    assert_eq!(r.location.as_deref(), Some("/otp/issue"));
    let r = post("", "", "", "").await;
    assert_eq!(
        r.field_error("email").as_deref(),
        Some("This field is required.")
    );
    assert_eq!(
        c.get("/lang?to=ja&back=//evil.example")
            .await
            .location
            .as_deref(),
        Some("/top"),
        "no open redirect"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_errors_csrf_timeout_headers_and_logout() {
    let env = TestEnv::start(Db::Sqlite, None).await;
    env.customer("login001", "l@example.jp").await;
    let c = env.client();
    let form = c.get("/login").await;
    let h = &form.headers;
    assert_eq!(h["cache-control"], "no-store");
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!form.body.contains("<script>"), "no inline script");
    // Field errors and a wrong password.
    let r = c
        .post(
            "/login",
            &[("csrf", &form.csrf()), ("login_id", ""), ("password", "")],
        )
        .await;
    assert!(r.field_error("login_id").is_some() && r.field_error("password").is_some());
    // Each login form carries a fresh double-submit token: use the one the refusal gave.
    let r = c
        .post(
            "/login",
            &[
                ("csrf", &r.csrf()),
                ("login_id", "login001"),
                ("password", "nope-nope"),
            ],
        )
        .await;
    assert!(r
        .field_error("login_id")
        .unwrap()
        .contains("正しくありません"));
    // CSRF: missing or wrong token is refused.
    let r = c
        .post(
            "/login",
            &[("login_id", "login001"), ("password", "loginpass1")],
        )
        .await;
    assert_eq!(r.status, 403);
    let r = c
        .post(
            "/login",
            &[
                ("csrf", "00"),
                ("login_id", "login001"),
                ("password", "loginpass1"),
            ],
        )
        .await;
    assert_eq!(r.status, 403);
    // Login renews the session id.
    let before = c.get("/login").await;
    let old_cookie = before
        .headers
        .get("set-cookie")
        .map(|v| v.to_str().unwrap().to_owned());
    let r = c.login("login001", "loginpass1").await;
    let new_cookie = r.headers["set-cookie"].to_str().unwrap().to_owned();
    assert_ne!(
        old_cookie.as_deref(),
        Some(new_cookie.as_str()),
        "a new session id at login"
    );
    let top = c.get("/top").await;
    assert_eq!(top.status, 200);
    // CSRF on a logged-in form.
    let r = c
        .post(
            "/otp/issue",
            &[("csrf", "forged"), ("email", "x@example.jp")],
        )
        .await;
    assert_eq!(r.status, 403);
    // Idle timeout: 10 minutes by default.
    env.clock.advance(599);
    assert_eq!(
        c.get("/top").await.status,
        200,
        "still live just before the timeout"
    );
    env.clock.advance(601);
    let r = c.get("/top").await;
    assert_eq!(r.location.as_deref(), Some("/login?timeout=1"));
    assert!(c
        .get("/login?timeout=1")
        .await
        .body
        .contains("一定時間操作がなかった"));
    // Logout.
    c.login("login001", "loginpass1").await;
    let top = c.get("/top").await;
    let r = c.post("/logout", &[("csrf", &top.csrf())]).await;
    assert_eq!(r.location.as_deref(), Some("/login?bye=1"));
    assert_eq!(c.get("/top").await.location.as_deref(), Some("/login"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_reaches_only_their_own_token() {
    let env = TestEnv::start(Db::Sqlite, None).await;
    env.customer("owner001", "o@example.jp").await;
    env.customer("other001", "x@example.jp").await;
    let a = env.client();
    a.login("owner001", "loginpass1").await;
    let uid = a
        .issue("o-phone@example.jp", "1234")
        .await
        .text_of("user-id")
        .unwrap();
    let b = env.client();
    b.login("other001", "loginpass1").await;
    let bop = b.get("/otp").await;
    assert_eq!(bop.text_of("otp-status").as_deref(), Some("未発行"));
    assert!(!bop.body.contains(&uid));
    // B's forms act on B: B's activation screen is not offered for A's token.
    assert_eq!(
        b.get("/otp/activate").await.location.as_deref(),
        Some("/otp")
    );
    assert_eq!(
        b.get("/otp/issue/complete").await.location.as_deref(),
        Some("/otp")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_assets_and_keyboard_markup() {
    let env = TestEnv::start(Db::Sqlite, None).await;
    let c = env.client();
    let js = c.get("/static/softkbd.js").await;
    assert_eq!(js.status, 200);
    assert!(js.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert!(
        js.body.contains("getRandomValues"),
        "the layout is shuffled"
    );
    assert_eq!(c.get("/static/app.css").await.status, 200);
    assert_eq!(c.get("/static/nope.js").await.status, 404);
    let login = c.get("/login").await;
    assert!(login
        .body
        .contains("ソフトウェアキーボードを使用して入力する"));
    assert!(login.body.contains("data-softkbd-for=\"f-password\""));
}

/// Ten wrong passwords lock the customer's passwords for 30 minutes, and the screens say so,
/// with the minutes left, in Japanese and English: on the login screen (even for the right
/// password) and on a transfer's confirmation password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_lock_is_shown_with_the_minutes_left() {
    let env = TestEnv::start(Db::Sqlite, None).await;
    env.customer("lock0001", "l@example.jp").await;
    env.customer("lock0002", "m@example.jp").await;
    let c = env.client();
    for _ in 0..9 {
        let r = c.login("lock0001", "wrongpass1").await;
        assert!(r
            .field_error("login_id")
            .unwrap()
            .contains("正しくありません"));
    }
    let r = c.login("lock0001", "wrongpass1").await;
    assert_eq!(
        r.field_error("login_id").as_deref(),
        Some("パスワードの誤入力が所定の回数に達したため、ログインを停止しています。約30分後に再度ログインして下さい。"),
        "the tenth wrong password locks, and says so"
    );
    env.clock.advance(20 * 60 + 30);
    let r = c.login("lock0001", "loginpass1").await;
    assert!(
        r.field_error("login_id").unwrap().contains("約10分後"),
        "the right password is refused while locked, with the minutes left rounded up"
    );
    c.get("/lang?to=en&back=/login").await;
    let r = c.login("lock0001", "loginpass1").await;
    assert_eq!(
        r.field_error("login_id").as_deref(),
        Some("Too many wrong passwords were entered, so login is stopped. Please log in again in about 10 minutes.")
    );
    // An unknown login ID never says "locked".
    let r = c.login("nobody99", "wrongpass1").await;
    assert_eq!(
        r.field_error("login_id").as_deref(),
        Some("The login ID or login password is incorrect.")
    );
    env.clock.advance(10 * 60);
    let r = c.login("lock0001", "loginpass1").await;
    assert_eq!(r.location.as_deref(), Some("/top"), "the lock has lifted");

    // The confirmation password shares the count: ten wrong ones on a transfer lock it too.
    let c = env.client();
    assert_eq!(
        c.login("lock0002", "loginpass1").await.location.as_deref(),
        Some("/top")
    );
    let input = c.get("/transfer").await;
    let r = c
        .post(
            "/transfer",
            &[
                ("csrf", &input.csrf()),
                ("bank_code", "0001"),
                ("branch_code", "123"),
                ("account_type", "1"),
                ("account_number", "1234567"),
                ("payee", "ﾃｽﾄ ｼﾖｳｼﾞ"),
                ("amount", "1000"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/transfer/confirm"));
    let confirm = c.get("/transfer/confirm").await;
    let key = confirm.input("request_key");
    let attempt = |pw: &'static str| {
        let (c, csrf, key) = (&c, confirm.csrf(), key.clone());
        async move {
            c.post(
                "/transfer/confirm",
                &[
                    ("csrf", csrf.as_str()),
                    ("request_key", key.as_str()),
                    ("confirmation_password", pw),
                    // A new payee asks for the メール通知パスワード too; with a wrong
                    // confirmation password the attempt counts as that password's.
                    ("mail_password", "12345678"),
                ],
            )
            .await
        }
    };
    for _ in 0..9 {
        let r = attempt("wrong99").await;
        assert_eq!(
            r.field_error("confirmation_password").as_deref(),
            Some("確認用パスワードが正しくありません。")
        );
    }
    let r = attempt("wrong99").await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.field_error("confirmation_password").as_deref(),
        Some("パスワードの誤入力が所定の回数に達したため、お取引を停止しています。約30分後に再度お試し下さい。")
    );
    let r = attempt("conf123").await;
    assert!(
        r.field_error("confirmation_password")
            .unwrap()
            .contains("お取引を停止しています"),
        "the right confirmation password is refused while locked"
    );
    let customer = env
        .engine
        .store()
        .customer_by_login("lock0002")
        .await
        .unwrap()
        .unwrap();
    assert!(
        env.engine
            .store()
            .transfers(customer.id)
            .await
            .unwrap()
            .is_empty(),
        "no transfer while locked"
    );
}
