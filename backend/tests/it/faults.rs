//! Faults the server must survive (issue 13), each against the real binary where the fault is
//! about the process: slow clients, a write-ahead log under sustained load, a full disk, text
//! that the databases refuse, a PostgreSQL outage, and SIGKILL under load.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::both_dbs;
use crate::host_api::Server;
use crate::process::{verify_at, Proc};
use crate::support::*;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code of `secret` for the real clock (the binary runs on it).
fn code_now(secret: &protocol::Secret) -> String {
    protocol::code_at(secret, &protocol::TotpParams::default(), unix_now())
        .as_str()
        .to_owned()
}

/// This test process opens more than a thousand sockets: lift its own soft limit to the hard one.
fn raise_own_nofile() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let lim = getrlimit(Resource::Nofile);
    let _ = setrlimit(
        Resource::Nofile,
        Rlimit {
            current: lim.maximum,
            maximum: lim.maximum,
        },
    );
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Whether the server has closed `s`: reads hit end of file (or a reset) within `wait`.
async fn closed_by_server(s: &mut TcpStream, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Slow clients.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_exhaust_the_server() {
    let _heavy = crate::support::HEAVY.lock().await;
    raise_own_nofile();
    let env = Env::new(Db::Sqlite).await;
    env.engine.store().close().await;
    // A distribution's default soft limit: the server must lift it to the hard limit itself.
    let p = Proc::start_opts(&env.db, &[], &[], Some(1024)).await;
    let addr = p.base.trim_start_matches("http://").to_owned();
    let opened = Instant::now();
    let mut slow = Vec::new();
    for i in 0..1100 {
        let mut s = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(&addr))
            .await
            .unwrap_or_else(|_| panic!("connection {i} was not even accepted by the kernel"))
            .unwrap();
        s.write_all(b"GET /healthz HT").await.unwrap();
        slow.push(s);
    }
    // Each connection's 10 s run from when the server took it, which on a busy machine can be
    // well after the first was opened: the deadline below counts from the last.
    let all_opened = Instant::now();
    // Give the server the time to take every connection off its backlog.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let http = http();
    for _ in 0..3 {
        let t = Instant::now();
        let res = http.get(format!("{}/healthz", p.base)).send().await;
        let took = t.elapsed();
        assert!(
            matches!(&res, Ok(r) if r.status() == StatusCode::OK),
            "/healthz answers beside 1,100 slow connections: {res:?}"
        );
        assert!(
            took < Duration::from_secs(1),
            "/healthz answers within 1 s beside 1,100 slow connections (took {took:?})"
        );
    }
    // A kept-alive connection that goes idle after its answer.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "keep-alive request answered"
    );
    // The header-read timeout is 10 s; the idle connection's 10 s start after its answer.
    let wait = Duration::from_millis(11_500).saturating_sub(opened.elapsed());
    tokio::time::sleep(wait).await;
    let mut still_open = slow.len();
    while still_open > 0 && all_opened.elapsed() < Duration::from_secs(13) {
        still_open = 0;
        for s in &mut slow {
            if !closed_by_server(s, Duration::from_millis(20)).await {
                still_open += 1;
            }
        }
    }
    assert_eq!(
        still_open, 0,
        "connections that never finish their request head are closed after 10 s"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        closed_by_server(&mut idle, Duration::from_millis(500)).await,
        "an idle kept-alive connection is closed after 10 s without a new request"
    );
    drop(slow);
    let logs = p.logs.lock().unwrap().join("\n");
    assert!(
        !logs.contains("Too many open files"),
        "the server never ran out of descriptors: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_cap_are_refused_clearly() {
    let env = Env::new(Db::Sqlite).await;
    env.engine.store().close().await;
    let p = Proc::start(&env.db, &[("OTP_MAX_CONNECTIONS", "32")]).await;
    let addr = p.base.trim_start_matches("http://").to_owned();
    let mut held = Vec::new();
    for _ in 0..32 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HT").await.unwrap();
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(&addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(2), extra.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(
        read.is_ok() && text.starts_with("HTTP/1.1 503"),
        "a connection over the cap gets a clear 503 and is closed: {text:?}"
    );
    assert!(text.to_ascii_lowercase().contains("retry-after"), "{text}");
    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let res = http()
        .get(format!("{}/healthz", p.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK, "room again once they close");
    let logs = p.logs.lock().unwrap().join("\n");
    assert!(
        logs.contains("connection limit reached"),
        "the refusal is logged: {logs}"
    );
}

/// A client that asks and never reads the answers held its connection for ever: the
/// header-read timeout only runs while a request head is awaited, and the request timeout ends
/// when the answer starts. Connections that pipeline requests for a large answer behind a
/// closed receive window filled the connection cap (every new client got 503), and held
/// shutdown too. A write that makes no progress for [`backend::web::serve::WRITE_STALL_TIMEOUT`]
/// (10 s) now ends its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_their_answers_do_not_hold_connections() {
    let env = Env::new(Db::Sqlite).await;
    env.engine.store().close().await;
    let p = Proc::start(&env.db, &[("OTP_MAX_CONNECTIONS", "4")]).await;
    let addr: std::net::SocketAddr = p.base.trim_start_matches("http://").parse().unwrap();
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.set_recv_buffer_size(4096).unwrap();
        let s = sock.connect(addr).await.unwrap();
        let (r, mut w) = s.into_split();
        // Pipelined asks for the 20 KB OpenAPI document, never read.
        tokio::spawn(async move {
            let ask = b"GET /host/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n".repeat(50);
            for _ in 0..40 {
                if w.write_all(&ask).await.is_err() {
                    break;
                }
            }
            std::future::pending::<()>().await;
            drop(w);
        });
        stalled.push(r);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // The answer's status line, read raw (a 503 over the cap comes before the request is
    // read: an HTTP client may call that a broken connection); "" for none.
    let status = || async move {
        let Ok(mut s) = TcpStream::connect(addr).await else {
            return String::new();
        };
        let _ = s
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut answer)).await;
        String::from_utf8_lossy(&answer)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let held = status().await;
    assert!(
        !held.starts_with("HTTP/1.1 200"),
        "four clients that do not read hold the four connections: {held:?}"
    );
    let started = Instant::now();
    let mut ok = false;
    while started.elapsed() < Duration::from_secs(25) {
        if status().await.starts_with("HTTP/1.1 200") {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        ok,
        "a connection whose answer makes no progress for 10 s is closed, and room comes back"
    );
    drop(stalled);
}

// ---------------------------------------------------------------------------------------------
// 2. The write-ahead log stays bounded.

/// The checkpointer's restart mark for this test (`OTP_SQLITE_WAL_RESTART_MIB`; the default,
/// 128 MiB, is more than this test's load writes in a minute), and the largest the log may grow
/// to meanwhile. (With the RESTART disabled this test still passes, checked at stop 16: under
/// this load the log is kept small some other way, by the passive checkpoints and probably the
/// writer's own restarts in lulls. `readers_that_never_leave_the_log_...` below is the test
/// that needs the RESTART.)
const WAL_MARK_MIB: &str = "4";
const WAL_BOUND: u64 = 16 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wal_stays_bounded_under_sustained_load() {
    let _heavy = crate::support::HEAVY.lock().await;
    let env = Env::new(Db::Sqlite).await;
    let mut tokens = Vec::new();
    for i in 0..200 {
        tokens.push(env.active_token(&format!("wal{i:05}")).await);
    }
    env.engine.store().close().await;
    let p = Proc::start(&env.db, &[("OTP_SQLITE_WAL_RESTART_MIB", WAL_MARK_MIB)]).await;
    let wal = env.db.dir.path().join("otp.db-wal");
    let tokens = Arc::new(tokens);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let http = http();
    let mut tasks = Vec::new();
    // Writers: every verification writes its audit row (ok once per step, then replayed).
    for w in 0..48 {
        let (tokens, stop, done, http, base) = (
            tokens.clone(),
            stop.clone(),
            done.clone(),
            http.clone(),
            p.base.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while !stop.load(Ordering::Relaxed) {
                let (uid, secret) = &tokens[i % tokens.len()];
                let _ = verify_at(&http, &base, uid, &code_now(secret)).await;
                done.fetch_add(1, Ordering::Relaxed);
                i += 48;
            }
        }));
    }
    // Readers beside them (their snapshots are what hold a checkpoint back).
    for r in 0..8 {
        let (tokens, stop, http, base) =
            (tokens.clone(), stop.clone(), http.clone(), p.base.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = r;
            while !stop.load(Ordering::Relaxed) {
                let (uid, _) = &tokens[i % tokens.len()];
                let _ = http
                    .get(format!("{base}/host/v1/tokens/{uid}"))
                    .bearer_auth(API_KEY)
                    .send()
                    .await;
                i += 8;
            }
        }));
    }
    let started = Instant::now();
    let mut largest = 0u64;
    while started.elapsed() < Duration::from_secs(60) {
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        largest = largest.max(size);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let n = done.load(Ordering::Relaxed);
    eprintln!(
        "WAL test: {n} verifications in 60 s ({} /s), largest WAL {:.1} MiB",
        n / 60,
        largest as f64 / 1_048_576.0
    );
    assert!(n > 1000, "the load ran: {n} verifications");
    assert!(
        largest < WAL_BOUND,
        "the write-ahead log stays under {} MiB through 60 s of load (reached {:.1} MiB)",
        WAL_BOUND >> 20,
        largest as f64 / 1_048_576.0
    );
    // Once the server is idle, the log is truncated. Idle means its mail worker too: the
    // replayed codes queued notices, and sending them writes a row each, so the log keeps
    // changing until the outbox is drained (under a loaded test run that takes a while; CI saw
    // the log still at its peak 5 s after the verifications stopped).
    let unsent = || async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!(
            "sqlite://{}?mode=ro",
            env.db.dir.path().join("otp.db").display()
        ))
        .await
        .unwrap();
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NULL")
            .fetch_one(&mut c)
            .await
            .unwrap();
        c.close().await.unwrap();
        n
    };
    let drained_by = Instant::now() + Duration::from_secs(240);
    let mut left = unsent().await;
    eprintln!("WAL test: {left} mails unsent when the load stopped");
    while left > 0 && Instant::now() < drained_by {
        tokio::time::sleep(Duration::from_millis(250)).await;
        left = unsent().await;
    }
    assert_eq!(left, 0, "the mail worker drained the outbox");
    let mut size = u64::MAX;
    for _ in 0..100 {
        size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if size <= 4 * 1024 * 1024 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        size <= 4 * 1024 * 1024,
        "an idle server keeps its log small: {size} bytes"
    );
}

