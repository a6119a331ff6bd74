//! The screens' error pages: every refusal and failure a customer can reach, as a page in the
//! bank's layout and the customer's language (never the framework's plain English text).

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{json, Value};

use super::i18n::{msg, Lang};
use super::{base_ctx, lang_of, secure_headers, Session};
use crate::engine::EngineError;
use crate::web::AppState;

/// The refusal of text no field accepts (control characters, invalid UTF-8, over-long), as a
/// screen: 400, in the customer's language (see `web::text_guard`).
pub(crate) fn text_refused(st: &AppState, headers: &HeaderMap) -> Response {
    let lang = lang_of(headers);
    let mut res = message_page(
        st,
        lang,
        None,
        StatusCode::BAD_REQUEST,
        "error_title",
        msg(lang, "error_bad_text"),
        Some(("/top", "to_top")),
    );
    secure_headers(&mut res);
    res
}

/// Whether `path` is one the customer's browser may land on (not an API, the console, a probe
/// or an asset): every error there is a page of the screens.
fn customer_path(path: &str) -> bool {
    ![
        "/host/", "/app/", "/staff", "/static/", "/healthz", "/readyz", "/metrics",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// Every error a customer can reach is a page in the bank's layout, in their language: what
/// the framework answers by itself (an unknown path, a wrong method, a body that is not a
/// form, a timeout) comes as plain English text and is replaced here. Answers that are pages
/// already pass as they are.
pub(crate) async fn error_pages(State(st): State<AppState>, req: Request, next: Next) -> Response {
    if !customer_path(req.uri().path()) {
        return next.run(req).await;
    }
    let headers = req.headers().clone();
    let res = next.run(req).await;
    let status = res.status();
    let is_page = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_page {
        return res;
    }
    let lang = lang_of(&headers);
    let key = match status {
        StatusCode::NOT_FOUND => "error_not_found",
        StatusCode::METHOD_NOT_ALLOWED => "error_method",
        StatusCode::PAYLOAD_TOO_LARGE => "error_too_large",
        StatusCode::REQUEST_TIMEOUT => "error_timeout",
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => "error_unavailable",
        s if s.is_server_error() => "error_unavailable",
        _ => "error_unreadable",
    };
    let mut page = message_page(
        &st,
        lang,
        None,
        status,
        "error_title",
        msg(lang, key),
        Some(("/top", "to_top")),
    );
    // What the framework and the layers inside said (Allow, Retry-After, HSTS) stays.
    for name in [
        header::ALLOW,
        header::RETRY_AFTER,
        header::STRICT_TRANSPORT_SECURITY,
    ] {
        if let Some(v) = res.headers().get(&name) {
            page.headers_mut().insert(name, v.clone());
        }
    }
    secure_headers(&mut page);
    page
}

/// A body over the size limit (a pasted essay, a script's flood) as a screen: 413, in the
/// customer's language, in the bank's layout (see `web::text_guard`).
pub(crate) fn too_large(st: &AppState, headers: &HeaderMap) -> Response {
    let lang = lang_of(headers);
    let mut res = message_page(
        st,
        lang,
        None,
        StatusCode::PAYLOAD_TOO_LARGE,
        "error_title",
        msg(lang, "error_too_large"),
        Some(("/top", "to_top")),
    );
    secure_headers(&mut res);
    res
}

/// A page showing one message (errors, refusals), with a link onwards.
pub fn message_page(
    st: &AppState,
    lang: Lang,
    sess: Option<&Session>,
    status: StatusCode,
    title_key: &str,
    text: String,
    link: Option<(&str, &str)>,
) -> Response {
    let mut ctx = base_ctx(lang, "/", sess, None, title_key);
    ctx.insert("message".into(), json!(text));
    if let Some((href, key)) = link {
        ctx.insert("link_href".into(), json!(href));
        ctx.insert("link_text".into(), json!(msg(lang, key)));
    }
    let mut res = st.site.render("message.html", Value::Object(ctx));
    *res.status_mut() = status;
    res
}

/// The CSRF refusal (403).
pub fn csrf_refused(st: &AppState, lang: Lang, sess: Option<&Session>) -> Response {
    tracing::warn!("CSRF token missing or wrong; form refused");
    message_page(
        st,
        lang,
        sess,
        StatusCode::FORBIDDEN,
        "error_title",
        msg(lang, "error_csrf"),
        Some(("/top", "to_top")),
    )
}

/// An engine error as a page: unavailable → 503; anything else → 500 with an id to quote.
pub fn engine_error_page(
    st: &AppState,
    lang: Lang,
    sess: Option<&Session>,
    e: EngineError,
) -> Response {
    if let EngineError::Unavailable = e {
        return message_page(
            st,
            lang,
            sess,
            StatusCode::SERVICE_UNAVAILABLE,
            "error_title",
            msg(lang, "error_unavailable"),
            None,
        );
    }
    let id = hex::encode(rand::random::<[u8; 6]>());
    tracing::error!(error_id = %id, code = e.code(), error = %e, "screen request failed");
    message_page(
        st,
        lang,
        sess,
        StatusCode::INTERNAL_SERVER_ERROR,
        "error_title",
        format!("{}{id}", msg(lang, "error_internal")),
        Some(("/top", "to_top")),
    )
}
