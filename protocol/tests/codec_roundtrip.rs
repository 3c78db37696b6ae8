//! Property tests: every generated packet of every type and version encodes to exactly
//! `encoded_len` bytes, decodes back to itself, and is not decoded from any proper prefix.

pub mod common;

use bytes::BytesMut;
use common::*;
use proptest::prelude::*;
use ringmq_protocol::{Packet, ProtocolVersion, decode};

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
