//! Starts the `ringmq` binary: command line, listeners and the start-up refusal of bad ones
//! (addresses, settings, certificate files), readiness line, and clean shutdown on SIGTERM.

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

#[test]
fn every_listener_is_served_and_announced_in_config_order() {
    // `--listen` is the shorthand listener, in front of the file's [[listeners]].
    let broker = Broker::start_with_config(
        "[[listeners]]\nbind = \"127.0.0.1:0\"\n[[listeners]]\nbind = \"127.0.0.1:0\"\n",
    );
    let names: Vec<&str> = broker.listeners.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["listen", "listeners[0]", "listeners[1]"]);
    assert_eq!(broker.listener("listen"), broker.addr);
    for listener in &broker.listeners {
        assert_eq!(listener.scheme, "mqtt");
        let mut c = RawClient::connect(listener.addr, ProtocolVersion::V4, &listener.name);
        c.ping();
    }
}

#[test]
fn with_no_config_it_listens_on_loopback_only() {
    // Like Mosquitto 2: the built-in default is 127.0.0.1:1883 with anonymous clients.
    let out = broker_command().arg("--print-default-config").output();
    let out = out.unwrap_or_else(|e| panic!("cannot run: {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\nlisten = \"127.0.0.1:1883\"\n"), "{text}");
    let config = ringmq::config::Config::default();
    assert!(config.listeners.iter().all(|l| l.bind.ip().is_loopback()));
}

#[test]
fn a_public_listener_without_allow_anonymous_does_not_start() {
    let out = broker_command()
        .args(["--listen", "0.0.0.0:0", "--shards", "1"])
        .output();
    let out = out.unwrap_or_else(|e| panic!("cannot run: {e}"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("listen: 0.0.0.0:0 is not a loopback address")
            && stderr.contains("allow_anonymous = true"),
        "{stderr}"
    );
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

/// Starts the binary on `toml` (plus a plain `--listen 127.0.0.1:0`), expects it to refuse
/// with exit code 2 before listening on anything, and returns what it said.
fn refused_at_start(toml: &str) -> String {
    let path = std::env::temp_dir().join(format!(
        "ringmq-refused-{}-{}.toml",
        std::process::id(),
        unique_suffix()
    ));
    assert!(std::fs::write(&path, toml).is_ok());
    let child = broker_command()
        .args(["--listen", "127.0.0.1:0", "--shards", "1", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = child.unwrap_or_else(|e| panic!("cannot start: {e}"));
    let status = wait_exit(&mut child, Duration::from_secs(5));
    let _ = std::fs::remove_file(&path);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let mut stderr = String::new();
    if let Some(mut err) = child.stderr.take() {
        let _ = err.read_to_string(&mut stderr);
    }
    assert_eq!(status.and_then(|s| s.code()), Some(2), "{toml}\n{stderr}");
    assert!(!stderr.contains("listening on"), "it started: {stderr}");
    stderr
}

#[test]
fn unusable_listener_settings_and_files_are_refused_at_start_naming_key_and_file() {
    let pki = Pki::new();
    let garbage = pki.write("garbage.pem", "not a certificate\n");
    let other = pki.server("other", 9);
    let other_key = pki.write("other.key", &other.key_pem);
    let missing = pki.path("missing.pem");
    let tls =
        |lines: &str| format!("[[listeners]]\nbind = \"127.0.0.1:0\"\n[listeners.tls]\n{lines}\n");
    let server = format!(
        "cert = {:?}\nkey = {:?}",
        path_str(&pki.path("server.pem")),
        path_str(&pki.path("server.key"))
    );
    let cases = [
        (
            tls(&format!(
                "cert = {:?}\nkey = {:?}",
                path_str(&missing),
                path_str(&pki.path("server.key"))
            )),
            "listeners[0].tls.cert",
            path_str(&missing),
            "cannot read it",
        ),
        (
            tls(&format!(
                "cert = {:?}\nkey = {:?}",
                path_str(&garbage),
                path_str(&pki.path("server.key"))
            )),
            "listeners[0].tls.cert",
            path_str(&garbage),
            "holds no PEM certificate",
        ),
        (
            tls(&format!(
                "cert = {:?}\nkey = {:?}",
                path_str(&pki.path("server.pem")),
                path_str(&other_key)
            )),
            "listeners[0].tls.key",
            path_str(&other_key),
            "does not match the certificate",
        ),
        (
            tls(&format!(
                "cert = {:?}\nkey = {:?}",
                path_str(&pki.path("server.pem")),
                path_str(&pki.path("server.pem"))
            )),
            "listeners[0].tls.key",
            path_str(&pki.path("server.pem")),
            "holds no PEM private key",
        ),
        (
            tls(&format!("{server}\nclient_ca = {:?}", path_str(&garbage))),
            "listeners[0].tls.client_ca",
            path_str(&garbage),
            "holds no PEM certificate",
        ),
        (
            "[[listeners]]\nbind = \"127.0.0.1:http\"\n".to_string(),
            "listeners[0].bind",
            "127.0.0.1:http".to_string(),
            "is not an IP:port socket address",
        ),
        (
            tls(&format!("{server}\ncafile = \"ca.pem\"")),
            "unknown field `cafile`",
            String::new(),
            "",
        ),
    ];
    for (toml, key, file, why) in cases {
        let stderr = refused_at_start(&toml);
        assert!(
            stderr.contains(key) && stderr.contains(&file) && stderr.contains(why),
            "want {key} / {file} / {why}, got: {stderr}"
        );
    }
}

#[test]
fn bad_bridge_settings_and_files_are_refused_at_start_naming_the_key() {
    let bridge = |extra: &str| {
        format!(
            "[[bridges]]\nname = \"b\"\naddress = \"127.0.0.1:1\"\ntopics = [\"a/# out 1\", \
             \"b/# in 3\"]\n{extra}"
        )
    };
    let stderr = refused_at_start(&bridge(""));
    assert!(
        stderr.contains("bridges[0].topics[1]") && stderr.contains("QoS"),
        "{stderr}"
    );
    let ok_topics = |t: String| t.replace("\"b/# in 3\"", "\"b/# in 1\"");
    let missing = ok_topics(bridge("tls = { ca = \"/nonexistent/ca.pem\" }"));
    let stderr = refused_at_start(&missing);
    assert!(
        stderr.contains("bridges[0].tls.ca") && stderr.contains("/nonexistent/ca.pem"),
        "{stderr}"
    );
}
