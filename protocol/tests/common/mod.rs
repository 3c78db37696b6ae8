//! Shared test support for the codec suites: proptest strategies that generate every packet
//! type valid for a protocol version, and decode/encode helpers.

#![allow(
    dead_code,
    reason = "each test binary uses a different subset of the helpers"
)]

use bytes::{Bytes, BytesMut};
use proptest::option::weighted;
use proptest::prelude::*;
use ringmq_protocol::packet::{
    Auth, ConnAck, Connect, Disconnect, LastWill, PubResp, Publish, RetainHandling, SubAck,
    Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use ringmq_protocol::{
    MqttString, Packet, PacketId, Properties, PropertyContext, PropertyValues, ProtocolVersion,
    QoS, ReasonCode, TopicFilter, TopicName, decode, encode, encoded_len, reasons,
};

pub const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3,
    ProtocolVersion::V4,
    ProtocolVersion::V5,
];

/// Encodes `packet`, checking that `encoded_len` is exact.
pub fn encode_exact(packet: &Packet, version: ProtocolVersion) -> BytesMut {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out).expect("generated packets are encodable");
    assert_eq!(
        out.len(),
        encoded_len(packet, version),
        "encoded_len of {packet:?}"
    );
    out
}

/// Decodes exactly one whole packet from `bytes`.
pub fn decode_one(bytes: &[u8], version: ProtocolVersion) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, version, usize::MAX)
        .expect("valid bytes")
        .expect("a whole packet");
    assert!(buf.is_empty(), "decode left {} bytes", buf.len());
    packet
}

pub fn mqtt_string() -> impl Strategy<Value = MqttString> {
    "[a-zA-Z0-9 _/é€😀-]{0,12}".prop_map(|s| MqttString::try_from(s).expect("no NUL"))
}

pub fn binary() -> impl Strategy<Value = Bytes> {
    prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

pub fn topic_name() -> impl Strategy<Value = TopicName> {
    "[a-z$/ é]{1,16}".prop_map(|s| TopicName::try_from(s.as_str()).expect("no wildcard"))
}

pub fn topic_filter() -> impl Strategy<Value = TopicFilter> {
    let level = prop_oneof!["[a-z]{0,4}", Just("+".to_string()), Just("$x".to_string())];
    (
        prop::collection::vec(level, 1..5),
        any::<bool>(),
        prop::option::of("[a-z]{1,4}"),
    )
        .prop_map(|(levels, hash, group)| {
            let mut filter = levels.join("/");
            if hash {
                filter.push_str("/#");
            }
            if filter.is_empty() {
                filter.push('a');
            }
            if let Some(group) = group {
                filter = format!("$share/{group}/{filter}");
            }
            TopicFilter::try_from(filter.as_str()).expect("valid generated filter")
        })
}

pub fn qos() -> impl Strategy<Value = QoS> {
    prop_oneof![
        Just(QoS::AtMostOnce),
        Just(QoS::AtLeastOnce),
        Just(QoS::ExactlyOnce)
    ]
}

pub fn packet_id() -> impl Strategy<Value = PacketId> {
    (1u16..).prop_map(|id| PacketId::new(id).expect("non-zero"))
}

pub fn reason_in(list: &'static [ReasonCode]) -> impl Strategy<Value = ReasonCode> {
    prop::sample::select(list)
}

fn flag() -> impl Strategy<Value = Option<u8>> {
    weighted(0.2, 0u8..=1)
}

fn maybe<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    weighted(0.2, s)
}

