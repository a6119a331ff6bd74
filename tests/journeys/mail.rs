//! Mail through a real SMTP server on loopback: the issuance mail, notices, retries while the
//! server is down, no resend after a restart, and the file outbox of the embedded default.

use std::time::Duration;

use tests::{
    download_url, free_port, mails_in_folder, parse_mail, Db, MailTap, SmtpServer, TestEnv,
};

use crate::both_dbs;

both_dbs!(
    issuance_mail_arrives_with_link_and_ids_never_the_password,
    mail_waits_for_a_down_server_and_is_sent_once_across_a_restart,
    notices_reach_the_customer,
);

async fn issuance_mail_arrives_with_link_and_ids_never_the_password(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(free_port(), dir.path());
    let env = TestEnv::start(db, Some(smtp.port)).await;
    env.customer("taro01", "taro@example.jp").await;
    let mut c = env.client();
    c.mail = MailTap::Maildir(smtp.maildir.clone());
    c.login("taro01", "loginpass1").await;
    let complete = c.issue("phone@example.jp", "48213").await;
    let user_id = complete.text_of("user-id").unwrap();
    // The メール通知パスワード to the registered address, the issuance mail to the phone, and
    // the notice of it to the registered address (issue 19).
    let mails = smtp.wait_for(3, Duration::from_secs(20)).await;
    let mails: Vec<_> = mails.iter().map(|m| parse_mail(m)).collect();
    let to_phone: Vec<_> = mails
        .iter()
        .filter(|m| m.to.contains("phone@example.jp"))
        .collect();
    assert_eq!(
        to_phone.len(),
        1,
        "exactly one mail to the phone for one issuance"
    );
    let m = to_phone[0].clone();
    assert!(
        m.to.contains("phone@example.jp"),
        "to the smartphone address: {}",
        m.to
    );
    assert!(
        m.subject.contains("ダウンロード"),
        "Japanese subject: {}",
        m.subject
    );
    assert!(
        m.body.contains(&format!("ユーザID：{user_id}")),
        "{}",
        m.body
    );
    assert!(m.body.contains("サービスID：10112231"), "{}", m.body);
    assert!(
        !m.body.contains("48213"),
        "the activation password never travels by mail"
    );
    let url = download_url(&m);
    assert!(url.starts_with(&format!("{}/dl/", env.base)), "{url}");
    let code = url.rsplit('/').next().unwrap();
    assert!(code.len() >= 32, "at least 128 random bits: {code}");
    // The outbox keeps no copy of the link once sent. The SMTP server has the mail before the
    // worker records it as sent: wait for that (up to 10 s).
    let issuance = || async {
        env.engine
            .store()
            .outbox(10)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.kind == "issuance")
            .unwrap()
    };
    let mut row = issuance().await;
    for _ in 0..200 {
        if row.sent_at.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        row = issuance().await;
    }
    assert!(row.sent_at.is_some(), "recorded as sent");
    assert!(row.body.is_empty(), "no copy of the link kept");
}

