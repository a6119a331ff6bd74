//! Login (login ID + login password), the OTP authentication screen when OTP is in use, the
//! top page, logout, and the language switch.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::i18n::{msg, Lang};
use super::otp::{check_code, status_key, CodeCheck};
use super::session::{self, Loaded, Session, FULL, OTP};
use super::{base_ctx, csrf_refused, engine_error_page, lang_of, see_other, FieldErrors};
use crate::domain::Purpose;
use crate::engine::Actor;
use crate::engine::Login;
use crate::web::{AppState, ClientIp};

fn with_cookie(mut res: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(c) = cookie {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

/// `/lang?to=en&back=/path`: remember the language, go back: only to one of the screens'
/// own paths ([`super::screen_path`]), anything else goes to `/top`.
pub async fn switch_lang(Query(q): Query<HashMap<String, String>>) -> Response {
    let lang = q.get("to").and_then(|l| Lang::parse(l)).unwrap_or(Lang::Ja);
    let back = q
        .get("back")
        .and_then(|b| super::screen_path(b))
        .unwrap_or("/top");
    let mut res = see_other(back);
    if let Ok(v) = HeaderValue::from_str(&format!(
        "lang={}; Path=/; SameSite=Strict; Max-Age=31536000",
        lang.code()
    )) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// The login form with a fresh double-submit CSRF token (its cookie set on the response).
fn render_login(
    st: &AppState,
    lang: Lang,
    notice: Option<String>,
    errors: &FieldErrors,
    login_id: &str,
) -> Response {
    let (csrf, cookie) = session::login_csrf(st);
    let mut ctx = base_ctx(lang, "/login", None, None, "login_title");
    ctx.insert("csrf".into(), json!(csrf));
    ctx.insert("notice".into(), json!(notice));
    ctx.insert("errors".into(), errors.to_value());
    ctx.insert("values".into(), json!({ "login_id": login_id }));
    let mut res = st.site.render("login.html", Value::Object(ctx));
    if !errors.is_empty() {
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    with_cookie(res, Some(cookie))
}

/// A login refused by the client's failure limit, before its password is checked: 429 with
/// the wait in minutes; the first refusal of a spray in a window is audited.
async fn login_refused(
    st: &AppState,
    lang: Lang,
    actor: &Actor,
    client: &str,
    login_id: &str,
    now: u64,
    refusal: crate::web::failure_limit::Refusal,
) -> Response {
    if refusal.report {
        let at = i64::try_from(now).unwrap_or(i64::MAX);
        let detail = json!({ "client": client, "retry_after_secs": refusal.retry_after });
        let audited = st
            .engine
            .audit_now(crate::store::NewAudit {
                detail: Some(detail.to_string()),
                ..actor.audit("login_password", "rate_limited", at)
            })
            .await;
        if let Err(e) = audited {
            return engine_error_page(st, lang, None, e);
        }
    }
    let mut errors = FieldErrors::default();
    let until = i64::try_from(now.saturating_add(refusal.retry_after)).unwrap_or(i64::MAX);
    errors.add_locked(st, lang, "login_id", "login_throttled", until);
    let mut res = render_login(st, lang, None, &errors, login_id);
    *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    res
}

/// The login form. Writes nothing: no session exists before a login (a stream of visits
/// costs the database nothing); the form's CSRF token is a double-submit cookie.
pub async fn login_form(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let lang = lang_of(&headers);
    let timed_out = match session::load(&st, &headers).await {
        Ok(Loaded::Live(s)) if s.is_full() => return see_other("/top"),
        Ok(other) => matches!(other, Loaded::Expired),
        Err(e) => return engine_error_page(&st, lang, None, e),
    };
    let notice = if timed_out || q.contains_key("timeout") {
        Some(msg(lang, "session_timeout"))
    } else if q.contains_key("bye") {
        Some(msg(lang, "logged_out"))
    } else {
        None
    };
    render_login(&st, lang, notice, &FieldErrors::default(), "")
}

/// Record the failure of a customer login `attempt` and end it (`web::failure_limit`), then
/// forget old failures on a task of its own (a purge waiting on a lock holds no answer).
async fn record_login_failure(
    st: AppState,
    attempt: crate::web::failure_limit::Attempt,
    window: u64,
) -> Result<(), crate::engine::EngineError> {
    let (limits, key) = (attempt.limit(), attempt.key().to_owned());
    let gate = limits.gate(&key).await;
    let at = st.engine.now();
    let recorded = st.engine.record_login_failure(&key, at).await;
    // Failed or not, the attempt ends with the gate still held; when the database did not take
    // the failure (it took the login's own audit a moment before) it ends uncounted.
    attempt.failed(gate);
    recorded?;
    let engine = st.engine.clone();
    tokio::spawn(async move { engine.forget_old_login_failures(at, window).await });
    Ok(())
}

pub async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = lang_of(&headers);
    if !session::login_csrf_ok(&st, &headers, &form) {
        return csrf_refused(&st, lang, None);
    }
    let login_id = form.get("login_id").map_or("", |s| s.trim());
    let password = Zeroizing::new(form.get("password").cloned().unwrap_or_default());
    let mut errors = FieldErrors::default();
    if login_id.is_empty() {
        errors.add(lang, "login_id", "err_login_id");
    }
    if password.is_empty() {
        errors.add(lang, "password", "err_login_password");
    }
    if !errors.is_empty() {
        return render_login(&st, lang, None, &errors, login_id);
    }
    let actor = Actor::new("customer", ip.0.clone());
    // Failed logins per client (one address spraying a password across login IDs, each below
    // its own lock): attempts in flight count as possible failures until they end, so a burst
    // sent at once cannot pass the limit (`web::failure_limit`).
    let (client, limit) = (
        crate::web::app_api::client_key(ip.0.as_deref()),
        st.site.cfg.login_failures_per_client,
    );
    // A browser where this login ID logged in before is counted apart from its network (a
    // carrier's address shared with a sprayer): under the same limit, in flight and failed,
    // keyed by the login ID; its wrong passwords count on the known devices' lock.
    let device = session::known_device(&st, &headers, login_id);
    let key = match device {
        Some(_) => format!("known-device:{login_id}"),
        None => client,
    };
    let window = st.site.cfg.login_failures_window_secs;
    let limits = &st.site.failed_logins;
    // A client that cannot be admitted is refused before the gate and the database.
    let now = st.engine.now();
    let pending = match limits.precheck(&key, limit, now) {
        Ok(p) => p,
        Err(refusal) => {
            return login_refused(&st, lang, &actor, &key, login_id, now, refusal).await
        }
    };
    // The client's gate is held from the read of its failures to the admission, and from the
    // record of a failure to the end of its attempt: one exact count (`web::failure_limit`).
    let Some(gate) = limits.gate(&key).await else {
        return engine_error_page(&st, lang, None, crate::engine::EngineError::Unavailable);
    };
    let now = st.engine.now();
    let recorded = match st.engine.login_failures(&key, now, window).await {
        Ok((failures, oldest)) => crate::web::failure_limit::Recorded { failures, oldest },
        Err(e) => return engine_error_page(&st, lang, None, e),
    };
    let attempt = limits.begin(pending, limit, now, recorded, &gate);
    drop(gate);
    let attempt = match attempt {
        Ok(a) => a,
        Err(refusal) => {
            return login_refused(&st, lang, &actor, &key, login_id, now, refusal).await
        }
    };
    let answer = st
        .engine
        .customer_login(login_id, password, &actor, device.as_ref())
        .await;
    if matches!(answer, Ok(Login::Invalid | Login::Locked { .. })) {
        // Recorded on a task of its own: a client that leaves (or a request timeout) while the
        // failure waits for its gate or the database cannot take it back uncounted. The answer
        // waits for it: "unavailable" when the database did not take it.
        let recorded = tokio::spawn(record_login_failure(st.clone(), attempt, window)).await;
        match recorded {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return engine_error_page(&st, lang, None, e),
            Err(_) => {
                return engine_error_page(&st, lang, None, crate::engine::EngineError::Unavailable)
            }
        }
    } else {
        drop(attempt);
    }
    let customer = match answer {
        Ok(Login::Ok(c)) => c,
        Ok(Login::Invalid) => {
            errors.add(lang, "login_id", "login_failed");
            return render_login(&st, lang, None, &errors, login_id);
        }
        Ok(Login::Locked { until }) => {
            errors.add_locked(&st, lang, "login_id", "login_locked", until);
            return render_login(&st, lang, None, &errors, login_id);
        }
        Err(e) => return engine_error_page(&st, lang, None, e),
    };
    let overview = match st.engine.overview(customer.id).await {
        Ok(o) => o,
        Err(e) => return engine_error_page(&st, lang, None, e),
    };
    // A new session id at login (no fixation); a session left from before is gone.
    if let Ok(Loaded::Live(old)) = session::load(&st, &headers).await {
        if let Err(e) = session::destroy(&st, &old).await {
            return engine_error_page(&st, lang, None, e);
        }
    }
    let stage = if overview.otp_active() { OTP } else { FULL };
    match session::create(&st, Some(customer.id), stage).await {
        Ok((_, cookie)) => {
            let res = with_cookie(
                see_other(if stage == OTP { "/login/otp" } else { "/top" }),
                Some(cookie),
            );
            // The login is complete without OTP: this browser is now a known device.
            let res = if stage == FULL {
                with_cookie(res, session::known_device_cookie(&st, customer.id).await)
            } else {
                res
            };
            with_cookie(res, Some(session::clear_login_csrf(&st)))
        }
        Err(e) => engine_error_page(&st, lang, None, e),
    }
}

/// The OTP authentication screen. With the token locked it says so instead of asking for a
/// code: what happened, when the lock lifts (or that the bank must lift it), the bank's contact
/// line, and the way out (log out); the customer is never left on a form that cannot succeed.
async fn render_otp(st: &AppState, lang: Lang, sess: &Session, errors: &FieldErrors) -> Response {
    let overview = match st.engine.overview(sess.customer()).await {
        Ok(o) => o,
        Err(e) => return engine_error_page(st, lang, Some(sess), e),
    };
    let mut ctx = base_ctx(lang, "/login/otp", Some(sess), None, "otp_auth_title");
    if let Some(t) = overview.token.as_ref().filter(|t| t.locked) {
        let when = t.locked_until.map(|until| {
            let at = chrono::DateTime::from_timestamp(until, 0)
                .unwrap_or_default()
                .with_timezone(&crate::domain::jst());
            let at = match lang {
                Lang::Ja => at.format("%Y年%m月%d日 %H:%M").to_string(),
                Lang::En => at.format("%Y-%m-%d %H:%M (Japan time)").to_string(),
            };
            msg(lang, "otp_locked_until").replace("{at}", &at)
        });
        ctx.insert("lock".into(), json!(true));
        // `notice` (not `lock.…`): the site fills the bank's words into it.
        ctx.insert(
            "notice".into(),
            json!(when.unwrap_or_else(|| msg(lang, "otp_locked_call"))),
        );
        ctx.insert("title".into(), json!(msg(lang, "otp_locked_title")));
        let mut res = st.site.render("login_otp.html", Value::Object(ctx));
        *res.status_mut() = StatusCode::FORBIDDEN;
        return res;
    }
    ctx.insert("errors".into(), errors.to_value());
    let mut res = st.site.render("login_otp.html", Value::Object(ctx));
    if !errors.is_empty() {
        *res.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    res
}

async fn otp_session(st: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    match session::load(st, headers).await {
        Ok(Loaded::Live(s)) if s.stage == OTP && s.customer_id.is_some() => Ok(s),
        Ok(Loaded::Live(s)) if s.is_full() => Err(see_other("/top")),
        Ok(Loaded::Expired) => Err(see_other("/login?timeout=1")),
        Ok(_) => Err(see_other("/login")),
        Err(e) => Err(engine_error_page(st, lang_of(headers), None, e)),
    }
}

pub async fn otp_form(State(st): State<AppState>, headers: HeaderMap) -> Response {
    match otp_session(&st, &headers).await {
        Ok(sess) => render_otp(&st, lang_of(&headers), &sess, &FieldErrors::default()).await,
        Err(r) => r,
    }
}

pub async fn otp(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = lang_of(&headers);
    // A double submit waits for the first, then finds this session replaced by the logged-in
    // one (and is sent to log in again, not shown a replayed code).
    let site = st.site.clone();
    let _turn = site.one_at_a_time(&headers, "login-otp").await;
    let sess = match otp_session(&st, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    if !sess.csrf_ok(&form) {
        return csrf_refused(&st, lang, Some(&sess));
    }
    let overview = match st.engine.overview(sess.customer()).await {
        Ok(o) => o,
        Err(e) => return engine_error_page(&st, lang, Some(&sess), e),
    };
    let mut errors = FieldErrors::default();
    let passed = match overview.token.as_ref().filter(|_| overview.otp_active()) {
        // OTP use ended meanwhile: login has no OTP screen any more.
        None => true,
        Some(token) => {
            match check_code(
                &st,
                lang,
                &sess,
                &token.user_id,
                form.get("code"),
                super::otp::CodeFor::Totp(Purpose::Login),
                &ip,
                &mut errors,
            )
            .await
            {
                Ok(CodeCheck::Passed) => true,
                Ok(CodeCheck::Failed) => false,
                Err(r) => return r,
            }
        }
    };
    if !passed {
        return render_otp(&st, lang, &sess, &errors).await;
    }
    if let Err(e) = session::destroy(&st, &sess).await {
        return engine_error_page(&st, lang, None, e);
    }
    match session::create(&st, sess.customer_id, FULL).await {
        Ok((_, cookie)) => {
            // The login is complete: this browser is now a known device.
            let res = with_cookie(see_other("/top"), Some(cookie));
            with_cookie(
                res,
                session::known_device_cookie(&st, sess.customer()).await,
            )
        }
        Err(e) => engine_error_page(&st, lang, None, e),
    }
}

pub async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let lang = lang_of(&headers);
    match session::load(&st, &headers).await {
        Ok(Loaded::Live(sess)) => {
            if !sess.csrf_ok(&form) {
                return csrf_refused(&st, lang, Some(&sess));
            }
            // Mailed passwords end at logout (issue 19).
            if let Err(e) = st.engine.end_mail_passwords(&sess.id_hash).await {
                return engine_error_page(&st, lang, None, e);
            }
            if let Err(e) = session::destroy(&st, &sess).await {
                return engine_error_page(&st, lang, None, e);
            }
            let mut res = see_other("/login?bye=1");
            res.headers_mut()
                .append(header::SET_COOKIE, session::clear_cookie(&st));
            res
        }
        Ok(_) => see_other("/login"),
        Err(e) => engine_error_page(&st, lang, None, e),
    }
}

pub async fn top(State(st): State<AppState>, headers: HeaderMap) -> Response {
    let lang = lang_of(&headers);
    let sess = match session::require_full(&st, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let customer = match st.engine.customer(sess.customer()).await {
        Ok(Some(c)) => c,
        Ok(None) => return see_other("/login"),
        Err(e) => return engine_error_page(&st, lang, Some(&sess), e),
    };
    let overview = match st.engine.overview(sess.customer()).await {
        Ok(o) => o,
        Err(e) => return engine_error_page(&st, lang, Some(&sess), e),
    };
    let mut ctx = base_ctx(lang, "/top", Some(&sess), None, "top_title");
    ctx.insert(
        "customer_name".into(),
        json!(if customer.name.is_empty() {
            customer.login_id.clone()
        } else {
            customer.name.clone()
        }),
    );
    ctx.insert(
        "status".into(),
        json!(msg(
            lang,
            status_key(overview.token.as_ref().map(|t| t.state))
        )),
    );
    st.site
        .render("top.html", Value::Object(ctx))
        .into_response()
}
