//! Provisioning v2 (OPAQUE): a full exchange, and the attacks of issue 18 — a recording plus the
//! right password, a man in the middle swapping messages, a wrong password, a replayed first
//! message, and tampering with the sealed answer.
//!
//! Every message crosses a JSON round trip, as it would over HTTP, and the server's pending
//! state is stored and loaded between the two requests, as a backend behind a load balancer
//! must.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test harness code: a failed step should stop loudly

use protocol::wire::v2::{
    HexBytes, SetupFinishRequest, SetupFinishResponse, SetupStartRequest, SetupStartResponse,
};
use protocol::{
    client_start, register, server_respond, Algorithm, ClientConfirmed, DeviceInfo, PakeError,
    PasswordFile, Secret, Sensitive, ServerKey, ServerPending, ServiceId, TotpParams, UserId,
};

const PASSWORD: &str = "48151623";

fn service() -> ServiceId {
    "10112231".parse().unwrap()
}

fn user() -> UserId {
    "999800000009".parse().unwrap()
}

fn device() -> DeviceInfo {
    DeviceInfo {
        platform: "android".into(),
        model: "Pixel 8".into(),
        os_version: "14".into(),
        app_version: "2.0.0".into(),
    }
}

fn secret() -> Secret {
    Secret::from_bytes(b"12345678901234567890".to_vec())
}

/// Through JSON, as over HTTP.
fn wire<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> (T, String) {
    let json = serde_json::to_string(value).unwrap();
    (serde_json::from_str(&json).unwrap(), json)
}

/// A bank with one issuance: the server key (as stored and reloaded) and the issuance's record.
struct Bank {
    key: ServerKey,
    record: PasswordFile,
}

impl Bank {
    fn new() -> Bank {
        let key = ServerKey::generate();
        let record = register(
            &key,
            &service(),
            &user(),
            &Sensitive::new(PASSWORD.to_owned()),
        )
        .unwrap();
        // Stored and loaded back, as the backend will.
        let key = ServerKey::from_bytes(&key.to_bytes()).unwrap();
        let record = PasswordFile::from_bytes(&record.to_bytes()).unwrap();
        Bank { key, record }
    }

    fn respond(&self, request: &SetupStartRequest) -> (Vec<u8>, SetupStartResponse) {
        let (request, _) = wire(request);
        let (pending, response) = server_respond(&self.key, &self.record, &request).unwrap();
        (pending.to_bytes().to_vec(), response)
    }

    fn finish(
        &self,
        stored: &[u8],
        request: &SetupFinishRequest,
    ) -> Result<SetupFinishResponse, PakeError> {
        let (request, _) = wire(request);
        let pending = ServerPending::from_bytes(stored).unwrap();
        let confirmed = pending.on_finish(&request)?;
        Ok(confirmed
            .seal(
                &secret(),
                TotpParams::default(),
                1_700_000_000,
                "Example Bank".into(),
                "999800000009".into(),
            )
            .unwrap())
    }
}

/// Every byte both sides sent in one setup, as JSON.
struct Recording {
    start: String,
    reply: String,
    finish: String,
    sealed: String,
}

/// A complete, successful setup; returns the secret the app opened and the recording.
fn full_exchange(bank: &Bank, password: &str) -> Result<(Secret, Recording), PakeError> {
    let (client, start) = client_start(
        service(),
        user(),
        Sensitive::new(password.to_owned()),
        device(),
    )?;
    let (start, start_json) = wire(&start);
    let (stored, reply) = bank.respond(&start);
    let (reply, reply_json) = wire(&reply);
    let (confirmed, finish) = client.on_server_reply(&reply)?;
    let (finish, finish_json) = wire(&finish);
    let sealed = bank.finish(&stored, &finish)?;
    let (sealed, sealed_json) = wire(&sealed);
    let secret = confirmed.open_sealed(&sealed)?;
    Ok((
        secret,
        Recording {
            start: start_json,
            reply: reply_json,
            finish: finish_json,
            sealed: sealed_json,
        },
    ))
}