/// Any property set, then cut down to the properties `ctx` allows (and one Subscription
/// Identifier outside PUBLISH), so that it survives a round trip.
pub fn properties(ctx: PropertyContext) -> impl Strategy<Value = Properties> {
    let message = (
        flag(),
        maybe(any::<u32>()),
        maybe(mqtt_string()),
        maybe(topic_name()),
        maybe(binary()),
        prop::collection::vec(1u32..=268_435_455, 0..3),
    );
    let connection = (
        maybe(any::<u32>()),
        maybe(mqtt_string()),
        maybe(any::<u16>()),
        maybe(mqtt_string()),
        maybe(binary()),
        flag(),
        maybe(any::<u32>()),
        flag(),
        maybe(mqtt_string()),
        maybe(mqtt_string()),
        maybe(mqtt_string()),
    );
    let limits = (
        maybe(1u16..),
        maybe(any::<u16>()),
        maybe(1u16..),
        flag(),
        flag(),
        prop::collection::vec((mqtt_string(), mqtt_string()), 0..3),
        maybe(1u32..),
        flag(),
        flag(),
        flag(),
    );
    (message, connection, limits).prop_map(move |(m, c, l)| {
        let mut p = Properties::from(PropertyValues {
            payload_format_indicator: m.0,
            message_expiry_interval: m.1,
            content_type: m.2,
            response_topic: m.3,
            correlation_data: m.4,
            subscription_identifiers: m.5,
            session_expiry_interval: c.0,
            assigned_client_identifier: c.1,
            server_keep_alive: c.2,
            authentication_method: c.3,
            authentication_data: c.4,
            request_problem_information: c.5,
            will_delay_interval: c.6,
            request_response_information: c.7,
            response_information: c.8,
            server_reference: c.9,
            reason_string: c.10,
            receive_maximum: l.0,
            topic_alias_maximum: l.1,
            topic_alias: l.2,
            maximum_qos: l.3,
            retain_available: l.4,
            user_properties: l.5,
            maximum_packet_size: l.6,
            wildcard_subscription_available: l.7,
            subscription_identifier_available: l.8,
            shared_subscription_available: l.9,
        });
        restrict(&mut p, ctx);
        p
    })
}

/// Clears every property `ctx` does not allow.
pub fn restrict(p: &mut Properties, ctx: PropertyContext) {
    fn keep<T>(slot: &mut Option<T>, ctx: PropertyContext, id: u8) {
        if ctx.allows(id) != Some(true) {
            *slot = None;
        }
    }
    keep(&mut p.payload_format_indicator, ctx, 0x01);
    keep(&mut p.message_expiry_interval, ctx, 0x02);
    keep(&mut p.content_type, ctx, 0x03);
    keep(&mut p.response_topic, ctx, 0x08);
    keep(&mut p.correlation_data, ctx, 0x09);
    match ctx {
        PropertyContext::Publish => {}
        PropertyContext::Subscribe => p.subscription_identifiers.truncate(1),
        _ => p.subscription_identifiers.clear(),
    }
    keep(&mut p.session_expiry_interval, ctx, 0x11);
    keep(&mut p.assigned_client_identifier, ctx, 0x12);
    keep(&mut p.server_keep_alive, ctx, 0x13);
    keep(&mut p.authentication_method, ctx, 0x15);
    keep(&mut p.authentication_data, ctx, 0x16);
    keep(&mut p.request_problem_information, ctx, 0x17);
    keep(&mut p.will_delay_interval, ctx, 0x18);
    keep(&mut p.request_response_information, ctx, 0x19);
    keep(&mut p.response_information, ctx, 0x1A);
    keep(&mut p.server_reference, ctx, 0x1C);
    keep(&mut p.reason_string, ctx, 0x1F);
    keep(&mut p.receive_maximum, ctx, 0x21);
    keep(&mut p.topic_alias_maximum, ctx, 0x22);
    keep(&mut p.topic_alias, ctx, 0x23);
    keep(&mut p.maximum_qos, ctx, 0x24);
    keep(&mut p.retain_available, ctx, 0x25);
    keep(&mut p.maximum_packet_size, ctx, 0x27);
    keep(&mut p.wildcard_subscription_available, ctx, 0x28);
    keep(&mut p.subscription_identifier_available, ctx, 0x29);
    keep(&mut p.shared_subscription_available, ctx, 0x2A);
}

