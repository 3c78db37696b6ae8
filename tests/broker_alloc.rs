//! The hot path allocates nothing per message in steady state: decode a PUBLISH, route it
//! through a shard to local subscribers, encode it into their outbound buffers, acknowledge.
//! Runs `ShardState` in-process (no sockets) under a counting global allocator.

use bytes::{Bytes, BytesMut};
use ringmq::mesh;
use ringmq::protocol::{
    self, Connect, MqttString, Packet, PacketId, Properties, ProtocolVersion, PubResp, Publish,
    QoS, Subscribe, Subscription, SubscriptionOptions, TopicFilter, TopicName,
};
pub mod alloc_count;

use alloc_count::{allocations_during, uncounted};
use ringmq::shard::{ConnId, Limits, MeshMsg, ShardState};
use std::task::Waker;
use std::time::Instant;

fn connect(version: ProtocolVersion, id: &str) -> Connect {
    Connect {
        bridge: false,
        version,
        clean_start: true,
        keep_alive: 60,
        client_id: MqttString::try_from(id).expect("valid id"),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

struct Client {
    conn: ConnId,
    version: ProtocolVersion,
    /// The writer's spare buffer, swapped with the connection's outbound one.
    spare: BytesMut,
    /// PUBLISHes received with an empty topic and a Topic Alias.
    aliased: usize,
}

impl Client {
    fn open(state: &mut ShardState, version: ProtocolVersion, id: &str) -> Self {
        Self::open_with(state, &connect(version, id))
    }

    fn open_with(state: &mut ShardState, connect: &Connect) -> Self {
        let version = connect.version;
        let id = connect.client_id.as_str();
        let conn = state.open(connect, id.to_owned(), false, Instant::now());
        let mut client = Self {
            conn,
            version,
            spare: BytesMut::with_capacity(64 * 1024),
            aliased: 0,
        };
        client.take_output(state);
        client
    }

    /// What the writer would write next; the buffer is then reused.
    fn take_output(&mut self, state: &mut ShardState) -> BytesMut {
        self.spare.clear();
        let _ = state.writer_step(self.conn, &mut self.spare, Waker::noop(), Instant::now());
        std::mem::take(&mut self.spare)
    }

    fn give_back(&mut self, mut buf: BytesMut) {
        buf.clear();
        self.spare = buf;
    }

    fn subscribe(&mut self, state: &mut ShardState, filter: &str, qos: QoS) {
        let subscribe = Packet::Subscribe(Subscribe {
            packet_id: PacketId::new(1).expect("non-zero"),
            properties: Properties::default(),
            subscriptions: vec![Subscription {
                filter: TopicFilter::try_from(filter).expect("valid"),
                options: SubscriptionOptions {
                    qos,
                    ..SubscriptionOptions::default()
                },
            }],
        });
        state.on_packet(self.conn, subscribe, Instant::now());
        let out = self.take_output(state);
        self.give_back(out);
    }

    /// Decodes what the broker wrote and acknowledges each QoS 1 PUBLISH, like a client.
    fn read_and_ack(&mut self, state: &mut ShardState) -> usize {
        let mut out = self.take_output(state);
        let mut publishes = 0;
        // The client's decode is not the broker's work (a 5.0 Topic Alias, for one, is a
        // property, and decoding properties allocates).
        while let Ok(Some(packet)) = uncounted(|| protocol::decode(&mut out, self.version, 1 << 20))
        {
            if let Packet::Publish(p) = packet {
                publishes += 1;
                if p.topic.is_empty() && p.properties.topic_alias.is_some() {
                    self.aliased += 1;
                }
                if let Some(id) = p.packet_id {
                    state.on_packet(self.conn, Packet::PubAck(PubResp::new(id)), Instant::now());
                }
            }
        }
        self.give_back(out);
        publishes
    }
}

#[test]
fn routing_a_publish_to_subscribers_allocates_nothing_in_steady_state() {
    let mut ends = mesh::build::<MeshMsg>(1, 64);
    let me = ends.pop().expect("one shard");
    let mut state = ShardState::new(me, Limits::default(), Instant::now());
    let mut publisher = Client::open(&mut state, ProtocolVersion::V4, "pub");
    let mut subs = [
        Client::open(&mut state, ProtocolVersion::V4, "s4"),
        Client::open(&mut state, ProtocolVersion::V5, "s5"),
    ];
    subs[0].subscribe(&mut state, "a/+", QoS::AtMostOnce);
    subs[1].subscribe(&mut state, "a/#", QoS::AtLeastOnce);

    // The wire bytes of one QoS 0 and one QoS 1 PUBLISH, decoded afresh each round.
    let mut wire = BytesMut::new();
    for (qos, id) in [
        (QoS::AtMostOnce, None),
        (QoS::AtLeastOnce, PacketId::new(9)),
    ] {
        let publish = Packet::Publish(Publish {
            dup: false,
            qos,
            retain: false,
            topic: TopicName::try_from("a/b").expect("valid"),
            packet_id: id,
            properties: Properties::default(),
            payload: Bytes::from_static(&[0u8; 256]),
        });
        protocol::encode(&publish, ProtocolVersion::V4, &mut wire).expect("encodable");
    }
    let wire = wire.freeze();
    let mut input = BytesMut::with_capacity(4096);

    let mut round = |state: &mut ShardState| {
        input.clear();
        input.extend_from_slice(&wire);
        while let Ok(Some(packet)) = protocol::decode(&mut input, ProtocolVersion::V4, 1 << 20) {
            assert!(state.on_packet(publisher.conn, packet, Instant::now()));
        }
        let acks = publisher.take_output(state);
        publisher.give_back(acks);
        let delivered: usize = subs.iter_mut().map(|s| s.read_and_ack(state)).sum();
        assert_eq!(delivered, 4, "two messages to two subscribers");
    };
    for _ in 0..200 {
        round(&mut state);
    }
    let probe = allocations_during(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(8))));
    assert_eq!(probe, 1, "the counter sees allocations");
    let allocations = allocations_during(|| {
        for _ in 0..1000 {
            round(&mut state);
        }
    });
    assert_eq!(allocations, 0, "allocations over 1000 rounds");
}

