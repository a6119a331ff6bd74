//! Master keys (DESIGN §7): refusing to serve with secrets we cannot open, and re-sealing every
//! secret under the current key.

use crate::store::{NewAudit, Tx};

use super::EngineError;

use super::{now_i64, Engine, Result};

/// How often a serving process records the master keys it has (after reading its key file
/// again).
pub const KEY_HOLDER_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// A server whose record is newer than this counts as running for `keys activate`.
pub const KEY_HOLDER_SEEN: std::time::Duration = std::time::Duration::from_secs(180);

/// This machine's name, for people reading `keys activate`'s refusal.
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

impl Engine {
    /// Check the master keys against the database before serving (refuse to serve with secrets
    /// we cannot decrypt), and record a check value for the current key.
    ///
    /// # Errors
    /// A key in use that we do not have, or a key whose check value does not open.
    pub async fn check_keys(&self) -> anyhow::Result<()> {
        let store = &self.inner.store;
        let keys = &self.inner.keys;
        let have = keys.key_ids();
        for (key_id, check) in store.key_checks().await? {
            if have.contains(&key_id) {
                keys.verify_check(&key_id, &check).map_err(|_| {
                    anyhow::anyhow!("master key {key_id} does not match the key that sealed this database's secrets (wrong key file or OTP_MASTER_KEY)")
                })?;
            }
        }
        for (key_id, n) in store.keys_in_use().await? {
            if !have.contains(&key_id) {
                anyhow::bail!("{n} secret(s) are sealed under master key {key_id}, which is not configured; restore the key file or set OTP_MASTER_KEY");
            }
        }
        let current = keys.current_id();
        let check = keys.key_check(&current)?;
        let mut tx = store.begin().await?;
        tx.insert_key_check(&current, &check, now_i64(self.now()))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Re-seal every secret under the current key, a row at a time (each its own small
    /// transaction, so verification goes on meanwhile). Returns how many were re-sealed.
    ///
    /// # Errors
    /// Database or crypto failures; rows done so far stay done, and a rerun continues.
    pub async fn reseal_all(&self) -> Result<u64> {
        let current = self.inner.keys.current_id();
        let mut done = 0u64;
        loop {
            let rows = self.inner.store.tokens_not_under_key(&current, 500).await?;
            if rows.is_empty() {
                // Staff members' second factors and the OPAQUE server key are sealed under the
                // same keys.
                let server_key = u64::from(self.reseal_pake_server_key().await?);
                return Ok(done + server_key + self.reseal_staff_totps().await?);
            }
            for row in rows {
                let Some(sealed) = row.sealed() else { continue };
                let secret = self.inner.keys.open(&row.user_id, &sealed)?;
                let resealed = self.inner.keys.seal(&row.user_id, &secret)?;
                let mut tx = self.inner.store.begin().await?;
                if tx.reseal(row.id, &sealed.key_id, &resealed).await? {
                    tx.audit(&NewAudit {
                        at: now_i64(self.now()),
                        actor: "cli",
                        customer_id: Some(row.customer_id),
                        user_id: Some(&row.user_id),
                        action: "key_rotate",
                        outcome: "ok",
                        detail: Some(
                            serde_json::json!({ "from": sealed.key_id, "to": resealed.key_id })
                                .to_string(),
                        ),
                        ..Default::default()
                    })
                    .await?;
                    tx.commit().await?;
                    done += 1;
                }
            }
        }
    }

    /// Take the keys the key file has gained ([`Keyring::learn_new_keys`]: new keys only,
    /// nothing dropped or changed; one whose check value in the database does not match is
    /// refused) and record which master keys this server has ([`Store::record_key_holder`]): at
    /// start and every [`KEY_HOLDER_EVERY`] while it serves, so `keys activate` can tell whether
    /// every running server has a key before making it current. Servers gone for a day are
    /// forgotten.
    ///
    /// # Errors
    /// The database is unavailable (a key file that cannot be read is logged; the keys in
    /// memory are recorded).
    pub async fn record_key_holder(&self) -> Result<()> {
        let keys = &self.inner.keys;
        let store = &self.inner.store;
        match keys.learn_new_keys() {
            Ok(taken) if !taken.is_empty() => {
                let checks = store.key_checks().await?;
                for id in taken {
                    let check = checks.iter().find(|(k, _)| *k == id);
                    if check.is_some_and(|(_, c)| keys.verify_check(&id, c).is_err()) {
                        keys.forget(&id);
                        tracing::error!(key_id = %id, "the key file's key {id} does not match the database's check value; not taken");
                    } else {
                        tracing::info!(key_id = %id, "master key read from the key file");
                    }
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not read the master key file"),
        }
        store
            .record_key_holder(&self.inner.instance, &host_name(), &keys.key_ids())
            .await?;
        Ok(())
    }

    /// A server that stops forgets its record (a restarted one records anew under another id).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn forget_key_holder(&self) -> Result<()> {
        self.inner
            .store
            .forget_key_holder(&self.inner.instance)
            .await?;
        Ok(())
    }

    /// For a serving process: record its master keys now and every [`KEY_HOLDER_EVERY`] (a
    /// failure is logged and tried again at the next).
    pub fn spawn_key_holder(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(KEY_HOLDER_EVERY);
            loop {
                every.tick().await;
                if let Err(e) = engine.record_key_holder().await {
                    tracing::warn!(error = %e, "could not record this server's master keys");
                }
            }
        })
    }

    /// The running servers (seen in the last [`KEY_HOLDER_SEEN`]) that lack `key_id`, by host
    /// and instance; and how many servers were seen.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn servers_without_key(&self, key_id: &str) -> Result<(Vec<String>, usize)> {
        let seen = self
            .inner
            .store
            .key_holders_within(i64::try_from(KEY_HOLDER_SEEN.as_secs()).unwrap_or(i64::MAX))
            .await?;
        let lacking = seen
            .iter()
            .filter(|(_, _, ids)| !ids.iter().any(|id| id == key_id))
            .map(|(host, instance, _)| format!("{host} ({instance})"))
            .collect();
        Ok((lacking, seen.len()))
    }

    /// Make sure this process seals under the newest master key the database knows (issue 12,
    /// item 6): after `keys rotate` or `keys activate` in another process, the key file is read
    /// again here before the next secret is sealed, and a key it has on standby is taken. A
    /// newest key this process cannot get refuses the seal (`Unavailable`, logged) rather than
    /// sealing under a retired key.
    pub(crate) async fn sealing_key_ready(&self, tx: &mut Tx<'_>) -> Result<()> {
        let Some(newest) = tx.newest_key_id().await? else {
            return Ok(());
        };
        let keys = &self.inner.keys;
        if keys.current_id() == newest {
            return Ok(());
        }
        if let Err(e) = keys.reload() {
            tracing::error!(error = %e, "could not re-read the master keys");
        }
        // A key on standby in this process's file (`keys add`, distributed to every instance
        // before `keys activate` on one of them): the database says it is current now.
        if keys.current_id() == newest || keys.use_current(&newest) {
            tracing::info!(key_id = %newest, "sealing under the rotated master key");
            return Ok(());
        }
        tracing::error!(
            newest = %newest,
            current = %keys.current_id(),
            "the database's newest master key is not this process's current key; refusing to seal under a retired key"
        );
        Err(EngineError::Unavailable)
    }
}
