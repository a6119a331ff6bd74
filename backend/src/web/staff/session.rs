//! Staff sessions, kept apart from customer sessions: their own table and cookie, on the one
//! session mechanism of [`crate::web::session`] (a new id at every login), a shorter idle
//! timeout (`staff.session_idle_secs`) and a shorter absolute lifetime (`staff.session_max_secs`,
//! 8 h: a shift, however active). Every session carries a CSRF token that each form posts
//! back; the login form, before any session, uses a double-submit cookie.

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue};

use crate::engine::sessions::{Found, Lifetime};
use crate::engine::staff::StaffMember;
use crate::engine::EngineError;
use crate::store::StaffSessionRow;
use crate::web::session::{csrf_matches, hash_id, STAFF_LOGIN_CSRF, STAFF_SID};
use crate::web::AppState;

pub use crate::web::session::{cookie, random_hex};

/// A live staff session and its member.
#[derive(Debug, Clone)]
pub struct StaffSession {
    pub id_hash: String,
    pub csrf: String,
    pub member: StaffMember,
}

impl StaffSession {
    /// Whether the form carries this session's CSRF token (constant-time comparison).
    pub fn csrf_ok(&self, form: &HashMap<String, String>) -> bool {
        csrf_matches(&self.csrf, form)
    }
}

/// What the cookie led to.
pub enum Loaded {
    Live(StaffSession),
    /// There was a session, and it timed out.
    Expired,
    None,
}

fn cookie_name(st: &AppState) -> &'static str {
    STAFF_SID.get(st.site.secure)
}

/// The login form's double-submit CSRF cookie.
pub fn login_csrf_cookie_name(st: &AppState) -> &'static str {
    STAFF_LOGIN_CSRF.get(st.site.secure)
}

fn now(st: &AppState) -> i64 {
    i64::try_from(st.engine.now()).unwrap_or(i64::MAX)
}

fn lifetime(st: &AppState) -> Lifetime {
    Lifetime {
        idle_secs: st.staff.cfg.session_idle_secs,
        max_secs: st.staff.cfg.session_max_secs,
    }
}

/// A `Set-Cookie` value with the rules every cookie of ours follows.
pub fn set_cookie(st: &AppState, name: &str, value: &str, max_age: Option<u32>) -> HeaderValue {
    crate::web::session::set_cookie(st.site.secure, name, value, max_age)
}

/// Find the request's staff session and mark it seen; one idle too long is over (and deleted),
/// as is one whose account no longer exists.
///
/// # Errors
/// The database is unavailable.
pub async fn load(st: &AppState, headers: &HeaderMap) -> Result<Loaded, EngineError> {
    let Some(id) = cookie(headers, cookie_name(st)) else {
        return Ok(Loaded::None);
    };
    let id_hash = hash_id(&id);
    Ok(
        match st.engine.staff_session(&id_hash, lifetime(st)).await? {
            Found::Live((row, member)) => Loaded::Live(StaffSession {
                id_hash,
                csrf: row.csrf,
                member,
            }),
            Found::Expired => Loaded::Expired,
            Found::None => Loaded::None,
        },
    )
}

/// Start a session for a staff member who just logged in, and the cookie that carries it.
///
/// # Errors
/// The database is unavailable.
pub async fn create(
    st: &AppState,
    member: StaffMember,
) -> Result<(StaffSession, HeaderValue), EngineError> {
    let id = random_hex(32);
    let row = StaffSessionRow {
        id_hash: hash_id(&id),
        staff_id: member.id,
        csrf: random_hex(32),
        created_at: now(st),
        last_seen_at: now(st),
    };
    st.engine.start_staff_session(&row, lifetime(st)).await?;
    Ok((
        StaffSession {
            id_hash: row.id_hash,
            csrf: row.csrf,
            member,
        },
        set_cookie(st, cookie_name(st), &id, None),
    ))
}

/// End a session; returns the cookie that removes it.
///
/// # Errors
/// The database is unavailable.
pub async fn destroy(st: &AppState, sess: &StaffSession) -> Result<HeaderValue, EngineError> {
    st.engine.end_staff_session(&sess.id_hash).await?;
    Ok(set_cookie(st, cookie_name(st), "", Some(0)))
}
