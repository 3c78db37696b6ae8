//! Starts the `ringmq` binary: command line, listen address check, readiness line, and
//! clean shutdown on SIGTERM.

pub mod support;

use ringmq::protocol::ProtocolVersion;
use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Stdio;
use std::time::{Duration, Instant};
use support::*;

#[test]
fn announces_its_address_accepts_connections_and_stops_on_sigterm() {
    // The harness reads the `ringmq listening on ADDR` line of a broker started on port 0.
    let mut broker = Broker::start();
    let addr = broker.addr;
    assert!(addr.ip().is_loopback() && addr.port() != 0, "{addr}");
    for _ in 0..4 {
        let conn = TcpStream::connect(addr);
        assert!(conn.is_ok(), "{conn:?}");
    }
    broker.sigterm();
    let status = broker.wait_exit(Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}

/// Starts a broker on `addr` that must refuse it: it exits with an error within `within`,
/// saying the address is in use.
fn refused_quickly(addr: SocketAddr, within: Duration) {
    let began = Instant::now();
    let second = broker_command()
        .args(["--listen", &addr.to_string(), "--shards", "1"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut second = second.unwrap_or_else(|e| panic!("cannot start: {e}"));
    let status = wait_exit(&mut second, Duration::from_secs(5));
    if status.is_none() {
        let _ = second.kill();
        let _ = second.wait();
    }
    assert!(status.is_some_and(|s| !s.success()), "{status:?}");
    assert!(
        began.elapsed() < within,
        "refused after {:?}",
        began.elapsed()
    );
    let mut stderr = String::new();
    if let Some(mut err) = second.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert!(stderr.contains("already in use"), "{stderr}");
}

#[test]
fn refuses_a_port_another_broker_already_serves() {
    let first = Broker::start();
    refused_quickly(first.addr, Duration::from_secs(1));
}

#[test]
fn refuses_a_port_any_live_listener_holds_at_once() {
    // A plain listener of this (live) process: no waiting for it to go away.
    let held = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = held
        .local_addr()
        .unwrap_or_else(|e| panic!("local_addr: {e}"));
    refused_quickly(addr, Duration::from_secs(1));
}

#[test]
fn restarts_on_its_port_right_after_kill_9() {
    // A supervisor restarting at once (systemd Restart=always): the killed broker's
    // listeners outlive it for a few milliseconds; the new one waits for them and serves.
    let mut first = Broker::start();
    let addr = first.addr;
    let _client = RawClient::connect(addr, ProtocolVersion::V4, "before-kill");
    for round in 0..3 {
        first.kill_and_reap();
        first = Broker::start_on(addr)
            .unwrap_or_else(|e| panic!("round {round}: no restart on {addr}: {e}"));
        assert_eq!(first.addr, addr);
        let mut c = RawClient::connect(addr, ProtocolVersion::V5, &format!("after-{round}"));
        c.ping();
    }
}

#[test]
fn prints_a_default_config_that_reads_back() {
    let out = broker_command().arg("--print-default-config").output();
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
    let out = broker_command().arg("--config").arg(&path).output();
    let _ = std::fs::remove_file(&path);
    let out = out.unwrap_or_else(|e| panic!("cannot run: {e}"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mqtt.receive_maximum"));
}
