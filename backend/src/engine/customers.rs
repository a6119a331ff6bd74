//! Internet-banking customers: creating them, logging in, the confirmation password, and the
//! BOP001 overview.

use zeroize::Zeroizing;

use crate::domain::{self, fields, DomainError, IssueBlock, TokenState};
use crate::store::{CustomerRow, NewAudit, NewCustomer, StoreError};

use super::passwords::PasswordPath;
use super::{now_i64, Actor, Engine, KnownDevice, Result, TokenStatus};

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
    /// Create an internet-banking customer.
    ///
    /// # Errors
    /// Invalid fields (one error naming the first bad field), or an existing login ID.
    pub async fn create_customer(
        &self,
        login_id: &str,
        name: &str,
        email: Option<&str>,
        login_password: Zeroizing<String>,
        confirmation_password: Zeroizing<String>,
        actor: &Actor,
    ) -> Result<i64> {
        fields::login_id(login_id)?;
        fields::name(name)?;
        if let Some(e) = email {
            fields::email(e)?;
        }
        fields::login_password(&login_password)?;
        fields::confirmation_password(&confirmation_password)?;
        let login_hash = self.hash_password(login_password).await?;
        let confirm_hash = self.hash_password(confirmation_password).await?;
        let now = now_i64(self.now());
        let mut tx = self.inner.store.begin().await?;
        let id = match tx
            .insert_customer(&NewCustomer {
                login_id,
                name,
                email,
                login_password_hash: &login_hash,
                confirmation_password_hash: &confirm_hash,
                now,
            })
            .await
        {
            Ok(id) => id,
            Err(StoreError::Conflict(_)) => return Err(DomainError::CustomerExists.into()),
            Err(e) => return Err(e.into()),
        };
        tx.audit(&NewAudit {
            customer_id: Some(id),
            ..actor.audit("customer_create", "ok", now)
        })
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// Failed customer logins of `client` (a network, or a known device's login ID) in the
    /// `window_secs` before `now`: how many, and when the oldest was. Kept in the database, so
    /// the spray limit (`web::failure_limit`) is one limit across every instance on it; in
    /// each process's memory it was a limit per instance, multiplied by their number.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn login_failures(
        &self,
        client: &str,
        now: u64,
        window_secs: u64,
    ) -> Result<(u64, Option<u64>)> {
        let since = now_i64(now.saturating_sub(window_secs).saturating_add(1));
        let (n, oldest) = self.store().login_failures_since(client, since).await?;
        Ok((
            u64::try_from(n).unwrap_or(0),
            oldest.and_then(|t| u64::try_from(t).ok()),
        ))
    }

    /// Record a failed customer login of `client` at `at` (see [`Engine::login_failures`]).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn record_login_failure(&self, client: &str, at: u64) -> Result<()> {
        self.store().add_login_failure(client, now_i64(at)).await?;
        Ok(())
    }

    /// Forget failed logins older than the window (and a minute) before `at`, at most once a
    /// minute per engine: in a statement of its own, not in every failure's (instances deleting
    /// the same rows at once would queue on their locks), and after the failure's attempt has
    /// ended (a purge waiting on a lock kept it counted as in flight). Its failure is only
    /// logged: it is tried again within a minute.
    pub async fn forget_old_login_failures(&self, at: u64, window_secs: u64) {
        use std::sync::atomic::Ordering;
        let purged = &self.inner.login_failures_purged;
        let last = purged.load(Ordering::Relaxed);
        if at < last.saturating_add(60)
            || purged
                .compare_exchange(last, at, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        // A minute's margin: a read whose `now` was taken a little before this one's (waiting
        // for its gate, or on another instance with its own clock) still finds its window whole.
        let before = now_i64(at.saturating_sub(window_secs).saturating_sub(60));
        if let Err(e) = self.store().purge_login_failures(before).await {
            tracing::warn!(error = %e, "old failed logins not purged; tried again within a minute");
        }
    }

    /// Check a login ID and login password; audited either way (never with the password).
    ///
    /// A locked customer is told so ([`Login::Locked`]), with the time it ends: a customer who
    /// only ever heard "wrong password" would keep trying and call the bank. The price is that
    /// ten wrong passwords show a login ID exists (an unknown one is never "locked"), which the
    /// guesser pays for by locking the account, audited, with the customer told at login.
    /// `device`: the browser is one the customer logged in on before; its wrong passwords
    /// count on the known devices' lock and its right one lifts the account's
    /// (`PasswordPath`), so a stranger's guesses lock the account for strangers only.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn customer_login(
        &self,
        login_id: &str,
        password: Zeroizing<String>,
        actor: &Actor,
        device: Option<&KnownDevice>,
    ) -> Result<Login> {
        let customer = self.store().customer_by_login(login_id).await?;
        let phc = match &customer {
            Some(c) => c.login_password_hash.clone(),
            None => self.dummy_phc().await?,
        };
        let Some(customer) = customer else {
            // Unknown login ID: the same Argon2 work, then the same answer as a wrong password.
            let _ = self.password_ok(password, phc).await?;
            self.audit_now(actor.audit("login_password", "invalid", now_i64(self.now())))
                .await?;
            return Ok(Login::Invalid);
        };
        let check = self
            .throttled_password(
                device.map_or(PasswordPath::Login, |d| PasswordPath::KnownDeviceLogin(*d)),
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
            PasswordPath::Confirmation,
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

    /// A customer by id (`None`: no such customer).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn customer(&self, customer_id: i64) -> Result<Option<crate::store::CustomerRow>> {
        Ok(self.store().customer_by_id(customer_id).await?)
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
}