/// A load that stops with more than the restart mark (4 MiB) in the log (CI saw it: the last
/// RESTART left the log at its peak, and every later tick restarted it again instead of
/// emptying it). One commit of ~6 MiB makes that state at once, whatever the timing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_left_past_the_restart_mark_is_emptied_once_idle() {
    use sqlx::Connection;
    let env = Env::new(Db::Sqlite).await;
    let wal = env.db.dir.path().join("otp.db-wal");
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(&env.db.url).await.unwrap();
    sqlx::query("PRAGMA wal_autocheckpoint = 0")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE ballast (b BLOB)")
        .execute(&mut c)
        .await
        .unwrap();
    sqlx::query("INSERT INTO ballast VALUES (zeroblob(6 * 1024 * 1024))")
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    let peak = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert!(
        peak > 5 * 1024 * 1024,
        "the commit filled the log: {peak} bytes"
    );
    let mut size = peak;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if size <= 4 * 1024 * 1024 {
            break;
        }
    }
    assert!(
        size <= 4 * 1024 * 1024,
        "an idle server empties a log left past the restart mark: {size} bytes"
    );
    env.engine.store().close().await;
}

/// Readers that never leave the log: every moment some reader holds a snapshot (each new one
/// opened before the last closes), so SQLite's writer can never start the log again by itself
/// and passive checkpoints only copy it back. Only the checkpointer's RESTART (which waits
/// briefly for the old snapshots while new readers read the database file) keeps it bounded;
/// this is how issue 13's log reached ~80 MB. Writes come from the test's own connection,
/// rewriting the same rows (so the database file itself stays small), at a pace the
/// checkpointer's 250 ms tick can follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_that_never_leave_the_log_do_not_grow_it_without_bound() {
    let _heavy = crate::support::HEAVY.lock().await;
    let env = Env::new(Db::Sqlite).await;
    env.engine.store().close().await;
    let p = Proc::start(&env.db, &[("OTP_SQLITE_WAL_RESTART_MIB", WAL_MARK_MIB)]).await;
    let file = env.db.dir.path().join("otp.db");
    let wal = env.db.dir.path().join("otp.db-wal");
    let stop = Arc::new(AtomicBool::new(false));

    let readers = {
        let (file, stop) = (file.clone(), stop.clone());
        std::thread::spawn(move || {
            let conns = [
                rusqlite::Connection::open(&file).unwrap(),
                rusqlite::Connection::open(&file).unwrap(),
            ];
            let hold = |c: &rusqlite::Connection| {
                c.execute_batch("BEGIN").unwrap();
                let _: i64 = c
                    .query_row("SELECT count(*) FROM customers", [], |r| r.get(0))
                    .unwrap();
            };
            let mut cur = 0;
            hold(&conns[cur]);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(15));
                let next = 1 - cur;
                hold(&conns[next]);
                conns[cur].execute_batch("COMMIT").unwrap();
                cur = next;
            }
            conns[cur].execute_batch("COMMIT").unwrap();
        })
    };

    let writer = {
        let (file, wal, stop) = (file.clone(), wal.clone(), stop.clone());
        std::thread::spawn(move || {
            let c = rusqlite::Connection::open(&file).unwrap();
            c.busy_timeout(Duration::from_secs(10)).unwrap();
            c.execute_batch(
                "CREATE TABLE test_churn (id INTEGER PRIMARY KEY, b BLOB);
                 WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 25)
                 INSERT INTO test_churn SELECT i, zeroblob(4000) FROM n;",
            )
            .unwrap();
            let started = Instant::now();
            let (mut largest, mut written) = (0u64, 0u64);
            while started.elapsed() < Duration::from_secs(15) && largest < WAL_BOUND {
                c.execute_batch("BEGIN; UPDATE test_churn SET b = randomblob(4000); COMMIT;")
                    .unwrap();
                written += 25 * 4096;
                largest = largest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
                // At most ~10 MB/s: a quarter-second tick's growth stays well under the bound.
                std::thread::sleep(Duration::from_millis(10));
            }
            stop.store(true, Ordering::Relaxed);
            (largest, written)
        })
    };
    let (largest, written) = tokio::task::spawn_blocking(move || writer.join().unwrap())
        .await
        .unwrap();
    readers.join().unwrap();
    eprintln!(
        "WAL with pinned readers: {:.0} MiB written, largest log {:.1} MiB",
        written as f64 / 1_048_576.0,
        largest as f64 / 1_048_576.0
    );
    assert!(
        largest < WAL_BOUND,
        "the log stays under {} MiB while readers always hold a snapshot (reached {:.1} MiB)",
        WAL_BOUND >> 20,
        largest as f64 / 1_048_576.0
    );
    assert!(
        written > 4 * WAL_BOUND,
        "the writes ran long enough to matter: {written} bytes"
    );
    drop(p);
}

