//! Whether the service can do its work (`/readyz`) and what it reports (`/metrics`).

use super::Engine;

/// Why the service is not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// The database does not answer.
    Unreachable,
    /// It answers but cannot write (a full disk, a read-only file, a standby).
    CannotWrite,
}

impl Engine {
    /// Whether the service can do its work: the database answers and takes a write, through
    /// the same write path as every other transaction.
    ///
    /// # Errors
    /// What is wrong, for `/readyz`.
    pub async fn readiness(&self) -> std::result::Result<(), NotReady> {
        if let Err(e) = self.store().ping().await {
            tracing::warn!(error = %e, "readiness check failed: database unreachable");
            return Err(NotReady::Unreachable);
        }
        if let Err(e) = self.store().write_probe(self.now()).await {
            tracing::warn!(error = %e, "readiness check failed: the database cannot write");
            return Err(NotReady::CannotWrite);
        }
        Ok(())
    }

    /// The metrics in the OpenMetrics text format, with what is read at scrape time (the
    /// outbox, database reachability).
    pub async fn render_metrics(&self) -> String {
        self.metrics()
            .render_with_store(self.store(), self.now())
            .await
    }
}
