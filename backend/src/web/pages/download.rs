//! `/dl/{code}`: the page the mailed download URL opens. Its first opening is recorded (the
//! app's setup is refused before it); the page shows the App Store and Google Play buttons,
//! the one matching the phone first, and a link that opens the installed app with the
//! service ID and user ID filled in: `otpbank://setup?service_id=…&user_id=…` (the app
//! registers the `otpbank` scheme).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::i18n::msg;
use super::{base_ctx, engine_error_page, lang_of, message_page};
use crate::domain::DomainError;
use crate::engine::{Actor, EngineError};
use crate::web::{AppState, ClientIp};

/// The app's deep-link scheme.
pub const APP_SCHEME: &str = "otpbank";

/// Which store the user agent belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Ios,
    Android,
    Other,
}

pub fn platform(user_agent: &str) -> Platform {
    let ua = user_agent.to_ascii_lowercase();
    if ua.contains("android") {
        Platform::Android
    } else if ua.contains("iphone") || ua.contains("ipad") || ua.contains("ipod") {
        Platform::Ios
    } else {
        Platform::Other
    }
}

pub async fn open(
    State(st): State<AppState>,
    headers: HeaderMap,
    ip: ClientIp,
    Path(code): Path<String>,
) -> Response {
    let lang = lang_of(&headers);
    let opened = match st
        .engine
        .open_download_link(&code, &Actor::new("link", ip.0.clone()))
        .await
    {
        Ok(o) => o,
        Err(e) => {
            let (status, key) = match e {
                EngineError::Domain(DomainError::UnknownToken) => {
                    (StatusCode::NOT_FOUND, "dl_unknown")
                }
                EngineError::IssuanceExpired | EngineError::IssuanceDead => {
                    (StatusCode::GONE, "dl_expired")
                }
                EngineError::TokenNotUsable => (StatusCode::GONE, "dl_unusable"),
                other => return engine_error_page(&st, lang, None, other),
            };
            return message_page(
                &st,
                lang,
                None,
                status,
                "dl_invalid_title",
                msg(lang, key),
                None,
            );
        }
    };
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let apple = json!({ "id": "appstore", "href": st.site.cfg.app_store_url, "label": msg(lang, "dl_app_store") });
    let google = json!({ "id": "googleplay", "href": st.site.cfg.play_store_url, "label": msg(lang, "dl_play") });
    let stores = match platform(ua) {
        Platform::Android => vec![google, apple],
        Platform::Ios | Platform::Other => vec![apple, google],
    };
    let deep_link = format!(
        "{APP_SCHEME}://setup?service_id={}&user_id={}",
        opened.service_id, opened.user_id
    );
    let mut ctx = base_ctx(lang, &format!("/dl/{code}"), None, None, "dl_title");
    ctx.insert("stores".into(), json!(stores));
    ctx.insert("deep_link".into(), json!(deep_link));
    ctx.insert("service_id".into(), json!(opened.service_id));
    ctx.insert("user_id".into(), json!(opened.user_id));
    st.site.render("download.html", Value::Object(ctx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_agents_pick_their_store() {
        assert_eq!(
            platform("Mozilla/5.0 (Linux; Android 14; Pixel 8)"),
            Platform::Android
        );
        assert_eq!(
            platform("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)"),
            Platform::Ios
        );
        assert_eq!(platform("Mozilla/5.0 (X11; Linux x86_64)"), Platform::Other);
    }
}
