//! The per-client MQTT session state machine, sans-IO: packets and routed messages in, actions
//! out. It owns one client's subscriptions, outbound in-flight window, offline queue, inbound
//! QoS 2 state and will; it never touches a socket or reads the clock (the shard owns both).
//!
//! This file holds the session's types, its life cycle (connect, resume, detach, DISCONNECT)
//! and the dispatcher of client packets; each concern the dispatcher hands to has its file:
//!
//! - `inbound`: the client's PUBLISHes (QoS 0/1/2, inbound topic aliases, PUBREL).
//! - `subscriptions`: SUBSCRIBE and UNSUBSCRIBE, and the subscriptions they leave.
//! - `outbound`: messages to the client (the in-flight window, its acknowledgements, the
//!   queue behind it, resends on reconnect, discards).
//! - `shared`: the session's side of shared subscriptions.
//! - `keepalive`: how long a silent connection lives [MQTT-3.1.2-24].
//! - `persisted`: what a persistent session writes to its shard's log as it changes, and
//!   the session recovered from the log at start.
//! - `message`: the routed message.

mod inbound;
mod keepalive;
mod message;
mod outbound;
mod persisted;
mod shared;
mod store;
mod subscriptions;

pub use inbound::payload_matches_format;
pub use keepalive::keepalive_timeout;
pub use message::Message;
pub use persisted::{OwedMessage, from_stored, to_stored, to_will_record, will_from_record};
pub use shared::Readiness;

use crate::auth::acl::{AclFile, ClientAcl};
use crate::persist::{Pending, SharedSink};
use crate::protocol::{
    Connect, Disconnect, LastWill, Packet, PacketId, ProtocolVersion, QoS, Reason, ReasonCode,
    SubscriptionOptions, TopicFilter, TopicName,
};
use hashbrown::{HashMap, HashSet};
use std::collections::VecDeque;

/// Bounds of one session, from the broker config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most QoS 1/2 PUBLISHes in flight to the client (also capped by its Receive Maximum).
    pub max_inflight: u16,
    /// Most messages waiting for a window slot or for the client to come back.
    pub max_queued_messages: usize,
    /// Most topic + payload bytes those queued messages may hold.
    pub max_queued_bytes: usize,
    /// Most inbound QoS 2 packet ids awaiting PUBREL (the Receive Maximum we grant).
    pub max_inbound_qos2: u16,
    /// Topic Alias Maximum granted to 5.0 clients (0: aliases refused).
    pub topic_alias_maximum: u16,
    /// Retained messages are supported (5.0 Retain Available).
    pub retain_available: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_inflight: 64,
            max_queued_messages: 1000,
            max_queued_bytes: 16 * 1024 * 1024,
            max_inbound_qos2: 64,
            topic_alias_maximum: 16,
            retain_available: true,
        }
    }
}

/// What the shard must do after the session handled a packet.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(
    clippy::large_enum_variant,
    reason = "actions live in one reused Vec per shard; boxing would allocate per packet"
)]
pub enum Action {
    /// Write this control packet to the client.
    Send(Packet),
    /// Route this message (from the client's PUBLISH) to subscribers and the retained store.
    Route(Message),
    /// Write this PUBLISH to the client (a resend or a message released from the queue).
    Deliver(Outgoing),
    /// Add the subscription to the trie; `is_new` tells Retain Handling 1 apart; `id` is the
    /// 5.0 Subscription Identifier (0: none).
    Subscribe {
        filter: TopicFilter,
        options: SubscriptionOptions,
        is_new: bool,
        id: u32,
    },
    /// Remove the session's subscription for this filter from the trie.
    Unsubscribe(TopicFilter),
    /// Close the connection; first send a 5.0 DISCONNECT with `reason` (code and Reason
    /// String) if there is one.
    Close {
        reason: Option<Reason>,
        publish_will: bool,
    },
    /// The client sent DISCONNECT with this reason code (3.1.1: always 0): close the
    /// connection, sending nothing.
    Disconnected {
        code: ReasonCode,
        publish_will: bool,
    },
}

/// One PUBLISH to write to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// QoS and retain flag already set for this subscriber.
    pub msg: Message,
    pub packet_id: Option<PacketId>,
    pub dup: bool,
}

impl Outgoing {
    pub fn to_packet(&self) -> Packet {
        Packet::Publish(self.msg.to_publish(self.packet_id, self.dup))
    }
}

/// What `deliver` did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Write it now as a PUBLISH with this QoS and packet id.
    Send {
        qos: QoS,
        packet_id: Option<PacketId>,
    },
    /// Held in the session queue until a window slot frees or the client returns.
    Queued,
    /// Not delivered (counted in `Stats`).
    Dropped,
    /// The client may not receive this topic (its ACL's read check); counted in `Stats`.
    NotAuthorized,
}

