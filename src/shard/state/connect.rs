//! CONNECT to CONNACK at the client id's home shard: the checks before a session is touched,
//! assigned client ids, takeover of a live connection with the same id, resuming or
//! replacing the session, and the CONNACK that tells the client the server's limits.

use super::connections::{Conn, ConnId};
use super::timers::TimerKey;
use super::{Authenticated, Refusal, ShardState, encode_fitted};
use crate::auth::Authentication;
use crate::protocol::{
    self, ConnAck, Connect, Disconnect, Packet, PeerLimits, Properties, ProtocolVersion, Reason,
    ReasonCode,
};
use crate::session::{self, Message, Session};
use crate::shard::home_shard;
use bytes::BytesMut;
use std::time::Instant;

/// The DISCONNECT of a connection whose client id connected again [MQTT-3.1.4-3].
pub(super) const TAKEN_OVER: Reason = Reason::explained(
    ReasonCode::SessionTakenOver,
    "another connection with the same client identifier took over the session",
);

impl ShardState {
    /// Checks a CONNECT before anything else; on success returns the client id to use and
    /// whether the broker assigned it. An assigned id is picked so that this shard is its home.
    pub fn admit(&mut self, connect: &Connect) -> Result<(String, bool), Refusal> {
        let admitted = self.check_admission(connect);
        if let Err(refusal) = &admitted {
            self.note_refused(connect, &refusal.reason);
        }
        admitted
    }

    fn check_admission(&mut self, connect: &Connect) -> Result<(String, bool), Refusal> {
        if let Some(refusal) = self.redirection(connect.version) {
            return Err(refusal);
        }
        let refuse = |reason: Reason| Refusal {
            version: connect.version,
            reason,
            server_reference: None,
        };
        let method = connect.properties.authentication_method.as_ref();
        if let Some(method) = method.filter(|m| self.admission.methods.find(m.as_str()).is_none()) {
            // [MQTT-4.12.0-1] a method the broker does not offer. Every shard offers the
            // same ones, so this is answered before any handoff.
            let text = format!(
                "authentication method {:?} is not supported",
                method.as_str()
            );
            return Err(refuse(Reason::detailed(
                ReasonCode::BadAuthenticationMethod,
                text,
            )));
        }
        if connect
            .client_id
            .as_str()
            .starts_with(crate::bridge::LOCAL_ID_PREFIX)
        {
            // Reserved for the bridges' local sessions: no client takes one over.
            return Err(refuse(Reason::explained(
                ReasonCode::ClientIdentifierNotValid,
                "client identifiers starting with $bridge/ are the bridges' own",
            )));
        }
        if connect.version == ProtocolVersion::V3 && connect.client_id.as_str().chars().count() > 23
        {
            // MQTT 3.1: a Client Identifier has 1 to 23 characters.
            return Err(refuse(ReasonCode::ClientIdentifierNotValid.into()));
        }
        let will_retain = connect.will.as_ref().is_some_and(|w| w.retain);
        if will_retain && !self.limits.retain_available && connect.version == ProtocolVersion::V5 {
            // [MQTT-3.2.2-13] a retained will cannot be honoured without retained messages.
            return Err(refuse(Reason::explained(
                ReasonCode::RetainNotSupported,
                "a will with RETAIN 1, but this server keeps no retained messages",
            )));
        }
        let will_malformed = connect
            .will
            .as_ref()
            .is_some_and(|w| !session::payload_matches_format(&w.properties, &w.payload));
        if will_malformed {
            // 5.0 section 3.1.3.2.3: a will that is not what its Payload Format Indicator says
            // may be refused with CONNACK 0x99.
            return Err(refuse(Reason::explained(
                ReasonCode::PayloadFormatInvalid,
                "the will is not UTF-8 despite its Payload Format Indicator 1",
            )));
        }
        let (client_id, assigned) = if !connect.client_id.is_empty() {
            (connect.client_id.as_str().to_owned(), false)
        } else {
            match connect.version {
                // MQTT 3.1 requires 1..=23 characters; 3.1.1 allows empty only with clean
                // session [MQTT-3.1.3-8].
                ProtocolVersion::V3 => {
                    return Err(refuse(ReasonCode::ClientIdentifierNotValid.into()));
                }
                ProtocolVersion::V4 if !connect.clean_start => {
                    return Err(refuse(ReasonCode::ClientIdentifierNotValid.into()));
                }
                _ => (self.assign_client_id(), true),
            }
        };
        self.check_connack_fits(connect, assigned.then_some(&client_id))
            .map_err(refuse)?;
        Ok((client_id, assigned))
    }

