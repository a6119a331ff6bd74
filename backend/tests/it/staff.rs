//! The support staff console (issue 7): roles, every action with its reason and audit event,
//! the four-eyes rule, the console's own sessions over HTTP (a customer session never reaches
//! it, CSRF, idle timeout), search, the paged audit timeline and its CSV export (no formula
//! injection, no secret), and a reprovisioned token set up by the app core over HTTP while the
//! old device's codes are refused.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::both_dbs;
use crate::support::*;
use backend::config::Config;
use backend::domain::{Outcome, Purpose, TokenState};
use backend::engine::staff::{PasswordChoice, StaffDone, StaffMember};
use backend::engine::Actor;
use test_support::Page;

pub(crate) const STAFF_PW: &str = "staff-password-123";

pub(crate) use backend::domain::staff::STAFF_TOTP;

both_dbs!(
    operator_unlocks_and_cannot_revoke,
    resend_setup_mail_gives_a_fresh_link_and_kills_the_old,
    revoke_stops_verification_at_once,
    reprovision_for_the_customer_waives_the_next_day_rule,
    a_waiver_is_spent_by_whichever_issuance_comes_next,
    four_eyes_needs_a_second_supervisor,
    console_sessions_are_apart_from_customer_sessions,
    search_timeline_paging_and_csv_export,
    reprovisioned_token_works_in_the_app_core_and_old_codes_are_refused,
    disabled_staff_cannot_log_in_and_their_sessions_end,
    the_console_speaks_japanese_on_request,
    the_console_defaults_to_the_configured_language,
    the_export_has_every_event,
    the_customer_page_shows_mail_that_did_not_arrive,
);

/// A staff member and the secret of their second factor (as their authenticator app has it,
/// from the URI `create_staff` returns once); the secret is also kept in the environment, so
/// the test browsers can log in with the member's current code.
pub(crate) async fn staff_with_secret(
    env: &Env,
    login: &str,
    role: &str,
) -> (StaffMember, protocol::Secret) {
    let created = env
        .engine
        .create_staff(login, "Support", role, z(STAFF_PW))
        .await
        .unwrap();
    let uri = created.second_factor.uri();
    let key = protocol::KeyUri::parse(&uri).expect("the second factor is an otpauth URI");
    assert_eq!(
        key.params, STAFF_TOTP,
        "authenticator apps' profile: SHA-1, 6, 30 s"
    );
    assert_eq!(key.account, login);
    env.staff_secrets
        .lock()
        .unwrap()
        .insert(login.to_owned(), key.secret.clone());
    let member = env.engine.staff_member(created.id).await.unwrap().unwrap();
    (member, key.secret)
}

pub(crate) async fn staff(env: &Env, login: &str, role: &str) -> StaffMember {
    staff_with_secret(env, login, role).await.0
}

pub(crate) async fn customer_id(env: &Env, login: &str) -> i64 {
    env.engine
        .store()
        .customer_by_login(login)
        .await
        .unwrap()
        .unwrap()
        .id
}

async fn customer_audit(env: &Env, customer: i64) -> Vec<backend::store::AuditRow> {
    env.engine
        .store()
        .audit_for_customer(customer, 1000, None)
        .await
        .unwrap()
}

async fn lock(env: &Env, uid: &str) {
    for _ in 0..5 {
        env.engine
            .verify(uid, z("000000"), Purpose::Login, host())
            .await
            .unwrap();
    }
    assert!(
        env.engine.token_status(uid).await.unwrap().locked,
        "five wrong codes lock the token"
    );
}

fn detail(a: &backend::store::AuditRow) -> serde_json::Value {
    serde_json::from_str(a.detail.as_deref().unwrap_or("null")).unwrap()
}

fn code_of(e: backend::engine::EngineError) -> &'static str {
    e.code()
}

async fn operator_unlocks_and_cannot_revoke(db: Db) {
    let env = Env::new(db).await;
    let op = staff(&env, "op0001", "operator").await;
    let (uid, secret) = env.active_token("taro0001").await;
    let cid = customer_id(&env, "taro0001").await;
    lock(&env, &uid).await;
    // A reason is mandatory.
    let e = env
        .engine
        .staff_unlock(&op, cid, &uid, "  ", None)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "REASON_REQUIRED");
    assert!(env.engine.token_status(&uid).await.unwrap().locked);
    env.engine
        .staff_unlock(&op, cid, &uid, "customer called, identity checked", None)
        .await
        .unwrap();
    env.clock.advance(60);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok, "an unlocked token verifies again");
    let audit = customer_audit(&env, cid).await;
    let unlock = audit.iter().find(|a| a.action == "unlock").unwrap();
    assert_eq!(
        unlock.actor,
        format!("staff:{}", op.id),
        "audited with the staff ID"
    );
    assert!(unlock
        .detail
        .as_deref()
        .unwrap()
        .contains("customer called, identity checked"));
    // An operator may not revoke or reprovision: the engine refuses, not only the page.
    let e = env
        .engine
        .staff_revoke(&op, cid, &uid, "lost phone", None)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "STAFF_FORBIDDEN");
    let e = env
        .engine
        .staff_reprovision(
            &op,
            cid,
            Some(&uid),
            "new phone",
            PasswordChoice::Generated,
            None,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "STAFF_FORBIDDEN");
    assert_eq!(
        env.engine.token_status(&uid).await.unwrap().state,
        TokenState::Active
    );
    // A token of another customer cannot be acted on through this customer.
    let (other_uid, _) = env.active_token("hana0001").await;
    lock(&env, &other_uid).await;
    let e = env
        .engine
        .staff_unlock(&op, cid, &other_uid, "wrong customer", None)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "UNKNOWN_USER_ID");
}

fn links_in_outbox(mails: &[backend::store::MailRow]) -> Vec<String> {
    mails
        .iter()
        .filter(|m| m.kind == "issuance")
        .filter_map(|m| {
            m.body
                .lines()
                .find(|l| l.contains("/dl/"))
                .map(|l| l.trim().rsplit('/').next().unwrap().to_owned())
        })
        .collect()
}

