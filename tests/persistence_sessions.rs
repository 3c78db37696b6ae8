//! Persistence of sessions (`[persistence]`, docs/persistence.md) with the real binary,
//! killed with SIGKILL and restarted: persistent sessions with their subscriptions (3.1.1
//! Clean Session 0 and 5.0 Session Expiry Interval), the QoS 1/2 messages queued for them and
//! in flight to them, inbound QoS 2 state, session expiry counting the time the broker was
//! down, a restart with another shard count, and recovered wills with their Message Expiry
//! Interval.

pub mod support;

use ringmq::persist::{Record, Replay};
use ringmq::protocol::{Packet, ProtocolVersion, PubResp, QoS};
use std::path::Path;
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A broker logging to `dir` with `shards` shards and `fsync`.
fn start(dir: &Path, shards: usize, fsync: &str) -> Broker {
    let toml = format!(
        "[persistence]\ndir = {:?}\nfsync = {fsync:?}\n",
        dir.display().to_string()
    );
    Broker::start_binary(&broker_binary(), shards, &toml)
        .unwrap_or_else(|e| panic!("ringmq did not start: {e}"))
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

/// Every record in the logs of `dir`, read with the broker's own decoder.
fn records(dir: &Path) -> Vec<Record> {
    let mut all = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return all;
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "log") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap_or_default();
        if let Ok(replay) = Replay::new(&bytes) {
            all.extend(replay.map_while(Result::ok).map(|(r, _)| r));
        }
    }
    all
}

/// Waits until the logs hold at least `n` records matching `wanted`.
fn wait_records(dir: &Path, what: &str, n: usize, wanted: impl Fn(&Record) -> bool) {
    eventually(what, || {
        let got = records(dir).iter().filter(|r| wanted(r)).count();
        if got >= n {
            Ok(())
        } else {
            Err(format!("{got} of {n}"))
        }
    });
}

fn persistent(addr: std::net::SocketAddr, version: ProtocolVersion, id: &str) -> (RawClient, bool) {
    let (client, connack) =
        RawClient::connect_with(addr, ConnectBuilder::new(version, id).persistent());
    (client, connack.session_present)
}

/// Publishes QoS `level` messages `payloads` on `topic`, each acknowledged (QoS 2: to PUBCOMP).
fn publish_acked(client: &mut RawClient, topic: &str, level: u8, payloads: &[&str]) {
    for (i, payload) in payloads.iter().enumerate() {
        let id = 100 + i as u16;
        client.send(
            &PublishBuilder::new(topic, payload.as_bytes())
                .qos(level, id)
                .packet(),
        );
        if level == 1 {
            client.expect_puback(id);
        } else {
            client.expect_pubrec(id);
            client.send(&Packet::PubRel(PubResp::new(pid(id))));
            client.expect_pubcomp(id);
        }
    }
}

/// Every PUBLISH that arrives until none comes for `QUIET`, each acknowledged as its QoS
/// asks (PUBREL answered with PUBCOMP wherever it comes between them).
fn receive_all(client: &mut RawClient) -> Vec<ringmq::protocol::Publish> {
    let mut got = Vec::new();
    loop {
        match client.recv(QUIET) {
            Recv::Packet(Packet::Publish(p)) => {
                if let Some(id) = p.packet_id {
                    let resp = PubResp::new(id);
                    match p.qos {
                        QoS::AtLeastOnce => client.send(&Packet::PubAck(resp)),
                        QoS::ExactlyOnce => client.send(&Packet::PubRec(resp)),
                        QoS::AtMostOnce => {}
                    }
                }
                got.push(p);
            }
            Recv::Packet(Packet::PubRel(r)) => {
                client.send(&Packet::PubComp(PubResp::new(r.packet_id)))
            }
            Recv::Packet(other) => panic!("unexpected {other:?}"),
            _ => return got,
        }
    }
}

