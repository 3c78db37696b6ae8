//! The SUBACK barrier: a SUBACK leaves only once every peer shard has seen the subscription.
//!
//! Interest travels to peers over the mesh, so without a barrier a client that publishes on
//! another shard right after the subscriber's SUBACK could be routed before that shard knows
//! about the new filter, and the message would be lost. Each ring is FIFO, so once a peer
//! answers a `Barrier` sent after the interest messages, it has applied them; any PUBLISH it
//! reads after the subscriber saw SUBACK is then forwarded. With one shard there is no peer and
//! the SUBACK goes out at once.

use super::*;
use crate::protocol::SubAck;

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

impl ShardState {
    /// Holds `suback` until every peer acknowledges a barrier; returns the token whose
    /// pending entry collects the retained messages of this SUBSCRIBE.
    pub(super) fn hold_suback(&mut self, conn: ConnId, session_key: usize, suback: SubAck) -> u64 {
        let token = self.next_barrier;
        self.next_barrier += 1;
        let pending = PendingSubAck {
            conn,
            session_key,
            suback,
            retained: Vec::new(),
            acks_left: self.shards - 1,
        };
        self.pending_subacks.insert(token, pending);
        token
    }

    /// Remembers to send the retained messages for `filter` once the SUBACK is out.
    pub(super) fn defer_retained(&mut self, token: u64, filter: &TopicFilter, sub: LocalSub) {
        if let Some(pending) = self.pending_subacks.get_mut(&token) {
            pending.retained.push((filter.clone(), sub));
        }
    }

    /// Sends the barrier behind this SUBSCRIBE's interest messages to every peer.
    pub(super) fn send_barrier(&mut self, token: u64) {
        for peer in 0..self.shards {
            if peer != self.id {
                self.send_to_peer(peer, MeshMsg::Barrier { token });
            }
        }
    }

    /// A peer has applied everything this shard sent before the barrier `token`.
    pub(super) fn on_barrier_ack(&mut self, token: u64) {
        let Some(pending) = self.pending_subacks.get_mut(&token) else {
            return;
        };
        pending.acks_left = pending.acks_left.saturating_sub(1);
        if pending.acks_left > 0 {
            return;
        }
        if let Some(pending) = self.pending_subacks.remove(&token) {
            self.release_suback(pending);
        }
    }

    fn release_suback(&mut self, pending: PendingSubAck) {
        if self.live_session(pending.conn) != Some(pending.session_key) {
            return;
        }
        self.write_packet(pending.conn, &Packet::SubAck(pending.suback));
        for (filter, sub) in pending.retained {
            self.send_retained(&filter, sub);
        }
    }
}
