//! `encode_publish` and `PublishLayout`: byte fixtures of PUBLISHes in 3.1.1 and 5.0 at each
//! QoS, with and without an outbound Topic Alias, short and with multi-byte lengths, each with
//! the offsets of its packet id and Topic Alias.

use super::publish;
use crate::fixture::*;
use crate::packet::{Packet, Publish};
use crate::{
    EncodeError, Properties, PropertyValues, ProtocolVersion, PublishLayout, QoS, TopicName,
    decode, encode, encode_publish, encoded_publish_len,
};
use bytes::{Bytes, BytesMut};

#[test]
fn publish_v5_with_an_outbound_topic_alias_puts_it_first_mqtt_3_3_2_11() {
    let bytes = [
        0x32, 0x10, // PUBLISH QoS 1, remaining length 16
        0x00, 0x01, b't', // topic
        0x00, 0x05, // packet identifier 5
        0x0A, // property length 10
        0x23, 0x00, 0x02, // topic alias 2, first (its offset is fixed)
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property k=v
    ];
    let mut p = publish(QoS::AtLeastOnce, "t", Some(5), b"");
    p.properties = Properties::from(PropertyValues {
        user_properties: vec![(s("k"), s("v"))],
        ..PropertyValues::default()
    });
    let mut out = BytesMut::from(&b"before"[..]);
    let layout = encode_publish(&p, V5, Some(2), &mut out).expect("encodes");
    assert_eq!(&out[6..], bytes);
    let expected_layout = PublishLayout {
        packet_id: Some(5),
        topic_alias: Some(9),
    };
    assert_eq!(
        layout, expected_layout,
        "offsets in the packet, not in `out`"
    );
    assert_eq!(encoded_publish_len(&p, V5, Some(2)), bytes.len());
    let mut expected = p.clone();
    expected.properties.topic_alias = Some(2);
    assert_decodes(&bytes, V5, &Packet::Publish(expected));
}

#[test]
fn publish_v5_with_an_outbound_topic_alias_and_an_empty_topic() {
    let mut p = publish(QoS::AtMostOnce, "t", None, b"x");
    p.topic = TopicName::empty();
    let mut out = BytesMut::new();
    let layout = encode_publish(&p, V5, Some(1), &mut out).expect("encodes");
    // The same bytes a client may send (publish_v5_empty_topic_with_topic_alias_...).
    assert_eq!(
        &out[..],
        [0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, b'x']
    );
    assert_eq!(layout.topic_alias, Some(6));
}

/// `p` encodes with `encode_publish` to exactly `bytes` with `layout`, the offsets counting
/// from the packet's first byte; without an alias those are `encode`'s bytes. Values patched
/// in at the offsets decode back, as a fan-out patching each subscriber's copy relies on.
fn assert_layout(
    p: &Publish,
    version: ProtocolVersion,
    alias: Option<u16>,
    bytes: &[u8],
    layout: PublishLayout,
) {
    let mut out = BytesMut::from(&b"xyz"[..]);
    let got = encode_publish(p, version, alias, &mut out).expect("encodes");
    assert_eq!(&out[3..], bytes, "{version:?} alias {alias:?}");
    assert_eq!(got, layout, "{version:?} alias {alias:?}");
    assert_eq!(encoded_publish_len(p, version, alias), bytes.len());
    if alias.is_none() {
        let mut plain = BytesMut::new();
        encode(&Packet::Publish(p.clone()), version, &mut plain).expect("encodes");
        assert_eq!(&plain[..], bytes);
    }
    let mut patched = BytesMut::from(bytes);
    if let Some(at) = layout.packet_id {
        patched[at..at + 2].copy_from_slice(&0xBEEF_u16.to_be_bytes());
    }
    if let Some(at) = layout.topic_alias {
        patched[at..at + 2].copy_from_slice(&0x0777_u16.to_be_bytes());
    }
    let Ok(Some(Packet::Publish(back))) = decode(&mut patched, version, usize::MAX) else {
        panic!("the patched packet decodes");
    };
    let expected_id = layout.packet_id.map(|_| pid(0xBEEF));
    assert_eq!(back.packet_id, expected_id);
    let expected_alias = layout.topic_alias.map(|_| 0x0777);
    assert_eq!(back.properties.topic_alias, expected_alias);
    assert_eq!(
        (back.topic, back.payload),
        (p.topic.clone(), p.payload.clone())
    );
}

/// `head` (fixed header to the end of the properties), then `payload`.
fn packet(head: &[u8], payload: &[u8]) -> Vec<u8> {
    [head, payload].concat()
}

const fn at(packet_id: Option<usize>, topic_alias: Option<usize>) -> PublishLayout {
    PublishLayout {
        packet_id,
        topic_alias,
    }
}

#[test]
fn layout_3_1_1_short_packets_by_qos() {
    let qos0 = publish(QoS::AtMostOnce, "a/b", None, b"hi");
    let qos0_bytes = [
        0x30, 0x07, // PUBLISH QoS 0, remaining length 7
        0x00, 0x03, b'a', b'/', b'b', // topic
        b'h', b'i', // payload
    ];
    assert_layout(&qos0, V4, None, &qos0_bytes, at(None, None));
    let qos1 = publish(QoS::AtLeastOnce, "a/b", Some(10), b"hi");
    let qos1_bytes = [
        0x32, 0x09, // PUBLISH QoS 1, remaining length 9
        0x00, 0x03, b'a', b'/', b'b', // topic
        0x00, 0x0A, // packet identifier at 7
        b'h', b'i', // payload
    ];
    assert_layout(&qos1, V4, None, &qos1_bytes, at(Some(7), None));
    // 3.1.1 has no properties: an alias asked for is not written and not reported.
    assert_layout(&qos1, V4, Some(3), &qos1_bytes, at(Some(7), None));
    let qos2 = publish(QoS::ExactlyOnce, "a/b", Some(10), b"hi");
    let mut qos2_bytes = qos1_bytes;
    qos2_bytes[0] = 0x34; // QoS 2
    assert_layout(&qos2, V3, Some(3), &qos2_bytes, at(Some(7), None));
}

