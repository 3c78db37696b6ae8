//! Packets from a connection after CONNACK: handed to the session, whose actions the
//! dispatcher applies; re-authentication (AUTH); the Receive Maximum; malformed input and
//! lost connections.

use super::ShardState;
use super::connections::ConnId;
use crate::auth::Reply;
use crate::protocol::{Auth, DecodeError, Packet, ProtocolVersion, QoS, Reason, ReasonCode, fit};
use std::time::Instant;

impl ShardState {
    /// Handles one packet from a connection. Returns false once the connection is closing
    /// (the reader stops).
    pub fn on_packet(&mut self, conn: ConnId, packet: Packet, now: Instant) -> bool {
        let Some(c) = self.conns.get_mut(conn).filter(|c| !c.closing) else {
            return false;
        };
        // A packet arrived whole: the next one has a clock of its own.
        c.partial_since = None;
        let session_key = c.session;
        if log::log_enabled!(log::Level::Debug) {
            self.log_packet(conn, &packet);
        }
        self.stats.packets_received += 1;
        if let Packet::Publish(publish) = &packet {
            self.stats.received(publish.qos);
        }
        if let Packet::Auth(auth) = &packet {
            return self.on_auth(conn, auth, now);
        }
        if let Some(reason) = self.unanswerable(conn, &packet) {
            self.close(conn, Some(reason), true, now);
            self.finish(now);
            return false;
        }
        if self.over_receive_maximum(conn, session_key, &packet) {
            let maximum = self.limits.session.max_inbound_qos2;
            let text = format!(
                "more than {maximum} QoS 1 and 2 PUBLISHes unacknowledged, the Receive Maximum \
                 [MQTT-3.3.4-9]"
            );
            let reason = Reason::detailed(ReasonCode::ReceiveMaximumExceeded, text);
            self.close(conn, Some(reason), true, now);
            self.finish(now);
            return false;
        }
        if self.journal.is_some() && self.refused_for_log(conn, session_key, &packet, now) {
            self.finish(now);
            return self.is_live(conn);
        }
        let mut actions = self.work.take();
        let ack = matches!(
            packet,
            Packet::PubAck(_) | Packet::PubComp(_) | Packet::PubRec(_)
        );
        if let Some(entry) = self.sessions.get_mut(session_key) {
            entry.session.on_packet(packet, &mut actions);
        }
        self.apply(conn, &mut actions, now);
        self.work.restore(actions);
        if ack {
            self.after_acks(session_key, now);
        }
        self.settle(now);
        self.is_live(conn)
    }

    /// AUTH after CONNACK: a re-authentication [MQTT-4.12.1-1]. Other packets keep flowing
    /// meanwhile (the connection stays authenticated as before); a failed one is answered
    /// with DISCONNECT and the connection closed [MQTT-4.12.1-2].
    fn on_auth(&mut self, conn: ConnId, auth: &Auth, now: Instant) -> bool {
        let Some(mut flow) = self.conns.get_mut(conn).and_then(|c| c.auth.take()) else {
            // [MQTT-4.12.0-7] no method in CONNECT: the client must not send AUTH.
            let reason = Reason::explained(
                ReasonCode::ProtocolError,
                "AUTH from a client whose CONNECT named no authentication method [MQTT-4.12.0-7]",
            );
            self.close(conn, Some(reason), true, now);
            self.finish(now);
            return false;
        };
        match flow.on_auth(&self.admission.methods, auth) {
            Reply::Continue(data) => {
                let packet = flow.auth_packet(ReasonCode::ContinueAuthentication, Some(data));
                self.write_packet(conn, &packet, now);
            }
            Reply::Success(data) => {
                let packet = flow.auth_packet(ReasonCode::Success, data);
                self.write_packet(conn, &packet, now);
            }
            Reply::Fail(reason) => {
                // DISCONNECT has no 0x8C (Table 3-10).
                let reason = match reason {
                    ReasonCode::BadAuthenticationMethod => ReasonCode::NotAuthorized,
                    other => other,
                };
                self.close(conn, Some(reason.into()), true, now);
            }
        }
        if let Some(c) = self.conns.get_mut(conn) {
            c.auth = Some(flow);
        }
        self.settle(now);
        self.is_live(conn)
    }