async fn resend_setup_mail_gives_a_fresh_link_and_kills_the_old(db: Db) {
    let env = Env::new(db).await;
    let op = staff(&env, "op0001", "operator").await;
    env.customer("taro0001").await;
    let uid = env.issue("taro0001").await;
    let cid = customer_id(&env, "taro0001").await;
    let link = Actor::new("link", None);
    let old = links_in_outbox(&env.engine.store().outbox(100).await.unwrap());
    assert_eq!(old.len(), 1);
    env.engine
        .staff_resend_setup(&op, cid, &uid, "customer never got the mail", None)
        .await
        .unwrap();
    let links = links_in_outbox(&env.engine.store().outbox(100).await.unwrap());
    assert_eq!(links.len(), 2, "a second setup mail is in the outbox");
    assert_ne!(links[1], old[0], "with a fresh link");
    let e = env
        .engine
        .open_download_link(&old[0], &link)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "ISSUANCE_EXPIRED", "the old link stops working");
    let opened = env
        .engine
        .open_download_link(&links[1], &link)
        .await
        .unwrap();
    assert_eq!(opened.user_id, uid);
    // Setup works with the customer's own activation password.
    env.provision(&uid).await;
    let audit = customer_audit(&env, cid).await;
    let ev = audit
        .iter()
        .find(|a| a.action == "resend_setup_mail")
        .unwrap();
    assert_eq!(ev.actor, format!("staff:{}", op.id));
    // Once set up, there is nothing to resend.
    let e = env
        .engine
        .staff_resend_setup(&op, cid, &uid, "again", None)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "NOT_AWAITING_SETUP");
    // An issuance that expired unprovisioned (7 days) is dead: a resend does not bring it
    // back, even while nothing has marked it void yet.
    env.customer("hana0001").await;
    let uid = env.issue("hana0001").await;
    let cid = customer_id(&env, "hana0001").await;
    let mails = env.engine.store().outbox(100).await.unwrap().len();
    env.clock.advance(8 * 86_400);
    let e = env
        .engine
        .staff_resend_setup(&op, cid, &uid, "customer never got the mail", None)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "ISSUANCE_EXPIRED");
    assert_eq!(
        env.engine.store().outbox(100).await.unwrap().len(),
        mails,
        "no setup mail for a dead issuance"
    );
    let st = env.engine.token_status(&uid).await.unwrap();
    assert!(
        !matches!(st.state, TokenState::Issued | TokenState::LinkOpened),
        "still dead: {:?}",
        st.state
    );
    // An issuance whose five attempts are all counted (five setups started, none finished yet)
    // is dead too: a resend would give it seven more days with no attempt left, and the
    // customer could not apply again meanwhile.
    env.customer("hana0002").await;
    let uid = env.issue("hana0002").await;
    let cid = customer_id(&env, "hana0002").await;
    env.engine.open_link(&uid, &host()).await.unwrap();
    for _ in 0..5 {
        let (_, start) = protocol::pake::client_start(
            protocol::ServiceId::parse("10112231").unwrap(),
            protocol::UserId::parse(&uid).unwrap(),
            protocol::Sensitive("1234".to_owned()),
            device(),
        )
        .unwrap();
        env.engine
            .setup_start(&start, &Actor::new("app", None))
            .await
            .unwrap();
    }
    let e = env
        .engine
        .staff_resend_setup(&op, cid, &uid, "customer never got the mail", None)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "ISSUANCE_DEAD");
}

async fn revoke_stops_verification_at_once(db: Db) {
    let env = Env::new(db).await;
    let sup = staff(&env, "sup0001", "supervisor").await;
    let (uid, secret) = env.active_token("taro0001").await;
    let cid = customer_id(&env, "taro0001").await;
    let done = env
        .engine
        .staff_revoke(&sup, cid, &uid, "phone stolen", None)
        .await
        .unwrap();
    assert!(matches!(done, StaffDone::Applied { .. }));
    env.clock.advance(60);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(
        r.result,
        Outcome::NotActive,
        "a revoked token's codes are refused"
    );
    assert_eq!(r.state, TokenState::Revoked);
    let audit = customer_audit(&env, cid).await;
    let ev = audit.iter().find(|a| a.action == "revoke").unwrap();
    assert_eq!(ev.actor, format!("staff:{}", sup.id));
    assert!(ev.detail.as_deref().unwrap().contains("phone stolen"));
}

async fn reprovision_for_the_customer_waives_the_next_day_rule(db: Db) {
    let env = Env::new(db).await;
    let sup = staff(&env, "sup0001", "supervisor").await;
    let (uid, secret) = env.active_token("taro0001").await;
    let cid = customer_id(&env, "taro0001").await;
    // The customer ended OTP use today: normally a new token only from tomorrow.
    env.clock.advance(60);
    env.engine
        .verify(&uid, env.code(&secret, 0), Purpose::Deactivation, host())
        .await
        .unwrap();
    let e = env
        .engine
        .issue_token("taro0001", "taro@example.jp", z("5678"), &host())
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "REISSUE_NEXT_DAY");
    // A stale page (another token expected) is refused.
    let e = env
        .engine
        .staff_reprovision(
            &sup,
            cid,
            Some("999800000001"),
            "new phone",
            PasswordChoice::Customer,
            None,
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "STAFF_STALE");
    let r = env
        .engine
        .staff_reprovision(
            &sup,
            cid,
            Some(&uid),
            "new phone, customer sets the password",
            PasswordChoice::Customer,
            None,
            None,
        )
        .await
        .unwrap();
    assert!(r.generated_password.is_none(), "nothing generated");
    let issued = env
        .engine
        .issue_token("taro0001", "taro@example.jp", z("5678"), &host())
        .await
        .unwrap();
    assert_eq!(issued.state, TokenState::Issued, "usable the same day");
    let audit = customer_audit(&env, cid).await;
    assert!(audit
        .iter()
        .any(|a| a.action == "reprovision" && a.actor == format!("staff:{}", sup.id)));
}

/// The next-day rule's waiver (a staff reissue for which the customer chooses the password) is
/// for one issuance: a staff reissue with a generated password that comes first spends it too.
/// Before, the waiver stayed, and the customer could apply again on the day they ended OTP use.
async fn a_waiver_is_spent_by_whichever_issuance_comes_next(db: Db) {
    let env = Env::new(db).await;
    let sup = staff(&env, "sup0001", "supervisor").await;
    let (uid, _) = env.active_token("taro0001").await;
    let cid = customer_id(&env, "taro0001").await;
    env.engine
        .staff_reprovision(
            &sup,
            cid,
            Some(&uid),
            "new phone, customer sets the password",
            PasswordChoice::Customer,
            None,
            None,
        )
        .await
        .unwrap();
    // The customer came to the counter instead: a generated password.
    let r = env
        .engine
        .staff_reprovision(
            &sup,
            cid,
            Some(&uid),
            "at the counter after all",
            PasswordChoice::Generated,
            Some("taro@example.jp"),
            None,
        )
        .await
        .unwrap();
    let password = r.generated_password.unwrap();
    let StaffDone::Applied {
        new_user_id: Some(new_uid),
    } = r.done
    else {
        panic!("applied at once (four eyes off)")
    };
    env.engine.open_link(&new_uid, &host()).await.unwrap();
    let secret = env.provision_v2(&new_uid, password.as_str()).await.unwrap();
    env.clock.advance(60);
    for purpose in [Purpose::Activation, Purpose::Deactivation] {
        let r = env
            .engine
            .verify(&new_uid, env.code(&secret, 0), purpose, host())
            .await
            .unwrap();
        assert_eq!(r.result, Outcome::Ok, "{purpose:?}");
        env.clock.advance(60);
    }
    let e = env
        .engine
        .issue_token("taro0001", "taro@example.jp", z("5678"), &host())
        .await
        .unwrap_err();
    assert_eq!(
        code_of(e),
        "REISSUE_NEXT_DAY",
        "the waiver went with the reissue"
    );
}

