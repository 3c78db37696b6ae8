//! The numbers each shard publishes: a `Snapshot` of plain counters and gauges that the shard
//! fills, and `ShardMetrics`, the same numbers as atomics that only that shard writes (Relaxed
//! stores, a few times a second) and any thread reads. `Registry` holds every shard's.
//!
//! A reader sees each number as some shard wrote it; numbers of one snapshot may come from
//! two consecutive publications. That is what a scrape needs, and neither side ever waits.

use super::latency::{LatencyRecorder, LatencyTotals, latency_channels};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// One number of a shard, without labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scalar {
    /// Connections now (including ones closing).
    Connections,
    SessionsOnline,
    SessionsOffline,
    Subscriptions,
    RetainedMessages,
    RetainedBytes,
    /// Outbound QoS 1/2 messages sent and not yet acknowledged, over all sessions.
    Inflight,
    /// Messages waiting in session queues.
    Queued,
    /// Messages waiting in this shard's mesh overflows (peer rings full).
    MeshOverflowQueued,
    ConnectionsAccepted,
    PacketsReceived,
    PacketsSent,
    BytesReceived,
    BytesSent,
    /// Messages that ever waited in a mesh overflow.
    MeshOverflows,
    SessionsExpired,
    /// Connections cut because they read nothing while over the outbound limit.
    StalledCut,
    /// Bridges of the shard connected to their remote broker now.
    BridgesUp,
    /// Bridges of the shard not connected now (backing off or connecting).
    BridgesDown,
    /// Bridge connections that got their CONNACK.
    BridgeConnects,
    /// Bridge attempts that failed and links that ended.
    BridgeFailures,
}

impl Scalar {
    pub const COUNT: usize = 21;
}

/// Why a message was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// QoS 1/2 for a session whose queue was full.
    QueueFull,
    /// Its Message Expiry Interval ran out while it waited.
    Expired,
    /// Nobody subscribed to its topic.
    NoSubscriber,
    /// QoS 0 for a client offline or too slow.
    Qos0,
    /// For a shared subscription group with no member left.
    SharedNoMember,
    /// Larger than the subscriber's Maximum Packet Size.
    TooLarge,
}

impl Dropped {
    pub const COUNT: usize = 6;
    pub const ALL: [Self; Self::COUNT] = [
        Self::QueueFull,
        Self::Expired,
        Self::NoSubscriber,
        Self::Qos0,
        Self::SharedNoMember,
        Self::TooLarge,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::Expired => "expired",
            Self::NoSubscriber => "no_subscriber",
            Self::Qos0 => "qos0",
            Self::SharedNoMember => "shared_no_member",
            Self::TooLarge => "too_large",
        }
    }
}

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectCause {
    /// The client sent DISCONNECT.
    Client,
    /// EOF or a read error without DISCONNECT.
    Lost,
    WriteFailed,
    KeepAlive,
    TakenOver,
    Shutdown,
    StalledWriter,
    PacketTooLarge,
    ReceiveMaximum,
    AuthFailure,
    ProtocolError,
}

impl DisconnectCause {
    pub const COUNT: usize = 11;
    pub const ALL: [Self; Self::COUNT] = [
        Self::Client,
        Self::Lost,
        Self::WriteFailed,
        Self::KeepAlive,
        Self::TakenOver,
        Self::Shutdown,
        Self::StalledWriter,
        Self::PacketTooLarge,
        Self::ReceiveMaximum,
        Self::AuthFailure,
        Self::ProtocolError,
    ];

    /// As the log says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client disconnect",
            Self::Lost => "connection lost",
            Self::WriteFailed => "write failed",
            Self::KeepAlive => "keepalive timeout",
            Self::TakenOver => "taken over",
            Self::Shutdown => "server shutdown",
            Self::StalledWriter => "stalled writer",
            Self::PacketTooLarge => "packet too large",
            Self::ReceiveMaximum => "receive maximum exceeded",
            Self::AuthFailure => "auth failure",
            Self::ProtocolError => "protocol error",
        }
    }

    /// As a Prometheus label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Client => "client_disconnect",
            Self::Lost => "connection_lost",
            Self::WriteFailed => "write_failed",
            Self::KeepAlive => "keepalive_timeout",
            Self::TakenOver => "taken_over",
            Self::Shutdown => "server_shutdown",
            Self::StalledWriter => "stalled_writer",
            Self::PacketTooLarge => "packet_too_large",
            Self::ReceiveMaximum => "receive_maximum_exceeded",
            Self::AuthFailure => "auth_failure",
            Self::ProtocolError => "protocol_error",
        }
    }
}

