//! One check per input field (DESIGN §3), shared by every transport: the screens, the host
//! API, the app API, the staff console and the CLI call these and nothing else, so a field's
//! rule is written once. A refusal is a [`FieldError`] naming the field, with a stable code
//! and an English message (the screens translate by code).

/// A refused field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub field: &'static str,
    pub code: &'static str,
    pub message: &'static str,
}

const fn err(field: &'static str, code: &'static str, message: &'static str) -> FieldError {
    FieldError {
        field,
        code,
        message,
    }
}

fn check(ok: bool, e: FieldError) -> Result<(), FieldError> {
    if ok {
        Ok(())
    } else {
        Err(e)
    }
}

/// Full-width digits as ASCII digits (`protocol::ids::half_width_digits`, shared with the app).
/// Every edge applies it to the fields that hold only digits (codes, activation passwords,
/// mailed passwords, amounts, service and user IDs) before the field's rule sees them; the
/// rules themselves stay strict.
pub use protocol::ids::half_width_digits;

/// 4–8 digits (DESIGN §3).
pub fn is_activation_password(p: &str) -> bool {
    (4..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
}

/// 6–12 half-width alphanumerics (DESIGN §3).
pub fn is_confirmation_password(p: &str) -> bool {
    (6..=12).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Login passwords: 8–32 printable ASCII.
pub fn is_login_password(p: &str) -> bool {
    (8..=32).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_graphic())
}

/// Login IDs (customers and staff): 4–32 of `[A-Za-z0-9_.-]`.
pub fn is_login_id(s: &str) -> bool {
    (4..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// A pragmatic e-mail check: one `@`, a dotted domain, no spaces or controls, at most 254; the
/// local part a dot-atom (no leading, trailing or doubled dot), domain labels of at most 63
/// characters not starting or ending with `-`: the mailer refuses those forms
/// (`taro..hanako@docomo.ne.jp`, an old carrier form, sat in the outbox for ever). Addresses
/// stored before this rule are not re-checked.
pub fn is_email(s: &str) -> bool {
    if s.len() > 254 || s.is_empty() || !s.is_ascii() {
        return false;
    }
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && domain
            .split('.')
            .all(|label| label.len() <= 63 && !label.starts_with('-') && !label.ends_with('-'))
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>[]\\,;:\"".contains(&b))
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// # Errors
/// `INVALID_ACTIVATION_PASSWORD`.
pub fn activation_password(p: &str) -> Result<(), FieldError> {
    check(
        is_activation_password(p),
        err(
            "activation_password",
            "INVALID_ACTIVATION_PASSWORD",
            "activation_password must be 4-8 digits",
        ),
    )
}

/// # Errors
/// `INVALID_CONFIRMATION_PASSWORD`.
pub fn confirmation_password(p: &str) -> Result<(), FieldError> {
    check(
        is_confirmation_password(p),
        err(
            "confirmation_password",
            "INVALID_CONFIRMATION_PASSWORD",
            "confirmation_password must be 6-12 half-width letters and digits",
        ),
    )
}

/// # Errors
/// `INVALID_LOGIN_PASSWORD`.
pub fn login_password(p: &str) -> Result<(), FieldError> {
    check(
        is_login_password(p),
        err(
            "login_password",
            "INVALID_LOGIN_PASSWORD",
            "login_password must be 8-32 printable ASCII characters",
        ),
    )
}

/// # Errors
/// `INVALID_LOGIN_ID`.
pub fn login_id(s: &str) -> Result<(), FieldError> {
    check(
        is_login_id(s),
        err(
            "login_id",
            "INVALID_LOGIN_ID",
            "login_id must be 4-32 characters of A-Z a-z 0-9 _ . -",
        ),
    )
}

/// # Errors
/// `INVALID_EMAIL`.
pub fn email(s: &str) -> Result<(), FieldError> {
    check(
        is_email(s),
        err("email", "INVALID_EMAIL", "email is not a valid address"),
    )
}

/// A customer's display name: at most 100 characters.
///
/// # Errors
/// `INVALID_NAME`.
pub fn name(s: &str) -> Result<(), FieldError> {
    check(
        s.chars().count() <= 100,
        err(
            "name",
            "INVALID_NAME",
            "name must be at most 100 characters",
        ),
    )
}

/// Staff passwords: 12–128 characters.
///
/// # Errors
/// `INVALID_PASSWORD`.
pub fn staff_password(p: &str) -> Result<(), FieldError> {
    check(
        (12..=128).contains(&p.len()),
        err(
            "password",
            "INVALID_PASSWORD",
            "staff passwords must be 12-128 characters",
        ),
    )
}

/// The reason every staff action (console, host API, CLI) must give: 3–500 characters on one
/// line, surrounding spaces trimmed. Returns the trimmed reason.
///
/// # Errors
/// `REASON_REQUIRED` (missing or too short) or `INVALID_REASON`.
pub fn reason(reason: &str) -> Result<&str, FieldError> {
    let r = reason.trim();
    if r.chars().count() < 3 {
        return Err(err(
            "reason",
            "REASON_REQUIRED",
            "a reason of at least 3 characters is required",
        ));
    }
    if r.chars().count() > 500 || r.chars().any(char::is_control) {
        return Err(err(
            "reason",
            "INVALID_REASON",
            "the reason must be at most 500 characters on one line",
        ));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_rules() {
        assert!(is_activation_password("1234"));
        assert!(is_activation_password("12345678"));
        assert!(!is_activation_password("123"));
        assert!(!is_activation_password("123456789"));
        assert!(!is_activation_password("12a4"));
        assert!(
            !is_activation_password("１２３４"),
            "full-width digits are refused here (the edges normalise them first)"
        );
        assert!(is_confirmation_password("abc123"));
        assert!(!is_confirmation_password("abc12"));
        assert!(!is_confirmation_password("abc123abc123x"));
        assert!(!is_confirmation_password("abc 123"));
        assert!(is_email("taro@example.co.jp"));
        for bad in [
            "",
            "taro",
            "taro@",
            "@example.com",
            "taro@example",
            "ta ro@example.com",
            "taro@@example.com",
            "taro@example..com",
            "たろう@example.com",
            // Not a dot-atom: the mailer cannot send to them (old carrier addresses had them).
            "taro..hanako@docomo.ne.jp",
            "taro.@ezweb.ne.jp",
            ".taro@example.jp",
            "taro@-a.example.jp",
            "taro@a-.example.jp",
        ] {
            assert!(!is_email(bad), "{bad:?} must be refused");
        }
        // The forms refused for the mailer's sake: it refuses them too.
        let long_label = format!("taro@{}.example.jp", "a".repeat(64));
        for unsendable in [
            "taro..hanako@docomo.ne.jp",
            "taro.@ezweb.ne.jp",
            &long_label,
        ] {
            assert!(!is_email(unsendable), "{unsendable:?}");
            assert!(
                unsendable.parse::<lettre::Address>().is_err(),
                "{unsendable:?}"
            );
        }
        // What is accepted, the mailer can send to (lettre's own parser agrees).
        for good in [
            "taro@example.co.jp",
            "taro.hanako@docomo.ne.jp",
            "t-a_r+o@sub-1.example.jp",
            "taro.o'neil@example.com",
        ] {
            assert!(is_email(good), "{good:?}");
            assert!(
                good.parse::<lettre::Address>().is_ok(),
                "{good:?}: the mailer takes what the screens accept"
            );
        }
        assert_eq!(
            activation_password("12").map_err(|e| e.code),
            Err("INVALID_ACTIVATION_PASSWORD")
        );
    }

    #[test]
    fn full_width_digits_become_ascii_and_nothing_else_changes() {
        assert_eq!(half_width_digits("０１２３４５６７８９"), "0123456789");
        assert_eq!(half_width_digits("12３４"), "1234");
        assert_eq!(
            half_width_digits("ａ1"),
            "ａ1",
            "only digits are normalised"
        );
        assert!(is_activation_password(&half_width_digits("１２３４")));
    }

    #[test]
    fn reasons_are_mandatory() {
        assert_eq!(reason("  ").map_err(|e| e.code), Err("REASON_REQUIRED"));
        assert_eq!(reason("ab").map_err(|e| e.code), Err("REASON_REQUIRED"));
        assert_eq!(reason("a\nb c").map_err(|e| e.code), Err("INVALID_REASON"));
        assert_eq!(
            reason(&"x".repeat(501)).map_err(|e| e.code),
            Err("INVALID_REASON")
        );
        assert_eq!(reason(" lost phone "), Ok("lost phone"));
    }
}
