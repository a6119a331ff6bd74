use super::*;

#[test]
fn bundled_directory_is_valid_and_knows_the_manuals_service() {
    let dir = Directory::bundled().unwrap();
    let url = dir.base_url(&"10112231".parse().unwrap()).unwrap();
    assert!(url.starts_with("https://"), "{url}");
    let pins = dir.pins(&"10112231".parse().unwrap()).unwrap();
    assert!(pins.len() >= 2, "a current and a backup pin: {pins:?}");
    assert_eq!(
        dir.base_url(&"12345678".parse().unwrap()),
        Err(AppError::UnknownService)
    );
}

#[test]
fn https_entries_need_a_current_and_a_backup_pin() {
    let a = Pin::of_spki(b"a").to_text();
    let b = Pin::of_spki(b"b").to_text();
    let ok =
        format!(r#"{{"10112231": {{"url": "https://bank.example", "pins": ["{a}", "{b}"]}}}}"#);
    let dir = Directory::from_json(&ok).unwrap();
    let s: ServiceId = "10112231".parse().unwrap();
    assert_eq!(dir.pins(&s).unwrap().len(), 2);
    assert_eq!(
        dir.pins_by_host().get("bank.example").map(Vec::len),
        Some(2),
        "pins are looked up by the host the TLS layer sees"
    );
    for bad in [
        r#"{"10112231": "https://bank.example"}"#.to_owned(),
        format!(r#"{{"10112231": {{"url": "https://bank.example", "pins": ["{a}"]}}}}"#),
        format!(r#"{{"10112231": {{"url": "https://bank.example", "pins": ["{a}", "{a}"]}}}}"#),
        format!(r#"{{"10112231": {{"url": "https://bank.example", "pins": ["{a}", "sha1/x"]}}}}"#),
    ] {
        assert_eq!(
            Directory::from_json(&bad),
            Err(AppError::InsecureBackendUrl),
            "{bad}"
        );
    }
    // Loopback http for development and tests needs no pins.
    assert!(Directory::from_json(r#"{"10112231": "http://127.0.0.1:8080"}"#).is_ok());
    assert_eq!(tls_host("https://[::1]:8443/x").as_deref(), Some("::1"));
    assert_eq!(
        tls_host("https://Bank.Example").as_deref(),
        Some("bank.example")
    );
    assert_eq!(tls_host("http://127.0.0.1:80"), None);
}

#[test]
fn only_https_or_loopback_http() {
    let s: ServiceId = "10112231".parse().unwrap();
    let mut dir = Directory::default();
    for ok in [
        "https://otp.example-bank.jp",
        "https://otp.example-bank.jp:8443/base/",
        "http://127.0.0.1:34567",
        "http://localhost:8080",
        "http://[::1]:8080",
    ] {
        dir.set(&s, ok).unwrap();
        assert!(!dir.base_url(&s).unwrap().ends_with('/'));
    }
    for bad in [
        "http://otp.example-bank.jp",
        "http://127.0.0.1.evil.example",
        "ftp://127.0.0.1",
        "https://user@host",
        "https://",
        "otp.example-bank.jp",
    ] {
        assert_eq!(dir.set(&s, bad), Err(AppError::InsecureBackendUrl), "{bad}");
    }
}

#[test]
fn refusals_prefer_the_body_code_then_the_status() {
    let body = br#"{"code":"WRONG_ACTIVATION_PASSWORD","message":"m","attempts_left":4}"#;
    assert_eq!(
        refusal(StatusCode::UNAUTHORIZED, body, None),
        AppError::WrongActivationPassword { attempts_left: 4 }
    );
    let body = br#"{"code":"RATE_LIMITED","message":"m"}"#;
    assert_eq!(
        refusal(StatusCode::TOO_MANY_REQUESTS, body, Some(12)),
        AppError::RateLimited {
            retry_after_secs: 12
        },
        "Retry-After fills in when the body has no seconds"
    );
    assert_eq!(
        refusal(StatusCode::BAD_GATEWAY, b"<html>", None),
        AppError::ServerUnavailable
    );
    assert_eq!(
        refusal(StatusCode::NOT_FOUND, b"<html>", None),
        AppError::BadResponse
    );
}
