//! The staff actions on a customer's token, each with a mandatory reason: unlock, resend the
//! setup mail, revoke, reprovision.

use super::*;

/// After an action: back to the customer page saying what happened, or the refusal.
pub(super) fn after_action(
    st: &AppState,
    sess: &StaffSession,
    id: i64,
    res: Result<&str, EngineError>,
) -> Response {
    let back = format!("/staff/customers/{id}");
    match res {
        Ok(done) => see_other(&format!("{back}?done={done}")),
        Err(e) => error_page(st, Some(sess), e, Some(&back)),
    }
}

/// The one-token actions (unlock, resend the setup mail, revoke): one form (`user_id`,
/// `reason`), one handler, told apart by `A`.
pub(super) const UNLOCK: u8 = 0;
pub(super) const RESEND: u8 = 1;
pub(super) const REVOKE: u8 = 2;

pub(super) async fn token_action<const A: u8>(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_post(&st, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let (member, user_id, reason) = (
        &sess.member,
        field(&form, "user_id"),
        field(&form, "reason"),
    );
    let ip = ip.0.clone();
    let e = &st.engine;
    let res = match A {
        UNLOCK => e
            .staff_unlock(member, id, user_id, reason, ip)
            .await
            .map(|()| "unlocked"),
        RESEND => e
            .staff_resend_setup(member, id, user_id, reason, ip)
            .await
            .map(|()| "resent"),
        _ => e
            .staff_revoke(member, id, user_id, reason, ip)
            .await
            .map(|d| match d {
                StaffDone::Applied { .. } => "revoked",
                StaffDone::Requested { .. } => "revoke_requested",
            }),
    };
    after_action(&st, &sess, id, res)
}

pub(super) async fn reprovision(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_post(&st, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let back = format!("/staff/customers/{id}");
    let choice = match field(&form, "mode") {
        "customer" => PasswordChoice::Customer,
        "generated" => PasswordChoice::Generated,
        _ => {
            return message(
                &st,
                Some(&sess),
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!(
                    "{} (MODE_REQUIRED)",
                    tr(
                        lang(),
                        "Choose how the customer's new activation password is set."
                    )
                ),
                Some(&back),
            )
        }
    };
    let expected = Some(field(&form, "expected_user_id")).filter(|s| !s.is_empty());
    let email = Some(field(&form, "email")).filter(|s| !s.trim().is_empty());
    let res = st
        .engine
        .staff_reprovision(
            &sess.member,
            id,
            expected,
            field(&form, "reason"),
            choice,
            email,
            ip.0.clone(),
        )
        .await;
    let done = match res {
        Ok(d) => d,
        Err(e) => return error_page(&st, Some(&sess), e, Some(&back)),
    };
    let mut ctx = base_ctx("Reprovisioning", Some(&sess));
    ctx.insert("customer_id".into(), json!(id));
    ctx.insert("mode".into(), json!(choice.as_str()));
    match &done.done {
        StaffDone::Applied { new_user_id } => {
            ctx.insert("applied".into(), json!(true));
            ctx.insert("new_user_id".into(), json!(new_user_id));
        }
        StaffDone::Requested { request_id } => {
            ctx.insert("applied".into(), json!(false));
            ctx.insert("request_id".into(), json!(request_id));
        }
    }
    // Shown once, on this response only (no-store); never stored in clear, never logged.
    ctx.insert(
        "generated_password".into(),
        json!(done.generated_password.as_deref().map(String::as_str)),
    );
    st.staff
        .render("staff/reprovisioned.html", ctx, StatusCode::OK)
}
