//! The shard's log events: a client connected, a connection ended and why, a CONNECT
//! refused, an authentication failed. Each is one `info` line with the fields an operator
//! searches by (client id, peer address, reason code); never a password, never a payload.
//! Per-packet events are `debug` and cost one level check when debug is off.

use super::ShardState;
use super::connections::ConnId;
use crate::obs::DisconnectCause;
use crate::protocol::{Connect, Packet, ProtocolVersion, Reason, ReasonCode};
use log::kv::{ToValue, Value};
use std::fmt;
use std::net::SocketAddr;

/// Why a connection ended, as `close` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The server closes it for this reason (sent to a 5.0 client as DISCONNECT).
    Server(Reason),
    /// The client sent DISCONNECT with this reason code.
    Client(ReasonCode),
    /// The socket hit EOF or a read error without a DISCONNECT.
    Lost,
    /// Writing to the socket failed.
    WriteFailed,
}

impl Ending {
    /// Which of the reasons an operator asks about.
    pub fn cause(&self) -> DisconnectCause {
        match self {
            Self::Client(_) => DisconnectCause::Client,
            Self::Lost => DisconnectCause::Lost,
            Self::WriteFailed => DisconnectCause::WriteFailed,
            Self::Server(reason) => server_cause(reason.code),
        }
    }

    /// The reason code sent or received, if there is one.
    pub fn code(&self) -> Option<ReasonCode> {
        match self {
            Self::Server(reason) => Some(reason.code),
            Self::Client(code) => Some(*code),
            Self::Lost | Self::WriteFailed => None,
        }
    }

    /// The Reason String that says more, if there is one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Self::Server(reason) => reason.string.as_ref().map(|s| s.as_str()),
            _ => None,
        }
    }
}

fn server_cause(code: ReasonCode) -> DisconnectCause {
    match code {
        ReasonCode::KeepAliveTimeout => DisconnectCause::KeepAlive,
        ReasonCode::SessionTakenOver => DisconnectCause::TakenOver,
        ReasonCode::ServerShuttingDown => DisconnectCause::Shutdown,
        // The only DISCONNECT 0x97 the broker sends: the stall timeout (`timers`).
        ReasonCode::QuotaExceeded => DisconnectCause::StalledWriter,
        ReasonCode::PacketTooLarge => DisconnectCause::PacketTooLarge,
        ReasonCode::ReceiveMaximumExceeded => DisconnectCause::ReceiveMaximum,
        ReasonCode::NotAuthorized | ReasonCode::BadAuthenticationMethod => {
            DisconnectCause::AuthFailure
        }
        // Everything else the server closes for is the client breaking a rule.
        _ => DisconnectCause::ProtocolError,
    }
}

/// A log field shown with `Display`, or left out when there is none; built without
/// allocating.
struct Shown<T>(Option<T>);

impl<T: fmt::Display> ToValue for Shown<T> {
    fn to_value(&self) -> Value<'_> {
        self.0
            .as_ref()
            .map_or_else(Value::null, Value::from_display)
    }
}

/// A reason code as `0x8D`.
#[derive(Debug, Clone, Copy)]
struct Hex(ReasonCode);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#04x}", self.0 as u8)
    }
}

/// A reason code by name (`KeepAliveTimeout`).
#[derive(Debug, Clone, Copy)]
struct Named(ReasonCode);

impl fmt::Display for Named {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

fn protocol_name(version: ProtocolVersion) -> &'static str {
    match version {
        ProtocolVersion::V3 => "3.1",
        ProtocolVersion::V4 => "3.1.1",
        ProtocolVersion::V5 => "5.0",
    }
}

impl ShardState {
    /// A connection was opened (CONNACK queued) for `connect` from `peer`: remembers the peer
    /// address for the connection's later events and logs the connect.
    pub fn opened(&mut self, conn: ConnId, connect: &Connect, peer: Option<SocketAddr>) {
        let keepalive = self.effective_keep_alive(connect);
        let shard = self.id();
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.peer_addr = peer;
        let Some(entry) = self.sessions.get(c.session) else {
            return;
        };
        log::info!(
            client_id = entry.session.client_id(),
            peer = Shown(peer),
            protocol = protocol_name(connect.version),
            clean_start = connect.clean_start,
            keepalive,
            username = connect.username.as_ref().map(|u| u.as_str()),
            shard;
            "client connected"
        );
    }

    /// Counts and logs the end of a connection; `close` calls it once per connection.
    pub(super) fn note_closed(&mut self, conn: ConnId, session_key: usize, ending: &Ending) {
        self.stats.disconnected(ending.cause());
        if !log::log_enabled!(log::Level::Info) {
            return;
        }
        let peer = self.conns.get(conn).and_then(|c| c.peer_addr);
        let client_id = self
            .sessions
            .get(session_key)
            .map(|e| e.session.client_id());
        log::info!(
            client_id = client_id,
            peer = Shown(peer),
            cause = ending.cause().as_str(),
            code = Shown(ending.code().map(Hex)),
            reason = Shown(ending.code().map(Named)),
            detail = ending.detail(),
            shard = self.id();
            "client disconnected"
        );
    }

    /// Counts and logs a CONNECT refused with a CONNACK (or, when even that cannot fit, just
    /// closed).
    pub(super) fn note_refused(&mut self, connect: &Connect, reason: &Reason) {
        self.stats.refused(reason.code);
        log::info!(
            client_id = connect.client_id.as_str(),
            protocol = protocol_name(connect.version),
            username = connect.username.as_ref().map(|u| u.as_str()),
            code:% = Hex(reason.code),
            reason:% = Named(reason.code),
            detail = reason.string.as_ref().map(|s| s.as_str()),
            shard = self.id();
            "connection refused"
        );
    }

    /// A connection refused before its CONNECT could be read (over the connection limit or
    /// rate, or an unsupported protocol level).
    pub fn refused_unread(&mut self, code: ReasonCode, peer: Option<SocketAddr>) {
        self.stats.refused(code);
        log::info!(
            peer = Shown(peer),
            code:% = Hex(code),
            reason:% = Named(code),
            shard = self.id();
            "connection refused"
        );
    }

    /// An enhanced-authentication exchange before CONNACK failed and was answered with `code`.
    pub fn auth_failed(&mut self, connect: &Connect, code: ReasonCode, peer: Option<SocketAddr>) {
        self.stats.refused(code);
        let method = connect.properties.authentication_method.as_ref();
        log::info!(
            client_id = connect.client_id.as_str(),
            peer = Shown(peer),
            method = method.map(|m| m.as_str()),
            username = connect.username.as_ref().map(|u| u.as_str()),
            code:% = Hex(code),
            reason:% = Named(code),
            shard = self.id();
            "authentication failed"
        );
    }

    /// The per-packet debug line (never the payload). Callers check the level first.
    pub(super) fn log_packet(&self, conn: ConnId, packet: &Packet) {
        let session = self.conns.get(conn).map(|c| c.session);
        let client_id = session
            .and_then(|key| self.sessions.get(key))
            .map(|e| e.session.client_id());
        let (topic, qos, payload_len) = match packet {
            Packet::Publish(p) => (
                Some(p.topic.as_str()),
                Some(p.qos as u8),
                Some(p.payload.len()),
            ),
            _ => (None, None, None),
        };
        log::debug!(
            client_id = client_id,
            packet:? = packet.packet_type(),
            topic = topic,
            qos = qos,
            payload_len = payload_len;
            "packet received"
        );
    }
}
