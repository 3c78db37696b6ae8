//! The per-client MQTT session state machine, sans-IO: packets and routed messages in, actions
//! out. It owns one client's subscriptions, outbound in-flight window, offline queue, inbound
//! QoS 2 state and will; it never touches a socket or reads the clock (the shard owns both).

mod message;
mod shared;

pub use message::Message;
pub use shared::Readiness;

use crate::protocol::{
    Connect, Disconnect, LastWill, MqttString, Packet, PacketId, Properties, ProtocolVersion,
    PubResp, Publish, QoS, Reason, ReasonCode, SubAck, Subscribe, SubscriptionOptions, TopicFilter,
    TopicName, UnsubAck, Unsubscribe, fit,
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
    packet_id: PacketId,
    stage: Stage,
    /// The shared subscription group the message came through, if any (`shared`).
    group: Option<TopicFilter>,
}

/// A message waiting for a window slot or for the client to come back.
#[derive(Debug, Clone)]
struct Queued {
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

/// The largest packet id; ids run 1..=65535.
const PACKET_ID_SPACE: u64 = 65_535;

// Reason Strings of failure acknowledgements: constants, so building one never allocates.
const FILTER_TOO_DEEP: MqttString =
    MqttString::from_static("a topic filter has more levels than this server supports (128)");
const _: () = assert!(
    crate::trie::MAX_LEVELS == 128,
    "FILTER_TOO_DEEP names the limit"
);
const AWAITS_NO_PUBREC: MqttString =
    MqttString::from_static("no QoS 2 PUBLISH with this packet identifier awaits PUBREC");
const AWAITS_NO_PUBREL: MqttString =
    MqttString::from_static("no QoS 2 PUBLISH with this packet identifier awaits PUBREL");

/// One client's session. Lives in its home shard while the client is connected and, for a
/// persistent session, after it disconnects.
#[derive(Debug)]
pub struct Session {
    client_id: String,
    version: ProtocolVersion,
    /// Whether the session outlives the network connection.
    persistent: bool,
    /// Seconds the session outlives it (5.0 Session Expiry Interval; 3.1.1: `u32::MAX`).
    expiry_interval: u32,
    connected: bool,
    /// The shard clears this while the client's outbound buffer is over its cap.
    writable: bool,
    keep_alive: u16,
    will: Option<LastWill>,
    subscriptions: HashMap<TopicFilter, SubscriptionOptions>,
    inflight: VecDeque<InFlight>,
    /// min(config max_inflight, client Receive Maximum).
    window: usize,
    next_seq: u64,
    queue: VecDeque<Queued>,
    queued_bytes: usize,
    inbound_qos2: HashSet<u16>,
    /// Inbound topic aliases of the current connection, index alias - 1.
    topic_aliases: Vec<Option<TopicName>>,
    /// The client's Maximum Packet Size (5.0), if it set one.
    max_packet_size: Option<u32>,
    limits: Limits,
    stats: Stats,
}

impl Session {
    /// A fresh session for an accepted CONNECT (client id already assigned if it was empty).
    pub fn new(client_id: String, connect: &Connect, limits: Limits) -> Self {
        let mut session = Self {
            client_id,
            version: connect.version,
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
            queue: VecDeque::new(),
            queued_bytes: 0,
            inbound_qos2: HashSet::new(),
            topic_aliases: Vec::new(),
            max_packet_size: None,
            limits,
            stats: Stats::default(),
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
        self.persistent = Self::wants_persistence(connect);
        self.expiry_interval = match connect.version {
            ProtocolVersion::V5 => connect.properties.session_expiry_interval.unwrap_or(0),
            _ if self.persistent => u32::MAX,
            _ => 0,
        };
        self.connected = true;
        self.writable = true;
        self.keep_alive = connect.keep_alive;
        self.will = connect.will.clone();
        let receive_maximum = connect.properties.receive_maximum.unwrap_or(u16::MAX);
        self.window = usize::from(receive_maximum.min(self.limits.max_inflight).max(1));
        self.max_packet_size = connect.properties.maximum_packet_size;
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

    pub fn max_packet_size(&self) -> Option<u32> {
        self.max_packet_size
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = (&TopicFilter, &SubscriptionOptions)> {
        self.subscriptions.iter()
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

    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
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

    fn on_publish(&mut self, mut publish: Publish, out: &mut Vec<Action>) {
        if let Err(reason) = self.resolve_topic_alias(&mut publish) {
            return self.protocol_error(reason, out);
        }
        // [MQTT-3.3.4-6] Subscription Identifiers only travel from server to client.
        if !publish.properties.subscription_identifiers.is_empty() {
            let reason = Reason::explained(
                ReasonCode::ProtocolError,
                "a client PUBLISH with a Subscription Identifier [MQTT-3.3.4-6]",
            );
            return self.protocol_error(reason, out);
        }
        // [MQTT-3.2.2-14] a 5.0 client told Retain Available 0 must not send RETAIN 1;
        // 3.1.1 clients cannot be told, so theirs is routed but not stored.
        if publish.retain && !self.limits.retain_available && self.version == ProtocolVersion::V5 {
            let reason = Reason::explained(
                ReasonCode::RetainNotSupported,
                "RETAIN 1 after CONNACK said Retain Available 0 [MQTT-3.2.2-14]",
            );
            return self.protocol_error(reason, out);
        }
        let well_formed = payload_matches_format(&publish.properties, &publish.payload);
        match (publish.qos, publish.packet_id) {
            // 5.0 section 3.3.2.3.2: a receiver that validates the Payload Format Indicator
            // answers a mismatch with 0x99; QoS 0 has no acknowledgement, so DISCONNECT.
            (QoS::AtMostOnce, _) if !well_formed => {
                let reason = Reason::explained(
                    ReasonCode::PayloadFormatInvalid,
                    "a QoS 0 payload that is not UTF-8 despite Payload Format Indicator 1",
                );
                self.protocol_error(reason, out);
            }
            (QoS::AtMostOnce, _) => out.push(Action::Route(Message::from_publish(publish))),
            // A PUBACK >= 0x80 refuses this message only (section 4.13.2): nothing is routed.
            (QoS::AtLeastOnce, Some(id)) if !well_formed => {
                out.push(Action::Send(Packet::PubAck(refusal(id))));
            }
            // The acknowledgement goes first: a publisher subscribed to its own topic sees its
            // PUBACK before its message comes back.
            (QoS::AtLeastOnce, Some(id)) => {
                out.push(Action::Send(Packet::PubAck(PubResp::new(id))));
                out.push(Action::Route(Message::from_publish(publish)));
            }
            (QoS::ExactlyOnce, Some(id)) => self.on_publish_qos2(id, publish, well_formed, out),
            (_, None) => self.protocol_error(
                Reason::explained(
                    ReasonCode::MalformedPacket,
                    "a QoS 1 or 2 PUBLISH without a packet identifier",
                ),
                out,
            ),
        }
    }

    /// Replaces a 5.0 Topic Alias by its topic, or records a new mapping (section 3.3.2.3.4).
    fn resolve_topic_alias(&mut self, publish: &mut Publish) -> Result<(), Reason> {
        let Some(alias) = publish.properties.topic_alias else {
            return if publish.topic.is_empty() {
                Err(Reason::explained(
                    ReasonCode::ProtocolError,
                    "a PUBLISH with neither a topic name nor a topic alias [MQTT-3.3.2-1]",
                ))
            } else {
                Ok(())
            };
        };
        // [MQTT-3.3.2-8] / [MQTT-3.3.2-9] 0 and values above our maximum are invalid.
        let slot = usize::from(alias);
        let maximum = self.limits.topic_alias_maximum;
        if slot == 0 || slot > usize::from(maximum) {
            let text = format!(
                "topic alias {alias} is outside 1..={maximum}, the Topic Alias Maximum \
                 [MQTT-3.3.2-9]"
            );
            return Err(Reason::detailed(ReasonCode::TopicAliasInvalid, text));
        }
        if self.topic_aliases.len() < slot {
            self.topic_aliases
                .resize(usize::from(self.limits.topic_alias_maximum), None);
        }
        let entry = &mut self.topic_aliases[slot - 1];
        if publish.topic.is_empty() {
            // Using an alias that has no mapping yet is a Protocol Error (section 3.3.2.3.4).
            publish.topic = entry.clone().ok_or_else(|| {
                let text = format!("topic alias {alias} has no topic on this connection yet");
                Reason::detailed(ReasonCode::ProtocolError, text)
            })?;
        } else {
            *entry = Some(publish.topic.clone());
        }
        Ok(())
    }

    /// Method B of [MQTT-4.3.3-2]: store the id, route once, answer PUBREC; a duplicate before
    /// PUBREL is answered again but not routed again. A new message whose payload does not
    /// match its Payload Format Indicator (`well_formed` false) gets PUBREC 0x99 instead.
    fn on_publish_qos2(
        &mut self,
        id: PacketId,
        publish: Publish,
        well_formed: bool,
        out: &mut Vec<Action>,
    ) {
        if !self.inbound_qos2.contains(&id.get()) {
            if !well_formed {
                // A PUBREC >= 0x80 ends the exchange (section 4.3.3): the id is not kept and
                // no PUBREL follows.
                out.push(Action::Send(Packet::PubRec(refusal(id))));
                return;
            }
            let maximum = self.limits.max_inbound_qos2;
            if self.inbound_qos2.len() >= usize::from(maximum) {
                // [MQTT-3.3.4-9] more unacknowledged QoS 2 PUBLISHes than Receive Maximum.
                let text = format!(
                    "more than {maximum} QoS 2 PUBLISHes await PUBREL, the Receive Maximum"
                );
                return self.protocol_error(
                    Reason::detailed(ReasonCode::ReceiveMaximumExceeded, text),
                    out,
                );
            }
            self.inbound_qos2.insert(id.get());
            out.push(Action::Send(Packet::PubRec(PubResp::new(id))));
            out.push(Action::Route(Message::from_publish(publish)));
            return;
        }
        out.push(Action::Send(Packet::PubRec(PubResp::new(id))));
    }

    fn on_puback(&mut self, resp: PubResp, out: &mut Vec<Action>) {
        let id = resp.packet_id;
        if let Some(i) = self.position(
            id,
            |s| matches!(s, Stage::Published(m) if m.qos == QoS::AtLeastOnce),
        ) {
            self.inflight.remove(i);
            self.release_queue(out);
        }
    }

    fn on_pubrec(&mut self, resp: PubResp, out: &mut Vec<Action>) {
        let id = resp.packet_id;
        let found = self.position(
            id,
            |s| matches!(s, Stage::Published(m) if m.qos == QoS::ExactlyOnce),
        );
        match found {
            // A 5.0 PUBREC with an error reason ends the exchange (section 4.3.3): no PUBREL.
            Some(i) if resp.reason.is_error() => {
                self.inflight.remove(i);
                self.release_queue(out);
            }
            Some(i) => {
                if let Some(entry) = self.inflight.get_mut(i) {
                    entry.stage = Stage::Released;
                }
                out.push(Action::Send(Packet::PubRel(PubResp::new(id))));
            }
            None => {
                let mut pubrel = PubResp::new(id);
                if self.version == ProtocolVersion::V5 {
                    pubrel.reason = ReasonCode::PacketIdentifierNotFound;
                    pubrel.properties = Properties::reason_string(Some(AWAITS_NO_PUBREC));
                }
                out.push(Action::Send(Packet::PubRel(pubrel)));
            }
        }
    }

    fn on_pubrel(&mut self, resp: PubResp, out: &mut Vec<Action>) {
        let id = resp.packet_id;
        let known = self.inbound_qos2.remove(&id.get());
        let mut pubcomp = PubResp::new(id);
        if !known && self.version == ProtocolVersion::V5 {
            pubcomp.reason = ReasonCode::PacketIdentifierNotFound;
            pubcomp.properties = Properties::reason_string(Some(AWAITS_NO_PUBREL));
        }
        out.push(Action::Send(Packet::PubComp(pubcomp)));
    }

    fn on_pubcomp(&mut self, resp: PubResp, out: &mut Vec<Action>) {
        if let Some(i) = self.position(resp.packet_id, |s| matches!(s, Stage::Released)) {
            self.inflight.remove(i);
            self.release_queue(out);
        }
    }

    /// Acknowledgements arrive almost always in order, so the scan ends at the front.
    fn position(&self, id: PacketId, stage: impl Fn(&Stage) -> bool) -> Option<usize> {
        self.inflight
            .iter()
            .position(|e| e.packet_id == id && stage(&e.stage))
    }

    fn on_subscribe(&mut self, subscribe: Subscribe, out: &mut Vec<Action>) {
        // [MQTT-3.8.3-4] No Local on a shared subscription is a Protocol Error.
        let shared_no_local = subscribe
            .subscriptions
            .iter()
            .any(|s| s.options.no_local && s.filter.share_group().is_some());
        if shared_no_local {
            let reason = Reason::explained(
                ReasonCode::ProtocolError,
                "No Local on a shared subscription [MQTT-3.8.3-4]",
            );
            return self.protocol_error(reason, out);
        }
        if !self.ack_fits(subscribe.subscriptions.len()) {
            return self.ack_too_large("SUBACK", subscribe.subscriptions.len(), out);
        }
        // SUBSCRIBE carries at most one Subscription Identifier, for all its filters.
        let id = subscribe
            .properties
            .subscription_identifiers
            .first()
            .copied()
            .unwrap_or(0);
        let mut reasons = Vec::with_capacity(subscribe.subscriptions.len());
        let mut granted = Vec::with_capacity(subscribe.subscriptions.len());
        for sub in subscribe.subscriptions {
            let reason = self.grant(&sub.filter, sub.options.qos);
            reasons.push(reason);
            if !reason.is_error() {
                let is_new = self
                    .subscriptions
                    .insert(sub.filter.clone(), sub.options)
                    .is_none();
                granted.push(Action::Subscribe {
                    filter: sub.filter,
                    options: sub.options,
                    is_new,
                    id,
                });
            }
        }
        let too_deep = reasons.contains(&ReasonCode::TopicFilterInvalid);
        let properties = Properties::reason_string(too_deep.then_some(FILTER_TOO_DEEP));
        out.push(Action::Send(Packet::SubAck(SubAck {
            packet_id: subscribe.packet_id,
            properties,
            reasons,
        })));
        out.append(&mut granted);
    }

    /// Whether a 5.0 SUBACK or UNSUBACK of `codes` reason codes, without properties, fits the
    /// client's Maximum Packet Size [MQTT-3.1.2-24].
    fn ack_fits(&self, codes: usize) -> bool {
        let limit = self.max_packet_size.unwrap_or(u32::MAX);
        self.version != ProtocolVersion::V5 || fit::bare_ack_len(codes) <= limit as usize
    }

    /// The SUBSCRIBE or UNSUBSCRIBE must be answered [MQTT-3.8.4-1] [MQTT-3.10.4-4], but its
    /// acknowledgement cannot be sent [MQTT-3.1.2-24]: the connection closes with 0x95 Packet
    /// too large before anything is applied, so the client is not left guessing which
    /// filters took effect.
    fn ack_too_large(&mut self, ack: &str, codes: usize, out: &mut Vec<Action>) {
        let len = fit::bare_ack_len(codes);
        let limit = self.max_packet_size.unwrap_or(u32::MAX);
        let text = format!(
            "the {ack} for {codes} topic filters would be {len} bytes, over the client's \
             Maximum Packet Size of {limit} [MQTT-3.1.2-24]"
        );
        self.protocol_error(Reason::detailed(ReasonCode::PacketTooLarge, text), out);
    }

    /// The SUBACK reason for one filter: the requested QoS is always granted (section 3.9.3).
    fn grant(&self, filter: &TopicFilter, qos: QoS) -> ReasonCode {
        let v5 = self.version == ProtocolVersion::V5;
        if filter.levels().nth(crate::trie::MAX_LEVELS).is_some() {
            return if v5 {
                ReasonCode::TopicFilterInvalid
            } else {
                ReasonCode::UnspecifiedError
            };
        }
        match qos {
            QoS::AtMostOnce => ReasonCode::GRANTED_QOS0,
            QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
            QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
        }
    }

    fn on_unsubscribe(&mut self, unsubscribe: Unsubscribe, out: &mut Vec<Action>) {
        if !self.ack_fits(unsubscribe.filters.len()) {
            return self.ack_too_large("UNSUBACK", unsubscribe.filters.len(), out);
        }
        let mut reasons = Vec::with_capacity(unsubscribe.filters.len());
        for filter in unsubscribe.filters {
            if self.subscriptions.remove(&filter).is_some() {
                reasons.push(ReasonCode::Success);
                out.push(Action::Unsubscribe(filter));
            } else {
                reasons.push(ReasonCode::NoSubscriptionExisted);
            }
        }
        if self.version != ProtocolVersion::V5 {
            reasons.clear();
        }
        out.push(Action::Send(Packet::UnsubAck(UnsubAck {
            packet_id: unsubscribe.packet_id,
            properties: Default::default(),
            reasons,
        })));
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
        out.push(Action::Close {
            reason: None,
            publish_will,
        });
    }

    /// The subscription options granted for `filter`, if subscribed.
    pub fn subscription(&self, filter: &TopicFilter) -> Option<SubscriptionOptions> {
        self.subscriptions.get(filter).copied()
    }

    /// Offers a routed message at QoS `qos` (already min(publish, subscription)) with the
    /// retain flag the subscriber must see. QoS 0 is sent or dropped; QoS 1/2 takes a window
    /// slot, or waits in the queue behind earlier messages.
    pub fn deliver(&mut self, msg: &Message, qos: QoS, retain: bool) -> Delivery {
        self.deliver_via(msg, qos, retain, None)
    }

    /// `deliver` for a message that came through the shared subscription `group`: a QoS 1/2
    /// copy remembers the group, so that it can go to another member if this session ends
    /// before the client has it (`take_undelivered_shared`).
    pub fn deliver_via(
        &mut self,
        msg: &Message,
        qos: QoS,
        retain: bool,
        group: Option<&TopicFilter>,
    ) -> Delivery {
        if qos == QoS::AtMostOnce {
            if self.connected && self.writable {
                return Delivery::Send {
                    qos,
                    packet_id: None,
                };
            }
            self.stats.dropped_qos0 += 1;
            return Delivery::Dropped;
        }
        let group = group.cloned();
        if self.can_send_now() {
            let packet_id = self.push_inflight(msg.for_subscriber(qos, retain), group);
            return Delivery::Send {
                qos,
                packet_id: Some(packet_id),
            };
        }
        self.enqueue(msg.for_subscriber(qos, retain), group)
    }

    /// Counts a message the shard did not write (too large for the client, or expired); for
    /// QoS 1/2 it also takes back the window slot it was given.
    pub fn discard(&mut self, packet_id: Option<PacketId>, why: Discard, out: &mut Vec<Action>) {
        match why {
            Discard::TooLarge => self.stats.dropped_too_large += 1,
            Discard::Expired => self.stats.expired += 1,
        }
        let found =
            packet_id.and_then(|id| self.position(id, |s| matches!(s, Stage::Published(_))));
        if let Some(i) = found {
            self.inflight.remove(i);
            self.release_queue(out);
        }
    }

    fn can_send_now(&self) -> bool {
        self.connected
            && self.writable
            && self.queue.is_empty()
            && self.inflight.len() < self.window
    }

    /// The byte bound always applies. The count bound applies to offline sessions; a
    /// connected one is protected by flow control instead (the shard holds back publishers'
    /// acknowledgements while it is congested), and the publishers' in-flight windows, which
    /// together may exceed the count, still arrive.
    fn enqueue(&mut self, msg: Message, group: Option<TopicFilter>) -> Delivery {
        let size = msg.size();
        let over_count = !self.connected && self.queue.len() >= self.limits.max_queued_messages;
        let full = over_count || self.queued_bytes + size > self.limits.max_queued_bytes;
        if full {
            self.stats.dropped_queue_full += 1;
            return Delivery::Dropped;
        }
        self.queued_bytes += size;
        self.queue.push_back(Queued { msg, group });
        Delivery::Queued
    }

    fn push_inflight(&mut self, msg: Message, group: Option<TopicFilter>) -> PacketId {
        let (seq, packet_id) = self.allocate_packet_id();
        self.inflight.push_back(InFlight {
            seq,
            packet_id,
            stage: Stage::Published(msg),
            group,
        });
        packet_id
    }

    /// Ids are handed out in sequence; an id can still be in use only once the oldest
    /// in-flight entry is a whole id space behind, so the scan is rare.
    fn allocate_packet_id(&mut self) -> (u64, PacketId) {
        loop {
            let seq = self.next_seq;
            self.next_seq += 1;
            let raw = u16::try_from(seq % PACKET_ID_SPACE + 1).unwrap_or(u16::MAX);
            let Some(id) = PacketId::new(raw) else {
                continue;
            };
            let may_collide = self
                .inflight
                .front()
                .is_some_and(|oldest| seq - oldest.seq >= PACKET_ID_SPACE);
            if !may_collide || !self.inflight.iter().any(|e| e.packet_id == id) {
                return (seq, id);
            }
        }
    }

    /// The shard reports whether the client's outbound buffer has room; turning writable
    /// releases queued messages into the window.
    pub fn set_writable(&mut self, writable: bool, out: &mut Vec<Action>) {
        let was = self.writable;
        self.writable = writable;
        if writable && !was {
            self.release_queue(out);
        }
    }

    fn release_queue(&mut self, out: &mut Vec<Action>) {
        while self.connected && self.writable && self.inflight.len() < self.window {
            let Some(Queued { msg, group }) = self.queue.pop_front() else {
                break;
            };
            self.queued_bytes -= msg.size();
            let packet_id = self.push_inflight(msg.clone(), group);
            out.push(Action::Deliver(Outgoing {
                msg,
                packet_id: Some(packet_id),
                dup: false,
            }));
        }
    }

    /// [MQTT-4.4.0-1] on reconnect, unacknowledged PUBLISHes (DUP=1 [MQTT-3.3.1-1]) and
    /// PUBRELs go out again with their original ids, in their original order.
    fn resend_inflight(&mut self, out: &mut Vec<Action>) {
        for entry in &self.inflight {
            match &entry.stage {
                Stage::Published(msg) => out.push(Action::Deliver(Outgoing {
                    msg: msg.clone(),
                    packet_id: Some(entry.packet_id),
                    dup: true,
                })),
                Stage::Released => {
                    out.push(Action::Send(Packet::PubRel(PubResp::new(entry.packet_id))))
                }
            }
        }
    }
}

/// Whether a payload is what its 5.0 Payload Format Indicator says: with indicator 1 it must
/// be well-formed UTF-8 (sections 3.3.2.3.2 and 3.1.3.2.3). Validation is optional in the
/// spec; it costs one pass over the payload, only when the indicator is 1, and no allocation.
pub fn payload_matches_format(properties: &Properties, payload: &[u8]) -> bool {
    properties.payload_format_indicator != Some(1) || std::str::from_utf8(payload).is_ok()
}

/// A PUBACK / PUBREC that refuses a message whose payload does not match its format.
fn refusal(id: PacketId) -> PubResp {
    let mut resp = PubResp::new(id);
    resp.reason = ReasonCode::PayloadFormatInvalid;
    resp
}

#[cfg(test)]
mod tests;
