//! Prometheus metrics: verifications by outcome and their latency.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
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
        Metrics {
            registry: Arc::new(registry),
            verifications,
            verify_latency,
            batch_size,
            batch_latency,
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
    }
}
