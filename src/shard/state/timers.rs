//! `Timers`: the shard's timer wheel and what each timer guards (keepalive, stalled writers,
//! slow packets, session expiry, delayed wills), and what the shard does when one is due.

use super::connections::ConnId;
use super::{ShardState, secs};
use crate::protocol::{Reason, ReasonCode};
use crate::timer::{TimerId, TimerWheel};
use std::time::{Duration, Instant};

/// How long a stalled connection is given to take its DISCONNECT before it is cut. Its
/// writer may be part-way through a packet, so the DISCONNECT can only follow the bytes the
/// writer already holds; nothing waits for it beyond this.
pub const STALL_GRACE: Duration = Duration::from_secs(5);

/// Slots of the timer wheel: with 100 ms ticks one rotation is about 51 s.
const TIMER_SLOTS: usize = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum TimerKey {
    KeepAlive(ConnId),
    Stalled(ConnId),
    /// A stalled connection was given `STALL_GRACE` to take its DISCONNECT; now it is cut.
    StallGrace(ConnId),
    /// The packet a connection is part-way through may be late (`reading`).
    PacketTimeout(ConnId),
    /// An offline session reaches its Session Expiry Interval; `epoch` tells a later
    /// disconnect of the same session apart.
    SessionExpiry {
        session: usize,
        epoch: u64,
    },
    /// A delayed will is due (5.0 Will Delay Interval).
    WillDelay {
        session: usize,
        epoch: u64,
    },
}

/// The timers a connection may have armed, kept so that they are cancelled when it goes away
/// (a stale id is harmless: the wheel checks generations).
#[derive(Debug, Default)]
pub(super) struct ConnTimers {
    pub keep_alive: Option<TimerId>,
    pub stalled: Option<TimerId>,
    pub grace: Option<TimerId>,
    pub packet: Option<TimerId>,
}

/// The timers of an offline session: its expiry and its will's delay.
#[derive(Debug, Default)]
pub(super) struct SessionTimers {
    pub expiry: Option<TimerId>,
    pub will: Option<TimerId>,
}

#[derive(Debug)]
pub(super) struct Timers {
    wheel: TimerWheel<TimerKey>,
    /// Scratch: the keys due in one tick, kept for its capacity.
    due: Vec<TimerKey>,
}

impl Timers {
    pub fn new(tick: Duration, now: Instant) -> Self {
        Self {
            wheel: TimerWheel::new(tick, TIMER_SLOTS, now),
            due: Vec::new(),
        }
    }

    pub fn arm(&mut self, at: Instant, key: TimerKey) -> TimerId {
        self.wheel.arm(at, key)
    }

    /// Disarms `slot`'s timer, if any, and empties the slot.
    pub fn cancel(&mut self, slot: &mut Option<TimerId>) {
        if let Some(id) = slot.take() {
            self.wheel.cancel(id);
        }
    }

    /// Arms a timer in `slot`, disarming the one it held (re-arming never leaves two).
    pub fn rearm(&mut self, slot: &mut Option<TimerId>, at: Instant, key: TimerKey) {
        self.cancel(slot);
        *slot = Some(self.wheel.arm(at, key));
    }

    /// Disarms every timer of a connection that goes away.
    pub fn cancel_conn(&mut self, timers: &mut ConnTimers) {
        self.cancel(&mut timers.keep_alive);
        self.cancel(&mut timers.stalled);
        self.cancel(&mut timers.grace);
        self.cancel(&mut timers.packet);
    }

    /// Disarms the timers of a session that is back online or ends.
    pub fn cancel_session(&mut self, timers: &mut SessionTimers) {
        self.cancel(&mut timers.expiry);
        self.cancel(&mut timers.will);
    }

    /// Armed timers (for tests).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.wheel.len()
    }

    /// The keys due at `now`; hand the vector back with `restore_due`.
    fn take_due(&mut self, now: Instant) -> Vec<TimerKey> {
        let mut due = std::mem::take(&mut self.due);
        due.clear();
        self.wheel.expire(now, &mut due);
        due
    }

    fn restore_due(&mut self, due: Vec<TimerKey>) {
        self.due = due;
    }
}

impl ShardState {
    /// Fires due timers: keepalive timeouts [MQTT-3.1.2-24], stalled connections, session
    /// expiry and delayed wills.
    pub fn tick(&mut self, now: Instant) {
        let mut due = self.timers.take_due(now);
        for key in due.drain(..) {
            match key {
                TimerKey::KeepAlive(conn) => self.check_keep_alive(conn, now),
                TimerKey::Stalled(conn) => self.check_stalled(conn, now),
                TimerKey::StallGrace(conn) => {
                    if let Some(c) = self.conns.get_mut(conn) {
                        c.timers.grace = None;
                        c.abort();
                    }
                }
                TimerKey::PacketTimeout(conn) => self.check_packet_timeout(conn, now),
                TimerKey::SessionExpiry { session, epoch } => {
                    if self.sessions.offline_since(session, epoch) {
                        self.stats.sessions_expired += 1;
                        self.remove_session(session, now);
                    }
                }
                TimerKey::WillDelay { session, epoch } => {
                    self.publish_delayed_will(session, epoch, now)
                }
            }
        }
        self.timers.restore_due(due);
        self.check_congestion(now);
        self.refresh_gates(now);
        self.finish(now);
        self.conns.release_encoder_memory();
    }

