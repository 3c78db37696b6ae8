//! ringmq-protocol: the sans-IO MQTT codec for protocol levels 3 (3.1), 4 (3.1.1) and 5 (5.0):
//! bytes in, typed packets out, and back. Nothing here touches a socket, a clock or a runtime.
//!
//! - `types`: protocol version, QoS, packet ids, reason codes.
//! - `string`, `topic`: validated UTF-8 strings, topic names and filters, and topic matching.
//! - `properties`: MQTT 5.0 properties and which packet may carry which.
//! - `packet`: the typed packets.
//! - `error`: decode and encode errors, each mapped to a reason code.
//! - `fit`: the client's Maximum Packet Size and Request Problem Information, applied to an
//!   outgoing packet.
//! - `wire`: integers, variable byte integers, strings and binary data on the wire.
//! - `reasons`: which reason codes each packet may carry, and the 3.1.1 return code mapping.
//! - `connect`, `connack`, `publish`, `subscribe`, `control`: decode and encode, one file per
//!   family.
//!   `encode_publish` also says where a PUBLISH's packet id and Topic Alias sit
//!   ([`PublishLayout`]), so that encode-once fan-out can patch them per subscriber.
//!
//! `decode` parses the fixed header, refuses a too-large packet before its body arrives, splits
//! the frame off the read buffer and parses it from a `Bytes`, so PUBLISH payloads share the
//! read buffer instead of being copied (short topics are copied inline, see `TopicName`).

mod connack;
mod connect;
mod control;
pub mod error;
pub mod fit;
#[cfg(test)]
mod fixture;
pub mod packet;
pub mod properties;
mod publish;
pub mod reasons;
pub mod string;
mod subscribe;
pub mod topic;
pub mod types;
mod wire;

pub use connect::BRIDGE_LEVEL_BIT;
pub use error::{DecodeError, EncodeError};
pub use fit::{PeerLimits, TooLarge, fit};
pub use packet::*;
pub use properties::{Properties, PropertyContext, PropertyValues};
pub use publish::{PublishLayout, encode_publish, encoded_publish_len};
pub use string::{MqttString, StringError};
pub use topic::{TopicError, TopicFilter, TopicName};
pub use types::{PacketId, ProtocolVersion, QoS, ReasonCode};

use bytes::{BufMut, BytesMut};
use wire::Reader;

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
    let Some(header) = FixedHeader::parse(buf, version)? else {
        return Ok(None);
    };
    let size = header.size();
    if size > max_packet_size {
        return Err(DecodeError::PacketTooLarge {
            size,
            max: max_packet_size,
        });
    }
    if buf.len() < size {
        return Ok(None);
    }
    let reader = Reader::new(buf.split_to(size).freeze(), header.header_len);
    if header.packet_type == PacketType::Publish as u8 {
        return publish::decode_publish(reader, header.flags, version);
    }
    decode_frame(header, reader, version).map(Some)
}

/// The whole size of the packet at the front of `buf` as its fixed header announces it:
/// `None` until the fixed header is complete (or when it is not valid). Nothing else is
/// checked; `decode` does that. A reader uses it to make room for a large packet at once.
pub fn announced_size(buf: &[u8]) -> Option<usize> {
    let rest = buf.get(1..)?;
    let (remaining_len, len_bytes) = wire::parse_var_int(rest).ok()??;
    Some(1 + len_bytes + remaining_len)
}

/// The first byte and remaining length of a packet, checked before its body is buffered.
#[derive(Debug, Clone, Copy)]
struct FixedHeader {
    packet_type: u8,
    flags: u8,
    header_len: usize,
    remaining_len: usize,
}

impl FixedHeader {
    /// `Ok(None)` while the fixed header itself is incomplete.
    #[inline]
    fn parse(buf: &[u8], version: ProtocolVersion) -> Result<Option<Self>, DecodeError> {
        let Some(&first) = buf.first() else {
            return Ok(None);
        };
        let packet_type = first >> 4;
        let flags = first & 0x0F;
        check_type_and_flags(packet_type, flags, version)?;
        let Some((remaining_len, len_bytes)) = wire::parse_var_int(&buf[1..])? else {
            return Ok(None);
        };
        Ok(Some(Self {
            packet_type,
            flags,
            header_len: 1 + len_bytes,
            remaining_len,
        }))
    }

    fn size(&self) -> usize {
        self.header_len + self.remaining_len
    }
}

/// The fixed-header flags are fixed for every packet but PUBLISH [MQTT-2.1.3-1]. MQTT 3.1 set
/// DUP on retransmitted PUBREL, SUBSCRIBE and UNSUBSCRIBE, so that bit is tolerated there.
#[inline]
fn check_type_and_flags(
    packet_type: u8,
    flags: u8,
    version: ProtocolVersion,
) -> Result<(), DecodeError> {
    let expected = match packet_type {
        0 => return Err(DecodeError::ReservedPacketType),
        3 => return publish::check_publish_flags(flags).map(|_| ()),
        15 if version != ProtocolVersion::V5 => return Err(DecodeError::PacketNotInVersion),
        6 | 8 | 10 => 0b0010,
        _ => 0,
    };
    let tolerated = match (version, packet_type) {
        (ProtocolVersion::V3, 6 | 8 | 10) => 0b1000,
        _ => 0,
    };
    if flags & !tolerated != expected {
        return Err(DecodeError::ReservedFlags { packet_type, flags });
    }
    Ok(())
}

