use super::*;

fn rfc_secret() -> Secret {
    Secret::from_bytes(b"12345678901234567890".to_vec())
}

fn code(s: &str) -> Code {
    Code::parse(s, u8::try_from(s.len()).unwrap()).unwrap()
}

#[test]
fn algorithm_names() {
    for (algorithm, name) in [
        (Algorithm::Sha1, "SHA1"),
        (Algorithm::Sha256, "SHA256"),
        (Algorithm::Sha512, "SHA512"),
    ] {
        assert_eq!(algorithm.as_str(), name);
        assert_eq!(algorithm.to_string(), name);
        assert_eq!(name.parse(), Ok(algorithm));
        assert_eq!(
            name.to_lowercase().parse(),
            Ok(algorithm),
            "case-insensitive"
        );
        assert_eq!(
            serde_json::to_string(&algorithm).unwrap(),
            format!("\"{name}\"")
        );
        assert_eq!(
            serde_json::from_str::<Algorithm>(&format!("\"{name}\"")).unwrap(),
            algorithm
        );
    }
    let err = "SHA-1".parse::<Algorithm>().unwrap_err();
    assert_eq!(err.code(), "UNKNOWN_ALGORITHM");
    assert_eq!(
        "MD5".parse::<Algorithm>(),
        Err(UnknownAlgorithm("MD5".into()))
    );
    assert!(
        serde_json::from_str::<Algorithm>("\"Sha1\"").is_err(),
        "serde is exact"
    );
}

#[test]
fn params_validation() {
    let default = TotpParams::default();
    assert_eq!(
        (default.algorithm, default.digits, default.period),
        (Algorithm::Sha1, 6, 60),
        "DESIGN §3: SHA-1, 6 digits, 60 s"
    );
    assert!(default.validate().is_ok());
    assert!(TotpParams::new(Algorithm::Sha256, 8, 30).is_ok());
    assert!(TotpParams::new(Algorithm::Sha1, 6, 1).is_ok());
    assert!(TotpParams::new(Algorithm::Sha1, 6, 300).is_ok());
    for digits in [0, 5, 7, 9, 10, 255] {
        assert_eq!(
            TotpParams::new(Algorithm::Sha1, digits, 30),
            Err(ProtocolError::InvalidDigits(digits))
        );
    }
    for period in [0, 301, u32::MAX] {
        assert_eq!(
            TotpParams::new(Algorithm::Sha1, 6, period),
            Err(ProtocolError::InvalidPeriod(period))
        );
    }
}