#[test]
fn forwarding_a_publish_to_a_peer_shard_allocates_nothing_in_steady_state() {
    let mut ends = mesh::build::<MeshMsg>(2, 64);
    let b_ends = ends.pop().expect("two shards");
    let a_ends = ends.pop().expect("two shards");
    let mut a = ShardState::new(a_ends, Limits::default(), Instant::now());
    let mut b = ShardState::new(b_ends, Limits::default(), Instant::now());
    let mut publisher = Client::open(&mut a, ProtocolVersion::V4, "pub");
    let mut sub = Client::open(&mut b, ProtocolVersion::V5, "sub");
    sub.subscribe(&mut b, "x/#", QoS::AtLeastOnce);
    // a applies the interest and answers the SUBACK barrier; b takes the answer.
    a.drain_mesh(64, Instant::now(), &mut Vec::new());
    b.drain_mesh(64, Instant::now(), &mut Vec::new());

    let mut wire = BytesMut::new();
    let publish = Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TopicName::try_from("x/y").expect("valid"),
        packet_id: PacketId::new(3),
        properties: Properties::default(),
        payload: Bytes::from_static(&[1u8; 64]),
    });
    protocol::encode(&publish, ProtocolVersion::V4, &mut wire).expect("encodable");
    let wire = wire.freeze();
    let mut input = BytesMut::with_capacity(4096);

    let mut round = |a: &mut ShardState, b: &mut ShardState| {
        input.clear();
        input.extend_from_slice(&wire);
        while let Ok(Some(packet)) = protocol::decode(&mut input, ProtocolVersion::V4, 1 << 20) {
            assert!(a.on_packet(publisher.conn, packet, Instant::now()));
        }
        a.end_of_batch(publisher.conn, Instant::now(), &[]);
        let acks = publisher.take_output(a);
        publisher.give_back(acks);
        assert_eq!(b.drain_mesh(64, Instant::now(), &mut Vec::new()), 1);
        assert_eq!(sub.read_and_ack(b), 1);
    };
    for _ in 0..200 {
        round(&mut a, &mut b);
    }
    let allocations = allocations_during(|| {
        for _ in 0..1000 {
            round(&mut a, &mut b);
        }
    });
    assert_eq!(allocations, 0, "allocations over 1000 forwarded messages");
}

#[test]
fn routing_to_subscribers_with_topic_aliases_allocates_nothing_in_steady_state() {
    // Outbound Topic Aliases: after the first messages set them, every later PUBLISH is
    // looked up in the connection's table and patched into the shared encoding. Two aliases
    // for three topics, so one topic always goes without one; one topic is too long to be
    // stored inline.
    let mut ends = mesh::build::<MeshMsg>(1, 64);
    let me = ends.pop().expect("one shard");
    let mut state = ShardState::new(me, Limits::default(), Instant::now());
    let mut publisher = Client::open(&mut state, ProtocolVersion::V5, "pub");
    let mut subs: Vec<Client> = ["s1", "s2"]
        .iter()
        .map(|id| {
            let mut c = connect(ProtocolVersion::V5, id);
            c.properties.topic_alias_maximum = Some(2);
            Client::open_with(&mut state, &c)
        })
        .collect();
    subs[0].subscribe(&mut state, "t/#", QoS::AtMostOnce);
    subs[1].subscribe(&mut state, "t/#", QoS::AtLeastOnce);

    let long = String::from("t/b");
    let mut wire = BytesMut::new();
    for (i, topic) in ["t/a", long.as_str(), "t/c"].into_iter().enumerate() {
        let publish = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtLeastOnce,
            retain: false,
            topic: TopicName::try_from(topic).expect("valid"),
            packet_id: PacketId::new(i as u16 + 1),
            properties: Properties::default(),
            payload: Bytes::from_static(&[2u8; 32]),
        });
        protocol::encode(&publish, ProtocolVersion::V5, &mut wire).expect("encodable");
    }
    let wire = wire.freeze();
    let mut input = BytesMut::with_capacity(4096);

    let mut round = |state: &mut ShardState| {
        input.clear();
        input.extend_from_slice(&wire);
        while let Ok(Some(packet)) = protocol::decode(&mut input, ProtocolVersion::V5, 1 << 20) {
            assert!(state.on_packet(publisher.conn, packet, Instant::now()));
        }
        let acks = publisher.take_output(state);
        publisher.give_back(acks);
        let delivered: usize = subs.iter_mut().map(|s| s.read_and_ack(state)).sum();
        assert_eq!(delivered, 6, "three messages to two subscribers");
    };
    for _ in 0..200 {
        round(&mut state);
    }
    let allocations = allocations_during(|| {
        for _ in 0..1000 {
            round(&mut state);
        }
    });
    assert_eq!(allocations, 0, "allocations over 1000 rounds");
    // Two of the three topics went by alias to each subscriber after the first round.
    let aliased: Vec<usize> = subs.iter().map(|s| s.aliased).collect();
    assert_eq!(aliased, [2 * 1199, 2 * 1199]);
}
