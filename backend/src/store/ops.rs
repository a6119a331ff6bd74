//! SQL for operations: the outbox gauges read at scrape time, online backups (`VACUUM INTO`),
//! and the checks a restore runs on a copy before it replaces anything.

use crate::crypto::Sealed;

use super::{DbKind, Result, Store, StoreError, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};

/// The mail outbox as a scrape sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxStats {
    /// Mails not sent yet (waiting, being retried, or claimed by a worker now).
    pub unsent: i64,
    /// `created_at` of the oldest unsent mail, if any.
    pub oldest_created_at: Option<i64>,
}

/// A migration recorded in a database, against the ones this binary knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedMigration {
    pub version: i64,
    pub success: bool,
    /// Whether this binary has a migration of that version.
    pub known: bool,
}

/// A sealed secret as a key check needs it: the token's user ID (bound into the ciphertext)
/// and the sealed bytes. No `Debug` beyond the ids.
pub struct SealedSecret {
    pub id: i64,
    pub user_id: String,
    pub sealed: Sealed,
}

impl Store {
    /// Unsent mail and the age of the oldest: one indexed query (`mail_outbox_due`).
    ///
    /// # Errors
    /// Database unavailable.
    pub async fn outbox_stats(&self) -> Result<OutboxStats> {
        let (unsent, oldest_created_at): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COUNT(*), MIN(created_at) FROM mail_outbox WHERE sent_at IS NULL AND given_up_at IS NULL",
        )
        .fetch_one(&self.read)
        .await?;
        Ok(OutboxStats {
            unsent,
            oldest_created_at,
        })
    }

    /// Write a consistent copy of a SQLite database to `path` (which must not exist or be
    /// empty) with `VACUUM INTO`. It runs as one read transaction on a reader connection: in
    /// WAL mode the writer (verifications, mail) goes on meanwhile, and the copy is the
    /// database as of the moment the read began.
    ///
    /// # Errors
    /// PostgreSQL ([`StoreError::UnsupportedUrl`]: use `pg_dump`), or the copy failed.
    pub async fn vacuum_into(&self, path: &str) -> Result<()> {
        if self.kind != DbKind::Sqlite {
            return Err(StoreError::UnsupportedUrl);
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path)
            .execute(&self.read)
            .await?;
        Ok(())
    }

    /// SQLite's `PRAGMA integrity_check`: `["ok"]` for a sound file, else what is wrong (at
    /// most 20 lines). PostgreSQL checks its own pages; there this returns `["ok"]`.
    ///
    /// # Errors
    /// Database unavailable or not a database at all.
    pub async fn integrity_check(&self) -> Result<Vec<String>> {
        if self.kind != DbKind::Sqlite {
            return Ok(vec!["ok".to_owned()]);
        }
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check(20)")
            .fetch_all(&self.read)
            .await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// The migrations recorded in the database (none for an empty one), each marked known or
    /// not to this binary. Does not migrate.
    ///
    /// # Errors
    /// Database unavailable.
    pub async fn applied_migrations(&self) -> Result<Vec<AppliedMigration>> {
        let exists: Option<(i64,)> = match self.kind {
            DbKind::Sqlite => sqlx::query_as(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            ),
            DbKind::Postgres => sqlx::query_as(
                "SELECT CAST(1 AS BIGINT) FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'",
            ),
        }
        .fetch_optional(&self.read)
        .await?;
        if exists.is_none() {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT version, CAST(CASE WHEN success THEN 1 ELSE 0 END AS BIGINT) \
             FROM _sqlx_migrations ORDER BY version",
        )
        .fetch_all(&self.read)
        .await?;
        let known = self.known_migrations();
        Ok(rows
            .into_iter()
            .map(|(version, success)| AppliedMigration {
                version,
                success: success == 1,
                known: known.contains(&version),
            })
            .collect())
    }

    /// The migration versions this binary carries for this dialect, in order.
    pub fn known_migrations(&self) -> Vec<i64> {
        let migrator = match self.kind {
            DbKind::Sqlite => &SQLITE_MIGRATIONS,
            DbKind::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator.iter().map(|m| m.version).collect()
    }

    /// Up to `limit` sealed token secrets with an id above `after_id`, in id order (a restore
    /// opens every one of them with the configured keys).
    ///
    /// # Errors
    /// Database unavailable.
    pub async fn sealed_secrets_after(
        &self,
        after_id: i64,
        limit: i64,
    ) -> Result<Vec<SealedSecret>> {
        let rows: Vec<(i64, String, String, i64, Vec<u8>)> = sqlx::query_as(
            "SELECT id, user_id, secret_key_id, secret_format, secret_enc FROM tokens \
             WHERE secret_enc IS NOT NULL AND secret_key_id IS NOT NULL \
               AND secret_format IS NOT NULL AND id > $1 \
             ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(id, user_id, key_id, format, blob)| SealedSecret {
                id,
                user_id,
                sealed: Sealed {
                    key_id,
                    format,
                    blob,
                },
            })
            .collect())
    }

    /// How many tokens the database holds (for the backup and restore summaries).
    ///
    /// # Errors
    /// Database unavailable.
    pub async fn token_count(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM tokens")
            .fetch_one(&self.read)
            .await?;
        Ok(n)
    }

    /// How many customers and staff accounts the database holds (the first-run hints, and the
    /// demo's rule that it seeds only an empty database).
    ///
    /// # Errors
    /// Database unavailable.
    pub async fn account_counts(&self) -> Result<(i64, i64)> {
        let (customers, staff): (i64, i64) =
            sqlx::query_as("SELECT (SELECT COUNT(*) FROM customers), (SELECT COUNT(*) FROM staff)")
                .fetch_one(&self.read)
                .await?;
        Ok((customers, staff))
    }
}
