//! What the code screen shows: the current code, the seconds left in its step and the next code,
//! computed on a clock corrected by the offset measured against the server (DESIGN §8).
//!
//! Pure: the device time is passed in, so the logic is tested at exact instants.

use protocol::{code_at_step, Code, Secret, TotpParams};
use serde::{Deserialize, Serialize};

/// An offset larger than this (in either direction) is reported: the manual warns that a wrong
/// phone clock breaks the code, and half a 60-second step is where codes start to fail.
pub const CLOCK_WARNING_SECS: i64 = 30;

/// How far the server's clock is ahead of the device's (negative: behind), in seconds.
///
/// Adding it to the device time gives the server's idea of now, which is what codes must be
/// computed for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ClockOffset(pub i64);

impl ClockOffset {
    /// Measures the offset from one request: the device clock (in milliseconds) when the request
    /// was sent and when the answer arrived, and the server time (whole seconds) in the answer.
    ///
    /// The server read its clock somewhere in between, so the midpoint is the best estimate of
    /// the device time at that instant; the server's whole seconds truncate, hence the half
    /// second added back. The error is at most half the round trip plus half a second.
    pub fn measure(sent_ms: u64, received_ms: u64, server_time: u64) -> ClockOffset {
        let (lo, hi) = if sent_ms <= received_ms {
            (sent_ms, received_ms)
        } else {
            (received_ms, sent_ms)
        };
        let device_mid_ms = i128::from(lo) + (i128::from(hi) - i128::from(lo)) / 2;
        let server_mid_ms = i128::from(server_time) * 1000 + 500;
        let diff_ms = server_mid_ms - device_mid_ms;
        // Round to the nearest second.
        let secs = (diff_ms + diff_ms.signum() * 500) / 1000;
        ClockOffset(i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX }))
    }

    /// The server's time for a device time.
    pub fn apply(self, device_now: u64) -> u64 {
        device_now.saturating_add_signed(self.0)
    }

    /// Whether the device clock is off by more than [`CLOCK_WARNING_SECS`], so the UI must warn.
    pub fn is_significant(self) -> bool {
        self.0.unsigned_abs() > CLOCK_WARNING_SECS.unsigned_abs()
    }

    /// The warning to show, if any.
    pub fn warning(self) -> Option<ClockWarning> {
        self.is_significant().then_some(ClockWarning {
            offset_secs: self.0,
        })
    }
}

/// "Your phone's clock is off": how much, so the UI can say so (positive: the phone is slow).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockWarning {
    /// Server time minus device time, in seconds.
    pub offset_secs: i64,
}

/// One frame of the code screen.
///
/// Holds codes, so it is not `Serialize` and its `Debug` shows them redacted (via [`Code`]); the
/// shell copies the digits into its own IPC type, once per frame, for display only.
#[derive(Clone, Debug)]
pub struct CodeView {
    /// The code valid now (on the corrected clock).
    pub code: Code,
    /// The code of the next step, shown while the countdown runs out.
    pub next_code: Code,
    /// Seconds until `code` is replaced by `next_code`, in `1..=period`.
    pub seconds_left: u32,
    /// The step length, for the countdown's scale.
    pub period: u32,
    /// Set when the device clock is off by more than [`CLOCK_WARNING_SECS`].
    pub clock_warning: Option<ClockWarning>,
}

impl CodeView {
    /// The view at `device_now` (Unix seconds on the device clock), corrected by `offset`
    /// (RFC 6238 §4.2, with the step taken on the server's clock).
    pub fn at(
        secret: &Secret,
        params: &TotpParams,
        device_now: u64,
        offset: ClockOffset,
    ) -> CodeView {
        let now = offset.apply(device_now);
        let step = params.step_at(now);
        CodeView {
            code: code_at_step(secret, params, step),
            next_code: code_at_step(secret, params, step.saturating_add(1)),
            seconds_left: params.seconds_left(now),
            period: params.period,
            clock_warning: offset.warning(),
        }
    }
}

/// One frame of the 取引認証 screen: the transfer as the app will sign it (shown large for the
/// customer to check against what they meant) and its 8-digit transaction code with the
/// seconds it stays valid. Holds a code, so not `Serialize` (the shell copies it out).
#[derive(Clone, Debug)]
pub struct TransactionView {
    /// The transfer the code is for.
    pub transaction: protocol::ocra::Transaction,
    /// OCRA (`OCRA-1:HOTP-SHA256-8:QA27-T1M`) over it, at the corrected clock's minute.
    pub code: Code,
    /// Seconds until the minute ends (the server also takes the next minute's neighbour).
    pub seconds_left: u32,
    /// The step length (60).
    pub period: u32,
    /// Set when the device clock is off by more than [`CLOCK_WARNING_SECS`].
    pub clock_warning: Option<ClockWarning>,
}

impl TransactionView {
    /// The view at `device_now`, corrected by `offset`, for the token whose TOTP secret is
    /// `secret` (the OCRA key is derived from it for this purpose only).
    pub fn at(
        secret: &Secret,
        transaction: protocol::ocra::Transaction,
        device_now: u64,
        offset: ClockOffset,
    ) -> TransactionView {
        let now = offset.apply(device_now);
        let step = protocol::ocra::transaction_step_at(now);
        let period = u32::try_from(protocol::ocra::TRANSACTION_STEP_SECS).unwrap_or(60);
        let into_step = u32::try_from(now % protocol::ocra::TRANSACTION_STEP_SECS).unwrap_or(0);
        TransactionView {
            code: protocol::ocra::transaction_code_at_step(secret, &transaction, step),
            transaction,
            seconds_left: period - into_step,
            period,
            clock_warning: offset.warning(),
        }
    }
}

