//! A TLS-terminating proxy on loopback in front of a backend that serves plain HTTP (as behind a
//! bank's load balancer). Its certificate for `localhost` is issued by a CA made here (rcgen),
//! so a client that trusts [`TlsProxy::ca_der`] gets a good chain and only its pins decide. It
//! counts connections, completed handshakes and the decrypted bytes it forwarded: a handshake
//! the client refused lets none through.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use anyhow::Result;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The running proxy; stops when dropped.
pub struct TlsProxy {
    /// `https://localhost:<port>`.
    pub base_url: String,
    /// The test CA's certificate (DER), for a client's trust store.
    pub ca_der: CertificateDer<'static>,
    /// The test CA's certificate (PEM), for the app's debug-only `OTP_APP_TEST_CA`.
    pub ca_pem: String,
    /// The server certificate (DER).
    pub leaf_der: CertificateDer<'static>,
    /// The server key's SubjectPublicKeyInfo (DER): what a pin is computed from.
    pub leaf_spki_der: Vec<u8>,
    connections: Arc<AtomicUsize>,
    handshakes_ok: Arc<AtomicUsize>,
    plaintext_in: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    /// Starts the proxy in front of `backend` (`http://127.0.0.1:<port>`) on the current tokio
    /// runtime.
    ///
    /// # Errors
    /// Certificate generation or binding failed.
    pub async fn start(backend: &str) -> Result<TlsProxy> {
        let backend_addr = backend.trim_start_matches("http://").to_owned();
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "pinning test CA");
        let ca = ca_params.self_signed(&ca_key)?;
        let leaf_key = rcgen::KeyPair::generate()?;
        let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])?
            .signed_by(&leaf_key, &ca, &ca_key)?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
        )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let connections = Arc::new(AtomicUsize::new(0));
        let handshakes_ok = Arc::new(AtomicUsize::new(0));
        let plaintext_in = Arc::new(AtomicUsize::new(0));
        let (conns, oks, bytes) = (
            connections.clone(),
            handshakes_ok.clone(),
            plaintext_in.clone(),
        );
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                conns.fetch_add(1, Ordering::SeqCst);
                let (acceptor, backend_addr) = (acceptor.clone(), backend_addr.clone());
                let (oks, bytes) = (oks.clone(), bytes.clone());
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
        Ok(TlsProxy {
            base_url: format!("https://localhost:{port}"),
            ca_der: ca.der().clone(),
            ca_pem: ca.pem(),
            leaf_der: leaf.der().clone(),
            leaf_spki_der: leaf_key.public_key_der(),
            connections,
            handshakes_ok,
            plaintext_in,
            task,
        })
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// TLS handshakes completed.
    pub fn handshakes_ok(&self) -> usize {
        self.handshakes_ok.load(Ordering::SeqCst)
    }

    /// Decrypted application bytes received from clients (and forwarded to the backend).
    pub fn plaintext_in(&self) -> usize {
        self.plaintext_in.load(Ordering::SeqCst)
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}
