//! Transaction authentication (取引認証, issue 16) on both databases: the code of a transfer is
//! an OCRA response over its payee account and amount, single use through the verification
//! group commit, refused for any other account or amount (man-in-the-browser), never a TOTP
//! code nor the other way round, and its failures count toward the token's one lock. Over the
//! screens: the policy asks for it (new payee, ≥100,000 yen), the confirmation screen shows the
//! transfer with its QR and typed fields, staff see whether it was used; and the host API.

use std::sync::Arc;

use serde_json::json;
use zeroize::Zeroizing;

use backend::domain::transfer::PayeeAccount;
use backend::domain::{Outcome, Purpose};
use protocol::ocra::{transaction_code, AccountType, Transaction};
use protocol::Secret;

use crate::both_dbs;
use crate::mail_password::{account_of, login_with_otp};
use crate::staff::{customer_id, staff, Browser, Server};
use crate::support::*;
use test_support::Page;

both_dbs!(
    a_transaction_code_is_single_use_and_bound_to_its_transfer,
    transaction_failures_share_the_token_lock,
    concurrent_uses_of_one_transaction_code_accept_exactly_one,
    concurrent_transfers_cannot_together_pass_the_daily_limit,
    the_screens_ask_for_it_and_refuse_a_changed_account,
    the_host_api_verifies_transaction_codes,
    a_double_submitted_confirmation_is_one_transfer_and_no_alarm,
    a_double_submitted_login_code_is_no_alarm,
    double_submitted_activation_and_deactivation_show_their_done_screens,
);

fn tx(account: &str, amount: u64) -> Transaction {
    Transaction::new("0001", "123", AccountType::Ordinary, account, amount).unwrap()
}

/// The outcome of verifying `code` as the transaction code of `t`.
async fn verify_tx(env: &Env, uid: &str, code: &Zeroizing<String>, t: &Transaction) -> Outcome {
    env.engine
        .verify_transaction(uid, code.clone(), t.clone(), host())
        .await
        .unwrap()
        .result
}

fn tx_code(env: &Env, secret: &Secret, t: &Transaction) -> Zeroizing<String> {
    Zeroizing::new(transaction_code(secret, t, env.now()).as_str().to_owned())
}

async fn a_transaction_code_is_single_use_and_bound_to_its_transfer(db: Db) {
    let env = Env::new(db).await;
    let (uid, secret) = env.active_token("txa00001").await;
    let right = tx("1234567", 150_000);
    let code = tx_code(&env, &secret, &right);
    // Man in the browser: the same code for another account, or another amount.
    for other in [tx("7654321", 150_000), tx("1234567", 1_500_000)] {
        assert_eq!(
            verify_tx(&env, &uid, &code, &other).await,
            Outcome::Invalid,
            "a changed transfer fails"
        );
    }
    // Key separation: the TOTP code of this minute is not a transaction code...
    let r = env
        .engine
        .verify_transaction(
            &uid,
            Zeroizing::new(format!("00{}", env.code(&secret, 0).as_str())),
            right.clone(),
            host(),
        )
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Invalid);
    // ...nor is a transaction code a one-time password (8 digits on a 6-digit token).
    assert!(env
        .engine
        .verify(&uid, code.clone(), Purpose::Transfer, host())
        .await
        .is_err());
    // The right code for the right transfer: once.
    assert_eq!(
        verify_tx(&env, &uid, &code, &right).await,
        Outcome::Ok,
        "{r:?}"
    );
    assert_eq!(
        verify_tx(&env, &uid, &code, &right).await,
        Outcome::Replayed
    );
    // A TOTP code still works (its own replay step: activation used this minute's, the next
    // one is in the window), and the transaction code is still replayed after it.
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 1), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
    assert_eq!(
        verify_tx(&env, &uid, &code, &right).await,
        Outcome::Replayed
    );
    // The purpose `transaction` without its transaction is refused outright.
    assert!(env
        .engine
        .verify(&uid, code.clone(), Purpose::Transaction, host())
        .await
        .is_err());
    // The audit names the transaction by its digest, never the code.
    let audit = env.audit(&uid).await;
    let ok: Vec<_> = audit
        .iter()
        .filter(|a| a.action == "verify_transaction")
        .collect();
    assert_eq!(
        ok.len(),
        6,
        "{:?}",
        ok.iter().map(|a| &a.outcome).collect::<Vec<_>>()
    );
    let accepted = ok.iter().find(|a| a.outcome == "ok").unwrap();
    assert!(
        accepted
            .detail
            .as_deref()
            .unwrap_or("")
            .contains(&right.digest_hex()),
        "{:?}",
        accepted.detail
    );
    for a in &audit {
        assert!(
            !a.detail.as_deref().unwrap_or("").contains(code.as_str()),
            "no code in the audit"
        );
    }
    // The next minute's code for the same transfer is a new code.
    env.clock.advance(60);
    assert_eq!(
        verify_tx(&env, &uid, &tx_code(&env, &secret, &right), &right).await,
        Outcome::Ok
    );
}

