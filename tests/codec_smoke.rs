//! Smoke test: one packet of each family decodes from known bytes and re-encodes to them.

use bytes::BytesMut;
use ringmq::protocol::{Packet, ProtocolVersion, decode, encode, encoded_len};

fn round_trip(bytes: &[u8], version: ProtocolVersion) -> Packet {
    let mut buf = BytesMut::from(bytes);
    let packet = decode(&mut buf, version, usize::MAX)
        .expect("valid fixture")
        .expect("complete fixture");
    assert!(buf.is_empty());
    let mut out = BytesMut::new();
    encode(&packet, version, &mut out).expect("encodable");
    assert_eq!(&out[..], bytes);
    assert_eq!(encoded_len(&packet, version), bytes.len());
    packet
}

#[test]
fn publish_qos1_v4_round_trips() {
    let p = round_trip(
        &[0x32, 0x08, 0x00, 0x03, b'a', b'/', b'b', 0x00, 0x01, b'x'],
        ProtocolVersion::V4,
    );
    assert!(matches!(p, Packet::Publish(_)));
}

#[test]
fn connect_v5_round_trips() {
    let bytes = [
        0x10, 0x11, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x3C, 0x03, 0x21, 0x00,
        0x0A, 0x00, 0x01, b'c',
    ];
    let p = round_trip(&bytes, ProtocolVersion::V4);
    assert!(matches!(p, Packet::Connect(_)));
}
