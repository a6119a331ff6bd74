//! The confirmation step every 確定する shares (issuance, transfers, the e-mail change): the
//! confirmation password, the メール通知パスワード (issue 19) or the one-time password, checked
//! in one place ([`Ctx::confirm`]); and the mailed password's parts: sending it for a draft, its
//! field (full-width digits accepted, normalised here at the edge), its messages, and 再送信
//! (resend) with its limit.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::i18n::{msg, Lang};
use super::session::{self, Session};
use super::{ctx, see_other, Ctx, FieldErrors};
use crate::domain::mail_password::{self as rule, MailPurpose};
use crate::engine::{MailCheck, MailSend};
use crate::mail::compose::MailPasswordFor;
use crate::web::{AppState, ClientIp};

/// The field's name in every form.
pub const FIELD: &str = "mail_password";

/// What a confirmation step asks for besides the confirmation password.
pub(crate) struct Confirm<'a> {
    /// The draft's request key (a mailed password belongs to it).
    pub(crate) request_key: &'a str,
    /// The audit's action.
    pub(crate) action: &'a str,
    /// The メール通知パスワード, judged with the confirmation password as one attempt.
    pub(crate) mail: bool,
    /// The customer's token when OTP is in use: its code is asked for too.
    pub(crate) code_user: Option<&'a str>,
    /// The transfer as the bank received it, when its code must be a transaction code
    /// (取引認証) rather than the one-time password.
    pub(crate) transaction: Option<&'a protocol::ocra::Transaction>,
}

pub use crate::domain::fields::half_width_digits;

/// The mailed password typed into the form, normalised; a format error goes in `errors`.
pub fn read_field(
    form: &HashMap<String, String>,
    lang: Lang,
    errors: &mut FieldErrors,
) -> Zeroizing<String> {
    let raw = Zeroizing::new(form.get(FIELD).cloned().unwrap_or_default());
    let v = Zeroizing::new(half_width_digits(raw.trim()));
    if v.is_empty() {
        errors.add(lang, FIELD, "err_required");
    } else if !rule::is_format(&v) {
        errors.add(lang, FIELD, "err_mail_password_format");
    }
    v
}

/// The messages of a check that did not pass; true when it passed.
pub fn check_passed(st: &AppState, lang: Lang, errors: &mut FieldErrors, check: MailCheck) -> bool {
    match check {
        MailCheck::Right | MailCheck::AlreadyUsed => return true,
        MailCheck::ConfirmationWrong => {
            errors.add(lang, "confirmation_password", "err_confirmation_wrong");
        }
        MailCheck::MailWrong => errors.add(lang, FIELD, "err_mail_password_wrong"),
        MailCheck::MailGone => errors.add(lang, FIELD, "err_mail_password_gone"),
        MailCheck::Locked { until } => {
            errors.add_locked(
                st,
                lang,
                "confirmation_password",
                "err_confirmation_locked",
                until,
            );
        }
    }
    false
}

/// The registered address shown masked (`t***@example.jp`): enough to recognise, not to read.
pub fn masked(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first: String = local.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

/// What the mailed password of a draft confirms, read from the draft.
fn what_of(draft: &Value) -> Option<(MailPurpose, MailPasswordFor<'_>)> {
    let s = |k: &str| draft.get(k).and_then(Value::as_str);
    match s("kind")? {
        "issue" => Some((
            MailPurpose::Issue,
            MailPasswordFor::Issue {
                new_email: s("email")?,
            },
        )),
        "transfer" => {
            let payee = draft.get("payee")?;
            let field = |k: &str| payee.get(k).and_then(Value::as_str);
            Some((
                MailPurpose::Transfer,
                MailPasswordFor::Transfer {
                    payee: field("name")?,
                    bank_code: field("bank_code")?,
                    branch_code: field("branch_code")?,
                    account_type: field("account_type")?,
                    account_number: field("account_number")?,
                    amount: draft.get("amount").and_then(Value::as_i64)?,
                },
            ))
        }
        "email" => Some((
            MailPurpose::EmailChange,
            MailPasswordFor::EmailChange {
                new_email: s("email")?,
            },
        )),
        _ => None,
    }
}

/// Where a draft's confirmation screen is.
fn confirm_path(draft: &Value) -> &'static str {
    match draft.get("kind").and_then(Value::as_str) {
        Some("issue") => "/otp/issue/confirm",
        Some("transfer") => "/transfer/confirm",
        Some("email") => "/settings/email/confirm",
        _ => "/top",
    }
}

impl Ctx {
    /// Send the mailed password for `draft` (before it is saved: its request key names it).
    ///
    /// # Errors
    /// An error page when the engine cannot answer.
    pub(crate) async fn send_mail_password(
        &self,
        draft: &Value,
        ip: &ClientIp,
    ) -> Result<MailSend, Response> {
        let key = draft
            .get("request_key")
            .and_then(Value::as_str)
            .unwrap_or("");
        let Some((purpose, what)) = what_of(draft) else {
            return Ok(MailSend::LimitReached);
        };
        self.st
            .engine
            .send_mail_password(
                self.sess.customer(),
                &self.sess.id_hash,
                key,
                purpose,
                what,
                &session::actor(&self.sess, ip),
            )
            .await
            .map_err(|e| self.error(e))
    }

