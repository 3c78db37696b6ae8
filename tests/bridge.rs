//! Bridges (`[[bridges]]`, docs/bridge.md) against the real `ringmq` binary: ringmq to
//! ringmq always, and ringmq to a real Mosquitto started by the test on loopback when
//! `/usr/sbin/mosquitto` (or `mosquitto` on PATH) is installed; those tests print why and
//! pass when it is not. Prefix rewriting each way, queueing across an outage, no loops,
//! TLS, and a remote killed and restarted while a publisher runs.

pub mod support;

use ringmq::protocol::{Packet, ProtocolVersion, Publish};
use std::net::SocketAddr;
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
    format!(
        "[[bridges]]\nname = \"{name}\"\naddress = \"{remote}\"\ntopics = [{}]\n\
         reconnect_min_ms = 50\nreconnect_max_ms = 200\nkeepalive = 5\n{extra}\n",
        topics.join(", ")
    )
}

/// Waits until bridge `name` of `broker` says it is up (`$SYS/broker/connection/<name>/state`
/// = "1", as Mosquitto publishes it).
fn wait_up(broker: &Broker, name: &str) {
    let state = format!("$SYS/broker/connection/{name}/state");
    let mut sub = RawClient::connect(
        broker.addr,
        V4,
        &format!("state-{name}-{}", unique_suffix()),
    );
    sub.subscribe_ok(1, &[(state.as_str(), 0)]);
    let deadline = Instant::now() + BRIDGE_UP;
    while Instant::now() < deadline {
        if let Recv::Packet(Packet::Publish(p)) = sub.recv(Duration::from_millis(200))
            && &p.payload[..] == b"1"
        {
            return;
        }
    }
    panic!(
        "bridge {name} not up within {BRIDGE_UP:?}: {:?}",
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
