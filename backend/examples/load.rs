//! Load tool: creates N active tokens, then drives the host verify API over HTTP with valid,
//! never-replayed codes from many tokens, at each concurrency, and prints verifications/s, p50
//! and p99. Every accepted code's replay state and audit event are durable (SQLite WAL with
//! synchronous=FULL; PostgreSQL with synchronous_commit=on) before its answer.
//!
//! ```text
//! cargo run --release -p backend --example load -- --db sqlite --tokens 10000
//! cargo run --release -p backend --example load -- --db postgres --tokens 10000   # OTP_TEST_PG_URL
//! ```
//!
//! The server runs in this process on its own runtime, over a real loopback socket, with a
//! manual clock: after every token has used the current step, the clock moves one step on, so
//! the run never replays a code and never waits a real minute. Seeding goes through the real
//! lifecycle (customer, issue, link, setup, activation) with cheap Argon2 parameters; seeding is
//! not what is measured. `cpu µs` is this process's CPU time (user and system) per verification
//! at that concurrency: the client and the server, and on SQLite the database too.
//!
//! Server-alone mode (`--server`): the same seeding through the engine on the database file,
//! then a separate `otp-backend serve` process (the release binary beside this example, or
//! `--server-bin PATH`) on that database with the real clock, driven over HTTP. Every token
//! verifies the current step's code once per round, then the tool waits for the next (60 s)
//! step. It reports the server process's CPU per verification (from /proc/PID/stat) and its
//! resident memory (VmRSS) at its peak during each round and 2 s after it. The seeding's mails
//! are marked sent before the server starts (`--mail-backlog` leaves them for it to deliver):
//!
//! ```text
//! cargo build --release -p backend --bin otp-backend
//! cargo run --release -p backend --example load -- --db sqlite --tokens 10000 --server --rounds 3
//! ```
//!
//! Seeding 10,000 tokens takes about five minutes (every issuance makes its OPAQUE record).
//! `--seed-cache DIR` (SQLite) keeps the first run's seeded database and the tokens' secrets in
//! DIR, and later runs, in either mode, start from a copy of it in a second:
//!
//! ```text
//! cargo run --release -p backend --example load -- --db sqlite --tokens 10000 --seed-cache /tmp/otp-seed
//! ```
//!
//! About one verification in a million answers "replayed", rightly: when a token's code for the
//! next step happens to have the same six digits as this step's, the verifier takes the newest
//! matching step (DESIGN §5), so the next round's identical code is a replay. Every non-ok
//! answer is printed with its token's audit trail.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // reason: test/bench harness code: a failed step should stop loudly

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use backend::config::{Argon2Config, Config, Sensitive};
use backend::domain::{Outcome, Purpose};
use backend::engine::{Actor, ManualClock};
use protocol::{code_at_step, Secret, ServiceId, TotpParams, UserId};
use test_support::{Log, OnDrop, ServerProcess};
use zeroize::Zeroizing;

