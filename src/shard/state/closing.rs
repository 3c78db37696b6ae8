//! The end of a connection and of a session: the DISCONNECT that says why, the will, a
//! persistent session going offline, a session ending; the writer task's side of a
//! connection; shutdown.

use super::ShardState;
use super::WriterStep;
use super::connections::{ConnId, IoCancel, wake};
use super::events::Ending;
use crate::protocol::{self, Disconnect, Packet, ProtocolVersion, Reason, ReasonCode, TopicFilter};
use crate::session::Message;
use bytes::BytesMut;
use monoio::io::Canceller;
use std::task::Waker;
use std::time::Instant;

impl ShardState {
    /// Closes a connection once: queues the 5.0 DISCONNECT (with its Reason String when it
    /// fits the client's Maximum Packet Size [MQTT-3.14.2-3]; none at all when even the bare
    /// DISCONNECT would not), detaches the session (removing a non-persistent one), publishes
    /// the will if asked, and lets the writer flush and finish.
    pub fn close(
        &mut self,
        conn: ConnId,
        reason: Option<Reason>,
        publish_will: bool,
        now: Instant,
    ) {
        let ending = reason.map_or(Ending::Lost, Ending::Server);
        self.close_as(conn, ending, publish_will, now);
    }

    /// `close`, saying why the connection ends (for the log).
    pub(super) fn close_as(
        &mut self,
        conn: ConnId,
        ending: Ending,
        publish_will: bool,
        now: Instant,
    ) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        if c.closing {
            return;
        }
        c.closing = true;
        let session_key = c.session;
        let version = c.version;
        if let (Ending::Server(reason), ProtocolVersion::V5) = (&ending, version) {
            let packet = Packet::Disconnect(Disconnect::from_reason(reason.clone()));
            if let Ok(packet) = protocol::fit(&packet, version, c.peer) {
                let _ = protocol::encode(&packet, version, &mut c.outbound);
            }
        }
        wake(&mut c.writer);
        self.note_closed(conn, session_key, &ending);
        if let Some(will) = self.detach_session(session_key, conn, publish_will, now) {
            self.route_will(will, now);
        }
    }

    /// The connection of a session is gone: a non-persistent session ends now (a delayed will
    /// with it); a persistent one goes offline with its timers armed. Returns the will to
    /// publish now, if any.
    fn detach_session(
        &mut self,
        session_key: usize,
        conn: ConnId,
        publish_will: bool,
        now: Instant,
    ) -> Option<Message> {
        let entry = self.sessions.get_mut(session_key)?;
        if entry.conn != Some(conn) {
            return None;
        }
        entry.conn = None;
        let will_delay = entry.session.will_delay();
        let will = entry.session.detach(publish_will);
        if !entry.session.is_persistent() {
            // The session ends now, so a delayed will goes out now too.
            self.remove_session(session_key, now);
            return will;
        }
        let will = if will.is_some() && will_delay > 0 {
            entry.pending_will = will;
            None
        } else {
            will
        };
        let epoch = self.sessions.new_epoch(session_key)?;
        self.arm_offline_timers(session_key, (epoch, will_delay), now);
        self.log_session(session_key, now);
        // Its shared subscriptions count it offline: others online get the messages.
        self.announce_presence(session_key);
        will
    }

    pub(super) fn remove_session(&mut self, session_key: usize, now: Instant) {
        let Some(mut entry) = self.sessions.remove(session_key) else {
            return;
        };
        self.timers.cancel_session(&mut entry.timers);
        self.log_session_end(&entry);
        // What shared subscription groups gave it and its client does not have goes back
        // to the groups, once it is no longer a member (section 4.8.2).
        let mut undelivered = Vec::new();
        self.stats.retire(entry.session.stats());
        let lost = entry.session.take_undelivered_shared(&mut undelivered);
        self.counters.dropped_shared += lost;
        let filters: Vec<TopicFilter> = entry
            .session
            .subscriptions()
            .map(|(f, _)| f.clone())
            .collect();
        for filter in filters {
            self.unsubscribe(session_key, &filter);
        }
        self.return_to_groups(undelivered, now);
        // A will still waiting for its delay goes out when the session ends [MQTT-3.1.3-9].
        if let Some(will) = entry.pending_will {
            self.route_will(will, now);
        }
    }

    // ----- the writer task ------------------------------------------------------------------

    /// Swaps the connection's pending bytes into `spare` (which must be empty), or registers
    /// the writer's waker.
    pub fn writer_step(
        &mut self,
        conn: ConnId,
        spare: &mut BytesMut,
        waker: &Waker,
        now: Instant,
    ) -> WriterStep {
        let Some(c) = self.conns.get_mut(conn) else {
            return WriterStep::Finish;
        };
        if c.abort {
            return WriterStep::Finish;
        }
        if c.outbound.is_empty() {
            if c.closing {
                return WriterStep::Finish;
            }
            c.writer = Some(waker.clone());
            return WriterStep::Wait;
        }
        std::mem::swap(&mut c.outbound, spare);
        self.stats.bytes_sent += spare.len() as u64;
        if c.over_cap_since.take().is_some() {
            let session_key = c.session;
            if !c.closing {
                // Not stalled any more: nothing for its stall timer to check.
                self.timers.cancel(&mut c.timers.stalled);
                self.release_writable(conn, session_key, now);
            }
        }
        WriterStep::Write
    }

    /// The client's buffer drained below its cap: queued messages flow again.
    fn release_writable(&mut self, conn: ConnId, session_key: usize, now: Instant) {
        let mut actions = self.work.take();
        if let Some(entry) = self.sessions.get_mut(session_key) {
            entry.session.set_writable(true, &mut actions);
        }
        self.apply(conn, &mut actions, now);
        self.work.restore(actions);
        self.settle(now);
    }

    /// The connection's transport has bytes of its own to send (a TLS alert or session
    /// ticket): the writer takes them even with nothing in the outbound buffer.
    pub fn wake_writer(&mut self, conn: ConnId) {
        if let Some(c) = self.conns.get_mut(conn) {
            wake(&mut c.writer);
        }
    }

    /// The writer failed to write: the connection is lost.
    pub fn on_write_error(&mut self, conn: ConnId, now: Instant) {
        self.close_as(conn, Ending::WriteFailed, true, now);
        if let Some(c) = self.conns.get_mut(conn) {
            c.abort = true;
        }
        self.finish(now);
    }

    /// Whether the connection must stop without flushing (stalled client).
    pub fn is_aborted(&self, conn: ConnId) -> bool {
        self.conns.get(conn).is_none_or(|c| c.abort)
    }

    /// Registers the reader of `conn` as waiting for its socket to become readable; true
    /// when the connection's IO is stopped (aborted or removed) and it should end instead.
    pub fn park_idle_reader(&mut self, conn: ConnId, waker: &Waker) -> bool {
        match self.conns.get_mut(conn) {
            Some(c) if !c.abort => {
                c.reader = Some(waker.clone());
                false
            }
            _ => true,
        }
    }

    pub fn set_canceller(&mut self, conn: ConnId, canceller: Canceller) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.cancel = IoCancel::arm(canceller);
        }
    }

    /// The writer task ended: stop the reader and free the slot.
    pub fn remove_conn(&mut self, conn: ConnId, now: Instant) {
        self.close(conn, None, true, now);
        if let Some(mut c) = self.conns.remove(conn) {
            c.stop_io();
            self.timers.cancel_conn(&mut c.timers);
        }
        // A reader waiting for room may be this connection's: it looks again and ends.
        self.reading.wake_all();
        self.finish(now);
    }

    // ----- shutdown ---------------------------------------------------------------------------

    /// Closes every connection (5.0: DISCONNECT 0x8B Server Shutting Down) without wills.
    pub fn shut_down(&mut self, now: Instant) {
        for id in self.conns.ids() {
            self.close(id, Some(ReasonCode::ServerShuttingDown.into()), false, now);
        }
        self.finish(now);
    }
}
