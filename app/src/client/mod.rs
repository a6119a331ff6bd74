//! The provisioning client: the app's side of the backend's app API (`/app/v1/…`,
//! `/app/v2/…`).
//!
//! - setup is provisioning v2 (issue 18, `protocol::pake`): the activation password never
//!   leaves the device (an OPAQUE exchange proves it), and the secret arrives sealed under a key
//!   only this exchange's two ends derive, so whoever reads the TLS session gets neither;
//! - reqwest with rustls (no OpenSSL, so it builds for Android and iOS), the public roots
//!   bundled (the same on every phone) and the backend's public keys pinned per service
//!   ([`crate::pinning`]): a server whose key is not pinned is refused during the handshake,
//!   before anything is sent;
//! - service ID → backend base URL and pins from a [`Directory`] bundled with the app
//!   (`app/directory.json`), which the caller may override (tests point it at loopback);
//! - connect and request timeouts; redirects are not followed (a setup must reach the one
//!   configured backend);
//! - a setup's finish is never retried once it may have reached the server: the secret is
//!   handed out exactly once, so a lost answer is reported as [`AppError::SetupOutcomeUnknown`]
//!   (a lost answer to the start costs one attempt and nothing else: it is a network error);
//! - the server's stable error codes become [`AppError`] variants.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use protocol::pake::{client_start, PakeError};
use protocol::wire::v2::{HexBytes, SetupFinishRequest, SetupFinishResponse, SetupStartResponse};
use protocol::{ApiErrorBody, ServiceId, SetupRequest, SetupResponse, TimeResponse, WireSecret};
use reqwest::StatusCode;

use crate::codes::{device_now_ms, ClockOffset};
use crate::error::AppError;
use crate::pinning::{public_roots, Pin, PinnedVerifier, PIN_MISMATCH};

/// The directory bundled with the app: service ID → backend base URL and key pins.
pub const BUNDLED_DIRECTORY: &str = include_str!("../../directory.json");

/// One service's backend.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Backend {
    /// Base URL, no trailing slash.
    url: String,
    /// SHA-256 pins of the backend's public keys (current and backup).
    pins: Vec<Pin>,
}

/// A directory entry as written in JSON: the URL alone (loopback `http://` for development
/// and tests) or the URL with its pins.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum RawEntry {
    Url(String),
    Pinned { url: String, pins: Vec<String> },
}

/// Service ID → backend base URL (no trailing slash) and the pins of its public keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    entries: BTreeMap<String, Backend>,
}

impl Directory {
    /// The directory shipped with the app.
    ///
    /// # Errors
    /// Only if the bundled file is broken (a test keeps it valid).
    pub fn bundled() -> Result<Directory, AppError> {
        Directory::from_json(BUNDLED_DIRECTORY)
    }

    /// A directory from JSON `{"<service id>": {"url": "<base url>", "pins": ["sha256/…", …]}}`
    /// (or `"<service id>": "<base url>"` for a loopback `http://` backend).
    ///
    /// # Errors
    /// [`AppError::InvalidServiceId`] / [`AppError::InsecureBackendUrl`] for a bad entry, and
    /// also [`AppError::InsecureBackendUrl`] for an `https://` entry without at least two
    /// distinct pins (the key in use and a backup: with one pin, a lost key would need an app
    /// update); [`AppError::BadResponse`] if it is not such an object.
    pub fn from_json(text: &str) -> Result<Directory, AppError> {
        let raw: BTreeMap<String, RawEntry> =
            serde_json::from_str(text).map_err(|_| AppError::BadResponse)?;
        let mut dir = Directory::default();
        for (service, entry) in raw {
            let service = ServiceId::parse(&service)?;
            let (url, pins) = match entry {
                RawEntry::Url(url) => (url, Vec::new()),
                RawEntry::Pinned { url, pins } => (url, pins),
            };
            let mut parsed = pins
                .iter()
                .map(|p| Pin::parse(p).ok_or(AppError::InsecureBackendUrl))
                .collect::<Result<Vec<_>, _>>()?;
            parsed.sort_unstable();
            parsed.dedup();
            if url.trim().starts_with("https://") && parsed.len() < 2 {
                return Err(AppError::InsecureBackendUrl);
            }
            dir.set(&service, &url)?;
            dir.set_pins(&service, parsed)?;
        }
        Ok(dir)
    }

