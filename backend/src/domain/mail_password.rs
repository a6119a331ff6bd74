//! メール通知パスワード (issue 19): the one-time password mailed to the customer's
//! **registered** address before a sensitive operation by a customer who does not use the OTP
//! token (whose code takes its place): token issuance, a transfer to a payee not used before,
//! a change of the registered e-mail address.
//!
//! 8 digits from the OS CSPRNG; stored only as an Argon2 hash; single use; valid for
//! [`TTL_SECS`] and only in the web session that asked for it (a logout ends it); sent at most
//! [`MAX_SENDS`] times for one request. Wrong ones count under THE lockout rule
//! ([`super::throttle`]) as a wrong password of the customer: the confirmation password and the
//! mailed password are judged as one attempt, so a right confirmation password never clears the
//! count a wrong mailed password made.

use rand::Rng;
use zeroize::Zeroizing;

/// Digits of a mailed password.
pub const DIGITS: usize = 8;
/// Seconds a mailed password lives (or until logout, whichever comes first).
pub const TTL_SECS: i64 = 600;
/// Mails for one request: the first and two resends.
pub const MAX_SENDS: i64 = 3;
/// Mails to one customer within an hour, whatever the requests: starting requests over and
/// over must not flood the registered address.
pub const MAX_PER_HOUR: i64 = 10;

/// What a mailed password confirms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailPurpose {
    Issue,
    Transfer,
    EmailChange,
}

impl MailPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            MailPurpose::Issue => "issue",
            MailPurpose::Transfer => "transfer",
            MailPurpose::EmailChange => "email_change",
        }
    }
}

/// An operation that may need a mailed password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Token issuance: always (the customer has no active token by definition of issuing one).
    Issue,
    /// A transfer; `known_payee`: the customer has transferred to this payee before.
    Transfer {
        known_payee: bool,
    },
    EmailChange,
}

/// Whether `op` needs a mailed password; `otp_active`: the customer's token is in use (its
/// code takes the mailed password's place, as the banks' pages say).
pub fn needs_mail_password(op: Operation, otp_active: bool) -> bool {
    match op {
        Operation::Issue => true,
        Operation::Transfer { known_payee } => !otp_active && !known_payee,
        Operation::EmailChange => !otp_active,
    }
}

/// Whether an operation drafted at its input step, with a mailed password asked for or not
/// (`drafted_mail`), may be committed as drafted now that OTP is in use or not (`otp_active`):
/// not when one is needed now and none was asked for. The draft decided from whether OTP was
/// in use then, and that can end before 確定する (a token revoked, a phone reported lost); a
/// new payee then needs the mailed password, not the confirmation password alone. A draft
/// that asked for one where none is needed now stands: more than needed, never less.
pub fn draft_still_holds(op: Operation, drafted_mail: bool, otp_active: bool) -> bool {
    drafted_mail || !needs_mail_password(op, otp_active)
}

/// A fresh mailed password: 8 uniform digits from the OS CSPRNG.
pub fn generate() -> Zeroizing<String> {
    let n: u32 = rand::rngs::OsRng.gen_range(0..100_000_000);
    Zeroizing::new(format!("{n:08}"))
}

/// Whether `s` has the form of a mailed password (8 half-width digits).
pub fn is_format(s: &str) -> bool {
    s.len() == DIGITS && s.bytes().all(|b| b.is_ascii_digit())
}

/// When a password sent at `now` expires.
pub fn expires_at(now: i64) -> i64 {
    now.saturating_add(TTL_SECS)
}

/// Whether a stored password can still be used at `now`.
pub fn is_live(used_at: Option<i64>, expires_at: i64, now: i64) -> bool {
    used_at.is_none() && now < expires_at
}

/// The outbox key of the `sends`-th mail of mailed password `id`: one mail per send.
pub fn mail_key(id: i64, sends: i64) -> String {
    format!("mail_password:{id}:{sends}")
}

/// The mailed password and send a mail's outbox key names ([`mail_key`]).
pub fn parse_mail_key(key: &str) -> Option<(i64, i64)> {
    let (id, sends) = key.strip_prefix("mail_password:")?.split_once(':')?;
    Some((id.parse().ok()?, sends.parse().ok()?))
}

