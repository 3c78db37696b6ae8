//! The framing contract of `decode`, `encode` and `encoded_len`: partial input, the maximum
//! packet size, fixed-header checks, the version rules, and errors mapped to reason codes.

pub mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use ringmq_protocol::packet::{Auth, Disconnect, Publish};
use ringmq_protocol::{
    DecodeError, EncodeError, Packet, Properties, ProtocolVersion, QoS, ReasonCode, TopicName,
    announced_size, decode, encode, encoded_len,
};

const PUBLISH_QOS0: [u8; 9] = [0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'];

#[test]
fn partial_packets_return_none_and_consume_nothing() {
    for cut in 0..PUBLISH_QOS0.len() {
        let mut buf = BytesMut::from(&PUBLISH_QOS0[..cut]);
        assert_eq!(
            decode(&mut buf, ProtocolVersion::V4, usize::MAX),
            Ok(None),
            "cut {cut}"
        );
        assert_eq!(buf.len(), cut);
    }
}

#[test]
fn announced_size_is_known_once_the_fixed_header_is_complete() {
    for cut in 0..2 {
        assert_eq!(announced_size(&PUBLISH_QOS0[..cut]), None, "cut {cut}");
    }
    for cut in 2..=PUBLISH_QOS0.len() {
        assert_eq!(announced_size(&PUBLISH_QOS0[..cut]), Some(9), "cut {cut}");
    }
    // 1 MB announced in a 3-byte remaining length, before any of the body.
    assert_eq!(
        announced_size(&[0x30, 0xC0, 0x84, 0x3D]),
        Some(1 + 3 + 1_000_000)
    );
    assert_eq!(
        announced_size(&[0x30, 0xC0, 0x84]),
        None,
        "length cut short"
    );
    assert_eq!(
        announced_size(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF]),
        None,
        "not a length"
    );
}

#[test]
fn decode_leaves_the_next_packet_in_the_buffer() {
    let mut buf = BytesMut::from(&PUBLISH_QOS0[..]);
    buf.extend_from_slice(&[0xC0, 0x00, 0xD0]);
    let first = decode(&mut buf, ProtocolVersion::V4, usize::MAX);
    assert!(matches!(first, Ok(Some(Packet::Publish(_)))));
    assert_eq!(
        decode(&mut buf, ProtocolVersion::V4, usize::MAX),
        Ok(Some(Packet::PingReq))
    );
    assert_eq!(&buf[..], [0xD0]);
}

#[test]
fn oversized_packet_is_refused_from_the_fixed_header_alone_mqtt_3_2_2_15() {
    // Remaining length 268,435,455 announced, not a single body byte buffered.
    let mut buf = BytesMut::from(&[0x30, 0xFF, 0xFF, 0xFF, 0x7F][..]);
    let error = decode(&mut buf, ProtocolVersion::V5, 1024).expect_err("too large");
    assert_eq!(
        error,
        DecodeError::PacketTooLarge {
            size: 268_435_460,
            max: 1024
        }
    );
    assert_eq!(error.reason_code(), ReasonCode::PacketTooLarge);
}

#[test]
fn maximum_packet_size_counts_the_whole_packet() {
    let size = PUBLISH_QOS0.len();
    let mut buf = BytesMut::from(&PUBLISH_QOS0[..]);
    assert!(
        decode(&mut buf, ProtocolVersion::V4, size)
            .expect("fits")
            .is_some()
    );
    let mut buf = BytesMut::from(&PUBLISH_QOS0[..]);
    assert_eq!(
        decode(&mut buf, ProtocolVersion::V4, size - 1),
        Err(DecodeError::PacketTooLarge {
            size,
            max: size - 1
        })
    );
}

#[test]
fn remaining_length_of_five_bytes_is_malformed_mqtt_1_5_5_1() {
    let mut buf = BytesMut::from(&[0x30, 0x80, 0x80, 0x80, 0x80, 0x01][..]);
    let error = decode(&mut buf, ProtocolVersion::V4, usize::MAX).expect_err("malformed");
    assert_eq!(error, DecodeError::MalformedVarInt);
    assert_eq!(error.reason_code(), ReasonCode::MalformedPacket);
}

#[test]
fn reserved_type_and_flags_are_refused_before_the_body_arrives_mqtt_2_1_3_1() {
    let mut buf = BytesMut::from(&[0x00][..]);
    assert_eq!(
        decode(&mut buf, ProtocolVersion::V4, usize::MAX),
        Err(DecodeError::ReservedPacketType)
    );
    let mut buf = BytesMut::from(&[0xC1][..]);
    assert_eq!(
        decode(&mut buf, ProtocolVersion::V4, usize::MAX),
        Err(DecodeError::ReservedFlags {
            packet_type: 12,
            flags: 1
        })
    );
    let mut buf = BytesMut::from(&[0x36][..]);
    assert_eq!(
        decode(&mut buf, ProtocolVersion::V4, usize::MAX),
        Err(DecodeError::InvalidQoS)
    );
}

#[test]
fn every_fixed_header_flag_value_is_checked_mqtt_2_1_3_1() {
    for version in VERSIONS {
        for first in 0u8..=255 {
            let (packet_type, flags) = (first >> 4, first & 0x0F);
            let mut buf = BytesMut::from(&[first][..]);
            let result = decode(&mut buf, version, usize::MAX);
            let expected_flags = match packet_type {
                6 | 8 | 10 => 0b0010,
                _ => 0,
            };
            let v3_dup = version == ProtocolVersion::V3
                && matches!(packet_type, 6 | 8 | 10)
                && flags == 0b1010;
            let ok = match packet_type {
                0 => false,
                3 => (flags >> 1) & 3 != 3 && !((flags >> 1) & 3 == 0 && flags & 8 != 0),
                15 if version != ProtocolVersion::V5 => false,
                _ => flags == expected_flags || v3_dup,
            };
            assert_eq!(
                result.is_ok(),
                ok,
                "{version:?} first byte {first:#04x}: {result:?}"
            );
        }
    }
}

