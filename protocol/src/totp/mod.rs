//! TOTP (RFC 6238) code generation and verification, with time always passed in.
//!
//! Nothing here reads a clock: every function takes Unix seconds or a step number, so the
//! backend's replay and window rules can be tested at exact instants (STYLE §5). The HMAC and
//! dynamic truncation come from `totp-rs` (RFC 4226 §5.3); this module adds the parameters'
//! invariants, the step arithmetic (RFC 6238 §4.2, T0 = 0), constant-time comparison and the
//! replay-aware window match of RFC 6238 §5.2.

use std::fmt;

use serde::{Deserialize, Serialize};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::error::ProtocolError;
use crate::secret::Secret;

pub use crate::algorithm::{Algorithm, UnknownAlgorithm};

/// Smallest accepted period in seconds.
pub const MIN_PERIOD: u32 = 1;
/// Largest accepted period in seconds: beyond five minutes a "one-time" code lives too long.
pub const MAX_PERIOD: u32 = 300;

/// A token's TOTP profile: hash, code length and time step (RFC 6238 §4.1 X), with T0 = 0.
///
/// Invariant (checked by [`TotpParams::new`] and [`TotpParams::validate`], and on
/// deserialization): `digits` is 6 or 8 and `period` is 1..=300. The fields are public, so a
/// value built by hand can break it; the functions here never panic on such a value, but
/// [`code_at_step`] then fails closed (see there).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "UncheckedParams")]
pub struct TotpParams {
    /// HMAC hash function.
    pub algorithm: Algorithm,
    /// Code length: 6 or 8.
    pub digits: u8,
    /// Time step X in seconds: 1..=300.
    pub period: u32,
}

/// What the wire or a database row says, before [`TotpParams::validate`] has looked at it.
#[derive(Deserialize)]
struct UncheckedParams {
    algorithm: Algorithm,
    digits: u8,
    period: u32,
}

impl TryFrom<UncheckedParams> for TotpParams {
    type Error = ProtocolError;

    fn try_from(raw: UncheckedParams) -> Result<TotpParams, ProtocolError> {
        TotpParams::new(raw.algorithm, raw.digits, raw.period)
    }
}

impl Default for TotpParams {
    /// This system's profile (DESIGN §3): HMAC-SHA-1, 6 digits, 60-second step. Note that the
    /// Key URI format's default period is 30 s, which is why URIs always spell the period out.
    fn default() -> TotpParams {
        TotpParams {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 60,
        }
    }
}

impl TotpParams {
    /// Builds validated parameters.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::InvalidDigits`] unless `digits` is 6 or 8;
    /// [`ProtocolError::InvalidPeriod`] unless `period` is 1..=300.
    pub fn new(algorithm: Algorithm, digits: u8, period: u32) -> Result<TotpParams, ProtocolError> {
        let params = TotpParams {
            algorithm,
            digits,
            period,
        };
        params.validate()?;
        Ok(params)
    }

    /// Checks the invariant (the fields are public, so values can be built without [`Self::new`]).
    ///
    /// # Errors
    ///
    /// As [`TotpParams::new`].
    pub fn validate(&self) -> Result<(), ProtocolError> {
        if !matches!(self.digits, 6 | 8) {
            return Err(ProtocolError::InvalidDigits(self.digits));
        }
        if !(MIN_PERIOD..=MAX_PERIOD).contains(&self.period) {
            return Err(ProtocolError::InvalidPeriod(self.period));
        }
        Ok(())
    }

    /// The period as a divisor that cannot be zero, so invalid params give wrong answers rather
    /// than a division-by-zero panic in a server.
    fn divisor(&self) -> u64 {
        u64::from(self.period.max(1))
    }

    /// The time step containing `unix_secs`: RFC 6238 §4.2 `T = floor((now - T0) / X)`, T0 = 0.
    pub fn step_at(&self, unix_secs: u64) -> u64 {
        unix_secs / self.divisor()
    }

    /// The first Unix second of `step`. Saturates at `u64::MAX` instead of overflowing.
    pub fn step_start(&self, step: u64) -> u64 {
        step.saturating_mul(self.divisor())
    }

    /// Seconds from `unix_secs` until its step ends, in `1..=period` (a full `period` at the
    /// first second of a step). This is what the app's countdown shows.
    pub fn seconds_left(&self, unix_secs: u64) -> u32 {
        let d = self.divisor();
        // d - (x % d) is in 1..=d and d <= u32::MAX, so the conversion cannot fail.
        u32::try_from(d - unix_secs % d).unwrap_or(u32::MAX)
    }
}

/// A one-time code: a string of ASCII digits.
///
/// Invariants: zeroized on drop; `Debug` prints `Code([redacted])`; no `Display` and no
/// `PartialEq` (use [`Code::ct_eq`], which is constant-time). A code from [`Code::parse`] has
/// exactly the requested number of digits; one from [`code_at_step`] has `params.digits` digits,
/// or is empty when the params were invalid (an empty code matches nothing).
#[derive(Clone)]
pub struct Code(Zeroizing<String>);

