//! Byte fixtures for PUBLISH and its acknowledgements, annotated field by field, and the
//! outbound forms the broker's fan-out builds.

use super::super::fixture::*;
use super::super::packet::{Packet, PubResp, Publish};
use super::super::{
    DecodeError, Properties, PropertyValues, ProtocolVersion, QoS, ReasonCode, StringError,
    TopicError,
};
use bytes::BytesMut;

// encode_publish and its layouts.
mod layout;

fn publish(qos: QoS, t: &str, id: Option<u16>, payload: &'static [u8]) -> Publish {
    Publish {
        dup: false,
        qos,
        retain: false,
        topic: topic(t),
        packet_id: id.map(pid),
        properties: Properties::default(),
        payload: b(payload),
    }
}

#[test]
fn publish_qos0_v4() {
    let bytes = [
        0x30, 0x07, // PUBLISH, QoS 0, remaining length 7
        0x00, 0x03, b'a', b'/', b'b', // topic name
        b'h', b'i', // payload: the rest of the packet (3.3.3)
    ];
    let expected = publish(QoS::AtMostOnce, "a/b", None, b"hi");
    assert_codec(&bytes, V4, &Packet::Publish(expected));
}

#[test]
fn publish_qos1_dup_retain_v4() {
    let bytes = [
        0x3B, 0x07, // PUBLISH, DUP, QoS 1, RETAIN (3.3.1)
        0x00, 0x01, b't', // topic name
        0x00, 0x0A, // packet identifier 10 (3.3.2.2)
        b'p', b'l', // payload
    ];
    let expected = Publish {
        dup: true,
        retain: true,
        ..publish(QoS::AtLeastOnce, "t", Some(10), b"pl")
    };
    assert_codec(&bytes, V4, &Packet::Publish(expected));
}

#[test]
fn publish_qos2_empty_payload_v3() {
    let bytes = [0x34, 0x05, 0x00, 0x01, b't', 0x00, 0x01];
    let expected = publish(QoS::ExactlyOnce, "t", Some(1), b"");
    assert_codec(&bytes, V3, &Packet::Publish(expected));
}

#[test]
fn publish_v5_empty_topic_with_topic_alias_mqtt_3_3_2_8() {
    let bytes = [
        0x30, 0x07, // PUBLISH QoS 0
        0x00, 0x00, // zero-length topic name
        0x03, 0x23, 0x00, 0x01, // properties: topic alias 1
        b'x', // payload
    ];
    let expected = Publish {
        topic: super::TopicName::empty(),
        properties: Properties::from(PropertyValues {
            topic_alias: Some(1),
            ..PropertyValues::default()
        }),
        ..publish(QoS::AtMostOnce, "t", None, b"x")
    };
    assert_codec(&bytes, V5, &Packet::Publish(expected));
}

#[test]
fn publish_v5_qos1_with_properties() {
    let bytes = [
        0x32, 0x10, // PUBLISH QoS 1, remaining length 16
        0x00, 0x01, b't', // topic
        0x00, 0x05, // packet identifier 5
        0x09, // property length 9
        0x01, 0x01, // payload format indicator: UTF-8
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property k=v
        b'p', // payload
    ];
    let expected = Publish {
        properties: Properties::from(PropertyValues {
            payload_format_indicator: Some(1),
            user_properties: vec![(s("k"), s("v"))],
            ..PropertyValues::default()
        }),
        ..publish(QoS::AtLeastOnce, "t", Some(5), b"p")
    };
    assert_codec(&bytes, V5, &Packet::Publish(expected));
}

#[test]
fn publish_v5_accepts_several_subscription_identifiers() {
    let bytes = [
        0x30, 0x09, 0x00, 0x01, b't', 0x04, 0x0B, 0x01, 0x0B, 0x02, b'p',
    ];
    let expected = Publish {
        properties: Properties::from(PropertyValues {
            subscription_identifiers: vec![1, 2],
            ..PropertyValues::default()
        }),
        ..publish(QoS::AtMostOnce, "t", None, b"p")
    };
    assert_codec(&bytes, V5, &Packet::Publish(expected));
}

