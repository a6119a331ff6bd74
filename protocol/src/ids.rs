//! Service and user identifiers (DESIGN §3).
//!
//! Both are strings of ASCII digits, not numbers: leading zeros are significant and they are
//! typed, shown and stored as text. The user ID's last digit is a Damm check digit (H. M. Damm,
//! "Total anti-symmetric quasigroups", 2004), which catches every single-digit substitution and
//! every adjacent transposition, so the app rejects a mistyped ID before calling the server.
//!
//! Both types are validated on construction, including when deserialized, so holding one means
//! it is well-formed.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::ProtocolError;

/// Number of digits in a [`ServiceId`].
pub const SERVICE_ID_LEN: usize = 8;
/// Number of digits in a [`UserId`], check digit included.
pub const USER_ID_LEN: usize = 12;
/// Exclusive upper bound of [`UserId::from_serial`]'s serial (11 digits).
pub const USER_SERIAL_LIMIT: u64 = 100_000_000_000;

fn all_ascii_digits(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit())
}

/// A bank service: exactly 8 ASCII digits (e.g. `10112231`). Serialized as that string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServiceId(String);

impl ServiceId {
    /// Same as `s.parse::<ServiceId>()`.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::ServiceIdFormat`] unless `s` is exactly 8 ASCII digits.
    pub fn parse(s: &str) -> Result<ServiceId, ProtocolError> {
        s.parse()
    }

    /// The 8 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ServiceId {
    type Err = ProtocolError;

    /// # Errors
    ///
    /// [`ProtocolError::ServiceIdFormat`] unless `s` is exactly 8 ASCII digits.
    fn from_str(s: &str) -> Result<ServiceId, ProtocolError> {
        if all_ascii_digits(s, SERVICE_ID_LEN) {
            Ok(ServiceId(s.to_owned()))
        } else {
            Err(ProtocolError::ServiceIdFormat)
        }
    }
}

impl TryFrom<String> for ServiceId {
    type Error = ProtocolError;

    fn try_from(s: String) -> Result<ServiceId, ProtocolError> {
        if all_ascii_digits(&s, SERVICE_ID_LEN) {
            Ok(ServiceId(s))
        } else {
            Err(ProtocolError::ServiceIdFormat)
        }
    }
}

impl From<ServiceId> for String {
    fn from(id: ServiceId) -> String {
        id.0
    }
}

impl AsRef<str> for ServiceId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One issued token: exactly 12 ASCII digits, the last a Damm check digit over the first 11
/// (e.g. `999800000009`). Serialized as that string.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct UserId(String);

impl UserId {
    /// Same as `s.parse::<UserId>()`.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::UserIdFormat`] unless `s` is exactly 12 ASCII digits;
    /// [`ProtocolError::UserIdCheckDigit`] if the last digit is not the Damm check digit of the
    /// first 11.
    pub fn parse(s: &str) -> Result<UserId, ProtocolError> {
        s.parse()
    }

    /// The ID for serial number `serial`: the serial zero-padded to 11 digits, then its Damm
    /// check digit. Distinct serials give distinct IDs, so a database sequence can issue them.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::UserIdFormat`] if `serial` does not fit in 11 digits (`>= 10^11`).
    pub fn from_serial(serial: u64) -> Result<UserId, ProtocolError> {
        if serial >= USER_SERIAL_LIMIT {
            return Err(ProtocolError::UserIdFormat);
        }
        let mut id = format!("{serial:011}");
        let check = damm_check_digit(&id).ok_or(ProtocolError::UserIdFormat)?;
        id.push(char::from(b'0' + check));
        Ok(UserId(id))
    }

    /// The 11-digit serial this ID was built from (its digits without the check digit).
    pub fn serial(&self) -> u64 {
        // Validated: the first 11 bytes are ASCII digits, so this fold cannot overflow a u64.
        self.0
            .bytes()
            .take(USER_ID_LEN - 1)
            .fold(0, |acc, b| acc * 10 + u64::from(b - b'0'))
    }

    /// The 12 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn check(s: &str) -> Result<(), ProtocolError> {
        if !all_ascii_digits(s, USER_ID_LEN) {
            return Err(ProtocolError::UserIdFormat);
        }
        // A Damm-valid string runs the quasigroup back to 0 when the check digit is included.
        if damm_interim(s) == Some(0) {
            Ok(())
        } else {
            Err(ProtocolError::UserIdCheckDigit)
        }
    }
}