impl Code {
    /// Parses a code typed by a user or sent by the app: exactly `digits` ASCII digits `0-9`.
    ///
    /// Strict on purpose: no trimming, no separators, no full-width digits. The UI normalises
    /// what the user typed; the protocol accepts only the canonical form.
    ///
    /// # Errors
    ///
    /// [`ProtocolError::InvalidDigits`] if `digits` is not 6 or 8;
    /// [`ProtocolError::CodeFormat`] if `s` has the wrong length or a non-digit character.
    pub fn parse(s: &str, digits: u8) -> Result<Code, ProtocolError> {
        if !matches!(digits, 6 | 8) {
            return Err(ProtocolError::InvalidDigits(digits));
        }
        // `len()` is in bytes; any non-ASCII character would also fail the digit check below.
        if s.len() != usize::from(digits) || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProtocolError::CodeFormat);
        }
        Ok(Code(Zeroizing::new(s.to_owned())))
    }

    /// Wraps digits this crate computed itself (OCRA codes of 4–10 digits; [`Code::parse`] is
    /// for codes that come from outside).
    pub(crate) fn from_computed(digits: Zeroizing<String>) -> Code {
        Code(digits)
    }

    /// The digits. Named plainly because the app must display the code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Constant-time equality (via `subtle`): the time taken does not depend on how many leading
    /// digits match. Codes of different lengths are unequal (length is not secret).
    pub fn ct_eq(&self, other: &Code) -> bool {
        self.ct_eq_choice(other).into()
    }

    fn ct_eq_choice(&self, other: &Code) -> Choice {
        self.0.as_bytes().ct_eq(other.0.as_bytes())
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code([redacted])")
    }
}

impl ZeroizeOnDrop for Code {}

/// The code for time step `step` (RFC 6238 §4.2 with `T = step`; equivalently the RFC 4226 HOTP
/// value for counter `step`).
///
/// Fails closed: if `params` does not pass [`TotpParams::validate`], returns an empty [`Code`],
/// which never equals a parsed code, rather than panicking or producing a weak code.
pub fn code_at_step(secret: &Secret, params: &TotpParams, step: u64) -> Code {
    if params.validate().is_err() {
        return Code(Zeroizing::new(String::new()));
    }
    // totp-rs derives the counter as `time / step_size`. Passing a step size of 1 and the step
    // itself as "time" makes the counter exactly `step`, with no `step * period` product that
    // could overflow for far-future steps. The `TOTP` value holds a copy of the secret; with the
    // `zeroize` feature it wipes that copy when dropped at the end of this function.
    let totp = totp_rs::TOTP::new_unchecked(
        params.algorithm.to_totp_rs(),
        usize::from(params.digits),
        1,
        1,
        secret.expose().to_vec(),
    );
    Code(Zeroizing::new(totp.generate(step)))
}

/// The code valid at `unix_secs`: [`code_at_step`] at [`TotpParams::step_at`].
pub fn code_at(secret: &Secret, params: &TotpParams, unix_secs: u64) -> Code {
    code_at_step(secret, params, params.step_at(unix_secs))
}

/// Result of [`match_step`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepMatch {
    /// The code matched this step, which is newer than the last accepted one. The caller must
    /// record it as the new `last_accepted` (atomically with accepting the code).
    Accepted(u64),
    /// The code matched only steps at or before the last accepted one: a replay (RFC 6238 §5.2,
    /// "the verifier MUST NOT accept the second attempt of the OTP"). Holds the newest such step.
    Replayed(u64),
    /// The code matched no step in the window.
    NoMatch,
}

/// Compares `code` against every step in `first..=last` and applies the replay rule.
///
/// All steps are computed and compared (constant-time, no early exit), so the time taken does not
/// reveal which step matched. Then:
/// - if any matching step is newer than `last_accepted` (or `last_accepted` is `None`):
///   [`StepMatch::Accepted`] with the newest such step;
/// - else if some step matched (all at or before `last_accepted`): [`StepMatch::Replayed`] with
///   the newest matching step — RFC 6238 §5.2: a step at or before the last accepted one is a
///   replay;
/// - else [`StepMatch::NoMatch`] (also when `first > last`, or `params` is invalid).
///
/// The caller chooses the window (e.g. `step_at(now) - 1 ..= step_at(now) + 1`, RFC 6238 §5.2's
/// one step of network delay); the cost is one HMAC per step, so keep it small.
pub fn match_step(
    secret: &Secret,
    params: &TotpParams,
    code: &Code,
    first: u64,
    last: u64,
    last_accepted: Option<u64>,
) -> StepMatch {
    let candidates = (first..=last).map(|step| (step, code_at_step(secret, params, step)));
    match_candidates(code, candidates, last_accepted)
}

/// The selection logic of [`match_step`], over precomputed `(step, code)` pairs, so that it can
/// be tested with colliding codes (which real HMAC output would make us search for).
///
/// Tracks the newest fresh and newest any match with constant-time selects, so the control flow
/// is the same whichever candidates match.
pub(crate) fn match_candidates(
    code: &Code,
    candidates: impl IntoIterator<Item = (u64, Code)>,
    last_accepted: Option<u64>,
) -> StepMatch {
    let mut any = Choice::from(0);
    let mut newest_any = 0u64;
    let mut fresh = Choice::from(0);
    let mut newest_fresh = 0u64;
    for (step, candidate) in candidates {
        let matched = code.ct_eq_choice(&candidate);
        // Step numbers and `last_accepted` are public; only `matched` depends on the code.
        let is_fresh = Choice::from(u8::from(last_accepted.is_none_or(|last| step > last)));
        let newer_any = Choice::from(u8::from(step >= newest_any));
        let newer_fresh = Choice::from(u8::from(step >= newest_fresh));
        newest_any.conditional_assign(&step, matched & (newer_any | !any));
        any |= matched;
        let matched_fresh = matched & is_fresh;
        newest_fresh.conditional_assign(&step, matched_fresh & (newer_fresh | !fresh));
        fresh |= matched_fresh;
    }
    if bool::from(fresh) {
        StepMatch::Accepted(newest_fresh)
    } else if bool::from(any) {
        StepMatch::Replayed(newest_any)
    } else {
        StepMatch::NoMatch
    }
}

#[cfg(test)]
mod tests;