    /// Adds or replaces the backend for a service (its pins are kept).
    ///
    /// # Errors
    /// [`AppError::InsecureBackendUrl`] unless the URL is `https://…`, or `http://` to a
    /// loopback address (`127.0.0.1`, `[::1]`, `localhost`) for development and tests.
    pub fn set(&mut self, service_id: &ServiceId, base_url: &str) -> Result<(), AppError> {
        let url = base_url.trim().trim_end_matches('/');
        if !is_allowed_base_url(url) {
            return Err(AppError::InsecureBackendUrl);
        }
        self.entries
            .entry(service_id.as_str().to_owned())
            .and_modify(|b| b.url = url.to_owned())
            .or_insert_with(|| Backend {
                url: url.to_owned(),
                pins: Vec::new(),
            });
        Ok(())
    }

    /// Replaces the pins of a service's backend. An `https://` backend without pins is refused
    /// at connection time (pinning fails closed).
    ///
    /// # Errors
    /// [`AppError::UnknownService`] when the service has no backend yet.
    pub fn set_pins(&mut self, service_id: &ServiceId, pins: Vec<Pin>) -> Result<(), AppError> {
        let backend = self
            .entries
            .get_mut(service_id.as_str())
            .ok_or(AppError::UnknownService)?;
        backend.pins = pins;
        Ok(())
    }

    /// The backend for a service.
    ///
    /// # Errors
    /// [`AppError::UnknownService`].
    pub fn base_url(&self, service_id: &ServiceId) -> Result<&str, AppError> {
        self.entries
            .get(service_id.as_str())
            .map(|b| b.url.as_str())
            .ok_or(AppError::UnknownService)
    }

    /// The pins of a service's backend.
    ///
    /// # Errors
    /// [`AppError::UnknownService`].
    pub fn pins(&self, service_id: &ServiceId) -> Result<&[Pin], AppError> {
        self.entries
            .get(service_id.as_str())
            .map(|b| b.pins.as_slice())
            .ok_or(AppError::UnknownService)
    }

    /// Pins per TLS host name: the union of the pins of every service on that host.
    fn pins_by_host(&self) -> BTreeMap<String, Vec<Pin>> {
        let mut by_host: BTreeMap<String, Vec<Pin>> = BTreeMap::new();
        for backend in self.entries.values() {
            let Some(host) = tls_host(&backend.url) else {
                continue;
            };
            let pins = by_host.entry(host).or_default();
            pins.extend(backend.pins.iter().copied());
            pins.sort_unstable();
            pins.dedup();
        }
        by_host
    }
}

fn is_allowed_base_url(url: &str) -> bool {
    let (https, rest) = if let Some(rest) = url.strip_prefix("https://") {
        (true, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        (false, rest)
    } else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() || authority.contains('@') || rest.contains(['?', '#', ' ']) {
        return false;
    }
    if https {
        return true;
    }
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    matches!(host, "127.0.0.1" | "::1" | "localhost")
}

/// The host of an `https://` URL as rustls names the server: a lower-case DNS name, or an IP
/// address without brackets.
fn tls_host(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    if parsed.scheme() != "https" {
        return None;
    }
    Some(match parsed.host()? {
        url::Host::Domain(d) => d.to_ascii_lowercase(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    })
}

/// Timeouts of the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// To establish the connection (TCP + TLS).
    pub connect: Duration,
    /// For the whole request, answer included.
    pub request: Duration,
}

impl Default for Timeouts {
    fn default() -> Timeouts {
        Timeouts {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(30),
        }
    }
}

/// A successful setup: the server's answer and the clock offset measured on it.
#[derive(Debug)]
pub struct Provisioned {
    /// The token's secret and profile (the secret's `Debug` is redacted).
    pub response: SetupResponse,
    /// Server clock minus device clock.
    pub clock_offset: ClockOffset,
}

/// The server's clock, read once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockReading {
    /// Server time (Unix seconds).
    pub server_time: u64,
    /// Server clock minus device clock.
    pub offset: ClockOffset,
}

/// The app API client.
#[derive(Clone, Debug)]
pub struct ProvisioningClient {
    http: reqwest::Client,
    directory: Directory,
}

impl ProvisioningClient {
    /// A client over `directory` with default [`Timeouts`].
    ///
    /// # Errors
    /// [`AppError::Network`] if the HTTP client cannot be built (no TLS roots, etc.).
    pub fn new(directory: Directory) -> Result<ProvisioningClient, AppError> {
        ProvisioningClient::with_timeouts(directory, Timeouts::default())
    }

    /// A client with explicit timeouts, trusting the public roots.
    ///
    /// # Errors
    /// As [`ProvisioningClient::new`].
    pub fn with_timeouts(
        directory: Directory,
        timeouts: Timeouts,
    ) -> Result<ProvisioningClient, AppError> {
        ProvisioningClient::with_roots(directory, timeouts, public_roots())
    }

