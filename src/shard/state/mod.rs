//! `ShardState`: everything one shard owns, as a set of parts each owning one concern, and
//! the dispatcher that turns a session's actions into work on those parts. No sockets (a
//! connection is an outbound byte buffer plus a waker for its writer task) and no clock:
//! every entry point takes `now`.
//!
//! The parts, each in its own file:
//! - `connections`: the connection slab, outbound buffers, writer wakers, each client's
//!   limits and outbound Topic Aliases, and the one path by which packets are encoded.
//! - `sessions`: the sessions whose home is this shard, by key and client id.
//! - `subscriptions`: the local trie and the peers' interest; `shared`: shared groups.
//! - `retained`: this shard's copy of the retained store.
//! - `journal`: the records owed to the persistence log (when persistence is on), fed by
//!   `store_retained`, `session_log` (persistent sessions' state) and the persistent
//!   sessions themselves, taken by the log writer once per loop turn.
//! - `mesh_out`: the mesh ends with their bounded overflow and reader back-pressure.
//! - `timers`: the timer wheel and what its timers guard.
//! - `reading`: the budget of bytes large packets being read may hold, and the packet clock
//!   that closes a connection whose packet is too slow to arrive.
//! - `flow` (held acknowledgements), `durable` (acknowledgements held until the log is
//!   durable, `fsync = "always"`), `disk` (QoS 1/2 refused while the log cannot be
//!   written), `barrier` (held SUBACKs), `admission` (who gets in),
//!   `login` (password checks at CONNECT, run off the shard), `auth_files` (the password
//!   and ACL files the shard uses, replaced on SIGHUP).
//! - `events`: the log lines of connects, disconnects (with `Ending`, why) and refusals.
//! - `stats`: what the metrics count that no other part does, and the `Snapshot` published.
//! - `sys`: the `$SYS` topics: reports to shard 0, which sums and publishes them.
//! - `latency`: deliveries noted for the broker's latency histogram.
//! - `bridges`: the bridges' state notices (`$SYS/broker/connection/<name>/state`) and counts;
//!   a bridge's local session is an ordinary session and connection otherwise.
//!
//! The work on them, as `ShardState` methods: `connect` (CONNECT to CONNACK, takeover),
//! `inbound` (packets from a connection), `routing` (where a PUBLISH goes and how it reaches
//! a subscriber), `peers` (what peers send), `closing` (the end of a connection or session,
//! the writer task's side, shutdown).
//!
//! Where later concerns hook in: an authorization check goes in `apply` (a client's PUBLISH
//! before `route`, its SUBSCRIBE's filters before `subscribe`) and in `deliver_to` (the one
//! function through which a message reaches a session); state that must survive a restart
//! changes only through `Sessions`, `Retained` and the session's own methods, so a
//! persistence log is fed from there (`journal`: today the retained store's changes).

mod admission;
mod auth_files;
mod barrier;
mod bridges;
mod closing;
mod connect;
mod connections;
mod disk;
mod durable;
mod events;
mod flow;
mod inbound;
mod journal;
mod latency;
mod limits;
mod login;
mod mesh_out;
mod peers;
mod reading;
mod retained;
mod routing;
mod session_log;
mod sessions;
mod shared;
mod stats;
mod subscriptions;
mod sys;
mod timers;

pub use admission::Admission;
pub use bridges::BridgeCounts;
pub use connections::ConnId;
pub use events::Ending;
pub use limits::Limits;
pub use login::{Login, Verification};
pub use reading::LARGE_PACKET;
pub use subscriptions::LocalSub;

use crate::auth::Authentication;
use crate::mesh::MeshEnds;
use crate::protocol::{
    self, ConnAck, Connect, Packet, PeerLimits, Properties, ProtocolVersion, Reason,
};
use crate::session::{self, Action, Message};
use crate::shard::MeshMsg;
use admission::AdmissionControl;
use barrier::Barriers;
use bytes::{Bytes, BytesMut};
use connections::Connections;
use flow::Flow;
use latency::Latency;
use mesh_out::MeshOut;
use reading::ReadBudget;
use retained::Retained;
use sessions::Sessions;
use shared::SharedGroups;
use stats::Stats;
use std::collections::VecDeque;
use std::time::{Duration, Instant};
use subscriptions::Subscriptions;
use sys::Sys;
use timers::Timers;

