//! The shard state fuzzer's interpreter: arbitrary bytes become a sequence of client
//! operations (connect, packets of every kind, reading and acknowledging, disconnects, lost
//! connections), mesh exchanges and clock ticks on two `ShardState`s joined by a real mesh,
//! with a virtual clock. After every operation the shards' invariants are checked
//! (`ShardState::broken_invariant`: sessions hold their bounds, live connections have their
//! sessions) and everything a client is sent must decode. Shared by the `shard` fuzz target
//! and `tests/shard_state_fuzz.rs`, which runs it on seeded random inputs in `cargo test`.

use bytes::{Bytes, BytesMut};
use ringmq::mesh;
use ringmq::protocol::{
    Connect, Disconnect, MqttString, Packet, PacketId, Properties, ProtocolVersion, PubResp,
    Publish, QoS, ReasonCode, Subscribe, Subscription, SubscriptionOptions, TopicFilter, TopicName,
    Unsubscribe, decode,
};
use ringmq::shard::{ConnId, Limits, MeshMsg, ShardState, home_shard};
use std::task::Waker;
use std::time::{Duration, Instant};

const CLIENTS: usize = 6;
const TOPICS: [&str; 4] = ["a/b", "a/c", "x", "$SYS/t"];
const FILTERS: [&str; 6] = ["a/+", "#", "$share/g/a/#", "x", "a/b", "$SYS/#"];

/// Small bounds, so the fuzzer reaches them.
fn limits() -> Limits {
    let mut limits = Limits::default();
    limits.session.max_inflight = 4;
    limits.session.max_queued_messages = 8;
    limits.session.max_queued_bytes = 4096;
    limits.session.max_inbound_qos2 = 4;
    limits.max_outbound_bytes = 2048;
    limits.max_mesh_overflow = 4;
    limits
}

struct Client {
    id: String,
    version: ProtocolVersion,
    conn: Option<(usize, ConnId)>,
}

struct World {
    shards: [ShardState; 2],
    clients: Vec<Client>,
    now: Instant,
}

/// Runs the operations `data` encodes; panics on a broken invariant.
pub fn run(data: &[u8]) {
    let mut ends = mesh::build::<MeshMsg>(2, 4);
    let (Some(one), Some(zero)) = (ends.pop(), ends.pop()) else {
        return;
    };
    let now = Instant::now();
    let mut world = World {
        shards: [
            ShardState::new(zero, limits(), now),
            ShardState::new(one, limits(), now),
        ],
        clients: (0..CLIENTS)
            .map(|i| Client {
                id: format!("c{i}"),
                version: if i % 2 == 0 {
                    ProtocolVersion::V5
                } else {
                    ProtocolVersion::V4
                },
                conn: None,
            })
            .collect(),
        now,
    };
    for op in data.chunks(3) {
        let [kind, a, b] = [op[0], *op.get(1).unwrap_or(&0), *op.get(2).unwrap_or(&0)];
        world.apply(kind, a, b);
        for shard in &world.shards {
            if let Some(broken) = shard.broken_invariant() {
                panic!("shard {}: {broken}", shard.id());
            }
        }
    }
}

impl World {
    fn apply(&mut self, kind: u8, a: u8, b: u8) {
        let c = usize::from(a) % CLIENTS;
        match kind % 8 {
            0 => self.connect(c, b),
            1 | 2 => self.send(c, packet(a, b)),
            3 => self.read_and_ack(c, b.is_multiple_of(2)),
            4 => self.lose(c),
            5 => self.exchange(),
            6 => {
                self.now += Duration::from_millis(u64::from(b) * 40);
                let now = self.now;
                self.shards.iter_mut().for_each(|s| s.tick(now));
            }
            _ => self.send(c, Packet::Disconnect(Disconnect::new(ReasonCode::Success))),
        }
    }

    fn connect(&mut self, c: usize, flags: u8) {
        let client = &self.clients[c];
        let home = home_shard(client.id.as_bytes(), 2);
        let mut properties = Properties::default();
        if client.version == ProtocolVersion::V5 {
            properties.session_expiry_interval = Some(u32::from(flags % 4) * 30);
            properties.receive_maximum = Some(u16::from(flags % 3) + 1);
            properties.topic_alias_maximum = Some(u16::from(flags % 2) * 2);
            properties.maximum_packet_size = flags.is_multiple_of(5).then_some(64);
        }
        let connect = Connect {
            bridge: false,
            version: client.version,
            clean_start: flags & 0x10 != 0,
            keep_alive: u16::from(flags % 3),
            client_id: MqttString::try_from(client.id.as_str()).unwrap_or_default(),
            will: None,
            username: None,
            password: None,
            properties,
        };
        let shard = &mut self.shards[home];
        let conn = shard.open(&connect, client.id.clone(), false, self.now);
        self.clients[c].conn = Some((home, conn));
        self.drain(c);
    }

