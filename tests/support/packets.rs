//! Packet builders: typed packets with the defaults a test wants (clean session, keep alive
//! off, QoS 0, no properties), changed one field at a time, and raw frames for bytes our
//! codec would refuse to build.

use bytes::{Bytes, BytesMut};
use ringmq::protocol::packet::{
    Connect, Disconnect, LastWill, Publish, Subscribe, Subscription, SubscriptionOptions,
    Unsubscribe,
};
use ringmq::protocol::{
    MqttString, Packet, PacketId, Properties, PropertyValues, ProtocolVersion, QoS, ReasonCode,
    TopicFilter, TopicName, encode,
};

pub fn mqtt_string(s: &str) -> MqttString {
    MqttString::try_from(s).unwrap_or_else(|e| panic!("bad test string {s:?}: {e}"))
}

/// A topic name; `""` is the empty name a Topic Alias stands for (5.0).
pub fn topic(s: &str) -> TopicName {
    if s.is_empty() {
        return TopicName::empty();
    }
    TopicName::try_from(s).unwrap_or_else(|e| panic!("bad test topic {s:?}: {e:?}"))
}

pub fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).unwrap_or_else(|e| panic!("bad test filter {s:?}: {e:?}"))
}

pub fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap_or_else(|| panic!("packet id 0 in a test"))
}

pub fn qos(level: u8) -> QoS {
    QoS::from_bits(level).unwrap_or_else(|| panic!("QoS {level} in a test"))
}

// ---------------------------------------------------------------------------------------------
// CONNECT
// ---------------------------------------------------------------------------------------------

/// CONNECT with a clean session and keep alive 0 (off) unless changed with its methods.
#[derive(Debug, Clone)]
pub struct ConnectBuilder(pub Connect);

impl ConnectBuilder {
    pub fn new(version: ProtocolVersion, client_id: &str) -> Self {
        Self(Connect {
            bridge: false,
            version,
            clean_start: true,
            keep_alive: 0,
            client_id: mqtt_string(client_id),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        })
    }

    pub fn clean(mut self, clean: bool) -> Self {
        self.0.clean_start = clean;
        self
    }

    /// A session that outlives the connection: Clean Session / Clean Start 0 and, in 5.0, a
    /// Session Expiry Interval of 300 s (without one a 5.0 session ends with its connection).
    pub fn persistent(self) -> Self {
        let version = self.0.version;
        let this = self.clean(false);
        if version == ProtocolVersion::V5 {
            this.session_expiry(300)
        } else {
            this
        }
    }

    pub fn keep_alive(mut self, seconds: u16) -> Self {
        self.0.keep_alive = seconds;
        self
    }

    /// MQTT 5.0 Session Expiry Interval (a persistent session needs one > 0).
    pub fn session_expiry(mut self, seconds: u32) -> Self {
        self.0.properties.session_expiry_interval = Some(seconds);
        self
    }

    /// MQTT 5.0 Receive Maximum: how many QoS 1/2 PUBLISHes the server may have in flight.
    pub fn receive_maximum(mut self, n: u16) -> Self {
        self.0.properties.receive_maximum = Some(n);
        self
    }

    /// MQTT 5.0 Maximum Packet Size the client accepts.
    pub fn maximum_packet_size(mut self, bytes: u32) -> Self {
        self.0.properties.maximum_packet_size = Some(bytes);
        self
    }

    /// MQTT 5.0 Topic Alias Maximum: how many aliases the server may set for this client.
    pub fn topic_alias_maximum(mut self, n: u16) -> Self {
        self.0.properties.topic_alias_maximum = Some(n);
        self
    }

    /// User Name and Password (`auth.password_file` checks them).
    pub fn credentials(mut self, username: &str, password: &[u8]) -> Self {
        self.0.username = Some(mqtt_string(username));
        self.0.password = Some(Bytes::copy_from_slice(password));
        self
    }

    /// Sets any other CONNECT property.
    pub fn properties(mut self, set: impl FnOnce(&mut PropertyValues)) -> Self {
        set(&mut self.0.properties);
        self
    }

    pub fn will(mut self, will_topic: &str, payload: &[u8], will_qos: u8, retain: bool) -> Self {
        self.0.will = Some(LastWill {
            topic: topic(will_topic),
            payload: Bytes::copy_from_slice(payload),
            qos: qos(will_qos),
            retain,
            properties: Properties::default(),
        });
        self
    }

    /// Sets will properties (after [`ConnectBuilder::will`]).
    pub fn will_properties(mut self, set: impl FnOnce(&mut PropertyValues)) -> Self {
        let will = self.0.will.as_mut();
        let will = will.unwrap_or_else(|| panic!("will_properties() before will()"));
        set(&mut will.properties);
        self
    }

    pub fn packet(self) -> Packet {
        Packet::Connect(Box::new(self.0))
    }
}

// ---------------------------------------------------------------------------------------------
// PUBLISH
// ---------------------------------------------------------------------------------------------

/// PUBLISH at QoS 0, without RETAIN, DUP or properties unless changed with its methods.
#[derive(Debug, Clone)]
pub struct PublishBuilder(pub Publish);

