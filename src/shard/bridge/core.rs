//! `Core`: what a bridge's reader and writer tasks share on their shard (borrowed between
//! awaits, never across): the sans-IO `BridgeSession`, the local session's connection, the
//! bytes waiting for the remote, the TLS state, and why the link ended. The one place
//! packets of either side are handed to the session and its answers applied.

use crate::bridge::{BridgeError, BridgeSession, Sends};
use crate::protocol::{self, DecodeError, Packet, ProtocolVersion};
use crate::shard::conn::Shared;
use crate::shard::state::ConnId;
use crate::tls::TlsClient;
use bytes::BytesMut;
use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::task::Waker;
use std::time::Instant;

pub(super) type SharedCore = Rc<RefCell<Core>>;

/// Why a bridge's connection to its remote ended.
#[derive(Debug)]
pub(super) enum LinkEnd {
    /// End of stream or a socket error.
    Lost(String),
    Malformed(DecodeError),
    Protocol(BridgeError),
    Tls(String),
    /// Nothing from the remote for 1.5 keep alives.
    Stalled,
    /// The local session's connection closed (shutdown, or a stall on our side).
    LocalClosed,
    Shutdown,
}

impl fmt::Display for LinkEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Lost(why) => write!(f, "connection lost: {why}"),
            Self::Malformed(e) => write!(f, "malformed packet from the remote: {e}"),
            Self::Protocol(e) => write!(f, "{e}"),
            Self::Tls(e) => write!(f, "TLS: {e}"),
            Self::Stalled => f.write_str("the remote sent nothing for 1.5 keep alives"),
            Self::LocalClosed => f.write_str("the bridge's local connection closed"),
            Self::Shutdown => f.write_str("the broker is shutting down"),
        }
    }
}

/// A bridge's state on its shard, across its connections.
#[derive(Debug)]
pub(super) struct Core {
    pub session: BridgeSession,
    /// The local session's connection while the remote is connected.
    pub local: Option<ConnId>,
    /// MQTT bytes for the remote (plaintext).
    pub out: BytesMut,
    /// With TLS: records for the remote (what `out` became, and TLS's own messages).
    pub wire_out: BytesMut,
    pub tls: Option<TlsClient>,
    pub writer: Option<Waker>,
    pub end: Option<LinkEnd>,
    pub last_read: Instant,
    /// With notifications: the retained "0" the remote gets before a normal DISCONNECT (its
    /// will, which says the same, goes out only when the link dies without one).
    pub state_down: Option<Packet>,
    /// Scratch for a session's answers, kept for its capacity.
    sends: Sends,
}

impl Core {
    pub fn new(session: BridgeSession, now: Instant) -> Self {
        Self {
            session,
            local: None,
            out: BytesMut::new(),
            wire_out: BytesMut::new(),
            tls: None,
            writer: None,
            end: None,
            last_read: now,
            state_down: None,
            sends: Sends::default(),
        }
    }

    /// Ends the link once (the first reason stays) and wakes the writer to finish.
    pub fn finish(&mut self, why: LinkEnd) {
        if self.end.is_none() {
            self.end = Some(why);
        }
        self.wake();
    }

    pub fn wake(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    /// Encodes a packet for the remote (`BridgeSession` keeps PUBLISHes within the remote's
    /// Maximum Packet Size; control packets are small).
    pub fn send_remote(&mut self, packet: &Packet) {
        let version = self.session.version();
        let was_empty = self.out.is_empty();
        if protocol::encode(packet, version, &mut self.out).is_ok() && was_empty {
            self.wake();
        }
    }

    /// Whether anything waits for the remote.
    pub fn has_output(&self) -> bool {
        !self.out.is_empty() || !self.wire_out.is_empty()
    }

    /// What to write to the socket now: `out` as it is, or through TLS.
    pub fn take_output(&mut self, into: &mut BytesMut) -> Result<(), String> {
        match &mut self.tls {
            None => std::mem::swap(&mut self.out, into),
            Some(tls) => {
                tls.write(&self.out, &mut self.wire_out)
                    .map_err(|e| e.to_string())?;
                self.out.clear();
                std::mem::swap(&mut self.wire_out, into);
            }
        }
        Ok(())
    }
}

/// Which side a packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Remote,
    Local,
}

/// Hands one packet to the bridge's session and applies its answers: packets for the remote
/// into `out`, packets for the local session into the shard like any client's.
pub(super) fn handle(
    state: &Shared,
    core: &SharedCore,
    from: Side,
    packet: Packet,
    now: Instant,
) -> Result<(), BridgeError> {
    let (conn, mut local) = {
        let mut c = core.borrow_mut();
        let mut sends = std::mem::take(&mut c.sends);
        let result = match from {
            Side::Remote => c.session.on_remote(packet, &mut sends),
            Side::Local => c.session.on_local(packet, &mut sends),
        };
        for p in sends.remote.drain(..) {
            c.send_remote(&p);
        }
        for (filter, code) in sends.refused.drain(..) {
            log::warn!(
                filter = filter.as_str();
                "bridge: the remote refused the subscription to {:?}: {code:?}", filter.as_str()
            );
        }
        let local = std::mem::take(&mut sends.local);
        c.sends = sends;
        result?;
        (c.local, local)
    };
    if let Some(conn) = conn {
        for p in local.drain(..) {
            if !state.borrow_mut().on_packet(conn, p, now) {
                break;
            }
        }
    }
    // The vector goes back for its capacity.
    let mut c = core.borrow_mut();
    if c.sends.local.capacity() < local.capacity() {
        c.sends.local = local;
    }
    Ok(())
}

/// Hands every packet in `bytes` (the local session's outbound buffer, whole packets) to
/// the session.
pub(super) fn handle_local_bytes(
    state: &Shared,
    core: &SharedCore,
    bytes: &mut BytesMut,
    now: Instant,
) -> Result<(), LinkEnd> {
    loop {
        match protocol::decode(bytes, ProtocolVersion::V5, usize::MAX) {
            Ok(Some(packet)) => {
                handle(state, core, Side::Local, packet, now).map_err(LinkEnd::Protocol)?
            }
            Ok(None) => return Ok(()),
            Err(e) => return Err(LinkEnd::Malformed(e)),
        }
    }
}
