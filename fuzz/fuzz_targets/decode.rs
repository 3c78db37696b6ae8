//! Fuzz target `decode`: decodes the input as a byte stream in every protocol version, and
//! checks that every packet decoded re-encodes to exactly `encoded_len` bytes that decode back
//! to the same packet, and that `Ok(None)` never consumes input.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use ringmq_protocol::{ProtocolVersion, decode, encode, encoded_len};

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

fuzz_target!(|data: &[u8]| {
    for version in VERSIONS {
        check_stream(data, version, usize::MAX);
    }
    if let Some((&limit, rest)) = data.split_first() {
        check_stream(rest, ProtocolVersion::V5, usize::from(limit));
    }
});