// ---------------------------------------------------------------------------------------------
// 3. A full disk.

/// An 8 MiB tmpfs mounted on a temporary directory, unmounted when dropped.
struct SmallDisk {
    dir: Option<tempfile::TempDir>,
}

impl SmallDisk {
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=8m,mode=0700", "tmpfs"])
            .arg(dir.path())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            ok,
            "mounting an 8 MiB tmpfs failed: this test needs root (as scripts/test.sh and CI run)"
        );
        SmallDisk { dir: Some(dir) }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.as_ref().unwrap().path()
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        if let Some(dir) = &self.dir {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(dir.path())
                .status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_is_reported_and_survived_without_restart() {
    let _heavy = crate::support::HEAVY.lock().await;
    let disk = SmallDisk::mount();
    let url = format!("sqlite://{}?mode=rwc", disk.path().join("otp.db").display());
    // The tokens are made on an ordinary disk, then the database (its log folded in by the
    // close) is put on the small one: the setup's own write-ahead log must not be what fills it.
    let env = Env::new(Db::Sqlite).await;
    let mut tokens = Vec::new();
    for i in 0..40 {
        tokens.push(env.active_token(&format!("disk{i:04}")).await);
    }
    env.engine.store().close().await;
    for name in ["otp.db", "otp.db-wal"] {
        let from = env.db.dir.path().join(name);
        if from.exists() {
            std::fs::copy(&from, disk.path().join(name)).unwrap();
        }
    }
    let db = TestDb {
        url: url.clone(),
        dir: tempfile::tempdir().unwrap(),
        pg_name: None,
    };
    let p = Proc::start(&db, &[("OTP_DATA_DIR", disk.path().to_str().unwrap())]).await;
    let http = http();
    let ready = |http: reqwest::Client, base: String| async move {
        http.get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    // Ready once its first write went through (a loaded machine may take a moment).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ready(http.clone(), p.base.clone()).await != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "ready before the disk fills; on the disk: {:?}; server log:\n{}",
            std::fs::read_dir(disk.path())
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    (e.file_name(), e.metadata().map(|m| m.len()).unwrap_or(0))
                })
                .collect::<Vec<_>>(),
            p.logs.lock().unwrap().join("\n")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Fill the disk to the last byte.
    let filler = disk.path().join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0x5au8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let small = [0x5au8; 512];
        while f.write_all(&small).is_ok() {}
        let _ = f.sync_all();
    }
    // Load until the store refuses (wrong codes: every one writes a failure and an audit row).
    let mut refused = 0;
    let started = Instant::now();
    while refused == 0 && started.elapsed() < Duration::from_secs(30) {
        let mut tasks = Vec::new();
        for (uid, _) in tokens.iter().take(32) {
            let (http, base, uid) = (http.clone(), p.base.clone(), uid.clone());
            tasks.push(tokio::spawn(async move {
                verify_at(&http, &base, &uid, "000000").await.0
            }));
        }
        for t in tasks {
            if t.await.unwrap() == 503 {
                refused += 1;
            }
        }
    }
    assert!(refused > 0, "a full disk makes writes fail (503)");
    let mut status = 200;
    for _ in 0..20 {
        status = ready(http.clone(), p.base.clone()).await;
        if status != 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_ne!(status, 200, "/readyz reports a store that cannot write");

    // Free the space: the server must come back by itself.
    std::fs::remove_file(&filler).unwrap();
    let (uid, secret) = &tokens[39];
    let mut back = None;
    let mut last = (0, 0, Value::Null);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(20) {
        let status = ready(http.clone(), p.base.clone()).await;
        last = (status, 0, Value::Null);
        if status == 200 {
            let (st, v) = verify_at(&http, &p.base, uid, &code_now(secret)).await;
            if st == 200 {
                back = Some(v);
                break;
            }
            last = (status, st, v);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let Some(v) = back else {
        let logs = p.logs.lock().unwrap().join("\n");
        let tail: String = logs
            .chars()
            .skip(logs.chars().count().saturating_sub(6000))
            .collect();
        panic!(
            "ready again and verifying within 20 s of space being freed, no restart: \
             last /readyz and verify {last:?}; logs:\n{tail}"
        );
    };
    assert_eq!(v["result"], "ok", "{v}");
    drop(p);
    drop(disk);
}

// ---------------------------------------------------------------------------------------------
// 4. Text the databases would refuse (or store): NUL and other control characters, lone
// surrogates, over-long values, in every form field, JSON field, query value and path segment.

/// Values no text field accepts, as raw bytes (a form carries bytes, not characters).
fn bad_values() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("NUL", b"ab\0cd".to_vec()),
        ("ESC", b"\x1b[2J".to_vec()),
        ("DEL", b"a\x7fb".to_vec()),
        ("C1 control", "a\u{85}b".as_bytes().to_vec()),
        ("lone surrogate", vec![b'a', 0xED, 0xA0, 0x80, b'b']),
        ("over-long", "あ".repeat(1100).into_bytes()),
    ]
}