    fn check_keep_alive(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(conn).filter(|c| !c.closing) else {
            return;
        };
        // This timer has fired: its id is stale.
        c.timers.keep_alive = None;
        let Some(period) = c.keep_alive else {
            return;
        };
        let deadline = c.last_activity + period;
        if deadline > now {
            let key = TimerKey::KeepAlive(conn);
            c.timers.keep_alive = Some(self.timers.arm(deadline, key));
        } else {
            let reason = Reason::explained(
                ReasonCode::KeepAliveTimeout,
                "no packet within 1.5 times the keep alive [MQTT-3.1.2-22]",
            );
            self.close(conn, Some(reason), true, now);
        }
    }

    fn publish_delayed_will(&mut self, session_key: usize, epoch: u64, now: Instant) {
        if !self.sessions.offline_since(session_key, epoch) {
            return;
        }
        let will = self.sessions.get_mut(session_key).and_then(|e| {
            e.timers.will = None;
            e.pending_will.take()
        });
        if let Some(will) = will {
            self.route_will(will, now);
        }
    }

    /// Arms the timers of a session that just went offline at `now` in `epoch`: its expiry,
    /// unless it never expires, and its will's delay (`will_delay` seconds), if it has a
    /// delayed will.
    pub(super) fn arm_offline_timers(
        &mut self,
        session: usize,
        (epoch, will_delay): (u64, u32),
        now: Instant,
    ) {
        let Some(entry) = self.sessions.get_mut(session) else {
            return;
        };
        let interval = entry
            .session
            .expiry_interval()
            .min(self.limits.max_session_expiry);
        entry.expiry_due = None;
        if interval != u32::MAX {
            let key = TimerKey::SessionExpiry { session, epoch };
            let at = now + secs(interval);
            entry.expiry_due = Some(at);
            self.timers.rearm(&mut entry.timers.expiry, at, key);
        }
        if entry.pending_will.is_some() {
            let delay = will_delay.min(interval);
            let key = TimerKey::WillDelay { session, epoch };
            let at = now + secs(delay);
            entry.will_due = Some(at);
            self.timers.rearm(&mut entry.timers.will, at, key);
        }
    }

    /// The client is not reading fast enough: QoS 0 gets dropped and QoS 1/2 queued from now
    /// on; the stall timer disconnects it if this lasts.
    pub(super) fn mark_over_cap(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.over_cap_since = Some(now);
        let at = now + self.limits.stall_timeout;
        self.timers
            .rearm(&mut c.timers.stalled, at, TimerKey::Stalled(conn));
        let session = c.session;
        if let Some(entry) = self.sessions.get_mut(session) {
            // Not writable releases nothing.
            let mut none = Vec::new();
            entry.session.set_writable(false, &mut none);
        }
    }

    /// A connection whose writer made no progress for `stall_timeout` while over its
    /// outbound limit is closed. 5.0 clients get DISCONNECT 0x97 Quota exceeded (3.14.2.1: "an
    /// implementation or administrative imposed limit has been exceeded", here the outbound
    /// buffer limit and the stall timeout; 0x80 Unspecified error is for when no code applies,
    /// and 0x89 Server busy would blame the server, not the slow client). Nothing waits for
    /// the client: the unsent backlog is dropped (QoS 1/2 stay in the session's window), the
    /// DISCONNECT goes right behind the bytes the writer is already writing, and if it has
    /// not gone out within `STALL_GRACE` the connection is cut.
    fn check_stalled(&mut self, conn: ConnId, now: Instant) {
        let limit = self.limits.stall_timeout;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.timers.stalled = None;
        let stalled = c
            .over_cap_since
            .is_some_and(|since| now.duration_since(since) >= limit);
        if !stalled {
            return;
        }
        // Closing already (for another reason, or by an earlier stall timer of the same
        // connection): it gets the grace too, and no second DISCONNECT.
        if !c.closing {
            c.outbound.clear();
            self.counters.stalled_disconnects += 1;
            let reason = Reason::explained(
                ReasonCode::QuotaExceeded,
                "the client read nothing while its unsent messages were over the outbound limit",
            );
            self.close(conn, Some(reason), true, now);
        }
        if let Some(c) = self.conns.get_mut(conn) {
            let at = now + STALL_GRACE;
            self.timers
                .rearm(&mut c.timers.grace, at, TimerKey::StallGrace(conn));
        }
    }
}