/// A shard's numbers as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub scalars: [u64; Scalar::COUNT],
    /// PUBLISHes received from clients, by QoS.
    pub received: [u64; 3],
    /// PUBLISHes written to clients, by QoS.
    pub sent: [u64; 3],
    pub dropped: [u64; Dropped::COUNT],
    pub disconnects: [u64; DisconnectCause::COUNT],
    /// CONNECTs refused, by reason code.
    pub refused: [u64; 256],
    /// Messages in this shard's ring to each shard (0 at its own id).
    pub ring: Vec<u64>,
}

impl Snapshot {
    pub fn new(shards: usize) -> Self {
        Self {
            scalars: [0; Scalar::COUNT],
            received: [0; 3],
            sent: [0; 3],
            dropped: [0; Dropped::COUNT],
            disconnects: [0; DisconnectCause::COUNT],
            refused: [0; 256],
            ring: vec![0; shards],
        }
    }

    pub fn get(&self, scalar: Scalar) -> u64 {
        self.scalars[scalar as usize]
    }

    pub fn set(&mut self, scalar: Scalar, value: u64) {
        self.scalars[scalar as usize] = value;
    }

    pub fn dropped(&self, why: Dropped) -> u64 {
        self.dropped[why as usize]
    }

    /// Adds `other` to this one, number by number (the sum over shards).
    pub fn add(&mut self, other: &Self) {
        add_all(&mut self.scalars, &other.scalars);
        add_all(&mut self.received, &other.received);
        add_all(&mut self.sent, &other.sent);
        add_all(&mut self.dropped, &other.dropped);
        add_all(&mut self.disconnects, &other.disconnects);
        add_all(&mut self.refused, &other.refused);
        if self.ring.len() < other.ring.len() {
            self.ring.resize(other.ring.len(), 0);
        }
        add_all(&mut self.ring, &other.ring);
    }
}

fn add_all(sum: &mut [u64], values: &[u64]) {
    for (s, v) in sum.iter_mut().zip(values) {
        *s = s.wrapping_add(*v);
    }
}

/// A `Snapshot` as atomics: written by its shard only, read by anyone.
#[derive(Debug)]
pub struct ShardMetrics {
    scalars: [AtomicU64; Scalar::COUNT],
    received: [AtomicU64; 3],
    sent: [AtomicU64; 3],
    dropped: [AtomicU64; Dropped::COUNT],
    disconnects: [AtomicU64; DisconnectCause::COUNT],
    refused: [AtomicU64; 256],
    ring: Box<[AtomicU64]>,
}

fn atomics<const N: usize>() -> [AtomicU64; N] {
    std::array::from_fn(|_| AtomicU64::new(0))
}

fn store_all(slots: &[AtomicU64], values: &[u64]) {
    for (slot, value) in slots.iter().zip(values) {
        slot.store(*value, Ordering::Relaxed);
    }
}

fn load_all(slots: &[AtomicU64], values: &mut [u64]) {
    for (slot, value) in slots.iter().zip(values) {
        *value = slot.load(Ordering::Relaxed);
    }
}

