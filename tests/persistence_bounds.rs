//! The bounds of persistence (`[persistence]`, docs/persistence.md "Bounds") with the real
//! binary: a directory past `max_disk_bytes` counts as a full disk (QoS 1 refused with
//! 0x97, QoS 0 served) until compaction frees room; records pending while the log cannot
//! be written stop at `max_pending_bytes` and a snapshot holds their effect; a peer shard's
//! failing log refuses QoS 1 on every shard.

pub mod support;

use ringmq::protocol::{Packet, ProtocolVersion};
use std::path::Path;
use support::*;

/// 1 MiB, the smallest `max_disk_bytes`: with one shard its log is kept under 512 KiB.
const DISK: u64 = 1024 * 1024;

fn broker(dir: &Path, shards: usize, extra: &str) -> Broker {
    let toml = format!(
        // The writer writes every `fsync_interval_ms`: the refusals start at the first write
        // past the bound.
        "[persistence]\ndir = {:?}\nfsync = \"interval\"\nfsync_interval_ms = 1\n\
         max_disk_bytes = {DISK}\n{extra}",
        dir.display().to_string()
    );
    Broker::start_binary(&broker_binary(), shards, &toml)
        .unwrap_or_else(|e| panic!("ringmq did not start: {e}"))
}

/// The bytes of every file in `dir`.
fn disk_use(dir: &Path) -> u64 {
    (std::fs::read_dir(dir).into_iter().flatten())
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Publishes one small QoS 1 message on `topic` at a time until one is answered with PUBACK
/// `code` (`what` names the wait when it times out).
fn eventually_answered(publisher: &mut RawClient, topic: &str, code: u8, what: &str) {
    eventually(what, || {
        match publisher.publish_until_refused(topic, 10, 1).as_slice() {
            [got] if *got == code => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
}

/// A persistent 5.0 session `id` subscribed to `filter` at QoS 1, left offline.
fn offline_subscriber(broker: &Broker, id: &str, filter: &str) {
    let persistent = ConnectBuilder::new(ProtocolVersion::V5, id).persistent();
    let (mut client, _) = RawClient::connect_with(broker.addr, persistent);
    client.subscribe_ok(1, &[(filter, 1)]);
    client.disconnect();
}

/// Resumes session `id` and acknowledges everything it is sent; returns how many.
fn drain(broker: &Broker, id: &str) -> usize {
    let persistent = ConnectBuilder::new(ProtocolVersion::V5, id).persistent();
    let (mut client, _) = RawClient::connect_with(broker.addr, persistent);
    let mut n = 0;
    while let Recv::Packet(Packet::Publish(p)) = client.recv(QUIET) {
        client.ack(&p);
        n += 1;
    }
    client.disconnect();
    n
}

/// Fills the log with QoS 1 messages for the offline session `id` until the bound refuses
/// one with 0x97; returns how many were accepted.
fn fill_until_refused(broker: &Broker, id: &str) -> usize {
    offline_subscriber(broker, id, "full/#");
    let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V5, "filler");
    let codes = publisher.publish_until_refused("full/a", 8 * 1024, 4000);
    assert_eq!(
        codes.last(),
        Some(&0x97),
        "5.0 PUBACK 0x97 Quota exceeded past persistence.max_disk_bytes (section 3.4.2.1)"
    );
    publisher.disconnect();
    codes.len() - 1
}

#[test]
fn past_max_disk_bytes_qos_1_is_refused_with_0x97_qos_0_served_until_compaction_frees_room() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut broker = broker(dir.path(), 1, "");
    let accepted = fill_until_refused(&broker, "bound-sub");
    let mut zero = RawClient::connect(broker.addr, ProtocolVersion::V4, "bound-zero");
    zero.subscribe_ok(1, &[("zero/#", 0)]);
    let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V5, "bound-pub");
    publisher.publish("zero/x", b"still", 0, false);
    assert_eq!(
        payload_str(&zero.expect_publish()),
        "still",
        "QoS 0 is served"
    );
    assert_eq!(publisher.publish_until_refused("full/b", 10, 3), [0x97]);
    // Logging is asynchronous (a thread drains the shards' queue).
    let _ = broker.wait_for_log(PROMPT, |l| l.contains("cannot be written: refusing"));
    let lines = broker.log_lines();
    let failures = (lines.iter())
        .filter(|l| l.contains("cannot be written: refusing"))
        .count();
    assert_eq!(failures, 1, "the failure is logged once: {lines:#?}");
    assert!(disk_use(dir.path()) <= DISK, "{}", disk_use(dir.path()));

    // The subscriber takes its messages: the live state shrinks, and the next snapshot fits.
    assert_eq!(drain(&broker, "bound-sub"), accepted);
    assert!(
        broker
            .wait_for_log(PROMPT, |l| l.contains("is written again"))
            .is_some(),
        "compaction frees room"
    );
    assert_eq!(publisher.publish_until_refused("full/c", 10, 1), [0]);
    assert!(disk_use(dir.path()) <= DISK, "{}", disk_use(dir.path()));
    broker.kill_and_reap();
}

#[test]
fn records_pending_while_the_log_fails_stop_at_max_pending_bytes_and_the_snapshot_keeps_them() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let extra = "max_pending_bytes = 65536\n";
    let mut broker = broker(dir.path(), 1, extra);
    let accepted = fill_until_refused(&broker, "pending-sub");
    // While the log fails, retained QoS 0 messages keep coming: 200 KB of records.
    let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V4, "pending-pub");
    let payload = vec![b'r'; 1000];
    for i in 0..200 {
        publisher.publish(&format!("keep/{i}"), &payload, 0, true);
    }
    publisher.ping();
    assert!(
        broker
            .wait_for_log(PROMPT, |l| l.contains("over persistence.max_pending_bytes"))
            .is_some(),
        "the pending records pass the cap and are dropped"
    );
    assert_eq!(drain(&broker, "pending-sub"), accepted);
    assert!(
        broker
            .wait_for_log(PROMPT, |l| l.contains("is written again"))
            .is_some(),
        "the snapshot is written once there is room"
    );
    broker.kill_and_reap();

    // Every retained message is in the snapshot, the ones whose records were dropped too.
    let broker = self::broker(dir.path(), 1, extra);
    let mut sub = RawClient::connect(broker.addr, ProtocolVersion::V4, "pending-check");
    sub.subscribe_ok(1, &[("keep/#", 0)]);
    let mut got = 0;
    while let Recv::Packet(Packet::Publish(p)) = sub.recv(QUIET) {
        assert!(p.retain && p.payload.len() == 1000);
        got += 1;
    }
    assert_eq!(got, 200, "every retained message is back after kill -9");
    let recovered = broker
        .wait_for_log(PROMPT, |l| l.contains("bytes replayed in"))
        .unwrap_or_default();
    // Each log is kept under half its shard's share of max_disk_bytes: recovery reads at
    // most max_disk_bytes / 2.
    let replayed: u64 = (recovered.split(" bytes=").nth(1))
        .and_then(|rest| rest.split(' ').next()?.parse().ok())
        .unwrap_or(u64::MAX);
    assert!(replayed <= DISK / 2, "{recovered}");
}