    /// A client that trusts `roots` instead of the public roots (a private CA: tests, staging).
    /// Pins apply all the same.
    ///
    /// # Errors
    /// As [`ProvisioningClient::new`].
    pub fn with_roots(
        directory: Directory,
        timeouts: Timeouts,
        roots: rustls::RootCertStore,
    ) -> Result<ProvisioningClient, AppError> {
        let verifier =
            PinnedVerifier::new(roots, directory.pins_by_host()).map_err(|_| AppError::Network)?;
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(crate::pinning::provider()))
            .with_safe_default_protocol_versions()
            .map_err(|_| AppError::Network)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(timeouts.connect)
            .timeout(timeouts.request)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("otp-app/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|_| AppError::Network)?;
        Ok(ProvisioningClient { http, directory })
    }

    /// The directory in use.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// `path` is relative to `/app/` and names its version (`v1/time`, `v2/setup/start`).
    fn url(&self, service_id: &ServiceId, path: &str) -> Result<String, AppError> {
        Ok(format!(
            "{}/app/{path}",
            self.directory.base_url(service_id)?
        ))
    }

    /// POSTs `body` as JSON; the status, `Retry-After` and body of the answer. A request that
    /// may have reached the server but got no answer is `lost` (`None`: a transport error, as
    /// for a request that hands nothing out).
    async fn post_json<T: serde::Serialize>(
        &self,
        url: String,
        body: &T,
        lost: Option<AppError>,
    ) -> Result<(StatusCode, Option<u64>, Vec<u8>), AppError> {
        let resp = self.http.post(url).json(body).send().await.map_err(|e| {
            if let Some(refused) = tls_refusal(&e) {
                refused
            } else if e.is_connect() || e.is_builder() {
                AppError::Network
            } else {
                lost.clone().unwrap_or_else(|| transport_error(e))
            }
        })?;
        let status = resp.status();
        let retry_after = retry_after(&resp);
        let body = resp
            .bytes()
            .await
            .map_err(|_| lost.unwrap_or(AppError::Timeout))?;
        Ok((status, retry_after, body.to_vec()))
    }

    /// The initial setup (DESIGN §4), provisioning v2 (issue 18): the IDs, the device info and
    /// an OPAQUE exchange that proves the activation password without sending it; returns the
    /// secret (opened from its seal) with the clock offset measured on the finish.
    ///
    /// Each request is sent once, never retried (see the module docs).
    ///
    /// # Errors
    /// The server's refusals ([`AppError::UnknownUserId`], [`AppError::LinkNotOpened`],
    /// [`AppError::IssuanceExpired`], [`AppError::WrongActivationPassword`],
    /// [`AppError::IssuanceDead`], [`AppError::AlreadyProvisioned`], [`AppError::RateLimited`],
    /// …); [`AppError::Network`] when nothing was sent; [`AppError::Timeout`] when the start got
    /// no answer (nothing was handed out); [`AppError::SetupOutcomeUnknown`] when the finish may
    /// have been processed but no usable answer arrived;
    /// [`AppError::BadResponse`] for an answer that is not the app API's.
    pub async fn setup(&self, request: &SetupRequest) -> Result<Provisioned, AppError> {
        let service_id = &request.service_id;
        // Round trip 1: KE1 (the password blinded) and a fresh nonce; the server counts an
        // attempt and answers with KE2, which ends in its key confirmation.
        let (state, start) = client_start(
            service_id.clone(),
            request.user_id.clone(),
            request.activation_password.clone(),
            request.device.clone(),
        )
        .map_err(|_| AppError::BadResponse)?;
        let (status, retry, body) = self
            .post_json(self.url(service_id, "v2/setup/start")?, &start, None)
            .await?;
        if !status.is_success() {
            return Err(refusal(status, &body, retry));
        }
        let reply: SetupStartResponse =
            serde_json::from_slice(&body).map_err(|_| AppError::BadResponse)?;
        let (confirmed, finish) = match state.on_server_reply(&reply) {
            Ok(v) => v,
            Err(PakeError::ServerNotConfirmed) => {
                return Err(self.abandon(service_id, &reply).await);
            }
            Err(_) => return Err(AppError::BadResponse),
        };
        // Round trip 2: the app's key confirmation; the secret comes back sealed to this
        // exchange. Never retried: the server hands the secret out once.
        let sent = device_now_ms();
        let (status, retry, body) = self
            .post_json(
                self.url(service_id, "v2/setup/finish")?,
                &finish,
                Some(AppError::SetupOutcomeUnknown),
            )
            .await?;
        let received = device_now_ms();
        if !status.is_success() {
            return Err(refusal(status, &body, retry));
        }
        let sealed: SetupFinishResponse =
            serde_json::from_slice(&body).map_err(|_| AppError::BadResponse)?;
        if sealed.service_id != request.service_id || sealed.user_id != request.user_id {
            return Err(AppError::BadResponse);
        }
        let secret = confirmed
            .open_sealed(&sealed)
            .map_err(|_| AppError::BadResponse)?;
        let response = SetupResponse {
            service_id: sealed.service_id,
            user_id: sealed.user_id,
            secret: WireSecret(secret),
            params: sealed.params,
            server_time: sealed.server_time,
            issuer: sealed.issuer,
            label: sealed.label,
        };
        Ok(Provisioned {
            clock_offset: ClockOffset::measure(sent, received, response.server_time),
            response,
        })
    }

