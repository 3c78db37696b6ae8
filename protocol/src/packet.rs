//! The typed MQTT control packets. Decoding and encoding live in one file per packet family.

use super::properties::Properties;
use super::string::MqttString;
use super::topic::{TopicFilter, TopicName};
use super::types::{PacketId, ProtocolVersion, QoS, ReasonCode};
use bytes::Bytes;

/// One MQTT control packet of any protocol level. Which fields go on the wire depends on the
/// protocol version passed to `encode` (properties and most reason codes are MQTT 5.0 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Connect(Box<Connect>),
    ConnAck(ConnAck),
    Publish(Publish),
    PubAck(PubResp),
    PubRec(PubResp),
    PubRel(PubResp),
    PubComp(PubResp),
    Subscribe(Subscribe),
    SubAck(SubAck),
    Unsubscribe(Unsubscribe),
    UnsubAck(UnsubAck),
    PingReq,
    PingResp,
    Disconnect(Disconnect),
    Auth(Auth),
}

impl Packet {
    /// The packet's properties, if its type has any.
    pub fn properties(&self) -> Option<&Properties> {
        match self {
            Self::Connect(c) => Some(&c.properties),
            Self::ConnAck(c) => Some(&c.properties),
            Self::Publish(p) => Some(&p.properties),
            Self::PubAck(r) | Self::PubRec(r) | Self::PubRel(r) | Self::PubComp(r) => {
                Some(&r.properties)
            }
            Self::Subscribe(s) => Some(&s.properties),
            Self::SubAck(s) => Some(&s.properties),
            Self::Unsubscribe(u) => Some(&u.properties),
            Self::UnsubAck(u) => Some(&u.properties),
            Self::PingReq | Self::PingResp => None,
            Self::Disconnect(d) => Some(&d.properties),
            Self::Auth(a) => Some(&a.properties),
        }
    }

    /// The packet's properties for changing, if its type has any.
    pub fn properties_mut(&mut self) -> Option<&mut Properties> {
        match self {
            Self::Connect(c) => Some(&mut c.properties),
            Self::ConnAck(c) => Some(&mut c.properties),
            Self::Publish(p) => Some(&mut p.properties),
            Self::PubAck(r) | Self::PubRec(r) | Self::PubRel(r) | Self::PubComp(r) => {
                Some(&mut r.properties)
            }
            Self::Subscribe(s) => Some(&mut s.properties),
            Self::SubAck(s) => Some(&mut s.properties),
            Self::Unsubscribe(u) => Some(&mut u.properties),
            Self::UnsubAck(u) => Some(&mut u.properties),
            Self::PingReq | Self::PingResp => None,
            Self::Disconnect(d) => Some(&mut d.properties),
            Self::Auth(a) => Some(&mut a.properties),
        }
    }
}

/// The control packet type, the high nibble of the first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

/// CONNECT (3.1). `version` is the protocol level the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connect {
    pub version: ProtocolVersion,
    /// A bridge (another broker) connects: Mosquitto's private protocol level, the 3.1/3.1.1
    /// level with `BRIDGE_LEVEL_BIT` set. The server then treats its subscriptions as No
    /// Local and Retain As Published, which 3.1.1 cannot say on the wire.
    pub bridge: bool,
    /// Clean Session (3.1.1) / Clean Start (5.0).
    pub clean_start: bool,
    /// Seconds; 0 turns keepalive off.
    pub keep_alive: u16,
    /// May be empty: the server then assigns one, or refuses it (3.1.1 with clean session 0).
    pub client_id: MqttString,
    pub will: Option<LastWill>,
    pub username: Option<MqttString>,
    pub password: Option<Bytes>,
    pub properties: Properties,
}

/// The will message of a CONNECT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastWill {
    pub topic: TopicName,
    pub payload: Bytes,
    pub qos: QoS,
    pub retain: bool,
    /// Will properties (5.0).
    pub properties: Properties,
}

/// CONNACK (3.2). In 3.1/3.1.1 `reason` maps to the return codes 0..=5:
/// Success=0, UnsupportedProtocolVersion=1, ClientIdentifierNotValid=2, ServerUnavailable=3,
/// BadUserNameOrPassword=4, NotAuthorized=5.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnAck {
    pub session_present: bool,
    pub reason: ReasonCode,
    pub properties: Properties,
}

