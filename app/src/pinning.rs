//! Certificate pinning for the provisioning client (issue 17, item 3).
//!
//! The directory (`app/directory.json`) lists, per service ID, SHA-256 pins of the backend's
//! public keys (the DER `SubjectPublicKeyInfo` of the server certificate, as HPKP and OkHttp
//! write them: `sha256/<base64>`): the key in use and a backup key kept offline, so the bank
//! can move to the backup without an app update.
//!
//! [`PinnedVerifier`] is the client's rustls verifier. It first checks the chain exactly as
//! before (webpki: trusted root, validity, host name), then that the server certificate's key
//! is one of the pins of that host. Either failure aborts the TLS handshake, so no request
//! line, header or body (the activation password) has left the app. A host with no pins is
//! refused: pinning fails closed.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// The error a pin mismatch is reported with inside rustls (and recognised by the client).
pub(crate) const PIN_MISMATCH: rustls::Error =
    rustls::Error::InvalidCertificate(CertificateError::ApplicationVerificationFailure);

/// One pin: the SHA-256 of a DER `SubjectPublicKeyInfo`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pin([u8; 32]);

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pin({})", self.to_text())
    }
}

impl Pin {
    /// Parses `sha256/<base64 of 32 bytes>`.
    pub fn parse(text: &str) -> Option<Pin> {
        let b64 = text.trim().strip_prefix("sha256/")?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
        Some(Pin(bytes.try_into().ok()?))
    }

    /// The pin of a DER `SubjectPublicKeyInfo`.
    pub fn of_spki(spki_der: &[u8]) -> Pin {
        Pin(Sha256::digest(spki_der).into())
    }

    /// The pin of a DER certificate's public key, if the certificate parses.
    pub fn of_certificate(cert_der: &[u8]) -> Option<Pin> {
        let der = CertificateDer::from(cert_der);
        let cert = webpki::EndEntityCert::try_from(&der).ok()?;
        Some(Pin::of_spki(cert.subject_public_key_info().as_ref()))
    }

    /// `sha256/<base64>`.
    pub fn to_text(&self) -> String {
        format!(
            "sha256/{}",
            base64::engine::general_purpose::STANDARD.encode(self.0)
        )
    }
}

/// The chain check of rustls' webpki verifier, then the pin of the host.
#[derive(Debug)]
pub struct PinnedVerifier {
    chain: Arc<WebPkiServerVerifier>,
    /// Host (as rustls names it: a DNS name, or an IP address without brackets) → its pins.
    pins: BTreeMap<String, Vec<Pin>>,
}

impl PinnedVerifier {
    /// A verifier over `roots` with `pins` per host.
    ///
    /// # Errors
    /// When rustls cannot build the chain verifier (no roots).
    pub fn new(
        roots: RootCertStore,
        pins: BTreeMap<String, Vec<Pin>>,
    ) -> Result<PinnedVerifier, rustls::client::VerifierBuilderError> {
        let chain =
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), Arc::new(provider()))
                .build()?;
        Ok(PinnedVerifier { chain, pins })
    }

    /// Whether `end_entity`'s key is pinned for `host`.
    fn pinned(&self, host: &str, end_entity: &CertificateDer<'_>) -> bool {
        let Some(pins) = self.pins.get(host) else {
            return false;
        };
        let Ok(cert) = webpki::EndEntityCert::try_from(end_entity) else {
            return false;
        };
        let seen = Pin::of_spki(cert.subject_public_key_info().as_ref());
        pins.contains(&seen)
    }
}

/// The crypto provider the client uses (ring, as reqwest's rustls feature does).
pub(crate) fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The chain as before: a pin is a restriction on top, never a replacement.
        let verified = self.chain.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        )?;
        if self.pinned(&server_name.to_str(), end_entity) {
            Ok(verified)
        } else {
            Err(PIN_MISMATCH)
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.chain.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.chain.supported_verify_schemes()
    }
}

/// The public roots the app trusts (Mozilla's, bundled: the same on every phone).
pub fn public_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

/// The public roots and every certificate of a PEM file: a private CA the client trusts as
/// well (the desktop app's test-only `OTP_APP_TEST_CA`, honoured in debug builds only). Pins
/// apply all the same. `None` when the text holds no certificate or a broken one.
pub fn public_roots_and_pem(pem: &[u8]) -> Option<RootCertStore> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = public_roots();
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.ok()?).ok()?;
        added += 1;
    }
    (added > 0).then_some(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_parse_and_print_as_sha256_base64() {
        let pin = Pin::of_spki(b"spki");
        let text = pin.to_text();
        assert!(
            text.starts_with("sha256/") && text.len() == 7 + 44,
            "{text}"
        );
        assert_eq!(Pin::parse(&text), Some(pin));
        for bad in [
            "",
            "sha256/",
            "sha1/AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "sha256/AAAA",
            "sha256/not base64!",
            &text[7..],
        ] {
            assert_eq!(Pin::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_private_ca_is_trusted_besides_the_public_roots_only_from_good_pem() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = params.self_signed(&key).unwrap();
        let roots = public_roots_and_pem(ca.pem().as_bytes()).unwrap();
        assert_eq!(roots.len(), public_roots().len() + 1);
        let broken = ca.pem().replace("MII", "XXX");
        for bad in ["", "not pem", broken.as_str()] {
            assert!(public_roots_and_pem(bad.as_bytes()).is_none(), "{bad}");
        }
    }
}
