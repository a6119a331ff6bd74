//! A limit on failures per client in a sliding window, for the customer login (password
//! spraying across login IDs, each below its account's own lock): at most `limit` failures in
//! any `window_secs`, counting the attempts still running as possible failures, so a burst sent
//! at once cannot pass the limit while its checks run.
//!
//! The failures are the database's (`Engine::login_failures`, written by
//! `Engine::record_login_failure` before the attempt ends as [`Attempt::failed`]), so every
//! instance on one database counts the same ones. A failure recorded here while an attempt's
//! count was being read is added to that count ([`FailureLimit::ticket`]): an attempt that
//! ended meanwhile is then neither in flight nor missed. Before, with the failures in each process's
//! memory, the limit was multiplied by the number of instances behind the load balancer. The attempts in flight are this process's (a
//! burst spread over several instances may start up to one limit's worth on each before the
//! first of them fails; the failures then stop every instance).
//!
//! An attempt is admitted when the client's failures in the window and its attempts in flight
//! here together stay below the limit; it is in flight until dropped. A refusal says how long
//! to wait: until the oldest failure leaves the window when failures alone fill it, else a
//! moment (the attempts in flight end within the request timeout). The first refusal of a
//! window is reported (audited) once per process. At most `max_keys` clients are tracked here,
//! the least recently seen forgotten first.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

/// Failures per client in a sliding window, with the attempts in flight.
#[derive(Debug)]
pub struct FailureLimit {
    window_secs: u64,
    max_keys: usize,
    clients: Mutex<HashMap<String, Client>>,
}

#[derive(Debug, Default)]
struct Client {
    in_flight: u32,
    /// Failures this process recorded for the client, ever (see [`FailureLimit::ticket`]).
    recorded_here: u64,
    last_seen: u64,
    /// When a refusal because of failures was last reported (the one to audit per window).
    reported: Option<u64>,
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

/// Where the client's count of failures stood here before the database was asked
/// ([`FailureLimit::ticket`]).
#[derive(Debug, Clone, Copy)]
pub struct Ticket(u64);

/// An admitted attempt: counted as in flight until it ends, as a failure ([`Attempt::failed`],
/// once the database has it) or as nothing (dropped).
#[derive(Debug)]
pub struct Attempt<'a> {
    limit: &'a FailureLimit,
    key: String,
    ended: bool,
}

impl Attempt<'_> {
    /// The attempt failed, and the database has the failure now.
    pub fn failed(mut self) {
        self.limit.end(&self.key, true);
        self.ended = true;
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if !self.ended {
            self.limit.end(&self.key, false);
        }
    }
}

impl FailureLimit {
    pub fn new(window_secs: u64, max_keys: usize) -> FailureLimit {
        FailureLimit {
            window_secs: window_secs.max(1),
            max_keys: max_keys.max(1),
            clients: Mutex::new(HashMap::new()),
        }
    }

    /// Taken before the client's failures are read from the database, and given to
    /// [`FailureLimit::begin`] with them: the failures this process records meanwhile are added
    /// to what was read. (The read may have seen some of them already: counted twice, never
    /// none.)
    pub fn ticket(&self, key: &str) -> Ticket {
        let map = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        Ticket(map.get(key).map_or(0, |c| c.recorded_here))
    }

