//! The support staff console under `/staff` (issue 7): its own login (Argon2id, staff
//! sessions apart from customer sessions, a shorter idle timeout), customer search, the
//! customer page (tokens, lock, dates, device, the audit timeline paged newest first, CSV
//! export), and the staff actions with a mandatory reason: unlock, resend the setup mail,
//! revoke, reprovision; with `staff.four_eyes`, revoke and reprovision wait for a second
//! supervisor on `/staff/approvals`.
//!
//! Server-rendered HTML from minijinja templates embedded in the binary, in English with a
//! Japanese switch (`/staff/lang`, remembered in the `staff_lang` cookie; see [`i18n`]), no
//! inline script; the customer screens' security headers
//! (`pages::page_headers`: CSP, no-store, frame and referrer rules) on every response. Handlers
//! stay thin: parse, call the engine (`staff_ops`, which also enforces the roles), render.
//! No page, export or log shows a secret, a code or a password; the one exception the issue
//! asks for is a reprovision's generated activation password, shown once on the response to
//! the POST that generated it.

mod csv;
mod i18n;
mod session;

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use minijinja::Environment;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

use self::i18n::{error_text, tr, tr_with};
use self::session::{Loaded, StaffSession};
use super::{AppState, ClientIp};
use crate::domain::TokenState;
use crate::engine::EngineError;
use crate::staff_ops::{
    CustomerFile, PasswordChoice, Permission, RequestView, StaffDone, StaffTokenView, TimelinePage,
};
use crate::web::pages::i18n::Lang;

/// `[staff]` in the configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaffConfig {
    /// A staff session idle this long ends (seconds); shorter than the customers'.
    pub session_idle_secs: u64,
    /// A revoke or reprovision takes effect only when a second supervisor approves it.
    pub four_eyes: bool,
    /// Audit events per page of the customer page's timeline.
    pub audit_page_size: i64,
    /// A staff session ends this long after login however active it is (seconds): a shift.
    pub session_max_secs: u64,
}

impl Default for StaffConfig {
    fn default() -> Self {
        StaffConfig {
            session_idle_secs: 300,
            four_eyes: false,
            audit_page_size: 25,
            session_max_secs: 8 * 3600,
        }
    }
}

/// The console's templates and settings.
pub struct Console {
    env: Environment<'static>,
    pub cfg: StaffConfig,
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
    pub fn new(cfg: &StaffConfig) -> anyhow::Result<Console> {
        if !(60..=3600).contains(&cfg.session_idle_secs) {
            anyhow::bail!("staff.session_idle_secs must be 60..=3600");
        }
        if cfg.session_max_secs < cfg.session_idle_secs || cfg.session_max_secs > 86_400 {
            anyhow::bail!("staff.session_max_secs must be session_idle_secs..=86400");
        }
        if !(5..=500).contains(&cfg.audit_page_size) {
            anyhow::bail!("staff.audit_page_size must be 5..=500");
        }
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src)?;
        }
        env.add_filter("dt", |v: Option<i64>| v.map(fmt_time).unwrap_or_default());
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
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/staff", get(search))
        .route("/staff/login", get(login_form).post(login))
        .route("/staff/logout", post(logout))
        .route("/staff/customers/{id}", get(customer))
        .route("/staff/customers/{id}/audit.csv", get(audit_csv))
        .route("/staff/customers/{id}/unlock", post(unlock))
        .route("/staff/customers/{id}/resend", post(resend))
        .route("/staff/customers/{id}/revoke", post(revoke))
        .route("/staff/customers/{id}/reprovision", post(reprovision))
        .route("/staff/approvals", get(approvals))
        .route("/staff/approvals/{id}/approve", post(approve))
        .route("/staff/approvals/{id}/reject", post(reject))
        .route("/staff/approvals/{id}/cancel", post(cancel))
        .route("/staff/static/staff.css", get(css))
        .route("/staff/lang", get(switch_lang))
        .layer(middleware::from_fn(with_lang))
        .layer(middleware::from_fn(super::pages::page_headers))
}

