//! Bridges (`[[bridges]]`, docs/bridge.md) against the real `ringmq` binary: ringmq to
//! ringmq always, and ringmq to a real Mosquitto started by the test on loopback when
//! `/usr/sbin/mosquitto` (or `mosquitto` on PATH) is installed; those tests print why and
//! pass when it is not. Prefix rewriting each way, queueing across an outage, no loops,
//! TLS, and a remote killed and restarted while a publisher runs.

pub mod support;

use ringmq::protocol::{Packet, ProtocolVersion, Publish};
use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;
/// How long a bridge may take to (re)connect in these tests (backoff at most 200 ms).
const BRIDGE_UP: Duration = Duration::from_secs(10);

/// A `[[bridges]]` entry named `name` to `remote` with `topics` (and `extra` keys), quick to
/// reconnect.
fn bridge_toml(name: &str, remote: SocketAddr, topics: &[&str], extra: &str) -> String {
    let topics: Vec<String> = topics.iter().map(|t| format!("{t:?}")).collect();
    let keepalive = match extra.contains("keepalive") {
        true => "",
        false => "keepalive = 5\n",
    };
    let fast = match extra.contains("reconnect_min_ms") {
        true => "",
        false => "reconnect_min_ms = 50\nreconnect_max_ms = 200\n",
    };
    format!(
        "[[bridges]]\nname = \"{name}\"\naddress = \"{remote}\"\ntopics = [{}]\n\
         {keepalive}{fast}{extra}\n",
        topics.join(", ")
    )
}

/// Waits until bridge `name` of `broker` says it is up (`$SYS/broker/connection/<name>/state`
/// = "1", as Mosquitto publishes it).
fn wait_up(broker: &Broker, name: &str) {
    wait_state(broker, name, b"1");
}

/// Waits until bridge `name`'s state topic (retained) says `wanted`.
fn wait_state(broker: &Broker, name: &str, wanted: &[u8]) {
    let state = format!("$SYS/broker/connection/{name}/state");
    let mut sub = RawClient::connect(
        broker.addr,
        V4,
        &format!("state-{name}-{}", unique_suffix()),
    );
    // The state may change before the SUBACK is read: no SUBACK-first expectation here.
    sub.send(&SubscribeBuilder::with(1, &[(state.as_str(), 0)]).packet());
    let deadline = Instant::now() + BRIDGE_UP;
    while Instant::now() < deadline {
        if let Recv::Packet(Packet::Publish(p)) = sub.recv(Duration::from_millis(200))
            && &p.payload[..] == wanted
        {
            return;
        }
    }
    panic!(
        "bridge {name} not {wanted:?} within {BRIDGE_UP:?}: {:?}",
        broker.log_lines()
    );
}

/// Publishes `payload` on `topic` through `publisher` until `sub` receives a message (the
/// bridge's subscriptions may still be on their way when it says it is up); returns it.
fn publish_until_received(
    publisher: &mut RawClient,
    topic: &str,
    payload: &[u8],
    sub: &mut RawClient,
) -> Publish {
    let deadline = Instant::now() + BRIDGE_UP;
    while Instant::now() < deadline {
        publisher.publish(topic, payload, 1, false);
        if let Recv::Packet(Packet::Publish(p)) = sub.recv(Duration::from_millis(300)) {
            sub.ack(&p);
            return p;
        }
    }
    panic!("{topic} never arrived across the bridge");
}

#[test]
fn an_out_rule_carries_local_messages_to_the_remote_with_the_prefixes_swapped() {
    let remote = Broker::start();
    let local = Broker::start_with_config(&bridge_toml(
        "cloud",
        remote.addr,
        &["sensors/# out 1 site1/ cloud/site1/"],
        "",
    ));
    wait_up(&local, "cloud");
    let mut sub = RawClient::connect(remote.addr, V5, "remote-sub");
    sub.subscribe_ok(1, &[("cloud/site1/#", 1)]);
    let mut publisher = RawClient::connect(local.addr, V5, "local-pub");
    let got = publish_until_received(&mut publisher, "site1/sensors/t1", b"21.5", &mut sub);
    assert_eq!(got.topic.as_str(), "cloud/site1/sensors/t1");
    assert_eq!(&got.payload[..], b"21.5");
    assert_eq!(
        got.qos,
        ringmq::protocol::QoS::AtLeastOnce,
        "the rule's QoS 1"
    );
    // Outside the rule's local prefix: not carried.
    publisher.publish("site2/sensors/t1", b"no", 1, false);
    publisher.publish("site1/other", b"no", 1, false);
    sub.expect_nothing(QUIET);
}

