//! The sans-IO MQTT codec for protocol levels 3 (3.1), 4 (3.1.1) and 5 (5.0): bytes in, typed
//! packets out, and back. Nothing here touches a socket, a clock or a runtime.
//!
//! - `types`: protocol version, QoS, packet ids, reason codes.
//! - `string`, `topic`: validated UTF-8 strings, topic names and filters, and topic matching.
//! - `properties`: MQTT 5.0 properties and which packet may carry which.
//! - `packet`: the typed packets.
//! - `error`: decode and encode errors, each mapped to a reason code.

pub mod error;
pub mod packet;
pub mod properties;
pub mod string;
pub mod topic;
pub mod types;

pub use error::{DecodeError, EncodeError};
pub use packet::*;
pub use properties::Properties;
pub use string::{MqttString, StringError};
pub use topic::{TopicError, TopicFilter, TopicName};
pub use types::{PacketId, ProtocolVersion, QoS, ReasonCode};

use bytes::BytesMut;

/// The largest remaining length a variable byte integer can express.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// Decodes one packet from the front of `buf`.
///
/// - `Ok(None)`: `buf` holds no complete packet yet; nothing is consumed.
/// - `Ok(Some(p))`: the packet's bytes are split off `buf`; `Bytes` fields of `p` share them.
/// - `Err(e)`: the stream is not valid MQTT; the connection must be closed.
///
/// `version` is the connection's protocol level (CONNECT carries its own and ignores it).
/// A packet whose whole size exceeds `max_packet_size` is refused from its fixed header alone.
pub fn decode(
    buf: &mut BytesMut,
    version: ProtocolVersion,
    max_packet_size: usize,
) -> Result<Option<Packet>, DecodeError> {
    todo!("codec issue: {buf:?} {version:?} {max_packet_size}")
}

/// Appends the encoding of `packet` for protocol `version` to `out`.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    todo!("codec issue: {packet:?} {version:?} {out:?}")
}

/// The exact number of bytes `encode` appends for `packet` in `version`.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    todo!("codec issue: {packet:?} {version:?}")
}