    /// Admit an attempt of `key` at `now` under `limit` failures in the window (`recorded`:
    /// the client's failures in it, read after `ticket` was taken), or say why not.
    ///
    /// # Errors
    /// The client is at its limit ([`Refusal`]).
    pub fn begin(
        &self,
        key: &str,
        limit: u32,
        now: u64,
        recorded: Recorded,
        ticket: Ticket,
    ) -> Result<Attempt<'_>, Refusal> {
        let window = self.window_secs;
        let limit = u64::from(limit.max(1));
        let mut map = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if !map.contains_key(key) && map.len() >= self.max_keys {
            self.make_room(&mut map, now);
        }
        let c = map.entry(key.to_owned()).or_default();
        c.last_seen = c.last_seen.max(now);
        let failures = recorded
            .failures
            .saturating_add(c.recorded_here.saturating_sub(ticket.0));
        if failures.saturating_add(u64::from(c.in_flight)) < limit {
            c.in_flight = c.in_flight.saturating_add(1);
            return Ok(Attempt {
                limit: self,
                key: key.to_owned(),
                ended: false,
            });
        }
        if failures >= limit {
            let oldest = recorded.oldest.unwrap_or(now);
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

    fn end(&self, key: &str, failed: bool) {
        let mut map = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(c) = map.get_mut(key) {
            c.in_flight = c.in_flight.saturating_sub(1);
            if failed {
                c.recorded_here = c.recorded_here.saturating_add(1);
            }
        }
    }

    /// Forget clients with nothing in flight and no refusal reported in the window; if that is
    /// not enough, the least recently seen tenth of those with nothing in flight.
    fn make_room(&self, map: &mut HashMap<String, Client>, now: u64) {
        let window = self.window_secs;
        let live = |c: &Client| {
            c.in_flight > 0 || c.reported.is_some_and(|t| t.saturating_add(window) > now)
        };
        map.retain(|_, c| live(c));
        if map.len() < self.max_keys {
            return;
        }
        let evict = (self.max_keys / 10).max(1);
        let mut seen: Vec<(u64, String)> = map
            .iter()
            .filter(|(_, c)| c.in_flight == 0)
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

    #[test]
    fn failures_fill_the_window_and_attempts_in_flight_count_until_they_end() {
        let l = FailureLimit::new(600, 100);
        let none = Recorded::default();
        // Three in flight against a limit of three: the fourth waits a moment, unreported.
        let a = l.begin("ip:1", 3, 1000, none, l.ticket("ip:1")).unwrap();
        let b = l.begin("ip:1", 3, 1000, none, l.ticket("ip:1")).unwrap();
        let c = l.begin("ip:1", 3, 1000, none, l.ticket("ip:1")).unwrap();
        let r = l
            .begin("ip:1", 3, 1000, none, l.ticket("ip:1"))
            .unwrap_err();
        assert_eq!((r.retry_after, r.report, r.by_failures), (1, false, false));
        // They end (one of them a failure the database now has): room for two more.
        drop((a, b, c));
        let d = l
            .begin("ip:1", 3, 1001, recorded(1, 1000), l.ticket("ip:1"))
            .unwrap();
        let e = l
            .begin("ip:1", 3, 1001, recorded(1, 1000), l.ticket("ip:1"))
            .unwrap();
        assert!(l
            .begin("ip:1", 3, 1001, recorded(1, 1000), l.ticket("ip:1"))
            .is_err());
        drop((d, e));
        // Three failures recorded: refused until the oldest leaves the window, reported once.
        let r = l
            .begin("ip:1", 3, 1010, recorded(3, 1000), l.ticket("ip:1"))
            .unwrap_err();
        assert_eq!((r.retry_after, r.report, r.by_failures), (590, true, true));
        let r = l
            .begin("ip:1", 3, 1011, recorded(3, 1000), l.ticket("ip:1"))
            .unwrap_err();
        assert!(!r.report, "one report per window");
        assert!(
            l.begin("ip:2", 3, 1011, none, l.ticket("ip:2")).is_ok(),
            "another client"
        );
    }

    /// An attempt that failed and ended while another's count was being read from the database
    /// (the read did not see it): it was neither in flight nor in the count, and the limit let
    /// one more through. The failures recorded here since the ticket are added.
    #[test]
    fn a_failure_recorded_while_the_count_was_read_is_counted() {
        let l = FailureLimit::new(600, 100);
        let none = Recorded::default();
        let first = l.begin("ip:1", 2, 1000, none, l.ticket("ip:1")).unwrap();
        // The second attempt takes its ticket and reads the database ...
        let ticket = l.ticket("ip:1");
        let read = recorded(1, 990);
        // ... while the first fails, is recorded, and ends.
        first.failed();
        let r = l.begin("ip:1", 2, 1000, read, ticket).unwrap_err();
        assert!(
            r.by_failures,
            "two failures: the one read and the one recorded since"
        );
        // A later ticket sees what the database has, no more.
        assert!(l
            .begin("ip:1", 3, 1001, recorded(2, 990), l.ticket("ip:1"))
            .is_ok());
    }

    #[test]
    fn a_full_table_forgets_idle_clients_first_and_never_one_in_flight() {
        let l = FailureLimit::new(60, 10);
        let none = Recorded::default();
        let busy = l.begin("busy", 5, 0, none, l.ticket("busy")).unwrap();
        for i in 0..20 {
            drop(
                l.begin(&format!("c{i}"), 5, i, none, l.ticket(&format!("c{i}")))
                    .unwrap(),
            );
        }
        assert!(l.tracked() <= 10);
        let before = l.begin("busy", 1, 30, none, l.ticket("busy")).unwrap_err();
        assert!(!before.by_failures, "still in flight, still tracked");
        drop(busy);
    }
}
