//! メール通知パスワード (issue 19) on both databases: the takeover it stops (login and
//! confirmation passwords alone cannot issue a token to a new address), expiry, resend and its
//! limit, single use, the session binding and logout, the lockout it counts under (also against
//! a concurrent burst of guesses), transfers to new payees, the e-mail change, and the staff
//! timeline that shows it was sent and used but never its value.

use sha2::{Digest, Sha256};

use backend::config::Argon2Config;
use backend::domain::mail_password::MailPurpose;
use backend::engine::{Actor, EngineError, Login, MailCheck, MailSend};
use backend::mail::compose::MailPasswordFor;
use backend::store::MailRow;

use crate::both_dbs;
use crate::staff::{customer_id, staff, Browser, Server};
use crate::support::*;
use test_support::Page;

both_dbs!(
    takeover_with_phished_passwords_cannot_issue_to_a_new_address,
    mailed_password_expires_and_resends_are_limited,
    mailed_password_is_single_use_bound_to_its_session_and_ends_at_logout,
    wrong_mailed_passwords_lock_the_customer,
    burst_of_mailed_password_guesses_cannot_pass_the_lock,
    new_payees_and_email_changes_need_it_unless_otp_is_in_use,
    a_draft_made_with_otp_needs_the_mail_once_otp_has_ended,
);

/// The メール通知パスワード in the newest such mail of the outbox.
pub(crate) fn mailed_password(mails: &[MailRow]) -> String {
    let m = mails
        .iter()
        .rev()
        .find(|m| m.kind == "mail_password")
        .expect("a mailed password in the outbox");
    let mut lines = m.body.lines();
    lines
        .by_ref()
        .find(|l| l.contains("■メール通知パスワード"))
        .expect("the password's heading");
    lines.next().expect("the password").trim().to_owned()
}

fn full_width(s: &str) -> String {
    s.chars()
        .map(|c| char::from_u32(c as u32 - '0' as u32 + 0xFF10).unwrap())
        .collect()
}

fn other_than(code: &str) -> String {
    // A wrong password of the right form, never the right one.
    let first = if code.starts_with('9') { '0' } else { '9' };
    format!("{first}{}", &code[1..])
}

pub(crate) async fn outbox(env: &Env) -> Vec<MailRow> {
    env.engine.store().outbox(1000).await.unwrap()
}

