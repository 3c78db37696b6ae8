//! Unit tests of `ShardState` without sockets: connections are outbound buffers read through
//! `writer_step`, peers are the other ends of a real mesh.

use super::*;
use crate::mesh;
use crate::protocol::{MqttString, PacketId, PubResp, Publish, Subscribe, Subscription};
use bytes::Bytes;

fn connect(version: ProtocolVersion, id: &str) -> Connect {
    Connect {
        version,
        clean_start: true,
        keep_alive: 0,
        client_id: MqttString::try_from(id).expect("valid id"),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

fn publish(topic: &str, qos: QoS, id: Option<u16>) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicName::try_from(topic).expect("valid topic"),
        packet_id: id.map(pid),
        properties: Properties::default(),
        payload: Bytes::from_static(b"0123456789"),
    })
}

fn subscribe(filter: &str, qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: pid(1),
        properties: Properties::default(),
        subscriptions: vec![Subscription {
            filter: TopicFilter::try_from(filter).expect("valid filter"),
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        }],
    })
}

/// Shard 0 of a two-shard mesh with rings of `ring` messages, and shard 1's ends.
fn two_shards(limits: Limits, ring: usize) -> (ShardState, MeshEnds<MeshMsg>) {
    let mut ends = mesh::build::<MeshMsg>(2, ring);
    let peer = ends.pop().expect("two ends");
    let me = ends.pop().expect("two ends");
    (ShardState::new(me, limits, Instant::now()), peer)
}

fn open(state: &mut ShardState, version: ProtocolVersion, id: &str) -> ConnId {
    let c = connect(version, id);
    let conn = state.open(&c, id.to_owned(), false, Instant::now());
    drain_packets(state, conn, version);
    conn
}

/// Everything written to the connection so far, decoded.
fn drain_packets(state: &mut ShardState, conn: ConnId, version: ProtocolVersion) -> Vec<Packet> {
    let mut buf = BytesMut::new();
    let _ = state.writer_step(conn, &mut buf, Waker::noop());
    let mut packets = Vec::new();
    while let Ok(Some(p)) = protocol::decode(&mut buf, version, usize::MAX >> 4) {
        packets.push(p);
    }
    packets
}

fn peer_messages(peer: &mut MeshEnds<MeshMsg>) -> Vec<MeshMsg> {
    let mut got = Vec::new();
    peer.drain(usize::MAX, |_, m| got.push(m));
    got
}

#[test]
fn full_peer_ring_overflows_in_order_pauses_reading_and_drops_nothing() {
    let limits = Limits {
        max_mesh_overflow: 3,
        ..Limits::default()
    };
    let (mut state, mut peer) = two_shards(limits, 2);
    let filter = TopicFilter::try_from("o/#").expect("valid");
    assert!(
        peer.try_send(0, MeshMsg::Interest { filter, add: true })
            .is_ok()
    );
    state.drain_mesh(16);
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    for i in 1..=6 {
        assert!(state.on_packet(
            publisher,
            publish(&format!("o/{i}"), QoS::AtLeastOnce, Some(i))
        ));
    }
    assert!(
        state.is_paused(),
        "4 messages wait over a bound of 3: stop reading"
    );
    let mut topics = Vec::new();
    while topics.len() < 6 {
        for msg in peer_messages(&mut peer) {
            match msg {
                MeshMsg::Publish(m) => topics.push(m.topic.as_str().to_owned()),
                other => panic!("unexpected {other:?}"),
            }
        }
        state.flush_overflow();
    }
    assert_eq!(topics, ["o/1", "o/2", "o/3", "o/4", "o/5", "o/6"]);
    assert!(!state.is_paused());
    assert!(!state.has_overflow());
}

#[test]
fn publish_goes_once_to_each_interested_peer_and_never_to_others() {
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    state.on_packet(publisher, publish("x/y", QoS::AtMostOnce, None));
    assert!(
        peer_messages(&mut peer).is_empty(),
        "no interest, nothing sent"
    );
    for f in ["x/+", "x/#"] {
        let filter = TopicFilter::try_from(f).expect("valid");
        assert!(
            peer.try_send(0, MeshMsg::Interest { filter, add: true })
                .is_ok()
        );
    }
    state.drain_mesh(16);
    state.on_packet(publisher, publish("x/y", QoS::AtMostOnce, None));
    assert_eq!(
        peer_messages(&mut peer).len(),
        1,
        "two matching filters, one message"
    );
}

