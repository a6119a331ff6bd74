//! Lockout counters (DESIGN §5), read and written for `domain::throttle` by one compare-and-set:
//! a customer's on the customer's row (migration 0005), a staff account's and a client
//! address's and a customer's confirmation password's in the `throttles` table (migration
//! 0012), keyed `staff:<id>`, `staff-ip:<address or IPv6 /64>`, `customer-confirm:<id>` and
//! `customer-devices:<id>`.
//! One table for the keys that have no row of their own, so one statement serves them all;
//! a row exists only while failures are counted (a success deletes it), and counters left
//! untouched for a day are forgotten ([`Store::purge_throttles`]).

use crate::domain::{CustomerCounter, ThrottleState};

use super::{DbKind, Result, Store, Tx};

/// What a lockout counter belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThrottleKey {
    /// A customer's login and confirmation passwords.
    Customer(i64),
    /// A row of the `throttles` table.
    Named(String),
}

impl ThrottleKey {
    /// Where a customer's counter is kept.
    pub fn customer(counter: CustomerCounter, customer_id: i64) -> ThrottleKey {
        match counter {
            CustomerCounter::Account => ThrottleKey::Customer(customer_id),
            CustomerCounter::Confirmation => ThrottleKey::customer_confirmation(customer_id),
            CustomerCounter::KnownDevices => ThrottleKey::customer_known_devices(customer_id),
        }
    }

    /// A customer's confirmation password (alone, or with a mailed password), counted
    /// beside [`ThrottleKey::Customer`]: a right login does not reset it (a right
    /// confirmation does; a row untouched for a day is purged, as every named key's).
    pub fn customer_confirmation(customer_id: i64) -> ThrottleKey {
        ThrottleKey::Named(format!("customer-confirm:{customer_id}"))
    }

    /// A customer's login password typed on a known device (`engine::devices`): one count
    /// for all the customer's known devices, apart from the account's, so strangers' wrong
    /// passwords do not lock the customer's own browsers out, nor theirs the account.
    pub fn customer_known_devices(customer_id: i64) -> ThrottleKey {
        ThrottleKey::Named(format!("customer-devices:{customer_id}"))
    }

    /// A staff account's login.
    pub fn staff(staff_id: i64) -> ThrottleKey {
        ThrottleKey::Named(format!("staff:{staff_id}"))
    }

    /// Staff logins from one client: an IPv4 address or an IPv6 /64
    /// ([`crate::domain::throttle::client_network`]), so the addresses of one line are one
    /// client. Text that is not an address (none reaches here) counts as given.
    pub fn staff_ip(ip: &str) -> ThrottleKey {
        let client = ip
            .parse::<std::net::IpAddr>()
            .map_or_else(|_| ip.to_owned(), crate::domain::throttle::client_network);
        ThrottleKey::Named(format!("staff-ip:{client}"))
    }
}

impl Store {
    /// Failed customer logins of `client` at or after `since` (the spray limit's window, in the
    /// `login_failures` table every instance writes): how many, and when the oldest was.
    pub async fn login_failures_since(
        &self,
        client: &str,
        since: i64,
    ) -> Result<(i64, Option<i64>)> {
        Ok(sqlx::query_as(
            "SELECT COUNT(*), MIN(at) FROM login_failures WHERE client = $1 AND at >= $2",
        )
        .bind(client)
        .bind(since)
        .fetch_one(&self.read)
        .await?)
    }

