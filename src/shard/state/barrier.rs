//! The SUBACK barrier: a SUBACK leaves only once every peer shard has seen the subscription.
//!
//! Interest travels to peers over the mesh, so without a barrier a client that publishes on
//! another shard right after the subscriber's SUBACK could be routed before that shard knows
//! about the new filter, and the message would be lost. Each ring is FIFO, so once a peer
//! answers a `Barrier` sent after the interest messages, it has applied them; any PUBLISH it
//! reads after the subscriber saw SUBACK is then forwarded. With one shard there is no peer and
//! the SUBACK goes out at once.

use super::ShardState;
use super::connections::ConnId;
use super::subscriptions::LocalSub;
use crate::protocol::{Packet, SubAck, TopicFilter};
use crate::shard::MeshMsg;
use hashbrown::HashMap;
use std::time::Instant;

/// A SUBACK waiting for every peer's `BarrierAck`, with the retained messages to send after it.
#[derive(Debug)]
pub(super) struct PendingSubAck {
    conn: ConnId,
    session_key: usize,
    suback: SubAck,
    /// Subscriptions whose retained messages follow the SUBACK [MQTT-3.3.1-6].
    retained: Vec<(TopicFilter, LocalSub)>,
    acks_left: usize,
}

/// The SUBACKs waiting for their barrier, by token.
#[derive(Debug, Default)]
pub(super) struct Barriers {
    pending: HashMap<u64, PendingSubAck>,
    next: u64,
}

impl ShardState {
    /// Holds `suback` until every peer acknowledges a barrier; returns the token whose
    /// pending entry collects the retained messages of this SUBSCRIBE.
    pub(super) fn hold_suback(&mut self, conn: ConnId, session_key: usize, suback: SubAck) -> u64 {
        let token = self.barriers.next;
        self.barriers.next += 1;
        let pending = PendingSubAck {
            conn,
            session_key,
            suback,
            retained: Vec::new(),
            acks_left: self.shards() - 1,
        };
        self.barriers.pending.insert(token, pending);
        token
    }

    /// Remembers to send the retained messages for `filter` once the SUBACK is out.
    pub(super) fn defer_retained(&mut self, token: u64, filter: &TopicFilter, sub: LocalSub) {
        if let Some(pending) = self.barriers.pending.get_mut(&token) {
            pending.retained.push((filter.clone(), sub));
        }
    }

    /// Sends the barrier behind this SUBSCRIBE's interest messages to every peer.
    pub(super) fn send_barrier(&mut self, token: u64) {
        self.broadcast(|| MeshMsg::Barrier { token });
    }

    /// A peer has applied everything this shard sent before the barrier `token`.
    pub(super) fn on_barrier_ack(&mut self, token: u64, now: Instant) {
        let Some(pending) = self.barriers.pending.get_mut(&token) else {
            return;
        };
        pending.acks_left = pending.acks_left.saturating_sub(1);
        if pending.acks_left > 0 {
            return;
        }
        if let Some(pending) = self.barriers.pending.remove(&token) {
            self.release_suback(pending, now);
        }
    }

    fn release_suback(&mut self, pending: PendingSubAck, now: Instant) {
        if self.live_session(pending.conn) != Some(pending.session_key) {
            return;
        }
        self.write_packet(pending.conn, &Packet::SubAck(pending.suback), now);
        for (filter, sub) in pending.retained {
            self.send_retained(&filter, sub, now);
        }
    }
}