/// Properties in 5.0, none before.
fn props_for(version: ProtocolVersion, ctx: PropertyContext) -> BoxedStrategy<Properties> {
    if version == ProtocolVersion::V5 {
        properties(ctx).boxed()
    } else {
        Just(Properties::default()).boxed()
    }
}

pub fn connect(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let will = (
        topic_name(),
        binary(),
        qos(),
        any::<bool>(),
        props_for(version, PropertyContext::Will),
    )
        .prop_map(|(topic, payload, qos, retain, properties)| LastWill {
            topic,
            payload,
            qos,
            retain,
            properties,
        });
    (
        any::<bool>(),
        any::<u16>(),
        mqtt_string(),
        prop::option::of(will),
        prop::option::of(mqtt_string()),
        prop::option::of(binary()),
        props_for(version, PropertyContext::Connect),
    )
        .prop_map(
            move |(clean_start, keep_alive, client_id, will, username, password, properties)| {
                // Before 5.0 a password needs a user name [MQTT-3.1.2-22].
                let password = if version != ProtocolVersion::V5 && username.is_none() {
                    None
                } else {
                    password
                };
                Packet::Connect(Box::new(Connect {
                    bridge: false,
                    version,
                    clean_start,
                    keep_alive,
                    client_id,
                    will,
                    username,
                    password,
                    properties,
                }))
            },
        )
}

pub fn connack(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let reason = if version == ProtocolVersion::V5 {
        reason_in(reasons::CONNACK).boxed()
    } else {
        prop::sample::select(&reasons::CONNACK_V4[..]).boxed()
    };
    (
        any::<bool>(),
        reason,
        props_for(version, PropertyContext::ConnAck),
    )
        .prop_map(move |(session_present, reason, properties)| {
            Packet::ConnAck(ConnAck {
                session_present: session_present && version != ProtocolVersion::V3,
                reason,
                properties,
            })
        })
}

pub fn publish(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        any::<bool>(),
        qos(),
        any::<bool>(),
        topic_name(),
        any::<bool>(),
        packet_id(),
        props_for(version, PropertyContext::Publish),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(
            move |(dup, qos, retain, topic, alias_only, id, properties, payload)| {
                let topic = if alias_only && properties.topic_alias.is_some() {
                    TopicName::empty()
                } else {
                    topic
                };
                let at_most_once = qos == QoS::AtMostOnce;
                Packet::Publish(Publish {
                    dup: dup && !at_most_once,
                    qos,
                    retain,
                    topic,
                    packet_id: (!at_most_once).then_some(id),
                    properties,
                    payload: Bytes::from(payload),
                })
            },
        )
}

pub fn pub_resp(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = version == ProtocolVersion::V5;
    (
        0u8..4,
        packet_id(),
        props_for(version, PropertyContext::PubResp),
        any::<prop::sample::Index>(),
    )
        .prop_map(move |(kind, packet_id, properties, index)| {
            let list = if kind < 2 {
                reasons::PUBACK
            } else {
                reasons::PUBREL
            };
            let reason = if v5 {
                *index.get(list)
            } else {
                ReasonCode::Success
            };
            let resp = PubResp {
                packet_id,
                reason,
                properties,
            };
            match kind {
                0 => Packet::PubAck(resp),
                1 => Packet::PubRec(resp),
                2 => Packet::PubRel(resp),
                _ => Packet::PubComp(resp),
            }
        })
}

pub fn subscription_options(
    version: ProtocolVersion,
) -> impl Strategy<Value = SubscriptionOptions> {
    let v5 = version == ProtocolVersion::V5;
    (qos(), any::<bool>(), any::<bool>(), 0u8..3).prop_map(move |(qos, no_local, rap, rh)| {
        if !v5 {
            return SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            };
        }
        SubscriptionOptions {
            qos,
            no_local,
            retain_as_published: rap,
            retain_handling: match rh {
                0 => RetainHandling::SendAtSubscribe,
                1 => RetainHandling::SendAtSubscribeIfNew,
                _ => RetainHandling::DoNotSend,
            },
        }
    })
}