async fn four_eyes_needs_a_second_supervisor(db: Db) {
    let env = Env::with_config(db, |c| c.staff.four_eyes = true).await;
    let a = staff(&env, "supA001", "supervisor").await;
    let b = staff(&env, "supB001", "supervisor").await;
    let op = staff(&env, "op0001", "operator").await;
    let (uid, secret) = env.active_token("taro0001").await;
    let cid = customer_id(&env, "taro0001").await;
    let done = env
        .engine
        .staff_revoke(&a, cid, &uid, "phone lost", None)
        .await
        .unwrap();
    let StaffDone::Requested { request_id } = done else {
        panic!("four-eyes: a request, not a revoke")
    };
    env.clock.advance(60);
    let r = env
        .engine
        .verify(&uid, env.code(&secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok, "nothing happens before the approval");
    // A second request for the same customer waits its turn.
    let e = env
        .engine
        .staff_revoke(&b, cid, &uid, "also lost", None)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "REQUEST_PENDING");
    // Not the requester, not an operator; nobody withdraws someone else's request.
    for (who, cancel) in [(&a, false), (&op, false), (&b, true)] {
        let e = if cancel {
            env.engine
                .staff_decline(who, request_id, true, "not mine", None)
                .await
                .unwrap_err()
        } else {
            env.engine
                .staff_approve(who, request_id, None)
                .await
                .unwrap_err()
        };
        assert_eq!(
            code_of(e),
            "STAFF_FORBIDDEN",
            "{} cancel={cancel}",
            who.login_id
        );
    }
    env.engine
        .staff_approve(&b, request_id, None)
        .await
        .unwrap();
    assert_eq!(
        env.engine.token_status(&uid).await.unwrap().state,
        TokenState::Revoked
    );
    // The requester may withdraw their own request; another supervisor may reject one.
    let (uid2, _) = env.active_token("hana0001").await;
    let cid2 = customer_id(&env, "hana0001").await;
    for (decider, cancel, status) in [(&a, true, "cancelled"), (&b, false, "rejected")] {
        let StaffDone::Requested { request_id: id2 } = env
            .engine
            .staff_revoke(&a, cid2, &uid2, "phone lost?", None)
            .await
            .unwrap()
        else {
            panic!("a request")
        };
        env.engine
            .staff_decline(decider, id2, cancel, "found the phone", None)
            .await
            .unwrap();
        let row = env
            .engine
            .store()
            .staff_request(id2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.status, status);
        assert_eq!(
            env.engine.token_status(&uid2).await.unwrap().state,
            TokenState::Active,
            "a {status} request changes nothing"
        );
    }
    let e = env
        .engine
        .staff_approve(&b, request_id, None)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "REQUEST_NOT_PENDING", "approved once only");
    let audit = customer_audit(&env, cid).await;
    let revoke = audit.iter().find(|x| x.action == "revoke").unwrap();
    assert_eq!(
        revoke.actor,
        format!("staff:{}", b.id),
        "the approver revokes"
    );
    assert!(revoke
        .detail
        .as_deref()
        .unwrap()
        .contains(&format!("\"requested_by\":{}", a.id)));
    assert!(audit
        .iter()
        .any(|x| x.action == "revoke_requested" && x.actor == format!("staff:{}", a.id)));
    // A generated-password reprovision: the requester reads the password out; it works once
    // the second supervisor approves.
    let r = env
        .engine
        .staff_reprovision(
            &a,
            cid,
            Some(&uid),
            "new phone",
            PasswordChoice::Generated,
            Some("new@example.jp"),
            None,
        )
        .await
        .unwrap();
    let StaffDone::Requested { request_id } = r.done else {
        panic!("four-eyes: a request")
    };
    let password = r.generated_password.unwrap();
    let row = env
        .engine
        .store()
        .staff_request(request_id)
        .await
        .unwrap()
        .unwrap();
    assert!(
        !row.params.contains(password.as_str()),
        "the request stores no password in clear"
    );
    let new_uid = env
        .engine
        .staff_approve(&b, request_id, None)
        .await
        .unwrap()
        .unwrap();
    let row = env
        .engine
        .store()
        .staff_request(request_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.params, "{}", "the hash is dropped once used");
    let outbox = env.engine.store().outbox(100).await.unwrap();
    let mail = outbox.iter().rev().find(|m| m.kind == "issuance").unwrap();
    assert_eq!(mail.to_addr, "new@example.jp");
    let code = links_in_outbox(&outbox).pop().unwrap();
    env.engine
        .open_download_link(&code, &Actor::new("link", None))
        .await
        .unwrap();
    env.engine
        .provision(
            &protocol::ServiceId::parse("10112231").unwrap(),
            &protocol::UserId::parse(&new_uid).unwrap(),
            password,
            &device(),
            &Actor::new("app", None),
        )
        .await
        .expect("the generated password sets the new token up");
}

// --- over HTTP -------------------------------------------------------------------------------

pub(crate) struct Server {
    pub(crate) base: String,
    pub(crate) env: Env,
}

impl Server {
    pub(crate) async fn start(db: Db, tweak: impl FnOnce(&mut Config)) -> Server {
        let env = Env::with_config(db, tweak).await;
        let base = listen(&env.state).await;
        Server { base, env }
    }

    pub(crate) fn browser(&self) -> Browser {
        Browser::new(&self.base).with_codes(Codes::of(&self.env))
    }
}

/// The shared test browser ([`test_support::Browser`]) and, for a test's own staff members,
/// where their current codes come from, so it can log them in.
#[derive(Clone)]
pub(crate) struct Browser {
    http: test_support::Browser,
    codes: Option<Codes>,
}

impl std::ops::Deref for Browser {
    type Target = test_support::Browser;
    fn deref(&self) -> &test_support::Browser {
        &self.http
    }
}

impl Browser {
    /// A browser whose connections come from `ip` (any 127.0.0.0/8 address reaches a
    /// listener on 127.0.0.1).
    pub(crate) fn from_ip(base: &str, ip: std::net::IpAddr) -> Browser {
        Browser {
            http: test_support::Browser::from_ip(base, ip),
            codes: None,
        }
    }

    fn with_codes(mut self, codes: Codes) -> Browser {
        self.codes = Some(codes);
        self
    }

    pub(crate) fn new(base: &str) -> Browser {
        Browser {
            http: test_support::Browser::new(base),
            codes: None,
        }
    }

    /// The member's current code (see [`Codes`]).
    async fn staff_code(&self, login: &str) -> String {
        self.codes
            .as_ref()
            .expect("a browser that knows the staff codes")
            .code(login)
            .await
    }

    /// Log in with the password and the member's current code.
    pub(crate) async fn staff_login(&self, login: &str) -> Page {
        let code = self.staff_code(login).await;
        let form = self.get("/staff/login").await;
        assert_eq!(form.status, 200);
        let r = self
            .post(
                "/staff/login",
                &[
                    ("csrf", &form.input("csrf")),
                    ("login_id", login),
                    ("password", STAFF_PW),
                    ("code", &code),
                ],
            )
            .await;
        assert_eq!(
            r.location.as_deref(),
            Some("/staff"),
            "staff login: {}",
            r.body
        );
        r
    }
}

/// Where a test browser gets a staff member's current code: the secrets the test's staff
/// members were given, and the test clock (its store tells the last step a member used, and a
/// step already used is waited out by moving the clock on), or the real clock for a server
/// process.
#[derive(Clone)]
pub(crate) struct Codes {
    secrets: Arc<Mutex<HashMap<String, protocol::Secret>>>,
    clock: Option<(Arc<backend::engine::ManualClock>, backend::store::Store)>,
}

impl Codes {
    pub(crate) fn of(env: &Env) -> Codes {
        Codes {
            secrets: env.staff_secrets.clone(),
            clock: Some((env.clock.clone(), env.engine.store().clone())),
        }
    }

    /// For a server process on the real clock.
    pub(crate) fn real_time(env: &Env) -> Codes {
        Codes {
            secrets: env.staff_secrets.clone(),
            clock: None,
        }
    }

