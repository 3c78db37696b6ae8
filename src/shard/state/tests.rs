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

/// What the peer received, without the SUBACK barriers (see `subscribe_waits_for_barrier`).
fn peer_messages(peer: &mut MeshEnds<MeshMsg>) -> Vec<MeshMsg> {
    let mut got = Vec::new();
    peer.drain(usize::MAX, |_, m| {
        if !matches!(m, MeshMsg::Barrier { .. }) {
            got.push(m)
        }
    });
    got
}

#[test]
fn suback_waits_until_every_peer_has_applied_the_interest() {
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    let sub = open(&mut state, ProtocolVersion::V4, "sub");
    state.on_packet(sub, subscribe("b/#", QoS::AtLeastOnce));
    assert!(
        drain_packets(&mut state, sub, ProtocolVersion::V4).is_empty(),
        "no SUBACK before the peer has seen the interest"
    );
    let mut sent = Vec::new();
    peer.drain(usize::MAX, |_, m| sent.push(m));
    let token = match sent.as_slice() {
        [
            MeshMsg::Interest { add: true, .. },
            MeshMsg::Barrier { token },
        ] => *token,
        other => panic!("interest then barrier, in ring order: {other:?}"),
    };
    assert!(peer.try_send(0, MeshMsg::BarrierAck { token }).is_ok());
    peer.flush_wakes();
    state.drain_mesh(usize::MAX);
    let packets = drain_packets(&mut state, sub, ProtocolVersion::V4);
    assert!(
        matches!(packets.as_slice(), [Packet::SubAck(_)]),
        "{packets:?}"
    );
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
    assert_eq!(state.counters().dropped_qos0, 1, "and counted by the shard");
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

#[test]
fn shared_group_alternates_between_member_shards_and_tracks_membership() {
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    let filter = TopicFilter::try_from("$share/g/w/+").expect("valid");
    let member = open(&mut state, ProtocolVersion::V5, "m");
    state.on_packet(member, subscribe("$share/g/w/+", QoS::AtMostOnce));
    drain_packets(&mut state, member, ProtocolVersion::V5);
    assert!(matches!(
        peer_messages(&mut peer).as_slice(),
        [MeshMsg::ShareInterest {
            members: 1,
            online: 1,
            ..
        }]
    ));
    let remote = MeshMsg::ShareInterest {
        filter: filter.clone(),
        members: 1,
        online: 1,
    };
    assert!(peer.try_send(0, remote).is_ok());
    state.drain_mesh(16);

    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    for _ in 0..4 {
        state.on_packet(publisher, publish("w/1", QoS::AtMostOnce, None));
    }
    let local = drain_packets(&mut state, member, ProtocolVersion::V5).len();
    let forwarded = peer_messages(&mut peer)
        .iter()
        .filter(|m| matches!(m, MeshMsg::SharedPublish { .. }))
        .count();
    assert_eq!(
        (local, forwarded),
        (2, 2),
        "round robin over the two member shards"
    );

    state.close(member, None, false);
    assert!(matches!(
        peer_messages(&mut peer).as_slice(),
        [MeshMsg::ShareInterest { members: 0, .. }]
    ));
    state.on_packet(publisher, publish("w/1", QoS::AtMostOnce, None));
    assert_eq!(
        peer_messages(&mut peer).len(),
        1,
        "only the peer has members now"
    );
}

mod random_traffic {
    //! Random packet sequences from several clients never panic the shard, and everything it
    //! writes decodes.

    use super::*;
    use crate::protocol::{Disconnect, Unsubscribe};
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Open(usize, bool),
        Packet(usize, u8, u16, u8),
        Drain(usize),
        Lost(usize),
        Peer(u8),
        Tick(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4usize, any::<bool>()).prop_map(|(c, v5)| Op::Open(c, v5)),
            (0..4usize, 0..10u8, 1..6u16, 0..3u8).prop_map(|(c, k, id, q)| Op::Packet(c, k, id, q)),
            (0..4usize).prop_map(Op::Drain),
            (0..4usize).prop_map(Op::Lost),
            (0..4u8).prop_map(Op::Peer),
            (0..5000u64).prop_map(Op::Tick),
        ]
    }

    const TOPICS: [&str; 3] = ["a/b", "a/c", "x"];
    const FILTERS: [&str; 4] = ["a/+", "#", "$share/g/a/#", "x"];

    fn packet(kind: u8, id: u16, q: u8) -> Packet {
        let qos = QoS::from_bits(q).unwrap_or_default();
        let pid = PacketId::new(id).unwrap_or(PacketId(std::num::NonZeroU16::MIN));
        let name = TOPICS[usize::from(id) % TOPICS.len()];
        let filter = FILTERS[usize::from(id) % FILTERS.len()];
        match kind {
            0 | 1 => {
                let mut p = publish(name, qos, (qos != QoS::AtMostOnce).then_some(id));
                if let Packet::Publish(p) = &mut p {
                    p.retain = kind == 1;
                }
                p
            }
            2 => subscribe(filter, qos),
            3 => Packet::Unsubscribe(Unsubscribe {
                packet_id: pid,
                properties: Properties::default(),
                filters: vec![TopicFilter::try_from(filter).expect("valid")],
            }),
            4 => Packet::PubAck(PubResp::new(pid)),
            5 => Packet::PubRec(PubResp::new(pid)),
            6 => Packet::PubRel(PubResp::new(pid)),
            7 => Packet::PubComp(PubResp::new(pid)),
            8 => Packet::PingReq,
            _ => Packet::Disconnect(Disconnect::new(ReasonCode::Success)),
        }
    }

    proptest! {
        #[test]
        fn random_traffic_never_panics_and_output_decodes(ops in proptest::collection::vec(op(), 1..80)) {
            let limits = Limits { max_outbound_bytes: 200, ..Limits::default() };
            let (mut state, mut peer) = two_shards(limits, 4);
            let mut conns: [Option<(ConnId, ProtocolVersion)>; 4] = [None; 4];
            let start = Instant::now();
            for op in ops {
                match op {
                    Op::Open(c, v5) => {
                        let version = if v5 { ProtocolVersion::V5 } else { ProtocolVersion::V4 };
                        let mut connect = connect(version, &format!("c{c}"));
                        connect.clean_start = c % 2 == 0;
                        connect.keep_alive = 1;
                        if v5 && !connect.clean_start {
                            connect.properties.session_expiry_interval = Some(2);
                        }
                        let id = state.open(&connect, format!("c{c}"), false, start);
                        conns[c] = Some((id, version));
                    }
                    Op::Packet(c, kind, id, q) => {
                        if let Some((conn, _)) = conns[c] {
                            state.on_packet(conn, packet(kind, id, q));
                        }
                    }
                    Op::Drain(c) => {
                        if let Some((conn, version)) = conns[c] {
                            let mut buf = BytesMut::new();
                            let _ = state.writer_step(conn, &mut buf, Waker::noop());
                            while !buf.is_empty() {
                                let decoded = protocol::decode(&mut buf, version, usize::MAX >> 4);
                                prop_assert!(matches!(decoded, Ok(Some(_))), "{decoded:?}");
                            }
                        }
                    }
                    Op::Lost(c) => {
                        if let Some((conn, _)) = conns[c].take() {
                            state.on_connection_lost(conn);
                            state.remove_conn(conn);
                        }
                    }
                    Op::Peer(n) => {
                        for _ in 0..n {
                            peer_messages(&mut peer);
                        }
                        state.flush_overflow();
                    }
                    Op::Tick(ms) => state.tick(start + Duration::from_millis(ms)),
                }
            }
        }
    }
}

