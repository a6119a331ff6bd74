//! The commands through Tauri's IPC on the mock runtime (`tauri::test::mock_builder`), over an
//! in-memory keystore and a temporary data directory: what the UI gets back, and that no
//! secret is in it.

use std::path::Path;
use std::sync::Arc;

use app::{Directory, MemoryStore, SecretStore};
use protocol::{code_at, Secret, TotpParams};
use serde_json::{json, Value};
use tauri::test::{mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindow;

use crate::{build, AppError, SetupLink, ShellConfig};

const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const URI: &str = "otpauth://totp/ACME%20Co:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co&period=30";

fn shell(
    dir: &Path,
    store: Result<Arc<dyn SecretStore>, AppError>,
    link: Option<SetupLink>,
) -> (tauri::App<MockRuntime>, WebviewWindow<MockRuntime>) {
    let config = ShellConfig {
        data_dir: Some(dir.to_owned()),
        store,
        // Port 9 (discard) on loopback: nothing listens, so a request that is sent fails fast.
        directory: Directory::from_json(r#"{"10112231": "http://127.0.0.1:9"}"#),
        link,
    };
    let app = build(mock_builder(), config, |_| {})
        .build(mock_context(noop_assets()))
        .unwrap();
    let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    (app, webview)
}

fn invoke(webview: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    tauri::test::get_ipc_response(
        webview,
        InvokeRequest {
            cmd: cmd.into(),
            callback: tauri::ipc::CallbackFn(0),
            error: tauri::ipc::CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: tauri::ipc::InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        },
    )
    .map(|body| body.deserialize::<Value>().unwrap())
}

fn now() -> u64 {
    app::codes::device_now()
}

#[test]
fn import_show_code_and_delete_without_a_secret_crossing_ipc() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let (_app, w) = shell(dir.path(), Ok(store.clone()), None);
    let mut seen = String::new();

    let list = invoke(&w, "list_tokens", json!({})).unwrap();
    assert_eq!(list, json!([]), "a new install has no tokens");

    let token = invoke(&w, "import_otpauth", json!({ "uri": URI })).unwrap();
    seen.push_str(&token.to_string());
    assert_eq!(token["kind"], "imported");
    assert_eq!(token["issuer"], "ACME Co");
    assert_eq!(token["label"], "alice@example.com");
    assert_eq!(token["period"], 30);
    assert_eq!(token["digits"], 6);
    let id = token["id"].as_str().unwrap().to_owned();

    let list = invoke(&w, "list_tokens", json!({})).unwrap();
    seen.push_str(&list.to_string());
    assert_eq!(list.as_array().unwrap().len(), 1);

    let params = TotpParams::new(protocol::Algorithm::Sha1, 6, 30).unwrap();
    let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
    let before = now();
    let frame = invoke(&w, "code_frame", json!({ "id": id })).unwrap();
    let after = now();
    seen.push_str(&frame.to_string());
    let code = frame["code"].as_str().unwrap();
    assert!(
        [before, after]
            .iter()
            .any(|t| code_at(&secret, &params, *t).as_str() == code),
        "the frame shows the RFC 6238 code of the imported secret"
    );
    let left = frame["seconds_left"].as_u64().unwrap();
    assert!((1..=30).contains(&left), "{frame}");
    assert_eq!(frame["period"], 30);
    assert_eq!(
        frame["clock_warning"],
        Value::Null,
        "imported tokens have no offset"
    );

    let clock = invoke(&w, "check_clock", json!({ "id": id })).unwrap();
    assert_eq!(
        clock,
        json!({ "offset_secs": 0, "warning": false }),
        "an imported token has no server to measure against"
    );

    let again = invoke(&w, "import_otpauth", json!({ "uri": URI })).unwrap_err();
    assert_eq!(again["code"], "DUPLICATE_TOKEN");
    assert!(again["message_ja"].as_str().unwrap().contains("すでに登録"));

    // The secret is in the keystore, and in nothing the UI received or the metadata file.
    assert!(store.get(&id).unwrap().is_some());
    let metadata = std::fs::read_to_string(dir.path().join(app::vault::METADATA_FILE)).unwrap();
    for text in [&seen, &metadata] {
        assert!(
            !text.contains(SECRET_B32),
            "no secret outside the keystore: {text}"
        );
        assert!(!text.contains("secret"), "no secret field: {text}");
    }

    invoke(&w, "delete_token", json!({ "id": id })).unwrap();
    assert_eq!(invoke(&w, "list_tokens", json!({})).unwrap(), json!([]));
    assert!(
        store.get(&id).unwrap().is_none(),
        "deleting removes the keystore entry"
    );
    let gone = invoke(&w, "code_frame", json!({ "id": id })).unwrap_err();
    assert_eq!(gone["code"], "NO_SUCH_TOKEN");
}

#[test]
fn setup_refuses_on_the_device_before_anything_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (_app, w) = shell(dir.path(), Ok(Arc::new(MemoryStore::default())), None);
    let user = protocol::UserId::from_serial(99_980_000_000).unwrap();
    let user = user.as_str();
    let mut typo = user.to_owned();
    let last = typo.pop().unwrap();
    typo.push(if last == '0' { '1' } else { '0' });
    let setup = |service: &str, user: &str, password: &str, agreed: bool| {
        invoke(
            &w,
            "setup_token",
            json!({ "serviceId": service, "userId": user, "activationPassword": password, "agreed": agreed }),
        )
        .unwrap_err()
    };

    let e = setup("10112231", user, "4815", false);
    assert_eq!(e["code"], "TERMS_NOT_AGREED");
    assert_eq!(
        e["message_ja"],
        "「上記の内容に同意する」にチェックしてください。"
    );
    assert_eq!(
        setup("10112231", &typo, "4815", true)["code"],
        "USER_ID_CHECK_DIGIT"
    );
    assert_eq!(
        setup("1011223", user, "4815", true)["code"],
        "SERVICE_ID_FORMAT"
    );
    assert_eq!(
        setup("10112231", user, "12", true)["code"],
        "ACTIVATION_PASSWORD_FORMAT"
    );
    assert_eq!(
        setup("20000000", user, "4815", true)["code"],
        "UNKNOWN_SERVICE_ID"
    );
    // Well-formed: it is sent, to a loopback port where nothing listens.
    let e = setup("10112231", user, "4815", true);
    assert_eq!(e["code"], "NETWORK", "{e}");
    assert_eq!(
        e.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["code", "message_en", "message_ja"],
        "errors carry a code and two texts, nothing else"
    );
    assert_eq!(invoke(&w, "list_tokens", json!({})).unwrap(), json!([]));
}

