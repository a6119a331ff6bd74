//! A transfer (振込): payee and amount → confirm with the confirmation password and, while
//! OTP is in use, a code → done, recorded in the transfers table. Without a valid code while
//! OTP is active nothing is recorded.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use serde_json::{json, Value};

use super::mail_password::Confirm;
use super::session;
use super::{ctx, see_other, Ctx, FieldErrors};
use crate::domain::mail_password::{needs_mail_password, Operation};
use crate::engine::MailSend;
use crate::web::{AppState, ClientIp};

const MAX_AMOUNT: i64 = 10_000_000;

type Page = Result<Response, Response>;

impl Ctx {
    fn draft(&self) -> Option<Value> {
        self.sess
            .draft
            .clone()
            .filter(|d| d.get("kind").and_then(Value::as_str) == Some("transfer"))
    }

    async fn otp_user(&self) -> Result<Option<String>, Response> {
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

    async fn save(&mut self, draft: Option<Value>) -> Result<(), Response> {
        let st = self.st.clone();
        session::set_draft(&st, &mut self.sess, draft)
            .await
            .map_err(|e| self.error(e))
    }
}

fn format_yen(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

pub async fn input_form(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    let d = c.draft().filter(|d| d.get("done_id").is_none());
    let v = |k: &str| {
        d.as_ref()
            .and_then(|d| d.get(k))
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_default()
    };
    Ok(c.page(
        "transfer_input.html",
        "/transfer",
        None,
        "transfer_title_input",
        json!({ "values": { "payee": v("payee"), "amount": v("amount") } }),
        &FieldErrors::default(),
    ))
}

pub async fn input(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let mut c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let payee = form.get("payee").map_or("", |v| v.trim()).to_owned();
    let amount_text =
        crate::domain::fields::half_width_digits(form.get("amount").map_or("", |v| v.trim()));
    let mut errors = FieldErrors::default();
    if payee.is_empty() {
        errors.add(c.lang, "payee", "err_required");
    } else if payee.chars().count() > 40 || payee.chars().any(char::is_control) {
        errors.add(c.lang, "payee", "err_payee");
    }
    let amount = amount_text.parse::<i64>().ok().filter(|a| {
        (1..=MAX_AMOUNT).contains(a) && amount_text.bytes().all(|b| b.is_ascii_digit())
    });
    if amount_text.is_empty() {
        errors.add(c.lang, "amount", "err_required");
    } else if amount.is_none() {
        errors.add(c.lang, "amount", "err_amount");
    }
    let (Some(amount), true) = (amount, errors.is_empty()) else {
        return Ok(c.page(
            "transfer_input.html",
            "/transfer",
            None,
            "transfer_title_input",
            json!({ "values": { "payee": payee, "amount": amount_text } }),
            &errors,
        ));
    };
    // A payee not used before by a customer without an active token: a メール通知パスワード
    // with the payee and amount in it, to the registered address (issue 19).
    let otp = c.otp_user().await?.is_some();
    let known_payee =
        c.st.engine
            .payee_used(c.sess.customer(), &payee)
            .await
            .map_err(|e| c.error(e))?;
    let mail = needs_mail_password(Operation::Transfer { known_payee }, otp);
    let draft = json!({
        "kind": "transfer",
        "payee": payee,
        "amount": amount,
        "request_key": hex::encode(rand::random::<[u8; 16]>()),
        "mail_password": mail,
    });
    if mail {
        match c.send_mail_password(&draft, &ip).await? {
            MailSend::Sent { .. } => {}
            refused @ (MailSend::NoAddress | MailSend::LimitReached) => {
                let mut errors = FieldErrors::default();
                let key = if refused == MailSend::NoAddress {
                    "err_mail_no_address"
                } else {
                    "mail_password_resend_limit"
                };
                errors.add(c.lang, "payee", key);
                return Ok(c.page(
                    "transfer_input.html",
                    "/transfer",
                    None,
                    "transfer_title_input",
                    json!({ "values": { "payee": payee, "amount": amount_text } }),
                    &errors,
                ));
            }
        }
    }
    c.save(Some(draft)).await?;
    Ok(see_other("/transfer/confirm"))
}

fn needs_mail(d: &Value) -> bool {
    d.get("mail_password").and_then(Value::as_bool) == Some(true)
}

async fn confirm_page(
    c: &Ctx,
    d: &Value,
    otp: bool,
    notice: Option<&str>,
    errors: &FieldErrors,
) -> Response {
    let mail = if needs_mail(d) {
        c.mail_password_panel(notice).await
    } else {
        Value::Bool(false)
    };
    c.page(
        "transfer_confirm.html",
        "/transfer/confirm",
        None,
        "transfer_title_confirm",
        json!({
            "payee": d.get("payee"),
            "amount": format_yen(d.get("amount").and_then(Value::as_i64).unwrap_or(0)),
            "request_key": d.get("request_key"),
            "otp": otp,
            "mail": mail,
        }),
        errors,
    )
}

pub async fn confirm_form(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Page {
    let c = ctx(st, &headers).await?;
    let Some(d) = c.draft() else {
        return Ok(see_other("/transfer"));
    };
    if d.get("done_id").is_some() {
        return Ok(see_other("/transfer/done"));
    }
    let otp = c.otp_user().await?.is_some();
    Ok(confirm_page(
        &c,
        &d,
        otp,
        q.get("mail").map(String::as_str),
        &FieldErrors::default(),
    )
    .await)
}

/// 確定する: once per request key; a double submit shows the first result.
pub async fn commit(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let mut c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let Some(d) = c.draft() else {
        return Ok(see_other("/transfer"));
    };
    let Some(key) = super::posted_request_key(&d, &form) else {
        return Ok(see_other("/transfer"));
    };
    let engine = c.st.engine.clone();
    if d.get("done_id").is_some()
        || engine
            .transfer_recorded(&key)
            .await
            .map_err(|e| c.error(e))?
    {
        return Ok(see_other("/transfer/done"));
    }
    let otp_user = c.otp_user().await?;
    let errors = c
        .confirm(
            &form,
            &ip,
            Confirm {
                request_key: &key,
                action: "transfer",
                mail: needs_mail(&d),
                code_user: otp_user.as_deref(),
            },
        )
        .await?;
    if !errors.is_empty() {
        return Ok(confirm_page(&c, &d, otp_user.is_some(), None, &errors).await);
    }
    let actor = session::actor(&c.sess, &ip);
    let payee = d.get("payee").and_then(Value::as_str).unwrap_or("");
    let amount = d.get("amount").and_then(Value::as_i64).unwrap_or(0);
    let done = engine
        .record_transfer(
            c.sess.customer(),
            &key,
            payee,
            amount,
            otp_user.as_deref(),
            &actor,
        )
        .await
        .map_err(|e| c.error(e))?;
    let mut finished = d.clone();
    if let Value::Object(m) = &mut finished {
        m.insert("done_id".into(), json!(done.id));
        m.insert("reference".into(), json!(done.reference));
    }
    c.save(Some(finished)).await?;
    Ok(see_other("/transfer/done"))
}

pub async fn done(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    let Some(d) = c.draft().filter(|d| d.get("done_id").is_some()) else {
        return Ok(see_other("/transfer"));
    };
    Ok(c.page(
        "transfer_done.html",
        "/transfer/done",
        None,
        "transfer_title_done",
        json!({
            "payee": d.get("payee"),
            "amount": format_yen(d.get("amount").and_then(Value::as_i64).unwrap_or(0)),
            "reference": d.get("reference"),
        }),
        &FieldErrors::default(),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn yen_is_grouped() {
        assert_eq!(super::format_yen(1), "1");
        assert_eq!(super::format_yen(1000), "1,000");
        assert_eq!(super::format_yen(10_000_000), "10,000,000");
    }
}
