//! The store and engine suite, run against SQLite and PostgreSQL alike.

use backend::domain::{DomainError, Outcome, Purpose, TokenState};
use backend::engine::{Actor, Clock, EngineError};
use backend::engine::{Login, PasswordCheck};
use protocol::{ServiceId, UserId};

use crate::both_dbs;
use crate::support::*;
use protocol::Secret;

both_dbs!(
    lifecycle_end_to_end,
    lockout_and_unlock,
    timed_lock_lifts,
    activation_password_attempts,
    issuance_expiry_and_link_rules,
    illegal_transitions_are_errors,
    concurrent_replay_accepted_once,
    drift_window_bounded_in_store,
    secrets_sealed_and_keys_rotate,
    audit_trail_has_no_secrets,
    other_customers_token_is_untouched,
    stale_rows_are_never_written,
    a_batch_writes_only_what_landed,
    password_guessing_locks_the_customer,
    a_right_login_does_not_clear_confirmation_guesses,
    a_last_setup_attempt_never_answered_ends_the_issuance,
);

async fn lifecycle_end_to_end(db: Db) {
    let env = Env::new(db).await;
    env.customer("taro01").await;
    let uid = env.issue("taro01").await;
    let st = env.engine.token_status(&uid).await.unwrap();
    assert_eq!(st.state, TokenState::Issued);
    assert_eq!(st.service_id, "10112231");
    assert!(
        UserId::parse(&uid).is_ok(),
        "issued user IDs carry a valid check digit"
    );

    // A second live token is refused.
    let err = env
        .engine
        .issue_token("taro01", "taro@example.jp", z("5678"), &host())
        .await
        .unwrap_err();
    assert_eq!(err.code(), "LIVE_TOKEN_EXISTS");

    // Nothing verifies before activation.
    let r = env
        .engine
        .verify(&uid, z("123456"), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::NotActive);

    env.engine.open_link(&uid, &host()).await.unwrap();
    let secret = env.provision(&uid).await;
    assert_eq!(secret.len(), 20, "SHA-1 secrets are 160 bits");
    let again = env
        .engine
        .provision(
            &ServiceId::parse("10112231").unwrap(),
            &UserId::parse(&uid).unwrap(),
            z("1234"),
            &device(),
            &Actor::new("app", None),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(again, EngineError::AlreadyProvisioned),
        "the secret is handed out only once"
    );

    // Provisioned: login codes are not accepted yet, activation is.
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::NotActive);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Activation, host())
        .await
        .unwrap();
    assert_eq!((r.result, r.state), (Outcome::Ok, TokenState::Active));

    // The activation code cannot be used again (RFC 6238 §5.2).
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Replayed);
    // Nor an older one.
    let r = env
        .engine
        .verify(&uid, env.code(&secret, -1), Purpose::Transfer, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Replayed);

    env.clock.advance(60);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Transfer, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);

    env.clock.advance(60);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Deactivation, host())
        .await
        .unwrap();
    assert_eq!((r.result, r.state), (Outcome::Ok, TokenState::Deactivated));
    env.clock.advance(60);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(
        r.result,
        Outcome::NotActive,
        "a deactivated token verifies nothing"
    );

    // Next-day rule on the Tokyo calendar: T0 is 12:00 JST; 23:59:59 JST is still today.
    let now = env.now();
    let midnight_jst = T0 - 30 + 12 * 3600; // 2026-11-26 00:00:00 JST
    env.clock.set(midnight_jst - 1);
    let err = env
        .engine
        .issue_token("taro01", "taro@example.jp", z("5678"), &host())
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        "REISSUE_NEXT_DAY",
        "issuance on the day of deactivation is refused"
    );
    assert!(now < midnight_jst);
    env.clock.set(midnight_jst);
    let uid2 = env
        .engine
        .issue_token("taro01", "taro@example.jp", z("5678"), &host())
        .await
        .unwrap()
        .user_id;
    assert_ne!(uid2, uid);
}

async fn lockout_and_unlock(db: Db) {
    let env = Env::new(db).await;
    let (uid, secret) = env.active_token("hanako1").await;
    env.clock.advance(60);
    // 4 failures then a success: the counter resets.
    for left in (1..=4).rev() {
        let r = env
            .engine
            .verify(&uid, z("000000"), Purpose::Login, host())
            .await
            .unwrap();
        assert_eq!((r.result, r.attempts_left), (Outcome::Invalid, Some(left)));
    }
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
    assert_eq!(
        env.engine.token_status(&uid).await.unwrap().failures,
        0,
        "a success resets the count"
    );
    // 5 consecutive failures lock.
    for i in 1..=5 {
        let r = env
            .engine
            .verify(&uid, z("000001"), Purpose::Login, host())
            .await
            .unwrap();
        if i < 5 {
            assert_eq!(r.result, Outcome::Invalid);
        } else {
            assert_eq!(
                (r.result, r.locked),
                (Outcome::Locked, true),
                "the fifth failure locks"
            );
        }
    }
    env.clock.advance(60);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(
        r.result,
        Outcome::Locked,
        "a locked token refuses even the right code"
    );
    // Brute force against a lock counts nothing further and still says locked.
    let r = env
        .engine
        .verify(&uid, z("999999"), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Locked);
    env.clock.advance(24 * 3600);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(
        r.result,
        Outcome::Locked,
        "without a lock time only staff unlock"
    );

    let st = env
        .engine
        .unlock(&uid, &Actor::new("staff:1", None), "customer called")
        .await
        .unwrap();
    assert!(!st.locked);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
    let err = env.engine.unlock(&uid, &host(), "again").await.unwrap_err();
    assert_eq!(err.code(), "NOT_LOCKED");
    let audit = env.audit(&uid).await;
    assert!(audit
        .iter()
        .any(|a| a.action == "lock" && a.outcome == "locked"));
    assert!(audit
        .iter()
        .any(|a| a.action == "unlock" && a.actor == "staff:1"));
}