/// Everything one shard owns.
#[derive(Debug)]
pub struct ShardState {
    limits: Limits,
    conns: Connections,
    sessions: Sessions,
    subs: Subscriptions,
    shared: SharedGroups,
    retained: Retained,
    mesh: MeshOut,
    timers: Timers,
    reading: ReadBudget,
    flow: Flow,
    barriers: Barriers,
    admission: AdmissionControl,
    logins: login::Logins,
    counters: Counters,
    stats: Stats,
    sys: Sys,
    latency: Latency,
    /// `None` with persistence off: the hot path then pays one branch, on retained messages.
    journal: Option<journal::Journal>,
    bridge_counts: BridgeCounts,
    work: Work,
}

/// The dispatcher's own state: a scratch vector for a session's actions, and the actions
/// that arose while others were handled (messages released after a discard), handled next.
#[derive(Debug, Default)]
struct Work {
    actions: Vec<Action>,
    deferred: VecDeque<(ConnId, Vec<Action>)>,
}

impl Work {
    /// An empty action vector that keeps its capacity across packets; give it back with
    /// `restore`.
    fn take(&mut self) -> Vec<Action> {
        let mut actions = std::mem::take(&mut self.actions);
        actions.clear();
        actions
    }

    fn restore(&mut self, actions: Vec<Action>) {
        self.actions = actions;
    }

    fn defer(&mut self, conn: ConnId, actions: Vec<Action>) {
        if !actions.is_empty() {
            self.deferred.push_back((conn, actions));
        }
    }
}

/// A client that finished its enhanced-authentication exchange before CONNACK.
#[derive(Debug)]
pub struct Authenticated {
    pub auth: Authentication,
    /// The method's final Authentication Data, sent in CONNACK.
    pub data: Option<Bytes>,
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
    /// QoS 1/2 PUBLISHes refused because the persistence log could not be written.
    pub refused_log_failing: u64,
}

impl ShardState {
    pub fn new(mesh: MeshEnds<MeshMsg>, limits: Limits, now: Instant) -> Self {
        let shards = mesh.shards();
        Self {
            limits,
            conns: Connections::default(),
            sessions: Sessions::default(),
            subs: Subscriptions::new(shards),
            shared: SharedGroups::default(),
            retained: Retained::new(
                limits.retain_available,
                limits.max_retained_messages,
                limits.max_retained_bytes,
            ),
            mesh: MeshOut::new(mesh, limits.max_mesh_overflow),
            timers: Timers::new(limits.timer_tick, now),
            reading: ReadBudget::new(limits.max_partial_bytes),
            flow: Flow::new(shards),
            barriers: Barriers::default(),
            admission: AdmissionControl::new(limits.max_connection_rate, now),
            logins: login::Logins::default(),
            counters: Counters::default(),
            stats: Stats::new(shards),
            sys: Sys::new(shards, now),
            latency: Latency::default(),
            journal: None,
            bridge_counts: BridgeCounts::default(),
            work: Work::default(),
        }
    }

    pub fn id(&self) -> usize {
        self.mesh.ends().id()
    }

