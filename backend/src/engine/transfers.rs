//! Transfers (振込): recorded once per request key under a unique reference, within the daily
//! limit, with their audit event (which carries the reference, the payee account and whether
//! transaction authentication was used to the staff timeline), registering the payee. The
//! caller has checked the confirmation password and, while OTP is in use, the code (a
//! transaction code when `TransferRules::transaction_auth` asks for one).

use crate::domain::transfer::{self, LimitBreach, PayeeAccount};
use crate::store::{NewAudit, NewTransfer, PayeeRow, StoreError, TransferRow};

use super::{now_i64, Actor, Engine, EngineError, Result};

/// A recorded transfer.
#[derive(Debug, Clone)]
pub struct TransferDone {
    pub id: i64,
    /// What the customer and staff are shown: `20261126-7F3K9Q` (`domain::transfer`).
    pub reference: String,
    pub payee: String,
    pub amount: i64,
    /// Whether the account was new to the customer.
    pub new_payee: bool,
    /// Whether a transaction code (取引認証) authenticated it.
    pub transaction_auth: bool,
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
            new_payee: t.new_payee != 0,
            transaction_auth: t.tx_digest.is_some(),
            new: false,
        }
    }
}

/// New references drawn for one transfer before giving up: with about a billion a day, a
/// second draw is already rare.
const REFERENCE_TRIES: usize = 8;

/// A transfer to record (the caller has authenticated it).
pub struct TransferRequest<'a> {
    pub customer_id: i64,
    /// The confirm form's key: a second submit finds the first transfer.
    pub request_key: &'a str,
    pub payee: &'a PayeeAccount,
    pub amount: i64,
    /// The token that authenticated it, if OTP is in use.
    pub user_id: Option<&'a str>,
    pub new_payee: bool,
    /// The digest of the transaction a transaction code authenticated.
    pub tx_digest: Option<&'a str>,
}

impl Engine {
    /// The transfer rules of the configuration (limits and the transaction-authentication
    /// policy).
    pub fn transfer_rules(&self) -> &transfer::TransferRules {
        &self.config().transfers
    }

    /// Whether the customer has not transferred to this account before (a new payee asks for
    /// more: a メール通知パスワード, or transaction authentication).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn payee_is_new(&self, customer_id: i64, payee: &PayeeAccount) -> Result<bool> {
        Ok(self
            .store()
            .payee_by_account(customer_id, payee)
            .await?
            .is_none())
    }

    /// The customer's registered payees, most recently used first.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn payees(&self, customer_id: i64) -> Result<Vec<PayeeRow>> {
        Ok(self.store().payees(customer_id).await?)
    }

    /// The transfer limits (`TransferRules::check`) for `amount` against the customer's
    /// transfers today (Asia/Tokyo), for the input screen; [`Engine::record_transfer`] checks
    /// again atomically.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn check_transfer_amount(
        &self,
        customer_id: i64,
        amount: i64,
    ) -> Result<std::result::Result<(), LimitBreach>> {
        let spent = self.transferred_today(customer_id).await?;
        Ok(self.transfer_rules().check(amount, spent))
    }

    /// Yen the customer may still transfer today (Asia/Tokyo).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn daily_allowance(&self, customer_id: i64) -> Result<i64> {
        let spent = self.transferred_today(customer_id).await?;
        Ok(self.transfer_rules().daily_left(spent))
    }

    /// A read, not a write transaction: on SQLite `begin` takes the one writer's lock.
    async fn transferred_today(&self, customer_id: i64) -> Result<i64> {
        let since = transfer::tokyo_day_start(now_i64(self.now()));
        Ok(self.store().transferred_since(customer_id, since).await?)
    }

    /// Record a transfer once per request key (the confirm form's), in one transaction with its
    /// audit event and the payee's registration, under a new reference (`domain::transfer`;
    /// drawn again if the database already has it), only within the day's limit.
    ///
    /// # Errors
    /// `TRANSFER_LIMIT` or `DAILY_LIMIT` when the amount breaks a limit
    /// (`TransferRules::check`); the database is unavailable.
    pub async fn record_transfer(
        &self,
        t: &TransferRequest<'_>,
        actor: &Actor,
    ) -> Result<TransferDone> {
        if let Some(row) = self.store().transfer_by_key(t.request_key).await? {
            return Ok(row.into());
        }
        let now = now_i64(self.now());
        let since = transfer::tokyo_day_start(now);
        for _ in 0..REFERENCE_TRIES {
            let reference = transfer::new_reference(now, &mut rand::rngs::OsRng);
            let mut tx = self.store().begin().await?;
            let total = tx.transferred_since(t.customer_id, since).await?;
            match self.transfer_rules().check(t.amount, total) {
                Ok(()) => {}
                Err(LimitBreach::PerTransfer) => {
                    return Err(EngineError::Invalid {
                        field: "amount",
                        code: "TRANSFER_LIMIT",
                        message: "the amount is outside the per-transfer limit".into(),
                    })
                }
                Err(LimitBreach::Daily { .. }) => {
                    return Err(EngineError::Invalid {
                        field: "amount",
                        code: "DAILY_LIMIT",
                        message: "the transfer would pass the daily limit".into(),
                    })
                }
            }
            let id = match tx
                .insert_transfer(&NewTransfer {
                    customer_id: t.customer_id,
                    request_key: t.request_key,
                    reference: &reference,
                    payee: t.payee,
                    amount: t.amount,
                    user_id: t.user_id,
                    new_payee: t.new_payee,
                    tx_digest: t.tx_digest,
                    now,
                })
                .await
            {
                Ok(id) => id,
                Err(StoreError::Conflict(_)) => {
                    // The request key (a double submit: show the first) or the reference (taken:
                    // draw another). A failed statement ends a PostgreSQL transaction, so each
                    // try has its own.
                    drop(tx);
                    if let Some(row) = self.store().transfer_by_key(t.request_key).await? {
                        return Ok(row.into());
                    }
                    tracing::warn!("transfer reference collision; drawing another");
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            tx.register_payee(t.customer_id, t.payee, now).await?;
            tx.audit(&NewAudit {
                customer_id: Some(t.customer_id),
                user_id: t.user_id,
                detail: Some(
                    serde_json::json!({
                        "reference": reference,
                        "transfer_id": id,
                        "amount": t.amount,
                        "payee": {
                            "bank_code": t.payee.bank_code,
                            "branch_code": t.payee.branch_code,
                            "account_type": t.payee.account_type,
                            "account_number": t.payee.account_number,
                            "name": t.payee.name,
                        },
                        "new_payee": t.new_payee,
                        "transaction_auth": t.tx_digest.is_some(),
                        "transaction": t.tx_digest,
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
                payee: t.payee.name.clone(),
                amount: t.amount,
                new_payee: t.new_payee,
                transaction_auth: t.tx_digest.is_some(),
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
