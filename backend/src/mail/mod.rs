//! Outgoing mail (DESIGN §7): what the mails say (`compose`), and the worker that sends the
//! outbox with lettre — over SMTP when configured, otherwise as `.eml` files under
//! `data_dir/outbox` (the embedded default, for a first run without a mail server).
//!
//! Mail is written to the outbox in the same transaction as the decision it reports, so a
//! mail server outage delays mail and never loses it. The worker claims a row for a lease,
//! sends it, then stamps it sent and clears its body; a failure pushes the next attempt back
//! with exponential backoff. Each mail goes over a connection of its own (no pool: a send cut
//! off by its time limit must not leave a connection mid-conversation for the next mail), its
//! whole send bounded by `mail.send_timeout_secs`. Delivery is at least once: a crash after the
//! SMTP server accepted a mail and before it was stamped, or a send that timed out while the
//! server was accepting it, sends it again (the Message-ID stays the same, so receivers can
//! drop the duplicate); a restart after the stamp never resends.
//!
//! Must not depend on `web`.

pub mod compose;

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::BankConfig;
pub use crate::config::{MailConfig, SmtpTls};
use crate::store::{MailRow, NewMail, NoticeMail, Store, StoreError, TokenRow, Tx};

/// What the engine needs to write an issuance mail: where the link points and how long it lives.
#[derive(Debug, Clone)]
pub struct LinkSettings {
    /// The public base URL of the customer screens, without a trailing slash.
    pub public_url: String,
    pub link_ttl_days: u32,
}

impl Default for LinkSettings {
    fn default() -> Self {
        LinkSettings {
            public_url: "http://127.0.0.1:8080".into(),
            link_ttl_days: 7,
        }
    }
}