async fn timed_lock_lifts(db: Db) {
    let env = Env::with_config(db, |c| {
        c.policy.max_failures = 3;
        c.policy.lock_seconds = Some(900);
    })
    .await;
    let (uid, secret) = env.active_token("jiro001").await;
    env.clock.advance(60);
    for _ in 0..3 {
        env.engine
            .verify(&uid, z("000000"), Purpose::Login, host())
            .await
            .unwrap();
    }
    assert!(env.engine.token_status(&uid).await.unwrap().locked);
    env.clock.advance(899);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Locked);
    env.clock.advance(1);
    let r = env
        .engine
        .verify(&uid, z("000000"), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(
        (r.result, r.attempts_left),
        (Outcome::Invalid, Some(2)),
        "after the lock time the count starts again"
    );
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
}

async fn activation_password_attempts(db: Db) {
    let env = Env::new(db).await;
    env.customer("saburo1").await;
    let uid = env.issue("saburo1").await;
    let sid = ServiceId::parse("10112231").unwrap();
    let u = UserId::parse(&uid).unwrap();
    let app = Actor::new("app", Some("10.0.0.9".into()));
    let err = env
        .engine
        .provision(&sid, &u, z("1234"), &device(), &app)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        "LINK_NOT_OPENED",
        "setup is refused before the mailed link is opened"
    );
    env.engine.open_link(&uid, &host()).await.unwrap();
    for left in (1..=4).rev() {
        match env
            .engine
            .provision(&sid, &u, z("9999"), &device(), &app)
            .await
            .unwrap_err()
        {
            EngineError::WrongActivationPassword { attempts_left } => {
                assert_eq!(attempts_left, left)
            }
            other => panic!("expected wrong password, got {other:?}"),
        }
    }
    let err = env
        .engine
        .provision(&sid, &u, z("9999"), &device(), &app)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ISSUANCE_DEAD");
    let err = env
        .engine
        .provision(&sid, &u, z("1234"), &device(), &app)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        "ISSUANCE_DEAD",
        "the right password no longer helps"
    );
    assert_eq!(
        env.engine.token_status(&uid).await.unwrap().state,
        TokenState::Voided
    );
    // A service ID this server does not serve is named as the wrong field (issue 14 item 4),
    // for a real user ID as for any other: the answer tells nothing about user IDs.
    let err = env
        .engine
        .provision(
            &ServiceId::parse("10112232").unwrap(),
            &u,
            z("1234"),
            &device(),
            &app,
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "UNKNOWN_SERVICE_ID");
    // The customer issues again (same day is fine: nothing was deactivated).
    env.issue("saburo1").await;
    let audit = env.audit(&uid).await;
    assert_eq!(
        audit.iter().filter(|a| a.action == "provision").count(),
        7,
        "every attempt is audited"
    );
    assert!(
        audit
            .iter()
            .filter(|a| a.action == "provision")
            .all(|a| a.actor == "app" && a.ip.as_deref() == Some("10.0.0.9")),
        "each attempt records who and from where: {audit:?}"
    );
}

