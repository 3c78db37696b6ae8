//! Unit tests of the session state machine: constructed packets in, actions out.

use super::*;
use crate::protocol::{
    MqttString, Properties, PropertyValues, Subscription, SubscriptionOptions, TopicName,
};
use crate::timer::test_clock as clock;
use bytes::Bytes;

fn connect(version: ProtocolVersion, clean_start: bool) -> Connect {
    let mut properties = Properties::default();
    if version == ProtocolVersion::V5 && !clean_start {
        properties.session_expiry_interval = Some(3600);
    }
    Connect {
        version,
        clean_start,
        keep_alive: 30,
        client_id: MqttString::try_from("c1").expect("valid id"),
        will: None,
        username: None,
        password: None,
        properties,
    }
}

/// The reason of the close (with the will published) among `out`, if there is one.
fn closed_with(out: &[Action]) -> Option<&Reason> {
    out.iter().find_map(|a| match a {
        Action::Close {
            reason,
            publish_will: true,
        } => reason.as_ref(),
        _ => None,
    })
}

fn subscribe_to(filters: &[String]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: id(1),
        properties: Properties::default(),
        subscriptions: filters
            .iter()
            .map(|f| Subscription {
                filter: TopicFilter::try_from(f.as_str()).expect("valid filter"),
                options: SubscriptionOptions::default(),
            })
            .collect(),
    })
}

fn session(version: ProtocolVersion, clean: bool, limits: Limits) -> Session {
    Session::new("c1".into(), &connect(version, clean), limits)
}

fn message(topic: &str, qos: QoS) -> Message {
    Message {
        topic: TopicName::try_from(topic).expect("valid topic"),
        payload: Bytes::from_static(b"hello"),
        qos,
        retain: false,
        properties: None,
        expires_at: None,
    }
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

fn publish(qos: QoS, packet_id: Option<u16>) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicName::try_from("a/b").expect("valid topic"),
        packet_id: packet_id.map(id),
        properties: Properties::default(),
        payload: Bytes::from_static(b"x"),
    })
}

fn routed(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Route(_)))
        .count()
}

fn sent_id(delivery: Delivery) -> PacketId {
    match delivery {
        Delivery::Send {
            packet_id: Some(id),
            ..
        } => id,
        other => panic!("expected a QoS>0 send, got {other:?}"),
    }
}

