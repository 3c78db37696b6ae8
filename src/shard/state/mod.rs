//! `ShardState`: everything one shard owns and every broker decision it makes (CONNECT
//! acceptance and takeover, re-authentication, routing, retained store, interest, keepalive,
//! back-pressure).
//! No sockets: connections are outbound byte buffers plus a waker for their writer task.

use super::alias::{AliasUse, OutboundAliases, fitting};
use super::encode::{Form, PublishEncoder};
use super::{Handoff, MeshMsg};
use crate::auth::{Authentication, Methods, Reply};
use crate::config::Config;
use crate::mesh::MeshEnds;
use crate::protocol::{
    self, Auth, ConnAck, Connect, DecodeError, Disconnect, Packet, PeerLimits, Properties,
    ProtocolVersion, Publish, QoS, Reason, ReasonCode, RetainHandling, SubscriptionOptions,
    TopicFilter, TopicName,
};
use crate::session::{self, Action, Delivery, Discard, Message, Outgoing, Session};
use crate::timer::TimerWheel;
use crate::trie::Trie;
use bytes::{Bytes, BytesMut};
use hashbrown::HashMap;
use monoio::io::Canceller;
use slab::Slab;

mod admission;
mod barrier;
mod flow;
mod peers;
mod routing;
mod shared;
mod timers;
pub use admission::Admission;
use std::collections::VecDeque;
use std::task::Waker;
use std::time::{Duration, Instant};

/// Bounds and timeouts of a shard, from the broker config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub session: session::Limits,
    /// Largest packet accepted from a client (and advertised to 5.0 clients).
    pub max_packet_size: usize,
    /// Outbound bytes buffered per connection before QoS 0 is dropped and QoS 1/2 queued.
    pub max_outbound_bytes: usize,
    /// How long a connection may stay over `max_outbound_bytes` before it is disconnected.
    pub stall_timeout: Duration,
    /// Messages held per peer when its mesh ring is full before reading pauses.
    pub max_mesh_overflow: usize,
    /// The timer wheel's tick.
    pub timer_tick: Duration,
    /// 5.0 keep alives above this are lowered to it (Server Keep Alive).
    pub max_keepalive: Option<u16>,
    /// Keep alive imposed on 5.0 clients that ask for 0.
    pub zero_keepalive: Option<u16>,
    /// Most outbound Topic Aliases per 5.0 connection (also capped by the client's maximum).
    pub max_outbound_topic_aliases: u16,
    /// Cap on a 5.0 Session Expiry Interval, seconds (`u32::MAX`: never expires).
    pub max_session_expiry: u32,
    /// Connections this shard accepts at once.
    pub max_connections: usize,
    /// New connections this shard accepts per second (`None`: unlimited).
    pub max_connection_rate: Option<std::num::NonZeroU32>,
    /// Retained messages are stored (5.0 Retain Available).
    pub retain_available: bool,
    pub max_retained_messages: usize,
    pub max_retained_bytes: usize,
    /// How long an enhanced-authentication exchange may take, CONNECT to CONNACK.
    pub auth_timeout: Duration,
}

impl Limits {
    /// The limits of one of `config.shards` shards.
    pub fn from_config(config: &Config) -> Self {
        let shards = config.shards.get();
        Self {
            session: session::Limits {
                max_inflight: config.mqtt.max_inflight.get(),
                max_queued_messages: config.queues.max_queued_messages.get(),
                max_queued_bytes: config.queues.max_queued_bytes.get(),
                max_inbound_qos2: config.mqtt.receive_maximum.get(),
                topic_alias_maximum: config.mqtt.topic_alias_maximum,
                retain_available: config.retained.enabled,
            },
            max_keepalive: config.mqtt.max_keepalive.map(|k| k.get()),
            zero_keepalive: config.mqtt.zero_keepalive.map(|k| k.get()),
            max_outbound_topic_aliases: config.mqtt.max_outbound_topic_aliases,
            max_session_expiry: config.mqtt.max_session_expiry,
            max_packet_size: config.mqtt.max_packet_size.get() as usize,
            max_outbound_bytes: config.queues.outbound_buffer_limit.get(),
            timer_tick: config.runtime.timer_tick,
            max_connections: config.max_connections.get().div_ceil(shards),
            max_connection_rate: config
                .max_connection_rate
                .and_then(|rate| std::num::NonZeroU32::new(rate.get().div_ceil(shards as u32))),
            stall_timeout: config.queues.stall_timeout,
            retain_available: config.retained.enabled,
            max_retained_messages: config.retained.max_messages,
            max_retained_bytes: config.retained.max_bytes,
            auth_timeout: config.auth.exchange_timeout,
            ..Self::default()
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            session: session::Limits::default(),
            max_packet_size: 1024 * 1024,
            max_outbound_bytes: 1024 * 1024,
            stall_timeout: Duration::from_secs(30),
            max_mesh_overflow: 4096,
            timer_tick: Duration::from_millis(100),
            max_keepalive: None,
            zero_keepalive: None,
            max_outbound_topic_aliases: 16,
            max_session_expiry: u32::MAX,
            max_connections: usize::MAX,
            max_connection_rate: None,
            retain_available: true,
            max_retained_messages: usize::MAX,
            max_retained_bytes: usize::MAX,
            auth_timeout: Duration::from_secs(10),
        }
    }
}