    /// The member's code now, on a step they have not used yet.
    pub(crate) async fn code(&self, login: &str) -> String {
        use backend::engine::Clock;
        let secret = self
            .secrets
            .lock()
            .unwrap()
            .get(login)
            .cloned()
            .expect("a staff member made by staff()");
        let now = match &self.clock {
            Some((clock, store)) => {
                let row = store.staff_by_login(login).await.unwrap().unwrap();
                let used = row.totp_last_step.unwrap_or(-1);
                while i64::try_from(STAFF_TOTP.step_at(clock.now())).unwrap() <= used {
                    clock.advance(u64::from(STAFF_TOTP.period));
                }
                clock.now()
            }
            None => backend::engine::SystemClock.now(),
        };
        protocol::code_at(&secret, &STAFF_TOTP, now)
            .as_str()
            .to_owned()
    }
}

async fn console_sessions_are_apart_from_customer_sessions(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    staff(env, "op0001", "operator").await;
    let (uid, _) = env.active_token("taro0001").await;
    let cid = customer_id(env, "taro0001").await;
    env.customer("hana0001").await;
    // A customer logged in to internet banking gets nothing from /staff.
    let customer = srv.browser();
    let login = customer.get("/login").await;
    let r = customer
        .post(
            "/login",
            &[
                ("csrf", &login.input("csrf")),
                ("login_id", "hana0001"),
                ("password", "loginpass1"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/top"), "customer logged in");
    assert!(customer.cookie_header().contains("sid="));
    let r = customer.get("/staff").await;
    assert_eq!(r.location.as_deref(), Some("/staff/login"));
    let r = customer.get(&format!("/staff/customers/{cid}")).await;
    assert_eq!(r.location.as_deref(), Some("/staff/login"));
    let r = customer
        .post(
            &format!("/staff/customers/{cid}/revoke"),
            &[
                ("csrf", &login.input("csrf")),
                ("user_id", &uid),
                ("reason", "x y z"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/staff/login"));
    let r = customer
        .get(&format!("/staff/customers/{cid}/audit.csv"))
        .await;
    assert_eq!(r.location.as_deref(), Some("/staff/login"));
    // Staff login: wrong password, and a login form without its CSRF cookie.
    let op = srv.browser();
    let form = op.get("/staff/login").await;
    assert!(form
        .headers
        .get("content-security-policy")
        .is_some_and(|v| v.to_str().unwrap().contains("frame-ancestors 'none'")));
    assert_eq!(form.headers.get("cache-control").unwrap(), "no-store");
    let r = op
        .post(
            "/staff/login",
            &[
                ("csrf", &form.input("csrf")),
                ("login_id", "op0001"),
                ("password", "wrong-password-1"),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    let r = srv
        .browser()
        .post(
            "/staff/login",
            &[
                ("csrf", "abc"),
                ("login_id", "op0001"),
                ("password", STAFF_PW),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "no login without the form's CSRF cookie");
    // The customer's login does not work here.
    let form = op.get("/staff/login").await;
    let r = op
        .post(
            "/staff/login",
            &[
                ("csrf", &form.input("csrf")),
                ("login_id", "taro0001"),
                ("password", "loginpass1"),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    let r = op.staff_login("op0001").await;
    let set_cookie: Vec<_> = r
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert!(set_cookie.iter().any(|c| c.starts_with("staff_sid=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Strict")));
    let page = op.get(&format!("/staff/customers/{cid}")).await;
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("id=\"form-revoke\""),
        "no revoke form for an operator"
    );
    assert!(page.body.contains("id=\"operator-note\""));
    // An operator's revoke post is refused (403) and changes nothing.
    let r = op
        .act(
            &format!("/staff/customers/{cid}"),
            &format!("/staff/customers/{cid}/revoke"),
            &[("user_id", &uid), ("reason", "lost phone")],
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("STAFF_FORBIDDEN"));
    assert_eq!(
        env.engine.token_status(&uid).await.unwrap().state,
        TokenState::Active
    );
    // Without the CSRF token: refused.
    let r = op
        .post(
            &format!("/staff/customers/{cid}/unlock"),
            &[("user_id", &uid), ("reason", "x y z")],
        )
        .await;
    assert_eq!(r.status, 403);
    // The staff cookie opens no customer screen.
    let r = op.get("/top").await;
    assert_eq!(r.location.as_deref(), Some("/login"));
    // A shorter idle timeout than the customers'.
    env.clock.advance(301);
    let r = op.get("/staff").await;
    assert_eq!(r.location.as_deref(), Some("/staff/login?timeout=1"));
    let r = customer.get("/top").await;
    assert_eq!(r.status, 200, "the customer's 10 minutes are not over");
    // Logout ends the session.
    op.staff_login("op0001").await;
    let r = op.act("/staff", "/staff/logout", &[]).await;
    assert_eq!(r.location.as_deref(), Some("/staff/login?bye=1"));
    assert_eq!(
        op.get("/staff").await.location.as_deref(),
        Some("/staff/login")
    );
}

async fn search_timeline_paging_and_csv_export(db: Db) {
    let srv = Server::start(db, |c| c.staff.audit_page_size = 5).await;
    let env = &srv.env;
    let op_member = staff(env, "op0001", "operator").await;
    let (uid, _) = env.active_token("taro0001").await;
    let cid = customer_id(env, "taro0001").await;
    env.active_token("hana0001").await;
    let op = srv.browser();
    op.staff_login("op0001").await;
    for q in ["taro0001", "taro", &uid, "TARO@example.jp"] {
        let r = op.get(&format!("/staff?q={}", q.replace('@', "%40"))).await;
        assert!(
            r.body.contains(&format!("href=\"/staff/customers/{cid}\"")),
            "search by {q}"
        );
    }
    let r = op.get("/staff?q=nobody").await;
    assert!(r.body.contains("id=\"no-results\""));
    // Lock, then unlock with a reason that is a spreadsheet formula.
    lock(env, &uid).await;
    let page = format!("/staff/customers/{cid}");
    let p = op.get(&page).await;
    assert!(
        p.body.contains("<strong class=\"bad\">Locked</strong>"),
        "the lock is shown"
    );
    assert!(
        p.body.contains("android · Pixel 8 · OS 15 · app 1.0.0"),
        "device at setup"
    );
    let r = op
        .act(
            &page,
            &format!("/staff/customers/{cid}/unlock"),
            &[
                ("user_id", &uid),
                ("reason", "=HYPERLINK(\"http://x\",\"y\")"),
            ],
        )
        .await;
    assert_eq!(
        r.location.as_deref(),
        Some(format!("{page}?done=unlocked").as_str())
    );
    assert!(!env.engine.token_status(&uid).await.unwrap().locked);
    // The timeline: newest first, five a page, an older page.
    let p = op.get(&page).await;
    let ids: Vec<i64> = p
        .body
        .match_indices("<tr data-id=\"")
        .map(|(i, m)| {
            let rest = &p.body[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 5);
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let first_row = p.body.split("<tr data-id=\"").nth(1).unwrap();
    let first_row = &first_row[..first_row.find("</tr>").unwrap()];
    assert!(
        first_row.contains("class=\"action\">unlock<"),
        "the unlock is the newest event, not this look at the page: {first_row}"
    );
    let older = p.href_of("older");
    let p2 = op.get(&older).await;
    assert!(
        p2.body.contains("<tr data-id=\""),
        "an older page of events"
    );
    assert!(!p2.body.contains(&format!("<tr data-id=\"{}\"", ids[0])));
    // CSV: every event, formulas defused, nothing secret.
    let csv = op.get(&format!("/staff/customers/{cid}/audit.csv")).await;
    assert_eq!(csv.status, 200);
    assert!(csv
        .headers
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    assert!(csv.body.starts_with("\"id\",\"at\",\"actor\""));
    let unlock_line = csv.body.lines().find(|l| l.contains("\"unlock\"")).unwrap();
    assert!(
        !unlock_line.contains(",\"=")
            && !unlock_line.contains(",=")
            && unlock_line.contains("=HYPERLINK"),
        "the formula is text: {unlock_line}"
    );
    for line in csv.body.lines().skip(1) {
        for cell in line.split("\",\"") {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "no cell starts a formula: {line}"
            );
        }
    }
    for body in [&csv.body, &p.body, &p2.body] {
        assert!(!body.contains("$argon2"), "no password hash shown");
        assert!(!body.contains("loginpass1") && !body.contains("conf123"));
    }
    // The export itself is audited.
    let audit = customer_audit(env, cid).await;
    assert!(audit.iter().any(|a| a.action == "staff_export_audit"));
    // So is every look: each opening of the customer's file, and each search with its query.
    let op_actor = format!("staff:{}", op_member.id);
    let views = audit
        .iter()
        .filter(|a| a.action == "staff_view" && a.actor == op_actor)
        .count();
    assert_eq!(
        views, 4,
        "the page three times (once by act), and its older page"
    );
    assert!(audit
        .iter()
        .filter(|a| a.action == "staff_view")
        .all(|a| a.ip.as_deref() == Some("127.0.0.1")));
    let store = env.engine.store();
    assert_eq!(store.audit_count("staff_search", "ok").await.unwrap(), 5);
    let searches = store.audit_by_action("staff_search", 10).await.unwrap();
    assert!(
        searches.iter().any(|a| a.actor == op_actor
            && detail(a) == serde_json::json!({ "found": 0, "q": "nobody" })),
        "the query and what it found: {searches:?}"
    );
}

/// A leaver's account: disabled from the CLI's engine call, their open console session ends at
/// once, their password no longer logs in (audited as such), and enabling restores access.
async fn disabled_staff_cannot_log_in_and_their_sessions_end(db: Db) {
    let srv = Server::start(db, |c| c.staff.four_eyes = true).await;
    let env = &srv.env;
    let member = staff(env, "op0001", "operator").await;
    staff(env, "op0002", "operator").await;
    let (_, _) = env.active_token("taro0001").await;
    let cid = customer_id(env, "taro0001").await;
    let op = srv.browser();
    op.staff_login("op0001").await;
    let other = srv.browser();
    other.staff_login("op0002").await;
    let page = format!("/staff/customers/{cid}");
    assert_eq!(op.get(&page).await.status, 200);
    let cli = Actor::cli();
    // A reason is required, and the login ID must exist.
    let e = env
        .engine
        .set_staff_disabled("op0001", true, " ", &cli)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "REASON_REQUIRED");
    let e = env
        .engine
        .set_staff_disabled("nobody01", true, "left the bank", &cli)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "UNKNOWN_STAFF");
    assert_eq!(op.get(&page).await.status, 200, "nothing changed yet");
    assert!(env
        .engine
        .set_staff_disabled("op0001", true, "left the bank", &cli)
        .await
        .unwrap());
    assert!(
        !env.engine
            .set_staff_disabled("op0001", true, "left the bank", &cli)
            .await
            .unwrap(),
        "disabling twice changes nothing"
    );
    // The open session is over: no page, no action.
    let r = op.get(&page).await;
    assert_eq!(r.location.as_deref(), Some("/staff/login"));
    let r = op
        .post(
            &format!("/staff/customers/{cid}/unlock"),
            &[("user_id", "x"), ("reason", "x y z")],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/staff/login"));
    assert!(env.engine.staff_member(member.id).await.unwrap().is_none());
    // The right password and code no longer log in, and say no more than a wrong password.
    let code = op.staff_code("op0001").await;
    let form = op.get("/staff/login").await;
    let r = op
        .post(
            "/staff/login",
            &[
                ("csrf", &form.input("csrf")),
                ("login_id", "op0001"),
                ("password", STAFF_PW),
                ("code", &code),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    let form = op.get("/staff/login").await;
    let wrong = op
        .post(
            "/staff/login",
            &[
                ("csrf", &form.input("csrf")),
                ("login_id", "op0001"),
                ("password", "wrong-password-1"),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 401);
    let error_of = |body: &str| {
        let needle = "id=\"login-error\">";
        let i = body.find(needle).expect("a login error") + needle.len();
        body[i..i + body[i..].find("</p>").unwrap()].to_owned()
    };
    assert_eq!(
        error_of(&r.body),
        error_of(&wrong.body),
        "the same answer as a wrong password"
    );
    assert_eq!(
        error_of(&r.body),
        "The login ID, password or code is incorrect."
    );
    // Another member's session is untouched.
    assert_eq!(other.get(&page).await.status, 200);
    // The audit trail: who disabled whom, why, how many sessions ended; the refused login.
    let store = env.engine.store();
    let disables = store.audit_by_action("staff_disable", 10).await.unwrap();
    assert_eq!(disables.len(), 1, "one change, one event");
    assert_eq!(disables[0].actor, "cli");
    assert_eq!(
        detail(&disables[0]),
        serde_json::json!({
            "reason": "left the bank",
            "sessions_ended": 1,
            "staff_id": member.id,
            "requests_cancelled": 0,
        })
    );
    let logins = store.audit_by_action("staff_login", 20).await.unwrap();
    let actor = format!("staff:{}", member.id);
    assert!(logins
        .iter()
        .any(|a| a.actor == actor && a.outcome == "disabled"));
    // Enabled again: the same password logs in.
    assert!(env
        .engine
        .set_staff_disabled("op0001", false, "rejoined the team", &cli)
        .await
        .unwrap());
    op.staff_login("op0001").await;
    assert_eq!(op.get(&page).await.status, 200);
    assert_eq!(
        store.audit_count("staff_enable", "ok").await.unwrap(),
        1,
        "the enabling is audited"
    );

    // A disabled supervisor's four-eyes request dies with the account: a reprovision to an
    // address of their choosing, with a password they saw, must not be approvable afterwards.
    let a = staff(env, "sup0001", "supervisor").await;
    let b = staff(env, "sup0002", "supervisor").await;
    let uid = env
        .engine
        .store()
        .latest_token(cid)
        .await
        .unwrap()
        .unwrap()
        .user_id;
    let r = env
        .engine
        .staff_reprovision(
            &a,
            cid,
            Some(&uid),
            "new phone",
            PasswordChoice::Generated,
            Some("attacker@example.jp"),
            None,
        )
        .await
        .unwrap();
    let StaffDone::Requested { request_id } = r.done else {
        panic!("four-eyes: a request")
    };
    assert!(env
        .engine
        .set_staff_disabled("sup0001", true, "suspected misuse", &cli)
        .await
        .unwrap());
    let row = store.staff_request(request_id).await.unwrap().unwrap();
    assert_eq!(row.status, "cancelled");
    assert_eq!(row.params, "{}", "what the request held is gone");
    let e = env
        .engine
        .staff_approve(&b, request_id, None)
        .await
        .unwrap_err();
    assert_eq!(code_of(e), "REQUEST_NOT_PENDING");
    assert_eq!(
        env.engine.token_status(&uid).await.unwrap().state,
        TokenState::Active,
        "nothing was reprovisioned"
    );
    let audit = customer_audit(env, cid).await;
    assert!(audit.iter().any(|x| x.action == "request_cancelled"
        && x.actor == "cli"
        && detail(x)["request_id"] == request_id));
    let disables = store.audit_by_action("staff_disable", 1).await.unwrap();
    assert_eq!(detail(&disables[0])["requests_cancelled"], 1);
}

/// The lost-phone case end to end: a supervisor reprovisions in the console with a generated
/// password; the app core (`app::ProvisioningClient` + `Vault`) sets the new token up over the
/// app API; its codes activate and log in, and the old phone's codes are refused.
async fn reprovisioned_token_works_in_the_app_core_and_old_codes_are_refused(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    staff(env, "sup0001", "supervisor").await;
    let (old_uid, old_secret) = env.active_token("taro0001").await;
    let cid = customer_id(env, "taro0001").await;
    let sup = srv.browser();
    sup.staff_login("sup0001").await;
    let page = format!("/staff/customers/{cid}");
    let r = sup
        .act(
            &page,
            &format!("/staff/customers/{cid}/reprovision"),
            &[
                ("expected_user_id", &old_uid),
                ("mode", "generated"),
                ("email", "newphone@example.jp"),
                ("reason", "phone lost, identity checked by callback"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.headers.get("cache-control").unwrap(), "no-store");
    let password = r.text_of("generated-password").unwrap();
    let new_uid = r.text_of("new-user-id").unwrap();
    assert_eq!(password.len(), 8);
    // Shown once: the customer page does not show it again, nor does the audit trail.
    let p = sup.get(&page).await;
    assert!(
        !p.body.contains(&password),
        "the password is not shown again"
    );
    let csv = sup.get(&format!("{page}/audit.csv")).await;
    assert!(!csv.body.contains(&password));
    // A repeated submit does not reprovision twice.
    let again = sup
        .act(
            &page,
            &format!("/staff/customers/{cid}/reprovision"),
            &[
                ("expected_user_id", &old_uid),
                ("mode", "generated"),
                ("reason", "phone lost"),
            ],
        )
        .await;
    assert_eq!(
        again.status, 409,
        "a stale page is a conflict with the token's state, not a bad field"
    );
    assert!(again.body.contains("STAFF_STALE"));
    // The old phone's codes are refused at once.
    env.clock.advance(60);
    let r = env
        .engine
        .verify(&old_uid, env.code(&old_secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::NotActive);
    // The new setup mail, to the new address.
    let outbox = env.engine.store().outbox(100).await.unwrap();
    let mail = outbox.iter().rev().find(|m| m.kind == "issuance").unwrap();
    assert_eq!(mail.to_addr, "newphone@example.jp");
    assert!(
        !mail.body.contains(&password),
        "the mail never carries the password"
    );
    let code = links_in_outbox(&outbox).pop().unwrap();
    let dl = sup.get(&format!("/dl/{code}")).await;
    assert_eq!(dl.status, 200);
    // The app core sets the new token up over the app API.
    let mut dir = app::Directory::bundled().unwrap();
    dir.set(&"10112231".parse().unwrap(), &srv.base).unwrap();
    let client = app::ProvisioningClient::new(dir).unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut vault = app::Vault::open(data.path(), Arc::new(app::MemoryStore::default())).unwrap();
    let (meta, _) = app::setup_token(
        &client,
        &mut vault,
        &app::SetupInput {
            service_id: "10112231".into(),
            user_id: new_uid.clone(),
            activation_password: protocol::Sensitive::new(password.clone()),
            device: protocol::DeviceInfo {
                platform: "ios".into(),
                model: "iPhone 16".into(),
                os_version: "18".into(),
                app_version: "1.0.0".into(),
            },
        },
    )
    .await
    .expect("the app sets the reprovisioned token up");
    let shown = |ahead: u64| {
        vault
            .code_view(&meta.id, app::codes::device_now() + ahead)
            .unwrap()
            .code
            .as_str()
            .to_owned()
    };
    let r = env
        .engine
        .verify(&new_uid, z(&shown(0)), Purpose::Activation, host())
        .await
        .unwrap();
    assert_eq!(
        r.result,
        Outcome::Ok,
        "the app's code activates the new token"
    );
    env.clock.advance(60);
    let r = env
        .engine
        .verify(&new_uid, z(&shown(60)), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::Ok, "and logs in");
    env.clock.advance(60);
    let r = env
        .engine
        .verify(&new_uid, env.code(&old_secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(
        r.result,
        Outcome::Invalid,
        "the old phone's code fails on the new token"
    );
    let r = env
        .engine
        .verify(&old_uid, env.code(&old_secret, 0), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(r.result, Outcome::NotActive, "and on the old one");
    // The customer page shows the new device and the audit trail names the supervisor.
    let p = sup.get(&page).await;
    assert!(p.body.contains("ios · iPhone 16 · OS 18 · app 1.0.0"));
    assert_eq!(
        p.text_of("token-user-id").as_deref(),
        Some(new_uid.as_str())
    );
    let audit = customer_audit(env, cid).await;
    let rp = audit.iter().find(|a| a.action == "reprovision").unwrap();
    assert!(rp.actor.starts_with("staff:"));
    assert!(rp.detail.as_deref().unwrap().contains("phone lost"));
}

/// Passwords typed into the console and the screens, and the one the console generates, never
/// reach the logs: a real server process logging JSON at trace level; a supervisor logs in and
/// reprovisions with a generated activation password, the app API sets the new token up with
/// it, a customer logs in and confirms a transfer (a wrong confirmation password, then the
/// right one), and none of those passwords is in what the process wrote.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_and_screen_logs_never_contain_passwords() {
    let env = Env::new(Db::Sqlite).await;
    staff(&env, "sup0001", "supervisor").await;
    let (old_uid, _) = env.active_token("taro0001").await;
    let cid = customer_id(&env, "taro0001").await;
    env.engine
        .create_customer(
            "hana0001",
            "Hana",
            Some("hana@example.jp"),
            z("Hn-secret-8841"),
            z("Cf5512xq"),
            &host(),
        )
        .await
        .unwrap();
    env.engine.store().close().await;
    // Mail goes to an SMTP port nobody listens on, so the setup mail stays in the outbox (a
    // sent one keeps no copy of its link) and this test can read the link from there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = env.db.dir.path().join("otp.toml");
    std::fs::write(
        &config,
        format!("[mail]\nsmtp_host = \"127.0.0.1\"\nsmtp_port = {closed}\ntls = \"none\"\n"),
    )
    .unwrap();
    let p = crate::process::Proc::start(
        &env.db,
        &[
            ("OTP_LOG_JSON", "1"),
            ("OTP_LOG", "trace"),
            ("OTP_CONFIG", config.to_str().unwrap()),
        ],
    )
    .await;
    let b = Browser::new(&p.base).with_codes(Codes::real_time(&env));
    b.staff_login("sup0001").await;
    let page = format!("/staff/customers/{cid}");
    let r = b
        .act(
            &page,
            &format!("{page}/reprovision"),
            &[
                ("expected_user_id", &old_uid),
                ("mode", "generated"),
                ("reason", "phone lost, identity checked by callback"),
            ],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let password = r.text_of("generated-password").unwrap();
    let new_uid = r.text_of("new-user-id").unwrap();
    assert_eq!(password.len(), 8);
    // The customer opens the mailed link, and the app sets the token up with the password.
    let store = backend::store::Store::connect(&env.db.url, &Default::default()).unwrap();
    let outbox = store.outbox(100).await.unwrap();
    assert!(
        outbox.iter().all(|m| m.sent_at.is_none()),
        "the mail waits in the outbox (no SMTP server listens)"
    );
    let code = links_in_outbox(&outbox).pop().unwrap();
    assert_eq!(b.get(&format!("/dl/{code}")).await.status, 200);
    // Provisioning v2 (issue 18), as the app runs it: the password never leaves this side.
    let (state, start) = protocol::pake::client_start(
        "10112231".parse().unwrap(),
        new_uid.parse().unwrap(),
        protocol::Sensitive(password.clone()),
        device(),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{}/app/v2/setup/start", p.base))
        .json(&start)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "setup with the generated password");
    let (confirmed, finish) = state
        .on_server_reply(&res.json().await.unwrap())
        .expect("the generated password is the one the record was made with");
    let res = http
        .post(format!("{}/app/v2/setup/finish", p.base))
        .json(&finish)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let sealed = res.json().await.unwrap();
    let secret = confirmed.open_sealed(&sealed).unwrap().to_base32();
    assert!(secret.len() >= 26, "at least 128 bits of base32");
    // A customer's login password on the login screen, and their confirmation password (a
    // wrong one, then the right one) on a transfer.
    let c = Browser::new(&p.base);
    let form = c.get("/login").await;
    let r = c
        .post(
            "/login",
            &[
                ("csrf", &form.input("csrf")),
                ("login_id", "hana0001"),
                ("password", "Hn-secret-8841"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/top"), "the customer logs in");
    let input = c.get("/transfer").await;
    let r = c
        .post(
            "/transfer",
            &[
                ("csrf", &input.input("csrf")),
                ("bank_code", "0001"),
                ("branch_code", "123"),
                ("account_type", "1"),
                ("account_number", "1234567"),
                ("payee", "TEST TRADING"),
                ("amount", "1000"),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/transfer/confirm"));
    let confirm = c.get("/transfer/confirm").await;
    // A new payee: the メール通知パスワード waits in the outbox (issue 19); it must not be logged
    // either.
    let mailed = crate::mail_password::mailed_password(&store.outbox(100).await.unwrap());
    for (pw, status) in [("Wz7731kp", 422), ("Cf5512xq", 303)] {
        let r = c
            .post(
                "/transfer/confirm",
                &[
                    ("csrf", &confirm.input("csrf")),
                    ("request_key", &confirm.input("request_key")),
                    ("confirmation_password", pw),
                    ("mail_password", &mailed),
                ],
            )
            .await;
        assert_eq!(r.status, status, "{}", r.body);
    }
    // Wait until the server has logged the last request's end, so every request is in.
    let finished = |logs: &str| {
        logs.lines()
            .filter(|l| {
                l.contains("finished processing request")
                    && l.contains(r#""method":"POST","route":"/transfer/confirm""#)
            })
            .count()
    };
    for _ in 0..100 {
        if finished(&p.logs.lock().unwrap().join("\n")) >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let logs = p.logs.lock().unwrap().join("\n");
    assert_eq!(finished(&logs), 2, "both confirmations were logged: {logs}");
    assert!(
        logs.lines().filter(|l| l.starts_with('{')).count() > 5,
        "JSON logs were written at trace level: {logs}"
    );
    assert!(
        logs.contains("/staff/customers/{id}/reprovision"),
        "the requests were logged (by route pattern): {logs}"
    );
    let staff_secret = env.staff_secrets.lock().unwrap()["sup0001"].to_base32();
    for needle in [
        password.as_str(),
        STAFF_PW,
        staff_secret.as_str(),
        "Hn-secret-8841",
        "Wz7731kp",
        "Cf5512xq",
        secret.as_str(),
        code.as_str(),
        mailed.as_str(),
    ] {
        assert!(
            !logs.contains(needle),
            "the log contains a secret ({} chars): {logs}",
            needle.len()
        );
    }
}

/// English by default; the header's switch turns the whole console Japanese (and back), pages,
/// labels, state names and the engine's refusals alike; the switch goes back only to a console
/// page.
async fn the_console_speaks_japanese_on_request(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    staff(env, "op0001", "operator").await;
    env.active_token("taro0001").await;
    let cid = customer_id(env, "taro0001").await;
    let op = srv.browser();
    let form = op.get("/staff/login").await;
    assert!(form.body.contains("<html lang=\"en\">") && form.body.contains("<h1>Staff login</h1>"));
    let switch = form.href_of("lang-switch");
    assert_eq!(switch, "/staff/lang?to=ja&back=/staff/login");
    let r = op.get(&switch).await;
    assert_eq!(r.location.as_deref(), Some("/staff/login"));
    let form = op.get("/staff/login").await;
    assert!(form.body.contains("<html lang=\"ja\">"), "{}", form.body);
    assert!(form.body.contains("<h1>スタッフログイン</h1>"));
    assert!(
        form.body.contains(">認証アプリのコード</label>"),
        "the code field speaks Japanese too"
    );
    assert!(form.body.contains(">English</a>"), "the switch back");
    let r = op
        .post(
            "/staff/login",
            &[
                ("csrf", &form.input("csrf")),
                ("login_id", "op0001"),
                ("password", "wrong-password-1"),
                ("code", "000000"),
            ],
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r
        .body
        .contains("ログインID、パスワードまたはコードが正しくありません。"));
    op.staff_login("op0001").await;
    let r = op.get("/staff?q=nobody").await;
    assert!(r.body.contains("<h1>お客さま検索</h1>"));
    assert!(r.body.contains("「nobody」に該当するお客さまはいません。"));
    assert!(r.body.contains("op0001 (オペレーター)"));
    let page = format!("/staff/customers/{cid}");
    let p = op.get(&page).await;
    assert!(p.body.contains("<h1>お客さま taro0001</h1>"));
    assert!(p.body.contains(">利用中</dd>"), "the state in Japanese");
    assert!(p.body.contains("ロックなし") && p.body.contains("連続誤り 0 回"));
    assert!(p
        .body
        .contains("失効と再発行にはスーパーバイザーの権限が必要です。"));
    // The engine's refusals, by code.
    let uid = p.body.split("id=\"token-user-id\">").nth(1).unwrap()[..12].to_owned();
    let r = op
        .act(
            &page,
            &format!("{page}/revoke"),
            &[("user_id", &uid), ("reason", "lost phone")],
        )
        .await;
    assert_eq!(r.status, 403);
    assert!(
        r.body
            .contains("この操作はあなたの権限ではできません。 (STAFF_FORBIDDEN)"),
        "{}",
        r.body
    );
    let r = op
        .act(
            &page,
            &format!("{page}/unlock"),
            &[("user_id", &uid), ("reason", "ab")],
        )
        .await;
    assert!(r
        .body
        .contains("理由を3文字以上で入力して下さい。 (REASON_REQUIRED)"));
    // No open redirect through the switch.
    for back in [
        "//evil.example",
        "https://evil.example",
        "/top",
        "/staff\\evil",
        "/staff%0D%0ASet-Cookie:%20x=1",
    ] {
        let r = op
            .get(&format!(
                "/staff/lang?to=en&back={}",
                back.replace('/', "%2F")
            ))
            .await;
        if back.contains("%0D") {
            // Control characters never reach the handler (web::text_guard): refused outright.
            assert_eq!((r.status, r.location.as_deref()), (400, None), "{back}");
        } else {
            assert_eq!(r.location.as_deref(), Some("/staff"), "{back}");
        }
    }
    let p = op.get(&page).await;
    assert!(p.body.contains("<html lang=\"en\">") && p.body.contains(">Active</dd>"));
}

/// With no `staff_lang` cookie the console answers in `staff.language`: Japanese by default,
/// English when configured `en`; the switch still turns it to the other and back. A language
/// the console does not speak stops start-up, naming the setting.
async fn the_console_defaults_to_the_configured_language(db: Db) {
    let srv = Server::start(db, |c| c.staff = backend::config::StaffConfig::default()).await;
    let b = srv.browser();
    let form = b.get("/staff/login").await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("<html lang=\"ja\">"), "{}", form.body);
    assert!(form.body.contains("<h1>スタッフログイン</h1>"));
    let switch = form.href_of("lang-switch");
    assert_eq!(switch, "/staff/lang?to=en&back=/staff/login");
    b.get(&switch).await;
    let form = b.get("/staff/login").await;
    assert!(form.body.contains("<html lang=\"en\">") && form.body.contains("<h1>Staff login</h1>"));
    // Refusals before any handler (web::text_guard) follow the default too.
    let r = Browser::new(&srv.base).get("/staff?q=%01").await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("<html lang=\"ja\">"), "{}", r.body);
    assert!(r.body.contains("制御文字"), "{}", r.body);

    let srv = Server::start(db, |c| c.staff.language = "en".into()).await;
    let b = srv.browser();
    let form = b.get("/staff/login").await;
    assert!(form.body.contains("<html lang=\"en\">") && form.body.contains("<h1>Staff login</h1>"));
    let switch = form.href_of("lang-switch");
    assert_eq!(switch, "/staff/lang?to=ja&back=/staff/login");
    b.get(&switch).await;
    let form = b.get("/staff/login").await;
    assert!(
        form.body.contains("<h1>スタッフログイン</h1>"),
        "{}",
        form.body
    );

    let test_db = TestDb::new(db).await;
    let mut cfg = config_for(&test_db);
    cfg.staff.language = "fr".into();
    let err = backend::build(&cfg, Box::new(backend::engine::ManualClock::new(T0)))
        .await
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("staff.language") && err.contains("OTP_STAFF_LANGUAGE"),
        "{err}"
    );
}

/// The CSV export is the whole trail, not its newest page: more events than one read holds
/// (10,000) all come out, oldest included.
async fn the_export_has_every_event(db: Db) {
    let env = Env::new(db).await;
    let op = staff(&env, "op0001", "operator").await;
    env.customer("busy0001").await;
    let cid = customer_id(&env, "busy0001").await;
    let before = customer_audit(&env, cid).await.len();
    let mut tx = env.engine.store().begin().await.unwrap();
    for i in 0..10_005 {
        tx.audit(&backend::store::NewAudit {
            at: i64::try_from(T0).unwrap() + i,
            actor: "cli",
            customer_id: Some(cid),
            action: "verify_login",
            outcome: "ok",
            ..Default::default()
        })
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    let all = env.engine.staff_audit_all(&op, cid).await.unwrap();
    assert_eq!(all.len(), before + 10_005);
    assert!(
        all.windows(2).all(|w| w[0].id > w[1].id),
        "newest first, no repeats"
    );
    assert_eq!(
        all.last().unwrap().action,
        "customer_create",
        "the oldest is there"
    );
}

/// A customer who says the download link (or a mailed password) never came: the console showed
/// nothing of the outbox, so support could not tell a mail server outage from a wrong address.
/// The customer's page lists the mail that has not reached them: what it was, to which address,
/// how many tries, whether it waits for another try or was given up on, and the last error;
/// never its body (an issuance mail holds a download-link code). Mail that went out leaves
/// the list.
async fn the_customer_page_shows_mail_that_did_not_arrive(db: Db) {
    let srv = Server::start(db, |_| {}).await;
    let env = &srv.env;
    staff(env, "op0001", "operator").await;
    for login in ["mail0101", "mail0102"] {
        env.customer(login).await;
        env.issue(login).await;
    }
    let (first, second) = (
        customer_id(env, "mail0101").await,
        customer_id(env, "mail0102").await,
    );
    let op = srv.browser();
    op.staff_login("op0001").await;
    let page = op.get(&format!("/staff/customers/{first}")).await;
    assert!(
        !page.body.contains("id=\"undelivered\""),
        "nothing has failed yet: no list"
    );
    // The relay is down: nothing listens on its port.
    let store = env.engine.store().clone();
    let worker = crate::faults::mail_worker(env, Some(test_support::free_port()));
    assert_eq!(worker.run_once().await.unwrap(), 0);
    let outbox = store.outbox(10).await.unwrap();
    let mine = outbox
        .iter()
        .find(|m| m.customer_id == Some(first))
        .unwrap();
    let page = op.get(&format!("/staff/customers/{first}")).await;
    assert_eq!(page.status, 200);
    let list = page
        .body
        .split("id=\"undelivered\"")
        .nth(1)
        .expect("the list");
    let list = list.split("</table>").next().unwrap();
    assert!(list.contains("Download link"), "{list}");
    assert!(list.contains(&mine.to_addr), "the address: {list}");
    assert!(
        list.contains("Retrying"),
        "it waits for another try: {list}"
    );
    assert!(
        test_support::http::html_unescape(list).contains(mine.last_error.as_deref().unwrap()),
        "the relay's error: {list}"
    );
    assert!(!page.body.contains("/dl/"), "never the download link");
    // The other customer's address cannot be mailed (stored before the stricter check): the
    // worker gives up on it; the first customer's mail goes out this time.
    let theirs = outbox
        .iter()
        .find(|m| m.customer_id == Some(second))
        .unwrap();
    {
        use sqlx::Connection as _;
        let mut c = sqlx::AnyConnection::connect(&env.db.url).await.unwrap();
        sqlx::query("UPDATE mail_outbox SET to_addr = 'taro..hanako@docomo.ne.jp', next_attempt_at = 0 WHERE id = $1")
            .bind(theirs.id)
            .execute(&mut c)
            .await
            .unwrap();
        sqlx::query("UPDATE mail_outbox SET next_attempt_at = 0 WHERE id = $1")
            .bind(mine.id)
            .execute(&mut c)
            .await
            .unwrap();
    }
    let files = crate::faults::mail_worker(env, None);
    assert_eq!(files.run_once().await.unwrap(), 1);
    let page = op.get(&format!("/staff/customers/{first}")).await;
    assert!(
        !page.body.contains("id=\"undelivered\""),
        "sent: off the list"
    );
    let page = op.get(&format!("/staff/customers/{second}")).await;
    let list = page
        .body
        .split("id=\"undelivered\"")
        .nth(1)
        .expect("the list");
    assert!(list.contains("taro..hanako@docomo.ne.jp"), "{list}");
    assert!(list.contains("Given up: not sent"), "{list}");
    assert!(list.contains("cannot be mailed"), "{list}");
}