#[test]
fn qos1_publish_is_routed_and_acknowledged() {
    let mut s = session(ProtocolVersion::V4, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(publish(QoS::AtLeastOnce, Some(7)), &mut out);
    assert_eq!(routed(&out), 1);
    assert!(out.contains(&Action::Send(Packet::PubAck(PubResp::new(id(7))))));
}

#[test]
fn qos2_duplicate_before_pubrel_is_not_routed_again_mqtt_4_3_3_2() {
    let mut s = session(ProtocolVersion::V4, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(publish(QoS::ExactlyOnce, Some(3)), &mut out);
    s.on_packet(publish(QoS::ExactlyOnce, Some(3)), &mut out);
    assert_eq!(routed(&out), 1, "exactly once: the duplicate is not routed");
    let pubrecs = out
        .iter()
        .filter(|a| matches!(a, Action::Send(Packet::PubRec(_))))
        .count();
    assert_eq!(pubrecs, 2, "each PUBLISH is answered with PUBREC");
    out.clear();
    s.on_packet(Packet::PubRel(PubResp::new(id(3))), &mut out);
    assert_eq!(
        out,
        vec![Action::Send(Packet::PubComp(PubResp::new(id(3))))]
    );
    out.clear();
    s.on_packet(publish(QoS::ExactlyOnce, Some(3)), &mut out);
    assert_eq!(routed(&out), 1, "after PUBREL the id starts a new message");
}

#[test]
fn inbound_qos2_over_receive_maximum_closes_mqtt_3_3_4_9() {
    let limits = Limits {
        max_inbound_qos2: 1,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V5, true, limits);
    let mut out = Vec::new();
    s.on_packet(publish(QoS::ExactlyOnce, Some(1)), &mut out);
    s.on_packet(publish(QoS::ExactlyOnce, Some(2)), &mut out);
    assert_eq!(
        closed_with(&out).map(|r| r.code),
        Some(ReasonCode::ReceiveMaximumExceeded)
    );
}

#[test]
fn delivery_window_bounds_inflight_and_queues_the_rest_in_order() {
    let limits = Limits {
        max_inflight: 2,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, true, limits);
    let first = sent_id(s.deliver(&message("t/1", QoS::AtLeastOnce), QoS::AtLeastOnce, false));
    sent_id(s.deliver(&message("t/2", QoS::AtLeastOnce), QoS::AtLeastOnce, false));
    assert_eq!(
        s.deliver(&message("t/3", QoS::AtLeastOnce), QoS::AtLeastOnce, false),
        Delivery::Queued
    );
    assert_eq!(s.inflight_len(), 2);
    let mut out = Vec::new();
    s.on_packet(Packet::PubAck(PubResp::new(first)), &mut out);
    match out.as_slice() {
        [Action::Deliver(o)] => {
            assert_eq!(o.msg.topic.as_str(), "t/3");
            assert!(!o.dup);
            assert!(o.packet_id.is_some());
        }
        other => panic!("expected the queued message released, got {other:?}"),
    }
    assert_eq!(s.queued_len(), 0);
}

#[test]
fn client_receive_maximum_caps_the_window() {
    let mut c = connect(ProtocolVersion::V5, true);
    c.properties.receive_maximum = Some(1);
    let mut s = Session::new("c1".into(), &c, Limits::default());
    sent_id(s.deliver(&message("t", QoS::AtLeastOnce), QoS::AtLeastOnce, false));
    assert_eq!(
        s.deliver(&message("t", QoS::ExactlyOnce), QoS::ExactlyOnce, false),
        Delivery::Queued
    );
}

#[test]
fn qos2_outbound_flow_sends_pubrel_and_frees_slot_on_pubcomp() {
    let limits = Limits {
        max_inflight: 1,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, true, limits);
    let pid = sent_id(s.deliver(&message("t", QoS::ExactlyOnce), QoS::ExactlyOnce, false));
    let mut out = Vec::new();
    s.on_packet(Packet::PubRec(PubResp::new(pid)), &mut out);
    assert_eq!(out, vec![Action::Send(Packet::PubRel(PubResp::new(pid)))]);
    assert_eq!(s.inflight_len(), 1, "the PUBREL still holds the slot");
    out.clear();
    s.on_packet(Packet::PubComp(PubResp::new(pid)), &mut out);
    assert_eq!(s.inflight_len(), 0);
}

#[test]
fn qos0_is_dropped_and_counted_when_offline_or_not_writable() {
    let mut s = session(ProtocolVersion::V4, false, Limits::default());
    let mut out = Vec::new();
    s.set_writable(false, &mut out);
    assert_eq!(
        s.deliver(&message("t", QoS::AtMostOnce), QoS::AtMostOnce, false),
        Delivery::Dropped
    );
    s.detach(false);
    assert_eq!(
        s.deliver(&message("t", QoS::AtMostOnce), QoS::AtMostOnce, false),
        Delivery::Dropped
    );
    assert_eq!(s.stats().dropped_qos0, 2);
}

#[test]
fn offline_queue_is_bounded_by_count_and_bytes() {
    let limits = Limits {
        max_queued_messages: 2,
        max_queued_bytes: 1000,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, false, limits);
    s.detach(false);
    let m = message("t", QoS::AtLeastOnce);
    assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Queued);
    assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Queued);
    assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Dropped);
    assert_eq!(s.stats().dropped_queue_full, 1);

    let limits = Limits {
        max_queued_bytes: 10,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, false, limits);
    s.detach(false);
    assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Queued);
    assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Dropped);
}

#[test]
fn reconnect_resends_unacked_publish_with_dup_and_pubrel_in_order_mqtt_4_4_0_1() {
    let mut s = session(ProtocolVersion::V4, false, Limits::default());
    let a = sent_id(s.deliver(&message("t/a", QoS::ExactlyOnce), QoS::ExactlyOnce, false));
    let b = sent_id(s.deliver(&message("t/b", QoS::AtLeastOnce), QoS::AtLeastOnce, false));
    let mut out = Vec::new();
    s.on_packet(Packet::PubRec(PubResp::new(a)), &mut out);
    s.detach(true);
    assert_eq!(
        s.deliver(&message("t/c", QoS::AtLeastOnce), QoS::AtLeastOnce, false),
        Delivery::Queued
    );
    out.clear();
    s.resume(&connect(ProtocolVersion::V4, false), &mut out);
    assert_eq!(out.len(), 3);
    assert_eq!(out[0], Action::Send(Packet::PubRel(PubResp::new(a))));
    match &out[1] {
        Action::Deliver(o) => {
            assert_eq!(o.packet_id, Some(b), "original packet id");
            assert!(o.dup, "DUP=1 on resend [MQTT-3.3.1-1]");
            assert_eq!(o.msg.topic.as_str(), "t/b");
        }
        other => panic!("expected resend of t/b, got {other:?}"),
    }
    match &out[2] {
        Action::Deliver(o) => {
            assert_eq!(o.msg.topic.as_str(), "t/c");
            assert!(!o.dup);
        }
        other => panic!("expected queued t/c, got {other:?}"),
    }
}