/// Whether a mail carrying the `sent`-th password of a stored mailed password may still go out,
/// as far as the row tells without a clock: the password is still the one mailed (no later
/// resend replaced it), unused, and was not ended early (a logout sets its end before its
/// `created_at + TTL_SECS`). Its expiry by time is for the mail worker's own clock.
pub fn mail_still_carries(
    sent: i64,
    sends: i64,
    used_at: Option<i64>,
    created_at: i64,
    expires_at: i64,
) -> bool {
    sent == sends && used_at.is_none() && expires_at >= created_at.saturating_add(TTL_SECS)
}

/// Whether another mail may be sent for a request that has had `sends` already, to a
/// customer who was sent `last_hour` mailed passwords in the last hour.
pub fn may_send(sends: i64, last_hour: i64) -> bool {
    sends < MAX_SENDS && last_hour < MAX_PER_HOUR
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_passwords_are_eight_digits_and_vary() {
        let a: Vec<_> = (0..50).map(|_| generate()).collect();
        assert!(a.iter().all(|p| is_format(p)), "8 ASCII digits each");
        let distinct: std::collections::HashSet<_> = a.iter().map(|p| p.as_str()).collect();
        assert!(
            distinct.len() > 45,
            "from a CSPRNG, 50 draws of 10^8 hardly repeat"
        );
    }

    #[test]
    fn format_is_exactly_eight_half_width_digits() {
        assert!(is_format("01234567"));
        assert!(!is_format("1234567"), "7 digits");
        assert!(!is_format("123456789"), "9 digits");
        assert!(
            !is_format("１２３４５６７８"),
            "full-width is normalised at the edge, not here"
        );
        assert!(!is_format("1234567a"));
    }

    #[test]
    fn lives_ten_minutes_once() {
        let sent = 1_000;
        let exp = expires_at(sent);
        assert!(
            is_live(None, exp, sent + TTL_SECS - 1),
            "still valid in the last second"
        );
        assert!(
            !is_live(None, exp, sent + TTL_SECS),
            "gone after 10 minutes"
        );
        assert!(!is_live(Some(sent + 5), exp, sent + 6), "used once: gone");
    }

    #[test]
    fn resends_are_limited() {
        assert!(may_send(0, 0) && may_send(1, 1) && may_send(2, 2));
        assert!(
            !may_send(MAX_SENDS, 3),
            "the first mail and two resends, no more"
        );
        assert!(
            !may_send(0, MAX_PER_HOUR),
            "ten an hour to one customer, no more"
        );
    }

    #[test]
    fn otp_users_never_need_it_except_for_issuance() {
        assert!(needs_mail_password(Operation::Issue, false));
        assert!(needs_mail_password(Operation::Issue, true));
        let new_payee = Operation::Transfer { known_payee: false };
        let known = Operation::Transfer { known_payee: true };
        assert!(needs_mail_password(new_payee, false));
        assert!(
            !needs_mail_password(new_payee, true),
            "the OTP takes its place"
        );
        assert!(
            !needs_mail_password(known, false),
            "a payee used before is registered"
        );
        assert!(needs_mail_password(Operation::EmailChange, false));
        assert!(!needs_mail_password(Operation::EmailChange, true));
    }

    #[test]
    fn a_draft_without_a_mailed_password_does_not_stand_once_otp_has_ended() {
        let new_payee = Operation::Transfer { known_payee: false };
        let known = Operation::Transfer { known_payee: true };
        assert!(
            draft_still_holds(new_payee, false, true),
            "OTP in use still"
        );
        assert!(
            !draft_still_holds(new_payee, false, false),
            "OTP ended: the new payee needs the mailed password"
        );
        assert!(draft_still_holds(new_payee, true, false));
        assert!(
            draft_still_holds(known, false, false),
            "a known payee needs none"
        );
        assert!(!draft_still_holds(Operation::EmailChange, false, false));
        assert!(
            draft_still_holds(Operation::EmailChange, true, true),
            "asked for where the code would do: more than needed, it stands"
        );
    }
}
