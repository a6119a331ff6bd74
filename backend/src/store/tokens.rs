//! Tokens: the lifecycle row, verification state (one compare-and-set per batch), the
//! sealed secret and the activation attempts.

use std::collections::HashSet;

use sqlx::FromRow;

use crate::crypto::Sealed;
use crate::domain::TokenState;

use super::{Result, Store, Tx};

/// A token row. No `Debug`: it carries the sealed secret and a password hash.
#[derive(Clone, FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub customer_id: i64,
    pub user_id: String,
    pub service_id: String,
    /// Typed: a row whose state the code does not know (a corrupt row) fails to read.
    #[sqlx(try_from = "String")]
    pub state: TokenState,
    pub email: String,
    pub algorithm: String,
    pub digits: i64,
    pub period: i64,
    pub secret_key_id: Option<String>,
    pub secret_enc: Option<Vec<u8>>,
    pub secret_format: Option<i64>,
    pub activation_password_hash: String,
    pub activation_failures: i64,
    pub issued_at: i64,
    pub expires_at: i64,
    pub link_opened_at: Option<i64>,
    pub provisioned_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub deactivated_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub voided_at: Option<i64>,
    pub void_reason: Option<String>,
    pub last_step: i64,
    pub drift: i64,
    pub failures: i64,
    pub locked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub device: Option<String>,
    /// The last accepted transaction-authentication step (-1: none yet).
    pub last_tx_step: i64,
}

impl TokenRow {
    pub fn sealed(&self) -> Option<Sealed> {
        Some(Sealed {
            key_id: self.secret_key_id.clone()?,
            format: self.secret_format?,
            blob: self.secret_enc.clone()?,
        })
    }
}

/// A token's verification state to write, and what it must still be for the write to hold.
pub struct TokenUpdate {
    pub id: i64,
    pub last_step: i64,
    pub last_tx_step: i64,
    pub drift: i64,
    pub failures: i64,
    pub locked_at: Option<i64>,
    pub state: TokenState,
    pub last_used_at: Option<i64>,
    pub activated_at: Option<i64>,
    pub deactivated_at: Option<i64>,
    pub expect_last_step: i64,
    pub expect_last_tx_step: i64,
    pub expect_failures: i64,
    pub expect_state: TokenState,
    pub expect_locked_at: Option<i64>,
}

pub struct NewToken<'a> {
    pub customer_id: i64,
    pub user_id: &'a str,
    pub service_id: &'a str,
    pub email: &'a str,
    pub algorithm: &'a str,
    pub digits: i64,
    pub period: i64,
    pub activation_password_hash: &'a str,
    pub issued_at: i64,
    pub expires_at: i64,
}

pub(super) const TOKEN_COLUMNS: &str = "id, customer_id, user_id, service_id, state, email, algorithm, digits, \
    period, secret_key_id, secret_enc, secret_format, activation_password_hash, activation_failures, \
    issued_at, expires_at, link_opened_at, provisioned_at, activated_at, deactivated_at, revoked_at, \
    voided_at, void_reason, last_step, drift, failures, locked_at, last_used_at, device, last_tx_step";

/// The compare-and-set of one token's verification state, for the SQLite batch writer's
/// prepared statement: the same conditions as [`Tx::apply_token_updates`]'s multi-row form
/// (every column the decision read must still be as read).
pub(super) const UPDATE_TOKEN_IF_UNCHANGED: &str = "UPDATE tokens SET last_step = ?1, drift = ?2, \
    failures = ?3, locked_at = ?4, state = ?5, last_used_at = ?6, activated_at = ?7, \
    deactivated_at = ?8, last_tx_step = ?9 \
    WHERE id = ?10 AND last_step = ?11 AND failures = ?12 AND state = ?13 AND locked_at IS ?14 \
    AND last_tx_step = ?15";

/// The same compare-and-set when the decision keeps the token's state (nearly every
/// verification): `state` is not written (`?5` is bound and unused). SQLite rewrites the entries
/// of every index whose columns or `WHERE` an `UPDATE` sets, even to the same value, and the
/// partial index `tokens_one_live` has `state` in its `WHERE`: writing it cost one more page of
/// the log per verification (about a third of the token's frames, measured).
pub(super) const UPDATE_TOKEN_SAME_STATE_IF_UNCHANGED: &str = "UPDATE tokens SET last_step = ?1, \
    drift = ?2, failures = ?3, locked_at = ?4, last_used_at = ?6, activated_at = ?7, \
    deactivated_at = ?8, last_tx_step = ?9 \
    WHERE id = ?10 AND last_step = ?11 AND failures = ?12 AND state = ?13 AND locked_at IS ?14 \
    AND last_tx_step = ?15";