async fn issuance_expiry_and_link_rules(db: Db) {
    let env = Env::new(db).await;
    env.customer("shiro01").await;
    let uid = env.issue("shiro01").await;
    env.engine.open_link(&uid, &host()).await.unwrap();
    env.engine.open_link(&uid, &host()).await.unwrap(); // reopening the link is fine
    env.clock.advance(7 * 86_400);
    let err = env
        .engine
        .provision(
            &ServiceId::parse("10112231").unwrap(),
            &UserId::parse(&uid).unwrap(),
            z("1234"),
            &device(),
            &Actor::new("app", None),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ISSUANCE_EXPIRED");
    assert_eq!(
        env.engine.token_status(&uid).await.unwrap().state,
        TokenState::Voided,
        "shown as void once expired"
    );
    let err = env.engine.open_link(&uid, &host()).await.unwrap_err();
    assert_eq!(err.code(), "ISSUANCE_EXPIRED");
    // A new issuance replaces the expired one.
    let uid2 = env.issue("shiro01").await;
    assert_eq!(
        env.engine.token_status(&uid2).await.unwrap().state,
        TokenState::Issued
    );
}

async fn illegal_transitions_are_errors(db: Db) {
    let env = Env::new(db).await;
    let (uid, _) = env.active_token("goro001").await;
    let err = env.engine.open_link(&uid, &host()).await.unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Domain(DomainError::IllegalTransition { .. })
        ),
        "{err:?}"
    );
    env.engine
        .revoke(&uid, &Actor::new("staff:2", None), "phone stolen")
        .await
        .unwrap();
    let err = env
        .engine
        .revoke(&uid, &Actor::new("staff:2", None), "again")
        .await
        .unwrap_err();
    assert_eq!(err.code(), "ILLEGAL_TRANSITION");
    let audit = env.audit(&uid).await;
    assert!(
        audit
            .iter()
            .any(|a| a.action == "revoke" && a.outcome == "ILLEGAL_TRANSITION"),
        "refusals are audited too"
    );
    let err = env.engine.token_status("123456789012").await.unwrap_err();
    assert_eq!(err.code(), "USER_ID_CHECK_DIGIT");
}

