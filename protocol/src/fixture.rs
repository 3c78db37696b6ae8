//! Test support for the per-family byte fixture tables: decode/encode assertions and short
//! constructors for the validated types.

use super::{
    DecodeError, MqttString, Packet, PacketId, ProtocolVersion, TopicFilter, TopicName, decode,
    encode, encoded_len,
};
use bytes::{Bytes, BytesMut};

/// `bytes` decodes to `expected` in `version` and `expected` encodes back to exactly `bytes`.
pub fn assert_codec(bytes: &[u8], version: ProtocolVersion, expected: &Packet) {
    assert_decodes(bytes, version, expected);
    let mut out = BytesMut::new();
    encode(expected, version, &mut out).expect("fixture packet encodes");
    assert_eq!(&out[..], bytes, "encoding of {expected:?}");
    assert_eq!(encoded_len(expected, version), bytes.len());
}

/// `bytes` decodes to `expected` (for non-canonical encodings that re-encode differently).
pub fn assert_decodes(bytes: &[u8], version: ProtocolVersion, expected: &Packet) {
    let mut buf = BytesMut::from(bytes);
    let decoded = decode(&mut buf, version, usize::MAX);
    assert_eq!(
        decoded.as_ref(),
        Ok(&Some(expected.clone())),
        "decoding {bytes:02X?}"
    );
    assert!(buf.is_empty());
}

/// `bytes` is refused in `version` with `error`.
pub fn assert_refused(bytes: &[u8], version: ProtocolVersion, error: DecodeError) {
    let mut buf = BytesMut::from(bytes);
    assert_eq!(
        decode(&mut buf, version, usize::MAX),
        Err(error),
        "decoding {bytes:02X?}"
    );
}

pub fn s(v: &str) -> MqttString {
    MqttString::try_from(v).expect("valid string in fixture")
}

pub fn topic(v: &str) -> TopicName {
    TopicName::try_from(v).expect("valid topic in fixture")
}

pub fn filter(v: &str) -> TopicFilter {
    TopicFilter::try_from(v).expect("valid filter in fixture")
}

pub fn pid(id: u16) -> PacketId {
    PacketId::new(id).expect("non-zero packet id in fixture")
}

pub fn b(v: &'static [u8]) -> Bytes {
    Bytes::from_static(v)
}

pub use ProtocolVersion::{V3, V4, V5};
