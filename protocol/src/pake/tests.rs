//! Unit tests of the private pieces: the error codes, the context's length prefixes.

use super::*;

#[test]
fn error_codes_are_distinct() {
    let all = [
        PakeError::MessageFormat,
        PakeError::ServerNotConfirmed,
        PakeError::ClientNotConfirmed,
        PakeError::ExchangeMismatch,
        PakeError::SealOpen,
        PakeError::StateFormat,
        PakeError::Internal,
    ];
    let mut codes: Vec<_> = all.iter().map(PakeError::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len(), "callers match on codes");
}

#[test]
fn context_fields_cannot_run_into_each_other() {
    let s: ServiceId = "10112231".parse().unwrap();
    let u: UserId = "999800000009".parse().unwrap();
    assert_ne!(
        context(&s, &u, &[1, 2], &[3]),
        context(&s, &u, &[1], &[2, 3]),
        "length prefixes keep the nonce and exchange ID apart"
    );
}
