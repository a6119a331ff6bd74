//! End-to-end journeys of the customer screens and mail (issue 4): one test binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test code: a failed step should stop loudly

mod browser;
mod mail;
mod screens;
mod staff_browser;

/// A `#[tokio::test]` per database around an `async fn(Db)`.
#[macro_export]
macro_rules! both_dbs {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name(tests::Db::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name(tests::Db::Postgres).await
                }
            }
        )*
    };
}
