//! The customer screens of the manual (DESIGN §6): server-rendered HTML from minijinja
//! templates embedded in the binary, Japanese first with an English toggle, static assets
//! served by the binary, no inline script (the Content-Security-Policy forbids it).
//!
//! Every page: `Cache-Control: no-store`, CSP and the usual security headers; every form a
//! CSRF token tied to the session; every rule checked here with a message per field. Handlers
//! stay thin: they parse, call the engine, and render.
#![allow(clippy::result_large_err)] // reason: handlers answer with a page on both paths; the error page is built once per request, never in a loop

mod auth;
mod download;
mod email;
mod errors;
pub mod i18n;
mod issue;
mod mail_password;
mod otp;
mod session;
mod transfer;

use std::collections::{BTreeMap, HashMap};

use axum::extract::{Path, Request};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use minijinja::Environment;
use serde_json::{json, Map, Value};

pub use self::errors::{csrf_refused, engine_error_page, message_page};
pub(crate) use self::errors::{error_pages, text_refused, too_large};
use self::i18n::{catalogue, msg, Lang};
pub use self::session::Session;
use super::AppState;
use crate::config::{BankConfig, WebConfig};
use crate::engine::EngineError;

/// Templates and settings of the screens.
pub struct Site {
    env: Environment<'static>,
    pub cfg: WebConfig,
    /// The institution the screens speak for (`{bank}`, `{we}`, `{contact}` in the words).
    pub bank: BankConfig,
    /// The catalogues with the institution's words filled in: Japanese, English.
    words: [BTreeMap<&'static str, String>; 2],
    /// Cookies get `Secure` (served over TLS).
    pub secure: bool,
    /// The steps a customer confirms with a one-time code, one request at a time per session.
    pub(crate) one_at_a_time: OneAtATime,
    /// Failed customer logins per client (`web.login_failures_per_client`).
    pub(crate) failed_logins: std::sync::Arc<crate::web::failure_limit::FailureLimit>,
}

/// One request at a time per session and step, for the steps a one-time code confirms (login's
/// OTP step, 確定する of a transfer or an e-mail change, BOK001, BOS001): 確定する pressed twice
/// sends two requests at once with the same code, and the second, run beside the first, met
/// the first's code as a replay (an error page for a step that succeeded, and an alarm mail).
/// Waiting for the first, it finds the step done (each handler looks first, once it is its
/// turn) and answers with the step's done screen (for login's OTP step, the login screen: its
/// session was replaced by the logged-in one). In this process's memory: with several
/// instances, two requests that reach different ones behave as before (the replay rule holds
/// either way; only the answer and the alarm mail differ).
#[derive(Default)]
pub(crate) struct OneAtATime {
    turns: std::sync::Mutex<HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>>,
}

impl OneAtATime {
    /// Wait for this session's turn at `step` (no session cookie: no wait; the handler refuses
    /// such a request anyway). The turn lasts as long as the guard.
    pub(crate) async fn turn(
        &self,
        headers: &HeaderMap,
        cookie_name: &str,
        step: &str,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let sid = crate::web::session::cookie(headers, cookie_name)?;
        let key = format!("{}:{step}", crate::web::session::hash_id(&sid));
        let turn = {
            let mut turns = self
                .turns
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Only sessions with a request in a step are kept.
            turns.retain(|_, t| t.strong_count() > 0);
            match turns.get(&key).and_then(std::sync::Weak::upgrade) {
                Some(t) => t,
                None => {
                    let t = std::sync::Arc::new(tokio::sync::Mutex::new(()));
                    turns.insert(key, std::sync::Arc::downgrade(&t));
                    t
                }
            }
        };
        Some(turn.lock_owned().await)
    }
}

impl std::fmt::Debug for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Site")
            .field("secure", &self.secure)
            .finish_non_exhaustive()
    }
}

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../../templates/base.html")),
    (
        "macros.html",
        include_str!("../../../templates/macros.html"),
    ),
    ("login.html", include_str!("../../../templates/login.html")),
    (
        "login_otp.html",
        include_str!("../../../templates/login_otp.html"),
    ),
    ("top.html", include_str!("../../../templates/top.html")),
    (
        "bop001.html",
        include_str!("../../../templates/bop001.html"),
    ),
    (
        "issue_input.html",
        include_str!("../../../templates/issue_input.html"),
    ),
    (
        "issue_confirm.html",
        include_str!("../../../templates/issue_confirm.html"),
    ),
    (
        "issue_complete.html",
        include_str!("../../../templates/issue_complete.html"),
    ),
    (
        "bok001.html",
        include_str!("../../../templates/bok001.html"),
    ),
    (
        "bok002.html",
        include_str!("../../../templates/bok002.html"),
    ),
    (
        "bos001.html",
        include_str!("../../../templates/bos001.html"),
    ),
    (
        "bos002.html",
        include_str!("../../../templates/bos002.html"),
    ),
    (
        "transfer_input.html",
        include_str!("../../../templates/transfer_input.html"),
    ),
    (
        "transfer_confirm.html",
        include_str!("../../../templates/transfer_confirm.html"),
    ),
    (
        "transfer_done.html",
        include_str!("../../../templates/transfer_done.html"),
    ),
    (
        "download.html",
        include_str!("../../../templates/download.html"),
    ),
    (
        "mail_password_field.html",
        include_str!("../../../templates/mail_password_field.html"),
    ),
    (
        "mail_password_resend.html",
        include_str!("../../../templates/mail_password_resend.html"),
    ),
    (
        "email_input.html",
        include_str!("../../../templates/email_input.html"),
    ),
    (
        "email_confirm.html",
        include_str!("../../../templates/email_confirm.html"),
    ),
    (
        "email_done.html",
        include_str!("../../../templates/email_done.html"),
    ),
    (
        "message.html",
        include_str!("../../../templates/message.html"),
    ),
];