/// A client id whose home is `shard` of `shards`.
fn id_homed_on(prefix: &str, shard: usize, shards: usize) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|id| ringmq::shard::home_shard(id.as_bytes(), shards) == shard)
        .unwrap_or_default()
}

#[test]
fn while_a_peer_shards_log_fails_the_publishers_shard_refuses_qos_1_too() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut broker = broker(dir.path(), 2, "");
    // The subscriber's session (and its log) on shard 1, the publisher's on shard 0.
    let sub = id_homed_on("peer-sub", 1, 2);
    offline_subscriber(&broker, &sub, "full/#");
    let publisher_id = id_homed_on("peer-pub", 0, 2);
    let mut publisher = RawClient::connect(broker.addr, ProtocolVersion::V5, &publisher_id);
    // 800 KB for shard 1's log, bounded at 256 KiB. Shard 0 acknowledges until it hears of
    // shard 1's failure (interval: the refusals start at shard 1's first write that fails,
    // a while on a busy machine), so some may be accepted after it.
    let _ = publisher.publish_until_refused("full/a", 8 * 1024, 100);
    assert!(
        broker
            .wait_for_log(PROMPT, |l| l.contains("shard-1.log cannot be written"))
            .is_some(),
        "shard 1's log passes its bound"
    );
    // Nobody subscribes to this topic: shard 0 refuses it because a peer's log fails.
    eventually_answered(
        &mut publisher,
        "other/x",
        0x97,
        "shard 0 to refuse QoS 1 while shard 1's log fails",
    );
    // The subscriber takes what shard 1 queued: its state shrinks, the snapshot fits.
    assert!(drain(&broker, &sub) > 0);
    assert!(
        broker
            .wait_for_log(PROMPT, |l| l.contains("is written again"))
            .is_some(),
        "compaction frees room on shard 1"
    );
    eventually_answered(
        &mut publisher,
        "other/y",
        0,
        "shard 0 to accept QoS 1 again",
    );
    broker.kill_and_reap();
}
