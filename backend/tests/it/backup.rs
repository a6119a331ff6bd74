//! `otp-backend backup` / `restore` / `check` on the real binary: an online backup taken
//! while verifications run, restored into a fresh data directory, keeps every accepted code
//! refused; a backup without its master key is refused before anything is replaced.

use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::process::Command;

use crate::process::Proc;
use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_otp-backend");

/// Run the binary to completion without any inherited key or configuration; (success,
/// stdout, stderr).
async fn cli(args: &[&str], envs: &[(&str, String)]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("OTP_CONFIG")
        .env_remove("OTP_MASTER_KEY")
        .env_remove("OTP_DATABASE_URL")
        .env_remove("OTP_DATA_DIR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().await.unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn verify(http: &reqwest::Client, base: &str, uid: &str, code: &str) -> (u16, Value) {
    let res = http
        .post(format!("{base}/host/v1/tokens/{uid}/verify"))
        .bearer_auth(API_KEY)
        .json(&json!({"code": code, "purpose": "transfer"}))
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

fn real_step() -> u64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    protocol::TotpParams::default().step_at(now)
}

fn code_at(secret: &protocol::Secret, step: u64) -> String {
    protocol::code_at_step(secret, &protocol::TotpParams::default(), step)
        .as_str()
        .to_owned()
}

/// A temporary directory only its owner can read (the server refuses any other as a data
/// directory).
fn private_tempdir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

/// A data directory's SQLite database as a `TestDb` (for `Proc::start`).
fn sqlite_db(dir: tempfile::TempDir) -> TestDb {
    TestDb {
        url: format!("sqlite://{}?mode=rwc", dir.path().join("otp.db").display()),
        dir,
        pg_name: None,
    }
}

/// `env`'s database backed up by the binary (the engine's pool closed first) into a private
/// directory: the directory (kept alive by the caller), the file, and its path as text.
async fn backup_of(env: &Env) -> (tempfile::TempDir, std::path::PathBuf, String) {
    env.engine.store().close().await;
    let backups = private_tempdir();
    let file = backups.path().join("b.db");
    let file_s = file.to_str().unwrap().to_owned();
    let (ok, _, err) = cli(
        &["backup", "--to", &file_s],
        &[("OTP_DATABASE_URL", env.db.url.clone())],
    )
    .await;
    assert!(ok, "{err}");
    (backups, file, file_s)
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// A backup waits for a database another program holds for a moment, instead of failing
/// "pool timed out" after the server's half second (the restore once failed so on a loaded CI
/// host). Here another connection holds the file locked (rollback-journal mode, EXCLUSIVE) for
/// 1.5 s: the backup's first connection waits for it under SQLite's busy timeout, longer than
/// the server's acquire timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_waits_for_a_database_held_for_a_moment() {
    let env = Env::new(Db::Sqlite).await;
    let _ = env.active_token("heldfile1").await;
    env.engine.store().close().await;
    // The source: a first backup of the server's database (a file no server has open).
    let backups = private_tempdir();
    let source = backups.path().join("source.db");
    let (ok, _, err) = cli(
        &["backup", "--to", source.to_str().unwrap()],
        &[("OTP_DATABASE_URL", env.db.url.clone())],
    )
    .await;
    assert!(ok, "{err}");
    let holder = rusqlite::Connection::open(&source).unwrap();
    let mode: String = holder
        .query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete");
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let held = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        holder.execute_batch("COMMIT").unwrap();
    });
    let file = backups.path().join("held.db");
    let started = std::time::Instant::now();
    let (ok, out, err) = cli(
        &["backup", "--to", file.to_str().unwrap()],
        &[(
            "OTP_DATABASE_URL",
            format!("sqlite://{}?mode=rw", source.display()),
        )],
    )
    .await;
    held.join().unwrap();
    assert!(ok, "the backup waited for the lock: {out}{err}");
    assert!(
        started.elapsed() >= Duration::from_millis(1400),
        "it really waited for the holder ({:?})",
        started.elapsed()
    );
    assert!(out.contains("1 token"), "{out}");
    assert!(file.is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_restores_with_every_used_code_still_refused() {
    let _heavy = crate::support::HEAVY.lock().await;
    let env = Env::new(Db::Sqlite).await;
    let mut tokens = Vec::new();
    for i in 0..12 {
        tokens.push(env.active_token(&format!("bkp{i:03}")).await);
    }
    // One token is kept unused until after the restore: the restored server must verify.
    let (spare_uid, spare_secret) = env.active_token("bkpspare").await;
    env.engine.store().close().await;
    let server = Proc::start(&env.db, &[]).await;
    let http = reqwest::Client::new();

    // Accept one code per token (the next step's: it stays inside the window for 2+ minutes).
    let step = real_step() + 1;
    let mut used = Vec::new();
    for (uid, secret) in &tokens {
        let code = code_at(secret, step);
        let (status, v) = verify(&http, &server.base, uid, &code).await;
        assert_eq!((status, v["result"].as_str()), (200, Some("ok")), "{v}");
        used.push((uid.clone(), code));
    }

    // Load: replays of those codes, each a group-committed write (audit row, mail).
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for w in 0..4 {
        let (http, base, used) = (http.clone(), server.base.clone(), used.clone());
        let (stop, answered) = (stop.clone(), answered.clone());
        load.push(tokio::spawn(async move {
            let mut bad = Vec::new();
            let mut i = w;
            while !stop.load(Ordering::SeqCst) {
                let (uid, code) = &used[i % used.len()];
                let (status, v) = verify(&http, &base, uid, code).await;
                if (status, v["result"].as_str()) != (200, Some("replayed")) {
                    bad.push(format!("{status} {v}"));
                }
                answered.fetch_add(1, Ordering::SeqCst);
                i += 4;
            }
            bad
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let backups = private_tempdir();
    let file = backups.path().join("otp-backup.db");
    let file_s = file.to_str().unwrap().to_owned();
    let live = [
        (
            "OTP_DATA_DIR",
            env.db.dir.path().to_str().unwrap().to_owned(),
        ),
        ("OTP_DATABASE_URL", env.db.url.clone()),
    ];
    // The server answers while a backup runs. (The suite once saw no answer during a backup:
    // the checkpointer's RESTART waited for the backup's reader with every write held behind
    // it; `a_reader_on_an_old_snapshot_does_not_hold_verifications_back` pins that down.) A
    // backup's window can also be shorter than one answer on a machine busy with other tests,
    // so up to three backups are taken (each replacing the last) until one saw an answer; a
    // backup that blocked the server would see none in all three.
    let mut during = 0;
    for attempt in 1..=3 {
        let _ = std::fs::remove_file(&file);
        let before = answered.load(Ordering::SeqCst);
        let (ok, out, err) = cli(&["backup", "--to", &file_s], &live).await;
        during = answered.load(Ordering::SeqCst) - before;
        assert!(ok, "backup {attempt}: {err}");
        assert!(out.contains("backup written to"), "{out}");
        assert!(out.contains("master key is not in the backup"), "{out}");
        if during > 0 {
            break;
        }
    }
    stop.store(true, Ordering::SeqCst);
    for t in load {
        let bad = t.await.unwrap();
        assert!(bad.is_empty(), "verifications during the backup: {bad:?}");
    }
    assert!(
        during > 0,
        "no verification was answered while any of three backups ran"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600,
            "a backup holds hashes and sealed secrets: owner only"
        );
    }
    assert_eq!(
        files_in(backups.path()),
        ["otp-backup.db"],
        "no partial or WAL files left beside it"
    );
    // A backup never overwrites.
    let (ok, _, err) = cli(&["backup", "--to", &file_s], &live).await;
    assert!(!ok && err.contains("never overwrites"), "{err}");

    // Restore into a fresh data directory, with the master key kept apart.
    let fresh = private_tempdir();
    let fresh_env = [
        ("OTP_DATA_DIR", fresh.path().to_str().unwrap().to_owned()),
        ("OTP_MASTER_KEY", MASTER_KEY.to_owned()),
    ];
    let (ok, out, err) = cli(&["restore", "--from", &file_s], &fresh_env).await;
    assert!(ok, "restore: {err}");
    assert!(out.contains("restored into"), "{out}");
    // The thirteen tokens' secrets and the OPAQUE server key.
    assert!(out.contains("14 secret(s) under master key test1"), "{out}");
    drop(server);

    let restored = sqlite_db(fresh);
    let server = Proc::start(&restored, &[]).await;
    for (uid, code) in &used {
        let (status, v) = verify(&http, &server.base, uid, code).await;
        assert_eq!(
            (status, v["result"].as_str()),
            (200, Some("replayed")),
            "a code accepted before the backup is still refused after the restore: {v}"
        );
    }
    let (status, v) = verify(
        &http,
        &server.base,
        &spare_uid,
        &code_at(&spare_secret, real_step()),
    )
    .await;
    assert_eq!(
        (status, v["result"].as_str()),
        (200, Some("ok")),
        "the restored server opens the secrets and verifies: {v}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_refuses_without_its_master_key_and_replaces_nothing() {
    let env = Env::new(Db::Sqlite).await;
    let _ = env.active_token("keyless1").await;
    // The backup itself needs no key.
    let (backups, file, file_s) = backup_of(&env).await;

    let fresh = private_tempdir();
    let data = fresh.path().to_str().unwrap().to_owned();
    let no_key = [("OTP_DATA_DIR", data.clone())];

    // No key configured, no key file: refused, with what to do.
    let (ok, _, err) = cli(&["restore", "--from", &file_s], &no_key).await;
    assert!(!ok);
    assert!(
        err.contains(
            "2 secret(s) are sealed under master key(s) that are not configured (2 under test1)"
        ) && err.contains("nothing was replaced")
            && err.contains("master key file"),
        "{err}"
    );
    assert!(
        files_in(fresh.path()).is_empty(),
        "nothing written, no key made: {:?}",
        files_in(fresh.path())
    );

    // A wrong key with the right id.
    let wrong = format!("test1:{}", "ab".repeat(32));
    let (ok, _, err) = cli(
        &["restore", "--from", &file_s],
        &[no_key[0].clone(), ("OTP_MASTER_KEY", wrong)],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("is not the key that sealed"), "{err}");
    assert!(files_in(fresh.path()).is_empty());

    // Copied into place by hand (no restore), the server refuses to start without the key
    // and makes no new one.
    std::fs::copy(&file, fresh.path().join("otp.db")).unwrap();
    let (ok, _, err) = cli(
        &["serve"],
        &[no_key[0].clone(), ("OTP_LISTEN", "127.0.0.1:0".into())],
    )
    .await;
    assert!(!ok);
    assert!(
        err.contains("master key") && err.contains("will not start"),
        "{err}"
    );
    assert!(!fresh.path().join("master.key").exists());

    // With the key, `check` and a dry run pass and change nothing; the restore replaces the
    // hand copy and keeps it aside.
    let with_key = [no_key[0].clone(), ("OTP_MASTER_KEY", MASTER_KEY.to_owned())];
    let (ok, out, err) = cli(&["check"], &with_key).await;
    assert!(
        ok && out.contains("2 secret(s) under master key test1"),
        "{out}{err}"
    );
    let (ok, out, err) = cli(&["restore", "--from", &file_s, "--dry-run"], &with_key).await;
    assert!(ok && out.contains("nothing was replaced"), "{out}{err}");
    assert_eq!(
        files_in(fresh.path())
            .into_iter()
            .filter(|f| !f.ends_with("-wal") && !f.ends_with("-shm"))
            .collect::<Vec<_>>(),
        ["otp.db"],
        "a dry run leaves the database as it was (SQLite's own -wal/-shm aside)"
    );
    // A backup brought back read-only for all (an archive's 0444): restored, and the live
    // database is 0600 whatever the backup's mode (a copy took the backup's mode: a 0644
    // backup gave a 0644 database, a 0444 one could not be restored at all).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    }
    let (ok, out, err) = cli(&["restore", "--from", &file_s], &with_key).await;
    assert!(ok, "{err}");
    assert!(out.contains("the database it replaced is kept at"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(fresh.path().join("otp.db"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the restored database is 0600");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let names: Vec<_> = files_in(fresh.path())
        .into_iter()
        .filter(|f| !f.ends_with("-wal"))
        .collect();
    assert!(
        names.len() == 2 && names[1].starts_with("otp.db.before-restore-"),
        "the restored database and the one it replaced (with its log, if it had one): {names:?}"
    );
    assert!(
        !files_in(fresh.path()).iter().any(|f| f.ends_with("-shm")),
        "no shared-memory index is left beside either"
    );

    // A server running on the data directory: refused, nothing replaced.
    let db = TestDb {
        url: format!(
            "sqlite://{}?mode=rwc",
            fresh.path().join("otp.db").display()
        ),
        dir: private_tempdir(),
        pg_name: None,
    };
    let server = Proc::start(&db, &[]).await;
    let (ok, _, err) = cli(&["restore", "--from", &file_s], &with_key).await;
    assert!(!ok && err.contains("is in use"), "{err}");
    drop(server);

    // A damaged file and a backup from a newer version are refused before anything moves.
    let junk = backups.path().join("junk.db");
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&junk, &bytes[..bytes.len() / 2]).unwrap();
    let (ok, _, err) = cli(&["restore", "--from", junk.to_str().unwrap()], &with_key).await;
    assert!(!ok && err.contains("nothing was replaced"), "{err}");
    let newer = backups.path().join("newer.db");
    std::fs::copy(&file, &newer).unwrap();
    {
        use sqlx::Connection;
        sqlx::any::install_default_drivers();
        let mut c = sqlx::AnyConnection::connect(&format!("sqlite://{}", newer.display()))
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
             VALUES (9999, 'future', 1, x'00', 0)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c.close().await.unwrap();
    }
    let (ok, _, err) = cli(&["restore", "--from", newer.to_str().unwrap()], &with_key).await;
    assert!(!ok && err.contains("newer otp-backend"), "{err}");
    let names = files_in(fresh.path());
    assert!(
        !names.iter().any(|n| n.contains(".restore-"))
            && names
                .iter()
                .filter(|n| n.contains("before-restore"))
                .count()
                == 1,
        "refused restores leave no staged copy and move nothing aside: {names:?}"
    );

    // PostgreSQL has its own tools.
    let (ok, _, err) = cli(
        &["backup", "--to", &file_s],
        &[("OTP_DATABASE_URL", "postgres://otp@127.0.0.1/otp".into())],
    )
    .await;
    assert!(!ok && err.contains("pg_dump"), "{err}");
}

/// Tokens are not the only sealed secrets: staff members' second factors (and the OPAQUE
/// server key) are sealed under the same master keys, and the server will not start without
/// theirs. A backup holding only those was restored without its key, and `check` with a wrong
/// key passed; the server then refused to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_and_check_open_staff_second_factors_too() {
    let env = Env::new(Db::Sqlite).await;
    let _ = crate::staff::staff(&env, "sup0001", "supervisor").await;
    let _ = crate::staff::staff(&env, "op0001", "operator").await;
    let (_backups, _file, file_s) = backup_of(&env).await;

    let fresh = private_tempdir();
    let data = fresh.path().to_str().unwrap().to_owned();
    let (ok, _, err) = cli(
        &["restore", "--from", &file_s, "--dry-run"],
        &[("OTP_DATA_DIR", data.clone())],
    )
    .await;
    assert!(!ok, "a restore without the staff factors' key is refused");
    assert!(
        err.contains(
            "2 secret(s) are sealed under master key(s) that are not configured (2 under test1)"
        ),
        "{err}"
    );
    assert!(
        files_in(fresh.path()).is_empty(),
        "{:?}",
        files_in(fresh.path())
    );

    // `check` with another key of the same id, and no key check value to catch it first (a
    // database from before they were kept): the staff factors themselves do not open.
    {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&env.db.url).await.unwrap();
        sqlx::query("DELETE FROM master_keys")
            .execute(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
    }
    let wrong = format!("test1:{}", "cd".repeat(32));
    let (ok, _, err) = cli(
        &["check"],
        &[
            ("OTP_DATABASE_URL", env.db.url.clone()),
            ("OTP_MASTER_KEY", wrong),
        ],
    )
    .await;
    assert!(!ok, "check with a wrong key fails");
    assert!(
        err.contains("2 secret(s) do not open with the configured master keys"),
        "{err}"
    );
}

/// A restore run as root (operators often do) left the database owned by root: the service's
/// user then could not open it, and the server did not start. The restored database now takes
/// the owner of the database it replaces, or of the data directory. (Needs root to change an
/// owner: `scripts/test.sh` runs as root; elsewhere this test says so and checks nothing.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_by_root_leaves_the_database_to_its_owner() {
    use std::os::unix::fs::MetadataExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: changing a file's owner needs root");
        return;
    }
    let env = Env::new(Db::Sqlite).await;
    env.customer("owner001").await;
    let (_backups, _file, file_s) = backup_of(&env).await;
    let service_user = (4242, 4243);
    let fresh = private_tempdir();
    std::os::unix::fs::chown(fresh.path(), Some(service_user.0), Some(service_user.1)).unwrap();
    let with_key = [
        ("OTP_DATA_DIR", fresh.path().to_str().unwrap().to_owned()),
        ("OTP_MASTER_KEY", MASTER_KEY.to_owned()),
    ];
    let owner = |p: &Path| {
        let m = std::fs::metadata(p).unwrap();
        (m.uid(), m.gid())
    };
    let db = fresh.path().join("otp.db");
    // Into an empty data directory: the directory's owner.
    let (ok, _, err) = cli(&["restore", "--from", &file_s], &with_key).await;
    assert!(ok, "{err}");
    assert_eq!(owner(&db), service_user, "the data directory's owner");
    // Over a database: its owner (here another one than the directory's).
    std::os::unix::fs::chown(&db, Some(4444), Some(4445)).unwrap();
    let (ok, _, err) = cli(&["restore", "--from", &file_s], &with_key).await;
    assert!(ok, "{err}");
    assert_eq!(owner(&db), (4444, 4445), "the replaced database's owner");
}

/// A database that is a symbolic link is refused by restore (run as root, it gives the restored
/// file an owner: never one found by following a link someone could have put there), and the
/// link is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_over_a_symbolic_link_is_refused() {
    let env = Env::new(Db::Sqlite).await;
    let (_backups, file, file_s) = backup_of(&env).await;
    let fresh = private_tempdir();
    let elsewhere = fresh.path().join("elsewhere.db");
    std::fs::copy(&file, &elsewhere).unwrap();
    let db = fresh.path().join("otp.db");
    std::os::unix::fs::symlink(&elsewhere, &db).unwrap();
    let with_key = [
        ("OTP_DATA_DIR", fresh.path().to_str().unwrap().to_owned()),
        ("OTP_MASTER_KEY", MASTER_KEY.to_owned()),
    ];
    let (ok, _, err) = cli(&["restore", "--from", &file_s], &with_key).await;
    assert!(!ok, "refused");
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(
        std::fs::read_link(&db).unwrap(),
        elsewhere,
        "the link is as it was"
    );
}

/// A file that is not an SQLite database is refused at once, in one line; `check` on a
/// database that does not exist says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_and_check_refuse_what_is_not_a_database_at_once() {
    let dir = private_tempdir();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, "this is a text file, not a backup\n".repeat(20)).unwrap();
    let data = private_tempdir();
    let envs = [("OTP_DATA_DIR", data.path().to_str().unwrap().to_owned())];
    let (ok, _, err) = cli(
        &["restore", "--from", junk.to_str().unwrap(), "--dry-run"],
        &envs,
    )
    .await;
    assert!(!ok);
    assert!(err.contains("is not an SQLite database"), "{err}");
    assert!(
        !err.contains("pool timed out"),
        "refused by its header, not after the pool's waits: {err}"
    );
    assert!(
        files_in(data.path()).is_empty(),
        "{:?}",
        files_in(data.path())
    );

    let (ok, _, err) = cli(&["check"], &envs).await;
    assert!(!ok);
    assert!(err.contains("does not exist"), "{err}");
    assert!(files_in(data.path()).is_empty(), "check makes nothing");
    let (ok, _, err) = cli(&["keys", "status"], &envs).await;
    assert!(!ok && err.contains("does not exist"), "{err}");
    assert!(
        files_in(data.path()).is_empty(),
        "keys status makes nothing"
    );
    // `check` applies the whole configuration's rules, as `serve` does.
    let (ok, _, err) = cli(
        &["check"],
        &[envs[0].clone(), ("OTP_STAFF_LANGUAGE", "fr".to_owned())],
    )
    .await;
    assert!(!ok);
    assert!(err.contains("OTP_STAFF_LANGUAGE"), "{err}");
}

/// A reader on an old snapshot (a `backup`'s `VACUUM INTO` from another process; here a
/// connection of the test's own) does not hold verifications back. The checkpointer's RESTART
/// of a log past its mark waits for that reader while SQLite's write lock (and the store's
/// gate, so every batch) waits with it: with the connections' 5 s busy timeout, verifications
/// stalled for seconds at a time (a backup under load once saw no answer at all). It now
/// waits for readers briefly and tries again on a later tick, and the log is still emptied
/// once the reader is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_on_an_old_snapshot_does_not_hold_verifications_back() {
    let _heavy = crate::support::HEAVY.lock().await;
    let env = Env::new(Db::Sqlite).await;
    let (uid, secret) = env.active_token("ckpt001").await;
    env.engine.store().close().await;
    // The checkpointer restarts the log past 4 MiB (1,024 pages) here.
    let server = Proc::start(&env.db, &[("OTP_SQLITE_WAL_RESTART_MIB", "4")]).await;
    let http = reqwest::Client::new();
    let file = env.db.dir.path().join("otp.db");

    // A reader on today's snapshot, kept open.
    let reader = rusqlite::Connection::open(&file).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let n: i64 = reader
        .query_row("SELECT count(*) FROM tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 1);
    // Then more than that mark written to the log (a 4,000-byte blob fills one 4 KiB page).
    let writer = rusqlite::Connection::open(&file).unwrap();
    writer.busy_timeout(Duration::from_secs(5)).unwrap();
    writer
        .execute_batch("CREATE TABLE test_filler (b BLOB)")
        .unwrap();
    for _ in 0..12 {
        writer.execute_batch("BEGIN").unwrap();
        for _ in 0..100 {
            writer
                .execute("INSERT INTO test_filler VALUES (zeroblob(4000))", [])
                .unwrap();
        }
        writer.execute_batch("COMMIT").unwrap();
    }
    // The checkpointer looks every 250 ms.
    tokio::time::sleep(Duration::from_millis(600)).await;

    let code = code_at(&secret, real_step());
    let mut slowest = Duration::ZERO;
    for i in 0..10 {
        let started = std::time::Instant::now();
        let (status, v) = verify(&http, &server.base, &uid, &code).await;
        slowest = slowest.max(started.elapsed());
        let want = if i == 0 { "ok" } else { "replayed" };
        assert_eq!((status, v["result"].as_str()), (200, Some(want)), "{v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Not a speed target: a stall is the busy timeout (5 s) per checkpoint attempt.
    assert!(
        slowest < Duration::from_secs(2),
        "a verification waited {slowest:?} behind a checkpoint waiting for a reader"
    );

    // The reader goes; the log is emptied (restarted, then truncated when idle).
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    drop(writer);
    let wal = env.db.dir.path().join("otp.db-wal");
    let mut len = u64::MAX;
    for _ in 0..100 {
        len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if len == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(len, 0, "the log is emptied once the reader is gone");
    drop(server);
}

/// `otp-backend mail status`, for the operator with the "outbox stuck" alert or a support call
/// about a mail that never came: what waits and since when, each mail failing or given up on
/// with its customer and the mail server's answer, and the registered addresses stored before
/// the address rule (no mail reaches them until changed). Before, the outbox could only be read
/// with SQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_status_reports_what_did_not_go_out() {
    use sqlx::Connection as _;
    let env = Env::new(Db::Sqlite).await;
    env.customer("mail0501").await;
    env.issue("mail0501").await;
    env.customer("mail0502").await;
    let (ok, out, err) = cli(
        &["mail", "status"],
        &[("OTP_DATABASE_URL", env.db.url.clone())],
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("waiting: 1 mail(s)"), "{out}");
    assert!(out.contains("given up or failing: none"), "{out}");
    assert!(
        out.contains("registered addresses the mailer cannot use: none"),
        "{out}"
    );
    let mut c = sqlx::AnyConnection::connect(&env.db.url).await.unwrap();
    sqlx::query(
        "UPDATE customers SET email = 'taro..hanako@docomo.ne.jp' WHERE login_id = 'mail0502'",
    )
    .execute(&mut c)
    .await
    .unwrap();
    // The relay is down: nothing listens on its port.
    let worker = crate::faults::mail_worker(&env, Some(test_support::free_port()));
    assert_eq!(worker.run_once().await.unwrap(), 0);
    let mail = env.engine.store().outbox(1).await.unwrap().remove(0);
    let (ok, out, err) = cli(
        &["mail", "status"],
        &[("OTP_DATABASE_URL", env.db.url.clone())],
    )
    .await;
    assert!(ok, "{err}");
    let line = out
        .lines()
        .find(|l| l.contains(&format!("#{} ", mail.id)))
        .unwrap_or_else(|| panic!("the failing mail is listed: {out}"));
    assert!(
        line.contains("issuance")
            && line.contains(&mail.to_addr)
            && line.contains("for mail0501")
            && line.contains("retrying")
            && line.contains(mail.last_error.as_deref().unwrap()),
        "{line}"
    );
    assert!(!out.contains("/dl/"), "never a download link: {out}");
    assert!(
        out.contains("registered addresses the mailer cannot use: 1")
            && out.contains("mail0502: taro..hanako@docomo.ne.jp"),
        "{out}"
    );
}

/// A data directory with its master key and no database (a data volume that did not mount, a
/// database moved away, a restore cut off): `serve` made a new, empty database beside the key
/// and served, with no customer and no token, saying nothing. It refuses now, and says what to
/// do; nothing is made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_master_key_without_its_database() {
    let data = private_tempdir();
    let dir = data.path().to_str().unwrap().to_owned();
    let (ok, _, err) = crate::process::run_with_stdin(
        &["customer", "add", "--login-id", "vol00001"],
        &[("OTP_DATA_DIR", dir.clone())],
        "loginpass1\nconf123\n",
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(data.path().join("master.key").exists());
    for f in ["otp.db", "otp.db-wal", "otp.db-shm"] {
        let _ = std::fs::remove_file(data.path().join(f));
    }
    let mut cmd = Command::new(BIN);
    cmd.args(["serve"])
        .env_remove("OTP_CONFIG")
        .env_remove("OTP_MASTER_KEY")
        .env_remove("OTP_DATABASE_URL")
        .env("OTP_DATA_DIR", &dir)
        .env("OTP_LISTEN", "127.0.0.1:0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(15), cmd.output())
        .await
        .expect("serve refuses at once instead of serving an empty database")
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("has a master key but no database"), "{err}");
    assert!(
        !data.path().join("otp.db").exists(),
        "no empty database made"
    );
}
