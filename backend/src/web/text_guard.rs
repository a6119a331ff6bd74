//! One check, at the edge, of every piece of text a request carries: path segments, query
//! values, form fields and JSON strings (and their names). Refused with a 400, before any
//! handler or database sees them:
//!
//! - control characters (C0 including NUL, DEL, C1) and the bidirectional-text controls that
//!   can make a name display as something else;
//! - bytes that are not UTF-8 (a percent-encoded lone surrogate, for one; in JSON a lone
//!   `\uD800` escape is already a syntax error);
//! - values longer than [`MAX_CHARS`] characters (every real field is far shorter).
//!
//! Without it a NUL byte was stored as is on SQLite and refused by PostgreSQL's encoding check,
//! which the store reported as an outage: 503 "temporarily unavailable" with Retry-After, the
//! same input behaving differently on the two databases (issue 13).
//!
//! The answer speaks the caller's language: `{code: "INVALID_TEXT"}` JSON on the APIs, the
//! console's message page under `/staff`, and the customer screens' Japanese (or English)
//! message page elsewhere. It never echoes the value.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::AppState;

/// The longest text value accepted anywhere, in characters.
pub const MAX_CHARS: usize = 1024;

/// Why a request was refused: the name of the offending field, if it can be named safely.
#[derive(Debug, PartialEq, Eq)]
struct BadText {
    field: String,
}

impl BadText {
    fn at(name: &str) -> BadText {
        // Only a plain field name is echoed back (the name may itself be the bad text).
        let safe = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.[]/".contains(&b));
        BadText {
            field: if safe {
                name.to_owned()
            } else {
                "a field name".to_owned()
            },
        }
    }
}

