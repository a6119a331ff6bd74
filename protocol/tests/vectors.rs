//! Published test vectors (RFC 6238 Appendix B, RFC 4226 Appendix D) and a cross-check against
//! an independent implementation, OATH Toolkit's `oathtool`.
//!
//! The cross-check needs `oathtool` on PATH (`apt-get install oathtool`; CI installs it). If it
//! is missing the test fails rather than skips: a silently skipped cross-check would look green
//! while checking nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test/bench harness code: a failed step should stop loudly

use std::process::Command;

use protocol::{code_at, code_at_step, Algorithm, Secret, TotpParams};

const SHA1_SECRET: &[u8] = b"12345678901234567890";
const SHA256_SECRET: &[u8] = b"12345678901234567890123456789012";
const SHA512_SECRET: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

/// 2100-01-01T00:00:00Z, the end of the cross-checked range.
const YEAR_2100: u64 = 4_102_444_800;

fn rfc_secret(algorithm: Algorithm) -> Secret {
    Secret::from_bytes(match algorithm {
        Algorithm::Sha1 => SHA1_SECRET.to_vec(),
        Algorithm::Sha256 => SHA256_SECRET.to_vec(),
        Algorithm::Sha512 => SHA512_SECRET.to_vec(),
    })
}

#[test]
fn rfc6238_appendix_b() {
    // (time, SHA1, SHA256, SHA512), 8 digits, X = 30, T0 = 0, each with its own key length.
    let table: [(u64, &str, &str, &str); 6] = [
        (59, "94287082", "46119246", "90693936"),
        (1_111_111_109, "07081804", "68084774", "25091201"),
        (1_111_111_111, "14050471", "67062674", "99943326"),
        (1_234_567_890, "89005924", "91819424", "93441116"),
        (2_000_000_000, "69279037", "90698825", "38618901"),
        (20_000_000_000, "65353130", "77737706", "47863826"),
    ];
    for (time, sha1, sha256, sha512) in table {
        for (algorithm, want) in [
            (Algorithm::Sha1, sha1),
            (Algorithm::Sha256, sha256),
            (Algorithm::Sha512, sha512),
        ] {
            let params = TotpParams::new(algorithm, 8, 30).unwrap();
            assert_eq!(
                code_at(&rfc_secret(algorithm), &params, time).as_str(),
                want,
                "RFC 6238 Appendix B, {algorithm} at T={time}"
            );
        }
    }
}

#[test]
fn rfc4226_appendix_d() {
    let want = [
        "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871",
        "520489",
    ];
    let secret = rfc_secret(Algorithm::Sha1);
    for period in [1, 30] {
        let params = TotpParams::new(Algorithm::Sha1, 6, period).unwrap();
        for (counter, want) in (0u64..).zip(want) {
            assert_eq!(
                code_at_step(&secret, &params, counter).as_str(),
                want,
                "TOTP at step C is HOTP with counter C (RFC 6238 §1.2), period {period}"
            );
            if period == 1 {
                assert_eq!(code_at(&secret, &params, counter).as_str(), want);
            }
        }
    }
}

/// Deterministic pseudo-random numbers (SplitMix64), so a failure names a reproducible input.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Codes `oathtool` prints for the steps `step_at(unix) ..= step_at(unix) + window`, or why it
/// could not be run (returned rather than panicked, so the `#[test]` decides how to fail).
fn oathtool(
    secret: &Secret,
    params: &TotpParams,
    unix: u64,
    window: u32,
) -> Result<Vec<String>, String> {
    let output = Command::new("oathtool")
        .arg(format!("--totp={}", params.algorithm.as_str()))
        .arg(format!("--time-step-size={}s", params.period))
        .arg(format!("--digits={}", params.digits))
        .arg(format!("--now=@{unix}"))
        .arg(format!("--window={window}"))
        .arg(hex(secret.expose()))
        .output()
        .map_err(|e| {
            format!(
                "cannot run oathtool ({e}). This cross-check needs OATH Toolkit's oathtool on \
                 PATH: `apt-get install -y oathtool`. It fails instead of skipping on purpose."
            )
        })?;
    assert!(
        output.status.success(),
        "oathtool failed at @{unix}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let codes: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        codes.len(),
        window as usize + 1,
        "oathtool -w N prints N+1 codes"
    );
    Ok(codes)
}

