//! `MeshOut`: this shard's ends of the mesh, with a per-peer overflow that holds messages
//! while a peer's ring is full (in order, never dropped), the back-pressure that pauses
//! publishing readers while an overflow is over its bound, and the inbox of what peers sent.

use crate::mesh::MeshEnds;
use crate::shard::MeshMsg;
use std::collections::VecDeque;
use std::task::Waker;

/// How a message left for a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(super) enum Sent {
    /// In the peer's ring.
    Now,
    /// Waiting in the peer's overflow (a message behind it waits too, to keep the order).
    Overflowed,
}

#[derive(Debug)]
pub(super) struct MeshOut {
    ends: MeshEnds<MeshMsg>,
    overflow: Vec<VecDeque<MeshMsg>>,
    overflow_waker: Option<Waker>,
    /// Readers parked while an overflow is over `max_overflow`.
    paused_readers: Vec<Waker>,
    /// Messages held per peer when its ring is full before reading pauses.
    max_overflow: usize,
    /// Messages that ever waited in an overflow.
    overflowed: u64,
    /// Scratch: what one drain took from the rings, kept for its capacity.
    inbox: Vec<(usize, MeshMsg)>,
}

impl MeshOut {
    pub fn new(ends: MeshEnds<MeshMsg>, max_overflow: usize) -> Self {
        let shards = ends.shards();
        Self {
            ends,
            overflow: (0..shards).map(|_| VecDeque::new()).collect(),
            overflow_waker: None,
            paused_readers: Vec::new(),
            max_overflow,
            overflowed: 0,
            inbox: Vec::new(),
        }
    }

    pub fn ends(&self) -> &MeshEnds<MeshMsg> {
        &self.ends
    }

    /// Sends to a peer, or holds the message in that peer's overflow while its ring is full.
    pub fn send(&mut self, peer: usize, msg: MeshMsg) -> Sent {
        let Some(queue) = self.overflow.get_mut(peer) else {
            return Sent::Now;
        };
        if !queue.is_empty() {
            queue.push_back(msg);
            return Sent::Overflowed;
        }
        match self.ends.try_send(peer, msg) {
            Ok(()) => Sent::Now,
            Err(msg) => {
                self.overflowed += 1;
                queue.push_back(msg);
                if let Some(w) = self.overflow_waker.take() {
                    w.wake();
                }
                Sent::Overflowed
            }
        }
    }

    /// Retries overflowed messages and wakes parked readers once the pause is over; returns
    /// true when every overflow is empty.
    pub fn flush_overflow(&mut self) -> bool {
        let mut all_empty = true;
        for peer in 0..self.overflow.len() {
            while let Some(msg) = self.overflow[peer].pop_front() {
                if let Err(msg) = self.ends.try_send(peer, msg) {
                    self.overflow[peer].push_front(msg);
                    all_empty = false;
                    break;
                }
            }
        }
        self.ends.flush_wakes();
        if !self.is_paused() {
            self.paused_readers.drain(..).for_each(Waker::wake);
        }
        all_empty
    }

    pub fn has_overflow(&self) -> bool {
        self.overflow.iter().any(|q| !q.is_empty())
    }

    /// Whether messages for `peer` wait in its overflow.
    pub fn is_overflowing(&self, peer: usize) -> bool {
        self.overflow.get(peer).is_some_and(|q| !q.is_empty())
    }

    pub fn set_overflow_waker(&mut self, waker: &Waker) {
        self.overflow_waker = Some(waker.clone());
    }

    /// Publishing connections stop reading while a peer's overflow is over its bound.
    pub fn is_paused(&self) -> bool {
        self.overflow.iter().any(|q| q.len() > self.max_overflow)
    }

    pub fn park_reader(&mut self, waker: &Waker) {
        self.paused_readers.push(waker.clone());
    }

    pub fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// Messages waiting in the overflows now.
    pub fn overflow_len(&self) -> usize {
        self.overflow.iter().map(VecDeque::len).sum()
    }

    /// Rings the doorbells of peers that were sent something since the last flush.
    pub fn flush_wakes(&mut self) {
        self.ends.flush_wakes();
    }

    /// Takes up to `max` messages from the peers' rings. The caller hands the vector back
    /// with `restore_inbox`.
    pub fn take_inbox(&mut self, max: usize) -> Vec<(usize, MeshMsg)> {
        let mut inbox = std::mem::take(&mut self.inbox);
        self.ends.drain(max, |from, msg| inbox.push((from, msg)));
        inbox
    }

    pub fn restore_inbox(&mut self, mut inbox: Vec<(usize, MeshMsg)>) {
        inbox.clear();
        self.inbox = inbox;
    }
}
