//! What a 5.0 client's CONNECT allows the server to send it: no packet over its Maximum Packet
//! Size [MQTT-3.1.2-24], and with Request Problem Information 0 no Reason String or User
//! Property outside PUBLISH, CONNACK and DISCONNECT [MQTT-3.1.2-29]. [`fit`] applies both to one
//! outgoing packet, sans-IO; the caller decides what an unsendable packet means.

use super::packet::{Connect, Packet};
use super::types::ProtocolVersion;
use super::{encoded_len, wire};
use std::borrow::Cow;

/// The limits a client set in its CONNECT for the packets it receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerLimits {
    /// Maximum Packet Size (3.1.2.11.4); `u32::MAX` when the client set none (no packet can
    /// be that large: the remaining length stops at 268,435,455).
    pub max_packet_size: u32,
    /// Request Problem Information (3.1.2.11.8); absent means 1.
    pub problem_information: bool,
}

impl PeerLimits {
    /// No limit: every 3.1.1 client, and a 5.0 client that set neither property.
    pub const NONE: Self = Self {
        max_packet_size: u32::MAX,
        problem_information: true,
    };

    /// The limits of `connect` (before 5.0 there are none).
    pub fn from_connect(connect: &Connect) -> Self {
        if connect.version != ProtocolVersion::V5 {
            return Self::NONE;
        }
        let properties = &connect.properties;
        Self {
            max_packet_size: properties.maximum_packet_size.unwrap_or(u32::MAX),
            problem_information: properties.request_problem_information != Some(0),
        }
    }

    /// Whether a packet of `len` bytes may be sent.
    #[inline]
    pub fn allows_len(&self, len: usize) -> bool {
        len <= self.max_packet_size as usize
    }
}

/// A packet that cannot be sent even without its optional properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    /// Its size without them.
    pub len: usize,
}

/// Fits `packet` to what the client accepts: borrowed as is when it already does (the common
/// case, which neither copies nor measures when the client set no limits), otherwise a copy
/// without Reason String and User Properties. Those are optional everywhere but in PUBLISH,
/// where User Properties belong to the message [MQTT-3.3.2-17] and are never removed.
///
/// The Reason String and User Property of every acknowledgement, CONNACK, DISCONNECT and AUTH
/// must not be sent when they would push the packet over the client's Maximum Packet Size
/// ([MQTT-3.2.2-19], [MQTT-3.2.2-20], [MQTT-3.4.2-2], [MQTT-3.4.2-3], [MQTT-3.5.2-2],
/// [MQTT-3.5.2-3], [MQTT-3.6.2-2], [MQTT-3.6.2-3], [MQTT-3.7.2-2], [MQTT-3.7.2-3],
/// [MQTT-3.9.2-1], [MQTT-3.9.2-2], [MQTT-3.11.2-1], [MQTT-3.11.2-2], [MQTT-3.14.2-3],
/// [MQTT-3.14.2-4], [MQTT-3.15.2-2], [MQTT-3.15.2-3]).
pub fn fit<'a>(
    packet: &'a Packet,
    version: ProtocolVersion,
    limits: PeerLimits,
) -> Result<Cow<'a, Packet>, TooLarge> {
    if limits == PeerLimits::NONE {
        return Ok(Cow::Borrowed(packet));
    }
    let len = encoded_len(packet, version);
    let has_diagnostics = packet.properties().is_some_and(|p| p.has_diagnostics());
    // A PUBLISH keeps its User Properties: they are the message's, not the server's.
    let removable = has_diagnostics && !matches!(packet, Packet::Publish(_));
    let diagnostics_allowed = limits.problem_information
        || matches!(
            packet,
            Packet::Publish(_) | Packet::ConnAck(_) | Packet::Disconnect(_)
        );
    if limits.allows_len(len) && (diagnostics_allowed || !removable) {
        return Ok(Cow::Borrowed(packet));
    }
    if !removable {
        return Err(TooLarge { len });
    }
    let mut bare = packet.clone();
    if let Some(properties) = bare.properties_mut() {
        properties.remove_diagnostics();
    }
    let len = encoded_len(&bare, version);
    if limits.allows_len(len) {
        Ok(Cow::Owned(bare))
    } else {
        Err(TooLarge { len })
    }
}

/// The size of a 5.0 SUBACK or UNSUBACK with `codes` reason codes and no properties: the
/// least a SUBSCRIBE or UNSUBSCRIBE of that many filters can be answered with.
pub fn bare_ack_len(codes: usize) -> usize {
    // Packet identifier, property length 0, one byte per code.
    let body = 2 + 1 + codes;
    1 + wire::var_int_len(body) + body
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::packet::{Disconnect, PubResp, SubAck};
    use super::super::{Properties, PropertyValues, ReasonCode};
    use super::*;

    fn limits(max_packet_size: u32, problem_information: bool) -> PeerLimits {
        PeerLimits {
            max_packet_size,
            problem_information,
        }
    }

    fn with_reason_string(mut packet: Packet, text: &str) -> Packet {
        if let Some(p) = packet.properties_mut() {
            *p = Properties::from(PropertyValues {
                reason_string: Some(s(text)),
                user_properties: vec![(s("k"), s("v"))],
                ..PropertyValues::default()
            });
        }
        packet
    }

    fn suback(codes: usize) -> Packet {
        Packet::SubAck(SubAck {
            packet_id: pid(1),
            properties: Properties::default(),
            reasons: vec![ReasonCode::GrantedQoS1; codes],
        })
    }

    #[test]
    fn without_limits_a_packet_is_borrowed_as_is() {
        let packet = with_reason_string(suback(3), "why");
        let fitted = fit(&packet, V5, PeerLimits::NONE).expect("fits");
        assert!(matches!(fitted, Cow::Borrowed(_)));
    }

    #[test]
    fn a_reason_string_that_would_exceed_the_maximum_is_removed_mqtt_3_9_2_1() {
        let packet = with_reason_string(suback(3), "a long explanation");
        let bare = encoded_len(&suback(3), V5);
        let fitted = fit(&packet, V5, limits(bare as u32, true)).expect("fits bare");
        assert_eq!(fitted.into_owned(), suback(3));
        let roomy = limits(encoded_len(&packet, V5) as u32, true);
        assert!(matches!(fit(&packet, V5, roomy), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn a_packet_too_large_without_its_optional_properties_is_refused_mqtt_3_1_2_24() {
        let packet = suback(200);
        let len = encoded_len(&packet, V5);
        assert_eq!(len, bare_ack_len(200));
        assert_eq!(fit(&packet, V5, limits(128, true)), Err(TooLarge { len }));
    }

    #[test]
    fn request_problem_information_0_strips_acks_but_not_disconnect_mqtt_3_1_2_29() {
        let puback = with_reason_string(
            Packet::PubAck(PubResp {
                reason: ReasonCode::UnspecifiedError,
                ..PubResp::new(pid(7))
            }),
            "why",
        );
        let fitted = fit(&puback, V5, limits(u32::MAX, false)).expect("fits");
        assert!(fitted.properties().is_some_and(|p| p.is_empty()));
        let disconnect = with_reason_string(
            Packet::Disconnect(Disconnect::new(ReasonCode::ProtocolError)),
            "why",
        );
        let fitted = fit(&disconnect, V5, limits(u32::MAX, false)).expect("fits");
        assert!(matches!(fitted, Cow::Borrowed(_)));
    }

    #[test]
    fn bare_ack_len_matches_the_encoder() {
        for codes in [1, 100, 200, 20_000] {
            assert_eq!(bare_ack_len(codes), encoded_len(&suback(codes), V5));
        }
    }
}
