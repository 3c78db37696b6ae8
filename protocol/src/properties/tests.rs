//! The `Properties` handle: no allocation until a property is set, equality by value, the
//! encoding of an empty list.

use super::super::fixture::*;
use super::super::{Packet, ProtocolVersion, decode};
use super::*;

fn decoded_properties(bytes: &[u8], version: ProtocolVersion) -> Properties {
    let mut buf = BytesMut::from(bytes);
    match decode(&mut buf, version, usize::MAX) {
        Ok(Some(Packet::Publish(publish))) => publish.properties,
        other => panic!("expected a PUBLISH, got {other:?}"),
    }
}

#[test]
fn properties_handle_is_one_pointer_and_packet_stays_small() {
    assert_eq!(size_of::<Properties>(), size_of::<usize>());
    let packet = size_of::<Packet>();
    eprintln!("size_of::<Packet>() = {packet}");
    assert!(packet <= 96, "Packet is {packet} bytes");
}

#[test]
fn publish_with_zero_property_length_does_not_allocate() {
    let properties = decoded_properties(&[0x30, 0x05, 0x00, 0x01, b'a', 0x00, b'x'], V5);
    assert!(properties.0.is_none());
    assert!(properties.is_empty());
}

#[test]
fn publish_before_v5_does_not_allocate() {
    let properties = decoded_properties(&[0x30, 0x04, 0x00, 0x01, b'a', b'x'], V4);
    assert!(properties.0.is_none());
}

#[test]
fn publish_with_a_property_reads_it_back() {
    let properties = decoded_properties(
        &[0x30, 0x08, 0x00, 0x01, b'a', 0x03, 0x23, 0x00, 0x07, b'x'],
        V5,
    );
    assert_eq!(properties.topic_alias, Some(7));
    assert!(!properties.is_empty());
}

#[test]
fn unset_properties_read_as_empty_without_allocating() {
    let properties = Properties::default();
    assert_eq!(properties.topic_alias, None);
    assert!(properties.user_properties.is_empty());
    assert!(properties.0.is_none());
}

#[test]
fn first_write_allocates_and_is_kept() {
    let mut properties = Properties::default();
    properties.user_properties.push((s("k"), s("v")));
    properties.topic_alias = Some(2);
    assert!(properties.0.is_some());
    assert_eq!(properties.user_properties, vec![(s("k"), s("v"))]);
    assert_eq!(properties.topic_alias, Some(2));
}

#[test]
fn an_emptied_box_equals_no_properties() {
    let mut properties = Properties::from(PropertyValues {
        topic_alias: Some(2),
        ..PropertyValues::default()
    });
    assert_ne!(properties, Properties::default());
    properties.topic_alias = None;
    assert_eq!(properties, Properties::default());
    assert_eq!(Properties::default(), properties);
    assert!(properties.is_empty());
}

#[test]
fn empty_values_convert_to_no_allocation() {
    assert!(Properties::from(PropertyValues::default()).0.is_none());
}

#[test]
fn unset_and_emptied_properties_encode_the_same_zero_length() {
    let mut emptied = Properties::from(PropertyValues {
        reason_string: Some(s("r")),
        ..PropertyValues::default()
    });
    emptied.reason_string = None;
    for properties in [Properties::default(), emptied] {
        let mut out = BytesMut::new();
        assert_eq!(
            properties.encode(PropertyContext::Publish, &mut out),
            Ok(())
        );
        assert_eq!(&out[..], &[0x00]);
        assert_eq!(properties.encoded_len(PropertyContext::Publish), 1);
    }
}

/// Every property set, with two Subscription Identifiers and two User Properties, each value
/// distinct so that a byte out of place shows.
fn every() -> PropertyValues {
    PropertyValues {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(0x0102_0304),
        content_type: Some(s("ct")),
        response_topic: Some(topic("r/t")),
        correlation_data: Some(b(b"cd")),
        subscription_identifiers: vec![5, 300],
        session_expiry_interval: Some(0x1112_1314),
        assigned_client_identifier: Some(s("aci")),
        server_keep_alive: Some(0x1313),
        authentication_method: Some(s("am")),
        authentication_data: Some(b(b"ad")),
        request_problem_information: Some(0),
        will_delay_interval: Some(0x1818_1818),
        request_response_information: Some(1),
        response_information: Some(s("ri")),
        server_reference: Some(s("sr")),
        reason_string: Some(s("rs")),
        receive_maximum: Some(0x2121),
        topic_alias_maximum: Some(0x2222),
        topic_alias: Some(0x2323),
        maximum_qos: Some(1),
        retain_available: Some(0),
        user_properties: vec![(s("k1"), s("v1")), (s("k2"), s("v2"))],
        maximum_packet_size: Some(0x2727_2727),
        wildcard_subscription_available: Some(1),
        subscription_identifier_available: Some(0),
        shared_subscription_available: Some(1),
    }
}