impl Store {
    pub async fn token_by_user_id(&self, user_id: &str) -> Result<Option<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// The customer's newest token, if any.
    pub async fn latest_token(&self, customer_id: i64) -> Result<Option<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE customer_id = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(customer_id)
        .fetch_optional(&self.read)
        .await?)
    }
}

impl Tx<'_> {
    /// Read the rows of `user_ids` with one SELECT, without a lock: the write that follows is
    /// a compare-and-set ([`Tx::apply_token_updates`]), so a row changed meanwhile is simply
    /// not written. (The PostgreSQL batch has its own two statements: `store/writer.rs`.)
    ///
    /// # Errors
    /// Database unavailable.
    pub async fn read_tokens(&mut self, user_ids: &[&str]) -> Result<Vec<TokenRow>> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> =
            (1..=user_ids.len()).map(|i| self.1.kind.param(i)).collect();
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_id IN ({}) ORDER BY id",
            placeholders.join(", ")
        );
        let mut q = sqlx::query_as::<_, TokenRow>(&sql);
        for u in user_ids {
            q = q.bind(*u);
        }
        Ok(q.fetch_all(&mut *self.0).await?)
    }

    /// Write the verification state of many tokens with one statement, each only if its row
    /// is still exactly as read (last step, failures, state, lock): a compare-and-set, so a
    /// step accepted elsewhere meanwhile can never be accepted again here. Returns the ids
    /// that were written.
    ///
    /// # Errors
    /// Database unavailable.
    pub async fn apply_token_updates(&mut self, updates: &[TokenUpdate]) -> Result<HashSet<i64>> {
        const COLS: usize = 15;
        let mut landed = HashSet::new();
        for chunk in updates.chunks(256) {
            let mut values = Vec::with_capacity(chunk.len());
            for i in 0..chunk.len() {
                let b = i * COLS;
                let p = |k: usize| self.1.kind.param(b + k);
                let text = [6, 12];
                let cols: Vec<String> = (1..=COLS)
                    .map(|k| {
                        let ty = if text.contains(&k) { "TEXT" } else { "BIGINT" };
                        format!("CAST({} AS {ty})", p(k))
                    })
                    .collect();
                values.push(format!("({})", cols.join(", ")));
            }
            // NULLs travel as -1 (no stored time or step is negative) so every value has a type.
            // The transaction step is compared too: the same compare-and-set makes a
            // transaction code as single-use as a TOTP code.
            let sql = format!(
                "WITH v(v_id, v_last_step, v_drift, v_failures, v_locked_at, v_state, v_last_used_at, \
                        v_activated_at, v_deactivated_at, x_last_step, x_failures, x_state, x_locked_at, \
                        v_last_tx_step, x_last_tx_step) \
                 AS (VALUES {}) \
                 UPDATE tokens SET last_step = v_last_step, drift = v_drift, failures = v_failures, \
                    locked_at = NULLIF(v_locked_at, -1), state = v_state, \
                    last_used_at = NULLIF(v_last_used_at, -1), activated_at = NULLIF(v_activated_at, -1), \
                    deactivated_at = NULLIF(v_deactivated_at, -1), last_tx_step = v_last_tx_step \
                 FROM v \
                 WHERE id = v_id AND last_step = x_last_step AND failures = x_failures \
                   AND state = x_state AND COALESCE(locked_at, -1) = x_locked_at \
                   AND last_tx_step = x_last_tx_step \
                 RETURNING id",
                values.join(", ")
            );
            let mut q = sqlx::query_as::<_, (i64,)>(&sql);
            for u in chunk {
                q = q
                    .bind(u.id)
                    .bind(u.last_step)
                    .bind(u.drift)
                    .bind(u.failures)
                    .bind(u.locked_at.unwrap_or(-1))
                    .bind(u.state.as_str())
                    .bind(u.last_used_at.unwrap_or(-1))
                    .bind(u.activated_at.unwrap_or(-1))
                    .bind(u.deactivated_at.unwrap_or(-1))
                    .bind(u.expect_last_step)
                    .bind(u.expect_failures)
                    .bind(u.expect_state.as_str())
                    .bind(u.expect_locked_at.unwrap_or(-1))
                    .bind(u.last_tx_step)
                    .bind(u.expect_last_tx_step);
            }
            for (id,) in q.fetch_all(&mut *self.0).await? {
                landed.insert(id);
            }
        }
        Ok(landed)
    }

    pub async fn token(&mut self, user_id: &str) -> Result<Option<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE user_id = $1"
        ))
        .bind(user_id)
        .fetch_optional(&mut *self.0)
        .await?)
    }

    pub async fn latest_token(&mut self, customer_id: i64) -> Result<Option<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE customer_id = $1 ORDER BY id DESC LIMIT 1"
        ))
        .bind(customer_id)
        .fetch_optional(&mut *self.0)
        .await?)
    }

    /// Whether a token (of any state) has this user ID.
    pub async fn user_id_taken(&mut self, user_id: &str) -> Result<bool> {
        let row: Option<(i64,)> = sqlx::query_as("SELECT id FROM tokens WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&mut *self.0)
            .await?;
        Ok(row.is_some())
    }

    /// # Errors
    /// [`StoreError::Conflict`] on a duplicate user ID or a second live token.
    pub async fn insert_token(&mut self, t: &NewToken<'_>) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO tokens (customer_id, user_id, service_id, state, email, algorithm, digits, period, \
             activation_password_hash, issued_at, expires_at) \
             VALUES ($1, $2, $3, 'issued', $4, $5, $6, $7, $8, $9, $10) RETURNING id",
        )
        .bind(t.customer_id)
        .bind(t.user_id)
        .bind(t.service_id)
        .bind(t.email)
        .bind(t.algorithm)
        .bind(t.digits)
        .bind(t.period)
        .bind(t.activation_password_hash)
        .bind(t.issued_at)
        .bind(t.expires_at)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(id)
    }

    /// Move a token from `from` to `to`, stamping `stamp_column` with `now`, only if it is still
    /// in `from`. Returns whether it moved (false: someone else changed it first).
    pub async fn set_state(
        &mut self,
        token_id: i64,
        from: TokenState,
        to: TokenState,
        stamp_column: Option<&'static str>,
        now: i64,
    ) -> Result<bool> {
        let stamp = match stamp_column {
            Some(col) => format!(", {col} = $4"),
            None => String::new(),
        };
        let sql = format!("UPDATE tokens SET state = $1{stamp} WHERE id = $2 AND state = $3");
        let mut q = sqlx::query(&sql)
            .bind(to.as_str())
            .bind(token_id)
            .bind(from.as_str());
        if stamp_column.is_some() {
            q = q.bind(now);
        }
        Ok(q.execute(&mut *self.0).await?.rows_affected() == 1)
    }

    pub async fn void(
        &mut self,
        token_id: i64,
        from: TokenState,
        reason: &str,
        now: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE tokens SET state = 'voided', voided_at = $1, void_reason = $2, activation_password_hash = '' \
             WHERE id = $3 AND state = $4",
        )
        .bind(now)
        .bind(reason)
        .bind(token_id)
        .bind(from.as_str())
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Store the sealed secret and the device, moving link_opened → provisioned, once.
    pub async fn provision(
        &mut self,
        token_id: i64,
        sealed: &Sealed,
        device: &str,
        now: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE tokens SET state = 'provisioned', secret_key_id = $1, secret_enc = $2, secret_format = $3, \
             device = $4, provisioned_at = $5, activation_password_hash = '' WHERE id = $6 AND state = 'link_opened' AND secret_enc IS NULL",
        )
        .bind(&sealed.key_id)
        .bind(&sealed.blob)
        .bind(sealed.format)
        .bind(device)
        .bind(now)
        .bind(token_id)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Count an activation-password attempt before the password is checked, only if the
    /// count is still `seen` and the token still awaits setup. Returns whether it was counted.
    pub async fn count_activation_attempt(&mut self, token_id: i64, seen: i64) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE tokens SET activation_failures = activation_failures + 1 \
             WHERE id = $1 AND activation_failures = $2 AND state = 'link_opened'",
        )
        .bind(token_id)
        .bind(seen)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Lift a lock. Returns whether the token was locked.
    pub async fn unlock(&mut self, token_id: i64) -> Result<bool> {
        Ok(sqlx::query("UPDATE tokens SET locked_at = NULL, failures = 0 WHERE id = $1 AND locked_at IS NOT NULL")
            .bind(token_id)
            .execute(&mut *self.0)
            .await?
            .rows_affected()
            == 1)
    }
}