#[test]
fn delivered_qos_and_retain_follow_the_subscriber() {
    let mut s = session(ProtocolVersion::V4, false, Limits::default());
    s.detach(false);
    let mut m = message("t", QoS::ExactlyOnce);
    m.retain = true;
    s.deliver(&m, QoS::AtLeastOnce, false);
    let mut out = Vec::new();
    s.resume(&connect(ProtocolVersion::V4, false), &mut out);
    match out.as_slice() {
        [Action::Deliver(o)] => {
            assert_eq!(o.msg.qos, QoS::AtLeastOnce);
            assert!(!o.msg.retain);
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn packet_ids_wrap_and_skip_ids_still_in_flight() {
    let mut s = session(ProtocolVersion::V4, true, Limits::default());
    let m = message("t", QoS::AtLeastOnce);
    let stuck = sent_id(s.deliver(&m, QoS::AtLeastOnce, false));
    let mut out = Vec::new();
    for _ in 0..PACKET_ID_SPACE + 5 {
        let pid = sent_id(s.deliver(&m, QoS::AtLeastOnce, false));
        assert_ne!(pid, stuck, "an id in flight is never reused [MQTT-2.2.1-3]");
        s.on_packet(Packet::PubAck(PubResp::new(pid)), &mut out);
    }
    assert_eq!(s.inflight_len(), 1);
}

#[test]
fn suback_grants_the_requested_qos_per_filter_in_order() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let sub = |f: &str, qos| Subscription {
        filter: TopicFilter::try_from(f).expect("valid filter"),
        options: SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        },
    };
    let mut out = Vec::new();
    s.on_packet(
        Packet::Subscribe(Subscribe {
            packet_id: id(1),
            properties: Properties::default(),
            subscriptions: vec![
                sub("a/+", QoS::AtLeastOnce),
                sub("$share/g/a", QoS::ExactlyOnce),
                sub("b", QoS::AtMostOnce),
            ],
        }),
        &mut out,
    );
    match &out[0] {
        Action::Send(Packet::SubAck(ack)) => assert_eq!(
            ack.reasons,
            vec![
                ReasonCode::GrantedQoS1,
                ReasonCode::GrantedQoS2,
                ReasonCode::GRANTED_QOS0
            ]
        ),
        other => panic!("SUBACK must come first, got {other:?}"),
    }
    assert_eq!(out.len(), 4);
    assert!(matches!(&out[1], Action::Subscribe { is_new: true, .. }));
    assert_eq!(
        s.subscription(&TopicFilter::try_from("a/+").expect("valid")),
        Some(SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..SubscriptionOptions::default()
        })
    );
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error_mqtt_3_8_3_4() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(
        Packet::Subscribe(Subscribe {
            packet_id: id(1),
            properties: Properties::default(),
            subscriptions: vec![Subscription {
                filter: TopicFilter::try_from("$share/g/a").expect("valid filter"),
                options: SubscriptionOptions {
                    no_local: true,
                    ..SubscriptionOptions::default()
                },
            }],
        }),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        closed_with(&out).map(|r| r.code),
        Some(ReasonCode::ProtocolError)
    );
}

