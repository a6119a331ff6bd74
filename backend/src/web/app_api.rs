//! The app API: JSON over HTTP for the soft-token app, under `/app/v1` and `/app/v2`
//! (DESIGN §4, §8).
//!
//! - `POST /app/v2/setup/start` — body [`protocol::wire::v2::SetupStartRequest`] (the app's
//!   OPAQUE `KE1`, issue 18, `protocol::pake`); counts one activation attempt and answers
//!   [`protocol::wire::v2::SetupStartResponse`]. Refusals as v1's below (the token's state,
//!   rate limits), plus `PAKE_REPLAYED` (409: this token saw the app nonce before),
//!   `SETUP_V2_NOT_REGISTERED` (409: a token issued before v2), `PAKE_MESSAGE_FORMAT` (422).
//! - `POST /app/v2/setup/finish` — body [`protocol::wire::v2::SetupFinishRequest`] (the app's
//!   key confirmation); answers [`protocol::wire::v2::SetupFinishResponse`], the secret sealed
//!   to the exchange, exactly once per token. Refusals: `SETUP_EXCHANGE_UNKNOWN` (404),
//!   `SETUP_EXCHANGE_EXPIRED` (409, after 2 minutes; the attempt stays counted),
//!   `WRONG_ACTIVATION_PASSWORD` (401, with `attempts_left`), `ISSUANCE_DEAD` (410), and the
//!   token's state refusals.
//! - `POST /app/v1/setup` — only with `app_api.allow_v1_setup` (off by default; otherwise 410
//!   `SETUP_V1_DISABLED`). Body [`protocol::SetupRequest`]; answers [`protocol::SetupResponse`]
//!   (the secret, its parameters, the server time), exactly once per token. Refusals are
//!   `{code, message, attempts_left?, retry_after_secs?}` with the engine's stable codes:
//!   `UNKNOWN_SERVICE_ID` (404: not this server's service ID, whatever the user ID),
//!   `UNKNOWN_USER_ID` (404), `LINK_NOT_OPENED` (409), `ISSUANCE_EXPIRED` (410),
//!   `WRONG_ACTIVATION_PASSWORD` (401, with `attempts_left`), `ISSUANCE_DEAD` (410),
//!   `ALREADY_PROVISIONED` (409), `TOKEN_NOT_USABLE` (409), `SETUP_V1_NOT_REGISTERED` (409: the
//!   token was issued while v1 was off, so no v1 hash was kept), `RATE_LIMITED` (429, with
//!   `Retry-After`), and the body errors of [`ApiJson`].
//! - `GET /app/v1/time` — [`protocol::TimeResponse`], so the app can measure its clock offset.
//!
//! Every answer carries `Cache-Control: no-store` (one of them holds a secret).
//!
//! Rate limits are sliding windows kept in this process's memory, per client and per user ID
//! ([`AppApiConfig`]): at most `per_ip` (`per_user_id`) attempts in any `window_secs`, so a
//! burst across a window boundary gets no more than the limit, and `Retry-After` says when the
//! oldest counted attempt leaves the window. The client is the socket's peer, or behind a
//! trusted proxy the address it reports (`web.trusted_proxies`, see [`super::client_ip`]); an
//! IPv6 client counts as its /64. When the table is full the least recently seen clients are
//! forgotten (a flood of new addresses costs the flooder, not every other customer). Per user
//! ID limits are the main defence: an address is cheap, a user ID is the target. With several
//! backend instances each enforces its own limits, so the effective limit is multiplied by the
//! number of instances; the engine's rule that five wrong activation passwords kill an
//! issuance holds across instances regardless (it is in the database).
//!
//! Auditing: the engine audits every setup it evaluates (never the password). This transport
//! adds the attempts the engine cannot attribute: an unknown user ID, and the first refusal by a
//! rate limit per key and window length (later ones are only counted in the log, so a flood
//! cannot turn into a flood of database writes).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use zeroize::Zeroizing;

use protocol::wire::v2::{
    SetupFinishRequest, SetupFinishResponse, SetupStartRequest, SetupStartResponse,
};
use protocol::{SetupRequest, SetupResponse, TimeResponse, WireSecret};