#[test]
fn a_full_exchange_opens_the_secret() {
    let bank = Bank::new();
    let (opened, rec) = full_exchange(&bank, PASSWORD).unwrap();
    assert_eq!(
        opened,
        secret(),
        "the app holds exactly the server's secret"
    );

    let all = format!("{} {} {} {}", rec.start, rec.reply, rec.finish, rec.sealed);
    for leak in [
        PASSWORD.to_owned(),
        hex::encode(PASSWORD),
        hex::encode(secret().expose()),
        secret().to_base32().as_str().to_owned(),
    ] {
        assert!(
            !all.contains(&leak),
            "neither the password nor the secret crosses the wire in the clear"
        );
    }
    let sealed: SetupFinishResponse = serde_json::from_str(&rec.sealed).unwrap();
    assert_eq!(sealed.params, TotpParams::default());
    assert_eq!(sealed.server_time, 1_700_000_000);
    let start: SetupStartRequest = serde_json::from_str(&rec.start).unwrap();
    assert_eq!(start.pake_message.as_slice().len(), 96, "OPAQUE KE1");
    let reply: SetupStartResponse = serde_json::from_str(&rec.reply).unwrap();
    assert_eq!(reply.pake_message.as_slice().len(), 320, "OPAQUE KE2");
    assert_eq!(
        bank.record.to_bytes().len(),
        193,
        "the record the server keeps"
    );
    assert_eq!(
        bank.key.to_bytes().len(),
        128,
        "OPRF seed, static secret key, dummy public key"
    );
}

#[test]
fn a_recording_does_not_open_the_secret_even_with_the_right_password() {
    let bank = Bank::new();
    let (_, rec) = full_exchange(&bank, PASSWORD).unwrap();
    let reply: SetupStartResponse = serde_json::from_str(&rec.reply).unwrap();
    let sealed: SetupFinishResponse = serde_json::from_str(&rec.sealed).unwrap();

    // The eavesdropper knows the password (learned later) and replays the recorded server
    // reply into a client of its own: the OPRF blind and ephemeral key of the recorded run
    // never left the app, so the reply does not verify. Every candidate, right or wrong, fails
    // the same way: the recording offers no offline check of a password.
    for candidate in [PASSWORD, "00000000", "48151624", "1234"] {
        let (attacker, _) = client_start(
            service(),
            user(),
            Sensitive::new(candidate.to_owned()),
            device(),
        )
        .unwrap();
        assert_eq!(
            attacker.on_server_reply(&reply).map(|_| ()),
            Err(PakeError::ServerNotConfirmed),
            "candidate {candidate:?}: the outcome must not depend on the password"
        );
    }

    // With the password it can run a *new* exchange with the bank (that is an online attempt
    // the bank counts); the new session's key still does not open the recorded ciphertext.
    let (attacker, start) = client_start(
        service(),
        user(),
        Sensitive::new(PASSWORD.to_owned()),
        device(),
    )
    .unwrap();
    let (_stored, new_reply) = bank.respond(&start);
    let (confirmed, _finish) = attacker.on_server_reply(&new_reply).unwrap();
    assert_eq!(
        confirmed.open_sealed(&sealed),
        Err(PakeError::SealOpen),
        "each exchange's key comes from fresh ephemeral keys: old recordings stay sealed"
    );
}

fn started(password: &str) -> (protocol::ClientStart, SetupStartRequest) {
    client_start(
        service(),
        user(),
        Sensitive::new(password.to_owned()),
        device(),
    )
    .unwrap()
}