#[test]
fn the_remote_keeps_the_bridge_state_1_while_up_and_0_after_a_crash_or_a_stop() {
    // Mosquitto's bridge notifications: the remote's retained
    // `$SYS/broker/connection/<name>/state` says "1" while the bridge is connected, and "0"
    // once it is gone, through the bridge's will when it dies without a DISCONNECT.
    let remote = Broker::start();
    let toml = bridge_toml("cloud", remote.addr, &["sensors/# out 1"], "");
    let mut local = Broker::start_with_config(&toml);
    wait_up(&remote, "cloud");
    local.kill_and_reap();
    wait_state(&remote, "cloud", b"0");

    let mut local = Broker::start_with_config(&toml);
    wait_up(&remote, "cloud");
    local.sigterm();
    assert!(
        local.wait_exit(Duration::from_secs(10)).is_some(),
        "stopped"
    );
    wait_state(&remote, "cloud", b"0");

    let quiet = bridge_toml(
        "cloud",
        remote.addr,
        &["sensors/# out 1"],
        "notifications = false",
    );
    let _local = Broker::start_with_config(&quiet);
    std::thread::sleep(Duration::from_millis(500));
    wait_state(&remote, "cloud", b"0");
}

#[test]
fn an_in_rule_carries_remote_messages_here_with_the_prefixes_swapped() {
    let remote = Broker::start();
    let local = Broker::start_with_config(&bridge_toml(
        "cloud",
        remote.addr,
        &["cmd/# in 1 site1/ cloud/site1/"],
        "",
    ));
    wait_up(&local, "cloud");
    let mut sub = RawClient::connect(local.addr, V4, "local-sub");
    sub.subscribe_ok(1, &[("site1/#", 1)]);
    let mut publisher = RawClient::connect(remote.addr, V4, "remote-pub");
    let got = publish_until_received(&mut publisher, "cloud/site1/cmd/reboot", b"now", &mut sub);
    assert_eq!(got.topic.as_str(), "site1/cmd/reboot");
    // An in rule carries nothing out.
    let mut remote_sub = RawClient::connect(remote.addr, V4, "remote-sub");
    remote_sub.subscribe_ok(1, &[("#", 1)]);
    let mut local_pub = RawClient::connect(local.addr, V4, "local-pub");
    local_pub.publish("site1/cmd/x", b"stay", 1, false);
    remote_sub.expect_nothing(QUIET);
}

/// Every PUBLISH `client` receives until it is quiet for `quiet`, acknowledged.
fn drain(client: &mut RawClient, quiet: Duration) -> Vec<Publish> {
    collect_publishes(client, quiet)
}

