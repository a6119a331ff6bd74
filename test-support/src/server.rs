//! The server runner: an `otp-backend serve` process for a test, started, found listening from
//! the line it prints (`otp-backend listening on <url>`), its log kept, and stopped when the
//! test is done. The backend's process tests (`backend/tests/it`) and the desktop journey
//! (`e2e-app`) both run the real binary through it; each builds its own command (which
//! binary, which environment) and hands it here.
//!
//! The journeys in `tests/` run the server in-process instead, on a manual clock the test
//! moves: a separate process cannot share that clock.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// What the server prints once it accepts connections; the rest of the line is its URL.
pub const LISTENING: &str = "otp-backend listening on ";

/// How long a server may take to come up (a debug build migrating a fresh database on a busy
/// machine).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the server's log (its standard error) goes.
pub enum Log {
    /// Kept in memory, for [`ServerProcess::logs`].
    Keep,
    /// Kept, and passed on to the test's standard error as it comes.
    PassOn,
    /// Written by the server itself to this file (nothing is kept in memory): a reader of the
    /// file sees each line as soon as the server has written it.
    File(PathBuf),
}

/// How the process is stopped when the [`ServerProcess`] is dropped.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum OnDrop {
    /// SIGKILL, at once (the process tests' default: nothing to flush, nothing to wait for).
    Kill,
    /// SIGTERM and up to 5 s for the graceful shutdown, then SIGKILL.
    Terminate,
}

/// A running `otp-backend serve`.
pub struct ServerProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`, as the server printed it.
    pub base_url: String,
    logs: Arc<Mutex<Vec<String>>>,
    on_drop: OnDrop,
}

impl ServerProcess {
    /// Spawns `cmd` (a `serve` command: binary, arguments and environment set by the caller)
    /// and waits until it prints that it listens.
    ///
    /// # Errors
    /// The binary cannot be started, or the process exits or stays silent before listening
    /// (the error carries what it logged).
    pub async fn start(mut cmd: Command, log: Log, on_drop: OnDrop) -> Result<ServerProcess> {
        cmd.stdout(Stdio::null()).kill_on_drop(true);
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (mut child, base_url) = match log {
            Log::File(path) => {
                let file = std::fs::File::create(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                let mut child = cmd.stderr(Stdio::from(file)).spawn().context("spawning")?;
                let base = wait_in_file(&mut child, &path).await;
                (child, base)
            }
            log => {
                let mut child = cmd.stderr(Stdio::piped()).spawn().context("spawning")?;
                let pass_on = matches!(log, Log::PassOn);
                let mut lines = BufReader::new(child.stderr.take().context("no stderr")?).lines();
                let sink = logs.clone();
                let base = tokio::time::timeout(START_TIMEOUT, async {
                    while let Ok(Some(line)) = lines.next_line().await {
                        if pass_on {
                            eprintln!("{line}");
                        }
                        let url = line.strip_prefix(LISTENING).map(|u| u.trim().to_owned());
                        sink.lock().unwrap().push(line);
                        if let Some(url) = url {
                            return Ok(url);
                        }
                    }
                    bail!("the server exited before it listened")
                })
                .await
                .unwrap_or_else(|_| Err(anyhow::anyhow!("no listening line in {START_TIMEOUT:?}")));
                let sink = logs.clone();
                tokio::spawn(async move {
                    while let Ok(Some(line)) = lines.next_line().await {
                        if pass_on {
                            eprintln!("{line}");
                        }
                        sink.lock().unwrap().push(line);
                    }
                });
                (child, base)
            }
        };
        match base_url {
            Ok(base_url) => Ok(ServerProcess {
                child,
                base_url,
                logs,
                on_drop,
            }),
            Err(e) => {
                let _ = child.start_kill();
                let logged = logs.lock().unwrap().join("\n");
                Err(e.context(format!("server log:\n{logged}")))
            }
        }
    }

    /// Every line the server has logged so far (not with [`Log::File`]).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// The shared log, for a test that watches it while the server runs.
    pub fn log_handle(&self) -> Arc<Mutex<Vec<String>>> {
        self.logs.clone()
    }

    /// The process ID (0 once it has been reaped).
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    /// SIGKILL (no shutdown of any kind), and wait for the process.
    pub async fn kill9(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Sends SIGTERM: the server begins its graceful shutdown.
    pub fn send_term(&self) {
        signal_term(self.pid());
    }

    /// Waits for the process to exit.
    ///
    /// # Errors
    /// The process cannot be waited for.
    pub async fn wait(mut self) -> Result<std::process::ExitStatus> {
        Ok(self.child.wait().await?)
    }
}

fn signal_term(pid: u32) {
    if pid != 0 {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if self.on_drop == OnDrop::Terminate {
            signal_term(self.pid());
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.start_kill();
    }
}

/// Waits for the listening line in the log file the server writes itself.
async fn wait_in_file(child: &mut Child, path: &Path) -> Result<String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(file) = std::fs::File::open(path) {
            for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix(LISTENING) {
                    return Ok(url.trim().to_owned());
                }
            }
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(path).unwrap_or_default();
            bail!("the server exited ({status}) before it listened:\n{log}");
        }
        if Instant::now() > deadline {
            bail!(
                "no listening line in {} within {START_TIMEOUT:?}",
                path.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