/// The DISCONNECT of a connection whose client id connected again [MQTT-3.1.4-3].
const TAKEN_OVER: Reason = Reason::explained(
    ReasonCode::SessionTakenOver,
    "another connection with the same client identifier took over the session",
);

/// Slots of the timer wheel: with 100 ms ticks one rotation is about 51 s.
const TIMER_SLOTS: usize = 512;

/// A connection slot plus the generation that tells a reused slot apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnId {
    key: usize,
    generation: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum TimerKey {
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

/// One client connection as the shard sees it.
#[derive(Debug)]
struct Conn {
    generation: u64,
    /// Key into `sessions`; meaningless once `closing`.
    session: usize,
    version: ProtocolVersion,
    /// The client's Maximum Packet Size and Request Problem Information (`write_packet`).
    peer: PeerLimits,
    /// Bytes waiting for the writer task.
    outbound: BytesMut,
    writer: Option<Waker>,
    closing: bool,
    /// Abort pending IO instead of flushing (a stalled client).
    abort: bool,
    last_activity: Instant,
    /// When the accepting shard accepted the socket: orders takeovers of one client id.
    accepted_at: Instant,
    /// 1.5 x the keepalive [MQTT-3.1.2-24]; `None` when keepalive is off.
    keep_alive: Option<Duration>,
    over_cap_since: Option<Instant>,
    /// Cancels the reader's and writer's pending IO.
    cancel: IoCancel,
    /// Set while this publisher's acknowledgements are held back (`flow`).
    gate: Option<flow::Gate>,
    held_acks: VecDeque<Packet>,
    /// The enhanced authentication of a 5.0 client that named a method in CONNECT: kept for
    /// re-authentication (`None`: AUTH is a protocol error).
    auth: Option<Authentication>,
    /// Topic Aliases given on this connection; a new connection starts with none.
    aliases: OutboundAliases,
}

/// A client that finished its enhanced-authentication exchange before CONNACK.
#[derive(Debug)]
pub struct Authenticated {
    pub auth: Authentication,
    /// The method's final Authentication Data, sent in CONNACK.
    pub data: Option<Bytes>,
}

/// The connection's `Canceller` (which has no `Debug`).
#[derive(Default)]
struct IoCancel(Option<Canceller>);

impl IoCancel {
    fn fire(&mut self) {
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

#[derive(Debug)]
struct SessionEntry {
    session: Session,
    conn: Option<ConnId>,
    /// Unique per disconnect, for the expiry and will delay timers.
    epoch: u64,
    /// A will waiting for its Will Delay Interval (5.0) while the session is offline.
    pending_will: Option<Message>,
    /// Its queue is filling while connected: publishers wait for it (`flow`).
    congested: bool,
    /// It stayed congested past the limit: nobody waits for it until its queue drains.
    ignore_congestion: bool,
}

/// A local subscription as the trie stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalSub {
    session: usize,
    options: SubscriptionOptions,
    /// 5.0 Subscription Identifier, 0 for none.
    id: u32,
}

/// What the writer task should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum WriterStep {
    /// Write the swapped-in buffer.
    Write,
    /// Nothing to write and the connection is closing: shut down.
    Finish,
    /// Nothing to write yet; the waker is registered.
    Wait,
}

/// Why a CONNECT cannot be accepted, with the CONNACK to answer before closing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub version: ProtocolVersion,
    /// The CONNACK's reason code and Reason String.
    pub reason: Reason,
    /// 5.0 Server Reference, with 0x9C Use another server / 0x9D Server moved.
    pub server_reference: Option<protocol::MqttString>,
}

impl Refusal {
    pub fn new(version: ProtocolVersion, reason: Reason) -> Self {
        Self {
            version,
            reason,
            server_reference: None,
        }
    }

    /// The CONNACK to answer with, fitted to the client's limits; `None` when even a bare
    /// CONNACK is over its Maximum Packet Size (the connection just closes).
    pub fn connack(&self, connect: &Connect) -> Option<BytesMut> {
        let mut properties = Properties::reason_string(self.reason.string.clone());
        if let Some(reference) = &self.server_reference {
            properties.server_reference = Some(reference.clone());
        }
        let connack = Packet::ConnAck(ConnAck {
            session_present: false,
            reason: self.reason.code,
            properties,
        });
        encode_fitted(&connack, self.version, PeerLimits::from_connect(connect))
    }
}