#[test]
fn persistent_sessions_and_their_subscriptions_survive_kill_9_in_3_1_1_and_5_0() {
    let dir = tempdir();
    let mut broker = start(dir.path(), 2, "always");
    // 3.1.1 [MQTT-3.1.2-4]: with Clean Session 0 the session, its subscriptions included,
    // outlives the network connection.
    let (mut old, present) = persistent(broker.addr, V4, "keep-v4");
    assert!(!present);
    old.subscribe_ok(1, &[("sess/v4/#", 1)]);
    old.disconnect();
    // 5.0 3.1.2.11.2: a Session Expiry Interval above 0 keeps the session; the subscription
    // keeps its options and its Subscription Identifier [MQTT-3.8.4-3] [MQTT-3.3.4-3].
    let (mut new, _) = persistent(broker.addr, V5, "keep-v5");
    let mut options = sub_options(2);
    options.no_local = true;
    new.subscribe_with_ok(
        SubscribeBuilder::new(1)
            .filter_with("sess/v5/+", options)
            .identifier(42),
    );
    new.disconnect();
    wait_records(
        dir.path(),
        "the 5.0 session offline in the log",
        1,
        |r| matches!(r, Record::SessionState(s) if s.expires_at.is_some()),
    );
    broker.kill_and_reap();

    // Back with another shard count: each session is found at its new home.
    let broker = start(dir.path(), 3, "always");
    assert!(
        broker
            .wait_for_log(PROMPT, |l| l.contains("and 2 sessions"))
            .is_some(),
        "the recovery counts the sessions"
    );
    // Published before either client is back: their restored subscriptions take it.
    let mut publisher = RawClient::connect(broker.addr, V5, "keep-pub");
    publish_acked(&mut publisher, "sess/v4/a", 1, &["to v4"]);
    publish_acked(&mut publisher, "sess/v5/b", 2, &["to v5"]);

    let (mut old, present) = persistent(broker.addr, V4, "keep-v4");
    assert!(
        present,
        "[MQTT-3.2.2-2] Session Present 1 for the restored 3.1.1 session"
    );
    let got = old.expect_publish_acked();
    assert_eq!(
        (payload_str(&got), got.qos),
        ("to v4".into(), QoS::AtLeastOnce)
    );
    old.expect_nothing(QUIET);

    let (mut new, present) = persistent(broker.addr, V5, "keep-v5");
    assert!(present, "5.0 Session Present 1 for the restored session");
    let got = new.expect_publish_acked();
    assert_eq!(
        (payload_str(&got), got.qos),
        ("to v5".into(), QoS::ExactlyOnce)
    );
    assert_eq!(
        got.properties.subscription_identifiers,
        [42],
        "[MQTT-3.3.4-3]"
    );
    // No Local came back with it [MQTT-3.8.3-3]: its own message is not sent back.
    new.send(
        &PublishBuilder::new("sess/v5/own", b"mine")
            .qos(1, 7)
            .packet(),
    );
    new.expect_puback(7);
    new.expect_nothing(QUIET);
}

