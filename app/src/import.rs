//! Import of `otpauth://` URIs (what an authenticator QR code carries) as generic tokens.
//!
//! The URI is validated by [`protocol::KeyUri::parse`] (TOTP only, base32 secret of at least
//! 128 bits, supported algorithm, 6 or 8 digits, period 1–300 s, issuer consistent). The URI
//! text holds the secret: it is never logged, and errors name the problem only.

use protocol::KeyUri;

use crate::error::AppError;

/// Parses and validates an `otpauth://totp/…` URI. Surrounding whitespace (a scanner's
/// trailing newline) is ignored.
///
/// # Errors
/// [`AppError::Import`] with the protocol's `OTPAUTH_…` code.
pub fn parse_otpauth(uri: &str) -> Result<KeyUri, AppError> {
    Ok(KeyUri::parse(uri.trim())?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "otpauth://totp/ACME%20Co:john@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co&algorithm=SHA1&digits=6&period=30";

    #[test]
    fn accepts_a_well_formed_uri() {
        let key = parse_otpauth(&format!("  {GOOD}\n")).unwrap();
        assert_eq!(key.issuer.as_deref(), Some("ACME Co"));
        assert_eq!(key.account, "john@example.com");
        assert_eq!(key.params.period, 30);
    }

    #[test]
    fn refusals_carry_stable_codes_and_no_secret() {
        let cases = [
            ("https://example.com", "OTPAUTH_NOT_OTPAUTH"),
            (
                "otpauth://hotp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&counter=1",
                "OTPAUTH_HOTP_UNSUPPORTED",
            ),
            ("otpauth://totp/x?secret=GEZDGNBV", "OTPAUTH_BAD_SECRET"),
            ("otpauth://totp/x", "OTPAUTH_MISSING_SECRET"),
            (
                "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&digits=7",
                "OTPAUTH_BAD_DIGITS",
            ),
            (
                "otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&algorithm=MD5",
                "OTPAUTH_BAD_ALGORITHM",
            ),
        ];
        for (uri, code) in cases {
            let e = parse_otpauth(uri).unwrap_err();
            assert_eq!(e.code(), code, "{uri}");
            let shown = format!("{e:?} {e} {}", e.message_ja());
            assert!(!shown.contains("GEZDGNBV"), "{shown}");
        }
    }
}