struct Args {
    db: String,
    tokens: usize,
    concurrency: Vec<usize>,
    seconds: u64,
    pg_url: Option<String>,
    /// Drive a separate `otp-backend serve` process.
    server: bool,
    server_bin: Option<std::path::PathBuf>,
    rounds: usize,
    /// Server-alone: leave the seeding's mails unsent, for the server to deliver during the
    /// rounds (a mail backlog under load), instead of marking them sent before it starts.
    mail_backlog: bool,
    /// SQLite, in-process: keep the freshly seeded database (and the tokens' secrets) here,
    /// and start from that copy next time instead of seeding again.
    seed_cache: Option<std::path::PathBuf>,
    /// In-process: the verification workers (`verify.workers`; 0, the default: the server's
    /// own default, 1 on SQLite and 4 on PostgreSQL).
    verify_workers: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        db: "sqlite".into(),
        tokens: 10_000,
        concurrency: vec![32, 128],
        seconds: 10,
        pg_url: std::env::var("OTP_TEST_PG_URL").ok(),
        server: false,
        server_bin: None,
        rounds: 3,
        mail_backlog: false,
        seed_cache: None,
        verify_workers: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--db" => a.db = val()?,
            "--tokens" => a.tokens = val()?.parse()?,
            "--concurrency" => a.concurrency = val()?.split(',').map(str::parse).collect::<Result<_, _>>()?,
            "--seconds" => a.seconds = val()?.parse()?,
            "--pg-url" => a.pg_url = Some(val()?),
            "--server" => a.server = true,
            "--server-bin" => a.server_bin = Some(val()?.into()),
            "--rounds" => a.rounds = val()?.parse()?,
            "--mail-backlog" => a.mail_backlog = true,
            "--seed-cache" => a.seed_cache = Some(val()?.into()),
            "--verify-workers" => a.verify_workers = val()?.parse()?,
            "--bench" => {} // passed by `cargo bench`
            other => anyhow::bail!("unknown flag {other}; flags: --db sqlite|postgres --tokens N --concurrency 32,128 --seconds S --pg-url URL --server [--server-bin PATH --rounds N --mail-backlog] --seed-cache DIR --verify-workers N"),
        }
    }
    Ok(a)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let dir = tempfile::tempdir()?;
    // The server refuses a data directory others can read (tempdir makes it 0755).
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )?;
    // (admin URL, database) to drop at the end, on PostgreSQL.
    let mut pg_made: Option<(String, String)> = None;
    let url = match args.db.as_str() {
        "sqlite" => format!("sqlite://{}?mode=rwc", dir.path().join("load.db").display()),
        "postgres" => {
            let admin = args.pg_url.clone().context("--db postgres needs --pg-url or OTP_TEST_PG_URL (an admin URL; a fresh database is created)")?;
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_secs();
            let name = format!("otp_load_{secs}_{}", std::process::id());
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                use sqlx::Connection;
                sqlx::any::install_default_drivers();
                let mut c = sqlx::AnyConnection::connect(&admin).await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&mut c)
                    .await?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut c)
                    .await?;
                anyhow::Ok(())
            })?;
            pg_made = Some((admin.clone(), name.clone()));
            // The database is the path's last segment; a query (`?host=/var/run/postgresql`,
            // `?sslmode=…`) stays as it is.
            let (base, query) = admin
                .split_once('?')
                .map_or((admin.as_str(), ""), |(b, q)| (b, q));
            let base = base
                .rsplit_once('/')
                .context("admin URL needs a database path")?
                .0;
            if query.is_empty() {
                format!("{base}/{name}")
            } else {
                format!("{base}/{name}?{query}")
            }
        }
        other => anyhow::bail!("--db must be sqlite or postgres, not {other}"),
    };
    let cfg = Config {
        data_dir: dir.path().to_owned(),
        database_url: Some(Sensitive(url)),
        master_key: Some(Sensitive(format!("load:{}", "5a".repeat(32)))),
        api_keys: vec![backend::config::ApiKey {
            name: "load".into(),
            key: Sensitive(API_KEY.into()),
        }],
        argon2: Argon2Config {
            memory_kib: 8,
            iterations: 1,
            parallelism: 1,
        },
        body_limit: 16 * 1024,
        verify: backend::config::VerifyConfig {
            workers: args.verify_workers,
            ..Default::default()
        },
        // The seeding sets its tokens up through v1 in-process (v2 would add the app's Argon2id
        // run, 19 MiB, per token), so v1 is on here and in the in-process server measured with
        // it (verification does not depend on it); `--server` runs the default, v1 off.
        app_api: backend::config::AppApiConfig {
            allow_v1_setup: true,
            ..Default::default()
        },
        ..Config::default()
    };

    if args.server {
        let res = server_alone(&args, &cfg);
        drop_pg(pg_made)?;
        return res;
    }

    // Server runtime: its own threads, like a separate process sharing the machine.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let clock = Arc::new(ManualClock::new(1_795_575_630));
    // A seeded copy to start from (SQLite only): the same start time, so the same state.
    let cached = SeedCache::of(&args)?;
    let restored = match &cached {
        Some(c) => c.restore(&dir.path().join("load.db"))?,
        None => None,
    };
    let (state, addr) = server_rt.block_on(async {
        let (state, _) = backend::build(&cfg, Box::new(clock.clone())).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = backend::web::app(state.clone());
        // The server's own accept loop (timeouts, connection cap), as `otp-backend serve` runs.
        tokio::spawn(backend::web::serve::serve(
            listener,
            app,
            cfg.max_connections,
            std::future::pending(),
        ));
        anyhow::Ok((state, addr))
    })?;

    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let engine = state.engine.clone();
    let tokens: Vec<(String, Secret)> = match restored {
        Some(tokens) => tokens,
        None => {
            let tokens = server_rt.block_on(seed(engine.clone(), args.tokens, &args.db))?;
            if let Some(c) = &cached {
                c.save(&dir.path().join("load.db"), &tokens)?;
            }
            tokens
        }
    };
    let tokens = Arc::new(tokens);

    println!(
        "db={} tokens={} seconds={}",
        args.db, args.tokens, args.seconds
    );
    println!(
        "{:>5} {:>12} {:>9} {:>9} {:>9} {:>8} {:>10} {:>9} {:>9}",
        "conc",
        "verif/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "non-ok",
        "avg batch",
        "batch ms",
        "cpu µs"
    );
    let tick = 1e6 / ticks_per_second();
    for &c in &args.concurrency {
        let before = batch_totals(&engine);
        let cpu0 = cpu_ticks(std::process::id())?;
        let r = client_rt.block_on(drive(
            &addr,
            tokens.clone(),
            clock.clone(),
            c,
            Duration::from_secs(args.seconds),
        ))?;
        let cpu1 = cpu_ticks(std::process::id())?;
        let after = batch_totals(&engine);
        let batches = (after.0 - before.0).max(1.0);
        println!(
            "{:>5} {:>12.0} {:>9.2} {:>9.2} {:>9.2} {:>8} {:>10.1} {:>9.2} {:>9.1}",
            c,
            r.rate,
            r.p50 * 1e3,
            r.p99 * 1e3,
            r.max * 1e3,
            r.not_ok,
            (after.1 - before.1) / batches,
            (after.2 - before.2) / batches * 1e3,
            (cpu1 - cpu0) as f64 * tick / r.count.max(1) as f64
        );
        // A non-ok answer should never happen with fresh codes: show what the audit trail says.
        for uid in r.failed.iter().take(3) {
            let rows = server_rt.block_on(engine.store().audit_for_user(uid, 6, None))?;
            for a in rows.iter().rev() {
                eprintln!(
                    "  audit {uid}: id {} at {} {} {} {}",
                    a.id,
                    a.at,
                    a.action,
                    a.outcome,
                    a.detail.as_deref().unwrap_or("")
                );
            }
        }
    }
    server_rt.block_on(engine.store().close());
    drop_pg(pg_made)
}

