//! `Connections`: the shard's live network connections (a generation-checked `slab`), each
//! with its outbound byte buffer, writer waker, the client's limits and its outbound Topic
//! Aliases, and the one path by which any packet, PUBLISH or not, is encoded into that buffer.

use super::flow::Gate;
use super::timers::ConnTimers;
use crate::auth::Authentication;
use crate::protocol::{self, Packet, PacketId, PeerLimits, ProtocolVersion, QoS};
use crate::session::Message;
use crate::shard::alias::{OutboundAliases, fitting};
use crate::shard::encode::{Form, PublishEncoder};
use bytes::BytesMut;
use monoio::io::Canceller;
use slab::Slab;
use std::collections::VecDeque;
use std::task::Waker;
use std::time::{Duration, Instant};

/// A connection slot plus the generation that tells a reused slot apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    key: usize,
    generation: u64,
}

/// One client connection as the shard sees it.
#[derive(Debug)]
pub(super) struct Conn {
    pub generation: u64,
    /// Key into the shard's sessions; meaningless once `closing`.
    pub session: usize,
    pub version: ProtocolVersion,
    /// The client's limits, the one place they are kept for this connection: Maximum Packet
    /// Size and Request Problem Information here, Topic Alias Maximum in `aliases`.
    pub peer: PeerLimits,
    /// Bytes waiting for the writer task.
    pub outbound: BytesMut,
    pub writer: Option<Waker>,
    /// The reader, while it waits for the socket to become readable holding no buffer
    /// (`conn::read`): woken when the connection's IO is stopped.
    pub reader: Option<Waker>,
    pub closing: bool,
    /// Abort pending IO instead of flushing (a stalled client).
    pub abort: bool,
    pub last_activity: Instant,
    /// When the accepting shard accepted the socket: orders takeovers of one client id.
    pub accepted_at: Instant,
    /// The client's address, for the log.
    pub peer_addr: Option<std::net::SocketAddr>,
    /// 1.5 x the keepalive [MQTT-3.1.2-24]; `None` when keepalive is off.
    pub keep_alive: Option<Duration>,
    pub over_cap_since: Option<Instant>,
    /// When the packet it is part-way through reading started (`reading`); `None` between
    /// packets and while its reader waits for room.
    pub partial_since: Option<Instant>,
    /// Its armed timers, cancelled when it goes away.
    pub timers: ConnTimers,
    /// Cancels the reader's and writer's pending IO.
    pub cancel: IoCancel,
    /// Set while this publisher's acknowledgements are held back (`flow`).
    pub gate: Option<Gate>,
    pub held_acks: VecDeque<Packet>,
    /// The enhanced authentication of a 5.0 client that named a method in CONNECT: kept for
    /// re-authentication (`None`: AUTH is a protocol error).
    pub auth: Option<Authentication>,
    /// Topic Aliases given on this connection; a new connection starts with none.
    pub aliases: OutboundAliases,
}

impl Conn {
    /// A connection of `session` for a client with these limits, accepted and opened at `now`.
    pub fn new(
        session: usize,
        version: ProtocolVersion,
        peer: PeerLimits,
        aliases: u16,
        now: Instant,
    ) -> Self {
        Self {
            generation: 0,
            session,
            version,
            peer,
            outbound: BytesMut::new(),
            writer: None,
            reader: None,
            closing: false,
            abort: false,
            last_activity: now,
            accepted_at: now,
            peer_addr: None,
            keep_alive: None,
            over_cap_since: None,
            partial_since: None,
            timers: ConnTimers::default(),
            cancel: IoCancel::default(),
            gate: None,
            held_acks: VecDeque::new(),
            auth: None,
            aliases: OutboundAliases::new(aliases),
        }
    }

    /// Stops IO without flushing what is left (the writer then frees the slot).
    pub fn abort(&mut self) {
        self.abort = true;
        self.stop_io();
        wake(&mut self.writer);
    }

    /// Cancels the reader's and writer's pending IO, and wakes a reader waiting for
    /// readiness (which has no IO to cancel).
    pub fn stop_io(&mut self) {
        self.cancel.fire();
        wake(&mut self.reader);
    }
}

/// The connection's `Canceller` (which has no `Debug`).
#[derive(Default)]
pub(super) struct IoCancel(Option<Canceller>);

impl IoCancel {
    pub fn arm(canceller: Canceller) -> Self {
        Self(Some(canceller))
    }

    pub fn fire(&mut self) {
        if let Some(c) = self.0.take() {
            c.cancel();
        }
    }
}

impl std::fmt::Debug for IoCancel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "IoCancel(armed)"
        } else {
            "IoCancel(none)"
        })
    }
}

