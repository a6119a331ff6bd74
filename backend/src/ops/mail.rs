//! `otp-backend mail status`: for the operator who got the "outbox stuck" alert or a support
//! call about a mail that never came. What waits and since when, the mail given up on or
//! still failing (with the customer and the reason), and the registered addresses the mailer
//! cannot use (stored before the address rule of `domain::fields::is_email`: such a customer
//! gets no download link or mailed password until the address is changed). Reads only.

use std::fmt::Write as _;

use crate::store::Store;

/// The undelivered mail listed at most.
const LIST: i64 = 50;

fn when(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .with_timezone(&crate::domain::jst())
        .format("%Y-%m-%d %H:%M JST")
        .to_string()
}

/// The report on the configured database, as text: it needs no master key and changes
/// nothing (no migration either: it reads columns every schema since 0020 has).
///
/// # Errors
/// No database there, or it is unavailable.
pub async fn report(cfg: &crate::config::Config) -> anyhow::Result<String> {
    super::backup::existing_database(cfg)?;
    let store = Store::connect(
        &cfg.database_url(),
        &crate::store::ConnectOpts {
            max_connections: 2,
            acquire_timeout: std::time::Duration::from_secs(10),
            ..crate::store::ConnectOpts::default()
        },
    )?;
    let text = mail_status(&store).await;
    store.close().await;
    text
}

/// The report, as text.
///
/// # Errors
/// The database is unavailable.
pub async fn mail_status(store: &Store) -> anyhow::Result<String> {
    let mut out = String::new();
    let stats = store.outbox_stats().await?;
    match stats.oldest_created_at {
        Some(oldest) if stats.unsent > 0 => {
            writeln!(
                out,
                "waiting: {} mail(s), the oldest from {}",
                stats.unsent,
                when(oldest)
            )?;
        }
        _ => writeln!(out, "waiting: none")?,
    }
    let failing = store.undelivered_mail(LIST).await?;
    if failing.is_empty() {
        writeln!(out, "given up or failing: none")?;
    } else {
        writeln!(out, "given up or failing (newest first, at most {LIST}):")?;
    }
    for m in &failing {
        let login = match m.customer_id {
            Some(id) => store
                .customer_by_id(id)
                .await?
                .map_or_else(|| format!("customer #{id}"), |c| c.login_id),
            None => "-".to_owned(),
        };
        let state = match m.given_up_at {
            Some(at) => format!("given up {}", when(at)),
            None => format!("retrying, next {}", when(m.next_attempt_at)),
        };
        writeln!(
            out,
            "  #{} {} {} to {} for {}: {} ({} tr{}): {}",
            m.id,
            when(m.created_at),
            m.kind,
            m.to_addr,
            login,
            state,
            m.attempts,
            if m.attempts == 1 { "y" } else { "ies" },
            m.last_error.as_deref().unwrap_or("")
        )?;
    }
    let mut after = 0;
    let mut bad = Vec::new();
    loop {
        let page = store.registered_addresses(after, 1000).await?;
        let Some(last) = page.last() else { break };
        after = last.0;
        bad.extend(
            page.into_iter().filter(|(_, _, email)| {
                !email.is_empty() && !crate::domain::fields::is_email(email)
            }),
        );
    }
    if bad.is_empty() {
        writeln!(out, "registered addresses the mailer cannot use: none")?;
    } else {
        writeln!(
            out,
            "registered addresses the mailer cannot use: {} (no mail reaches them until changed)",
            bad.len()
        )?;
        for (_, login, email) in bad.iter().take(200) {
            writeln!(out, "  {login}: {email}")?;
        }
        if bad.len() > 200 {
            writeln!(out, "  … and {} more", bad.len() - 200)?;
        }
    }
    Ok(out)
}