/// A seeded SQLite database kept for the next run (`--seed-cache DIR`): `VACUUM INTO` a copy
/// of the live file, and the tokens' user IDs and secrets (hex) beside it. It is load-test
/// data: every token in it is a throwaway. The in-process mode writes it (its manual clock
/// starts at a fixed time, so a copy starts every run from the same state); both modes read
/// it. A copy is compacted (`VACUUM`), so its pages lie in order where a freshly seeded
/// file's are interleaved: compare runs from the same copy, not a copy with a fresh seeding.
struct SeedCache {
    db: std::path::PathBuf,
    secrets: std::path::PathBuf,
}

impl SeedCache {
    /// The cache `--seed-cache` names, for this many tokens (SQLite only).
    fn of(args: &Args) -> anyhow::Result<Option<SeedCache>> {
        let Some(dir) = &args.seed_cache else {
            return Ok(None);
        };
        anyhow::ensure!(args.db == "sqlite", "--seed-cache is for --db sqlite");
        let tokens = args.tokens;
        Ok(Some(SeedCache {
            db: dir.join(format!("seeded-{tokens}.db")),
            secrets: dir.join(format!("seeded-{tokens}.secrets")),
        }))
    }

    /// Copy the kept database to `to` and read its tokens, if both are there.
    fn restore(&self, to: &std::path::Path) -> anyhow::Result<Option<Vec<(String, Secret)>>> {
        if !(self.db.exists() && self.secrets.exists()) {
            return Ok(None);
        }
        std::fs::copy(&self.db, to)?;
        std::fs::set_permissions(to, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        let mut tokens = Vec::new();
        for line in std::fs::read_to_string(&self.secrets)?.lines() {
            let (uid, hex_secret) = line.split_once(' ').context("bad secrets line")?;
            tokens.push((uid.to_owned(), Secret::from_bytes(hex::decode(hex_secret)?)));
        }
        eprintln!(
            "restored {} seeded tokens from {}",
            tokens.len(),
            self.db.display()
        );
        Ok(Some(tokens))
    }

    fn save(&self, live: &std::path::Path, tokens: &[(String, Secret)]) -> anyhow::Result<()> {
        if let Some(dir) = self.db.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let _ = std::fs::remove_file(&self.db);
        let conn = rusqlite::Connection::open(live)?;
        conn.execute("VACUUM INTO ?1", [self.db.to_string_lossy()])?;
        let lines: String = tokens
            .iter()
            .map(|(uid, s)| format!("{uid} {}\n", hex::encode(s.expose())))
            .collect();
        // Throwaway secrets, still the owner's only.
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.secrets)?
            .write_all(lines.as_bytes())?;
        Ok(())
    }
}