/// One PUBLISH for one subscriber: the message plus what differs per subscriber.
#[derive(Debug, Clone, Copy)]
pub(super) struct OutPublish<'a> {
    pub msg: &'a Message,
    pub qos: QoS,
    pub retain: bool,
    pub packet_id: Option<PacketId>,
    pub dup: bool,
}

/// What became of a PUBLISH offered to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Written {
    /// In the outbound buffer (or the connection is gone: nothing to do).
    Done,
    /// In the outbound buffer, which has just gone over `max_outbound_bytes`.
    OverCap,
    /// Over the client's Maximum Packet Size in every form [MQTT-3.1.2-25]: not written.
    TooLarge,
}

/// A control packet over the client's Maximum Packet Size even without its optional
/// properties [MQTT-3.1.2-24].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Unsendable {
    pub len: usize,
    pub limit: u32,
}

/// The shard's connections and the encode-once cache they all write PUBLISHes from.
#[derive(Debug, Default)]
pub(super) struct Connections {
    slab: Slab<Conn>,
    next_generation: u64,
    encoder: PublishEncoder,
}

impl Connections {
    pub fn insert(&mut self, mut conn: Conn) -> ConnId {
        self.next_generation += 1;
        conn.generation = self.next_generation;
        let generation = conn.generation;
        let key = self.slab.insert(conn);
        ConnId { key, generation }
    }

    pub fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slab
            .get(id.key)
            .filter(|c| c.generation == id.generation)
    }

    pub fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slab
            .get_mut(id.key)
            .filter(|c| c.generation == id.generation)
    }

    /// Takes the connection out of the slab; the caller cancels its timers.
    pub fn remove(&mut self, id: ConnId) -> Option<Conn> {
        self.get(id)?;
        Some(self.slab.remove(id.key))
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn ids(&self) -> Vec<ConnId> {
        self.slab
            .iter()
            .map(|(key, c)| ConnId {
                key,
                generation: c.generation,
            })
            .collect()
    }

    /// A new message is being written: encodings cached for the previous one are stale.
    pub fn begin_message(&mut self) {
        self.encoder.begin();
    }

    /// Between messages (the tick): the encode-once slots a large message grew are let go.
    pub fn release_encoder_memory(&mut self) {
        self.encoder.release_oversized();
    }

    /// Writes a control packet within the client's limits: its optional properties go when
    /// they do not fit or were not asked for [MQTT-3.1.2-29].
    pub fn write_packet(&mut self, id: ConnId, packet: &Packet) -> Result<(), Unsendable> {
        let Some(c) = self.get_mut(id) else {
            return Ok(());
        };
        let packet = protocol::fit(packet, c.version, c.peer).map_err(|too_large| Unsendable {
            len: too_large.len,
            limit: c.peer.max_packet_size,
        })?;
        let was_empty = c.outbound.is_empty();
        if protocol::encode(&packet, c.version, &mut c.outbound).is_ok() && was_empty {
            wake(&mut c.writer);
        }
        Ok(())
    }

    /// The one path of every PUBLISH to a client, live, queued or resent: picks the Topic
    /// Alias form that fits the client's Maximum Packet Size (the size that counts is the
    /// packet's as written, alias included [MQTT-3.1.2-25]), copies the encode-once bytes
    /// for that form with the subscriber's packet id, alias and DUP patched in, and records
    /// the alias only once the packet is in the buffer.
    #[inline]
    pub fn write_publish(&mut self, id: ConnId, out: OutPublish<'_>, cap: usize) -> Written {
        let Some(c) = self
            .slab
            .get_mut(id.key)
            .filter(|c| c.generation == id.generation)
        else {
            return Written::Done;
        };
        let form = |alias| Form {
            version: c.version,
            qos: out.qos,
            retain: out.retain,
            alias,
        };
        let planned = c.aliases.plan(&out.msg.topic);
        let limit = match c.peer.max_packet_size {
            // No limit: `fitting` then measures nothing per subscriber.
            u32::MAX => usize::MAX,
            max => max as usize,
        };
        let encoder = &mut self.encoder;
        let fits = fitting(planned, limit, |alias| {
            encoder.encoded_len(out.msg, form(alias))
        });
        let Some(alias) = fits else {
            return Written::TooLarge;
        };
        let was_empty = c.outbound.is_empty();
        let written = encoder.append(
            out.msg,
            form(alias),
            out.packet_id,
            out.dup,
            &mut c.outbound,
        );
        if written > 0 {
            c.aliases.sent(&out.msg.topic, alias);
        }
        if was_empty {
            wake(&mut c.writer);
        }
        if c.outbound.len() > cap && c.over_cap_since.is_none() {
            return Written::OverCap;
        }
        Written::Done
    }
}

pub(super) fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}
