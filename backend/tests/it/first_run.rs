//! A newcomer's first run and the CLI without a terminal (issue 14 items 7 and 10), with the
//! real binary: logs written to a pipe carry no colour codes, passwords read from a pipe are
//! not prompted for, `serve` on an empty database says how to add a customer and a staff
//! member, and `demo` seeds accounts that log in (the customer with the printed password, the
//! staff member with the printed password and a code from the printed otpauth URI) only where
//! the rule allows.

use crate::process::{run_with_stdin, Proc};
use crate::staff::Browser;
use crate::support::*;

fn env_of(db: &TestDb) -> Vec<(&'static str, String)> {
    vec![
        ("OTP_DATA_DIR", db.dir.path().to_str().unwrap().to_owned()),
        ("OTP_DATABASE_URL", db.url.clone()),
        ("OTP_MASTER_KEY", MASTER_KEY.to_owned()),
        ("OTP_API_KEYS", format!("ib:{API_KEY}")),
    ]
}

/// The value after `label` on its line of `out` (`  login password         x7k…`).
fn field(out: &str, label: &str) -> String {
    out.lines()
        .find_map(|l| l.trim_start().strip_prefix(label))
        .unwrap_or_else(|| panic!("{label} in\n{out}"))
        .trim()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_terminal_logs_have_no_colour_and_passwords_no_prompts() {
    let db = TestDb::new(Db::Sqlite).await;
    let envs = env_of(&db);
    // Passwords from a pipe: no prompt, no colour, nothing echoed.
    let (ok, out, err) = run_with_stdin(
        &["customer", "add", "--login-id", "pipe0001"],
        &envs,
        "loginpass1\nconf123\n",
        None,
    )
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("customer pipe0001 created"), "{out}");
    // There was no database: said, in case the command was meant for an existing one.
    assert!(err.contains("there was no database at"), "{err}");
    let (ok, out2, err2) = run_with_stdin(
        &[
            "staff",
            "add",
            "--login-id",
            "pipe0002",
            "--role",
            "operator",
        ],
        &envs,
        "a-long-staff-passphrase\n",
        None,
    )
    .await;
    assert!(ok, "{err2}");
    assert!(
        !err2.contains("there was no database"),
        "the second command found the first's database: {err2}"
    );
    // Commands on existing staff do not make a database where there is none (a data directory
    // or URL given by mistake): they refuse.
    let elsewhere = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(elsewhere.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let misdirected = [(
        "OTP_DATA_DIR",
        elsewhere.path().to_str().unwrap().to_owned(),
    )];
    for args in [
        &[
            "staff",
            "disable",
            "--login-id",
            "pipe0002",
            "--reason",
            "left",
        ][..],
        &[
            "staff",
            "totp",
            "--login-id",
            "pipe0002",
            "--reason",
            "lost phone",
        ][..],
    ] {
        let (ok, _, e) = run_with_stdin(args, &misdirected, "", None).await;
        assert!(!ok && e.contains("does not exist"), "{args:?}: {e}");
    }
    assert!(
        std::fs::read_dir(elsewhere.path())
            .unwrap()
            .next()
            .is_none(),
        "nothing made there"
    );
    for text in [&out, &err, &out2, &err2] {
        assert!(!text.contains('\u{1b}'), "no ANSI escape: {text:?}");
        assert!(
            !text.contains("password:") && !text.contains("password: "),
            "no prompt when stdin is a pipe: {text:?}"
        );
        assert!(!text.contains("loginpass1") && !text.contains("a-long-staff-passphrase"));
    }
    // A missing line is still named.
    let (ok, _, err) = run_with_stdin(
        &["customer", "add", "--login-id", "pipe0003"],
        &envs,
        "loginpass1\n",
        None,
    )
    .await;
    assert!(
        !ok && err.contains("confirmation password: nothing was read from standard input"),
        "{err}"
    );
    // The server's logs on a pipe: start-up, requests, shutdown, all without colour.
    let p = Proc::start(&db, &[("OTP_LOG", "debug,sqlx=warn")]).await;
    let http = reqwest::Client::new();
    for path in ["/healthz", "/readyz", "/login", "/staff/login", "/nowhere"] {
        http.get(format!("{}{path}", p.base)).send().await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let logs = p.logs.lock().unwrap().join("\n");
    assert!(logs.lines().count() > 5, "{logs}");
    assert!(logs.contains("INFO"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "no ANSI escape in the log: {logs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_hints_on_an_empty_database_and_demo_accounts_log_in() {
    let db = TestDb::new(Db::Sqlite).await;
    let envs = env_of(&db);
    let p = Proc::start(&db, &[]).await;
    let startup = p.logs.lock().unwrap().join("\n");
    for what in [
        "otp-backend customer add --login-id",
        "otp-backend staff add --login-id",
        "--role supervisor",
        "otp-backend demo",
    ] {
        assert!(startup.contains(what), "start-up says {what}: {startup}");
    }
    assert!(!startup.contains("demo accounts"), "{startup}");
    drop(p);

    let (ok, out, err) = run_with_stdin(&["demo"], &envs, "", None).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("DEMO accounts created") && out.contains("never use them in production"));
    let login_id = field(&out, "login ID");
    assert_eq!(login_id, "demo0001");
    assert_eq!(
        field(&out, "name"),
        "デモ 太郎（DEMO）",
        "as the README's first run says"
    );
    let login_pw = field(&out, "login password");
    let confirm_pw = field(&out, "confirmation password");
    let staff_pw = field(&out, "password");
    assert!(backend::domain::fields::is_login_password(&login_pw));
    assert!(backend::domain::fields::is_confirmation_password(
        &confirm_pw
    ));
    let uri = out
        .lines()
        .find(|l| l.starts_with("otpauth://"))
        .unwrap_or_else(|| panic!("the staff member's otpauth URI in {out}"));
    let key = protocol::KeyUri::parse(uri).unwrap();
    assert_eq!(key.account, "demo-supervisor");
    assert!(out.contains('\u{2588}'), "and its QR code");
    for secret in [&login_pw, &confirm_pw, &staff_pw, &uri.to_owned()] {
        assert!(
            !err.contains(secret.as_str()),
            "never on stderr (the log): {err}"
        );
    }
    assert!(out.contains("/login") && out.contains("/staff/login") && out.contains("outbox"));

    // Twice: refused, clearly, and nothing changes.
    let (ok, out2, err2) = run_with_stdin(&["demo"], &envs, "", None).await;
    assert!(!ok && err2.contains("already exist"), "{out2}{err2}");

    // They log in: the server warns that the database holds demo accounts, and no longer hints.
    let p = Proc::start(&db, &[]).await;
    let startup = p.logs.lock().unwrap().join("\n");
    assert!(startup.contains("demo accounts"), "{startup}");
    assert!(!startup.contains("customer add --login-id"), "{startup}");
    let b = Browser::new(&p.base);
    let form = b.get("/login").await;
    let r = b
        .post(
            "/login",
            &[
                ("csrf", &form.input("csrf")),
                ("login_id", &login_id),
                ("password", &login_pw),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/top"), "{}", r.body);
    let top = b.get("/top").await;
    assert!(top.body.contains("DEMO"), "marked as a demo: {}", top.body);
    let staff = Browser::new(&p.base);
    let form = staff.get("/staff/login").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = protocol::code_at(&key.secret, &key.params, now);
    let r = staff
        .post(
            "/staff/login",
            &[
                ("csrf", &form.input("csrf")),
                ("login_id", "demo-supervisor"),
                ("password", &staff_pw),
                ("code", code.as_str()),
            ],
        )
        .await;
    assert_eq!(r.location.as_deref(), Some("/staff"), "{}", r.body);
    let console = staff.get("/staff").await;
    assert!(console.body.contains("demo-supervisor"), "{}", console.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_refuses_postgres_and_databases_in_use_unless_forced() {
    // A database with a real customer in it.
    let db = TestDb::new(Db::Sqlite).await;
    let envs = env_of(&db);
    let (ok, _, err) = run_with_stdin(
        &["customer", "add", "--login-id", "real0001"],
        &envs,
        "loginpass1\nconf123\n",
        None,
    )
    .await;
    assert!(ok, "{err}");
    let (ok, out, err) = run_with_stdin(&["demo"], &envs, "", None).await;
    assert!(!ok, "{out}");
    assert!(
        err.contains("in use (1 customer(s), 0 staff member(s))") && err.contains("--force"),
        "{err}"
    );
    assert!(!out.contains("password"), "{out}");
    let (ok, out, err) = run_with_stdin(&["demo", "--force"], &envs, "", None).await;
    assert!(ok && out.contains("demo0001"), "{out}{err}");

    // PostgreSQL: the production setup.
    let db = TestDb::new(Db::Postgres).await;
    let envs = env_of(&db);
    let (ok, out, err) = run_with_stdin(&["demo"], &envs, "", None).await;
    assert!(
        !ok && err.contains("PostgreSQL") && err.contains("--force"),
        "{out}{err}"
    );
    // Refused before it connects: the database is not even migrated.
    let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&db.url)
        .await
        .unwrap();
    let (tables,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0, "nothing was created in the refused database");
    drop(conn);
    let p = Proc::start(&db, &[]).await;
    let startup = p.logs.lock().unwrap().join("\n");
    assert!(startup.contains("customer add --login-id"), "{startup}");
    assert!(
        !startup.contains("otp-backend demo"),
        "no demo hint on PostgreSQL: {startup}"
    );
    drop(p);
    let (ok, out, err) = run_with_stdin(&["demo", "--force"], &envs, "", None).await;
    assert!(ok && out.contains("demo-supervisor"), "{out}{err}");
}
