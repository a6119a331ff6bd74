//! The provisioning client: the app's side of the backend's app API (`/app/v1/…`).
//!
//! - reqwest with rustls (no OpenSSL, so it builds for Android and iOS);
//! - service ID → backend base URL from a [`Directory`] bundled with the app
//!   (`app/directory.json`), which the caller may override (tests point it at loopback);
//! - connect and request timeouts; redirects are not followed (a setup must reach the one
//!   configured backend);
//! - a setup request is never retried once it may have reached the server: the secret is handed
//!   out exactly once, so a lost answer is reported as [`AppError::SetupOutcomeUnknown`];
//! - the server's stable error codes become [`AppError`] variants.

use std::collections::BTreeMap;
use std::time::Duration;

use protocol::{ApiErrorBody, ServiceId, SetupRequest, SetupResponse, TimeResponse};
use reqwest::StatusCode;

use crate::codes::{device_now_ms, ClockOffset};
use crate::error::AppError;

/// The directory bundled with the app: service ID → backend base URL.
pub const BUNDLED_DIRECTORY: &str = include_str!("../directory.json");

/// Service ID → backend base URL (no trailing slash).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Directory {
    entries: BTreeMap<String, String>,
}

impl Directory {
    /// The directory shipped with the app.
    ///
    /// # Errors
    /// Only if the bundled file is broken (a test keeps it valid).
    pub fn bundled() -> Result<Directory, AppError> {
        Directory::from_json(BUNDLED_DIRECTORY)
    }

    /// A directory from JSON `{"<service id>": "<base url>", …}`.
    ///
    /// # Errors
    /// [`AppError::InvalidServiceId`] / [`AppError::InsecureBackendUrl`] for a bad entry;
    /// [`AppError::BadResponse`] if it is not such an object.
    pub fn from_json(text: &str) -> Result<Directory, AppError> {
        let raw: BTreeMap<String, String> =
            serde_json::from_str(text).map_err(|_| AppError::BadResponse)?;
        let mut dir = Directory::default();
        for (service, url) in raw {
            dir.set(&ServiceId::parse(&service)?, &url)?;
        }
        Ok(dir)
    }