    /// [MQTT-3.2.2-19] [MQTT-3.1.2-24] a client whose Maximum Packet Size is below the CONNACK
    /// that would accept it cannot be accepted: it is refused with 0x95 Packet too large
    /// (which the refusal CONNACK carries only if that fits) before any session changes.
    fn check_connack_fits(
        &self,
        connect: &Connect,
        assigned: Option<&String>,
    ) -> Result<(), Reason> {
        let Some(limit) = connect.properties.maximum_packet_size else {
            return Ok(());
        };
        if connect.version != ProtocolVersion::V5 {
            return Ok(());
        }
        let connack = self.connack(connect, false, assigned.cloned());
        let len = protocol::encoded_len(&connack, connect.version);
        if len <= limit as usize {
            return Ok(());
        }
        let text = format!(
            "the CONNACK would be {len} bytes, over the client's Maximum Packet Size of {limit}"
        );
        Err(Reason::detailed(ReasonCode::PacketTooLarge, text))
    }

    fn assign_client_id(&mut self) -> String {
        let (me, shards) = (self.id(), self.shards());
        loop {
            self.admission.assigned_ids += 1;
            let id = format!("ringmq-{me}-{}", self.admission.assigned_ids);
            // [MQTT-3.2.2-16] unique: not the id of a session this (its home) shard holds.
            let home_here = home_shard(id.as_bytes(), shards) == me;
            if home_here && !self.sessions.contains(&id) {
                return id;
            }
        }
    }

    /// At the client id's home shard, just before `open_authenticated`: a CONNECT that would
    /// store one session more than this shard's share of `max_sessions` is refused with 0x97
    /// Quota exceeded (3.2.2.2: "an implementation or administrative imposed limit has been
    /// exceeded"; 3.1.1: 0x03 Server unavailable). A client whose session is stored (resumed,
    /// or replaced by a clean start) adds none and is never refused for it.
    pub fn check_session_room(&self, connect: &Connect, client_id: &str) -> Result<(), Refusal> {
        if self.sessions.len() < self.limits.max_sessions || self.sessions.contains(client_id) {
            return Ok(());
        }
        let reason = Reason::explained(
            ReasonCode::QuotaExceeded,
            "the server stores as many sessions as it may (max_sessions)",
        );
        Err(Refusal::new(connect.version, reason))
    }

    /// Takes a CONNECT at the client id's home shard: takes over a live connection with the
    /// same id, resumes or replaces the session, registers the connection and queues CONNACK
    /// (plus resends) in its outbound buffer.
    pub fn open(
        &mut self,
        connect: &Connect,
        client_id: String,
        assigned_id: bool,
        now: Instant,
    ) -> ConnId {
        self.open_accepted(connect, client_id, assigned_id, now, now)
    }

    /// `open` for a connection accepted at `accepted_at` (which orders takeovers).
    pub fn open_accepted(
        &mut self,
        connect: &Connect,
        client_id: String,
        assigned_id: bool,
        now: Instant,
        accepted_at: Instant,
    ) -> ConnId {
        let arrival = (client_id, assigned_id, accepted_at);
        self.open_authenticated(connect, arrival, now, None)
    }