async fn transaction_failures_share_the_token_lock(db: Db) {
    let env = Env::new(db).await;
    let (uid, secret) = env.active_token("txl00001").await;
    let right = tx("1234567", 150_000);
    let wrong = tx("1234568", 150_000);
    // 4 transaction failures and one TOTP failure: the fifth failure locks.
    for i in 0..4 {
        let r = env
            .engine
            .verify_transaction(&uid, tx_code(&env, &secret, &wrong), right.clone(), host())
            .await
            .unwrap();
        assert_eq!(r.result, Outcome::Invalid);
        assert_eq!(r.attempts_left, Some(4 - i));
    }
    let r = env
        .engine
        .verify(
            &uid,
            Zeroizing::new("000000".into()),
            Purpose::Login,
            host(),
        )
        .await
        .unwrap();
    let r = if r.result == Outcome::Ok {
        // 000000 happened to be the code: fail with another.
        env.engine
            .verify(
                &uid,
                Zeroizing::new("000001".into()),
                Purpose::Login,
                host(),
            )
            .await
            .unwrap()
    } else {
        r
    };
    assert_eq!(r.result, Outcome::Locked);
    assert!(r.locked);
    // Locked: the right transaction code is refused too.
    assert_eq!(
        verify_tx(&env, &uid, &tx_code(&env, &secret, &right), &right).await,
        Outcome::Locked
    );
}

async fn concurrent_uses_of_one_transaction_code_accept_exactly_one(db: Db) {
    let env = Arc::new(Env::new(db).await);
    let (uid, secret) = env.active_token("txc00001").await;
    let right = tx("1234567", 150_000);
    let code = tx_code(&env, &secret, &right);
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let (env, uid, code, right) = (env.clone(), uid.clone(), code.clone(), right.clone());
        tasks.push(tokio::spawn(async move {
            env.engine
                .verify_transaction(&uid, code, right, host())
                .await
                .unwrap()
                .result
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Outcome::Ok => ok += 1,
            Outcome::Replayed => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ok, 1, "one code, one transfer");
}

/// Eight transfers of one customer at once, each within the per-transfer limit, two of which
/// fill the day's 20,000,000 yen: exactly two are recorded, the others answer `DAILY_LIMIT`,
/// and the day's total never passes the limit (a check of the total and the insert that were
/// not one transaction would let several through).
async fn concurrent_transfers_cannot_together_pass_the_daily_limit(db: Db) {
    let env = Arc::new(Env::new(db).await);
    env.customer("daily001").await;
    let cid = env
        .engine
        .store()
        .customer_by_login("daily001")
        .await
        .unwrap()
        .unwrap()
        .id;
    let payee = PayeeAccount::parse("0001", "123", "1", "1234567", "ﾔﾏﾀﾞ ﾀﾛｳ").unwrap();
    let amount = 9_900_000;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let (env, payee) = (env.clone(), payee.clone());
        tasks.push(tokio::spawn(async move {
            let key = format!("daily-race-{i}");
            env.engine
                .record_transfer(
                    &backend::engine::TransferRequest {
                        customer_id: cid,
                        request_key: &key,
                        payee: &payee,
                        amount,
                        user_id: None,
                        new_payee: false,
                        tx_digest: None,
                    },
                    &host(),
                )
                .await
                .map(|_| ())
                .map_err(|e| e.code())
        }));
    }
    let mut recorded = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => recorded += 1,
            Err(code) => assert_eq!(code, "DAILY_LIMIT"),
        }
    }
    assert_eq!(recorded, 2, "two transfers fill the day");
    let rows = env.engine.store().transfers(cid).await.unwrap();
    let total: i64 = rows.iter().map(|r| r.amount).sum();
    assert_eq!(rows.len(), 2);
    assert!(
        total <= 20_000_000,
        "the day's total {total} passed the limit"
    );
}

