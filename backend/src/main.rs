//! `otp-backend`: the server and its administration commands.

use std::io::{BufRead, IsTerminal as _, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use zeroize::Zeroizing;

use backend::config::Config;
use backend::engine::Actor;

#[derive(Parser)]
#[command(
    name = "otp-backend",
    version,
    about = "Soft-token OTP backend for internet banking"
)]
struct Cli {
    /// TOML configuration file; without one, embedded defaults under ./data are used.
    #[arg(long, short, env = "OTP_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Create or upgrade the database schema.
    Migrate,
    /// Customers of internet banking.
    Customer {
        #[command(subcommand)]
        command: CustomerCommand,
    },
    /// Support staff accounts.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Master keys for token secrets.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Copy the SQLite database to FILE while the server runs (consistent, checked, 0600).
    /// The master key is not in it: keep the key file backed up apart.
    Backup {
        #[arg(long)]
        to: PathBuf,
    },
    /// Check a backup (integrity, schema, that the configured master keys open every secret)
    /// and only then put it in place of the SQLite database. Stop the server first.
    Restore {
        #[arg(long)]
        from: PathBuf,
        /// Run every check, replace nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check the configured database (SQLite or PostgreSQL) and master keys; changes nothing.
    Check,
    /// Create a demo customer and a demo staff supervisor to try the system with, and print
    /// their passwords (and the staff member's second factor) once. Only into an empty SQLite
    /// database unless --force; never into a production database.
    Demo {
        /// Create them even in PostgreSQL or in a database that already has accounts.
        #[arg(long)]
        force: bool,
    },
    /// Mail that has not reached customers, and registered addresses the mailer cannot use.
    Mail {
        #[command(subcommand)]
        command: MailCommand,
    },
    /// Exit 0 when the server answers 200 on /healthz (a container HEALTHCHECK).
    Healthcheck {
        /// Default: http://<listen>/healthz (a wildcard address is asked on loopback).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Subcommand)]
enum CustomerCommand {
    /// Add a customer. Reads the login password and then the confirmation password from
    /// standard input, one per line (never from the command line, where `ps` would show them).
    Add {
        #[arg(long)]
        login_id: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long)]
        email: Option<String>,
    },
}

#[derive(Subcommand)]
enum StaffCommand {
    /// Add a staff member. Reads the password from standard input; prints the member's
    /// second factor (an otpauth URI and its QR code) once, for their authenticator app.
    Add {
        #[arg(long)]
        login_id: String,
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, value_parser = ["operator", "supervisor"])]
        role: String,
    },
    /// Disable a staff account (a leaver, a suspected compromise): it cannot log in and its
    /// console sessions end at once. The account and its audit history stay.
    Disable {
        #[arg(long)]
        login_id: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
    },
    /// Enable a disabled staff account again.
    Enable {
        #[arg(long)]
        login_id: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
    },
    /// Give a staff member a new second factor (a lost or replaced phone): the old one stops
    /// working and their console sessions end. Prints the new one once.
    Totp {
        #[arg(long)]
        login_id: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new master key and re-seal every secret under it. Running servers keep working:
    /// they load the new key when they first meet it.
    Rotate,
    /// Show the master keys and how many secrets each seals.
    Status,
    /// Add a new master key on standby, for instances with key files of their own: copy the
    /// file to every instance, then `keys activate` the key on one of them.
    Add,
    /// Make a key added by `keys add` current on every instance that has it, and re-seal every
    /// secret under it.
    Activate {
        /// The key's id, as `keys add` printed it.
        key_id: String,
        /// Activate although a server seen in the last three minutes has not got the key
        /// (it could then open no re-sealed secret).
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum MailCommand {
    /// What waits to be sent and since when, the mail given up on or failing (newest first, at
    /// most 50, with the customer and the reason), and the customers' registered addresses the
    /// mailer cannot use (stored before the address rule: they get no mail until changed).
    /// Changes nothing.
    Status,
}

/// The SQLite file a command is about to create, if there is no database yet (a first run, or a
/// data directory or URL given by mistake: the environment file not read, say).
fn no_database_yet(cfg: &Config) -> Option<PathBuf> {
    let path = backend::ops::backup::sqlite_path(&cfg.database_url()).ok()?;
    std::fs::metadata(&path)
        .map_or(true, |m| m.len() == 0)
        .then_some(path)
}

/// Say that a command made a new database: right on a first run, a surprise when the command
/// was meant for an existing one (on PostgreSQL, run without its configuration).
fn say_new_database(path: Option<&Path>) {
    if let Some(p) = path {
        eprintln!(
            "note: there was no database at {}: a new one was made. If you meant an existing database, check OTP_CONFIG, OTP_DATA_DIR and OTP_DATABASE_URL.",
            p.display()
        );
    }
}

fn main() -> std::process::ExitCode {
    // Everything this process creates (the database and its -wal/-shm, the outbox, key files)
    // is for this user alone, whatever the umask of the shell or unit that started it.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    init_tracing(cfg.log_json);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    // How the hints and messages should spell this binary's commands.
    let me = match &cli.config {
        Some(path) => format!("otp-backend --config {}", path.display()),
        None => "otp-backend".to_owned(),
    };
    match rt.block_on(run(cli.command, cfg, &me)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs go to standard error; colour (ANSI escapes) only when that is a terminal, so a log file,
/// a pipe or the journal gets plain text.
fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("OTP_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// One line of standard input (a password). The prompt is shown only when a person is typing
/// (standard input is a terminal); from a pipe or a file nothing is written.
fn read_secret_line(prompt: &str) -> anyhow::Result<Zeroizing<String>> {
    let _hidden = if std::io::stdin().is_terminal() {
        eprint!("{prompt}: ");
        std::io::stderr().flush().ok();
        Some(HiddenInput::start())
    } else {
        None
    };
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line)?;
    let trimmed = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    if trimmed.is_empty() {
        anyhow::bail!("{prompt}: nothing was read from standard input");
    }
    Ok(trimmed)
}

/// The terminal's echo, off while a secret is typed at it (the line's end still shows), and
/// back as it was when dropped. Where the terminal's modes cannot be read or set, nothing
/// changes.
struct HiddenInput {
    #[cfg(unix)]
    saved: Option<rustix::termios::Termios>,
}

impl HiddenInput {
    fn start() -> HiddenInput {
        #[cfg(unix)]
        {
            use rustix::termios::{tcgetattr, tcsetattr, LocalModes, OptionalActions};
            let stdin = std::io::stdin();
            let saved = tcgetattr(&stdin).ok().filter(|saved| {
                let mut hidden = saved.clone();
                hidden.local_modes.remove(LocalModes::ECHO);
                hidden.local_modes.insert(LocalModes::ECHONL);
                tcsetattr(&stdin, OptionalActions::Now, &hidden).is_ok()
            });
            HiddenInput { saved }
        }
        #[cfg(not(unix))]
        HiddenInput {}
    }
}

impl Drop for HiddenInput {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = &self.saved {
            use rustix::termios::{tcsetattr, OptionalActions};
            let _ = tcsetattr(std::io::stdin(), OptionalActions::Now, saved);
        }
    }
}

async fn run(command: Command, cfg: Config, me: &str) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(cfg, me).await,
        Command::Demo { force } => demo(&cfg, force).await,
        Command::Migrate => {
            let new = backend::ops::backup::sqlite_path(&cfg.database_url())
                .is_ok_and(|p| std::fs::metadata(p).map_or(true, |m| m.len() == 0));
            let store = backend::open_store(&cfg).await?;
            let version = store
                .applied_migrations()
                .await?
                .iter()
                .map(|m| m.version)
                .max()
                .unwrap_or(0);
            println!(
                "database {} {} (schema version {version})",
                cfg.database_display(),
                if new { "created" } else { "is up to date" }
            );
            Ok(())
        }
        Command::Customer {
            command:
                CustomerCommand::Add {
                    login_id,
                    name,
                    email,
                },
        } => {
            let login = read_secret_line("login password")?;
            let confirm = read_secret_line("confirmation password")?;
            let fresh = no_database_yet(&cfg);
            let (st, _) = backend::build_default(&cfg).await?;
            let id = st
                .engine
                .create_customer(
                    &login_id,
                    &name,
                    email.as_deref(),
                    login,
                    confirm,
                    &Actor::cli(),
                )
                .await
                .map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))?;
            println!("customer {login_id} created (id {id})");
            say_new_database(fresh.as_deref());
            Ok(())
        }
        Command::Staff {
            command:
                StaffCommand::Add {
                    login_id,
                    name,
                    role,
                },
        } => {
            let password = read_secret_line("password")?;
            let fresh = no_database_yet(&cfg);
            let (st, _) = backend::build_default(&cfg).await?;
            let created = st
                .engine
                .create_staff(&login_id, &name, &role, password)
                .await
                .map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))?;
            println!("staff {login_id} ({role}) created (id {})", created.id);
            say_new_database(fresh.as_deref());
            show_second_factor(&login_id, &created.second_factor)
        }
        Command::Staff {
            command: StaffCommand::Totp { login_id, reason },
        } => {
            // Only on an existing database: on a path given by mistake it made a new one.
            backend::ops::backup::existing_database(&cfg)?;
            let (st, _) = backend::build_default(&cfg).await?;
            let factor = st
                .engine
                .renew_staff_totp(&login_id, &reason, &Actor::cli())
                .await
                .map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))?;
            println!("staff {login_id}: new second factor; the old one no longer works");
            show_second_factor(&login_id, &factor)
        }
        Command::Staff {
            command: StaffCommand::Disable { login_id, reason },
        } => staff_set_disabled(&cfg, &login_id, true, &reason).await,
        Command::Staff {
            command: StaffCommand::Enable { login_id, reason },
        } => staff_set_disabled(&cfg, &login_id, false, &reason).await,
        Command::Backup { to } => {
            let b = backend::ops::backup::backup(&cfg, &to).await?;
            println!(
                "backup written to {} ({} bytes in {} ms; {} token(s), {}; schema version {})",
                b.path.display(),
                b.bytes,
                b.took.as_millis(),
                b.tokens,
                backend::ops::backup::describe_keys(&b.secrets_by_key),
                b.schema_version.unwrap_or(0)
            );
            println!(
                "the master key is not in the backup: keep a copy of it apart from the backups"
            );
            Ok(())
        }
        Command::Restore { from, dry_run } => {
            let r = backend::ops::backup::restore(&cfg, &from, dry_run).await?;
            println!(
                "{} checks out: integrity ok, schema version {} ({} migration(s) applied), {} token(s), {} opened with the configured master keys",
                from.display(),
                r.check.schema_version.unwrap_or(0),
                r.check.migrated,
                r.check.tokens,
                backend::ops::backup::describe_keys(&r.check.secrets_by_key)
            );
            if r.dry_run {
                println!("dry run: nothing was replaced");
            } else {
                println!("restored into {}", r.target.display());
                if let Some(p) = r.previous {
                    println!("the database it replaced is kept at {}", p.display());
                }
            }
            Ok(())
        }
        Command::Check => {
            let c = backend::ops::backup::check(&cfg).await?;
            println!(
                "database {}: schema version {}, {} token(s), {} opened with the configured master keys",
                cfg.database_display(),
                c.schema_version.unwrap_or(0),
                c.tokens,
                backend::ops::backup::describe_keys(&c.secrets_by_key)
            );
            Ok(())
        }
        Command::Mail {
            command: MailCommand::Status,
        } => {
            print!("{}", backend::ops::mail::report(&cfg).await?);
            Ok(())
        }
        Command::Healthcheck { url } => {
            let url = url.unwrap_or_else(|| backend::ops::health::default_url(cfg.listen));
            backend::ops::health::probe(&url, std::time::Duration::from_secs(3))
        }
        Command::Keys { command } => {
            // Both work on an existing database: on a data directory given by mistake they
            // made a new one and a master key beside it, and showed them as healthy.
            backend::ops::backup::existing_database(&cfg)?;
            let (st, _) = backend::build_default(&cfg).await?;
            let engine = &st.engine;
            if let KeysCommand::Add = command {
                let new_id = engine.keys().add_standby_key().context("adding a key")?;
                println!(
                    "new master key {new_id}, on standby: copy {} to every instance (servers read it when they meet the key), then run `otp-backend keys activate {new_id}` on one of them",
                    cfg.master_key_path().display()
                );
            }
            let activate = match &command {
                KeysCommand::Rotate if engine.keys().has_standby() => anyhow::bail!(
                    "this key file has keys on standby (instances with key files of their own): keys rotate would re-seal under a key the other instances lack; use `keys add`, copy the file, then `keys activate`"
                ),
                KeysCommand::Rotate => Some(engine.keys().add_key().context("adding a key")?),
                KeysCommand::Activate { key_id, force } => {
                    let (lacking, seen) = engine.servers_without_key(key_id).await?;
                    if seen == 0 {
                        eprintln!(
                            "note: no running server recorded its master keys in the last three minutes; an instance without key {key_id} refuses to start until its key file has it"
                        );
                    } else {
                        println!(
                            "{} of {seen} running server(s) have key {key_id}",
                            seen - lacking.len()
                        );
                    }
                    if !lacking.is_empty() && !force {
                        anyhow::bail!(
                            "{} of {seen} running server(s) have not got key {key_id}: {}; copy the key file there (they read it again within a minute) and run this again, or add --force",
                            lacking.len(),
                            lacking.join(", ")
                        );
                    }
                    // A key the database has seen current before is a retired one: making it
                    // current here would re-seal under it while the servers seal under the
                    // newest.
                    let checked: Vec<String> = engine
                        .store()
                        .key_checks()
                        .await?
                        .into_iter()
                        .map(|(id, _)| id)
                        .collect();
                    let newest = engine.store().begin().await?.newest_key_id().await?;
                    if checked.contains(key_id) && newest.as_deref() != Some(key_id.as_str()) {
                        anyhow::bail!(
                            "key {key_id} was current before and is retired now; add a new key (`keys add`) instead"
                        );
                    }
                    engine
                        .keys()
                        .activate(key_id)
                        .with_context(|| format!("activating key {key_id}"))?;
                    Some(key_id.clone())
                }
                KeysCommand::Add | KeysCommand::Status => None,
            };
            if let Some(new_id) = activate {
                engine.check_keys().await?;
                let mut n = engine
                    .reseal_all()
                    .await
                    .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
                // A running server that sealed a secret just before it saw the new key (its
                // check is in the sealing transaction): look once more after it has.
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                n += engine
                    .reseal_all()
                    .await
                    .map_err(|e| anyhow::anyhow!("{e} ({})", e.code()))?;
                println!("new master key {new_id}; {n} secret(s) re-sealed");
            }
            println!("current key: {}", engine.keys().current_id());
            // This instance's file may have the database's current key on standby (`keys add`):
            // servers with it seal under the database's choice.
            if let Some(newest) = engine.store().begin().await?.newest_key_id().await? {
                if newest != engine.keys().current_id() {
                    println!(
                        "the database's current key: {newest} (servers that have it seal under it)"
                    );
                }
            }
            // Every configured key, those that seal nothing included: the runbook keeps an old
            // key's line until it shows 0 here.
            let in_use: std::collections::BTreeMap<String, i64> =
                engine.store().keys_in_use().await?.into_iter().collect();
            let mut ids = engine.keys().key_ids();
            ids.extend(in_use.keys().cloned());
            ids.sort();
            ids.dedup();
            for key_id in ids {
                let n = in_use.get(&key_id).copied().unwrap_or(0);
                println!("  {key_id}: {n} secret(s)");
            }
            Ok(())
        }
    }
}

