//! Persistence of retained messages (`[persistence]`, docs/persistence.md) with the real
//! binary: set and cleared, the broker killed with SIGKILL and restarted; torn and corrupt
//! log tails; a restart with another shard count; compaction.

pub mod support;

use ringmq::persist::{Record, Replay};
use ringmq::protocol::{Packet, ProtocolVersion, QoS};
use rumqttc::v5::mqttbytes::v5 as mqtt5;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::*;

/// A broker logging to `dir` with `shards` shards, `fsync = "always"` and `extra` config.
fn start(dir: &Path, shards: usize, extra: &str) -> Broker {
    let toml = format!(
        "[persistence]\ndir = {}\nfsync = \"always\"\n{extra}",
        toml_string(dir)
    );
    Broker::start_binary(&broker_binary(), shards, &toml)
        .unwrap_or_else(|e| panic!("ringmq did not start: {e}"))
}

fn toml_string(path: &Path) -> String {
    format!("{:?}", path.display().to_string())
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary directory")
}

fn logs(dir: &Path) -> Vec<PathBuf> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "log"))
                .collect()
        })
        .unwrap_or_default();
    logs.sort();
    logs
}

/// The retained set the logs in `dir` hold (topic -> payload), read with the broker's own
/// decoder; a torn tail ends a log.
fn logged(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut state = BTreeMap::new();
    for path in logs(dir) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let Ok(replay) = Replay::new(&bytes) else {
            continue;
        };
        for (record, _) in replay.map_while(Result::ok) {
            match record {
                Record::RetainedSet(m) => {
                    state.insert(m.topic.to_string(), m.payload.to_vec());
                }
                Record::RetainedClear(t) => {
                    state.remove(&t.to_string());
                }
                _ => {}
            }
        }
    }
    state
}

/// For each topic, the logs that hold records of it.
fn logs_of_topics(dir: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut logs_of: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for path in logs(dir) {
        let bytes = std::fs::read(&path).unwrap_or_default();
        let Ok(replay) = Replay::new(&bytes) else {
            continue;
        };
        for (record, _) in replay.map_while(Result::ok) {
            let topic = match record {
                Record::RetainedSet(m) => m.topic.to_string(),
                Record::RetainedClear(t) => t.to_string(),
                _ => continue,
            };
            let files = logs_of.entry(topic).or_default();
            if !files.contains(&path) {
                files.push(path.clone());
            }
        }
    }
    logs_of
}

/// Waits until the logs hold `expected` (the broker writes them after the PUBACK).
fn wait_logged(dir: &Path, expected: &BTreeMap<String, Vec<u8>>) {
    eventually("the logs to hold the retained set", || {
        let got = logged(dir);
        if &got == expected {
            Ok(())
        } else {
            Err(format!("{got:?}"))
        }
    });
}

/// What a new 5.0 subscriber to `filter` receives: every PUBLISH until none comes for
/// QUIET, by topic.
fn retained_on_subscribe(broker: &Broker, filter: &str) -> BTreeMap<String, mqtt5::Publish> {
    let client_id = format!("persist-sub-{}", unique_suffix());
    let mut sub = Rumqtt5::connect(broker.addr, &client_id);
    sub.client
        .subscribe(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce)
        .expect("subscribe");
    sub.wait_for_incoming(|p| matches!(p, mqtt5::Packet::SubAck(_)), "SUBACK");
    let mut got = BTreeMap::new();
    while let Ok(event) = sub.events.recv_timeout(QUIET) {
        if let rumqttc::v5::Event::Incoming(mqtt5::Packet::Publish(p)) = event {
            let topic = String::from_utf8_lossy(&p.topic).into_owned();
            assert!(
                got.insert(topic, p).is_none(),
                "a retained message came twice"
            );
        }
    }
    got
}

fn payloads(got: &BTreeMap<String, mqtt5::Publish>) -> BTreeMap<String, Vec<u8>> {
    got.iter()
        .map(|(t, p)| (t.clone(), p.payload.to_vec()))
        .collect()
}

