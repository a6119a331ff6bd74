//! BOP001 (the OTP menu), BOK001/BOK002 (start of OTP use) and
//! BOS001/BOS002 (end of OTP use). A customer reaches only their own token: every screen
//! works on the session's customer, never on an ID from the request.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Form;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::i18n::{msg, Lang};
use super::session::{self, Session};
use super::{ctx, engine_error_page, message_page, see_other, Ctx, FieldErrors};
use crate::domain::{fields, IssueBlock, Outcome, Purpose, TokenState};
use crate::engine::{EngineError, Overview};
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
    what: CodeFor<'_>,
    ip: &ClientIp,
    errors: &mut FieldErrors,
) -> Result<CodeCheck, Response> {
    let code = Zeroizing::new(fields::half_width_digits(code.map_or("", |c| c.trim())));
    let (digits, format_key) = match what {
        CodeFor::Totp(_) => (
            usize::from(st.engine.config().params.digits),
            "err_code_format",
        ),
        CodeFor::Transaction(_) => (8, "err_tx_code_format"),
    };
    if code.len() != digits || !code.bytes().all(|b| b.is_ascii_digit()) {
        errors.add(lang, "code", format_key);
        return Ok(CodeCheck::Failed);
    }
    let actor = session::actor(sess, ip);
    let verified = match what {
        CodeFor::Totp(purpose) => st.engine.verify(user_id, code, purpose, actor).await,
        CodeFor::Transaction(tx) => {
            st.engine
                .verify_transaction(user_id, code, tx.clone(), actor)
                .await
        }
    };
    let report = match verified {
        Ok(r) => r,
        Err(EngineError::CodeFormat(_)) => {
            errors.add(lang, "code", "err_code_format");
            return Ok(CodeCheck::Failed);
        }
        Err(e) => return Err(engine_error_page(st, lang, Some(sess), e)),
    };
    let tx = matches!(what, CodeFor::Transaction(_));
    match report.result {
        Outcome::Ok => return Ok(CodeCheck::Passed),
        Outcome::Invalid => errors.add_text(
            "code",
            msg(
                lang,
                if tx {
                    "err_tx_code_invalid"
                } else {
                    "err_code_invalid"
                },
            )
            .replace("{n}", &report.attempts_left.unwrap_or(0).to_string()),
        ),
        Outcome::Replayed => errors.add(
            lang,
            "code",
            if tx {
                "err_tx_code_replayed"
            } else {
                "err_code_replayed"
            },
        ),
        Outcome::Locked => errors.add(lang, "code", "err_code_locked"),
        Outcome::NotActive => errors.add(lang, "code", "err_code_not_active"),
    }
    Ok(CodeCheck::Failed)
}

/// Which code a form asks for: the one-time password for a purpose, or the transaction code
/// (取引認証) of a transfer as the bank received it.
#[derive(Clone, Copy)]
pub enum CodeFor<'a> {
    Totp(Purpose),
    Transaction(&'a protocol::ocra::Transaction),
}

pub(super) type Page = Result<Response, Response>;

impl Ctx {
    pub(super) async fn overview(&self) -> Result<Overview, Response> {
        self.st
            .engine
            .overview(self.sess.customer())
            .await
            .map_err(|e| self.error(e))
    }

    pub(super) fn refuse(&self, key: &str) -> Response {
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

pub(super) fn issue_block_key(b: IssueBlock) -> &'static str {
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
    // A double submit waits for the first, then finds the token in use (BOK002 below).
    let site = st.site.clone();
    let _turn = site.one_at_a_time(&headers, "otp-state").await;
    let c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let ov = c.overview().await?;
    // In use already (the first of a double submit did it): its done screen.
    if token_in(&ov, &[TokenState::Active]).is_some() {
        return Ok(see_other("/otp/activate/done"));
    }
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
        CodeFor::Totp(Purpose::Activation),
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
    // A double submit waits for the first, then finds OTP use ended (BOS002 below).
    let site = st.site.clone();
    let _turn = site.one_at_a_time(&headers, "otp-state").await;
    let c = ctx(st, &headers).await?;
    c.csrf(&form)?;
    let ov = c.overview().await?;
    // Ended already (the first of a double submit did it): its done screen.
    if token_in(&ov, &[TokenState::Deactivated]).is_some() {
        return Ok(see_other("/otp/deactivate/done"));
    }
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
        CodeFor::Totp(Purpose::Deactivation),
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
