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