/// The stored form of a download-link code: its SHA-256, hex.
pub fn link_code_hash(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

/// Create the download link (160 random bits, stored hashed) and put the issuance mail in the
/// outbox, inside the issuance transaction. Returns the download URL.
///
/// # Errors
/// The database refused the writes.
#[allow(clippy::too_many_arguments)] // reason: one issuance's facts, named at the single call
pub async fn enqueue_issuance(
    tx: &mut Tx<'_>,
    bank: &BankConfig,
    links: &LinkSettings,
    customer_id: i64,
    token_id: i64,
    email: &str,
    service_id: &str,
    user_id: &str,
    now: i64,
    resend: bool,
) -> Result<Zeroizing<String>, StoreError> {
    let mut raw = Zeroizing::new([0u8; 20]);
    rand::rngs::OsRng.fill_bytes(raw.as_mut());
    let code = Zeroizing::new(hex::encode(raw.as_ref()));
    let expires_at = now + i64::from(links.link_ttl_days) * 86_400;
    let link_id = tx
        .insert_download_link(token_id, &link_code_hash(&code), now, expires_at)
        .await?;
    let url = Zeroizing::new(format!(
        "{}/dl/{}",
        links.public_url.trim_end_matches('/'),
        code.as_str()
    ));
    let mail = compose::issuance(bank, &url, service_id, user_id, expires_at);
    tx.enqueue_mail(&NewMail {
        // A resend is a new mail; an issuance's mail is sent once, whatever retries it.
        dedupe_key: &if resend {
            format!("resend:{user_id}:{link_id}")
        } else {
            format!("issue:{user_id}")
        },
        kind: "issuance",
        customer_id: Some(customer_id),
        user_id: Some(user_id),
        to_addr: email,
        subject: &mail.subject,
        body: &mail.body,
        now,
    })
    .await?;
    Ok(url)
}

/// A notice to the customer, to put in the outbox in the transaction of the decision it
/// reports (the verification batch writer does). It goes to the customer's address on file,
/// else to the token's. `event` makes the mail unique: the same event never mails twice.
pub fn notice_mail(
    bank: &BankConfig,
    row: &TokenRow,
    notice: compose::Notice,
    event: &str,
    now: i64,
) -> NoticeMail {
    let mail = compose::notice(bank, notice, &row.user_id, now);
    NoticeMail {
        dedupe_key: format!("{}:{}:{event}", notice.kind(), row.user_id),
        kind: notice.kind(),
        customer_id: row.customer_id,
        user_id: row.user_id.clone(),
        token_email: row.email.clone(),
        subject: mail.subject,
        body: mail.body,
        now,
    }
}

/// Put a メール通知パスワード mail in the outbox, in the transaction that stores its hash. It goes
/// to the customer's registered address `to`; `dedupe` makes each send one mail.
///
/// # Errors
/// The database refused the write.
#[allow(clippy::too_many_arguments)] // reason: one mail's facts, named at the single call
pub async fn enqueue_mail_password(
    tx: &mut Tx<'_>,
    bank: &BankConfig,
    customer_id: i64,
    to: &str,
    code: &str,
    what: compose::MailPasswordFor<'_>,
    dedupe: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    let mail = compose::mail_password(bank, code, what, now, expires_at);
    tx.enqueue_mail(&NewMail {
        dedupe_key: dedupe,
        kind: MAIL_PASSWORD_KIND,
        customer_id: Some(customer_id),
        user_id: None,
        to_addr: to,
        subject: &mail.subject,
        body: &mail.body,
        now,
    })
    .await?;
    Ok(())
}

/// Tell the registered address `to` that a token was issued to `new_email` (when they differ).
///
/// # Errors
/// The database refused the write.
pub async fn enqueue_issued_elsewhere(
    tx: &mut Tx<'_>,
    bank: &BankConfig,
    customer_id: i64,
    to: &str,
    new_email: &str,
    user_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let mail = compose::issued_elsewhere(bank, new_email, user_id, now);
    tx.enqueue_mail(&NewMail {
        dedupe_key: &format!("issued_elsewhere:{user_id}"),
        kind: "notice_issued",
        customer_id: Some(customer_id),
        user_id: Some(user_id),
        to_addr: to,
        subject: &mail.subject,
        body: &mail.body,
        now,
    })
    .await?;
    Ok(())
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// The outbox directory (0700); each mail one `.eml` file (0600).
    Files(PathBuf),
}

/// The running mail worker ([`MailWorker::spawn`]).
pub struct MailTask {
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl MailTask {
    /// Stop before the database closes: the worker ends the round it is in (a mail being sent
    /// is then marked sent) and polls no more. Past `wait` it is cut off, and a mail it was
    /// sending is sent again once its lease runs out. Returns whether it stopped in time.
    pub async fn stop(self, wait: Duration) -> bool {
        let _ = self.stop.send(true);
        let cut_off = self.task.abort_handle();
        if tokio::time::timeout(wait, self.task).await.is_ok() {
            true
        } else {
            cut_off.abort();
            false
        }
    }

    /// Cut the worker off at once (tests that simulate a crash).
    pub fn abort(&self) {
        self.task.abort();
    }
}

/// The outbox worker.
pub struct MailWorker {
    store: Store,
    transport: Transport,
    from: Mailbox,
    cfg: MailConfig,
    /// When sent mail was last purged (Unix seconds; 0: not yet in this run).
    purged_at: std::sync::atomic::AtomicI64,
}

/// How often the worker forgets sent mail older than `mail.keep_sent_days`.
const PURGE_EVERY_SECS: i64 = 3600;

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Why the worker gave up on a mail (its `last_error`; the staff console shows them, in
/// Japanese too).
pub mod reason {
    pub const UNMAILABLE: &str = "the address cannot be mailed";
    pub const PASSWORD_EXPIRED: &str = "the mailed password expired before it could be sent";
    pub const PASSWORD_GONE: &str =
        "the mailed password was replaced, used or ended before it could be sent";
    pub const TOO_LONG: &str = "no mail server accepted it within mail.give_up_after_hours";
    pub const ALL: [&str; 4] = [UNMAILABLE, PASSWORD_EXPIRED, PASSWORD_GONE, TOO_LONG];
}

/// The outbox kind of a mail carrying a メール通知パスワード.
pub const MAIL_PASSWORD_KIND: &str = "mail_password";

/// The longest wait between tries of a mail carrying a メール通知パスワード.
const MAIL_PASSWORD_RETRY_MAX_SECS: u64 = 60;

/// A claim lasts this long; a worker that died mid-send loses it after that.
const LEASE_SECS: i64 = 120;

/// Why a mail will never be sent, if so:
/// - an address the mailer cannot parse (stored before the stricter check);
/// - a mailed one-time password (メール通知パスワード) whose sends have failed for its whole
///   life ([`crate::domain::mail_password::TTL_SECS`]) since the first failed one: it is dead
///   by now, and a customer who typed it would count a wrong password toward the lock. Both
///   times are the worker's clock (`now` and the row's `first_failed_at`), never the engine's
///   `created_at`: the two clocks need not agree (the journeys run the engine days behind).
///   A password the worker did not try while it was alive (the worker down) still goes out,
///   unless its row says it is gone ([`MailWorker::password_gone`]).
/// - any mail whose sends have failed for `give_up_after_secs` since the first failed one (a
///   mail server that refuses the address for good, or an outage of days), as a mail server
///   gives up on a message; the worker's clock too.
fn give_up(row: &MailRow, now: i64, give_up_after_secs: i64) -> Option<&'static str> {
    if row.to_addr.parse::<Mailbox>().is_err() {
        return Some(reason::UNMAILABLE);
    }
    let failing_for = row.first_failed_at.map(|t| now.saturating_sub(t));
    if row.kind == MAIL_PASSWORD_KIND
        && failing_for.is_some_and(|d| d >= crate::domain::mail_password::TTL_SECS)
    {
        return Some(reason::PASSWORD_EXPIRED);
    }
    failing_for
        .is_some_and(|d| d >= give_up_after_secs)
        .then_some(reason::TOO_LONG)
}

impl MailWorker {
    /// # Errors
    /// A bad sender, an SMTP host the TLS setup refuses, or an outbox directory that cannot be
    /// created.
    pub fn new(
        store: Store,
        cfg: &MailConfig,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<MailWorker> {
        cfg.validate().map_err(anyhow::Error::msg)?;
        let from: Mailbox = cfg.from.parse()?;
        let transport = match &cfg.smtp_host {
            Some(host) => {
                let mut b = match cfg.tls {
                    SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host),
                    SmtpTls::Starttls => {
                        AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host)?
                    }
                    SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host)?,
                };
                if let Some(port) = cfg.smtp_port {
                    b = b.port(port);
                }
                if let (Some(user), Some(pass)) = (&cfg.username, &cfg.password) {
                    b = b.credentials(Credentials::new(user.clone(), pass.0.clone()));
                }
                Transport::Smtp(b.timeout(Some(Duration::from_secs(30))).build())
            }
            None => {
                let dir: PathBuf = data_dir.join("outbox");
                let mut b = std::fs::DirBuilder::new();
                b.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
                b.create(&dir)?;
                Transport::Files(dir)
            }
        };
        Ok(MailWorker {
            store,
            transport,
            from,
            cfg: cfg.clone(),
            purged_at: std::sync::atomic::AtomicI64::new(0),
        })
    }

    /// Where mail goes, for the start-up message (no credentials).
    pub fn describe(&self) -> String {
        match (&self.transport, &self.cfg.smtp_host) {
            (Transport::Smtp(_), Some(h)) => format!(
                "smtp://{h}:{} ({:?})",
                self.cfg
                    .smtp_port
                    .map_or_else(|| "default".to_owned(), |p| p.to_string()),
                self.cfg.tls
            ),
            _ => "files under data_dir/outbox (no SMTP configured)".to_owned(),
        }
    }

    /// Run in the background until stopped (or the handle is dropped): send what is due, then
    /// wait for the next poll.
    pub fn spawn(self) -> MailTask {
        let (stop, mut stopping) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while !*stopping.borrow() {
                let sent = match self.run_once().await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!(error = %e, "mail outbox unavailable");
                        0
                    }
                };
                if sent == 0 {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(self.cfg.poll_ms)) => {}
                        // Asked to stop, or the handle is gone (a closed channel answers at
                        // once: carrying on would poll in a tight loop).
                        changed = stopping.changed() => {
                            if changed.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        });
        MailTask { stop, task }
    }

    /// Send every mail that is due now; returns how many were sent.
    ///
    /// # Errors
    /// The database is unavailable (a failed send is not an error: it is retried later).
    pub async fn run_once(&self) -> anyhow::Result<usize> {
        // Housekeeping: a failure is said and does not hold the mail back.
        if let Err(e) = self.purge_if_due().await {
            tracing::warn!(error = %e, "sent mail not purged this time");
        }
        let mut sent = 0;
        let limit = Duration::from_secs(self.cfg.send_timeout_secs);
        for row in self.store.due_mail(unix_now(), 32).await? {
            // Claimed from the time it is taken, not the batch's start: a slow relay earlier in
            // the batch must not leave this claim already expired (another instance would send
            // the same mail). The send is bounded well inside the claim.
            let now = unix_now();
            if !self.store.claim_mail(row.id, now, now + LEASE_SECS).await? {
                continue;
            }
            let after = i64::from(self.cfg.give_up_after_hours).saturating_mul(3600);
            let why = match give_up(&row, now, after) {
                Some(why) => Some(why),
                None => self.password_gone(&row).await?,
            };
            if let Some(why) = why {
                tracing::warn!(mail_id = row.id, kind = %row.kind, attempts = row.attempts, reason = why, "mail given up");
                self.store.mail_given_up(row.id, now, why).await?;
                continue;
            }
            let outcome = match tokio::time::timeout(limit, self.send(&row)).await {
                Ok(r) => r,
                Err(_) => Err(anyhow::anyhow!(
                    "the mail server did not answer within {} s",
                    self.cfg.send_timeout_secs
                )),
            };
            match outcome {
                Ok(()) => {
                    self.store.mail_sent(row.id, unix_now()).await?;
                    sent += 1;
                    tracing::info!(mail_id = row.id, kind = %row.kind, user_id = ?row.user_id, "mail sent");
                }
                Err(e) => {
                    let attempts = u32::try_from(row.attempts.max(0)).unwrap_or(u32::MAX);
                    let mut delay = backoff(&self.cfg, attempts);
                    if row.kind == MAIL_PASSWORD_KIND {
                        // The customer waits at the screen, and the password lives ten
                        // minutes: tried again within a minute of the server coming back.
                        delay = delay.min(MAIL_PASSWORD_RETRY_MAX_SECS);
                    }
                    tracing::warn!(mail_id = row.id, kind = %row.kind, attempt = attempts + 1, retry_in_secs = delay, error = %e, "mail not sent; will retry");
                    // The attempt began at the claim (`now`): a send that ran into its time
                    // limit must not push the first failure, and the give-up, later.
                    self.store
                        .mail_failed(
                            row.id,
                            now,
                            unix_now().saturating_add(i64::try_from(delay).unwrap_or(i64::MAX)),
                            &e.to_string(),
                        )
                        .await?;
                }
            }
        }
        Ok(sent)
    }

    /// Why a mail carrying a メール通知パスワード must not go out though its life is not over
    /// by the worker's clock: a resend replaced the password (the customer pressed 「再送信」
    /// while the mail server was down: the dead passwords would arrive first and be typed), it
    /// was used, or a logout ended it (`domain::mail_password::mail_still_carries`).
    async fn password_gone(&self, row: &MailRow) -> anyhow::Result<Option<&'static str>> {
        use crate::domain::mail_password as rule;
        if row.kind != MAIL_PASSWORD_KIND {
            return Ok(None);
        }
        let Some((id, sent)) = rule::parse_mail_key(&row.dedupe_key) else {
            return Ok(None);
        };
        let live = self.store.mail_password_by_id(id).await?.is_some_and(|p| {
            rule::mail_still_carries(sent, p.sends, p.used_at, p.created_at, p.expires_at)
        });
        Ok((!live).then_some(reason::PASSWORD_GONE))
    }

    /// Forget sent mail older than `mail.keep_sent_days` (its body went when it was sent; the
    /// row keeps the address and user ID), at most once an hour per worker. The outbox was
    /// never emptied: every notice and mailed password stayed, in every backup too.
    async fn purge_if_due(&self) -> anyhow::Result<()> {
        use std::sync::atomic::Ordering;
        let now = unix_now();
        let last = self.purged_at.load(Ordering::Relaxed);
        if last != 0 && now.saturating_sub(last) < PURGE_EVERY_SECS {
            return Ok(());
        }
        self.purged_at.store(now, Ordering::Relaxed);
        let keep = i64::from(self.cfg.keep_sent_days).saturating_mul(86_400);
        if let Transport::Files(dir) = &self.transport {
            match purge_old_files(dir, now.saturating_sub(keep)).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    files = n,
                    keep_days = self.cfg.keep_sent_days,
                    "old outbox files removed"
                ),
                Err(e) => tracing::warn!(error = %e, "old outbox files not removed this time"),
            }
        }
        let n = self.store.purge_sent_mail(now.saturating_sub(keep)).await?;
        if n > 0 {
            tracing::info!(
                mails = n,
                keep_days = self.cfg.keep_sent_days,
                "sent mail forgotten"
            );
        }
        Ok(())
    }

    fn message(&self, row: &MailRow) -> anyhow::Result<Message> {
        let to: Mailbox = row.to_addr.parse()?;
        let domain = self.from.email.domain().to_owned();
        Ok(Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(row.subject.clone())
            // Stable across retries, so a receiver can drop a duplicate after a crash mid-send.
            .message_id(Some(format!(
                "<outbox-{}-{}@{domain}>",
                row.id, row.created_at
            )))
            .header(ContentType::TEXT_PLAIN)
            .body(row.body.clone())?)
    }

    async fn send(&self, row: &MailRow) -> anyhow::Result<()> {
        let msg = self.message(row)?;
        match &self.transport {
            Transport::Smtp(t) => {
                t.send(msg).await?;
            }
            Transport::Files(dir) => {
                // Named by the outbox row, so a retry after a crash mid-write rewrites the
                // same file; 0600: an issuance mail holds a download link. Written whole under
                // a `.part` name and renamed into place (then the rename made durable), so
                // whoever reads the folder (a mail viewer, a test) never sees half a mail.
                let id = format!("{}-{}", row.created_at, row.id);
                let part = dir.join(format!("{id}.eml.part"));
                let mut opts = tokio::fs::OpenOptions::new();
                opts.write(true).create(true).truncate(true);
                #[cfg(unix)]
                opts.mode(0o600);
                let mut f = opts.open(&part).await?;
                tokio::io::AsyncWriteExt::write_all(&mut f, &msg.formatted()).await?;
                f.sync_all().await?;
                tokio::fs::rename(&part, dir.join(format!("{id}.eml"))).await?;
                tokio::fs::File::open(dir).await?.sync_all().await?;
                // The development default: say where the mail is. Not what is in it: a download
                // link's code is a bearer credential (opening it moves the token on), and logs
                // travel further than the 0600 file.
                tracing::info!(file = %format!("data_dir/outbox/{id}.eml"), to = %row.to_addr, kind = %row.kind, "mail written to file (no SMTP configured)");
            }
        }
        Ok(())
    }
}

