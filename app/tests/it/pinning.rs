//! Certificate pinning against the real backend behind TLS on loopback (issue 17, item 3).
//!
//! The backend serves plain HTTP on loopback; in front of it runs a small TLS-terminating
//! proxy (tokio-rustls) whose certificate is issued by a CA made in the test (rcgen). The app's
//! client trusts that CA, so the chain is good in every case and only the pin decides. The proxy
//! counts the bytes it decrypted: a refused handshake must have let none through.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use app::pinning::Pin;
use app::{setup_token, AppError, Directory, ProvisioningClient, Timeouts};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

struct TlsProxy {
    base: String,
    ca: CertificateDer<'static>,
    /// The pin of the server certificate's key, computed from the key itself (not from the
    /// certificate, so it checks the app's reading of certificates too).
    pin: Pin,
    /// Application bytes received from clients after a completed handshake.
    plaintext_in: Arc<AtomicUsize>,
    handshakes_ok: Arc<AtomicUsize>,
}

impl TlsProxy {
    async fn start(backend: &str) -> TlsProxy {
        let backend_addr = backend.trim_start_matches("http://").to_owned();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pinning test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        let pin = Pin::of_spki(&leaf_key.public_key_der());
        assert_eq!(
            Pin::of_certificate(leaf.der()),
            Some(pin),
            "the app reads the key out of the certificate"
        );

        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let plaintext_in = Arc::new(AtomicUsize::new(0));
        let handshakes_ok = Arc::new(AtomicUsize::new(0));
        let (bytes, oks) = (plaintext_in.clone(), handshakes_ok.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, backend_addr) = (acceptor.clone(), backend_addr.clone());
                let (bytes, oks) = (bytes.clone(), oks.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return; // the client refused the handshake
                    };
                    oks.fetch_add(1, Ordering::SeqCst);
                    let Ok(upstream) = tokio::net::TcpStream::connect(&backend_addr).await else {
                        return;
                    };
                    let (mut client_r, mut client_w) = tokio::io::split(tls);
                    let (mut up_r, mut up_w) = upstream.into_split();
                    let to_backend = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match client_r.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            bytes.fetch_add(n, Ordering::SeqCst);
                            if up_w.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = up_w.shutdown().await;
                    };
                    let to_client = async {
                        let _ = tokio::io::copy(&mut up_r, &mut client_w).await;
                        let _ = client_w.shutdown().await;
                    };
                    tokio::join!(to_backend, to_client);
                });
            }
        });
        TlsProxy {
            base: format!("https://localhost:{port}"),
            ca: ca.der().clone(),
            pin,
            plaintext_in,
            handshakes_ok,
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
            roots.add(self.ca.clone()).unwrap();
        }
        ProvisioningClient::with_roots(dir, Timeouts::default(), roots).unwrap()
    }

    fn plaintext(&self) -> usize {
        self.plaintext_in.load(Ordering::SeqCst)
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
    assert_eq!(proxy.handshakes_ok.load(Ordering::SeqCst), 0);
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
