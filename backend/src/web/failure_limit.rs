//! A limit on failures per client in a sliding window, for the customer login (password
//! spraying across login IDs, each below its account's own lock): at most `limit` failures in
//! any `window_secs`, counting the attempts still running as possible failures, so a burst sent
//! at once cannot pass the limit while its checks run.
//!
//! The failures are the database's (`Engine::login_failures`, written by
//! `Engine::record_login_failure`), so every instance on one database counts the same ones.
//! Before, with the failures in each process's memory, the limit was multiplied by the number
//! of instances behind the load balancer. The attempts in flight are this process's (a burst
//! spread over several instances may start up to one limit's worth on each before the first of
//! them fails; the failures then stop every instance).
//!
//! The count is exact within a process: the client's [`Gate`] is held while its failures are
//! read and its attempt admitted, and while a failure is recorded and its attempt ended, so a
//! read sees each of this process's failures either in the database or in flight, never both
//! and never neither. (Without it, a failure the database had taken was read by a newer request
//! while its attempt still counted as in flight, and the newer one refused below the limit.)
//! A client that cannot be admitted anyway is refused before the gate ([`FailureLimit::precheck`]:
//! its attempts in flight fill the limit, or its failures did, until the oldest leaves the
//! window), so a client at its limit costs no database read and keeps no gate from the clients
//! that share it; a gate not had within [`GATE_WAIT`] is given up.
//!
//! An attempt is admitted when the client's failures in the window and its attempts in flight
//! here together stay below the limit; it is in flight until it ends. A refusal says how long
//! to wait: until the oldest failure leaves the window when failures alone fill it, else a
//! moment (the attempts in flight end within the request timeout). The first refusal of a
//! window is reported (audited) once per process. At most `max_keys` clients are tracked here,
//! the least recently seen forgotten first.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Gates, each shared by the clients whose keys hash to it (a few unrelated clients wait on one
/// another for a database read or a failure's insert, never for a login's password check).
const GATES: usize = 256;

/// The longest wait for a gate ([`FailureLimit::gate`]): held for a statement at a time, it is
/// free within milliseconds unless the database is slow or away. Longer than SQLite's write
/// queue (`store::SQLITE_WRITE_QUEUE`, 5 s), which a failure's insert may wait out with the
/// gate held under an ordinary load of writes.
pub const GATE_WAIT: Duration = Duration::from_secs(6);

/// Failures per client in a sliding window, with the attempts in flight.
#[derive(Debug)]
pub struct FailureLimit {
    window_secs: u64,
    max_keys: usize,
    clients: Mutex<HashMap<String, Client>>,
    gates: Box<[tokio::sync::Mutex<()>]>,
    gate_wait: Duration,
    /// Keyed at random per process: which clients share a gate cannot be chosen from outside.
    hasher: std::collections::hash_map::RandomState,
}

#[derive(Debug, Default)]
struct Client {
    in_flight: u32,
    /// Requests past [`FailureLimit::precheck`], not yet admitted or refused ([`Pending`]).
    pending: u32,
    last_seen: u64,
    /// When a refusal because of failures was last reported (the one to audit per window).
    reported: Option<u64>,
    /// Refused because of failures until then (the oldest of them leaves the window): until
    /// then no read can find fewer.
    blocked_until: u64,
}

/// Why an attempt was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Seconds to wait.
    pub retry_after: u64,
    /// The client's failures fill the limit (a spray), and this is the first such refusal in a
    /// window's length: the one to audit. `false` for a refusal that only waits for attempts in
    /// flight, and for later refusals.
    pub report: bool,
    /// The failures alone fill the limit (else: attempts in flight do).
    pub by_failures: bool,
}

/// The client's failures in the window, as the database has them (`Engine::login_failures`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    pub failures: u64,
    /// When the oldest of them was.
    pub oldest: Option<u64>,
}

/// A client's gate, held ([`FailureLimit::gate`]) while its failures are read and its attempt
/// admitted ([`FailureLimit::begin`]), and while an attempt's failure is recorded and the
/// attempt ended ([`Attempt::failed`]).
#[derive(Debug)]
pub struct Gate<'a> {
    _held: tokio::sync::MutexGuard<'a, ()>,
}

/// An admitted attempt: counted as in flight until it ends, as a failure ([`Attempt::failed`],
/// once the database has it) or as nothing (dropped). Owns its hold on the limit, so the
/// record of its failure can run on after the request is gone.
#[derive(Debug)]
pub struct Attempt {
    limit: Arc<FailureLimit>,
    key: String,
}

