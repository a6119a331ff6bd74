//! Web sessions' lifecycle, for both kinds (customer screens, staff console): found and kept
//! alive, over, started, ended. A session idle longer than its kind's idle time is over, and so
//! is one older than its absolute lifetime, however active; an over session is deleted when it
//! is met, and every new session sweeps the over ones away. The web layer keeps what is the
//! web's (cookies, CSRF, the draft's JSON) in `web::session` and its two kinds.

use crate::store::{SessionRow, StaffSessionRow};

use super::staff::StaffMember;
use super::{now_i64, Engine, Result};

/// How long a kind of session lives.
#[derive(Debug, Clone, Copy)]
pub struct Lifetime {
    /// Over after this long without a request (seconds).
    pub idle_secs: u64,
    /// Over this long after it started, however active (seconds).
    pub max_secs: u64,
}

impl Lifetime {
    /// (idle before, created before): a session last seen at or before the first, or created
    /// at or before the second, is over at `now`.
    fn bounds(self, now: i64) -> (i64, i64) {
        let secs = |s: u64| i64::try_from(s).unwrap_or(i64::MAX);
        (
            now.saturating_sub(secs(self.idle_secs)),
            now.saturating_sub(secs(self.max_secs)),
        )
    }
}

/// What a session id led to.
#[derive(Debug)]
pub enum Found<T> {
    Live(T),
    /// There was a session, and it is over (it was deleted).
    Expired,
    None,
}

impl Engine {
    /// The customer session with this id hash, marked seen; an over one is deleted.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn customer_session(
        &self,
        id_hash: &str,
        life: Lifetime,
    ) -> Result<Found<SessionRow>> {
        let store = self.store();
        let Some(row) = store.session(id_hash).await? else {
            return Ok(Found::None);
        };
        let now = now_i64(self.now());
        let (idle_before, created_before) = life.bounds(now);
        if !store
            .touch_session(id_hash, now, idle_before, created_before)
            .await?
        {
            store.delete_session(id_hash).await?;
            // A session from before login (an old row) was never anyone's: not "expired".
            return Ok(if row.customer_id.is_some() {
                Found::Expired
            } else {
                Found::None
            });
        }
        Ok(Found::Live(row))
    }

    /// Start a customer session (the over ones are swept away first).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn start_customer_session(&self, row: &SessionRow, life: Lifetime) -> Result<()> {
        let (idle_before, created_before) = life.bounds(now_i64(self.now()));
        let store = self.store();
        store.purge_sessions(idle_before, created_before).await?;
        store.insert_session(row).await?;
        Ok(())
    }

    /// End a customer session.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn end_customer_session(&self, id_hash: &str) -> Result<()> {
        self.store().delete_session(id_hash).await?;
        Ok(())
    }

    /// Save (or clear) a customer session's work in progress.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn set_session_draft(&self, id_hash: &str, draft: Option<&str>) -> Result<()> {
        self.store().set_session_draft(id_hash, draft).await?;
        Ok(())
    }

    /// The staff session with this id hash and its member, marked seen; an over one is
    /// deleted, and so is one whose account no longer exists.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn staff_session(
        &self,
        id_hash: &str,
        life: Lifetime,
    ) -> Result<Found<(StaffSessionRow, StaffMember)>> {
        let store = self.store();
        let Some(row) = store.staff_session(id_hash).await? else {
            return Ok(Found::None);
        };
        let now = now_i64(self.now());
        let (idle_before, created_before) = life.bounds(now);
        if row.created_at <= created_before
            || !store.touch_staff_session(id_hash, now, idle_before).await?
        {
            store.delete_staff_session(id_hash).await?;
            return Ok(Found::Expired);
        }
        let Some(member) = self.staff_member(row.staff_id).await? else {
            store.delete_staff_session(id_hash).await?;
            return Ok(Found::None);
        };
        Ok(Found::Live((row, member)))
    }

    /// Start a staff session (the idle ones are swept away first).
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn start_staff_session(&self, row: &StaffSessionRow, life: Lifetime) -> Result<()> {
        let (idle_before, _) = life.bounds(now_i64(self.now()));
        let store = self.store();
        store.purge_staff_sessions(idle_before).await?;
        store.insert_staff_session(row).await?;
        Ok(())
    }

    /// End a staff session.
    ///
    /// # Errors
    /// The database is unavailable.
    pub async fn end_staff_session(&self, id_hash: &str) -> Result<()> {
        self.store().delete_staff_session(id_hash).await?;
        Ok(())
    }
}