#[test]
fn a_both_rule_carries_each_way_and_nothing_comes_back_over_mqtt5_no_local() {
    // [MQTT-3.8.3-3] (5.0): with No Local, the server must not send a message back to the
    // connection that published it; the bridge subscribes with it at the remote, and its
    // local session subscribes with it here, so one message crosses once and stops.
    let remote = Broker::start();
    let local = Broker::start_with_config(&bridge_toml(
        "peer",
        remote.addr,
        &["chat/# both 1 a/ b/"],
        "protocol = \"mqtt5\"",
    ));
    wait_up(&local, "peer");
    let mut here = RawClient::connect(local.addr, V5, "here-sub");
    here.subscribe_ok(1, &[("a/chat/#", 1)]);
    let mut there = RawClient::connect(remote.addr, V5, "there-sub");
    there.subscribe_ok(1, &[("b/chat/#", 1)]);
    let mut here_pub = RawClient::connect(local.addr, V5, "here-pub");
    let first = publish_until_received(&mut here_pub, "a/chat/hello", b"out", &mut there);
    assert_eq!(first.topic.as_str(), "b/chat/hello");
    // What the retries sent before the bridge's subscriptions were in place is settled now.
    drain(&mut there, QUIET);
    drain(&mut here, QUIET);
    here_pub.publish("a/chat/once", b"one", 1, false);
    let there_got = drain(&mut there, QUIET);
    let here_got = drain(&mut here, QUIET);
    assert_eq!(there_got.len(), 1, "crossed once: {there_got:?}");
    assert_eq!(here_got.len(), 1, "no copy came back: {here_got:?}");
    let mut there_pub = RawClient::connect(remote.addr, V5, "there-pub");
    there_pub.publish("b/chat/back", b"in", 1, false);
    let here_got = drain(&mut here, QUIET);
    let there_got = drain(&mut there, QUIET);
    assert_eq!(payloads(&here_got), ["in"], "came in once as a/chat/back");
    assert_eq!(here_got[0].topic.as_str(), "a/chat/back");
    assert_eq!(payloads(&there_got), ["in"], "and was not sent back out");
}

#[test]
fn a_3_1_1_bridge_is_recognised_by_a_ringmq_remote_so_nothing_loops_either() {
    // 3.1.1 has no No Local: the bridge connects with protocol level 0x84 (Mosquitto's
    // try_private) and ringmq gives its subscriptions No Local and Retain As Published.
    let remote = Broker::start();
    let local = Broker::start_with_config(&bridge_toml(
        "old",
        remote.addr,
        &["chat/# both 1"],
        "protocol = \"mqtt311\"",
    ));
    wait_up(&local, "old");
    let mut here = RawClient::connect(local.addr, V4, "here-sub");
    here.subscribe_ok(1, &[("chat/#", 1)]);
    let mut there = RawClient::connect(remote.addr, V4, "there-sub");
    there.subscribe_ok(1, &[("chat/#", 1)]);
    let mut here_pub = RawClient::connect(local.addr, V4, "here-pub");
    publish_until_received(&mut here_pub, "chat/warmup", b"w", &mut there);
    drain(&mut there, QUIET);
    drain(&mut here, QUIET);
    here_pub.publish("chat/x", b"once", 1, true);
    assert_eq!(payloads(&drain(&mut there, QUIET)), ["once"]);
    let here_got = drain(&mut here, QUIET);
    assert_eq!(payloads(&here_got), ["once"], "no echo from the remote");
    // Retain As Published at the remote: a retained message stays retained across.
    let mut late = RawClient::connect(remote.addr, V4, "late-sub");
    late.subscribe_ok(1, &[("chat/x", 1)]);
    let kept = late.expect_publish_acked();
    assert!(kept.retain && &kept.payload[..] == b"once", "{kept:?}");
    assert!(
        local
            .log_lines()
            .iter()
            .all(|l| !l.contains("refused the bridge protocol level")),
        "the remote took the bridge level 0x84"
    );
}

#[test]
fn qos_1_messages_published_while_the_remote_is_down_arrive_when_it_is_back() {
    let mut remote = Broker::start();
    let addr = remote.addr;
    let local = Broker::start_with_config(&bridge_toml(
        "cloud",
        addr,
        &["sensors/# out 1 \"\" cloud/"],
        "clean_start = false\nreconnect_min_ms = 1000\nreconnect_max_ms = 2000",
    ));
    wait_up(&local, "cloud");
    remote.kill_and_reap();
    wait_state(&local, "cloud", b"0");
    let mut publisher = RawClient::connect(local.addr, V4, "pub");
    for i in 0..10 {
        // PUBACKed by this broker: the bridge's local session queues it for the remote.
        publisher.publish(
            &format!("sensors/{i}"),
            format!("m{i}").as_bytes(),
            1,
            false,
        );
    }
    // A QoS 0 message has nowhere to wait: dropped (and counted).
    publisher.publish("sensors/q0", b"gone", 0, false);
    let remote = Broker::start_on(addr).unwrap_or_else(|e| panic!("remote again: {e}"));
    let mut sub = RawClient::connect(remote.addr, V4, "remote-sub");
    sub.subscribe_ok(1, &[("cloud/#", 1)]);
    let deadline = Instant::now() + BRIDGE_UP;
    let mut got = Vec::new();
    while got.len() < 10 && Instant::now() < deadline {
        if let Recv::Packet(Packet::Publish(p)) = sub.recv(Duration::from_millis(200)) {
            sub.ack(&p);
            got.push(payload_str(&p));
        }
    }
    let wanted: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(got, wanted, "all ten, in order");
    sub.expect_nothing(QUIET);
}

