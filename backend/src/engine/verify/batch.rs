//! One batch of verifications in one transaction.

use std::collections::HashMap;

use crate::engine::{now_i64, EngineError, Inner, Result};
use crate::store::{NewAudit, StoreError, TokenUpdate};

use super::plan::{plan_one, token_update, Planned, Working};
use super::{Job, VerifyReport};

/// A batch of verifications in one transaction: read every token once (locked, on PostgreSQL),
/// decide every job in memory in arrival order, then write every changed token with one
/// conditional UPDATE that holds only where the row is still exactly as read. A token whose
/// row changed meanwhile (another process) is read again and its jobs decided again, so replay
/// protection and failure counting hold across processes. Audit events and notices are written
/// for the final decisions only, in the same transaction.
pub(super) async fn process_batch(
    inner: &Inner,
    conn: &mut sqlx::AnyConnection,
    batch: &[Job],
) -> Result<Vec<Result<VerifyReport>>, StoreError> {
    let now_u = inner.clock.now();
    let now = now_i64(now_u);
    let mut tx = inner.store.begin_on(conn).await?;
    let mut pending: Vec<usize> = (0..batch.len()).collect();
    let mut planned: Vec<Option<Planned>> = batch.iter().map(|_| None).collect();
    for _round in 0..8 {
        if pending.is_empty() {
            break;
        }
        let mut ids: Vec<&str> = pending.iter().map(|&i| batch[i].user_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        let rows = tx.read_tokens_for_update(&ids).await?;
        let mut work: HashMap<String, Working> = rows
            .into_iter()
            .map(|r| {
                (
                    r.user_id.clone(),
                    Working {
                        original: r.clone(),
                        current: r,
                    },
                )
            })
            .collect();
        for &i in &pending {
            let job = &batch[i];
            planned[i] = Some(plan_one(inner, job, work.get_mut(&job.user_id), now_u));
        }
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
        let landed = tx.apply_token_updates(&updates).await?;
        let lost: std::collections::HashSet<i64> = updates
            .iter()
            .map(|u| u.id)
            .filter(|id| !landed.contains(id))
            .collect();
        pending.retain(|&i| {
            planned[i]
                .as_ref()
                .and_then(|p| p.row.as_ref())
                .is_some_and(|r| lost.contains(&r.id))
        });
    }
    if !pending.is_empty() {
        // Never seen: rows that keep changing under us. Answer honestly rather than loop.
        for &i in &pending {
            planned[i] = Some(Planned {
                report: Err(EngineError::Unavailable),
                row: None,
                audits: vec![],
                notice: None,
            });
        }
    }
    let mut out = Vec::with_capacity(batch.len());
    for (job, p) in batch.iter().zip(planned) {
        let Some(p) = p else {
            out.push(Err(EngineError::Unavailable));
            continue;
        };
        for (action, outcome, detail) in &p.audits {
            tx.audit(&NewAudit {
                customer_id: p.row.as_ref().map(|r| r.customer_id),
                user_id: Some(&job.user_id),
                detail: detail.clone(),
                ..job.actor.audit(action, outcome, now)
            })
            .await?;
        }
        if let (Some((notice, key)), Some(row)) = (p.notice, p.row.as_ref()) {
            crate::mail::enqueue_notice(&mut tx, &inner.cfg.bank, row, notice, &key, now).await?;
        }
        out.push(p.report);
    }
    tx.commit().await?;
    Ok(out)
}
