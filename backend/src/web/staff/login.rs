//! Staff login (password and the member's own code; engine::staff::login) and logout.

use super::*;
use crate::engine::staff::StaffLogin;

pub(super) fn render_login(
    st: &AppState,
    csrf: &str,
    notice: Option<&str>,
    error: Option<&str>,
    login_id: &str,
) -> Response {
    let mut ctx = base_ctx("Staff login", None);
    ctx.insert("csrf".into(), json!(csrf));
    ctx.insert("notice".into(), json!(notice));
    ctx.insert("error".into(), json!(error));
    ctx.insert("login_id".into(), json!(login_id));
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    let res = st.staff.render("staff/login.html", ctx, status);
    // A fresh double-submit token for the next attempt.
    with_cookies(
        res,
        vec![session::set_cookie(
            st,
            session::login_csrf_cookie_name(st),
            csrf,
            Some(1800),
        )],
    )
}

pub(super) async fn login_form(
    State(st): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    if let Ok(Loaded::Live(_)) = session::load(&st, &headers).await {
        return see_other("/staff");
    }
    let notice = if q.contains_key("timeout") {
        Some("Your session ended after a period of inactivity. Log in again.")
    } else if q.contains_key("bye") {
        Some("You have logged out.")
    } else {
        None
    };
    render_login(&st, &session::random_hex(32), notice, None, "")
}

pub(super) async fn login(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    if !crate::web::session::login_csrf_ok(&headers, session::login_csrf_cookie_name(&st), &form) {
        tracing::warn!("staff login CSRF token missing or wrong; form refused");
        return message(
            &st,
            None,
            StatusCode::FORBIDDEN,
            "The login form has expired. Reload the page and try again.",
            Some("/staff/login"),
        );
    }
    let login_id = field(&form, "login_id").trim().to_owned();
    let password = Zeroizing::new(field(&form, "password").to_owned());
    let code = Zeroizing::new(field(&form, "code").trim().to_owned());
    let fresh = session::random_hex(32);
    if login_id.is_empty() || password.is_empty() {
        return render_login(
            &st,
            &fresh,
            None,
            Some("Enter your staff login ID, password and code."),
            &login_id,
        );
    }
    let member = match st
        .engine
        .staff_login(&login_id, password, code, ip.0.clone())
        .await
    {
        Ok(StaffLogin::Ok(m)) => m,
        Ok(StaffLogin::Invalid) => {
            return render_login(
                &st,
                &fresh,
                None,
                Some("The login ID, password or code is incorrect."),
                &login_id,
            )
        }
        Ok(StaffLogin::Locked { .. }) => {
            let mut res = render_login(
                &st,
                &fresh,
                None,
                Some("Too many failed logins from this account or this address: logins are refused for a while, even the right password. Try again later."),
                &login_id,
            );
            *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            return res;
        }
        Err(e) => return error_page(&st, None, e, Some("/staff/login")),
    };
    // A session left from before (another account on this browser) ends: no fixation.
    if let Ok(Loaded::Live(old)) = session::load(&st, &headers).await {
        let _ = session::destroy(&st, &old).await;
    }
    match session::create(&st, member).await {
        Ok((_, cookie)) => with_cookies(
            see_other("/staff"),
            vec![
                cookie,
                session::set_cookie(&st, session::login_csrf_cookie_name(&st), "", Some(0)),
            ],
        ),
        Err(e) => error_page(&st, None, e, None),
    }
}

pub(super) async fn logout(
    State(st): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let sess = match require_post(&st, &headers, &form).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    match session::destroy(&st, &sess).await {
        Ok(clear) => with_cookies(see_other("/staff/login?bye=1"), vec![clear]),
        Err(e) => error_page(&st, None, e, None),
    }
}
