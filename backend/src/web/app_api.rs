//! The app API: JSON over HTTP for the soft-token app, under `/app/v1` (DESIGN §4, §8).
//!
//! - `POST /app/v1/setup` — body [`protocol::SetupRequest`]; answers [`protocol::SetupResponse`]
//!   (the secret, its parameters, the server time), exactly once per token. Refusals are
//!   `{code, message, attempts_left?, retry_after_secs?}` with the engine's stable codes:
//!   `UNKNOWN_USER_ID` (404), `LINK_NOT_OPENED` (409), `ISSUANCE_EXPIRED` (410),
//!   `WRONG_ACTIVATION_PASSWORD` (401, with `attempts_left`), `ISSUANCE_DEAD` (410),
//!   `ALREADY_PROVISIONED` (409), `TOKEN_NOT_USABLE` (409), `RATE_LIMITED` (429, with
//!   `Retry-After`), and the body errors of [`ApiJson`].
//! - `GET /app/v1/time` — [`protocol::TimeResponse`], so the app can measure its clock offset.
//!
//! Every answer carries `Cache-Control: no-store` (one of them holds a secret).
//!
//! Rate limits are fixed windows kept in this process's memory, per client IP and per user ID
//! ([`AppApiConfig`]). With several backend instances each enforces its own limits, so the
//! effective limit is multiplied by the number of instances; the engine's rule that five wrong
//! activation passwords kill an issuance holds across instances regardless (it is in the
//! database).
//!
//! Auditing: the engine audits every setup it evaluates (never the password). This transport
//! adds the attempts the engine cannot attribute: an unknown user ID, and the first refusal by a
//! rate limit per key and window (later ones in the same window are only counted in the log, so
//! a flood cannot turn into a flood of database writes).

use std::collections::HashMap;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use zeroize::Zeroizing;

use protocol::{SetupRequest, SetupResponse, TimeResponse, WireSecret};

use super::error::{ApiError, ApiJson};
use super::{AppState, ClientIp};
pub use crate::config::AppApiConfig;
use crate::domain::DomainError;
use crate::engine::{Actor, EngineError};

/// What the app API needs beyond the engine: the issuer shown in the app, and the limiter.
#[derive(Debug)]
pub struct AppApi {
    issuer: String,
    limiter: RateLimiter,
}

impl AppApi {
    pub fn new(issuer: &str, cfg: &AppApiConfig) -> Self {
        AppApi {
            issuer: issuer.to_owned(),
            limiter: RateLimiter::new(cfg.clone()),
        }
    }
}

/// The limiter's verdict on one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Refused; retry after this many seconds. `first` marks the first refusal of this key in
    /// this window (the one that is audited).
    Limited {
        retry_after: u64,
        first: bool,
    },
}

/// Fixed-window counters keyed by string, for the current window only: when the window moves
/// on, all counts are dropped, so the map never holds more than one window's keys (at most
/// `max_keys`).
#[derive(Debug)]
pub struct RateLimiter {
    cfg: AppApiConfig,
    state: Mutex<Windows>,
}

#[derive(Debug, Default)]
struct Windows {
    window: u64,
    counts: HashMap<String, u32>,
}

impl RateLimiter {
    pub fn new(cfg: AppApiConfig) -> Self {
        RateLimiter {
            cfg,
            state: Mutex::new(Windows::default()),
        }
    }

    /// Counts an attempt for `key` at `now` (Unix seconds) against `limit`.
    pub fn check(&self, key: &str, limit: u32, now: u64) -> Admission {
        let window_secs = self.cfg.window_secs.max(1);
        let window = now / window_secs;
        let retry_after = (window + 1) * window_secs - now;
        // A poisoned lock only means another request panicked mid-update of plain counters.
        let mut st = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if st.window != window {
            st.window = window;
            st.counts.clear();
        }
        if !st.counts.contains_key(key) && st.counts.len() >= self.cfg.max_keys {
            return Admission::Limited {
                retry_after,
                first: false,
            };
        }
        let count = st.counts.entry(key.to_owned()).or_insert(0);
        *count = count.saturating_add(1);
        if *count > limit {
            Admission::Limited {
                retry_after,
                first: *count == limit.saturating_add(1),
            }
        } else {
            Admission::Allowed
        }
    }

    /// Keys tracked now (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .counts
            .len()
    }
}

/// Routes, relative to `/app/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/setup", post(setup))
        .route("/time", get(time))
        .layer(middleware::map_response(no_store))
}

async fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

fn rate_limited(retry_after: u64) -> ApiError {
    let mut err = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "RATE_LIMITED",
        format!("too many setup attempts; retry in {retry_after} seconds"),
    );
    err.retry_after = Some(retry_after);
    err.body.retry_after_secs = Some(retry_after);
    err
}