    fn send(&mut self, c: usize, packet: Packet) {
        let Some((home, conn)) = self.clients[c].conn else {
            return;
        };
        if !self.shards[home].on_packet(conn, packet, self.now) {
            self.drain(c);
            self.clients[c].conn = None;
        }
    }

    /// Everything written to the client decodes; acknowledges what asks for it when `ack`.
    fn read_and_ack(&mut self, c: usize, ack: bool) {
        for packet in self.drain(c) {
            let reply = match packet {
                Packet::Publish(p) if ack => match (p.qos, p.packet_id) {
                    (QoS::AtLeastOnce, Some(id)) => Packet::PubAck(PubResp::new(id)),
                    (QoS::ExactlyOnce, Some(id)) => Packet::PubRec(PubResp::new(id)),
                    _ => continue,
                },
                Packet::PubRel(r) if ack => Packet::PubComp(PubResp::new(r.packet_id)),
                _ => continue,
            };
            self.send(c, reply);
        }
    }

    fn drain(&mut self, c: usize) -> Vec<Packet> {
        let Some((home, conn)) = self.clients[c].conn else {
            return Vec::new();
        };
        let version = self.clients[c].version;
        let mut buf = BytesMut::new();
        let _ = self.shards[home].writer_step(conn, &mut buf, Waker::noop(), self.now);
        let mut packets = Vec::new();
        while !buf.is_empty() {
            match decode(&mut buf, version, usize::MAX >> 4) {
                Ok(Some(p)) => packets.push(p),
                other => panic!("the broker wrote what does not decode: {other:?}"),
            }
        }
        packets
    }

    fn lose(&mut self, c: usize) {
        if let Some((home, conn)) = self.clients[c].conn.take() {
            self.shards[home].on_connection_lost(conn, self.now);
            self.shards[home].remove_conn(conn, self.now);
        }
    }

    fn exchange(&mut self) {
        let now = self.now;
        for shard in &mut self.shards {
            shard.flush_overflow(now);
            shard.drain_mesh(usize::MAX, now, &mut Vec::new());
        }
    }
}

/// A packet a client could send: publishes of every QoS (some retained, some large),
/// subscriptions, acknowledgements of ids that may or may not exist, pings.
fn packet(a: u8, b: u8) -> Packet {
    let id = PacketId::new(u16::from(b % 8) + 1).unwrap_or(PacketId::new(1).expect("non-zero"));
    let qos = QoS::from_bits(b % 3).unwrap_or_default();
    let topic = TopicName::try_from(TOPICS[usize::from(a / 8) % TOPICS.len()]).unwrap_or_default();
    let filter = TopicFilter::try_from(FILTERS[usize::from(b / 3) % FILTERS.len()]);
    match (a / 32) % 8 {
        0..=2 => Packet::Publish(Publish {
            dup: false,
            qos,
            retain: b & 0x80 != 0,
            topic,
            packet_id: (qos != QoS::AtMostOnce).then_some(id),
            properties: Properties::default(),
            payload: Bytes::from(vec![b'p'; usize::from(b % 4) * 300]),
        }),
        3 => match filter {
            Ok(filter) => Packet::Subscribe(Subscribe {
                packet_id: id,
                properties: Properties::default(),
                subscriptions: vec![Subscription {
                    filter,
                    options: SubscriptionOptions {
                        qos,
                        ..SubscriptionOptions::default()
                    },
                }],
            }),
            Err(_) => Packet::PingReq,
        },
        4 => match filter {
            Ok(filter) => Packet::Unsubscribe(Unsubscribe {
                packet_id: id,
                properties: Properties::default(),
                filters: vec![filter],
            }),
            Err(_) => Packet::PingReq,
        },
        5 => Packet::PubAck(PubResp::new(id)),
        6 => Packet::PubRec(PubResp::new(id)),
        _ => Packet::PubRel(PubResp::new(id)),
    }
}