/// Drop the database the run created on PostgreSQL.
fn drop_pg(made: Option<(String, String)>) -> anyhow::Result<()> {
    let Some((admin, name)) = made else {
        return Ok(());
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&admin).await?;
        // FORCE: the verification workers still hold their own connections.
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut c)
            .await?;
        anyhow::Ok(())
    })
}

/// The server-alone mode: seed, then drive a separate `otp-backend serve` process.
fn server_alone(args: &Args, cfg: &Config) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    // A kept seeding (written by the in-process mode, whose manual clock starts before today:
    // every step the real clock gives is newer than the tokens' last used one).
    let restored = match SeedCache::of(args)? {
        Some(cache) => cache.restore(&cfg.data_dir.join("load.db"))?,
        None => None,
    };
    let tokens = match restored {
        Some(tokens) => tokens,
        None => rt.block_on(async {
            let (state, _) = backend::build(cfg, Box::new(backend::engine::SystemClock)).await?;
            let tokens = seed(state.engine.clone(), args.tokens, &args.db).await?;
            state.engine.store().close().await;
            anyhow::Ok(tokens)
        })?,
    };
    let tokens = Arc::new(tokens);
    let url = cfg
        .database_url
        .as_ref()
        .context("no database URL")?
        .0
        .clone();
    if !args.mail_backlog {
        let n = rt.block_on(mark_seed_mail_sent(&url))?;
        eprintln!("marked the seeding's {n} mails sent (--mail-backlog leaves them to the server)");
    }
    let bin = match &args.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .context("no target directory")?
            .join("otp-backend"),
    };
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.arg("serve")
        .env("OTP_LISTEN", "127.0.0.1:0")
        .env("OTP_DATA_DIR", &cfg.data_dir)
        .env("OTP_DATABASE_URL", url)
        .env(
            "OTP_MASTER_KEY",
            &cfg.master_key.as_ref().context("no master key")?.0,
        )
        .env("OTP_API_KEYS", format!("load:{API_KEY}"))
        .env("OTP_LOG", "warn")
        .env_remove("OTP_CONFIG");
    // The workspace's server runner; the server's warnings and errors are passed on.
    let server = rt
        .block_on(ServerProcess::start(cmd, Log::PassOn, OnDrop::Terminate))
        .with_context(|| {
            format!(
                "starting {} (build it: cargo build --release -p backend --bin otp-backend)",
                bin.display()
            )
        })?;
    let pid = server.pid();
    let run = || -> anyhow::Result<()> {
        let addr: SocketAddr = server
            .base_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()?;
        println!(
            "db={} tokens={} server pid {pid} (separate process, real clock) rss after start {:.1} MiB",
            args.db,
            args.tokens,
            rss_kib(pid)? as f64 / 1024.0
        );
        println!(
            "{:>5} {:>5} {:>12} {:>9} {:>9} {:>8} {:>12} {:>13} {:>12}",
            "conc",
            "round",
            "verif/s",
            "p50 ms",
            "p99 ms",
            "non-ok",
            "cpu us/verif",
            "peak rss MiB",
            "after MiB"
        );
        let params = TotpParams::default();
        let mut last_step = 0u64;
        for &c in &args.concurrency {
            for round in 1..=args.rounds {
                // One code per token per step: wait for a step no round has used.
                let step = loop {
                    let s = params.step_at(unix_now());
                    if s > last_step {
                        break s;
                    }
                    std::thread::sleep(Duration::from_millis(200));
                };
                last_step = step;
                let cpu0 = cpu_ticks(pid)?;
                let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
                let sampler = {
                    let sampling = sampling.clone();
                    std::thread::spawn(move || {
                        let mut peak = 0u64;
                        while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                            peak = peak.max(rss_kib(pid).unwrap_or(0));
                            std::thread::sleep(Duration::from_millis(50));
                        }
                        peak
                    })
                };
                let client_rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()?;
                let r = client_rt.block_on(drive_round(&addr, tokens.clone(), step, c))?;
                drop(client_rt);
                let cpu1 = cpu_ticks(pid)?;
                sampling.store(false, std::sync::atomic::Ordering::Relaxed);
                let peak = sampler.join().unwrap_or(0);
                std::thread::sleep(Duration::from_secs(2));
                let after = rss_kib(pid)?;
                let n = (r.count as f64).max(1.0);
                println!(
                    "{:>5} {:>5} {:>12.0} {:>9.2} {:>9.2} {:>8} {:>12.1} {:>13.1} {:>12.1}",
                    c,
                    round,
                    r.rate,
                    r.p50 * 1e3,
                    r.p99 * 1e3,
                    r.not_ok,
                    (cpu1 - cpu0) as f64 * 1e6 / ticks_per_second() / n,
                    peak as f64 / 1024.0,
                    after as f64 / 1024.0
                );
            }
        }
        Ok(())
    };
    let res = run();
    drop(server);
    res
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Mark every unsent mail sent, and say how many there were.
///
/// Seeding puts two mails per token in the outbox (its download link and its activation
/// notice): 20,000 for 10,000 tokens, made in minutes, where a bank's would have gone out over
/// months. Left there, `otp-backend serve` delivers them during the first rounds (two database
/// writes and an outbox file each, on Tokio's blocking threads), and that delivery, not the
/// verifications, was what the server-alone figures measured on top: 33-42 MiB of RSS after a
/// round instead of 24-25, rising from round to round, and up to a fifth more CPU per
/// verification (issue 15, stop 21). `--mail-backlog` keeps that case.
async fn mark_seed_mail_sent(url: &str) -> anyhow::Result<u64> {
    use sqlx::Connection as _;
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await?;
    let n =
        sqlx::query("UPDATE mail_outbox SET sent_at = created_at, body = '' WHERE sent_at IS NULL")
            .execute(&mut c)
            .await?
            .rows_affected();
    c.close().await?;
    Ok(n)
}

