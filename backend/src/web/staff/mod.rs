//! The support staff console under `/staff` (issue 7): its own login (Argon2id, staff
//! sessions apart from customer sessions, a shorter idle timeout), customer search, the
//! customer page (tokens, lock, dates, device, the audit timeline paged newest first, CSV
//! export), and the staff actions with a mandatory reason: unlock, resend the setup mail,
//! revoke, reprovision; with `staff.four_eyes`, revoke and reprovision wait for a second
//! supervisor on `/staff/approvals`.
//!
//! Server-rendered HTML from minijinja templates embedded in the binary, in the configured
//! language (`staff.language`, Japanese unless set to English) with a switch to the other
//! (`/staff/lang`, remembered in the `staff_lang` cookie; see [`i18n`]), no inline script; the customer screens' security headers
//! (`pages::page_headers`: CSP, no-store, frame and referrer rules) on every response. Handlers
//! stay thin: parse, call the engine (`engine::staff`, which also enforces the roles), render.
//! No page, export or log shows a secret, a code or a password; the one exception the issue
//! asks for is a reprovision's generated activation password, shown once on the response to
//! the POST that generated it.

mod actions;
mod approvals;
mod csv;
mod customer;
mod i18n;
mod login;
mod session;

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::Environment;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use self::i18n::{error_text, tr, tr_with};
use self::session::{Loaded, StaffSession};
use super::{AppState, ClientIp};
pub use crate::config::StaffConfig;
use crate::domain::TokenState;
use crate::engine::staff::{
    CustomerFile, PasswordChoice, Permission, RequestView, StaffDone, TimelinePage,
};
use crate::engine::{EngineError, StaffTokenView};
use crate::web::pages::i18n::Lang;

