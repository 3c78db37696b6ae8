//! Flow control across shards: a QoS 1 publisher on one shard slows to what a reading
//! subscriber on the other takes, so nothing acknowledged is dropped; a subscriber that stops
//! acknowledging stops holding anyone back after about a second, and is cut after the stall
//! timeout.

use super::*;

const PAYLOAD: usize = 8 * 1024;

/// Shard 0 and shard 1 of one mesh, each a `ShardState`.
fn pair(limits: Limits) -> (ShardState, ShardState) {
    let mut ends = mesh::build::<MeshMsg>(2, 1024);
    let one = ends.pop().expect("two ends");
    let zero = ends.pop().expect("two ends");
    let t0 = clock();
    (
        ShardState::new(zero, limits, t0),
        ShardState::new(one, limits, t0),
    )
}

/// A session queue bound of 4 MiB: 512 messages of 8 KiB, congested from 256 on, so the
/// bound leaves room for 4 publisher windows of 64 after congestion is announced.
fn small_queues() -> Limits {
    let mut limits = Limits::default();
    limits.session.max_queued_bytes = 4 * 1024 * 1024;
    limits
}

fn big_publish(n: u16) -> Packet {
    let mut packet = publish("flow/t", QoS::AtLeastOnce, Some(n));
    if let Packet::Publish(p) = &mut packet {
        p.payload = Bytes::from(vec![b'x'; PAYLOAD]);
    }
    packet
}

/// Moves what each shard sent the other across the mesh.
fn exchange(a: &mut ShardState, b: &mut ShardState, now: Instant) {
    for _ in 0..4 {
        a.flush_overflow(now);
        b.flush_overflow(now);
        b.drain_mesh(usize::MAX, now, &mut Vec::new());
        a.drain_mesh(usize::MAX, now, &mut Vec::new());
    }
}

/// A publisher on shard 0 that keeps its window of 64 QoS 1 messages full, and counts the
/// PUBACKs it gets.
struct Publisher {
    conn: ConnId,
    next: u16,
    unacked: usize,
    acked: usize,
}

impl Publisher {
    fn step(&mut self, state: &mut ShardState, total: u16, now: Instant) {
        for p in drain_packets_at(state, self.conn, now) {
            if matches!(p, Packet::PubAck(_)) {
                self.unacked -= 1;
                self.acked += 1;
            }
        }
        while self.unacked < 64 && self.next <= total {
            assert!(state.on_packet(self.conn, big_publish(self.next), now));
            self.next += 1;
            self.unacked += 1;
        }
    }
}

fn drain_packets_at(state: &mut ShardState, conn: ConnId, now: Instant) -> Vec<Packet> {
    let mut buf = BytesMut::new();
    let _ = state.writer_step(conn, &mut buf, Waker::noop(), now);
    let mut packets = Vec::new();
    while let Ok(Some(p)) = protocol::decode(&mut buf, ProtocolVersion::V4, usize::MAX >> 4) {
        packets.push(p);
    }
    packets
}

/// Subscribes `id` on `state` to flow/t at QoS 1 (the SUBACK waits for the peer's barrier).
fn subscriber(state: &mut ShardState, peer: &mut ShardState, id: &str, now: Instant) -> ConnId {
    let conn = open(state, ProtocolVersion::V4, id);
    state.on_packet(conn, subscribe("flow/t", QoS::AtLeastOnce), now);
    exchange(peer, state, now);
    drain_packets_at(state, conn, now);
    conn
}

#[test]
fn a_qos1_publisher_slows_to_a_reading_subscriber_on_the_other_shard_and_nothing_is_dropped() {
    // What the publisher had acknowledged must reach a subscriber that keeps reading: back
    // pressure reaches the publisher across shards instead of the subscriber's queue bound.
    let (mut a, mut b) = pair(small_queues());
    let mut now = clock();
    let sub = subscriber(&mut b, &mut a, "slow-reader", now);
    let mut publisher = Publisher {
        conn: open(&mut a, ProtocolVersion::V4, "fast-publisher"),
        next: 1,
        unacked: 0,
        acked: 0,
    };
    let total = 2_000u16;
    let mut received = 0usize;
    let mut to_ack = std::collections::VecDeque::new();
    for _ in 0..20_000 {
        publisher.step(&mut a, total, now);
        exchange(&mut a, &mut b, now);
        // The subscriber reads everything and acknowledges at most 4 messages per step: far
        // slower than the publisher sends.
        let publishes = drain_packets_at(&mut b, sub, now)
            .into_iter()
            .filter_map(|p| match p {
                Packet::Publish(p) => p.packet_id,
                _ => None,
            });
        let before = to_ack.len();
        to_ack.extend(publishes);
        received += to_ack.len() - before;
        for id in to_ack.drain(..to_ack.len().min(4)) {
            b.on_packet(sub, Packet::PubAck(PubResp::new(id)), now);
        }
        now += Duration::from_millis(1);
        a.tick(now);
        b.tick(now);
        if received == usize::from(total) {
            break;
        }
    }
    // The last PUBACKs: held ones are released within the congestion limit.
    for _ in 0..2_000 {
        publisher.step(&mut a, total, now);
        exchange(&mut a, &mut b, now);
        now += Duration::from_millis(1);
        a.tick(now);
    }
    assert_eq!(
        b.counters().dropped_queue_full,
        0,
        "no acknowledged message dropped"
    );
    assert_eq!(received, usize::from(total), "every message arrived");
    assert_eq!(publisher.acked, usize::from(total));
}

#[test]
fn a_subscriber_that_stops_acknowledging_holds_nobody_back_after_a_second_and_is_cut_later() {
    let mut limits = small_queues();
    limits.stall_timeout = Duration::from_secs(5);
    let (mut a, mut b) = pair(limits);
    let mut now = clock();
    let stuck = subscriber(&mut b, &mut a, "never-acks", now);
    let mut publisher = Publisher {
        conn: open(&mut a, ProtocolVersion::V4, "publisher"),
        next: 1,
        unacked: 0,
        acked: 0,
    };
    let start = now;
    let mut acked_at_2s = 0;
    while now < start + Duration::from_secs(7) {
        publisher.step(&mut a, u16::MAX, now);
        exchange(&mut a, &mut b, now);
        drain_packets_at(&mut b, stuck, now); // reads, never acknowledges
        now += Duration::from_millis(10);
        a.tick(now);
        b.tick(now);
        if acked_at_2s == 0 && now >= start + Duration::from_secs(2) {
            acked_at_2s = publisher.acked;
        }
    }
    assert!(
        publisher.acked > acked_at_2s && acked_at_2s > 64,
        "the publisher goes on ({acked_at_2s} acknowledged after 2 s, {} at the end)",
        publisher.acked
    );
    assert!(!b.is_live(stuck), "cut after the stall timeout");
    assert_eq!(b.counters().stalled_disconnects, 1);
}