    /// Record a failed customer login of `client` at `at`.
    pub async fn add_login_failure(&self, client: &str, at: i64) -> Result<()> {
        sqlx::query("INSERT INTO login_failures (client, at) VALUES ($1, $2)")
            .bind(client)
            .bind(at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Forget failed customer logins from before `before` (outside every window).
    pub async fn purge_login_failures(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM login_failures WHERE at < $1")
            .bind(before)
            .execute(&self.write)
            .await?
            .rows_affected())
    }

    /// Forget counters untouched since before `before` (a lock ends long before).
    pub async fn purge_throttles(&self, before: i64) -> Result<u64> {
        Ok(sqlx::query("DELETE FROM throttles WHERE updated_at < $1")
            .bind(before)
            .execute(&self.write)
            .await?
            .rows_affected())
    }
}

impl Tx<'_> {
    /// The counters of `key`, read for the compare-and-set that records an attempt (locked on
    /// PostgreSQL, so concurrent attempts queue). `None`: no such customer. A named key
    /// without a row has counted nothing.
    pub async fn throttle(&mut self, key: &ThrottleKey) -> Result<Option<ThrottleState>> {
        let lock = match self.1.kind {
            DbKind::Postgres => " FOR UPDATE",
            DbKind::Sqlite => "",
        };
        let row: Option<(i64, Option<i64>)> = match key {
            ThrottleKey::Customer(id) => {
                let row: Option<(i64, Option<i64>)> = sqlx::query_as(&format!(
                    "SELECT password_failures, password_locked_at FROM customers WHERE id = $1{lock}"
                ))
                .bind(id)
                .fetch_optional(&mut *self.0)
                .await?;
                if row.is_none() {
                    return Ok(None);
                }
                row
            }
            ThrottleKey::Named(k) => {
                sqlx::query_as(&format!(
                    "SELECT failures, locked_at FROM throttles WHERE key = $1{lock}"
                ))
                .bind(k)
                .fetch_optional(&mut *self.0)
                .await?
            }
        };
        Ok(Some(row.map_or_else(
            ThrottleState::default,
            |(failures, locked_at)| ThrottleState {
                failures,
                locked_at,
            },
        )))
    }

    /// Write what `domain::throttle` decided, only if the counters are still `seen`: one
    /// compare-and-set, so a success never clears a lock it did not see. Returns whether it
    /// was written.
    pub async fn set_throttle(
        &mut self,
        key: &ThrottleKey,
        seen: ThrottleState,
        next: ThrottleState,
        now: i64,
    ) -> Result<bool> {
        let k = match key {
            ThrottleKey::Customer(id) => {
                return Ok(sqlx::query(
                    "UPDATE customers SET password_failures = $1, password_locked_at = NULLIF($2, -1) \
                     WHERE id = $3 AND password_failures = $4 AND COALESCE(password_locked_at, -1) = $5",
                )
                .bind(next.failures)
                .bind(next.locked_at.unwrap_or(-1))
                .bind(id)
                .bind(seen.failures)
                .bind(seen.locked_at.unwrap_or(-1))
                .execute(&mut *self.0)
                .await?
                .rows_affected()
                    == 1);
            }
            ThrottleKey::Named(k) => k,
        };
        let changed = if next == ThrottleState::default() {
            sqlx::query(
                "DELETE FROM throttles WHERE key = $1 AND failures = $2 \
                 AND COALESCE(locked_at, -1) = $3",
            )
            .bind(k)
            .bind(seen.failures)
            .bind(seen.locked_at.unwrap_or(-1))
            .execute(&mut *self.0)
            .await?
            .rows_affected()
        } else {
            sqlx::query(
                "UPDATE throttles SET failures = $1, locked_at = NULLIF($2, -1), updated_at = $3 \
                 WHERE key = $4 AND failures = $5 AND COALESCE(locked_at, -1) = $6",
            )
            .bind(next.failures)
            .bind(next.locked_at.unwrap_or(-1))
            .bind(now)
            .bind(k)
            .bind(seen.failures)
            .bind(seen.locked_at.unwrap_or(-1))
            .execute(&mut *self.0)
            .await?
            .rows_affected()
        };
        if changed == 1 {
            return Ok(true);
        }
        if seen != ThrottleState::default() || next == ThrottleState::default() {
            return Ok(false);
        }
        // Nothing counted yet: the first failure creates the row, unless a concurrent attempt
        // created it first (then this one is decided again on theirs).
        Ok(sqlx::query(
            "INSERT INTO throttles (key, failures, locked_at, updated_at) \
             VALUES ($1, $2, NULLIF($3, -1), $4) ON CONFLICT (key) DO NOTHING",
        )
        .bind(k)
        .bind(next.failures)
        .bind(next.locked_at.unwrap_or(-1))
        .bind(now)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }
}