async fn enter(b: &Browser, fields: &[(&str, &str)]) -> Page {
    let input = b.get("/transfer").await;
    let csrf = input.input("csrf");
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    b.post("/transfer", &form).await
}

async fn commit(b: &Browser, page: &Page, code: &str) -> Page {
    b.post(
        "/transfer/confirm",
        &[
            ("csrf", &page.input("csrf")),
            ("request_key", &page.input("request_key")),
            ("confirmation_password", "conf123"),
            ("code", code),
        ],
    )
    .await
}

async fn the_screens_ask_for_it_and_refuse_a_changed_account(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    let (uid, secret) = env.active_token("txs00001").await;
    let cid = customer_id(env, "txs00001").await;
    let b = srv.browser();
    login_with_otp(env, &b, "txs00001", &secret).await;

    // Bad input: every field named in Japanese, nothing kept.
    let r = enter(
        &b,
        &[
            ("bank_code", "12"),
            ("branch_code", "12a"),
            ("account_type", "3"),
            ("account_number", "123"),
            ("payee", "ヤマダ タロウ"),
            ("amount", "0"),
        ],
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    for msg in [
        "金融機関コードは4桁",
        "支店コードは3桁",
        "預金種目は",
        "口座番号は7桁",
        "受取人名は半角カナ",
        "振込金額は1～10,000,000",
    ] {
        assert!(r.body.contains(msg), "{msg}: {}", r.body);
    }
    // The real account (the customer's intent) and what malware makes the bank receive.
    let meant = account_of("ﾔﾏﾀﾞ ﾀﾛｳ");
    let swapped = if meant == "9999999" {
        "9999998"
    } else {
        "9999999"
    };
    let meant = meant.as_str();
    let fields = |account| {
        [
            ("bank_code", "0001"),
            ("branch_code", "123"),
            ("account_type", "1"),
            ("account_number", account),
            ("payee", "ﾔﾏﾀﾞ ﾀﾛｳ"),
            ("amount", "150000"),
        ]
    };
    let r = enter(&b, &fields(swapped)).await;
    assert_eq!(
        r.location.as_deref(),
        Some("/transfer/confirm"),
        "{}",
        r.body
    );
    let page = b.get("/transfer/confirm").await;
    assert_eq!(page.status, 200);
    // The transfer as the bank received it, the QR (inline SVG) and the typed fallback.
    assert_eq!(page.text_of("confirm-account").as_deref(), Some(swapped));
    assert!(page.body.contains("id=\"new-payee\""), "{}", page.body);
    assert!(page.body.contains("id=\"tx-qr\""), "{}", page.body);
    assert!(page.body.contains("<svg"), "{}", page.body);
    assert!(
        page.body
            .split("<script")
            .skip(1)
            .all(|tag| !tag[..tag.find('>').unwrap()].to_lowercase().contains("qr")),
        "drawn on the server, no QR script"
    );
    assert_eq!(page.text_of("tx-amount").as_deref(), Some("150000"));
    assert!(page.body.contains("取引認証番号"));
    // The customer's app computed the code for the account they meant: refused, nothing
    // transferred, the attempt audited and counted.
    let code = tx_code(env, &secret, &tx(meant, 150_000));
    let r = commit(&b, &page, &code).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body.contains("ワンタイムパスワードが正しくありません")
            || r.body.contains("正しくありません"),
        "{}",
        r.body
    );
    assert!(env.engine.store().transfers(cid).await.unwrap().is_empty());
    let token = env
        .engine
        .store()
        .token_by_user_id(&uid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(token.failures, 1, "counted toward the lock");
    let audit = env.audit(&uid).await;
    let refused = audit
        .iter()
        .find(|a| a.action == "verify_transaction" && a.outcome == "invalid")
        .expect("the refused attempt is audited");
    assert!(refused
        .detail
        .as_deref()
        .unwrap()
        .contains(&tx(swapped, 150_000).digest_hex()));
    // The one-time password is not enough here either.
    let r = commit(&b, &page, &env.code(&secret, 0)).await;
    assert_eq!(r.status, 422);
    assert!(r.body.contains("取引認証番号は8桁"), "{}", r.body);

    // Start again with the right account: the app's code for it is accepted.
    let r = enter(&b, &fields(meant)).await;
    assert_eq!(r.location.as_deref(), Some("/transfer/confirm"));
    let page = b.get("/transfer/confirm").await;
    let r = commit(&b, &page, &tx_code(env, &secret, &tx(meant, 150_000))).await;
    assert_eq!(r.location.as_deref(), Some("/transfer/done"), "{}", r.body);
    let done = b.get("/transfer/done").await;
    assert!(done.body.contains("id=\"done-tx-auth\""), "{}", done.body);
    let rows = env.engine.store().transfers(cid).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].account_number.as_deref(), Some(meant));
    assert_eq!(rows[0].new_payee, 1);
    assert_eq!(
        rows[0].tx_digest.as_deref(),
        Some(tx(meant, 150_000).digest_hex().as_str())
    );
    let payee = PayeeAccount::parse("0001", "123", "1", meant, "ﾔﾏﾀﾞ ﾀﾛｳ").unwrap();
    assert!(!env.engine.payee_is_new(cid, &payee).await.unwrap());

    // The registered payee, under 100,000 yen: the ordinary one-time password.
    env.clock.advance(60);
    let input = b.get("/transfer").await;
    assert!(input.body.contains("ﾔﾏﾀﾞ ﾀﾛｳ (0001 123"), "{}", input.body);
    let pid = env.engine.payees(cid).await.unwrap()[0].id.to_string();
    let r = enter(&b, &[("payee_id", &pid), ("amount", "5000")]).await;
    assert_eq!(
        r.location.as_deref(),
        Some("/transfer/confirm"),
        "{}",
        r.body
    );
    let page = b.get("/transfer/confirm").await;
    assert!(!page.body.contains("id=\"tx-auth\""));
    let r = commit(&b, &page, &env.code(&secret, 0)).await;
    assert_eq!(r.location.as_deref(), Some("/transfer/done"), "{}", r.body);
    let rows = env.engine.store().transfers(cid).await.unwrap();
    assert_eq!((rows[1].new_payee, rows[1].tx_digest.is_none()), (0, true));

    // The daily limit: 20,000,000 a day, 10,000,000 a transfer.
    env.clock.advance(60);
    for _ in 0..2 {
        let r = enter(&b, &[("payee_id", &pid), ("amount", "9900000")]).await;
        assert_eq!(
            r.location.as_deref(),
            Some("/transfer/confirm"),
            "{}",
            r.body
        );
        let page = b.get("/transfer/confirm").await;
        let code = tx_code(env, &secret, &tx(meant, 9_900_000));
        let r = commit(&b, &page, &code).await;
        assert_eq!(r.location.as_deref(), Some("/transfer/done"), "{}", r.body);
        env.clock.advance(60);
    }
    let r = enter(&b, &[("payee_id", &pid), ("amount", "50000")]).await;
    assert_eq!(r.status, 422);
    assert!(
        r.body.contains("1日のお振込限度額（20,000,000円）") && r.body.contains("あと45,000円"),
        "{}",
        r.body
    );

    // Staff see the transfers with their payee and whether it was used.
    staff(env, "op0001", "operator").await;
    let op = srv.browser();
    op.staff_login("op0001").await;
    let p = op.get(&format!("/staff/customers/{cid}")).await;
    assert_eq!(p.status, 200);
    assert!(p.body.contains("id=\"transfers\""), "{}", p.body);
    let rows: Vec<&str> = p.body.split("<tr data-reference=").skip(1).collect();
    assert_eq!(rows.len(), 4, "{}", p.body);
    assert!(rows
        .iter()
        .all(|r| r.contains(meant) && r.contains("ﾔﾏﾀﾞ ﾀﾛｳ")));
    let used = rows
        .iter()
        .filter(|r| r.contains("class=\"tx-auth\">Used") || r.contains("class=\"tx-auth\">あり"))
        .count();
    assert_eq!(used, 3, "the first and the two large ones");
}