impl FromStr for UserId {
    type Err = ProtocolError;

    /// # Errors
    ///
    /// As [`UserId::parse`].
    fn from_str(s: &str) -> Result<UserId, ProtocolError> {
        UserId::check(s)?;
        Ok(UserId(s.to_owned()))
    }
}

impl TryFrom<String> for UserId {
    type Error = ProtocolError;

    fn try_from(s: String) -> Result<UserId, ProtocolError> {
        UserId::check(&s)?;
        Ok(UserId(s))
    }
}

impl From<UserId> for String {
    fn from(id: UserId) -> String {
        id.0
    }
}

impl AsRef<str> for UserId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Damm's totally anti-symmetric quasigroup of order 10 (the table from Damm's 2004 thesis, as
/// published on Wikipedia's "Damm algorithm" page). Row = interim digit, column = next digit.
const DAMM: [[u8; 10]; 10] = [
    [0, 3, 1, 7, 5, 9, 8, 6, 4, 2],
    [7, 0, 9, 2, 1, 5, 4, 8, 6, 3],
    [4, 2, 0, 6, 8, 7, 1, 3, 5, 9],
    [1, 7, 5, 0, 9, 8, 3, 4, 2, 6],
    [6, 1, 2, 3, 0, 4, 5, 9, 7, 8],
    [3, 6, 7, 4, 2, 0, 9, 5, 8, 1],
    [5, 8, 6, 9, 7, 2, 0, 1, 3, 4],
    [8, 9, 4, 5, 3, 6, 2, 0, 1, 7],
    [9, 4, 3, 8, 6, 1, 7, 2, 0, 5],
    [2, 5, 8, 1, 4, 3, 6, 7, 9, 0],
];

/// Runs the Damm quasigroup over `digits`; `None` if empty or any byte is not an ASCII digit.
fn damm_interim(digits: &str) -> Option<u8> {
    if digits.is_empty() {
        return None;
    }
    digits.bytes().try_fold(0u8, |interim, b| {
        let d = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        DAMM.get(usize::from(interim))?.get(usize::from(d)).copied()
    })
}

/// The Damm check digit (0–9) to append to `digits`, e.g. `"572"` → `4`.
///
/// Returns `None` if `digits` is empty or contains anything but ASCII digits. Appending the
/// result makes the whole string run the quasigroup to 0, which is what [`UserId::parse`] checks.
pub fn damm_check_digit(digits: &str) -> Option<u8> {
    // With a zero diagonal, the check digit is simply the final interim value.
    damm_interim(digits)
}