fn payloads(got: &[Publish]) -> Vec<String> {
    got.iter().map(payload_str).collect()
}

/// A TCP forwarder between the bridge and its remote that the test opens, closes and cuts:
/// the test decides when a restarted remote is reachable.
struct Gate {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    /// The forwarded connections (both ends), to cut them.
    links: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Gate {
    fn new(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("gate: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("gate: {e}"));
        let _ = listener.set_nonblocking(true);
        let open = Arc::new(AtomicBool::new(true));
        let stop = Arc::new(AtomicBool::new(false));
        let links = Arc::new(Mutex::new(Vec::new()));
        let (o, s, l) = (open.clone(), stop.clone(), links.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = client.set_nonblocking(false);
                if !o.load(Ordering::Relaxed) {
                    continue;
                }
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                forward(&client, &server, &l);
            }
        });
        Self {
            addr,
            open,
            stop,
            links,
            thread: Some(thread),
        }
    }

    fn set_open(&self, open: bool) {
        self.open.store(open, Ordering::Relaxed);
    }

    /// Closes every forwarded connection.
    fn cut(&self) {
        let links = std::mem::take(&mut *self.links.lock().unwrap_or_else(|e| e.into_inner()));
        for s in links {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.cut();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Copies both ways between `a` and `b` until either side ends, then closes both.
fn forward(a: &TcpStream, b: &TcpStream, links: &Mutex<Vec<TcpStream>>) {
    let pairs = [
        (a.try_clone(), b.try_clone()),
        (b.try_clone(), a.try_clone()),
    ];
    if let Ok(mut l) = links.lock() {
        l.extend(a.try_clone());
        l.extend(b.try_clone());
    }
    for pair in pairs {
        let (Ok(mut from), Ok(mut to)) = pair else {
            continue;
        };
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut from, &mut to);
            let _ = from.shutdown(std::net::Shutdown::Both);
            let _ = to.shutdown(std::net::Shutdown::Both);
        });
    }
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn the_remote_killed_and_restarted_20_times_loses_no_qos_1_message() {
    let mut remote = Broker::start();
    let addr = remote.addr;
    let gate = Gate::new(addr);
    let local = Broker::start_with_config(&bridge_toml("cloud", gate.addr, &["load/# out 1"], ""));
    wait_up(&local, "cloud");
    let mut sink = RawClient::connect(addr, V4, "sink");
    sink.subscribe_ok(1, &[("load/#", 1)]);
    let stop = Arc::new(AtomicBool::new(false));
    let publishing = {
        let (stop, at) = (stop.clone(), local.addr);
        std::thread::spawn(move || {
            let mut publisher = RawClient::connect(at, V4, "publisher");
            let mut sent = 0u32;
            while !stop.load(Ordering::Relaxed) {
                // PUBACKed by the local broker once its bridge session has it.
                publisher.publish("load/n", sent.to_string().as_bytes(), 1, false);
                sent += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
            sent
        })
    };
    let mut got = HashSet::new();
    // For `window` (the publisher never pauses, so nothing waits for quiet).
    let take = |sink: &mut RawClient, window: Duration, got: &mut HashSet<String>| {
        let until = Instant::now() + window;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            if let Recv::Packet(Packet::Publish(p)) = sink.recv(left.max(Duration::from_millis(1)))
            {
                sink.ack(&p);
                got.insert(payload_str(&p));
            }
        }
    };
    let started = Instant::now();
    let rss_before = rss_kb(local.pid());
    for _ in 0..20 {
        take(&mut sink, Duration::from_millis(150), &mut got);
        // The link is cut first and the sink drains what the remote already acknowledged:
        // a remote killed with a message it acknowledged but had not delivered loses it,
        // whatever sent it. What the bridge had not had acknowledged, it sends again.
        gate.set_open(false);
        gate.cut();
        take(&mut sink, Duration::from_millis(100), &mut got);
        remote.kill_and_reap();
        remote = Broker::start_on(addr).unwrap_or_else(|e| panic!("remote again: {e}"));
        sink = RawClient::connect(addr, V4, "sink");
        sink.subscribe_ok(1, &[("load/#", 1)]);
        gate.set_open(true);
    }
    stop.store(true, Ordering::Relaxed);
    let sent = publishing
        .join()
        .unwrap_or_else(|_| panic!("publisher failed"));
    let deadline = Instant::now() + BRIDGE_UP;
    let all =
        |got: &std::collections::HashSet<String>| (0..sent).all(|i| got.contains(&i.to_string()));
    while Instant::now() < deadline && !all(&got) {
        take(&mut sink, Duration::from_millis(200), &mut got);
    }
    let missing: Vec<u32> = (0..sent)
        .filter(|i| !got.contains(&i.to_string()))
        .collect();
    assert!(sent > 100, "the publisher ran ({sent} messages)");
    assert!(
        missing.is_empty(),
        "{} of {sent} lost: {missing:?}",
        missing.len()
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "bounded in time"
    );
    let rss_after = rss_kb(local.pid());
    assert!(
        rss_after < rss_before + 64 * 1024,
        "memory bounded: {rss_before} kB -> {rss_after} kB"
    );
}

/// A Mosquitto remote for `test`, or `None` (the test passes, having said why).
fn mosquitto(test: &str, extra: &str) -> Option<Mosquitto> {
    Mosquitto::start(test, extra)
}

#[test]
fn ringmq_bridges_to_mosquitto_out_in_and_both_with_prefixes_over_3_1_1_and_5_0() {
    let Some(remote) = mosquitto("bridge_to_mosquitto", "") else {
        return;
    };
    for protocol in ["mqtt311", "mqtt5"] {
        let name = format!("m-{protocol}");
        let local = Broker::start_with_config(&bridge_toml(
            &name,
            remote.addr,
            &[
                "sensors/# out 1 site/ cloud/site/",
                "cmd/# in 1 site/ cloud/site/",
                "chat/# both 1 \"\" shared/",
            ],
            &format!("protocol = \"{protocol}\""),
        ));
        wait_up(&local, &name);
        let mut there = RawClient::connect(remote.addr, V4, &format!("there-{protocol}"));
        there.subscribe_ok(1, &[("cloud/site/#", 1), ("shared/#", 1)]);
        let mut here = RawClient::connect(local.addr, V4, &format!("here-{protocol}"));
        here.subscribe_ok(1, &[("site/#", 1), ("chat/#", 1)]);
        let mut here_pub = RawClient::connect(local.addr, V4, &format!("here-pub-{protocol}"));
        let got = publish_until_received(&mut here_pub, "site/sensors/a", b"1", &mut there);
        assert_eq!(got.topic.as_str(), "cloud/site/sensors/a", "{protocol}");
        drain(&mut here, QUIET);
        let mut there_pub = RawClient::connect(remote.addr, V4, &format!("there-pub-{protocol}"));
        let got = publish_until_received(&mut there_pub, "cloud/site/cmd/go", b"2", &mut here);
        assert_eq!(got.topic.as_str(), "site/cmd/go", "{protocol}");
        drain(&mut here, QUIET);
        drain(&mut there, QUIET);
        // both: each way once, and Mosquitto does not send the bridge's own messages back
        // (5.0 No Local [MQTT-3.8.3-3]; 3.1.1: it recognises the bridge level 0x84).
        here_pub.publish("chat/x", b"out", 1, false);
        assert_eq!(payloads(&drain(&mut there, QUIET)), ["out"], "{protocol}");
        assert_eq!(
            payloads(&drain(&mut here, QUIET)),
            ["out"],
            "{protocol}: no echo"
        );
        there_pub.publish("shared/chat/y", b"in", 1, false);
        let here_got = drain(&mut here, QUIET);
        assert_eq!(payloads(&here_got), ["in"], "{protocol}");
        assert_eq!(here_got[0].topic.as_str(), "chat/y");
        assert_eq!(
            payloads(&drain(&mut there, QUIET)),
            ["in"],
            "{protocol}: not sent back"
        );
    }
}

#[test]
fn qos_1_messages_queued_while_mosquitto_is_down_arrive_after_it_restarts() {
    let Some(mut remote) = mosquitto("queue_across_mosquitto_restart", "") else {
        return;
    };
    let local = Broker::start_with_config(&bridge_toml(
        "m",
        remote.addr,
        &["q/# out 1"],
        "clean_start = false\nreconnect_min_ms = 1000\nreconnect_max_ms = 2000",
    ));
    wait_up(&local, "m");
    remote.kill();
    wait_state(&local, "m", b"0");
    let mut publisher = RawClient::connect(local.addr, V4, "pub");
    for i in 0..5 {
        publisher.publish("q/t", format!("m{i}").as_bytes(), 1, false);
    }
    remote.restart();
    let mut sub = RawClient::connect(remote.addr, V4, "sub");
    sub.subscribe_ok(1, &[("q/#", 1)]);
    let deadline = Instant::now() + BRIDGE_UP;
    let mut got = Vec::new();
    while got.len() < 5 && Instant::now() < deadline {
        if let Recv::Packet(Packet::Publish(p)) = sub.recv(Duration::from_millis(200)) {
            sub.ack(&p);
            got.push(payload_str(&p));
        }
    }
    assert_eq!(got, ["m0", "m1", "m2", "m3", "m4"]);
}

/// `tls = { ... }` for a bridge trusting `pki`'s CA, with a client certificate if given.
fn tls_table(pki: &Pki, client: Option<&str>) -> String {
    let ca = path_str(&pki.path("ca.pem"));
    match client {
        None => format!("tls = {{ ca = {ca:?} }}"),
        Some(cn) => {
            let issued = pki.client(cn);
            let cert = path_str(&pki.write("client.pem", &issued.cert_pem));
            let key = path_str(&pki.write("client.key", &issued.key_pem));
            format!("tls = {{ ca = {ca:?}, cert = {cert:?}, key = {key:?} }}")
        }
    }
}

#[test]
fn a_bridge_over_tls_with_a_client_certificate_to_ringmq() {
    let pki = Pki::new();
    let extra = format!("{}\nrequire_client_cert = true", pki.client_ca_line());
    let remote = Broker::start_with_config(&pki.listener_toml("mqtt", &extra));
    let tls_addr = remote.listener("listeners[0]");
    let local = Broker::start_with_config(&bridge_toml(
        "secure",
        tls_addr,
        &["s/# out 1"],
        &tls_table(&pki, Some("bridge-client")),
    ));
    wait_up(&local, "secure");
    let mut sub = RawClient::connect(remote.addr, V4, "plain-sub");
    sub.subscribe_ok(1, &[("s/#", 1)]);
    let mut publisher = RawClient::connect(local.addr, V4, "pub");
    let got = publish_until_received(&mut publisher, "s/t", b"encrypted", &mut sub);
    assert_eq!(&got.payload[..], b"encrypted");
}

#[test]
fn a_bridge_over_tls_to_mosquitto_with_a_certificate_made_in_the_test() {
    let pki = Pki::new();
    let conf = format!(
        "cafile {}\ncertfile {}\nkeyfile {}\n",
        path_str(&pki.path("ca.pem")),
        path_str(&pki.path("server.pem")),
        path_str(&pki.path("server.key")),
    );
    let Some(remote) = mosquitto("bridge_over_tls_to_mosquitto", &conf) else {
        return;
    };
    let local = Broker::start_with_config(&bridge_toml(
        "secure",
        remote.addr,
        &["s/# both 1"],
        &tls_table(&pki, None),
    ));
    wait_up(&local, "secure");
    let tls = client_config(&pki.ca_pem(), None);
    let wire = tls_connect(remote.addr, tls).unwrap_or_else(|e| panic!("tls: {e}"));
    let sub = RawClient::from_wire(Box::new(wire), V4, "tls-sub");
    let (mut sub, _) = sub.handshake(ConnectBuilder::new(V4, "tls-sub"));
    sub.subscribe_ok(1, &[("s/#", 1)]);
    let mut publisher = RawClient::connect(local.addr, V4, "pub");
    let got = publish_until_received(&mut publisher, "s/t", b"over tls", &mut sub);
    assert_eq!(&got.payload[..], b"over tls");
}

/// A fake remote that answers every connection the way `mode` says; counts connections.
fn fake_remote(mode: &'static str) -> (SocketAddr, Arc<std::sync::atomic::AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let count = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            seen.fetch_add(1, Ordering::Relaxed);
            std::thread::spawn(move || {
                use std::io::{Read, Write};
                let mut buf = [0u8; 1024];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let n = stream.read(&mut buf).unwrap_or(0);
                // The protocol level of a short CONNECT: after 0x10, one length byte,
                // 00 04 "MQTT".
                let level = buf.get(8).copied().filter(|_| n > 8);
                let reply: &[u8] = match mode {
                    // A broker that knows no bridge level: 0x01 unacceptable protocol
                    // version for 0x84, accepted with 4.
                    "plain-only" if level == Some(0x84) => &[0x20, 0x02, 0x00, 0x01],
                    "plain-only" => &[0x20, 0x02, 0x00, 0x00],
                    // 3.1.1 CONNACK 0x05 Not authorized.
                    "refuse" => &[0x20, 0x02, 0x00, 0x05],
                    "garbage" => &[0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01],
                    // CONNACK accepted, then nothing, not even PINGRESP.
                    "silent" => &[0x20, 0x02, 0x00, 0x00],
                    // "stall": not a byte.
                    _ => &[],
                };
                let _ = stream.write_all(reply);
                std::thread::sleep(Duration::from_secs(6));
            });
        }
    });
    (addr, count)
}

