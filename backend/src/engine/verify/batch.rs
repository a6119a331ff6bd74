//! One batch of verifications, as the store's [`BatchLogic`]: the store reads every token
//! once, the batch decides every job in memory in arrival order, and the store writes every
//! changed token with a compare-and-set that holds only where the row is still exactly as
//! read. A token whose row changed meanwhile (another worker or process) is read again and
//! its jobs decided again, so replay protection and failure counting hold across processes.
//! A job's audit events and notice are written with its token's update, and only if it
//! lands: only final decisions leave a trace.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::engine::{now_i64, EngineError, Inner, Result};
use crate::store::{BatchLogic, NewAudit, PendingAudit, RoundWrites, TokenRow, TokenUpdate};

use super::plan::{plan_one, token_update, Planned, Seen, Working};
use super::{Request, VerifyReport};

pub(super) struct Batch {
    inner: Arc<Inner>,
    now_u: u64,
    jobs: Vec<Request>,
    planned: Vec<Option<Planned>>,
    /// Jobs (indexes) still to decide, or decided in a round whose write has not landed yet:
    /// a decision is final only in [`BatchLogic::landed`], so a round that fails after
    /// deciding leaves its jobs here, answered "unavailable".
    pending: Vec<usize>,
    /// The jobs decided in the last round, and the token ids that round updated.
    last_round: Vec<usize>,
    updated: HashSet<i64>,
}

impl Batch {
    pub(super) fn new(inner: Arc<Inner>, jobs: Vec<Request>) -> Batch {
        let now_u = inner.clock.now();
        Batch {
            inner,
            now_u,
            planned: jobs.iter().map(|_| None).collect(),
            pending: (0..jobs.len()).collect(),
            last_round: Vec::new(),
            updated: HashSet::new(),
            jobs,
        }
    }

    /// The answers, in job order. Jobs still pending (rows that kept changing under us, or a
    /// later round that failed) are answered "unavailable": nothing of them was written.
    pub(super) fn answers(mut self) -> Vec<Result<VerifyReport>> {
        for i in std::mem::take(&mut self.pending) {
            self.planned[i] = None;
        }
        self.planned
            .into_iter()
            .map(|p| p.map_or(Err(EngineError::Unavailable), |p| p.report))
            .collect()
    }
}

impl BatchLogic for Batch {
    fn pending(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .pending
            .iter()
            .map(|&i| self.jobs[i].user_id.clone())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    fn decide(&mut self, rows: Vec<TokenRow>) -> Vec<TokenUpdate> {
        let mut work: HashMap<String, Working> = rows
            .into_iter()
            .map(|r| {
                (
                    r.user_id.clone(),
                    Working {
                        original: Seen::of(&r),
                        current: r,
                    },
                )
            })
            .collect();
        for &i in &self.pending {
            let job = &self.jobs[i];
            self.planned[i] = Some(plan_one(
                &self.inner,
                job,
                work.get_mut(&job.user_id),
                self.now_u,
            ));
        }
        self.last_round.clone_from(&self.pending);
        let updates: Vec<TokenUpdate> = work
            .values()
            .filter(|w| {
                w.current.last_step != w.original.last_step
                    || w.current.last_tx_step != w.original.last_tx_step
                    || w.current.failures != w.original.failures
                    || w.current.locked_at != w.original.locked_at
                    || w.current.state != w.original.state
            })
            .map(token_update)
            .collect();
        self.updated = updates.iter().map(|u| u.id).collect();
        updates
    }

    fn landed(&mut self, landed: &HashSet<i64>) {
        // The round's decisions are final now, except every job on a token whose update did
        // not land: it is decided again in the next round.
        let (planned, updated) = (&self.planned, &self.updated);
        self.pending = std::mem::take(&mut self.last_round)
            .into_iter()
            .filter(|&i| {
                planned[i]
                    .as_ref()
                    .and_then(|p| p.token)
                    .is_some_and(|(id, _)| updated.contains(&id) && !landed.contains(&id))
            })
            .collect();
    }

    fn writes(&mut self) -> RoundWrites {
        let now = now_i64(self.now_u);
        let mut out = RoundWrites::default();
        for &i in &self.last_round {
            let (job, Some(p)) = (&self.jobs[i], self.planned[i].as_mut()) else {
                continue;
            };
            // A job waits for its token's update when this round changed that token (whichever
            // of the token's jobs changed it: the later ones were decided on that change).
            let waits = p
                .token
                .map(|(id, _)| id)
                .filter(|id| self.updated.contains(id));
            for (action, outcome, detail) in p.audits.drain(..) {
                out.audits.push((
                    waits,
                    PendingAudit::from(&NewAudit {
                        customer_id: p.token.map(|(_, customer_id)| customer_id),
                        user_id: Some(&job.user_id),
                        detail,
                        ..job.actor.audit(action, outcome, now)
                    }),
                ));
            }
            if let Some((notice, key, row)) = p.notice.take() {
                out.mails.push((
                    waits,
                    crate::mail::notice_mail(&self.inner.cfg.bank, &row, notice, &key, now),
                ));
            }
        }
        out
    }
}
