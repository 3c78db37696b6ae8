//! Flow control for QoS 1/2 publishers: instead of letting a fast publisher overrun a slower
//! subscriber's bounded queue (and lose messages), the broker withholds the publisher's
//! PUBACK/PUBREC while a message of it sits behind a congested subscriber, on this shard or
//! another, so the publisher's own in-flight window stops it. Reading never stops
//! (acknowledgements keep flowing, so two clients publishing to each other cannot deadlock).
//!
//! - A session is congested while connected with a queue at or over half its bound (in
//!   messages or bytes); it stops being so at a quarter.
//! - A local publisher whose message is queued for a congested session, or parked in a full
//!   peer ring's overflow, is gated until that clears.
//! - Across shards: a shard with a congested session tells every peer (`MeshMsg::Congestion`,
//!   sent on each change of "has one"), and a peer gates its publishers whose QoS 1/2 messages
//!   it forwards there until that clears. The receiving shard keeps draining the mesh:
//!   pausing it would stall every other subscriber of the shard behind one slow client.
//! - Nobody waits for a subscriber that makes no progress: a congested session that
//!   acknowledges nothing for `NO_PROGRESS` is *stalled* and ignored (its queue bound applies
//!   again, drops are counted), so no other client pauses for longer than about a second for
//!   it (a subscriber that does make progress, however slowly, is waited for: the publisher
//!   slows to what it takes, up to `CONGESTION_LIMIT` per hold). A stalled session whose client still
//!   acknowledges nothing after `stall_timeout` is disconnected (5.0: 0x97); a persistent
//!   session keeps queueing within its bounds.

use super::ShardState;
use super::connections::ConnId;
use super::routing::Held;
use crate::protocol::{Packet, Reason, ReasonCode};
use crate::shard::MeshMsg;
use std::time::{Duration, Instant};

/// The longest a publisher is held back for one congested subscriber or peer that is making
/// progress (a safety net: one that makes none stops being waited for after `NO_PROGRESS`).
const CONGESTION_LIMIT: Duration = Duration::from_secs(10);
/// A congested subscriber that acknowledges nothing this long is stalled: nobody waits for it.
const NO_PROGRESS: Duration = Duration::from_secs(1);
/// A client that ignores its own window cannot make the held acknowledgements grow forever.
const MAX_HELD_ACKS: usize = 65_536;

