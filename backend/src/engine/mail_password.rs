//! メール通知パスワード (issue 19, rules in `domain::mail_password`): sending one to the
//! customer's registered address through the outbox, and checking it beside the confirmation
//! password as ONE attempt under the customer's password lockout (`record_password_attempt`,
//! the same compare-and-set as every other customer password), then using it once.

use zeroize::Zeroizing;

use crate::domain::mail_password::{self as rule, MailPurpose};
use crate::domain::DomainError;
use crate::mail::compose::MailPasswordFor;
use crate::store::{NewAudit, NewMailPassword, StoreError};

use super::passwords::PasswordPath;
use super::{now_i64, Actor, Engine, EngineError, PasswordCheck, Result};

/// What asking for a mailed password came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailSend {
    /// Sent (`sends`: this request's mails so far, the first included).
    Sent { sends: i64 },
    /// This request had its [`rule::MAX_SENDS`] mails already, or the customer their
    /// [`rule::MAX_PER_HOUR`].
    LimitReached,
    /// The customer has no registered address to send it to.
    NoAddress,
}

/// What the confirmation password and the mailed password came to, judged together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailCheck {
    /// Both right; the mailed password is used up.
    Right,
    /// Both right, and this request used the mailed password already (a double submit): the
    /// caller repeats its request-keyed, idempotent step and nothing more.
    AlreadyUsed,
    ConfirmationWrong,
    MailWrong,
    /// None was sent for this request in this session, or it expired, or it was used.
    MailGone,
    /// The customer's passwords are locked until `until`.
    Locked {
        until: i64,
    },
}