    /// `open_accepted` for a client whose enhanced authentication (if it named a method)
    /// has succeeded: nothing of a session is touched (no takeover, no resume) before.
    pub fn open_authenticated(
        &mut self,
        connect: &Connect,
        (client_id, assigned_id, accepted_at): (String, bool, Instant),
        now: Instant,
        authenticated: Option<Authenticated>,
    ) -> ConnId {
        if let Some(key) = self.sessions.find(&client_id) {
            self.take_over(key, now);
        }
        // The takeover may have ended a non-persistent session.
        let existing = self.sessions.find(&client_id);
        // What this connection's client may do: compiled once, checked without allocating.
        let username = connect.username.as_ref().map(|u| u.as_str());
        let acl = (self.admission.acl.as_ref()).map(|acl| acl.compile(&client_id, username));
        let mut actions = self.work.take();
        let (session_key, session_present) = match existing {
            Some(key) if !connect.clean_start => {
                if let Some(entry) = self.sessions.get_mut(key) {
                    // Back before the Will Delay Interval passed: no will [MQTT-3.1.3-9].
                    entry.pending_will = None;
                    entry.session.set_acl(acl);
                    entry.session.resume(connect, &mut actions);
                }
                (key, true)
            }
            other => {
                if let Some(key) = other {
                    self.remove_session(key, now);
                }
                let mut session = Session::new(client_id.clone(), connect, self.limits.session);
                session.set_acl(acl);
                (self.sessions.insert(session, now), false)
            }
        };
        let auth_data = authenticated.as_ref().and_then(|a| a.data.clone());
        let auth = authenticated.map(|a| a.auth);
        let conn = self.insert_conn(connect, session_key, (now, accepted_at), auth);
        if let Some(entry) = self.sessions.get_mut(session_key) {
            entry.conn = Some(conn);
            // Online again: its expiry and will delay no longer run [MQTT-3.1.3-9].
            self.timers.cancel_session(&mut entry.timers);
        }
        self.log_session(session_key, now);
        if session_present {
            // Its shared subscriptions count it online again.
            self.announce_presence(session_key);
        }
        let assigned = assigned_id.then_some(client_id);
        let mut connack = self.connack(connect, session_present, assigned);
        if let (Packet::ConnAck(ack), Some(data)) = (&mut connack, auth_data) {
            ack.properties.authentication_data = Some(data);
        }
        self.write_packet(conn, &connack, now);
        self.apply(conn, &mut actions, now);
        self.work.restore(actions);
        self.settle(now);
        conn
    }

    /// Whether a live connection of `client_id` was accepted after `accepted_at`. A handed-off
    /// connection can reach the home shard after a newer one accepted there directly; the
    /// newer one must win, so the older one is answered as if taken over at once.
    pub fn is_superseded(&self, client_id: &str, accepted_at: Instant) -> bool {
        let live = self
            .sessions
            .find(client_id)
            .and_then(|key| self.sessions.conn_of(key));
        live.and_then(|id| self.conns.get(id))
            .is_some_and(|c| !c.closing && c.accepted_at > accepted_at)
    }

    /// The bytes a superseded connection gets before it is closed (CONNACK, then 5.0
    /// DISCONNECT 0x8E); its will is published as for any takeover [MQTT-3.1.4-3].
    pub fn superseded_reply(&mut self, connect: &Connect, now: Instant) -> BytesMut {
        log::info!(
            client_id = connect.client_id.as_str(),
            cause = "taken over",
            shard = self.id();
            "client disconnected: a newer connection of its client id arrived first"
        );
        let peer = PeerLimits::from_connect(connect);
        let connack = self.connack(connect, false, None);
        let mut out = encode_fitted(&connack, connect.version, peer).unwrap_or_default();
        if connect.version == ProtocolVersion::V5 {
            let disconnect = Packet::Disconnect(Disconnect::from_reason(TAKEN_OVER));
            if let Some(bytes) = encode_fitted(&disconnect, connect.version, peer) {
                out.extend_from_slice(&bytes);
            }
        }
        if let Some(will) = connect.will.clone() {
            self.route_will(Message::from_will(will), now);
            self.finish(now);
        }
        out
    }

