//! Tests of the client's PUBLISHes: QoS 1/2 acknowledgement, inbound QoS 2 duplicates and
//! Receive Maximum, topic aliases, the Payload Format Indicator.

use super::*;

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