/// Counters of messages the session did not deliver.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// QoS 0 messages dropped because the client was offline or its outbound buffer full.
    pub dropped_qos0: u64,
    /// QoS 1/2 messages dropped because the queue was at its bound.
    pub dropped_queue_full: u64,
    /// Messages larger than the client's Maximum Packet Size [MQTT-3.1.2-25].
    pub dropped_too_large: u64,
    /// Messages whose Message Expiry Interval ran out while queued [MQTT-3.3.2-5].
    pub expired: u64,
    /// Messages on topics the client's ACL does not let it receive.
    pub not_authorized: u64,
}

/// Why the shard did not write a message `deliver` or the queue handed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Discard {
    TooLarge,
    Expired,
}

/// An outbound QoS 1/2 exchange not yet finished.
#[derive(Debug, Clone)]
struct InFlight {
    /// Allocation order, used to detect packet id wrap-around cheaply.
    seq: u64,
    /// The message's number in the session, in the order it took them (the log's key).
    n: u64,
    packet_id: PacketId,
    stage: Stage,
    /// The shared subscription group the message came through, if any (`shared`).
    group: Option<TopicFilter>,
}

/// A message waiting for a window slot or for the client to come back.
#[derive(Debug, Clone)]
struct Queued {
    /// The message's number in the session (the log's key).
    n: u64,
    msg: Message,
    /// The shared subscription group it came through, if any: when the session ends the
    /// group gets it back for another member (section 4.8.2).
    group: Option<TopicFilter>,
}

#[derive(Debug, Clone)]
enum Stage {
    /// PUBLISH sent, awaiting PUBACK (QoS 1) or PUBREC (QoS 2).
    Published(Message),
    /// PUBREL sent, awaiting PUBCOMP.
    Released,
}

/// One client's session. Lives in its home shard while the client is connected and, for a
/// persistent session, after it disconnects.
#[derive(Debug)]
pub struct Session {
    client_id: String,
    version: ProtocolVersion,
    /// The client is a bridge (Mosquitto's private protocol level): its subscriptions are
    /// No Local and Retain As Published, so what it brings is not sent back to it.
    bridge: bool,
    /// Whether the session outlives the network connection.
    persistent: bool,
    /// Seconds the session outlives it (5.0 Session Expiry Interval; 3.1.1: `u32::MAX`).
    expiry_interval: u32,
    connected: bool,
    /// The shard clears this while the client's outbound buffer is over its cap.
    writable: bool,
    keep_alive: u16,
    will: Option<LastWill>,
    /// Each filter's options and 5.0 Subscription Identifier (0: none).
    subscriptions: HashMap<TopicFilter, (SubscriptionOptions, u32)>,
    inflight: VecDeque<InFlight>,
    /// min(config max_inflight, client Receive Maximum).
    window: usize,
    next_seq: u64,
    /// The number the next QoS 1/2 message taken gets.
    next_n: u64,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    /// The payloads of queued messages (`store.rs`).
    store: store::PayloadStore,
    /// The shard holds publishers back for this session (`set_congested`).
    congested: bool,
    inbound_qos2: HashSet<u16>,
    /// Inbound topic aliases of the current connection, index alias - 1.
    topic_aliases: Vec<Option<TopicName>>,
    limits: Limits,
    stats: Stats,
    /// What this connection's client may publish, subscribe to and receive (`auth.acl_file`);
    /// `None`: everything.
    acl: Option<ClientAcl>,
    /// The user name of the connection last attached (`None`: anonymous), kept to compile
    /// the ACL again when the acl_file is reloaded while the session lives.
    username: Option<Box<str>>,
    /// The shard's persistence sink while this session is persistent and persistence is on:
    /// the session writes its own changes there (`persisted`). `None` costs nothing.
    log: Option<SharedSink>,
    /// The messages whose "taken" record is still in the sink's pending batch, oldest
    /// first (and some of batches already taken, dropped at the next record): retired
    /// before the writer takes it, such a message is voided instead of
    /// logged as retired (`persisted`). Empty without a sink.
    pending_takes: VecDeque<(u64, Pending)>,
}

impl Session {
    /// A fresh session for an accepted CONNECT (client id already assigned if it was empty).
    pub fn new(client_id: String, connect: &Connect, limits: Limits) -> Self {
        let mut session = Self {
            client_id,
            version: connect.version,
            bridge: false,
            persistent: false,
            expiry_interval: 0,
            connected: false,
            writable: true,
            keep_alive: 0,
            will: None,
            subscriptions: HashMap::new(),
            inflight: VecDeque::new(),
            window: 1,
            next_seq: 0,
            next_n: 0,
            queue: VecDeque::new(),
            queued_bytes: 0,
            store: store::PayloadStore::default(),
            congested: false,
            inbound_qos2: HashSet::new(),
            topic_aliases: Vec::new(),
            limits,
            stats: Stats::default(),
            acl: None,
            username: None,
            log: None,
            pending_takes: VecDeque::new(),
        };
        session.attach(connect);
        session
    }

