//! Backend integration tests: one binary (link time adds up on 2 cores).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test/bench harness code: a failed step should stop loudly
mod app_api;
mod backup;
mod engine_suite;
mod faults;
mod first_run;
mod hardening;
mod host_api;
mod mail_password;
mod ops_metrics;
mod pake;
mod polish;
mod process;
mod staff;
mod staff_2fa;
mod support;
mod transaction_auth;
mod transfers;
mod web_hardening;