#[test]
fn publisher_acks_wait_while_a_subscriber_is_congested_then_follow_in_order() {
    let limits = Limits {
        session: session::Limits {
            max_inflight: 1,
            max_queued_messages: 4,
            ..session::Limits::default()
        },
        ..Limits::default()
    };
    let (mut state, _peer) = two_shards(limits, 64);
    let sub = open(&mut state, ProtocolVersion::V4, "sub");
    state.on_packet(sub, subscribe("f/t", QoS::AtLeastOnce));
    drain_packets(&mut state, sub, ProtocolVersion::V4);
    let publisher = open(&mut state, ProtocolVersion::V4, "pub");
    for id in 1..=4 {
        state.on_packet(publisher, publish("f/t", QoS::AtLeastOnce, Some(id)));
    }
    let acked = |packets: Vec<Packet>| -> Vec<u16> {
        packets
            .iter()
            .map(|p| match p {
                Packet::PubAck(a) => a.packet_id.get(),
                other => panic!("expected PUBACK, got {other:?}"),
            })
            .collect()
    };
    // 1 in flight, 2 and 3 queued: the queue reached half its bound at 3, so the publisher's
    // acknowledgements are held from 4 on (each PUBACK leaves before its message is routed).
    assert_eq!(
        acked(drain_packets(&mut state, publisher, ProtocolVersion::V4)),
        [1, 2, 3]
    );
    for _ in 0..2 {
        let delivered = drain_packets(&mut state, sub, ProtocolVersion::V4);
        let Some(Packet::Publish(p)) = delivered.first() else {
            panic!("expected a PUBLISH, got {delivered:?}");
        };
        let id = p.packet_id.expect("QoS 1");
        state.on_packet(sub, Packet::PubAck(PubResp::new(id)));
    }
    // Down to a quarter: the held acknowledgements follow, in order [MQTT-4.6.0-2].
    assert_eq!(
        acked(drain_packets(&mut state, publisher, ProtocolVersion::V4)),
        [4]
    );
    assert_eq!(
        state
            .session_stats("sub")
            .expect("session")
            .dropped_queue_full,
        0
    );
}