    /// Reattaches a returning client to this persistent session; pushes the resends
    /// [MQTT-4.4.0-1] and then the queued messages the window allows.
    pub fn resume(&mut self, connect: &Connect, out: &mut Vec<Action>) {
        self.attach(connect);
        self.resend_inflight(out);
        self.release_queue(out);
    }

    fn attach(&mut self, connect: &Connect) {
        self.version = connect.version;
        self.bridge = connect.bridge;
        self.persistent = Self::wants_persistence(connect);
        self.expiry_interval = match connect.version {
            ProtocolVersion::V5 => connect.properties.session_expiry_interval.unwrap_or(0),
            _ if self.persistent => u32::MAX,
            _ => 0,
        };
        self.connected = true;
        self.writable = true;
        self.keep_alive = connect.keep_alive;
        self.username = connect.username.as_ref().map(|u| u.as_str().into());
        self.will = connect.will.clone();
        let receive_maximum = connect.properties.receive_maximum.unwrap_or(u16::MAX);
        self.window = usize::from(receive_maximum.min(self.limits.max_inflight).max(1));
        // Topic aliases live as long as the network connection [MQTT-3.3.2-7].
        self.topic_aliases.clear();
        // Inbound QoS 2 state belongs to the session; a 3.1.1 client that reconnects may
        // resend a PUBLISH it never saw PUBREC for, which must still not be routed twice.
    }

    /// 3.1.1: Clean Session 0. 5.0: a non-zero Session Expiry Interval (section 3.1.2.11.2).
    pub fn wants_persistence(connect: &Connect) -> bool {
        match connect.version {
            ProtocolVersion::V5 => connect
                .properties
                .session_expiry_interval
                .is_some_and(|secs| secs > 0),
            _ => !connect.clean_start,
        }
    }

    /// The ACL checks of the connection now attached (compiled at CONNECT from its client id
    /// and user name); `None` allows everything.
    pub fn set_acl(&mut self, acl: Option<ClientAcl>) {
        self.acl = acl;
    }

    /// A reloaded acl_file: the checks are compiled again for this session's client id and
    /// the user name of its last connection, and queued messages (not yet sent) on topics
    /// the client may no longer read are dropped, as a live delivery of them would be. What
    /// is in flight stays: the client has had it once already. Returns how many were dropped.
    pub fn reauthorize(&mut self, acl: Option<&AclFile>) -> usize {
        let acl = acl.map(|file| file.compile(&self.client_id, self.username.as_deref()));
        let before = self.queue.len();
        if let Some(acl) = &acl {
            let queued_bytes = &mut self.queued_bytes;
            let mut dropped = Vec::new();
            self.queue.retain(|q| {
                let readable = acl.can_read(&q.msg.topic);
                if !readable {
                    *queued_bytes -= q.msg.queued_size();
                    dropped.push(q.n);
                }
                readable
            });
            for n in dropped {
                self.log_done(n);
            }
        }
        self.acl = acl;
        let dropped = before - self.queue.len();
        self.stats.not_authorized += dropped as u64;
        dropped
    }

