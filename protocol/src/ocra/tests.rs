//! Unit tests of the parts the RFC vectors in `protocol/tests/ocra.rs` do not reach one by one:
//! the question field's encoding, the built-in suite, the error codes.

use super::response::encode_question;
use super::*;

#[test]
fn numeric_questions_become_left_aligned_hex() {
    // RFC 6287 reference: BigInteger(q).toString(16), right-padded with '0'.
    let q = encode_question(QuestionFormat::Numeric, "11111111").unwrap();
    assert_eq!(&q[..3], &[0xA9, 0x8A, 0xC7], "11111111 = 0xA98AC7");
    assert!(q[3..].iter().all(|&b| b == 0));
    let q = encode_question(QuestionFormat::Numeric, "0000000000001").unwrap();
    assert_eq!(q[0], 0x10, "0x1 has one hex digit, completed by a 0 nibble");
    let q = encode_question(QuestionFormat::Numeric, "256").unwrap();
    assert_eq!(&q[..2], &[0x10, 0x00], "0x100 -> '100' + '0'");
    let zero = encode_question(QuestionFormat::Numeric, "00000000").unwrap();
    assert!(zero.iter().all(|&b| b == 0));
}

#[test]
fn hex_questions_keep_odd_nibbles_left_aligned() {
    let q = encode_question(QuestionFormat::Hex, "abC").unwrap();
    assert_eq!(&q[..2], &[0xAB, 0xC0]);
    assert_eq!(
        encode_question(QuestionFormat::Hex, "xyz"),
        Err(OcraError::QuestionFormat)
    );
    assert_eq!(
        encode_question(QuestionFormat::Hex, &"f".repeat(257)),
        Err(OcraError::QuestionFormat),
        "257 nibbles do not fit the 128-byte field"
    );
    assert!(encode_question(QuestionFormat::Hex, &"f".repeat(256)).is_ok());
}

#[test]
fn alphanumeric_questions_are_ascii_letters_and_digits() {
    assert!(encode_question(QuestionFormat::Alphanumeric, "CLI22220SRV11110").is_ok());
    for bad in ["", "a b", "ｱ", "a-b"] {
        assert_eq!(
            encode_question(QuestionFormat::Alphanumeric, bad),
            Err(OcraError::QuestionFormat),
            "{bad:?}"
        );
    }
    assert_eq!(
        encode_question(QuestionFormat::Numeric, "12a"),
        Err(OcraError::QuestionFormat)
    );
}

#[test]
fn the_transaction_suite_constant_parses_to_the_built_in_one() {
    assert_eq!(
        OcraSuite::parse(TRANSACTION_SUITE),
        Ok(transaction_suite()),
        "transaction_suite() is a hand-built copy of the constant; they must agree"
    );
}

#[test]
fn error_codes_are_distinct() {
    let all = [
        OcraError::SuiteFormat,
        OcraError::MissingInput("x"),
        OcraError::UnexpectedInput("x"),
        OcraError::QuestionFormat,
        OcraError::SessionLength,
        OcraError::BankCode,
        OcraError::BranchCode,
        OcraError::AccountType,
        OcraError::AccountNumber,
        OcraError::Amount,
        OcraError::PayeeName,
        OcraError::ChallengeFormat,
    ];
    let mut codes: Vec<_> = all.iter().map(OcraError::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len(), "callers match on codes");
}

#[test]
fn payee_names_refuse_controls_and_bidirectional_overrides() {
    assert!(check_payee_name("ﾔﾏﾀﾞ ﾀﾛｳ").is_ok());
    for bad in [
        "",
        "a\u{0007}b",
        "ﾔﾏﾀﾞ\u{202E}ｳﾛﾀ",
        "\u{2066}x\u{2069}",
        "a\u{200F}",
        "ﾔﾏ\u{200B}ﾀﾞ",
        "\u{FEFF}ﾀﾛｳ",
        "a\u{2060}b",
        // A list of what to refuse always misses something (U+2028, the soft hyphen, the
        // Hangul fillers, variation selectors, tag characters, combining overlays): only the
        // Zengin set the bank's transfers use is shown.
        "ﾔﾏﾀﾞ\u{2028}ﾀﾛｳ",
        "ﾔﾏ\u{00AD}ﾀﾞ",
        "ﾔﾏ\u{3164}ﾀﾞ",
        "ﾔﾏﾀﾞ\u{FE0F}",
        "ﾔﾏﾀﾞ\u{E0041}",
        "ﾔﾏﾀﾞ\u{20D2}",
        "山田太郎",
        "yamada",
    ] {
        assert_eq!(check_payee_name(bad), Err(OcraError::PayeeName), "{bad:?}");
    }
    for good in ["ｶ)ﾃｽﾄｼﾖｳｼﾞ", "ABC ｼﾖｳｶｲ", "ﾔﾏﾀﾞ ﾀﾛｳ", "ｺ-ﾋ-.ｼﾖﾂﾌﾟ/1"]
    {
        assert!(check_payee_name(good).is_ok(), "{good}");
    }
    assert_eq!(
        check_payee_name(&"ｱ".repeat(MAX_PAYEE_NAME_CHARS + 1)),
        Err(OcraError::PayeeName)
    );
}
