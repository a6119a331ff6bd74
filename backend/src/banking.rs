//! Internet-banking operations the customer screens need beyond the token lifecycle: login,
//! the confirmation password, the BOP001 overview, opening a download link by its code, and
//! transfers. Built on the engine's public API; SQL stays in `store`. No HTTP here.

use zeroize::Zeroizing;

use crate::domain::{self, DomainError, IssueBlock, TokenState};
use crate::engine::{now_i64, Actor, Engine, EngineError, Result, TokenStatus};
use crate::mail::link_code_hash;
use crate::store::{CustomerRow, NewAudit, StoreError};

/// What BOP001 shows: the customer's newest token (expiry applied) and whether a new one may
/// be issued now.
#[derive(Debug, Clone)]
pub struct Overview {
    pub token: Option<TokenStatus>,
    pub issue_block: Option<IssueBlock>,
}

impl Overview {
    /// Whether login and transfers need a code.
    pub fn otp_active(&self) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| t.state == TokenState::Active)
    }
}

/// What the download page shows.
#[derive(Debug, Clone)]
pub struct LinkOpened {
    pub service_id: String,
    pub user_id: String,
    /// This request was the link's first opening.
    pub first: bool,
}

/// A recorded transfer.
#[derive(Debug, Clone)]
pub struct TransferDone {
    pub id: i64,
    pub payee: String,
    pub amount: i64,
    /// False when this request key had already recorded the transfer (a double submit).
    pub new: bool,
}

/// What a check of one of the customer's passwords found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordCheck {
    Right,
    Wrong,
    /// Too many consecutive wrong passwords: every password of the customer, the right one
    /// included, is refused until `until` (Unix seconds).
    Locked {
        until: i64,
    },
}

/// What a login attempt found.
pub enum Login {
    Ok(Box<CustomerRow>),
    /// Unknown login ID or wrong password (the same answer for both).
    Invalid,
    /// The customer's passwords are locked until `until` ([`PasswordCheck::Locked`]).
    Locked {
        until: i64,
    },
}

impl Engine {
    /// Record one audit event in a transaction of its own.
    pub(crate) async fn audit_now(&self, e: NewAudit<'_>) -> Result<()> {
        let mut tx = self.store().begin().await?;
        tx.audit(&e).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Check a login ID and login password; audited either way (never with the password).
    ///
    /// A locked customer is told so ([`Login::Locked`]), with the time it ends: a customer who
    /// only ever heard "wrong password" would keep trying and call the bank. The price is that
    /// ten wrong passwords show a login ID exists (an unknown one is never "locked"), which the
    /// guesser pays for by locking the account, audited, with the customer told at login.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn customer_login(
        &self,
        login_id: &str,
        password: Zeroizing<String>,
        actor: &Actor,
    ) -> Result<Login> {
        let customer = self.store().customer_by_login(login_id).await?;
        let phc = match &customer {
            Some(c) => c.login_password_hash.clone(),
            None => self.dummy_phc().await?,
        };
        let Some(customer) = customer else {
            // Unknown login ID: the same Argon2 work, then the same answer as a wrong password.
            let _ = self.password_ok(password, phc).await?;
            self.audit_now(NewAudit {
                at: now_i64(self.now()),
                actor: &actor.name,
                action: "login_password",
                outcome: "invalid",
                ip: actor.ip.as_deref(),
                ..Default::default()
            })
            .await?;
            return Ok(Login::Invalid);
        };
        let check = self
            .throttled_password(
                &customer,
                password,
                phc,
                actor,
                "login_password",
                Some("ok"),
                "invalid",
            )
            .await?;
        Ok(match check {
            PasswordCheck::Right => Login::Ok(Box::new(customer)),
            PasswordCheck::Wrong => Login::Invalid,
            PasswordCheck::Locked { until } => Login::Locked { until },
        })
    }

    /// Check one of a customer's passwords, counting consecutive failures: at
    /// `policy.max_password_failures` the customer's passwords lock for
    /// `policy.password_lock_seconds`, and while locked even the right password is refused
    /// (audited as `password_locked`). A right password resets the count.
    #[allow(clippy::too_many_arguments)] // reason: the audit wording differs per caller
    async fn throttled_password(
        &self,
        c: &CustomerRow,
        password: Zeroizing<String>,
        phc: String,
        actor: &Actor,
        action: &str,
        ok_outcome: Option<&str>,
        fail_outcome: &str,
    ) -> Result<PasswordCheck> {
        let now = now_i64(self.now());
        let policy = self.policy();
        let unlock_before =
            now.saturating_sub(i64::try_from(policy.password_lock_seconds).unwrap_or(i64::MAX));
        let audit = |outcome| NewAudit {
            at: now,
            actor: &actor.name,
            customer_id: Some(c.id),
            action,
            outcome,
            ip: actor.ip.as_deref(),
            ..Default::default()
        };
        let lock_secs = i64::try_from(policy.password_lock_seconds).unwrap_or(i64::MAX);
        let until = |locked_at: i64| locked_at.saturating_add(lock_secs);
        if let Some(at) = c.password_locked_at.filter(|at| *at > unlock_before) {
            // The same Argon2 work as an unlocked check, its answer unused: a locked account
            // does not answer faster than one that is not.
            let _ = self.password_ok(password, phc).await?;
            self.audit_now(audit("password_locked")).await?;
            return Ok(PasswordCheck::Locked { until: until(at) });
        }
        let ok = self.password_ok(password, phc).await?;
        let mut tx = self.store().begin().await?;
        let accepted = if ok {
            tx.reset_password_failures(c.id).await?;
            if let Some(o) = ok_outcome {
                tx.audit(&audit(o)).await?;
            }
            PasswordCheck::Right
        } else {
            let max = i64::from(policy.max_password_failures);
            match tx
                .count_password_failure(c.id, max, now, unlock_before)
                .await?
            {
                Some((n, true)) => {
                    tx.audit(&audit(fail_outcome)).await?;
                    tx.audit(&NewAudit {
                        action: "password_lock",
                        detail: Some(serde_json::json!({ "failures": n }).to_string()),
                        ..audit("locked")
                    })
                    .await?;
                    PasswordCheck::Locked { until: until(now) }
                }
                Some(_) => {
                    tx.audit(&audit(fail_outcome)).await?;
                    PasswordCheck::Wrong
                }
                None => {
                    // Locked meanwhile by a concurrent attempt; it began about now.
                    tx.audit(&audit("password_locked")).await?;
                    PasswordCheck::Locked { until: until(now) }
                }
            }
        };
        tx.commit().await?;
        Ok(accepted)
    }