    /// The server's KE2 did not verify: a wrong activation password (or an altered exchange).
    /// The attempt was counted when the exchange started; closing the exchange at once with an
    /// empty confirmation (which tells nothing of the password) gets the server's count back
    /// for the screen, instead of leaving the exchange to expire.
    async fn abandon(&self, service_id: &ServiceId, reply: &SetupStartResponse) -> AppError {
        let close = SetupFinishRequest {
            exchange_id: reply.exchange_id.clone(),
            key_confirmation: HexBytes(Vec::new()),
        };
        let unknown = AppError::WrongActivationPassword { attempts_left: 0 };
        let Ok(url) = self.url(service_id, "v2/setup/finish") else {
            return unknown;
        };
        match self.post_json(url, &close, None).await {
            Ok((status, retry, body)) if !status.is_success() => {
                match refusal(status, &body, retry) {
                    e @ (AppError::WrongActivationPassword { .. } | AppError::IssuanceDead) => e,
                    _ => unknown,
                }
            }
            _ => unknown,
        }
    }

    /// Reads the server clock of a service's backend and measures the offset.
    ///
    /// # Errors
    /// [`AppError::Network`], [`AppError::Timeout`], [`AppError::RateLimited`],
    /// [`AppError::ServerUnavailable`], [`AppError::BadResponse`].
    pub async fn server_time(&self, service_id: &ServiceId) -> Result<ClockReading, AppError> {
        let url = self.url(service_id, "v1/time")?;
        let sent = device_now_ms();
        let resp = self.http.get(url).send().await.map_err(transport_error)?;
        let status = resp.status();
        let retry_after = retry_after(&resp);
        let body = resp.bytes().await.map_err(transport_error)?;
        let received = device_now_ms();
        if !status.is_success() {
            return Err(refusal(status, &body, retry_after));
        }
        let time: TimeResponse =
            serde_json::from_slice(&body).map_err(|_| AppError::BadResponse)?;
        Ok(ClockReading {
            server_time: time.server_time,
            offset: ClockOffset::measure(sent, received, time.server_time),
        })
    }
}

/// The error for a TLS handshake the app refused: [`AppError::PinMismatch`] when the chain was
/// good but the key is not pinned, [`AppError::UntrustedServer`] for any other certificate
/// failure. `None` for every other error. The handshake came before any request byte, so in
/// both cases nothing was sent.
fn tls_refusal(e: &reqwest::Error) -> Option<AppError> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return match tls {
                t if *t == PIN_MISMATCH => Some(AppError::PinMismatch),
                rustls::Error::InvalidCertificate(_) => Some(AppError::UntrustedServer),
                _ => None,
            };
        }
        // io::Error's `source()` skips the error it wraps (tokio-rustls wraps rustls' error in
        // one, and the connector that in another), so step into it explicitly.
        next = match err.downcast_ref::<std::io::Error>() {
            Some(io) => io
                .get_ref()
                .map(|inner| inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
    }
    None
}

fn transport_error(e: reqwest::Error) -> AppError {
    if let Some(refused) = tls_refusal(&e) {
        return refused;
    }
    if e.is_timeout() && !e.is_connect() {
        AppError::Timeout
    } else {
        AppError::Network
    }
}

fn retry_after(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The error for a non-2xx answer: the body's stable code when it is the app API's error body,
/// otherwise a judgement from the status alone.
fn refusal(status: StatusCode, body: &[u8], retry_after: Option<u64>) -> AppError {
    match serde_json::from_slice::<ApiErrorBody>(body) {
        Ok(err) => AppError::from_api_code(
            &err.code,
            err.attempts_left,
            err.retry_after_secs.or(retry_after),
        ),
        Err(_) if status == StatusCode::TOO_MANY_REQUESTS => AppError::RateLimited {
            retry_after_secs: retry_after.unwrap_or(60),
        },
        Err(_) if status.is_server_error() => AppError::ServerUnavailable,
        Err(_) => AppError::BadResponse,
    }
}

#[cfg(test)]
mod tests;