/// PUBLISH (3.3). `payload` is a zero-copy slice of the read buffer; `topic` is copied inline
/// when short (see `TopicName`) and a slice of the read buffer otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Publish {
    pub dup: bool,
    pub qos: QoS,
    pub retain: bool,
    /// Empty only in a 5.0 PUBLISH that carries a Topic Alias.
    pub topic: TopicName,
    /// Present exactly when `qos` > 0.
    pub packet_id: Option<PacketId>,
    pub properties: Properties,
    pub payload: Bytes,
}

/// PUBACK, PUBREC, PUBREL and PUBCOMP (3.4 - 3.7): a packet id, and in 5.0 a reason code and
/// properties (both omitted on the wire when Success and empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubResp {
    pub packet_id: PacketId,
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl PubResp {
    pub fn new(packet_id: PacketId) -> Self {
        Self {
            packet_id,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        }
    }
}

/// Retain Handling, a SUBSCRIBE option (5.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum RetainHandling {
    #[default]
    SendAtSubscribe = 0,
    SendAtSubscribeIfNew = 1,
    DoNotSend = 2,
}

/// The options byte of one SUBSCRIBE entry. In 3.1/3.1.1 only `qos` is on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SubscriptionOptions {
    pub qos: QoS,
    pub no_local: bool,
    pub retain_as_published: bool,
    pub retain_handling: RetainHandling,
}

/// One topic filter of a SUBSCRIBE with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub filter: TopicFilter,
    pub options: SubscriptionOptions,
}

/// SUBSCRIBE (3.8); at least one subscription [MQTT-3.8.3-3].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscribe {
    pub packet_id: PacketId,
    pub properties: Properties,
    pub subscriptions: Vec<Subscription>,
}

/// SUBACK (3.9): one reason code per subscription, in order. In 3.1.1 the return codes are
/// GrantedQoS0/1/2 (0, 1, 2) and 0x80 Failure (mapped to `UnspecifiedError`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubAck {
    pub packet_id: PacketId,
    pub properties: Properties,
    pub reasons: Vec<ReasonCode>,
}

/// UNSUBSCRIBE (3.10); at least one filter [MQTT-3.10.3-2].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsubscribe {
    pub packet_id: PacketId,
    pub properties: Properties,
    pub filters: Vec<TopicFilter>,
}

/// UNSUBACK (3.11). In 3.1.1 there are no reason codes on the wire and `reasons` decodes empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsubAck {
    pub packet_id: PacketId,
    pub properties: Properties,
    pub reasons: Vec<ReasonCode>,
}

/// DISCONNECT (3.14). In 3.1.1 it has no variable header; reason is Success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disconnect {
    pub reason: ReasonCode,
    pub properties: Properties,
}

impl Disconnect {
    pub fn new(reason: ReasonCode) -> Self {
        Self {
            reason,
            properties: Properties::default(),
        }
    }

    /// A server DISCONNECT carrying `reason`'s code and Reason String (3.14.2.2.3).
    pub fn from_reason(reason: Reason) -> Self {
        Self {
            reason: reason.code,
            properties: Properties::reason_string(reason.string),
        }
    }
}

/// Why the server refuses a CONNECT or closes a connection: a reason code and, where the code
/// alone is vague, a human-readable Reason String (5.0 CONNACK 3.2.2.3.9, DISCONNECT
/// 3.14.2.2.3; only 5.0 has properties, so other versions never see it).
///
/// Build it with [`Reason::explained`] from a `&'static str` (no allocation), or with
/// [`Reason::detailed`] from text formatted on the error path; never on a success path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub code: ReasonCode,
    pub string: Option<MqttString>,
}

impl Reason {
    /// The code alone.
    pub const fn new(code: ReasonCode) -> Self {
        Self { code, string: None }
    }

    /// The code and a constant Reason String (wraps the static bytes, no allocation).
    pub const fn explained(code: ReasonCode, text: &'static str) -> Self {
        Self {
            code,
            string: Some(MqttString::from_static(text)),
        }
    }

    /// The code and a Reason String built at run time (allocates: error paths only). Text
    /// that is not a valid MQTT string (a NUL, over 65,535 bytes) is left out.
    pub fn detailed(code: ReasonCode, text: String) -> Self {
        Self {
            code,
            string: MqttString::try_from(text).ok(),
        }
    }
}

impl From<ReasonCode> for Reason {
    fn from(code: ReasonCode) -> Self {
        Self::new(code)
    }
}

/// AUTH (3.15, 5.0 only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub reason: ReasonCode,
    pub properties: Properties,
}