use super::error::{ApiError, ApiJson};
use super::{AppState, ClientIp};
pub use crate::config::AppApiConfig;
use crate::domain::DomainError;
use crate::engine::{Actor, EngineError};

/// What the app API needs beyond the engine: the issuer shown in the app, and the limiters.
#[derive(Debug)]
pub struct AppApi {
    issuer: String,
    cfg: AppApiConfig,
    /// Per client address (IPv6 per /64).
    by_ip: RateLimiter,
    /// Per user ID: apart from the addresses, so a flood of addresses cannot push a user ID's
    /// count out of the table.
    by_user: RateLimiter,
}

impl AppApi {
    pub fn new(issuer: &str, cfg: &AppApiConfig) -> Self {
        AppApi {
            issuer: issuer.to_owned(),
            cfg: cfg.clone(),
            by_ip: RateLimiter::new(cfg.window_secs, cfg.max_keys),
            by_user: RateLimiter::new(cfg.window_secs, cfg.max_keys),
        }
    }

    /// Clients and user IDs tracked now (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.by_ip.tracked_keys() + self.by_user.tracked_keys()
    }
}

/// The limiter's verdict on one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Refused; retry after this many seconds. `first` marks the first refusal of this key in
    /// a window's length (the one that is audited).
    Limited {
        retry_after: u64,
        first: bool,
    },
}

/// Sliding-window limits keyed by string: each key keeps the times of its last `limit`
/// admitted attempts, and an attempt is admitted when fewer than `limit` of them fall in the
/// window ending now. Refused attempts are not recorded (they do not push the wait further
/// out). The table holds at most `max_keys` keys: when a new key finds it full, keys with no
/// attempt left in the window go first, then the least recently seen tenth.
#[derive(Debug)]
pub struct RateLimiter {
    window_secs: u64,
    max_keys: usize,
    state: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug, Default)]
struct Entry {
    /// Admission times, oldest first; at most `limit` of them.
    admitted: VecDeque<u64>,
    last_seen: u64,
    /// When a refusal of this key was last audited.
    audited_refusal: Option<u64>,
}

