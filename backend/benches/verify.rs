//! Pure verification cost: the CPU work a verification does outside the database.
//! `cargo bench -p backend --bench verify`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test/bench harness code: a failed step should stop loudly

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

use backend::crypto::Keyring;
use backend::domain::{decide, Policy, Purpose, TokenSnapshot, TokenState};
use protocol::{code_at_step, Secret, TotpParams};

fn bench(c: &mut Criterion) {
    let params = TotpParams::default();
    let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
    let now = 1_795_575_630u64;
    let step = params.step_at(now);
    let good = code_at_step(&secret, &params, step);
    let bad = protocol::Code::parse("000000", 6).unwrap();
    let snap = TokenSnapshot {
        state: TokenState::Active,
        params,
        last_step: Some(step - 5),
        last_tx_step: None,
        drift: 0,
        locked_at: None,
    };
    let policy = Policy::default();

    c.bench_function("code_at_step (HMAC-SHA1, 6 digits)", |b| {
        b.iter(|| code_at_step(black_box(&secret), &params, black_box(step)))
    });
    c.bench_function("decide: right code, window ±1", |b| {
        b.iter(|| {
            decide(
                black_box(&snap),
                &secret,
                black_box(&good),
                Purpose::Login,
                &policy,
                now,
            )
        })
    });
    c.bench_function("decide: wrong code, window ±1", |b| {
        b.iter(|| {
            decide(
                black_box(&snap),
                &secret,
                black_box(&bad),
                Purpose::Login,
                &policy,
                now,
            )
        })
    });
    let keys = Keyring::from_hex("k1", &"11".repeat(32)).unwrap();
    let sealed = keys.seal("999800000001", &secret).unwrap();
    c.bench_function("open sealed secret (AES-256-GCM) + decide", |b| {
        b.iter(|| {
            let s = keys.open("999800000001", black_box(&sealed)).unwrap();
            decide(&snap, &s, &good, Purpose::Login, &policy, now)
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