#[test]
fn a_man_in_the_middle_swapping_messages_is_detected_on_both_sides() {
    let bank = Bank::new();

    // 1. The MITM replaces the app's KE1 with its own (it guesses the password).
    let (app, _genuine) = started(PASSWORD);
    let (mitm, forged) = started("11111111");
    let (stored, reply_to_mitm) = bank.respond(&forged);
    assert_eq!(
        app.on_server_reply(&reply_to_mitm).map(|_| ()),
        Err(PakeError::ServerNotConfirmed),
        "the app detects a reply made for another KE1"
    );
    assert_eq!(
        mitm.on_server_reply(&reply_to_mitm).map(|_| ()),
        Err(PakeError::ServerNotConfirmed),
        "a wrong guess cannot complete the exchange"
    );
    let forged_finish = SetupFinishRequest {
        exchange_id: reply_to_mitm.exchange_id.clone(),
        key_confirmation: HexBytes(vec![0x42; 64]),
    };
    assert_eq!(
        bank.finish(&stored, &forged_finish).map(|_| ()),
        Err(PakeError::ClientNotConfirmed),
        "the server detects a confirmation it cannot verify: a failed attempt"
    );

    // 2. Two runs at once; the MITM swaps the servers' replies.
    let (app_a, start_a) = started(PASSWORD);
    let (app_b, start_b) = started(PASSWORD);
    let (_, reply_a) = bank.respond(&start_a);
    let (_, reply_b) = bank.respond(&start_b);
    assert_eq!(
        app_a.on_server_reply(&reply_b).map(|_| ()),
        Err(PakeError::ServerNotConfirmed)
    );
    assert_eq!(
        app_b.on_server_reply(&reply_a).map(|_| ()),
        Err(PakeError::ServerNotConfirmed)
    );

    // 3. Two runs at once; the MITM swaps the apps' confirmations (keeping exchange IDs).
    let (app_a, start_a) = started(PASSWORD);
    let (app_b, start_b) = started(PASSWORD);
    let (stored_a, reply_a) = bank.respond(&start_a);
    let (stored_b, reply_b) = bank.respond(&start_b);
    let (_, finish_a) = app_a.on_server_reply(&reply_a).unwrap();
    let (_, finish_b) = app_b.on_server_reply(&reply_b).unwrap();
    let swapped_a = SetupFinishRequest {
        exchange_id: finish_a.exchange_id.clone(),
        key_confirmation: finish_b.key_confirmation.clone(),
    };
    let swapped_b = SetupFinishRequest {
        exchange_id: finish_b.exchange_id.clone(),
        key_confirmation: finish_a.key_confirmation.clone(),
    };
    assert_eq!(
        bank.finish(&stored_a, &swapped_a).map(|_| ()),
        Err(PakeError::ClientNotConfirmed)
    );
    assert_eq!(
        bank.finish(&stored_b, &swapped_b).map(|_| ()),
        Err(PakeError::ClientNotConfirmed)
    );
    assert_eq!(
        bank.finish(&stored_a, &finish_b).map(|_| ()),
        Err(PakeError::ExchangeMismatch),
        "a finish for another exchange is refused before any check"
    );

    // 4. The MITM relays KE1 but changes the app nonce (or the user): the contexts differ.
    let (app, start) = started(PASSWORD);
    let mut altered = start.clone();
    altered.app_nonce = HexBytes(vec![0; 32]);
    let (_, reply) = bank.respond(&altered);
    assert_eq!(
        app.on_server_reply(&reply).map(|_| ()),
        Err(PakeError::ServerNotConfirmed),
        "the app nonce is in the transcript"
    );
}

/// One genuine run up to the sealed answer: the app's state and the server's answer.
fn sealed_run(bank: &Bank) -> (ClientConfirmed, SetupFinishResponse) {
    let (app, start) = started(PASSWORD);
    let (stored, reply) = bank.respond(&start);
    let (confirmed, finish) = app.on_server_reply(&reply).unwrap();
    (confirmed, bank.finish(&stored, &finish).unwrap())
}

#[test]
fn an_altered_sealed_answer_is_refused() {
    let bank = Bank::new();
    type Alter = fn(&mut SetupFinishResponse);
    let cases: [(&str, Alter, PakeError); 7] = [
        (
            "ciphertext",
            |r| r.sealed_secret.ciphertext.0[0] ^= 1,
            PakeError::SealOpen,
        ),
        (
            "nonce",
            |r| r.sealed_secret.nonce.0[0] ^= 1,
            PakeError::SealOpen,
        ),
        (
            "server time",
            |r| r.server_time += 3600,
            PakeError::SealOpen,
        ),
        (
            "params",
            |r| r.params = TotpParams::new(Algorithm::Sha256, 8, 30).unwrap(),
            PakeError::SealOpen,
        ),
        (
            "issuer",
            |r| r.issuer = "Evil Bank".into(),
            PakeError::SealOpen,
        ),
        ("label", |r| r.label.push('x'), PakeError::SealOpen),
        (
            "user",
            |r| r.user_id = UserId::from_serial(99_980_000_001).unwrap(),
            PakeError::ExchangeMismatch,
        ),
    ];
    for (what, alter, want) in cases {
        let (confirmed, mut answer) = sealed_run(&bank);
        alter(&mut answer);
        assert_eq!(
            confirmed.open_sealed(&answer).map(|_| ()),
            Err(want),
            "an altered {what} must not be accepted: everything in the answer is authenticated"
        );
    }
    let (confirmed, answer) = sealed_run(&bank);
    assert_eq!(confirmed.open_sealed(&answer).unwrap(), secret());
}