fn pct(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(*b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn form_body(fields: &[&str], bad_field: &str, bad: &[u8]) -> String {
    fields
        .iter()
        .map(|f| {
            let v: &[u8] = if *f == bad_field { bad } else { b"x1" };
            format!("{f}={}", pct(v))
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Every form of the customer screens and the staff console, with every field it reads.
const FORMS: &[(&str, &[&str])] = &[
    ("/login", &["csrf", "login_id", "password"]),
    ("/login/otp", &["csrf", "code"]),
    ("/logout", &["csrf"]),
    (
        "/otp/issue",
        &[
            "csrf",
            "email",
            "email2",
            "activation_password",
            "activation_password2",
        ],
    ),
    (
        "/otp/issue/confirm",
        &["csrf", "confirmation_password", "request_key", "act_hash"],
    ),
    ("/otp/issue/cancel", &["csrf", "request_key"]),
    ("/otp/activate", &["csrf", "code", "kind"]),
    (
        "/otp/deactivate",
        &["csrf", "confirmation_password", "code"],
    ),
    (
        "/transfer",
        &[
            "csrf",
            "payee_id",
            "bank_code",
            "branch_code",
            "account_type",
            "account_number",
            "payee",
            "amount",
            "kind",
        ],
    ),
    (
        "/transfer/confirm",
        &["csrf", "confirmation_password", "code", "request_key"],
    ),
    ("/staff/login", &["csrf", "login_id", "password"]),
    ("/staff/logout", &["csrf"]),
    ("/staff/customers/1/unlock", &["csrf", "user_id", "reason"]),
    ("/staff/customers/1/resend", &["csrf", "user_id", "email"]),
    (
        "/staff/customers/1/revoke",
        &["csrf", "expected_user_id", "reason"],
    ),
    (
        "/staff/customers/1/reprovision",
        &["csrf", "expected_user_id", "mode", "email", "reason"],
    ),
    ("/staff/approvals/1/approve", &["csrf", "reason"]),
    ("/staff/approvals/1/reject", &["csrf", "reason"]),
    ("/staff/approvals/1/cancel", &["csrf", "reason"]),
];

/// Query values that reach a handler.
const QUERIES: &[(&str, &[&str])] = &[
    ("/lang", &["to", "back"]),
    ("/staff", &["q", "before"]),
    ("/staff/lang", &["to", "back"]),
];

fn set_path(v: &mut Value, path: &[&str], to: Value) {
    let mut cur = v;
    for k in &path[..path.len() - 1] {
        cur = &mut cur[*k];
    }
    cur[path[path.len() - 1]] = to;
}

async fn bad_text_is_refused_at_the_edge(db: Db) {
    let s = Server::start(db).await;
    let (uid, _) = s.env.active_token("edge001").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut cases = 0;

    for (path, fields) in FORMS {
        for field in *fields {
            for (what, bad) in bad_values() {
                let res = http
                    .post(format!("{}{path}", s.base))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(form_body(fields, field, &bad))
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let text = res.text().await.unwrap();
                assert_eq!(
                    status,
                    StatusCode::BAD_REQUEST,
                    "{what} in {path} field {field} is refused at the edge: {text}"
                );
                if path.starts_with("/staff") {
                    assert!(
                        text.contains("cannot be used"),
                        "the console says why: {text}"
                    );
                } else {
                    assert!(
                        text.contains("使用できない文字"),
                        "customer screens say why, in Japanese: {text}"
                    );
                }
                cases += 1;
            }
        }
    }
    for (path, keys) in QUERIES {
        for key in *keys {
            for (what, bad) in bad_values() {
                let res = http
                    .get(format!("{}{path}?{key}={}", s.base, pct(&bad)))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    res.status(),
                    StatusCode::BAD_REQUEST,
                    "{what} in {path}?{key} is refused"
                );
                cases += 1;
            }
        }
    }
    for (what, bad) in bad_values() {
        let res = http
            .get(format!("{}/dl/{}", s.base, pct(&bad)))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{what} in a path");
        assert!(res.text().await.unwrap().contains("使用できない文字"));
        cases += 1;
    }

    // JSON: the host API and the app API.
    let json_routes: Vec<(String, Value, Vec<Vec<&str>>)> = vec![
        (
            "/host/v1/customers".into(),
            json!({"login_id": "edge002", "name": "Taro", "email": "t@example.jp",
                   "login_password": "loginpass1", "confirmation_password": "conf123"}),
            vec![
                vec!["login_id"],
                vec!["name"],
                vec!["email"],
                vec!["login_password"],
                vec!["confirmation_password"],
            ],
        ),
        (
            "/host/v1/customers/edge001/tokens".into(),
            json!({"email": "t@example.jp", "activation_password": "1234"}),
            vec![vec!["email"], vec!["activation_password"]],
        ),
        (
            format!("/host/v1/tokens/{uid}/verify"),
            json!({"code": "123456", "purpose": "login"}),
            vec![vec!["code"], vec!["purpose"]],
        ),
        (
            format!("/host/v1/tokens/{uid}/activate"),
            json!({"code": "123456"}),
            vec![vec!["code"]],
        ),
        (
            format!("/host/v1/tokens/{uid}/deactivate"),
            json!({"code": "123456"}),
            vec![vec!["code"]],
        ),
        (
            format!("/host/v1/tokens/{uid}/unlock"),
            json!({"reason": "customer called"}),
            vec![vec!["reason"]],
        ),
        (
            "/app/v1/setup".into(),
            json!({"service_id": "10112231", "user_id": uid, "activation_password": "1234",
                   "device": {"platform": "android", "model": "Pixel 8", "os_version": "15",
                              "app_version": "1.0.0"}}),
            vec![
                vec!["service_id"],
                vec!["user_id"],
                vec!["activation_password"],
                vec!["device", "platform"],
                vec!["device", "model"],
                vec!["device", "os_version"],
                vec!["device", "app_version"],
            ],
        ),
    ];
    for (path, base, fields) in &json_routes {
        for field in fields {
            for (what, bad) in bad_values() {
                let body = match String::from_utf8(bad.clone()) {
                    Ok(text) => {
                        let mut b = base.clone();
                        set_path(&mut b, field, json!(text));
                        b.to_string()
                    }
                    // A lone surrogate can only be written as a JSON escape.
                    Err(_) => {
                        let mut b = base.clone();
                        set_path(&mut b, field, json!("SURROGATE"));
                        b.to_string().replace("SURROGATE", "a\\ud800b")
                    }
                };
                let res = http
                    .post(format!("{}{path}", s.base))
                    .bearer_auth(API_KEY)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                let status = res.status();
                let v: Value = res.json().await.unwrap_or(Value::Null);
                assert!(
                    status.is_client_error(),
                    "{what} in {path} {field:?}: {status} {v}"
                );
                if what != "lone surrogate" {
                    assert_eq!(
                        (status, v["code"].as_str().unwrap_or("")),
                        (StatusCode::BAD_REQUEST, "INVALID_TEXT"),
                        "{what} in {path} {field:?}: {v}"
                    );
                }
                cases += 1;
            }
        }
    }
    for (what, bad) in bad_values() {
        for path in [
            format!("/host/v1/customers/{}/tokens", pct(&bad)),
            format!("/host/v1/tokens/{}", pct(&bad)),
        ] {
            let res = http
                .post(format!("{}{path}", s.base))
                .bearer_auth(API_KEY)
                .json(&json!({"email": "t@example.jp", "activation_password": "1234"}))
                .send()
                .await
                .unwrap();
            let status = res.status();
            let v: Value = res.json().await.unwrap_or(Value::Null);
            assert_eq!(
                (status, v["code"].as_str().unwrap_or("")),
                (StatusCode::BAD_REQUEST, "INVALID_TEXT"),
                "{what} in the path {path}: {v}"
            );
            cases += 1;
        }
    }
    eprintln!("{cases} bad-text cases refused on {db:?}");
    // Nothing reached the database: no customer with a bad name or login was made.
    let res = http
        .get(format!("{}/host/v1/tokens/{uid}", s.base))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "the server is well afterwards"
    );
    // Ordinary Japanese text still passes the edge.
    let res = http
        .post(format!("{}/host/v1/customers", s.base))
        .bearer_auth(API_KEY)
        .json(&json!({"login_id": "edge003", "name": "山田　太郎（ﾔﾏﾀﾞ）😀", "login_password": "loginpass1", "confirmation_password": "conf123"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
}

both_dbs!(bad_text_is_refused_at_the_edge);

// ---------------------------------------------------------------------------------------------
// 5. A PostgreSQL outage, through a TCP proxy the test cuts.

/// A TCP proxy to PostgreSQL. `cut` drops every proxied connection and swallows new ones (they
/// connect, then hear nothing: a network partition, the slowest kind of outage).
struct Proxy {
    addr: SocketAddr,
    down: Arc<AtomicBool>,
    live: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    swallowed: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let down = Arc::new(AtomicBool::new(false));
        let live: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let swallowed: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, l, sw) = (down.clone(), live.clone(), swallowed.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if d.load(Ordering::SeqCst) {
                    sw.lock().unwrap().push(client);
                    continue;
                }
                let upstream = upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                l.lock().unwrap().push(task.abort_handle());
            }
        });
        Proxy {
            addr,
            down,
            live,
            swallowed,
        }
    }

    fn cut(&self) {
        self.down.store(true, Ordering::SeqCst);
        for t in self.live.lock().unwrap().drain(..) {
            t.abort();
        }
    }

    fn restore(&self) {
        self.down.store(false, Ordering::SeqCst);
        self.swallowed.lock().unwrap().clear();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_outage_is_answered_within_a_second() {
    let env = Env::new(Db::Postgres).await;
    let (uid, secret) = env.active_token("outage2").await;
    env.engine.store().close().await;
    // postgres://user:pass@host:port/name → the same through the proxy.
    let url = env.db.url.clone();
    let at = url.rfind('@').unwrap();
    let slash = at + url[at..].find('/').unwrap();
    let upstream = url[at + 1..slash].to_owned();
    let proxy = Proxy::start(upstream).await;
    let proxied = format!("{}{}{}", &url[..=at], proxy.addr, &url[slash..]);
    let p = Proc::start(&env.db, &[("OTP_DATABASE_URL", proxied.as_str())]).await;
    let http = http();
    let (st, v) = verify_at(&http, &p.base, &uid, "000000").await;
    assert_eq!(st, 200, "{v}");

    proxy.cut();
    let timed = |what: &'static str, fut: reqwest::RequestBuilder| async move {
        let t = Instant::now();
        let res = fut.send().await.unwrap();
        let took = t.elapsed();
        let status = res.status();
        assert!(
            took < Duration::from_secs(1),
            "{what} answers within 1 s during an outage (took {took:?}, {status})"
        );
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{what} during an outage"
        );
        took
    };
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(4) {
        for (what, req) in [
            (
                "verify",
                http.post(format!("{}/host/v1/tokens/{uid}/verify", p.base))
                    .bearer_auth(API_KEY)
                    .json(&json!({"code": "000000", "purpose": "login"})),
            ),
            (
                "token status",
                http.get(format!("{}/host/v1/tokens/{uid}", p.base))
                    .bearer_auth(API_KEY),
            ),
            ("/readyz", http.get(format!("{}/readyz", p.base))),
        ] {
            slowest = slowest.max(timed(what, req).await);
        }
    }
    eprintln!("slowest answer during the outage: {slowest:?}");
    let logs = p.logs.lock().unwrap().join("\n");
    assert!(
        logs.contains("verification batch failed"),
        "the worker logged the outage: {logs}"
    );
    assert!(
        !logs.contains("closed pool"),
        "the worker logs the real cause, not a pool it never closed: {logs}"
    );

    proxy.restore();
    let mut last = (0, Value::Null);
    for _ in 0..50 {
        last = verify_at(&http, &p.base, &uid, &code_now(&secret)).await;
        if last.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(last.0, 200, "the server recovers by itself: {:?}", last.1);
    assert_eq!(last.1["result"], "ok");
}

// ---------------------------------------------------------------------------------------------
// 6. SIGKILL under verification load: every accepted code stays accepted, with its audit row.

async fn sigkill_under_load_keeps_every_accepted_code(db: Db) {
    let _heavy = crate::support::HEAVY.lock().await;
    let env = Env::new(db).await;
    let mut tokens = Vec::new();
    for i in 0..150 {
        tokens.push(env.active_token(&format!("kill{i:04}")).await);
    }
    env.engine.store().close().await;
    let p = Proc::start(&env.db, &[]).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let tokens = Arc::new(tokens);
    let accepted: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..32 {
        let (tokens, accepted, http, base) = (
            tokens.clone(),
            accepted.clone(),
            http.clone(),
            p.base.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            loop {
                let (uid, secret) = &tokens[i % tokens.len()];
                let code = code_now(secret);
                let res = http
                    .post(format!("{base}/host/v1/tokens/{uid}/verify"))
                    .bearer_auth(API_KEY)
                    .json(&json!({"code": code, "purpose": "transfer"}))
                    .send()
                    .await;
                let Ok(res) = res else { return };
                let Ok(v) = res.json::<Value>().await else {
                    return;
                };
                if v["result"] == "ok" {
                    accepted.lock().unwrap().push((uid.clone(), code));
                }
                i += 32;
            }
        }));
    }
    // Kill while requests are in flight, once a good share of the tokens has been accepted.
    let started = Instant::now();
    while accepted.lock().unwrap().len() < 60 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    p.kill9().await;
    for t in tasks {
        let _ = t.await;
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(
        accepted.len() >= 60,
        "the load ran: {} accepted",
        accepted.len()
    );

    let p = Proc::start(&env.db, &[]).await;
    for (uid, code) in &accepted {
        let (st, v) = verify_at(&http, &p.base, uid, code).await;
        assert_eq!(
            (st, v["result"].as_str()),
            (200, Some("replayed")),
            "a code answered ok before the kill is refused as replayed after it: {v}"
        );
    }
    let store =
        backend::store::Store::connect(&env.db.url, &backend::store::ConnectOpts::default())
            .unwrap();
    for (uid, _) in &accepted {
        let audit = store.audit_for_user(uid, 1000, None).await.unwrap();
        assert!(
            audit
                .iter()
                .any(|a| a.action == "verify_transfer" && a.outcome == "ok"),
            "the accepted verification of {uid} has its audit row: {audit:?}"
        );
    }
    eprintln!(
        "SIGKILL test on {db:?}: {} accepted codes survived the kill",
        accepted.len()
    );
    store.close().await;
}

both_dbs!(sigkill_under_load_keeps_every_accepted_code);
both_dbs!(a_mailed_password_an_outage_held_past_its_life_is_not_sent);
both_dbs!(mail_failing_for_days_is_given_up);
both_dbs!(only_the_live_mailed_password_goes_out_after_an_outage);

/// A PostgreSQL batch decided in a later round (its first compare-and-set did not land) whose
/// write then failed: nothing of it was written, so it answers "unavailable" and the code
/// stays unused. Before, the failed round's decision went out as final: "ok" with no step
/// recorded, and the same code was "ok" again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_round_whose_write_fails_answers_unavailable_and_records_nothing() {
    use backend::domain::{Outcome, Purpose};
    use sqlx::Connection;
    let env = Env::new(Db::Postgres).await;
    let (uid, secret) = env.active_token("round01").await;
    env.clock.advance(60);
    let mut c = sqlx::PgConnection::connect(&env.db.url).await.unwrap();
    // The first update of a token does not land (as if another worker changed the row
    // meanwhile); every later one fails.
    sqlx::raw_sql(
        "CREATE SEQUENCE injected_calls; \
         CREATE FUNCTION injected_fault() RETURNS trigger AS $$ BEGIN \
           IF nextval('injected_calls') = 1 THEN RETURN NULL; END IF; \
           RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql; \
         CREATE TRIGGER injected_fault BEFORE UPDATE ON tokens \
           FOR EACH ROW EXECUTE FUNCTION injected_fault();",
    )
    .execute(&mut c)
    .await
    .unwrap();
    let code = env.code(&secret, 0);
    let first = env
        .engine
        .verify(&uid, code.clone(), Purpose::Login, host())
        .await;
    sqlx::raw_sql("DROP TRIGGER injected_fault ON tokens")
        .execute(&mut c)
        .await
        .unwrap();
    // A sequence counts outside the transactions (the failed one rolled back).
    let (calls,): (i64,) = sqlx::query_as("SELECT last_value FROM injected_calls")
        .fetch_one(&mut c)
        .await
        .unwrap();
    assert_eq!(calls, 2, "the second round's write was reached");
    assert!(
        matches!(first, Err(backend::engine::EngineError::Unavailable)),
        "a decision whose write failed is not an answer: {first:?}"
    );
    let again = env
        .engine
        .verify(&uid, code.clone(), Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(again.result, Outcome::Ok, "the code was not used");
    let replay = env
        .engine
        .verify(&uid, code, Purpose::Login, host())
        .await
        .unwrap();
    assert_eq!(replay.result, Outcome::Replayed);
}

/// The mail worker on `env`'s outbox: to an SMTP server on loopback at `smtp_port` (plain,
/// each send limited to 2 s), or, without one, to files under the data directory.
pub(crate) fn mail_worker(env: &Env, smtp_port: Option<u16>) -> backend::mail::MailWorker {
    let cfg = match smtp_port {
        Some(port) => backend::config::MailConfig {
            smtp_host: Some("127.0.0.1".into()),
            smtp_port: Some(port),
            tls: backend::config::SmtpTls::None,
            send_timeout_secs: 2,
            ..Default::default()
        },
        None => backend::config::MailConfig::default(),
    };
    backend::mail::MailWorker::new(env.engine.store().clone(), &cfg, env.db.dir.path()).unwrap()
}

/// Unix seconds by the wall clock (the mail worker's clock, not the test's).
fn wall_now() -> i64 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    i64::try_from(secs).unwrap()
}

/// An SMTP server that accepts the connection and then says nothing (or stalls mid-mail):
/// before, the mail worker waited on it for ever and no mail went out any more (download links,
/// mailed passwords, notices) until a restart. Each send now has a time limit: the attempt
/// fails, is recorded, and is retried later with backoff; the worker goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_smtp_server_does_not_stop_the_mail_worker() {
    let env = Env::new(Db::Sqlite).await;
    env.customer("mail0001").await;
    env.issue("mail0001").await;
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = silent.accept().await {
            keep.lock().unwrap().push(s); // open, never a word
        }
    });
    let worker = mail_worker(&env, Some(port));
    let started = wall_now();
    let ran = tokio::time::timeout(Duration::from_secs(60), worker.run_once()).await;
    assert!(ran.is_ok(), "the worker came back");
    assert_eq!(ran.unwrap().unwrap(), 0, "nothing sent");
    let rows = env.engine.store().outbox(10).await.unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert_eq!(r.attempts, 1);
        assert!(r.sent_at.is_none());
        assert!(
            r.last_error
                .as_deref()
                .is_some_and(|e| e.contains("did not answer")),
            "{:?}",
            r.last_error
        );
        assert!(r.next_attempt_at > started, "retried later, with backoff");
    }
    assert!(!held.lock().unwrap().is_empty(), "the server was reached");
}

