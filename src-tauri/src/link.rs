//! The download page's link into the app: `otpbank://setup?service_id=…&user_id=…` (the
//! scheme is declared in `tauri.conf.json` under `plugins.deep-link`). Opening it fills the
//! setup screen's service ID and user ID; the activation password is always typed.

use protocol::{ServiceId, UserId};
use serde::Serialize;

/// The URL scheme the app registers.
pub const SCHEME: &str = "otpbank";

/// IDs carried by a setup link, both validated (the user ID's check digit included), so a
/// mangled link fills nothing rather than something wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SetupLink {
    /// 8 digits.
    pub service_id: String,
    /// 12 digits.
    pub user_id: String,
}

impl SetupLink {
    /// Reads a setup link; `None` for anything else (another scheme or action, missing or
    /// malformed IDs).
    pub fn parse(text: &str) -> Option<SetupLink> {
        let url = url::Url::parse(text.trim()).ok()?;
        if url.scheme() != SCHEME {
            return None;
        }
        // `otpbank://setup?…` (host form) and `otpbank:setup?…` (path form) both occur.
        let action = url
            .host_str()
            .unwrap_or_else(|| url.path())
            .trim_matches('/');
        if action != "setup" {
            return None;
        }
        let mut service_id = None;
        let mut user_id = None;
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "service_id" => service_id = Some(ServiceId::parse(&v).ok()?),
                "user_id" => user_id = Some(UserId::parse(&v).ok()?),
                _ => {}
            }
        }
        Some(SetupLink {
            service_id: service_id?.as_str().to_owned(),
            user_id: user_id?.as_str().to_owned(),
        })
    }

    /// The first setup link among command-line arguments (how a desktop OS hands a link to
    /// the app it starts).
    pub fn from_args<I: IntoIterator<Item = String>>(args: I) -> Option<SetupLink> {
        args.into_iter().find_map(|a| SetupLink::parse(&a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> String {
        UserId::from_serial(99_980_000_000)
            .unwrap()
            .as_str()
            .to_owned()
    }

    #[test]
    fn reads_the_download_pages_link() {
        let u = user();
        let link =
            SetupLink::parse(&format!("otpbank://setup?service_id=10112231&user_id={u}")).unwrap();
        assert_eq!(link.service_id, "10112231");
        assert_eq!(link.user_id, u);
        assert_eq!(
            SetupLink::parse(&format!("otpbank:setup?user_id={u}&service_id=10112231")),
            Some(link.clone()),
            "path form and any parameter order"
        );
        assert_eq!(
            SetupLink::from_args([
                "soft-token".into(),
                format!("otpbank://setup/?service_id=10112231&user_id={u}")
            ]),
            Some(link)
        );
    }

    #[test]
    fn refuses_other_or_mangled_links() {
        let u = user();
        let mut typo = u.clone();
        let last = typo.pop().unwrap();
        typo.push(if last == '0' { '1' } else { '0' });
        for bad in [
            format!("https://setup?service_id=10112231&user_id={u}"),
            format!("otpbank://delete?service_id=10112231&user_id={u}"),
            format!("otpbank://setup?service_id=1011223&user_id={u}"),
            format!("otpbank://setup?service_id=10112231&user_id={typo}"),
            "otpbank://setup?service_id=10112231".to_owned(),
            "not a url".to_owned(),
        ] {
            assert_eq!(SetupLink::parse(&bad), None, "{bad}");
        }
        assert_eq!(SetupLink::from_args(["soft-token".to_owned()]), None);
    }
}
