//! The vault over the real Linux keystore (kernel keyutils) across process restarts.
//!
//! Each step runs in a fresh process started with `keyctl session -`, i.e. in a new, empty
//! session keyring — what a restarted app in a new login session gets. A secret written by one
//! process is found by the next through the per-user persistent keyring, which the store links
//! into each new session. The child processes are this test binary again, running
//! [`child_step`] with the step in the environment.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use app::{ClockOffset, KeyringStore, SecretStore, Vault};
use protocol::{code_at, Secret, SetupResponse, TotpParams, UserId, WireSecret};

const STEP: &str = "OTP_VAULT_STEP";
const DIR: &str = "OTP_VAULT_DIR";
const SERVICE: &str = "OTP_VAULT_SERVICE";
/// A fixed instant, so parent and children agree on the code.
const AT: u64 = 1_795_575_630;
const SECRET: &[u8] = b"vault-test-secret-0123456789";

fn response() -> SetupResponse {
    SetupResponse {
        service_id: "10112231".parse().unwrap(),
        user_id: UserId::from_serial(99_980_000_123).unwrap(),
        secret: WireSecret(Secret::from_bytes(SECRET.to_vec())),
        params: TotpParams::default(),
        server_time: AT,
        issuer: "OTP Bank".into(),
        label: "vault test".into(),
    }
}

fn open(dir: &Path, service: &str) -> Result<Vault, app::AppError> {
    let store: Arc<dyn SecretStore> = Arc::new(KeyringStore::platform(service)?);
    Vault::open(dir, store)
}

/// Runs one step in a child process; returns its stdout line.
fn run_step(step: &str, dir: &Path, service: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("keyctl")
        .args(["session", "-"])
        .arg(exe)
        .args(["--exact", "vault_keyring::child_step", "--nocapture", "--test-threads=1"])
        .env(STEP, step)
        .env(DIR, dir)
        .env(SERVICE, service)
        .output()
        .expect("keyctl (package keyutils) runs each step in a new session keyring; scripts/test.sh installs it");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "step {step} failed: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.split_once("STEP-RESULT ").map(|(_, r)| r.trim()))
        .unwrap_or_else(|| panic!("step {step} printed no result: {stdout}"))
        .to_owned()
}

/// The child's side. Does nothing unless started by [`run_step`].
#[test]
fn child_step() {
    let Ok(step) = std::env::var(STEP) else {
        return;
    };
    let dir = std::path::PathBuf::from(std::env::var(DIR).unwrap());
    let service = std::env::var(SERVICE).unwrap();
    let result = match step.as_str() {
        "write" => {
            let mut v = open(&dir, &service).unwrap();
            let t = v.add_provisioned(&response(), ClockOffset(0), AT).unwrap();
            t.id
        }
        "read" => match open(&dir, &service) {
            Ok(v) => match v.tokens() {
                [] => "EMPTY".to_owned(),
                [t] => match v.code_view(&t.id, AT) {
                    Ok(view) => format!("CODE {}", view.code.as_str()),
                    Err(e) => e.code().to_owned(),
                },
                more => format!("MANY {}", more.len()),
            },
            Err(e) => e.code().to_owned(),
        },
        "delete" => {
            let mut v = open(&dir, &service).unwrap();
            let id = v.tokens()[0].id.clone();
            v.delete(&id).unwrap();
            let store = KeyringStore::platform(&service).unwrap();
            match store.get(&id).unwrap() {
                None => "GONE".to_owned(),
                Some(_) => "STILL-THERE".to_owned(),
            }
        }
        "reinstall" => {
            let store: Arc<dyn SecretStore> = Arc::new(KeyringStore::platform(&service).unwrap());
            match app::install::reconcile(&dir, &store, AT * 1000) {
                Ok(found) => format!("{found:?}"),
                Err(e) => e.code().to_owned(),
            }
        }
        other => panic!("unknown step {other}"),
    };
    println!("STEP-RESULT {result}");
}

#[test]
fn vault_round_trip_across_processes_with_the_kernel_keyring() {
    let data = tempfile::tempdir().unwrap();
    let service = crate::support::unique_service("vault");
    let expected = code_at(
        &Secret::from_bytes(SECRET.to_vec()),
        &TotpParams::default(),
        AT,
    );

    let id = run_step("write", data.path(), &service);
    assert!(id.starts_with("tok-"), "{id}");
    assert_eq!(
        run_step("read", data.path(), &service),
        format!("CODE {}", expected.as_str()),
        "a new process in a new session reads the secret written by the last one"
    );

    // A corrupt metadata file: a clear error, and the token comes back when the file does.
    let meta = data.path().join(app::vault::METADATA_FILE);
    let good = std::fs::read(&meta).unwrap();
    std::fs::write(&meta, &good[..good.len() / 2]).unwrap();
    assert_eq!(run_step("read", data.path(), &service), "METADATA_CORRUPT");
    // A missing metadata file with a token in the keystore: an error, not an empty vault.
    std::fs::remove_file(&meta).unwrap();
    assert_eq!(run_step("read", data.path(), &service), "METADATA_MISSING");
    std::fs::write(&meta, &good).unwrap();
    assert_eq!(
        run_step("read", data.path(), &service),
        format!("CODE {}", expected.as_str()),
        "no token was lost on the way"
    );

    assert_eq!(run_step("delete", data.path(), &service), "GONE");
    assert_eq!(
        run_step("read", data.path(), &service),
        "EMPTY",
        "delete removed both the metadata and the keystore entry, for good"
    );
}

/// iOS keeps Keychain items after the app is deleted; here the kernel keyring plays the part:
/// a new data directory over the same keystore service is a new install, which deletes the old
/// one's secret from the real keystore, once.
#[test]
fn a_new_install_deletes_the_old_installs_secret_from_the_kernel_keyring() {
    let old = tempfile::tempdir().unwrap();
    let service = crate::support::unique_service("reinstall");
    let id = run_step("write", old.path(), &service);
    assert!(id.starts_with("tok-"), "{id}");

    let new = tempfile::tempdir().unwrap();
    assert_eq!(
        run_step("reinstall", new.path(), &service),
        "Cleared { tokens: 1, pin: false }"
    );
    assert_eq!(run_step("read", new.path(), &service), "EMPTY");
    assert_eq!(run_step("reinstall", new.path(), &service), "Known");
    // The old directory's metadata names a secret the keystore no longer has.
    assert_eq!(run_step("read", old.path(), &service), "SECRET_MISSING");
}