async fn setup(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<ApiJson<SetupRequest>, ApiError>,
) -> Result<Json<SetupResponse>, ApiError> {
    let now = st.engine.now();
    let actor = Actor::new("app", ip.clone());
    let limiter = &st.app_api.limiter;
    let ip_key = format!("ip:{}", ip.as_deref().unwrap_or("unknown"));
    let user_id = body.as_ref().ok().map(|b| b.0.user_id.as_str().to_owned());
    if let Admission::Limited { retry_after, first } =
        limiter.check(&ip_key, limiter.cfg.per_ip, now)
    {
        return Err(
            refuse_limited(&st, user_id.as_deref(), &ip_key, retry_after, first, &actor).await,
        );
    }
    let ApiJson(req) = body?;
    let user_key = format!("user:{}", req.user_id.as_str());
    if let Admission::Limited { retry_after, first } =
        limiter.check(&user_key, limiter.cfg.per_user_id, now)
    {
        return Err(refuse_limited(
            &st,
            Some(req.user_id.as_str()),
            &user_key,
            retry_after,
            first,
            &actor,
        )
        .await);
    }
    let password = Zeroizing::new(req.activation_password.expose().clone());
    let provisioned = match st
        .engine
        .provision(&req.service_id, &req.user_id, password, &req.device, &actor)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            if matches!(e, EngineError::Domain(DomainError::UnknownToken)) {
                st.engine
                    .audit_app_refusal(req.user_id.as_str(), e.code(), &actor)
                    .await;
            }
            return Err(ApiError::from(e));
        }
    };
    Ok(Json(SetupResponse {
        label: provisioned.user_id.as_str().to_owned(),
        service_id: provisioned.service_id,
        user_id: provisioned.user_id,
        secret: WireSecret(provisioned.secret),
        params: provisioned.params,
        server_time: provisioned.server_time,
        issuer: st.app_api.issuer.clone(),
    }))
}

async fn refuse_limited(
    st: &AppState,
    user_id: Option<&str>,
    key: &str,
    retry_after: u64,
    first: bool,
    actor: &Actor,
) -> ApiError {
    tracing::warn!(key, retry_after, "app API rate limit");
    if first {
        if let Some(user_id) = user_id {
            st.engine
                .audit_app_refusal(user_id, "RATE_LIMITED", actor)
                .await;
        }
    }
    rate_limited(retry_after)
}

async fn time(State(st): State<AppState>) -> Json<TimeResponse> {
    Json(TimeResponse {
        server_time: st.engine.now(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_ip: u32, max_keys: usize) -> RateLimiter {
        RateLimiter::new(AppApiConfig {
            per_ip,
            per_user_id: 2,
            window_secs: 60,
            max_keys,
        })
    }

    #[test]
    fn fixed_window_counts_and_resets() {
        let l = limiter(3, 100);
        let t = 6_000; // start of a window
        for _ in 0..3 {
            assert_eq!(l.check("ip:a", 3, t + 10), Admission::Allowed);
        }
        assert_eq!(
            l.check("ip:a", 3, t + 10),
            Admission::Limited {
                retry_after: 50,
                first: true
            },
            "the fourth attempt in the window is refused until the window ends"
        );
        assert_eq!(
            l.check("ip:a", 3, t + 59),
            Admission::Limited {
                retry_after: 1,
                first: false
            }
        );
        assert_eq!(
            l.check("ip:b", 3, t + 59),
            Admission::Allowed,
            "keys are separate"
        );
        assert_eq!(
            l.check("ip:a", 3, t + 60),
            Admission::Allowed,
            "a new window"
        );
        assert_eq!(l.tracked_keys(), 1, "old windows' keys are dropped");
    }

    #[test]
    fn memory_is_bounded_and_fails_closed() {
        let l = limiter(10, 2);
        assert_eq!(l.check("a", 10, 0), Admission::Allowed);
        assert_eq!(l.check("b", 10, 0), Admission::Allowed);
        assert!(
            matches!(l.check("c", 10, 0), Admission::Limited { .. }),
            "a full table refuses new keys instead of growing"
        );
        assert_eq!(l.check("a", 10, 1), Admission::Allowed, "known keys go on");
        assert_eq!(l.tracked_keys(), 2);
        assert_eq!(l.check("c", 10, 60), Admission::Allowed, "next window");
    }

    #[test]
    fn config_validation() {
        assert!(AppApiConfig::default().validate().is_ok());
        let bad = AppApiConfig {
            per_user_id: 0,
            ..AppApiConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