async fn concurrent_replay_accepted_once(db: Db) {
    let env = Env::new(db).await;
    let (uid, secret) = env.active_token("rokuro1").await;
    env.clock.advance(60);
    let code = env.code(&secret, 0);
    let mut handles = Vec::new();
    for _ in 0..64 {
        let engine = env.engine.clone();
        let uid = uid.clone();
        let code = code.clone();
        handles.push(tokio::spawn(async move {
            engine
                .verify(&uid, code, Purpose::Transfer, host())
                .await
                .unwrap()
                .result
        }));
    }
    let mut ok = 0;
    let mut replayed = 0;
    for h in handles {
        match h.await.unwrap() {
            Outcome::Ok => ok += 1,
            Outcome::Replayed => replayed += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        (ok, replayed),
        (1, 63),
        "one code submitted 64 times at once is accepted exactly once"
    );
    let audit = env.audit(&uid).await;
    assert_eq!(
        audit
            .iter()
            .filter(|a| a.action == "verify_transfer")
            .count(),
        64,
        "each decision is audited"
    );
}

async fn drift_window_bounded_in_store(db: Db) {
    let env = Env::new(db).await;
    let (uid, secret) = env.active_token("shichi1").await;
    // A chain of ever-later codes at the same real time walks the window at most
    // max_drift (2) + window (1) steps ahead.
    let mut results = Vec::new();
    for ahead in 1..=6 {
        results.push(
            env.engine
                .verify(&uid, env.code(&secret, ahead), Purpose::Login, host())
                .await
                .unwrap()
                .result,
        );
    }
    assert_eq!(
        results,
        [
            Outcome::Ok,
            Outcome::Ok,
            Outcome::Ok,
            Outcome::Invalid,
            Outcome::Invalid,
            Outcome::Invalid
        ]
    );
}

async fn secrets_sealed_and_keys_rotate(db: Db) {
    let env = Env::new(db).await;
    let (uid, secret) = env.active_token("hachi01").await;
    // At rest: ciphertext only, under the configured key.
    let row = env
        .engine
        .store()
        .token_by_user_id(&uid)
        .await
        .unwrap()
        .unwrap();
    let blob = row.secret_enc.clone().unwrap();
    assert!(
        !blob.windows(secret.len()).any(|w| w == secret.expose()),
        "the secret is not stored in the clear"
    );
    assert_eq!(row.secret_key_id.as_deref(), Some("test1"));
    // A ciphertext moved onto another token does not open (AAD binds it to its user ID).
    let sealed = row.sealed().unwrap();
    assert!(env.engine.keys().open("999999999990", &sealed).is_err());

    // Rotation: a running engine with both keys re-seals everything under the new key and keeps
    // verifying; afterwards the old key can go.
    let two_keys = format!("{MASTER_KEY},test2:{}", "02".repeat(32));
    let db2 = TestDb {
        url: env.db.url.clone(),
        dir: tempfile::tempdir().unwrap(),
        pg_name: None,
    };
    {
        use std::os::unix::fs::PermissionsExt;
        // The server refuses a data directory others can read (tempdir makes it 0755).
        std::fs::set_permissions(db2.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let mut cfg = config_for(&db2);
    cfg.master_key = Some(backend::config::Sensitive(two_keys));
    let (state2, _) = backend::build_default(&cfg).await.unwrap();
    let n = state2.engine.reseal_all().await.unwrap();
    assert_eq!(
        n, 2,
        "the token's secret and the OPAQUE server key (issue 18)"
    );
    assert_eq!(
        state2.engine.store().keys_in_use().await.unwrap(),
        vec![("test2".to_owned(), 2)]
    );
    env.clock.advance(60);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await;
    // The first engine has only test1: it must not verify with a secret it cannot open.
    assert!(
        r.is_err(),
        "an engine without the new key must refuse, not guess"
    );
    let st2 = env
        .engine
        .store()
        .token_by_user_id(&uid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(st2.secret_key_id.as_deref(), Some("test2"));

    // Start-up refuses a key set that lacks a key in use, and a wrong key under a known id.
    let mut only_old = config_for(&db2);
    only_old.master_key = Some(backend::config::Sensitive(MASTER_KEY.into()));
    let err = backend::build_default(&only_old)
        .await
        .err()
        .expect("must refuse")
        .to_string();
    assert!(
        err.contains("test2") && err.contains("not configured"),
        "{err}"
    );
    let mut wrong = config_for(&db2);
    wrong.master_key = Some(backend::config::Sensitive(format!(
        "test2:{}",
        "03".repeat(32)
    )));
    let err = format!(
        "{:#}",
        backend::build_default(&wrong)
            .await
            .err()
            .expect("must refuse")
    );
    assert!(err.contains("does not match"), "{err}");
}

async fn audit_trail_has_no_secrets(db: Db) {
    let env = Env::new(db).await;
    let (uid, secret) = env.active_token("kyuu001").await;
    env.clock.advance(60);
    let code = env.code(&secret, 0);
    env.engine
        .verify(&uid, code.clone(), Purpose::Login, host())
        .await
        .unwrap();
    env.engine
        .verify(&uid, z("000000"), Purpose::Login, host())
        .await
        .unwrap();
    let audit = env.audit(&uid).await;
    let actions: Vec<&str> = audit.iter().rev().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "issue",
            "open_link",
            "provision",
            "activate",
            "verify_login",
            "verify_login"
        ]
    );
    let b32 = secret.to_base32();
    for a in &audit {
        let text = format!("{a:?}");
        assert!(
            !text.contains(code.as_str()) && !text.contains(b32.as_str()) && !text.contains("1234"),
            "audit row leaks: {text}"
        );
        assert!(a.at > 0 && !a.actor.is_empty());
    }
    assert_eq!(
        env.engine
            .store()
            .audit_count("verify_login", "ok")
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        env.engine
            .store()
            .audit_count("verify_login", "invalid")
            .await
            .unwrap(),
        1
    );
}

async fn other_customers_token_is_untouched(db: Db) {
    let env = Env::new(db).await;
    let (uid_a, secret_a) = env.active_token("alice01").await;
    let (uid_b, _secret_b) = env.active_token("bobby01").await;
    env.clock.advance(60);
    // A's code is not B's code.
    let r = env
        .engine
        .verify(&uid_b, env.code(&secret_a, 0), Purpose::Transfer, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Invalid);
    // ...and failing on B did not spend A's step or count against A.
    let r = env
        .engine
        .verify(&uid_a, env.code(&secret_a, 0), Purpose::Transfer, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
    assert_eq!(env.engine.token_status(&uid_a).await.unwrap().failures, 0);
    assert_eq!(env.engine.token_status(&uid_b).await.unwrap().failures, 1);
}

/// The update a verification of the next step makes of a token read as `row`, expecting the
/// row still as read.
fn next_step(row: &backend::store::TokenRow) -> backend::store::TokenUpdate {
    backend::store::TokenUpdate {
        id: row.id,
        last_step: row.last_step + 1,
        last_tx_step: row.last_tx_step,
        drift: 0,
        failures: 0,
        locked_at: None,
        state: TokenState::Active,
        last_used_at: Some(1),
        activated_at: row.activated_at,
        deactivated_at: None,
        expect_last_step: row.last_step,
        expect_last_tx_step: row.last_tx_step,
        expect_failures: row.failures,
        expect_state: row.state,
        expect_locked_at: row.locked_at,
    }
}

/// The batch writes a token only if its row is still exactly as read: a step accepted by
/// another process in between must make the write fail, never be overwritten.
async fn stale_rows_are_never_written(db: Db) {
    let env = Env::new(db).await;
    let (uid, secret) = env.active_token("stale01").await;
    let store = env.engine.store();
    let read = store.token_by_user_id(&uid).await.unwrap().unwrap();
    // Meanwhile a verification elsewhere accepts the next step.
    env.clock.advance(60);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok);
    let mut tx = store.begin().await.unwrap();
    let landed = tx.apply_token_updates(&[next_step(&read)]).await.unwrap();
    assert!(
        landed.is_empty(),
        "a write based on a stale read must not land"
    );
    let fresh = tx.token(&uid).await.unwrap().unwrap();
    let landed = tx.apply_token_updates(&[next_step(&fresh)]).await.unwrap();
    assert_eq!(
        landed.into_iter().collect::<Vec<_>>(),
        vec![fresh.id],
        "a write based on the current row lands"
    );
    drop(tx); // rolled back
    let after = store.token_by_user_id(&uid).await.unwrap().unwrap();
    assert_eq!(
        after.last_step, fresh.last_step,
        "a dropped transaction writes nothing"
    );
}

/// How a test makes a read stale: it changes what the update expects of the row.
type Stale = fn(&mut backend::store::TokenUpdate);

/// A test batch on one token: its first round decides on a read made stale in one column
/// (as if another process wrote the row between the read and the write), the next on the row
/// as it is. Each round writes an audit event that waits for the token's update and one that
/// does not.
struct StaleThenFresh {
    uid: String,
    stale: Stale,
    token: Option<(i64, i64)>,
    round: usize,
    done: bool,
    landed: Vec<Vec<i64>>,
}

impl backend::store::BatchLogic for StaleThenFresh {
    fn pending(&self) -> Vec<String> {
        if self.done {
            Vec::new()
        } else {
            vec![self.uid.clone()]
        }
    }

    fn decide(&mut self, rows: Vec<backend::store::TokenRow>) -> Vec<backend::store::TokenUpdate> {
        let row = &rows[0];
        self.token = Some((row.id, row.customer_id));
        let mut u = next_step(row);
        if self.round == 0 {
            (self.stale)(&mut u);
        }
        vec![u]
    }

    fn writes(&mut self) -> backend::store::RoundWrites {
        let (id, customer_id) = self.token.unwrap();
        let audit = |outcome: &str| {
            backend::store::PendingAudit::from(&backend::store::NewAudit {
                at: 1,
                actor: "test",
                customer_id: Some(customer_id),
                user_id: Some(&self.uid),
                action: "batch_test",
                outcome,
                ..Default::default()
            })
        };
        let r = self.round;
        backend::store::RoundWrites {
            audits: vec![
                (Some(id), audit(&format!("round{r}_waits"))),
                (None, audit(&format!("round{r}_always"))),
            ],
            mails: Vec::new(),
        }
    }

    fn landed(&mut self, landed: &std::collections::HashSet<i64>) {
        self.landed.push(landed.iter().copied().collect());
        self.done = !landed.is_empty() || self.round >= 3;
        self.round += 1;
    }
}

/// The batch writer (each database's own path) compare-and-sets every update against every
/// column the decision read: a read made stale in any one of them does not land, and the
/// audit events that waited for it are not written, while those that waited for nothing are;
/// the next round, on the row as it is, lands with its events, in order.
async fn a_batch_writes_only_what_landed(db: Db) {
    let env = Env::new(db).await;
    let (uid, _) = env.active_token("landed1").await;
    let store = env.engine.store().clone();
    let mut writer = store.batch_writer();
    let stale: [(&str, Stale); 5] = [
        ("last step", |u| u.expect_last_step -= 1),
        ("transaction step", |u| u.expect_last_tx_step += 1),
        ("failures", |u| u.expect_failures += 1),
        ("state", |u| u.expect_state = TokenState::Provisioned),
        ("lock", |u| u.expect_locked_at = Some(5)),
    ];
    for (what, stale) in stale {
        let before = store.token_by_user_id(&uid).await.unwrap().unwrap();
        let trail_before = env.audit(&uid).await.len();
        let done = writer
            .run(StaleThenFresh {
                uid: uid.clone(),
                stale,
                token: None,
                round: 0,
                done: false,
                landed: Vec::new(),
            })
            .await
            .unwrap();
        assert_eq!(
            done.landed,
            vec![vec![], vec![before.id]],
            "a read stale in its {what} does not land; the fresh one does"
        );
        let after = store.token_by_user_id(&uid).await.unwrap().unwrap();
        assert_eq!(
            after.last_step,
            before.last_step + 1,
            "{what}: written once"
        );
        let trail = env.audit(&uid).await;
        let mut new: Vec<&str> = trail[..trail.len() - trail_before]
            .iter()
            .map(|a| a.outcome.as_str())
            .collect();
        new.reverse(); // the trail is newest first
        assert_eq!(
            new,
            ["round0_always", "round1_waits", "round1_always"],
            "{what}: the events of what landed (and of what waited for nothing), in order"
        );
    }
}

/// A test batch that forces a second round and, while it decides it, cuts the writer's
/// connection (PostgreSQL: the session whose last statement read the batch's rows).
struct CutInSecondRound {
    uid: String,
    url: String,
    token: Option<(i64, i64)>,
    round: usize,
    landed: Vec<Vec<i64>>,
}

impl backend::store::BatchLogic for CutInSecondRound {
    fn pending(&self) -> Vec<String> {
        if self.round < 2 {
            vec![self.uid.clone()]
        } else {
            Vec::new()
        }
    }

    fn decide(&mut self, rows: Vec<backend::store::TokenRow>) -> Vec<backend::store::TokenUpdate> {
        let row = &rows[0];
        self.token = Some((row.id, row.customer_id));
        if self.round == 1 {
            // Another session ends the writer's.
            let url = self.url.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    use sqlx::Connection as _;
                    let mut c = sqlx::AnyConnection::connect(&url).await.unwrap();
                    sqlx::query(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                         WHERE datname = current_database() AND pid <> pg_backend_pid() \
                         AND query LIKE '%unnest($1::text[])%'",
                    )
                    .execute(&mut c)
                    .await
                    .unwrap();
                });
            })
            .join()
            .unwrap();
        }
        vec![next_step(row)]
    }

    fn writes(&mut self) -> backend::store::RoundWrites {
        let (id, customer_id) = self.token.unwrap();
        backend::store::RoundWrites {
            audits: vec![(
                Some(id),
                backend::store::PendingAudit::from(&backend::store::NewAudit {
                    at: 1,
                    actor: "test",
                    customer_id: Some(customer_id),
                    user_id: Some(&self.uid),
                    action: "batch_test",
                    outcome: &format!("round{}", self.round),
                    ..Default::default()
                }),
            )],
            mails: Vec::new(),
        }
    }

    fn landed(&mut self, landed: &std::collections::HashSet<i64>) {
        self.landed.push(landed.iter().copied().collect());
        self.round += 1;
    }
}

