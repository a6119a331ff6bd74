//! The Key URI format (`otpauth://totp/Issuer:account?secret=...`), as documented by Google
//! Authenticator (github.com/google/google-authenticator/wiki/Key-Uri-Format).
//!
//! Written and parsed by hand rather than through the `url` crate for one reason: the URI
//! contains the secret, and a general URL type keeps its own (unzeroized) copies of the whole
//! string. Here every buffer that holds secret text is a [`Zeroizing`] one.
//!
//! Format rules applied:
//! - type must be `totp` (`hotp` is recognised and refused: this system is time-based only);
//! - label is `issuer:account` or `account`; the colon may be literal or `%3A`, and spaces may
//!   follow it; neither part may contain a colon;
//! - `secret` is required (base32); `issuer` is recommended and, when the label also has an
//!   issuer prefix, the two must be equal;
//! - defaults when absent: `algorithm=SHA1`, `digits=6`, `period=30` — the Key URI defaults,
//!   which differ from this system's own 60 s default, so [`KeyUri::to_uri`] always writes all
//!   three parameters;
//! - unknown parameters (e.g. `image`) are ignored, a repeated known parameter is an error.

use std::fmt;

use zeroize::Zeroizing;

use crate::secret::Secret;
use crate::totp::{Algorithm, TotpParams};

/// Longest slice of untrusted input echoed back inside an error, so errors stay small.
const ECHO_LIMIT: usize = 32;

/// The Key URI defaults for absent parameters (not this system's defaults: see module docs).
const URI_DEFAULT_PERIOD: u32 = 30;
const URI_DEFAULT_DIGITS: u8 = 6;

/// Why an `otpauth://` URI was rejected.
///
/// Messages never contain the secret; variants that echo input echo at most 32 characters of a
/// non-secret part (type, algorithm, digits, period).
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum OtpauthError {
    /// The text does not start with `otpauth://`.
    #[error("not an otpauth:// URI")]
    NotOtpauth,
    /// An `otpauth://hotp/` (counter-based) URI; only TOTP is supported.
    #[error("counter-based (HOTP) keys are not supported; only TOTP")]
    Hotp,
    /// A type other than `totp`/`hotp`. Holds the type.
    #[error("unknown OTP type {0:?}; expected totp")]
    UnknownType(String),
    /// No `secret` parameter, or an empty one.
    #[error("the URI has no secret parameter")]
    MissingSecret,
    /// The `secret` parameter is not valid base32 or is shorter than 128 bits.
    #[error("the secret parameter is not valid base32 of at least 128 bits")]
    BadSecret,
    /// Unsupported `algorithm`. Holds the value.
    #[error("unsupported algorithm {0:?}; expected SHA1, SHA256 or SHA512")]
    BadAlgorithm(String),
    /// `digits` other than 6 or 8. Holds the value.
    #[error("unsupported digits {0:?}; expected 6 or 8")]
    BadDigits(String),
    /// `period` not an integer in 1..=300. Holds the value.
    #[error("unsupported period {0:?}; expected 1 to 300 seconds")]
    BadPeriod(String),
    /// The label has no account name.
    #[error("the label has no account name")]
    MissingAccount,
    /// The `issuer` parameter and the label's issuer prefix differ.
    #[error("the issuer parameter does not match the label's issuer prefix")]
    IssuerMismatch,
    /// Anything else structurally wrong. Holds a fixed description, never input text.
    #[error("malformed otpauth URI: {0}")]
    Malformed(String),
}

impl OtpauthError {
    /// The stable, machine-readable code (`OTPAUTH_...`).
    pub fn code(&self) -> &'static str {
        match self {
            OtpauthError::NotOtpauth => "OTPAUTH_NOT_OTPAUTH",
            OtpauthError::Hotp => "OTPAUTH_HOTP_UNSUPPORTED",
            OtpauthError::UnknownType(_) => "OTPAUTH_UNKNOWN_TYPE",
            OtpauthError::MissingSecret => "OTPAUTH_MISSING_SECRET",
            OtpauthError::BadSecret => "OTPAUTH_BAD_SECRET",
            OtpauthError::BadAlgorithm(_) => "OTPAUTH_BAD_ALGORITHM",
            OtpauthError::BadDigits(_) => "OTPAUTH_BAD_DIGITS",
            OtpauthError::BadPeriod(_) => "OTPAUTH_BAD_PERIOD",
            OtpauthError::MissingAccount => "OTPAUTH_MISSING_ACCOUNT",
            OtpauthError::IssuerMismatch => "OTPAUTH_ISSUER_MISMATCH",
            OtpauthError::Malformed(_) => "OTPAUTH_MALFORMED",
        }
    }
}