/// Sent mail is forgotten after `mail.keep_sent_days` (before, the outbox was never emptied:
/// every notice and mailed password's row stayed, with the address and user ID, in every
/// backup too); what is younger or unsent stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_mail_is_forgotten_after_its_keeping_days() {
    use sqlx::Connection as _;
    let env = Env::new(Db::Sqlite).await;
    for login in ["mail0002", "mail0004"] {
        env.customer(login).await;
        env.issue(login).await;
    }
    let worker = || mail_worker(&env, None);
    assert!(worker().run_once().await.unwrap() >= 1);
    let sent = env.engine.store().outbox(10).await.unwrap();
    assert!(sent.len() >= 2 && sent.iter().all(|m| m.sent_at.is_some()));
    // One sent 91 days ago, one 89.
    let now = wall_now();
    let mut c = sqlx::AnyConnection::connect(&env.db.url).await.unwrap();
    for (m, days) in sent.iter().zip([91, 89]) {
        sqlx::query("UPDATE mail_outbox SET sent_at = $1 WHERE id = $2")
            .bind(now - days * 86_400)
            .bind(m.id)
            .execute(&mut c)
            .await
            .unwrap();
    }
    env.customer("mail0003").await;
    env.issue("mail0003").await;
    worker().run_once().await.unwrap();
    let left: Vec<i64> = env
        .engine
        .store()
        .outbox(10)
        .await
        .unwrap()
        .iter()
        .map(|m| m.id)
        .collect();
    assert!(!left.contains(&sent[0].id), "91 days: forgotten");
    assert!(left.contains(&sent[1].id), "89 days: kept");
    let newest = sent.iter().map(|m| m.id).max().unwrap();
    assert!(
        left.iter().any(|id| *id > newest),
        "the new mail stays: {left:?}"
    );
}

