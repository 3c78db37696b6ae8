//! What the shard's connections are part-way through reading: the budget of bytes that
//! large packets (over `LARGE_PACKET` each) may hold in read buffers at once, with the readers
//! waiting for room in it, and each connection's packet clock, which closes a connection
//! whose packet takes longer than `mqtt.packet_timeout_ms` to arrive (slowloris).

use super::ShardState;
use super::connections::ConnId;
use super::timers::TimerKey;
use crate::protocol::{Reason, ReasonCode};
use std::task::{Poll, Waker};
use std::time::Instant;

/// Packets up to this size are read into a connection's ordinary read buffer; a larger one
/// is read only with room taken from the shard's budget for its whole size.
pub const LARGE_PACKET: usize = 64 * 1024;

/// Sockets a shard lets linger at once after closing them (each holds a socket, a small
/// buffer and a task for 2 s at most); past this a closed socket closes at once.
pub const MAX_LINGERING: usize = 1024;

/// The shard's budget for large packets being read (`mqtt.max_partial_bytes`).
#[derive(Debug)]
pub(super) struct ReadBudget {
    limit: usize,
    used: usize,
    /// Readers waiting for room, woken whenever room is given back or a connection goes.
    waiting: Vec<Waker>,
    /// Readers discarding input after the broker closed their connection.
    lingering: usize,
}

impl ReadBudget {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            used: 0,
            waiting: Vec::new(),
            lingering: 0,
        }
    }

    fn take(&mut self, bytes: usize, waker: &Waker) -> bool {
        if self.used.saturating_add(bytes) <= self.limit {
            self.used += bytes;
            return true;
        }
        if !self.waiting.iter().any(|w| w.will_wake(waker)) {
            self.waiting.push(waker.clone());
        }
        false
    }

    fn give_back(&mut self, bytes: usize) {
        self.used = self.used.saturating_sub(bytes);
        self.wake_all();
    }

    /// Wakes every waiting reader (each looks again: room, or its connection closed).
    pub fn wake_all(&mut self) {
        self.waiting.drain(..).for_each(Waker::wake);
    }
}

impl ShardState {
    /// A reader needs `bytes` of the budget for the large packet it is reading (`conn` is
    /// `None` while the packet is a CONNECT). `Ready(true)`: taken; the packet clock of `conn`
    /// restarts, since the time spent waiting for room was not the client's. `Ready(false)`:
    /// the connection is closing, nothing was taken. `Pending`: `waker` is woken when room is
    /// given back; meanwhile the packet clock is stopped.
    pub fn take_read_room(
        &mut self,
        conn: Option<ConnId>,
        bytes: usize,
        now: Instant,
        waker: &Waker,
    ) -> Poll<bool> {
        if conn.is_some_and(|id| !self.is_live(id)) {
            return Poll::Ready(false);
        }
        let taken = self.reading.take(bytes, waker);
        if let Some(c) = conn.and_then(|id| self.conns.get_mut(id)) {
            c.partial_since = taken.then_some(now);
        }
        if !taken {
            return Poll::Pending;
        }
        if let Some(id) = conn {
            self.start_packet_clock(id, now);
        }
        Poll::Ready(true)
    }

    /// Gives back room taken with `take_read_room` (the packet was read, or its reader ended).
    pub fn give_back_read_room(&mut self, bytes: usize) {
        self.reading.give_back(bytes);
    }

    /// Bytes of the budget in use.
    pub fn read_room_in_use(&self) -> usize {
        self.reading.used
    }

    /// Whether the reader of `conn`, which has stopped reading packets, should linger: the
    /// broker closed the connection (and did not abort it: an aborted client is not reading)
    /// or it is gone already (its writer flushed and shut down).
    pub fn lingers(&self, conn: ConnId) -> bool {
        self.conns.get(conn).is_none_or(|c| c.closing && !c.abort)
    }

    /// A reader starts lingering; false when `MAX_LINGERING` already do (close at once).
    pub fn start_linger(&mut self) -> bool {
        let ok = self.reading.lingering < MAX_LINGERING;
        self.reading.lingering += usize::from(ok);
        ok
    }

    pub fn end_linger(&mut self) {
        self.reading.lingering = self.reading.lingering.saturating_sub(1);
    }

    /// Readers lingering now.
    pub fn lingering(&self) -> usize {
        self.reading.lingering
    }

    /// The reader ended a batch with `buffered` left over: part of a packet whose clock
    /// starts now unless it started before (`on_packet` stops it when a packet completes).
    pub(super) fn note_partial(&mut self, conn: ConnId, buffered: &[u8], now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if buffered.is_empty() {
            c.partial_since = None;
        } else if c.partial_since.is_none() {
            c.partial_since = Some(now);
            self.start_packet_clock(conn, now);
        }
    }

    /// Arms the connection's packet timer unless one is armed; it fires at the earliest when
    /// the packet started now would be late, and looks again then.
    fn start_packet_clock(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.timers.packet.is_none() {
            let key = TimerKey::PacketTimeout(conn);
            c.timers.packet = Some(self.timers.arm(now + self.limits.packet_timeout, key));
        }
    }

    /// The packet timer fired: a connection still part-way through a packet that started
    /// `mqtt.packet_timeout_ms` ago is closed; one whose packet started later is looked at
    /// again then. 5.0 clients get DISCONNECT 0x97 Quota exceeded (3.14.2.1: "an
    /// implementation or administrative imposed limit has been exceeded", here the configured
    /// time for one packet; 0x8D Keep Alive timeout would name the keep alive, which this is
    /// not, and 0x81 Malformed Packet a packet that breaks the spec, which a slow one does
    /// not).
    pub(super) fn check_packet_timeout(&mut self, conn: ConnId, now: Instant) {
        let limit = self.limits.packet_timeout;
        let Some(c) = self.conns.get_mut(conn).filter(|c| !c.closing) else {
            return;
        };
        c.timers.packet = None;
        let Some(since) = c.partial_since else {
            return;
        };
        let deadline = since + limit;
        if deadline > now {
            let key = TimerKey::PacketTimeout(conn);
            c.timers.packet = Some(self.timers.arm(deadline, key));
            return;
        }
        let text = format!(
            "a packet took longer than {} ms to arrive",
            limit.as_millis()
        );
        let reason = Reason::detailed(ReasonCode::QuotaExceeded, text);
        self.close(conn, Some(reason), true, now);
    }
}