    /// The user name the client last connected with.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    pub fn version(&self) -> ProtocolVersion {
        self.version
    }

    pub fn keep_alive(&self) -> u16 {
        self.keep_alive
    }

    pub fn is_persistent(&self) -> bool {
        self.persistent
    }

    /// Seconds the session outlives its connection; `u32::MAX` means it never expires.
    pub fn expiry_interval(&self) -> u32 {
        self.expiry_interval
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = (&TopicFilter, &SubscriptionOptions)> {
        self.subscriptions.iter().map(|(f, (o, _))| (f, o))
    }

    /// Each subscription with its 5.0 Subscription Identifier (0: none).
    pub fn subscriptions_with_ids(
        &self,
    ) -> impl Iterator<Item = (&TopicFilter, SubscriptionOptions, u32)> {
        self.subscriptions.iter().map(|(f, &(o, id))| (f, o, id))
    }

    /// Inbound QoS 2 messages not yet released by PUBREL.
    pub fn inbound_qos2_len(&self) -> usize {
        self.inbound_qos2.len()
    }

    /// Whether an inbound QoS 2 message with this id awaits its PUBREL (a resend of it is a
    /// duplicate, not a new message).
    pub fn awaits_pubrel(&self, id: PacketId) -> bool {
        self.inbound_qos2.contains(&id.get())
    }

    pub fn subscription_count(&self) -> usize {
        self.subscriptions.len()
    }

    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    /// The bounds this session must hold whatever its client sends (for the state fuzzer):
    /// the in-flight window, the queue's bytes, an offline queue's count, the inbound QoS 2
    /// ids. Returns the first one broken.
    pub fn broken_bound(&self) -> Option<&'static str> {
        if self.inflight.len() > usize::from(self.limits.max_inflight) {
            return Some("more in flight than max_inflight");
        }
        if self.queued_bytes > self.limits.max_queued_bytes {
            return Some("more queued bytes than max_queued_bytes");
        }
        if !self.connected && self.queue.len() > self.limits.max_queued_messages {
            return Some("an offline queue over max_queued_messages");
        }
        if self.inbound_qos2.len() > usize::from(self.limits.max_inbound_qos2) {
            return Some("more inbound QoS 2 ids than the Receive Maximum");
        }
        None
    }

    /// Topic and payload bytes of the queued messages.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    pub fn queued_len(&self) -> usize {
        self.queue.len()
    }

    /// The 5.0 Will Delay Interval of the current will, in seconds (0: publish at once).
    pub fn will_delay(&self) -> u32 {
        self.will
            .as_ref()
            .and_then(|w| w.properties.will_delay_interval)
            .unwrap_or(0)
    }

    /// The network connection is gone. Returns the will to publish if `publish_will`
    /// (the shard decides: never after a normal DISCONNECT [MQTT-3.14.4-3]).
    pub fn detach(&mut self, publish_will: bool) -> Option<Message> {
        self.connected = false;
        self.congested = false;
        self.writable = false;
        let will = self.will.take();
        if publish_will {
            will.map(Message::from_will)
        } else {
            None
        }
    }

    /// Handles one packet from the client.
    pub fn on_packet(&mut self, packet: Packet, out: &mut Vec<Action>) {
        match packet {
            Packet::Publish(publish) => self.on_publish(publish, out),
            Packet::PubAck(resp) => self.on_puback(resp, out),
            Packet::PubRec(resp) => self.on_pubrec(resp, out),
            Packet::PubRel(resp) => self.on_pubrel(resp, out),
            Packet::PubComp(resp) => self.on_pubcomp(resp, out),
            Packet::Subscribe(subscribe) => self.on_subscribe(subscribe, out),
            Packet::Unsubscribe(unsubscribe) => self.on_unsubscribe(unsubscribe, out),
            Packet::PingReq => out.push(Action::Send(Packet::PingResp)),
            Packet::Disconnect(disconnect) => self.on_disconnect(disconnect, out),
            // A second CONNECT is a protocol violation [MQTT-3.1.0-2]; so is any packet only
            // a server sends. AUTH is the shard's (`ShardState::on_auth`) and never gets here.
            Packet::Connect(_) => self.protocol_error(
                Reason::explained(ReasonCode::ProtocolError, "a second CONNECT [MQTT-3.1.0-2]"),
                out,
            ),
            Packet::ConnAck(_)
            | Packet::SubAck(_)
            | Packet::UnsubAck(_)
            | Packet::PingResp
            | Packet::Auth(_) => {
                let reason = Reason::explained(
                    ReasonCode::ProtocolError,
                    "a packet only a server sends [MQTT-4.13.1-1]",
                );
                self.protocol_error(reason, out)
            }
        }
    }

    /// Closes the connection with a 5.0 DISCONNECT saying why; the will is published.
    fn protocol_error(&mut self, reason: impl Into<Reason>, out: &mut Vec<Action>) {
        out.push(Action::Close {
            reason: Some(reason.into()),
            publish_will: true,
        });
    }

    fn on_disconnect(&mut self, disconnect: Disconnect, out: &mut Vec<Action>) {
        let raised_from_zero = disconnect
            .properties
            .session_expiry_interval
            .is_some_and(|secs| secs > 0)
            && self.expiry_interval == 0
            && self.version == ProtocolVersion::V5;
        if raised_from_zero {
            // 3.14.2.2.2: a CONNECT interval of 0 cannot be raised by DISCONNECT.
            let reason = Reason::explained(
                ReasonCode::ProtocolError,
                "DISCONNECT cannot raise a Session Expiry Interval of 0 (3.14.2.2.2)",
            );
            return self.protocol_error(reason, out);
        }
        if let Some(secs) = disconnect.properties.session_expiry_interval {
            self.persistent = secs > 0;
            self.expiry_interval = secs;
        }
        // [MQTT-3.14.4-3] a normal DISCONNECT discards the will; 0x04 asks for it (5.0).
        let publish_will = disconnect.reason == ReasonCode::DisconnectWithWillMessage;
        if !publish_will {
            self.will = None;
        }
        out.push(Action::Disconnected {
            code: disconnect.reason,
            publish_will,
        });
    }
}

#[cfg(test)]
mod tests;