async fn the_host_api_verifies_transaction_codes(db: Db) {
    let s = crate::host_api::Server::start(db).await;
    let (uid, secret) = s.env.active_token("txh00001").await;
    let t = tx("1234567", 150_000);
    let code = tx_code(&s.env, &secret, &t);
    let body = |code: &str, account: &str| {
        json!({
            "code": code,
            "purpose": "transaction",
            "transaction": {
                "bank_code": "0001", "branch_code": "123", "account_type": "1",
                "account_number": account, "amount": 150000
            }
        })
    };
    let path = format!("/host/v1/tokens/{uid}/verify");
    let (st, v) = s
        .post(
            &path,
            json!({ "code": code.as_str(), "purpose": "transaction" }),
        )
        .await;
    assert_eq!(
        (st.as_u16(), v["code"].as_str()),
        (422, Some("TRANSACTION_REQUIRED"))
    );
    let (st, v) = s
        .post(&path, json!({ "code": "123456", "purpose": "login", "transaction": body("1", "1")["transaction"] }))
        .await;
    assert_eq!(
        (st.as_u16(), v["code"].as_str()),
        (422, Some("TRANSACTION_UNEXPECTED"))
    );
    let (st, v) = s.post(&path, body(&code, "123456")).await;
    assert_eq!(
        (st.as_u16(), v["code"].as_str()),
        (422, Some("TRANSACTION_FORMAT"))
    );
    let (st, v) = s.post(&path, body(&code, "7654321")).await;
    assert_eq!((st.as_u16(), v["result"].as_str()), (200, Some("invalid")));
    let (st, v) = s.post(&path, body(&code, "1234567")).await;
    assert_eq!(
        (st.as_u16(), v["result"].as_str()),
        (200, Some("ok")),
        "{v}"
    );
    let (_, v) = s.post(&path, body(&code, "1234567")).await;
    assert_eq!(v["result"].as_str(), Some("replayed"));
}