/// Publishes a retained QoS 1 message from a 5.0 client, with a Content Type and a User
/// Property, waiting for its PUBACK.
fn publish_retained(client: &mut RawClient, topic: &str, payload: &[u8], expiry: Option<u32>) {
    let id = 1 + (unique_suffix() % 60_000) as u16;
    let publish = PublishBuilder::new(topic, payload)
        .qos(1, id)
        .retain()
        .properties(|p| {
            p.content_type = Some(mqtt_string("text/plain"));
            p.user_properties = vec![(mqtt_string("origin"), mqtt_string(topic))];
            p.message_expiry_interval = expiry;
        })
        .packet();
    client.send(&publish);
    client.expect_puback(id);
}

fn expected(pairs: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
    pairs
        .iter()
        .map(|(t, p)| (t.to_string(), p.as_bytes().to_vec()))
        .collect()
}

#[test]
fn retained_messages_set_and_cleared_are_back_exactly_after_kill_9() {
    let dir = tempdir();
    let mut broker = start(dir.path(), SHARDS, "");
    let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V5, "persist-pub");
    for i in 0..8 {
        publish_retained(&mut publisher, &format!("keep/{i}"), b"first", None);
    }
    publish_retained(&mut publisher, "keep/3", b"replaced", None);
    // [MQTT-3.3.1-10] an empty retained payload deletes the topic's message.
    publish_retained(&mut publisher, "keep/5", b"", None);
    publish_retained(&mut publisher, "keep/6", b"", None);
    publisher.publish("keep/plain", b"3.1.1 style", 0, true);
    let want = expected(&[
        ("keep/0", "first"),
        ("keep/1", "first"),
        ("keep/2", "first"),
        ("keep/3", "replaced"),
        ("keep/4", "first"),
        ("keep/7", "first"),
        ("keep/plain", "3.1.1 style"),
    ]);
    wait_logged(dir.path(), &want);
    for (topic, files) in logs_of_topics(dir.path()) {
        assert_eq!(
            files.len(),
            1,
            "{topic} is logged by its owner only: {files:?}"
        );
    }
    broker.kill_and_reap();

    let broker = start(dir.path(), SHARDS, "");
    assert!(
        broker
            .wait_for_log(PROMPT, |l| l.contains("recovered 7 retained messages"))
            .is_some(),
        "the recovery is logged"
    );
    let got = retained_on_subscribe(&broker, "keep/#");
    assert_eq!(payloads(&got), want, "the retained set is back exactly");
    for (topic, p) in &got {
        assert!(p.retain, "{topic}: [MQTT-3.3.1-8] sent with RETAIN 1");
        if topic == "keep/plain" {
            continue;
        }
        let props = p.properties.clone().unwrap_or_default();
        assert_eq!(props.content_type.as_deref(), Some("text/plain"), "{topic}");
        assert_eq!(
            props.user_properties,
            vec![("origin".to_string(), topic.clone())],
            "{topic}: User Properties kept in order [MQTT-3.3.2-18]"
        );
    }
}

#[test]
fn message_expiry_counts_the_time_the_broker_was_down() {
    let dir = tempdir();
    let mut broker = start(dir.path(), 1, "");
    let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V5, "expiry-pub");
    publish_retained(&mut publisher, "exp/short", b"gone", Some(1));
    publish_retained(&mut publisher, "exp/long", b"kept", Some(3600));
    wait_logged(
        dir.path(),
        &expected(&[("exp/short", "gone"), ("exp/long", "kept")]),
    );
    broker.kill_and_reap();
    // Down for longer than the short message's Message Expiry Interval [MQTT-3.3.2-5].
    std::thread::sleep(Duration::from_millis(1500));

    let broker = start(dir.path(), 1, "");
    let got = retained_on_subscribe(&broker, "exp/#");
    assert_eq!(payloads(&got), expected(&[("exp/long", "kept")]));
    let interval = got["exp/long"]
        .properties
        .as_ref()
        .and_then(|p| p.message_expiry_interval);
    // [MQTT-3.3.2-6] the interval sent is what is left of it.
    assert!(
        interval.is_some_and(|s| (3590..3600).contains(&s)),
        "{interval:?}"
    );
}