fn malformed(why: &str) -> OtpauthError {
    OtpauthError::Malformed(why.to_owned())
}

fn echo(s: &str) -> String {
    s.chars().take(ECHO_LIMIT).collect()
}

/// A TOTP key as an authenticator app imports it.
///
/// Invariant expected by [`KeyUri::to_uri`] (checked by [`KeyUri::new`] and always true after
/// [`KeyUri::parse`]): `account` is non-empty, neither `issuer` nor `account` contains `:`, and
/// `params` is valid. `Debug` redacts the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyUri {
    /// The shared secret.
    pub secret: Secret,
    /// Algorithm, digits and period.
    pub params: TotpParams,
    /// Who issued the key (shown as the entry's title in authenticator apps).
    pub issuer: Option<String>,
    /// The account the key belongs to.
    pub account: String,
}

impl KeyUri {
    /// Builds a key URI, checking what [`KeyUri::to_uri`] needs to produce a URI that parses
    /// back to the same value.
    ///
    /// # Errors
    ///
    /// [`OtpauthError::MissingAccount`] if `account` is empty (or only spaces);
    /// [`OtpauthError::Malformed`] if `issuer` or `account` contains `:` (the label separator)
    /// or `issuer` is empty; [`OtpauthError::BadDigits`] / [`OtpauthError::BadPeriod`] if
    /// `params` is invalid.
    pub fn new(
        secret: Secret,
        params: TotpParams,
        issuer: Option<String>,
        account: String,
    ) -> Result<KeyUri, OtpauthError> {
        check_params(&params)?;
        if account.trim_start_matches(' ').is_empty() {
            return Err(OtpauthError::MissingAccount);
        }
        if account.contains(':') {
            return Err(malformed("the account name contains a colon"));
        }
        if let Some(issuer) = &issuer {
            if issuer.is_empty() {
                return Err(malformed("the issuer is empty"));
            }
            if issuer.contains(':') {
                return Err(malformed("the issuer contains a colon"));
            }
        }
        Ok(KeyUri {
            secret,
            params,
            issuer,
            account,
        })
    }

    /// The URI, e.g.
    /// `otpauth://totp/ACME%20Co:john@example.com?secret=...&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=60`.
    ///
    /// The issuer goes both in the label prefix and in the `issuer` parameter (what the format
    /// recommends for compatibility with old and new apps). Everything but RFC 3986 unreserved
    /// characters is percent-encoded (`@` is kept in the label, as in the format's examples);
    /// spaces become `%20`, never `+`. `algorithm`, `digits` and `period` are always written
    /// because the format's defaults are not ours. The result is zeroized on drop; never log it.
    pub fn to_uri(&self) -> Zeroizing<String> {
        let secret = self.secret.to_base32();
        let issuer_len = self.issuer.as_ref().map_or(0, String::len);
        // Sized up front (worst case 3 bytes per encoded byte) so the buffer never reallocates
        // and leaves an unzeroized copy of the secret behind.
        let capacity = 96 + secret.len() + 3 * (2 * issuer_len + self.account.len());
        let mut uri = Zeroizing::new(String::with_capacity(capacity));
        uri.push_str("otpauth://totp/");
        if let Some(issuer) = &self.issuer {
            push_encoded(&mut uri, issuer, true);
            uri.push(':');
        }
        push_encoded(&mut uri, &self.account, true);
        uri.push_str("?secret=");
        uri.push_str(&secret);
        if let Some(issuer) = &self.issuer {
            uri.push_str("&issuer=");
            push_encoded(&mut uri, issuer, false);
        }
        uri.push_str("&algorithm=");
        uri.push_str(self.params.algorithm.as_str());
        uri.push_str("&digits=");
        uri.push_str(&self.params.digits.to_string());
        uri.push_str("&period=");
        uri.push_str(&self.params.period.to_string());
        uri
    }

