//! Customer sessions, on the one session mechanism of [`crate::web::session`] (the cookie, its
//! hashed id, the CSRF token). A session idle longer than `web.session_idle_secs` is over, and so is one older than
//! `web.session_max_secs` (12 h: an absolute lifetime, however active). A session row is
//! written only by a login (never by a visit: `GET /login` writes nothing, its form's CSRF
//! token is a double-submit cookie), and the id is renewed at each login step. Every session
//! carries a CSRF token that each form posts back.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use serde_json::Value;

use super::see_other;
use crate::engine::sessions::{Found, Lifetime};
use crate::engine::{Actor, EngineError};
use crate::store::SessionRow;
use crate::web::session::{
    csrf_matches, hash_id, random_hex, set_cookie, CUSTOMER_LOGIN_CSRF, CUSTOMER_SID, KNOWN_DEVICE,
};
use crate::web::AppState;

pub use crate::web::session::cookie;

/// Session stages (a session exists only after a login: rows of the former "anon" stage, from
/// before that rule, load as not logged in and age out).
/// Login password accepted; the OTP authentication screen is pending.
pub const OTP: &str = "otp";
pub const FULL: &str = "full";

/// A live session.
#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: String,
    pub customer_id: Option<i64>,
    pub stage: String,
    pub csrf: String,
    /// The issuance or transfer in progress.
    pub draft: Option<Value>,
}

impl Session {
    pub fn is_full(&self) -> bool {
        self.stage == FULL && self.customer_id.is_some()
    }

    /// The customer of a logged-in session (0 for none: no customer has id 0).
    pub fn customer(&self) -> i64 {
        self.customer_id.unwrap_or(0)
    }

    /// Whether the form carries this session's CSRF token (constant-time comparison).
    pub fn csrf_ok(&self, form: &HashMap<String, String>) -> bool {
        csrf_matches(&self.csrf, form)
    }

    pub fn draft_str(&self, key: &str) -> Option<String> {
        self.draft
            .as_ref()
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    }
}

/// What the cookie led to.
pub enum Loaded {
    Live(Session),
    /// There was a session, and it timed out.
    Expired,
    None,
}

fn cookie_name(st: &AppState) -> &'static str {
    CUSTOMER_SID.get(st.site.secure)
}

/// A fresh CSRF token for the login form and the cookie that pairs with it.
pub fn login_csrf(st: &AppState) -> (String, HeaderValue) {
    let token = random_hex(32);
    let name = CUSTOMER_LOGIN_CSRF.get(st.site.secure);
    let cookie = set_cookie(st.site.secure, name, &token, Some(1800));
    (token, cookie)
}

/// Whether the login form posted back the token of its cookie (constant-time comparison).
pub fn login_csrf_ok(st: &AppState, headers: &HeaderMap, form: &HashMap<String, String>) -> bool {
    crate::web::session::login_csrf_ok(headers, CUSTOMER_LOGIN_CSRF.get(st.site.secure), form)
}

/// The cookie that removes the login form's CSRF cookie.
pub fn clear_login_csrf(st: &AppState) -> HeaderValue {
    set_cookie(
        st.site.secure,
        CUSTOMER_LOGIN_CSRF.get(st.site.secure),
        "",
        Some(0),
    )
}

/// The browser, if it is one where `login_id` logged in before (`engine::devices`).
pub fn known_device(
    st: &AppState,
    headers: &HeaderMap,
    login_id: &str,
) -> Option<crate::engine::KnownDevice> {
    crate::web::session::cookie(headers, KNOWN_DEVICE.get(st.site.secure))
        .and_then(|c| st.engine.known_device(login_id, &c))
}

/// The known-device cookie for the customer, for a login that is complete (the password, and
/// the code when OTP is in use; each login renews it); `None` if it cannot be made (the login
/// goes on without it).
pub async fn known_device_cookie(st: &AppState, customer_id: i64) -> Option<HeaderValue> {
    match st.engine.known_device_cookie(customer_id).await {
        Ok(value) => Some(set_cookie(
            st.site.secure,
            KNOWN_DEVICE.get(st.site.secure),
            &value,
            Some(crate::engine::KNOWN_DEVICE_SECS),
        )),
        Err(e) => {
            tracing::error!(error = %e, "known-device cookie not issued");
            None
        }
    }
}

