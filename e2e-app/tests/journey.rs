//! The customer's journey with the real desktop app (issue 6): a real backend on loopback, the
//! bank screens to issue a token, the mailed link, the app started from the download page's
//! link under Xvfb (tauri-driver + WebKitWebDriver), its initial setup, the code it shows used
//! for BOK001 activation, and the token deleted in the app. The secret must be in the OS
//! keystore and nowhere in the metadata file. Issue 17 on the same app: the app lock (in the
//! first journey) and certificate pinning against the backend served over TLS (the second).
//!
//! Needs: a debug `target/debug/soft-token` (the pinning journey uses the debug-only test
//! overrides) and `target/debug/otp-backend` built (or `OTP_BACKEND_BIN`,
//! `SOFT_TOKEN_APP`), tauri-driver, WebKitWebDriver, Xvfb, keyutils. `scripts/test.sh` has all.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test code

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use app::SecretStore;
use e2e_app::{browser, target_dir, Backend, Browser, Customer, Driver, TlsProxy, Xvfb};
use fantoccini::{Client, Locator};
use protocol::{code_at, Secret, TotpParams};

const DESKTOP_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) e2e-app";
const PHONE_UA: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) e2e-app";
const ACTIVATION_PASSWORD: &str = "48151623";

/// A journey that stops making progress (a WebDriver command that never returns, say, when
/// the app's page never loads) fails after this long, with its processes ended, instead of
/// holding the whole test run until CI's own limit. A journey takes well under a minute.
const JOURNEY_LIMIT: Duration = Duration::from_secs(300);

async fn within_limit(journey: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    tokio::time::timeout(JOURNEY_LIMIT, journey)
        .await
        .unwrap_or_else(|_| bail!("the journey made no progress within {JOURNEY_LIMIT:?}"))
}

fn app_bin() -> PathBuf {
    std::env::var_os("SOFT_TOKEN_APP")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("debug/soft-token"))
}

