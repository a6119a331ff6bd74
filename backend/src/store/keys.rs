//! Master keys in use: which key sealed which secrets, key check values, re-sealing.

use crate::crypto::Sealed;

use super::{tokens::TOKEN_COLUMNS, DbKind, Result, Store, TokenRow, Tx};

impl Store {
    /// Key ids that seal at least one secret (a token's, a staff member's second factor, or the
    /// OPAQUE server key), with how many.
    pub async fn keys_in_use(&self) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT k, COUNT(*) FROM ( \
               SELECT secret_key_id AS k FROM tokens WHERE secret_key_id IS NOT NULL \
               UNION ALL SELECT totp_key_id AS k FROM staff WHERE totp_key_id IS NOT NULL \
               UNION ALL SELECT key_id AS k FROM pake_server_key \
             ) s GROUP BY k ORDER BY k",
        )
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn key_checks(&self) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(
            sqlx::query_as("SELECT key_id, check_enc FROM master_keys ORDER BY key_id")
                .fetch_all(&self.read)
                .await?,
        )
    }

    /// Up to `limit` tokens whose secret is sealed under a key other than `key_id`.
    pub async fn tokens_not_under_key(&self, key_id: &str, limit: i64) -> Result<Vec<TokenRow>> {
        Ok(sqlx::query_as::<_, TokenRow>(&format!(
            "SELECT {TOKEN_COLUMNS} FROM tokens WHERE secret_key_id IS NOT NULL AND secret_key_id <> $1 \
             ORDER BY id LIMIT $2"
        ))
        .bind(key_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }
}

impl Tx<'_> {
    /// Replace a token's sealed secret if it is still sealed under `old_key_id`.
    pub async fn reseal(
        &mut self,
        token_id: i64,
        old_key_id: &str,
        sealed: &Sealed,
    ) -> Result<bool> {
        Ok(sqlx::query(
            "UPDATE tokens SET secret_key_id = $1, secret_enc = $2, secret_format = $3 \
             WHERE id = $4 AND secret_key_id = $5",
        )
        .bind(&sealed.key_id)
        .bind(&sealed.blob)
        .bind(sealed.format)
        .bind(token_id)
        .bind(old_key_id)
        .execute(&mut *self.0)
        .await?
        .rows_affected()
            == 1)
    }

    /// The newest master key the database knows: the one every new secret must be sealed
    /// under (a rotation records it before it re-seals anything).
    pub async fn newest_key_id(&mut self) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(
            "SELECT key_id FROM master_keys ORDER BY created_at DESC, key_id DESC LIMIT 1",
        )
        .fetch_optional(&mut *self.0)
        .await?;
        Ok(row.map(|(k,)| k))
    }

    /// Record a key's check value the first time a process makes it current. Its time is
    /// after every key's before it, whatever this host's clock says: [`Tx::newest_key_id`]
    /// orders by it, and a host whose clock is behind (or a second shared with the last key)
    /// must not make an older key the newest.
    pub async fn insert_key_check(&mut self, key_id: &str, check: &[u8], now: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO master_keys (key_id, check_enc, created_at) \
             SELECT $1, $2, CASE WHEN $3 > last.m THEN $3 ELSE last.m + 1 END \
             FROM (SELECT COALESCE(MAX(created_at), 0) AS m FROM master_keys) AS last WHERE true \
             ON CONFLICT (key_id) DO NOTHING",
        )
        .bind(key_id)
        .bind(check)
        .bind(now)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }
}

impl Store {
    /// The database's clock in Unix seconds, as SQL: the key holders' times are the
    /// database's, so hosts' clocks that differ do not hide a server from `keys activate`.
    fn db_now(&self) -> &'static str {
        match self.kind {
            DbKind::Sqlite => "CAST(strftime('%s','now') AS INTEGER)",
            DbKind::Postgres => "CAST(EXTRACT(EPOCH FROM now()) AS BIGINT)",
        }
    }

    /// Record the master keys a running server has (`instance`: this process, `host` for
    /// people), at the database's time, and forget servers not seen for a day.
    pub async fn record_key_holder(
        &self,
        instance: &str,
        host: &str,
        key_ids: &[String],
    ) -> Result<()> {
        let now = self.db_now();
        sqlx::query(&format!(
            "INSERT INTO master_key_holders (instance, host, key_ids, seen_at) VALUES ($1, $2, $3, {now}) \
             ON CONFLICT (instance) DO UPDATE SET key_ids = excluded.key_ids, seen_at = excluded.seen_at"
        ))
        .bind(instance)
        .bind(host)
        .bind(key_ids.join(","))
        .execute(&self.write)
        .await?;
        sqlx::query(&format!(
            "DELETE FROM master_key_holders WHERE seen_at < {now} - 86400"
        ))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Forget a server's record (it stops).
    pub async fn forget_key_holder(&self, instance: &str) -> Result<()> {
        sqlx::query("DELETE FROM master_key_holders WHERE instance = $1")
            .bind(instance)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// The servers seen in the last `secs` seconds of the database's clock: (host, instance,
    /// the key ids they have).
    pub async fn key_holders_within(
        &self,
        secs: i64,
    ) -> Result<Vec<(String, String, Vec<String>)>> {
        let rows: Vec<(String, String, String)> = sqlx::query_as(&format!(
            "SELECT host, instance, key_ids FROM master_key_holders WHERE seen_at >= {} - $1 \
             ORDER BY host, instance",
            self.db_now()
        ))
        .bind(secs)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(h, i, k)| (h, i, k.split(',').map(str::to_owned).collect()))
            .collect())
    }
}