const LANG_COOKIE: &str = "staff_lang";

/// A request's language (the `staff_lang` cookie; English by default) and, for a GET, where it
/// is (the language switch comes back there).
#[derive(Clone)]
struct ReqLang {
    lang: Lang,
    here: String,
}

tokio::task_local! {
    static REQ_LANG: ReqLang;
}

async fn with_lang(req: Request, next: Next) -> Response {
    let lang = session::cookie(req.headers(), LANG_COOKIE)
        .and_then(|v| Lang::parse(&v))
        .unwrap_or(Lang::En);
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

/// An engine error as a page: forbidden → 403; a refusal → 422 with its message; unavailable
/// → 503; anything else → 500 with an id to quote (the cause goes to the log only).
fn error_page(
    st: &AppState,
    sess: Option<&StaffSession>,
    e: EngineError,
    back: Option<&str>,
) -> Response {
    match &e {
        EngineError::Invalid {
            code,
            message: text,
            ..
        } => {
            let status = if *code == "STAFF_FORBIDDEN" {
                StatusCode::FORBIDDEN
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            let text = error_text(lang(), code, text);
            message(st, sess, status, &text, back)
        }
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
            message(st, sess, StatusCode::UNPROCESSABLE_ENTITY, &text, back)
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

// --- login -----------------------------------------------------------------------------------

fn render_login(
    st: &AppState,
    csrf: &str,
    notice: Option<&str>,
    error: Option<&str>,
    login_id: &str,
) -> Response {
    let mut ctx = base_ctx("Staff login", None);
    ctx.insert("csrf".into(), json!(csrf));
    ctx.insert("notice".into(), json!(notice));
    ctx.insert("error".into(), json!(error));
    ctx.insert("login_id".into(), json!(login_id));
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let res = st.staff.render("staff/login.html", ctx, status);
    // A fresh double-submit token for the next attempt.
    with_cookies(
        res,
        vec![session::set_cookie(
            st,
            session::login_csrf_cookie_name(st),
            csrf,
            Some(1800),
        )],
    )
}

async fn login_form(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Ok(Loaded::Live(_)) = session::load(&st, &headers).await {
        return see_other("/staff");
    }
    let notice = if q.contains_key("timeout") {
        Some("Your session ended after a period of inactivity. Log in again.")
    } else if q.contains_key("bye") {
        Some("You have logged out.")
    } else {
        None
    };
    render_login(&st, &session::random_hex(32), notice, None, "")
}

async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    use subtle::ConstantTimeEq;
    let expected = session::cookie(&headers, session::login_csrf_cookie_name(&st));
    let posted = field(&form, "csrf");
    let csrf_ok = expected
        .is_some_and(|e| !posted.is_empty() && bool::from(e.as_bytes().ct_eq(posted.as_bytes())));
    if !csrf_ok {
        tracing::warn!("staff login CSRF token missing or wrong; form refused");
        return message(
            &st,
            None,
            StatusCode::FORBIDDEN,
            "The login form has expired. Reload the page and try again.",
            Some("/staff/login"),
        );
    }
    let login_id = field(&form, "login_id").trim().to_owned();
    let password = Zeroizing::new(field(&form, "password").to_owned());
    let fresh = session::random_hex(32);
    if login_id.is_empty() || password.is_empty() {
        return render_login(
            &st,
            &fresh,
            None,
            Some("Enter your staff login ID and password."),
            &login_id,
        );
    }
    let member = match st
        .engine
        .staff_login(&login_id, password, ip.0.clone())
        .await
    {
        Ok(Some(m)) => m,
        Ok(None) => {
            return render_login(
                &st,
                &fresh,
                None,
                Some("The login ID or password is incorrect."),
                &login_id,
            )
        }
        Err(e) => return error_page(&st, None, e, Some("/staff/login")),
    };
    // A session left from before (another account on this browser) ends: no fixation.
    if let Ok(Loaded::Live(old)) = session::load(&st, &headers).await {
        let _ = session::destroy(&st, &old).await;
    }
    match session::create(&st, member).await {
        Ok((_, cookie)) => with_cookies(
            see_other("/staff"),
            vec![
                cookie,
                session::set_cookie(&st, session::login_csrf_cookie_name(&st), "", Some(0)),
            ],
        ),
        Err(e) => error_page(&st, None, e, None),
    }
}

async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_post(&st, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match session::destroy(&st, &sess).await {
        Ok(clear) => with_cookies(see_other("/staff/login?bye=1"), vec![clear]),
        Err(e) => error_page(&st, None, e, None),
    }
}

// --- search and the customer page -------------------------------------------------------------

async fn search(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sess = match require(&st, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let query = q.get("q").map_or("", |s| s.trim());
    let mut ctx = base_ctx("Customer search", Some(&sess));
    ctx.insert("q".into(), json!(query));
    if !query.is_empty() {
        match st.engine.staff_search(&sess.member, query, ip.0).await {
            Ok(rows) => {
                let rows: Vec<Value> = rows
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "login_id": c.login_id,
                            "name": c.name,
                            "email": c.email,
                        })
                    })
                    .collect();
                ctx.insert("results".into(), json!(rows));
            }
            Err(e) => return error_page(&st, Some(&sess), e, Some("/staff")),
        }
    }
    st.staff.render("staff/search.html", ctx, StatusCode::OK)
}

