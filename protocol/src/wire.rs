//! Provisioning DTOs shared by the app and the backend (JSON, `snake_case` field names).
//!
//! This module is `v1` (`POST /app/v1/setup`: the activation password and the secret inside
//! TLS); [`v2`] is the PAKE setup of issue 18, which replaces it.
//!
//! These types are the HTTP contract of the initial setup: the app sends a [`SetupRequest`] and
//! receives a [`SetupResponse`] carrying the new token's secret. Identifiers and TOTP parameters
//! are validated while deserializing, so a handler that received one of these holds well-formed
//! values. `Debug` never shows the activation password or the secret.

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{ServiceId, UserId};
use crate::secret::{Secret, Sensitive};
use crate::totp::TotpParams;

pub mod v2;

/// What the app reports about the device at setup (for the console and support; not trusted).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// e.g. `"android"`, `"ios"`.
    pub platform: String,
    /// Device model as the OS reports it.
    pub model: String,
    /// OS version string.
    pub os_version: String,
    /// The app's own version.
    pub app_version: String,
}

/// The app's initial-setup request: which token, proved by the activation password.
///
/// `Debug` shows `activation_password: [redacted]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupRequest {
    /// The bank service the token belongs to.
    pub service_id: ServiceId,
    /// The token's user ID (check digit already verified by deserialization).
    pub user_id: UserId,
    /// The 4–8 digit activation password chosen at issuance (DESIGN §3). Its format is the
    /// backend's business; the protocol only keeps it out of logs and memory.
    pub activation_password: Sensitive<String>,
    /// The device being set up.
    pub device: DeviceInfo,
}

/// The backend's answer to a successful setup: the token's secret and profile, plus the server
/// clock so the app can correct its own clock's offset.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SetupResponse {
    /// Echo of the request's service.
    pub service_id: ServiceId,
    /// Echo of the request's user ID.
    pub user_id: UserId,
    /// The shared secret, as base32.
    pub secret: WireSecret,
    /// Algorithm, digits and period (validated on deserialize).
    pub params: TotpParams,
    /// Server time in Unix seconds when the response was made.
    pub server_time: u64,
    /// Issuer name to show in the app.
    pub issuer: String,
    /// Label (account name) to show in the app.
    pub label: String,
}

/// A [`Secret`] that serializes as RFC 4648 base32 (upper case, no padding).
///
/// This is the one place a secret crosses the wire (in [`SetupResponse`]); wrapping it makes
/// that crossing explicit at the type level, since [`Secret`] itself is not `Serialize`.
/// Deserialization applies [`Secret::from_base32`] (so at least 128 bits). `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct WireSecret(pub Secret);

impl fmt::Debug for WireSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WireSecret([redacted])")
    }
}

impl Serialize for WireSecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_base32())
    }
}

impl<'de> Deserialize<'de> for WireSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<WireSecret, D::Error> {
        deserializer.deserialize_str(WireSecretVisitor)
    }
}

/// Decodes straight from the deserializer's `&str`, so no intermediate unzeroized `String` of
/// the secret is made on our side.
struct WireSecretVisitor;

impl de::Visitor<'_> for WireSecretVisitor {
    type Value = WireSecret;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a base32 TOTP secret of at least 128 bits")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<WireSecret, E> {
        // The error names the problem only (ProtocolError messages never include input).
        Secret::from_base32(s).map(WireSecret).map_err(E::custom)
    }
}

/// `GET /time`-style answer: the server clock in Unix seconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeResponse {
    /// Server time in Unix seconds.
    pub server_time: u64,
}