/// On PostgreSQL each round of a batch commits by itself. When a later round fails (here its
/// connection is cut while it decides), what the rounds before it wrote stays written and is
/// answered as decided (the jobs of the failed round answer "unavailable"), and the writer
/// takes a fresh connection for the next batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_round_that_fails_keeps_what_the_first_committed() {
    let env = Env::new(Db::Postgres).await;
    let (uid, _) = env.active_token("cut01").await;
    let store = env.engine.store().clone();
    let before = store.token_by_user_id(&uid).await.unwrap().unwrap();
    let mut writer = store.batch_writer();
    let done = writer
        .run(CutInSecondRound {
            uid: uid.clone(),
            url: env.db.url.clone(),
            token: None,
            round: 0,
            landed: Vec::new(),
        })
        .await
        .expect("the first round is committed, so the batch is not reported as not written");
    assert_eq!(
        done.landed,
        vec![vec![before.id]],
        "the second round's write never returned"
    );
    let after = store.token_by_user_id(&uid).await.unwrap().unwrap();
    assert_eq!(
        after.last_step,
        before.last_step + 1,
        "the first round only"
    );
    let outcomes: Vec<String> = env
        .audit(&uid)
        .await
        .into_iter()
        .filter(|a| a.action == "batch_test")
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes, ["round0"], "the failed round wrote nothing");
    // The next batch runs on a fresh connection.
    let next = writer
        .run(StaleThenFresh {
            uid: uid.clone(),
            stale: |_| {},
            token: None,
            round: 0,
            done: false,
            landed: Vec::new(),
        })
        .await
        .unwrap();
    assert_eq!(next.landed, vec![vec![before.id]]);
}