#[test]
fn params_serde_validates() {
    let json = serde_json::to_string(&TotpParams::default()).unwrap();
    assert_eq!(json, r#"{"algorithm":"SHA1","digits":6,"period":60}"#);
    assert_eq!(
        serde_json::from_str::<TotpParams>(&json).unwrap(),
        TotpParams::default()
    );
    for bad in [
        r#"{"algorithm":"SHA1","digits":7,"period":60}"#,
        r#"{"algorithm":"SHA1","digits":6,"period":0}"#,
        r#"{"algorithm":"MD5","digits":6,"period":60}"#,
    ] {
        assert!(
            serde_json::from_str::<TotpParams>(bad).is_err(),
            "{bad}: invalid params must not get past deserialization"
        );
    }
}

#[test]
fn step_arithmetic() {
    let p = TotpParams::default();
    assert_eq!(p.step_at(0), 0);
    assert_eq!(p.step_at(59), 0);
    assert_eq!(p.step_at(60), 1);
    assert_eq!(p.step_at(u64::MAX), u64::MAX / 60);
    assert_eq!(p.step_start(1), 60);
    assert_eq!(p.step_start(u64::MAX), u64::MAX, "saturates, never wraps");
    assert_eq!(
        p.seconds_left(0),
        60,
        "a fresh step has the whole period left"
    );
    assert_eq!(
        p.seconds_left(59),
        1,
        "never 0: 0 would mean the step already ended"
    );
    assert_eq!(p.seconds_left(60), 60);
    assert_eq!(p.seconds_left(1_000_000_030), 50);
    for t in [0u64, 1, 59, 60, 61, 1_234_567_890] {
        let step = p.step_at(t);
        assert!(p.step_start(step) <= t && t < p.step_start(step + 1));
        assert_eq!(
            p.step_start(step) + u64::from(p.period) - t,
            u64::from(p.seconds_left(t))
        );
    }
}

#[test]
fn invalid_params_do_not_panic_and_fail_closed() {
    let p = TotpParams {
        algorithm: Algorithm::Sha1,
        digits: 10,
        period: 0,
    };
    assert_eq!(p.step_at(100), 100);
    assert_eq!(p.seconds_left(100), 1);
    let c = code_at_step(&rfc_secret(), &p, 1);
    assert_eq!(c.as_str(), "", "invalid params give the empty code");
    assert_eq!(
        match_step(&rfc_secret(), &p, &code("755224"), 0, 10, None),
        StepMatch::NoMatch,
        "a token with corrupt params must not verify"
    );
}

#[test]
fn code_at_uses_the_step() {
    let p = TotpParams::default();
    let secret = rfc_secret();
    // RFC 4226 Appendix D: counter 0 -> 755224, counter 1 -> 287082.
    assert_eq!(code_at(&secret, &p, 0).as_str(), "755224");
    assert_eq!(code_at(&secret, &p, 59).as_str(), "755224");
    assert_eq!(code_at(&secret, &p, 60).as_str(), "287082");
    assert_eq!(
        code_at_step(&secret, &p, u64::MAX).as_str().len(),
        6,
        "no overflow"
    );
}

#[test]
fn code_parse_is_strict() {
    assert_eq!(Code::parse("012345", 6).unwrap().as_str(), "012345");
    assert_eq!(Code::parse("01234567", 8).unwrap().as_str(), "01234567");
    for (s, digits) in [
        ("12345", 6),
        ("1234567", 6),
        ("123456", 8),
        ("", 6),
        (" 123456", 6),
        ("123456 ", 6),
        ("123 456", 6),
        ("12345a", 6),
        ("+12345", 6),
        ("１２３４５６", 6),
        ("12345\u{0}", 6),
    ] {
        assert_eq!(
            Code::parse(s, digits).map(|c| c.as_str().to_owned()),
            Err(ProtocolError::CodeFormat),
            "{s:?}: only exactly {digits} ASCII digits are a code"
        );
    }
    assert_eq!(
        Code::parse("1234567", 7).map(|_| ()),
        Err(ProtocolError::InvalidDigits(7))
    );
}

#[test]
fn code_equality_and_debug() {
    assert!(code("123456").ct_eq(&code("123456")));
    assert!(!code("123456").ct_eq(&code("123457")));
    assert!(!code("123456").ct_eq(&code("12345678")));
    let c = code("987654");
    assert_eq!(format!("{c:?}"), "Code([redacted])");
    assert!(!format!("{c:#?}").contains("987654"));
}

#[test]
fn match_step_window_edges() {
    let secret = rfc_secret();
    let p = TotpParams::default();
    let now_step = p.step_at(1_700_000_000);
    let at = |step| code_at_step(&secret, &p, step);
    let window = |c: &Code, last| match_step(&secret, &p, c, now_step - 1, now_step + 1, last);

    assert_eq!(window(&at(now_step), None), StepMatch::Accepted(now_step));
    assert_eq!(
        window(&at(now_step - 1), None),
        StepMatch::Accepted(now_step - 1),
        "the first step of the window is inside it"
    );
    assert_eq!(
        window(&at(now_step + 1), None),
        StepMatch::Accepted(now_step + 1),
        "the last step of the window is inside it"
    );
    for outside in [now_step - 2, now_step + 2] {
        let c = at(outside);
        // Guard against an accidental collision with a step in the window.
        assert!((now_step - 1..=now_step + 1).all(|s| !at(s).ct_eq(&c)));
        assert_eq!(
            window(&c, None),
            StepMatch::NoMatch,
            "step {outside} is outside"
        );
    }
    assert_eq!(
        match_step(&secret, &p, &at(now_step), now_step + 1, now_step, None),
        StepMatch::NoMatch,
        "an empty window matches nothing"
    );
    assert_eq!(
        match_step(&secret, &p, &at(u64::MAX), u64::MAX - 1, u64::MAX, None),
        StepMatch::Accepted(u64::MAX),
        "the end of time does not overflow"
    );
}

#[test]
fn match_step_replay() {
    let secret = rfc_secret();
    let p = TotpParams::default();
    let s = 28_333_333;
    let c = code_at_step(&secret, &p, s);
    let window = |last| match_step(&secret, &p, &c, s - 1, s + 1, last);
    assert_eq!(
        window(Some(s - 1)),
        StepMatch::Accepted(s),
        "newer than last accepted"
    );
    assert_eq!(
        window(Some(s)),
        StepMatch::Replayed(s),
        "RFC 6238 §5.2: the same step twice is a replay"
    );
    assert_eq!(
        window(Some(s + 1)),
        StepMatch::Replayed(s),
        "a step before the last accepted one is a replay too"
    );
    assert_eq!(window(Some(0)), StepMatch::Accepted(s));
}

#[test]
fn selection_prefers_newest_fresh_step() {
    // Same code at steps 10, 11 and 13 (a collision real HMAC output rarely gives us).
    let same = || code("111111");
    let other = || code("222222");
    let candidates = || {
        vec![
            (10, same()),
            (11, same()),
            (12, other()),
            (13, same()),
            (14, other()),
        ]
    };
    let pick = |last| match_candidates(&same(), candidates(), last);
    assert_eq!(pick(None), StepMatch::Accepted(13), "newest of all matches");
    assert_eq!(pick(Some(9)), StepMatch::Accepted(13));
    assert_eq!(pick(Some(12)), StepMatch::Accepted(13), "13 is still fresh");
    assert_eq!(
        pick(Some(13)),
        StepMatch::Replayed(13),
        "every match is used"
    );
    assert_eq!(
        pick(Some(14)),
        StepMatch::Replayed(13),
        "newest replayed match"
    );
    assert_eq!(
        match_candidates(&code("333333"), candidates(), None),
        StepMatch::NoMatch
    );

    // Order of candidates must not matter.
    let reversed: Vec<_> = candidates().into_iter().rev().collect();
    assert_eq!(
        match_candidates(&same(), reversed, Some(10)),
        StepMatch::Accepted(13)
    );
    let shuffled = vec![(11, same()), (13, same()), (10, same())];
    assert_eq!(
        match_candidates(&same(), shuffled, Some(13)),
        StepMatch::Replayed(13)
    );

    // Step 0 is a real step (the Unix epoch), not a "no match" sentinel.
    assert_eq!(
        match_candidates(&same(), vec![(0, same())], None),
        StepMatch::Accepted(0)
    );
    assert_eq!(
        match_candidates(&same(), vec![(0, same())], Some(0)),
        StepMatch::Replayed(0)
    );
}
