//! The shard's side of the mesh as its tasks see it: what peers send (deliveries, retained
//! messages, interest, shared groups, barriers, handoffs), the overflow retry, and reader
//! back-pressure.

use super::ShardState;
use crate::mesh::MeshEnds;
use crate::shard::{Handoff, MeshMsg};
use std::task::Waker;
use std::time::Instant;

impl ShardState {
    /// Retries overflowed messages; returns true when every overflow is empty. Publishers
    /// held back for a peer whose overflow cleared go on.
    pub fn flush_overflow(&mut self, now: Instant) -> bool {
        let all_empty = self.mesh.flush_overflow();
        self.refresh_gates(now);
        self.finish(now);
        all_empty
    }

    pub fn has_overflow(&self) -> bool {
        self.mesh.has_overflow()
    }

    pub fn set_overflow_waker(&mut self, waker: &Waker) {
        self.mesh.set_overflow_waker(waker);
    }

    /// Publishing connections stop reading while a peer's overflow is over its bound.
    pub fn is_paused(&self) -> bool {
        self.mesh.is_paused()
    }

    pub fn park_reader(&mut self, waker: &Waker) {
        self.mesh.park_reader(waker);
    }

    pub fn mesh(&self) -> &MeshEnds<MeshMsg> {
        self.mesh.ends()
    }

    /// Handles up to `max` messages from peers; returns how many. Connections handed to this
    /// shard are pushed to `handoffs` for the caller to serve.
    pub fn drain_mesh(&mut self, max: usize, now: Instant, handoffs: &mut Vec<Handoff>) -> usize {
        let mut inbox = self.mesh.take_inbox(max);
        let n = inbox.len();
        for (from, msg) in inbox.drain(..) {
            if let MeshMsg::Handoff(handoff) = msg {
                handoffs.push(*handoff);
            } else {
                self.on_mesh_msg(from, msg, now);
            }
        }
        self.mesh.restore_inbox(inbox);
        self.finish(now);
        n
    }

    /// A message from peer `from`. What it delivers holds nothing back: pausing the mesh for
    /// one slow subscriber would stall every other subscriber of this shard (`flow`).
    fn on_mesh_msg(&mut self, from: usize, msg: MeshMsg, now: Instant) {
        match msg {
            MeshMsg::Publish(msg) => {
                if let Some(msg) = self.fresh(msg, now) {
                    let _ = self.deliver_local(&msg, None, now);
                }
            }
            MeshMsg::Retain(msg) => {
                if let Some(msg) = self.fresh(msg, now) {
                    self.store_retained(&msg);
                    let _ = self.deliver_local(&msg, None, now);
                }
            }
            MeshMsg::Interest { filter, add } => self.subs.on_peer_interest(from, &filter, add),
            MeshMsg::ShareInterest {
                filter,
                members,
                online,
            } => self.shared.set_peer_counts(from, &filter, members, online),
            MeshMsg::SharedPublish { filter, msg, hops } => {
                if let Some(msg) = self.fresh(msg, now) {
                    let _ = self.deliver_shared_here(&filter, &msg, hops, now);
                }
            }
            MeshMsg::Barrier { token } => {
                // Acknowledgements are never held back (`Sent` does not matter).
                let _ = self.mesh.send(from, MeshMsg::BarrierAck { token });
            }
            MeshMsg::BarrierAck { token } => self.on_barrier_ack(token, now),
            MeshMsg::DurableBarrier { token } => self.on_durable_barrier(from, token),
            MeshMsg::DurableAck { token } => self.on_durable_ack(token, now),
            MeshMsg::DiskState { failing } => self.on_peer_disk_state(from, failing),
            MeshMsg::Congestion { congested } => self.on_peer_congestion(from, congested, now),
            MeshMsg::SysReport(snapshot) => self.on_sys_report(from, *snapshot),
            // `drain_mesh` hands these to its caller.
            MeshMsg::Handoff(_) => {}
        }
    }

    /// Hands a connection to its home shard.
    pub fn send_handoff(&mut self, home: usize, handoff: Box<Handoff>) {
        let _ = self.mesh.send(home, MeshMsg::Handoff(handoff));
        self.mesh.flush_wakes();
    }
}
