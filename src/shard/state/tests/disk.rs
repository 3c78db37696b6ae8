//! A log that cannot be written (`disk`): new QoS 1/2 PUBLISHes are refused (5.0: 0x97,
//! 3.1.1: disconnect), QoS 0 is served, and QoS 1/2 is taken again once writes succeed.
//! The write error is injected through the writer's own entry point, `set_log_failing`.

use super::*;
use crate::persist::{Record, Replay, WallTime};
use std::path::Path;

#[test]
fn while_the_log_fails_qos_1_and_2_are_refused_qos_0_is_served_and_then_it_recovers() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    state.enable_journal(clock(), WallTime(1_000), false);
    let sub = open(&mut state, ProtocolVersion::V4, "sub");
    state.on_packet(sub, subscribe("d/#", QoS::AtLeastOnce), clock());
    let _ = drain_packets(&mut state, sub, ProtocolVersion::V4);
    let v5 = open(&mut state, ProtocolVersion::V5, "pub5");
    let log = Path::new("shard-0.log");
    assert!(
        state.set_log_failing(true, log),
        "the change to failing is reported once"
    );
    assert!(!state.set_log_failing(true, log));

    state.on_packet(v5, publish("d/1", QoS::AtLeastOnce, Some(1)), clock());
    state.on_packet(v5, publish("d/2", QoS::ExactlyOnce, Some(2)), clock());
    state.on_packet(v5, publish("d/0", QoS::AtMostOnce, None), clock());
    let acks = drain_packets(&mut state, v5, ProtocolVersion::V5);
    match acks.as_slice() {
        [Packet::PubAck(a), Packet::PubRec(r)] => {
            // 5.0 section 3.4.2.1 / 3.5.2.1: 0x97 Quota exceeded refuses that message only.
            assert_eq!((a.packet_id, a.reason), (pid(1), ReasonCode::QuotaExceeded));
            assert_eq!((r.packet_id, r.reason), (pid(2), ReasonCode::QuotaExceeded));
        }
        other => panic!("PUBACK and PUBREC 0x97, got {other:?}"),
    }
    let delivered = drain_packets(&mut state, sub, ProtocolVersion::V4);
    match delivered.as_slice() {
        [Packet::Publish(p)] => assert_eq!((p.topic.as_str(), p.qos), ("d/0", QoS::AtMostOnce)),
        other => panic!("only the QoS 0 message, got {other:?}"),
    }
    assert!(state.is_live(v5), "a 5.0 client stays connected");

    // 3.1.1 has no negative PUBACK: the connection closes, the message unacknowledged.
    let v4 = open(&mut state, ProtocolVersion::V4, "pub4");
    assert!(!state.on_packet(v4, publish("d/3", QoS::AtLeastOnce, Some(3)), clock()));
    assert!(
        !drain_packets(&mut state, v4, ProtocolVersion::V4)
            .iter()
            .any(|p| matches!(p, Packet::PubAck(_)))
    );
    assert_eq!(state.counters().refused_log_failing, 3);

    assert!(!state.set_log_failing(false, log));
    state.on_packet(v5, publish("d/4", QoS::AtLeastOnce, Some(4)), clock());
    match drain_packets(&mut state, v5, ProtocolVersion::V5).as_slice() {
        [Packet::PubAck(a)] => assert_eq!((a.packet_id, a.reason), (pid(4), ReasonCode::Success)),
        other => panic!("accepted again, got {other:?}"),
    }
}

/// A retained QoS 0 PUBLISH of `topic`.
fn retained(topic: &str) -> Packet {
    match publish(topic, QoS::AtMostOnce, None) {
        Packet::Publish(mut p) => {
            p.retain = true;
            Packet::Publish(p)
        }
        other => other,
    }
}

#[test]
fn while_the_log_fails_pending_records_stop_at_the_cap_and_a_snapshot_holds_their_effect() {
    let (mut state, _peer) = two_shards(Limits::default(), 1024);
    state.enable_journal(clock(), WallTime(1_000), false);
    state.set_journal_cap(4096);
    assert!(state.set_log_failing(true, Path::new("shard-0.log")));
    let publisher = open(&mut state, ProtocolVersion::V4, "pub");
    // QoS 0 is still served while the log fails, and retained messages keep changing.
    for i in 0..400 {
        state.on_packet(publisher, retained(&format!("r/{i}")), clock());
    }
    assert!(
        state.journal_overflowed(),
        "400 retained records are over 4 KiB"
    );
    assert!(
        (state.journal.as_ref())
            .and_then(|j| j.sink.try_borrow().ok())
            .is_some_and(|s| s.is_empty()),
        "past the cap nothing is collected"
    );
    // The snapshot holds every retained message this shard owns, the dropped ones too.
    let mut snapshot = Vec::new();
    state.journal_snapshot(clock(), &mut snapshot);
    state.journal_snapshot_taken();
    assert!(!state.journal_overflowed(), "collecting again");
    let topics: Vec<String> = Replay::new(&snapshot)
        .unwrap_or_else(|v| panic!("version {v}"))
        .filter_map(|r| match r {
            Ok((Record::RetainedSet(m), _)) => Some(m.topic.to_string()),
            _ => None,
        })
        .collect();
    let owned = (0..400)
        .filter(|i| crate::shard::home_shard(format!("r/{i}").as_bytes(), 2) == 0)
        .count();
    assert_eq!(topics.len(), owned);
}

#[test]
fn while_a_peers_log_fails_qos_1_is_refused_here_too_and_a_change_here_is_told_to_the_peers() {
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    state.enable_journal(clock(), WallTime(1_000), false);
    let v5 = open(&mut state, ProtocolVersion::V5, "pub5");
    let tell = |peer: &mut MeshEnds<MeshMsg>, state: &mut ShardState, failing: bool| {
        assert!(peer.try_send(0, MeshMsg::DiskState { failing }).is_ok());
        peer.flush_wakes();
        state.drain_mesh(usize::MAX, clock(), &mut Vec::new());
    };
    tell(&mut peer, &mut state, true);
    // Said twice: still one failing peer.
    tell(&mut peer, &mut state, true);
    state.on_packet(v5, publish("d/1", QoS::AtLeastOnce, Some(1)), clock());
    match drain_packets(&mut state, v5, ProtocolVersion::V5).as_slice() {
        [Packet::PubAck(a)] => assert_eq!(a.reason, ReasonCode::QuotaExceeded),
        other => panic!("PUBACK 0x97, got {other:?}"),
    }
    tell(&mut peer, &mut state, false);
    state.on_packet(v5, publish("d/2", QoS::AtLeastOnce, Some(2)), clock());
    match drain_packets(&mut state, v5, ProtocolVersion::V5).as_slice() {
        [Packet::PubAck(a)] => assert_eq!(a.reason, ReasonCode::Success),
        other => panic!("accepted again, got {other:?}"),
    }

    // This shard's own changes reach the peer.
    let _ = peer_messages(&mut peer);
    assert!(state.set_log_failing(true, Path::new("shard-0.log")));
    assert!(!state.set_log_failing(false, Path::new("shard-0.log")));
    let told: Vec<bool> = peer_messages(&mut peer)
        .into_iter()
        .filter_map(|m| match m {
            MeshMsg::DiskState { failing } => Some(failing),
            _ => None,
        })
        .collect();
    assert_eq!(told, [true, false]);
}
