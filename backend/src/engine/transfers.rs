//! Transfers (振込): recorded once per request key, with their audit event. The caller has
//! checked the confirmation password and, while OTP is in use, the code.

use crate::store::{NewAudit, StoreError};

use super::{now_i64, Actor, Engine, EngineError, Result};

/// A recorded transfer.
#[derive(Debug, Clone)]
pub struct TransferDone {
    pub id: i64,
    pub payee: String,
    pub amount: i64,
    /// False when this request key had already recorded the transfer (a double submit).
    pub new: bool,
}

impl Engine {
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
            customer_id: Some(customer_id),
            user_id,
            detail: Some(serde_json::json!({ "transfer_id": id, "amount": amount }).to_string()),
            ..actor.audit("transfer", "ok", now)
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