/// Every packet but PUBLISH; kept out of line so `decode` stays a small frame for PUBLISH.
#[inline(never)]
fn decode_frame(
    header: FixedHeader,
    mut reader: Reader,
    version: ProtocolVersion,
) -> Result<Packet, DecodeError> {
    let r = &mut reader;
    Ok(match header.packet_type {
        1 => Packet::Connect(Box::new(connect::decode_connect(r)?)),
        2 => Packet::ConnAck(connack::decode_connack(r, version)?),
        4 => Packet::PubAck(publish::decode_pub_resp(r, 4, version)?),
        5 => Packet::PubRec(publish::decode_pub_resp(r, 5, version)?),
        6 => Packet::PubRel(publish::decode_pub_resp(r, 6, version)?),
        7 => Packet::PubComp(publish::decode_pub_resp(r, 7, version)?),
        8 => Packet::Subscribe(subscribe::decode_subscribe(r, version)?),
        9 => Packet::SubAck(subscribe::decode_suback(r, version)?),
        10 => Packet::Unsubscribe(subscribe::decode_unsubscribe(r, version)?),
        11 => Packet::UnsubAck(subscribe::decode_unsuback(r, version)?),
        12 => {
            control::decode_empty(r)?;
            Packet::PingReq
        }
        13 => {
            control::decode_empty(r)?;
            Packet::PingResp
        }
        14 => Packet::Disconnect(control::decode_disconnect(r, version)?),
        15 => Packet::Auth(control::decode_auth(r)?),
        // Type 0 never passes the fixed-header check and PUBLISH (3) is decoded before this.
        _ => return Err(DecodeError::ReservedPacketType),
    })
}

impl Packet {
    #[inline]
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::Connect(_) => PacketType::Connect,
            Self::ConnAck(_) => PacketType::ConnAck,
            Self::Publish(_) => PacketType::Publish,
            Self::PubAck(_) => PacketType::PubAck,
            Self::PubRec(_) => PacketType::PubRec,
            Self::PubRel(_) => PacketType::PubRel,
            Self::PubComp(_) => PacketType::PubComp,
            Self::Subscribe(_) => PacketType::Subscribe,
            Self::SubAck(_) => PacketType::SubAck,
            Self::Unsubscribe(_) => PacketType::Unsubscribe,
            Self::UnsubAck(_) => PacketType::UnsubAck,
            Self::PingReq => PacketType::PingReq,
            Self::PingResp => PacketType::PingResp,
            Self::Disconnect(_) => PacketType::Disconnect,
            Self::Auth(_) => PacketType::Auth,
        }
    }

    #[inline]
    fn first_byte(&self) -> u8 {
        let flags = match self {
            Self::Publish(p) => p.flags(),
            Self::PubRel(_) | Self::Subscribe(_) | Self::Unsubscribe(_) => 0b0010,
            _ => 0,
        };
        (self.packet_type() as u8) << 4 | flags
    }

    /// The remaining length in `version` (CONNECT uses its own version).
    #[inline]
    fn body_len(&self, version: ProtocolVersion) -> usize {
        match self {
            Self::Connect(c) => c.body_len(),
            Self::ConnAck(c) => c.body_len(version),
            Self::Publish(p) => p.body_len(version),
            Self::PubAck(r) | Self::PubRec(r) | Self::PubRel(r) | Self::PubComp(r) => {
                r.body_len(version)
            }
            Self::Subscribe(s) => s.body_len(version),
            Self::SubAck(s) => s.body_len(version),
            Self::Unsubscribe(u) => u.body_len(version),
            Self::UnsubAck(u) => u.body_len(version),
            Self::PingReq | Self::PingResp => 0,
            Self::Disconnect(d) => d.body_len(version),
            Self::Auth(a) => a.body_len(),
        }
    }

    #[inline]
    fn encode_body(&self, version: ProtocolVersion, out: &mut BytesMut) -> Result<(), EncodeError> {
        match self {
            Self::Connect(c) => c.encode_body(out),
            Self::ConnAck(c) => c.encode_body(version, out),
            Self::Publish(p) => p.encode_body(version, out),
            Self::PubAck(r) | Self::PubRec(r) | Self::PubRel(r) | Self::PubComp(r) => {
                r.encode_body(version, out)
            }
            Self::Subscribe(s) => s.encode_body(version, out),
            Self::SubAck(s) => s.encode_body(version, out),
            Self::Unsubscribe(u) => u.encode_body(version, out),
            Self::UnsubAck(u) => u.encode_body(version, out),
            Self::PingReq | Self::PingResp => Ok(()),
            Self::Disconnect(d) => d.encode_body(version, out),
            Self::Auth(a) => a.encode_body(out),
        }
    }
}

/// Appends the encoding of `packet` for protocol `version` to `out`. On error `out` is left as
/// it was. CONNECT is encoded in its own `version`.
pub fn encode(
    packet: &Packet,
    version: ProtocolVersion,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    if matches!(packet, Packet::Auth(_)) && version != ProtocolVersion::V5 {
        return Err(EncodeError::PacketNotInVersion);
    }
    let body_len = packet.body_len(version);
    if body_len > MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge(body_len));
    }
    let start = out.len();
    out.reserve(1 + wire::var_int_len(body_len) + body_len);
    out.put_u8(packet.first_byte());
    let result = wire::put_var_int(out, body_len).and_then(|()| packet.encode_body(version, out));
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The exact number of bytes `encode` appends for `packet` in `version`.
pub fn encoded_len(packet: &Packet, version: ProtocolVersion) -> usize {
    let body_len = packet.body_len(version);
    1 + wire::var_int_len(body_len) + body_len
}