fn token_json(t: &StaffTokenView) -> Value {
    let label = match t.state {
        TokenState::Issued => "Issued (mail sent, link not opened)",
        TokenState::LinkOpened => "Issued (link opened, app not set up)",
        TokenState::Provisioned => "Set up (waiting for the first code)",
        TokenState::Active => "Active",
        TokenState::Deactivated => "Deactivated by the customer",
        TokenState::Revoked => "Revoked by staff",
        TokenState::Voided => "Void (expired or replaced before setup)",
    };
    let mut v = json!(t);
    v["state_label"] = json!(label);
    v["live"] = json!(t.state.is_live());
    v["awaiting_setup"] = json!(matches!(
        t.state,
        TokenState::Issued | TokenState::LinkOpened
    ));
    v
}

fn request_json(r: &RequestView) -> Value {
    json!(r)
}

fn done_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "unlocked" => "The token was unlocked.",
        "resent" => "The setup mail was sent again with a fresh download link; earlier links no longer work.",
        "revoked" => "The token was revoked: it no longer verifies codes.",
        "revoke_requested" => "Revocation requested: it takes effect when a second supervisor approves it.",
        "reprovision_requested" => "Reprovisioning requested: it takes effect when a second supervisor approves it.",
        _ => return None,
    })
}

async fn customer_page(
    st: &AppState,
    sess: &StaffSession,
    id: i64,
    before: Option<i64>,
    done: Option<&str>,
    ip: Option<String>,
) -> Response {
    let back = Some("/staff");
    let page = st.staff.cfg.audit_page_size;
    let timeline = TimelinePage {
        before_id: before,
        limit: page,
    };
    let file: CustomerFile = match st
        .engine
        .staff_customer(&sess.member, id, timeline, ip)
        .await
    {
        Ok(f) => f,
        Err(e) => return error_page(st, Some(sess), e, back),
    };
    let audit = &file.timeline;
    let older = (i64::try_from(audit.len()).unwrap_or(0) == page)
        .then(|| audit.last().map(|a| a.id))
        .flatten();
    let title = tr_with(lang(), "Customer {login}", &[("login", &file.login_id)]);
    let mut ctx = base_ctx(&title, Some(sess));
    ctx.insert(
        "customer".into(),
        json!({
            "id": file.id,
            "login_id": file.login_id,
            "name": file.name,
            "email": file.email,
            "reissue_waived": file.reissue_waived,
            "created_at": file.created_at,
        }),
    );
    let tokens: Vec<Value> = file.tokens.iter().map(token_json).collect();
    ctx.insert(
        "current".into(),
        tokens.first().cloned().unwrap_or(Value::Null),
    );
    ctx.insert("history".into(), json!(tokens.get(1..).unwrap_or(&[])));
    ctx.insert(
        "pending".into(),
        file.pending.as_ref().map_or(Value::Null, request_json),
    );
    ctx.insert("audit".into(), json!(audit));
    ctx.insert("older".into(), json!(older));
    ctx.insert("first_page".into(), json!(before.is_some()));
    ctx.insert("done".into(), json!(done.and_then(done_text)));
    ctx.insert("four_eyes".into(), json!(st.staff.cfg.four_eyes));
    ctx.insert(
        "can".into(),
        json!({
            "revoke": sess.member.role.may(Permission::Revoke),
            "reprovision": sess.member.role.may(Permission::Reprovision),
        }),
    );
    st.staff.render("staff/customer.html", ctx, StatusCode::OK)
}