/// The process's user + system CPU time, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = stat.rsplit_once(") ").context("odd /proc stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Resident memory of a process, KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("odd VmRSS")?
        .parse()?)
}

/// Every token verifies `step`'s code once, `conc` at a time (a separate server on the real
/// clock: one round per step).
async fn drive_round(
    addr: &SocketAddr,
    tokens: Arc<Vec<(String, Secret)>>,
    step: u64,
    conc: usize,
) -> anyhow::Result<Report> {
    let callers = Caller::connect_all(addr, conc).await?;
    let started = Instant::now();
    let (lat, failed, _) = round(callers, tokens, step, None).await?;
    Ok(Report::of(lat, failed, started.elapsed()))
}

const API_KEY: &str = "load-test-key-0123456789abcdef0123456789";

/// Creates `n` active tokens through the real lifecycle, and says how long that took.
async fn seed(
    engine: backend::engine::Engine,
    n: usize,
    db: &str,
) -> anyhow::Result<Vec<(String, Secret)>> {
    let started = Instant::now();
    let sid = ServiceId::parse("10112231")?;
    let actor = Actor::new("load", None);
    let device = protocol::DeviceInfo {
        platform: "load".into(),
        model: "load".into(),
        os_version: "-".into(),
        app_version: "-".into(),
    };
    let mut out = Vec::with_capacity(n);
    let mut set = tokio::task::JoinSet::new();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..32 {
        let (engine, sid, actor, next, device) = (
            engine.clone(),
            sid.clone(),
            actor.clone(),
            next.clone(),
            device.clone(),
        );
        set.spawn(async move {
            let mut mine = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return anyhow::Ok(mine);
                }
                let login = format!("load{i:06}");
                let z = |s: &str| Zeroizing::new(s.to_owned());
                engine
                    .create_customer(&login, "", None, z("loginpass1"), z("conf123"), &actor)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let uid = engine
                    .issue_token(&login, "load@example.jp", z("1234"), &actor)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?
                    .user_id;
                engine
                    .open_link(&uid, &actor)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let p = engine
                    .provision(&sid, &UserId::parse(&uid)?, z("1234"), &device, &actor)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let step = p.params.step_at(engine.now()) - 1;
                let code =
                    Zeroizing::new(code_at_step(&p.secret, &p.params, step).as_str().to_owned());
                let r = engine
                    .verify(&uid, code, Purpose::Activation, actor.clone())
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                anyhow::ensure!(r.result == Outcome::Ok, "activation failed: {r:?}");
                mine.push((uid, p.secret));
            }
        });
    }
    while let Some(r) = set.join_next().await {
        out.extend(r??);
    }
    eprintln!(
        "seeded {} active tokens in {:.1}s ({db})",
        out.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(out)
}

