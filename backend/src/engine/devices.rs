//! Known devices (OWASP's "device cookies"): a browser where a customer completed a login
//! (the password, and the code when OTP is in use) carries a cookie bound to that login ID,
//! sealed under the master key. It is no session and holds no secret; it lets the customer
//! past two things strangers set off:
//! - the login limit per client network (`web::failure_limit`, a password spray's brake), when
//!   someone else behind the same address (a mobile carrier's shared IPv4 address, an office)
//!   has filled it;
//! - the account's password lock: wrong passwords typed on known devices count on a lock of
//!   their own, shared by all the customer's known devices (`PasswordPath::KnownDeviceLogin`),
//!   so strangers' guesses lock the account for strangers only.
//!
//! It names one login ID (it does not open for another) and expires after
//! [`KNOWN_DEVICE_SECS`]. However many cookies exist for a customer (each login makes one),
//! their wrong passwords share that one lock: minting cookies buys no guesses.
//!
//! Contents: when it was issued and 16 random bytes (what tells two devices apart in the
//! audit trail), sealed with AES-256-GCM, the login ID as associated data:
//! `hex(key id).hex(nonce || ciphertext)`.

use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{Engine, Result};
use crate::crypto::{Sealed, SECRET_FORMAT_V1};
use crate::domain::DomainError;

/// How long a known-device cookie counts (and its `Max-Age`): renewed at each login.
pub const KNOWN_DEVICE_SECS: u32 = 180 * 86_400;

/// A browser proven by its cookie to be one where the customer logged in before: only
/// [`Engine::known_device`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KnownDevice {
    id: [u8; 16],
}

impl KnownDevice {
    /// What the audit trail calls it: the first 8 hex digits of its id's SHA-256.
    pub fn tag(&self) -> String {
        hex::encode(&Sha256::digest(self.id)[..4])
    }
}

/// Longer than any cookie we issue; longer text is not looked at.
const MAX_COOKIE_LEN: usize = 512;

impl Engine {
    /// A known-device cookie for the customer's login ID, issued now: for a login that is
    /// complete (the password, and the code when OTP is in use).
    ///
    /// # Errors
    /// Unknown customer, the database is unavailable, or the keyring is empty or poisoned.
    pub async fn known_device_cookie(&self, customer_id: i64) -> Result<String> {
        let login_id = self
            .store()
            .customer_by_id(customer_id)
            .await?
            .ok_or(DomainError::UnknownCustomer)?
            .login_id;
        let mut plain = [0u8; 24];
        plain[..8].copy_from_slice(&self.now().to_be_bytes());
        rand::rngs::OsRng.fill_bytes(&mut plain[8..]);
        let sealed = self.inner.keys.seal_device(&login_id, &plain)?;
        Ok(format!(
            "{}.{}",
            hex::encode(sealed.key_id.as_bytes()),
            hex::encode(&sealed.blob)
        ))
    }

    /// The device, if `cookie` is a known-device cookie we issued for `login_id` less than
    /// [`KNOWN_DEVICE_SECS`] ago. Anything else (forged, altered, another login's, expired,
    /// sealed under a key no longer held) is none.
    pub fn known_device(&self, login_id: &str, cookie: &str) -> Option<KnownDevice> {
        if cookie.len() > MAX_COOKIE_LEN {
            return None;
        }
        let (key, blob) = cookie.split_once('.')?;
        let (Ok(key), Ok(blob)) = (hex::decode(key), hex::decode(blob)) else {
            return None;
        };
        let key_id = String::from_utf8(key).ok()?;
        let sealed = Sealed {
            key_id,
            format: SECRET_FORMAT_V1,
            blob,
        };
        let plain = self.inner.keys.open_device(login_id, &sealed).ok()?;
        if plain.len() != 24 {
            return None;
        }
        let issued = u64::from_be_bytes(<[u8; 8]>::try_from(&plain[..8]).ok()?);
        let id = <[u8; 16]>::try_from(&plain[8..]).ok()?;
        // Instances' clocks may differ by a little: a cookie from a few minutes ahead counts.
        let now = self.now();
        (issued <= now.saturating_add(300)
            && now.saturating_sub(issued) < u64::from(KNOWN_DEVICE_SECS))
        .then_some(KnownDevice { id })
    }
}
