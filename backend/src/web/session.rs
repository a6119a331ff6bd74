//! What every web session of ours shares, customer and staff alike (DESIGN §6): one mechanism,
//! written once.
//!
//! - The id is 32 random bytes from the OS, in an `HttpOnly`, `SameSite=Strict` cookie, `Secure`
//!   and `__Host-`-prefixed when served over TLS; the database keeps only its SHA-256, so a
//!   stolen database holds no live session, and sessions survive restarts and span instances.
//! - Every session carries a CSRF token each form posts back; a login form, before there is a
//!   session, uses a double-submit cookie. Both are compared in constant time.
//!
//! What differs by kind stays with the kind: the customer's stages and draft
//! (`pages::session`), the staff member and the shift-long lifetime (`staff::session`), and
//! each kind's table.

use std::collections::HashMap;

use axum::http::{header, HeaderMap, HeaderValue};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A cookie's name: plain over HTTP (development, tests), `__Host-` over TLS (the prefix
/// requires `Secure`, a path of `/` and no domain: the cookie cannot be planted by a sibling
/// host).
#[derive(Debug, Clone, Copy)]
pub struct CookieName {
    plain: &'static str,
    host: &'static str,
}

impl CookieName {
    pub const fn new(plain: &'static str, host: &'static str) -> CookieName {
        CookieName { plain, host }
    }

    pub fn get(self, secure: bool) -> &'static str {
        if secure {
            self.host
        } else {
            self.plain
        }
    }
}

/// The customer's session id.
pub const CUSTOMER_SID: CookieName = CookieName::new("sid", "__Host-sid");
/// The customer login form's double-submit CSRF token.
pub const CUSTOMER_LOGIN_CSRF: CookieName = CookieName::new("login_csrf", "__Host-login_csrf");
/// A browser where the customer completed a login before (`engine::devices`): no session, no
/// secret, bound to the login ID.
pub const KNOWN_DEVICE: CookieName = CookieName::new("device", "__Host-device");
/// The staff member's session id.
pub const STAFF_SID: CookieName = CookieName::new("staff_sid", "__Host-staff_sid");
/// The staff login form's double-submit CSRF token.
pub const STAFF_LOGIN_CSRF: CookieName = CookieName::new("staff_login", "__Host-staff_login");

/// A cookie's value from the request.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value with the rules every cookie of ours follows (`max_age` 0 removes it).
pub fn set_cookie(secure: bool, name: &str, value: &str, max_age: Option<u32>) -> HeaderValue {
    let tls = if secure { "; Secure" } else { "" };
    let age = max_age.map_or(String::new(), |a| format!("; Max-Age={a}"));
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict{age}{tls}"
    ))
    // Only a value with a character a header cannot hold gets here (ours are hex): remove it.
    .unwrap_or_else(|_| HeaderValue::from_static("sid=; Path=/; Max-Age=0"))
}

/// `n` random bytes from the OS, hex-encoded: session ids, CSRF tokens, error ids.
pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// What the database keeps of a session id.
pub fn hash_id(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

/// Whether `form` posted back `expected` as its `csrf` field (constant time; an empty token
/// never matches).
pub fn csrf_matches(expected: &str, form: &HashMap<String, String>) -> bool {
    form.get("csrf").is_some_and(|posted| {
        !posted.is_empty() && bool::from(posted.as_bytes().ct_eq(expected.as_bytes()))
    })
}

/// Whether a login form posted back the token of its double-submit cookie `name`.
pub fn login_csrf_ok(headers: &HeaderMap, name: &str, form: &HashMap<String, String>) -> bool {
    cookie(headers, name).is_some_and(|expected| csrf_matches(&expected, form))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_follow_one_rule() {
        assert_eq!(CUSTOMER_SID.get(true), "__Host-sid");
        assert_eq!(STAFF_SID.get(false), "staff_sid");
        let c = set_cookie(true, "__Host-sid", "ab", None);
        assert_eq!(
            c.to_str().unwrap(),
            "__Host-sid=ab; Path=/; HttpOnly; SameSite=Strict; Secure"
        );
        let gone = set_cookie(false, "sid", "", Some(0));
        assert_eq!(
            gone.to_str().unwrap(),
            "sid=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }

    #[test]
    fn csrf_tokens_must_match_exactly_and_never_empty() {
        let form = |v: &str| HashMap::from([("csrf".to_owned(), v.to_owned())]);
        assert!(csrf_matches("abc", &form("abc")));
        assert!(!csrf_matches("abc", &form("abd")));
        assert!(!csrf_matches("", &form("")));
        assert!(!csrf_matches("abc", &HashMap::new()));
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; staff_login=tok"),
        );
        assert!(login_csrf_ok(&h, "staff_login", &form("tok")));
        assert!(!login_csrf_ok(&h, "login_csrf", &form("tok")));
        assert_eq!(cookie(&h, "a").as_deref(), Some("1"));
    }
}
