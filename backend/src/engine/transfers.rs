//! Transfers (振込): recorded once per request key under a unique reference, with their audit
//! event (which carries the reference to the staff timeline). The caller has checked the
//! confirmation password and, while OTP is in use, the code.

use crate::domain::transfer;
use crate::store::{NewAudit, StoreError, TransferRow};

use super::{now_i64, Actor, Engine, EngineError, Result};

/// A recorded transfer.
#[derive(Debug, Clone)]
pub struct TransferDone {
    pub id: i64,
    /// What the customer and staff are shown: `20261126-7F3K9Q` (`domain::transfer`).
    pub reference: String,
    pub payee: String,
    pub amount: i64,
    /// False when this request key had already recorded the transfer (a double submit).
    pub new: bool,
}

impl From<TransferRow> for TransferDone {
    fn from(t: TransferRow) -> Self {
        TransferDone {
            id: t.id,
            reference: t.reference.unwrap_or_default(),
            payee: t.payee,
            amount: t.amount,
            new: false,
        }
    }
}

/// New references drawn for one transfer before giving up: with about a billion a day, a
/// second draw is already rare.
const REFERENCE_TRIES: usize = 8;

impl Engine {
    /// Whether the customer has transferred to this payee before (a new payee asks for more:
    /// a メール通知パスワード, or transaction authentication).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn payee_used(&self, customer_id: i64, payee: &str) -> Result<bool> {
        Ok(self.store().payee_used(customer_id, payee).await?)
    }

    /// Record a transfer once per request key (the confirm form's), in one transaction with its
    /// audit event, under a new reference (`domain::transfer`; drawn again if the database
    /// already has it). The caller has checked the confirmation password and, when OTP is
    /// active, the code.
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
            return Ok(t.into());
        }
        let now = now_i64(self.now());
        for _ in 0..REFERENCE_TRIES {
            let reference = transfer::new_reference(now, &mut rand::rngs::OsRng);
            let mut tx = self.store().begin().await?;
            let id = match tx
                .insert_transfer(
                    customer_id,
                    request_key,
                    &reference,
                    payee,
                    amount,
                    user_id,
                    now,
                )
                .await
            {
                Ok(id) => id,
                Err(StoreError::Conflict(_)) => {
                    // The request key (a double submit: show the first) or the reference (taken:
                    // draw another). A failed statement ends a PostgreSQL transaction, so each
                    // try has its own.
                    drop(tx);
                    if let Some(t) = self.store().transfer_by_key(request_key).await? {
                        return Ok(t.into());
                    }
                    tracing::warn!("transfer reference collision; drawing another");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            tx.audit(&NewAudit {
                customer_id: Some(customer_id),
                user_id,
                detail: Some(
                    serde_json::json!({
                        "reference": reference,
                        "transfer_id": id,
                        "amount": amount,
                    })
                    .to_string(),
                ),
                ..actor.audit("transfer", "ok", now)
            })
            .await?;
            tx.commit().await?;
            return Ok(TransferDone {
                id,
                reference,
                payee: payee.to_owned(),
                amount,
                new: true,
            });
        }
        tracing::error!(
            tries = REFERENCE_TRIES,
            "no free transfer reference; transfer not recorded"
        );
        Err(EngineError::Unavailable)
    }

    /// Whether the request key already recorded a transfer.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn transfer_recorded(&self, request_key: &str) -> Result<bool> {
        Ok(self.store().transfer_by_key(request_key).await?.is_some())
    }
}