/// A 1-shard log holding three retained messages, and where each record ends.
fn pristine_log(dir: &Path) -> (Vec<u8>, Vec<usize>) {
    let mut broker = start(dir, 1, "");
    let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V5, "torn-pub");
    for (topic, payload) in [("torn/a", "one"), ("torn/b", "two"), ("torn/c", "three")] {
        publish_retained(&mut publisher, topic, payload.as_bytes(), None);
    }
    let all = expected(&[("torn/a", "one"), ("torn/b", "two"), ("torn/c", "three")]);
    wait_logged(dir, &all);
    broker.kill_and_reap();
    let bytes = std::fs::read(dir.join("shard-0.log")).expect("shard-0.log");
    let ends: Vec<usize> = Replay::new(&bytes)
        .expect("format")
        .map_while(Result::ok)
        .map(|(_, end)| end)
        .collect();
    assert_eq!(ends.len(), 3);
    assert_eq!(ends[2], bytes.len());
    (bytes, ends)
}

#[test]
fn a_torn_or_corrupt_tail_is_truncated_logged_and_the_broker_serves() {
    let dir = tempdir();
    let (bytes, ends) = pristine_log(dir.path());
    let last = ends[1];
    let two = expected(&[("torn/a", "one"), ("torn/b", "two")]);
    let mut cases: Vec<(String, Vec<u8>, usize)> = Vec::new();
    for cut in [last + 1, last + 5, last + 9, bytes.len() - 1] {
        cases.push((format!("cut at {cut}"), bytes[..cut].to_vec(), last));
    }
    // A flipped byte in the last record's length, CRC and body.
    for at in [last, last + 5, last + 12, bytes.len() - 1] {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0xA5;
        cases.push((format!("flip at {at}"), flipped, last));
    }
    // Torn inside the header: nothing is left, and the broker still starts.
    cases.push(("cut at 3".into(), bytes[..3].to_vec(), 0));
    let log = dir.path().join("shard-0.log");
    for (case, content, good_end) in cases {
        std::fs::write(&log, &content).expect("write the damaged log");
        let mut broker = start(dir.path(), 1, "");
        let line = broker.wait_for_log(PROMPT, |l| l.contains("truncated to the last good record"));
        let line = line.unwrap_or_else(|| panic!("{case}: no truncation logged"));
        assert!(
            line.contains(&format!("at offset {good_end}")),
            "{case}: {line}"
        );
        let want = if good_end == 0 {
            BTreeMap::new()
        } else {
            two.clone()
        };
        assert_eq!(
            payloads(&retained_on_subscribe(&broker, "torn/#")),
            want,
            "{case}"
        );
        // It serves: a new retained message is taken and logged after the cut.
        let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V5, "torn-again");
        publish_retained(&mut publisher, "torn/d", b"four", None);
        let mut after = want.clone();
        after.insert("torn/d".into(), b"four".to_vec());
        wait_logged(dir.path(), &after);
        broker.assert_alive();
        broker.kill_and_reap();
    }
}

#[test]
fn a_restart_with_another_shard_count_recovers_every_retained_message() {
    let dir = tempdir();
    let mut broker = start(dir.path(), 2, "");
    let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V5, "shards-pub");
    let mut want = BTreeMap::new();
    for i in 0..24 {
        let topic = format!("count/{i}");
        publish_retained(&mut publisher, &topic, topic.as_bytes(), None);
        want.insert(topic.clone(), topic.into_bytes());
    }
    wait_logged(dir.path(), &want);
    assert_eq!(
        logs(dir.path()).len(),
        2,
        "each retained message logged by one shard"
    );
    broker.kill_and_reap();

    for shards in [3, 1, 2] {
        let mut broker = start(dir.path(), shards, "");
        assert_eq!(
            payloads(&retained_on_subscribe(&broker, "count/#")),
            want,
            "{shards} shards"
        );
        assert_eq!(
            logs(dir.path()).len(),
            shards,
            "{shards} shards: one log each"
        );
        // A message set now is kept too, through the next change of shard count.
        let topic = format!("count/after-{shards}");
        let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V5, "shards-more");
        publish_retained(&mut publisher, &topic, b"x", None);
        want.insert(topic, b"x".to_vec());
        wait_logged(dir.path(), &want);
        broker.kill_and_reap();
    }
}

