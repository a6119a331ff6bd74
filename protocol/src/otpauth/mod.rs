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
mod tests;
