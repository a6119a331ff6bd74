//! A transfer (振込): the payee account as Zengin has it (bank, branch, type, account number,
//! name in half-width katakana; or a registered payee) and the amount → confirm with the
//! confirmation password and, while OTP is in use, a code → done, recorded in the transfers
//! table. The code is the ordinary one-time password, or a transaction code (取引認証, issue 16)
//! when the configured policy asks for one: then the confirmation screen shows the transfer as
//! the bank received it with a QR code (an SVG drawn here) and the fields to type into the app
//! instead, and only a code computed over that payee account and amount is accepted. Without a
//! valid code while OTP is active nothing is recorded.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::Form;
use serde_json::{json, Value};

use protocol::ocra::{ChallengeNonce, Transaction, TransactionChallenge};

use super::i18n::msg;
use super::mail_password::Confirm;
use super::session;
use super::{ctx, see_other, Ctx, FieldErrors};
use crate::domain::fields::half_width_digits;
use crate::domain::mail_password::{draft_still_holds, needs_mail_password, Operation};
use crate::domain::transfer::{LimitBreach, PayeeAccount, PayeeField};
use crate::engine::{EngineError, MailSend, TransferRequest};
use crate::web::{AppState, ClientIp};

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

    /// The input screen with the customer's registered payees and what they typed.
    async fn transfer_input_page(&self, values: Value, errors: &FieldErrors) -> Page {
        let payees = self
            .st
            .engine
            .payees(self.sess.customer())
            .await
            .map_err(|e| self.error(e))?;
        let payees: Vec<Value> = payees
            .iter()
            .map(|p| {
                json!({
                    "id": p.id,
                    "label": format!(
                        "{} ({} {} {} {})",
                        p.name,
                        p.bank_code,
                        p.branch_code,
                        account_type_label(self.lang, &p.account_type),
                        p.account_number,
                    ),
                })
            })
            .collect();
        let max = self.st.engine.transfer_rules().max_amount;
        Ok(self.page(
            "transfer_input.html",
            "/transfer",
            None,
            "transfer_title_input",
            json!({
                "values": values,
                "payees": payees,
                "amount_hint": msg(self.lang, "amount_hint").replace("{max}", &format_yen(max)),
            }),
            errors,
        ))
    }
}

fn account_type_label(lang: super::i18n::Lang, code: &str) -> String {
    msg(
        lang,
        if code == "2" {
            "account_type_2"
        } else {
            "account_type_1"
        },
    )
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

fn field_key(f: PayeeField) -> &'static str {
    match f {
        PayeeField::BankCode => "err_bank_code",
        PayeeField::BranchCode => "err_branch_code",
        PayeeField::AccountType => "err_account_type",
        PayeeField::AccountNumber => "err_account_number",
        PayeeField::Name => "err_payee",
    }
}

/// The draft's payee account (checked when the draft was made).
fn draft_payee(d: &Value) -> Option<PayeeAccount> {
    serde_json::from_value(d.get("payee")?.clone()).ok()
}

fn draft_amount(d: &Value) -> i64 {
    d.get("amount").and_then(Value::as_i64).unwrap_or(0)
}

pub async fn input_form(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    let d = c.draft().filter(|d| d.get("done_id").is_none());
    let mut values = serde_json::Map::new();
    if let Some(p) = d.as_ref().and_then(draft_payee) {
        values.insert("bank_code".into(), json!(p.bank_code));
        values.insert("branch_code".into(), json!(p.branch_code));
        values.insert("account_type".into(), json!(p.account_type));
        values.insert("account_number".into(), json!(p.account_number));
        values.insert("payee".into(), json!(p.name));
    }
    if let Some(d) = &d {
        values.insert("amount".into(), json!(draft_amount(d).to_string()));
    }
    if d.is_none() {
        values.insert("account_type".into(), json!("1"));
    }
    c.transfer_input_page(Value::Object(values), &FieldErrors::default())
        .await
}

