//! Four-eyes approvals: the pending requests, approve, reject, withdraw.

use super::customer::request_json;
use super::*;

pub(super) async fn approvals(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let sess = match require(&st, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let pending = match st.engine.staff_pending(&sess.member).await {
        Ok(p) => p,
        Err(e) => return error_page(&st, Some(&sess), e, Some("/staff")),
    };
    let rows: Vec<Value> = pending
        .iter()
        .map(|r| {
            let mut v = request_json(r);
            v["mine"] = json!(r.requested_by == sess.member.id);
            v
        })
        .collect();
    let done = q.get("done").map(|d| match d.as_str() {
        "approved" => "The request was approved and has taken effect.",
        "rejected" => "The request was rejected.",
        _ => "The request was withdrawn.",
    });
    let mut ctx = base_ctx("Pending approvals", Some(&sess));
    ctx.insert("requests".into(), json!(rows));
    ctx.insert("done".into(), json!(done));
    ctx.insert("four_eyes".into(), json!(st.engine.config().four_eyes.0));
    st.staff.render("staff/approvals.html", ctx, StatusCode::OK)
}

pub(super) async fn approve(
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
    match st
        .engine
        .staff_approve(&sess.member, id, ip.0.clone())
        .await
    {
        Ok(_) => see_other("/staff/approvals?done=approved"),
        Err(e) => error_page(&st, Some(&sess), e, Some("/staff/approvals")),
    }
}

pub(super) async fn decline(
    st: &AppState,
    headers: &HeaderMap,
    ip: ClientIp,
    id: i64,
    form: &HashMap<String, String>,
    cancel: bool,
) -> Response {
    let sess = match require_post(st, headers, form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match st
        .engine
        .staff_decline(
            &sess.member,
            id,
            cancel,
            field(form, "reason"),
            ip.0.clone(),
        )
        .await
    {
        Ok(()) => see_other(if cancel {
            "/staff/approvals?done=cancelled"
        } else {
            "/staff/approvals?done=rejected"
        }),
        Err(e) => error_page(st, Some(&sess), e, Some("/staff/approvals")),
    }
}

pub(super) async fn reject(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    decline(&st, &headers, ip, id, &form, false).await
}

pub(super) async fn cancel(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(id): Path<i64>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    decline(&st, &headers, ip, id, &form, true).await
}