/// The same form posted twice at once (a double click); the answers in the order sent.
async fn post_twice(b: &Browser, path: &str, fields: &[(&str, &str)]) -> [Page; 2] {
    let (first, second) = tokio::join!(b.post(path, fields), b.post(path, fields));
    [first, second]
}

/// No "your code was used again" alarm went to the customer.
async fn no_replay_alarm(env: &Env) {
    let mails = crate::mail_password::outbox(env).await;
    assert!(
        mails.iter().all(|m| m.kind != "notice_replayed"),
        "an alarm: {:?}",
        mails.iter().map(|m| &m.kind).collect::<Vec<_>>()
    );
}

/// 確定する pressed twice (two requests at once, the same form and code): one transfer, both
/// answers lead to its done screen, and no "your code was used again" alarm goes to the
/// customer. Before, the second request's code was a replay: an error page for a transfer that
/// was made, and a mail telling the customer a third party may know their password.
async fn a_double_submitted_confirmation_is_one_transfer_and_no_alarm(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    let (_, secret) = env.active_token("txd00001").await;
    let cid = customer_id(env, "txd00001").await;
    let b = srv.browser();
    login_with_otp(env, &b, "txd00001", &secret).await;
    let account = account_of("ﾀﾞﾌﾞﾙ ｸﾘﾂｸ");
    let r = enter(
        &b,
        &[
            ("bank_code", "0001"),
            ("branch_code", "123"),
            ("account_type", "1"),
            ("account_number", &account),
            ("payee", "ﾀﾞﾌﾞﾙ ｸﾘﾂｸ"),
            ("amount", "2000"),
        ],
    )
    .await;
    assert_eq!(
        r.location.as_deref(),
        Some("/transfer/confirm"),
        "{}",
        r.body
    );
    let page = b.get("/transfer/confirm").await;
    let code = tx_code(env, &secret, &tx(&account, 2000));
    let (first, second) = tokio::join!(commit(&b, &page, &code), commit(&b, &page, &code));
    for r in [&first, &second] {
        assert_eq!(r.location.as_deref(), Some("/transfer/done"), "{}", r.body);
    }
    assert_eq!(env.engine.store().transfers(cid).await.unwrap().len(), 1);
    no_replay_alarm(env).await;
}

