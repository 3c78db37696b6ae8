//! `Stats`: what the shard counts for its metrics and `$SYS` that no other part counts
//! (messages, packets and bytes in and out, connections accepted, refusals by reason code,
//! disconnects by cause, messages expired or without a subscriber, expired sessions), and
//! the `Snapshot` the shard publishes: these counts plus the other parts' sizes, filled
//! without allocating.

use super::ShardState;
use crate::obs::{DisconnectCause, Dropped, Scalar, Snapshot};
use crate::protocol::{QoS, ReasonCode};
use crate::session::{self, Message};
use std::time::Instant;

/// Plain counters, bumped where the events happen.
#[derive(Debug)]
pub(super) struct Stats {
    /// PUBLISHes received from clients, by QoS.
    pub received: [u64; 3],
    /// PUBLISHes written to clients, by QoS.
    pub sent: [u64; 3],
    pub packets_received: u64,
    pub packets_sent: u64,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub accepted: u64,
    refused: Box<[u64; 256]>,
    disconnects: [u64; DisconnectCause::COUNT],
    /// Messages dropped on the way (mesh, shared groups) because they expired.
    pub expired: u64,
    pub no_subscriber: u64,
    /// Destinations routing found; a message that adds none had no subscriber.
    pub routed: u64,
    pub sessions_expired: u64,
    /// The drop counts of sessions that are gone (their own counts go with them).
    retired: session::Stats,
    snapshot: Snapshot,
}

impl Stats {
    pub fn new(shards: usize) -> Self {
        Self {
            received: [0; 3],
            sent: [0; 3],
            packets_received: 0,
            packets_sent: 0,
            bytes_received: 0,
            bytes_sent: 0,
            accepted: 0,
            refused: Box::new([0; 256]),
            disconnects: [0; DisconnectCause::COUNT],
            expired: 0,
            no_subscriber: 0,
            routed: 0,
            sessions_expired: 0,
            retired: session::Stats::default(),
            snapshot: Snapshot::new(shards),
        }
    }

    pub fn refused(&mut self, code: ReasonCode) {
        self.refused[code as usize] += 1;
    }

    pub fn disconnected(&mut self, cause: DisconnectCause) {
        self.disconnects[cause as usize] += 1;
    }

    pub fn received(&mut self, qos: QoS) {
        self.received[qos as usize] += 1;
    }

    pub fn sent(&mut self, qos: QoS) {
        self.sent[qos as usize] += 1;
        self.packets_sent += 1;
    }

    /// A session ended: its drop counts stay counted.
    pub fn retire(&mut self, stats: session::Stats) {
        self.retired.expired += stats.expired;
        self.retired.dropped_too_large += stats.dropped_too_large;
    }
}

impl ShardState {
    /// This shard's numbers now, for the metrics endpoint and `$SYS`. Walks the sessions
    /// once; called a few times a second, never per message.
    pub fn snapshot(&mut self) -> &Snapshot {
        let (mut online, mut offline, mut subscriptions, mut inflight, mut queued) =
            (0, 0, 0, 0, 0);
        let mut lost = self.stats.retired;
        for entry in self.sessions.iter() {
            if entry.conn.is_some() {
                online += 1;
            } else {
                offline += 1;
            }
            let session = &entry.session;
            subscriptions += session.subscription_count() as u64;
            inflight += session.inflight_len() as u64;
            queued += session.queued_len() as u64;
            let stats = session.stats();
            lost.expired += stats.expired;
            lost.dropped_too_large += stats.dropped_too_large;
        }
        let counters = self.counters();
        let stats = &mut self.stats;
        let s = &mut stats.snapshot;
        s.set(Scalar::Connections, self.conns.len() as u64);
        s.set(Scalar::SessionsOnline, online);
        s.set(Scalar::SessionsOffline, offline);
        s.set(Scalar::Subscriptions, subscriptions);
        s.set(Scalar::RetainedMessages, self.retained.len() as u64);
        s.set(Scalar::RetainedBytes, self.retained.bytes() as u64);
        s.set(Scalar::Inflight, inflight);
        s.set(Scalar::Queued, queued);
        s.set(Scalar::MeshOverflowQueued, self.mesh.overflow_len() as u64);
        s.set(Scalar::ConnectionsAccepted, stats.accepted);
        s.set(Scalar::PacketsReceived, stats.packets_received);
        s.set(Scalar::PacketsSent, stats.packets_sent);
        s.set(Scalar::BytesReceived, stats.bytes_received);
        s.set(Scalar::BytesSent, stats.bytes_sent);
        s.set(Scalar::MeshOverflows, counters.mesh_overflowed);
        s.set(Scalar::SessionsExpired, stats.sessions_expired);
        s.set(Scalar::StalledCut, counters.stalled_disconnects);
        let bridges = self.bridge_counts;
        s.set(Scalar::BridgesUp, bridges.up);
        s.set(Scalar::BridgesDown, bridges.down);
        s.set(Scalar::BridgeConnects, bridges.connects);
        s.set(Scalar::BridgeFailures, bridges.failures);
        s.received = stats.received;
        s.sent = stats.sent;
        s.disconnects = stats.disconnects;
        s.refused = *stats.refused;
        let dropped = [
            (Dropped::QueueFull, counters.dropped_queue_full),
            (Dropped::Expired, stats.expired + lost.expired),
            (Dropped::NoSubscriber, stats.no_subscriber),
            (Dropped::Qos0, counters.dropped_qos0),
            (Dropped::SharedNoMember, counters.dropped_shared),
            (Dropped::TooLarge, lost.dropped_too_large),
        ];
        for (why, n) in dropped {
            s.dropped[why as usize] = n;
        }
        let ends = self.mesh.ends();
        for (peer, slot) in s.ring.iter_mut().enumerate() {
            *slot = ends.queued_to(peer) as u64;
        }
        s
    }

    /// `still_fresh`, counting what expired on the way.
    pub(super) fn fresh(&mut self, msg: Message, now: Instant) -> Option<Message> {
        let fresh = super::still_fresh(msg, now);
        if fresh.is_none() {
            self.stats.expired += 1;
        }
        fresh
    }

    /// Bytes read from a client's socket.
    pub fn count_read(&mut self, bytes: usize) {
        self.stats.bytes_received += bytes as u64;
    }
}
