//! Starts the `ringmq` binary: command line, listen address check, readiness line, and
//! clean shutdown on SIGTERM.

pub mod support;

use std::io::Read;
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;
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

#[test]
fn refuses_a_port_another_broker_already_serves() {
    let first = Broker::start();
    let second = broker_command()
        .args(["--listen", &first.addr.to_string(), "--shards", "1"])
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
    let mut stderr = String::new();
    if let Some(mut err) = second.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert!(stderr.contains("already in use"), "{stderr}");
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