/// The device clock in Unix seconds (what the shell passes to [`CodeView::at`]).
pub fn device_now() -> u64 {
    device_now_ms() / 1000
}

/// The device clock in Unix milliseconds (0 if it is set before 1970).
pub fn device_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod transaction_tests {
    use super::*;
    use protocol::ocra::{AccountType, Transaction};

    #[test]
    fn the_transaction_code_is_the_servers_at_the_corrected_minute() {
        let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
        let tx =
            Transaction::new("0001", "123", AccountType::Ordinary, "1234567", 150_000).unwrap();
        // The phone is 40 s slow: the code is the one of the server's minute.
        let device = 1_795_575_630; // 30 s into a minute on the device, 10 s into the next on the server
        let v = TransactionView::at(&secret, tx.clone(), device, ClockOffset(40));
        let server = device + 40;
        assert_eq!(
            v.code.as_str(),
            protocol::ocra::transaction_code(&secret, &tx, server).as_str()
        );
        assert_eq!(v.code.as_str().len(), 8);
        assert_eq!(v.seconds_left, 60 - u32::try_from(server % 60).unwrap());
        assert!(v.clock_warning.is_some());
        // Another account, another code; the TOTP code is not it.
        let other =
            Transaction::new("0001", "123", AccountType::Ordinary, "1234568", 150_000).unwrap();
        let w = TransactionView::at(&secret, other, device, ClockOffset(40));
        assert_ne!(v.code.as_str(), w.code.as_str());
        let totp = CodeView::at(&secret, &TotpParams::default(), device, ClockOffset(40));
        assert!(!v.code.as_str().ends_with(totp.code.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::Algorithm;

    /// RFC 6238 Appendix B's SHA-1 seed.
    fn rfc_secret() -> Secret {
        Secret::from_bytes(b"12345678901234567890".to_vec())
    }

    #[test]
    fn measure_takes_the_midpoint_of_the_round_trip() {
        // Device sends at 1000.000 s, answer at 1000.400 s; server said 1090 (i.e. 1090.0..1091.0).
        assert_eq!(
            ClockOffset::measure(1_000_000, 1_000_400, 1_090),
            ClockOffset(90)
        );
        assert_eq!(
            ClockOffset::measure(1_000_000, 1_000_400, 910),
            ClockOffset(-90)
        );
        assert_eq!(
            ClockOffset::measure(1_000_000, 1_000_200, 1_000),
            ClockOffset(0),
            "a correct clock measures as no offset"
        );
        assert_eq!(
            ClockOffset::measure(1_000_400, 1_000_000, 1_090),
            ClockOffset(90),
            "a clock that stepped back mid-request still gives a sane answer"
        );
    }

    #[test]
    fn warning_only_beyond_thirty_seconds() {
        assert!(!ClockOffset(30).is_significant());
        assert!(!ClockOffset(-30).is_significant());
        assert!(ClockOffset(31).is_significant());
        assert!(ClockOffset(-31).is_significant());
        assert_eq!(
            ClockOffset(-90).warning(),
            Some(ClockWarning { offset_secs: -90 })
        );
        assert_eq!(ClockOffset(5).warning(), None);
    }

    #[test]
    fn apply_moves_the_clock_both_ways() {
        assert_eq!(ClockOffset(90).apply(1_000), 1_090);
        assert_eq!(ClockOffset(-90).apply(1_000), 910);
        assert_eq!(
            ClockOffset(-5_000).apply(1_000),
            0,
            "saturates, never wraps"
        );
    }

    #[test]
    fn view_matches_rfc_6238_vectors_with_and_without_offset() {
        let params = TotpParams::new(Algorithm::Sha1, 8, 30).unwrap();
        // RFC 6238 Appendix B: T = 59 -> 94287082; T = 1111111109 -> 07081804.
        let v = CodeView::at(&rfc_secret(), &params, 59, ClockOffset(0));
        assert_eq!(v.code.as_str(), "94287082");
        assert_eq!(v.seconds_left, 1);
        assert_eq!(v.period, 30);
        assert!(v.clock_warning.is_none());

        // The device is 100 s slow: at device time 1111111009 the server is at 1111111109.
        let v = CodeView::at(&rfc_secret(), &params, 1_111_111_009, ClockOffset(100));
        assert_eq!(
            v.code.as_str(),
            "07081804",
            "the offset is applied to the code"
        );
        assert_eq!(
            v.clock_warning,
            Some(ClockWarning { offset_secs: 100 }),
            "and reported"
        );
        // 1111111109 is 29 s into its 30 s step.
        assert_eq!(v.seconds_left, 1);
        // RFC 6238 Appendix B: T = 1111111111 (next step) -> 14050471.
        assert_eq!(v.next_code.as_str(), "14050471");
    }

    #[test]
    fn view_debug_does_not_show_codes() {
        let v = CodeView::at(
            &rfc_secret(),
            &TotpParams::default(),
            1_700_000_000,
            ClockOffset(0),
        );
        let shown = format!("{v:?}");
        assert!(!shown.contains(v.code.as_str()), "{shown}");
        assert!(!shown.contains(v.next_code.as_str()), "{shown}");
    }
}
