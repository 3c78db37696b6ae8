//! Flow control for QoS 1/2 publishers: instead of letting a fast publisher overrun a slower
//! subscriber's bounded queue (and lose messages), the broker withholds the publisher's
//! PUBACK/PUBREC while a message of it sits behind a congested subscriber, so the publisher's
//! own in-flight window stops it. Reading never stops (acknowledgements keep flowing, so two
//! clients publishing to each other cannot deadlock), and every hold ends after
//! `CONGESTION_LIMIT`, after which a subscriber that still does not drain is ignored.
//!
//! - A session is congested while connected with a queue at or over half its bound; it stops
//!   being so at a quarter.
//! - A local publisher whose message is queued for a congested session, or parked in a full
//!   peer ring's overflow, is gated until that clears.
//! - A peer's message queued for a congested session does not hold anything back: the
//!   receiving shard keeps draining the mesh, because pausing it would stall every other
//!   subscriber of the shard behind one slow client. Such a session's queue bound applies
//!   (drops are counted), as for any slow subscriber.

use super::ShardState;
use super::connections::ConnId;
use crate::protocol::Packet;
use std::time::{Duration, Instant};

/// The longest a publisher is held back for one congested subscriber or peer.
const CONGESTION_LIMIT: Duration = Duration::from_secs(5);
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

/// The publishers whose acknowledgements are held.
#[derive(Debug, Default)]
pub(super) struct Flow {
    gated: Vec<ConnId>,
}

impl ShardState {
    fn congestion_high(&self) -> usize {
        (self.limits.session.max_queued_messages / 2).max(1)
    }

    /// A message was queued for `session_key`: whether that makes it (or it already was)
    /// congested, which then holds the publisher back.
    pub(super) fn note_queued(&mut self, session_key: usize) -> Option<GateCause> {
        let high = self.congestion_high();
        let entry = self.sessions.get_mut(session_key)?;
        if entry.conn.is_none() || entry.ignore_congestion {
            return None;
        }
        if entry.session.queued_len() >= high {
            entry.congested = true;
        }
        entry.congested.then_some(GateCause::Session(session_key))
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

    /// After a session processed acknowledgements: once its queue is down to a quarter it is
    /// no longer congested, and whoever waited for it may go on.
    pub(super) fn after_acks(&mut self, session_key: usize, now: Instant) {
        let low = self.congestion_high() / 2;
        let Some(entry) = self.sessions.get_mut(session_key) else {
            return;
        };
        if entry.session.queued_len() > low {
            return;
        }
        entry.ignore_congestion = false;
        if entry.congested {
            entry.congested = false;
            self.refresh_gates(now);
        }
    }

    /// Whether `cause` still holds a publisher back at `now`.
    fn still_congested(&mut self, cause: GateCause, since: Instant, now: Instant) -> bool {
        let timed_out = now.duration_since(since) >= CONGESTION_LIMIT;
        match cause {
            GateCause::Peer(peer) => !timed_out && self.mesh.is_overflowing(peer),
            GateCause::Session(key) => {
                let Some(entry) = self.sessions.get_mut(key) else {
                    return false;
                };
                if timed_out && entry.congested {
                    // It does not drain: stop waiting for it (its queue bound applies again).
                    entry.congested = false;
                    entry.ignore_congestion = true;
                }
                entry.congested && entry.conn.is_some()
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