fn artifacts() -> PathBuf {
    let dir = target_dir().join("e2e-app");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The app binary (built first), a work folder, and the app's data folder in it.
fn prepare() -> Result<(PathBuf, tempfile::TempDir, PathBuf)> {
    let app_bin = app_bin();
    if !app_bin.exists() {
        bail!("build the app first: {}", app_bin.display());
    }
    let work = tempfile::tempdir()?;
    let app_dir = work.path().join("app-data");
    Ok((app_bin, work, app_dir))
}

/// A keystore service of this run's own, so runs never see each other's tokens.
fn own_keystore_service(tag: &str) -> String {
    format!(
        "{tag}.{}.{}",
        std::process::id(),
        app::codes::device_now_ms()
    )
}

/// On the setup screen (IDs filled from the link): types the activation password, agrees to
/// the terms and sends.
async fn send_setup(app: &Client) -> Result<()> {
    fill(app, "#activation_password", ACTIVATION_PASSWORD).await?;
    click(app, "#agreed").await?;
    click(app, "#submit").await
}

async fn wait_css(
    app: &Client,
    css: &str,
    timeout: Duration,
) -> Result<fantoccini::elements::Element> {
    app.wait()
        .at_most(timeout)
        .every(Duration::from_millis(20))
        .for_element(Locator::Css(css))
        .await
        .with_context(|| format!("waiting for {css}"))
}

async fn shot(app: &Client, name: &str) {
    // Two animation frames first, so the picture is the DOM as it is now (PLATFORM.md).
    let _ = app
        .execute_async(
            "const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            vec![],
        )
        .await;
    if let Ok(png) = app.screenshot().await {
        let _ = std::fs::write(artifacts().join(format!("{name}.png")), png);
    }
}

/// The token the app's metadata file lists (there must be exactly one) and the file's text.
fn only_token(app_dir: &std::path::Path) -> Result<(serde_json::Value, String)> {
    let text = std::fs::read_to_string(app_dir.join(app::vault::METADATA_FILE))?;
    let json: serde_json::Value = serde_json::from_str(&text)?;
    let tokens = json["tokens"].as_array().context("tokens")?;
    if tokens.len() != 1 {
        bail!("expected one token, metadata has {}", tokens.len());
    }
    Ok((tokens[0].clone(), text))
}

/// The journeys each run a backend, an Xvfb and the app: one after the other, not side by side
/// (a desktop app under WebDriver on a busy machine is slow enough alone).
static ONE_JOURNEY_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What the bank's side of issuance leaves the customer with.
struct Issued {
    /// The logged-in bank session (for BOK001 later).
    bank: Browser,
    /// The download page's `otpbank://setup?…` link.
    link: String,
    service_id: String,
    user_id: String,
}

/// The bank: log in, issue a soft token (BOP001 → input → confirm → complete); the mail, and
/// its download page on the phone, whose link opens the app.
async fn issue_and_open_the_mail(backend: &Backend, customer: &Customer) -> Result<Issued> {
    let bank = browser(&backend.base_url, DESKTOP_UA);
    let page = bank.get("/login").await;
    let csrf = page.input("csrf");
    let page = bank
        .post(
            "/login",
            &[
                ("csrf", &csrf),
                ("login_id", customer.login_id),
                ("password", customer.password),
            ],
        )
        .await;
    assert_eq!(page.path, "/top", "logged in");
    let page = bank.get("/otp/issue").await;
    let csrf = page.input("csrf");
    let page = bank
        .post(
            "/otp/issue",
            &[
                ("csrf", &csrf),
                ("email", "taro@example.com"),
                ("email2", "taro@example.com"),
                ("activation_password", ACTIVATION_PASSWORD),
                ("activation_password2", ACTIVATION_PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.path, "/otp/issue/confirm", "{}", page.body);
    let (csrf, key) = (page.input("csrf"), page.input("request_key"));
    // The メール通知パスワード, mailed to the registered address (issue 19).
    let mailed = backend
        .mailed_password_from_mail(Duration::from_secs(30))
        .await?;
    let page = bank
        .post(
            "/otp/issue/confirm",
            &[
                ("csrf", &csrf),
                ("request_key", &key),
                ("confirmation_password", customer.confirmation),
                ("mail_password", &mailed),
            ],
        )
        .await;
    assert_eq!(page.path, "/otp/issue/complete", "{}", page.body);

    // --- the mail, and its download page on the phone -----------------------------------------
    let download = backend
        .download_url_from_mail(Duration::from_secs(30))
        .await?;
    let phone = browser(&backend.base_url, PHONE_UA);
    let page = phone.get(&download).await;
    assert_eq!(page.status, 200, "the download page opens: {}", page.body);
    let link = page.href_of("open-app");
    let parsed = url::Url::parse(&link).with_context(|| format!("link {link}"))?;
    println!("download page link: {link}");
    assert_eq!(parsed.scheme(), "otpbank");
    let query: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    let (service_id, user_id) = (query["service_id"].clone(), query["user_id"].clone());

    Ok(Issued {
        bank,
        link,
        service_id,
        user_id,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_in_the_bank_set_up_in_the_app_activate_with_its_code_then_delete() -> Result<()> {
    let _alone = ONE_JOURNEY_AT_A_TIME.lock().await;
    within_limit(issue_in_the_bank_set_up_in_the_app_activate_with_its_code_then_delete_journey())
        .await
}

async fn issue_in_the_bank_set_up_in_the_app_activate_with_its_code_then_delete_journey(
) -> Result<()> {
    let (app_bin, work, app_dir) = prepare()?;
    let customer = Customer {
        login_id: "yamada01",
        password: "LoginPass01",
        confirmation: "Confirm01",
    };

    let backend = Backend::start(&work.path().join("backend"), &customer).await?;
    let Issued {
        bank,
        link,
        service_id,
        user_id,
    } = issue_and_open_the_mail(&backend, &customer).await?;

    // --- the app, opened with the link --------------------------------------------------------
    let xvfb = Xvfb::start()?;
    let keystore_service = own_keystore_service("e2e-app");
    let directory =
        serde_json::json!({ service_id.as_str(): backend.base_url.as_str() }).to_string();
    let driver = Driver::start(&[
        ("DISPLAY", xvfb.display.clone()),
        ("OTP_APP_DIRECTORY", directory),
        ("OTP_APP_DATA_DIR", app_dir.display().to_string()),
        ("OTP_APP_KEYSTORE_SERVICE", keystore_service.clone()),
    ])
    .await?;
    // Linux desktops register URL schemes through .desktop files and xdg-open, which a headless
    // test has not got: the link is passed the way xdg-open passes it, as the one argument.
    let app = driver.launch(&app_bin, std::slice::from_ref(&link)).await?;

    wait_css(&app, "#link-filled", Duration::from_secs(30)).await?;
    let service_field = app.find(Locator::Css("#service_id")).await?;
    assert_eq!(
        service_field.prop("value").await?.as_deref(),
        Some(service_id.as_str()),
        "filled from the link"
    );
    let user_field = app.find(Locator::Css("#user_id")).await?;
    assert_eq!(
        user_field.prop("value").await?.as_deref(),
        Some(user_id.as_str())
    );
    shot(&app, "01-setup-from-link").await;
    send_setup(&app).await?;

    // The end of setup offers the app lock; the PIN is set later, in the settings.
    wait_css(&app, "#lock-offer", Duration::from_secs(30)).await?;
    shot(&app, "02-lock-offer").await;
    app.find(Locator::Css("#offer-later"))
        .await?
        .click()
        .await?;

    let code_el = wait_css(
        &app,
        "#code[data-code]:not([data-code=''])",
        Duration::from_secs(30),
    )
    .await?;
    let code = code_el.attr("data-code").await?.unwrap_or_default();
    assert!(
        code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()),
        "six digits: {code}"
    );
    let label = app.find(Locator::Css("#token-label")).await?.text().await?;
    assert!(
        label.contains(&user_id),
        "the token's label names it: {label}"
    );
    shot(&app, "03-code").await;

    // --- the secret is in the keystore, not in the metadata file ------------------------------
    let (token, metadata) = only_token(&app_dir)?;
    let token_id = token["id"].as_str().context("id")?.to_owned();
    let store = app::KeyringStore::platform(&keystore_service)?;
    let secret = store
        .get(&token_id)?
        .context("the secret is in the OS keystore")?;
    let secret = Secret::from_bytes(secret.to_vec());
    assert!(
        !metadata.contains(secret.to_base32().as_str()),
        "no secret in {metadata}"
    );
    assert!(
        !metadata.to_lowercase().contains("secret"),
        "no secret field in {metadata}"
    );
    let params: TotpParams = serde_json::from_value(token["params"].clone())?;
    let offset = token["clock_offset"].as_i64().unwrap_or(0);
    let now = app::codes::device_now().saturating_add_signed(offset);
    assert!(
        [now.saturating_sub(2), now, now + 2]
            .iter()
            .any(|t| code_at(&secret, &params, *t).as_str() == code),
        "the app shows the RFC 6238 code of the keystore's secret"
    );

    // --- cold start: a new app process shows the code (the secret survives the restart) -------
    app.close().await?;
    let started = Instant::now();
    let app = driver.launch(&app_bin, &[]).await?;
    let code_el = wait_css(
        &app,
        "#code[data-code]:not([data-code=''])",
        Duration::from_secs(30),
    )
    .await?;
    let cold = started.elapsed();
    // Process start (from /proc) to the first code painted (the UI's `first-code-painted`
    // mark, wall clock), without the WebDriver session's own cost.
    let painted = Instant::now();
    let first_code_epoch_ms = loop {
        let at = app
            .execute(
                "const m = performance.getEntriesByName('first-code-painted')[0]; return m ? performance.timeOrigin + m.startTime : null;",
                vec![],
            )
            .await?
            .as_f64();
        match at {
            Some(at) => break at,
            None if painted.elapsed() < Duration::from_secs(5) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            None => bail!("the UI marks its first code painted"),
        }
    };
    let started_epoch_ms = e2e_app::process_start_epoch_ms(&app_bin)?;
    let to_first_code = first_code_epoch_ms - started_epoch_ms;
    // Where the time goes: process start to the page's navigation (the WebView), to the script
    // running (the UI bundle), to the shell's answers (IPC and the keystore), to the code in
    // the page, to the code painted.
    let marks = app
        .execute(
            "return ['ui-start', 'tokens-listed', 'first-code', 'first-code-painted'].map((n) => { const m = performance.getEntriesByName(n)[0]; return m ? m.startTime : null; }).concat([performance.timeOrigin]);",
            vec![],
        )
        .await?;
    let mark = |i: usize| marks[i].as_f64().unwrap_or(f64::NAN);
    let (ui_start, listed, first, drawn, origin) = (mark(0), mark(1), mark(2), mark(3), mark(4));
    println!(
        "cold start: process start to first code on screen {to_first_code:.0} ms ({}); WebDriver session request to code {} ms",
        app_bin.display(),
        cold.as_millis()
    );
    println!(
        "cold start, where the time goes: WebView up to navigation {:.0} ms, UI bundle to its first line {ui_start:.0} ms, shell answers (info, lock, tokens) {:.0} ms, first code in the page {:.0} ms, painted {:.0} ms",
        origin - started_epoch_ms,
        listed - ui_start,
        first - listed,
        drawn - first
    );
    assert!(
        (0.0..10_000.0).contains(&to_first_code),
        "a restarted app shows its code promptly: {to_first_code} ms"
    );
    // Without a GPU (no render node, as under this Xvfb) the app asks WebKit to paint on the
    // CPU, not through software GL; a GPU's machine, or a choice made in the environment, keeps
    // what it has.
    const CPU_PAINTING: &str = "WEBKIT_SKIA_ENABLE_CPU_RENDERING";
    let web_env = e2e_app::web_process_environment(&app_bin)?;
    let passed_on = web_env
        .iter()
        .find_map(|v| v.strip_prefix(CPU_PAINTING)?.strip_prefix('='));
    let gpu = std::fs::read_dir("/dev/dri").is_ok_and(|d| {
        d.flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("renderD"))
    });
    match std::env::var(CPU_PAINTING) {
        Ok(chosen) => assert_eq!(passed_on, Some(chosen.as_str()), "the choice stands"),
        Err(_) if gpu => assert_eq!(passed_on, None, "a GPU keeps WebKit's default"),
        Err(_) => assert_eq!(
            passed_on,
            Some("1"),
            "no GPU: the web process paints on the CPU"
        ),
    }
    let code = code_el.attr("data-code").await?.unwrap_or_default();

    // --- BOK001: activate with the app's code ---------------------------------------------------
    let page = bank.get("/otp/activate").await;
    let csrf = page.input("csrf");
    let page = bank
        .post("/otp/activate", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(
        page.path, "/otp/activate/done",
        "activation with the app's code: {}",
        page.body
    );
    let page = bank.get("/otp").await;
    assert!(
        page.body.contains("利用中"),
        "BOP001 shows the token in use"
    );

    // --- 取引認証 (issue 16): a transfer to a new payee over 100,000 yen --------------------------
    // The man in the browser first: the bank receives account 7654321 (malware changed it), the
    // customer types the account they meant (1234567) into the real app: its code is refused and
    // nothing is transferred. Then the right transfer, with the app's code: accepted.
    let transfer = |account: &'static str| {
        vec![
            ("bank_code", "0001"),
            ("branch_code", "123"),
            ("account_type", "1"),
            ("account_number", account),
            ("payee", "ﾔﾏﾀﾞ ﾀﾛｳ"),
            ("amount", "150000"),
        ]
    };
    for (received, accepted) in [("7654321", false), ("1234567", true)] {
        let input = bank.get("/transfer").await;
        let mut form = transfer(received);
        let csrf = input.input("csrf");
        form.push(("csrf", &csrf));
        let confirm = bank.post("/transfer", &form).await;
        assert_eq!(confirm.path, "/transfer/confirm", "{}", confirm.body);
        assert!(confirm.body.contains("id=\"tx-qr\""), "the QR is shown");
        let (code, shown) = app_transaction_code(&app).await?;
        assert_eq!(shown, "1234567", "the app shows what the customer typed");
        assert!(
            code.len() == 8 && code.bytes().all(|b| b.is_ascii_digit()),
            "eight digits: {code}"
        );
        if accepted {
            shot(&app, "12-transaction-code").await;
        }
        let done = bank
            .post(
                "/transfer/confirm",
                &[
                    ("csrf", &confirm.input("csrf")),
                    ("request_key", &confirm.input("request_key")),
                    ("confirmation_password", customer.confirmation),
                    ("code", &code),
                ],
            )
            .await;
        if accepted {
            assert_eq!(done.path, "/transfer/done", "the app's code: {}", done.body);
        } else {
            assert_eq!(
                done.status, 422,
                "a changed account is refused: {}",
                done.body
            );
            assert!(
                done.body.contains("取引認証番号が正しくありません"),
                "{}",
                done.body
            );
        }
        click(&app, "#back").await?;
        wait_css(&app, "#tx-form", Duration::from_secs(10)).await?;
        click(&app, "#back").await?;
        wait_css(&app, "#code[data-code]", Duration::from_secs(10)).await?;
    }

    // --- the app lock: set, lock, wrong PINs wait, unlock, asked at start, change, remove ---------
    let app = app_lock_round(app, &driver, &app_bin, &app_dir, &keystore_service).await?;

    // --- delete the token in the app (after confirmation) -------------------------------------
    app.find(Locator::Css("#open-settings"))
        .await?
        .click()
        .await?;
    wait_css(&app, "#token-info", Duration::from_secs(10)).await?;
    shot(&app, "10-settings").await;
    app.find(Locator::Css("#delete")).await?.click().await?;
    wait_css(&app, "#confirm-delete", Duration::from_secs(10))
        .await?
        .click()
        .await?;
    let notice = wait_css(&app, "#notice", Duration::from_secs(10))
        .await?
        .text()
        .await?;
    assert_eq!(notice, "トークンを削除しました。");
    wait_css(&app, "#setup-form", Duration::from_secs(10)).await?;
    shot(&app, "11-deleted").await;
    assert!(
        store.get(&token_id)?.is_none(),
        "deleting removed the keystore entry"
    );
    let metadata = std::fs::read_to_string(app_dir.join(app::vault::METADATA_FILE))?;
    let json: serde_json::Value = serde_json::from_str(&metadata)?;
    assert_eq!(json["tokens"], serde_json::json!([]), "and the metadata");
    app.close().await?;
    drop(driver);
    drop(xvfb);
    Ok(())
}

/// The app deleted and installed again, on the real desktop app and the real keystore (the
/// kernel keyring plays the iOS Keychain, which keeps its items after the app is deleted): the
/// removed install left a token and a PIN in the keystore, and the new install's data
/// directory is empty. The app starts at setup, not at the old install's PIN, and the old
/// token's secret and PIN are gone from the keystore. Before, it asked for the old PIN and then
/// said the token settings file was missing, for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reinstall_starts_at_setup_not_at_the_removed_installs_pin() -> Result<()> {
    // Alone, as every journey: the cold-start figures look up the newest app process.
    let _alone = ONE_JOURNEY_AT_A_TIME.lock().await;
    within_limit(a_reinstall_starts_at_setup_not_at_the_removed_installs_pin_journey()).await
}

async fn a_reinstall_starts_at_setup_not_at_the_removed_installs_pin_journey() -> Result<()> {
    let (app_bin, work, app_dir) = prepare()?;
    let keystore_service = own_keystore_service("e2e-reinstall");
    let store: std::sync::Arc<dyn SecretStore> =
        std::sync::Arc::new(app::KeyringStore::platform(&keystore_service)?);
    // The removed install, left as a customer leaves it: one token and a PIN.
    let old_dir = work.path().join("removed-install");
    app::install::reconcile(&old_dir, &store, app::codes::device_now_ms())?;
    let key = app::import::parse_otpauth(
        "otpauth://totp/ACME:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=ACME",
    )?;
    let token_id = app::Vault::open(&old_dir, store.clone())?
        .add_imported(&key, app::codes::device_now())?
        .id;
    app::lock::AppLock::new(store.clone(), &old_dir).set(
        &protocol::Sensitive::new("482615".to_owned()),
        app::codes::device_now_ms(),
    )?;
    std::fs::remove_dir_all(&old_dir)?;
    assert!(store.get(&token_id)?.is_some() && store.get(app::lock::LOCK_ENTRY)?.is_some());

    let xvfb = Xvfb::start()?;
    let driver = Driver::start(&[
        ("DISPLAY", xvfb.display.clone()),
        ("OTP_APP_DATA_DIR", app_dir.display().to_string()),
        ("OTP_APP_KEYSTORE_SERVICE", keystore_service.clone()),
    ])
    .await?;
    let app = driver.launch(&app_bin, &[]).await?;
    wait_css(&app, "#setup-form", Duration::from_secs(30)).await?;
    assert!(
        app.find(Locator::Css("#lock-form")).await.is_err(),
        "no PIN of the removed install is asked"
    );
    shot(&app, "20-reinstall-setup").await;
    assert!(
        store.get(&token_id)?.is_none(),
        "the old token's secret is gone"
    );
    assert!(
        store.get(app::lock::LOCK_ENTRY)?.is_none(),
        "the old PIN is gone"
    );
    assert!(
        app_dir.join(app::install::INSTALL_FILE).exists(),
        "this install is marked"
    );
    app.close().await?;
    drop(driver);
    drop(xvfb);
    Ok(())
}

/// Issue 17, item 3, on the real desktop app: the backend served over TLS on loopback (a proxy
/// with a certificate from a CA made in the test, which the debug build trusts through
/// `OTP_APP_TEST_CA`), the service pointed at it through `OTP_APP_DIRECTORY` with its pins.
/// Wrong pins: the app shows its pinning refusal in Japanese and English, the handshake never
/// completes, and the backend's request log shows that no request (so no setup attempt and no
/// activation password) arrived. The right key as the backup pin: setup works, and the code
/// activates the token in BOK001.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinning_a_wrong_pin_sends_nothing_and_the_right_pin_sets_up_over_tls() -> Result<()> {
    let _alone = ONE_JOURNEY_AT_A_TIME.lock().await;
    within_limit(pinning_a_wrong_pin_sends_nothing_and_the_right_pin_sets_up_over_tls_journey())
        .await
}

async fn pinning_a_wrong_pin_sends_nothing_and_the_right_pin_sets_up_over_tls_journey() -> Result<()>
{
    let (app_bin, work, app_dir) = prepare()?;
    let customer = Customer {
        login_id: "suzuki01",
        password: "LoginPass02",
        confirmation: "Confirm02",
    };
    let backend = Backend::start_logging_requests(&work.path().join("backend"), &customer).await?;
    let Issued {
        bank,
        link,
        service_id,
        ..
    } = issue_and_open_the_mail(&backend, &customer).await?;
    let proxy = TlsProxy::start(&backend.base_url).await?;
    let ca_file = work.path().join("test-ca.pem");
    std::fs::write(&ca_file, &proxy.ca_pem)?;
    println!("backend over TLS at {} (pin {})", proxy.base_url, proxy.pin);

    let xvfb = Xvfb::start()?;
    let keystore_service = own_keystore_service("e2e-app-pin");
    let env = |pins: [String; 2]| {
        let directory = serde_json::json!({ service_id.as_str(): {
            "url": proxy.base_url.as_str(), "pins": pins } })
        .to_string();
        vec![
            ("DISPLAY", xvfb.display.clone()),
            ("OTP_APP_DIRECTORY", directory),
            ("OTP_APP_TEST_CA", ca_file.display().to_string()),
            ("OTP_APP_DATA_DIR", app_dir.display().to_string()),
            ("OTP_APP_KEYSTORE_SERVICE", keystore_service.clone()),
        ]
    };
    let other_pin = |tag: &[u8]| app::pinning::Pin::of_spki(tag).to_text();

    // --- wrong pins: refused during the handshake, nothing reaches the backend ---------------
    let requests_before = backend.requests()?;
    assert!(
        requests_before.iter().any(|r| r.contains("route=/login")),
        "the request log records the bank screens' requests: {requests_before:?}"
    );
    let driver = Driver::start(&env([other_pin(b"not the key"), other_pin(b"nor this")])).await?;
    let app = driver.launch(&app_bin, std::slice::from_ref(&link)).await?;
    wait_css(&app, "#link-filled", Duration::from_secs(30)).await?;
    send_setup(&app).await?;
    let refusal = wait_css(
        &app,
        "#setup-error[data-code='CERTIFICATE_PIN_MISMATCH']",
        Duration::from_secs(30),
    )
    .await?
    .text()
    .await?;
    assert_eq!(refusal, app::AppError::PinMismatch.message_ja());
    assert!(refusal.contains("情報は送信されていません"), "{refusal}");
    shot(&app, "20-pin-mismatch-ja").await;
    click(&app, "#lang").await?;
    let refusal = wait_css(
        &app,
        "#setup-error[data-code='CERTIFICATE_PIN_MISMATCH']",
        Duration::from_secs(10),
    )
    .await?
    .text()
    .await?;
    assert_eq!(refusal, app::AppError::PinMismatch.message_en());
    assert!(refusal.contains("Nothing was sent"), "{refusal}");
    shot(&app, "21-pin-mismatch-en").await;
    // Back to Japanese: the choice is kept in the webview's storage, shared with later runs.
    click(&app, "#lang").await?;
    wait_css(&app, "html[lang='ja']", Duration::from_secs(10)).await?;

    assert!(
        proxy.connections() >= 1,
        "the app did connect to the TLS endpoint"
    );
    assert_eq!(proxy.handshakes_ok(), 0, "the app refused the handshake");
    assert_eq!(
        proxy.plaintext_in(),
        0,
        "no byte of a request (so not the activation password) went through"
    );
    let requests_after = backend.requests()?;
    assert_eq!(
        requests_after,
        requests_before,
        "the backend received no request while the app was refused (log: {})",
        backend.log_path().display()
    );
    assert!(
        !requests_after.iter().any(|r| r.contains("/app/v1/")),
        "no setup attempt (nor time request) ever reached the backend: {requests_after:?}"
    );
    if let Ok(metadata) = std::fs::read_to_string(app_dir.join(app::vault::METADATA_FILE)) {
        let json: serde_json::Value = serde_json::from_str(&metadata)?;
        assert_eq!(
            json["tokens"],
            serde_json::json!([]),
            "no token: {metadata}"
        );
    }
    app.close().await?;
    drop(driver);

    // --- the right key (as the backup pin): setup over TLS works ----------------------------
    let driver = Driver::start(&env([other_pin(b"current key"), proxy.pin.clone()])).await?;
    let app = driver.launch(&app_bin, std::slice::from_ref(&link)).await?;
    wait_css(&app, "#link-filled", Duration::from_secs(30)).await?;
    send_setup(&app).await?;
    wait_css(&app, "#lock-offer", Duration::from_secs(30)).await?;
    click(&app, "#offer-later").await?;
    let code = wait_css(
        &app,
        "#code[data-code]:not([data-code=''])",
        Duration::from_secs(30),
    )
    .await?
    .attr("data-code")
    .await?
    .unwrap_or_default();
    shot(&app, "22-pinned-setup-code").await;
    assert!(proxy.handshakes_ok() >= 1 && proxy.plaintext_in() > 0);
    let setups: Vec<_> = backend
        .requests()?
        .into_iter()
        .filter(|r| r.contains("route=/app/v2/setup") || r.contains("route=/app/v1/setup"))
        .collect();
    assert_eq!(
        setups,
        vec![
            "request{method=POST route=/app/v2/setup/start}".to_owned(),
            "request{method=POST route=/app/v2/setup/finish}".to_owned(),
        ],
        "the one setup (provisioning v2, issue 18) the backend received came through the \
         pinned connection"
    );

    // The token is real: BOK001 activates it with the app's code.
    let page = bank.get("/otp/activate").await;
    let csrf = page.input("csrf");
    let page = bank
        .post("/otp/activate", &[("csrf", &csrf), ("code", &code)])
        .await;
    assert_eq!(page.path, "/otp/activate/done", "{}", page.body);

    // Leave nothing in the kernel keyring.
    let (token, _) = only_token(&app_dir)?;
    let store = app::KeyringStore::platform(&keystore_service)?;
    store.delete(token["id"].as_str().context("id")?)?;
    app.close().await?;
    drop(driver);
    drop(xvfb);
    Ok(())
}

/// The app's 取引認証 screen, typed fallback: the customer types the transfer they meant
/// (0001 123 普通 1234567, 150,000 yen); returns the code and the account the app shows.
async fn app_transaction_code(app: &Client) -> Result<(String, String)> {
    click(app, "#tx-open").await?;
    wait_css(app, "#tx-form", Duration::from_secs(10)).await?;
    fill(app, "#tx-bankCode", "0001").await?;
    fill(app, "#tx-branchCode", "123").await?;
    fill(app, "#tx-accountNumber", "1234567").await?;
    fill(app, "#tx-amount", "150,000").await?;
    click(app, "#tx-show").await?;
    let el = wait_css(app, "#tx-code[data-code]", Duration::from_secs(10)).await?;
    let code = el.attr("data-code").await?.unwrap_or_default();
    let shown = app
        .find(Locator::Css("#tx-d-account"))
        .await?
        .text()
        .await?;
    Ok((code, shown))
}

async fn fill(app: &Client, css: &str, text: &str) -> Result<()> {
    let el = app.find(Locator::Css(css)).await?;
    el.clear().await?;
    el.send_keys(text).await?;
    Ok(())
}

async fn click(app: &Client, css: &str) -> Result<()> {
    app.find(Locator::Css(css)).await?.click().await?;
    Ok(())
}

/// The text of the element `css` once it contains `needle`. The screen may be drawn anew while
/// this looks (an element found a moment ago is then gone), so each try finds it again.
async fn wait_text(app: &Client, css: &str, needle: &str, timeout: Duration) -> Result<String> {
    let started = Instant::now();
    let mut last = String::new();
    loop {
        if let Ok(el) = app.find(Locator::Css(css)).await {
            if let Ok(text) = el.text().await {
                if text.contains(needle) {
                    return Ok(text);
                }
                last = text;
            }
        }
        if started.elapsed() > timeout {
            bail!("{css} never said {needle:?} (last: {last:?})");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the unlock button is enabled again and returns how long that took.
async fn wait_for_unlock_button(app: &Client) -> Result<Duration> {
    let started = Instant::now();
    loop {
        // Found anew each time: the lock screen is redrawn when an answer comes.
        let disabled = match app.find(Locator::Css("#unlock")).await {
            Ok(button) => button
                .prop("disabled")
                .await
                .unwrap_or_else(|_| Some("true".into())),
            Err(_) => Some("true".into()),
        };
        let enabled = disabled.as_deref() != Some("true");
        if enabled {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(15) {
            bail!("the unlock button stayed disabled");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue 17, item 1, on the real desktop app: from the code screen, back to the code screen
/// with no PIN set. Restarts the app once (the PIN is asked at start), so it returns the client.
async fn app_lock_round(
    app: Client,
    driver: &Driver,
    app_bin: &std::path::Path,
    app_dir: &std::path::Path,
    keystore_service: &str,
) -> Result<Client> {
    const PIN: &str = "2468";
    const NEW_PIN: &str = "135790";
    click(&app, "#open-settings").await?;
    wait_css(&app, "#security", Duration::from_secs(10)).await?;
    click(&app, "#set-pin").await?;
    wait_css(&app, "#pin-form[data-mode='set']", Duration::from_secs(10)).await?;
    fill(&app, "#pin-next", PIN).await?;
    fill(&app, "#pin-confirm", PIN).await?;
    shot(&app, "04-pin-set").await;
    click(&app, "#pin-submit").await?;
    wait_css(
        &app,
        "#lock-state[data-enabled='true']",
        Duration::from_secs(10),
    )
    .await?;

    // The PIN is not stored: the keystore holds an Argon2id hash.
    let store = app::KeyringStore::platform(keystore_service)?;
    let record = store
        .get(app::lock::LOCK_ENTRY)?
        .context("the lock is in the OS keystore")?;
    let record = String::from_utf8(record.to_vec())?;
    assert!(
        record.contains("$argon2id$") && !record.contains(PIN),
        "hash only, never the PIN"
    );

    // Lock now; a wrong PIN costs 1 s, the next 2 s; the right PIN is refused while waiting.
    click(&app, "#lock-now").await?;
    wait_css(&app, "#lock-form", Duration::from_secs(10)).await?;
    assert!(
        app.find(Locator::Css("#code")).await.is_err(),
        "no code while locked"
    );
    shot(&app, "05-locked").await;
    for (n, wait) in [(1u64, "1秒後"), (2, "2秒後")] {
        fill(&app, "#lock-pin", "9999").await?;
        click(&app, "#unlock").await?;
        // This attempt's answer, not the one before it (the screen is drawn anew with it).
        let error = wait_text(
            &app,
            "#lock-error[data-code='APP_PIN_WRONG']",
            wait,
            Duration::from_secs(10),
        )
        .await
        .with_context(|| format!("wrong PIN {n}"))?;
        assert!(error.contains(wait), "wrong PIN {n}: {error}");
        if n == 2 {
            shot(&app, "06-wrong-pin-wait").await;
        }
        let waited = wait_for_unlock_button(&app).await?;
        assert!(
            waited >= Duration::from_millis(n * 1000 - 400),
            "wrong PIN {n}: the next attempt waited {waited:?}"
        );
    }
    fill(&app, "#lock-pin", PIN).await?;
    click(&app, "#unlock").await?;
    wait_css(
        &app,
        "#code[data-code]:not([data-code=''])",
        Duration::from_secs(10),
    )
    .await?;
    let audit = std::fs::read_to_string(app_dir.join(app::lock::AUDIT_FILE))?;
    assert_eq!(
        audit.matches("\"wrong_pin\"").count(),
        2,
        "wrong PINs are audited locally: {audit}"
    );
    assert!(!audit.contains(PIN) && !audit.contains("9999"), "{audit}");

    // A new process asks for the PIN first.
    app.close().await?;
    let app = driver.launch(app_bin, &[]).await?;
    wait_css(&app, "#lock-form", Duration::from_secs(30)).await?;
    fill(&app, "#lock-pin", PIN).await?;
    click(&app, "#unlock").await?;
    wait_css(
        &app,
        "#code[data-code]:not([data-code=''])",
        Duration::from_secs(10),
    )
    .await?;

    // Change (needs the PIN), then remove (needs the new PIN).
    click(&app, "#open-settings").await?;
    wait_css(&app, "#security", Duration::from_secs(10)).await?;
    click(&app, "#change-pin").await?;
    wait_css(
        &app,
        "#pin-form[data-mode='change']",
        Duration::from_secs(10),
    )
    .await?;
    fill(&app, "#pin-current", PIN).await?;
    fill(&app, "#pin-next", NEW_PIN).await?;
    fill(&app, "#pin-confirm", NEW_PIN).await?;
    click(&app, "#pin-submit").await?;
    let notice = wait_text(&app, "#notice", "変更", Duration::from_secs(10)).await?;
    assert_eq!(notice, "暗証番号を変更しました。");
    click(&app, "#remove-pin").await?;
    wait_css(
        &app,
        "#pin-form[data-mode='remove']",
        Duration::from_secs(10),
    )
    .await?;
    fill(&app, "#pin-current", PIN).await?;
    click(&app, "#pin-submit").await?;
    wait_css(
        &app,
        "#pin-error[data-code='APP_PIN_WRONG']",
        Duration::from_secs(10),
    )
    .await?;
    shot(&app, "07-remove-wrong-pin").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    fill(&app, "#pin-current", NEW_PIN).await?;
    click(&app, "#pin-submit").await?;
    wait_css(
        &app,
        "#lock-state[data-enabled='false']",
        Duration::from_secs(10),
    )
    .await?;
    assert!(
        store.get(app::lock::LOCK_ENTRY)?.is_none(),
        "removing the PIN removes the keystore entry"
    );
    click(&app, "#back").await?;
    wait_css(
        &app,
        "#code[data-code]:not([data-code=''])",
        Duration::from_secs(10),
    )
    .await?;
    Ok(app)
}
