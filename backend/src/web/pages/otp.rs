//! BOP001 (the OTP menu), token issuance in three steps, BOK001/BOK002 (start of OTP use) and
//! BOS001/BOS002 (end of OTP use). A customer reaches only their own token: every screen
//! works on the session's customer, never on an ID from the request.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::i18n::{msg, Lang};
use super::mail_password::{check_passed, read_field};
use super::session::{self, Session};
use super::{ctx, engine_error_page, message_page, see_other, Ctx, FieldErrors};
use crate::domain::{fields, DomainError, IssueBlock, Outcome, Purpose, TokenState};
use crate::engine::{EngineError, MailSend, Overview};
use crate::web::{AppState, ClientIp};

/// The message key of BOP001's status label (DESIGN §4).
pub fn status_key(state: Option<TokenState>) -> &'static str {
    match state {
        None | Some(TokenState::Voided) => "status_none",
        Some(TokenState::Issued | TokenState::LinkOpened | TokenState::Provisioned) => {
            "status_issued"
        }
        Some(TokenState::Active) => "status_active",
        Some(TokenState::Deactivated | TokenState::Revoked) => "status_deactivated",
    }
}

/// The answer of a code field.
pub enum CodeCheck {
    Passed,
    /// The field has its message in the errors.
    Failed,
}

/// Check a code field through the engine; wrong codes count toward the lock (DESIGN §5) on
/// every screen that takes one.
///
/// # Errors
/// An error page when the engine cannot answer.
#[allow(clippy::too_many_arguments)] // reason: a screen's context, named at each call
pub async fn check_code(
    st: &AppState,
    lang: Lang,
    sess: &Session,
    user_id: &str,
    code: Option<&String>,
    purpose: Purpose,
    ip: &ClientIp,
    errors: &mut FieldErrors,
) -> Result<CodeCheck, Response> {
    let code = Zeroizing::new(fields::half_width_digits(code.map_or("", |c| c.trim())));
    let digits = usize::from(st.engine.config().params.digits);
    if code.len() != digits || !code.bytes().all(|b| b.is_ascii_digit()) {
        errors.add(lang, "code", "err_code_format");
        return Ok(CodeCheck::Failed);
    }
    let report = match st
        .engine
        .verify(user_id, code, purpose, session::actor(sess, ip))
        .await
    {
        Ok(r) => r,
        Err(EngineError::CodeFormat(_)) => {
            errors.add(lang, "code", "err_code_format");
            return Ok(CodeCheck::Failed);
        }
        Err(e) => return Err(engine_error_page(st, lang, Some(sess), e)),
    };
    match report.result {
        Outcome::Ok => return Ok(CodeCheck::Passed),
        Outcome::Invalid => errors.add_text(
            "code",
            msg(lang, "err_code_invalid")
                .replace("{n}", &report.attempts_left.unwrap_or(0).to_string()),
        ),
        Outcome::Replayed => errors.add(lang, "code", "err_code_replayed"),
        Outcome::Locked => errors.add(lang, "code", "err_code_locked"),
        Outcome::NotActive => errors.add(lang, "code", "err_code_not_active"),
    }
    Ok(CodeCheck::Failed)
}

type Page = Result<Response, Response>;

impl Ctx {
    async fn overview(&self) -> Result<Overview, Response> {
        self.st
            .engine
            .overview(self.sess.customer())
            .await
            .map_err(|e| self.error(e))
    }

    fn refuse(&self, key: &str) -> Response {
        message_page(
            &self.st,
            self.lang,
            Some(&self.sess),
            StatusCode::CONFLICT,
            "bop001_title",
            msg(self.lang, key),
            Some(("/otp", "to_bop001")),
        )
    }
}

fn issue_block_key(b: IssueBlock) -> &'static str {
    match b {
        IssueBlock::LiveToken(_) => "why_issue_live",
        IssueBlock::NextDay { .. } => "why_issue_next_day",
    }
}