fn now(st: &AppState) -> i64 {
    i64::try_from(st.engine.now()).unwrap_or(i64::MAX)
}

fn lifetime(st: &AppState) -> Lifetime {
    Lifetime {
        idle_secs: st.site.cfg.session_idle_secs,
        max_secs: st.site.cfg.session_max_secs,
    }
}

/// Find the request's session and mark it seen; one idle too long is over (and deleted).
///
/// # Errors
/// The database is unavailable.
pub async fn load(st: &AppState, headers: &HeaderMap) -> Result<Loaded, EngineError> {
    let Some(id) = cookie(headers, cookie_name(st)) else {
        return Ok(Loaded::None);
    };
    let id_hash = hash_id(&id);
    Ok(
        match st.engine.customer_session(&id_hash, lifetime(st)).await? {
            Found::Live(row) => Loaded::Live(Session {
                id_hash,
                customer_id: row.customer_id,
                stage: row.stage,
                csrf: row.csrf,
                draft: row.draft.and_then(|d| serde_json::from_str(&d).ok()),
            }),
            Found::Expired => Loaded::Expired,
            Found::None => Loaded::None,
        },
    )
}

/// Start a new session (a new id: login renews it) and the cookie that carries it.
///
/// # Errors
/// The database is unavailable.
pub async fn create(
    st: &AppState,
    customer_id: Option<i64>,
    stage: &str,
) -> Result<(Session, HeaderValue), EngineError> {
    let id = random_hex(32);
    let row = SessionRow {
        id_hash: hash_id(&id),
        customer_id,
        stage: stage.to_owned(),
        csrf: random_hex(32),
        created_at: now(st),
        last_seen_at: now(st),
        draft: None,
    };
    st.engine.start_customer_session(&row, lifetime(st)).await?;
    let cookie = set_cookie(st.site.secure, cookie_name(st), &id, None);
    Ok((
        Session {
            id_hash: row.id_hash,
            customer_id,
            stage: row.stage,
            csrf: row.csrf,
            draft: None,
        },
        cookie,
    ))
}

/// End a session.
///
/// # Errors
/// The database is unavailable.
pub async fn destroy(st: &AppState, sess: &Session) -> Result<(), EngineError> {
    st.engine.end_customer_session(&sess.id_hash).await?;
    Ok(())
}

/// The cookie that removes the session cookie.
pub fn clear_cookie(st: &AppState) -> HeaderValue {
    set_cookie(st.site.secure, cookie_name(st), "", Some(0))
}

/// Save (or clear) the work in progress.
///
/// # Errors
/// The database is unavailable.
pub async fn set_draft(
    st: &AppState,
    sess: &mut Session,
    draft: Option<Value>,
) -> Result<(), EngineError> {
    let text = draft.as_ref().map(Value::to_string);
    st.engine
        .set_session_draft(&sess.id_hash, text.as_deref())
        .await?;
    sess.draft = draft;
    Ok(())
}

/// The logged-in session, or the redirect that a page without one answers with: the login
/// screen (saying so after a timeout), or the pending OTP authentication.
///
/// # Errors
/// The redirect (or an error page) to send instead.
pub async fn require_full(st: &AppState, headers: &HeaderMap) -> Result<Session, Response> {
    match load(st, headers).await {
        Ok(Loaded::Live(s)) if s.is_full() => Ok(s),
        Ok(Loaded::Live(s)) if s.stage == OTP => Err(see_other("/login/otp")),
        Ok(Loaded::Expired) => Err(see_other("/login?timeout=1")),
        Ok(_) => Err(see_other("/login")),
        Err(e) => Err(super::engine_error_page(
            st,
            super::lang_of(headers),
            None,
            e,
        )),
    }
}

/// The audit actor for a customer's request.
pub fn actor(sess: &Session, ip: &crate::web::ClientIp) -> Actor {
    Actor::new(format!("customer:{}", sess.customer()), ip.0.clone())
}