#[test]
fn a_wrong_password_fails_key_confirmation() {
    let bank = Bank::new();
    assert_eq!(
        full_exchange(&bank, "48151624").map(|_| ()),
        Err(PakeError::ServerNotConfirmed),
        "the app learns at once that the password is wrong and sends no confirmation"
    );
    // A client that sends a confirmation anyway (it cannot compute the right one).
    let (_app, start) = started("48151624");
    let (stored, reply) = bank.respond(&start);
    for guess in [vec![0u8; 64], vec![0xff; 64], vec![1; 10]] {
        let finish = SetupFinishRequest {
            exchange_id: reply.exchange_id.clone(),
            key_confirmation: HexBytes(guess),
        };
        assert_eq!(
            bank.finish(&stored, &finish).map(|_| ()),
            Err(PakeError::ClientNotConfirmed),
            "a wrong or malformed confirmation is a wrong activation password"
        );
    }
    // The record binds the user: the right password for another user ID does not work.
    let other: UserId = UserId::from_serial(99_980_000_001).unwrap();
    let (app, mut start) = client_start(
        service(),
        other.clone(),
        Sensitive::new(PASSWORD.to_owned()),
        device(),
    )
    .unwrap();
    start.user_id = other;
    let (_, reply) = bank.respond(&start);
    assert_eq!(
        app.on_server_reply(&reply).map(|_| ()),
        Err(PakeError::ServerNotConfirmed),
        "identities are in the envelope: user 999800000009's record serves no one else"
    );
}

#[test]
fn a_replayed_first_message_gives_an_exchange_nobody_can_finish() {
    let bank = Bank::new();
    let (app, start) = started(PASSWORD);
    let (stored, reply) = bank.respond(&start);
    let (confirmed, finish) = app.on_server_reply(&reply).unwrap();
    let sealed = bank.finish(&stored, &finish).unwrap();
    assert_eq!(confirmed.open_sealed(&sealed).unwrap(), secret());

    // The eavesdropper replays the recorded KE1, then the recorded KE3.
    let (stored_again, reply_again) = bank.respond(&start);
    assert_ne!(
        reply_again.exchange_id, reply.exchange_id,
        "a replay is a new exchange"
    );
    assert_ne!(
        reply_again.pake_message, reply.pake_message,
        "with a fresh server nonce and ephemeral key"
    );
    let pending = ServerPending::from_bytes(&stored_again).unwrap();
    assert_eq!(
        pending.app_nonce(),
        start.app_nonce.as_slice(),
        "the backend can see the nonce it already answered and refuse the start"
    );
    let replayed_finish = SetupFinishRequest {
        exchange_id: reply_again.exchange_id.clone(),
        key_confirmation: finish.key_confirmation.clone(),
    };
    assert_eq!(
        bank.finish(&stored_again, &replayed_finish).map(|_| ()),
        Err(PakeError::ClientNotConfirmed),
        "the recorded confirmation belongs to the old transcript"
    );
}

#[test]
fn stored_state_is_versioned_and_checked() {
    let bank = Bank::new();
    let (_, start) = started(PASSWORD);
    let (stored, _) = bank.respond(&start);
    assert!(ServerPending::from_bytes(&stored).is_ok());
    for bad in [
        &stored[..stored.len() - 1],
        &stored[1..],
        &[][..],
        &[2u8, 0, 0][..],
    ] {
        assert_eq!(
            ServerPending::from_bytes(bad).map(|_| ()),
            Err(PakeError::StateFormat)
        );
    }
    let mut longer = stored.clone();
    longer.push(0);
    assert_eq!(
        ServerPending::from_bytes(&longer).map(|_| ()),
        Err(PakeError::StateFormat)
    );
    let record = bank.record.to_bytes();
    assert_eq!(record[0], 1, "version byte");
    let mut v2 = record.to_vec();
    v2[0] = 2;
    assert_eq!(
        PasswordFile::from_bytes(&v2).map(|_| ()),
        Err(PakeError::StateFormat)
    );
    assert_eq!(
        ServerKey::from_bytes(&[0; 10]).map(|_| ()),
        Err(PakeError::StateFormat)
    );
    assert_eq!(bank.key.public_key().len(), 32);
}

#[test]
fn states_are_redacted_in_debug() {
    let bank = Bank::new();
    let (app, start) = started(PASSWORD);
    let (stored, reply) = bank.respond(&start);
    let pending = ServerPending::from_bytes(&stored).unwrap();
    let shown = format!(
        "{app:?} {pending:?} {:?} {:?} {start:?} {reply:?}",
        bank.key, bank.record
    );
    assert!(!shown.contains(PASSWORD), "{shown}");
    for name in ["ClientStart", "ServerPending", "ServerKey", "PasswordFile"] {
        assert!(
            shown.contains(&format!("{name}([redacted])")),
            "{name}: {shown}"
        );
    }
    let (confirmed, _) = app.on_server_reply(&reply).unwrap();
    assert_eq!(format!("{confirmed:?}"), "ClientConfirmed([redacted])");
    assert_eq!(confirmed.server_public_key(), bank.key.public_key());
}