#[test]
fn queued_and_in_flight_qos_1_and_2_messages_are_back_after_kill_9_and_resent_with_dup() {
    let dir = tempdir();
    let mut broker = start(dir.path(), 2, "always");
    let (mut sub, _) = persistent(broker.addr, V4, "owed-sub");
    sub.subscribe_ok(1, &[("owed/#", 2)]);
    let mut publisher = RawClient::connect(broker.addr, V4, "owed-pub");
    // In flight: the subscriber receives these and acknowledges neither (QoS 2: not even
    // PUBREC), then its connection drops.
    publish_acked(&mut publisher, "owed/live", 1, &["inflight-1"]);
    publish_acked(&mut publisher, "owed/live", 2, &["inflight-2"]);
    let first = sub.expect_publish();
    let second = sub.expect_publish();
    sub.drop_connection();
    // Queued while it is offline.
    publish_acked(&mut publisher, "owed/q1", 1, &["queued-1a", "queued-1b"]);
    publish_acked(&mut publisher, "owed/q2", 2, &["queued-2"]);
    wait_records(
        dir.path(),
        "five messages in the log",
        5,
        |r| matches!(r, Record::OutQueued(m) if m.client_id == "owed-sub"),
    );
    broker.kill_and_reap();

    let broker = start(dir.path(), 1, "always");
    let (mut sub, present) = persistent(broker.addr, V4, "owed-sub");
    assert!(present);
    // [MQTT-4.4.0-1] unacknowledged PUBLISHes are resent with their original packet ids
    // and DUP 1 [MQTT-3.3.1-1], in order, then the queued ones [MQTT-4.6.0-2].
    let got = receive_all(&mut sub);
    let payloads: Vec<String> = got.iter().map(payload_str).collect();
    assert_eq!(
        payloads,
        [
            "inflight-1",
            "inflight-2",
            "queued-1a",
            "queued-1b",
            "queued-2"
        ]
    );
    for (again, before) in got.iter().zip([&first, &second]) {
        assert!(again.dup, "{}: DUP 1 on the resend", payload_str(again));
        assert_eq!(again.packet_id, before.packet_id, "the same packet id");
    }
    assert!(
        got[2..].iter().all(|p| !p.dup),
        "queued messages were never sent"
    );
    sub.expect_nothing(QUIET);
    drop(sub);

    // Everything acknowledged is retired in the log: another restart owes nothing.
    let mut broker = broker;
    eventually("the log retires what was acknowledged", || {
        let owed = records(dir.path())
            .iter()
            .filter(|r| matches!(r, Record::OutDone { .. }))
            .count();
        if owed >= 5 {
            Ok(())
        } else {
            Err(format!("{owed} retired"))
        }
    });
    broker.kill_and_reap();
    let broker = start(dir.path(), 1, "always");
    let (mut sub, present) = persistent(broker.addr, V4, "owed-sub");
    assert!(present);
    sub.expect_nothing(QUIET);
}

#[test]
fn an_inbound_qos_2_id_awaiting_pubrel_survives_kill_9_and_is_not_routed_twice() {
    let dir = tempdir();
    let mut broker = start(dir.path(), 1, "always");
    let (mut watcher, _) = persistent(broker.addr, V4, "qos2-watch");
    watcher.subscribe_ok(1, &[("in2/#", 2)]);
    watcher.disconnect();
    let (mut publisher, _) = persistent(broker.addr, V4, "qos2-pub");
    publisher.send(&PublishBuilder::new("in2/x", b"once").qos(2, 11).packet());
    publisher.expect_pubrec(11);
    wait_records(
        dir.path(),
        "the inbound QoS 2 id in the log",
        1,
        |r| matches!(r, Record::InQos2 { client_id, .. } if client_id == "qos2-pub"),
    );
    broker.kill_and_reap();

    let broker = start(dir.path(), 1, "always");
    let (mut publisher, present) = persistent(broker.addr, V4, "qos2-pub");
    assert!(present);
    // The publisher, not having seen PUBCOMP, resends the PUBLISH with DUP, then PUBREL:
    // method B of [MQTT-4.3.3-2] still knows the id, so the message is not routed again.
    publisher.send(
        &PublishBuilder::new("in2/x", b"once")
            .qos(2, 11)
            .dup()
            .packet(),
    );
    publisher.expect_pubrec(11);
    publisher.send(&Packet::PubRel(PubResp::new(pid(11))));
    publisher.expect_pubcomp(11);
    let (mut watcher, _) = persistent(broker.addr, V4, "qos2-watch");
    let got = watcher.expect_publish_acked();
    assert_eq!(payload_str(&got), "once");
    watcher.expect_nothing(QUIET);
}