#[test]
fn a_remote_that_refuses_sends_garbage_or_stalls_is_retried_and_never_blocks_local_clients() {
    for mode in ["silent", "refuse", "garbage", "stall"] {
        let (addr, connections) = fake_remote(mode);
        let local = Broker::start_with_config(&bridge_toml(
            "bad",
            addr,
            &["# both 1"],
            "protocol = \"mqtt311\"\ntry_private = false\nkeepalive = 1\nconnect_timeout_ms = 300",
        ));
        // Local clients are served all along, on every shard.
        let deadline = Instant::now() + Duration::from_secs(4);
        let mut round = 0;
        while Instant::now() < deadline {
            let [a, b] = ids_on_distinct_shards(&format!("{mode}-{round}"));
            let mut sub = RawClient::connect(local.addr, V4, &a);
            sub.subscribe_ok(1, &[("local/t", 1)]);
            let mut publisher = RawClient::connect(local.addr, V4, &b);
            publisher.publish("local/t", b"fine", 1, false);
            assert_eq!(&sub.expect_publish_acked().payload[..], b"fine", "{mode}");
            round += 1;
            std::thread::sleep(Duration::from_millis(200));
        }
        let tries = connections.load(Ordering::Relaxed);
        assert!(
            tries >= 2,
            "{mode}: retried ({tries} connections): {:?}",
            local.log_lines()
        );
        let logged = local.log_lines().iter().any(|l| l.contains("bridge bad"));
        assert!(logged, "{mode}: logged: {:?}", local.log_lines());
    }
}

