//! The whole path from the bank's issuance to a working soft token, and every refusal of the
//! setup as the app sees it.
//!
//! Mail: the issuance is made through the host API and the download link is opened through the
//! mail the backend wrote to its outbox, as the customer does.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use app::{codes, setup_token, AppError, Directory, ProvisioningClient, Timeouts, Vault};
use serde_json::json;

use crate::support::*;

/// Current-thread runtime: the keyutils store works on the calling thread's session keyring.
#[tokio::test(flavor = "current_thread")]
async fn issue_open_setup_code_accepted_activate() {
    let b = Backend::start(0, |_| {}).await;
    let uid = b.issue("taro01").await;
    b.open_link(&uid).await;

    let data = tempfile::tempdir().unwrap();
    let service = unique_service("e2e");
    let mut vault = Vault::open(data.path(), keyring_store(&service)).unwrap();
    let (token, warning) = setup_token(&b.client(), &mut vault, &input(&uid, "1234"))
        .await
        .unwrap();
    assert_eq!(warning, None, "the server's clock is right");
    assert!(token.clock_offset.0.abs() <= 1, "{:?}", token.clock_offset);
    assert_eq!(
        token.user_id.as_ref().map(|u| u.as_str()),
        Some(uid.as_str())
    );
    assert_eq!(token.issuer.as_deref(), Some("OTP Bank"));

    // The metadata file holds no secret; the keystore does.
    let meta = std::fs::read_to_string(data.path().join(app::vault::METADATA_FILE)).unwrap();
    assert!(
        meta.contains(&uid) && !meta.contains("\"secret\""),
        "{meta}"
    );

    let view = vault.code_view(&token.id, codes::device_now()).unwrap();
    assert_eq!(view.code.as_str().len(), 6);
    assert!((1..=60).contains(&view.seconds_left));
    let (st, v) = b
        .host_post(
            &format!("/tokens/{uid}/activate"),
            json!({"code": view.code.as_str()}),
        )
        .await;
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    assert_eq!(v["result"], "ok", "the app's code activates the token: {v}");
    assert_eq!(v["state"], "active", "{v}");

    // Setting up again is refused: the secret left the server once.
    let (_, mut other) = memory_vault();
    assert_eq!(
        setup_token(&b.client(), &mut other, &input(&uid, "1234"))
            .await
            .unwrap_err(),
        AppError::AlreadyProvisioned
    );

    vault.delete(&token.id).unwrap();
    let store = keyring_store(&service);
    assert_eq!(
        store.get(&token.id).unwrap(),
        None,
        "deleting the token removes its keystore entry"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_setup_refusal_reaches_the_app_as_its_own_error() {
    let b = Backend::start(0, |c| {
        c.app_api.per_ip = 1000;
        c.app_api.per_user_id = 1000;
    })
    .await;
    let client = b.client();
    let (_d, mut vault) = memory_vault();

    let ghost = protocol::UserId::from_serial(12_345_678_901).unwrap();
    assert_eq!(
        setup_token(&client, &mut vault, &input(ghost.as_str(), "1234"))
            .await
            .unwrap_err(),
        AppError::UnknownUserId
    );

    let uid = b.issue("hanako1").await;
    assert_eq!(
        setup_token(&client, &mut vault, &input(&uid, "1234"))
            .await
            .unwrap_err(),
        AppError::LinkNotOpened
    );
    b.open_link(&uid).await;
    for left in [4, 3, 2, 1] {
        let e = setup_token(&client, &mut vault, &input(&uid, "0000"))
            .await
            .unwrap_err();
        assert_eq!(
            e,
            AppError::WrongActivationPassword {
                attempts_left: left
            }
        );
        assert!(e.message_ja().contains(&format!("あと{left}回")));
    }
    assert_eq!(
        setup_token(&client, &mut vault, &input(&uid, "0000"))
            .await
            .unwrap_err(),
        AppError::IssuanceDead
    );
    assert_eq!(
        setup_token(&client, &mut vault, &input(&uid, "1234"))
            .await
            .unwrap_err(),
        AppError::IssuanceDead,
        "the customer must issue again"
    );

    let uid2 = b.issue("jiro01").await;
    b.open_link(&uid2).await;
    b.clock.set_skew(8 * 86_400);
    assert_eq!(
        setup_token(&client, &mut vault, &input(&uid2, "1234"))
            .await
            .unwrap_err(),
        AppError::IssuanceExpired
    );
    assert!(vault.tokens().is_empty(), "no refusal adds a token");

    // Checked on the device: nothing is sent for a typo.
    let mut typo = uid2.clone();
    let last = typo.pop().unwrap();
    typo.push(if last == '0' { '1' } else { '0' });
    assert_eq!(
        setup_token(&client, &mut vault, &input(&typo, "1234"))
            .await
            .unwrap_err(),
        AppError::UserIdTypo
    );
    let mut unknown_service = input(&uid2, "1234");
    unknown_service.service_id = "12345678".into();
    assert_eq!(
        setup_token(&client, &mut vault, &unknown_service)
            .await
            .unwrap_err(),
        AppError::UnknownService
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_reaches_the_app_with_retry_after() {
    let b = Backend::start(0, |c| c.app_api.per_user_id = 2).await;
    let client = b.client();
    let (_d, mut vault) = memory_vault();
    let uid = b.issue("saburo1").await;
    for _ in 0..2 {
        assert_eq!(
            setup_token(&client, &mut vault, &input(&uid, "1234"))
                .await
                .unwrap_err(),
            AppError::LinkNotOpened
        );
    }
    match setup_token(&client, &mut vault, &input(&uid, "1234"))
        .await
        .unwrap_err()
    {
        AppError::RateLimited { retry_after_secs } => {
            assert!((1..=60).contains(&retry_after_secs), "{retry_after_secs}")
        }
        other => panic!("expected RATE_LIMITED, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_failures_and_no_retry_of_setup() {
    let (_d, mut vault) = memory_vault();
    let uid = protocol::UserId::from_serial(99_980_000_000).unwrap();

    // Nothing listens: nothing was sent, so the app may say "check your connection".
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut dir = Directory::default();
    dir.set(
        &SERVICE_ID.parse().unwrap(),
        &format!("http://127.0.0.1:{port}"),
    )
    .unwrap();
    let client = ProvisioningClient::new(dir).unwrap();
    assert_eq!(
        setup_token(&client, &mut vault, &input(uid.as_str(), "1234"))
            .await
            .unwrap_err(),
        AppError::Network
    );
    assert_eq!(
        client
            .server_time(&SERVICE_ID.parse().unwrap())
            .await
            .unwrap_err(),
        AppError::Network
    );

    // A server that takes the request and never answers. Setup is provisioning v2 (issue 18):
    // this is its start, which hands nothing out (it may have spent an attempt), so it is a
    // timeout to try again; the app does not resend it by itself either. (A finish that gets no
    // answer is SetupOutcomeUnknown, never resent: see ProvisioningClient::setup.)
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = silent.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            held.push(sock);
        }
    });
    let mut dir = Directory::default();
    dir.set(&SERVICE_ID.parse().unwrap(), &format!("http://{addr}"))
        .unwrap();
    let client = ProvisioningClient::with_timeouts(
        dir,
        Timeouts {
            connect: Duration::from_secs(2),
            request: Duration::from_millis(500),
        },
    )
    .unwrap();
    assert_eq!(
        setup_token(&client, &mut vault, &input(uid.as_str(), "1234"))
            .await
            .unwrap_err(),
        AppError::Timeout
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "a setup request that may have reached the server is not retried"
    );
    assert_eq!(
        client
            .server_time(&SERVICE_ID.parse().unwrap())
            .await
            .unwrap_err(),
        AppError::Timeout
    );
    assert!(vault.tokens().is_empty());
}