    /// Parses an `otpauth://totp/...` URI (rules in the module docs).
    ///
    /// # Errors
    ///
    /// One [`OtpauthError`] variant per problem; see each variant. The first problem found is
    /// reported, checked in this order: scheme, type, structure, label, parameters, issuer.
    pub fn parse(uri: &str) -> Result<KeyUri, OtpauthError> {
        const SCHEME: &str = "otpauth://";
        let rest = match uri.get(..SCHEME.len()) {
            // RFC 3986 §3.1: schemes are case-insensitive.
            Some(scheme) if scheme.eq_ignore_ascii_case(SCHEME) => &uri[SCHEME.len()..],
            _ => return Err(OtpauthError::NotOtpauth),
        };
        let (otp_type, rest) = rest
            .split_once('/')
            .ok_or_else(|| malformed("missing '/' and label after the type"))?;
        if otp_type.eq_ignore_ascii_case("hotp") {
            return Err(OtpauthError::Hotp);
        }
        if !otp_type.eq_ignore_ascii_case("totp") {
            return Err(OtpauthError::UnknownType(echo(otp_type)));
        }
        if rest.contains('#') {
            return Err(malformed("fragments are not allowed"));
        }
        let (raw_label, query) = rest.split_once('?').unwrap_or((rest, ""));

        let (label_issuer, account) = parse_label(raw_label)?;
        let query = parse_query(query)?;

        let secret_text = query.secret.ok_or(OtpauthError::MissingSecret)?;
        if secret_text.trim_matches(' ').is_empty() {
            return Err(OtpauthError::MissingSecret);
        }
        let secret = Secret::from_base32(&secret_text).map_err(|_| OtpauthError::BadSecret)?;

        let algorithm = match query.algorithm {
            None => Algorithm::Sha1,
            Some(a) => a
                .parse::<Algorithm>()
                .map_err(|_| OtpauthError::BadAlgorithm(echo(&a)))?,
        };
        let digits = match query.digits.as_deref() {
            None => URI_DEFAULT_DIGITS,
            Some("6") => 6,
            Some("8") => 8,
            Some(other) => return Err(OtpauthError::BadDigits(echo(other))),
        };
        let period = match query.period {
            None => URI_DEFAULT_PERIOD,
            Some(p) => parse_period(&p).ok_or_else(|| OtpauthError::BadPeriod(echo(&p)))?,
        };
        let params = TotpParams {
            algorithm,
            digits,
            period,
        };

        let issuer = match (query.issuer, label_issuer) {
            (Some(param), Some(prefix)) if param != prefix => {
                return Err(OtpauthError::IssuerMismatch)
            }
            (Some(param), _) => Some(param),
            (None, prefix) => prefix,
        };
        KeyUri::new(secret, params, issuer, account)
    }
}

impl fmt::Debug for KeyUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyUri")
            .field("secret", &self.secret)
            .field("params", &self.params)
            .field("issuer", &self.issuer)
            .field("account", &self.account)
            .finish()
    }
}

fn check_params(params: &TotpParams) -> Result<(), OtpauthError> {
    use crate::error::ProtocolError;
    match params.validate() {
        Ok(()) => Ok(()),
        Err(ProtocolError::InvalidDigits(d)) => Err(OtpauthError::BadDigits(d.to_string())),
        Err(ProtocolError::InvalidPeriod(p)) => Err(OtpauthError::BadPeriod(p.to_string())),
        Err(_) => Err(malformed("invalid parameters")),
    }
}

/// Strict decimal 1..=300: no sign, no spaces, no leading zeros beyond what `u32` parsing takes.
fn parse_period(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let period: u32 = s.parse().ok()?;
    TotpParams::new(Algorithm::Sha1, 6, period).ok()?;
    Some(period)
}

/// Splits the (still percent-encoded) label into issuer prefix and account.
fn parse_label(raw: &str) -> Result<(Option<String>, String), OtpauthError> {
    let label = percent_decode(raw, false)?;
    let label = String::from(label.as_str());
    match label.split_once(':') {
        None => {
            if label.trim_start_matches(' ').is_empty() {
                return Err(OtpauthError::MissingAccount);
            }
            Ok((None, label))
        }
        Some((issuer, account)) => {
            if account.contains(':') {
                return Err(malformed("the label has more than one colon"));
            }
            if issuer.is_empty() {
                return Err(malformed("the label's issuer prefix is empty"));
            }
            // The format allows optional spaces between the colon and the account name.
            let account = account.trim_start_matches(' ');
            if account.is_empty() {
                return Err(OtpauthError::MissingAccount);
            }
            Ok((Some(issuer.to_owned()), account.to_owned()))
        }
    }
}