#[test]
fn the_start_link_is_taken_once() {
    let dir = tempfile::tempdir().unwrap();
    let user = protocol::UserId::from_serial(99_980_000_000).unwrap();
    let link = SetupLink::parse(&format!(
        "otpbank://setup?service_id=10112231&user_id={}",
        user.as_str()
    ));
    let (_app, w) = shell(dir.path(), Ok(Arc::new(MemoryStore::default())), link);
    let got = invoke(&w, "take_setup_link", json!({})).unwrap();
    assert_eq!(
        got,
        json!({ "service_id": "10112231", "user_id": user.as_str() })
    );
    assert_eq!(
        invoke(&w, "take_setup_link", json!({})).unwrap(),
        Value::Null
    );
}

#[test]
fn a_keystore_that_cannot_open_is_reported_and_info_says_desktop() {
    let dir = tempfile::tempdir().unwrap();
    let (_app, w) = shell(dir.path(), Err(AppError::KeystoreUnavailable), None);
    let e = invoke(&w, "list_tokens", json!({})).unwrap_err();
    assert_eq!(e["code"], "KEYSTORE_UNAVAILABLE");
    assert!(!e["message_en"].as_str().unwrap().is_empty());
    let info = invoke(&w, "app_info", json!({})).unwrap();
    assert_eq!(info["mobile"], false, "the desktop build has no scanner");
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
}

#[test]
fn a_directory_override_points_a_service_at_loopback_only() {
    let mut dir = Directory::bundled().unwrap();
    crate::merge_directory(&mut dir, r#"{"10112231": "http://127.0.0.1:8080"}"#).unwrap();
    let service = protocol::ServiceId::parse("10112231").unwrap();
    assert_eq!(dir.base_url(&service).unwrap(), "http://127.0.0.1:8080");
    assert_eq!(
        crate::merge_directory(&mut dir, r#"{"10112231": "http://bank.example"}"#),
        Err(AppError::InsecureBackendUrl)
    );
}