/// The JSON body of every API error (STYLE §2): a stable `code` to match on and an English
/// `message` for people, plus lockout details where they apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiErrorBody {
    /// Stable machine-readable code, e.g. `"OTP_REPLAYED"`.
    pub code: String,
    /// English description; never contains a password, code or secret.
    pub message: String,
    /// Wrong-password attempts left before lockout, when counting applies.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub attempts_left: Option<u32>,
    /// Seconds until the caller may retry, when rate limited or locked.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retry_after_secs: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::totp::Algorithm;

    const SECRET: &[u8] = b"12345678901234567890";
    const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

    fn device() -> DeviceInfo {
        DeviceInfo {
            platform: "android".into(),
            model: "Pixel 8".into(),
            os_version: "14".into(),
            app_version: "1.0.0".into(),
        }
    }

    fn response() -> SetupResponse {
        SetupResponse {
            service_id: "10112231".parse().unwrap(),
            user_id: UserId::from_serial(99_980_000_000).unwrap(),
            secret: WireSecret(Secret::from_bytes(SECRET.to_vec())),
            params: TotpParams::default(),
            server_time: 1_700_000_000,
            issuer: "Example Bank".into(),
            label: "999800000009".into(),
        }
    }

    #[test]
    fn setup_request_json_shape_and_redaction() {
        let json = r#"{"service_id":"10112231","user_id":"999800000009",
            "activation_password":"48151623",
            "device":{"platform":"ios","model":"iPhone15,2","os_version":"17.4","app_version":"1.0.0"}}"#;
        let req: SetupRequest = serde_json::from_str(json).unwrap();
        assert_eq!(req.activation_password.expose(), "48151623");
        assert_eq!(req.user_id.as_str(), "999800000009");
        let shown = format!("{req:?} {req:#?}");
        assert!(
            !shown.contains("48151623"),
            "the password must not reach logs: {shown}"
        );
        assert!(shown.contains("[redacted]"));

        let again: serde_json::Value = serde_json::to_value(&req).unwrap();
        assert_eq!(again["activation_password"], "48151623");
        assert_eq!(again["device"]["os_version"], "17.4");
    }

    #[test]
    fn setup_request_rejects_bad_ids() {
        let req = |service: &str, user: &str| {
            format!(
                r#"{{"service_id":"{service}","user_id":"{user}","activation_password":"1234",
                "device":{{"platform":"a","model":"b","os_version":"c","app_version":"d"}}}}"#
            )
        };
        assert!(serde_json::from_str::<SetupRequest>(&req("10112231", "999800000009")).is_ok());
        assert!(
            serde_json::from_str::<SetupRequest>(&req("10112231", "999800000001")).is_err(),
            "a user ID with a wrong check digit never reaches a handler"
        );
        assert!(serde_json::from_str::<SetupRequest>(&req("1011223", "999800000009")).is_err());
    }

    #[test]
    fn setup_response_carries_the_secret_as_base32() {
        let value = serde_json::to_value(response()).unwrap();
        assert_eq!(value["secret"], SECRET_B32);
        assert_eq!(value["params"]["algorithm"], "SHA1");
        assert_eq!(value["params"]["period"], 60);
        assert_eq!(value["server_time"], 1_700_000_000u64);

        let back: SetupResponse = serde_json::from_value(value).unwrap();
        assert_eq!(back.secret, response().secret);
        assert_eq!(back.params, TotpParams::default());
    }

    #[test]
    fn setup_response_debug_is_redacted() {
        let r = response();
        let shown = format!("{r:?} {r:#?}");
        assert!(!shown.contains(SECRET_B32), "{shown}");
        assert!(!shown.contains("1234567890"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn setup_response_rejects_bad_secrets_and_params() {
        let mut value = serde_json::to_value(response()).unwrap();
        value["secret"] = "GEZDGNBV".into();
        let err = serde_json::from_value::<SetupResponse>(value.clone()).unwrap_err();
        assert!(err.to_string().contains("128 bits"), "{err}");
        value["secret"] = "not base32!".into();
        let err = serde_json::from_value::<SetupResponse>(value.clone()).unwrap_err();
        assert!(
            !err.to_string().contains("not base32!"),
            "errors do not echo secrets: {err}"
        );

        let mut value = serde_json::to_value(response()).unwrap();
        value["params"]["digits"] = 7.into();
        assert!(serde_json::from_value::<SetupResponse>(value).is_err());

        let mut ok = response();
        ok.params = TotpParams::new(Algorithm::Sha256, 8, 30).unwrap();
        let value = serde_json::to_value(&ok).unwrap();
        assert_eq!(value["params"]["algorithm"], "SHA256");
    }

    #[test]
    fn api_error_body_omits_absent_fields() {
        let body = ApiErrorBody {
            code: "OTP_REPLAYED".into(),
            message: "This code was already used.".into(),
            attempts_left: None,
            retry_after_secs: None,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"code":"OTP_REPLAYED","message":"This code was already used."}"#
        );
        let parsed: ApiErrorBody =
            serde_json::from_str(r#"{"code":"LOCKED","message":"m","retry_after_secs":60}"#)
                .unwrap();
        assert_eq!(parsed.retry_after_secs, Some(60));
        assert_eq!(parsed.attempts_left, None);
        let t: TimeResponse = serde_json::from_str(r#"{"server_time":5}"#).unwrap();
        assert_eq!(t, TimeResponse { server_time: 5 });
        assert_eq!(
            serde_json::to_value(device()).unwrap()["app_version"],
            "1.0.0"
        );
    }
}