#[test]
fn a_session_whose_expiry_passed_while_the_broker_was_down_is_ended() {
    let dir = tempdir();
    let mut broker = start(dir.path(), 1, "interval");
    let (mut short, _) = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, "expires")
            .clean(false)
            .session_expiry(1),
    );
    short.subscribe_ok(1, &[("exp/#", 1)]);
    short.disconnect();
    let (mut long, _) = persistent(broker.addr, V5, "stays");
    long.subscribe_ok(1, &[("exp/#", 1)]);
    long.disconnect();
    wait_records(
        dir.path(),
        "both sessions offline",
        2,
        |r| matches!(r, Record::SessionState(s) if s.expires_at.is_some()),
    );
    broker.kill_and_reap();
    // Down for longer than the 1 s Session Expiry Interval: the wall-clock expiry passed.
    std::thread::sleep(std::time::Duration::from_millis(1500));

    let broker = start(dir.path(), 1, "interval");
    let (_, connack) = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, "expires")
            .clean(false)
            .session_expiry(1),
    );
    assert!(
        !connack.session_present,
        "5.0 3.1.2.11.2: the expired session is gone (Session Present 0)"
    );
    let (_, present) = persistent(broker.addr, V5, "stays");
    assert!(present, "the unexpired session is back");
}

#[test]
fn compaction_keeps_the_log_bounded_through_a_persistent_session_and_keeps_what_it_owes() {
    let dir = tempdir();
    let toml = format!(
        "[persistence]\ndir = {:?}\nfsync = \"always\"\nmax_log_bytes = 32768\n",
        dir.path().display().to_string()
    );
    let mut broker = Broker::start_binary(&broker_binary(), 1, &toml).expect("ringmq starts");
    let (mut sub, _) = persistent(broker.addr, V5, "compact-sub");
    sub.subscribe_with_ok(
        SubscribeBuilder::new(1)
            .filter("compact/#", 1)
            .identifier(3),
    );
    let mut publisher = RawClient::connect(broker.addr, V5, "compact-pub");
    let payload = vec![b'c'; 200];
    // 2,000 messages through the session, each queued, sent and retired in the log:
    // about 1 MB of records, a few hundred bytes of live state. (`always`: each batch is
    // written as its loop turn ends, so the message is in the file before its PUBACK from
    // the subscriber comes; with `interval` or `never` most would be voided unwritten.)
    for i in 0..2_000u16 {
        let id = 1 + i % 1000;
        publisher.send(
            &PublishBuilder::new("compact/t", &payload)
                .qos(1, id)
                .packet(),
        );
        publisher.expect_puback(id);
        let got = sub.expect_publish();
        sub.ack(&got);
    }
    assert!(
        broker
            .wait_for_log(PROMPT, |l| l.contains("compacted from"))
            .is_some(),
        "compaction is logged"
    );
    sub.disconnect();
    // Then three owed messages while it is offline.
    publish_acked(&mut publisher, "compact/owed", 1, &["o1", "o2", "o3"]);
    wait_records(
        dir.path(),
        "the owed messages in the log",
        3,
        |r| matches!(r, Record::OutQueued(m) if m.client_id == "compact-sub" && m.message.message.topic.as_str() == "compact/owed"),
    );
    let size = std::fs::metadata(dir.path().join("shard-0.log")).map_or(0, |m| m.len());
    assert!(
        size <= 2 * 32768,
        "the log stays near its bound: {size} bytes"
    );
    broker.kill_and_reap();

    let broker = Broker::start_binary(&broker_binary(), 1, &toml).expect("ringmq restarts");
    let (mut sub, present) = persistent(broker.addr, V5, "compact-sub");
    assert!(present);
    let got = receive_all(&mut sub);
    let payloads: Vec<String> = got.iter().map(payload_str).collect();
    assert_eq!(payloads, ["o1", "o2", "o3"], "what it owes, once, in order");
    for p in &got {
        assert_eq!(
            p.properties.subscription_identifiers,
            [3],
            "a queued message keeps its Subscription Identifiers [MQTT-3.3.4-3]"
        );
    }
    // The subscription came back from the snapshot with its identifier [MQTT-3.3.4-3].
    let mut publisher = RawClient::connect(broker.addr, V5, "compact-pub");
    publish_acked(&mut publisher, "compact/after", 1, &["after"]);
    let after = sub.expect_publish_acked();
    assert_eq!(after.properties.subscription_identifiers, [3]);
}