pub async fn input(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let mut c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let get = |k: &str| form.get(k).map_or("", |v| v.trim()).to_owned();
    // A registered payee chosen from the list stands for its account; otherwise the typed one.
    let chosen = get("payee_id");
    let registered = if chosen.is_empty() {
        None
    } else {
        let payees =
            c.st.engine
                .payees(c.sess.customer())
                .await
                .map_err(|e| c.error(e))?;
        payees.into_iter().find(|p| p.id.to_string() == chosen)
    };
    let (bank, branch, kind, account, name) = match &registered {
        Some(p) => (
            p.bank_code.clone(),
            p.branch_code.clone(),
            p.account_type.clone(),
            p.account_number.clone(),
            p.name.clone(),
        ),
        None => (
            half_width_digits(&get("bank_code")),
            half_width_digits(&get("branch_code")),
            get("account_type"),
            half_width_digits(&get("account_number")),
            get("payee"),
        ),
    };
    let amount_text = half_width_digits(&get("amount"));
    let values = json!({
        "bank_code": bank, "branch_code": branch, "account_type": kind,
        "account_number": account, "payee": name, "amount": amount_text,
    });
    let mut errors = FieldErrors::default();
    let payee = match PayeeAccount::parse(&bank, &branch, &kind, &account, &name) {
        Ok(p) => Some(p),
        Err(wrong) => {
            for f in wrong {
                let empty = values
                    .get(f.name())
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty);
                errors.add(
                    c.lang,
                    f.name(),
                    if empty { "err_required" } else { field_key(f) },
                );
            }
            None
        }
    };
    let rules = c.st.engine.transfer_rules().clone();
    let amount_error = |left: Option<i64>| match left {
        None => msg(c.lang, "err_amount").replace("{max}", &format_yen(rules.max_amount)),
        Some(left) => msg(c.lang, "err_daily_limit")
            .replace("{limit}", &format_yen(rules.daily_limit))
            .replace("{left}", &format_yen(left)),
    };
    let mut amount = amount_text
        .parse::<i64>()
        .ok()
        .filter(|_| amount_text.bytes().all(|b| b.is_ascii_digit()));
    if amount_text.is_empty() {
        errors.add(c.lang, "amount", "err_required");
    } else if let Some(a) = amount {
        let checked =
            c.st.engine
                .check_transfer_amount(c.sess.customer(), a)
                .await
                .map_err(|e| c.error(e))?;
        match checked {
            Ok(()) => {}
            Err(LimitBreach::PerTransfer) => {
                errors.add_text("amount", amount_error(None));
                amount = None;
            }
            Err(LimitBreach::Daily { left }) => {
                errors.add_text("amount", amount_error(Some(left)));
                amount = None;
            }
        }
    } else {
        errors.add_text("amount", amount_error(None));
    }
    let (Some(payee), Some(amount), true) = (payee, amount, errors.is_empty()) else {
        return c.transfer_input_page(values, &errors).await;
    };
    let otp = c.otp_user().await?.is_some();
    let new_payee =
        c.st.engine
            .payee_is_new(c.sess.customer(), &payee)
            .await
            .map_err(|e| c.error(e))?;
    // A payee not used before by a customer without an active token: a メール通知パスワード
    // with the payee and amount in it, to the registered address (issue 19). With an active
    // token the policy may ask for a transaction code instead of the one-time password.
    let mail = needs_mail_password(
        Operation::Transfer {
            known_payee: !new_payee,
        },
        otp,
    );
    let tx_auth = otp && rules.transaction_auth.applies(new_payee, amount);
    let draft = json!({
        "kind": "transfer",
        "payee": payee,
        "amount": amount,
        "new_payee": new_payee,
        "request_key": hex::encode(rand::random::<[u8; 16]>()),
        "mail_password": mail,
        "tx_auth": tx_auth,
        "nonce": tx_auth.then(|| ChallengeNonce::generate().to_base32()),
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
                return c.transfer_input_page(values, &errors).await;
            }
        }
    }
    c.save(Some(draft)).await?;
    Ok(see_other("/transfer/confirm"))
}

fn needs_mail(d: &Value) -> bool {
    d.get("mail_password").and_then(Value::as_bool) == Some(true)
}

/// Whether the draft's payee is new to the customer; a draft without the mark is taken as a
/// new payee (the stricter reading: it needs the code or a mailed password).
fn draft_new_payee(d: &Value) -> bool {
    d.get("new_payee").and_then(Value::as_bool).unwrap_or(true)
}

fn needs_tx_auth(d: &Value) -> bool {
    d.get("tx_auth").and_then(Value::as_bool) == Some(true)
}

/// The QR code of a transaction challenge, as inline SVG (no script, no image request).
fn challenge_svg(text: &str) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(text.as_bytes(), qrcode::EcLevel::M).ok()?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    // Inline in HTML: without the XML declaration.
    Some(svg[svg.find("<svg")?..].to_owned())
}