#[derive(Default)]
struct Query {
    secret: Option<Zeroizing<String>>,
    issuer: Option<String>,
    algorithm: Option<String>,
    digits: Option<String>,
    period: Option<String>,
}

fn parse_query(query: &str) -> Result<Query, OtpauthError> {
    let mut q = Query::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        // The key of a pair without '=' is not echoed: it might be a mangled secret.
        let (key, value) = pair
            .split_once('=')
            .ok_or_else(|| malformed("a parameter has no '='"))?;
        let value = percent_decode(value, true)?;
        let (slot_name, duplicate) = match key {
            "secret" => ("secret", q.secret.replace(value).is_some()),
            "issuer" => {
                if value.is_empty() {
                    return Err(malformed("the issuer parameter is empty"));
                }
                ("issuer", q.issuer.replace(String::clone(&value)).is_some())
            }
            "algorithm" => (
                "algorithm",
                q.algorithm.replace(String::clone(&value)).is_some(),
            ),
            "digits" => ("digits", q.digits.replace(String::clone(&value)).is_some()),
            "period" => ("period", q.period.replace(String::clone(&value)).is_some()),
            // Unknown parameters (image, color, ...) are extensions other apps use.
            _ => continue,
        };
        if duplicate {
            // Only our own fixed parameter names are echoed, never input.
            return Err(OtpauthError::Malformed(format!(
                "the {slot_name} parameter appears more than once"
            )));
        }
    }
    Ok(q)
}

/// Decodes `%XX` escapes (and `+` as space in query values, as form encoding does) into a
/// zeroized buffer, requiring valid UTF-8.
fn percent_decode(s: &str, plus_is_space: bool) -> Result<Zeroizing<String>, OtpauthError> {
    let bytes = s.as_bytes();
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = |j: usize| bytes.get(j).and_then(|c| char::from(*c).to_digit(16));
                let (Some(hi), Some(lo)) = (hex(i + 1), hex(i + 2)) else {
                    return Err(malformed("bad percent-encoding"));
                };
                // hi and lo are < 16, so this fits a byte.
                out.push(u8::try_from(hi * 16 + lo).unwrap_or(0));
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    if std::str::from_utf8(&out).is_err() {
        return Err(malformed("percent-encoded text is not UTF-8"));
    }
    // Move the validated bytes into a String without copying: `take` leaves an empty Vec in
    // the Zeroizing wrapper and hands us the original allocation.
    let vec = std::mem::take(&mut *out);
    String::from_utf8(vec)
        .map(Zeroizing::new)
        .map_err(|_| malformed("percent-encoded text is not UTF-8"))
}

