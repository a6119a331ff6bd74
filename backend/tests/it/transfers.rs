//! Transfer references (issue 14 item 8) over HTTP on both databases: the done screen shows a
//! reference a bank would show (the Tokyo date and six unambiguous random characters), the
//! staff timeline shows the same one, two transfers never share one, and the database refuses
//! a duplicate (the engine then draws again).

use backend::domain::transfer::is_reference;
use backend::store::StoreError;

use crate::both_dbs;
use crate::mail_password::{login, mailed_password, outbox, transfer_confirm};
use crate::staff::{customer_id, staff, Server};
use crate::support::*;
use test_support::Page;

both_dbs!(transfer_references_are_dated_random_unique_and_shown_to_staff);

/// Confirm the transfer on `page` (with the mailed password when the payee is new) and open
/// the done screen.
async fn confirm(b: &crate::staff::Browser, page: &Page, mailed: Option<&str>) -> Page {
    let csrf = page.input("csrf");
    let key = page.input("request_key");
    let mut form = vec![
        ("csrf", csrf.as_str()),
        ("request_key", key.as_str()),
        ("confirmation_password", "conf123"),
    ];
    if let Some(m) = mailed {
        form.push(("mail_password", m));
    }
    let r = b.post("/transfer/confirm", &form).await;
    assert_eq!(r.location.as_deref(), Some("/transfer/done"), "{}", r.body);
    let done = b.get("/transfer/done").await;
    assert_eq!(done.status, 200, "{}", done.body);
    done
}

async fn transfer_references_are_dated_random_unique_and_shown_to_staff(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    env.customer("hana0001").await;
    let cid = customer_id(env, "hana0001").await;
    let b = srv.browser();
    login(&b, "hana0001").await;
    // A new payee (the mailed password), then the same payee again.
    let page = transfer_confirm(&b, "ｻﾝｼﾖｳ ｼﾖｳｼﾞ", "15000").await;
    let code = mailed_password(&outbox(env).await);
    let done = confirm(&b, &page, Some(&code)).await;
    assert!(done.body.contains("受付番号"), "{}", done.body);
    let first = done
        .text_of("transfer-ref")
        .expect("the reference on the done screen");
    // T0 is 2026-11-25 12:00:30 in Tokyo.
    assert!(
        first.starts_with("20261125-"),
        "the Tokyo date first: {first}"
    );
    assert!(
        is_reference(&first),
        "date + 6 unambiguous characters: {first}"
    );
    assert!(!first[9..].contains(['0', 'O', '1', 'I']), "{first}");
    let again = b.get("/transfer/done").await;
    assert_eq!(
        again.text_of("transfer-ref").as_deref(),
        Some(first.as_str())
    );
    let page = transfer_confirm(&b, "ｻﾝｼﾖｳ ｼﾖｳｼﾞ", "2000").await;
    let second = confirm(&b, &page, None)
        .await
        .text_of("transfer-ref")
        .unwrap();
    assert!(is_reference(&second), "{second}");
    assert_ne!(first, second, "two transfers, two references");
    let rows = env.engine.store().transfers(cid).await.unwrap();
    let stored: Vec<_> = rows.iter().map(|t| t.reference.clone().unwrap()).collect();
    assert_eq!(stored, [first.clone(), second.clone()]);

    // Staff see the same references in the customer's timeline.
    staff(env, "op0001", "operator").await;
    let op = srv.browser();
    op.staff_login("op0001").await;
    let p = op.get(&format!("/staff/customers/{cid}")).await;
    assert_eq!(p.status, 200);
    let transfers: Vec<&str> = p
        .body
        .split("<tr data-id=")
        .filter(|row| row.contains("<td class=\"action\">transfer</td>"))
        .collect();
    assert_eq!(transfers.len(), 2, "{}", p.body);
    assert!(transfers.iter().any(|r| r.contains(&first)), "{}", p.body);
    assert!(transfers.iter().any(|r| r.contains(&second)), "{}", p.body);

    // A reference is unique in the database: a duplicate is a conflict (drawn again by the
    // engine), on both databases.
    let mut tx = env.engine.store().begin().await.unwrap();
    let payee =
        backend::domain::transfer::PayeeAccount::parse("0001", "123", "1", "7654321", "ｻﾝｼﾖｳ")
            .unwrap();
    let dup = tx
        .insert_transfer(&backend::store::NewTransfer {
            customer_id: cid,
            request_key: "another-request-key",
            reference: &first,
            payee: &payee,
            amount: 1,
            user_id: None,
            new_payee: false,
            tx_digest: None,
            now: 0,
        })
        .await;
    assert!(
        matches!(dup, Err(StoreError::Conflict(_))),
        "duplicate reference refused: {dup:?}"
    );
}