/// The login's OTP step sent twice at once: one logs in; the other finds its session replaced
/// by the logged-in one and is sent to the login screen, not shown a replayed code, and no
/// alarm mail goes out (before: 422 "already used" and the alarm).
async fn a_double_submitted_login_code_is_no_alarm(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    let (_, secret) = env.active_token("txd00002").await;
    let b = srv.browser();
    crate::mail_password::password_step(&b, "txd00002").await;
    env.clock.advance(60);
    let otp = b.get("/login/otp").await;
    let (csrf, code) = (otp.input("csrf"), env.code(&secret, 0));
    let fields = [("csrf", csrf.as_str()), ("code", code.as_str())];
    let [first, second] = post_twice(&b, "/login/otp", &fields).await;
    let mut places = vec![first.location.clone(), second.location.clone()];
    places.sort();
    assert_eq!(
        places,
        vec![Some("/login".to_owned()), Some("/top".to_owned())],
        "{} / {}",
        first.body,
        second.body
    );
    no_replay_alarm(env).await;
}

/// BOK001 and BOS001 sent twice at once: each pair ends on its done screen (BOK002, BOS002),
/// and no alarm mail goes out.
async fn double_submitted_activation_and_deactivation_show_their_done_screens(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    env.customer("txd00003").await;
    let uid = env.issue("txd00003").await;
    env.engine.open_link(&uid, &host()).await.unwrap();
    let secret = env.provision(&uid).await;
    let b = srv.browser();
    crate::mail_password::login(&b, "txd00003").await;
    env.clock.advance(60);
    let bok = b.get("/otp/activate").await;
    let (csrf, code) = (bok.input("csrf"), env.code(&secret, 0));
    let fields = [("csrf", csrf.as_str()), ("code", code.as_str())];
    let [first, second] = post_twice(&b, "/otp/activate", &fields).await;
    for r in [&first, &second] {
        assert_eq!(
            r.location.as_deref(),
            Some("/otp/activate/done"),
            "{}",
            r.body
        );
    }
    env.clock.advance(60);
    let bos = b.get("/otp/deactivate").await;
    let (csrf, code) = (bos.input("csrf"), env.code(&secret, 0));
    let fields = [
        ("csrf", csrf.as_str()),
        ("confirmation_password", "conf123"),
        ("code", code.as_str()),
    ];
    let [first, second] = post_twice(&b, "/otp/deactivate", &fields).await;
    for r in [&first, &second] {
        assert_eq!(
            r.location.as_deref(),
            Some("/otp/deactivate/done"),
            "{}",
            r.body
        );
    }
    no_replay_alarm(env).await;
}