/// Encodes `packet` within the client's limits [MQTT-3.1.2-24] [MQTT-3.1.2-29]; `None` if it
/// cannot fit.
fn encode_fitted(packet: &Packet, version: ProtocolVersion, peer: PeerLimits) -> Option<BytesMut> {
    let packet = protocol::fit(packet, version, peer).ok()?;
    let mut out = BytesMut::new();
    protocol::encode(&packet, version, &mut out).ok()?;
    Some(out)
}

/// Counters a shard keeps (exposed for tests and the periodic stats line).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// QoS 0 messages not delivered: subscriber offline or its outbound buffer full.
    pub dropped_qos0: u64,
    /// QoS 1/2 messages not delivered: the subscriber's session queue was full.
    pub dropped_queue_full: u64,
    /// Mesh messages that waited in an overflow queue (none is ever dropped).
    pub mesh_overflowed: u64,
    /// Messages for a shared subscription group with no member left on any shard, and QoS 2
    /// messages in flight to a member whose session ended [MQTT-4.8.2-5].
    pub dropped_shared: u64,
    pub stalled_disconnects: u64,
}

/// Everything one shard owns.
#[derive(Debug)]
pub struct ShardState {
    id: usize,
    shards: usize,
    limits: Limits,
    /// The enhanced-authentication methods offered (from the config).
    methods: Methods,
    conns: Slab<Conn>,
    next_generation: u64,
    sessions: Slab<SessionEntry>,
    by_client_id: HashMap<String, usize>,
    local: Trie<LocalSub>,
    /// Local subscribers per filter, to tell first/last for interest messages.
    local_refs: HashMap<TopicFilter, u32>,
    /// Filters peers have subscribers for; the value is the peer's shard id.
    remote: Trie<usize>,
    /// Shared subscription groups this shard knows of (any shard's members), by match filter.
    shared: Trie<TopicFilter>,
    groups: HashMap<TopicFilter, shared::Group>,
    shared_matches: Vec<TopicFilter>,
    retained: HashMap<TopicName, Message>,
    retained_bytes: usize,
    timers: TimerWheel<TimerKey>,
    mesh: MeshEnds<MeshMsg>,
    overflow: Vec<VecDeque<MeshMsg>>,
    overflow_waker: Option<Waker>,
    paused_readers: Vec<Waker>,
    handoffs: Vec<Handoff>,
    encoder: PublishEncoder,
    /// Scratch buffers kept for their capacity.
    actions: Vec<Action>,
    matches: Vec<LocalSub>,
    /// The Subscription Identifiers of one subscriber's matching subscriptions.
    sub_ids: Vec<u32>,
    peer_marks: Vec<bool>,
    expired: Vec<TimerKey>,
    mesh_inbox: Vec<(usize, MeshMsg)>,
    next_assigned_id: u64,
    counters: Counters,
    /// What made the message being routed wait (`flow`), if anything.
    congestion: Option<flow::GateCause>,
    /// Connections whose acknowledgements are held.
    gated: Vec<ConnId>,
    /// SUBACKs waiting for every peer to acknowledge a barrier (see `barrier`).
    pending_subacks: HashMap<u64, barrier::PendingSubAck>,
    next_barrier: u64,
    /// While a SUBSCRIBE is applied behind a barrier: its token (retained messages wait).
    barrier_token: Option<u64>,
    /// New connections per second (`admission`).
    rate: Option<admission::ConnectionRate>,
    /// Refused connections being answered (bounded by `MAX_REFUSING`).
    refusing: usize,
    redirection: Option<admission::Redirection>,
    /// Sent in CONNACK to a 5.0 client that asks for it (Request Response Information 1).
    response_information: Option<protocol::MqttString>,
}

impl ShardState {
    pub fn new(mesh: MeshEnds<MeshMsg>, limits: Limits, now: Instant) -> Self {
        let id = mesh.id();
        let shards = mesh.shards();
        Self {
            id,
            shards,
            limits,
            methods: Methods::default(),
            conns: Slab::new(),
            next_generation: 0,
            sessions: Slab::new(),
            by_client_id: HashMap::new(),
            local: Trie::new(),
            local_refs: HashMap::new(),
            remote: Trie::new(),
            shared: Trie::new(),
            groups: HashMap::new(),
            shared_matches: Vec::new(),
            retained: HashMap::new(),
            retained_bytes: 0,
            timers: TimerWheel::new(limits.timer_tick, TIMER_SLOTS, now),
            mesh,
            overflow: (0..shards).map(|_| VecDeque::new()).collect(),
            overflow_waker: None,
            paused_readers: Vec::new(),
            handoffs: Vec::new(),
            encoder: PublishEncoder::default(),
            actions: Vec::new(),
            matches: Vec::new(),
            sub_ids: Vec::new(),
            peer_marks: vec![false; shards],
            expired: Vec::new(),
            mesh_inbox: Vec::new(),
            next_assigned_id: 0,
            counters: Counters::default(),
            congestion: None,
            gated: Vec::new(),
            pending_subacks: HashMap::new(),
            next_barrier: 0,
            barrier_token: None,
            rate: limits
                .max_connection_rate
                .map(|rate| admission::ConnectionRate::new(rate, now)),
            refusing: 0,
            redirection: None,
            response_information: None,
        }
    }

