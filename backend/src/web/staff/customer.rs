//! Customer search, the customer page (tokens, pending request, the audit timeline) and the
//! audit trail export.

use super::*;

pub(super) async fn search(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sess = match require(&st, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let query = q.get("q").map_or("", |s| s.trim());
    let mut ctx = base_ctx("Customer search", Some(&sess));
    ctx.insert("q".into(), json!(query));
    if !query.is_empty() {
        match st.engine.staff_search(&sess.member, query, ip.0).await {
            Ok(rows) => {
                let rows: Vec<Value> = rows
                    .iter()
                    .map(|c| {
                        json!({
                            "id": c.id,
                            "login_id": c.login_id,
                            "name": c.name,
                            "email": c.email,
                        })
                    })
                    .collect();
                ctx.insert("results".into(), json!(rows));
            }
            Err(e) => return error_page(&st, Some(&sess), e, Some("/staff")),
        }
    }
    st.staff.render("staff/search.html", ctx, StatusCode::OK)
}

pub(super) fn token_json(t: &StaffTokenView) -> Value {
    let state = t.status.state;
    let label = match state {
        TokenState::Issued => "Issued (mail sent, link not opened)",
        TokenState::LinkOpened => "Issued (link opened, app not set up)",
        TokenState::Provisioned => "Set up (waiting for the first code)",
        TokenState::Active => "Active",
        TokenState::Deactivated => "Deactivated by the customer",
        TokenState::Revoked => "Revoked by staff",
        TokenState::Voided => "Void (expired or replaced before setup)",
    };
    let mut v = json!(t);
    v["state_label"] = json!(label);
    v["live"] = json!(state.is_live());
    v["awaiting_setup"] = json!(matches!(state, TokenState::Issued | TokenState::LinkOpened));
    v
}

pub(super) fn request_json(r: &RequestView) -> Value {
    json!(r)
}

pub(super) fn done_text(key: &str) -> Option<&'static str> {
    Some(match key {
        "unlocked" => "The token was unlocked.",
        "resent" => "The setup mail was sent again with a fresh download link; earlier links no longer work.",
        "revoked" => "The token was revoked: it no longer verifies codes.",
        "revoke_requested" => "Revocation requested: it takes effect when a second supervisor approves it.",
        "reprovision_requested" => "Reprovisioning requested: it takes effect when a second supervisor approves it.",
        _ => return None,
    })
}

pub(super) async fn customer_page(
    st: &AppState,
    sess: &StaffSession,
    id: i64,
    before: Option<i64>,
    done: Option<&str>,
    ip: Option<String>,
) -> Response {
    let back = Some("/staff");
    let page = st.staff.cfg.audit_page_size;
    let timeline = TimelinePage {
        before_id: before,
        limit: page,
    };
    let file: CustomerFile = match st
        .engine
        .staff_customer(&sess.member, id, timeline, ip)
        .await
    {
        Ok(f) => f,
        Err(e) => return error_page(st, Some(sess), e, back),
    };
    let audit = &file.timeline;
    let older = (i64::try_from(audit.len()).unwrap_or(0) == page)
        .then(|| audit.last().map(|a| a.id))
        .flatten();
    let title = tr_with(lang(), "Customer {login}", &[("login", &file.login_id)]);
    let mut ctx = base_ctx(&title, Some(sess));
    ctx.insert(
        "customer".into(),
        json!({
            "id": file.id,
            "login_id": file.login_id,
            "name": file.name,
            "email": file.email,
            "reissue_waived": file.reissue_waived,
            "created_at": file.created_at,
        }),
    );
    let tokens: Vec<Value> = file.tokens.iter().map(token_json).collect();
    ctx.insert(
        "current".into(),
        tokens.first().cloned().unwrap_or(Value::Null),
    );
    ctx.insert("history".into(), json!(tokens.get(1..).unwrap_or(&[])));
    ctx.insert(
        "pending".into(),
        file.pending.as_ref().map_or(Value::Null, request_json),
    );
    ctx.insert("audit".into(), json!(audit));
    ctx.insert("transfers".into(), json!(file.transfers));
    ctx.insert(
        "undelivered".into(),
        Value::Array(
            file.undelivered
                .iter()
                .map(|m| {
                    let mut v = json!(m);
                    v["label"] = json!(mail_label(&m.kind));
                    v
                })
                .collect(),
        ),
    );
    ctx.insert("older".into(), json!(older));
    ctx.insert("first_page".into(), json!(before.is_some()));
    ctx.insert("done".into(), json!(done.and_then(done_text)));
    ctx.insert("four_eyes".into(), json!(st.engine.config().four_eyes.0));
    ctx.insert(
        "can".into(),
        json!({
            "revoke": sess.member.role.may(Permission::Revoke),
            "reprovision": sess.member.role.may(Permission::Reprovision),
        }),
    );
    st.staff.render("staff/customer.html", ctx, StatusCode::OK)
}

pub(super) async fn customer(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sess = match require(&st, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let before = q.get("before").and_then(|b| b.parse().ok());
    customer_page(
        &st,
        &sess,
        id,
        before,
        q.get("done").map(String::as_str),
        ip.0,
    )
    .await
}

pub(super) async fn audit_csv(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
) -> Response {
    let sess = match require(&st, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let back = format!("/staff/customers/{id}");
    let rows = match st.engine.staff_audit_all(&sess.member, id).await {
        Ok(r) => r,
        Err(e) => return error_page(&st, Some(&sess), e, Some(&back)),
    };
    if let Err(e) = st
        .engine
        .staff_audit_export(&sess.member, id, rows.len(), ip.0.clone())
        .await
    {
        return error_page(&st, Some(&sess), e, Some(&back));
    }
    let body = csv::audit_csv(&rows, fmt_time);
    let disposition = format!("attachment; filename=\"audit-customer-{id}.csv\"");
    let mut res = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res
}

/// What a mail of the outbox is, in the console's words (English, looked up for Japanese).
fn mail_label(kind: &str) -> &str {
    match kind {
        "issuance" => "Download link",
        "mail_password" => "Mailed password",
        "notice_issued" => "Notice: token issued to another address",
        "notice_activated" => "Notice: OTP activated",
        "notice_deactivated" => "Notice: OTP deactivated",
        "notice_locked" => "Notice: token locked",
        "notice_replayed" => "Notice: code used again",
        "notice_email_changed" => "Notice: e-mail address changed",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::mail_label;
    use crate::web::pages::i18n::Lang;
    use crate::web::staff::i18n::tr;

    #[test]
    fn every_mail_kind_has_a_label_in_japanese() {
        for kind in [
            "issuance",
            "mail_password",
            "notice_issued",
            "notice_activated",
            "notice_deactivated",
            "notice_locked",
            "notice_replayed",
            "notice_email_changed",
        ] {
            let label = mail_label(kind);
            assert_ne!(label, kind, "{kind} has a label");
            assert_ne!(tr(Lang::Ja, label), label, "{label} has Japanese");
        }
        for why in crate::mail::reason::ALL {
            assert_ne!(tr(Lang::Ja, why), why, "{why} has Japanese");
        }
    }
}