/// A relay that takes a mail's data and never answers it (a stalled content filter): the send
/// times out, and the next mail goes over a connection of its own and is sent. With a
/// connection pool, the timed-out connection went back into the pool mid-conversation and the
/// next mail inherited it (its replies read one step behind, or the same stall again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_stalls_after_the_data_costs_one_mail_not_the_next() {
    let env = Env::new(Db::Sqlite).await;
    for login in ["mail0005", "mail0006"] {
        env.customer(login).await;
        env.issue(login).await;
    }
    let relay = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = relay.local_addr().unwrap().port();
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((s, _)) = relay.accept().await {
            let n = count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(fake_smtp(s, n == 0));
        }
    });
    let worker = mail_worker(&env, Some(port));
    let sent = tokio::time::timeout(Duration::from_secs(30), worker.run_once())
        .await
        .expect("the worker came back")
        .unwrap();
    let rows = env.engine.store().outbox(10).await.unwrap();
    assert_eq!(sent, rows.len() - 1, "all but the stalled one were sent");
    assert!(rows[0].sent_at.is_none() && rows[0].last_error.is_some());
    assert!(rows[1..].iter().all(|r| r.sent_at.is_some()));
    assert!(
        connections.load(Ordering::SeqCst) >= 2,
        "a connection per mail"
    );
}

