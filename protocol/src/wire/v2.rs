//! Provisioning v2 DTOs (JSON, `snake_case`): the two round trips of the PAKE setup
//! ([`crate::pake`] explains the protocol and builds and checks these messages).
//!
//! ```text
//! POST /app/v2/setup/start   SetupStartRequest  -> SetupStartResponse
//! POST /app/v2/setup/finish  SetupFinishRequest -> SetupFinishResponse
//! ```
//!
//! Every byte field is lower-case hex. Nothing here is secret by itself: the PAKE messages are
//! built to be seen by an eavesdropper (that is the point of issue 18), and the secret travels
//! only sealed. `Debug` still shows only lengths, to keep logs short.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{ServiceId, UserId};
use crate::totp::TotpParams;
use crate::wire::DeviceInfo;

/// Bytes that travel as lower-case hex.
#[derive(Clone, PartialEq, Eq)]
pub struct HexBytes(pub Vec<u8>);

impl HexBytes {
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for HexBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HexBytes({} bytes)", self.0.len())
    }
}

impl Serialize for HexBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HexBytes, D::Error> {
        let s = String::deserialize(deserializer)?;
        // The PAKE messages are at most a few hundred bytes; refuse absurd input early.
        if s.len() > 4096 {
            return Err(de::Error::custom("hex field too long"));
        }
        hex::decode(s)
            .map(HexBytes)
            .map_err(|_| de::Error::custom("not lower-case hex"))
    }
}

/// Round trip 1, app → server: which token, the app's OPAQUE `KE1` and a fresh nonce.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupStartRequest {
    /// The bank service of the token.
    pub service_id: ServiceId,
    /// The token's user ID.
    pub user_id: UserId,
    /// OPAQUE `KE1` (RFC 9807 §6.3: blinded password element, client nonce, client ephemeral
    /// public key), 96 bytes.
    pub pake_message: HexBytes,
    /// 32 random bytes from the app, bound into the exchange's context.
    pub app_nonce: HexBytes,
    /// The device being set up (for the console; not trusted, not in the transcript).
    pub device: DeviceInfo,
}

/// Round trip 1, server → app: the exchange's ID and the server's OPAQUE `KE2`.
///
/// `KE2` ends with the server's key confirmation (the 3DH MAC over the transcript, RFC 9807
/// §6.4.2), so the "server confirmation" of the design is inside `pake_message`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupStartResponse {
    /// 16 random bytes naming this exchange; bound into the context.
    pub exchange_id: HexBytes,
    /// OPAQUE `KE2` (credential response + server nonce, ephemeral key and MAC), 320 bytes.
    pub pake_message: HexBytes,
}

/// Round trip 2, app → server: the app's key confirmation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupFinishRequest {
    /// The exchange this confirms.
    pub exchange_id: HexBytes,
    /// OPAQUE `KE3`: the client's MAC over the transcript (64 bytes).
    pub key_confirmation: HexBytes,
}

/// The secret sealed with AES-256-GCM under the key derived from the PAKE.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SealedSecret {
    /// The 12-byte AES-GCM nonce.
    pub nonce: HexBytes,
    /// Ciphertext with its 16-byte tag.
    pub ciphertext: HexBytes,
}

/// Round trip 2, server → app: the sealed secret, the token profile and the server time.
///
/// Everything besides the ciphertext is authenticated as AES-GCM associated data, so it cannot
/// be changed without the app noticing.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupFinishResponse {
    /// Echo of the token's service.
    pub service_id: ServiceId,
    /// Echo of the token's user ID.
    pub user_id: UserId,
    /// The token's secret, sealed.
    pub sealed_secret: SealedSecret,
    /// Algorithm, digits and period.
    pub params: TotpParams,
    /// Server time in Unix seconds.
    pub server_time: u64,
    /// Issuer name to show in the app.
    pub issuer: String,
    /// Label (account name) to show in the app.
    pub label: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_bytes_round_trip_and_debug_shows_length_only() {
        let b = HexBytes(vec![0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"deadbeef\"");
        let back: HexBytes = serde_json::from_str("\"deadbeef\"").unwrap();
        assert_eq!(back, b);
        assert_eq!(format!("{b:?}"), "HexBytes(4 bytes)");
        assert!(serde_json::from_str::<HexBytes>("\"xyz\"").is_err());
        let long = format!("\"{}\"", "00".repeat(2049));
        assert!(serde_json::from_str::<HexBytes>(&long).is_err());
    }
}