    pub fn id(&self) -> usize {
        self.id
    }

    pub fn shards(&self) -> usize {
        self.shards
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Offers these enhanced-authentication methods from now on.
    pub fn set_methods(&mut self, methods: Methods) {
        self.methods = methods;
    }

    /// The Response Information for clients that request it (5.0 section 3.2.2.3.15); `None`
    /// or an empty string: none is sent.
    pub fn set_response_information(&mut self, info: Option<&str>) {
        self.response_information = info
            .filter(|i| !i.is_empty())
            .and_then(|i| protocol::MqttString::try_from(i.to_owned()).ok());
    }

    pub fn methods(&self) -> &Methods {
        &self.methods
    }

    pub fn counters(&self) -> Counters {
        self.counters
    }

    // ----- CONNECT -----------------------------------------------------------------------

    /// Checks a CONNECT before anything else; on success returns the client id to use and
    /// whether the broker assigned it. An assigned id is picked so that this shard is its home.
    pub fn admit(&mut self, connect: &Connect) -> Result<(String, bool), Refusal> {
        if let Some(refusal) = self.redirection(connect.version) {
            return Err(refusal);
        }
        let refuse = |reason: Reason| Refusal {
            version: connect.version,
            reason,
            server_reference: None,
        };
        let method = connect.properties.authentication_method.as_ref();
        if let Some(method) = method.filter(|m| self.methods.find(m.as_str()).is_none()) {
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
        loop {
            self.next_assigned_id += 1;
            let id = format!("ringmq-{}-{}", self.id, self.next_assigned_id);
            // [MQTT-3.2.2-16] unique: not the id of a session this (its home) shard holds.
            let home_here = super::home_shard(id.as_bytes(), self.shards) == self.id;
            if home_here && !self.by_client_id.contains_key(&id) {
                return id;
            }
        }
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
        let existing = self.by_client_id.get(&client_id).copied();
        if let Some(key) = existing {
            self.take_over(key);
        }
        // The takeover may have ended a non-persistent session.
        let existing = self.by_client_id.get(&client_id).copied();
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        let (session_key, session_present) = match existing {
            Some(key) if !connect.clean_start => {
                if let Some(entry) = self.sessions.get_mut(key) {
                    // Back before the Will Delay Interval passed: no will [MQTT-3.1.3-9].
                    entry.pending_will = None;
                    entry.session.resume(connect, &mut actions);
                }
                (key, true)
            }
            other => {
                if let Some(key) = other {
                    self.remove_session(key);
                }
                let session = Session::new(client_id.clone(), connect, self.limits.session);
                let key = self.sessions.insert(SessionEntry {
                    session,
                    conn: None,
                    epoch: 0,
                    pending_will: None,
                    congested: false,
                    ignore_congestion: false,
                });
                self.by_client_id.insert(client_id.clone(), key);
                (key, false)
            }
        };
        let conn = self.insert_conn(connect, session_key, now);
        let auth_data = authenticated.as_ref().and_then(|a| a.data.clone());
        if let Some(c) = self.conn_mut(conn) {
            c.accepted_at = accepted_at;
            c.auth = authenticated.map(|a| a.auth);
        }
        if let Some(entry) = self.sessions.get_mut(session_key) {
            entry.conn = Some(conn);
        }
        if session_present {
            // Its shared subscriptions count it online again.
            self.announce_presence(session_key);
        }
        let assigned = assigned_id.then_some(client_id);
        let mut connack = self.connack(connect, session_present, assigned);
        if let (Packet::ConnAck(ack), Some(data)) = (&mut connack, auth_data) {
            ack.properties.authentication_data = Some(data);
        }
        self.write_packet(conn, &connack);
        self.apply(conn, &mut actions);
        self.actions = actions;
        conn
    }

    /// Whether a live connection of `client_id` was accepted after `accepted_at`. A handed-off
    /// connection can reach the home shard after a newer one accepted there directly; the
    /// newer one must win, so the older one is answered as if taken over at once.
    pub fn is_superseded(&self, client_id: &str, accepted_at: Instant) -> bool {
        let live = self
            .by_client_id
            .get(client_id)
            .and_then(|&key| self.sessions.get(key))
            .and_then(|e| e.conn);
        live.and_then(|id| self.conn(id))
            .is_some_and(|c| !c.closing && c.accepted_at > accepted_at)
    }

    /// The bytes a superseded connection gets before it is closed (CONNACK, then 5.0
    /// DISCONNECT 0x8E); its will is published as for any takeover [MQTT-3.1.4-3].
    pub fn superseded_reply(&mut self, connect: &Connect) -> BytesMut {
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
            self.route_will(Message::from_will(will));
            self.mesh.flush_wakes();
        }
        out
    }

    fn take_over(&mut self, session_key: usize) {
        let old = self.sessions.get(session_key).and_then(|e| e.conn);
        if let Some(old) = old {
            // 5.0: DISCONNECT 0x8E first; the old connection's will is published.
            self.close(old, Some(TAKEN_OVER), true);
        }
    }

    /// 5.0 clients get the configured cap or default (announced as Server Keep Alive);
    /// 3.1.1 has no way to tell the client, so its keep alive is honoured as asked.
    fn effective_keep_alive(&self, connect: &Connect) -> u16 {
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

    fn insert_conn(&mut self, connect: &Connect, session: usize, now: Instant) -> ConnId {
        self.next_generation += 1;
        let generation = self.next_generation;
        let keep_alive =
            crate::config::MqttConfig::keepalive_timeout(self.effective_keep_alive(connect));
        let key = self.conns.insert(Conn {
            generation,
            session,
            version: connect.version,
            peer: PeerLimits::from_connect(connect),
            outbound: BytesMut::new(),
            writer: None,
            closing: false,
            abort: false,
            last_activity: now,
            accepted_at: now,
            keep_alive,
            over_cap_since: None,
            cancel: IoCancel::default(),
            gate: None,
            held_acks: VecDeque::new(),
            auth: None,
            aliases: OutboundAliases::new(self.outbound_alias_limit(connect)),
        });
        let id = ConnId { key, generation };
        if let Some(period) = keep_alive {
            self.timers.arm(now + period, TimerKey::KeepAlive(id));
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
                properties.response_information = self.response_information.clone();
            }
        }
        Packet::ConnAck(ConnAck {
            session_present,
            reason: ReasonCode::Success,
            properties,
        })
    }

    // ----- packets from a connection ---------------------------------------------------

    /// Handles one packet from a connection. Returns false once the connection is closing
    /// (the reader stops).
    pub fn on_packet(&mut self, conn: ConnId, packet: Packet) -> bool {
        let Some(session_key) = self.live_session(conn) else {
            return false;
        };
        let packet = match packet {
            Packet::Auth(auth) => return self.on_auth(conn, &auth),
            other => other,
        };
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        if self.over_receive_maximum(conn, session_key, &packet) {
            let maximum = self.limits.session.max_inbound_qos2;
            let text = format!(
                "more than {maximum} QoS 1 and 2 PUBLISHes unacknowledged, the Receive Maximum \
                 [MQTT-3.3.4-9]"
            );
            let reason = Reason::detailed(ReasonCode::ReceiveMaximumExceeded, text);
            self.close(conn, Some(reason), true);
            self.mesh.flush_wakes();
            return false;
        }
        let ack = matches!(
            packet,
            Packet::PubAck(_) | Packet::PubComp(_) | Packet::PubRec(_)
        );
        if let Some(entry) = self.sessions.get_mut(session_key) {
            entry.session.on_packet(packet, &mut actions);
        }
        self.apply(conn, &mut actions);
        self.actions = actions;
        if ack {
            self.after_acks(session_key);
        }
        self.is_live(conn)
    }

    /// AUTH after CONNACK: a re-authentication [MQTT-4.12.1-1]. Other packets keep flowing
    /// meanwhile (the connection stays authenticated as before); a failed one is answered
    /// with DISCONNECT and the connection closed [MQTT-4.12.1-2].
    fn on_auth(&mut self, conn: ConnId, auth: &Auth) -> bool {
        let Some(mut flow) = self.conn_mut(conn).and_then(|c| c.auth.take()) else {
            // [MQTT-4.12.0-7] no method in CONNECT: the client must not send AUTH.
            let reason = Reason::explained(
                ReasonCode::ProtocolError,
                "AUTH from a client whose CONNECT named no authentication method [MQTT-4.12.0-7]",
            );
            self.close(conn, Some(reason), true);
            self.mesh.flush_wakes();
            return false;
        };
        match flow.on_auth(&self.methods, auth) {
            Reply::Continue(data) => {
                let packet = flow.auth_packet(ReasonCode::ContinueAuthentication, Some(data));
                self.write_packet(conn, &packet);
            }
            Reply::Success(data) => {
                let packet = flow.auth_packet(ReasonCode::Success, data);
                self.write_packet(conn, &packet);
            }
            Reply::Fail(reason) => {
                // DISCONNECT has no 0x8C (Table 3-10).
                let reason = match reason {
                    ReasonCode::BadAuthenticationMethod => ReasonCode::NotAuthorized,
                    other => other,
                };
                self.close(conn, Some(reason.into()), true);
                self.mesh.flush_wakes();
            }
        }
        if let Some(c) = self.conn_mut(conn) {
            c.auth = Some(flow);
        }
        self.is_live(conn)
    }

    /// [MQTT-3.3.4-9] a 5.0 client may have at most our Receive Maximum QoS 1/2 PUBLISHes
    /// unacknowledged: QoS 2 ones awaiting PUBREL plus acknowledgements flow control holds.
    fn over_receive_maximum(&self, conn: ConnId, session_key: usize, packet: &Packet) -> bool {
        let Packet::Publish(publish) = packet else {
            return false;
        };
        let (Some(c), Some(entry)) = (self.conn(conn), self.sessions.get(session_key)) else {
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

    /// The reader finished a batch: record activity (for keepalive) and ring the peers.
    pub fn end_of_batch(&mut self, conn: ConnId, now: Instant) {
        if let Some(c) = self.conn_mut(conn) {
            c.last_activity = now;
        }
        self.mesh.flush_wakes();
    }

    /// The byte stream is not MQTT: 5.0 gets DISCONNECT with the reason, then close.
    pub fn on_malformed(&mut self, conn: ConnId, error: &DecodeError) {
        let reason = Reason::detailed(error.reason_code(), error.to_string());
        self.close(conn, Some(reason), true);
        self.mesh.flush_wakes();
    }

    /// The socket hit EOF or an error without a DISCONNECT: the will goes out.
    pub fn on_connection_lost(&mut self, conn: ConnId) {
        self.close(conn, None, true);
        self.mesh.flush_wakes();
    }

    fn live_session(&self, conn: ConnId) -> Option<usize> {
        self.conn(conn).filter(|c| !c.closing).map(|c| c.session)
    }

    pub fn is_live(&self, conn: ConnId) -> bool {
        self.conn(conn).is_some_and(|c| !c.closing)
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        self.conns
            .get(id.key)
            .filter(|c| c.generation == id.generation)
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.conns
            .get_mut(id.key)
            .filter(|c| c.generation == id.generation)
    }

    fn apply(&mut self, conn: ConnId, actions: &mut Vec<Action>) {
        let Some(session_key) = self.conn(conn).map(|c| c.session) else {
            return;
        };
        for action in actions.drain(..) {
            match action {
                Action::Send(Packet::SubAck(suback)) if self.shards > 1 => {
                    self.barrier_token = Some(self.hold_suback(conn, session_key, suback));
                }
                Action::Send(packet) => self.write_packet(conn, &packet),
                Action::Deliver(outgoing) => self.write_outgoing(conn, session_key, outgoing),
                Action::Route(mut msg) => {
                    if msg.properties.is_some() {
                        msg.stamp_expiry(Instant::now());
                    }
                    self.congestion = None;
                    self.route(&msg, Some(session_key));
                    if let Some(cause) = self.congestion.take() {
                        self.gate(conn, cause, Instant::now());
                    }
                }
                Action::Subscribe {
                    filter,
                    options,
                    is_new,
                    id,
                } => {
                    let sub = LocalSub {
                        session: session_key,
                        options,
                        id,
                    };
                    self.subscribe(filter, sub, is_new);
                }
                Action::Unsubscribe(filter) => self.unsubscribe(session_key, &filter),
                Action::Close {
                    reason,
                    publish_will,
                } => self.close(conn, reason, publish_will),
            }
        }
        if let Some(token) = self.barrier_token.take() {
            self.send_barrier(token);
        }
    }

    /// Writes a resent or released PUBLISH. One that expired while it waited is dropped
    /// [MQTT-3.3.2-5] (a resend has started delivery already and still goes); the rest carry
    /// the remaining expiry [MQTT-3.3.2-6].
    fn write_outgoing(&mut self, conn: ConnId, session_key: usize, mut outgoing: Outgoing) {
        if outgoing.msg.expires_at.is_some() {
            let now = Instant::now();
            if outgoing.msg.is_expired(now) && !outgoing.dup {
                return self.discard(conn, session_key, &outgoing, Discard::Expired);
            }
            if let Some(msg) = outgoing.msg.with_remaining_expiry(now) {
                outgoing.msg = msg;
            }
        }
        let limit = self
            .sessions
            .get(session_key)
            .and_then(|e| e.session.max_packet_size())
            .map_or(usize::MAX, |max| max as usize);
        let mut packet = outgoing.to_packet();
        let Some(c) = self.conns.get_mut(conn.key) else {
            return;
        };
        if c.generation != conn.generation {
            return;
        }
        let plain_len = protocol::encoded_len(&packet, c.version);
        let Packet::Publish(publish) = &mut packet else {
            return;
        };
        // A resend after a reconnect uses an alias only if this connection set it (section
        // 3.3.2.3.4): the table is per connection, so it starts by setting it again.
        let planned = c.aliases.plan(&publish.topic);
        let size = |alias| match alias {
            AliasUse::None => plain_len,
            _ => aliased_len(publish, alias),
        };
        let Some(form) = fitting(planned, limit, size) else {
            // [MQTT-3.1.2-25] never send more than the client's Maximum Packet Size.
            return self.discard(conn, session_key, &outgoing, Discard::TooLarge);
        };
        let was_empty = c.outbound.is_empty();
        let written = match form {
            AliasUse::None => protocol::encode(&packet, c.version, &mut c.outbound).is_ok(),
            AliasUse::Set(alias) => {
                let ok = protocol::encode_publish(
                    publish,
                    ProtocolVersion::V5,
                    Some(alias),
                    &mut c.outbound,
                );
                c.aliases.sent(&publish.topic, form);
                ok.is_ok()
            }
            AliasUse::Use(alias) => {
                publish.topic = TopicName::empty();
                protocol::encode_publish(publish, ProtocolVersion::V5, Some(alias), &mut c.outbound)
                    .is_ok()
            }
        };
        if written && was_empty {
            wake(&mut c.writer);
        }
    }

    /// Drops a released or resent PUBLISH and gives its window slot to the next message.
    fn discard(&mut self, conn: ConnId, session_key: usize, outgoing: &Outgoing, why: Discard) {
        let mut released = Vec::new();
        if let Some(entry) = self.sessions.get_mut(session_key) {
            entry
                .session
                .discard(outgoing.packet_id, why, &mut released);
        }
        self.apply(conn, &mut released);
    }

    /// Writes a packet within the client's limits: its optional properties go when they do
    /// not fit or were not asked for [MQTT-3.1.2-29]. A control packet that cannot fit even
    /// without them closes the connection with 0x95 Packet too large [MQTT-3.1.2-24]; a
    /// PUBLISH never gets here too large (its callers discard it [MQTT-3.1.2-25]).
    fn write_packet(&mut self, conn: ConnId, packet: &Packet) {
        if self.hold_ack(conn, packet) {
            return;
        }
        let Some(c) = self.conn_mut(conn) else {
            return;
        };
        let packet = match protocol::fit(packet, c.version, c.peer) {
            Ok(packet) => packet,
            Err(too_large) => return self.refuse_to_send(conn, packet, too_large),
        };
        let was_empty = c.outbound.is_empty();
        if protocol::encode(&packet, c.version, &mut c.outbound).is_ok() && was_empty {
            wake(&mut c.writer);
        }
    }

    #[cold]
    fn refuse_to_send(&mut self, conn: ConnId, packet: &Packet, too_large: protocol::TooLarge) {
        if matches!(packet, Packet::Publish(_)) {
            return;
        }
        let limit = self.conn(conn).map_or(u32::MAX, |c| c.peer.max_packet_size);
        let text = format!(
            "a {:?} of {} bytes would exceed the client's Maximum Packet Size of {limit} \
             [MQTT-3.1.2-24]",
            packet.packet_type(),
            too_large.len,
        );
        let reason = Reason::detailed(ReasonCode::PacketTooLarge, text);
        self.close(conn, Some(reason), true);
    }

    // ----- closing ------------------------------------------------------------------------

    /// Closes a connection once: queues the 5.0 DISCONNECT (with its Reason String when it
    /// fits the client's Maximum Packet Size [MQTT-3.14.2-3]; none at all when even the bare
    /// DISCONNECT would not), detaches the session (removing a non-persistent one), publishes
    /// the will if asked, and lets the writer flush and finish.
    pub fn close(&mut self, conn: ConnId, reason: Option<Reason>, publish_will: bool) {
        let Some(c) = self.conn_mut(conn) else {
            return;
        };
        if c.closing {
            return;
        }
        c.closing = true;
        let session_key = c.session;
        let version = c.version;
        if let (Some(reason), ProtocolVersion::V5) = (reason, version) {
            let packet = Packet::Disconnect(Disconnect::from_reason(reason));
            if let Ok(packet) = protocol::fit(&packet, version, c.peer) {
                let _ = protocol::encode(&packet, version, &mut c.outbound);
            }
        }
        wake(&mut c.writer);
        let will = self.detach_session(session_key, conn, publish_will);
        if let Some(will) = will {
            self.route_will(will);
        }
    }

    /// Publishes a will as if its client had: from now on its Message Expiry Interval runs.
    fn route_will(&mut self, mut will: Message) {
        if will.properties.is_some() {
            will.stamp_expiry(Instant::now());
        }
        self.route(&will, None);
    }

    fn detach_session(
        &mut self,
        session_key: usize,
        conn: ConnId,
        publish_will: bool,
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
            self.remove_session(session_key);
            return will;
        }
        // Its shared subscriptions count it offline: others online get the messages.
        self.announce_presence(session_key);
        let entry = self.sessions.get_mut(session_key)?;
        self.next_generation += 1;
        entry.epoch = self.next_generation;
        let epoch = entry.epoch;
        let interval = entry
            .session
            .expiry_interval()
            .min(self.limits.max_session_expiry);
        let now = Instant::now();
        if interval != u32::MAX {
            let key = TimerKey::SessionExpiry {
                session: session_key,
                epoch,
            };
            self.timers.arm(now + secs(interval), key);
        }
        if will.is_some() && will_delay > 0 {
            entry.pending_will = will;
            let key = TimerKey::WillDelay {
                session: session_key,
                epoch,
            };
            self.timers.arm(now + secs(will_delay.min(interval)), key);
            return None;
        }
        will
    }

    fn remove_session(&mut self, session_key: usize) {
        let Some(mut entry) = self.sessions.try_remove(session_key) else {
            return;
        };
        // What shared subscription groups gave it and its client does not have goes back
        // to the groups, once it is no longer a member (section 4.8.2).
        let mut undelivered = Vec::new();
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
        self.by_client_id.remove(entry.session.client_id());
        self.return_to_groups(undelivered);
        // A will still waiting for its delay goes out when the session ends [MQTT-3.1.3-9].
        if let Some(will) = entry.pending_will {
            self.route_will(will);
        }
    }

    // ----- the writer task ------------------------------------------------------------------

    /// Swaps the connection's pending bytes into `spare` (which must be empty), or registers
    /// the writer's waker.
    pub fn writer_step(&mut self, conn: ConnId, spare: &mut BytesMut, waker: &Waker) -> WriterStep {
        let Some(c) = self.conn_mut(conn) else {
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
        if c.over_cap_since.take().is_some() {
            let session_key = c.session;
            if !c.closing {
                self.release_writable(conn, session_key);
            }
        }
        WriterStep::Write
    }

    fn release_writable(&mut self, conn: ConnId, session_key: usize) {
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        if let Some(entry) = self.sessions.get_mut(session_key) {
            entry.session.set_writable(true, &mut actions);
        }
        self.apply(conn, &mut actions);
        self.actions = actions;
    }

    /// The writer failed to write: the connection is lost.
    pub fn on_write_error(&mut self, conn: ConnId) {
        self.close(conn, None, true);
        if let Some(c) = self.conn_mut(conn) {
            c.abort = true;
        }
        self.mesh.flush_wakes();
    }

    /// Whether the connection must stop without flushing (stalled client).
    pub fn is_aborted(&self, conn: ConnId) -> bool {
        self.conn(conn).is_none_or(|c| c.abort)
    }

    pub fn set_canceller(&mut self, conn: ConnId, canceller: Canceller) {
        if let Some(c) = self.conn_mut(conn) {
            c.cancel = IoCancel(Some(canceller));
        }
    }

    /// The writer task ended: stop the reader and free the slot.
    pub fn remove_conn(&mut self, conn: ConnId) {
        self.close(conn, None, true);
        if let Some(c) = self.conn_mut(conn) {
            c.cancel.fire();
            self.conns.remove(conn.key);
        }
        self.mesh.flush_wakes();
    }

    // ----- shutdown ---------------------------------------------------------------------------

    /// Closes every connection (5.0: DISCONNECT 0x8B Server Shutting Down) without wills.
    pub fn shut_down(&mut self) {
        let ids: Vec<ConnId> = self
            .conns
            .iter()
            .map(|(key, c)| ConnId {
                key,
                generation: c.generation,
            })
            .collect();
        for id in ids {
            self.close(id, Some(ReasonCode::ServerShuttingDown.into()), false);
        }
        self.mesh.flush_wakes();
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The drop counters of a client's session, if this shard holds it.
    pub fn session_stats(&self, client_id: &str) -> Option<session::Stats> {
        let key = self.by_client_id.get(client_id)?;
        self.sessions.get(*key).map(|e| e.session.stats())
    }
}

#[cfg(test)]
mod tests;

fn secs(seconds: u32) -> Duration {
    Duration::from_secs(u64::from(seconds))
}

fn wake(slot: &mut Option<Waker>) {
    if let Some(w) = slot.take() {
        w.wake();
    }
}

/// The size of `publish` sent with the alias form `alias`: the full topic for `Set`, an empty
/// one for `Use`.
fn aliased_len(publish: &mut Publish, alias: AliasUse) -> usize {
    let value = match alias {
        AliasUse::Set(value) | AliasUse::Use(value) => Some(value),
        AliasUse::None => None,
    };
    if !matches!(alias, AliasUse::Use(_)) {
        return protocol::encoded_publish_len(publish, ProtocolVersion::V5, value);
    }
    let topic = std::mem::take(&mut publish.topic);
    let len = protocol::encoded_publish_len(publish, ProtocolVersion::V5, value);
    publish.topic = topic;
    len
}
