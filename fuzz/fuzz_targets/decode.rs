//! Fuzz target `decode`: decodes the input as a byte stream in every protocol version, and
//! checks that every packet decoded re-encodes to exactly `encoded_len` bytes that decode back
//! to the same packet, that `Ok(None)` never consumes input, and that `encode_publish` writes
//! a PUBLISH's same bytes and points at its packet id and Topic Alias.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringmq_protocol::{
    Packet, ProtocolVersion, Publish, decode, encode, encode_publish, encoded_len,
};

const VERSIONS: [ProtocolVersion; 3] = [
    ProtocolVersion::V3,
    ProtocolVersion::V4,
    ProtocolVersion::V5,
];

fn check_stream(data: &[u8], version: ProtocolVersion, max_packet_size: usize) {
    let mut buf = BytesMut::from(data);
    loop {
        let before = buf.len();
        match decode(&mut buf, version, max_packet_size) {
            Ok(Some(packet)) => {
                assert!(buf.len() < before);
                let mut out = BytesMut::new();
                encode(&packet, version, &mut out).expect("a decoded packet re-encodes");
                assert_eq!(out.len(), encoded_len(&packet, version));
                if let Packet::Publish(publish) = &packet {
                    check_layout(publish, version, &out);
                }
                let again = decode(&mut out, version, usize::MAX);
                assert_eq!(again, Ok(Some(packet)));
                assert!(out.is_empty());
            }
            Ok(None) => {
                assert_eq!(buf.len(), before, "Ok(None) consumed input");
                return;
            }
            Err(_) => return,
        }
    }
}

/// `encode_publish` without an alias writes `encoded` again, and its offsets hold the packet's
/// packet id and Topic Alias.
fn check_layout(publish: &Publish, version: ProtocolVersion, encoded: &[u8]) {
    let mut out = BytesMut::new();
    let layout = encode_publish(publish, version, None, &mut out).expect("encodes as encode did");
    assert_eq!(&out[..], encoded);
    let at = |offset: usize| u16::from_be_bytes([out[offset], out[offset + 1]]);
    assert_eq!(
        layout.packet_id.map(at),
        publish.packet_id.map(|id| id.get())
    );
    let alias = publish
        .properties
        .topic_alias
        .filter(|_| version == ProtocolVersion::V5);
    assert_eq!(layout.topic_alias.map(at), alias);
}

fuzz_target!(|data: &[u8]| {
    for version in VERSIONS {
        check_stream(data, version, usize::MAX);
    }
    if let Some((&limit, rest)) = data.split_first() {
        check_stream(rest, ProtocolVersion::V5, usize::from(limit));
    }
});
