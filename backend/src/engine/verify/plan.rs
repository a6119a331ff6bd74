//! Deciding one verification against its token's working state, updating that state as the
//! store will (the domain decides; the lockout rule is `domain::throttle`).

use protocol::Code;

use crate::domain::{self, Decision, DomainError, Event, Outcome, Purpose};
use crate::engine::{now_i64, snapshot, EngineError, Inner, Result};
use crate::mail::compose::Notice;
use crate::store::{TokenRow, TokenUpdate};

use super::{Request, VerifyReport};

/// What the plan decided for one job; written (audit, notice) only once its token's update
/// has landed.
pub(super) struct Planned {
    pub(super) report: Result<VerifyReport>,
    /// The token's (id, customer id), when it exists.
    pub(super) token: Option<(i64, i64)>,
    /// (action, outcome, detail) audit events, in order.
    pub(super) audits: Vec<(&'static str, &'static str, Option<String>)>,
    /// A notice to mail: what, its dedupe key, and the row as it was when decided (cloned only
    /// here: cloning every row cost the writer thread a dozen allocations per verification).
    pub(super) notice: Option<(Notice, String, TokenRow)>,
}

/// A token's state while a batch is planned: what its compare-and-set expects of the row as
/// read, and the row as the batch leaves it.
pub(super) struct Working {
    pub(super) original: Seen,
    pub(super) current: TokenRow,
}

/// The columns of a token's row that a verification's compare-and-set expects unchanged.
#[derive(Clone, Copy)]
pub(super) struct Seen {
    pub(super) last_step: i64,
    pub(super) last_tx_step: i64,
    pub(super) failures: i64,
    pub(super) locked_at: Option<i64>,
    pub(super) state: crate::domain::TokenState,
}

impl Seen {
    pub(super) fn of(row: &TokenRow) -> Seen {
        Seen {
            last_step: row.last_step,
            last_tx_step: row.last_tx_step,
            failures: row.failures,
            locked_at: row.locked_at,
            state: row.state,
        }
    }
}

fn action_of(purpose: Purpose) -> &'static str {
    match purpose {
        Purpose::Login => "verify_login",
        Purpose::Transfer => "verify_transfer",
        Purpose::Activation => "activate",
        Purpose::Deactivation => "deactivate",
        Purpose::Transaction => "verify_transaction",
    }
}