    pub fn shards(&self) -> usize {
        self.mesh.ends().shards()
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    pub fn counters(&self) -> Counters {
        Counters {
            mesh_overflowed: self.mesh.overflowed(),
            ..self.counters
        }
    }

    /// Handles a session's actions for its connection `conn`, in order.
    fn apply(&mut self, conn: ConnId, actions: &mut Vec<Action>, now: Instant) {
        let Some(session_key) = self.conns.get(conn).map(|c| c.session) else {
            actions.clear();
            return;
        };
        // Set once this SUBSCRIBE's SUBACK waits behind a barrier (the session pushes the
        // SUBACK before the subscriptions it grants).
        let mut barrier = None;
        // A persistent session's subscriptions are in its logged state.
        let mut subscriptions_changed = false;
        // In place: an `Action` is larger than what a move copies with a few registers, and
        // a PUBLISH or PUBACK makes one or two of them.
        for action in actions.iter_mut() {
            match action {
                Action::Send(Packet::SubAck(suback)) if self.shards() > 1 => {
                    barrier = Some(self.hold_suback(conn, session_key, suback.clone()));
                }
                Action::Send(packet) => self.write_packet(conn, packet, now),
                Action::Deliver(outgoing) => self.write_outgoing(conn, session_key, outgoing, now),
                Action::Route(msg) => {
                    msg.received_at = Some(now);
                    if msg.properties.is_some() {
                        msg.stamp_expiry(now);
                    }
                    if let Some(cause) = self.route(msg, Some(session_key), now) {
                        self.gate(conn, cause, now);
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
                        options: *options,
                        id: *id,
                    };
                    self.subscribe(filter.clone(), sub, *is_new, barrier, now);
                    subscriptions_changed = true;
                }
                Action::Unsubscribe(filter) => {
                    self.unsubscribe(session_key, filter);
                    subscriptions_changed = true;
                }
                Action::Close {
                    reason,
                    publish_will,
                } => self.close(conn, reason.take(), *publish_will, now),
                Action::Disconnected { code, publish_will } => {
                    self.close_as(conn, Ending::Client(*code), *publish_will, now);
                }
            }
        }
        actions.clear();
        if let Some(token) = barrier {
            self.send_barrier(token);
        }
        if subscriptions_changed && self.journal.is_some() {
            self.log_session(session_key, now);
        }
    }

    /// Ends every entry point: handles the actions deferred meanwhile (without re-entering
    /// `apply` from inside itself).
    fn settle(&mut self, now: Instant) {
        while let Some((conn, mut actions)) = self.work.deferred.pop_front() {
            self.apply(conn, &mut actions, now);
        }
    }

    /// `settle`, then rings the peers that were sent something. Entry points that a batch
    /// of others follows (a packet of a read) leave the ringing to the end of the batch.
    fn finish(&mut self, now: Instant) {
        self.settle(now);
        self.mesh.flush_wakes();
    }

    /// Writes a control packet within the client's limits. One that cannot fit even without
    /// its optional properties closes the connection with 0x95 Packet too large
    /// [MQTT-3.1.2-24]; a PUBLISH never gets here (see `routing::write_publish`).
    fn write_packet(&mut self, conn: ConnId, packet: &Packet, now: Instant) {
        if self.hold_ack(conn, packet) {
            return;
        }
        if self.journal.is_some() && self.hold_until_durable(conn, packet) {
            return;
        }
        self.send_packet(conn, packet, now);
    }

    /// `write_packet` past its holds.
    fn send_packet(&mut self, conn: ConnId, packet: &Packet, now: Instant) {
        match self.conns.write_packet(conn, packet) {
            Ok(()) => self.stats.packets_sent += 1,
            Err(unsendable) => self.refuse_to_send(conn, packet, unsendable, now),
        }
    }

    #[cold]
    fn refuse_to_send(
        &mut self,
        conn: ConnId,
        packet: &Packet,
        unsendable: connections::Unsendable,
        now: Instant,
    ) {
        if matches!(packet, Packet::Publish(_)) {
            return;
        }
        let text = format!(
            "a {:?} of {} bytes would exceed the client's Maximum Packet Size of {} \
             [MQTT-3.1.2-24]",
            packet.packet_type(),
            unsendable.len,
            unsendable.limit,
        );
        let reason = Reason::detailed(protocol::ReasonCode::PacketTooLarge, text);
        self.close(conn, Some(reason), true, now);
    }

    /// Publishes a will as if its client had: from now on its Message Expiry Interval runs.
    fn route_will(&mut self, mut will: Message, now: Instant) {
        // A will recovered from the log may carry its expiry already (it ran from when the
        // will was due, `session::will_from_record`); a live one's starts now.
        if will.properties.is_some() && will.expires_at.is_none() {
            will.stamp_expiry(now);
        }
        let _: routing::Held = self.route(&will, None, now);
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// The invariants a shard keeps whatever its clients and peers send (for the state fuzzer
    /// and tests): every live connection's session exists and points back at it, every
    /// session holds its bounds. Returns the first one broken.
    pub fn broken_invariant(&self) -> Option<String> {
        for id in self.conns.ids() {
            let Some(c) = self.conns.get(id).filter(|c| !c.closing) else {
                continue;
            };
            match self.sessions.get(c.session) {
                Some(entry) if entry.conn == Some(id) => {}
                _ => return Some(format!("a live connection without its session ({id:?})")),
            }
        }
        self.sessions
            .keys()
            .filter_map(|key| self.sessions.get(key))
            .find_map(|entry| {
                let broken = entry.session.broken_bound()?;
                Some(format!("session {:?}: {broken}", entry.session.client_id()))
            })
    }

    /// The drop counters of a client's session, if this shard holds it.
    pub fn session_stats(&self, client_id: &str) -> Option<session::Stats> {
        let key = self.sessions.find(client_id)?;
        self.sessions.get(key).map(|e| e.session.stats())
    }
}

/// A message that waited (in a peer's overflow, in a queue) may have expired on the way
/// [MQTT-3.3.2-5]; otherwise it goes on with its remaining expiry [MQTT-3.3.2-6]. Only
/// messages that have an expiry are looked at.
fn still_fresh(msg: Message, now: Instant) -> Option<Message> {
    if msg.expires_at.is_none() {
        return Some(msg);
    }
    if msg.is_expired(now) {
        return None;
    }
    Some(msg.with_remaining_expiry(now).unwrap_or(msg))
}

fn secs(seconds: u32) -> Duration {
    Duration::from_secs(u64::from(seconds))
}

#[cfg(test)]
mod tests;
