//! Timer expiry: keepalive timeouts, stalled writers, session expiry.

use super::*;

/// How long a stalled connection is given to take its DISCONNECT before it is cut. Its
/// writer may be part-way through a packet, so the DISCONNECT can only follow the bytes the
/// writer already holds; nothing waits for it beyond this.
pub const STALL_GRACE: Duration = Duration::from_secs(5);

impl ShardState {
    /// Fires due timers: keepalive timeouts [MQTT-3.1.2-24] and stalled connections.
    pub fn tick(&mut self, now: Instant) {
        let mut expired = std::mem::take(&mut self.expired);
        expired.clear();
        self.timers.expire(now, &mut expired);
        for key in expired.drain(..) {
            match key {
                TimerKey::KeepAlive(conn) => self.check_keep_alive(conn, now),
                TimerKey::Stalled(conn) => self.check_stalled(conn, now),
                TimerKey::StallGrace(conn) => self.abort(conn),
                TimerKey::SessionExpiry { session, epoch } => self.expire_session(session, epoch),
                TimerKey::WillDelay { session, epoch } => self.publish_delayed_will(session, epoch),
            }
        }
        self.expired = expired;
        if !self.gated.is_empty() {
            self.refresh_gates(now);
        }
        self.mesh.flush_wakes();
    }

    fn check_keep_alive(&mut self, conn: ConnId, now: Instant) {
        let Some(c) = self.conn(conn).filter(|c| !c.closing) else {
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
            self.close(conn, Some(reason), true);
        }
    }

    fn publish_delayed_will(&mut self, session_key: usize, epoch: u64) {
        let will = self
            .sessions
            .get_mut(session_key)
            .filter(|e| e.conn.is_none() && e.epoch == epoch)
            .and_then(|e| e.pending_will.take());
        if let Some(will) = will {
            self.route_will(will);
        }
    }

    fn expire_session(&mut self, session_key: usize, epoch: u64) {
        let expired = self
            .sessions
            .get(session_key)
            .is_some_and(|e| e.conn.is_none() && e.epoch == epoch);
        if expired {
            self.remove_session(session_key);
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
        let Some(c) = self.conn_mut(conn) else {
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
            self.close(conn, Some(reason), true);
        }
        self.timers
            .arm(now + STALL_GRACE, TimerKey::StallGrace(conn));
    }

    /// Stops a connection's IO without flushing what is left (its writer then frees it).
    fn abort(&mut self, conn: ConnId) {
        if let Some(c) = self.conn_mut(conn) {
            c.abort = true;
            c.cancel.fire();
            wake(&mut c.writer);
        }
    }
}
