//! Prometheus metrics: verifications by outcome and their latency, group commits, token locks,
//! and the mail outbox (depth, oldest age) and database reachability read at scrape time.
//!
//! Replays are `otp_verifications_total{outcome="replayed"}`; refusals of a locked token (and
//! the verification that locks it) are `{outcome="locked"}`. `otp_token_locks_total` counts
//! only the verifications that lock a token (see [`Metrics::observe_lock`]).

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type OutcomeLabels = Vec<(&'static str, String)>;

/// The metrics registry. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    registry: Arc<Registry>,
    verifications: Family<OutcomeLabels, Counter>,
    verify_latency: Histogram,
    batch_size: Histogram,
    batch_latency: Histogram,
    token_locks: Counter,
    outbox_unsent: Gauge,
    outbox_oldest_age: Gauge,
    database_up: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("otp");
        let verifications = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "verifications",
            "Code verifications by outcome (ok, invalid, replayed, locked, not_active, or an error code)",
            verifications.clone(),
        );
        // 100 µs .. ~3.3 s
        let verify_latency = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        registry.register(
            "verify_duration_seconds",
            "Time from receiving a verification to its durable answer",
            verify_latency.clone(),
        );
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        registry.register(
            "verify_batch_size",
            "Verifications per group commit",
            batch_size.clone(),
        );
        let batch_latency = Histogram::new(exponential_buckets(0.000_1, 2.0, 16));
        registry.register(
            "verify_batch_duration_seconds",
            "Time of one group commit: read, decide, write, fsync",
            batch_latency.clone(),
        );
        let token_locks = Counter::default();
        registry.register(
            "token_locks",
            "Verifications that locked a token (consecutive failures reached policy.max_failures)",
            token_locks.clone(),
        );
        let outbox_unsent = Gauge::default();
        registry.register(
            "mail_outbox_unsent",
            "Mails in the outbox not sent yet (read from the database at scrape time)",
            outbox_unsent.clone(),
        );
        let outbox_oldest_age = Gauge::default();
        registry.register(
            "mail_outbox_oldest_age_seconds",
            "Age of the oldest unsent mail, 0 when none (read from the database at scrape time)",
            outbox_oldest_age.clone(),
        );
        let database_up = Gauge::default();
        registry.register(
            "database_up",
            "1 when the scrape-time database query answered (as /readyz), else 0",
            database_up.clone(),
        );
        Metrics {
            registry: Arc::new(registry),
            verifications,
            verify_latency,
            batch_size,
            batch_latency,
            token_locks,
            outbox_unsent,
            outbox_oldest_age,
            database_up,
        }
    }
}

impl Metrics {
    pub fn observe_verify(&self, outcome: &str, took: Duration) {
        self.verifications
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
        self.verify_latency.observe(took.as_secs_f64());
    }

    pub fn observe_batch(&self, size: usize, took: Duration) {
        self.batch_size.observe(size as f64);
        self.batch_latency.observe(took.as_secs_f64());
    }

    /// A verification locked a token. The engine calls this where a verification's report is
    /// `Outcome::Locked` with `attempts_left == Some(0)` (the lock decision; a refusal of a
    /// token already locked has `attempts_left == None`).
    pub fn observe_lock(&self) {
        self.token_locks.inc();
    }

    /// Read the outbox from `store` (one indexed query) into the gauges, at `now` (Unix
    /// seconds), then render. When the database does not answer, `otp_database_up` is 0 and
    /// the outbox gauges keep their last values.
    pub async fn render_with_store(&self, store: &crate::store::Store, now: u64) -> String {
        match store.outbox_stats().await {
            Ok(stats) => {
                self.database_up.set(1);
                self.outbox_unsent.set(stats.unsent);
                let now = i64::try_from(now).unwrap_or(i64::MAX);
                let age = stats
                    .oldest_created_at
                    .map_or(0, |t| now.saturating_sub(t).max(0));
                self.outbox_oldest_age.set(age);
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: the outbox query failed");
                self.database_up.set(0);
            }
        }
        self.render()
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_histogram() {
        let m = Metrics::default();
        m.observe_verify("ok", Duration::from_millis(2));
        m.observe_verify("ok", Duration::from_millis(3));
        m.observe_verify("invalid", Duration::from_millis(1));
        let text = m.render();
        assert!(
            text.contains(r#"otp_verifications_total{outcome="ok"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"otp_verifications_total{outcome="invalid"} 1"#),
            "{text}"
        );
        assert!(
            text.contains("otp_verify_duration_seconds_count 3"),
            "{text}"
        );
        assert!(text.contains("otp_token_locks_total 0"), "{text}");
        m.observe_lock();
        assert!(m.render().contains("otp_token_locks_total 1"));
    }
}