    /// Check the customer's confirmation password (確認用パスワード).
    ///
    /// # Errors
    /// Unknown customer or the database is unavailable.
    pub async fn check_confirmation_password(
        &self,
        customer_id: i64,
        password: Zeroizing<String>,
        actor: &Actor,
        action: &str,
    ) -> Result<PasswordCheck> {
        let c = self
            .store()
            .customer_by_id(customer_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        let phc = c.confirmation_password_hash.clone();
        self.throttled_password(
            &c,
            password,
            phc,
            actor,
            action,
            None,
            "wrong_confirmation_password",
        )
        .await
    }

    /// The customer's token and whether a new one may be issued (BOP001).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn overview(&self, customer_id: i64) -> Result<Overview> {
        let now = now_i64(self.now());
        let customer = self
            .store()
            .customer_by_id(customer_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        let token = match self.store().latest_token(customer_id).await? {
            Some(row) => Some(self.token_status(&row.user_id).await?),
            None => None,
        };
        let latest = token.as_ref().map(|t| (t.state, t.deactivated_at));
        let issue_block = domain::may_issue(latest, customer.reissue_waived != 0, now).err();
        Ok(Overview { token, issue_block })
    }

    /// The customer's newest token's user ID and the address it was issued to.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn latest_token_email(&self, customer_id: i64) -> Result<Option<String>> {
        Ok(self
            .store()
            .latest_token(customer_id)
            .await?
            .map(|r| r.email))
    }

    /// Open a mailed download link: its first opening moves the token Issued → LinkOpened,
    /// which the app's setup waits for (DESIGN §4). Later openings are counted and shown again.
    ///
    /// # Errors
    /// Unknown code ([`DomainError::UnknownToken`]), an expired link or issuance, or a token
    /// that can no longer be set up.
    pub async fn open_download_link(&self, code: &str, actor: &Actor) -> Result<LinkOpened> {
        let valid_shape =
            (32..=128).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_hexdigit());
        let link = if valid_shape {
            self.store().download_link(&link_code_hash(code)).await?
        } else {
            None
        };
        let Some(link) = link else {
            return Err(DomainError::UnknownToken.into());
        };
        let now = now_i64(self.now());
        if now >= link.expires_at {
            return Err(EngineError::IssuanceExpired);
        }
        let status = self.token_status(&link.user_id).await?;
        match status.state {
            TokenState::Issued => {
                self.open_link(&link.user_id, actor).await?;
            }
            TokenState::LinkOpened | TokenState::Provisioned | TokenState::Active => {}
            TokenState::Voided => return Err(EngineError::IssuanceExpired),
            TokenState::Deactivated | TokenState::Revoked => {
                return Err(EngineError::TokenNotUsable)
            }
        }
        let mut tx = self.store().begin().await?;
        let first = tx.record_link_open(link.id, now).await?;
        tx.commit().await?;
        Ok(LinkOpened {
            service_id: link.service_id,
            user_id: link.user_id,
            first,
        })
    }

    /// Record a transfer once per request key (the confirm form's), in one transaction with its
    /// audit event. The caller has checked the confirmation password and, when OTP is active,
    /// the code.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn record_transfer(
        &self,
        customer_id: i64,
        request_key: &str,
        payee: &str,
        amount: i64,
        user_id: Option<&str>,
        actor: &Actor,
    ) -> Result<TransferDone> {
        if let Some(t) = self.store().transfer_by_key(request_key).await? {
            return Ok(TransferDone {
                id: t.id,
                payee: t.payee,
                amount: t.amount,
                new: false,
            });
        }
        let now = now_i64(self.now());
        let mut tx = self.store().begin().await?;
        let id = match tx
            .insert_transfer(customer_id, request_key, payee, amount, user_id, now)
            .await
        {
            Ok(id) => id,
            Err(StoreError::Conflict(_)) => {
                drop(tx);
                let t = self
                    .store()
                    .transfer_by_key(request_key)
                    .await?
                    .ok_or(EngineError::Unavailable)?;
                return Ok(TransferDone {
                    id: t.id,
                    payee: t.payee,
                    amount: t.amount,
                    new: false,
                });
            }
            Err(e) => return Err(e.into()),
        };
        tx.audit(&NewAudit {
            at: now,
            actor: &actor.name,
            customer_id: Some(customer_id),
            user_id,
            action: "transfer",
            outcome: "ok",
            ip: actor.ip.as_deref(),
            detail: Some(serde_json::json!({ "transfer_id": id, "amount": amount }).to_string()),
        })
        .await?;
        tx.commit().await?;
        Ok(TransferDone {
            id,
            payee: payee.to_owned(),
            amount,
            new: true,
        })
    }

    /// Whether the request key already recorded a transfer.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn transfer_recorded(&self, request_key: &str) -> Result<bool> {
        Ok(self.store().transfer_by_key(request_key).await?.is_some())
    }
}