/// A 5.0 persistent session of `id` with a QoS 1 will on `will_topic`: its Will Delay
/// Interval `delay` and Message Expiry Interval `expiry` (seconds).
fn with_will(id: &str, will_topic: &str, delay: u32, expiry: u32) -> ConnectBuilder {
    ConnectBuilder::new(V5, id)
        .persistent()
        .will(will_topic, id.as_bytes(), 1, false)
        .will_properties(|p| {
            p.will_delay_interval = Some(delay);
            p.message_expiry_interval = Some(expiry);
        })
}

#[test]
fn a_recovered_will_keeps_its_message_expiry_interval_less_the_time_the_broker_was_down() {
    let dir = tempdir();
    let mut broker = start(dir.path(), 2, "always");
    let (mut sub, _) = persistent(broker.addr, V5, "wexp-sub");
    sub.subscribe_ok(1, &[("wexp/#", 1)]);
    sub.disconnect();
    // Gone before the crash, its will due 2 s later, while the broker is down.
    let (gone, _) =
        RawClient::connect_with(broker.addr, with_will("wexp-gone", "wexp/gone", 2, 30));
    // Gone too; its will is due after 1 s and lives 1 s: expired before the restart.
    let (brief, _) =
        RawClient::connect_with(broker.addr, with_will("wexp-brief", "wexp/brief", 1, 1));
    // Connected when the broker dies: its will's delay (0) runs from the restart.
    let (_online, _) = RawClient::connect_with(broker.addr, with_will("wexp-on", "wexp/on", 0, 30));
    let dropped_at = std::time::Instant::now();
    gone.drop_connection();
    brief.drop_connection();
    wait_records(
        dir.path(),
        "both wills pending in the log",
        2,
        |r| matches!(r, Record::SessionState(s) if s.will.as_ref().is_some_and(|w| w.due.is_some())),
    );
    broker.kill_and_reap();
    // Down until 2.5 s after the first will was due.
    std::thread::sleep(std::time::Duration::from_millis(4500).saturating_sub(dropped_at.elapsed()));

    let broker = start(dir.path(), 2, "always");
    let (mut sub, present) = persistent(broker.addr, V5, "wexp-sub");
    assert!(present);
    let mut got: Vec<(String, Option<u32>)> = receive_all(&mut sub)
        .iter()
        .map(|p| (p.topic.to_string(), p.properties.message_expiry_interval))
        .collect();
    got.sort();
    let [(gone_topic, gone_left), (on_topic, on_left)] = &got[..] else {
        panic!("two wills, the expired one not among them [MQTT-3.3.2-5]: {got:?}");
    };
    assert_eq!(
        (gone_topic.as_str(), on_topic.as_str()),
        ("wexp/gone", "wexp/on")
    );
    // [MQTT-3.3.2-6]: the interval sent is what is left of it. The will was due 2 s after
    // its client went, about 2.5 s before the restart: the downtime past that counts.
    let gone_left = gone_left.unwrap_or_else(|| panic!("the will's Message Expiry Interval"));
    assert!((20..=28).contains(&gone_left), "{gone_left} s left of 30");
    // Published at the restart: all of it (rounded up).
    let on_left = on_left.unwrap_or_else(|| panic!("the will's Message Expiry Interval"));
    assert!((28..=30).contains(&on_left), "{on_left} s left of 30");
}