/// A minimal SMTP server on `s`: EHLO, MAIL, RCPT, DATA; after the data's final dot, `stall`
/// answers nothing, else "250 queued".
async fn fake_smtp(s: TcpStream, stall: bool) {
    let (r, mut w) = s.into_split();
    let mut lines = tokio::io::BufReader::new(r);
    let _ = w.write_all(b"220 fake ESMTP\r\n").await;
    let mut in_data = false;
    loop {
        let mut line = String::new();
        match tokio::io::AsyncBufReadExt::read_line(&mut lines, &mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let reply: &[u8] = if in_data {
            if line != ".\r\n" {
                continue;
            }
            in_data = false;
            if stall {
                std::future::pending::<()>().await;
            }
            b"250 queued\r\n"
        } else {
            match line.get(..4).map(str::to_ascii_uppercase).as_deref() {
                Some("EHLO") => b"250 fake\r\n",
                Some("DATA") => {
                    in_data = true;
                    b"354 go on\r\n"
                }
                Some("QUIT") => {
                    let _ = w.write_all(b"221 bye\r\n").await;
                    return;
                }
                _ => b"250 ok\r\n",
            }
        };
        if w.write_all(reply).await.is_err() {
            return;
        }
    }
}

/// Mail the worker gives up on: an address the mailer cannot parse (stored before the stricter
/// check; it was retried for ever and kept the "outbox stuck" alert on). Given up: never sent,
/// its body cleared, why said, not counted as waiting, never tried again; the others go.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_to_an_address_that_cannot_be_mailed_is_given_up() {
    use sqlx::Connection as _;
    let env = Env::new(Db::Sqlite).await;
    for login in ["mail0007", "mail0008"] {
        env.customer(login).await;
        env.issue(login).await;
    }
    let rows = env.engine.store().outbox(10).await.unwrap();
    let unmailable = rows[0].id;
    let mut c = sqlx::AnyConnection::connect(&env.db.url).await.unwrap();
    sqlx::query("UPDATE mail_outbox SET to_addr = 'taro..hanako@docomo.ne.jp' WHERE id = $1")
        .bind(unmailable)
        .execute(&mut c)
        .await
        .unwrap();
    let worker = mail_worker(&env, None);
    assert_eq!(worker.run_once().await.unwrap(), rows.len() - 1);
    let rows = env.engine.store().outbox(10).await.unwrap();
    let r = rows.iter().find(|r| r.id == unmailable).unwrap();
    assert!(r.sent_at.is_none() && r.given_up_at.is_some(), "given up");
    assert!(r.body.is_empty(), "its body cleared");
    assert!(r
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("cannot be mailed")));
    assert!(rows
        .iter()
        .filter(|m| m.id != unmailable)
        .all(|m| m.sent_at.is_some()));
    assert_eq!(env.engine.store().outbox_stats().await.unwrap().unsent, 0);
    assert_eq!(worker.run_once().await.unwrap(), 0, "never tried again");
}