/// How many times the tokens table has been read in full, as the server counts it. A session
/// reports its counts when it ends, or at a transaction's end at most once a second. So the
/// engine's other sessions (its pool, which did the set-up) are ended first, and the one
/// verification writer is given a second and one more verification. Client sessions only: an
/// autovacuum worker on the database is the server's own (a superuser's), and asking to end it
/// failed the test now and then.
async fn tokens_seq_scans(env: &Env, uid: &str, secret: &Secret) -> i64 {
    use sqlx::Connection as _;
    let mut c = sqlx::AnyConnection::connect(&env.db.url).await.unwrap();
    sqlx::query(
        "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() \
         AND backend_type = 'client backend' AND query NOT LIKE '%unnest($1::%'",
    )
    .execute(&mut c)
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    env.login_next_step(uid, secret).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (n,): (i64,) =
        sqlx::query_as("SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'tokens'")
            .fetch_one(&mut c)
            .await
            .unwrap();
    n
}

/// PostgreSQL keeps a statement's plan for the session. The verification writer's statements
/// planned while the tokens table was nearly empty (a new bank's first customers) were full
/// scans, and stayed full scans once the table had thousands of rows, until an ANALYZE happened
/// to come (in half the load runs of stop 18, every batch read the whole table). The writer
/// finds tokens through their indexes at every size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verification_reads_no_table_in_full_as_the_bank_grows() {
    use sqlx::Connection as _;
    // One verification writer, so that one session holds what the test counts.
    let env = Env::with_config(Db::Postgres, |c| c.verify.workers = 1).await;
    let (uid, secret) = env.active_token("grow01").await;
    // Enough verifications on the small table for the server to settle on a plan (it plans
    // each of a statement's first five runs, then keeps one).
    for _ in 0..8 {
        env.login_next_step(&uid, &secret).await;
    }
    // The bank grows: 20,000 more customers and tokens.
    let mut c = sqlx::AnyConnection::connect(&env.db.url).await.unwrap();
    sqlx::query(
        "INSERT INTO customers (login_id, login_password_hash, confirmation_password_hash, \
         created_at) SELECT 'grow-' || g, 'x', 'x', 0 FROM generate_series(1, 20000) g",
    )
    .execute(&mut c)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO tokens (customer_id, user_id, service_id, state, email, algorithm, digits, \
         period, activation_password_hash, issued_at, expires_at) \
         SELECT id, 'grown-' || id, 'svc', 'revoked', 'e@example.jp', 'SHA1', 6, 60, 'x', 0, 0 \
         FROM customers WHERE login_id LIKE 'grow-%'",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let before = tokens_seq_scans(&env, &uid, &secret).await;
    for _ in 0..10 {
        env.login_next_step(&uid, &secret).await;
    }
    let after = tokens_seq_scans(&env, &uid, &secret).await;
    assert_eq!(
        after - before,
        0,
        "eleven verifications on a table of 20,000 tokens read it in full {} times",
        after - before
    );
}