async fn confirm_page(
    c: &Ctx,
    d: &Value,
    otp_user: Option<&str>,
    notice: Option<&str>,
    errors: &FieldErrors,
) -> Response {
    let mail = if needs_mail(d) {
        c.mail_password_panel(notice).await
    } else {
        Value::Bool(false)
    };
    let payee = draft_payee(d);
    let amount = draft_amount(d);
    let challenge = match (needs_tx_auth(d), otp_user, &payee) {
        (true, Some(user_id), Some(p)) => {
            let nonce = d
                .get("nonce")
                .and_then(Value::as_str)
                .and_then(|n| ChallengeNonce::from_base32(n).ok())
                .unwrap_or_else(ChallengeNonce::generate);
            let svg = match (
                p.transaction(amount),
                user_id.parse(),
                c.st.engine.config().service_id.as_str().parse(),
            ) {
                (Ok(transaction), Ok(user_id), Ok(service_id)) => challenge_svg(
                    &TransactionChallenge {
                        service_id,
                        user_id,
                        transaction,
                        payee_name: p.name.clone(),
                        nonce,
                    }
                    .encode(),
                ),
                _ => None,
            };
            json!({ "svg": svg })
        }
        _ => Value::Bool(false),
    };
    c.page(
        "transfer_confirm.html",
        "/transfer/confirm",
        None,
        "transfer_title_confirm",
        json!({
            "payee": payee.as_ref().map(|p| json!({
                "bank_code": p.bank_code,
                "branch_code": p.branch_code,
                "account_type": account_type_label(c.lang, &p.account_type),
                "account_number": p.account_number,
                "name": p.name,
            })),
            "new_payee": draft_new_payee(d),
            "amount": format_yen(amount),
            "amount_digits": amount.to_string(),
            "request_key": d.get("request_key"),
            "otp": otp_user.is_some(),
            "tx": challenge,
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
    let otp_user = c.otp_user().await?;
    Ok(confirm_page(
        &c,
        &d,
        otp_user.as_deref(),
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
    let site = st.site.clone();
    let _turn = site.one_at_a_time(&headers, "transfer").await;
    let mut c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let Some(d) = c.draft() else {
        return Ok(see_other("/transfer"));
    };
    let Some(key) = super::posted_request_key(&d, &form) else {
        return Ok(see_other("/transfer"));
    };
    let Some(payee) = draft_payee(&d) else {
        return Ok(see_other("/transfer"));
    };
    let amount = draft_amount(&d);
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
    let known_payee = !draft_new_payee(&d);
    if !draft_still_holds(
        Operation::Transfer { known_payee },
        needs_mail(&d),
        otp_user.is_some(),
    ) {
        // OTP use ended since the input step: start again (a mailed password is needed now).
        return Ok(see_other("/transfer"));
    }
    // The transaction the code must sign: the transfer as the bank received it (the draft),
    // never anything the page posts now.
    let transaction: Option<Transaction> = if needs_tx_auth(&d) && otp_user.is_some() {
        match payee.transaction(amount) {
            Ok(t) => Some(t),
            Err(_) => return Ok(see_other("/transfer")),
        }
    } else {
        None
    };
    let errors = c
        .confirm(
            &form,
            &ip,
            Confirm {
                request_key: &key,
                action: "transfer",
                mail: needs_mail(&d),
                code_user: otp_user.as_deref(),
                transaction: transaction.as_ref(),
            },
        )
        .await?;
    if !errors.is_empty() {
        return Ok(confirm_page(&c, &d, otp_user.as_deref(), None, &errors).await);
    }
    let actor = session::actor(&c.sess, &ip);
    let digest = transaction.as_ref().map(Transaction::digest_hex);
    let done = match engine
        .record_transfer(
            &TransferRequest {
                customer_id: c.sess.customer(),
                request_key: &key,
                payee: &payee,
                amount,
                user_id: otp_user.as_deref(),
                new_payee: draft_new_payee(&d),
                tx_digest: digest.as_deref(),
            },
            &actor,
        )
        .await
    {
        Ok(done) => done,
        Err(EngineError::Invalid {
            code: "DAILY_LIMIT",
            ..
        }) => {
            let mut errors = FieldErrors::default();
            let left = engine
                .daily_allowance(c.sess.customer())
                .await
                .map_err(|e| c.error(e))?;
            errors.add_text(
                "amount",
                msg(c.lang, "err_daily_limit")
                    .replace("{limit}", &format_yen(engine.transfer_rules().daily_limit))
                    .replace("{left}", &format_yen(left)),
            );
            return Ok(confirm_page(&c, &d, otp_user.as_deref(), None, &errors).await);
        }
        Err(e) => return Err(c.error(e)),
    };
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
    let payee = draft_payee(&d);
    Ok(c.page(
        "transfer_done.html",
        "/transfer/done",
        None,
        "transfer_title_done",
        json!({
            "payee": payee.as_ref().map(|p| p.name.clone()),
            "account": payee.as_ref().map(|p| format!(
                "{} {} {} {}",
                p.bank_code,
                p.branch_code,
                account_type_label(c.lang, &p.account_type),
                p.account_number
            )),
            "amount": format_yen(draft_amount(&d)),
            "reference": d.get("reference"),
            "tx_auth": needs_tx_auth(&d),
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

    #[test]
    fn the_challenge_is_drawn_as_inline_svg() {
        let svg = super::challenge_svg(
            "OTX2:10112231:999800000009:000112311234567000000150000:AAAAAAAAAAAAAAAAAAAAAAAAAA:ﾔﾏﾀﾞ ﾀﾛｳ",
        )
        .unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("<path") || svg.contains("<rect"));
        assert!(!svg.contains("<script"));
    }
}