impl Engine {
    /// Send (or resend) the メール通知パスワード for one request of a web session: a fresh
    /// password, its Argon2 hash stored, and the mail to the customer's **registered** address
    /// in the outbox, in one transaction, audited as `mail_password_sent` (never with the
    /// password). A resend replaces the password, up to [`rule::MAX_SENDS`] mails a request.
    ///
    /// # Errors
    /// Unknown customer, or the database (or the hasher) is unavailable.
    pub async fn send_mail_password(
        &self,
        customer_id: i64,
        session_hash: &str,
        request_key: &str,
        purpose: MailPurpose,
        what: MailPasswordFor<'_>,
        actor: &Actor,
    ) -> Result<MailSend> {
        let customer = self
            .store()
            .customer_by_id(customer_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        let Some(to) = customer.email.filter(|e| !e.is_empty()) else {
            return Ok(MailSend::NoAddress);
        };
        let code = rule::generate();
        let code_hash = self.hash_password(code.clone()).await?;
        let now = now_i64(self.now());
        let expires_at = rule::expires_at(now);
        let mut tx = self.store().begin().await?;
        let last_hour = tx
            .mail_passwords_sent_since(customer_id, now.saturating_sub(3600))
            .await?;
        let existing = tx.mail_password(session_hash, request_key).await?;
        let sends = existing.as_ref().map_or(0, |r| r.sends);
        if !rule::may_send(sends, last_hour) {
            drop(tx);
            return Ok(MailSend::LimitReached);
        }
        let (id, sends) = match existing {
            Some(row) => {
                if !tx
                    .resend_mail_password(row.id, row.sends, &code_hash, now, expires_at)
                    .await?
                {
                    // A concurrent resend counted first: this one is not sent.
                    return Err(EngineError::Unavailable);
                }
                (row.id, row.sends + 1)
            }
            None => match tx
                .insert_mail_password(&NewMailPassword {
                    customer_id,
                    session_hash,
                    purpose: purpose.as_str(),
                    request_key,
                    code_hash: &code_hash,
                    now,
                    expires_at,
                })
                .await
            {
                Ok(id) => (id, 1),
                Err(StoreError::Conflict(_)) => return Err(EngineError::Unavailable),
                Err(e) => return Err(e.into()),
            },
        };
        crate::mail::enqueue_mail_password(
            &mut tx,
            &self.config().bank,
            customer_id,
            &to,
            &code,
            what,
            &rule::mail_key(id, sends),
            now,
            expires_at,
        )
        .await?;
        tx.audit(&NewAudit {
            customer_id: Some(customer_id),
            detail: Some(
                serde_json::json!({ "purpose": purpose.as_str(), "send": sends }).to_string(),
            ),
            ..actor.audit("mail_password_sent", "ok", now)
        })
        .await?;
        tx.commit().await?;
        Ok(MailSend::Sent { sends })
    }

    /// Check the confirmation password and the メール通知パスワード of this session's request as
    /// one attempt under the customer's password lockout: right only when both are, so a right
    /// confirmation password never clears the count that wrong mailed passwords made. A right
    /// pair uses the mailed password up (one conditional statement: of concurrent right
    /// submissions one wins, the others find it gone), audited as `mail_password_used`.
    ///
    /// # Errors
    /// Unknown customer, or the database (or the hasher) is unavailable.
    #[allow(clippy::too_many_arguments)] // reason: the two passwords and the request they confirm
    pub async fn check_with_mail_password(
        &self,
        customer_id: i64,
        session_hash: &str,
        request_key: &str,
        confirmation_password: Zeroizing<String>,
        mail_password: Zeroizing<String>,
        actor: &Actor,
        action: &str,
    ) -> Result<MailCheck> {
        let c = self
            .store()
            .customer_by_id(customer_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        let now = now_i64(self.now());
        // Live, or used by this very request and not expired (a double submit of it).
        let row = self
            .store()
            .mail_password(session_hash, request_key)
            .await?
            .filter(|r| r.customer_id == customer_id && rule::is_live(None, r.expires_at, now));
        let conf_ok = self
            .password_ok(confirmation_password, c.confirmation_password_hash.clone())
            .await?;
        let mail_ok = match &row {
            Some(r) => self.password_ok(mail_password, r.code_hash.clone()).await?,
            None => false,
        };
        let fail = if !conf_ok {
            "wrong_confirmation_password"
        } else if row.is_none() {
            "mail_password_gone"
        } else {
            "wrong_mail_password"
        };
        let check = self
            .record_password_attempt(
                PasswordPath::Confirmation,
                &c,
                conf_ok && mail_ok,
                actor,
                action,
                None,
                fail,
            )
            .await?;
        match (check, row) {
            (PasswordCheck::Locked { until }, _) => Ok(MailCheck::Locked { until }),
            (PasswordCheck::Wrong, _) if !conf_ok => Ok(MailCheck::ConfirmationWrong),
            (PasswordCheck::Wrong, None) => Ok(MailCheck::MailGone),
            (PasswordCheck::Wrong, Some(_)) => Ok(MailCheck::MailWrong),
            (PasswordCheck::Right, None) => Ok(MailCheck::MailGone),
            (PasswordCheck::Right, Some(r)) if r.used_at.is_some() => Ok(MailCheck::AlreadyUsed),
            (PasswordCheck::Right, Some(r)) => {
                let now = now_i64(self.now());
                let mut tx = self.store().begin().await?;
                if !tx.use_mail_password(r.id, &r.code_hash, now).await? {
                    drop(tx);
                    // Used meanwhile by a concurrent submit of the same request (then it is
                    // that request's), or replaced by a resend, or expired.
                    let again = self
                        .store()
                        .mail_password(session_hash, request_key)
                        .await?;
                    return Ok(match again {
                        Some(a) if a.used_at.is_some() && a.code_hash == r.code_hash => {
                            MailCheck::AlreadyUsed
                        }
                        _ => MailCheck::MailGone,
                    });
                }
                tx.audit(&NewAudit {
                    customer_id: Some(customer_id),
                    detail: Some(serde_json::json!({ "purpose": r.purpose }).to_string()),
                    ..actor.audit("mail_password_used", "ok", now)
                })
                .await?;
                tx.commit().await?;
                Ok(MailCheck::Right)
            }
        }
    }

    /// End the web session's mailed passwords (logout): none of them works any more.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn end_mail_passwords(&self, session_hash: &str) -> Result<()> {
        let now = now_i64(self.now());
        let mut tx = self.store().begin().await?;
        tx.end_session_mail_passwords(session_hash, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Change the customer's registered e-mail address, audited, with a notice to the old one.
    /// The caller has checked the confirmation password and the mailed password or the code.
    ///
    /// # Errors
    /// An invalid address, unknown customer, or the database is unavailable.
    pub async fn change_email(
        &self,
        customer_id: i64,
        new_email: &str,
        actor: &Actor,
    ) -> Result<()> {
        crate::domain::fields::email(new_email)?;
        let now = now_i64(self.now());
        let mut tx = self.store().begin().await?;
        let c = tx
            .customer(customer_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        tx.set_customer_email(customer_id, new_email).await?;
        if let Some(old) = c.email.filter(|o| !o.eq_ignore_ascii_case(new_email)) {
            let mail = crate::mail::compose::email_changed(&self.config().bank, new_email, now);
            tx.enqueue_mail(&crate::store::NewMail {
                dedupe_key: &format!("email_changed:{customer_id}:{now}"),
                kind: "notice_email_changed",
                customer_id: Some(customer_id),
                user_id: None,
                to_addr: &old,
                subject: &mail.subject,
                body: &mail.body,
                now,
            })
            .await?;
        }
        tx.audit(&NewAudit {
            customer_id: Some(customer_id),
            ..actor.audit("email_change", "ok", now)
        })
        .await?;
        tx.commit().await?;
        Ok(())
    }
}
