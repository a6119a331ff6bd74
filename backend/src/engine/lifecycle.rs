//! Lifecycle events that need no code (DESIGN §4): opening the mailed link, revoking,
//! unlocking, and the token's status.

use protocol::UserId;

use crate::domain::{self, fields, DomainError, Event, TokenState};
use crate::mail::link_code_hash;
use crate::store::{NewAudit, Tx};

use super::{now_i64, status_of, Actor, Engine, EngineError, Result, TokenStatus};

/// What the download page shows.
#[derive(Debug, Clone)]
pub struct LinkOpened {
    pub service_id: String,
    pub user_id: String,
    /// This request was the link's first opening.
    pub first: bool,
}

impl Engine {
    /// The token's status.
    ///
    /// # Errors
    /// A malformed or unknown user ID.
    pub async fn token_status(&self, user_id: &str) -> Result<TokenStatus> {
        let user_id = UserId::parse(user_id)?;
        let row = self
            .inner
            .store
            .token_by_user_id(user_id.as_str())
            .await?
            .ok_or(DomainError::UnknownToken)?;
        status_of(&row, &self.inner.cfg.policy, now_i64(self.now()))
    }

    /// Apply a plain lifecycle event (no code involved) in one transaction with its audit event.
    async fn apply_event(
        &self,
        user_id: &str,
        event: Event,
        actor: &Actor,
        reason: Option<&str>,
    ) -> Result<TokenStatus> {
        let user_id = UserId::parse(user_id)?;
        let now = now_i64(self.now());
        let mut tx = self.inner.store.begin().await?;
        let detail = reason.map(|r| serde_json::json!({ "reason": r }));
        match self
            .event_in_tx(&mut tx, user_id.as_str(), event, actor, detail, now)
            .await
        {
            Ok(()) => {}
            Err(EventRefused { customer_id, error }) => {
                drop(tx);
                if let (Some(customer_id), EngineError::Domain(d)) = (customer_id, &error) {
                    self.audit_refusal(
                        customer_id,
                        Some(user_id.as_str()),
                        event.as_str(),
                        d.code(),
                        actor,
                    )
                    .await;
                }
                return Err(error);
            }
        }
        tx.commit().await?;
        self.token_status(user_id.as_str()).await
    }

    /// A lifecycle event in the caller's transaction: the token read, the transition checked
    /// (`domain::transition`), the state moved only if it is still what was read, and the
    /// audit event written. Used alone ([`Engine::apply_event`]) and inside staff actions.
    pub(crate) async fn event_in_tx(
        &self,
        tx: &mut Tx<'_>,
        user_id: &str,
        event: Event,
        actor: &Actor,
        detail: Option<serde_json::Value>,
        now: i64,
    ) -> std::result::Result<(), EventRefused> {
        let refused = |customer_id, error| EventRefused { customer_id, error };
        let row = tx
            .token(user_id)
            .await
            .map_err(|e| refused(None, e.into()))?
            .ok_or_else(|| refused(None, DomainError::UnknownToken.into()))?;
        let state = row.state;
        if event == Event::OpenLink && domain::issuance_expired(state, row.expires_at, now) {
            return Err(refused(None, EngineError::IssuanceExpired));
        }
        let next = domain::transition(state, event)
            .map_err(|e| refused(Some(row.customer_id), e.into()))?;
        let stamp = match event {
            Event::OpenLink if row.link_opened_at.is_none() => Some("link_opened_at"),
            Event::Revoke => Some("revoked_at"),
            Event::Deactivate => Some("deactivated_at"),
            Event::Void => Some("voided_at"),
            _ => None,
        };
        let moved = tx
            .set_state(row.id, state, next, stamp, now)
            .await
            .map_err(|e| refused(None, e.into()))?;
        if !moved {
            return Err(refused(None, EngineError::Stale));
        }
        tx.audit(&NewAudit {
            customer_id: Some(row.customer_id),
            user_id: Some(user_id),
            detail: detail.map(|d| d.to_string()),
            ..actor.audit(event.as_str(), "ok", now)
        })
        .await
        .map_err(|e| refused(None, e.into()))?;
        Ok(())
    }

    /// Record that the mailed download link was opened (DESIGN §4: setup is refused before).
    ///
    /// # Errors
    /// Unknown token, expired issuance, or a token past this stage.
    pub async fn open_link(&self, user_id: &str, actor: &Actor) -> Result<TokenStatus> {
        self.apply_event(user_id, Event::OpenLink, actor, None)
            .await
    }

    /// Staff revoke (lost or stolen phone): the token stops verifying at once.
    ///
    /// # Errors
    /// Unknown token or a token that is not live.
    pub async fn revoke(&self, user_id: &str, actor: &Actor, reason: &str) -> Result<TokenStatus> {
        self.apply_event(user_id, Event::Revoke, actor, Some(reason))
            .await
    }

    /// Lift a lock (staff, or the host on staff's behalf).
    ///
    /// # Errors
    /// A missing reason (`fields::reason`), an unknown token, or `NOT_LOCKED` (a conflict).
    pub async fn unlock(&self, user_id: &str, actor: &Actor, reason: &str) -> Result<TokenStatus> {
        let reason = fields::reason(reason)?;
        let user_id = UserId::parse(user_id)?;
        let now = now_i64(self.now());
        let mut tx = self.inner.store.begin().await?;
        let row = tx
            .token(user_id.as_str())
            .await?
            .ok_or(DomainError::UnknownToken)?;
        if !tx.unlock(row.id).await? {
            return Err(EngineError::Conflict {
                code: "NOT_LOCKED",
                message: "the token is not locked",
            });
        }
        tx.audit(&NewAudit {
            customer_id: Some(row.customer_id),
            user_id: Some(user_id.as_str()),
            detail: Some(serde_json::json!({ "reason": reason }).to_string()),
            ..actor.audit("unlock", "ok", now)
        })
        .await?;
        tx.commit().await?;
        self.token_status(user_id.as_str()).await
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
}

/// A refused lifecycle event, with the customer when the refusal is the domain's (audited).
pub(crate) struct EventRefused {
    pub customer_id: Option<i64>,
    pub error: EngineError,
}

impl From<EventRefused> for EngineError {
    fn from(r: EventRefused) -> Self {
        r.error
    }
}