    /// The template context of the mailed-password panel on a confirmation screen.
    pub(crate) async fn mail_password_panel(&self, notice: Option<&str>) -> Value {
        let to = self
            .st
            .engine
            .customer(self.sess.customer())
            .await
            .ok()
            .flatten()
            .and_then(|c| c.email)
            .map(|e| masked(&e))
            .unwrap_or_default();
        let notice = match notice {
            Some("resent") => Some(msg(self.lang, "mail_password_resent")),
            Some("limit") => Some(msg(self.lang, "mail_password_resend_limit")),
            _ => None,
        };
        json!({
            "sent_to": msg(self.lang, "mail_password_sent_to").replace("{to}", &to),
            "notice": notice,
        })
    }

    /// Check the confirmation password and the mailed password of the draft's request.
    ///
    /// # Errors
    /// An error page when the engine cannot answer.
    /// The confirmation step of a 確定する: the confirmation password's form, then either the
    /// confirmation password with the メール通知パスワード as one attempt or the confirmation
    /// password alone (both under the customer's password lockout), then the one-time password
    /// when OTP is in use (counted toward the token's lock). The field errors are empty when
    /// every check passed.
    ///
    /// # Errors
    /// An error page when the engine cannot answer.
    pub(crate) async fn confirm(
        &self,
        form: &HashMap<String, String>,
        ip: &ClientIp,
        need: Confirm<'_>,
    ) -> Result<FieldErrors, Response> {
        let lang = self.lang;
        let pw = Zeroizing::new(
            form.get("confirmation_password")
                .cloned()
                .unwrap_or_default(),
        );
        let mut errors = FieldErrors::default();
        if pw.is_empty() {
            errors.add(lang, "confirmation_password", "err_required");
        } else if !crate::domain::fields::is_confirmation_password(&pw) {
            errors.add(lang, "confirmation_password", "err_confirmation_format");
        }
        if need.code_user.is_some() && form.get("code").is_none_or(|v| v.trim().is_empty()) {
            errors.add(lang, "code", "err_required");
        }
        let mail_pw = if need.mail {
            read_field(form, lang, &mut errors)
        } else {
            Zeroizing::new(String::new())
        };
        if !errors.is_empty() {
            return Ok(errors);
        }
        if need.mail {
            let check = self
                .check_with_mail_password(need.request_key, pw, mail_pw, ip, need.action)
                .await?;
            if !check_passed(&self.st, lang, &mut errors, check) {
                return Ok(errors);
            }
        } else {
            let check = self
                .st
                .engine
                .check_confirmation_password(
                    self.sess.customer(),
                    pw,
                    &session::actor(&self.sess, ip),
                    need.action,
                )
                .await
                .map_err(|e| self.error(e))?;
            if !errors.confirmation_passed(&self.st, lang, check) {
                return Ok(errors);
            }
        }
        if let Some(user_id) = need.code_user {
            super::otp::check_code(
                &self.st,
                lang,
                &self.sess,
                user_id,
                form.get("code"),
                match need.transaction {
                    Some(tx) => super::otp::CodeFor::Transaction(tx),
                    None => super::otp::CodeFor::Totp(crate::domain::Purpose::Transfer),
                },
                ip,
                &mut errors,
            )
            .await?;
        }
        Ok(errors)
    }

    pub(crate) async fn check_with_mail_password(
        &self,
        request_key: &str,
        confirmation_password: Zeroizing<String>,
        mail_password: Zeroizing<String>,
        ip: &ClientIp,
        action: &str,
    ) -> Result<MailCheck, Response> {
        self.st
            .engine
            .check_with_mail_password(
                self.sess.customer(),
                &self.sess.id_hash,
                request_key,
                confirmation_password,
                mail_password,
                &session::actor(&self.sess, ip),
                action,
            )
            .await
            .map_err(|e| self.error(e))
    }
}

/// 再送信: a new mailed password for the draft in progress, up to the limit; back to its
/// confirmation screen with a notice.
pub async fn resend(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Result<Response, Response> {
    let c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let Some(draft) = needs_mail(&c.sess) else {
        return Ok(see_other("/top"));
    };
    let key = draft
        .get("request_key")
        .and_then(Value::as_str)
        .unwrap_or("");
    if form.get("request_key").map(String::as_str) != Some(key) {
        return Ok(see_other(confirm_path(&draft)));
    }
    let notice = match c.send_mail_password(&draft, &ip).await? {
        MailSend::Sent { .. } => "resent",
        MailSend::LimitReached | MailSend::NoAddress => "limit",
    };
    Ok(see_other(&format!(
        "{}?mail={notice}",
        confirm_path(&draft)
    )))
}

/// The session's draft when it waits for a mailed password (and was not completed).
fn needs_mail(sess: &Session) -> Option<Value> {
    sess.draft.clone().filter(|d| {
        d.get("mail_password").and_then(Value::as_bool) == Some(true)
            && d.get("issued_user_id").is_none()
            && d.get("done_id").is_none()
            && d.get("done").is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_is_masked() {
        assert_eq!(masked("taro@example.jp"), "t***@example.jp");
        assert_eq!(masked("nonsense"), "***");
    }
}
