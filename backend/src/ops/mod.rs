//! Operations: online backup and checked restore of the SQLite database (`backup`), and the
//! container healthcheck (`health`). The service unit, dashboards, alert rules and container
//! build are in `deploy/`; the runbook is the README's.

pub mod backup;
pub mod health;