/// Why a connection's acknowledgements are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GateCause {
    Session(usize),
    Peer(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Gate {
    cause: GateCause,
    since: Instant,
}

/// The publishers whose acknowledgements are held, and who is congested.
#[derive(Debug, Default)]
pub(super) struct Flow {
    gated: Vec<ConnId>,
    /// This shard's congested sessions.
    congested: Vec<usize>,
    /// Sessions ignored for making no progress, with when they stalled (for the cut).
    stalled: Vec<(usize, Instant)>,
    /// Whether the peers were last told that this shard has a congested session.
    announced: bool,
    /// Peers that announced a congested session, by shard id.
    peer_congested: Vec<bool>,
}

impl Flow {
    pub fn new(shards: usize) -> Self {
        Self {
            peer_congested: vec![false; shards],
            ..Self::default()
        }
    }

    /// Whether a QoS 1/2 message forwarded to `peer` holds its publisher back.
    pub fn holds_for(&self, peer: usize) -> Held {
        self.peer_congested
            .get(peer)
            .is_some_and(|&c| c)
            .then_some(GateCause::Peer(peer))
    }
}

impl ShardState {
    /// Queue sizes (messages, bytes) at which a connected session counts as congested.
    fn congestion_high(&self) -> (usize, usize) {
        let l = &self.limits.session;
        (
            (l.max_queued_messages / 2).max(1),
            (l.max_queued_bytes / 2).max(1),
        )
    }

    /// A message was queued for `session_key`: whether that makes it (or it already was)
    /// congested, which then holds the publisher back.
    pub(super) fn note_queued(&mut self, session_key: usize, now: Instant) -> Option<GateCause> {
        let (messages, bytes) = self.congestion_high();
        let entry = self.sessions.get_mut(session_key)?;
        if entry.conn.is_none() || entry.ignore_congestion {
            return None;
        }
        let queue = &entry.session;
        if !entry.congested && (queue.queued_len() >= messages || queue.queued_bytes() >= bytes) {
            entry.congested = true;
            entry.session.set_congested(true);
            entry.progress_at = now;
            self.flow.congested.push(session_key);
            self.announce_congestion();
            return Some(GateCause::Session(session_key));
        }
        entry.congested.then_some(GateCause::Session(session_key))
    }

    /// Tells the peers when this shard starts or stops having a congested session.
    fn announce_congestion(&mut self) {
        let any = !self.flow.congested.is_empty();
        if any != self.flow.announced {
            self.flow.announced = any;
            let _: Held = self.broadcast(|| MeshMsg::Congestion { congested: any });
        }
    }

    /// A peer started or stopped having a congested session.
    pub(super) fn on_peer_congestion(&mut self, peer: usize, congested: bool, now: Instant) {
        if let Some(flag) = self.flow.peer_congested.get_mut(peer) {
            *flag = congested;
        }
        if !congested {
            self.refresh_gates(now);
        }
    }

    /// Holds `conn`'s acknowledgements from now on (the session acknowledges before it routes,
    /// so the hold starts with the next message).
    pub(super) fn gate(&mut self, conn: ConnId, cause: GateCause, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.gate.is_none() {
            c.gate = Some(Gate { cause, since: now });
            self.flow.gated.push(conn);
        }
    }

    /// Keeps a PUBACK/PUBREC of a gated connection for later; false if it may go now.
    pub(super) fn hold_ack(&mut self, conn: ConnId, packet: &Packet) -> bool {
        let Some(c) = self.conns.get_mut(conn) else {
            return false;
        };
        let is_ack = matches!(packet, Packet::PubAck(_) | Packet::PubRec(_));
        if c.gate.is_none() || !is_ack || c.held_acks.len() >= MAX_HELD_ACKS {
            return false;
        }
        c.held_acks.push_back(packet.clone());
        true
    }

    /// After a session processed acknowledgements: that is progress; once its queue is down
    /// to a quarter it is no longer congested (or stalled), and whoever waited for it may go on.
    pub(super) fn after_acks(&mut self, session_key: usize, now: Instant) {
        let (messages, bytes) = self.congestion_high();
        let Some(entry) = self.sessions.get_mut(session_key) else {
            return;
        };
        entry.progress_at = now;
        let queue = &entry.session;
        if queue.queued_len() > messages / 2 || queue.queued_bytes() > bytes / 2 {
            return;
        }
        entry.ignore_congestion = false;
        self.flow.stalled.retain(|&(key, _)| key != session_key);
        if entry.congested {
            entry.congested = false;
            entry.session.set_congested(false);
            self.flow.congested.retain(|&key| key != session_key);
            self.announce_congestion();
            self.refresh_gates(now);
        }
    }

    /// From the tick: a congested session that acknowledged nothing for `NO_PROGRESS` is
    /// stalled and no longer waited for; a stalled one still without progress after
    /// `stall_timeout` is disconnected (5.0: DISCONNECT 0x97 Quota exceeded, as for a
    /// subscriber that reads nothing).
    pub(super) fn check_congestion(&mut self, now: Instant) {
        if self.flow.congested.is_empty() && self.flow.stalled.is_empty() {
            return;
        }
        let mut congested = std::mem::take(&mut self.flow.congested);
        congested.retain(|&key| {
            let Some(entry) = self.sessions.get_mut(key).filter(|e| e.conn.is_some()) else {
                return false;
            };
            if now.saturating_duration_since(entry.progress_at) < NO_PROGRESS {
                return entry.congested;
            }
            entry.congested = false;
            entry.session.set_congested(false);
            entry.ignore_congestion = true;
            self.flow.stalled.push((key, entry.progress_at));
            false
        });
        self.flow.congested = congested;
        self.announce_congestion();
        self.refresh_gates(now);
        self.cut_stalled(now);
    }

    fn cut_stalled(&mut self, now: Instant) {
        let limit = self.limits.stall_timeout;
        let mut cut = Vec::new();
        self.flow.stalled.retain(|&(key, since)| {
            let Some(entry) = self.sessions.get(key) else {
                return false;
            };
            let (Some(conn), true) = (entry.conn, entry.progress_at == since) else {
                return false;
            };
            if now.saturating_duration_since(since) < limit {
                return true;
            }
            cut.push(conn);
            false
        });
        for conn in cut {
            self.counters.stalled_disconnects += 1;
            let reason = Reason::explained(
                ReasonCode::QuotaExceeded,
                "the client acknowledged none of the messages sent to it within the stall timeout",
            );
            self.close(conn, Some(reason), true, now);
        }
    }

    /// Whether `cause` still holds a publisher back at `now`.
    fn still_congested(&mut self, cause: GateCause, since: Instant, now: Instant) -> bool {
        let timed_out = now.duration_since(since) >= CONGESTION_LIMIT;
        match cause {
            GateCause::Peer(peer) => {
                let congested =
                    self.mesh.is_overflowing(peer) || self.flow.holds_for(peer).is_some();
                !timed_out && congested
            }
            GateCause::Session(key) => {
                let Some(entry) = self.sessions.get_mut(key) else {
                    return false;
                };
                // A hold for a session that does not drain ends here; whether the session is
                // waited for again is `check_congestion`'s to say.
                !timed_out && entry.congested && entry.conn.is_some()
            }
        }
    }

    /// Releases every gate whose cause has cleared, sending its held acknowledgements in
    /// order, and lets the mesh drain again if its pause has ended.
    pub(super) fn refresh_gates(&mut self, now: Instant) {
        if self.flow.gated.is_empty() {
            return;
        }
        let mut gated = std::mem::take(&mut self.flow.gated);
        gated.retain(|&conn| {
            let Some(gate) = self.conns.get(conn).and_then(|c| c.gate) else {
                return false;
            };
            if self.still_congested(gate.cause, gate.since, now) {
                return true;
            }
            self.release_gate(conn, now);
            false
        });
        self.flow.gated = gated;
    }

    fn release_gate(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.gate = None;
        let held = std::mem::take(&mut c.held_acks);
        for packet in &held {
            self.write_packet(conn, packet, now);
        }
        if let Some(c) = self.conns.get_mut(conn) {
            // Keep the buffer's capacity for the next hold.
            let mut held = held;
            held.clear();
            c.held_acks = held;
        }
    }
}