/// Login and confirmation passwords cannot be guessed without limit: 10 consecutive wrong ones
/// lock them (the right one included) for the lock time; a right one resets the count.
async fn password_guessing_locks_the_customer(db: Db) {
    let env = Env::new(db).await;
    env.customer("guess01").await;
    let me = Actor::new("customer", Some("192.0.2.7".into()));
    let login = |pw: &'static str| {
        let engine = env.engine.clone();
        let me = me.clone();
        async move {
            match engine
                .customer_login("guess01", z(pw), &me, None)
                .await
                .unwrap()
            {
                Login::Ok(_) => "ok".to_owned(),
                Login::Invalid => "invalid".to_owned(),
                Login::Locked { until } => format!("locked until {until}"),
            }
        }
    };
    for _ in 0..9 {
        assert_eq!(login("wrongpass1").await, "invalid");
    }
    assert_eq!(
        login("loginpass1").await,
        "ok",
        "nine failures do not lock; the right password resets the count"
    );
    for _ in 0..9 {
        assert_eq!(login("wrongpass1").await, "invalid");
    }
    let id = env
        .engine
        .store()
        .customer_by_login("guess01")
        .await
        .unwrap()
        .unwrap()
        .id;
    // The confirmation password shares the count: the tenth failure, on it, locks, and says so
    // with the time the lock ends.
    let locked_at = i64::try_from(env.clock.now()).unwrap();
    let until = locked_at + 1800;
    assert_eq!(
        env.engine
            .check_confirmation_password(id, z("wrong99"), &me, "transfer")
            .await
            .unwrap(),
        PasswordCheck::Locked { until }
    );
    env.clock.advance(60);
    assert_eq!(
        login("loginpass1").await,
        format!("locked until {until}"),
        "locked: even the right login password is refused, and the end does not move"
    );
    assert_eq!(
        env.engine
            .check_confirmation_password(id, z("conf123"), &me, "transfer")
            .await
            .unwrap(),
        PasswordCheck::Locked { until },
        "and the right confirmation password"
    );
    assert!(
        matches!(
            env.engine
                .customer_login("nobody99", z("loginpass1"), &me, None)
                .await
                .unwrap(),
            Login::Invalid
        ),
        "an unknown login ID is never 'locked'"
    );
    env.clock.advance(1739);
    assert_eq!(
        login("loginpass1").await,
        format!("locked until {until}"),
        "still locked just before the lock time ends"
    );
    env.clock.advance(1);
    assert_eq!(
        login("loginpass1").await,
        "ok",
        "the lock lifts after policy.password_lock_seconds"
    );
    let audit: Vec<(String, String)> = sqlx_audit(&env, id).await;
    assert!(
        audit
            .iter()
            .any(|(a, o)| a == "password_lock" && o == "locked"),
        "{audit:?}"
    );
    assert!(
        audit.iter().filter(|(_, o)| o == "password_locked").count() >= 3,
        "{audit:?}"
    );
}