#[test]
fn unsubscribe_reports_missing_subscriptions_in_v5() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(
        Packet::Unsubscribe(Unsubscribe {
            packet_id: id(2),
            properties: Properties::default(),
            filters: vec![TopicFilter::try_from("x").expect("valid")],
        }),
        &mut out,
    );
    match out.as_slice() {
        [Action::Send(Packet::UnsubAck(ack))] => {
            assert_eq!(ack.reasons, vec![ReasonCode::NoSubscriptionExisted])
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn normal_disconnect_discards_the_will_mqtt_3_14_4_3() {
    let mut c = connect(ProtocolVersion::V4, true);
    c.will = Some(LastWill {
        topic: TopicName::try_from("will").expect("valid"),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    let mut s = Session::new("c1".into(), &c, Limits::default());
    let mut out = Vec::new();
    s.on_packet(
        Packet::Disconnect(Disconnect::new(ReasonCode::Success)),
        &mut out,
    );
    assert_eq!(
        out,
        vec![Action::Close {
            reason: None,
            publish_will: false
        }]
    );
    assert_eq!(s.detach(true), None, "the will is gone");

    let mut s = Session::new("c1".into(), &c, Limits::default());
    let will = s.detach(true).expect("will on abnormal loss");
    assert_eq!(will.topic.as_str(), "will");
}

#[test]
fn second_connect_is_a_protocol_violation_mqtt_3_1_0_2() {
    let mut s = session(ProtocolVersion::V4, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(
        Packet::Connect(Box::new(connect(ProtocolVersion::V4, true))),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        closed_with(&out).map(|r| r.code),
        Some(ReasonCode::ProtocolError)
    );
}

fn aliased(alias: u16, topic: Option<&str>) -> Packet {
    let Packet::Publish(mut p) = publish(QoS::AtMostOnce, None) else {
        unreachable!("publish() builds a PUBLISH")
    };
    p.properties.topic_alias = Some(alias);
    p.topic = topic.map_or_else(TopicName::empty, |t| TopicName::try_from(t).expect("valid"));
    Packet::Publish(p)
}

#[test]
fn topic_alias_maps_to_the_topic_it_was_set_with() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(aliased(3, Some("long/topic")), &mut out);
    s.on_packet(aliased(3, None), &mut out);
    let topics: Vec<&str> = out
        .iter()
        .filter_map(|a| match a {
            Action::Route(m) => Some(m.topic.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(topics, ["long/topic", "long/topic"]);
    assert!(
        out.iter().all(|a| match a {
            Action::Route(m) => m.properties.is_none(),
            _ => true,
        }),
        "the alias is not forwarded"
    );
}

#[test]
fn topic_alias_above_maximum_or_unset_closes_mqtt_3_3_2_9() {
    let limits = Limits {
        topic_alias_maximum: 2,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V5, true, limits);
    let mut out = Vec::new();
    s.on_packet(aliased(3, Some("t")), &mut out);
    assert_eq!(out.len(), 1);
    let reason = closed_with(&out).expect("closed");
    assert_eq!(reason.code, ReasonCode::TopicAliasInvalid);
    assert_eq!(
        reason.string.as_ref().map(|s| s.as_str()),
        Some("topic alias 3 is outside 1..=2, the Topic Alias Maximum [MQTT-3.3.2-9]")
    );
    out.clear();
    s.on_packet(aliased(1, None), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        closed_with(&out).map(|r| r.code),
        Some(ReasonCode::ProtocolError)
    );
}

#[test]
fn v5_persistence_follows_session_expiry_not_clean_start() {
    let mut c = connect(ProtocolVersion::V5, false);
    c.properties.session_expiry_interval = None;
    assert!(!Session::wants_persistence(&c));
    c.properties.session_expiry_interval = Some(10);
    c.clean_start = true;
    assert!(Session::wants_persistence(&c));
    assert!(Session::wants_persistence(&connect(
        ProtocolVersion::V4,
        false
    )));
    assert!(!Session::wants_persistence(&connect(
        ProtocolVersion::V4,
        true
    )));
}

#[test]
fn message_expiry_counts_down_and_rounds_up_mqtt_3_3_2_6() {
    let mut m = message("t", QoS::AtLeastOnce);
    let start = clock();
    m.stamp_expiry(start);
    assert_eq!(
        m.expires_at, None,
        "no Message Expiry Interval, no deadline"
    );
    assert_eq!(m.with_remaining_expiry(start), None);

    let properties = Properties::from(PropertyValues {
        message_expiry_interval: Some(10),
        ..PropertyValues::default()
    });
    m.properties = Some(std::sync::Arc::new(properties));
    m.stamp_expiry(start);
    let later = start + std::time::Duration::from_millis(3500);
    let sent = m.with_remaining_expiry(later).expect("has an expiry");
    let interval = sent
        .properties
        .as_ref()
        .and_then(|p| p.message_expiry_interval);
    assert_eq!(interval, Some(7), "10 s minus 3.5 s waited, rounded up");
    assert!(!m.is_expired(later));
    assert!(m.is_expired(start + std::time::Duration::from_secs(10)));
}

#[test]
fn discarding_an_expired_release_frees_its_slot_for_the_next() {
    let limits = Limits {
        max_inflight: 1,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, false, limits);
    let first = sent_id(s.deliver(&message("t/1", QoS::AtLeastOnce), QoS::AtLeastOnce, false));
    assert_eq!(
        s.deliver(&message("t/2", QoS::AtLeastOnce), QoS::AtLeastOnce, false),
        Delivery::Queued
    );
    let mut out = Vec::new();
    s.on_packet(Packet::PubAck(PubResp::new(first)), &mut out);
    let Some(Action::Deliver(released)) = out.pop() else {
        panic!("t/2 is released")
    };
    out.clear();
    s.discard(released.packet_id, Discard::Expired, &mut out);
    assert_eq!(s.inflight_len(), 0);
    assert_eq!(s.stats().expired, 1);
}

#[test]
fn a_connected_session_queue_is_bounded_by_bytes_only() {
    let limits = Limits {
        max_inflight: 1,
        max_queued_messages: 2,
        max_queued_bytes: 50,
        ..Limits::default()
    };
    let mut s = session(ProtocolVersion::V4, false, limits);
    let m = message("t", QoS::AtLeastOnce);
    sent_id(s.deliver(&m, QoS::AtLeastOnce, false));
    for _ in 0..8 {
        assert_eq!(s.deliver(&m, QoS::AtLeastOnce, false), Delivery::Queued);
    }
    assert_eq!(
        s.deliver(&m, QoS::AtLeastOnce, false),
        Delivery::Dropped,
        "50 bytes"
    );
}

#[test]
fn disconnect_cannot_raise_a_session_expiry_of_zero_3_14_2_2_2() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut disconnect = Disconnect::new(ReasonCode::Success);
    disconnect.properties.session_expiry_interval = Some(60);
    let mut out = Vec::new();
    s.on_packet(Packet::Disconnect(disconnect), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        closed_with(&out).map(|r| r.code),
        Some(ReasonCode::ProtocolError)
    );
    assert!(!s.is_persistent());
}

/// A 5.0 PUBLISH with Payload Format Indicator 1 ("UTF-8 Encoded Character Data").
fn utf8_flagged(qos: QoS, packet_id: Option<u16>, payload: &'static [u8]) -> Packet {
    let mut properties = Properties::default();
    properties.payload_format_indicator = Some(1);
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicName::try_from("a/b").expect("valid topic"),
        packet_id: packet_id.map(id),
        properties,
        payload: Bytes::from_static(payload),
    })
}

/// Not well-formed UTF-8: a lone continuation byte.
const NOT_UTF8: &[u8] = b"caf\x80";

fn refused(packet_id: u16) -> PubResp {
    let mut resp = PubResp::new(id(packet_id));
    resp.reason = ReasonCode::PayloadFormatInvalid;
    resp
}

#[test]
fn payload_format_1_needs_well_formed_utf8_3_3_2_3_2() {
    let mut utf8 = Properties::default();
    utf8.payload_format_indicator = Some(1);
    let mut bytes = Properties::default();
    bytes.payload_format_indicator = Some(0);
    assert!(payload_matches_format(&utf8, "grüße ✓".as_bytes()));
    assert!(payload_matches_format(&utf8, b""));
    // RFC 3629: no encoded surrogates (U+D800), no overlong forms, no truncated sequences.
    for bad in [&b"\xED\xA0\x80"[..], b"\xC0\xAF", b"\xE2\x9C", NOT_UTF8] {
        assert!(!payload_matches_format(&utf8, bad), "{bad:02x?}");
        // Indicator 0 or absent: unspecified bytes, never checked.
        assert!(payload_matches_format(&bytes, bad));
        assert!(payload_matches_format(&Properties::default(), bad));
    }
}

#[test]
fn qos1_publish_with_invalid_utf8_gets_puback_0x99_and_is_not_routed_3_3_2_3_2() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(utf8_flagged(QoS::AtLeastOnce, Some(3), NOT_UTF8), &mut out);
    // 4.13.2: an acknowledgement >= 0x80 refuses this packet only; the connection stays.
    assert_eq!(out, [Action::Send(Packet::PubAck(refused(3)))]);
}

#[test]
fn qos2_publish_with_invalid_utf8_gets_pubrec_0x99_and_ends_the_exchange_3_3_2_3_2() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(utf8_flagged(QoS::ExactlyOnce, Some(4), NOT_UTF8), &mut out);
    assert_eq!(out, [Action::Send(Packet::PubRec(refused(4)))]);
    // 4.3.3: a PUBREC >= 0x80 ends the flow, so the id is free and not awaiting PUBREL.
    assert_eq!(s.inbound_qos2_len(), 0);
    assert!(!s.awaits_pubrel(id(4)));
    // The same id may carry a new, valid message at once.
    out.clear();
    s.on_packet(utf8_flagged(QoS::ExactlyOnce, Some(4), b"ok"), &mut out);
    assert_eq!(routed(&out), 1);
    assert!(out.contains(&Action::Send(Packet::PubRec(PubResp::new(id(4))))));
}

#[test]
fn qos0_publish_with_invalid_utf8_is_closed_with_0x99_3_3_2_3_2() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(utf8_flagged(QoS::AtMostOnce, None, NOT_UTF8), &mut out);
    assert_eq!(out.len(), 1, "{out:?}");
    let reason = closed_with(&out).expect("closed, will published");
    assert_eq!(reason.code, ReasonCode::PayloadFormatInvalid);
}

#[test]
fn a_suback_over_the_clients_maximum_packet_size_closes_before_subscribing_mqtt_3_1_2_24() {
    let mut c = connect(ProtocolVersion::V5, true);
    c.properties.maximum_packet_size = Some(128);
    let mut s = Session::new("c1".into(), &c, Limits::default());
    let mut out = Vec::new();
    // 123 codes make a SUBACK of exactly 128 bytes: type, length 126, packet id, property
    // length 0, 123 codes.
    let fits: Vec<String> = (0..123).map(|i| format!("f/{i}")).collect();
    s.on_packet(subscribe_to(&fits), &mut out);
    assert!(matches!(&out[0], Action::Send(Packet::SubAck(a)) if a.reasons.len() == 123));
    out.clear();
    let too_many: Vec<String> = (0..124).map(|i| format!("g/{i}")).collect();
    s.on_packet(subscribe_to(&too_many), &mut out);
    assert_eq!(out.len(), 1, "nothing is subscribed");
    let reason = closed_with(&out).expect("closed");
    assert_eq!(reason.code, ReasonCode::PacketTooLarge);
    assert!(
        s.subscription(&TopicFilter::try_from("g/0").expect("valid"))
            .is_none()
    );
}

#[test]
fn valid_utf8_with_payload_format_1_is_routed_with_the_indicator_mqtt_3_3_2_4() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(
        utf8_flagged(QoS::AtLeastOnce, Some(5), "π".as_bytes()),
        &mut out,
    );
    assert_eq!(out[0], Action::Send(Packet::PubAck(PubResp::new(id(5)))));
    match &out[1] {
        Action::Route(msg) => {
            let pfi = msg
                .properties
                .as_ref()
                .and_then(|p| p.payload_format_indicator);
            assert_eq!(pfi, Some(1), "forwarded unaltered [MQTT-3.3.2-4]");
        }
        other => panic!("expected the message routed, got {other:?}"),
    }
}

#[test]
fn a_filter_too_deep_is_refused_with_a_reason_string() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut out = Vec::new();
    let deep = vec!["a/".repeat(crate::trie::MAX_LEVELS) + "a"];
    s.on_packet(subscribe_to(&deep), &mut out);
    let Some(Action::Send(Packet::SubAck(ack))) = out.first() else {
        panic!("expected a SUBACK, got {out:?}");
    };
    assert_eq!(ack.reasons, vec![ReasonCode::TopicFilterInvalid]);
    assert_eq!(ack.properties.reason_string, Some(FILTER_TOO_DEEP));
    out.clear();
    s.on_packet(subscribe_to(&["ok".to_string()]), &mut out);
    let Some(Action::Send(Packet::SubAck(ack))) = out.first() else {
        panic!("expected a SUBACK, got {out:?}");
    };
    assert!(ack.properties.is_empty(), "no Reason String on success");
}
