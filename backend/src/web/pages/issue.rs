//! Token issuance on the screens (トークン発行): the input, the confirmation with the
//! confirmation password and the メール通知パスワード, the completion, and cancelling.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::mail_password::Confirm;
use super::session::{self, Session};
use super::{ctx, see_other, Ctx, FieldErrors};
use crate::domain::{fields, DomainError};
use crate::engine::{EngineError, MailSend};
use crate::web::{AppState, ClientIp};

use super::otp::{issue_block_key, Page};

fn issue_draft(sess: &Session) -> Option<&Value> {
    sess.draft
        .as_ref()
        .filter(|d| d.get("kind").and_then(Value::as_str) == Some("issue"))
}

fn input_page(c: &Ctx, email: &str, email2: &str, errors: &FieldErrors) -> Response {
    c.page(
        "issue_input.html",
        "/otp/issue",
        None,
        "issue_title_input",
        json!({ "values": { "email": email, "email2": email2 } }),
        errors,
    )
}

pub async fn issue_form(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    let ov = c.overview().await?;
    if let Some(b) = ov.issue_block {
        return Ok(c.refuse(issue_block_key(b)));
    }
    let email = issue_draft(&c.sess)
        .filter(|d| d.get("issued_user_id").is_none())
        .and_then(|d| d.get("email"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    Ok(input_page(&c, &email, &email, &FieldErrors::default()))
}

pub async fn issue_input(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let mut c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let ov = c.overview().await?;
    if let Some(b) = ov.issue_block {
        return Ok(c.refuse(issue_block_key(b)));
    }
    let lang = c.lang;
    let get = |k: &str| form.get(k).map_or("", |v| v.trim()).to_owned();
    let (email, email2) = (get("email"), get("email2"));
    // Digits only: full-width ones (as a Japanese input method types them) count as digits.
    let digits = |k: &str| {
        Zeroizing::new(fields::half_width_digits(
            form.get(k).map_or("", |v| v.trim()),
        ))
    };
    let (pw, pw2) = (
        digits("activation_password"),
        digits("activation_password2"),
    );
    let mut errors = FieldErrors::default();
    if email.is_empty() {
        errors.add(lang, "email", "err_required");
    } else if !fields::is_email(&email) {
        errors.add(lang, "email", "err_email");
    }
    if email2.is_empty() {
        errors.add(lang, "email2", "err_required");
    } else if email2 != email {
        errors.add(lang, "email2", "err_email_mismatch");
    }
    if pw.is_empty() {
        errors.add(lang, "activation_password", "err_required");
    } else if !fields::is_activation_password(&pw) {
        errors.add(lang, "activation_password", "err_activation_password");
    }
    if pw2.is_empty() {
        errors.add(lang, "activation_password2", "err_required");
    } else if *pw2 != *pw {
        errors.add(lang, "activation_password2", "err_activation_mismatch");
    }
    if !errors.is_empty() {
        // Values are kept, passwords never.
        return Ok(input_page(&c, &email, &email2, &errors));
    }
    let act_hash = match c.st.engine.activation_credential(pw).await {
        Ok(h) => h,
        Err(e) => return Ok(c.error(e)),
    };
    let draft = json!({
        "kind": "issue",
        "email": email,
        "act_hash": act_hash,
        "request_key": hex::encode(rand::random::<[u8; 16]>()),
        "mail_password": true,
    });
    // The メール通知パスワード goes to the registered address (issue 19), never to the new one.
    match c.send_mail_password(&draft, &ip).await? {
        MailSend::Sent { .. } => {}
        MailSend::NoAddress => return Ok(c.refuse("err_mail_no_address")),
        MailSend::LimitReached => return Ok(c.refuse("mail_password_resend_limit")),
    }
    let st = c.st.clone();
    if let Err(e) = session::set_draft(&st, &mut c.sess, Some(draft)).await {
        return Ok(c.error(e));
    }
    Ok(see_other("/otp/issue/confirm"))
}

async fn confirm_page(
    c: &Ctx,
    draft: &Value,
    notice: Option<&str>,
    errors: &FieldErrors,
) -> Response {
    let mail = c.mail_password_panel(notice).await;
    c.page(
        "issue_confirm.html",
        "/otp/issue/confirm",
        None,
        "issue_title_confirm",
        json!({
            "email": draft.get("email"),
            "request_key": draft.get("request_key"),
            "mail": mail,
        }),
        errors,
    )
}

pub async fn issue_confirm_form(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let c = ctx(st, &headers).await?;
    match issue_draft(&c.sess) {
        Some(d) if d.get("issued_user_id").is_some() => Ok(see_other("/otp/issue/complete")),
        // A draft from before mailed passwords (issue 19): its input step again.
        Some(d) if d.get("mail_password").is_none() => Ok(see_other("/otp/issue")),
        Some(d) => Ok(confirm_page(
            &c,
            d,
            q.get("mail").map(String::as_str),
            &FieldErrors::default(),
        )
        .await),
        None => Ok(see_other("/otp/issue")),
    }
}

/// 確定する: idempotent through the confirm form's request key (a double submit issues one
/// token and sends one mail).
pub async fn issue_commit(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let mut c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let Some(draft) = issue_draft(&c.sess).cloned() else {
        return Ok(see_other("/otp/issue"));
    };
    let Some(key) = super::posted_request_key(&draft, &form) else {
        return Ok(see_other("/otp"));
    };
    if draft.get("issued_user_id").is_some() {
        return Ok(see_other("/otp/issue/complete"));
    }
    if draft.get("mail_password").is_none() {
        return Ok(see_other("/otp/issue"));
    }
    let errors = c
        .confirm(
            &form,
            &ip,
            Confirm {
                request_key: &key,
                action: "issue",
                mail: true,
                code_user: None,
                transaction: None,
            },
        )
        .await?;
    if !errors.is_empty() {
        return Ok(confirm_page(&c, &draft, None, &errors).await);
    }
    let actor = session::actor(&c.sess, &ip);
    let email = draft.get("email").and_then(Value::as_str).unwrap_or("");
    let act_hash = draft.get("act_hash").and_then(Value::as_str).unwrap_or("");
    let issued = match c
        .st
        .engine
        .issue_hashed(c.sess.customer(), email, act_hash, Some(&key), &actor)
        .await
    {
        Ok((issued, _url)) => issued,
        Err(EngineError::Domain(DomainError::LiveTokenExists(_))) => {
            return Ok(c.refuse("why_issue_live"))
        }
        Err(EngineError::Domain(DomainError::NextDay(_))) => {
            return Ok(c.refuse("why_issue_next_day"))
        }
        Err(e) => return Ok(c.error(e)),
    };
    c.issued(json!(email), &key, &issued.user_id, &issued.service_id)
        .await
}

impl Ctx {
    /// Remember the issuance in the session and go to its complete screen.
    async fn issued(&mut self, email: Value, key: &str, user_id: &str, service_id: &str) -> Page {
        let done = json!({
            "kind": "issue",
            "email": email,
            "request_key": key,
            "issued_user_id": user_id,
            "service_id": service_id,
        });
        let st = self.st.clone();
        if let Err(e) = session::set_draft(&st, &mut self.sess, Some(done)).await {
            return Ok(self.error(e));
        }
        Ok(see_other("/otp/issue/complete"))
    }
}

pub async fn issue_cancel(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let mut c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let st = c.st.clone();
    if let Err(e) = session::set_draft(&st, &mut c.sess, None).await {
        return Ok(c.error(e));
    }
    Ok(see_other("/otp"))
}

pub async fn issue_complete(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    let Some(d) = issue_draft(&c.sess).filter(|d| d.get("issued_user_id").is_some()) else {
        return Ok(see_other("/otp"));
    };
    Ok(c.page(
        "issue_complete.html",
        "/otp/issue/complete",
        None,
        "issue_title_complete",
        json!({
            "email": d.get("email"),
            "service_id": d.get("service_id"),
            "user_id": d.get("issued_user_id"),
        }),
        &FieldErrors::default(),
    ))
}
