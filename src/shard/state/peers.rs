//! The shard's side of the mesh: sending with a bounded per-peer overflow (never dropping),
//! back-pressure on readers, and handling what peers send.

use super::*;

impl ShardState {
    /// Sends to a peer, or holds the message in that peer's overflow while its ring is full.
    /// Overflowed messages keep their order and are never dropped.
    pub(super) fn send_to_peer(&mut self, peer: usize, msg: MeshMsg) {
        let Some(queue) = self.overflow.get_mut(peer) else {
            return;
        };
        let carries_message = matches!(
            msg,
            MeshMsg::Publish(_) | MeshMsg::Retain(_) | MeshMsg::SharedPublish { .. }
        );
        if !queue.is_empty() {
            queue.push_back(msg);
        } else if let Err(msg) = self.mesh.try_send(peer, msg) {
            self.counters.mesh_overflowed += 1;
            queue.push_back(msg);
            wake(&mut self.overflow_waker);
        } else {
            return;
        }
        if carries_message {
            self.note_overflow(peer);
        }
    }

    /// Retries overflowed messages; returns true when every overflow is empty.
    pub fn flush_overflow(&mut self) -> bool {
        let mut all_empty = true;
        for peer in 0..self.overflow.len() {
            while let Some(msg) = self.overflow[peer].pop_front() {
                if let Err(msg) = self.mesh.try_send(peer, msg) {
                    self.overflow[peer].push_front(msg);
                    all_empty = false;
                    break;
                }
            }
        }
        self.mesh.flush_wakes();
        if !self.is_paused() {
            self.paused_readers.drain(..).for_each(Waker::wake);
        }
        if !self.gated.is_empty() {
            self.refresh_gates(Instant::now());
        }
        all_empty
    }

    pub fn has_overflow(&self) -> bool {
        self.overflow.iter().any(|q| !q.is_empty())
    }

    pub fn set_overflow_waker(&mut self, waker: &Waker) {
        self.overflow_waker = Some(waker.clone());
    }

    /// Publishing connections stop reading while a peer's overflow is over its bound.
    pub fn is_paused(&self) -> bool {
        self.overflow
            .iter()
            .any(|q| q.len() > self.limits.max_mesh_overflow)
    }

    pub fn park_reader(&mut self, waker: &Waker) {
        self.paused_readers.push(waker.clone());
    }

    pub fn mesh(&self) -> &MeshEnds<MeshMsg> {
        &self.mesh
    }

    /// Handles up to `max` messages from peers; returns how many. Handoffs are left in
    /// `take_handoffs` for the caller to spawn.
    pub fn drain_mesh(&mut self, max: usize) -> usize {
        let mut inbox = std::mem::take(&mut self.mesh_inbox);
        let n = self.mesh.drain(max, |from, msg| inbox.push((from, msg)));
        for (from, msg) in inbox.drain(..) {
            self.on_mesh_msg(from, msg);
        }
        self.mesh_inbox = inbox;
        self.mesh.flush_wakes();
        n
    }

    fn on_mesh_msg(&mut self, from: usize, msg: MeshMsg) {
        match msg {
            MeshMsg::Publish(msg) => {
                let Some(msg) = still_fresh(msg) else { return };
                self.deliver_local(&msg, None);
            }
            MeshMsg::Retain(msg) => {
                let Some(msg) = still_fresh(msg) else { return };
                self.store_retained(&msg);
                self.deliver_local(&msg, None);
            }
            MeshMsg::Interest { filter, add: true } => {
                // Peers only announce filters their own trie accepted.
                let _ = self.remote.insert(&filter, from);
            }
            MeshMsg::Interest { filter, add: false } => {
                self.remote.remove(&filter, |&peer| peer == from);
            }
            MeshMsg::ShareInterest {
                filter,
                members,
                online,
            } => self.on_share_interest(from, filter, members, online),
            MeshMsg::SharedPublish { filter, msg, hops } => {
                let Some(msg) = still_fresh(msg) else { return };
                self.deliver_shared_here(&filter, &msg, hops);
            }
            MeshMsg::Handoff(handoff) => self.handoffs.push(*handoff),
            MeshMsg::Barrier { token } => self.send_to_peer(from, MeshMsg::BarrierAck { token }),
            MeshMsg::BarrierAck { token } => self.on_barrier_ack(token),
        }
    }

    pub fn take_handoffs(&mut self) -> Vec<Handoff> {
        std::mem::take(&mut self.handoffs)
    }

    /// Hands a connection to its home shard.
    pub fn send_handoff(&mut self, home: usize, handoff: Box<Handoff>) {
        self.send_to_peer(home, MeshMsg::Handoff(handoff));
        self.mesh.flush_wakes();
    }
}

/// A message that waited in a peer's overflow may have expired on the way [MQTT-3.3.2-5];
/// otherwise it goes on with its remaining expiry [MQTT-3.3.2-6]. The clock is read only for
/// messages that have an expiry.
pub(super) fn still_fresh(msg: Message) -> Option<Message> {
    if msg.expires_at.is_none() {
        return Some(msg);
    }
    let now = Instant::now();
    if msg.is_expired(now) {
        return None;
    }
    Some(msg.with_remaining_expiry(now).unwrap_or(msg))
}
