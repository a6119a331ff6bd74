//! Provisioning v2 (issue 18): the deployment's sealed OPAQUE server key, each issuance's
//! registration record, and the started exchanges (sealed state, app nonce, expiry).

use crate::crypto::Sealed;

use super::{Result, Store, Tx};

/// A started exchange as stored: its token and its sealed state (`None` once finished or
/// found expired).
pub struct PakeExchangeRow {
    pub token_id: i64,
    pub sealed: Option<Sealed>,
    pub expires_at: i64,
    /// What the app reported about the device at the start (JSON).
    pub device: String,
}

impl Store {
    /// The deployment's sealed OPAQUE server key, if one was made.
    pub async fn pake_server_key(&self) -> Result<Option<Sealed>> {
        let row: Option<(String, Vec<u8>, i64)> =
            sqlx::query_as("SELECT key_id, key_enc, key_format FROM pake_server_key WHERE id = 1")
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(key_id, blob, format)| Sealed {
            key_id,
            format,
            blob,
        }))
    }

    /// A token's OPAQUE registration record (`None` for a token issued before v2).
    pub async fn pake_record(&self, token_id: i64) -> Result<Option<Vec<u8>>> {
        let row: Option<(Vec<u8>,)> =
            sqlx::query_as("SELECT record FROM pake_records WHERE token_id = $1")
                .bind(token_id)
                .fetch_optional(&self.read)
                .await?;
        Ok(row.map(|(r,)| r))
    }
}

impl Tx<'_> {
    /// Store the deployment's first OPAQUE server key; another process's key, stored first,
    /// wins (read it back with [`Store::pake_server_key`]).
    pub async fn insert_pake_server_key(&mut self, sealed: &Sealed, now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO pake_server_key (id, key_id, key_enc, key_format, created_at) \
             VALUES (1, $1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&sealed.key_id)
        .bind(&sealed.blob)
        .bind(sealed.format)
        .bind(now)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    /// Replace the sealed server key if it is still sealed under `old_key_id` (key rotation).
    pub async fn reseal_pake_server_key(
        &mut self,
        old_key_id: &str,
        sealed: &Sealed,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE pake_server_key SET key_id = $1, key_enc = $2, key_format = $3 \
             WHERE id = 1 AND key_id = $4",
        )
        .bind(&sealed.key_id)
        .bind(&sealed.blob)
        .bind(sealed.format)
        .bind(old_key_id)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Clear the v1 activation-password hash of every token still awaiting setup that has an
    /// OPAQUE record (v2 sets it up without the hash). Driven by the records' table, which
    /// holds issuances only. Returns how many were cleared.
    pub async fn drop_v1_hashes_of_v2_issuances(&mut self) -> Result<u64> {
        Ok(sqlx::query(
            "UPDATE tokens SET activation_password_hash = '' \
             WHERE id IN (SELECT token_id FROM pake_records) \
             AND state IN ('issued', 'link_opened') AND activation_password_hash <> ''",
        )
        .execute(&mut *self.0)
        .await?
        .rows_affected())
    }

    pub async fn set_pake_record(&mut self, token_id: i64, record: &[u8]) -> Result<()> {
        sqlx::query("INSERT INTO pake_records (token_id, record) VALUES ($1, $2)")
            .bind(token_id)
            .bind(record)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    /// Whether this token has already started an exchange with this app nonce.
    pub async fn pake_nonce_seen(&mut self, token_id: i64, app_nonce: &str) -> Result<bool> {
        let row: Option<(i64,)> =
            sqlx::query_as("SELECT 1 FROM pake_exchanges WHERE token_id = $1 AND app_nonce = $2")
                .bind(token_id)
                .bind(app_nonce)
                .fetch_optional(&mut *self.0)
                .await?;
        Ok(row.is_some())
    }

    /// Record a started exchange. Returns `false` if this token already saw `app_nonce` (a
    /// concurrent replay): the caller rolls back, and the attempt it counted with it.
    #[allow(clippy::too_many_arguments)] // reason: one row's columns
    pub async fn insert_pake_exchange(
        &mut self,
        exchange_id: &str,
        token_id: i64,
        app_nonce: &str,
        sealed: &Sealed,
        device: &str,
        now: i64,
        expires_at: i64,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "INSERT INTO pake_exchanges \
             (exchange_id, token_id, app_nonce, key_id, state_enc, state_format, device, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
        )
        .bind(exchange_id)
        .bind(token_id)
        .bind(app_nonce)
        .bind(&sealed.key_id)
        .bind(&sealed.blob)
        .bind(sealed.format)
        .bind(device)
        .bind(now)
        .bind(expires_at)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// Take an exchange's sealed state, once: it is cleared in the same transaction, so two
    /// finishes of one exchange cannot both get it.
    pub async fn take_pake_exchange(
        &mut self,
        exchange_id: &str,
    ) -> Result<Option<PakeExchangeRow>> {
        type Row = (
            i64,
            Option<String>,
            Option<Vec<u8>>,
            Option<i64>,
            i64,
            String,
        );
        let row: Option<Row> = sqlx::query_as(
            "SELECT token_id, key_id, state_enc, state_format, expires_at, device FROM pake_exchanges \
             WHERE exchange_id = $1",
        )
        .bind(exchange_id)
        .fetch_optional(&mut *self.0)
        .await?;
        let Some((token_id, key_id, blob, format, expires_at, device)) = row else {
            return Ok(None);
        };
        let cleared = sqlx::query(
            "UPDATE pake_exchanges SET key_id = NULL, state_enc = NULL, state_format = NULL \
             WHERE exchange_id = $1 AND state_enc IS NOT NULL",
        )
        .bind(exchange_id)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1;
        let sealed = match (cleared, key_id, blob, format) {
            (true, Some(key_id), Some(blob), Some(format)) => Some(Sealed {
                key_id,
                format,
                blob,
            }),
            _ => None,
        };
        Ok(Some(PakeExchangeRow {
            token_id,
            sealed,
            expires_at,
            device,
        }))
    }

    /// Clear the state of this token's exchanges that have expired; returns how many of its
    /// exchanges are still open (unfinished and not expired).
    pub async fn expire_pake_exchanges(&mut self, token_id: i64, now: i64) -> Result<i64> {
        sqlx::query(
            "UPDATE pake_exchanges SET key_id = NULL, state_enc = NULL, state_format = NULL \
             WHERE token_id = $1 AND expires_at <= $2 AND state_enc IS NOT NULL",
        )
        .bind(token_id)
        .bind(now)
        .execute(&mut *self.0)
        .await?;
        let (open,): (i64,) = sqlx::query_as(
            "SELECT COUNT(*) FROM pake_exchanges WHERE token_id = $1 AND state_enc IS NOT NULL",
        )
        .bind(token_id)
        .fetch_one(&mut *self.0)
        .await?;
        Ok(open)
    }

    /// The user ID of the token with this row id.
    pub async fn user_id_of(&mut self, token_id: i64) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT user_id FROM tokens WHERE id = $1")
            .bind(token_id)
            .fetch_optional(&mut *self.0)
            .await?;
        Ok(row.map(|(u,)| u))
    }

    /// Give back an activation attempt counted by [`Tx::count_activation_attempt`] (an
    /// exchange that proved the password).
    pub async fn release_activation_attempt(&mut self, token_id: i64) -> Result<()> {
        sqlx::query(
            "UPDATE tokens SET activation_failures = activation_failures - 1 \
             WHERE id = $1 AND activation_failures > 0",
        )
        .bind(token_id)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }
}