    /// [MQTT-3.3.4-9] a 5.0 client may have at most our Receive Maximum QoS 1/2 PUBLISHes
    /// unacknowledged: QoS 2 ones awaiting PUBREL plus acknowledgements flow control holds.
    fn over_receive_maximum(&self, conn: ConnId, session_key: usize, packet: &Packet) -> bool {
        let Packet::Publish(publish) = packet else {
            return false;
        };
        let (Some(c), Some(entry)) = (self.conns.get(conn), self.sessions.get(session_key)) else {
            return false;
        };
        if c.version != ProtocolVersion::V5 || c.held_acks.is_empty() {
            return false;
        }
        let duplicate = publish
            .packet_id
            .is_some_and(|id| entry.session.awaits_pubrel(id));
        // Held PUBRECs belong to QoS 2 messages `inbound_qos2` already counts.
        let held_pubacks = c
            .held_acks
            .iter()
            .filter(|p| matches!(p, Packet::PubAck(_)))
            .count();
        let unacknowledged = held_pubacks + entry.session.inbound_qos2_len();
        publish.qos != QoS::AtMostOnce
            && !duplicate
            && unacknowledged >= usize::from(self.limits.session.max_inbound_qos2)
    }

    /// The reader finished a batch with `buffered` left over (part of a packet, or nothing):
    /// record activity (for keepalive), start the clock of a packet begun, ring the peers.
    pub fn end_of_batch(&mut self, conn: ConnId, now: Instant, buffered: &[u8]) {
        if let Some(c) = self.conns.get_mut(conn) {
            c.last_activity = now;
        }
        self.note_partial(conn, buffered, now);
        self.finish(now);
    }

    /// The byte stream is not MQTT: 5.0 gets DISCONNECT with the reason, then close.
    pub fn on_malformed(&mut self, conn: ConnId, error: &DecodeError, now: Instant) {
        let reason = Reason::detailed(error.reason_code(), error.to_string());
        self.close(conn, Some(reason), true, now);
        self.finish(now);
    }

    /// The socket hit EOF or an error without a DISCONNECT: the will goes out.
    pub fn on_connection_lost(&mut self, conn: ConnId, now: Instant) {
        self.close(conn, None, true, now);
        self.finish(now);
    }

    pub(super) fn live_session(&self, conn: ConnId) -> Option<usize> {
        self.conns
            .get(conn)
            .filter(|c| !c.closing)
            .map(|c| c.session)
    }

    pub fn is_live(&self, conn: ConnId) -> bool {
        self.conns.get(conn).is_some_and(|c| !c.closing)
    }

    /// [MQTT-3.1.2-24] a SUBSCRIBE or UNSUBSCRIBE must be answered [MQTT-3.8.4-1]
    /// [MQTT-3.10.4-4], but an acknowledgement over the client's Maximum Packet Size even
    /// without properties cannot be sent: the connection closes with 0x95 Packet too large
    /// before anything is applied, so the client is not left guessing which filters took
    /// effect.
    fn unanswerable(&self, conn: ConnId, packet: &Packet) -> Option<Reason> {
        let (ack, codes) = match packet {
            Packet::Subscribe(s) => ("SUBACK", s.subscriptions.len()),
            Packet::Unsubscribe(u) => ("UNSUBACK", u.filters.len()),
            _ => return None,
        };
        let c = self.conns.get(conn)?;
        let len = fit::bare_ack_len(codes);
        let limit = c.peer.max_packet_size;
        if c.version != ProtocolVersion::V5 || len <= limit as usize {
            return None;
        }
        let text = format!(
            "the {ack} for {codes} topic filters would be {len} bytes, over the client's \
             Maximum Packet Size of {limit} [MQTT-3.1.2-24]"
        );
        Some(Reason::detailed(ReasonCode::PacketTooLarge, text))
    }
}
