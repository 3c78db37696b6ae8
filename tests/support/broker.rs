//! The broker process: starting the real `ringmq` binary on a loopback port it picks itself,
//! reading the address it announces, collecting its log lines, signalling it and reaping it.
//!
//! This file uses only `std` and `libc`, so that suites outside this package can include it
//! with `#[path]` (loadtest/tests/broker.rs does).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Shards every test broker runs with: two, so that a client id can be homed on a shard
/// other than the one that accepted its connection, and messages cross the mesh.
pub const SHARDS: usize = 2;

/// How long a broker may take to announce its address.
const STARTUP: Duration = Duration::from_secs(10);

/// A running `ringmq` process on its own port; SIGKILLed on drop.
///
/// The broker binds `127.0.0.1:0` and the harness reads the address from its `ringmq
/// listening on ADDR` line. A free port chosen by the test and passed on the command line
/// would race with other tests doing the same: a test could end up talking to another
/// test's broker.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    /// Where the broker listens: its first listener (`--listen`, plain MQTT).
    pub addr: SocketAddr,
    /// Every listener as the broker announced it: config key (`listen`, `listeners[0]`,
    /// ...), scheme (`mqtt`, `mqtts`, `ws`, `wss`) and address, in config order.
    pub listeners: Vec<Listener>,
    /// How many shards it runs.
    pub shards: usize,
    config_path: Option<PathBuf>,
    /// Every line the broker wrote to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl Broker {
    /// A broker with the default config and [`SHARDS`] shards.
    pub fn start() -> Self {
        Self::start_with_config("")
    }

    /// A broker whose config file holds `toml` (the listen address and the shard count come
    /// from the command line).
    pub fn start_with_config(toml: &str) -> Self {
        let binary = broker_binary();
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::start_binary(&binary, SHARDS, toml) {
                Ok(broker) => return broker,
                Err(e) => last_error = e,
            }
        }
        panic!("ringmq did not start: {last_error}");
    }

    /// Starts `binary` with `shards` shards and a config file holding `toml` (none when
    /// empty), and waits for its address. For callers that find the binary themselves.
    pub fn start_binary(binary: &Path, shards: usize, toml: &str) -> Result<Self, String> {
        Self::start_binary_on(binary, SocketAddr::from(([127, 0, 0, 1], 0)), shards, toml)
    }

    /// A broker with the default config on `addr` (a port a test already owns, e.g. that of
    /// a broker it killed), or why it did not start.
    pub fn start_on(addr: SocketAddr) -> Result<Self, String> {
        Self::start_binary_on(&broker_binary(), addr, SHARDS, "")
    }

    fn start_binary_on(
        binary: &Path,
        addr: SocketAddr,
        shards: usize,
        toml: &str,
    ) -> Result<Self, String> {
        let config_path = if toml.is_empty() {
            None
        } else {
            let path = std::env::temp_dir().join(format!(
                "ringmq-test-{}-{}.toml",
                std::process::id(),
                unique_suffix()
            ));
            std::fs::write(&path, toml).map_err(|e| format!("write config: {e}"))?;
            Some(path)
        };
        let mut command = Command::new(binary);
        command.args([
            "--listen",
            &addr.to_string(),
            "--shards",
            &shards.to_string(),
        ]);
        if let Some(path) = &config_path {
            command.arg("--config").arg(path);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
        let mut broker = Self {
            child,
            addr,
            listeners: Vec::new(),
            shards,
            config_path,
            log: Arc::default(),
        };
        (broker.addr, broker.listeners) = broker.wait_for_listening_line()?;
        Ok(broker)
    }

    /// The address of the listener the config calls `name` (e.g. `listeners[0]`).
    pub fn listener(&self, name: &str) -> SocketAddr {
        match self.listeners.iter().find(|l| l.name == name) {
            Some(l) => l.addr,
            None => panic!("no listener {name} in {:?}", self.listeners),
        }
    }

    /// Reads stderr up to the log line `... ringmq listening on ADDR with N shards`,
    /// collecting the `... serving SCHEME://ADDR (NAME)` lines before it, then keeps draining
    /// it on a thread (kept for [`Broker::log_lines`] and echoed to the test's stderr) so the
    /// broker never blocks on a full pipe.
    fn wait_for_listening_line(&mut self) -> Result<(SocketAddr, Vec<Listener>), String> {
        let stderr = self.child.stderr.take().ok_or("no stderr pipe")?;
        let (tx, rx) = mpsc::channel();
        let log = Arc::clone(&self.log);
        std::thread::spawn(move || {
            let mut announced = false;
            let mut listeners = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Ok(mut log) = log.lock() {
                    log.push(line.clone());
                }
                if !announced {
                    if let Some((_, rest)) = line.split_once(": serving ") {
                        listeners.push(rest.to_string());
                    }
                    if let Some((_, rest)) = line.split_once("ringmq listening on ") {
                        announced = true;
                        let addr = rest.split(' ').next().unwrap_or_default().to_string();
                        let _ = tx.send((addr, std::mem::take(&mut listeners)));
                        continue;
                    }
                }
                eprintln!("[broker] {line}");
            }
        });
        let (addr, lines) = rx
            .recv_timeout(STARTUP)
            .map_err(|_| format!("no `ringmq listening on` line within {STARTUP:?}"))?;
        let addr = addr
            .parse()
            .map_err(|e| format!("bad address {addr:?}: {e}"))?;
        let listeners = lines
            .iter()
            .map(|l| Listener::parse(l))
            .collect::<Result<_, _>>()?;
        Ok((addr, listeners))
    }

    /// The lines the broker has logged so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The first logged line that satisfies `wanted`, waiting up to `within` for it.
    pub fn wait_for_log(&self, within: Duration, wanted: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(line) = self.log_lines().into_iter().find(|l| wanted(l)) {
                return Some(line);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The address of the metrics listener (a config with `[metrics] listen = "127.0.0.1:0"`),
    /// from its `metrics listening on ADDR` log line.
    pub fn metrics_addr(&self) -> SocketAddr {
        let line = self
            .wait_for_log(STARTUP, |l| l.contains("metrics listening on "))
            .unwrap_or_else(|| panic!("no `metrics listening on` line"));
        let addr = line
            .split_once("metrics listening on ")
            .and_then(|(_, rest)| rest.split(['"', ' ']).next())
            .unwrap_or_default();
        addr.parse()
            .unwrap_or_else(|e| panic!("bad metrics address in {line:?}: {e}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Asks for a graceful shutdown.
    pub fn sigterm(&self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: sends a signal to the child this struct spawned; no memory is involved.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
    }

    /// Asks the broker to reload its certificates (and other files).
    pub fn sighup(&self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: sends a signal to the child this struct spawned; no memory is involved.
        let rc = unsafe { libc::kill(pid, libc::SIGHUP) };
        assert_eq!(rc, 0, "kill(SIGHUP) failed");
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Kills the process at once (SIGKILL) and reaps it, as a supervisor sees a crash.
    pub fn kill_and_reap(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The exit status if the process ends within `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.child, within)
    }

    /// Panics if the broker process has died (a crash is never acceptable).
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the broker process exited: {status}");
        }
    }
}

/// One listener as the broker announced it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    /// Its config key: `listen`, `listeners[0]`, ...
    pub name: String,
    /// `mqtt`, `mqtts`, `ws` or `wss`.
    pub scheme: String,
    pub addr: SocketAddr,
}

impl Listener {
    /// Parses `SCHEME://ADDR (NAME)` (and the log line's fields after it).
    fn parse(line: &str) -> Result<Self, String> {
        let bad = || format!("bad listener line {line:?}");
        let (scheme, rest) = line.split_once("://").ok_or_else(bad)?;
        let (addr, rest) = rest.split_once(" (").ok_or_else(bad)?;
        let (name, _) = rest.split_once(')').ok_or_else(bad)?;
        Ok(Self {
            name: name.to_string(),
            scheme: scheme.to_string(),
            addr: addr.parse().map_err(|_| bad())?,
        })
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.config_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The binary under test: `RINGMQ_BIN` when set (to check another build), else this
/// package's `ringmq`. Panics in a package that has no `ringmq` binary and no `RINGMQ_BIN`.
pub fn broker_binary() -> PathBuf {
    std::env::var_os("RINGMQ_BIN")
        .map(PathBuf::from)
        .or_else(|| option_env!("CARGO_BIN_EXE_ringmq").map(PathBuf::from))
        .unwrap_or_else(|| panic!("no ringmq binary: set RINGMQ_BIN"))
}

/// The exit status if `child` ends within `within`.
pub fn wait_exit(child: &mut Child, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A command running the binary under test, for tests of its command line.
pub fn broker_command() -> Command {
    Command::new(broker_binary())
}

pub fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}