const STATIC: &[(&str, &str, &str)] = &[
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../../../static/app.css"),
    ),
    (
        "softkbd.js",
        "text/javascript; charset=utf-8",
        include_str!("../../../static/softkbd.js"),
    ),
];

impl Site {
    /// # Errors
    /// A setting out of range, or a template that does not parse (caught by the tests).
    pub fn new(cfg: &WebConfig, bank: &BankConfig, public_url: &str) -> anyhow::Result<Site> {
        if cfg.session_max_secs < cfg.session_idle_secs || cfg.session_max_secs > 7 * 86_400 {
            anyhow::bail!("web.session_max_secs must be session_idle_secs..=604800");
        }
        if cfg.metrics_key.as_ref().is_some_and(|k| k.0.len() < 32) {
            anyhow::bail!("web.metrics_key must be at least 32 characters");
        }
        let mut env = Environment::new();
        for (name, src) in TEMPLATES {
            env.add_template(name, src)?;
        }
        let fill = |lang: Lang| {
            catalogue(lang)
                .into_iter()
                .map(|(k, v)| (k, bank.fill(v, lang == Lang::En)))
                .collect()
        };
        Ok(Site {
            env,
            cfg: cfg.clone(),
            bank: bank.clone(),
            words: [fill(Lang::Ja), fill(Lang::En)],
            secure: public_url.starts_with("https://"),
            one_at_a_time: OneAtATime::default(),
            failed_logins: std::sync::Arc::new(crate::web::failure_limit::FailureLimit::new(
                cfg.login_failures_window_secs,
                100_000,
            )),
        })
    }