#[test]
fn the_log_is_compacted_past_max_log_bytes_and_keeps_the_live_set() {
    let dir = tempdir();
    let mut broker = start(dir.path(), 1, "max_log_bytes = 4096\n");
    let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V5, "compact-pub");
    let payload = [b'x'; 200];
    let started = Instant::now();
    for i in 0..300 {
        // Three topics, rewritten over and over: 60 KB of records, 1 KB of live state.
        let mut p = payload;
        p[0] = b'0' + (i % 10) as u8;
        publish_retained(&mut publisher, &format!("compact/{}", i % 3), &p, None);
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(
        broker
            .wait_for_log(PROMPT, |l| l.contains("compacted from"))
            .is_some(),
        "compaction is logged"
    );
    let mut want = BTreeMap::new();
    for (i, topic) in [(297, "compact/0"), (298, "compact/1"), (299, "compact/2")] {
        let mut p = payload;
        p[0] = b'0' + (i % 10) as u8;
        want.insert(topic.to_string(), p.to_vec());
    }
    wait_logged(dir.path(), &want);
    let size = std::fs::metadata(dir.path().join("shard-0.log")).map_or(0, |m| m.len());
    assert!(
        size <= 4096 + 1024,
        "the log stays near its bound: {size} bytes"
    );
    broker.kill_and_reap();
    let broker = start(dir.path(), 1, "");
    assert_eq!(payloads(&retained_on_subscribe(&broker, "compact/#")), want);
}

#[test]
fn without_a_directory_nothing_is_written_and_a_locked_directory_is_refused() {
    // The default config persists nothing (no directory needed to run).
    let broker = Broker::start();
    let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V4, "nopersist");
    publisher.publish("none/a", b"x", 1, true);
    assert!(
        broker
            .log_lines()
            .iter()
            .all(|l| !l.contains("persistence")),
        "nothing about persistence is logged when it is off"
    );
    // A second broker on the same directory is refused before it listens.
    let dir = tempdir();
    let _first = start(dir.path(), 1, "");
    let toml = format!("[persistence]\ndir = {}\n", toml_string(dir.path()));
    let refused = Broker::start_binary(&broker_binary(), 1, &toml);
    assert!(
        refused.is_err(),
        "a second broker on one directory must not start"
    );
}

/// What the crash test's publisher saw acknowledged before the broker died.
#[derive(Debug, Default)]
struct Acked {
    qos1: Vec<String>,
    qos2: Vec<String>,
}