#[test]
fn the_bridge_state_and_what_it_drops_while_the_remote_is_down_are_in_the_metrics() {
    let mut remote = Broker::start();
    let local = Broker::start_with_config(&format!(
        "{}\n[metrics]\nlisten = \"127.0.0.1:0\"\n[queues]\nmax_queued_messages = 3\n",
        bridge_toml("cloud", remote.addr, &["x/# out 1"], "")
    ));
    wait_up(&local, "cloud");
    let metrics = local.metrics_addr();
    let gauge = |name: &'static str, wanted: u64| {
        eventually(name, || {
            let text = scrape(metrics);
            match metric_sum(&text, name, "") {
                n if n == wanted => Ok(text),
                n => Err(format!("{name} = {n}")),
            }
        })
    };
    let text = gauge("ringmq_bridges_up", 1);
    assert_eq!(metric_sum(&text, "ringmq_bridges_down", ""), 0, "{text}");
    assert!(
        metric_sum(&text, "ringmq_bridge_connects_total", "") >= 1,
        "{text}"
    );
    remote.kill_and_reap();
    wait_state(&local, "cloud", b"0");
    gauge("ringmq_bridges_down", 1);
    let mut publisher = RawClient::connect(local.addr, V4, "pub");
    // QoS 0 has nowhere to wait; QoS 1 waits in the bridge's session up to its bound.
    publisher.publish("x/zero", b"0", 0, false);
    for i in 0..8 {
        publisher.publish("x/one", format!("{i}").as_bytes(), 1, false);
    }
    let dropped = |cause: &str| {
        let text = scrape(metrics);
        metric_sum(
            &text,
            "ringmq_messages_dropped_total",
            &format!("cause=\"{cause}\""),
        )
    };
    eventually("drops counted", || {
        match (dropped("qos0"), dropped("queue_full")) {
            (q0, full) if q0 >= 1 && full >= 1 => Ok(()),
            counts => Err(format!("(qos0, queue_full) = {counts:?}")),
        }
    });
    let text = scrape(metrics);
    assert!(
        metric_sum(&text, "ringmq_bridge_failures_total", "") >= 1,
        "{text}"
    );
}