/// A メール通知パスワード lives ten minutes. One that a mail server outage held longer still went
/// out when the server came back: the customer typed a dead password, and a wrong mailed
/// password counts toward the password lock. The worker now gives up on a mailed password whose
/// sends have failed for its whole life, measured on the worker's own clock from the first
/// failed send (the engine's clock is never compared with the worker's: the journeys run the
/// engine days behind). A mailed password held a shorter time, and every other mail, still
/// goes out after an outage.
async fn a_mailed_password_an_outage_held_past_its_life_is_not_sent(db: Db) {
    use backend::domain::mail_password::MailPurpose;
    use backend::mail::compose::MailPasswordFor;
    use sqlx::Connection as _;
    let env = Env::new(db).await;
    for login in ["taro0201", "taro0202"] {
        env.customer(login).await;
        let cid = crate::staff::customer_id(&env, login).await;
        let what = MailPasswordFor::Issue {
            new_email: "phone@example.jp",
        };
        // Each customer in a web session of their own.
        env.engine
            .send_mail_password(
                cid,
                login,
                "k",
                MailPurpose::Issue,
                what,
                &backend::engine::Actor::new("customer", None),
            )
            .await
            .unwrap();
    }
    env.customer("taro0203").await;
    env.issue("taro0203").await;
    // The relay is down: every send fails once.
    let down = mail_worker(&env, Some(test_support::free_port()));
    assert_eq!(down.run_once().await.unwrap(), 0);
    let rows = env.engine.store().outbox(10).await.unwrap();
    assert_eq!(rows.len(), 3);
    assert!(
        rows.iter().all(|r| r.last_error.is_some()),
        "all failed once"
    );
    let (stale, fresh) = (rows[0].id, rows[1].id);
    // The first failures, moved back on the worker's clock: eleven and five minutes ago.
    let mut c = sqlx::AnyConnection::connect(&env.db.url).await.unwrap();
    for (id, ago) in [(stale, 660), (fresh, 300)] {
        sqlx::query(
            "UPDATE mail_outbox SET first_failed_at = $1, next_attempt_at = 0 WHERE id = $2",
        )
        .bind(wall_now() - ago)
        .bind(id)
        .execute(&mut c)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE mail_outbox SET next_attempt_at = 0")
        .execute(&mut c)
        .await
        .unwrap();
    // The relay is back.
    let up = mail_worker(&env, None);
    assert_eq!(
        up.run_once().await.unwrap(),
        2,
        "the fresh password and the download link"
    );
    let rows = env.engine.store().outbox(10).await.unwrap();
    let r = rows.iter().find(|r| r.id == stale).unwrap();
    assert!(
        r.sent_at.is_none() && r.given_up_at.is_some(),
        "the stale one is given up"
    );
    assert!(r.body.is_empty(), "its body (the password) cleared");
    assert!(
        r.last_error
            .as_deref()
            .is_some_and(|e| e.contains("expired")),
        "{:?}",
        r.last_error
    );
    assert!(rows
        .iter()
        .filter(|r| r.id != stale)
        .all(|r| r.sent_at.is_some()));
}

/// A mail server that refuses one address for good (550 "no such user") had that mail retried
/// every fifteen minutes for ever, and the "outbox stuck" alert never went off. As a mail server
/// does, the worker gives up on a mail whose sends have failed for `mail.give_up_after_hours`
/// (120) since the first failed one (the worker's clock); one failing a shorter time is tried
/// again.
async fn mail_failing_for_days_is_given_up(db: Db) {
    use sqlx::Connection as _;
    let env = Env::new(db).await;
    for login in ["taro0301", "taro0302"] {
        env.customer(login).await;
        env.issue(login).await;
    }
    let down = mail_worker(&env, Some(test_support::free_port()));
    assert_eq!(down.run_once().await.unwrap(), 0);
    let rows = env.engine.store().outbox(10).await.unwrap();
    let (old, young) = (rows[0].id, rows[1].id);
    let mut c = sqlx::AnyConnection::connect(&env.db.url).await.unwrap();
    for (id, hours) in [(old, 121), (young, 119)] {
        sqlx::query(
            "UPDATE mail_outbox SET first_failed_at = $1, next_attempt_at = 0 WHERE id = $2",
        )
        .bind(wall_now() - hours * 3600)
        .bind(id)
        .execute(&mut c)
        .await
        .unwrap();
    }
    let up = mail_worker(&env, None);
    assert_eq!(up.run_once().await.unwrap(), 1, "the younger one is sent");
    let rows = env.engine.store().outbox(10).await.unwrap();
    let r = rows.iter().find(|r| r.id == old).unwrap();
    assert!(r.sent_at.is_none() && r.given_up_at.is_some(), "given up");
    assert!(r.body.is_empty());
    assert!(
        r.last_error
            .as_deref()
            .is_some_and(|e| e.contains("give_up_after_hours")),
        "{:?}",
        r.last_error
    );
    assert!(rows
        .iter()
        .find(|r| r.id == young)
        .unwrap()
        .sent_at
        .is_some());
    assert_eq!(env.engine.store().outbox_stats().await.unwrap().unsent, 0);
}

/// The mail server is down; the customer, hearing nothing, presses 「再送信」 twice: each resend
/// replaces the password, and the earlier ones are dead at once. When the server came back the
/// outbox sent all three, oldest first: the customer typed a dead one, which counts toward the
/// password lock. Only the live one goes out now; so is a password a logout ended not sent.
async fn only_the_live_mailed_password_goes_out_after_an_outage(db: Db) {
    use backend::domain::mail_password::MailPurpose;
    use backend::mail::compose::MailPasswordFor;
    let env = Env::new(db).await;
    let me = backend::engine::Actor::new("customer", None);
    let down = mail_worker(&env, Some(test_support::free_port()));
    let mut ids = Vec::new();
    for login in ["taro0401", "taro0402"] {
        env.customer(login).await;
        ids.push(crate::staff::customer_id(&env, login).await);
    }
    let what = || MailPasswordFor::Issue {
        new_email: "phone@example.jp",
    };
    for _ in 0..3 {
        env.engine
            .send_mail_password(ids[0], "s1", "k", MailPurpose::Issue, what(), &me)
            .await
            .unwrap();
        assert_eq!(down.run_once().await.unwrap(), 0);
    }
    env.engine
        .send_mail_password(ids[1], "s2", "k", MailPurpose::Issue, what(), &me)
        .await
        .unwrap();
    assert_eq!(down.run_once().await.unwrap(), 0);
    env.engine.end_mail_passwords("s2").await.unwrap();
    let rows = env.engine.store().outbox(10).await.unwrap();
    assert_eq!(rows.len(), 4);
    let live = rows[2].id;
    {
        use sqlx::Connection as _;
        let mut c = sqlx::AnyConnection::connect(&env.db.url).await.unwrap();
        sqlx::query("UPDATE mail_outbox SET next_attempt_at = 0")
            .execute(&mut c)
            .await
            .unwrap();
    }
    let up = mail_worker(&env, None);
    assert_eq!(up.run_once().await.unwrap(), 1, "only the live password");
    for r in env.engine.store().outbox(10).await.unwrap() {
        if r.id == live {
            assert!(r.sent_at.is_some());
        } else {
            assert!(
                r.sent_at.is_none() && r.given_up_at.is_some(),
                "mail {} given up",
                r.id
            );
            assert!(r.body.is_empty());
            assert!(r
                .last_error
                .as_deref()
                .is_some_and(|e| e.contains("replaced, used or ended")));
        }
    }
}

/// PostgreSQL on another host: sqlx was built without TLS, so the default `sslmode=prefer`
/// fell back to plaintext (password exchange, customers' data, sessions and audit in clear, and
/// an active attacker could ask for the password in clear), and `sslmode=require` or
/// `verify-full` could not connect at all. The driver now speaks TLS (rustls): `require`
/// encrypts, and `verify-ca`/`verify-full` check the server's certificate against
/// `sslrootcert` (the test cluster's self-signed certificate is refused under another CA's
/// root).
#[tokio::test]
async fn postgres_connections_speak_tls_and_check_the_server() {
    use sqlx::Connection as _;
    let admin = test_support::pg_admin_url();
    let sep = if admin.contains('?') { '&' } else { '?' };
    let url = |params: &str| format!("{admin}{sep}{params}");
    let ssl_in_use = |params: String| async move {
        let mut c = sqlx::PgConnection::connect(&params).await?;
        let (ssl,): (bool,) =
            sqlx::query_as("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&mut c)
                .await?;
        Ok::<bool, sqlx::Error>(ssl)
    };
    let mut plain = sqlx::PgConnection::connect(&url("sslmode=disable"))
        .await
        .unwrap();
    let (ssl,): (String,) = sqlx::query_as("SHOW ssl")
        .fetch_one(&mut plain)
        .await
        .unwrap();
    assert_eq!(
        ssl, "on",
        "the test PostgreSQL must offer TLS (Debian's cluster does, with the ssl-cert package's snakeoil certificate, as scripts/test.sh installs it)"
    );
    assert!(
        ssl_in_use(url("sslmode=require")).await.unwrap(),
        "sslmode=require connects, encrypted"
    );
    assert!(
        ssl_in_use(url("sslmode=prefer")).await.unwrap(),
        "the default prefers TLS where the server offers it"
    );
    let other = std::fs::read_dir("/usr/share/ca-certificates/mozilla")
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "crt"))
        .expect("a CA certificate of the system's store");
    assert!(
        ssl_in_use(url(&format!(
            "sslmode=verify-ca&sslrootcert={}",
            other.display()
        )))
        .await
        .is_err_and(|e| e.to_string().contains("UnknownIssuer")),
        "a server certificate from another CA is refused"
    );
    // The server's own store connects with it too.
    let store = backend::store::Store::connect(
        &url("sslmode=require"),
        &backend::store::ConnectOpts::default(),
    )
    .unwrap();
    store.ping().await.unwrap();
}