    fn take_over(&mut self, session_key: usize, now: Instant) {
        if let Some(old) = self.sessions.conn_of(session_key) {
            // 5.0: DISCONNECT 0x8E first; the old connection's will is published.
            self.close(old, Some(TAKEN_OVER), true, now);
        }
    }

    /// 5.0 clients get the configured cap or default (announced as Server Keep Alive);
    /// 3.1.1 has no way to tell the client, so its keep alive is honoured as asked.
    pub(super) fn effective_keep_alive(&self, connect: &Connect) -> u16 {
        if connect.version != ProtocolVersion::V5 {
            return connect.keep_alive;
        }
        let wanted = match connect.keep_alive {
            0 => self.limits.zero_keepalive.unwrap_or(0),
            n => n,
        };
        match self.limits.max_keepalive {
            Some(cap) if wanted > cap => cap,
            _ => wanted,
        }
    }

    /// Registers the connection of a session, opened at `now` for a socket accepted at
    /// `accepted_at`, and arms its keepalive.
    fn insert_conn(
        &mut self,
        connect: &Connect,
        session: usize,
        (now, accepted_at): (Instant, Instant),
        auth: Option<Authentication>,
    ) -> ConnId {
        let keep_alive = session::keepalive_timeout(self.effective_keep_alive(connect));
        let peer = PeerLimits::from_connect(connect);
        let aliases = self.outbound_alias_limit(connect);
        let mut conn = Conn::new(session, connect.version, peer, aliases, now);
        conn.accepted_at = accepted_at;
        conn.keep_alive = keep_alive;
        conn.auth = auth;
        let id = self.conns.insert(conn);
        if let (Some(period), Some(c)) = (keep_alive, self.conns.get_mut(id)) {
            c.timers.keep_alive = Some(self.timers.arm(now + period, TimerKey::KeepAlive(id)));
        }
        id
    }

    /// [MQTT-3.1.2-26] [MQTT-3.1.2-27] aliases only up to the client's Topic Alias Maximum,
    /// none if it announced none (or is not 5.0), and no more than our own cap.
    fn outbound_alias_limit(&self, connect: &Connect) -> u16 {
        if connect.version != ProtocolVersion::V5 {
            return 0;
        }
        let client = connect.properties.topic_alias_maximum.unwrap_or(0);
        client.min(self.limits.max_outbound_topic_aliases)
    }

    fn connack(
        &self,
        connect: &Connect,
        session_present: bool,
        assigned: Option<String>,
    ) -> Packet {
        let mut properties = Properties::default();
        if connect.version == ProtocolVersion::V5 {
            properties.assigned_client_identifier =
                assigned.and_then(|id| protocol::MqttString::try_from(id).ok());
            properties.receive_maximum = Some(self.limits.session.max_inbound_qos2);
            properties.maximum_packet_size = u32::try_from(self.limits.max_packet_size).ok();
            let aliases = self.limits.session.topic_alias_maximum;
            properties.topic_alias_maximum = (aliases > 0).then_some(aliases);
            let keep_alive = self.effective_keep_alive(connect);
            properties.server_keep_alive = (keep_alive != connect.keep_alive).then_some(keep_alive);
            if !self.limits.retain_available {
                properties.retain_available = Some(0);
            }
            // 5.0 section 3.2.2.3.2: a capped Session Expiry Interval is announced.
            let cap = self.limits.max_session_expiry;
            let asked = connect.properties.session_expiry_interval.unwrap_or(0);
            properties.session_expiry_interval = (asked > cap).then_some(cap);
            // [MQTT-4.12.0-5] a successful CONNACK repeats the method; the CONNECT reaches
            // this point with one only after its exchange succeeded.
            properties.authentication_method = connect.properties.authentication_method.clone();
            // [MQTT-3.1.2-28] only a client that asked for it gets Response Information.
            if connect.properties.request_response_information == Some(1) {
                properties.response_information = self.admission.response_information.clone();
            }
        }
        Packet::ConnAck(ConnAck {
            session_present,
            reason: ReasonCode::Success,
            properties,
        })
    }
}