async fn customer(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sess = match require(&st, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let before = q.get("before").and_then(|b| b.parse().ok());
    customer_page(
        &st,
        &sess,
        id,
        before,
        q.get("done").map(String::as_str),
        ip.0,
    )
    .await
}

async fn audit_csv(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
) -> Response {
    let sess = match require(&st, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let back = format!("/staff/customers/{id}");
    let rows = match st.engine.staff_audit_all(&sess.member, id).await {
        Ok(r) => r,
        Err(e) => return error_page(&st, Some(&sess), e, Some(&back)),
    };
    if let Err(e) = st
        .engine
        .staff_audit_export(&sess.member, id, rows.len(), ip.0.clone())
        .await
    {
        return error_page(&st, Some(&sess), e, Some(&back));
    }
    let body = csv::audit_csv(&rows, fmt_time);
    let disposition = format!("attachment; filename=\"audit-customer-{id}.csv\"");
    let mut res = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

// --- actions ---------------------------------------------------------------------------------

/// After an action: back to the customer page saying what happened, or the refusal.
fn after_action(
    st: &AppState,
    sess: &StaffSession,
    id: i64,
    res: Result<&str, EngineError>,
) -> Response {
    let back = format!("/staff/customers/{id}");
    match res {
        Ok(done) => see_other(&format!("{back}?done={done}")),
        Err(e) => error_page(st, Some(sess), e, Some(&back)),
    }
}

async fn unlock(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_post(&st, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let res = st
        .engine
        .staff_unlock(
            &sess.member,
            id,
            field(&form, "user_id"),
            field(&form, "reason"),
            ip.0.clone(),
        )
        .await
        .map(|()| "unlocked");
    after_action(&st, &sess, id, res)
}

async fn resend(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_post(&st, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let res = st
        .engine
        .staff_resend_setup(
            &sess.member,
            id,
            field(&form, "user_id"),
            field(&form, "reason"),
            ip.0.clone(),
        )
        .await
        .map(|()| "resent");
    after_action(&st, &sess, id, res)
}

async fn revoke(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_post(&st, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let res = st
        .engine
        .staff_revoke(
            &sess.member,
            id,
            field(&form, "user_id"),
            field(&form, "reason"),
            st.staff.cfg.four_eyes,
            ip.0.clone(),
        )
        .await
        .map(|d| match d {
            StaffDone::Applied { .. } => "revoked",
            StaffDone::Requested { .. } => "revoke_requested",
        });
    after_action(&st, &sess, id, res)
}

async fn reprovision(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_post(&st, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let back = format!("/staff/customers/{id}");
    let choice = match field(&form, "mode") {
        "customer" => PasswordChoice::Customer,
        "generated" => PasswordChoice::Generated,
        _ => {
            return message(
                &st,
                Some(&sess),
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!(
                    "{} (MODE_REQUIRED)",
                    tr(
                        lang(),
                        "Choose how the customer's new activation password is set."
                    )
                ),
                Some(&back),
            )
        }
    };
    let expected = Some(field(&form, "expected_user_id")).filter(|s| !s.is_empty());
    let email = Some(field(&form, "email")).filter(|s| !s.trim().is_empty());
    let res = st
        .engine
        .staff_reprovision(
            &sess.member,
            id,
            expected,
            field(&form, "reason"),
            choice,
            email,
            st.staff.cfg.four_eyes,
            ip.0.clone(),
        )
        .await;
    let done = match res {
        Ok(d) => d,
        Err(e) => return error_page(&st, Some(&sess), e, Some(&back)),
    };
    let mut ctx = base_ctx("Reprovisioning", Some(&sess));
    ctx.insert("customer_id".into(), json!(id));
    ctx.insert("mode".into(), json!(choice.as_str()));
    match &done.done {
        StaffDone::Applied { new_user_id } => {
            ctx.insert("applied".into(), json!(true));
            ctx.insert("new_user_id".into(), json!(new_user_id));
        }
        StaffDone::Requested { request_id } => {
            ctx.insert("applied".into(), json!(false));
            ctx.insert("request_id".into(), json!(request_id));
        }
    }
    // Shown once, on this response only (no-store); never stored in clear, never logged.
    ctx.insert(
        "generated_password".into(),
        json!(done.generated_password.as_deref().map(String::as_str)),
    );
    st.staff
        .render("staff/reprovisioned.html", ctx, StatusCode::OK)
}

// --- four-eyes approvals ---------------------------------------------------------------------

async fn approvals(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sess = match require(&st, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let pending = match st.engine.staff_pending(&sess.member).await {
        Ok(p) => p,
        Err(e) => return error_page(&st, Some(&sess), e, Some("/staff")),
    };
    let rows: Vec<Value> = pending
        .iter()
        .map(|r| {
            let mut v = request_json(r);
            v["mine"] = json!(r.requested_by == sess.member.id);
            v
        })
        .collect();
    let done = q.get("done").map(|d| match d.as_str() {
        "approved" => "The request was approved and has taken effect.",
        "rejected" => "The request was rejected.",
        _ => "The request was withdrawn.",
    });
    let mut ctx = base_ctx("Pending approvals", Some(&sess));
    ctx.insert("requests".into(), json!(rows));
    ctx.insert("done".into(), json!(done));
    ctx.insert("four_eyes".into(), json!(st.staff.cfg.four_eyes));
    st.staff.render("staff/approvals.html", ctx, StatusCode::OK)
}

async fn approve(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_post(&st, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match st
        .engine
        .staff_approve(&sess.member, id, ip.0.clone())
        .await
    {
        Ok(_) => see_other("/staff/approvals?done=approved"),
        Err(e) => error_page(&st, Some(&sess), e, Some("/staff/approvals")),
    }
}

async fn decline(
    st: &AppState,
    headers: &HeaderMap,
    ip: ClientIp,
    id: i64,
    form: &HashMap<String, String>,
    cancel: bool,
) -> Response {
    let sess = match require_post(st, headers, form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match st
        .engine
        .staff_decline(
            &sess.member,
            id,
            cancel,
            field(form, "reason"),
            ip.0.clone(),
        )
        .await
    {
        Ok(()) => see_other(if cancel {
            "/staff/approvals?done=cancelled"
        } else {
            "/staff/approvals?done=rejected"
        }),
        Err(e) => error_page(st, Some(&sess), e, Some("/staff/approvals")),
    }
}

async fn reject(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    decline(&st, &headers, ip, id, &form, false).await
}

async fn cancel(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    decline(&st, &headers, ip, id, &form, true).await
}