/// A character no text field may hold.
fn forbidden(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn text_ok(s: &str) -> bool {
    // Byte length bounds the character count from above: most values skip the count.
    (s.len() <= MAX_CHARS || s.chars().count() <= MAX_CHARS) && !s.chars().any(forbidden)
}

/// Percent-decoding (and `+` as space in forms) to bytes; malformed escapes stay as they are.
fn percent_decode(raw: &[u8], plus_is_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'%' if i + 2 < raw.len() => {
                let hex = std::str::from_utf8(&raw[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn decoded_ok(raw: &[u8], plus_is_space: bool) -> bool {
    std::str::from_utf8(&percent_decode(raw, plus_is_space)).is_ok_and(text_ok)
}

/// `a=1&b=2` (a query string or a form body).
fn check_urlencoded(raw: &[u8]) -> Result<(), BadText> {
    for pair in raw.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &b""[..]),
        };
        let name_text = String::from_utf8(percent_decode(name, true)).ok();
        let label = name_text.as_deref().unwrap_or("");
        if !decoded_ok(name, true) {
            return Err(BadText::at(""));
        }
        if !decoded_ok(value, true) {
            return Err(BadText::at(label));
        }
    }
    Ok(())
}

fn check_path(path: &str) -> Result<(), BadText> {
    for segment in path.split('/') {
        if !decoded_ok(segment.as_bytes(), false) {
            return Err(BadText::at("path"));
        }
    }
    Ok(())
}

/// A JSON body, walked as it is parsed (no tree of values is built: the handler parses the body
/// again into its own type, issue 15). Every string and every member name is checked; the
/// offending field is named by its dotted path (`a.b`, an array's items by the array's name),
/// or as "a field name" when the name itself is bad. A body that is not JSON passes: the
/// handler's extractor names that error.
fn check_json(body: &[u8]) -> Result<(), BadText> {
    use serde::de::DeserializeSeed as _;
    let mut de = serde_json::Deserializer::from_slice(body);
    match Walk
        .deserialize(&mut de)
        .and_then(|found| de.end().map(|()| found))
    {
        Ok(Some(Bad::Name)) => Err(BadText::at("")),
        Ok(Some(Bad::Value(path))) => Err(BadText::at(&path)),
        Ok(None) | Err(_) => Ok(()),
    }
}

/// The first bad text a walk found.
enum Bad {
    /// A member name.
    Name,
    /// A string value, at this dotted path ("" at the top).
    Value(String),
}

/// Walks one JSON value (and everything in it), checking its text.
struct Walk;

impl<'de> serde::de::DeserializeSeed<'de> for Walk {
    type Value = Option<Bad>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Option<Bad>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk {
    type Value = Option<Bad>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Option<Bad>, E> {
        Ok((!text_ok(v)).then(|| Bad::Value(String::new())))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Option<Bad>, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Option<Bad>, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Option<Bad>, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Option<Bad>, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Option<Bad>, E> {
        Ok(None)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Option<Bad>, A::Error> {
        let mut first = None;
        while let Some(found) = seq.next_element_seed(Walk)? {
            first = first.or(found);
        }
        Ok(first)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Option<Bad>, A::Error> {
        let mut first = None;
        while let Some(name) = map.next_key_seed(Name)? {
            let found = map.next_value_seed(Walk)?;
            if first.is_some() {
                continue;
            }
            first = match (name, found) {
                (None, _) => Some(Bad::Name),
                (Some(_), Some(Bad::Name)) => Some(Bad::Name),
                (Some(name), Some(Bad::Value(inner))) => Some(Bad::Value(if inner.is_empty() {
                    name.into_owned()
                } else {
                    format!("{name}.{inner}")
                })),
                (Some(_), None) => None,
            };
        }
        Ok(first)
    }
}

/// A member name: borrowed from the body when it has no escapes; `None` when it is bad text.
struct Name;

impl<'de> serde::de::DeserializeSeed<'de> for Name {
    type Value = Option<std::borrow::Cow<'de, str>>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Name {
    type Value = Option<std::borrow::Cow<'de, str>>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a member name")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(text_ok(v).then_some(std::borrow::Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(text_ok(v).then(|| std::borrow::Cow::Owned(v.to_owned())))
    }
}

#[derive(Clone, Copy)]
enum Area {
    Api,
    Staff,
    Screens,
}

fn area(path: &str) -> Area {
    if path.starts_with("/host/") || path.starts_with("/app/") {
        Area::Api
    } else if path == "/staff" || path.starts_with("/staff/") {
        Area::Staff
    } else {
        Area::Screens
    }
}

fn refuse(st: &AppState, parts: &Parts, bad: &BadText) -> Response {
    tracing::warn!(field = %bad.field, "request refused: control characters, invalid UTF-8 or an over-long value");
    match area(parts.uri.path()) {
        Area::Api => ApiError::new(
            StatusCode::BAD_REQUEST,
            "INVALID_TEXT",
            format!(
                "{}: control characters, invalid UTF-8 and values over {MAX_CHARS} characters are not accepted",
                bad.field
            ),
        )
        .into_response(),
        Area::Staff => super::staff::text_refused(st, &parts.headers),
        Area::Screens => super::pages::text_refused(st, &parts.headers),
    }
}

/// A body over the limit (or one that broke off): 413 in the caller's language, JSON on the
/// APIs, the console's or the screens' message page elsewhere.
fn too_large(st: &AppState, parts: &Parts) -> Response {
    match area(parts.uri.path()) {
        Area::Api => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "BODY_TOO_LARGE",
            "the body is too large",
        )
        .into_response(),
        Area::Staff => super::staff::too_large(st, &parts.headers),
        Area::Screens => super::pages::too_large(st, &parts.headers),
    }
}

/// The middleware: check, then hand the request on with its body intact.
pub(crate) async fn refuse_bad_text(
    State(st): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let (parts, body) = req.into_parts();
    if let Err(bad) = check_path(parts.uri.path()) {
        return refuse(&st, &parts, &bad);
    }
    if let Some(q) = parts.uri.query() {
        if let Err(bad) = check_urlencoded(q.as_bytes()) {
            return refuse(&st, &parts, &bad);
        }
    }
    let ctype = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    let form = ctype == "application/x-www-form-urlencoded";
    let json = ctype == "application/json"
        || (ctype.starts_with("application/") && ctype.ends_with("+json"));
    if !form && !json {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let bytes: Bytes = match axum::body::to_bytes(body, st.body_limit).await {
        Ok(b) => b,
        Err(_) => return too_large(&st, &parts),
    };
    let checked = if form {
        check_urlencoded(&bytes)
    } else {
        check_json(&bytes)
    };
    if let Err(bad) = checked {
        return refuse(&st, &parts, &bad);
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_rules() {
        assert!(text_ok("山田　太郎（ﾔﾏﾀﾞ）😀 taro@example.jp"));
        assert!(
            text_ok(&"あ".repeat(MAX_CHARS)),
            "the limit is in characters"
        );
        assert!(!text_ok(&"a".repeat(MAX_CHARS + 1)));
        for bad in [
            "a\0b",
            "a\tb",
            "a\nb",
            "\u{1b}[2J",
            "a\u{7f}",
            "a\u{85}",
            "a\u{202e}b",
        ] {
            assert!(!text_ok(bad), "{bad:?}");
        }
    }

    #[test]
    fn forms_and_queries() {
        assert_eq!(
            check_urlencoded(b"login_id=taro01&password=a%2Bb+c"),
            Ok(())
        );
        assert_eq!(
            check_urlencoded(b"name=%E5%B1%B1%E7%94%B0"),
            Ok(()),
            "UTF-8 山田"
        );
        assert_eq!(
            check_urlencoded(b"csrf=x&login_id=ab%00cd")
                .unwrap_err()
                .field,
            "login_id"
        );
        assert!(
            check_urlencoded(b"q=a%ED%A0%80b").is_err(),
            "a lone surrogate (CESU-8)"
        );
        assert!(check_urlencoded(b"q=%FF").is_err(), "not UTF-8");
        assert_eq!(
            check_urlencoded(b"a%00b=1").unwrap_err().field,
            "a field name",
            "a bad name is not echoed"
        );
        assert_eq!(
            check_urlencoded(b"q=100%"),
            Ok(()),
            "a stray percent is text"
        );
    }

    #[test]
    fn paths_and_json() {
        assert_eq!(check_path("/host/v1/tokens/999800000001/verify"), Ok(()));
        assert!(check_path("/host/v1/customers/ab%00c/tokens").is_err());
        let field =
            |v: serde_json::Value| check_json(v.to_string().as_bytes()).map_err(|b| b.field);
        assert_eq!(
            field(json!({"device": {"model": "Pixel\u{0}"}})),
            Err("device.model".to_owned())
        );
        assert_eq!(
            field(json!({"a": [1, {"b": ["ok", "x\u{202E}y"]}]})),
            Err("a.b".to_owned()),
            "an array's items are named by the array"
        );
        assert_eq!(
            field(json!({"ok": "1", "nested": {"bad\u{7}name": 1}})),
            Err("a field name".to_owned()),
            "a bad member name is not echoed, however deep"
        );
        assert_eq!(
            field(json!("\u{0}")),
            Err("a field name".to_owned()),
            "a bare string has no name"
        );
        assert_eq!(
            field(json!({"long": "x".repeat(MAX_CHARS + 1)})),
            Err("long".to_owned())
        );
        assert_eq!(
            check_json(br#"{"escaped\u0041": "caf\u00e9", "n": -1.5e3, "z": null}"#),
            Ok(()),
            "escaped names and values are text like any other"
        );
        assert_eq!(
            check_json(br#"{"e\u0000": 1}"#).map_err(|b| b.field),
            Err("a field name".to_owned())
        );
        assert_eq!(
            check_json(br#"{"code": "123456"} trailing"#),
            Ok(()),
            "a body that is not JSON is left to the handler's extractor"
        );
        assert_eq!(
            check_json(
                &json!({"code": "123456", "n": 1, "l": [true]})
                    .to_string()
                    .into_bytes()
            ),
            Ok(())
        );
    }
}