impl ShardMetrics {
    fn new(shards: usize) -> Self {
        Self {
            scalars: atomics(),
            received: atomics(),
            sent: atomics(),
            dropped: atomics(),
            disconnects: atomics(),
            refused: atomics(),
            ring: (0..shards).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// Publishes `snapshot` (the owning shard only): plain stores, no waiting, no allocation.
    pub fn publish(&self, snapshot: &Snapshot) {
        store_all(&self.scalars, &snapshot.scalars);
        store_all(&self.received, &snapshot.received);
        store_all(&self.sent, &snapshot.sent);
        store_all(&self.dropped, &snapshot.dropped);
        store_all(&self.disconnects, &snapshot.disconnects);
        store_all(&self.refused, &snapshot.refused);
        store_all(&self.ring, &snapshot.ring);
    }

    /// What the shard published last.
    pub fn read(&self) -> Snapshot {
        let mut s = Snapshot::new(self.ring.len());
        load_all(&self.scalars, &mut s.scalars);
        load_all(&self.received, &mut s.received);
        load_all(&self.sent, &mut s.sent);
        load_all(&self.dropped, &mut s.dropped);
        load_all(&self.disconnects, &mut s.disconnects);
        load_all(&self.refused, &mut s.refused);
        load_all(&self.ring, &mut s.ring);
        s
    }
}

/// Every shard's published numbers, shared by the shards (each writes its own) and the
/// metrics endpoint (reads them all); and the two ends of the latency histograms, each
/// taken once at start-up (the locks are never taken by a running shard).
#[derive(Debug)]
pub struct Registry {
    shards: Box<[ShardMetrics]>,
    started: Instant,
    recorders: Mutex<Vec<Option<LatencyRecorder>>>,
    latency: Mutex<Option<LatencyTotals>>,
}

impl Registry {
    pub fn new(shards: usize) -> Self {
        let (recorders, totals) = latency_channels(shards);
        Self {
            shards: (0..shards).map(|_| ShardMetrics::new(shards)).collect(),
            started: Instant::now(),
            recorders: Mutex::new(recorders.into_iter().map(Some).collect()),
            latency: Mutex::new(Some(totals)),
        }
    }

    /// Shard `id`'s latency recorder, for the shard to own (once).
    pub fn take_recorder(&self, id: usize) -> Option<LatencyRecorder> {
        let mut recorders = self.recorders.lock().ok()?;
        recorders.get_mut(id)?.take()
    }

    /// The reading end of every shard's latencies, for the metrics endpoint to own (once).
    pub fn take_latency(&self) -> Option<LatencyTotals> {
        self.latency.lock().ok()?.take()
    }

    /// Shard `id`'s slot; `None` past the last shard.
    pub fn shard(&self, id: usize) -> Option<&ShardMetrics> {
        self.shards.get(id)
    }

    /// What every shard published last, by shard id.
    pub fn read_all(&self) -> Vec<Snapshot> {
        self.shards.iter().map(ShardMetrics::read).collect()
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_shard_publishes_is_what_a_reader_reads() {
        let registry = Registry::new(2);
        let mut snapshot = Snapshot::new(2);
        snapshot.set(Scalar::Connections, 7);
        snapshot.received[1] = 3;
        snapshot.refused[0x85] = 2;
        snapshot.dropped[Dropped::Expired as usize] = 4;
        snapshot.ring[1] = 9;
        let Some(slot) = registry.shard(1) else {
            panic!("no shard 1");
        };
        slot.publish(&snapshot);
        let read = registry.read_all();
        assert_eq!(read[1], snapshot);
        assert_eq!(read[0], Snapshot::new(2), "shard 0 published nothing yet");
        assert!(registry.shard(2).is_none());
    }

    #[test]
    fn snapshots_add_up_number_by_number() {
        let mut a = Snapshot::new(2);
        a.set(Scalar::BytesSent, 10);
        a.sent[0] = 1;
        let mut b = a.clone();
        b.ring[0] = 5;
        a.add(&b);
        assert_eq!(a.get(Scalar::BytesSent), 20);
        assert_eq!(a.sent[0], 2);
        assert_eq!(a.ring, vec![5, 0]);
    }

    #[test]
    fn the_enums_fill_their_arrays() {
        assert_eq!(Scalar::BridgeFailures as usize + 1, Scalar::COUNT);
        for (i, d) in Dropped::ALL.iter().enumerate() {
            assert_eq!(*d as usize, i);
        }
        for (i, c) in DisconnectCause::ALL.iter().enumerate() {
            assert_eq!(*c as usize, i);
        }
    }
}
