//! The authenticator core against the real backend on loopback, and the vault against the real
//! Linux keystore across processes. One binary (link time adds up on 2 cores).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test harness code: a failed step should stop loudly
mod clock;
mod e2e;
mod pinning;
mod support;
mod vault_keyring;
