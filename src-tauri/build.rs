//! Generates the Tauri context and the app-command permissions (so a capability must grant each
//! command the UI calls: nothing is reachable by default).

use std::path::Path;

/// Every `#[tauri::command]` of `src/commands/`; each gets an `allow-…` permission.
const COMMANDS: &[&str] = &[
    "app_info",
    "list_tokens",
    "code_frame",
    "transaction_frame",
    "scan_transaction",
    "check_clock",
    "setup_token",
    "delete_token",
    "import_otpauth",
    "take_setup_link",
    "copy_code",
    "lock_status",
    "lock_unlock",
    "lock_set",
    "lock_change",
    "lock_remove",
    "lock_now",
    "lock_reset",
    "vault_start_over",
    "app_hidden",
    "app_visible",
    "lock_biometric",
    "lock_biometric_set",
];

fn main() {
    // The webview's assets are embedded from ../ui/dist (`npm --prefix ui run build`). When the
    // UI has not been built, leave a page that says so, so `cargo clippy --workspace` and
    // `cargo test` work on a checkout without Node (scripts/test.sh builds the UI first).
    let dist = Path::new("../ui/dist");
    let index = dist.join("index.html");
    println!("cargo:rerun-if-changed=../ui/dist");
    if !index.exists() {
        println!("cargo:warning=ui/dist is missing: embedding a placeholder page (run `npm --prefix ui ci && npm --prefix ui run build`)");
        let placeholder = "<!doctype html><meta charset=utf-8><title>UI not built</title>\
            <p>The UI was not built: run <code>npm --prefix ui ci &amp;&amp; npm --prefix ui run build</code>, then rebuild.</p>";
        if std::fs::create_dir_all(dist)
            .and_then(|()| std::fs::write(&index, placeholder))
            .is_err()
        {
            println!("cargo:warning=could not write the placeholder in ui/dist");
        }
    }

    let attributes = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attributes) {
        eprintln!("tauri-build failed: {e:#}");
        std::process::exit(1);
    }
}
