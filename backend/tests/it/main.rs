//! Backend integration tests: one binary (link time adds up on 2 cores).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test/bench harness code: a failed step should stop loudly
mod app_api;
mod engine_suite;
mod hardening;
mod host_api;
mod mail_password;
mod process;
mod staff;
mod support;