pub fn subscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let entry =
        (topic_filter(), subscription_options(version)).prop_map(|(filter, mut options)| {
            // No Local on a shared subscription is a protocol error [MQTT-3.8.3-4].
            if filter.share_group().is_some() {
                options.no_local = false;
            }
            Subscription { filter, options }
        });
    (
        packet_id(),
        props_for(version, PropertyContext::Subscribe),
        prop::collection::vec(entry, 1..5),
    )
        .prop_map(|(packet_id, properties, subscriptions)| {
            Packet::Subscribe(Subscribe {
                packet_id,
                properties,
                subscriptions,
            })
        })
}

const SUBACK_V4: &[ReasonCode] = &[
    ReasonCode::Success,
    ReasonCode::GrantedQoS1,
    ReasonCode::GrantedQoS2,
    ReasonCode::UnspecifiedError,
];

pub fn suback(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let list = if version == ProtocolVersion::V5 {
        reasons::SUBACK
    } else {
        SUBACK_V4
    };
    (
        packet_id(),
        props_for(version, PropertyContext::SubAck),
        prop::collection::vec(reason_in(list), 0..5),
    )
        .prop_map(|(packet_id, properties, reasons)| {
            Packet::SubAck(SubAck {
                packet_id,
                properties,
                reasons,
            })
        })
}

pub fn unsubscribe(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    (
        packet_id(),
        props_for(version, PropertyContext::Unsubscribe),
        prop::collection::vec(topic_filter(), 1..5),
    )
        .prop_map(|(packet_id, properties, filters)| {
            Packet::Unsubscribe(Unsubscribe {
                packet_id,
                properties,
                filters,
            })
        })
}

pub fn unsuback(version: ProtocolVersion) -> impl Strategy<Value = Packet> {
    let v5 = version == ProtocolVersion::V5;
    (
        packet_id(),
        props_for(version, PropertyContext::UnsubAck),
        prop::collection::vec(reason_in(reasons::UNSUBACK), 0..5),
    )
        .prop_map(move |(packet_id, properties, reasons)| {
            Packet::UnsubAck(UnsubAck {
                packet_id,
                properties,
                reasons: if v5 { reasons } else { Vec::new() },
            })
        })
}

pub fn control(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    let v5 = version == ProtocolVersion::V5;
    let disconnect = (
        reason_in(reasons::DISCONNECT),
        props_for(version, PropertyContext::Disconnect),
    )
        .prop_map(move |(reason, properties)| {
            Packet::Disconnect(if v5 {
                Disconnect { reason, properties }
            } else {
                Disconnect::new(ReasonCode::Success)
            })
        });
    let auth = (reason_in(reasons::AUTH), properties(PropertyContext::Auth))
        .prop_map(|(reason, properties)| Packet::Auth(Auth { reason, properties }));
    if v5 {
        prop_oneof![
            Just(Packet::PingReq),
            Just(Packet::PingResp),
            disconnect,
            auth
        ]
        .boxed()
    } else {
        prop_oneof![Just(Packet::PingReq), Just(Packet::PingResp), disconnect].boxed()
    }
}

/// A version together with a packet of `strategy` valid in it.
pub fn in_any_version<S: Strategy<Value = Packet> + 'static>(
    strategy: fn(ProtocolVersion) -> S,
) -> impl Strategy<Value = (ProtocolVersion, Packet)> {
    prop::sample::select(&VERSIONS[..])
        .prop_flat_map(move |version| strategy(version).prop_map(move |p| (version, p)))
}

/// Any packet valid in `version`.
pub fn packet(version: ProtocolVersion) -> BoxedStrategy<Packet> {
    prop_oneof![
        connect(version),
        connack(version),
        publish(version),
        pub_resp(version),
        subscribe(version),
        suback(version),
        unsubscribe(version),
        unsuback(version),
        control(version),
    ]
    .boxed()
}