/// Publishes `crash/{i}` messages, QoS 1 and 2 in turn, one at a time, until the connection
/// dies or `limit` are acknowledged; counts acknowledgements in `count` as they come. A QoS 2
/// message counts from its PUBREC (the broker owns it then, method B of [MQTT-4.3.3-2]).
fn publish_until_killed(
    mut client: RawClient,
    limit: usize,
    count: &std::sync::atomic::AtomicUsize,
) -> Acked {
    use ringmq::protocol::PubResp;
    let mut acked = Acked::default();
    for i in 0..limit {
        let level = 1 + (i % 2) as u8;
        let id = 1 + (i % 60_000) as u16;
        let payload = format!("m{i}");
        let publish = PublishBuilder::new("crash/stream", payload.as_bytes()).qos(level, id);
        if client
            .try_send_bytes(&encode_bytes(&publish.packet(), ProtocolVersion::V4))
            .is_err()
        {
            return acked;
        }
        match client.recv(PROMPT) {
            Recv::Packet(Packet::PubAck(r)) if level == 1 && r.packet_id.get() == id => {
                acked.qos1.push(payload)
            }
            Recv::Packet(Packet::PubRec(r)) if level == 2 && r.packet_id.get() == id => {
                acked.qos2.push(payload);
                let pubrel = Packet::PubRel(PubResp::new(r.packet_id));
                let sent = client.try_send_bytes(&encode_bytes(&pubrel, ProtocolVersion::V4));
                if sent.is_err() || !matches!(client.recv(PROMPT), Recv::Packet(Packet::PubComp(_)))
                {
                    return acked;
                }
            }
            _ => return acked,
        }
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
    acked
}

/// The crash test of issue 12, MQTT 3.1.1 clients: with `fsync = "always"` a PUBACK / PUBREC
/// means the message is in the log, so `kill -9` mid-stream loses none of them. The
/// persistent subscriber is offline the whole time: [MQTT-3.1.2-4] its session with its
/// subscription, and the QoS 1/2 messages queued for it [MQTT-3.1.2-5], outlive the broker.
/// QoS 1 may arrive twice [MQTT-4.3.2], QoS 2 exactly once [MQTT-4.3.3].
#[test]
fn every_acknowledged_qos_1_and_2_message_reaches_the_offline_subscriber_after_kill_9() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let dir = tempdir();
    let mut broker = start(dir.path(), SHARDS, "");
    let persistent = |id: &str| ConnectBuilder::new(ProtocolVersion::V4, id).persistent();
    let (mut sub, _) = RawClient::connect_with(broker.addr, persistent("crash-sub"));
    sub.subscribe_ok(1, &[("crash/#", 2)]);
    sub.disconnect();
    let mut retainer = RawClient::connect(broker.addr, ProtocolVersion::V5, "crash-retain");
    publish_retained(&mut retainer, "crash/retained", b"kept", None);

    let publisher = RawClient::connect(broker.addr, ProtocolVersion::V4, "crash-pub");
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = count.clone();
    // Below the offline queue's bound (max_queued_messages, 1000) whatever the timing.
    let stream = std::thread::spawn(move || publish_until_killed(publisher, 900, &counted));
    eventually(
        "the publisher to have 200 messages acknowledged",
        || match count.load(Ordering::Relaxed) {
            n if n >= 200 => Ok(()),
            n => Err(format!("{n}")),
        },
    );
    // Mid-stream: the publisher is waiting for an acknowledgement or about to send.
    broker.kill_and_reap();
    let acked = stream.join().expect("the publisher thread");
    assert!(
        acked.qos1.len() + acked.qos2.len() < 900,
        "killed before the stream ended"
    );

    let broker = start(dir.path(), SHARDS, "");
    // The subscription is back: a message published after the restart reaches the session.
    let mut after = RawClient::connect(broker.addr, ProtocolVersion::V4, "crash-after");
    after.send(
        &PublishBuilder::new("crash/after", b"after")
            .qos(1, 1)
            .packet(),
    );
    after.expect_puback(1);
    let (mut sub, connack) = RawClient::connect_with(broker.addr, persistent("crash-sub"));
    assert!(
        connack.session_present,
        "[MQTT-3.2.2-2] the session is back"
    );
    let mut got: BTreeMap<String, (QoS, usize)> = BTreeMap::new();
    loop {
        match sub.recv(QUIET * 3) {
            Recv::Packet(Packet::Publish(p)) => {
                // Acknowledged as the QoS asks; PUBREL may come between later PUBLISHes.
                if let Some(id) = p.packet_id {
                    let resp = ringmq::protocol::PubResp::new(id);
                    sub.send(&match p.qos {
                        QoS::ExactlyOnce => Packet::PubRec(resp),
                        _ => Packet::PubAck(resp),
                    });
                }
                let entry = got.entry(payload_str(&p)).or_insert((p.qos, 0));
                entry.1 += 1;
            }
            Recv::Packet(Packet::PubRel(r)) => sub.send(&Packet::PubComp(
                ringmq::protocol::PubResp::new(r.packet_id),
            )),
            Recv::Packet(other) => panic!("unexpected {other:?}"),
            _ => break,
        }
    }
    for payload in &acked.qos1 {
        assert!(
            got.contains_key(payload),
            "acknowledged QoS 1 {payload} lost"
        );
    }
    for payload in &acked.qos2 {
        assert_eq!(
            got.get(payload),
            Some(&(QoS::ExactlyOnce, 1)),
            "acknowledged QoS 2 {payload}: exactly once"
        );
    }
    for (payload, (qos, n)) in &got {
        assert!(
            *qos == QoS::AtLeastOnce || *n == 1,
            "{payload} came {n} times at QoS 2"
        );
    }
    assert!(
        got.contains_key("after"),
        "the restored subscription takes new messages"
    );
    assert_eq!(
        payloads(&retained_on_subscribe(&broker, "crash/retained")),
        expected(&[("crash/retained", "kept")]),
        "the retained message is back"
    );
}