/// Compares our codes with oathtool's for `window + 1` consecutive steps from `unix`.
fn cross_check(
    secret: &Secret,
    params: &TotpParams,
    unix: u64,
    window: u32,
) -> Result<usize, String> {
    let theirs = oathtool(secret, params, unix, window)?;
    assert_eq!(
        code_at(secret, params, unix).as_str(),
        theirs[0],
        "{params:?} at @{unix} (key {} bytes): code_at must pick oathtool's step",
        secret.len()
    );
    let first = params.step_at(unix);
    for (step, want) in (first..).zip(&theirs) {
        assert_eq!(
            code_at_step(secret, params, step).as_str(),
            want,
            "{params:?} step {step} (key {} bytes) disagrees with oathtool",
            secret.len()
        );
    }
    Ok(theirs.len())
}

#[test]
fn cross_check_with_oathtool() {
    if let Err(e) = cross_check_all() {
        panic!("{e}");
    }
}

fn cross_check_all() -> Result<(), String> {
    let mut rng = SplitMix(0x5EED_0F07_0747_0000);
    let mut checked = 0;

    // Our profile: SHA-1, 6 digits, 60 s; keys of the generated length and some odd lengths
    // (16 = the minimum; 80 > SHA-1's 64-byte block, which HMAC hashes first).
    let sha1 = TotpParams::default();
    let keys: Vec<Secret> = [20, 20, 16, 37, 80]
        .into_iter()
        .map(|len| Secret::from_bytes(rng.bytes(len)))
        .collect();
    // 200 times spread over 1970..2100, five consecutive steps each.
    for i in 0..200 {
        let unix = rng.next() % YEAR_2100;
        checked += cross_check(&keys[i % keys.len()], &sha1, unix, 4)?;
    }
    // Step boundaries: the last second of a step, the first of the next, and one after; at the
    // epoch, at 2^31 and 2^32 (32-bit time_t limits), and in 2100.
    let mut edges = vec![
        0,
        1,
        59,
        60,
        61,
        119,
        120,
        (1 << 31) - 1,
        1 << 31,
        (1 << 32) - 1,
    ];
    edges.push(1 << 32);
    for k in [1_000_000, 28_333_333, YEAR_2100 / 60 - 1] {
        edges.extend([k * 60 - 1, k * 60, k * 60 + 1]);
    }
    for unix in edges {
        checked += cross_check(&keys[0], &sha1, unix, 2)?;
    }

    // The other profiles a token row may hold: SHA-256 and SHA-512, 8 digits, 30 s.
    for algorithm in [Algorithm::Sha256, Algorithm::Sha512] {
        let params = TotpParams::new(algorithm, 8, 30).map_err(|e| e.to_string())?;
        let key = Secret::generate(algorithm);
        for _ in 0..30 {
            let unix = rng.next() % YEAR_2100;
            checked += cross_check(&key, &params, unix, 3)?;
        }
        checked += cross_check(&rfc_secret(algorithm), &params, 59, 1)?;
        checked += cross_check(&key, &params, 29, 2)?;
    }
    // Odd periods too: the step arithmetic is ours, not totp-rs's.
    for period in [1, 7, 300] {
        let params = TotpParams::new(Algorithm::Sha1, 8, period).map_err(|e| e.to_string())?;
        for _ in 0..5 {
            let unix = rng.next() % YEAR_2100;
            checked += cross_check(&keys[1], &params, unix, 2)?;
        }
    }
    assert!(checked >= 1_000, "only {checked} codes were compared");
    Ok(())
}
