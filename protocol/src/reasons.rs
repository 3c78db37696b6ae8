//! Which reason codes each MQTT 5.0 packet may carry (section 2.4 and each packet's reason code
//! table), and the mapping between MQTT 3.1.1 return codes and `ReasonCode`.

use super::error::DecodeError;
use super::types::ReasonCode::{self, *};

/// CONNACK reason codes (3.2.2.2).
pub const CONNACK: &[ReasonCode] = &[
    Success,
    UnspecifiedError,
    MalformedPacket,
    ProtocolError,
    ImplementationSpecificError,
    UnsupportedProtocolVersion,
    ClientIdentifierNotValid,
    BadUserNameOrPassword,
    NotAuthorized,
    ServerUnavailable,
    ServerBusy,
    Banned,
    BadAuthenticationMethod,
    TopicNameInvalid,
    PacketTooLarge,
    QuotaExceeded,
    PayloadFormatInvalid,
    RetainNotSupported,
    QoSNotSupported,
    UseAnotherServer,
    ServerMoved,
    ConnectionRateExceeded,
];

/// PUBACK and PUBREC reason codes (3.4.2.1, 3.5.2.1).
pub const PUBACK: &[ReasonCode] = &[
    Success,
    NoMatchingSubscribers,
    UnspecifiedError,
    ImplementationSpecificError,
    NotAuthorized,
    TopicNameInvalid,
    PacketIdentifierInUse,
    QuotaExceeded,
    PayloadFormatInvalid,
];

/// PUBREL and PUBCOMP reason codes (3.6.2.1, 3.7.2.1).
pub const PUBREL: &[ReasonCode] = &[Success, PacketIdentifierNotFound];

/// SUBACK reason codes (3.9.3).
pub const SUBACK: &[ReasonCode] = &[
    Success,
    GrantedQoS1,
    GrantedQoS2,
    UnspecifiedError,
    ImplementationSpecificError,
    NotAuthorized,
    TopicFilterInvalid,
    PacketIdentifierInUse,
    QuotaExceeded,
    SharedSubscriptionsNotSupported,
    SubscriptionIdentifiersNotSupported,
    WildcardSubscriptionsNotSupported,
];

/// UNSUBACK reason codes (3.11.3).
pub const UNSUBACK: &[ReasonCode] = &[
    Success,
    NoSubscriptionExisted,
    UnspecifiedError,
    ImplementationSpecificError,
    NotAuthorized,
    TopicFilterInvalid,
    PacketIdentifierInUse,
];

/// DISCONNECT reason codes (3.14.2.1).
pub const DISCONNECT: &[ReasonCode] = &[
    Success,
    DisconnectWithWillMessage,
    UnspecifiedError,
    MalformedPacket,
    ProtocolError,
    ImplementationSpecificError,
    NotAuthorized,
    ServerBusy,
    ServerShuttingDown,
    KeepAliveTimeout,
    SessionTakenOver,
    TopicFilterInvalid,
    TopicNameInvalid,
    ReceiveMaximumExceeded,
    TopicAliasInvalid,
    PacketTooLarge,
    MessageRateTooHigh,
    QuotaExceeded,
    AdministrativeAction,
    PayloadFormatInvalid,
    RetainNotSupported,
    QoSNotSupported,
    UseAnotherServer,
    ServerMoved,
    SharedSubscriptionsNotSupported,
    ConnectionRateExceeded,
    MaximumConnectTime,
    SubscriptionIdentifiersNotSupported,
    WildcardSubscriptionsNotSupported,
];

/// AUTH reason codes (3.15.2.1).
pub const AUTH: &[ReasonCode] = &[Success, ContinueAuthentication, ReAuthenticate];

/// Decodes a reason code byte that must be one of `allowed`.
pub(crate) fn decode_in(code: u8, allowed: &[ReasonCode]) -> Result<ReasonCode, DecodeError> {
    ReasonCode::from_u8(code)
        .filter(|reason| allowed.contains(reason))
        .ok_or(DecodeError::InvalidReasonCode(code))
}

/// The MQTT 3.1/3.1.1 CONNACK return codes 0..=5 (3.2.2.3 of 3.1.1).
pub const CONNACK_V4: [ReasonCode; 6] = [
    Success,
    UnsupportedProtocolVersion,
    ClientIdentifierNotValid,
    ServerUnavailable,
    BadUserNameOrPassword,
    NotAuthorized,
];

pub(crate) fn connack_from_v4(code: u8) -> Result<ReasonCode, DecodeError> {
    CONNACK_V4
        .get(usize::from(code))
        .copied()
        .ok_or(DecodeError::InvalidReasonCode(code))
}

/// The nearest 3.1.1 return code for a 5.0 reason: the session may pick any reason, and a 3.1.1
/// client can only be told one of six.
pub fn connack_to_v4(reason: ReasonCode) -> u8 {
    match reason {
        Success => 0,
        UnsupportedProtocolVersion => 1,
        ClientIdentifierNotValid => 2,
        BadUserNameOrPassword | BadAuthenticationMethod => 4,
        NotAuthorized | Banned => 5,
        _ => 3,
    }
}

/// The MQTT 3.1.1 SUBACK return codes: granted QoS 0..=2 or 0x80 Failure.
pub(crate) fn suback_from_v4(code: u8) -> Result<ReasonCode, DecodeError> {
    match code {
        0 => Ok(Success),
        1 => Ok(GrantedQoS1),
        2 => Ok(GrantedQoS2),
        0x80 => Ok(UnspecifiedError),
        _ => Err(DecodeError::InvalidReasonCode(code)),
    }
}

/// Any refusal becomes 0x80 Failure, the only one 3.1.1 has.
pub fn suback_to_v4(reason: ReasonCode) -> u8 {
    match reason {
        Success | GrantedQoS1 | GrantedQoS2 => reason as u8,
        _ => 0x80,
    }
}