/// Remove the file outbox's mails (`*.eml`) last written before `before` (Unix seconds): the
/// development default's copies of sent mail are kept no longer than the outbox's rows (an
/// issuance mail holds a download link). Returns how many.
async fn purge_old_files(dir: &std::path::Path, before: i64) -> std::io::Result<u64> {
    let cutoff =
        std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(before.max(0)).unwrap_or(0));
    let mut removed = 0;
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(e) = entries.next_entry().await? {
        let path = e.path();
        if path.extension().is_none_or(|x| x != "eml") {
            continue;
        }
        let meta = e.metadata().await?;
        if meta.is_file() && meta.modified()? < cutoff {
            tokio::fs::remove_file(&path).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Seconds to wait after the `attempts`-th failure: base · 2^(attempts-1), capped.
pub fn backoff(cfg: &MailConfig, attempts: u32) -> u64 {
    let exp = attempts.saturating_sub(1).min(20);
    cfg.retry_base_secs
        .saturating_mul(1u64 << exp)
        .min(cfg.retry_max_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker whose handle is dropped without `stop` ends too: it does not go on polling,
    /// let alone in a tight loop (a closed channel's `changed()` answers at once).
    #[tokio::test]
    async fn the_worker_ends_when_its_handle_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::connect("sqlite::memory:", &crate::store::ConnectOpts::default()).unwrap();
        let worker = MailWorker::new(store, &MailConfig::default(), dir.path()).unwrap();
        let MailTask { stop, task } = worker.spawn();
        drop(stop);
        assert!(
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_ok(),
            "the mail worker still runs with no handle left to stop it"
        );
    }

    /// The file outbox (the development default) kept every mail for ever, download links
    /// included: files older than `keep_sent_days` go with the outbox's rows.
    #[tokio::test]
    async fn old_outbox_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let now = std::time::SystemTime::now();
        let mut kept = Vec::new();
        for (name, age_days) in [("1-1.eml", 91), ("2-2.eml", 89), ("3-3.eml.part", 200)] {
            let path = dir.path().join(name);
            let f = std::fs::File::create(&path).unwrap();
            f.set_modified(now - Duration::from_secs(age_days * 86_400))
                .unwrap();
            kept.push(path);
        }
        let before = unix_now() - 90 * 86_400;
        assert_eq!(purge_old_files(dir.path(), before).await.unwrap(), 1);
        assert!(!kept[0].exists(), "older than 90 days: removed");
        assert!(kept[1].exists(), "younger: kept");
        assert!(kept[2].exists(), "not a mail file: left alone");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let cfg = MailConfig {
            retry_base_secs: 5,
            retry_max_secs: 60,
            ..MailConfig::default()
        };
        let seq: Vec<u64> = (1..=6).map(|a| backoff(&cfg, a)).collect();
        assert_eq!(
            seq,
            vec![5, 10, 20, 40, 60, 60],
            "exponential, capped at retry_max_secs"
        );
    }

    #[test]
    fn default_config_is_valid_and_password_is_hidden() {
        MailConfig::default().validate().unwrap();
        let cfg = MailConfig {
            username: Some("u".into()),
            password: Some(crate::config::Sensitive("smtp-secret".into())),
            ..MailConfig::default()
        };
        assert!(!format!("{cfg:?}").contains("smtp-secret"));
    }
}