impl RateLimiter {
    pub fn new(window_secs: u64, max_keys: usize) -> Self {
        RateLimiter {
            window_secs: window_secs.max(1),
            max_keys: max_keys.max(1),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Counts an attempt for `key` at `now` (Unix seconds) against `limit`.
    pub fn check(&self, key: &str, limit: u32, now: u64) -> Admission {
        let window = self.window_secs;
        let limit = usize::try_from(limit.max(1)).unwrap_or(usize::MAX);
        // A poisoned lock only means another request panicked mid-update of plain counters.
        let mut map = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !map.contains_key(key) && map.len() >= self.max_keys {
            self.make_room(&mut map, now);
        }
        let e = map.entry(key.to_owned()).or_default();
        e.last_seen = e.last_seen.max(now);
        while e
            .admitted
            .front()
            .is_some_and(|t| t.saturating_add(window) <= now)
        {
            e.admitted.pop_front();
        }
        if e.admitted.len() < limit {
            e.admitted.push_back(now);
            return Admission::Allowed;
        }
        let oldest = e.admitted.front().copied().unwrap_or(now);
        let retry_after = oldest.saturating_add(window).saturating_sub(now).max(1);
        let first = e
            .audited_refusal
            .is_none_or(|t| t.saturating_add(window) <= now);
        if first {
            e.audited_refusal = Some(now);
        }
        Admission::Limited { retry_after, first }
    }

    /// Forget keys with nothing in the window; if that is not enough, the least recently seen
    /// tenth of the table (so the next inserts are cheap: the scan is paid once per tenth).
    fn make_room(&self, map: &mut HashMap<String, Entry>, now: u64) {
        let window = self.window_secs;
        map.retain(|_, e| {
            e.admitted
                .back()
                .is_some_and(|t| t.saturating_add(window) > now)
                || e.audited_refusal
                    .is_some_and(|t| t.saturating_add(window) > now)
        });
        if map.len() < self.max_keys {
            return;
        }
        let evict = (self.max_keys / 10).max(1);
        let mut seen: Vec<(u64, String)> =
            map.iter().map(|(k, e)| (e.last_seen, k.clone())).collect();
        if evict < seen.len() {
            seen.select_nth_unstable(evict - 1);
        }
        for (_, k) in seen.into_iter().take(evict) {
            map.remove(&k);
        }
    }

    /// Keys tracked now (for tests and metrics).
    pub fn tracked_keys(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }
}

/// The rate-limit key of a client address (see [`super::client_ip::limit_key`]).
pub(crate) fn client_key(ip: Option<&str>) -> String {
    ip.and_then(|s| s.parse().ok())
        .map_or_else(|| "ip:unknown".to_owned(), super::client_ip::limit_key)
}

/// Routes, relative to `/app/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/setup", post(setup))
        .route("/time", get(time))
        .layer(middleware::map_response(no_store))
}

/// Routes, relative to `/app/v2`: provisioning v2 (issue 18).
pub fn router_v2() -> Router<AppState> {
    Router::new()
        .route("/setup/start", post(setup_start))
        .route("/setup/finish", post(setup_finish))
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
    let api = &st.app_api;
    if !api.cfg.allow_v1_setup {
        return Err(ApiError::new(
            StatusCode::GONE,
            "SETUP_V1_DISABLED",
            "provisioning v1 is turned off on this server; use /app/v2/setup/start".to_owned(),
        ));
    }
    let ip_key = client_key(ip.as_deref());
    let user_id = body.as_ref().ok().map(|b| b.0.user_id.as_str().to_owned());
    if let Admission::Limited { retry_after, first } = api.by_ip.check(&ip_key, api.cfg.per_ip, now)
    {
        return Err(
            refuse_limited(&st, user_id.as_deref(), &ip_key, retry_after, first, &actor).await,
        );
    }
    let ApiJson(req) = body?;
    let user_key = format!("user:{}", req.user_id.as_str());
    if let Admission::Limited { retry_after, first } =
        api.by_user.check(&user_key, api.cfg.per_user_id, now)
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
    // Full-width digits, as a Japanese input method types them, count as digits.
    let password = Zeroizing::new(crate::domain::fields::half_width_digits(
        req.activation_password.expose(),
    ));
    let provisioned = match st
        .engine
        .provision(&req.service_id, &req.user_id, password, &req.device, &actor)
        .await
    {
        Ok(p) => p,
        Err(e) => {
            if matches!(
                e,
                EngineError::Domain(DomainError::UnknownToken | DomainError::UnknownService)
            ) {
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

/// The rate limits of a setup request (per client, then per user ID when it names one), as
/// v1 applies them.
async fn limit_setup(
    st: &AppState,
    ip: Option<&str>,
    user_id: Option<&str>,
    actor: &Actor,
) -> Result<(), ApiError> {
    let now = st.engine.now();
    let api = &st.app_api;
    let ip_key = client_key(ip);
    if let Admission::Limited { retry_after, first } = api.by_ip.check(&ip_key, api.cfg.per_ip, now)
    {
        return Err(refuse_limited(st, user_id, &ip_key, retry_after, first, actor).await);
    }
    if let Some(user_id) = user_id {
        let user_key = format!("user:{user_id}");
        if let Admission::Limited { retry_after, first } =
            api.by_user.check(&user_key, api.cfg.per_user_id, now)
        {
            return Err(
                refuse_limited(st, Some(user_id), &user_key, retry_after, first, actor).await,
            );
        }
    }
    Ok(())
}

/// Engine refusals the engine could not audit (no known token), audited here as v1 does.
async fn audit_unattributed(st: &AppState, user_id: &str, e: &EngineError, actor: &Actor) {
    if matches!(
        e,
        EngineError::Domain(DomainError::UnknownToken | DomainError::UnknownService)
    ) {
        st.engine.audit_app_refusal(user_id, e.code(), actor).await;
    }
}

async fn setup_start(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<ApiJson<SetupStartRequest>, ApiError>,
) -> Result<Json<SetupStartResponse>, ApiError> {
    let actor = Actor::new("app", ip.clone());
    let user_id = body.as_ref().ok().map(|b| b.0.user_id.as_str().to_owned());
    if body.is_err() {
        limit_setup(&st, ip.as_deref(), None, &actor).await?;
    }
    let ApiJson(req) = body?;
    limit_setup(&st, ip.as_deref(), user_id.as_deref(), &actor).await?;
    match st.engine.setup_start(&req, &actor).await {
        Ok(res) => Ok(Json(res)),
        Err(e) => {
            audit_unattributed(&st, req.user_id.as_str(), &e, &actor).await;
            Err(ApiError::from(e))
        }
    }
}

async fn setup_finish(
    State(st): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<ApiJson<SetupFinishRequest>, ApiError>,
) -> Result<Json<SetupFinishResponse>, ApiError> {
    let actor = Actor::new("app", ip.clone());
    // Per client only: the finish names an exchange, and its start was limited per user ID.
    limit_setup(&st, ip.as_deref(), None, &actor).await?;
    let ApiJson(req) = body?;
    Ok(Json(
        st.engine
            .setup_finish(&req, &st.app_api.issuer, &actor)
            .await?,
    ))
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

    #[test]
    fn sliding_window_counts_and_frees_one_slot_at_a_time() {
        let l = RateLimiter::new(60, 100);
        let t = 6_000;
        for i in 0..3 {
            assert_eq!(l.check("ip:a", 3, t + i * 10), Admission::Allowed);
        }
        assert_eq!(
            l.check("ip:a", 3, t + 25),
            Admission::Limited {
                retry_after: 35,
                first: true
            },
            "the fourth attempt within 60 s waits until the first leaves the window"
        );
        assert_eq!(
            l.check("ip:a", 3, t + 59),
            Admission::Limited {
                retry_after: 1,
                first: false
            },
            "refusals are audited once per window length"
        );
        assert_eq!(
            l.check("ip:b", 3, t + 59),
            Admission::Allowed,
            "keys are separate"
        );
        assert_eq!(
            l.check("ip:a", 3, t + 60),
            Admission::Allowed,
            "the first left"
        );
        assert_eq!(
            l.check("ip:a", 3, t + 61),
            Admission::Limited {
                retry_after: 9,
                first: false
            },
            "only one slot freed: the second attempt (t+10) is still in the window"
        );
    }

    /// Issue 14 item 9: fixed windows let a burst at the end of one window and another at the
    /// start of the next through (twice the limit within two seconds).
    #[test]
    fn a_burst_across_a_window_boundary_gets_only_the_limit() {
        let l = RateLimiter::new(60, 100);
        let t = 6_000; // a multiple of 60: where a fixed window would start
        for _ in 0..10 {
            assert_eq!(l.check("ip:a", 10, t - 1), Admission::Allowed);
        }
        let mut admitted = 0;
        for _ in 0..10 {
            if l.check("ip:a", 10, t) == Admission::Allowed {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 0, "no more than 10 attempts in any 60 seconds");
        assert_eq!(
            l.check("ip:a", 10, t),
            Admission::Limited {
                retry_after: 59,
                first: false
            },
            "Retry-After is when the burst leaves the window"
        );
        assert_eq!(l.check("ip:a", 10, t + 59), Admission::Allowed);
    }

    #[test]
    fn a_full_table_forgets_the_least_recently_seen_instead_of_refusing_everyone() {
        let l = RateLimiter::new(60, 3);
        assert_eq!(l.check("a", 1, 0), Admission::Allowed);
        assert_eq!(l.check("b", 1, 1), Admission::Allowed);
        assert_eq!(l.check("c", 1, 2), Admission::Allowed);
        assert!(matches!(l.check("b", 1, 3), Admission::Limited { .. }));
        assert_eq!(
            l.check("d", 1, 4),
            Admission::Allowed,
            "a new client is served when the table is full"
        );
        assert_eq!(l.tracked_keys(), 3, "memory stays bounded");
        assert!(
            matches!(l.check("b", 1, 5), Admission::Limited { .. }),
            "a recently seen key keeps its count"
        );
        assert_eq!(
            l.check("a", 1, 6),
            Admission::Allowed,
            "the least recently seen key was the one forgotten"
        );
        // Keys whose window has passed go before anyone still limited.
        let l = RateLimiter::new(60, 2);
        assert_eq!(l.check("old", 1, 0), Admission::Allowed);
        assert_eq!(l.check("busy", 1, 100), Admission::Allowed);
        assert_eq!(l.check("new", 1, 101), Admission::Allowed);
        assert!(matches!(l.check("busy", 1, 102), Admission::Limited { .. }));
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