#[test]
fn publish_short_topic_is_inline_and_payload_shares_the_read_buffer() {
    let mut buf =
        bytes::BytesMut::from(&[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'][..]);
    let base = buf.as_ptr() as usize;
    let Ok(Some(Packet::Publish(p))) = super::super::decode(&mut buf, V4, usize::MAX) else {
        panic!("valid PUBLISH");
    };
    assert_eq!(p.topic.as_str(), "a/b");
    assert!(p.topic.is_inline());
    assert_eq!(p.payload.as_ptr() as usize, base + 7);
}

/// Encodes `packet` in `version` and decodes it back from a fresh buffer, returning the
/// PUBLISH and the buffer's start address.
fn round_trip_publish(packet: Publish, version: ProtocolVersion) -> (Publish, usize) {
    let mut buf = BytesMut::new();
    super::super::encode(&Packet::Publish(packet.clone()), version, &mut buf).expect("encodes");
    let base = buf.as_ptr() as usize;
    match super::super::decode(&mut buf, version, usize::MAX) {
        Ok(Some(Packet::Publish(p))) => {
            assert_eq!(p, packet);
            (p, base)
        }
        other => panic!("expected a PUBLISH, got {other:?}"),
    }
}

#[test]
fn publish_16_byte_payload_decodes_inline_topic_and_zero_copy_payload() {
    const TOPIC: &str = "sensors/room1/temperature";
    for version in [V4, V5] {
        let packet = publish(QoS::AtLeastOnce, TOPIC, Some(7), b"0123456789abcdef");
        let (p, base) = round_trip_publish(packet, version);
        assert!(p.topic.is_inline());
        // fixed header 2, topic 2 + 25, packet id 2, property length 1 in 5.0
        let props = usize::from(version == V5);
        assert_eq!(
            p.payload.as_ptr() as usize,
            base + 2 + 2 + TOPIC.len() + 2 + props
        );
    }
}

#[test]
fn publish_long_topic_is_a_slice_of_the_read_buffer() {
    let long = "l/".repeat(super::super::topic::INLINE_TOPIC_LEN);
    for version in [V3, V4, V5] {
        let (p, base) = round_trip_publish(publish(QoS::AtMostOnce, &long, None, b"x"), version);
        assert!(!p.topic.is_inline());
        assert_eq!(p.topic.as_bytes().as_ptr() as usize, base + 4);
        let props = usize::from(version == V5);
        assert_eq!(p.payload.as_ptr() as usize, base + 4 + long.len() + props);
    }
}

#[test]
fn publish_response_topic_round_trips_inline_and_shared() {
    let long = "r/".repeat(super::super::topic::INLINE_TOPIC_LEN);
    for text in ["reply/to", long.as_str()] {
        let packet = Publish {
            properties: Properties::from(PropertyValues {
                response_topic: Some(topic(text)),
                ..PropertyValues::default()
            }),
            ..publish(QoS::AtMostOnce, text, None, b"p")
        };
        let (p, _) = round_trip_publish(packet, V5);
        let response = p
            .properties
            .response_topic
            .as_ref()
            .expect("response topic");
        assert_eq!(response.as_str(), text);
        assert_eq!(response.is_inline(), text.len() <= 38);
    }
}

#[test]
fn publish_refuses_wildcard_in_short_and_long_topic_mqtt_3_3_2_2() {
    let long = "w/".repeat(super::super::topic::INLINE_TOPIC_LEN);
    for t in ["a/+".to_string(), format!("{long}#")] {
        let mut bytes = vec![0x30, 0, 0, t.len() as u8];
        bytes.extend_from_slice(t.as_bytes());
        bytes[1] = (bytes.len() - 2) as u8;
        assert_refused(&bytes, V4, DecodeError::Topic(TopicError::WildcardInName));
    }
}

#[test]
fn publish_refuses_qos_3_mqtt_3_3_1_4() {
    assert_refused(&[0x36, 0x03, 0x00, 0x01, b't'], V4, DecodeError::InvalidQoS);
}

#[test]
fn publish_refuses_dup_on_qos_0_mqtt_3_3_1_2() {
    assert_refused(
        &[0x38, 0x03, 0x00, 0x01, b't'],
        V4,
        DecodeError::DupWithQoS0,
    );
}

#[test]
fn publish_refuses_packet_id_0_mqtt_2_2_1_3() {
    assert_refused(
        &[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x00],
        V4,
        DecodeError::ZeroPacketId,
    );
}

#[test]
fn publish_refuses_empty_topic_without_alias_mqtt_4_7_3_1() {
    assert_refused(&[0x30, 0x02, 0x00, 0x00], V4, DecodeError::EmptyTopic);
    assert_refused(&[0x30, 0x03, 0x00, 0x00, 0x00], V5, DecodeError::EmptyTopic);
}

#[test]
fn publish_refuses_wildcards_in_topic_mqtt_3_3_2_2() {
    assert_refused(
        &[0x30, 0x03, 0x00, 0x01, b'#'],
        V4,
        DecodeError::Topic(TopicError::WildcardInName),
    );
}

#[test]
fn publish_refuses_ill_formed_utf8_topic_mqtt_1_5_4_1() {
    let error = DecodeError::Topic(TopicError::String(StringError::InvalidUtf8));
    assert_refused(&[0x30, 0x03, 0x00, 0x01, 0xFF], V4, error.clone());
    assert_eq!(error.reason_code(), ReasonCode::MalformedPacket);
}

#[test]
fn publish_refuses_topic_alias_0_and_subscription_identifier_0() {
    assert_refused(
        &[0x30, 0x07, 0x00, 0x01, b't', 0x03, 0x23, 0x00, 0x00],
        V5,
        DecodeError::InvalidPropertyValue(0x23),
    );
    // [MQTT-3.3.2-8] / section 3.3.4: alias 0 is answered with 0x94, not 0x82.
    let alias_0 = DecodeError::InvalidPropertyValue(0x23);
    assert_eq!(alias_0.reason_code(), ReasonCode::TopicAliasInvalid);
    let sub_id_0 = DecodeError::InvalidPropertyValue(0x0B);
    assert_eq!(sub_id_0.reason_code(), ReasonCode::ProtocolError);
    assert_refused(
        &[0x30, 0x06, 0x00, 0x01, b't', 0x02, 0x0B, 0x00],
        V5,
        DecodeError::InvalidPropertyValue(0x0B),
    );
}

#[test]
fn publish_refuses_property_length_past_the_packet() {
    assert_refused(
        &[0x30, 0x04, 0x00, 0x01, b't', 0x05],
        V5,
        DecodeError::UnexpectedEnd,
    );
}

fn resp(id: u16, reason: ReasonCode) -> PubResp {
    PubResp {
        reason,
        ..PubResp::new(pid(id))
    }
}

#[test]
fn acknowledgements_v4_carry_only_the_packet_id() {
    assert_codec(
        &[0x40, 0x02, 0x00, 0x07],
        V4,
        &Packet::PubAck(PubResp::new(pid(7))),
    );
    assert_codec(
        &[0x50, 0x02, 0x00, 0x07],
        V4,
        &Packet::PubRec(PubResp::new(pid(7))),
    );
    // PUBREL's fixed header flags are 0b0010 [MQTT-3.6.1-1].
    assert_codec(
        &[0x62, 0x02, 0x00, 0x07],
        V4,
        &Packet::PubRel(PubResp::new(pid(7))),
    );
    assert_codec(
        &[0x70, 0x02, 0x00, 0x07],
        V3,
        &Packet::PubComp(PubResp::new(pid(7))),
    );
}

#[test]
fn acknowledgements_v5_short_forms_3_4_2_1() {
    // Remaining length 2: Success, no properties.
    assert_codec(
        &[0x70, 0x02, 0x00, 0x07],
        V5,
        &Packet::PubComp(PubResp::new(pid(7))),
    );
    // Remaining length 3: a reason code, no properties.
    assert_codec(
        &[0x50, 0x03, 0x00, 0x07, 0x10],
        V5,
        &Packet::PubRec(resp(7, ReasonCode::NoMatchingSubscribers)),
    );
    // Success with an empty property list is the same packet as the short form.
    assert_decodes(
        &[0x40, 0x04, 0x00, 0x07, 0x00, 0x00],
        V5,
        &Packet::PubAck(PubResp::new(pid(7))),
    );
}

#[test]
fn puback_v5_with_reason_string() {
    let bytes = [
        0x40, 0x08, // PUBACK, remaining length 8
        0x00, 0x07, // packet identifier
        0x80, // Unspecified error
        0x04, 0x1F, 0x00, 0x01, b'e', // properties: reason string "e"
    ];
    let expected = PubResp {
        properties: Properties::from(PropertyValues {
            reason_string: Some(s("e")),
            ..PropertyValues::default()
        }),
        ..resp(7, ReasonCode::UnspecifiedError)
    };
    assert_codec(&bytes, V5, &Packet::PubAck(expected));
}

#[test]
fn pubrel_v3_tolerates_dup_flag() {
    assert_decodes(
        &[0x6A, 0x02, 0x00, 0x07],
        V3,
        &Packet::PubRel(PubResp::new(pid(7))),
    );
}

#[test]
fn acknowledgements_refuse_reserved_flags_mqtt_2_1_3_1() {
    let error = DecodeError::ReservedFlags {
        packet_type: 6,
        flags: 0,
    };
    assert_refused(&[0x60, 0x02, 0x00, 0x07], V4, error);
    let error = DecodeError::ReservedFlags {
        packet_type: 4,
        flags: 1,
    };
    assert_refused(&[0x41, 0x02, 0x00, 0x07], V5, error);
}

#[test]
fn acknowledgements_refuse_bad_lengths_and_reasons() {
    assert_refused(
        &[0x40, 0x03, 0x00, 0x07, 0x00],
        V4,
        DecodeError::TrailingBytes,
    );
    assert_refused(&[0x40, 0x01, 0x00], V4, DecodeError::UnexpectedEnd);
    assert_refused(&[0x40, 0x02, 0x00, 0x00], V4, DecodeError::ZeroPacketId);
    // 0x92 belongs to PUBREL/PUBCOMP, 0x10 to PUBACK/PUBREC.
    assert_refused(
        &[0x40, 0x03, 0x00, 0x07, 0x92],
        V5,
        DecodeError::InvalidReasonCode(0x92),
    );
    assert_refused(
        &[0x62, 0x03, 0x00, 0x07, 0x10],
        V5,
        DecodeError::InvalidReasonCode(0x10),
    );
}
