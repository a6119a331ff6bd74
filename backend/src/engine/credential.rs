//! The activation credential an issuance keeps until setup: the v1 Argon2 hash (PHC string; empty
//! when v1 is off) and, from provisioning v2 on, the user ID the issuance must use and its OPAQUE
//! record, as one string (`pake1$<user id>$<record hex>$<PHC>`) so drafts and staff requests
//! keep their shape.
//! Written by [`crate::engine::Engine::activation_credential`], read by issuance.

use zeroize::Zeroizing;

use protocol::UserId;

use super::{EngineError, Result};

/// The prefix of a credential that carries an OPAQUE record; a bare PHC string is a credential
/// from before v2.
const CREDENTIAL_V2: &str = "pake1$";

/// A v2 credential for `user_id`, its OPAQUE `record` and the Argon2 `phc` string.
pub(crate) fn encode(user_id: &UserId, record: &[u8], phc: &str) -> String {
    format!(
        "{CREDENTIAL_V2}{}${}${phc}",
        user_id.as_str(),
        hex::encode(record)
    )
}

/// `s` without its v1 hash, if it is a v2 credential that carries one (`None`: nothing to drop).
///
/// # Errors
/// A corrupt credential.
pub(crate) fn without_v1_hash(s: &str) -> Result<Option<String>> {
    let c = ActivationCredential::parse(s)?;
    Ok(match c.v2 {
        Some((user_id, record)) if !c.phc.is_empty() => Some(encode(&user_id, &record, "")),
        _ => None,
    })
}

/// An activation credential taken apart.
pub(crate) struct ActivationCredential<'a> {
    pub phc: &'a str,
    pub v2: Option<(UserId, Zeroizing<Vec<u8>>)>,
}

impl<'a> ActivationCredential<'a> {
    pub(crate) fn parse(s: &'a str) -> Result<ActivationCredential<'a>> {
        let Some(rest) = s.strip_prefix(CREDENTIAL_V2) else {
            return Ok(ActivationCredential { phc: s, v2: None });
        };
        let corrupt = || EngineError::Internal(anyhow::anyhow!("corrupt activation credential"));
        let mut parts = rest.splitn(3, '$');
        let (Some(user_id), Some(record), Some(phc)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(corrupt());
        };
        let user_id = UserId::parse(user_id).map_err(|_| corrupt())?;
        let record = Zeroizing::new(hex::decode(record).map_err(|_| corrupt())?);
        Ok(ActivationCredential {
            phc,
            v2: Some((user_id, record)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_reads_back_what_was_written() {
        let uid = UserId::from_serial(7).unwrap();
        let s = encode(
            &uid,
            &[1, 2, 255],
            "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA",
        );
        let c = ActivationCredential::parse(&s).unwrap();
        assert_eq!(c.phc, "$argon2id$v=19$m=8,t=1,p=1$c2FsdA$aGFzaA");
        let (u, r) = c.v2.unwrap();
        assert_eq!((u, &r[..]), (uid.clone(), &[1u8, 2, 255][..]));
        let old = ActivationCredential::parse("$argon2id$v=19$x").unwrap();
        assert!(old.v2.is_none(), "a PHC string from before v2");
        assert!(ActivationCredential::parse("pake1$123$zz$x").is_err());
        // With v1 off the credential carries no hash: the PHC part is empty.
        let with_hash = encode(&uid, &[9], "$argon2id$v=19$x");
        let v2_only = encode(&uid, &[9], "");
        assert_eq!(without_v1_hash(&with_hash).unwrap(), Some(v2_only.clone()));
        assert_eq!(without_v1_hash(&v2_only).unwrap(), None, "nothing to drop");
        assert_eq!(
            without_v1_hash("$argon2id$v=19$x").unwrap(),
            None,
            "pre-v2: kept"
        );
        let c = ActivationCredential::parse(&v2_only).unwrap();
        assert_eq!(c.phc, "");
        assert!(c.v2.is_some());
    }
}
