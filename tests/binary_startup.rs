//! Starts the `ringmq` binary: command line, listen address check, readiness line, and
//! clean shutdown on SIGTERM.

use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn ringmq() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ringmq"))
}

/// Kills the broker if a test fails before stopping it.
struct Broker(Child);

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(args: &[&str]) -> (Broker, String) {
    let child = ringmq()
        .args(args)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start ringmq: {e}"));
    let mut broker = Broker(child);
    let Some(stderr) = broker.0.stderr.take() else {
        panic!("no stderr");
    };
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(rest) = line.strip_prefix("ringmq listening on ") {
                    break rest.split(' ').next().unwrap_or_default().to_string();
                }
            }
            _ => panic!("ringmq exited before listening"),
        }
    };
    // Keep draining stderr so the broker never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (broker, addr)
}

fn wait_for_exit(broker: &mut Broker, within: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = broker.0.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

#[test]
fn announces_its_address_accepts_connections_and_stops_on_sigterm() {
    let (mut broker, addr) = start(&["--listen", "127.0.0.1:0", "--shards", "2"]);
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );
    for _ in 0..4 {
        let conn = TcpStream::connect(&addr);
        assert!(conn.is_ok(), "{conn:?}");
    }
    let pid = broker.0.id() as libc::pid_t;
    // SAFETY: sends a signal to the child we spawned; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let status = wait_for_exit(&mut broker, Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

#[test]
fn refuses_a_port_another_broker_already_serves() {
    let (_first, addr) = start(&["--listen", "127.0.0.1:0", "--shards", "1"]);
    let second = ringmq()
        .args(["--listen", &addr, "--shards", "1"])
        .stderr(Stdio::piped())
        .spawn();
    let mut second = Broker(second.unwrap_or_else(|e| panic!("cannot start: {e}")));
    let status = wait_for_exit(&mut second, Duration::from_secs(5));
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    let mut stderr = String::new();
    if let Some(mut err) = second.0.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert!(stderr.contains("already in use"), "{stderr}");
}

#[test]
fn prints_a_default_config_that_reads_back() {
    let out = ringmq().arg("--print-default-config").output();
    let out = out.unwrap_or_else(|e| panic!("cannot run: {e}"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed = ringmq::config::Config::from_toml_str(&text);
    assert_eq!(parsed, Ok(ringmq::config::Config::default()));
}

#[test]
fn a_bad_config_file_is_refused_with_the_field_named() {
    let path = std::env::temp_dir().join(format!("ringmq-bad-{}.toml", std::process::id()));
    assert!(std::fs::write(&path, "[mqtt]\nreceive_maximum = 0\n").is_ok());
    let out = ringmq().arg("--config").arg(&path).output();
    let _ = std::fs::remove_file(&path);
    let out = out.unwrap_or_else(|e| panic!("cannot run: {e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mqtt.receive_maximum"));
}
