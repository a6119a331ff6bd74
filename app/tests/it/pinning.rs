//! Certificate pinning against the real backend behind TLS on loopback (issue 17, item 3).
//!
//! The backend serves plain HTTP on loopback; in front of it runs a small TLS-terminating
//! proxy (tokio-rustls) whose certificate is issued by a CA made in the test (rcgen). The app's
//! client trusts that CA, so the chain is good in every case and only the pin decides. The proxy
//! counts the bytes it decrypted: a refused handshake must have let none through.

use app::pinning::Pin;
use app::{setup_token, AppError, Directory, ProvisioningClient, Timeouts};

use crate::support::*;

/// The workspace's TLS proxy ([`test_support::TlsProxy`]) and the pin of its server key,
/// computed from the key itself (not from the certificate, so it checks the app's reading of
/// certificates too).
struct TlsProxy {
    proxy: test_support::TlsProxy,
    base: String,
    pin: Pin,
}

impl TlsProxy {
    async fn start(backend: &str) -> TlsProxy {
        let proxy = test_support::TlsProxy::start(backend).await.unwrap();
        let pin = Pin::of_spki(&proxy.leaf_spki_der);
        assert_eq!(
            Pin::of_certificate(&proxy.leaf_der),
            Some(pin),
            "the app reads the key out of the certificate"
        );
        TlsProxy {
            base: proxy.base_url.clone(),
            proxy,
            pin,
        }
    }

    /// A client for the bank's service at this proxy with `pins`, trusting the test CA (and
    /// the public roots too when `public_roots`).
    fn client(&self, pins: Vec<Pin>, trust_test_ca: bool) -> ProvisioningClient {
        let service = SERVICE_ID.parse().unwrap();
        let mut dir = Directory::bundled().unwrap();
        dir.set(&service, &self.base).unwrap();
        dir.set_pins(&service, pins).unwrap();
        let mut roots = app::pinning::public_roots();
        if trust_test_ca {
            roots.add(self.proxy.ca_der.clone()).unwrap();
        }
        ProvisioningClient::with_roots(dir, Timeouts::default(), roots).unwrap()
    }

    fn plaintext(&self) -> usize {
        self.proxy.plaintext_in()
    }
}

fn other_pin(tag: &[u8]) -> Pin {
    Pin::of_spki(tag)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_is_refused_before_the_activation_password_leaves_the_app() {
    let b = Backend::start(0, |_| {}).await;
    let uid = b.issue("pin01").await;
    b.open_link(&uid).await;
    let proxy = TlsProxy::start(&b.base).await;

    // The chain is good (the test CA is trusted) but the key is not pinned.
    let (_d, mut vault) = memory_vault();
    let err = setup_token(
        &proxy.client(vec![other_pin(b"current"), other_pin(b"backup")], true),
        &mut vault,
        &input(&uid, "1234"),
    )
    .await
    .unwrap_err();
    assert_eq!(err, AppError::PinMismatch, "{err:?}");
    assert!(err.message_ja().contains("情報は送信されていません"));
    assert!(err.message_en().contains("Nothing was sent"));
    assert_eq!(
        proxy.plaintext(),
        0,
        "no byte of the request (and so not the activation password) reached the server side"
    );
    assert_eq!(proxy.proxy.handshakes_ok(), 0);
    assert!(vault.tokens().is_empty());

    // A certificate from a CA the app does not trust: refused on the chain, before the pin.
    let err = setup_token(
        &proxy.client(vec![proxy.pin, other_pin(b"backup")], false),
        &mut vault,
        &input(&uid, "1234"),
    )
    .await
    .unwrap_err();
    assert_eq!(err, AppError::UntrustedServer, "{err:?}");
    assert_eq!(proxy.plaintext(), 0);

    // The time request is refused the same way.
    let err = proxy
        .client(vec![other_pin(b"current")], true)
        .server_time(&SERVICE_ID.parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err, AppError::PinMismatch);
    assert_eq!(proxy.plaintext(), 0);

    // The right key as the backup pin: setup works, and the refused attempts never counted
    // (the token is set up with the first request that reached the server).
    let (token, _) = setup_token(
        &proxy.client(vec![other_pin(b"current"), proxy.pin], true),
        &mut vault,
        &input(&uid, "1234"),
    )
    .await
    .unwrap();
    assert_eq!(
        token.user_id.as_ref().map(|u| u.as_str()),
        Some(uid.as_str())
    );
    assert!(proxy.plaintext() > 0, "this time the request went through");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_pin_sets_up_and_reads_the_clock() {
    let b = Backend::start(0, |_| {}).await;
    let uid = b.issue("pin02").await;
    b.open_link(&uid).await;
    let proxy = TlsProxy::start(&b.base).await;
    let client = proxy.client(vec![proxy.pin, other_pin(b"backup")], true);
    let (_d, mut vault) = memory_vault();
    let (token, warning) = setup_token(&client, &mut vault, &input(&uid, "1234"))
        .await
        .unwrap();
    assert_eq!(warning, None);
    assert!(vault.code_view(&token.id, app::codes::device_now()).is_ok());
    let reading = client
        .server_time(&SERVICE_ID.parse().unwrap())
        .await
        .unwrap();
    assert!(reading.offset.0.abs() <= 1, "{reading:?}");

    // An https backend with no pins at all is refused (pinning fails closed).
    let err = proxy
        .client(Vec::new(), true)
        .server_time(&SERVICE_ID.parse().unwrap())
        .await
        .unwrap_err();
    assert_eq!(err, AppError::PinMismatch);
}