impl PublishBuilder {
    /// An empty `topic_name` is the zero-length name a Topic Alias stands for (5.0).
    pub fn new(topic_name: &str, payload: &[u8]) -> Self {
        Self(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic(topic_name),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::copy_from_slice(payload),
        })
    }

    /// QoS 1 or 2 with its packet identifier.
    pub fn qos(mut self, level: u8, packet_id: u16) -> Self {
        assert!(level > 0, "QoS 0 has no packet id: leave qos() out");
        self.0.qos = qos(level);
        self.0.packet_id = Some(pid(packet_id));
        self
    }

    pub fn retain(mut self) -> Self {
        self.0.retain = true;
        self
    }

    /// DUP 1: a resend of an earlier PUBLISH.
    pub fn dup(mut self) -> Self {
        self.0.dup = true;
        self
    }

    /// MQTT 5.0 Topic Alias.
    pub fn topic_alias(mut self, alias: u16) -> Self {
        self.0.properties.topic_alias = Some(alias);
        self
    }

    /// Sets any other PUBLISH property.
    pub fn properties(mut self, set: impl FnOnce(&mut PropertyValues)) -> Self {
        set(&mut self.0.properties);
        self
    }

    pub fn packet(self) -> Packet {
        Packet::Publish(self.0)
    }
}

/// A PUBLISH without properties; `packet_id` is needed exactly when `level` > 0.
pub fn publish_packet(
    topic_name: &str,
    payload: &[u8],
    level: u8,
    packet_id: Option<u16>,
    retain: bool,
) -> Packet {
    let mut publish = PublishBuilder::new(topic_name, payload);
    publish.0.qos = qos(level);
    publish.0.packet_id = packet_id.map(pid);
    publish.0.retain = retain;
    publish.packet()
}

// ---------------------------------------------------------------------------------------------
// SUBSCRIBE, UNSUBSCRIBE, DISCONNECT
// ---------------------------------------------------------------------------------------------

/// Subscription options with `level` as the maximum QoS and every flag at its default.
pub fn sub_options(level: u8) -> SubscriptionOptions {
    SubscriptionOptions {
        qos: qos(level),
        ..SubscriptionOptions::default()
    }
}

/// SUBSCRIBE with the filters added by its methods, in order.
#[derive(Debug, Clone)]
pub struct SubscribeBuilder(pub Subscribe);

impl SubscribeBuilder {
    pub fn new(packet_id: u16) -> Self {
        Self(Subscribe {
            packet_id: pid(packet_id),
            properties: Properties::default(),
            subscriptions: Vec::new(),
        })
    }

    /// SUBSCRIBE to `(filter, maximum QoS)` pairs.
    pub fn with(packet_id: u16, filters: &[(&str, u8)]) -> Self {
        filters
            .iter()
            .fold(Self::new(packet_id), |s, &(f, level)| s.filter(f, level))
    }

    /// A filter with `level` as its maximum QoS.
    pub fn filter(self, f: &str, level: u8) -> Self {
        self.filter_with(f, sub_options(level))
    }

    /// A filter with its options (No Local, Retain As Published, Retain Handling).
    pub fn filter_with(mut self, f: &str, options: SubscriptionOptions) -> Self {
        self.0.subscriptions.push(Subscription {
            filter: filter(f),
            options,
        });
        self
    }

    /// MQTT 5.0 Subscription Identifier.
    pub fn identifier(mut self, id: u32) -> Self {
        self.0.properties.subscription_identifiers = vec![id];
        self
    }

    pub fn packet(self) -> Packet {
        Packet::Subscribe(self.0)
    }
}

pub fn subscribe_packet(packet_id: u16, filters: &[(&str, u8)]) -> Packet {
    SubscribeBuilder::with(packet_id, filters).packet()
}

pub fn unsubscribe_packet(packet_id: u16, filters: &[&str]) -> Packet {
    Packet::Unsubscribe(Unsubscribe {
        packet_id: pid(packet_id),
        properties: Properties::default(),
        filters: filters.iter().map(|f| filter(f)).collect(),
    })
}

pub fn disconnect_packet(reason: ReasonCode) -> Packet {
    Packet::Disconnect(Disconnect::new(reason))
}

// ---------------------------------------------------------------------------------------------
// Bytes
// ---------------------------------------------------------------------------------------------

/// Encodes `packet` as `version` bytes.
pub fn encode_bytes(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out).unwrap_or_else(|e| panic!("cannot encode {packet:?}: {e}"));
    out.to_vec()
}

/// A variable byte integer (MQTT 1.5.5), as remaining lengths and property lengths use.
pub fn var_int(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (n % 128) as u8;
        n /= 128;
        if n == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// A raw packet: `first_byte` (type and flags), the remaining length, then `body`. For bytes
/// our codec would refuse to build, and for exact bytes expected back.
pub fn frame(first_byte: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first_byte];
    out.extend(var_int(body.len()));
    out.extend_from_slice(body);
    out
}