/// Print a staff member's second factor, the one time it is shown: a QR code for their
/// authenticator app (drawn with Unicode half blocks, light on dark terminals too) and the
/// otpauth URI to type in instead. It goes to standard output only, never to the log.
fn show_second_factor(
    login_id: &str,
    factor: &backend::engine::staff::SecondFactor,
) -> anyhow::Result<()> {
    use qrcode::render::unicode::Dense1x2;
    let uri = factor.uri();
    let qr = qrcode::QrCode::new(uri.as_bytes()).context("drawing the QR code")?;
    let drawing = Zeroizing::new(
        qr.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    );
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "\nSecond factor for {login_id}: scan this QR code with the staff member's authenticator app\n\
         (any TOTP app: SHA-1, 6 digits, 30 s). It is shown only now and cannot be shown again;\n\
         the console asks for its code at every login.\n"
    )?;
    writeln!(out, "{}", drawing.as_str())?;
    writeln!(out, "or enter this key URI by hand:\n{}\n", uri.as_str())?;
    out.flush()?;
    Ok(())
}

/// `demo`: seed the demo accounts (the rule is `ops::demo`'s) and show what to log in with,
/// once, on standard output only.
async fn demo(cfg: &Config, force: bool) -> anyhow::Result<()> {
    use backend::ops::demo;
    demo::check_database(&cfg.database_url(), force)?;
    let (st, _) = backend::build_default(cfg).await?;
    let d = demo::seed(&st.engine, force).await?;
    let base = cfg.public_url();
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "DEMO accounts created in {} (customer id {}, staff id {}).\n\
         They are for trying the system only: never use them in production.\n\
         The passwords are shown only now.\n",
        cfg.database_display(),
        d.customer_id,
        d.staff_id
    )?;
    writeln!(out, "Customer (internet banking, {base}/login)")?;
    writeln!(out, "  login ID               {}", demo::DEMO_CUSTOMER)?;
    writeln!(out, "  name                   {}", demo::DEMO_CUSTOMER_NAME)?;
    writeln!(
        out,
        "  login password         {}",
        d.login_password.as_str()
    )?;
    writeln!(
        out,
        "  confirmation password  {}",
        d.confirmation_password.as_str()
    )?;
    writeln!(out, "  e-mail on file         {}", demo::DEMO_EMAIL)?;
    if cfg.mail.smtp_host.is_none() {
        writeln!(
            out,
            "  (mail is written as .eml files to {})",
            cfg.data_dir.join("outbox").display()
        )?;
    }
    writeln!(out, "\nStaff supervisor (console, {base}/staff/login)")?;
    writeln!(out, "  login ID               {}", demo::DEMO_STAFF)?;
    writeln!(
        out,
        "  password               {}",
        d.staff_password.as_str()
    )?;
    out.flush()?;
    drop(out);
    show_second_factor(demo::DEMO_STAFF, &d.second_factor)?;
    println!("Start the server with `serve` and open {base}/login.");
    Ok(())
}