async fn mail_waits_for_a_down_server_and_is_sent_once_across_a_restart(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // No SMTP server yet: the mail must wait in the outbox.
    let env = TestEnv::start(db, Some(port)).await;
    env.customer("hanako01", "hanako@example.jp").await;
    let c = env.client();
    c.login("hanako01", "loginpass1").await;
    c.issue("hanako-phone@example.jp", "1234").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rows = env.engine.store().outbox(10).await.unwrap();
    // The メール通知パスワード (read from the outbox), the issuance mail and its notice.
    assert_eq!(rows.len(), 3);
    let row = rows.iter().find(|r| r.kind == "issuance").unwrap();
    assert!(row.sent_at.is_none(), "not sent while the server is down");
    assert!(row.attempts >= 1, "an attempt was made and failed");
    assert!(row.last_error.is_some());
    // The server comes up: the issuance mail and its notice are delivered by the retry. The
    // メール通知パスワード is not: it was used already (this test read it from the outbox), and a
    // dead password must not reach the customer.
    let smtp = SmtpServer::start(port, dir.path());
    let mails = smtp.wait_for(2, Duration::from_secs(20)).await;
    assert!(mails.iter().any(|m| parse_mail(m).body.contains("/dl/")));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let password_mail = loop {
        let rows = env.engine.store().outbox(10).await.unwrap();
        let row = rows
            .into_iter()
            .find(|r| r.kind == "mail_password")
            .unwrap();
        if row.given_up_at.is_some() || std::time::Instant::now() > deadline {
            break row;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        password_mail.sent_at.is_none() && password_mail.given_up_at.is_some(),
        "the used password's mail is given up, not sent"
    );
    // Restart the backend on the same database: nothing is sent again.
    let (tdb, cfg, clock) = env.shutdown().await;
    let env = TestEnv::start_with(tdb, cfg, clock).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(smtp.mails().len(), 2, "never sent twice after a restart");
    drop(env);
}

async fn notices_reach_the_customer(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let smtp = SmtpServer::start(free_port(), dir.path());
    // Transfers ask for the one-time password, not a transaction code, so the activation's
    // code can be replayed on the transfer screen.
    let env = TestEnv::start_tweaked(db, Some(smtp.port), |c| {
        c.transfers.transaction_auth = backend::domain::transfer::TransactionAuthPolicy {
            always: false,
            new_payee: false,
            amount_at_least: None,
        }
    })
    .await;
    env.customer("jiro0001", "jiro@example.jp").await;
    let mut c = env.client();
    c.mail = MailTap::Maildir(smtp.maildir.clone());
    c.login("jiro0001", "loginpass1").await;
    let user_id = c
        .issue("jiro-phone@example.jp", "5678")
        .await
        .text_of("user-id")
        .unwrap();
    let mails = smtp.wait_for(3, Duration::from_secs(20)).await;
    let url = mails
        .iter()
        .map(|m| parse_mail(m))
        .find(|m| m.body.contains("/dl/"))
        .map(|m| download_url(&m))
        .unwrap();
    assert_eq!(c.get(url.trim_start_matches(&env.base)).await.status, 200);
    let secret = env.provision(&user_id, "5678").await;
    env.next_step();
    let code = env.code(&secret);
    let bok = c.get("/otp/activate").await;
    let r = c
        .post("/otp/activate", &[("csrf", &bok.csrf()), ("code", &code)])
        .await;
    assert_eq!(r.location.as_deref(), Some("/otp/activate/done"));
    // The same code again, on the transfer screen: a replay, refused and told.
    let input = c.get("/transfer").await;
    c.post(
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
    let confirm = c.get("/transfer/confirm").await;
    let r = c
        .post(
            "/transfer/confirm",
            &[
                ("csrf", &confirm.csrf()),
                ("request_key", &confirm.input("request_key")),
                ("confirmation_password", "conf123"),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(r.field_error("code").unwrap().contains("使用済み"));
    let mails = smtp.wait_for(5, Duration::from_secs(20)).await;
    let subjects: Vec<String> = mails.iter().map(|m| parse_mail(m).subject).collect();
    assert!(
        subjects.iter().any(|s| s.contains("利用開始")),
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.contains("使用済み")),
        "{subjects:?}"
    );
    let notice = mails
        .iter()
        .map(|m| parse_mail(m))
        .find(|m| m.subject.contains("使用済み"))
        .unwrap();
    assert!(
        notice.to.contains("jiro@example.jp"),
        "to the address on file"
    );
    assert!(
        !notice.body.contains(&code),
        "a notice never carries the code"
    );
    // Wrong codes up to the lock: the lock notice follows.
    for _ in 0..5 {
        let confirm = c.get("/transfer/confirm").await;
        c.post(
            "/transfer/confirm",
            &[
                ("csrf", &confirm.csrf()),
                ("request_key", &confirm.input("request_key")),
                ("confirmation_password", "conf123"),
                ("code", "000000"),
            ],
        )
        .await;
    }
    let mails = smtp.wait_for(6, Duration::from_secs(20)).await;
    assert!(mails
        .iter()
        .any(|m| parse_mail(m).subject.contains("ロック")));
    let bop = c.get("/otp").await;
    assert!(
        bop.body.contains("ロックされています"),
        "BOP001 shows the lock"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_smtp_mail_is_written_to_eml_files() {
    let env = TestEnv::start(Db::Sqlite, None).await;
    env.customer("saburo01", "s@example.jp").await;
    let c = env.client();
    c.login("saburo01", "loginpass1").await;
    c.issue("s-phone@example.jp", "2468").await;
    let dir = env.cfg.data_dir.join("outbox");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if mails_in_folder(&dir)
            .iter()
            .any(|raw| parse_mail(raw).body.contains("/dl/"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no .eml in {}",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