impl Attempt {
    /// The attempt failed, the database has the failure now, and `gate` (the client's) was held
    /// since before it was recorded: no read of the client's failures saw it both recorded and
    /// in flight. (`None`: the gate was not had within [`GATE_WAIT`]; the failure is recorded
    /// all the same, and may be counted twice for a moment, never missed.)
    pub fn failed(self, gate: Option<Gate<'_>>) {
        drop(self);
        drop(gate);
    }

    /// The limit it counts under.
    pub fn limit(&self) -> Arc<FailureLimit> {
        Arc::clone(&self.limit)
    }

    /// The client it counts for.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        self.limit.end(&self.key);
    }
}

/// A request past [`FailureLimit::precheck`], on its way to [`FailureLimit::begin`] (waiting for
/// the gate, reading the failures): counted against the limit with the attempts in flight, so
/// a burst from one client sends no more than the limit's worth of reads to the database and
/// keeps the gate it shares no longer than that.
#[derive(Debug)]
pub struct Pending {
    limit: Arc<FailureLimit>,
    key: String,
    counted: bool,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if self.counted {
            let mut map = self
                .limit
                .clients
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(c) = map.get_mut(&self.key) {
                c.pending = c.pending.saturating_sub(1);
            }
        }
    }
}

impl FailureLimit {
    pub fn new(window_secs: u64, max_keys: usize) -> FailureLimit {
        FailureLimit {
            window_secs: window_secs.max(1),
            max_keys: max_keys.max(1),
            clients: Mutex::new(HashMap::new()),
            gates: (0..GATES).map(|_| tokio::sync::Mutex::new(())).collect(),
            gate_wait: GATE_WAIT,
            hasher: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Wait for the gate of `key`: hold it from before the client's failures are read until its
    /// attempt is admitted, and from before a failure is recorded until the attempt has ended.
    /// `None` when it is not had within [`GATE_WAIT`].
    pub async fn gate(&self, key: &str) -> Option<Gate<'_>> {
        let i = usize::try_from(self.hasher.hash_one(key) % GATES as u64).unwrap_or(0);
        let held = tokio::time::timeout(self.gate_wait, self.gates[i].lock())
            .await
            .ok()?;
        Some(Gate { _held: held })
    }

    /// Refuse at once, before the gate and the database, an attempt of `key` at `now` that
    /// cannot be admitted: its attempts in flight here and the requests on their way to
    /// [`FailureLimit::begin`] fill `limit`, or its failures did, and the oldest of them is
    /// still in the window. Else the request is on its way ([`Pending`]).
    ///
    /// # Errors
    /// The client is at its limit ([`Refusal`], never one to report: that one was).
    pub fn precheck(self: &Arc<Self>, key: &str, limit: u32, now: u64) -> Result<Pending, Refusal> {
        let mut map = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(key) && map.len() >= self.max_keys {
            self.make_room(&mut map, now);
        }
        let c = map.entry(key.to_owned()).or_default();
        c.last_seen = c.last_seen.max(now);
        if c.blocked_until > now {
            return Err(Refusal {
                retry_after: c.blocked_until - now,
                report: false,
                by_failures: true,
            });
        }
        if c.in_flight.saturating_add(c.pending) >= limit.max(1) {
            return Err(Refusal {
                retry_after: 1,
                report: false,
                by_failures: false,
            });
        }
        c.pending = c.pending.saturating_add(1);
        Ok(Pending {
            limit: Arc::clone(self),
            key: key.to_owned(),
            counted: true,
        })
    }

    /// Admit the `pending` request's attempt at `now` under `limit` failures in the window
    /// (`recorded`: the client's failures in it, read with `_gate`, the client's, held), or say
    /// why not.
    ///
    /// # Errors
    /// The client is at its limit ([`Refusal`]).
    pub fn begin(
        self: &Arc<Self>,
        mut pending: Pending,
        limit: u32,
        now: u64,
        recorded: Recorded,
        _gate: &Gate<'_>,
    ) -> Result<Attempt, Refusal> {
        let window = self.window_secs;
        let limit = u64::from(limit.max(1));
        let key = std::mem::take(&mut pending.key);
        let key = key.as_str();
        let mut map = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        // Never forgotten while pending (`make_room`).
        let c = map.entry(key.to_owned()).or_default();
        // No longer on its way: admitted or refused, under the same lock.
        c.pending = c.pending.saturating_sub(1);
        pending.counted = false;
        c.last_seen = c.last_seen.max(now);
        let failures = recorded.failures;
        if failures.saturating_add(u64::from(c.in_flight)) < limit {
            c.in_flight = c.in_flight.saturating_add(1);
            return Ok(Attempt {
                limit: Arc::clone(self),
                key: key.to_owned(),
            });
        }
        if failures >= limit {
            let oldest = recorded.oldest.unwrap_or(now);
            c.blocked_until = oldest.saturating_add(window);
            let report = c.reported.is_none_or(|t| t.saturating_add(window) <= now);
            if report {
                c.reported = Some(now);
            }
            return Err(Refusal {
                retry_after: oldest.saturating_add(window).saturating_sub(now).max(1),
                report,
                by_failures: true,
            });
        }
        Err(Refusal {
            retry_after: 1,
            report: false,
            by_failures: false,
        })
    }

    fn end(&self, key: &str) {
        let mut map = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = map.get_mut(key) {
            c.in_flight = c.in_flight.saturating_sub(1);
        }
    }

    /// Forget clients with nothing in flight and no refusal reported in the window; if that is
    /// not enough, the least recently seen tenth of those with nothing in flight.
    fn make_room(&self, map: &mut HashMap<String, Client>, now: u64) {
        let window = self.window_secs;
        let live = |c: &Client| {
            c.in_flight > 0
                || c.pending > 0
                || c.blocked_until > now
                || c.reported.is_some_and(|t| t.saturating_add(window) > now)
        };
        map.retain(|_, c| live(c));
        if map.len() < self.max_keys {
            return;
        }
        let evict = (self.max_keys / 10).max(1);
        let mut seen: Vec<(u64, String)> = map
            .iter()
            .filter(|(_, c)| c.in_flight == 0 && c.pending == 0)
            .map(|(k, c)| (c.last_seen, k.clone()))
            .collect();
        if evict < seen.len() {
            seen.select_nth_unstable(evict - 1);
        }
        for (_, k) in seen.into_iter().take(evict) {
            map.remove(&k);
        }
    }

    /// Clients tracked now (for tests).
    pub fn tracked(&self) -> usize {
        self.clients
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(failures: u64, oldest: u64) -> Recorded {
        Recorded {
            failures,
            oldest: Some(oldest),
        }
    }

    /// `precheck`, then `begin` with the client's gate held for it, as the login does.
    async fn begin(
        l: &Arc<FailureLimit>,
        key: &str,
        limit: u32,
        now: u64,
        read: Recorded,
    ) -> Result<Attempt, Refusal> {
        let pending = l.precheck(key, limit, now)?;
        let gate = l.gate(key).await.unwrap();
        l.begin(pending, limit, now, read, &gate)
    }

    #[tokio::test]
    async fn failures_fill_the_window_and_attempts_in_flight_count_until_they_end() {
        let l = Arc::new(FailureLimit::new(600, 100));
        let none = Recorded::default();
        // Three in flight against a limit of three: the fourth waits a moment, unreported.
        let a = begin(&l, "ip:1", 3, 1000, none).await.unwrap();
        let b = begin(&l, "ip:1", 3, 1000, none).await.unwrap();
        let c = begin(&l, "ip:1", 3, 1000, none).await.unwrap();
        let r = begin(&l, "ip:1", 3, 1000, none).await.unwrap_err();
        assert_eq!((r.retry_after, r.report, r.by_failures), (1, false, false));
        // They end (one of them a failure the database now has): room for two more.
        a.failed(l.gate("ip:1").await);
        drop((b, c));
        let d = begin(&l, "ip:1", 3, 1001, recorded(1, 1000)).await.unwrap();
        let e = begin(&l, "ip:1", 3, 1001, recorded(1, 1000)).await.unwrap();
        assert!(begin(&l, "ip:1", 3, 1001, recorded(1, 1000)).await.is_err());
        drop((d, e));
        // Three failures recorded: refused until the oldest leaves the window, reported once.
        let r = begin(&l, "ip:1", 3, 1010, recorded(3, 1000))
            .await
            .unwrap_err();
        assert_eq!((r.retry_after, r.report, r.by_failures), (590, true, true));
        let r = begin(&l, "ip:1", 3, 1011, recorded(3, 1000))
            .await
            .unwrap_err();
        assert!(!r.report, "one report per window");
        assert!(
            begin(&l, "ip:2", 3, 1011, none).await.is_ok(),
            "another client"
        );
    }

    /// A failure being recorded holds the client's gate until its attempt has ended: a read of
    /// the client's failures waits for both, so it finds the failure in the database and not
    /// in flight (it counted twice when the read came between the two, and the limit refused
    /// below itself).
    #[tokio::test]
    async fn a_read_waits_while_a_failure_is_recorded_and_its_attempt_ends() {
        let l = Arc::new(FailureLimit::new(600, 100));
        let none = Recorded::default();
        let first = begin(&l, "ip:1", 2, 1000, none).await.unwrap();
        // The first attempt failed: its gate is held while the database takes the failure ...
        let recording = l.gate("ip:1").await;
        let wait = std::time::Duration::from_millis(50);
        assert!(
            tokio::time::timeout(wait, l.gate("ip:1")).await.is_err(),
            "no read of the client's failures between the record and the end"
        );
        // ... and the attempt ends with it.
        first.failed(recording);
        // The read now finds the one failure, and nothing in flight: one more is admitted.
        let second = begin(&l, "ip:1", 2, 1000, recorded(1, 990)).await.unwrap();
        let r = begin(&l, "ip:1", 2, 1000, recorded(1, 990))
            .await
            .unwrap_err();
        assert!(!r.by_failures, "the second is in flight");
        drop(second);
    }

    /// A client at its limit is refused before the gate and the database: while its attempts in
    /// flight fill the limit, and after a refusal because of failures until the oldest of them
    /// leaves the window (no read could find fewer before). Only the first refusal is reported.
    #[tokio::test]
    async fn a_client_at_its_limit_is_refused_before_the_gate() {
        let l = Arc::new(FailureLimit::new(600, 100));
        let none = Recorded::default();
        assert!(l.precheck("ip:1", 2, 1000).is_ok(), "an unknown client");
        let a = begin(&l, "ip:1", 2, 1000, none).await.unwrap();
        let b = begin(&l, "ip:1", 2, 1000, none).await.unwrap();
        let r = l.precheck("ip:1", 2, 1000).unwrap_err();
        assert_eq!((r.retry_after, r.report, r.by_failures), (1, false, false));
        assert!(l.precheck("ip:2", 2, 1000).is_ok(), "another client");
        drop((a, b));
        assert!(l.precheck("ip:1", 2, 1000).is_ok());
        let r = begin(&l, "ip:1", 2, 1010, recorded(2, 1000))
            .await
            .unwrap_err();
        assert_eq!((r.retry_after, r.report, r.by_failures), (590, true, true));
        let r = l.precheck("ip:1", 2, 1500).unwrap_err();
        assert_eq!((r.retry_after, r.report, r.by_failures), (100, false, true));
        assert!(
            l.precheck("ip:1", 2, 1600).is_ok(),
            "the oldest failure has left the window: the database is asked again"
        );
    }

    /// A gate held past its wait (a database away) is given up, not waited for without end.
    #[tokio::test]
    async fn a_gate_is_given_up_after_its_wait() {
        let wait = Duration::from_millis(200);
        let l = Arc::new(FailureLimit {
            gate_wait: wait,
            ..FailureLimit::new(600, 100)
        });
        let held = l.gate("ip:1").await.unwrap();
        let started = std::time::Instant::now();
        assert!(l.gate("ip:1").await.is_none());
        assert!(started.elapsed() >= wait);
        drop(held);
        assert!(l.gate("ip:1").await.is_some());
    }

    /// Requests on their way to the database count with the attempts in flight: a burst from
    /// one client sends the limit's worth of reads, and the rest are refused before the gate.
    /// A request that goes (its read failed, its client left) makes room again.
    #[tokio::test]
    async fn requests_on_their_way_count_against_the_limit() {
        let l = Arc::new(FailureLimit::new(600, 100));
        let a = l.precheck("ip:1", 2, 1000).unwrap();
        let b = l.precheck("ip:1", 2, 1000).unwrap();
        let r = l.precheck("ip:1", 2, 1000).unwrap_err();
        assert_eq!((r.retry_after, r.report, r.by_failures), (1, false, false));
        drop(b);
        let c = l.precheck("ip:1", 2, 1000).unwrap();
        // Admitted: no longer on its way, in flight instead; the limit is still full.
        let gate = l.gate("ip:1").await.unwrap();
        let admitted = l.begin(a, 2, 1000, Recorded::default(), &gate).unwrap();
        drop(gate);
        assert!(l.precheck("ip:1", 2, 1000).is_err());
        drop((admitted, c));
        assert!(l.precheck("ip:1", 2, 1000).is_ok(), "all gone");
    }

    #[tokio::test]
    async fn a_full_table_forgets_idle_clients_first_and_never_one_in_flight() {
        let l = Arc::new(FailureLimit::new(60, 10));
        let none = Recorded::default();
        let busy = begin(&l, "busy", 5, 0, none).await.unwrap();
        for i in 0..20 {
            drop(begin(&l, &format!("c{i}"), 5, i, none).await.unwrap());
        }
        assert!(l.tracked() <= 10);
        let before = begin(&l, "busy", 1, 30, none).await.unwrap_err();
        assert!(!before.by_failures, "still in flight, still tracked");
        drop(busy);
    }
}
