//! Issuing a soft token (the internet-banking application, DESIGN §4): one
//! [`Engine::issue_in_tx`] that writes the token, its download link and the mail carrying it,
//! used by the customer's issuance and by a staff reprovision alike.

use zeroize::Zeroizing;

use protocol::UserId;

use crate::domain::issuance::issuance_expires_at;
use crate::domain::{self, fields, DomainError, TokenState};
use crate::store::{NewAudit, NewToken, StoreError, TokenRow, Tx};

use super::{now_i64, Actor, Engine, EngineError, Result};

/// What issuance returns.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Issued {
    pub service_id: String,
    pub user_id: String,
    pub state: TokenState,
    pub expires_at: i64,
}

impl Engine {
    /// Issue a soft token for a customer (the internet-banking application).
    ///
    /// # Errors
    /// Invalid e-mail or activation password, unknown customer, a live token, the next-day rule.
    pub async fn issue_token(
        &self,
        login_id: &str,
        email: &str,
        activation_password: Zeroizing<String>,
        actor: &Actor,
    ) -> Result<Issued> {
        fields::email(email)?;
        fields::activation_password(&activation_password)?;
        let customer = self
            .inner
            .store
            .customer_by_login(login_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        let act_hash = self.activation_credential(activation_password).await?;
        Ok(self
            .issue_hashed(customer.id, email, &act_hash, None, actor)
            .await?
            .0)
    }

    /// Issuance with the activation password already made into its credential
    /// ([`Engine::activation_credential`]; a bare Argon2 hash from before v2 still issues, with
    /// no OPAQUE record) (the screens hash it at the input
    /// step, so the confirm step never holds it). In one transaction: the token, its download
    /// link (code stored hashed) and the mail carrying the link in the outbox. With a
    /// `request_key` (the confirm form's), a repeated request returns the first issuance and
    /// sends nothing more. Returns the issuance and its download URL.
    ///
    /// # Errors
    /// As [`Engine::issue_token`].
    pub async fn issue_hashed(
        &self,
        customer_id: i64,
        email: &str,
        act_hash: &str,
        request_key: Option<&str>,
        actor: &Actor,
    ) -> Result<(Issued, Option<Zeroizing<String>>)> {
        fields::email(email)?;
        if let Some(key) = request_key {
            if let Some(row) = self
                .inner
                .store
                .token_by_request_key(customer_id, key)
                .await?
            {
                return Ok((issued_of(&row)?, None));
            }
        }
        let res = self
            .issue_in_tx(customer_id, email, act_hash, request_key, actor)
            .await;
        match (res, request_key) {
            // A double submit that lost the race to the first: answer with the first.
            (Err(EngineError::Domain(DomainError::LiveTokenExists(_))), Some(key)) => {
                match self
                    .inner
                    .store
                    .token_by_request_key(customer_id, key)
                    .await?
                {
                    Some(row) => Ok((issued_of(&row)?, None)),
                    None => Err(DomainError::LiveTokenExists(TokenState::Issued).into()),
                }
            }
            (res, _) => res.map(|(i, url)| (i, Some(url))),
        }
    }

    async fn issue_in_tx(
        &self,
        customer_id: i64,
        email: &str,
        act_hash: &str,
        request_key: Option<&str>,
        actor: &Actor,
    ) -> Result<(Issued, Zeroizing<String>)> {
        let now = now_i64(self.now());
        let mut tx = self.inner.store.begin().await?;
        let latest = tx.latest_token(customer_id).await?;
        let mut latest_state = None;
        if let Some(row) = &latest {
            latest_state = Some(if self.void_if_ended(&mut tx, row, now).await? {
                (TokenState::Voided, None)
            } else {
                (row.state, row.deactivated_at)
            });
        }
        let customer = tx
            .customer(customer_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?;
        let waived = customer.reissue_waived != 0;
        if let Err(block) = domain::may_issue(latest_state, waived, now) {
            drop(tx);
            self.audit_refusal(
                customer.id,
                None,
                "issue",
                DomainError::from(block).code(),
                actor,
            )
            .await;
            return Err(DomainError::from(block).into());
        }
        let new = self
            .insert_issuance(
                &mut tx,
                customer.id,
                email,
                act_hash,
                actor,
                now,
                waived.then(|| serde_json::json!({ "next_day_rule": "waived" })),
            )
            .await?;
        if let Some(key) = request_key {
            tx.set_token_request_key(new.token_id, key).await?;
        }
        tx.commit().await?;
        Ok((new.issued, new.url))
    }

    /// Void `row` if it is an issuance whose time has passed unprovisioned (DESIGN §4): as
    /// `activation_failures` when its attempts were all spent (the last one's window ended it),
    /// else as `expired`. Returns whether it was voided. Used before a new issuance, by the
    /// customer's and by a staff reprovision.
    pub(crate) async fn void_if_ended(
        &self,
        tx: &mut Tx<'_>,
        row: &TokenRow,
        now: i64,
    ) -> Result<bool> {
        if !domain::issuance_expired(row.state, row.expires_at, now) {
            return Ok(false);
        }
        let spent = row.activation_failures >= i64::from(self.policy().max_activation_failures);
        let reason = if spent {
            "activation_failures"
        } else {
            "expired"
        };
        tx.void(row.id, row.state, reason, now).await?;
        Ok(true)
    }

    /// A new issuance in the caller's transaction, once the caller has applied the next-day
    /// rule: a fresh user ID, the token, its download link and the mail carrying it in the
    /// outbox, the `issue` audit event (with `detail`), and a staff waiver of the next-day rule
    /// spent. Used by the customer's issuance and by a staff reprovision.
    #[allow(clippy::too_many_arguments)] // reason: one issuance's fields, all required
    pub(crate) async fn insert_issuance(
        &self,
        tx: &mut Tx<'_>,
        customer_id: i64,
        email: &str,
        act_hash: &str,
        actor: &Actor,
        now: i64,
        detail: Option<serde_json::Value>,
    ) -> Result<NewIssuance> {
        let params = self.inner.cfg.params;
        let expires_at = issuance_expires_at(now, self.policy().issuance_ttl_days);
        let service_id = self.inner.cfg.service_id.as_str().to_owned();
        let credential = super::credential::ActivationCredential::parse(act_hash)?;
        // The v1 hash is kept only while v1 is served: a credential made while it was (a draft
        // or a staff request waiting across a restart) loses it here, where v2 can set the
        // token up. A bare hash from before v2 is the token's only credential and stays.
        let act_hash = if self.inner.cfg.v1_setup || credential.v2.is_none() {
            credential.phc
        } else {
            ""
        };
        let user_id = match &credential.v2 {
            // The OPAQUE record is bound to the user ID chosen with it. Taken means this very
            // credential was issued already (a double submit that lost the race).
            Some((user_id, _)) => {
                if tx.user_id_taken(user_id.as_str()).await? {
                    return Err(DomainError::LiveTokenExists(TokenState::Issued).into());
                }
                user_id.clone()
            }
            None => {
                let mut user_id = random_user_id()?;
                // 11 random digits: a collision is astronomically rare, but it must not abort
                // the transaction (it would on PostgreSQL), so it is looked for before the
                // insert.
                for _ in 0..8 {
                    if !tx.user_id_taken(user_id.as_str()).await? {
                        break;
                    }
                    user_id = random_user_id()?;
                }
                user_id
            }
        };
        // A staff waiver of the next-day rule is for one issuance: whichever comes next (the
        // customer's, or a staff reissue with a generated password) spends it.
        tx.set_reissue_waived(customer_id, false).await?;
        let token_id = match tx
            .insert_token(&NewToken {
                customer_id,
                user_id: user_id.as_str(),
                service_id: &service_id,
                email,
                algorithm: params.algorithm.as_str(),
                digits: i64::from(params.digits),
                period: i64::from(params.period),
                activation_password_hash: act_hash,
                issued_at: now,
                expires_at,
            })
            .await
        {
            Ok(id) => id,
            // The one live token per customer (a concurrent issuance won).
            Err(StoreError::Conflict(_)) => {
                return Err(DomainError::LiveTokenExists(TokenState::Issued).into())
            }
            Err(e) => return Err(e.into()),
        };
        if let Some((_, record)) = &credential.v2 {
            tx.set_pake_record(token_id, record).await?;
        }
        let url = crate::mail::enqueue_issuance(
            tx,
            &self.inner.cfg.bank,
            &self.inner.cfg.links,
            customer_id,
            token_id,
            email,
            &service_id,
            user_id.as_str(),
            now,
            false,
        )
        .await?;
        // The registered address hears of a token issued to another one (issue 19).
        let registered = tx.customer(customer_id).await?.and_then(|c| c.email);
        if let Some(to) = registered.filter(|r| !r.eq_ignore_ascii_case(email)) {
            crate::mail::enqueue_issued_elsewhere(
                tx,
                &self.inner.cfg.bank,
                customer_id,
                &to,
                email,
                user_id.as_str(),
                now,
            )
            .await?;
        }
        tx.audit(&NewAudit {
            customer_id: Some(customer_id),
            user_id: Some(user_id.as_str()),
            detail: detail.map(|d| d.to_string()),
            ..actor.audit("issue", "ok", now)
        })
        .await?;
        Ok(NewIssuance {
            issued: Issued {
                service_id,
                user_id: user_id.as_str().to_owned(),
                state: TokenState::Issued,
                expires_at,
            },
            token_id,
            url,
        })
    }
}

/// What [`Engine::insert_issuance`] made.
pub(crate) struct NewIssuance {
    pub issued: Issued,
    pub token_id: i64,
    /// The download URL (mailed; returned for the screens' tests and the log).
    pub url: Zeroizing<String>,
}

fn issued_of(row: &crate::store::TokenRow) -> Result<Issued> {
    Ok(Issued {
        service_id: row.service_id.clone(),
        user_id: row.user_id.clone(),
        state: row.state,
        expires_at: row.expires_at,
    })
}

pub(super) fn random_user_id() -> Result<UserId> {
    use rand::Rng;
    // 11 random digits plus the check digit: user IDs cannot be enumerated.
    let serial: u64 = rand::rngs::OsRng.gen_range(10_000_000_000..100_000_000_000);
    Ok(UserId::from_serial(serial)?)
}
