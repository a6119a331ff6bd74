//! The one test harness of the workspace (issue 11): what `backend/tests`, the journeys in
//! `tests/`, `app/tests` and `e2e-app/` all need, written once.
//!
//! - [`db`]: the fixed test constants, a fresh database of either kind ([`TestDb`]), free ports.
//! - [`http`]: a browser as far as HTTP goes (cookies kept, redirects not followed unless
//!   asked), with the page helpers every suite reads forms and links with.
//! - [`mail`]: a mail as the customer reads it (MIME decoded by `mail-parser`), the mailed
//!   password and the download link in it.
//! - [`server`]: the server runner: an `otp-backend serve` process, found listening from what
//!   it prints, its log kept, stopped when dropped.
//! - [`tls`]: a TLS-terminating proxy in front of a plain-HTTP backend, with a CA made in the
//!   test, counting handshakes and the bytes it let through.
//!
//! It depends on no project crate, so each harness builds its own backend configuration and
//! clients on top of it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test harness code: a failed step should stop loudly

pub mod db;
pub mod http;
pub mod mail;
pub mod server;
pub mod tls;

pub use db::{free_port, pg_admin_url, Db, TestDb, API_KEY, MASTER_KEY, T0};
pub use http::{Browser, Options, Page};
pub use mail::{
    download_url, mail_body_text, mailed_password_in, mails_in_folder, parse_mail, Mail,
};
pub use server::{Log, OnDrop, ServerProcess};
pub use tls::TlsProxy;