    /// Adds or replaces the backend for a service.
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
            .insert(service_id.as_str().to_owned(), url.to_owned());
        Ok(())
    }

    /// The backend for a service.
    ///
    /// # Errors
    /// [`AppError::UnknownService`].
    pub fn base_url(&self, service_id: &ServiceId) -> Result<&str, AppError> {
        self.entries
            .get(service_id.as_str())
            .map(String::as_str)
            .ok_or(AppError::UnknownService)
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

    /// A client with explicit timeouts.
    ///
    /// # Errors
    /// As [`ProvisioningClient::new`].
    pub fn with_timeouts(
        directory: Directory,
        timeouts: Timeouts,
    ) -> Result<ProvisioningClient, AppError> {
        let http = reqwest::Client::builder()
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

    fn url(&self, service_id: &ServiceId, path: &str) -> Result<String, AppError> {
        Ok(format!(
            "{}/app/v1/{path}",
            self.directory.base_url(service_id)?
        ))
    }

    /// The initial setup (DESIGN §4): sends the IDs, activation password and device info, and
    /// returns the secret with the clock offset measured on this very exchange.
    ///
    /// Sent once, never retried (see the module docs).
    ///
    /// # Errors
    /// The server's refusals ([`AppError::UnknownUserId`], [`AppError::LinkNotOpened`],
    /// [`AppError::IssuanceExpired`], [`AppError::WrongActivationPassword`],
    /// [`AppError::IssuanceDead`], [`AppError::AlreadyProvisioned`], [`AppError::RateLimited`],
    /// …); [`AppError::Network`] when nothing was sent; [`AppError::SetupOutcomeUnknown`] when
    /// the request may have been processed but no usable answer arrived;
    /// [`AppError::BadResponse`] for an answer that is not the app API's.
    pub async fn setup(&self, request: &SetupRequest) -> Result<Provisioned, AppError> {
        let url = self.url(&request.service_id, "setup")?;
        let sent = device_now_ms();
        let resp = self
            .http
            .post(url)
            .json(request)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() || e.is_builder() {
                    AppError::Network
                } else {
                    AppError::SetupOutcomeUnknown
                }
            })?;
        let status = resp.status();
        let retry_after = retry_after(&resp);
        let body = resp
            .bytes()
            .await
            .map_err(|_| AppError::SetupOutcomeUnknown)?;
        let received = device_now_ms();
        if !status.is_success() {
            return Err(refusal(status, &body, retry_after));
        }
        let response: SetupResponse =
            serde_json::from_slice(&body).map_err(|_| AppError::BadResponse)?;
        if response.service_id != request.service_id || response.user_id != request.user_id {
            return Err(AppError::BadResponse);
        }
        Ok(Provisioned {
            clock_offset: ClockOffset::measure(sent, received, response.server_time),
            response,
        })
    }

    /// Reads the server clock of a service's backend and measures the offset.
    ///
    /// # Errors
    /// [`AppError::Network`], [`AppError::Timeout`], [`AppError::RateLimited`],
    /// [`AppError::ServerUnavailable`], [`AppError::BadResponse`].
    pub async fn server_time(&self, service_id: &ServiceId) -> Result<ClockReading, AppError> {
        let url = self.url(service_id, "time")?;
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

fn transport_error(e: reqwest::Error) -> AppError {
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
mod tests {
    use super::*;

    #[test]
    fn bundled_directory_is_valid_and_knows_the_manuals_service() {
        let dir = Directory::bundled().unwrap();
        let url = dir.base_url(&"10112231".parse().unwrap()).unwrap();
        assert!(url.starts_with("https://"), "{url}");
        assert_eq!(
            dir.base_url(&"12345678".parse().unwrap()),
            Err(AppError::UnknownService)
        );
    }

    #[test]
    fn only_https_or_loopback_http() {
        let s: ServiceId = "10112231".parse().unwrap();
        let mut dir = Directory::default();
        for ok in [
            "https://otp.example-bank.jp",
            "https://otp.example-bank.jp:8443/base/",
            "http://127.0.0.1:34567",
            "http://localhost:8080",
            "http://[::1]:8080",
        ] {
            dir.set(&s, ok).unwrap();
            assert!(!dir.base_url(&s).unwrap().ends_with('/'));
        }
        for bad in [
            "http://otp.example-bank.jp",
            "http://127.0.0.1.evil.example",
            "ftp://127.0.0.1",
            "https://user@host",
            "https://",
            "otp.example-bank.jp",
        ] {
            assert_eq!(dir.set(&s, bad), Err(AppError::InsecureBackendUrl), "{bad}");
        }
    }

    #[test]
    fn refusals_prefer_the_body_code_then_the_status() {
        let body = br#"{"code":"WRONG_ACTIVATION_PASSWORD","message":"m","attempts_left":4}"#;
        assert_eq!(
            refusal(StatusCode::UNAUTHORIZED, body, None),
            AppError::WrongActivationPassword { attempts_left: 4 }
        );
        let body = br#"{"code":"RATE_LIMITED","message":"m"}"#;
        assert_eq!(
            refusal(StatusCode::TOO_MANY_REQUESTS, body, Some(12)),
            AppError::RateLimited {
                retry_after_secs: 12
            },
            "Retry-After fills in when the body has no seconds"
        );
        assert_eq!(
            refusal(StatusCode::BAD_GATEWAY, b"<html>", None),
            AppError::ServerUnavailable
        );
        assert_eq!(
            refusal(StatusCode::NOT_FOUND, b"<html>", None),
            AppError::BadResponse
        );
    }
}
