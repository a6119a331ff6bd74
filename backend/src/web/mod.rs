//! HTTP transports over the engine. Handlers are thin: parse, call the engine, map the error.
//!
//! - `/host/v1/…`: the JSON API the bank's internet-banking host calls (bearer API keys);
//! - `/healthz`, `/readyz`, `/metrics`: operations.

pub mod app_api;
pub mod error;
pub mod host_api;
pub mod pages;
pub mod staff;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use sha2::{Digest, Sha256};
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

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
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

/// The client's address, when the server was started with connect info.
#[derive(Debug, Clone)]
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip().to_string()),
        ))
    }
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let limit = state.body_limit;
    Router::new()
        .nest("/host/v1", host_api::router(state.clone()))
        .nest("/app/v1", app_api::router())
        .merge(pages::router())
        .merge(staff::router())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_secs(15),
        ))
        // Logs method, path, status and latency; never bodies or headers (which hold keys).
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

async fn readyz(State(st): State<AppState>) -> impl IntoResponse {
    match st.engine.store().ping().await {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable").into_response()
        }
    }
}

async fn metrics(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.engine
            .metrics()
            .render_with_store(st.engine.store(), st.engine.now())
            .await,
    )
}