/// `staff disable` / `staff enable`: audited as the CLI.
async fn staff_set_disabled(
    cfg: &Config,
    login_id: &str,
    disable: bool,
    reason: &str,
) -> anyhow::Result<()> {
    // Only on an existing database: on a path given by mistake it made a new one.
    backend::ops::backup::existing_database(cfg)?;
    let (st, _) = backend::build_default(cfg).await?;
    let changed = st
        .engine
        .set_staff_disabled(login_id, disable, reason, &Actor::cli())
        .await
        .map_err(|e| anyhow::anyhow!("{} ({})", e, e.code()))?;
    let state = if disable { "disabled" } else { "enabled" };
    if changed {
        println!("staff {login_id} {state}");
    } else {
        println!("staff {login_id} was already {state}; nothing changed");
    }
    Ok(())
}

async fn serve(cfg: Config, me: &str) -> anyhow::Result<()> {
    let (state, startup) = backend::build_default(&cfg).await?;
    // The server that serves without v1 drops what only v1 needs (not the CLI's commands: a
    // command run with another configuration must not change what the servers keep).
    if !cfg.app_api.allow_v1_setup {
        let dropped = state.engine.drop_unused_v1_hashes().await?;
        if dropped > 0 {
            tracing::info!(
                count = dropped,
                "provisioning v1 is off: dropped the v1 activation-password hashes of issuances (and pending reprovisions) v2 sets up"
            );
        }
    }
    // A first run: say how to add the first customer and staff member (or the demo).
    let (customers, staff) = state.engine.store().account_counts().await?;
    for hint in
        backend::ops::demo::first_run_hints(me, customers, staff, state.engine.store().kind())
    {
        tracing::info!("{hint}");
    }
    if backend::ops::demo::present(&state.engine).await? {
        tracing::warn!(
            customer = backend::ops::demo::DEMO_CUSTOMER,
            staff = backend::ops::demo::DEMO_STAFF,
            "this database holds the demo accounts: for trying the system only, never production"
        );
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    // Say where everything is (never what the secrets are).
    tracing::info!(
        listen = %addr,
        data_dir = %cfg.data_dir.display(),
        database = %cfg.database_display(),
        master_key = %match &cfg.master_key { Some(_) => "from OTP_MASTER_KEY".to_owned(), None => cfg.master_key_path().display().to_string() },
        master_key_created = startup.created_master_key,
        host_api_keys = %if cfg.api_keys.is_empty() { cfg.host_key_path().display().to_string() } else { "from configuration".to_owned() },
        host_api_key_created = startup.created_host_key,
        openapi = %format!("http://{addr}/host/v1/openapi.json"),
        "otp-backend listening"
    );
    eprintln!("otp-backend listening on http://{addr}");
    if let Some(warning) = cfg.database_tls_warning() {
        tracing::warn!("{warning}");
    }
    if cfg.argon2.below_owasp_minimum() {
        tracing::warn!(memory_kib = cfg.argon2.memory_kib, iterations = cfg.argon2.iterations, "the [argon2] cost is below OWASP's minimum for Argon2id (19456 KiB, 2 passes): fine for tests, not for customers' passwords");
    }
    let engine = state.engine.clone();
    // Which master keys this server has, for `keys activate` (it refuses a key a running
    // server lacks).
    let key_holder = engine.spawn_key_holder();
    let mailer = backend::mail::MailWorker::new(engine.store().clone(), &cfg.mail, &cfg.data_dir)?;
    tracing::info!(mail = %mailer.describe(), public_url = %cfg.public_url(), "mail outbox worker started");
    let mail_worker = mailer.spawn();
    let app = backend::web::app(state);
    // Slow clients must not run the process out of descriptors (issue 13): lift the soft limit
    // to the hard one and keep the connection cap below it.
    let nofile = backend::web::serve::raise_nofile_limit();
    let max_connections =
        backend::web::serve::connection_cap(cfg.max_connections, nofile.map(|(_, after)| after));
    tracing::info!(
        open_files_before = nofile.map(|(b, _)| b),
        open_files = nofile.map(|(_, a)| a),
        max_connections,
        header_read_timeout_secs = backend::web::serve::HEADER_READ_TIMEOUT.as_secs(),
        "connection limits"
    );
    // Within the service's stop timeout (30 s): at most 15 s for the connections, 10 s for
    // the mail worker, then the database closes.
    if backend::web::serve::serve(listener, app, max_connections, shutdown_signal()).await? {
        tracing::info!(
            "in-flight requests finished; stopping the mail worker, closing the database"
        );
    } else {
        tracing::warn!("connections still open after the drain time are left; stopping the mail worker, closing the database");
    }
    if !mail_worker.stop(MAIL_STOP_WAIT).await {
        tracing::warn!(
            wait_secs = MAIL_STOP_WAIT.as_secs(),
            "the mail worker did not stop in time; a mail it was sending is sent again once its lease runs out"
        );
    }
    key_holder.abort();
    if let Err(e) = engine.forget_key_holder().await {
        tracing::warn!(error = %e, "could not remove this server's master-key record (it lapses in three minutes)");
    }
    engine.store().close().await;
    Ok(())
}

/// How long a shutdown waits for the mail worker's round (an SMTP send in progress) to end.
const MAIL_STOP_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; finishing in-flight requests");
}