/// Decide one job against the token's working state, updating that state as the store will.
pub(super) fn plan_one(
    inner: &Inner,
    job: &Request,
    work: Option<&mut Working>,
    now_u: u64,
) -> Planned {
    let now = now_i64(now_u);
    let policy = &inner.cfg.policy;
    let action = action_of(job.purpose);
    // The audit names an authenticated transaction by its digest (never the code).
    let detail = job
        .transaction
        .as_ref()
        .map(|tx| serde_json::json!({ "transaction": tx.digest_hex() }).to_string());
    let Some(work) = work else {
        return Planned {
            report: Err(DomainError::UnknownToken.into()),
            token: None,
            audits: vec![(action, "unknown_token", detail.clone())],
            notice: None,
        };
    };
    let row = &mut work.current;
    let planned = |report, audits, notice: Option<(Notice, String)>, row: &TokenRow| Planned {
        report,
        token: Some((row.id, row.customer_id)),
        audits,
        notice: notice.map(|(notice, key)| (notice, key, row.clone())),
    };
    let snap = match snapshot(row) {
        Ok(s) => s,
        Err(e) => return planned(Err(e), vec![], None, row),
    };
    // A transaction code has OCRA's 8 digits whatever the token's TOTP profile.
    let digits = if job.transaction.is_some() {
        8
    } else {
        snap.params.digits
    };
    let Ok(code) = Code::parse(&job.code, digits) else {
        return planned(Err(EngineError::CodeFormat(digits)), vec![], None, row);
    };
    let decision = match row.sealed() {
        Some(sealed) if job.purpose.accepts(snap.state) => {
            match inner.keys.open(&row.user_id, &sealed) {
                Ok(secret) => match &job.transaction {
                    Some(tx) => {
                        domain::verify::decide_transaction(&snap, &secret, &code, tx, policy, now_u)
                    }
                    None => domain::decide(&snap, &secret, &code, job.purpose, policy, now_u),
                },
                Err(e) => return planned(Err(e.into()), vec![], None, row),
            }
        }
        _ => Decision::NotActive,
    };
    let report = |result, attempts_left, row: &TokenRow| VerifyReport {
        result,
        attempts_left,
        state: row.state,
        locked: policy.is_locked(row.locked_at, now),
    };
    match decision {
        Decision::Accept { step, drift } => {
            let next = match job.purpose.event() {
                Some(ev) => match domain::transition(snap.state, ev) {
                    Ok(next) => next,
                    Err(e) => return planned(Err(e.into()), vec![], None, row),
                },
                None => snap.state,
            };
            if job.transaction.is_some() {
                row.last_tx_step = i64::try_from(step).unwrap_or(i64::MAX);
            } else {
                row.last_step = i64::try_from(step).unwrap_or(i64::MAX);
                row.drift = drift;
            }
            row.failures = 0;
            row.locked_at = None;
            row.last_used_at = Some(now);
            row.state = next;
            let notice = match job.purpose.event() {
                Some(Event::Activate) => {
                    row.activated_at = Some(now);
                    Some((Notice::Activated, now.to_string()))
                }
                Some(Event::Deactivate) => {
                    row.deactivated_at = Some(now);
                    Some((Notice::Deactivated, now.to_string()))
                }
                _ => None,
            };
            let r = report(Outcome::Ok, None, row);
            planned(Ok(r), vec![(action, "ok", detail.clone())], notice, row)
        }
        // OWASP ASVS V2.8.5: a reused code is refused, logged and the customer told.
        Decision::Replay { step } => planned(
            Ok(report(Outcome::Replayed, None, row)),
            vec![(action, "replayed", detail.clone())],
            Some((Notice::Replayed, step.to_string())),
            row,
        ),
        Decision::Locked => planned(
            Ok(report(Outcome::Locked, None, row)),
            vec![(action, "locked", detail.clone())],
            None,
            row,
        ),
        Decision::NotActive => planned(
            Ok(report(Outcome::NotActive, None, row)),
            vec![(action, "not_active", detail.clone())],
            None,
            row,
        ),
        Decision::Fail => {
            let max = i64::from(policy.max_failures);
            // A lifted timed lock starts the count again.
            row.failures = if row.locked_at.is_some() {
                1
            } else {
                row.failures + 1
            };
            if row.failures >= max {
                row.locked_at = Some(now);
                let lock = serde_json::json!({ "failures": row.failures }).to_string();
                let r = report(Outcome::Locked, Some(0), row);
                planned(
                    Ok(r),
                    vec![
                        (action, "invalid", detail.clone()),
                        ("lock", "locked", Some(lock)),
                    ],
                    Some((Notice::Locked, now.to_string())),
                    row,
                )
            } else {
                row.locked_at = None;
                let left = u32::try_from((max - row.failures).max(0)).unwrap_or(0);
                let r = report(Outcome::Invalid, Some(left), row);
                planned(Ok(r), vec![(action, "invalid", detail.clone())], None, row)
            }
        }
    }
}

/// The update that makes a token what the plan left it, if it is still what was read.
pub(super) fn token_update(w: &Working) -> TokenUpdate {
    let (o, c) = (&w.original, &w.current);
    TokenUpdate {
        id: c.id,
        last_step: c.last_step,
        last_tx_step: c.last_tx_step,
        drift: c.drift,
        failures: c.failures,
        locked_at: c.locked_at,
        state: c.state,
        last_used_at: c.last_used_at,
        activated_at: c.activated_at,
        deactivated_at: c.deactivated_at,
        expect_last_step: o.last_step,
        expect_last_tx_step: o.last_tx_step,
        expect_failures: o.failures,
        expect_state: o.state,
        expect_locked_at: o.locked_at,
    }
}
