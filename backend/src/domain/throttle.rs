//! The one lockout rule (DESIGN §5) for everything that can be guessed: token codes, a
//! customer's login and confirmation passwords, activation passwords and staff passwords.
//!
//! `max` consecutive failures lock; a lock lifts after `lock_seconds` (or only by staff when
//! there is none); a lifted lock starts the count again. While locked, every attempt is
//! refused, the right one included, and a success never clears a lock it did not see: the
//! store applies what [`Throttle::attempt`] decides with one compare-and-set on the state it
//! was decided from, so a burst of concurrent attempts cannot pass the lock.

/// The client a per-address limit or lock counts: an IPv4 address (an IPv4-mapped IPv6 address
/// as the IPv4 address it is), or an IPv6 /64 (one customer line is given a whole /64, so its
/// 2^64 addresses are one client). The one rule for the app API's rate limits and the staff
/// login's address lock.
pub fn client_network(ip: std::net::IpAddr) -> String {
    use std::net::{IpAddr, Ipv6Addr};
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("{}/64", Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
        },
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// A customer's password counters. Which of them an attempt counts on, and which a right
/// password also clears, is [`PasswordAt`]'s rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerCounter {
    /// The account's: login and confirmation passwords alike (ten wrong in a row, of any kind,
    /// lock both).
    Account,
    /// The confirmation password's own (alone, or with a mailed password), which only a right
    /// confirmation resets.
    Confirmation,
    /// Logins typed on the customer's known devices: one count for all of them, so minting
    /// device cookies buys no guesses.
    KnownDevices,
}

/// Which of a customer's passwords an attempt is at, and so what it counts on.
///
/// With the account's count alone, a right login cleared the wrong confirmation passwords
/// before it: a phished login password bought nine more guesses at the confirmation password
/// (or at a mailed one) with every login, without end. So a confirmation also counts on its own
/// counter, which a login does not reset.
///
/// A login typed on a known device counts on the known devices' counter instead of the
/// account's, and its right password also lifts the account's lock: strangers' wrong
/// passwords lock the account for strangers only. Before, anyone who knew a login ID could keep
/// its customer out with ten guesses a lock period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordAt {
    Login,
    KnownDeviceLogin,
    Confirmation,
}

impl PasswordAt {
    /// The counters an attempt here counts on (its failures add to each; a lock on any refuses
    /// it).
    pub fn counts_on(self) -> &'static [CustomerCounter] {
        match self {
            PasswordAt::Login => &[CustomerCounter::Account],
            PasswordAt::KnownDeviceLogin => &[CustomerCounter::KnownDevices],
            PasswordAt::Confirmation => &[CustomerCounter::Account, CustomerCounter::Confirmation],
        }
    }

    /// The counter a right password here also clears, though it does not count on it.
    pub fn lifts(self) -> Option<CustomerCounter> {
        match self {
            PasswordAt::KnownDeviceLogin => Some(CustomerCounter::Account),
            PasswordAt::Login | PasswordAt::Confirmation => None,
        }
    }
}

/// The counters a throttled thing keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThrottleState {
    pub failures: i64,
    /// When the lock began; `None`: never locked, or unlocked by staff.
    pub locked_at: Option<i64>,
}

/// A lockout rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// Consecutive failures that lock.
    pub max: u32,
    /// Seconds a lock lasts; `None`: until staff lift it.
    pub lock_seconds: Option<u64>,
}

/// What one attempt comes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Right, and not locked: the count starts again.
    Right,
    /// Wrong; `left` more failures lock.
    Wrong { left: u32 },
    /// This failure locked it.
    JustLocked { until: Option<i64> },
    /// It was locked already: refused whatever was entered, nothing counted.
    Locked { until: Option<i64> },
}

impl Throttle {
    /// Locks that began at or before this instant have lifted; `-1` when locks never lift by
    /// themselves (no stored time is negative). Used verbatim in conditional statements.
    pub fn unlock_before(&self, now: i64) -> i64 {
        match self.lock_seconds {
            Some(s) => now.saturating_sub(i64::try_from(s).unwrap_or(i64::MAX)),
            None => -1,
        }
    }

    /// Whether a lock set at `locked_at` still holds at `now`.
    pub fn is_locked(&self, locked_at: Option<i64>, now: i64) -> bool {
        locked_at.is_some_and(|at| at > self.unlock_before(now))
    }

