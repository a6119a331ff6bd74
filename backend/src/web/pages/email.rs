//! Changing the registered e-mail address (登録メールアドレス変更, issue 19): new address twice →
//! confirm with the confirmation password and, for a customer without an active token, the
//! メール通知パスワード sent to the CURRENT registered address (a customer using OTP enters the
//! code instead) → done, with a notice to the old address.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde_json::{json, Value};

use super::i18n::msg;
use super::mail_password::Confirm;
use super::session;
use super::{ctx, message_page, see_other, Ctx, FieldErrors};
use crate::domain::fields;
use crate::domain::mail_password::{draft_still_holds, needs_mail_password, Operation};
use crate::engine::MailSend;
use crate::web::{AppState, ClientIp};

type Page = Result<Response, Response>;

impl Ctx {
    fn email_draft(&self) -> Option<Value> {
        self.sess
            .draft
            .clone()
            .filter(|d| d.get("kind").and_then(Value::as_str) == Some("email"))
    }

    async fn registered_email(&self) -> Result<Option<String>, Response> {
        Ok(self
            .st
            .engine
            .customer(self.sess.customer())
            .await
            .map_err(|e| self.error(e))?
            .and_then(|c| c.email))
    }

    /// The user ID of the customer's active token, if OTP is in use.
    async fn active_user(&self) -> Result<Option<String>, Response> {
        let ov = self
            .st
            .engine
            .overview(self.sess.customer())
            .await
            .map_err(|e| self.error(e))?;
        Ok(ov
            .otp_active()
            .then(|| ov.token.map(|t| t.user_id))
            .flatten())
    }

    async fn input_page(&self, email: &str, email2: &str, errors: &FieldErrors) -> Page {
        let current = self.registered_email().await?;
        Ok(self.page(
            "email_input.html",
            "/settings/email",
            None,
            "email_change_title_input",
            json!({ "current": current, "values": { "email": email, "email2": email2 } }),
            errors,
        ))
    }

    async fn email_confirm_page(
        &self,
        d: &Value,
        notice: Option<&str>,
        errors: &FieldErrors,
    ) -> Page {
        let mail = d.get("mail_password").and_then(Value::as_bool) == Some(true);
        let panel = if mail {
            self.mail_password_panel(notice).await
        } else {
            Value::Null
        };
        Ok(self.page(
            "email_confirm.html",
            "/settings/email/confirm",
            None,
            "email_change_title_confirm",
            json!({
                "email": d.get("email"),
                "request_key": d.get("request_key"),
                "otp": !mail,
                "mail": if mail { panel } else { Value::Bool(false) },
            }),
            errors,
        ))
    }
}

pub async fn input_form(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    c.input_page("", "", &FieldErrors::default()).await
}

pub async fn input(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let mut c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let lang = c.lang;
    let get = |k: &str| form.get(k).map_or("", |v| v.trim()).to_owned();
    let (email, email2) = (get("email"), get("email2"));
    let mut errors = FieldErrors::default();
    if email.is_empty() {
        errors.add(lang, "email", "err_required");
    } else if !fields::is_email(&email) {
        errors.add(lang, "email", "err_email");
    }
    if email2.is_empty() {
        errors.add(lang, "email2", "err_required");
    } else if email2 != email {
        errors.add(lang, "email2", "err_registered_email_mismatch");
    }
    if !errors.is_empty() {
        return c.input_page(&email, &email2, &errors).await;
    }
    let otp = c.active_user().await?.is_some();
    let mail = needs_mail_password(Operation::EmailChange, otp);
    let draft = json!({
        "kind": "email",
        "email": email,
        "request_key": hex::encode(rand::random::<[u8; 16]>()),
        "mail_password": mail,
    });
    if mail {
        match c.send_mail_password(&draft, &ip).await? {
            MailSend::Sent { .. } => {}
            refused @ (MailSend::NoAddress | MailSend::LimitReached) => {
                let key = if refused == MailSend::NoAddress {
                    "err_mail_no_address"
                } else {
                    "mail_password_resend_limit"
                };
                return Ok(message_page(
                    &c.st,
                    lang,
                    Some(&c.sess),
                    StatusCode::CONFLICT,
                    "email_change_title_input",
                    msg(lang, key),
                    Some(("/top", "to_top")),
                ));
            }
        }
    }
    let st = c.st.clone();
    if let Err(e) = session::set_draft(&st, &mut c.sess, Some(draft)).await {
        return Ok(c.error(e));
    }
    Ok(see_other("/settings/email/confirm"))
}

pub async fn confirm_form(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let c = ctx(st, &headers).await?;
    match c.email_draft() {
        Some(d) if d.get("done").is_some() => Ok(see_other("/settings/email/done")),
        Some(d) => {
            c.email_confirm_page(
                &d,
                q.get("mail").map(String::as_str),
                &FieldErrors::default(),
            )
            .await
        }
        None => Ok(see_other("/settings/email")),
    }
}

pub async fn commit(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    // A double submit waits for the first, then finds the draft done.
    let site = st.site.clone();
    let _turn = site.one_at_a_time(&headers, "email").await;
    let mut c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let Some(d) = c.email_draft() else {
        return Ok(see_other("/settings/email"));
    };
    let Some(key) = super::posted_request_key(&d, &form) else {
        return Ok(see_other("/settings/email"));
    };
    if d.get("done").is_some() {
        return Ok(see_other("/settings/email/done"));
    }
    let mail = d.get("mail_password").and_then(Value::as_bool) == Some(true);
    let otp_user = if mail { None } else { c.active_user().await? };
    if !draft_still_holds(Operation::EmailChange, mail, otp_user.is_some()) {
        // OTP use ended since the input step: start again (a mailed password is needed now).
        return Ok(see_other("/settings/email"));
    }
    let errors = c
        .confirm(
            &form,
            &ip,
            Confirm {
                request_key: &key,
                action: "email_change",
                mail,
                code_user: otp_user.as_deref(),
                transaction: None,
            },
        )
        .await?;
    if !errors.is_empty() {
        return c.email_confirm_page(&d, None, &errors).await;
    }
    let email = d.get("email").and_then(Value::as_str).unwrap_or("");
    if let Err(e) =
        c.st.engine
            .change_email(c.sess.customer(), email, &session::actor(&c.sess, &ip))
            .await
    {
        return Ok(c.error(e));
    }
    let mut done = d.clone();
    if let Value::Object(m) = &mut done {
        m.insert("done".into(), json!(true));
    }
    let st = c.st.clone();
    if let Err(e) = session::set_draft(&st, &mut c.sess, Some(done)).await {
        return Ok(c.error(e));
    }
    Ok(see_other("/settings/email/done"))
}

pub async fn done(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    let Some(d) = c.email_draft().filter(|d| d.get("done").is_some()) else {
        return Ok(see_other("/settings/email"));
    };
    Ok(c.page(
        "email_done.html",
        "/settings/email/done",
        None,
        "email_change_title_done",
        json!({ "email": d.get("email") }),
        &FieldErrors::default(),
    ))
}
