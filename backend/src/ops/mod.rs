//! Operations: online backup and checked restore of the SQLite database (`backup`), the
//! container healthcheck (`health`), and a newcomer's first run: start-up hints and the demo
//! accounts (`demo`), and the mail report (`mail`). The service unit, dashboards, alert rules and container
//! build are in `deploy/`; the runbook is the README's.

pub mod backup;
pub mod demo;
pub mod health;
pub mod mail;
