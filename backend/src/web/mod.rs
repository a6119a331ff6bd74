//! HTTP transports over the engine. Handlers are thin: parse, call the engine, map the error.
//!
//! - `/host/v1/…`: the JSON API the bank's internet-banking host calls (bearer API keys);
//! - `/healthz`, `/readyz`: operations, open to anyone (they say only "ok" or "ready");
//! - `/metrics`: operations, only with `Authorization: Bearer <web.metrics_key>` (off without
//!   a key): the counters tell an outsider the bank's traffic and failure rates.
//!
//! With an `https://` `web.public_url` every response carries `Strict-Transport-Security`.

pub mod app_api;
pub mod client_ip;
pub mod error;
pub mod failure_limit;
pub mod host_api;
pub mod pages;
pub mod serve;
pub mod session;
pub mod staff;
mod text_guard;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// The span of a request names its route pattern (`/dl/{code}`), never the concrete path: paths
/// carry download-link codes and user IDs, and the query string could carry anything.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(unmatched)", |m| m.as_str());
    tracing::info_span!("request", method = %req.method(), route)
}

use crate::engine::Engine;

/// A host API key, kept only as its SHA-256 digest: compared in constant time, never printed.
#[derive(Clone)]
pub struct HostKey {
    pub name: String,
    digest: [u8; 32],
}

impl HostKey {
    pub fn new(name: &str, key: &str) -> Self {
        HostKey {
            name: name.to_owned(),
            digest: Sha256::digest(key.as_bytes()).into(),
        }
    }
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Shared state of every handler: one reference-counted pointer, because axum clones the state
/// for every layer and extractor of every request (with its fields cloned one by one, each
/// clone and drop was seven atomic counter updates; `drop_in_place<AppState>` alone was 2 % of
/// the server's CPU under load, issue 15).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub engine: Engine,
    pub host_keys: Arc<Vec<HostKey>>,
    pub body_limit: usize,
    /// The app API's issuer and rate limiter (one per process).
    pub app_api: Arc<app_api::AppApi>,
    /// The customer screens' templates and settings.
    pub site: Arc<pages::Site>,
    /// The staff console's templates and settings.
    pub staff: Arc<staff::Console>,
}

/// The client's address, when the server was started with connect info: the peer, or the
/// address a trusted proxy reports for it ([`client_ip`]).
#[derive(Debug, Clone)]
pub struct ClientIp(pub Option<String>);

impl ClientIp {
    /// The address itself, for rate limits.
    pub fn addr(parts: &Parts, st: &AppState) -> Option<std::net::IpAddr> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>()?.0.ip();
        let web = &st.site.cfg;
        client_ip::note_untrusted_forwarding(peer, &parts.headers, &web.trusted_proxies);
        Some(client_ip::resolve(
            peer,
            &parts.headers,
            &web.trusted_proxies,
            web.client_ip_header,
        ))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp
where
    AppState: FromRef<S>,
{
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let st = AppState::from_ref(state);
        Ok(ClientIp(
            ClientIp::addr(parts, &st).map(|ip| ip.to_string()),
        ))
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let limit = state.body_limit;
    let routes = Router::new()
        .merge(host_api::router(state.clone()))
        .nest("/app/v1", app_api::router())
        .nest("/app/v2", app_api::router_v2())
        .merge(pages::router())
        .merge(staff::router(state.clone()))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        // Every text field, query value and path segment is checked once, here, before any
        // handler or database sees it.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            text_guard::refuse_bad_text,
        ));
    // HSTS when the public URL is https: browsers then never try plain HTTP (nor let a user
    // click through a certificate warning) for a year. A plain layer, not a middleware
    // function: nothing to box per request, and nothing at all over plain HTTP.
    let routes = if state.site.secure {
        routes.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        ))
    } else {
        routes
    };
    routes
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(15),
        ))
        // What the framework answers by itself on the customer's paths, as the screens' pages.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            pages::error_pages,
        ))
        // Logs method, path, status and latency; never bodies or headers (which hold keys).
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// Ready when the database answers and takes a write: a full disk or a read-only database
/// answers `SELECT 1` happily while every verification fails.
async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    use crate::engine::health::NotReady;
    match st.engine.readiness().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(NotReady::Unreachable) => {
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
        Err(NotReady::CannotWrite) => {
            (StatusCode::SERVICE_UNAVAILABLE, "database cannot write").into_response()
        }
    }
}

async fn metrics(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let Some(key) = st.site.cfg.metrics_key.as_ref() else {
        return (
            StatusCode::NOT_FOUND,
            "metrics are off: set web.metrics_key",
        )
            .into_response();
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Digests of both, compared in constant time (length included).
    let ok: bool = subtle::ConstantTimeEq::ct_eq(
        Sha256::digest(presented.as_bytes()).as_slice(),
        Sha256::digest(key.0.as_bytes()).as_slice(),
    )
    .into();
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "metrics need Authorization: Bearer <web.metrics_key>",
        )
            .into_response();
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.engine.render_metrics().await,
    )
        .into_response()
}
