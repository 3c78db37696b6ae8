//! Unit tests of `ShardState` without sockets: connections are outbound buffers read through
//! `writer_step`, peers are the other ends of a real mesh.

use super::*;
use crate::mesh;
use crate::protocol::{MqttString, PacketId, PubResp, Publish, Subscribe, Subscription};
use crate::protocol::{QoS, ReasonCode, SubscriptionOptions, TopicFilter, TopicName};
use crate::timer::test_clock as clock;
use bytes::Bytes;
use std::task::Waker;

fn connect(version: ProtocolVersion, id: &str) -> Connect {
    Connect {
        bridge: false,
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
    (ShardState::new(me, limits, clock()), peer)
}

fn open(state: &mut ShardState, version: ProtocolVersion, id: &str) -> ConnId {
    let c = connect(version, id);
    let conn = state.open(&c, id.to_owned(), false, clock());
    drain_packets(state, conn, version);
    conn
}

/// Everything written to the connection so far, decoded.
fn drain_packets(state: &mut ShardState, conn: ConnId, version: ProtocolVersion) -> Vec<Packet> {
    let mut buf = BytesMut::new();
    let _ = state.writer_step(conn, &mut buf, Waker::noop(), clock());
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
    state.on_packet(sub, subscribe("b/#", QoS::AtLeastOnce), clock());
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
    state.drain_mesh(usize::MAX, clock(), &mut Vec::new());
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
    state.drain_mesh(16, clock(), &mut Vec::new());
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    for i in 1..=6 {
        assert!(state.on_packet(
            publisher,
            publish(&format!("o/{i}"), QoS::AtLeastOnce, Some(i)),
            clock()
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
        state.flush_overflow(clock());
    }
    assert_eq!(topics, ["o/1", "o/2", "o/3", "o/4", "o/5", "o/6"]);
    assert!(!state.is_paused());
    assert!(!state.has_overflow());
}

#[test]
fn publish_goes_once_to_each_interested_peer_and_never_to_others() {
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    state.on_packet(publisher, publish("x/y", QoS::AtMostOnce, None), clock());
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
    state.drain_mesh(16, clock(), &mut Vec::new());
    state.on_packet(publisher, publish("x/y", QoS::AtMostOnce, None), clock());
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
    state.on_packet(a, subscribe("i/#", QoS::AtMostOnce), clock());
    state.on_packet(b, subscribe("i/#", QoS::AtMostOnce), clock());
    let added: Vec<_> = peer_messages(&mut peer);
    assert!(matches!(
        added.as_slice(),
        [MeshMsg::Interest { add: true, .. }]
    ));
    state.close(a, None, false, clock());
    assert!(peer_messages(&mut peer).is_empty(), "b still subscribes");
    state.close(b, None, false, clock());
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
    state.on_packet(sub, subscribe("s/t", QoS::AtLeastOnce), clock());
    drain_packets(&mut state, sub, ProtocolVersion::V4);
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    // Each PUBLISH to the subscriber is about 20 bytes: the third one crosses the cap.
    for _ in 0..3 {
        state.on_packet(publisher, publish("s/t", QoS::AtMostOnce, None), clock());
    }
    state.on_packet(publisher, publish("s/t", QoS::AtMostOnce, None), clock());
    state.on_packet(
        publisher,
        publish("s/t", QoS::AtLeastOnce, Some(7)),
        clock(),
    );
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
fn a_stalled_v5_subscriber_gets_disconnect_0x97_instead_of_its_backlog_then_is_cut() {
    let limits = Limits {
        max_outbound_bytes: 40,
        stall_timeout: Duration::from_secs(1),
        ..Limits::default()
    };
    let (mut state, _peer) = two_shards(limits, 64);
    let sub = open(&mut state, ProtocolVersion::V5, "stuck");
    state.on_packet(sub, subscribe("s/t", QoS::AtMostOnce), clock());
    drain_packets(&mut state, sub, ProtocolVersion::V5);
    let publisher = open(&mut state, ProtocolVersion::V5, "p");
    // The subscriber's writer never takes its buffer: it goes over the cap and stays there.
    for _ in 0..4 {
        state.on_packet(publisher, publish("s/t", QoS::AtMostOnce, None), clock());
    }
    let start = clock();
    state.tick(start + Duration::from_millis(500));
    assert!(
        state.is_live(sub),
        "not stalled for the whole stall timeout yet"
    );
    state.tick(start + Duration::from_millis(1300));
    assert!(
        !state.is_live(sub),
        "closed once stalled for the stall timeout"
    );
    assert!(
        !state.is_aborted(sub),
        "but given the grace to take its DISCONNECT"
    );
    assert_eq!(state.counters().stalled_disconnects, 1);
    // 3.14.2.1 0x97 Quota exceeded; the unsent backlog made way for it.
    let packets = drain_packets(&mut state, sub, ProtocolVersion::V5);
    match packets.as_slice() {
        [Packet::Disconnect(d)] => assert_eq!(d.reason, ReasonCode::QuotaExceeded),
        other => panic!("expected only DISCONNECT 0x97, got {other:?}"),
    }
    state.tick(start + Duration::from_millis(1500) + timers::STALL_GRACE);
    assert!(state.is_aborted(sub), "cut when the grace is over");
}

#[test]
fn over_the_connection_limit_sockets_are_refused_with_0x97_and_refusals_are_bounded() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let (mut state, _peer) = two_shards(limits, 64);
    let now = clock();
    assert_eq!(state.on_accept(now), Admission::Serve);
    let _served = open(&mut state, ProtocolVersion::V5, "one");
    for _ in 0..admission::MAX_REFUSING {
        assert_eq!(
            state.on_accept(now),
            Admission::Refuse(ReasonCode::QuotaExceeded)
        );
    }
    assert_eq!(
        state.on_accept(now),
        Admission::Close,
        "no more refusals at once"
    );
    state.end_refusal();
    assert_eq!(
        state.on_accept(now),
        Admission::Refuse(ReasonCode::QuotaExceeded),
        "a finished refusal makes room for the next"
    );
}

#[test]
fn tls_handshakes_in_progress_are_bounded_per_shard() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    assert!((0..admission::MAX_HANDSHAKES).all(|_| state.begin_handshake()));
    assert!(!state.begin_handshake(), "one more is closed at once");
    state.end_handshake();
    assert!(state.begin_handshake(), "a finished handshake makes room");
}

#[test]
fn over_the_connection_rate_sockets_are_refused_with_0x9f() {
    let limits = Limits {
        max_connection_rate: std::num::NonZeroU32::new(2),
        ..Limits::default()
    };
    let (mut state, _peer) = two_shards(limits, 64);
    let now = clock();
    assert_eq!(state.on_accept(now), Admission::Serve);
    assert_eq!(state.on_accept(now), Admission::Serve);
    assert_eq!(
        state.on_accept(now),
        Admission::Refuse(ReasonCode::ConnectionRateExceeded)
    );
    assert_eq!(state.refusing(), 1);
    state.end_refusal();
    let later = now + Duration::from_millis(600);
    assert_eq!(state.on_accept(later), Admission::Serve, "the rate refills");
}

#[test]
fn a_redirecting_shard_refuses_every_connect_with_its_server_reference() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    state.set_redirect(Some(&crate::config::Redirect {
        server_reference: "b:1883".into(),
        permanent: true,
    }));
    for version in [ProtocolVersion::V5, ProtocolVersion::V4] {
        let refusal = state.admit(&connect(version, "sent-away")).err();
        let refusal = refusal.expect("a redirecting shard admits nobody");
        assert_eq!(refusal.version, version);
        assert_eq!(refusal.reason.code, ReasonCode::ServerMoved);
        let reference = refusal.server_reference.as_ref().map(|r| r.as_str());
        assert_eq!(reference, Some("b:1883"));
    }
    state.set_redirect(None);
    assert!(state.admit(&connect(ProtocolVersion::V5, "served")).is_ok());
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
    state.on_packet(sub, subscribe("l/t", QoS::AtLeastOnce), clock());
    drain_packets(&mut state, sub, ProtocolVersion::V5);
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    state.on_packet(
        publisher,
        publish("l/t", QoS::AtLeastOnce, Some(4)),
        clock(),
    );
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
    state.on_packet(member, subscribe("$share/g/w/+", QoS::AtMostOnce), clock());
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
    state.drain_mesh(16, clock(), &mut Vec::new());

    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    for _ in 0..4 {
        state.on_packet(publisher, publish("w/1", QoS::AtMostOnce, None), clock());
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

    state.close(member, None, false, clock());
    assert!(matches!(
        peer_messages(&mut peer).as_slice(),
        [MeshMsg::ShareInterest { members: 0, .. }]
    ));
    state.on_packet(publisher, publish("w/1", QoS::AtMostOnce, None), clock());
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
            let start = clock();
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
                            state.on_packet(conn, packet(kind, id, q), clock());
                        }
                    }
                    Op::Drain(c) => {
                        if let Some((conn, version)) = conns[c] {
                            let mut buf = BytesMut::new();
                            let _ = state.writer_step(conn, &mut buf, Waker::noop(), clock());
                            while !buf.is_empty() {
                                let decoded = protocol::decode(&mut buf, version, usize::MAX >> 4);
                                prop_assert!(matches!(decoded, Ok(Some(_))), "{decoded:?}");
                            }
                        }
                    }
                    Op::Lost(c) => {
                        if let Some((conn, _)) = conns[c].take() {
                            state.on_connection_lost(conn, clock());
                            state.remove_conn(conn, clock());
                        }
                    }
                    Op::Peer(n) => {
                        for _ in 0..n {
                            peer_messages(&mut peer);
                        }
                        state.flush_overflow(clock());
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
    state.on_packet(sub, subscribe("f/t", QoS::AtLeastOnce), clock());
    drain_packets(&mut state, sub, ProtocolVersion::V4);
    let publisher = open(&mut state, ProtocolVersion::V4, "pub");
    for id in 1..=4 {
        state.on_packet(
            publisher,
            publish("f/t", QoS::AtLeastOnce, Some(id)),
            clock(),
        );
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
        state.on_packet(sub, Packet::PubAck(PubResp::new(id)), clock());
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
    state.on_packet(sub, subscribe("r/t", QoS::AtLeastOnce), clock());
    drain_packets(&mut state, sub, ProtocolVersion::V4);
    let publisher = open(&mut state, ProtocolVersion::V5, "pub");
    // 1 in flight, 2 and 3 queued (congested at 3), PUBACKs of 4 and 5 held: 2 unacknowledged.
    for id in 1..=5 {
        assert!(state.on_packet(
            publisher,
            publish("r/t", QoS::AtLeastOnce, Some(id)),
            clock()
        ));
    }
    assert!(!state.on_packet(
        publisher,
        publish("r/t", QoS::AtLeastOnce, Some(6)),
        clock()
    ));
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
    state.on_packet(member, subscribe("$share/g/w/+", QoS::AtMostOnce), clock());
    drain_packets(&mut state, member, ProtocolVersion::V5);
    peer_messages(&mut peer);
    let filter = TopicFilter::try_from("$share/g/w/+").expect("valid");
    let remote = MeshMsg::ShareInterest {
        filter,
        members: 3,
        online: 3,
    };
    assert!(peer.try_send(0, remote).is_ok());
    state.drain_mesh(16, clock(), &mut Vec::new());
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    for _ in 0..8 {
        state.on_packet(publisher, publish("w/1", QoS::AtMostOnce, None), clock());
    }
    let local = drain_packets(&mut state, member, ProtocolVersion::V5).len();
    let forwarded = peer_messages(&mut peer).len();
    assert_eq!(
        (local, forwarded),
        (2, 6),
        "1 member here, 3 there: a quarter stays here"
    );
}

/// Opens `c` as a new connection of its client id and drains the CONNACK.
fn open_with(state: &mut ShardState, c: &Connect) -> ConnId {
    let id = c.client_id.as_str().to_owned();
    let conn = state.open(c, id, false, clock());
    drain_packets(state, conn, c.version);
    conn
}

/// A 5.0 CONNECT that keeps its session for `expiry` seconds.
fn persistent_v5(id: &str, expiry: u32) -> Connect {
    let mut c = connect(ProtocolVersion::V5, id);
    c.clean_start = false;
    c.properties.session_expiry_interval = Some(expiry);
    c
}

#[test]
fn a_session_expiry_of_0xffffffff_never_ends_3_1_2_11_2() {
    // 5.0 section 3.1.2.11.2: "If the Session Expiry Interval is 0xFFFFFFFF (UINT_MAX), the
    // Session does not expire." One second less is an ordinary (if long) interval.
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    let forever = open_with(&mut state, &persistent_v5("forever", u32::MAX));
    let almost = open_with(&mut state, &persistent_v5("almost", u32::MAX - 1));
    state.on_connection_lost(forever, clock());
    state.on_connection_lost(almost, clock());
    assert_eq!(
        state.timers.len(),
        1,
        "only the finite interval arms a timer"
    );
    let past_almost = clock() + secs(u32::MAX - 1) + Duration::from_secs(1);
    state.tick(past_almost);
    assert!(state.session_stats("almost").is_none(), "0xFFFFFFFE ends");
    state.tick(past_almost + secs(u32::MAX));
    assert!(
        state.session_stats("forever").is_some(),
        "0xFFFFFFFF never ends"
    );
}

#[test]
fn a_server_cap_applies_to_a_session_expiry_of_0xffffffff_3_2_2_3_2() {
    // 5.0 section 3.2.2.3.2: the server may use another Session Expiry Interval than the
    // client asked for, announced in CONNACK; "never" is capped like any other value.
    let limits = Limits {
        max_session_expiry: 10,
        ..Limits::default()
    };
    let (mut state, _peer) = two_shards(limits, 64);
    let c = persistent_v5("capped", u32::MAX);
    let conn = state.open(&c, "capped".into(), false, clock());
    match drain_packets(&mut state, conn, ProtocolVersion::V5).as_slice() {
        [Packet::ConnAck(a)] => assert_eq!(a.properties.session_expiry_interval, Some(10)),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    let start = clock();
    state.on_connection_lost(conn, clock());
    state.tick(start + Duration::from_secs(9));
    assert!(state.session_stats("capped").is_some(), "kept for the cap");
    state.tick(clock() + Duration::from_secs(11));
    assert!(state.session_stats("capped").is_none(), "ended at the cap");
}

#[test]
fn a_message_that_expires_in_a_peers_mesh_overflow_is_not_delivered_mqtt_3_3_2_5() {
    // [MQTT-3.3.2-5] a message whose Message Expiry Interval passed before the server could
    // deliver it is deleted; [MQTT-3.3.2-6] one still alive goes out with the interval it has
    // left. Here both wait in the sending shard's overflow for a full ring (ring of 2).
    let mut ends = mesh::build::<MeshMsg>(2, 2);
    let e1 = ends.pop().expect("two ends");
    let e0 = ends.pop().expect("two ends");
    let mut sender = ShardState::new(e0, Limits::default(), clock());
    let mut receiver = ShardState::new(e1, Limits::default(), clock());
    let sub = open(&mut receiver, ProtocolVersion::V5, "sub");
    receiver.on_packet(sub, subscribe("exp/#", QoS::AtMostOnce), clock());
    sender.drain_mesh(usize::MAX, clock(), &mut Vec::new());
    receiver.drain_mesh(usize::MAX, clock(), &mut Vec::new());
    drain_packets(&mut receiver, sub, ProtocolVersion::V5);

    let publisher = open(&mut sender, ProtocolVersion::V5, "pub");
    let published = clock();
    for n in 1..=4 {
        let mut packet = publish(&format!("exp/{n}"), QoS::AtMostOnce, None);
        if let Packet::Publish(p) = &mut packet {
            // exp/3 has 1 s to live; exp/4 has 60 s.
            p.properties.message_expiry_interval = Some(if n == 3 { 1 } else { 60 });
        }
        assert!(sender.on_packet(publisher, packet, published));
    }
    assert!(sender.has_overflow(), "exp/3 and exp/4 wait for ring space");
    receiver.drain_mesh(usize::MAX, published, &mut Vec::new());
    // 55 s pass while exp/3 and exp/4 wait: exp/3's interval runs out, exp/4 has 5 s left.
    let later = published + Duration::from_secs(55);
    assert!(sender.flush_overflow(later));
    receiver.drain_mesh(usize::MAX, later, &mut Vec::new());

    let got: Vec<(String, Option<u32>)> = drain_packets(&mut receiver, sub, ProtocolVersion::V5)
        .into_iter()
        .filter_map(|p| match p {
            Packet::Publish(p) => Some((
                p.topic.as_str().to_owned(),
                p.properties.message_expiry_interval,
            )),
            _ => None,
        })
        .collect();
    let topics: Vec<&str> = got.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        ["exp/1", "exp/2", "exp/4"],
        "exp/3 expired on the way"
    );
    let left = got[2].1.expect("an expiry interval is forwarded");
    assert!((4..=5).contains(&left), "exp/4 has {left} s left, not 60");
}

#[test]
fn expired_retained_and_shared_messages_from_a_peer_are_dropped_mqtt_3_3_2_5() {
    // The same check applies to the other mesh messages that carry an application message.
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    let sub = open(&mut state, ProtocolVersion::V5, "sub");
    state.on_packet(sub, subscribe("$share/g/r/#", QoS::AtMostOnce), clock());
    drain_packets(&mut state, sub, ProtocolVersion::V5);
    let expired = |topic: &str, retain: bool| {
        let mut properties = Properties::default();
        properties.message_expiry_interval = Some(1);
        Message {
            topic: TopicName::try_from(topic).expect("valid topic"),
            payload: Bytes::from_static(b"late"),
            qos: QoS::AtMostOnce,
            retain,
            properties: Some(std::sync::Arc::new(properties)),
            expires_at: Some(clock()),
            received_at: None,
        }
    };
    let filter = TopicFilter::try_from("$share/g/r/#").expect("valid");
    let shared = MeshMsg::SharedPublish {
        filter,
        msg: expired("r/shared", false),
        hops: 0,
    };
    assert!(peer.try_send(0, shared).is_ok());
    assert!(
        peer.try_send(0, MeshMsg::Retain(expired("r/kept", true)))
            .is_ok()
    );
    peer.flush_wakes();
    state.drain_mesh(usize::MAX, clock(), &mut Vec::new());
    let publishes = drain_packets(&mut state, sub, ProtocolVersion::V5)
        .into_iter()
        .filter(|p| matches!(p, Packet::Publish(_)))
        .count();
    assert_eq!(publishes, 0);
    assert!(
        state.retained.is_empty(),
        "an expired retained message is not stored"
    );
}

#[test]
fn a_superseded_handed_off_connection_gets_connack_then_0x8e_and_its_will_mqtt_3_1_4_3() {
    // [MQTT-3.1.4-3] the server sends DISCONNECT 0x8E to the older of two connections with
    // one client id. When the older one is handed off and reaches the home shard after the
    // newer one, the older one is that connection: CONNACK, 0x8E, close, and its will.
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    let watcher = open(&mut state, ProtocolVersion::V5, "watcher");
    state.on_packet(watcher, subscribe("will/#", QoS::AtMostOnce), clock());
    drain_packets(&mut state, watcher, ProtocolVersion::V5);

    let older_accepted = clock();
    let newer_accepted = older_accepted + Duration::from_millis(5);
    let c = connect(ProtocolVersion::V5, "dup");
    let newer = state.open_accepted(&c, "dup".into(), false, clock(), newer_accepted);
    drain_packets(&mut state, newer, ProtocolVersion::V5);
    assert!(!state.is_superseded("dup", newer_accepted + Duration::from_millis(1)));
    assert!(state.is_superseded("dup", older_accepted));

    let mut older = connect(ProtocolVersion::V5, "dup");
    older.will = Some(crate::protocol::LastWill {
        topic: TopicName::try_from("will/dup").expect("valid topic"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    let mut reply = state.superseded_reply(&older, clock());
    let mut packets = Vec::new();
    while let Ok(Some(p)) = protocol::decode(&mut reply, ProtocolVersion::V5, usize::MAX >> 4) {
        packets.push(p);
    }
    match packets.as_slice() {
        [Packet::ConnAck(a), Packet::Disconnect(d)] => {
            assert_eq!(a.reason, ReasonCode::Success);
            assert_eq!(d.reason, ReasonCode::SessionTakenOver);
        }
        other => panic!("expected CONNACK then DISCONNECT 0x8E, got {other:?}"),
    }
    assert!(state.is_live(newer), "the newer connection stays");
    assert!(drain_packets(&mut state, newer, ProtocolVersion::V5).is_empty());
    let wills: Vec<Packet> = drain_packets(&mut state, watcher, ProtocolVersion::V5);
    assert!(
        matches!(wills.as_slice(), [Packet::Publish(p)] if p.topic.as_str() == "will/dup"),
        "the superseded connection's will is published: {wills:?}"
    );
}

#[test]
fn a_will_that_is_not_utf8_despite_payload_format_1_is_refused_with_0x99_3_1_3_2_3() {
    // 5.0 section 3.1.3.2.3: "The Server MAY validate that the Will Message is of the format
    // indicated, and if it is not send a CONNACK with the Reason Code of 0x99".
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    let with_will = |payload: &'static [u8], pfi: Option<u8>| {
        let mut c = connect(ProtocolVersion::V5, "w");
        let mut properties = Properties::default();
        properties.payload_format_indicator = pfi;
        c.will = Some(crate::protocol::LastWill {
            topic: TopicName::try_from("w/t").expect("valid topic"),
            payload: Bytes::from_static(payload),
            qos: QoS::AtMostOnce,
            retain: false,
            properties,
        });
        c
    };
    let refusal = state.admit(&with_will(b"\xFF\xFE", Some(1)));
    assert_eq!(
        refusal.map_err(|r| r.reason.code),
        Err(ReasonCode::PayloadFormatInvalid)
    );
    assert!(state.admit(&with_will("ü".as_bytes(), Some(1))).is_ok());
    assert!(state.admit(&with_will(b"\xFF\xFE", Some(0))).is_ok());
    assert!(state.admit(&with_will(b"\xFF\xFE", None)).is_ok());
}

mod reliability;
mod shared;

#[test]
fn a_suback_over_the_clients_maximum_packet_size_closes_before_subscribing_mqtt_3_1_2_24() {
    // 5.0 [MQTT-3.1.2-24]: the SUBACK that must answer the SUBSCRIBE cannot be sent, so the
    // connection closes with 0x95 before any filter takes effect.
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    let mut c = connect(ProtocolVersion::V5, "small");
    c.properties.maximum_packet_size = Some(128);
    let conn = open_with(&mut state, &c);
    let subscribe_to = |prefix: &str, n: usize| {
        let subscriptions = (0..n)
            .map(|i| Subscription {
                filter: TopicFilter::try_from(format!("{prefix}/{i}").as_str()).expect("valid"),
                options: SubscriptionOptions::default(),
            })
            .collect();
        Packet::Subscribe(Subscribe {
            packet_id: pid(1),
            properties: Properties::default(),
            subscriptions,
        })
    };
    // 123 codes make a SUBACK of exactly 128 bytes: type, length 126, packet id, property
    // length 0, 123 codes. With two shards it waits for the peer's barrier acknowledgement.
    assert!(state.on_packet(conn, subscribe_to("f", 123), clock()));
    assert!(state.is_live(conn));
    assert!(!state.on_packet(conn, subscribe_to("g", 124), clock()));
    let packets = drain_packets(&mut state, conn, ProtocolVersion::V5);
    match packets.as_slice() {
        [Packet::Disconnect(d)] => assert_eq!(d.reason, ReasonCode::PacketTooLarge),
        other => panic!("expected DISCONNECT 0x95, got {other:?}"),
    }
    let key = state.sessions.find("small");
    let subscribed = key.and_then(|k| state.sessions.get(k)).is_some_and(|e| {
        e.session
            .subscription(&TopicFilter::try_from("g/0").expect("valid"))
            .is_some()
    });
    assert!(!subscribed, "nothing of the SUBSCRIBE was applied");
}
mod auth_files;
mod disk;
mod durable;
mod flow;
mod journal;