struct Report {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    /// How many answers there were.
    count: usize,
    not_ok: usize,
    /// User IDs whose answer was not "ok".
    failed: Vec<String>,
}

impl Report {
    fn of(mut lat: Vec<f64>, failed: Vec<String>, took: Duration) -> Report {
        lat.sort_by(f64::total_cmp);
        let pct = |p: f64| {
            lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0.0)
        };
        Report {
            rate: lat.len() as f64 / took.as_secs_f64(),
            p50: pct(0.50),
            p99: pct(0.99),
            max: lat.last().copied().unwrap_or(0.0),
            count: lat.len(),
            not_ok: failed.len(),
            failed,
        }
    }
}

/// One caller's HTTP/1.1 connection to the server, kept alive for the whole run: each of the
/// `conc` callers owns one, as a bank's host keeps a pool of them. It is hyper's own
/// connection, without reqwest's pool, URL parsing and layers on top: the client shares the
/// two cores with the server and the database, and reqwest's share of the load process was
/// 25 % of its CPU at c=32 on PostgreSQL (issue 15), time the server did not get.
struct Caller {
    send: hyper::client::conn::http1::SendRequest<axum::body::Body>,
    host: String,
    auth: axum::http::HeaderValue,
}

impl Caller {
    async fn connect(addr: &SocketAddr) -> anyhow::Result<Caller> {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (send, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp)).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                eprintln!("load connection: {e}");
            }
        });
        Ok(Caller {
            send,
            host: addr.to_string(),
            auth: format!("Bearer {API_KEY}").parse()?,
        })
    }

    /// `conc` callers, each on its own connection.
    async fn connect_all(addr: &SocketAddr, conc: usize) -> anyhow::Result<Vec<Caller>> {
        let mut callers = Vec::with_capacity(conc);
        for _ in 0..conc {
            callers.push(Caller::connect(addr).await?);
        }
        Ok(callers)
    }

    /// POSTs `body` as JSON to `path` with the API key: the status and the answer's text.
    async fn post(&mut self, path: String, body: String) -> anyhow::Result<(u16, String)> {
        use axum::http::{header, Request};
        let req = Request::post(path)
            .header(header::HOST, &self.host)
            .header(header::AUTHORIZATION, &self.auth)
            .header(header::CONTENT_TYPE, "application/json")
            .body(axum::body::Body::from(body))?;
        self.send.ready().await?;
        let res = self.send.send_request(req).await?;
        let status = res.status().as_u16();
        let bytes = axum::body::to_bytes(axum::body::Body::new(res.into_body()), 1 << 20).await?;
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// Rounds: every token submits the code of the current step once, then the clock moves a step.
async fn drive(
    addr: &SocketAddr,
    tokens: Arc<Vec<(String, Secret)>>,
    clock: Arc<ManualClock>,
    conc: usize,
    dur: Duration,
) -> anyhow::Result<Report> {
    let params = TotpParams::default();
    let (mut lat, mut failed) = (Vec::new(), Vec::new());
    let mut callers = Caller::connect_all(addr, conc).await?;
    let started = Instant::now();
    while started.elapsed() < dur {
        clock.advance(60);
        let step = params.step_at(clock_now(&clock));
        let (l, f, c) = round(callers, tokens.clone(), step, Some(started + dur)).await?;
        callers = c;
        lat.extend(l);
        failed.extend(f);
    }
    Ok(Report::of(lat, failed, started.elapsed()))
}

/// One round: every token verifies `step`'s code once (or until `deadline`), the callers all
/// at once, each one request at a time. The latencies, the user IDs whose answer was not "ok"
/// (the first few printed), and the callers back for the next round.
async fn round(
    callers: Vec<Caller>,
    tokens: Arc<Vec<(String, Secret)>>,
    step: u64,
    deadline: Option<Instant>,
) -> anyhow::Result<(Vec<f64>, Vec<String>, Vec<Caller>)> {
    let params = TotpParams::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for mut caller in callers {
        let (tokens, next) = (tokens.clone(), next.clone());
        set.spawn(async move {
            let mut lat = Vec::new();
            let mut bad: Vec<String> = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= tokens.len() || deadline.is_some_and(|d| Instant::now() >= d) {
                    return (lat, bad, caller);
                }
                let (uid, secret) = &tokens[i];
                let code = code_at_step(secret, &params, step);
                let body = format!(r#"{{"code":"{}","purpose":"transfer"}}"#, code.as_str());
                let t = Instant::now();
                let res = caller
                    .post(format!("/host/v1/tokens/{uid}/verify"), body)
                    .await;
                let failure = match res {
                    Ok((status, t))
                        if (200..300).contains(&status) && t.contains(r#""result":"ok""#) =>
                    {
                        None
                    }
                    Ok((status, t)) => Some(format!("{status} {t}")),
                    Err(e) => Some(format!("transport: {e}")),
                }
                .map(|f| format!("token {uid} step {step}: {f}"));
                lat.push(t.elapsed().as_secs_f64());
                if let Some(f) = failure {
                    if bad.len() < 3 {
                        eprintln!("non-ok answer: {f}");
                    }
                    bad.push(uid.clone());
                }
            }
        });
    }
    let (mut lat, mut failed, mut callers) = (Vec::new(), Vec::new(), Vec::new());
    while let Some(r) = set.join_next().await {
        let (l, b, c) = r?;
        lat.extend(l);
        failed.extend(b);
        callers.push(c);
    }
    Ok((lat, failed, callers))
}

fn clock_now(c: &ManualClock) -> u64 {
    use backend::engine::Clock;
    c.now()
}

/// (batches, verifications in them, seconds spent in them) from the server's metrics.
fn batch_totals(engine: &backend::engine::Engine) -> (f64, f64, f64) {
    let text = engine.metrics().render();
    let value = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    };
    (
        value("otp_verify_batch_size_count "),
        value("otp_verify_batch_size_sum "),
        value("otp_verify_batch_duration_seconds_sum "),
    )
}