#[test]
fn connect_is_decoded_in_its_own_version() {
    let v3 = [
        0x10, 0x0E, 0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', 0x03, 0x02, 0x00, 0x3C, 0x00,
        0x00,
    ];
    for version in VERSIONS {
        let Packet::Connect(connect) = decode_one(&v3, version) else {
            panic!("CONNECT");
        };
        assert_eq!(connect.version, ProtocolVersion::V3);
    }
}

#[test]
fn unsupported_protocol_level_maps_to_0x84() {
    let bytes = [
        0x10, 0x0C, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x07, 0x02, 0x00, 0x3C, 0x00, 0x00,
    ];
    let mut buf = BytesMut::from(&bytes[..]);
    let error = decode(&mut buf, ProtocolVersion::V5, usize::MAX).expect_err("level 7");
    assert_eq!(error, DecodeError::UnsupportedProtocolVersion(7));
    assert_eq!(error.reason_code(), ReasonCode::UnsupportedProtocolVersion);
}

#[test]
fn errors_map_to_the_reason_code_a_server_sends() {
    let cases = [
        (DecodeError::UnexpectedEnd, ReasonCode::MalformedPacket),
        (DecodeError::TrailingBytes, ReasonCode::MalformedPacket),
        (
            DecodeError::UnknownProperty(0x7F),
            ReasonCode::MalformedPacket,
        ),
        (
            DecodeError::DuplicateProperty(0x11),
            ReasonCode::ProtocolError,
        ),
        (
            DecodeError::PropertyNotAllowed(0x23),
            ReasonCode::ProtocolError,
        ),
        (
            DecodeError::InvalidPropertyValue(0x21),
            ReasonCode::ProtocolError,
        ),
        (DecodeError::ZeroPacketId, ReasonCode::ProtocolError),
        (
            DecodeError::NoLocalOnSharedSubscription,
            ReasonCode::ProtocolError,
        ),
        (DecodeError::EmptyTopic, ReasonCode::TopicNameInvalid),
        (DecodeError::PacketNotInVersion, ReasonCode::ProtocolError),
    ];
    for (error, reason) in cases {
        assert_eq!(error.reason_code(), reason, "{error:?}");
    }
}

#[test]
fn error_messages_name_the_spec_clause() {
    assert!(
        DecodeError::DupWithQoS0
            .to_string()
            .contains("[MQTT-3.3.1-2]")
    );
    assert!(
        DecodeError::MalformedVarInt
            .to_string()
            .contains("[MQTT-1.5.5-1]")
    );
    assert!(
        EncodeError::MissingPacketId
            .to_string()
            .contains("[MQTT-2.2.1-2]")
    );
}

fn publish(qos: QoS, payload: Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicName::try_from("t").expect("topic"),
        packet_id: None,
        properties: Properties::default(),
        payload,
    })
}

#[test]
fn encode_refuses_qos1_publish_without_packet_id_and_leaves_output_untouched() {
    let mut out = BytesMut::from(&b"keep"[..]);
    let result = encode(
        &publish(QoS::AtLeastOnce, Bytes::new()),
        ProtocolVersion::V4,
        &mut out,
    );
    assert_eq!(result, Err(EncodeError::MissingPacketId));
    assert_eq!(&out[..], b"keep");
}

#[test]
fn encode_refuses_auth_before_v5() {
    let auth = Packet::Auth(Auth {
        reason: ReasonCode::Success,
        properties: Properties::default(),
    });
    let mut out = BytesMut::new();
    assert_eq!(
        encode(&auth, ProtocolVersion::V4, &mut out),
        Err(EncodeError::PacketNotInVersion)
    );
}

#[test]
fn encode_refuses_binary_data_over_65535_bytes() {
    let mut auth = Auth {
        reason: ReasonCode::ContinueAuthentication,
        properties: Properties::default(),
    };
    auth.properties.authentication_data = Some(Bytes::from(vec![0; 65_536]));
    let mut out = BytesMut::new();
    assert_eq!(
        encode(&Packet::Auth(auth), ProtocolVersion::V5, &mut out),
        Err(EncodeError::BinaryTooLong(65_536))
    );
    assert!(out.is_empty());
}

#[test]
fn encode_refuses_packets_beyond_the_largest_remaining_length() {
    let huge = publish(QoS::AtMostOnce, Bytes::from(vec![0; 268_435_455]));
    let mut out = BytesMut::new();
    assert!(matches!(
        encode(&huge, ProtocolVersion::V4, &mut out),
        Err(EncodeError::PacketTooLarge(_))
    ));
}

#[test]
fn encoded_len_uses_multi_byte_remaining_lengths() {
    for len in [0, 120, 125, 126, 127, 16_380, 16_381, 70_000] {
        let packet = publish(QoS::AtMostOnce, Bytes::from(vec![7; len]));
        let bytes = encode_exact(&packet, ProtocolVersion::V4);
        assert_eq!(bytes.len(), encoded_len(&packet, ProtocolVersion::V4));
        assert_eq!(decode_one(&bytes, ProtocolVersion::V4), packet);
    }
}

#[test]
fn properties_not_allowed_in_a_packet_are_left_out_on_encode() {
    let mut disconnect = Disconnect::new(ReasonCode::ServerShuttingDown);
    disconnect.properties.topic_alias = Some(3);
    let bytes = encode_exact(&Packet::Disconnect(disconnect), ProtocolVersion::V5);
    assert_eq!(&bytes[..], [0xE0, 0x01, 0x8B]);
}