/// The console's templates and settings.
pub struct Console {
    env: Environment<'static>,
    pub cfg: StaffConfig,
    /// The language of a request without the `staff_lang` cookie (`staff.language`).
    pub lang: Lang,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

const TEMPLATES: &[(&str, &str)] = &[
    (
        "staff/base.html",
        include_str!("../../../templates/staff/base.html"),
    ),
    (
        "staff/login.html",
        include_str!("../../../templates/staff/login.html"),
    ),
    (
        "staff/search.html",
        include_str!("../../../templates/staff/search.html"),
    ),
    (
        "staff/customer.html",
        include_str!("../../../templates/staff/customer.html"),
    ),
    (
        "staff/approvals.html",
        include_str!("../../../templates/staff/approvals.html"),
    ),
    (
        "staff/reprovisioned.html",
        include_str!("../../../templates/staff/reprovisioned.html"),
    ),
    (
        "staff/message.html",
        include_str!("../../../templates/staff/message.html"),
    ),
];

const STAFF_CSS: &str = include_str!("../../../static/staff.css");

/// A unix time as Japan time, to the second.
fn fmt_time(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .unwrap_or_default()
        .with_timezone(&crate::domain::jst())
        .format("%Y-%m-%d %H:%M:%S JST")
        .to_string()
}

impl Console {
    /// # Errors
    /// A setting out of range, or a template that does not parse (the tests build it).
    pub fn new(cfg: &StaffConfig, bank: &crate::config::BankConfig) -> anyhow::Result<Console> {
        // The section's one rule (`check` applies it too, with the rest of the configuration).
        cfg.validate().map_err(anyhow::Error::msg)?;
        let lang = Lang::parse(&cfg.language).ok_or_else(|| {
            anyhow::anyhow!("staff.language {:?}: no such language", cfg.language)
        })?;
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src)?;
        }
        env.add_filter("dt", |v: Option<i64>| v.map(fmt_time).unwrap_or_default());
        // The institution's name (`[bank]`), in each language, for the console's frame.
        env.add_global("bank_ja", bank.name.clone());
        env.add_global("bank_en", bank.name_en.clone());
        // `{{ "English"|t(name=value) }}`: the page's language, then `{name}` filled in.
        env.add_filter(
            "t",
            |state: &minijinja::State,
             en: String,
             args: minijinja::value::Kwargs|
             -> Result<String, minijinja::Error> {
                let lang = state
                    .lookup("lang")
                    .and_then(|v| v.as_str().and_then(Lang::parse))
                    .unwrap_or(Lang::En);
                let mut out = tr(lang, &en).into_owned();
                for name in args.args() {
                    let value: minijinja::Value = args.get(name)?;
                    out = out.replace(&format!("{{{name}}}"), &value.to_string());
                }
                args.assert_all_used()?;
                Ok(out)
            },
        );
        Ok(Console {
            env,
            cfg: cfg.clone(),
            lang,
        })
    }

    fn render(&self, name: &str, ctx: Map<String, Value>, status: StatusCode) -> Response {
        match self
            .env
            .get_template(name)
            .and_then(|t| t.render(Value::Object(ctx)))
        {
            Ok(html) => (status, Html(html)).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "staff template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

/// The console's routes (merged at the root, all under `/staff`).
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/staff", get(customer::search))
        .route("/staff/login", get(login::login_form).post(login::login))
        .route("/staff/logout", post(login::logout))
        .route("/staff/customers/{id}", get(customer::customer))
        .route("/staff/customers/{id}/audit.csv", get(customer::audit_csv))
        .route(
            "/staff/customers/{id}/unlock",
            post(actions::token_action::<{ actions::UNLOCK }>),
        )
        .route(
            "/staff/customers/{id}/resend",
            post(actions::token_action::<{ actions::RESEND }>),
        )
        .route(
            "/staff/customers/{id}/revoke",
            post(actions::token_action::<{ actions::REVOKE }>),
        )
        .route(
            "/staff/customers/{id}/reprovision",
            post(actions::reprovision),
        )
        .route("/staff/approvals", get(approvals::approvals))
        .route("/staff/approvals/{id}/approve", post(approvals::approve))
        .route("/staff/approvals/{id}/reject", post(approvals::reject))
        .route("/staff/approvals/{id}/cancel", post(approvals::cancel))
        .route("/staff/static/staff.css", get(css))
        .route("/staff/lang", get(switch_lang))
        .layer(middleware::from_fn_with_state(state, with_lang))
        .layer(middleware::from_fn(super::pages::page_headers))
}

const LANG_COOKIE: &str = "staff_lang";

/// A request's language (see [`request_lang`]) and, for a GET, where it is (the language switch
/// comes back there).
#[derive(Clone)]
struct ReqLang {
    lang: Lang,
    here: String,
}

tokio::task_local! {
    static REQ_LANG: ReqLang;
}

/// A request's language: the one its `staff_lang` cookie chose with the switch, else the
/// configured default (`staff.language`).
fn request_lang(st: &AppState, headers: &HeaderMap) -> Lang {
    session::cookie(headers, LANG_COOKIE)
        .and_then(|v| Lang::parse(&v))
        .unwrap_or(st.staff.lang)
}

async fn with_lang(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let lang = request_lang(&st, req.headers());
    let here = match (req.method(), req.uri().path_and_query()) {
        (&axum::http::Method::GET, Some(pq)) => pq.as_str().to_owned(),
        _ => "/staff".to_owned(),
    };
    REQ_LANG.scope(ReqLang { lang, here }, next.run(req)).await
}

/// This request's language.
fn lang() -> Lang {
    REQ_LANG.try_with(|r| r.lang).unwrap_or(Lang::En)
}

/// `/staff/lang?to=ja&back=/staff/...`: remember the language, go back (only to a console
/// page: no open redirect).
async fn switch_lang(
    State(st): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let to = q.get("to").and_then(|v| Lang::parse(v)).unwrap_or(Lang::En);
    let back = q
        .get("back")
        .map(String::as_str)
        .filter(|b| {
            b.starts_with("/staff")
                && !b.contains("//")
                && !b.contains('\\')
                && b.bytes().all(|c| c.is_ascii_graphic())
        })
        .unwrap_or("/staff");
    with_cookies(
        see_other(back),
        vec![session::set_cookie(
            &st,
            LANG_COOKIE,
            to.code(),
            Some(400 * 86_400),
        )],
    )
}

/// `s` with the characters that matter in a query value percent-encoded.
fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STAFF_CSS,
    )
        .into_response()
}

fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

