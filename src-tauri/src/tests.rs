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
use tauri::{Manager, WebviewWindow};

use crate::guard::Clipboard as _;
use crate::{build, AppError, MemoryClipboard, SetupLink, ShellConfig};

const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
const URI: &str = "otpauth://totp/ACME%20Co:alice@example.com?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME%20Co&period=30";

fn shell(
    dir: &Path,
    store: Result<Arc<dyn SecretStore>, AppError>,
    link: Option<SetupLink>,
) -> (tauri::App<MockRuntime>, WebviewWindow<MockRuntime>) {
    shell_with(dir, store, link, Arc::new(MemoryClipboard::default()))
}

fn shell_with(
    dir: &Path,
    store: Result<Arc<dyn SecretStore>, AppError>,
    link: Option<SetupLink>,
    clipboard: Arc<MemoryClipboard>,
) -> (tauri::App<MockRuntime>, WebviewWindow<MockRuntime>) {
    // Port 9 (discard) on loopback: nothing listens, so a request that is sent fails fast.
    shell_at(dir, store, link, clipboard, "http://127.0.0.1:9")
}

/// The shell with service 10112231 at `backend`.
fn shell_at(
    dir: &Path,
    store: Result<Arc<dyn SecretStore>, AppError>,
    link: Option<SetupLink>,
    clipboard: Arc<MemoryClipboard>,
    backend: &str,
) -> (tauri::App<MockRuntime>, WebviewWindow<MockRuntime>) {
    let config = ShellConfig {
        data_dir: Some(dir.to_owned()),
        store,
        directory: Directory::from_json(&json!({ "10112231": backend }).to_string()),
        test_ca: None,
        link,
        clipboard: Some(clipboard as Arc<dyn crate::Clipboard>),
        clipboard_clear_after: std::time::Duration::from_millis(300),
    };
    let mut app = build(mock_builder(), config, |_| {})
        .build(mock_context(noop_assets()))
        .unwrap();
    // Start the app as the event loop's first `Ready` does: this runs the setup hooks (the
    // screen guard's start-up hook, the clipboard). `build` alone does not run them; on the mock
    // runtime the iteration itself does nothing else. Deprecated only for use in a loop.
    #[allow(deprecated)]
    app.run_iteration(|_, _| {});
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

/// Imports the test's otpauth URI; the new token's ID.
fn import_uri(w: &WebviewWindow<MockRuntime>) -> String {
    invoke(w, "import_otpauth", json!({ "uri": URI })).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
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
fn a_locked_app_keeps_its_link_until_the_pin_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let (app1, w) = shell(dir.path(), Ok(store.clone()), None);
    invoke(&w, "lock_set", json!({ "pin": "314159" })).unwrap();
    drop(w);
    drop(app1);
    // Opened with a link, locked (a PIN is set and this run has not had it).
    let user = protocol::UserId::from_serial(99_980_000_000).unwrap();
    let link = SetupLink::parse(&format!(
        "otpbank://setup?service_id=10112231&user_id={}",
        user.as_str()
    ));
    assert!(link.is_some());
    let (_app2, w) = shell(dir.path(), Ok(store), link);
    assert_eq!(
        invoke(&w, "lock_status", json!({})).unwrap()["locked"],
        true
    );
    assert_eq!(
        invoke(&w, "take_setup_link", json!({})).unwrap(),
        Value::Null,
        "a locked app hands out no link"
    );
    invoke(&w, "lock_unlock", json!({ "pin": "314159" })).unwrap();
    let got = invoke(&w, "take_setup_link", json!({})).unwrap();
    assert_eq!(got["service_id"], "10112231", "kept for the unlock: {got}");
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
    assert_eq!(
        info["screen_guard"],
        json!({ "protection": "none" }),
        "the screen guard's hook ran at start-up (a no-op on desktops)"
    );
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

#[test]
fn pins_are_overridden_in_debug_builds_only_and_checked_as_bundled_ones() {
    let service = protocol::ServiceId::parse("10112231").unwrap();
    let (a, b) = (
        app::pinning::Pin::of_spki(b"a"),
        app::pinning::Pin::of_spki(b"b"),
    );
    let pinned = serde_json::json!({ "10112231": {
        "url": "https://localhost:8443", "pins": [a.to_text(), b.to_text()] } })
    .to_string();

    let mut dir = Directory::bundled().unwrap();
    crate::merge_directory_with(&mut dir, &pinned, true).unwrap();
    assert_eq!(dir.base_url(&service).unwrap(), "https://localhost:8443");
    let mut pins = vec![a, b];
    pins.sort_unstable();
    assert_eq!(dir.pins(&service).unwrap(), pins.as_slice());
    // One pin is refused as in app/directory.json.
    let one = serde_json::json!({ "10112231": {
        "url": "https://localhost:8443", "pins": [a.to_text()] } })
    .to_string();
    assert_eq!(
        crate::merge_directory_with(&mut Directory::bundled().unwrap(), &one, true),
        Err(AppError::InsecureBackendUrl)
    );

    // A release build refuses a pinned override (as it always refused anything but a URL),
    // and an https URL alone keeps the bundled pins.
    let bundled = Directory::bundled().unwrap();
    let mut dir = bundled.clone();
    assert_eq!(
        crate::merge_directory_with(&mut dir, &pinned, false),
        Err(AppError::BadResponse)
    );
    crate::merge_directory_with(&mut dir, r#"{"10112231": "https://localhost:8443"}"#, false)
        .unwrap();
    assert_eq!(dir.pins(&service), bundled.pins(&service));
    assert_eq!(crate::PIN_OVERRIDES, cfg!(debug_assertions));
}

#[test]
fn a_test_ca_that_cannot_be_read_is_an_error_not_a_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("ca.pem");
    std::fs::write(&broken, "not a certificate").unwrap();
    for path in [broken, dir.path().join("missing.pem")] {
        assert_eq!(
            crate::provisioning_client(Directory::bundled().unwrap(), Some(&path)).unwrap_err(),
            AppError::UntrustedServer
        );
    }
    assert!(crate::provisioning_client(Directory::bundled().unwrap(), None).is_ok());
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while !f() {
        assert!(std::time::Instant::now() < deadline, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_copied_code_is_cleared_later_only_if_it_is_still_there() {
    let dir = tempfile::tempdir().unwrap();
    let clip = Arc::new(MemoryClipboard::default());
    let (_app, w) = shell_with(
        dir.path(),
        Ok(Arc::new(MemoryStore::default())),
        None,
        clip.clone(),
    );
    let id = import_uri(&w);

    assert_eq!(
        invoke(&w, "copy_code", json!({ "id": id })).unwrap(),
        Value::Null
    );
    let copied = clip.read().unwrap();
    assert!(
        copied.len() == 6 && copied.bytes().all(|b| b.is_ascii_digit()),
        "{copied}"
    );
    wait_until("the code is cleared after the delay", || {
        clip.read().is_none()
    });

    // Something else copied meanwhile is left alone.
    invoke(&w, "copy_code", json!({ "id": id })).unwrap();
    clip.put("the customer's own text");
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(
        clip.read().as_deref(),
        Some("the customer's own text"),
        "only the copied code is cleared"
    );
}

#[test]
fn with_a_pin_nothing_is_shown_until_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let clip = Arc::new(MemoryClipboard::default());
    let (app1, w) = shell_with(dir.path(), Ok(store.clone()), None, clip.clone());
    let id = import_uri(&w);
    let status = invoke(&w, "lock_status", json!({})).unwrap();
    assert_eq!(status["enabled"], false);
    assert_eq!(status["locked"], false);
    assert_eq!(
        invoke(&w, "lock_set", json!({ "pin": "12" })).unwrap_err()["code"],
        "APP_PIN_FORMAT"
    );
    let status = invoke(&w, "lock_set", json!({ "pin": "314159" })).unwrap();
    assert_eq!(status["enabled"], true);
    assert_eq!(
        status["locked"], false,
        "setting the PIN does not lock this run"
    );
    invoke(&w, "code_frame", json!({ "id": id })).unwrap();

    // Locked: every command that shows or changes a token refuses.
    assert_eq!(invoke(&w, "lock_now", json!({})).unwrap()["locked"], true);
    for (cmd, args) in [
        ("list_tokens", json!({})),
        ("code_frame", json!({ "id": id })),
        ("copy_code", json!({ "id": id })),
        ("check_clock", json!({ "id": id })),
        ("delete_token", json!({ "id": id })),
        ("import_otpauth", json!({ "uri": URI })),
        ("lock_set", json!({ "pin": "1111" })),
        ("lock_remove", json!({ "current": "314159" })),
        ("lock_change", json!({ "current": "314159", "new": "2222" })),
    ] {
        let e = invoke(&w, cmd, args).unwrap_err();
        assert_eq!(e["code"], "APP_LOCKED", "{cmd}: {e}");
    }
    assert!(clip.read().is_none());

    let e = invoke(&w, "lock_unlock", json!({ "pin": "000000" })).unwrap_err();
    assert_eq!(e["code"], "APP_PIN_WRONG");
    assert!(e["message_ja"].as_str().unwrap().contains("1秒後"), "{e}");
    let e = invoke(&w, "lock_unlock", json!({ "pin": "314159" })).unwrap_err();
    assert_eq!(
        e["code"], "APP_PIN_WAIT",
        "the delay holds for the right PIN: {e}"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let status = invoke(&w, "lock_unlock", json!({ "pin": "314159" })).unwrap();
    assert_eq!(status["locked"], false);
    assert_eq!(status["failures"], 0);
    invoke(&w, "list_tokens", json!({})).unwrap();

    // A new run starts locked.
    drop(w);
    drop(app1);
    let (_app2, w) = shell_with(dir.path(), Ok(store.clone()), None, clip);
    assert_eq!(
        invoke(&w, "lock_status", json!({})).unwrap()["locked"],
        true
    );
    assert_eq!(
        invoke(&w, "list_tokens", json!({})).unwrap_err()["code"],
        "APP_LOCKED"
    );
    invoke(&w, "lock_unlock", json!({ "pin": "314159" })).unwrap();
    invoke(
        &w,
        "lock_change",
        json!({ "current": "314159", "new": "2718" }),
    )
    .unwrap();
    assert_eq!(
        invoke(&w, "lock_remove", json!({ "current": "314159" })).unwrap_err()["code"],
        "APP_PIN_WRONG",
        "the old PIN no longer works"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let status = invoke(&w, "lock_remove", json!({ "current": "2718" })).unwrap();
    assert_eq!(status["enabled"], false);
    assert_eq!(
        invoke(&w, "lock_now", json!({})).unwrap()["locked"],
        false,
        "no PIN, no lock"
    );
    invoke(&w, "list_tokens", json!({})).unwrap();
    let audit = std::fs::read_to_string(dir.path().join(app::lock::AUDIT_FILE)).unwrap();
    for event in [
        "pin_set",
        "wrong_pin",
        "unlock",
        "pin_changed",
        "pin_removed",
    ] {
        assert!(audit.contains(event), "{event} in {audit}");
    }
}

#[test]
fn the_app_locks_again_only_after_a_minute_away() {
    let dir = tempfile::tempdir().unwrap();
    let (app, w) = shell(dir.path(), Ok(Arc::new(MemoryStore::default())), None);
    invoke(&w, "lock_set", json!({ "pin": "4321" })).unwrap();
    let shell = app.state::<crate::Shell>();
    let t = 1_800_000_000_000;
    shell.app_hidden(t);
    assert!(!shell.app_visible(t + 60_000), "a minute away: still open");
    shell.app_hidden(t + 100_000);
    assert!(shell.app_visible(t + 160_001), "longer: locked");
    assert_eq!(
        invoke(&w, "list_tokens", json!({})).unwrap_err()["code"],
        "APP_LOCKED"
    );
}

/// A bank token already on the phone (set up earlier); its ID.
fn bank_token(dir: &Path, store: Arc<MemoryStore>) -> String {
    let user = protocol::UserId::from_serial(1).unwrap();
    let mut v = app::Vault::open(dir, store).unwrap();
    v.add_provisioned(
        &protocol::SetupResponse {
            service_id: "10112231".parse().unwrap(),
            user_id: user.clone(),
            secret: protocol::WireSecret(Secret::from_bytes(b"12345678901234567890".to_vec())),
            params: TotpParams::default(),
            server_time: now(),
            issuer: "OTP Bank".into(),
            label: user.as_str().into(),
        },
        app::ClockOffset(0),
        now(),
    )
    .unwrap()
    .id
}

/// A bank token on the phone, and a shell whose bank server accepts one connection and says
/// nothing until told to hang up (a phone on a bad network). Runs `f` with the shell, the
/// token's ID and the sender that hangs up.
fn with_a_silent_bank(
    f: impl FnOnce(&WebviewWindow<MockRuntime>, &str, std::sync::mpsc::Sender<()>),
) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    let id = bank_token(dir.path(), store.clone());
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", silent.local_addr().unwrap());
    let (hang_up, hung_up) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (conn, _) = silent.accept().unwrap();
        let _ = hung_up.recv_timeout(std::time::Duration::from_secs(60));
        drop(conn);
    });
    let (_app, w) = shell_at(
        dir.path(),
        Ok(store),
        None,
        Arc::new(MemoryClipboard::default()),
        &url,
    );
    f(&w, &id, hang_up);
    server.join().unwrap();
}

/// The token's code is answered at once (not after `waiting`'s request).
fn a_code_comes_at_once(w: &WebviewWindow<MockRuntime>, id: &str, waiting: &str) {
    let asked = std::time::Instant::now();
    let frame = invoke(w, "code_frame", json!({ "id": id })).unwrap();
    let took = asked.elapsed();
    assert_eq!(frame["code"].as_str().unwrap().len(), 6);
    assert!(
        took < std::time::Duration::from_secs(2),
        "the code waited {took:?} for the {waiting}"
    );
}

/// The clock check asks the bank's server once per run, beside the code screen. A server that
/// accepts and never answers (a phone on a bad network) must not hold back the code: frames
/// are answered at once while the check waits.
#[test]
fn a_clock_check_that_waits_on_the_network_holds_no_code_back() {
    with_a_silent_bank(|w, id, hang_up| {
        std::thread::scope(|s| {
            let check = s.spawn(|| invoke(w, "check_clock", json!({ "id": id })));
            // Let the check reach the server and wait there.
            std::thread::sleep(std::time::Duration::from_millis(300));
            a_code_comes_at_once(w, id, "clock check");
            assert!(!check.is_finished(), "the clock check is still waiting");
            hang_up.send(()).unwrap();
            let answer = check.join().unwrap();
            assert!(
                answer.is_err(),
                "a server that hangs up is an error: {answer:?}"
            );
        });
    });
}

/// Setting up a second token waits on the bank's server (once, the secret is provisioned only
/// once). A server that accepts and never answers must not freeze the codes already on the
/// phone meanwhile, and the setup still reports the server's failure when it hangs up.
#[test]
fn a_setup_that_waits_on_the_network_holds_no_code_back() {
    let second = protocol::UserId::from_serial(2).unwrap();
    with_a_silent_bank(|w, id, hang_up| {
        std::thread::scope(|s| {
            let setup = s.spawn(|| {
                invoke(
                    w,
                    "setup_token",
                    json!({
                        "serviceId": "10112231",
                        "userId": second.as_str(),
                        "activationPassword": "2468",
                        "agreed": true,
                    }),
                )
            });
            // Let the setup reach the server and wait there.
            std::thread::sleep(std::time::Duration::from_millis(300));
            assert!(!setup.is_finished(), "the setup is waiting on the server");
            a_code_comes_at_once(w, id, "setup");
            let listed = invoke(w, "list_tokens", json!({})).unwrap();
            assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
            hang_up.send(()).unwrap();
            let answer = setup.join().unwrap();
            assert!(
                answer.is_err(),
                "a server that hangs up is an error: {answer:?}"
            );
        });
        let listed = invoke(w, "list_tokens", json!({})).unwrap();
        assert_eq!(
            listed.as_array().unwrap().len(),
            1,
            "a failed setup adds nothing: {listed}"
        );
    });
}

#[test]
fn transaction_codes_for_typed_and_scanned_transfers() {
    use protocol::ocra::{AccountType, ChallengeNonce, Transaction, TransactionChallenge};
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::default());
    // A bank token already on the phone (set up earlier), and an imported one.
    let bank = bank_token(dir.path(), store.clone());
    let (_app, w) = shell(dir.path(), Ok(store), None);
    let imported = import_uri(&w);
    let typed = |id: &str, account: &str, amount: &str| {
        invoke(
            &w,
            "transaction_frame",
            json!({ "id": id, "bankCode": "０００１", "branchCode": "123", "accountType": "1",
                    "accountNumber": account, "amount": amount }),
        )
    };
    // Typed: full-width digits and grouping commas are what people type.
    let before = now();
    let frame = typed(&bank, "1234567", "150,000").unwrap();
    let after = now();
    let tx = Transaction::new("0001", "123", AccountType::Ordinary, "1234567", 150_000).unwrap();
    let secret = Secret::from_bytes(b"12345678901234567890".to_vec());
    let code = frame["code"].as_str().unwrap();
    assert_eq!(code.len(), 8);
    assert!([before, after]
        .iter()
        .any(|t| protocol::ocra::transaction_code(&secret, &tx, *t).as_str() == code));
    assert_eq!(frame["bank_code"], "0001");
    assert_eq!(frame["account_number"], "1234567");
    assert_eq!(frame["amount"], 150_000);
    assert_eq!(frame["account_type"], "1");
    assert!(!frame.to_string().contains("secret"));
    // Each wrong field named; an imported token has no transaction key.
    assert_eq!(
        typed(&bank, "123456", "1").unwrap_err()["code"],
        "TX_ACCOUNT_NUMBER"
    );
    assert_eq!(
        typed(&bank, "1234567", "0").unwrap_err()["code"],
        "TX_AMOUNT"
    );
    assert_eq!(
        typed(&bank, "1234567", "1万").unwrap_err()["code"],
        "TX_AMOUNT"
    );
    let e = typed(&imported, "1234567", "1").unwrap_err();
    assert_eq!(e["code"], "NOT_BANK_TOKEN");
    assert!(e["message_ja"].as_str().unwrap().contains("取引認証"));
    // Scanned: the QR names the token and the transfer.
    let mut challenge = TransactionChallenge {
        service_id: "10112231".parse().unwrap(),
        user_id: protocol::UserId::from_serial(1).unwrap(),
        transaction: tx,
        payee_name: "ﾔﾏﾀﾞ ﾀﾛｳ".into(),
        nonce: ChallengeNonce::generate(),
    };
    let scanned = invoke(
        &w,
        "scan_transaction",
        json!({ "text": challenge.encode() }),
    )
    .unwrap();
    assert_eq!(scanned["id"], bank.as_str());
    assert_eq!(scanned["payee_name"], "ﾔﾏﾀﾞ ﾀﾛｳ");
    assert_eq!(scanned["amount"], 150_000);
    challenge.user_id = protocol::UserId::from_serial(2).unwrap();
    let e = invoke(
        &w,
        "scan_transaction",
        json!({ "text": challenge.encode() }),
    )
    .unwrap_err();
    assert_eq!(e["code"], "CHALLENGE_OTHER_TOKEN");
    let e = invoke(
        &w,
        "scan_transaction",
        json!({ "text": "otpauth://totp/x" }),
    )
    .unwrap_err();
    assert_eq!(e["code"], "TX_CHALLENGE_FORMAT");
}

/// A keystore that counts the reads of the app lock's entry.
#[derive(Default)]
struct CountingStore {
    inner: MemoryStore,
    lock_reads: std::sync::atomic::AtomicUsize,
}

impl CountingStore {
    fn lock_reads(&self) -> usize {
        self.lock_reads.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl SecretStore for CountingStore {
    fn set(&self, id: &str, secret: &[u8]) -> Result<(), AppError> {
        self.inner.set(id, secret)
    }

    fn get(&self, id: &str) -> Result<Option<zeroize::Zeroizing<Vec<u8>>>, AppError> {
        if id == app::lock::LOCK_ENTRY {
            self.lock_reads
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        self.inner.get(id)
    }

    fn delete(&self, id: &str) -> Result<bool, AppError> {
        self.inner.delete(id)
    }
}

/// With no PIN set, the codes shown each second do not ask the keystore about the lock each
/// time (on a phone each read is a Keystore/Keychain call): the run remembers that no PIN is
/// set once it has seen it, and the lock's rules stay as they were.
#[test]
fn without_a_pin_the_lock_entry_is_read_once_not_every_second() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CountingStore::default());
    let (app, w) = shell(dir.path(), Ok(store.clone()), None);
    let id = import_uri(&w);
    let before = store.lock_reads();
    for _ in 0..30 {
        invoke(&w, "code_frame", json!({ "id": id })).unwrap();
    }
    invoke(&w, "list_tokens", json!({})).unwrap();
    assert_eq!(
        store.lock_reads() - before,
        0,
        "thirty frames and a listing read the lock entry again"
    );

    // The lock button and a long time away change nothing without a PIN.
    assert_eq!(invoke(&w, "lock_now", json!({})).unwrap()["locked"], false);
    invoke(&w, "code_frame", json!({ "id": id })).unwrap();
    let shell = app.state::<crate::Shell>();
    let t = 1_800_000_000_000;
    shell.app_hidden(t);
    assert!(!shell.app_visible(t + 600_000), "no PIN: not locked");
    invoke(&w, "code_frame", json!({ "id": id })).unwrap();

    // A PIN set in this run: this run stays open, the lock button and a minute away lock it.
    invoke(&w, "lock_set", json!({ "pin": "4321" })).unwrap();
    invoke(&w, "code_frame", json!({ "id": id })).unwrap();
    assert_eq!(invoke(&w, "lock_now", json!({})).unwrap()["locked"], true);
    assert_eq!(
        invoke(&w, "code_frame", json!({ "id": id })).unwrap_err()["code"],
        "APP_LOCKED"
    );
    invoke(&w, "lock_unlock", json!({ "pin": "4321" })).unwrap();
    shell.app_hidden(t + 700_000);
    assert!(
        shell.app_visible(t + 761_000),
        "a PIN and a minute away: locked"
    );
    assert_eq!(
        invoke(&w, "code_frame", json!({ "id": id })).unwrap_err()["code"],
        "APP_LOCKED"
    );

    // The PIN removed: the run is open again for good.
    invoke(&w, "lock_unlock", json!({ "pin": "4321" })).unwrap();
    invoke(&w, "lock_remove", json!({ "current": "4321" })).unwrap();
    assert_eq!(invoke(&w, "lock_now", json!({})).unwrap()["locked"], false);
    let before = store.lock_reads();
    for _ in 0..10 {
        invoke(&w, "code_frame", json!({ "id": id })).unwrap();
    }
    assert!(
        store.lock_reads() - before <= 1,
        "after the removal the lock entry is read at most once more"
    );
}

/// The device's clock set back while the app was away (no passcode needed on a phone) does
/// not undo the re-lock: a step back counts as away too long.
#[test]
fn a_clock_set_back_while_away_locks_the_app() {
    let dir = tempfile::tempdir().unwrap();
    let (app, w) = shell(dir.path(), Ok(Arc::new(MemoryStore::default())), None);
    let id = import_uri(&w);
    invoke(&w, "lock_set", json!({ "pin": "4321" })).unwrap();
    let shell = app.state::<crate::Shell>();
    let t = app::codes::device_now_ms();
    shell.app_hidden(t);
    assert!(shell.app_visible(t - 3_600_000), "an hour back: locked");
    assert_eq!(
        invoke(&w, "code_frame", json!({ "id": id })).unwrap_err()["code"],
        "APP_LOCKED"
    );
}

/// A command that comes after more than a minute away, before the app is told it is back (the
/// page's ticker resuming, a copy from the old screen), is refused: the rule is the command's
/// own check, not only the return's.
#[test]
fn after_a_minute_away_commands_are_refused_before_the_return_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let clip = Arc::new(MemoryClipboard::default());
    let (app, w) = shell_with(
        dir.path(),
        Ok(Arc::new(MemoryStore::default())),
        None,
        clip.clone(),
    );
    let id = import_uri(&w);
    invoke(&w, "lock_set", json!({ "pin": "4321" })).unwrap();
    let shell = app.state::<crate::Shell>();
    // Away for 30 s so far: still open.
    shell.app_hidden(app::codes::device_now_ms() - 30_000);
    invoke(&w, "code_frame", json!({ "id": id })).unwrap();
    assert!(!shell.app_visible(app::codes::device_now_ms()));
    // Away for two minutes, and the return not reported yet.
    shell.app_hidden(app::codes::device_now_ms() - 120_000);
    for (cmd, args) in [
        ("code_frame", json!({ "id": id })),
        ("copy_code", json!({ "id": id })),
        ("list_tokens", json!({})),
    ] {
        assert_eq!(
            invoke(&w, cmd, args).unwrap_err()["code"],
            "APP_LOCKED",
            "{cmd} after two minutes away"
        );
    }
    assert!(clip.read().is_none(), "nothing was copied");
    // The unlock holds whether or not the return is reported (a lost report looped the
    // customer on the lock screen: each command locked again).
    invoke(&w, "lock_unlock", json!({ "pin": "4321" })).unwrap();
    invoke(&w, "code_frame", json!({ "id": id })).unwrap();
    invoke(&w, "code_frame", json!({ "id": id })).unwrap();
    assert!(
        !shell.app_visible(app::codes::device_now_ms()),
        "open: the lock settled the time away"
    );
}

/// Ten wrong PINs in the keystore's lock entry (as the lock itself leaves them).
fn lock_out(store: &dyn SecretStore) {
    let bytes = store.get(app::lock::LOCK_ENTRY).unwrap().unwrap();
    let mut record: Value = serde_json::from_slice(&bytes).unwrap();
    record["failures"] = json!(app::lock::MAX_FAILURES);
    store
        .set(app::lock::LOCK_ENTRY, &serde_json::to_vec(&record).unwrap())
        .unwrap();
}

/// The forgotten-PIN reset deletes every token's secret the keystore holds, not only those
/// the metadata file lists: an emptied `tokens.json` (put back after the reset) kept its tokens'
/// secrets, and showed their codes with no PIN. A broken `tokens.json` no longer stops it.
#[test]
fn the_pin_reset_deletes_every_secret_whatever_the_metadata_file_says() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let meta = dir.path().join(app::vault::METADATA_FILE);
    let (app1, w) = shell(dir.path(), Ok(store.clone()), None);
    let id = import_uri(&w);
    invoke(&w, "lock_set", json!({ "pin": "4321" })).unwrap();
    drop(w);
    drop(app1);
    lock_out(store.as_ref());
    let saved = std::fs::read(&meta).unwrap();
    std::fs::write(&meta, br#"{"version":1,"tokens":[]}"#).unwrap();
    let (app2, w) = shell(dir.path(), Ok(store.clone()), None);
    assert_eq!(
        invoke(&w, "lock_status", json!({})).unwrap()["locked_out"],
        true
    );
    invoke(&w, "lock_reset", json!({})).unwrap();
    drop(w);
    drop(app2);
    assert!(
        store.get(&id).unwrap().is_none(),
        "the secret the metadata did not list is gone"
    );
    std::fs::write(&meta, &saved).unwrap();
    let (_app3, w) = shell(dir.path(), Ok(store.clone()), None);
    assert_eq!(
        invoke(&w, "code_frame", json!({ "id": id })).unwrap_err()["code"],
        "SECRET_MISSING"
    );

    // A broken metadata file: the reset still deletes the secrets (the keystore's own index
    // names them) and leaves an empty vault.
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let (app1, w) = shell(dir.path(), Ok(store.clone()), None);
    let id = import_uri(&w);
    invoke(&w, "lock_set", json!({ "pin": "4321" })).unwrap();
    drop(w);
    drop(app1);
    lock_out(store.as_ref());
    std::fs::write(dir.path().join(app::vault::METADATA_FILE), b"{not json").unwrap();
    let (_app2, w) = shell(dir.path(), Ok(store.clone()), None);
    invoke(&w, "lock_reset", json!({})).unwrap();
    assert!(store.get(&id).unwrap().is_none());
    assert_eq!(invoke(&w, "list_tokens", json!({})).unwrap(), json!([]));
}

/// Biometric unlock is the customer's choice, made with the PIN: off after the PIN is set,
/// on (and off) only with the right PIN; the lock's view says so. (The unlock itself and the
/// system's prompt are phone-only: `app::lock`'s tests cover the rule.)
#[test]
fn biometric_unlock_is_turned_on_with_the_pin() {
    let dir = tempfile::tempdir().unwrap();
    let (_app, w) = shell(dir.path(), Ok(Arc::new(MemoryStore::default())), None);
    invoke(&w, "lock_set", json!({ "pin": "4321" })).unwrap();
    let view = invoke(&w, "lock_status", json!({})).unwrap();
    assert_eq!(view["biometric_on"], false, "off until chosen: {view}");
    assert_eq!(view["biometric"], false);
    assert_eq!(
        invoke(
            &w,
            "lock_biometric_set",
            json!({ "pin": "1111", "on": true })
        )
        .unwrap_err()["code"],
        "APP_PIN_WRONG"
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let view = invoke(
        &w,
        "lock_biometric_set",
        json!({ "pin": "4321", "on": true }),
    )
    .unwrap();
    assert_eq!(view["biometric_on"], true);
    assert_eq!(
        view["biometric"], false,
        "a desktop has no biometrics to offer"
    );
    invoke(&w, "lock_now", json!({})).unwrap();
    assert_eq!(
        invoke(
            &w,
            "lock_biometric_set",
            json!({ "pin": "4321", "on": false })
        )
        .unwrap_err()["code"],
        "APP_LOCKED",
        "not while locked"
    );
    invoke(&w, "lock_unlock", json!({ "pin": "4321" })).unwrap();
    let view = invoke(
        &w,
        "lock_biometric_set",
        json!({ "pin": "4321", "on": false }),
    )
    .unwrap();
    assert_eq!(view["biometric_on"], false);
}

/// iOS refuses Face ID (or ends the app) without `NSFaceIDUsageDescription`, and the camera's
/// purpose string must name every use (setup and 取引認証 QR codes). The plist is iOS-only
/// configuration that nothing here builds: this keeps it from losing either.
#[test]
fn the_ios_plist_states_why_face_id_and_the_camera_are_used() {
    let plist =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Info.ios.plist"))
            .unwrap();
    for key in ["NSFaceIDUsageDescription", "NSCameraUsageDescription"] {
        let at = plist
            .find(&format!("<key>{key}</key>"))
            .unwrap_or_else(|| panic!("{key}"));
        let value = plist[at..]
            .split("<string>")
            .nth(1)
            .unwrap()
            .split("</string>")
            .next()
            .unwrap();
        assert!(!value.trim().is_empty(), "{key} says why");
    }
    assert!(
        plist.contains("取引認証"),
        "the camera's purpose names 取引認証"
    );
}

/// Android backs an app's data directory up to the cloud and copies it to a new phone unless
/// the manifest says otherwise (and from Android 12 on, `allowBackup` governs only the cloud).
/// The secrets never travel (the Android Keystore is not backed up), so a carried token list
/// opened on "the token settings are missing" where a new phone should start at setup. The
/// screen-guard plugin's manifest, merged into the app's, turns both off; Android-only
/// configuration that nothing here builds: this keeps it whole.
#[test]
fn android_keeps_the_app_data_off_backups_and_device_transfers() {
    let android =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("plugins/screen-guard/android/src/main");
    let manifest = std::fs::read_to_string(android.join("AndroidManifest.xml")).unwrap();
    let application = manifest
        .split("<application")
        .nth(1)
        .and_then(|a| a.split('>').next())
        .expect("an <application> element");
    assert!(application.contains(r#"android:allowBackup="false""#));
    let rules = application
        .split(r#"android:dataExtractionRules="@xml/"#)
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("data extraction rules");
    let rules = std::fs::read_to_string(android.join(format!("res/xml/{rules}.xml"))).unwrap();
    for section in ["cloud-backup", "device-transfer"] {
        let body = rules
            .split(&format!("<{section}>"))
            .nth(1)
            .and_then(|b| b.split(&format!("</{section}>")).next())
            .unwrap_or_else(|| panic!("{section}"));
        assert!(!body.contains("<include"), "{section} includes nothing");
        for domain in ["root", "file", "database", "sharedpref", "external"] {
            for storage in ["", "device_"] {
                if storage == "device_" && domain == "external" {
                    continue; // no device-protected external storage
                }
                let exclude = format!(r#"<exclude domain="{storage}{domain}" path="." />"#);
                assert!(body.contains(&exclude), "{section}: {exclude}");
            }
        }
    }
}

/// iOS keeps Keychain items after the app is deleted; the data directory goes. A customer who
/// installed the app again met the old install's PIN lock, and behind it "the token settings
/// file is missing, contact support", for good. Now the new install deletes the old one's
/// token secrets and PIN and starts at setup.
#[test]
fn a_reinstall_starts_clean_though_the_keychain_kept_the_old_install() {
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let old = tempfile::tempdir().unwrap();
    let (app1, w) = shell(old.path(), Ok(store.clone()), None);
    let id = import_uri(&w);
    invoke(&w, "lock_set", json!({ "pin": "4321" })).unwrap();
    drop(w);
    drop(app1);
    drop(old);

    let new = tempfile::tempdir().unwrap();
    let (_app2, w) = shell(new.path(), Ok(store.clone()), None);
    let lock = invoke(&w, "lock_status", json!({})).unwrap();
    assert_eq!(
        lock["enabled"], false,
        "no PIN of the removed install: {lock}"
    );
    assert_eq!(invoke(&w, "list_tokens", json!({})).unwrap(), json!([]));
    assert!(
        store.get(&id).unwrap().is_none(),
        "its token's secret is deleted"
    );
    assert!(store.get(app::lock::LOCK_ENTRY).unwrap().is_none());
}

/// The same install keeps its PIN and tokens across starts; only a metadata file lost within
/// it is METADATA_MISSING, from which the customer may start over (the PIN stays, asked first).
#[test]
fn a_lost_token_list_can_be_started_over_behind_the_pin() {
    let store: Arc<dyn SecretStore> = Arc::new(MemoryStore::default());
    let dir = tempfile::tempdir().unwrap();
    let (app1, w) = shell(dir.path(), Ok(store.clone()), None);
    let id = import_uri(&w);
    // Nothing to start over from while the list is readable.
    assert_eq!(
        invoke(&w, "vault_start_over", json!({})).unwrap_err()["code"],
        "VAULT_INTACT"
    );
    assert_eq!(
        invoke(&w, "list_tokens", json!({}))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
    invoke(&w, "lock_set", json!({ "pin": "4321" })).unwrap();
    drop(w);
    drop(app1);

    std::fs::remove_file(dir.path().join(app::vault::METADATA_FILE)).unwrap();
    let (_app2, w) = shell(dir.path(), Ok(store.clone()), None);
    assert_eq!(
        invoke(&w, "lock_status", json!({})).unwrap()["locked"],
        true,
        "the same install: its PIN is asked"
    );
    assert_eq!(
        invoke(&w, "vault_start_over", json!({})).unwrap_err()["code"],
        "APP_LOCKED"
    );
    assert!(
        store.get(&id).unwrap().is_some(),
        "nothing deleted while locked"
    );
    invoke(&w, "lock_unlock", json!({ "pin": "4321" })).unwrap();
    let missing = invoke(&w, "list_tokens", json!({})).unwrap_err();
    assert_eq!(missing["code"], "METADATA_MISSING");
    invoke(&w, "vault_start_over", json!({})).unwrap();
    assert!(
        store.get(&id).unwrap().is_none(),
        "the listed token's secret is deleted"
    );
    assert_eq!(invoke(&w, "list_tokens", json!({})).unwrap(), json!([]));
    assert_eq!(
        invoke(&w, "lock_status", json!({})).unwrap()["enabled"],
        true,
        "the PIN stays"
    );
    // A token set up afterwards is kept by a second start over's refusal.
    import_uri(&w);
    assert_eq!(
        invoke(&w, "vault_start_over", json!({})).unwrap_err()["code"],
        "VAULT_INTACT"
    );
    assert_eq!(
        invoke(&w, "list_tokens", json!({}))
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

/// A data directory of its own is honoured only beside a keystore service of its own: over the
/// real install's keystore, an empty one would be taken for a reinstall and delete its tokens.
#[test]
fn a_data_directory_override_needs_a_keystore_of_its_own() {
    use std::ffi::OsString;
    assert_eq!(
        crate::data_dir_override(Some(OsString::from("/tmp/otp-x")), Some("otp-test-1")),
        Some(std::path::PathBuf::from("/tmp/otp-x"))
    );
    assert_eq!(
        crate::data_dir_override(Some(OsString::from("/tmp/otp-x")), None),
        None
    );
    assert_eq!(
        crate::data_dir_override(Some(OsString::from("/tmp/otp-x")), Some("")),
        None
    );
    assert_eq!(crate::data_dir_override(None, Some("otp-test-1")), None);
}