/// Full-width digits (U+FF10..U+FF19, as a Japanese input method types them) as ASCII digits,
/// every other character as it is: what NFKC does to digits. The backend's edges and the app's
/// typed 取引認証 fields both use it.
///
/// The result never needs more room than `s` (a full-width digit is three bytes, its ASCII
/// form one), so it is written into one allocation: no copy of a password is left behind by a
/// reallocation for the caller's `Zeroizing` to miss.
pub fn half_width_digits(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        out.push(match c {
            '\u{FF10}'..='\u{FF19}' => {
                char::from_u32(u32::from(c) - 0xFF10 + u32::from('0')).unwrap_or(c)
            }
            c => c,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damm_known_vector() {
        assert_eq!(
            damm_check_digit("572"),
            Some(4),
            "Wikipedia's worked example"
        );
        assert_eq!(damm_interim("5724"), Some(0));
        assert_eq!(damm_check_digit(""), None);
        assert_eq!(damm_check_digit("57a"), None);
        assert_eq!(
            damm_check_digit("５"),
            None,
            "full-width digits are not digits"
        );
    }

    #[test]
    fn damm_table_is_a_quasigroup_with_zero_diagonal() {
        for (i, row) in DAMM.iter().enumerate() {
            assert_eq!(
                row[i], 0,
                "zero diagonal: the check digit is the final interim"
            );
            let mut seen = [false; 10];
            for &v in row {
                seen[usize::from(v)] = true;
            }
            assert!(seen.iter().all(|s| *s), "row {i} must be a permutation");
        }
    }

    #[test]
    fn service_id_format() {
        let id: ServiceId = "10112231".parse().unwrap();
        assert_eq!(id.as_str(), "10112231");
        assert_eq!(id.to_string(), "10112231");
        assert_eq!(ServiceId::parse("00000000").unwrap().as_str(), "00000000");
        for bad in [
            "",
            "1011223",
            "101122311",
            "1011223a",
            " 10112231",
            "１0112231",
            "-1011223",
        ] {
            assert_eq!(
                ServiceId::parse(bad),
                Err(ProtocolError::ServiceIdFormat),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn user_id_from_serial_round_trip() {
        for serial in [0, 1, 9_998_000_000, 12_345_678_901, USER_SERIAL_LIMIT - 1] {
            let id = UserId::from_serial(serial).unwrap();
            assert_eq!(id.as_str().len(), 12);
            assert_eq!(
                UserId::parse(id.as_str()),
                Ok(id.clone()),
                "from_serial output must parse"
            );
            assert_eq!(id.serial(), serial);
        }
        assert_eq!(UserId::from_serial(0).unwrap().as_str(), "000000000000");
        assert_eq!(
            UserId::from_serial(99_980_000_000).unwrap().as_str(),
            "999800000009"
        );
        assert_eq!(
            UserId::from_serial(USER_SERIAL_LIMIT),
            Err(ProtocolError::UserIdFormat)
        );
        assert_eq!(
            UserId::from_serial(u64::MAX),
            Err(ProtocolError::UserIdFormat)
        );
    }

    #[test]
    fn user_id_format_errors() {
        for bad in [
            "",
            "99980000000",
            "9998000000091",
            "99980000000a",
            "999800000009 ",
            "９99800000007",
        ] {
            assert_eq!(
                UserId::parse(bad),
                Err(ProtocolError::UserIdFormat),
                "{bad:?}"
            );
        }
        assert_eq!(
            UserId::parse("999800000001"),
            Err(ProtocolError::UserIdCheckDigit),
            "DESIGN §3's illustrative ID does not carry a Damm check digit"
        );
    }

    #[test]
    fn every_single_digit_error_and_adjacent_transposition_is_caught() {
        for serial in [
            0,
            1,
            99_980_000_000,
            12_345_678_901,
            31_415_926_535,
            99_999_999_999,
        ] {
            let id = UserId::from_serial(serial).unwrap();
            let digits: Vec<u8> = id.as_str().bytes().collect();
            for pos in 0..digits.len() {
                for d in b'0'..=b'9' {
                    if d == digits[pos] {
                        continue;
                    }
                    let mut typo = digits.clone();
                    typo[pos] = d;
                    let typo = String::from_utf8(typo).unwrap();
                    assert_eq!(
                        UserId::parse(&typo),
                        Err(ProtocolError::UserIdCheckDigit),
                        "{id} -> {typo}: Damm detects every single-digit substitution"
                    );
                }
            }
            for pos in 0..digits.len() - 1 {
                if digits[pos] == digits[pos + 1] {
                    continue;
                }
                let mut swapped = digits.clone();
                swapped.swap(pos, pos + 1);
                let swapped = String::from_utf8(swapped).unwrap();
                assert_eq!(
                    UserId::parse(&swapped),
                    Err(ProtocolError::UserIdCheckDigit),
                    "{id} -> {swapped}: Damm detects every adjacent transposition"
                );
            }
        }
    }

    #[test]
    fn serde_is_a_validated_string() {
        let user = UserId::from_serial(42).unwrap();
        let json = serde_json::to_string(&user).unwrap();
        assert_eq!(json, format!("\"{user}\""));
        assert_eq!(serde_json::from_str::<UserId>(&json).unwrap(), user);
        let service: ServiceId = serde_json::from_str("\"10112231\"").unwrap();
        assert_eq!(serde_json::to_string(&service).unwrap(), "\"10112231\"");

        for bad in ["\"999800000001\"", "\"12\"", "999800000009", "null"] {
            assert!(
                serde_json::from_str::<UserId>(bad).is_err(),
                "{bad} must not deserialize"
            );
        }
        for bad in ["\"1011223\"", "\"abcdefgh\"", "10112231"] {
            assert!(
                serde_json::from_str::<ServiceId>(bad).is_err(),
                "{bad} must not deserialize"
            );
        }
        let err = serde_json::from_str::<UserId>("\"999800000001\"").unwrap_err();
        assert!(
            err.to_string().contains("check digit"),
            "the reason survives: {err}"
        );
    }
}