/// A tmpfs of `size` mounted for one test, unmounted when dropped. `None` where the test
/// cannot mount one (not root, no tmpfs): the test then says so and checks nothing, and the
/// refusal logic is covered by `src/shard/state/tests/disk.rs` with an injected error.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempdir();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).ok()?;
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Self { path, _dir: dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // A broker killed a moment ago may hold its files until its io_uring instances are
        // torn down: retry, then detach the mount lazily so nothing is left mounted.
        for _ in 0..20 {
            let unmounted = std::process::Command::new("umount")
                .arg(&self.path)
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if unmounted {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

#[test]
fn a_full_disk_refuses_qos_1_with_0x97_serves_qos_0_logs_once_and_recovers() {
    let Some(disk) = SmallDisk::mount("2m") else {
        eprintln!("cannot mount a tmpfs here: the disk-full test checks nothing");
        return;
    };
    // Ballast leaves the log about 400 KB; deleting it later is the disk freed.
    let ballast = disk.path.join("ballast");
    std::fs::write(&ballast, vec![0u8; 1_600 * 1024]).expect("ballast");
    let data = disk.path.join("data");
    let toml = format!(
        // The writer writes every `fsync_interval_ms`: the refusals start at the first write
        // that fails, so what is accepted meanwhile (and then is in the snapshot that must
        // fit the disk again) is about one interval's messages.
        "[persistence]\ndir = {}\nfsync = \"interval\"\nfsync_interval_ms = 1\n",
        toml_string(&data)
    );
    let mut broker = Broker::start_binary(&broker_binary(), 1, &toml).expect("ringmq starts");
    let persistent = ConnectBuilder::new(ProtocolVersion::V5, "full-sub").persistent();
    let (mut offline, _) = RawClient::connect_with(broker.addr, persistent);
    offline.subscribe_ok(1, &[("full/#", 1)]);
    offline.disconnect();
    let mut zero = RawClient::connect(broker.addr, ProtocolVersion::V4, "full-zero");
    zero.subscribe_ok(1, &[("zero/#", 0)]);
    let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V5, "full-pub");

    // Each message is queued for the offline session and logged: the disk fills.
    let codes = publisher.publish_until_refused("full/a", 8 * 1024, 400);
    assert_eq!(
        codes.last(),
        Some(&0x97),
        "5.0 PUBACK 0x97 Quota exceeded once the log cannot be written (section 3.4.2.1)"
    );
    // QoS 0 is still served.
    publisher.publish("zero/x", b"still", 0, false);
    assert_eq!(payload_str(&zero.expect_publish()), "still");
    let refused = publisher.publish_until_refused("full/b", 10, 3);
    assert_eq!(refused, [0x97], "still refused while the disk is full");
    let failures = broker
        .log_lines()
        .iter()
        .filter(|l| l.contains("cannot be written: refusing"))
        .count();
    assert_eq!(failures, 1, "the failure is logged once");

    std::fs::remove_file(&ballast).expect("free the disk");
    assert!(
        broker
            .wait_for_log(PROMPT, |l| l.contains("is written again"))
            .is_some(),
        "the writer recovers once the disk has room"
    );
    assert_eq!(publisher.publish_until_refused("full/c", 10, 1), [0]);
    broker.kill_and_reap();
}