/// `GET /metrics`.
fn scrape(addr: SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("metrics: {e}"));
    let _ = s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text
}

/// The sum of a metric's samples (those whose labels contain `label`) over its labels.
fn metric_sum(text: &str, name: &str, label: &str) -> u64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter(|l| l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

#[test]
fn a_remote_that_refuses_the_bridge_level_is_connected_with_the_plain_3_1_1_level() {
    // Mosquitto's try_private: level 0x84 first, 4 when the remote answers 0x01.
    let (addr, connections) = fake_remote("plain-only");
    let local = Broker::start_with_config(&bridge_toml(
        "private",
        addr,
        &["# out 0"],
        "protocol = \"mqtt311\"\nkeepalive = 30",
    ));
    wait_up(&local, "private");
    assert_eq!(connections.load(Ordering::Relaxed), 2, "0x84, then 4");
    assert!(
        local
            .log_lines()
            .iter()
            .any(|l| l.contains("refused the bridge protocol level")),
        "{:?}",
        local.log_lines()
    );
}

#[test]
fn a_broker_with_a_bridge_stops_promptly_and_disconnects_from_the_remote_normally() {
    let remote = Broker::start();
    let mut local =
        Broker::start_with_config(&bridge_toml("cloud", remote.addr, &["# both 1"], ""));
    wait_up(&local, "cloud");
    local.sigterm();
    let status = local.wait_exit(Duration::from_secs(5));
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    // A normal DISCONNECT: the remote keeps the bridge's session and publishes no will.
    let said = remote.wait_for_log(PROMPT, |l| {
        l.contains("client disconnected") && l.contains("client_id=cloud")
    });
    let said = said.unwrap_or_else(|| panic!("{:?}", remote.log_lines()));
    assert!(said.contains("cause=\"client disconnect\""), "{said}");
}
