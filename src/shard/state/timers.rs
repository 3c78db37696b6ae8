//! `Timers`: the shard's timer wheel and what each timer guards (keepalive, stalled writers,
//! session expiry, delayed wills), and what the shard does when one is due.

use super::connections::ConnId;
use super::{ShardState, secs};
use crate::protocol::{Reason, ReasonCode};
use crate::timer::TimerWheel;
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

    pub fn arm(&mut self, at: Instant, key: TimerKey) {
        self.wheel.arm(at, key);
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
                        c.abort();
                    }
                }
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
    }

    fn check_keep_alive(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get(conn).filter(|c| !c.closing) else {
            return;
        };
        let Some(period) = c.keep_alive else {
            return;
        };
        let deadline = c.last_activity + period;
        if deadline > now {
            self.timers.arm(deadline, TimerKey::KeepAlive(conn));
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
        let will = self
            .sessions
            .get_mut(session_key)
            .and_then(|e| e.pending_will.take());
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
        let Some(entry) = self.sessions.get(session) else {
            return;
        };
        let interval = entry
            .session
            .expiry_interval()
            .min(self.limits.max_session_expiry);
        if interval != u32::MAX {
            let key = TimerKey::SessionExpiry { session, epoch };
            self.timers.arm(now + secs(interval), key);
        }
        if entry.pending_will.is_some() {
            let delay = will_delay.min(interval);
            let key = TimerKey::WillDelay { session, epoch };
            self.timers.arm(now + secs(delay), key);
        }
    }

    /// The client is not reading fast enough: QoS 0 gets dropped and QoS 1/2 queued from now
    /// on; the stall timer disconnects it if this lasts.
    pub(super) fn mark_over_cap(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.over_cap_since = Some(now);
        let session = c.session;
        if let Some(entry) = self.sessions.get_mut(session) {
            // Not writable releases nothing.
            let mut none = Vec::new();
            entry.session.set_writable(false, &mut none);
        }
        self.timers
            .arm(now + self.limits.stall_timeout, TimerKey::Stalled(conn));
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
        self.timers
            .arm(now + STALL_GRACE, TimerKey::StallGrace(conn));
    }
}
