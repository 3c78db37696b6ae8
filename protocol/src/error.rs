//! Codec errors. Each decode error maps to the reason code a server answers with
//! (MQTT 5.0 section 4.13); the message names the spec clause it enforces.

use super::properties::id;
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
    /// A QoS 0 PUBLISH with the DUP flag set [MQTT-3.3.1-2].
    DupWithQoS0,
    /// A SUBSCRIBE or UNSUBSCRIBE topic filter that breaks the wildcard or `$share` rules
    /// [MQTT-4.7.1-2] [MQTT-4.7.1-3] [MQTT-4.8.2-2].
    TopicFilter(TopicError),
    /// No Local set on a shared subscription [MQTT-3.8.3-4].
    NoLocalOnSharedSubscription,
    /// CONNACK acknowledge flags with reserved bits set [MQTT-3.2.2-1].
    InvalidConnAckFlags,
}

impl DecodeError {
    /// The reason code a server sends (in CONNACK or DISCONNECT) before closing.
    pub fn reason_code(&self) -> ReasonCode {
        match self {
            Self::PacketTooLarge { .. } => ReasonCode::PacketTooLarge,
            Self::UnsupportedProtocolVersion(_) | Self::InvalidProtocolName => {
                ReasonCode::UnsupportedProtocolVersion
            }
            // Ill-formed UTF-8 is malformed wherever it appears [MQTT-1.5.4-1].
            Self::Topic(TopicError::String(_)) | Self::TopicFilter(TopicError::String(_)) => {
                ReasonCode::MalformedPacket
            }
            Self::Topic(_) | Self::EmptyTopic => ReasonCode::TopicNameInvalid,
            Self::TopicFilter(_) => ReasonCode::TopicFilterInvalid,
            // 5.0 section 3.3.4: "A Topic Alias value of 0 or greater than the Maximum Topic
            // Alias is a Protocol Error, the receiver uses DISCONNECT with Reason Code of 0x94
            // (Topic Alias invalid)" [MQTT-3.3.2-8]. Topic Alias (0x23) is a PUBLISH property.
            Self::InvalidPropertyValue(id::TOPIC_ALIAS) => ReasonCode::TopicAliasInvalid,
            Self::DuplicateProperty(_)
            | Self::PropertyNotAllowed(_)
            | Self::InvalidPropertyValue(_)
            | Self::ZeroPacketId
            | Self::PacketNotInVersion
            | Self::NoLocalOnSharedSubscription => ReasonCode::ProtocolError,
            Self::MalformedVarInt
            | Self::ReservedPacketType
            | Self::ReservedFlags { .. }
            | Self::InvalidQoS
            | Self::UnexpectedEnd
            | Self::TrailingBytes
            | Self::String(_)
            | Self::InvalidConnectFlags
            | Self::UnknownProperty(_)
            | Self::InvalidReasonCode(_)
            | Self::InvalidSubscriptionOptions
            | Self::NoTopicFilters
            | Self::DupWithQoS0
            | Self::InvalidConnAckFlags => ReasonCode::MalformedPacket,
        }
    }
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PacketTooLarge { size, max } => write!(
                f,
                "[MQTT-3.2.2-15] packet of {size} bytes exceeds the maximum packet size {max}"
            ),
            Self::MalformedVarInt => {
                f.write_str("[MQTT-1.5.5-1] variable byte integer longer than 4 bytes")
            }
            Self::ReservedPacketType => f.write_str("[MQTT-2.1.2] reserved packet type 0"),
            Self::ReservedFlags { packet_type, flags } => write!(
                f,
                "[MQTT-2.1.3-1] packet type {packet_type} with reserved flags {flags:#06b}"
            ),
            Self::InvalidQoS => f.write_str("[MQTT-3.3.1-4] QoS 3"),
            Self::UnexpectedEnd => {
                f.write_str("[MQTT-2.1.4] remaining length ends inside a field")
            }
            Self::TrailingBytes => {
                f.write_str("[MQTT-2.1.4] bytes left over inside the remaining length")
            }
            Self::String(e) => write!(f, "{e}"),
            Self::Topic(e) => write!(f, "topic name: {e}"),
            Self::ZeroPacketId => f.write_str("[MQTT-2.2.1-3] packet identifier 0"),
            Self::InvalidProtocolName => {
                f.write_str("[MQTT-3.1.2-1] protocol name is not \"MQTT\" or \"MQIsdp\"")
            }
            Self::UnsupportedProtocolVersion(level) => {
                write!(f, "[MQTT-3.1.2-2] unsupported protocol level {level}")
            }
            Self::InvalidConnectFlags => f.write_str(
                "[MQTT-3.1.2-3] [MQTT-3.1.2-11] [MQTT-3.1.2-15] [MQTT-3.1.2-22] invalid CONNECT flags",
            ),
            Self::UnknownProperty(id) => {
                write!(f, "[MQTT-2.2.2.2] unknown property identifier {id:#04x}")
            }
            Self::DuplicateProperty(id) => {
                write!(f, "[MQTT-2.2.2.2] property {id:#04x} appears more than once")
            }
            Self::PropertyNotAllowed(id) => {
                write!(f, "[MQTT-2.2.2.2] property {id:#04x} not allowed in this packet")
            }
            Self::InvalidPropertyValue(id) => {
                write!(f, "[MQTT-2.2.2.2] property {id:#04x} has an invalid value")
            }
            Self::InvalidReasonCode(code) => {
                write!(f, "[MQTT-2.4] reason code {code:#04x} not allowed in this packet")
            }
            Self::InvalidSubscriptionOptions => f.write_str(
                "[MQTT-3.8.3-5] subscription options with reserved bits or Retain Handling 3",
            ),
            Self::NoTopicFilters => {
                f.write_str("[MQTT-3.8.3-3] [MQTT-3.10.3-2] no topic filter in the payload")
            }
            Self::EmptyTopic => {
                f.write_str("[MQTT-3.3.2-1] [MQTT-4.7.3-1] empty topic name without a topic alias")
            }
            Self::PacketNotInVersion => {
                f.write_str("[MQTT-3.15] packet type does not exist in this protocol version")
            }
            Self::DupWithQoS0 => f.write_str("[MQTT-3.3.1-2] DUP set on a QoS 0 PUBLISH"),
            Self::TopicFilter(e) => write!(f, "topic filter: {e}"),
            Self::NoLocalOnSharedSubscription => {
                f.write_str("[MQTT-3.8.3-4] No Local set on a shared subscription")
            }
            Self::InvalidConnAckFlags => {
                f.write_str("[MQTT-3.2.2-1] CONNACK acknowledge flags with reserved bits")
            }
        }
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
    /// Binary data (password, will payload, correlation or authentication data) longer than
    /// the 65,535 bytes its two-byte length can express (section 1.5.6).
    BinaryTooLong(usize),
    /// A QoS 1 or 2 PUBLISH without a packet identifier [MQTT-2.2.1-2].
    MissingPacketId,
    /// A Topic Alias added to a PUBLISH whose properties already hold one: a packet carries
    /// one at most (section 3.3.2.3.4).
    DuplicateTopicAlias,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PacketTooLarge(len) => {
                write!(f, "[MQTT-1.5.5] remaining length {len} exceeds 268,435,455")
            }
            Self::PacketNotInVersion => {
                f.write_str("packet type does not exist in this protocol version")
            }
            Self::BinaryTooLong(len) => {
                write!(f, "[MQTT-1.5.6] binary data of {len} bytes exceeds 65,535")
            }
            Self::MissingPacketId => {
                f.write_str("[MQTT-2.2.1-2] QoS > 0 PUBLISH without a packet identifier")
            }
            Self::DuplicateTopicAlias => {
                f.write_str("[3.3.2.3.4] a PUBLISH carries one Topic Alias at most")
            }
        }
    }
}

impl std::error::Error for EncodeError {}