    /// Wait for this customer session's turn at `step` ([`OneAtATime`]).
    pub(crate) async fn one_at_a_time(
        &self,
        headers: &HeaderMap,
        step: &str,
    ) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        let name = crate::web::session::CUSTOMER_SID.get(self.secure);
        self.one_at_a_time.turn(headers, name, step).await
    }

    /// Render a template; a rendering failure is an internal error page.
    ///
    /// The words are finished here, in one place: the catalogue (`t`) is this site's, with the
    /// institution's name, self-reference and contact line in it, and so are the messages a
    /// handler took from the catalogue (`title`, `message`, `link_text`, field `errors`,
    /// `notice`). Values a customer typed are never filled.
    pub fn render(&self, name: &str, mut ctx: Value) -> Response {
        let en = ctx.get("lang").and_then(Value::as_str) == Some("en");
        if let Value::Object(m) = &mut ctx {
            m.insert("t".into(), json!(self.words[usize::from(en)]));
            m.insert("contact".into(), json!(self.bank.fill("{contact}", en)));
            for key in ["title", "message", "link_text", "notice"] {
                if let Some(Value::String(s)) = m.get_mut(key) {
                    *s = self.bank.fill(s, en);
                }
            }
            if let Some(Value::Object(errors)) = m.get_mut("errors") {
                for v in errors.values_mut() {
                    if let Value::String(s) = v {
                        *s = self.bank.fill(s, en);
                    }
                }
            }
        }
        match self.env.get_template(name).and_then(|t| t.render(&ctx)) {
            Ok(html) => Html(html).into_response(),
            Err(e) => {
                tracing::error!(template = name, error = %e, "template failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

/// The screens' routes (merged at the root).
pub fn router() -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(|| async { Redirect::to("/top") }))
        .route("/lang", get(auth::switch_lang))
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/login/otp", get(auth::otp_form).post(auth::otp))
        .route("/logout", post(auth::logout))
        .route("/top", get(auth::top))
        .route("/otp", get(otp::bop001))
        .route(
            "/otp/issue",
            get(issue::issue_form).post(issue::issue_input),
        )
        .route(
            "/otp/issue/confirm",
            get(issue::issue_confirm_form).post(issue::issue_commit),
        )
        .route("/otp/issue/cancel", post(issue::issue_cancel))
        .route("/otp/issue/complete", get(issue::issue_complete))
        .route("/otp/activate", get(otp::bok001_form).post(otp::bok001))
        .route("/otp/activate/done", get(otp::bok002))
        .route("/otp/deactivate", get(otp::bos001_form).post(otp::bos001))
        .route("/otp/deactivate/done", get(otp::bos002))
        .route("/transfer", get(transfer::input_form).post(transfer::input))
        .route(
            "/transfer/confirm",
            get(transfer::confirm_form).post(transfer::commit),
        )
        .route("/transfer/done", get(transfer::done))
        .route("/dl/{code}", get(download::open))
        .route("/mail-password/resend", post(mail_password::resend))
        .route("/settings/email", get(email::input_form).post(email::input))
        .route(
            "/settings/email/confirm",
            get(email::confirm_form).post(email::commit),
        )
        .route("/settings/email/done", get(email::done))
        .layer(middleware::from_fn(page_headers));
    Router::new()
        .merge(pages)
        .route("/static/{file}", get(static_file))
}

/// Security headers for every screen; `no-store` so no page (or its CSRF token) is cached.
pub(crate) async fn page_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    secure_headers(&mut res);
    res
}

/// The screens' security headers on `res`.
pub(crate) fn secure_headers(res: &mut Response) {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The download page's URL holds its code: never send it on as a referrer.
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

async fn static_file(Path(file): Path<String>) -> Response {
    match STATIC.iter().find(|(name, _, _)| *name == file) {
        Some((_, ctype, body)) => (
            [
                (header::CONTENT_TYPE, *ctype),
                (header::CACHE_CONTROL, "public, max-age=3600"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The language from the `lang` cookie (Japanese unless English was chosen).
pub fn lang_of(headers: &HeaderMap) -> Lang {
    session::cookie(headers, "lang")
        .and_then(|v| Lang::parse(&v))
        .unwrap_or(Lang::Ja)
}

/// What every page gets: the words, the language switch, the session's CSRF token.
pub fn base_ctx(
    lang: Lang,
    path: &str,
    sess: Option<&Session>,
    screen_id: Option<&str>,
    title_key: &str,
) -> Map<String, Value> {
    let mut m = Map::new();
    // `t`, the catalogue, is put in by `Site::render` (it holds the institution's words).
    m.insert("lang".into(), json!(lang.code()));
    m.insert("other_lang".into(), json!(lang.other().code()));
    m.insert(
        "lang_href".into(),
        json!(format!(
            "/lang?to={}&back={}",
            lang.other().code(),
            encode_path(path)
        )),
    );
    m.insert("path".into(), json!(path));
    m.insert("screen_id".into(), json!(screen_id));
    m.insert("title".into(), json!(msg(lang, title_key)));
    m.insert(
        "logged_in".into(),
        json!(sess.is_some_and(Session::is_full)),
    );
    m.insert("csrf".into(), json!(sess.map(|s| s.csrf.clone())));
    m.insert("errors".into(), json!({}));
    m.insert("values".into(), json!({}));
    m
}

/// The screens a language switch may return to (every path `base_ctx` is given).
const SCREEN_PATHS: &[&str] = &[
    "/",
    "/top",
    "/login",
    "/login/otp",
    "/otp",
    "/otp/issue",
    "/otp/issue/confirm",
    "/otp/issue/complete",
    "/otp/activate",
    "/otp/activate/done",
    "/otp/deactivate",
    "/otp/deactivate/done",
    "/transfer",
    "/transfer/confirm",
    "/transfer/done",
    "/settings/email",
    "/settings/email/confirm",
    "/settings/email/done",
];

/// `p` when it is one of the screens' own paths: an allow-list, not a filter of bad
/// characters, because browsers forgive too much (`/\t/host` is followed as `//host`) and a
/// CR or LF cannot go into a `Location` header at all. The download page (`/dl/<code>`) is
/// allowed with a code of URL-safe characters only.
pub(crate) fn screen_path(p: &str) -> Option<&str> {
    if SCREEN_PATHS.contains(&p) {
        return Some(p);
    }
    let code = p.strip_prefix("/dl/")?;
    let ok = (1..=128).contains(&code.len())
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(p)
}

/// Percent-encode a path for a query value (only what a path of ours can hold needs it).
fn encode_path(p: &str) -> String {
    p.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A logged-in customer's request on a screen: the state, the language, the full session.
/// Screen modules add what only they need in their own `impl Ctx` blocks.
pub(crate) struct Ctx {
    pub(crate) st: AppState,
    pub(crate) lang: Lang,
    pub(crate) sess: Session,
}

/// The request's [`Ctx`], or the redirect to login for one without a full session.
pub(crate) async fn ctx(st: AppState, headers: &HeaderMap) -> Result<Ctx, Response> {
    let lang = lang_of(headers);
    let sess = session::require_full(&st, headers).await?;
    Ok(Ctx { st, lang, sess })
}

impl Ctx {
    /// Render a screen with the common context, `extra` and the field errors (422 when any).
    pub(crate) fn page(
        &self,
        template: &str,
        path: &str,
        screen_id: Option<&str>,
        title_key: &str,
        extra: Value,
        errors: &FieldErrors,
    ) -> Response {
        let mut m: Map<String, Value> =
            base_ctx(self.lang, path, Some(&self.sess), screen_id, title_key);
        if let Value::Object(e) = extra {
            m.extend(e);
        }
        m.insert("errors".into(), errors.to_value());
        let mut res = self.st.site.render(template, Value::Object(m));
        if !errors.is_empty() {
            *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        }
        res
    }

    pub(crate) fn error(&self, e: EngineError) -> Response {
        engine_error_page(&self.st, self.lang, Some(&self.sess), e)
    }

    /// The form's CSRF token checked against the session's.
    pub(crate) fn csrf(&self, form: &HashMap<String, String>) -> Result<(), Response> {
        if self.sess.csrf_ok(form) {
            Ok(())
        } else {
            Err(csrf_refused(&self.st, self.lang, Some(&self.sess)))
        }
    }
}

/// The draft's request key, when the confirmation form posted it back (a form of another
/// draft, or of one since replaced, is not this one's 確定する).
pub(crate) fn posted_request_key(draft: &Value, form: &HashMap<String, String>) -> Option<String> {
    let key = draft
        .get("request_key")
        .and_then(Value::as_str)
        .unwrap_or("");
    (form.get("request_key").map(String::as_str) == Some(key)).then(|| key.to_owned())
}

/// Field errors, translated: field → message.
#[derive(Debug, Default)]
pub struct FieldErrors(BTreeMap<&'static str, String>);

impl FieldErrors {
    pub fn add(&mut self, lang: Lang, field: &'static str, key: &str) {
        self.0.entry(field).or_insert_with(|| msg(lang, key));
    }
    pub fn add_text(&mut self, field: &'static str, text: String) {
        self.0.entry(field).or_insert(text);
    }
    /// The confirmation password's error for a check that did not pass; true when it passed.
    pub fn confirmation_passed(
        &mut self,
        st: &AppState,
        lang: Lang,
        check: crate::engine::PasswordCheck,
    ) -> bool {
        use crate::engine::PasswordCheck;
        let field = "confirmation_password";
        match check {
            PasswordCheck::Right => return true,
            PasswordCheck::Wrong => self.add(lang, field, "err_confirmation_wrong"),
            PasswordCheck::Locked { until } => {
                self.add_locked(st, lang, field, "err_confirmation_locked", until);
            }
        }
        false
    }
    /// `key`'s message for a customer whose passwords are locked until `until`, with the
    /// minutes left (rounded up) in place of `{n}`.
    pub fn add_locked(
        &mut self,
        st: &AppState,
        lang: Lang,
        field: &'static str,
        key: &str,
        until: i64,
    ) {
        let now = i64::try_from(st.engine.now()).unwrap_or(i64::MAX);
        let minutes = (until.saturating_sub(now).max(1) + 59) / 60;
        self.add_text(field, msg(lang, key).replace("{n}", &minutes.to_string()));
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn to_value(&self) -> Value {
        json!(self.0)
    }
}

/// See-other redirect (after a POST, so reloading never resubmits).
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
