//! Timer expiry: keepalive timeouts, stalled writers, session expiry.

use super::*;

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

    fn check_stalled(&mut self, conn: ConnId, now: Instant) {
        let limit = self.limits.stall_timeout;
        let stalled = self
            .conn(conn)
            .and_then(|c| c.over_cap_since)
            .is_some_and(|since| now.duration_since(since) >= limit);
        if stalled {
            self.counters.stalled_disconnects += 1;
            self.close(conn, None, true);
            if let Some(c) = self.conn_mut(conn) {
                c.abort = true;
                c.cancel.fire();
                wake(&mut c.writer);
            }
        }
    }
}