/// Appends `s` percent-encoded: RFC 3986 unreserved characters stay, and `@` too in a label
/// (a legal path character that the format's own examples leave bare); all else is `%XX`.
fn push_encoded(out: &mut String, s: &str, keep_at: bool) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        let keep = b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (keep_at && b == b'@');
        if keep {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET_B32: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

    fn key(issuer: Option<&str>, account: &str) -> KeyUri {
        KeyUri::new(
            Secret::from_base32(SECRET_B32).unwrap(),
            TotpParams::default(),
            issuer.map(str::to_owned),
            account.to_owned(),
        )
        .unwrap()
    }

    #[test]
    fn to_uri_percent_encodes_and_spells_out_params() {
        let uri = key(Some("ACME Co"), "john@example.com").to_uri();
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/ACME%20Co:john@example.com?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP\
             &issuer=ACME%20Co&algorithm=SHA1&digits=6&period=60",
            "the Key URI format's own example shape, with our 60 s period written out"
        );
        let no_issuer = key(None, "alice").to_uri();
        assert!(no_issuer.starts_with("otpauth://totp/alice?secret="));
        assert!(!no_issuer.contains("issuer="));
    }

    #[test]
    fn round_trips() {
        let mut sha256 = key(Some("Bank & Trust/東京 +1"), "山田 太郎 <t@example.jp>");
        sha256.params = TotpParams::new(Algorithm::Sha256, 8, 30).unwrap();
        sha256.secret = Secret::generate(Algorithm::Sha256);
        for k in [
            key(Some("ACME Co"), "john@example.com"),
            key(None, "alice"),
            sha256,
        ] {
            let uri = k.to_uri();
            assert_eq!(
                KeyUri::parse(&uri),
                Ok(k.clone()),
                "{uri:?} must parse back"
            );
        }
    }

    #[test]
    fn parses_the_format_examples_and_defaults() {
        let k = KeyUri::parse(
            "otpauth://totp/Example:alice@google.com?secret=JBSWY3DPEHPK3PXP&issuer=Example",
        );
        // JBSWY3DPEHPK3PXP is only 80 bits: the format's example is too weak for RFC 4226.
        assert_eq!(k, Err(OtpauthError::BadSecret));

        let k = KeyUri::parse(&format!(
            "OTPAUTH://TOTP/ACME%20Co%3A%20%20john.doe@email.com?secret={}&image=x",
            SECRET_B32.to_lowercase()
        ))
        .unwrap();
        assert_eq!(
            k.issuer.as_deref(),
            Some("ACME Co"),
            "%3A is a separator too"
        );
        assert_eq!(
            k.account, "john.doe@email.com",
            "spaces after the colon are dropped"
        );
        assert_eq!(
            k.params,
            TotpParams {
                algorithm: Algorithm::Sha1,
                digits: 6,
                period: 30
            },
            "absent parameters take the Key URI defaults, not ours"
        );
        let k = KeyUri::parse(&format!(
            "otpauth://totp/bob?secret={SECRET_B32}&issuer=Big+Bank&algorithm=sha512&digits=8&period=60&"
        ))
        .unwrap();
        assert_eq!(
            k.issuer.as_deref(),
            Some("Big Bank"),
            "'+' is a space in the query"
        );
        assert_eq!(k.params, TotpParams::new(Algorithm::Sha512, 8, 60).unwrap());
    }

    #[test]
    fn every_error_variant() {
        let s = SECRET_B32;
        let cases: Vec<(String, OtpauthError)> = vec![
            ("https://example.com/".into(), OtpauthError::NotOtpauth),
            ("otp".into(), OtpauthError::NotOtpauth),
            (
                format!("otpauth://hotp/a?secret={s}&counter=1"),
                OtpauthError::Hotp,
            ),
            (
                format!("otpauth://motp/a?secret={s}"),
                OtpauthError::UnknownType("motp".into()),
            ),
            (
                "otpauth://totp/a?issuer=X".into(),
                OtpauthError::MissingSecret,
            ),
            (
                "otpauth://totp/a?secret=".into(),
                OtpauthError::MissingSecret,
            ),
            (
                "otpauth://totp/a?secret=ABC1DEF".into(),
                OtpauthError::BadSecret,
            ),
            (
                "otpauth://totp/a?secret=GEZDGNBV".into(),
                OtpauthError::BadSecret,
            ),
            (
                format!("otpauth://totp/a?secret={s}&algorithm=MD5"),
                OtpauthError::BadAlgorithm("MD5".into()),
            ),
            (
                format!("otpauth://totp/a?secret={s}&digits=7"),
                OtpauthError::BadDigits("7".into()),
            ),
            (
                format!("otpauth://totp/a?secret={s}&digits=06"),
                OtpauthError::BadDigits("06".into()),
            ),
            (
                format!("otpauth://totp/a?secret={s}&period=0"),
                OtpauthError::BadPeriod("0".into()),
            ),
            (
                format!("otpauth://totp/a?secret={s}&period=-30"),
                OtpauthError::BadPeriod("-30".into()),
            ),
            (
                format!("otpauth://totp/a?secret={s}&period=301"),
                OtpauthError::BadPeriod("301".into()),
            ),
            (
                format!("otpauth://totp/?secret={s}"),
                OtpauthError::MissingAccount,
            ),
            (
                format!("otpauth://totp/ACME:?secret={s}"),
                OtpauthError::MissingAccount,
            ),
            (
                format!("otpauth://totp/ACME:%20?secret={s}"),
                OtpauthError::MissingAccount,
            ),
            (
                format!("otpauth://totp/ACME:bob?secret={s}&issuer=Evil"),
                OtpauthError::IssuerMismatch,
            ),
            (
                format!("otpauth://totp/ACME%20Co:bob?secret={s}&issuer=ACME"),
                OtpauthError::IssuerMismatch,
            ),
            (
                format!("otpauth://totp?secret={s}"),
                malformed("missing '/' and label after the type"),
            ),
            (
                format!("otpauth://totp/a:b:c?secret={s}"),
                malformed("the label has more than one colon"),
            ),
            (
                format!("otpauth://totp/:b?secret={s}"),
                malformed("the label's issuer prefix is empty"),
            ),
            (
                format!("otpauth://totp/a%2?secret={s}"),
                malformed("bad percent-encoding"),
            ),
            (
                format!("otpauth://totp/a%FF?secret={s}"),
                malformed("percent-encoded text is not UTF-8"),
            ),
            (
                format!("otpauth://totp/a?secret={s}#x"),
                malformed("fragments are not allowed"),
            ),
            (
                format!("otpauth://totp/a?secret={s}&issuer="),
                malformed("the issuer parameter is empty"),
            ),
            (
                format!("otpauth://totp/a?secret={s}&secret={s}"),
                malformed("the secret parameter appears more than once"),
            ),
        ];
        for (uri, want) in cases {
            assert_eq!(KeyUri::parse(&uri).map(|_| ()), Err(want), "{uri}");
        }
    }

    #[test]
    fn errors_never_echo_the_secret() {
        let s = SECRET_B32;
        for uri in [
            format!("otpauth://totp/a?secret{s}"),
            format!("otpauth://totp/a?secret={s}X"),
            format!("otpauth://totp/a?secret={s}&secret={s}"),
            format!("otpauth://totp/a?secret={s}%"),
            format!("otpauth://totp/a?secret={s}&digits=9"),
        ] {
            let err = KeyUri::parse(&uri).unwrap_err();
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains(&s[..8]), "{shown}: errors end up in logs");
            assert!(err.code().starts_with("OTPAUTH_"));
        }
    }

    #[test]
    fn codes_are_distinct() {
        let all = [
            OtpauthError::NotOtpauth,
            OtpauthError::Hotp,
            OtpauthError::UnknownType(String::new()),
            OtpauthError::MissingSecret,
            OtpauthError::BadSecret,
            OtpauthError::BadAlgorithm(String::new()),
            OtpauthError::BadDigits(String::new()),
            OtpauthError::BadPeriod(String::new()),
            OtpauthError::MissingAccount,
            OtpauthError::IssuerMismatch,
            OtpauthError::Malformed(String::new()),
        ];
        let mut codes: Vec<_> = all.iter().map(OtpauthError::code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        assert_eq!(OtpauthError::MissingSecret.code(), "OTPAUTH_MISSING_SECRET");
    }

    #[test]
    fn new_refuses_what_would_not_round_trip() {
        let secret = || Secret::from_bytes(vec![7; 20]);
        let p = TotpParams::default();
        assert_eq!(
            KeyUri::new(secret(), p, None, String::new()).map(|_| ()),
            Err(OtpauthError::MissingAccount)
        );
        assert!(KeyUri::new(secret(), p, Some("A:B".into()), "x".into()).is_err());
        assert!(KeyUri::new(secret(), p, None, "x:y".into()).is_err());
        assert!(KeyUri::new(secret(), p, Some(String::new()), "x".into()).is_err());
        let bad = TotpParams {
            digits: 7,
            ..TotpParams::default()
        };
        assert_eq!(
            KeyUri::new(secret(), bad, None, "x".into()).map(|_| ()),
            Err(OtpauthError::BadDigits("7".into()))
        );
    }

    #[test]
    fn debug_redacts_the_secret() {
        let k = key(Some("ACME"), "bob");
        let shown = format!("{k:?} {k:#?}");
        assert!(shown.contains("Secret([redacted])"), "{shown}");
        assert!(!shown.contains(&SECRET_B32[..8]), "{shown}");
        assert!(
            shown.contains("bob"),
            "non-secret fields stay visible for debugging"
        );
    }
}