#[test]
fn layout_3_1_1_long_packet_counts_the_two_byte_remaining_length() {
    let payload = [0x5A; 200];
    let p = Publish {
        payload: Bytes::copy_from_slice(&payload),
        ..publish(QoS::ExactlyOnce, "a/b", Some(10), b"")
    };
    let head = [
        0x34, 0xCF, 0x01, // PUBLISH QoS 2, remaining length 207 in two bytes
        0x00, 0x03, b'a', b'/', b'b', // topic
        0x00, 0x0A, // packet identifier at 8
    ];
    assert_layout(&p, V4, None, &packet(&head, &payload), at(Some(8), None));
}

#[test]
fn layout_5_0_short_packets_with_and_without_alias() {
    let qos0 = publish(QoS::AtMostOnce, "a/b", None, b"hi");
    let set = [
        0x30, 0x0B, // PUBLISH QoS 0, remaining length 11
        0x00, 0x03, b'a', b'/', b'b', // topic
        0x03, // property length 3
        0x23, 0x00, 0x07, // topic alias 7, value at 9
        b'h', b'i', // payload
    ];
    assert_layout(&qos0, V5, Some(7), &set, at(None, Some(9)));
    let used = Publish {
        topic: TopicName::empty(),
        ..publish(QoS::AtLeastOnce, "a/b", Some(10), b"hi")
    };
    let use_form = [
        0x32, 0x0A, // PUBLISH QoS 1, remaining length 10
        0x00, 0x00, // empty topic: the alias names it
        0x00, 0x0A, // packet identifier at 4
        0x03, // property length 3
        0x23, 0x00, 0x07, // topic alias 7, value at 8
        b'h', b'i', // payload
    ];
    assert_layout(&used, V5, Some(7), &use_form, at(Some(4), Some(8)));
    let qos2 = publish(QoS::ExactlyOnce, "a/b", Some(10), b"hi");
    let plain = [
        0x34, 0x0A, // PUBLISH QoS 2, remaining length 10
        0x00, 0x03, b'a', b'/', b'b', // topic
        0x00, 0x0A, // packet identifier at 7
        0x00, // no properties
        b'h', b'i', // payload
    ];
    assert_layout(&qos2, V5, None, &plain, at(Some(7), None));
}

#[test]
fn layout_5_0_reports_a_topic_alias_among_the_messages_own_properties() {
    let mut p = publish(QoS::AtLeastOnce, "a/b", Some(10), b"hi");
    p.properties = Properties::from(PropertyValues {
        payload_format_indicator: Some(1),
        topic_alias: Some(9),
        user_properties: vec![(s("k"), s("v"))],
        ..PropertyValues::default()
    });
    let bytes = [
        0x32, 0x16, // PUBLISH QoS 1, remaining length 22
        0x00, 0x03, b'a', b'/', b'b', // topic
        0x00, 0x0A, // packet identifier at 7
        0x0C, // property length 12, in identifier order:
        0x01, 0x01, // payload format indicator
        0x23, 0x00, 0x09, // topic alias 9, value at 13
        0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property
        b'h', b'i', // payload
    ];
    assert_layout(&p, V5, None, &bytes, at(Some(7), Some(13)));
    let mut out = BytesMut::from(&b"kept"[..]);
    let twice = encode_publish(&p, V5, Some(2), &mut out);
    assert_eq!(twice, Err(EncodeError::DuplicateTopicAlias));
    assert_eq!(&out[..], b"kept");
}

#[test]
fn layout_5_0_long_packets_count_multi_byte_lengths() {
    let payload = [0x5A; 200];
    let p = Publish {
        payload: Bytes::copy_from_slice(&payload),
        ..publish(QoS::AtLeastOnce, "a/b", Some(10), b"")
    };
    let head = [
        0x32, 0xD3, 0x01, // PUBLISH QoS 1, remaining length 211 in two bytes
        0x00, 0x03, b'a', b'/', b'b', // topic
        0x00, 0x0A, // packet identifier at 8
        0x03, // property length 3
        0x23, 0x00, 0x07, // topic alias 7, value at 12
    ];
    assert_layout(
        &p,
        V5,
        Some(7),
        &packet(&head, &payload),
        at(Some(8), Some(12)),
    );

    // A 3-byte remaining length, and a property list long enough for a 2-byte length of its
    // own: the alias still comes first in the list.
    let payload = vec![0x5A; 20_000];
    let value = "v".repeat(130);
    let mut p = Publish {
        payload: Bytes::from(payload.clone()),
        ..publish(QoS::ExactlyOnce, "a/b", Some(10), b"")
    };
    p.properties.user_properties.push((s("k"), s(&value)));
    let mut head = vec![
        0x34, 0xB4, 0x9D, 0x01, // PUBLISH QoS 2, remaining length 20,148 in three bytes
        0x00, 0x03, b'a', b'/', b'b', // topic
        0x00, 0x0A, // packet identifier at 9
        0x8B, 0x01, // property length 139 in two bytes
        0x23, 0x00, 0x07, // topic alias 7, value at 14
        0x26, 0x00, 0x01, b'k', 0x00, 0x82, // user property k=, a 130-byte value
    ];
    head.extend_from_slice(value.as_bytes());
    assert_layout(
        &p,
        V5,
        Some(7),
        &packet(&head, &payload),
        at(Some(9), Some(14)),
    );
}
