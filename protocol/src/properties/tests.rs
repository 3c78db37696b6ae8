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