#[test]
fn assigned_client_ids_never_take_an_existing_session_mqtt_3_2_2_16() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    let first = (1..)
        .map(|n| format!("ringmq-0-{n}"))
        .find(|id| crate::shard::home_shard(id.as_bytes(), 2) == 0)
        .expect("some id is at home here");
    open(&mut state, ProtocolVersion::V5, &first);
    let anonymous = connect(ProtocolVersion::V5, "");
    let (assigned, was_assigned) = state.admit(&anonymous).expect("admitted");
    assert!(was_assigned);
    assert_ne!(assigned, first);
}

#[test]
fn a_v5_publisher_over_our_receive_maximum_while_acks_are_held_gets_0x93() {
    let limits = Limits {
        session: session::Limits {
            max_inflight: 1,
            max_queued_messages: 4,
            max_inbound_qos2: 2,
            ..session::Limits::default()
        },
        ..Limits::default()
    };
    let (mut state, _peer) = two_shards(limits, 64);
    let sub = open(&mut state, ProtocolVersion::V4, "sub");
    state.on_packet(sub, subscribe("r/t", QoS::AtLeastOnce));
    drain_packets(&mut state, sub, ProtocolVersion::V4);
    let publisher = open(&mut state, ProtocolVersion::V5, "pub");
    // 1 in flight, 2 and 3 queued (congested at 3), PUBACKs of 4 and 5 held: 2 unacknowledged.
    for id in 1..=5 {
        assert!(state.on_packet(publisher, publish("r/t", QoS::AtLeastOnce, Some(id))));
    }
    assert!(!state.on_packet(publisher, publish("r/t", QoS::AtLeastOnce, Some(6))));
    let packets = drain_packets(&mut state, publisher, ProtocolVersion::V5);
    assert!(matches!(
        packets.last(),
        Some(Packet::Disconnect(d)) if d.reason == ReasonCode::ReceiveMaximumExceeded
    ));
}

#[test]
fn shared_group_spreads_by_member_count_across_shards() {
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    let member = open(&mut state, ProtocolVersion::V5, "m");
    state.on_packet(member, subscribe("$share/g/w/+", QoS::AtMostOnce));
    drain_packets(&mut state, member, ProtocolVersion::V5);
    peer_messages(&mut peer);
    let filter = TopicFilter::try_from("$share/g/w/+").expect("valid");
    let remote = MeshMsg::ShareInterest {
        filter,
        members: 3,
        online: 3,
    };
    assert!(peer.try_send(0, remote).is_ok());
    state.drain_mesh(16);
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    for _ in 0..8 {
        state.on_packet(publisher, publish("w/1", QoS::AtMostOnce, None));
    }
    let local = drain_packets(&mut state, member, ProtocolVersion::V5).len();
    let forwarded = peer_messages(&mut peer).len();
    assert_eq!(
        (local, forwarded),
        (2, 6),
        "1 member here, 3 there: a quarter stays here"
    );
}

mod shared;