/// The contexts each identifier is allowed in (bit `id` of each mask) and the encoding of
/// [`every`] property in each context, taken from the hand-written lists the property table
/// replaced: the table must keep them byte for byte.
const GOLDEN: [(PropertyContext, u64, &[u8]); 11] = [
    (
        PropertyContext::Connect,
        0x000000c602e20000,
        &[
            0x30, 0x11, 0x11, 0x12, 0x13, 0x14, 0x15, 0x00, 0x02, 0x61, 0x6D, 0x16, 0x00, 0x02,
            0x61, 0x64, 0x17, 0x00, 0x19, 0x01, 0x21, 0x21, 0x21, 0x22, 0x22, 0x22, 0x26, 0x00,
            0x02, 0x6B, 0x31, 0x00, 0x02, 0x76, 0x31, 0x26, 0x00, 0x02, 0x6B, 0x32, 0x00, 0x02,
            0x76, 0x32, 0x27, 0x27, 0x27, 0x27, 0x27,
        ],
    ),
    (
        PropertyContext::Will,
        0x000000400100030e,
        &[
            0x2E, 0x01, 0x01, 0x02, 0x01, 0x02, 0x03, 0x04, 0x03, 0x00, 0x02, 0x63, 0x74, 0x08,
            0x00, 0x03, 0x72, 0x2F, 0x74, 0x09, 0x00, 0x02, 0x63, 0x64, 0x18, 0x18, 0x18, 0x18,
            0x18, 0x26, 0x00, 0x02, 0x6B, 0x31, 0x00, 0x02, 0x76, 0x31, 0x26, 0x00, 0x02, 0x6B,
            0x32, 0x00, 0x02, 0x76, 0x32,
        ],
    ),
    (
        PropertyContext::ConnAck,
        0x000007f6946e0000,
        &[
            0x4E, 0x11, 0x11, 0x12, 0x13, 0x14, 0x12, 0x00, 0x03, 0x61, 0x63, 0x69, 0x13, 0x13,
            0x13, 0x15, 0x00, 0x02, 0x61, 0x6D, 0x16, 0x00, 0x02, 0x61, 0x64, 0x1A, 0x00, 0x02,
            0x72, 0x69, 0x1C, 0x00, 0x02, 0x73, 0x72, 0x1F, 0x00, 0x02, 0x72, 0x73, 0x21, 0x21,
            0x21, 0x22, 0x22, 0x22, 0x24, 0x01, 0x25, 0x00, 0x26, 0x00, 0x02, 0x6B, 0x31, 0x00,
            0x02, 0x76, 0x31, 0x26, 0x00, 0x02, 0x6B, 0x32, 0x00, 0x02, 0x76, 0x32, 0x27, 0x27,
            0x27, 0x27, 0x27, 0x28, 0x01, 0x29, 0x00, 0x2A, 0x01,
        ],
    ),
    (
        PropertyContext::Publish,
        0x0000004800000b0e,
        &[
            0x31, 0x01, 0x01, 0x02, 0x01, 0x02, 0x03, 0x04, 0x03, 0x00, 0x02, 0x63, 0x74, 0x08,
            0x00, 0x03, 0x72, 0x2F, 0x74, 0x09, 0x00, 0x02, 0x63, 0x64, 0x0B, 0x05, 0x0B, 0xAC,
            0x02, 0x23, 0x23, 0x23, 0x26, 0x00, 0x02, 0x6B, 0x31, 0x00, 0x02, 0x76, 0x31, 0x26,
            0x00, 0x02, 0x6B, 0x32, 0x00, 0x02, 0x76, 0x32,
        ],
    ),
    (
        PropertyContext::PubResp,
        0x0000004080000000,
        &[
            0x17, 0x1F, 0x00, 0x02, 0x72, 0x73, 0x26, 0x00, 0x02, 0x6B, 0x31, 0x00, 0x02, 0x76,
            0x31, 0x26, 0x00, 0x02, 0x6B, 0x32, 0x00, 0x02, 0x76, 0x32,
        ],
    ),
    (
        PropertyContext::Subscribe,
        0x0000004000000800,
        &[
            0x17, 0x0B, 0x05, 0x0B, 0xAC, 0x02, 0x26, 0x00, 0x02, 0x6B, 0x31, 0x00, 0x02, 0x76,
            0x31, 0x26, 0x00, 0x02, 0x6B, 0x32, 0x00, 0x02, 0x76, 0x32,
        ],
    ),
    (
        PropertyContext::SubAck,
        0x0000004080000000,
        &[
            0x17, 0x1F, 0x00, 0x02, 0x72, 0x73, 0x26, 0x00, 0x02, 0x6B, 0x31, 0x00, 0x02, 0x76,
            0x31, 0x26, 0x00, 0x02, 0x6B, 0x32, 0x00, 0x02, 0x76, 0x32,
        ],
    ),
    (
        PropertyContext::Unsubscribe,
        0x0000004000000000,
        &[
            0x12, 0x26, 0x00, 0x02, 0x6B, 0x31, 0x00, 0x02, 0x76, 0x31, 0x26, 0x00, 0x02, 0x6B,
            0x32, 0x00, 0x02, 0x76, 0x32,
        ],
    ),
    (
        PropertyContext::UnsubAck,
        0x0000004080000000,
        &[
            0x17, 0x1F, 0x00, 0x02, 0x72, 0x73, 0x26, 0x00, 0x02, 0x6B, 0x31, 0x00, 0x02, 0x76,
            0x31, 0x26, 0x00, 0x02, 0x6B, 0x32, 0x00, 0x02, 0x76, 0x32,
        ],
    ),
    (
        PropertyContext::Disconnect,
        0x0000004090020000,
        &[
            0x21, 0x11, 0x11, 0x12, 0x13, 0x14, 0x1C, 0x00, 0x02, 0x73, 0x72, 0x1F, 0x00, 0x02,
            0x72, 0x73, 0x26, 0x00, 0x02, 0x6B, 0x31, 0x00, 0x02, 0x76, 0x31, 0x26, 0x00, 0x02,
            0x6B, 0x32, 0x00, 0x02, 0x76, 0x32,
        ],
    ),
    (
        PropertyContext::Auth,
        0x0000004080600000,
        &[
            0x21, 0x15, 0x00, 0x02, 0x61, 0x6D, 0x16, 0x00, 0x02, 0x61, 0x64, 0x1F, 0x00, 0x02,
            0x72, 0x73, 0x26, 0x00, 0x02, 0x6B, 0x31, 0x00, 0x02, 0x76, 0x31, 0x26, 0x00, 0x02,
            0x6B, 0x32, 0x00, 0x02, 0x76, 0x32,
        ],
    ),
];