    /// A counter cleared by a right password that does not count on it ([`PasswordAt::lifts`]):
    /// the cleared state, and the failures of the lock it lifted (`None`: no lock held).
    pub fn lift(&self, seen: ThrottleState, now: i64) -> (ThrottleState, Option<i64>) {
        (
            ThrottleState::default(),
            self.is_locked(seen.locked_at, now).then_some(seen.failures),
        )
    }

    /// When a lock set at `locked_at` lifts by itself; `None`: only staff lift it.
    pub fn until(&self, locked_at: i64) -> Option<i64> {
        self.lock_seconds
            .map(|s| locked_at.saturating_add(i64::try_from(s).unwrap_or(i64::MAX)))
    }

    /// Decide one attempt against the state it is checked against, and the state it leaves.
    pub fn attempt(&self, s: ThrottleState, right: bool, now: i64) -> (Attempt, ThrottleState) {
        if let Some(at) = s.locked_at.filter(|&at| self.is_locked(Some(at), now)) {
            return (
                Attempt::Locked {
                    until: self.until(at),
                },
                s,
            );
        }
        if right {
            return (Attempt::Right, ThrottleState::default());
        }
        // A lifted lock starts the count again.
        let failures = if s.locked_at.is_some() {
            1
        } else {
            s.failures.saturating_add(1)
        };
        let max = i64::from(self.max);
        if failures >= max {
            let next = ThrottleState {
                failures,
                locked_at: Some(now),
            };
            (
                Attempt::JustLocked {
                    until: self.until(now),
                },
                next,
            )
        } else {
            let left = u32::try_from(max - failures).unwrap_or(0);
            (
                Attempt::Wrong { left },
                ThrottleState {
                    failures,
                    locked_at: None,
                },
            )
        }
    }

