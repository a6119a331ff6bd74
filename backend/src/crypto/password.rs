//! Password hashing: Argon2id with the PHC string format, its working memory kept per thread.

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::rngs::OsRng;
use std::fmt;
use zeroize::Zeroizing;

use super::CryptoError;

/// Argon2id with configurable cost. Production uses the crate's defaults (OWASP's m=19 MiB,
/// t=2, p=1); tests and the load tool's seeding may lower them.
#[derive(Clone, Debug, Default)]
pub struct PasswordHasher {
    params: Params,
}

impl PasswordHasher {
    /// # Errors
    /// Parameters out of Argon2's range.
    pub fn new(m_cost_kib: u32, t_cost: u32, p_cost: u32) -> Result<Self, CryptoError> {
        let params = Params::new(m_cost_kib, t_cost, p_cost, None)
            .map_err(|e| CryptoError::Malformed(format!("argon2 parameters: {e}")))?;
        Ok(PasswordHasher { params })
    }

    /// The cheapest parameters Argon2 allows; for tests and load-test seeding only.
    pub fn insecure_fast() -> Self {
        PasswordHasher {
            params: Params::new(8, 1, 1, None).unwrap_or_default(),
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hash a password into a PHC string (salted, parameters included).
    ///
    /// # Errors
    /// Only on internal Argon2 failures.
    pub fn hash(&self, password: &str) -> Result<String, CryptoError> {
        let fail = |e: &dyn fmt::Display| CryptoError::Malformed(format!("argon2: {e}"));
        let salt = SaltString::generate(&mut OsRng);
        let mut salt_buf = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| fail(&e))?;
        let mut out = [0u8; 32];
        argon2_with_thread_memory(&self.argon2(), password.as_bytes(), salt_bytes, &mut out)
            .map_err(|e| fail(&e))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(&self.params).map_err(|e| fail(&e))?,
            salt: Some(salt.as_salt()),
            hash: Some(Output::new(&out).map_err(|e| fail(&e))?),
        };
        Ok(phc.to_string())
    }

    /// Check a password against a stored PHC string, with the parameters stored in it.
    /// Constant-time in the comparison (`password_hash::Output`). A malformed hash never
    /// verifies.
    pub fn verify(&self, password: &str, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return false;
        };
        let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
            return false;
        };
        let (Ok(params), Ok(algorithm)) = (
            Params::try_from(&parsed),
            Algorithm::try_from(parsed.algorithm),
        ) else {
            return false;
        };
        let version = match parsed.version.map(Version::try_from).transpose() {
            Ok(v) => v.unwrap_or_default(),
            Err(_) => return false,
        };
        let mut salt_buf = [0u8; 64];
        let Ok(salt_bytes) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let mut out = Zeroizing::new(vec![0u8; expected.len()]);
        let argon = Argon2::new(algorithm, version, params);
        if argon2_with_thread_memory(&argon, password.as_bytes(), salt_bytes, &mut out).is_err() {
            return false;
        }
        Output::new(&out).is_ok_and(|computed| computed == expected)
    }
}

thread_local! {
    /// Argon2's working memory (m_cost KiB), kept by the thread that hashes and reused: the
    /// engine hashes on a few threads of its own, so the process holds at most that many
    /// blocks, instead of one per thread that ever hashed left behind in the allocator.
    static ARGON2_BLOCKS: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

fn argon2_with_thread_memory(
    argon: &Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    ARGON2_BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        let need = argon.params().block_count();
        if blocks.len() < need {
            blocks.resize(need, Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut blocks[..need])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2id_hash_and_verify() {
        let h = PasswordHasher::insecure_fast();
        let phc = h.hash("1234").unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify("1234", &phc));
        assert!(!h.verify("1235", &phc));
        assert!(!h.verify("1234", "not a hash"));
    }
}