pub(crate) async fn login(b: &Browser, login: &str) {
    let form = b.get("/login").await;
    let r = b
        .post(
            "/login",
            &[
                ("csrf", &form.input("csrf")),
                ("login_id", login),
                ("password", "loginpass1"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/top"), "login: {}", r.body);
}

/// The login's password step of `login`, whose OTP is in use: on to the OTP screen.
pub(crate) async fn password_step(b: &Browser, login: &str) {
    let form = b.get("/login").await;
    let r = b
        .post(
            "/login",
            &[
                ("csrf", &form.input("csrf")),
                ("login_id", login),
                ("password", "loginpass1"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/login/otp"));
}

/// Log `login` in through the OTP screen.
pub(crate) async fn login_with_otp(env: &Env, b: &Browser, login: &str, secret: &protocol::Secret) {
    password_step(b, login).await;
    env.clock.advance(60);
    let otp = b.get("/login/otp").await;
    let r = b
        .post(
            "/login/otp",
            &[("csrf", &otp.input("csrf")), ("code", &env.code(secret, 0))],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/top"), "{}", r.body);
    // The next code is of the next minute.
    env.clock.advance(60);
}

/// The issuance input step, to `email`; returns the confirmation page.
async fn start_issue(b: &Browser, email: &str) -> Page {
    let input = b.get("/otp/issue").await;
    assert_eq!(input.status, 200, "{}", input.body);
    let r = b
        .post(
            "/otp/issue",
            &[
                ("csrf", &input.input("csrf")),
                ("email", email),
                ("email2", email),
                ("activation_password", "4821"),
                ("activation_password2", "4821"),
            ],
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some("/otp/issue/confirm"),
        "{}",
        r.body
    );
    b.get("/otp/issue/confirm").await
}

async fn confirm_issue(b: &Browser, page: &Page, conf: &str, mailed: Option<&str>) -> Page {
    let csrf = page.input("csrf");
    let key = page.input("request_key");
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("request_key", key.as_str()),
        ("confirmation_password", conf),
    ];
    if let Some(m) = mailed {
        form.push(("mail_password", m));
    }
    b.post("/otp/issue/confirm", &form).await
}

fn session_hash(b: &Browser) -> String {
    let cookies = b.cookie_header();
    let sid = cookies
        .split("; ")
        .find_map(|kv| kv.strip_prefix("sid="))
        .expect("a session cookie");
    hex::encode(Sha256::digest(sid.as_bytes()))
}

/// The attack of issue 19: someone with the customer's login and confirmation passwords issues
/// a token to their own address. Without the password mailed to the REGISTERED address the
/// confirmation is refused (watched failing before the change: it issued the token); with it,
/// issuance completes, and the registered address hears of the token issued elsewhere.
async fn takeover_with_phished_passwords_cannot_issue_to_a_new_address(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    env.customer("taro0001").await;
    let cid = customer_id(env, "taro0001").await;
    let b = srv.browser();
    login(&b, "taro0001").await;
    let page = start_issue(&b, "attacker@evil.example").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("name=\"mail_password\""),
        "the confirmation asks for the mailed password: {}",
        page.body
    );
    assert!(
        page.body.contains("t***@example.jp"),
        "and says where it went, masked"
    );
    assert!(
        page.body.contains("data-softkbd-for=\"f-mail_password\""),
        "with the software keyboard"
    );
    // Only what was phished: no issuance.
    let r = confirm_issue(&b, &page, "conf123", None).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(r.body.contains("id=\"e-mail_password\""), "{}", r.body);
    let mails = outbox(env).await;
    let code = mailed_password(&mails);
    let r = confirm_issue(&b, &page, "conf123", Some(&other_than(&code))).await;
    assert_eq!(r.status, 422, "a guessed mailed password is refused");
    assert!(
        env.engine.overview(cid).await.unwrap().token.is_none(),
        "no token was issued"
    );
    // The mail went to the registered address, naming the new address and the time.
    let m = mails.iter().rfind(|m| m.kind == "mail_password").unwrap();
    assert_eq!(m.to_addr, "taro@example.jp", "the registered address");
    assert!(m.body.contains("attacker@evil.example"), "{}", m.body);
    assert!(m.body.contains("2026年11月25日 12:00"), "{}", m.body);
    assert!(
        mails.iter().all(|m| m.to_addr != "attacker@evil.example"),
        "nothing reached the new address before the confirmation"
    );
    // The customer with the mail: full-width digits, as a Japanese IME types them.
    let r = confirm_issue(&b, &page, "conf123", Some(&full_width(&code))).await;
    assert_eq!(
        r.location.as_deref(),
        Some("/otp/issue/complete"),
        "{}",
        r.body
    );
    let mails = outbox(env).await;
    assert!(mails
        .iter()
        .any(|m| m.kind == "issuance" && m.to_addr == "attacker@evil.example"));
    let notice = mails
        .iter()
        .find(|m| m.kind == "notice_issued")
        .expect("the registered address hears of the token issued elsewhere");
    assert_eq!(notice.to_addr, "taro@example.jp");
    assert!(notice.body.contains("attacker@evil.example"));
    // Audited as sent and used, never with the value; the staff timeline shows the same.
    let audit = env
        .engine
        .store()
        .audit_for_customer(cid, 1000, None)
        .await
        .unwrap();
    for action in ["mail_password_sent", "mail_password_used"] {
        assert!(
            audit.iter().any(|a| a.action == action),
            "{action}: {audit:?}"
        );
    }
    assert!(audit
        .iter()
        .all(|a| !a.detail.as_deref().unwrap_or("").contains(&code)));
    staff(env, "op0001", "operator").await;
    let s = srv.browser();
    s.staff_login("op0001").await;
    let p = s.get(&format!("/staff/customers/{cid}")).await;
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("mail_password_sent") && p.body.contains("mail_password_used"));
    assert!(
        !p.body.contains(&code),
        "the timeline never shows the value"
    );
}

/// Ten minutes, then gone; a resend gives a new one (the old one stops working); three mails a
/// request at most.
async fn mailed_password_expires_and_resends_are_limited(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    env.customer("taro0002").await;
    let b = srv.browser();
    login(&b, "taro0002").await;
    let page = start_issue(&b, "phone@example.jp").await;
    let first = mailed_password(&outbox(env).await);
    // Keep the session alive (idle timeout 10 minutes) while the password ages past 10.
    env.clock.advance(300);
    assert_eq!(b.get("/otp/issue/confirm").await.status, 200);
    env.clock.advance(301);
    let r = confirm_issue(&b, &page, "conf123", Some(&first)).await;
    assert_eq!(r.status, 422, "expired after 10 minutes: {}", r.body);
    assert!(r.body.contains("有効期限が切れたか"), "{}", r.body);
    let r = resend(&b, &page).await;
    assert_eq!(
        r.location.as_deref(),
        Some("/otp/issue/confirm?mail=resent")
    );
    let second = mailed_password(&outbox(env).await);
    let shown = b.get("/otp/issue/confirm?mail=resent").await;
    assert!(shown.body.contains("id=\"mail-password-notice\""));
    if second != first {
        let r = confirm_issue(&b, &page, "conf123", Some(&first)).await;
        assert_eq!(r.status, 422, "the first one died with the resend");
    }
    let r = resend(&b, &page).await;
    assert_eq!(
        r.location.as_deref(),
        Some("/otp/issue/confirm?mail=resent")
    );
    let third = mailed_password(&outbox(env).await);
    let r = resend(&b, &page).await;
    assert_eq!(
        r.location.as_deref(),
        Some("/otp/issue/confirm?mail=limit"),
        "a first mail and two resends, no more"
    );
    assert_eq!(
        outbox(env)
            .await
            .iter()
            .filter(|m| m.kind == "mail_password")
            .count(),
        3
    );
    let r = confirm_issue(&b, &page, "conf123", Some(&third)).await;
    assert_eq!(
        r.location.as_deref(),
        Some("/otp/issue/complete"),
        "{}",
        r.body
    );
}

/// Used once; only in the session that asked for it; over at logout.
async fn mailed_password_is_single_use_bound_to_its_session_and_ends_at_logout(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    env.customer("taro0003").await;
    let cid = customer_id(env, "taro0003").await;
    let me = Actor::new("customer", None);
    let what = MailPasswordFor::Transfer {
        payee: "テスト商事",
        bank_code: "0001",
        branch_code: "123",
        account_type: "1",
        account_number: "1234567",
        amount: 1000,
    };
    let sent = env
        .engine
        .send_mail_password(cid, "session-a", "key-1", MailPurpose::Transfer, what, &me)
        .await
        .unwrap();
    assert_eq!(sent, MailSend::Sent { sends: 1 });
    let code = mailed_password(&outbox(env).await);
    let check = |sess: &'static str, key: &'static str, code: String| {
        let engine = env.engine.clone();
        let me = me.clone();
        async move {
            engine
                .check_with_mail_password(cid, sess, key, z("conf123"), z(&code), &me, "transfer")
                .await
                .unwrap()
        }
    };
    assert_eq!(
        check("session-b", "key-1", code.clone()).await,
        MailCheck::MailGone,
        "another session cannot use it"
    );
    assert_eq!(
        check("session-a", "key-2", code.clone()).await,
        MailCheck::MailGone,
        "nor another request"
    );
    assert_eq!(
        check("session-a", "key-1", code.clone()).await,
        MailCheck::Right
    );
    assert_eq!(
        check("session-a", "key-1", code.clone()).await,
        MailCheck::AlreadyUsed,
        "a double submit of the same request only repeats its idempotent step"
    );
    assert_eq!(
        check("session-a", "key-2", code.clone()).await,
        MailCheck::MailGone,
        "a used password confirms nothing else"
    );
    let audit = env
        .engine
        .store()
        .audit_for_customer(cid, 1000, None)
        .await
        .unwrap();
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "mail_password_used")
            .count(),
        1,
        "used once"
    );
    // Logout over HTTP ends the session's mailed password.
    let b = srv.browser();
    login(&b, "taro0003").await;
    let page = start_issue(&b, "phone@example.jp").await;
    let code = mailed_password(&outbox(env).await);
    let key = page.input("request_key");
    let hash = session_hash(&b);
    let r = b.post("/logout", &[("csrf", &page.input("csrf"))]).await;
    assert_eq!(r.location.as_deref(), Some("/login?bye=1"));
    let after = env
        .engine
        .check_with_mail_password(cid, &hash, &key, z("conf123"), z(&code), &me, "issue")
        .await
        .unwrap();
    assert_eq!(after, MailCheck::MailGone, "logout ended it");
}

/// Wrong mailed passwords count under the customer's one lockout rule, although the
/// confirmation password beside them is right: the lock comes, stops the right pair, and stops
/// login too.
async fn wrong_mailed_passwords_lock_the_customer(db: Db) {
    let env = Env::new(db).await;
    env.customer("taro0004").await;
    let cid = customer_id(&env, "taro0004").await;
    let me = Actor::new("customer", None);
    let what = MailPasswordFor::Issue {
        new_email: "phone@example.jp",
    };
    env.engine
        .send_mail_password(cid, "s", "k", MailPurpose::Issue, what, &me)
        .await
        .unwrap();
    let code = mailed_password(&outbox(&env).await);
    let wrong = other_than(&code);
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        let c = env
            .engine
            .check_with_mail_password(cid, "s", "k", z("conf123"), z(&wrong), &me, "issue")
            .await
            .unwrap();
        outcomes.push(c);
        if matches!(c, MailCheck::Locked { .. }) {
            break;
        }
    }
    assert!(
        matches!(outcomes.last(), Some(MailCheck::Locked { .. })),
        "wrong mailed passwords lock, the right confirmation password beside them never resets the count: {outcomes:?}"
    );
    assert!(outcomes[..outcomes.len() - 1]
        .iter()
        .all(|c| *c == MailCheck::MailWrong));
    let right = env
        .engine
        .check_with_mail_password(cid, "s", "k", z("conf123"), z(&code), &me, "issue")
        .await
        .unwrap();
    assert!(matches!(right, MailCheck::Locked { .. }), "{right:?}");
    assert!(matches!(
        env.engine
            .customer_login("taro0004", z("loginpass1"), &me, None)
            .await
            .unwrap(),
        Login::Locked { .. }
    ));
}

/// Forty guesses at once, the right one last: the lock holds and the password is never used.
async fn burst_of_mailed_password_guesses_cannot_pass_the_lock(db: Db) {
    let env = Env::with_config(db, |c| {
        c.argon2 = Argon2Config {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    })
    .await;
    env.customer("burst0001").await;
    let cid = customer_id(&env, "burst0001").await;
    let me = Actor::new("customer", Some("192.0.2.11".into()));
    let what = MailPasswordFor::Issue {
        new_email: "phone@example.jp",
    };
    env.engine
        .send_mail_password(cid, "s", "k", MailPurpose::Issue, what, &me)
        .await
        .unwrap();
    let code = mailed_password(&outbox(&env).await);
    let wrong = other_than(&code);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let engine = env.engine.clone();
        let me = me.clone();
        let guess = if i == 39 { code.clone() } else { wrong.clone() };
        tasks.push(tokio::spawn(async move {
            engine
                .check_with_mail_password(cid, "s", "k", z("conf123"), z(&guess), &me, "issue")
                .await
        }));
        if i == 38 {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    let mut last = None;
    for t in tasks {
        last = Some(match t.await.unwrap() {
            Ok(c) => Some(c),
            Err(EngineError::Unavailable) => None,
            Err(e) => panic!("unexpected {e:?}"),
        });
    }
    assert_ne!(
        last.flatten(),
        Some(MailCheck::Right),
        "the right one after 39 wrong ones meets the lock"
    );
    let audit = env
        .engine
        .store()
        .audit_for_customer(cid, 10_000, None)
        .await
        .unwrap();
    assert!(audit
        .iter()
        .any(|a| a.action == "password_lock" && a.outcome == "locked"));
    assert!(
        audit.iter().all(|a| a.action != "mail_password_used"),
        "never used"
    );
    let after = env
        .engine
        .check_with_mail_password(cid, "s", "k", z("conf123"), z(&code), &me, "issue")
        .await
        .unwrap();
    assert!(matches!(after, MailCheck::Locked { .. }), "{after:?}");
}

async fn resend(b: &Browser, page: &Page) -> Page {
    let csrf = page.input("csrf");
    let key = page.input("request_key");
    b.post(
        "/mail-password/resend",
        &[("csrf", csrf.as_str()), ("request_key", key.as_str())],
    )
    .await
}

/// The 7-digit account number the tests give the payee named `name` (one name, one account).
pub(crate) fn account_of(name: &str) -> String {
    let h = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{:07}", h % 10_000_000)
}

/// Enter a transfer of `amount` yen to the payee named `payee` (half-width katakana; bank
/// 0001, branch 123, ordinary, [`account_of`] the name) and open its confirmation screen.
pub(crate) async fn transfer_confirm(b: &Browser, payee: &str, amount: &str) -> Page {
    let input = b.get("/transfer").await;
    let account = account_of(payee);
    let r = b
        .post(
            "/transfer",
            &[
                ("csrf", &input.input("csrf")),
                ("bank_code", "0001"),
                ("branch_code", "123"),
                ("account_type", "1"),
                ("account_number", &account),
                ("payee", payee),
                ("amount", amount),
            ],
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some("/transfer/confirm"),
        "{}",
        r.body
    );
    b.get("/transfer/confirm").await
}

/// A new payee needs it (the mail names payee, account and amount), a payee used before does not; an
/// e-mail change needs it, sent to the OLD address; a customer using OTP never gets one.
async fn new_payees_and_email_changes_need_it_unless_otp_is_in_use(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    env.customer("hana0001").await;
    let cid = customer_id(env, "hana0001").await;
    let b = srv.browser();
    login(&b, "hana0001").await;
    let page = transfer_confirm(&b, "ｼﾝｷ ｼﾖｳｼﾞ", "15000").await;
    assert!(
        page.body.contains("name=\"mail_password\""),
        "{}",
        page.body
    );
    let mails = outbox(env).await;
    let m = mails.iter().rfind(|m| m.kind == "mail_password").unwrap();
    assert_eq!(m.to_addr, "taro@example.jp");
    assert!(
        m.body.contains("振込先：ｼﾝｷ ｼﾖｳｼﾞ") && m.body.contains("15,000円"),
        "{}",
        m.body
    );
    // The account the money goes to, not only the name typed beside it (malware in the browser
    // can keep a familiar name and change the account): bank, branch, type and number.
    let account = format!(
        "振込先口座：金融機関コード 0001 支店コード 123 普通 {}",
        account_of("ｼﾝｷ ｼﾖｳｼﾞ")
    );
    assert!(m.body.contains(&account), "{account} in {}", m.body);
    let code = mailed_password(&mails);
    let post = |page: &Page, mailed: Option<String>| {
        let mut form = vec![
            ("csrf".to_owned(), page.input("csrf")),
            ("request_key".to_owned(), page.input("request_key")),
            ("confirmation_password".to_owned(), "conf123".to_owned()),
        ];
        if let Some(m) = mailed {
            form.push(("mail_password".to_owned(), m));
        }
        let b = &b;
        async move {
            let f: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            b.post("/transfer/confirm", &f).await
        }
    };
    let r = post(&page, None).await;
    assert_eq!(r.status, 422, "no transfer to a new payee without it");
    let code_used = code.clone();
    let r = post(&page, Some(code)).await;
    assert_eq!(r.location.as_deref(), Some("/transfer/done"), "{}", r.body);
    // Another new payee: a new mailed password; the used one confirms nothing.
    let page = transfer_confirm(&b, "ﾆﾊﾞﾝﾒ ｼﾖｳｼﾞ", "500").await;
    let fresh = mailed_password(&outbox(env).await);
    if fresh != code_used {
        let r = post(&page, Some(code_used.clone())).await;
        assert_eq!(
            r.status, 422,
            "a used mailed password is not reused: {}",
            r.body
        );
    }
    let r = post(&page, Some(fresh)).await;
    assert_eq!(r.location.as_deref(), Some("/transfer/done"), "{}", r.body);
    // The same payee again: registered now.
    let before = outbox(env).await.len();
    let page = transfer_confirm(&b, "ｼﾝｷ ｼﾖｳｼﾞ", "2000").await;
    assert!(!page.body.contains("name=\"mail_password\""));
    let r = post(&page, None).await;
    assert_eq!(r.location.as_deref(), Some("/transfer/done"), "{}", r.body);
    assert_eq!(
        outbox(env).await.len(),
        before,
        "no mail for a registered payee"
    );
    assert_eq!(env.engine.store().transfers(cid).await.unwrap().len(), 3);
    // The registered e-mail address.
    let input = b.get("/settings/email").await;
    assert_eq!(input.status, 200, "{}", input.body);
    let r = b
        .post(
            "/settings/email",
            &[
                ("csrf", &input.input("csrf")),
                ("email", "hana-new@example.jp"),
                ("email2", "hana-new@example.jp"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/settings/email/confirm"));
    let page = b.get("/settings/email/confirm").await;
    let mails = outbox(env).await;
    let m = mails.iter().rfind(|m| m.kind == "mail_password").unwrap();
    assert_eq!(
        m.to_addr, "taro@example.jp",
        "to the address being replaced"
    );
    assert!(m.body.contains("hana-new@example.jp"));
    let code = mailed_password(&mails);
    let r = b
        .post(
            "/settings/email/confirm",
            &[
                ("csrf", &page.input("csrf")),
                ("request_key", &page.input("request_key")),
                ("confirmation_password", "conf123"),
                ("mail_password", &code),
            ],
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some("/settings/email/done"),
        "{}",
        r.body
    );
    let c = env
        .engine
        .store()
        .customer_by_id(cid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.email.as_deref(), Some("hana-new@example.jp"));
    assert!(outbox(env)
        .await
        .iter()
        .any(|m| m.kind == "notice_email_changed" && m.to_addr == "taro@example.jp"));
    // A customer using OTP: the code takes its place, no mail.
    let (_, secret) = env.active_token("otp00001").await;
    let o = Browser::new(&srv.base);
    login_with_otp(env, &o, "otp00001", &secret).await;
    let before = outbox(env).await.len();
    let page = transfer_confirm(&o, "ﾍﾞﾂﾉ ｼﾝｷ", "3000").await;
    assert!(!page.body.contains("name=\"mail_password\""));
    assert!(page.body.contains("name=\"code\""), "the OTP instead");
    assert_eq!(
        outbox(env).await.len(),
        before,
        "no mailed password for an OTP user"
    );
}

/// A transfer to a new payee entered while the customer used OTP (so no mailed password was
/// sent: the code takes its place) cannot be committed with the confirmation password alone
/// once OTP use has ended (a revoked token, a lost phone): the new payee needs the code or the
/// mailed password. The draft's decision is taken again at 確定する; changed, it starts over.
/// The same for an e-mail address change.
async fn a_draft_made_with_otp_needs_the_mail_once_otp_has_ended(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    let (uid, secret) = env.active_token("otp00002").await;
    let cid = customer_id(env, "otp00002").await;
    let b = Browser::new(&srv.base);
    login_with_otp(env, &b, "otp00002", &secret).await;
    let page = transfer_confirm(&b, "ｱﾀﾗｼｲ ｼﾖｳｼﾞ", "70000").await;
    assert!(page.body.contains("name=\"code\""), "{}", page.body);
    assert!(!page.body.contains("name=\"mail_password\""));
    // The e-mail change in a second session (one draft a session).
    let b2 = Browser::new(&srv.base);
    login_with_otp(env, &b2, "otp00002", &secret).await;
    let email = b2.get("/settings/email").await;
    let r = b2
        .post(
            "/settings/email",
            &[
                ("csrf", &email.input("csrf")),
                ("email", "otp-new@example.jp"),
                ("email2", "otp-new@example.jp"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/settings/email/confirm"));
    let email_confirm = b2.get("/settings/email/confirm").await;
    assert!(email_confirm.body.contains("name=\"code\""));
    env.engine
        .revoke(&uid, &Actor::new("staff:2", None), "phone lost")
        .await
        .unwrap();
    let r = b
        .post(
            "/transfer/confirm",
            &[
                ("csrf", &page.input("csrf")),
                ("request_key", &page.input("request_key")),
                ("confirmation_password", "conf123"),
            ],
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some("/transfer"),
        "start over: {} {}",
        r.status,
        r.body
    );
    assert!(
        env.engine.store().transfers(cid).await.unwrap().is_empty(),
        "no transfer to a new payee on the confirmation password alone"
    );
    // Entered again, it asks for the mailed password.
    let page = transfer_confirm(&b, "ｱﾀﾗｼｲ ｼﾖｳｼﾞ", "70000").await;
    assert!(
        page.body.contains("name=\"mail_password\""),
        "{}",
        page.body
    );
    // The e-mail change started under OTP: the same.
    let r = b2
        .post(
            "/settings/email/confirm",
            &[
                ("csrf", &email_confirm.input("csrf")),
                ("request_key", &email_confirm.input("request_key")),
                ("confirmation_password", "conf123"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/settings/email"), "{}", r.body);
    let c = env
        .engine
        .store()
        .customer_by_id(cid)
        .await
        .unwrap()
        .unwrap();
    assert_ne!(c.email.as_deref(), Some("otp-new@example.jp"));
}
