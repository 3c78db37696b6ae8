//! Property tests: every generated packet of every type and version encodes to exactly
//! `encoded_len` bytes, decodes back to itself, and is not decoded from any proper prefix; and
//! a PUBLISH's layout points at its packet id and Topic Alias.

pub mod common;

use bytes::BytesMut;
use common::*;
use proptest::prelude::*;
use ringmq_protocol::{
    Packet, PacketId, ProtocolVersion, PublishLayout, decode, encode_publish, encoded_publish_len,
};

fn check_round_trip(packet: &Packet, version: ProtocolVersion, cut: prop::sample::Index) {
    let bytes = encode_exact(packet, version);
    assert_eq!(&decode_one(&bytes, version), packet);
    let cut = cut.index(bytes.len());
    let mut partial = BytesMut::from(&bytes[..cut]);
    assert_eq!(
        decode(&mut partial, version, usize::MAX),
        Ok(None),
        "prefix of {cut} bytes"
    );
    assert_eq!(partial.len(), cut, "Ok(None) consumed bytes");
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 2000,
        ..ProptestConfig::default()
    }
}

macro_rules! round_trip_tests {
    ($($name:ident: $strategy:ident,)*) => {
        proptest! {
            #![proptest_config(config())]
            $(
                #[test]
                fn $name(
                    (version, packet) in in_any_version($strategy),
                    cut in any::<prop::sample::Index>(),
                ) {
                    check_round_trip(&packet, version, cut);
                }
            )*
        }
    };
}

round_trip_tests! {
    connect_round_trips: connect,
    connack_round_trips: connack,
    publish_round_trips: publish,
    pub_resp_round_trips: pub_resp,
    subscribe_round_trips: subscribe,
    suback_round_trips: suback,
    unsubscribe_round_trips: unsubscribe,
    unsuback_round_trips: unsuback,
    control_round_trips: control,
}

fn packets_in_any_version() -> impl Strategy<Value = (ProtocolVersion, Vec<Packet>)> {
    prop::sample::select(&VERSIONS[..]).prop_flat_map(|version| {
        prop::collection::vec(packet(version), 1..5).prop_map(move |ps| (version, ps))
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn back_to_back_packets_decode_in_order((version, packets) in packets_in_any_version()) {
        let mut stream = BytesMut::new();
        for packet in &packets {
            stream.extend_from_slice(&encode_exact(packet, version));
        }
        for packet in packets {
            prop_assert_eq!(decode(&mut stream, version, usize::MAX), Ok(Some(packet)));
        }
        prop_assert!(stream.is_empty());
    }
}

/// The packet id and Topic Alias at `layout`'s offsets in `bytes`.
fn fields_at(bytes: &[u8], layout: PublishLayout) -> (Option<u16>, Option<u16>) {
    let at = |offset: usize| u16::from_be_bytes([bytes[offset], bytes[offset + 1]]);
    (layout.packet_id.map(at), layout.topic_alias.map(at))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn publish_layouts_point_at_the_packet_id_and_the_topic_alias(
        (version, packet) in in_any_version(publish),
        alias in proptest::option::of(1u16..),
        patch in (1u16.., 1u16..),
    ) {
        let Packet::Publish(mut p) = packet else {
            panic!("the publish strategy makes PUBLISHes");
        };
        if alias.is_some() {
            p.properties.topic_alias = None;
        }
        let mut out = BytesMut::new();
        let layout = encode_publish(&p, version, alias, &mut out).expect("encodes");
        prop_assert_eq!(out.len(), encoded_publish_len(&p, version, alias));
        if alias.is_none() {
            prop_assert_eq!(&out[..], &encode_exact(&Packet::Publish(p.clone()), version)[..]);
        }
        let back = match decode_one(&out, version) {
            Packet::Publish(back) => back,
            other => panic!("decoded {other:?}"),
        };
        let fields = (back.packet_id.map(PacketId::get), back.properties.topic_alias);
        prop_assert_eq!(fields_at(&out, layout), fields);
        if version == ProtocolVersion::V5 && alias.is_some() {
            prop_assert_eq!(back.properties.topic_alias, alias);
        }
        let mut patched = out.clone();
        if let Some(at) = layout.packet_id {
            patched[at..at + 2].copy_from_slice(&patch.0.to_be_bytes());
        }
        if let Some(at) = layout.topic_alias {
            patched[at..at + 2].copy_from_slice(&patch.1.to_be_bytes());
        }
        let again = match decode_one(&patched, version) {
            Packet::Publish(again) => again,
            other => panic!("decoded {other:?}"),
        };
        let expected = (
            layout.packet_id.map(|_| patch.0),
            layout.topic_alias.map(|_| patch.1),
        );
        prop_assert_eq!((again.packet_id.map(PacketId::get), again.properties.topic_alias), expected);
        prop_assert_eq!((again.topic, again.payload), (back.topic, back.payload));
    }
}