/// Every identifier the spec defines (bit `id`).
const KNOWN_IDS: u64 = 0x000007fe97ee0b0e;

#[test]
fn the_table_keeps_the_allowed_contexts_and_encodings_of_section_2_2_2_2() {
    for id in 0..=u8::MAX {
        let known = id < 64 && KNOWN_IDS & 1 << id != 0;
        assert_eq!(
            PropertyContext::Connect.allows(id).is_some(),
            known,
            "id {id:#04x}"
        );
    }
    let values = Properties::from(every());
    for (ctx, allowed, bytes) in GOLDEN {
        for id in 0..64u8 {
            let expected = (KNOWN_IDS & 1 << id != 0).then_some(allowed & 1 << id != 0);
            assert_eq!(ctx.allows(id), expected, "{ctx:?} id {id:#04x}");
        }
        let mut out = BytesMut::new();
        assert_eq!(values.encode(ctx, &mut out), Ok(()));
        assert_eq!(&out[..], bytes, "{ctx:?}");
        assert_eq!(values.encoded_len(ctx), bytes.len(), "{ctx:?}");
        let mut reader = Reader::new(out.freeze(), 0);
        let decoded = Properties::decode(&mut reader, ctx);
        if ctx == PropertyContext::Subscribe {
            // One Subscription Identifier at most outside PUBLISH [MQTT-3.8.2.1.2].
            assert_eq!(decoded, Err(DecodeError::DuplicateProperty(0x0B)));
            continue;
        }
        let mut again = BytesMut::new();
        let decoded = decoded.expect("decodes in its own context");
        assert_eq!(decoded.encode(ctx, &mut again), Ok(()));
        assert_eq!(&again[..], bytes, "{ctx:?} round trip");
    }
}