/// A right login password does not wipe the count of wrong confirmation passwords: otherwise
/// a phished login password (the confirmation password unknown) buys nine guesses at it per
/// login, without end. Ten consecutive wrong confirmation passwords lock, logins between them
/// or not; a right confirmation password starts their count again.
async fn a_right_login_does_not_clear_confirmation_guesses(db: Db) {
    let env = Env::new(db).await;
    env.customer("guess02").await;
    let me = Actor::new("customer", Some("192.0.2.8".into()));
    let id = env
        .engine
        .store()
        .customer_by_login("guess02")
        .await
        .unwrap()
        .unwrap()
        .id;
    let confirm = |pw: &'static str| {
        let engine = env.engine.clone();
        let me = me.clone();
        async move {
            engine
                .check_confirmation_password(id, z(pw), &me, "transfer")
                .await
                .unwrap()
        }
    };
    // A login on a known device (its right password also lifts the account's lock) leaves
    // the confirmation password's count alone too.
    let cookie = env.engine.known_device_cookie(id).await.unwrap();
    let device = env.engine.known_device("guess02", &cookie).unwrap();
    let login_on = |device: Option<backend::engine::KnownDevice>| {
        let engine = env.engine.clone();
        let me = me.clone();
        async move {
            matches!(
                engine
                    .customer_login("guess02", z("loginpass1"), &me, device.as_ref())
                    .await
                    .unwrap(),
                Login::Ok(_)
            )
        }
    };
    let login_ok = || login_on(None);
    // A right confirmation password resets its count.
    for _ in 0..9 {
        assert_eq!(confirm("wrong99").await, PasswordCheck::Wrong);
    }
    assert_eq!(confirm("conf123").await, PasswordCheck::Right);
    // Nine wrong ones, a right login in between, and the tenth wrong one locks.
    for _ in 0..5 {
        assert_eq!(confirm("wrong99").await, PasswordCheck::Wrong);
    }
    assert!(login_ok().await);
    for _ in 0..2 {
        assert_eq!(confirm("wrong99").await, PasswordCheck::Wrong);
    }
    assert!(login_on(Some(device)).await);
    for _ in 0..2 {
        assert_eq!(confirm("wrong99").await, PasswordCheck::Wrong);
    }
    assert!(
        login_ok().await,
        "nine wrong confirmation passwords do not lock the login"
    );
    let until = i64::try_from(env.clock.now()).unwrap() + 1800;
    assert_eq!(
        confirm("wrong99").await,
        PasswordCheck::Locked { until },
        "the tenth wrong confirmation password locks, logins between them or not"
    );
    let lock_event = env
        .engine
        .store()
        .audit_for_customer(id, 1000, None)
        .await
        .unwrap()
        .into_iter()
        .find(|e| e.action == "password_lock")
        .expect("the lock is audited");
    assert_eq!(
        lock_event.detail.as_deref(),
        Some(r#"{"failures":10}"#),
        "the count of the key that locked"
    );
    env.clock.advance(60);
    assert_eq!(
        confirm("conf123").await,
        PasswordCheck::Locked { until },
        "the right one is refused while locked"
    );
    // The lock lifts with the lock time, as every password lock does.
    env.clock.advance(1740);
    assert_eq!(confirm("conf123").await, PasswordCheck::Right);
}

async fn sqlx_audit(env: &Env, customer_id: i64) -> Vec<(String, String)> {
    env.engine
        .store()
        .audit_for_customer(customer_id, 1000, None)
        .await
        .unwrap()
        .into_iter()
        .map(|a| (a.action, a.outcome))
        .collect()
}

/// The fifth (last) v1 activation attempt is counted, and then never answered: the request
/// ended while its password was being checked (a stopped process, a check that failed). Before,
/// the issuance stayed "awaiting setup" until its seven days ran out: every setup heard "dead",
/// and the customer could not apply again ("a token is already issued"). Now the last attempt
/// ends the issuance when its window passes, and the next application voids it as dead.
async fn a_last_setup_attempt_never_answered_ends_the_issuance(db: Db) {
    // A slow password check, so the request can be ended while it runs.
    let env = Env::with_config(db, |c| {
        c.argon2 = backend::config::Argon2Config {
            memory_kib: 65_536,
            iterations: 4,
            parallelism: 1,
        }
    })
    .await;
    env.customer("dead01").await;
    let uid = env.issue("dead01").await;
    env.engine.open_link(&uid, &host()).await.unwrap();
    let setup = |pw: &'static str| {
        let engine = env.engine.clone();
        let uid = uid.clone();
        async move {
            engine
                .provision(
                    &ServiceId::parse("10112231").unwrap(),
                    &UserId::parse(&uid).unwrap(),
                    z(pw),
                    &device(),
                    &Actor::new("app", None),
                )
                .await
        }
    };
    for _ in 0..4 {
        assert!(setup("9999").await.is_err());
    }
    let row = |uid: String| {
        let store = env.engine.store().clone();
        async move { store.token_by_user_id(&uid).await.unwrap().unwrap() }
    };
    let fifth = tokio::spawn(setup("9999"));
    // Counted (committed before the password is checked); then the request ends.
    let mut counted = false;
    for _ in 0..2000 {
        if row(uid.clone()).await.activation_failures == 5 {
            counted = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    fifth.abort();
    assert!(counted, "the fifth attempt was counted");
    let _ = fifth.await;
    assert_eq!(
        row(uid.clone()).await.state,
        TokenState::LinkOpened,
        "ended before its answer: nothing voided it"
    );
    // Within its window the issuance still stands (a slow check may yet answer)...
    let again = env
        .engine
        .issue_token("dead01", "taro@example.jp", z("1234"), &host())
        .await;
    assert!(
        matches!(
            again,
            Err(EngineError::Domain(DomainError::LiveTokenExists(_)))
        ),
        "{again:?}"
    );
    // ...and once it has passed, the customer applies again, the old one dead.
    env.clock.advance(61);
    env.engine
        .issue_token("dead01", "taro@example.jp", z("1234"), &host())
        .await
        .unwrap();
    let old = row(uid).await;
    assert_eq!(old.state, TokenState::Voided);
    assert_eq!(old.void_reason.as_deref(), Some("activation_failures"));
}