fn base_ctx(title: &str, sess: Option<&StaffSession>) -> Map<String, Value> {
    let lang = lang();
    let here = REQ_LANG
        .try_with(|r| r.here.clone())
        .unwrap_or_else(|_| "/staff".to_owned());
    let mut m = Map::new();
    m.insert("title".into(), json!(tr(lang, title)));
    m.insert("lang".into(), json!(lang.code()));
    m.insert(
        "lang_href".into(),
        json!(format!(
            "/staff/lang?to={}&back={}",
            lang.other().code(),
            query_value(&here)
        )),
    );
    if let Some(s) = sess {
        m.insert(
            "me".into(),
            json!({
                "id": s.member.id,
                "login_id": s.member.login_id,
                "name": s.member.name,
                "role": s.member.role.as_str(),
                "supervisor": s.member.role.may(Permission::Approve),
            }),
        );
        m.insert("csrf".into(), json!(s.csrf));
    }
    m
}

fn message(
    st: &AppState,
    sess: Option<&StaffSession>,
    status: StatusCode,
    text: &str,
    back: Option<&str>,
) -> Response {
    let mut ctx = base_ctx("Staff console", sess);
    ctx.insert("message".into(), json!(tr(lang(), text)));
    ctx.insert("back".into(), json!(back));
    st.staff.render("staff/message.html", ctx, status)
}

/// The refusal of text no field accepts (control characters, invalid UTF-8, over-long): 400,
/// in the console's language (see `web::text_guard`, which runs before the console's layers).
pub(crate) fn text_refused(st: &AppState, headers: &HeaderMap) -> Response {
    edge_refusal(
        st,
        headers,
        StatusCode::BAD_REQUEST,
        "The input contains characters that cannot be used (such as control characters), or is too long. Go back, check it and try again.",
    )
}

/// A body over the size limit, as a console page (413).
pub(crate) fn too_large(st: &AppState, headers: &HeaderMap) -> Response {
    edge_refusal(
        st,
        headers,
        StatusCode::PAYLOAD_TOO_LARGE,
        "What was sent is too large. Go back, shorten the input and try again.",
    )
}

/// A refusal made at the edge (before any handler): a console message page in the member's
/// language, with the way back to the console.
fn edge_refusal(
    st: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    text: &'static str,
) -> Response {
    let lang = request_lang(st, headers);
    let here = ReqLang {
        lang,
        here: "/staff".to_owned(),
    };
    REQ_LANG.sync_scope(here, || message(st, None, status, text, Some("/staff")))
}

/// An engine error as a page, with the status of `web::error::status_of` and the refusal's
/// message; an internal error shows only an id to quote (the cause goes to the log only).
fn error_page(
    st: &AppState,
    sess: Option<&StaffSession>,
    e: EngineError,
    back: Option<&str>,
) -> Response {
    match &e {
        EngineError::Domain(crate::domain::DomainError::Corrupt(_)) | EngineError::Internal(_) => {
            let id = session::random_hex(6);
            tracing::error!(error_id = %id, code = e.code(), error = %e, "staff request failed");
            message(
                st,
                sess,
                StatusCode::INTERNAL_SERVER_ERROR,
                &tr_with(
                    lang(),
                    "Internal error. Quote this id to support: {id}",
                    &[("id", &id)],
                ),
                back,
            )
        }
        EngineError::Unavailable => message(
            st,
            sess,
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is temporarily unavailable. Try again shortly.",
            back,
        ),
        other => {
            let text = error_text(lang(), other.code(), &other.to_string());
            message(st, sess, crate::web::error::status_of(other), &text, back)
        }
    }
}

/// The staff session, or the redirect to the staff login (saying so after a timeout).
async fn require(st: &AppState, headers: &HeaderMap) -> Result<StaffSession, Response> {
    match session::load(st, headers).await {
        Ok(Loaded::Live(s)) => Ok(s),
        Ok(Loaded::Expired) => Err(see_other("/staff/login?timeout=1")),
        Ok(Loaded::None) => Err(see_other("/staff/login")),
        Err(e) => Err(error_page(st, None, e, None)),
    }
}

/// The staff session of a form post with its CSRF token checked.
async fn require_post(
    st: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
) -> Result<StaffSession, Response> {
    let sess = require(st, headers).await?;
    if !sess.csrf_ok(form) {
        tracing::warn!("staff CSRF token missing or wrong; form refused");
        return Err(message(
            st,
            Some(&sess),
            StatusCode::FORBIDDEN,
            "The form has expired or did not come from this console. Reload the page and try again.",
            Some("/staff"),
        ));
    }
    Ok(sess)
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", |s| s.as_str())
}

fn with_cookies(mut res: Response, cookies: Vec<HeaderValue>) -> Response {
    for c in cookies {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}
