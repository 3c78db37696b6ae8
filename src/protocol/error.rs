//! Codec errors. Each decode error maps to the reason code a server answers with
//! (MQTT 5.0 section 4.13); the message names the spec clause it enforces.

use super::string::StringError;
use super::topic::TopicError;
use super::types::ReasonCode;

/// Why a byte stream is not a valid MQTT packet. A partial packet is not an error: `decode`
/// returns `Ok(None)` for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// The remaining length exceeds the negotiated maximum packet size; refused from the fixed
    /// header alone [MQTT-3.2.2-15] / 0x95.
    PacketTooLarge {
        size: usize,
        max: usize,
    },
    /// A variable byte integer longer than 4 bytes [MQTT-1.5.5-1].
    MalformedVarInt,
    /// Packet type 0 (reserved).
    ReservedPacketType,
    /// The fixed header's flag bits differ from the values the spec reserves [MQTT-2.1.3-1].
    ReservedFlags {
        packet_type: u8,
        flags: u8,
    },
    /// QoS 3 [MQTT-3.3.1-4].
    InvalidQoS,
    /// The remaining length ends before the fields it must hold.
    UnexpectedEnd,
    /// Bytes are left over after the last field.
    TrailingBytes,
    String(StringError),
    Topic(TopicError),
    /// A packet identifier of 0 where one is required [MQTT-2.2.1-3].
    ZeroPacketId,
    /// CONNECT's protocol name is not "MQTT" (or "MQIsdp" for 3.1) [MQTT-3.1.2-1].
    InvalidProtocolName,
    /// CONNECT's protocol level is not 3, 4 or 5 [MQTT-3.1.2-2].
    UnsupportedProtocolVersion(u8),
    /// CONNECT flag combination the spec forbids (reserved bit, will flags) [MQTT-3.1.2-3].
    InvalidConnectFlags,
    /// A property identifier the spec does not define.
    UnknownProperty(u8),
    /// A property that appears twice [MQTT-2.2.2-2 / 3.x.2-y].
    DuplicateProperty(u8),
    /// A property that this packet may not carry.
    PropertyNotAllowed(u8),
    /// A property value out of range (e.g. Receive Maximum 0).
    InvalidPropertyValue(u8),
    /// A reason code this packet may not carry.
    InvalidReasonCode(u8),
    /// SUBSCRIBE options byte with reserved bits set or Retain Handling 3 [MQTT-3.8.3-5].
    InvalidSubscriptionOptions,
    /// SUBSCRIBE or UNSUBSCRIBE with no topic filter [MQTT-3.8.3-3] [MQTT-3.10.3-2].
    NoTopicFilters,
    /// A PUBLISH with a zero-length topic and no Topic Alias, or any zero-length topic in 3.1.1.
    EmptyTopic,
    /// A packet that does not exist in the connection's protocol version (AUTH before 5.0).
    PacketNotInVersion,
}

impl DecodeError {
    /// The reason code a server sends (in CONNACK or DISCONNECT) before closing.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            Self::UnsupportedProtocolVersion(_) => ReasonCode::UnsupportedProtocolVersion,
            Self::Topic(_) | Self::EmptyTopic => ReasonCode::TopicNameInvalid,
            Self::DuplicateProperty(_)
            | Self::PropertyNotAllowed(_)
            | Self::InvalidPropertyValue(_)
            | Self::ZeroPacketId => ReasonCode::ProtocolError,
            _ => ReasonCode::MalformedPacket,
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for DecodeError {}

impl From<StringError> for DecodeError {
    fn from(e: StringError) -> Self {
        Self::String(e)
    }
}

impl From<TopicError> for DecodeError {
    fn from(e: TopicError) -> Self {
        Self::Topic(e)
    }
}

/// Why a packet cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The packet would exceed the largest remaining length MQTT can express (268,435,455).
    PacketTooLarge(usize),
    /// The packet does not exist in the target protocol version (AUTH before 5.0).
    PacketNotInVersion,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}

impl std::error::Error for EncodeError {}