/// What BOP001 offers in each state: only the applications the lifecycle allows now (in the
/// manual's order: issue, activate, deactivate), and for the steps that are not open yet, what
/// the customer does next. Nothing is shown greyed out with a reason that does not fit.
pub fn bop001_offer(
    state: Option<TokenState>,
    issue_block: Option<IssueBlock>,
) -> (Vec<&'static str>, Vec<&'static str>) {
    let (mut actions, mut notes) = (Vec::new(), Vec::new());
    match issue_block {
        None => actions.push("issue"),
        Some(IssueBlock::NextDay { .. }) => notes.push("why_issue_next_day"),
        Some(IssueBlock::LiveToken(_)) => {}
    }
    match state {
        Some(TokenState::Issued | TokenState::LinkOpened) => notes.push("why_activate_setup"),
        Some(TokenState::Provisioned) => actions.extend(["activate", "deactivate"]),
        Some(TokenState::Active) => actions.push("deactivate"),
        _ => {}
    }
    (actions, notes)
}

/// BOP001: status, token information, notes, and the applications the state allows.
pub async fn bop001(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    let ov = c.overview().await?;
    let state = ov.token.as_ref().map(|t| t.state);
    let shown = ov.token.as_ref().filter(|t| t.state != TokenState::Voided);
    let (actions, notes) = bop001_offer(state, ov.issue_block);
    let actions: Vec<Value> = actions
        .into_iter()
        .map(|a| {
            let (href, label) = match a {
                "issue" => ("/otp/issue", "link_issue"),
                "activate" => ("/otp/activate", "link_activate"),
                _ => ("/otp/deactivate", "link_deactivate"),
            };
            json!({ "id": a, "href": href, "label": msg(c.lang, label) })
        })
        .collect();
    let notes: Vec<String> = notes.into_iter().map(|k| msg(c.lang, k)).collect();
    let extra = json!({
        "status": msg(c.lang, status_key(state)),
        "locked": shown.is_some_and(|t| t.locked),
        "token": shown.map(|t| json!({ "service_id": t.service_id, "user_id": t.user_id })),
        "actions": actions,
        "action_notes": notes,
    });
    Ok(c.page(
        "bop001.html",
        "/otp",
        Some("BOP001"),
        "bop001_title",
        extra,
        &FieldErrors::default(),
    ))
}