    /// Decide one attempt counted under several locks at once (a staff login: the account
    /// and the client address): refused, nothing counted, while any of them holds; otherwise
    /// each is decided by [`Throttle::attempt`] and the answer is the worst of theirs (a
    /// failure that locks any of them locks the attempt). Returns the states each is left in,
    /// in the order given.
    pub fn attempt_all(
        &self,
        states: &[ThrottleState],
        right: bool,
        now: i64,
    ) -> (Attempt, Vec<ThrottleState>) {
        let held = states
            .iter()
            .filter_map(|s| s.locked_at.filter(|&at| self.is_locked(Some(at), now)))
            .max();
        if let Some(at) = held {
            return (
                Attempt::Locked {
                    until: self.until(at),
                },
                states.to_vec(),
            );
        }
        let decided: Vec<(Attempt, ThrottleState)> = states
            .iter()
            .map(|s| self.attempt(*s, right, now))
            .collect();
        let next = decided.iter().map(|(_, n)| *n).collect();
        let answer = decided
            .iter()
            .map(|(a, _)| *a)
            .reduce(|a, b| match (a, b) {
                (j @ Attempt::JustLocked { .. }, _) | (_, j @ Attempt::JustLocked { .. }) => j,
                (Attempt::Wrong { left: x }, Attempt::Wrong { left: y }) => {
                    Attempt::Wrong { left: x.min(y) }
                }
                (a, _) => a,
            })
            .unwrap_or(if right {
                Attempt::Right
            } else {
                Attempt::Wrong { left: self.max }
            });
        (answer, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_password_counts_on_its_counters_and_only_a_known_device_lifts_the_account() {
        use CustomerCounter::{Account, Confirmation, KnownDevices};
        assert_eq!(PasswordAt::Login.counts_on(), &[Account]);
        assert_eq!(
            PasswordAt::Confirmation.counts_on(),
            &[Account, Confirmation]
        );
        assert_eq!(PasswordAt::KnownDeviceLogin.counts_on(), &[KnownDevices]);
        assert_eq!(PasswordAt::KnownDeviceLogin.lifts(), Some(Account));
        assert_eq!(PasswordAt::Login.lifts(), None);
        assert_eq!(PasswordAt::Confirmation.lifts(), None);
        // What a path lifts, it does not count on: strangers' failures never lock it out.
        for at in [
            PasswordAt::Login,
            PasswordAt::KnownDeviceLogin,
            PasswordAt::Confirmation,
        ] {
            if let Some(c) = at.lifts() {
                assert!(!at.counts_on().contains(&c), "{at:?}");
            }
        }
    }

    #[test]
    fn lifting_clears_the_count_and_names_only_a_lock_that_held() {
        let t = Throttle {
            max: 10,
            lock_seconds: Some(1800),
        };
        let locked = ThrottleState {
            failures: 10,
            locked_at: Some(1000),
        };
        assert_eq!(t.lift(locked, 1500), (ThrottleState::default(), Some(10)));
        // The lock had lifted by itself: the count is cleared, no lock is named.
        assert_eq!(t.lift(locked, 2800), (ThrottleState::default(), None));
        let counting = ThrottleState {
            failures: 4,
            locked_at: None,
        };
        assert_eq!(t.lift(counting, 1500), (ThrottleState::default(), None));
    }

    #[test]
    fn a_client_is_an_ipv4_address_or_an_ipv6_64() {
        let net = |s: &str| client_network(s.parse().unwrap());
        assert_eq!(net("192.0.2.7"), "192.0.2.7");
        assert_eq!(net("::ffff:192.0.2.7"), "192.0.2.7", "IPv4-mapped");
        assert_eq!(net("2001:db8:1:2::9"), "2001:db8:1:2::/64");
        assert_eq!(
            net("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            net("2001:db8:1:2::1")
        );
        assert_ne!(net("2001:db8:1:3::1"), net("2001:db8:1:2::1"));
    }

    const T: Throttle = Throttle {
        max: 3,
        lock_seconds: Some(60),
    };

    #[test]
    fn max_failures_lock_and_even_the_right_one_is_refused() {
        let mut s = ThrottleState::default();
        let (a, n) = T.attempt(s, false, 100);
        assert_eq!(a, Attempt::Wrong { left: 2 });
        s = n;
        let (_, n) = T.attempt(s, false, 101);
        s = n;
        let (a, n) = T.attempt(s, false, 102);
        assert_eq!(
            a,
            Attempt::JustLocked { until: Some(162) },
            "the third failure locks"
        );
        s = n;
        let (a, after) = T.attempt(s, true, 103);
        assert_eq!(
            a,
            Attempt::Locked { until: Some(162) },
            "the right one is refused while locked"
        );
        assert_eq!(
            after, s,
            "a refused attempt changes nothing (a success never clears a lock)"
        );
    }

    #[test]
    fn a_lifted_lock_restarts_the_count_and_a_success_resets_it() {
        let locked = ThrottleState {
            failures: 3,
            locked_at: Some(100),
        };
        assert!(T.is_locked(locked.locked_at, 159));
        assert!(
            !T.is_locked(locked.locked_at, 160),
            "lifted at locked_at + 60"
        );
        let (a, n) = T.attempt(locked, false, 160);
        assert_eq!(a, Attempt::Wrong { left: 2 }, "the count starts again at 1");
        assert_eq!(n.failures, 1);
        let (a, n) = T.attempt(n, true, 161);
        assert_eq!(a, Attempt::Right);
        assert_eq!(n, ThrottleState::default());
    }

    #[test]
    fn without_a_lock_time_only_staff_unlock() {
        let forever = Throttle {
            max: 1,
            lock_seconds: None,
        };
        let (a, n) = forever.attempt(ThrottleState::default(), false, 5);
        assert_eq!(a, Attempt::JustLocked { until: None });
        assert!(forever.is_locked(n.locked_at, i64::MAX / 2));
        assert_eq!(forever.unlock_before(1_000), -1);
    }

    #[test]
    fn several_locks_any_one_holds_and_each_counts() {
        let fresh = ThrottleState::default();
        let two_left = ThrottleState {
            failures: 1,
            locked_at: None,
        };
        let (a, next) = T.attempt_all(&[fresh, two_left], false, 100);
        assert_eq!(a, Attempt::Wrong { left: 1 }, "the fewest attempts left");
        assert_eq!(next[0].failures, 1);
        assert_eq!(next[1].failures, 2, "a failure counts under every lock");
        let (a, next) = T.attempt_all(&next, false, 101);
        assert_eq!(
            a,
            Attempt::JustLocked { until: Some(161) },
            "the address's third failure locks the attempt"
        );
        assert_eq!(next[0].locked_at, None, "the account is not locked by it");
        let (a, after) = T.attempt_all(&next, true, 102);
        assert_eq!(
            a,
            Attempt::Locked { until: Some(161) },
            "the right one is refused while either lock holds"
        );
        assert_eq!(after, next, "a refused attempt changes nothing");
        let (a, after) = T.attempt_all(&next, true, 161);
        assert_eq!(a, Attempt::Right, "both free again: a success");
        assert_eq!(after, vec![ThrottleState::default(); 2]);
    }
}