#[test]
fn first_and_last_local_subscriber_announce_interest_to_peers() {
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    let a = open(&mut state, ProtocolVersion::V4, "a");
    let b = open(&mut state, ProtocolVersion::V4, "b");
    state.on_packet(a, subscribe("i/#", QoS::AtMostOnce));
    state.on_packet(b, subscribe("i/#", QoS::AtMostOnce));
    let added: Vec<_> = peer_messages(&mut peer);
    assert!(matches!(
        added.as_slice(),
        [MeshMsg::Interest { add: true, .. }]
    ));
    state.close(a, None, false);
    assert!(peer_messages(&mut peer).is_empty(), "b still subscribes");
    state.close(b, None, false);
    assert!(matches!(
        peer_messages(&mut peer).as_slice(),
        [MeshMsg::Interest { add: false, .. }]
    ));
}

#[test]
fn slow_subscriber_drops_qos0_queues_qos1_and_resumes_when_drained() {
    let limits = Limits {
        max_outbound_bytes: 40,
        ..Limits::default()
    };
    let (mut state, _peer) = two_shards(limits, 64);
    let sub = open(&mut state, ProtocolVersion::V4, "slow");
    state.on_packet(sub, subscribe("s/t", QoS::AtLeastOnce));
    drain_packets(&mut state, sub, ProtocolVersion::V4);
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    // Each PUBLISH to the subscriber is about 20 bytes: the third one crosses the cap.
    for _ in 0..3 {
        state.on_packet(publisher, publish("s/t", QoS::AtMostOnce, None));
    }
    state.on_packet(publisher, publish("s/t", QoS::AtMostOnce, None));
    state.on_packet(publisher, publish("s/t", QoS::AtLeastOnce, Some(7)));
    let stats = state.session_stats("slow").expect("session");
    assert_eq!(stats.dropped_qos0, 1, "QoS 0 over the cap is dropped");
    let first = drain_packets(&mut state, sub, ProtocolVersion::V4);
    assert_eq!(first.len(), 3);
    let released = drain_packets(&mut state, sub, ProtocolVersion::V4);
    match released.as_slice() {
        [Packet::Publish(p)] => assert_eq!(p.qos, QoS::AtLeastOnce),
        other => panic!("the queued QoS 1 message goes out once drained: {other:?}"),
    }
}

#[test]
fn takeover_at_home_closes_the_old_connection_with_0x8e() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    let old = open(&mut state, ProtocolVersion::V5, "same");
    let new = open(&mut state, ProtocolVersion::V5, "same");
    assert!(!state.is_live(old));
    assert!(state.is_live(new));
    let packets = drain_packets(&mut state, old, ProtocolVersion::V5);
    assert!(matches!(
        packets.as_slice(),
        [Packet::Disconnect(d)] if d.reason == ReasonCode::SessionTakenOver
    ));
}

#[test]
fn qos1_publish_is_acknowledged_and_delivered_to_a_local_subscriber() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    let sub = open(&mut state, ProtocolVersion::V5, "s");
    state.on_packet(sub, subscribe("l/t", QoS::AtLeastOnce));
    drain_packets(&mut state, sub, ProtocolVersion::V5);
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    state.on_packet(publisher, publish("l/t", QoS::AtLeastOnce, Some(4)));
    assert_eq!(
        drain_packets(&mut state, publisher, ProtocolVersion::V4),
        vec![Packet::PubAck(PubResp::new(pid(4)))]
    );
    match drain_packets(&mut state, sub, ProtocolVersion::V5).as_slice() {
        [Packet::Publish(p)] => {
            assert_eq!(p.topic.as_str(), "l/t");
            assert_eq!(p.qos, QoS::AtLeastOnce);
            assert!(p.packet_id.is_some());
        }
        other => panic!("expected one PUBLISH, got {other:?}"),
    }
}