// --- issuance -----------------------------------------------------------------------------

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
    let act_hash = match c.st.engine.hash_password(pw).await {
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
    let key = draft
        .get("request_key")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if form.get("request_key").map(String::as_str) != Some(key.as_str()) {
        return Ok(see_other("/otp"));
    }
    if draft.get("issued_user_id").is_some() {
        return Ok(see_other("/otp/issue/complete"));
    }
    let lang = c.lang;
    let pw = Zeroizing::new(
        form.get("confirmation_password")
            .cloned()
            .unwrap_or_default(),
    );
    let mut errors = FieldErrors::default();
    if pw.is_empty() {
        errors.add(lang, "confirmation_password", "err_required");
    } else if !fields::is_confirmation_password(&pw) {
        errors.add(lang, "confirmation_password", "err_confirmation_format");
    }
    let mail_pw = read_field(&form, lang, &mut errors);
    if !errors.is_empty() {
        return Ok(confirm_page(&c, &draft, None, &errors).await);
    }
    if draft.get("mail_password").is_none() {
        return Ok(see_other("/otp/issue"));
    }
    let actor = session::actor(&c.sess, &ip);
    // The confirmation password and the メール通知パスワード, judged as one attempt.
    let check = c
        .check_with_mail_password(&key, pw, mail_pw, &ip, "issue")
        .await?;
    if !check_passed(&c.st, lang, &mut errors, check) {
        return Ok(confirm_page(&c, &draft, None, &errors).await);
    }
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

// --- BOK001 / BOK002 ------------------------------------------------------------------------

fn token_in(ov: &Overview, states: &[TokenState]) -> Option<String> {
    ov.token
        .as_ref()
        .filter(|t| states.contains(&t.state))
        .map(|t| t.user_id.clone())
}

pub async fn bok001_form(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    let ov = c.overview().await?;
    if token_in(&ov, &[TokenState::Provisioned]).is_none() {
        return Ok(see_other("/otp"));
    }
    Ok(c.page(
        "bok001.html",
        "/otp/activate",
        Some("BOK001"),
        "bok001_title",
        json!({}),
        &FieldErrors::default(),
    ))
}

pub async fn bok001(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let ov = c.overview().await?;
    let Some(user_id) = token_in(&ov, &[TokenState::Provisioned]) else {
        return Ok(see_other("/otp"));
    };
    let mut errors = FieldErrors::default();
    let check = check_code(
        &c.st,
        c.lang,
        &c.sess,
        &user_id,
        form.get("code"),
        Purpose::Activation,
        &ip,
        &mut errors,
    )
    .await?;
    match check {
        CodeCheck::Passed => Ok(see_other("/otp/activate/done")),
        CodeCheck::Failed => Ok(c.page(
            "bok001.html",
            "/otp/activate",
            Some("BOK001"),
            "bok001_title",
            json!({}),
            &errors,
        )),
    }
}

pub async fn bok002(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    let ov = c.overview().await?;
    if token_in(&ov, &[TokenState::Active]).is_none() {
        return Ok(see_other("/otp"));
    }
    Ok(c.page(
        "bok002.html",
        "/otp/activate/done",
        Some("BOK002"),
        "bok002_title",
        json!({}),
        &FieldErrors::default(),
    ))
}

// --- BOS001 / BOS002 ------------------------------------------------------------------------

pub async fn bos001_form(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    let ov = c.overview().await?;
    if token_in(&ov, &[TokenState::Active, TokenState::Provisioned]).is_none() {
        return Ok(see_other("/otp"));
    }
    Ok(c.page(
        "bos001.html",
        "/otp/deactivate",
        Some("BOS001"),
        "bos001_title",
        json!({}),
        &FieldErrors::default(),
    ))
}

pub async fn bos001(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Page {
    let c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let ov = c.overview().await?;
    let Some(user_id) = token_in(&ov, &[TokenState::Active, TokenState::Provisioned]) else {
        return Ok(see_other("/otp"));
    };
    let lang = c.lang;
    let render = |errors: &FieldErrors| {
        c.page(
            "bos001.html",
            "/otp/deactivate",
            Some("BOS001"),
            "bos001_title",
            json!({}),
            errors,
        )
    };
    let pw = Zeroizing::new(
        form.get("confirmation_password")
            .cloned()
            .unwrap_or_default(),
    );
    let mut errors = FieldErrors::default();
    if pw.is_empty() {
        errors.add(lang, "confirmation_password", "err_required");
    } else if !fields::is_confirmation_password(&pw) {
        errors.add(lang, "confirmation_password", "err_confirmation_format");
    }
    let code = form.get("code").map_or("", |v| v.trim());
    if code.is_empty() {
        errors.add(lang, "code", "err_required");
    }
    if !errors.is_empty() {
        return Ok(render(&errors));
    }
    // The confirmation password first: a wrong one must not consume the code.
    match c
        .st
        .engine
        .check_confirmation_password(
            c.sess.customer(),
            pw,
            &session::actor(&c.sess, &ip),
            "deactivate",
        )
        .await
    {
        Ok(check) => {
            if !errors.confirmation_passed(&c.st, lang, check) {
                return Ok(render(&errors));
            }
        }
        Err(e) => return Ok(c.error(e)),
    }
    let check = check_code(
        &c.st,
        lang,
        &c.sess,
        &user_id,
        form.get("code"),
        Purpose::Deactivation,
        &ip,
        &mut errors,
    )
    .await?;
    match check {
        CodeCheck::Passed => Ok(see_other("/otp/deactivate/done")),
        CodeCheck::Failed => Ok(render(&errors)),
    }
}

pub async fn bos002(State(st): State<AppState>, headers: HeaderMap) -> Page {
    let c = ctx(st, &headers).await?;
    let ov = c.overview().await?;
    if token_in(&ov, &[TokenState::Deactivated]).is_none() {
        return Ok(see_other("/otp"));
    }
    Ok(c.page(
        "bos002.html",
        "/otp/deactivate/done",
        Some("BOS002"),
        "bos002_title",
        json!({}),
        &FieldErrors::default(),
    ))
}
