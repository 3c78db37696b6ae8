//! SUBSCRIBE (3.8), SUBACK (3.9), UNSUBSCRIBE (3.10) and UNSUBACK (3.11).

use super::error::{DecodeError, EncodeError};
use super::packet::{
    RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use super::properties::{PropertyContext, decode_properties, encode_properties, properties_len};
use super::publish::decode_packet_id;
use super::reasons;
use super::topic::TopicFilter;
use super::types::{ProtocolVersion, QoS};
use super::wire::{Reader, prefixed_len, put_string};
use bytes::{BufMut, BytesMut};

const NO_LOCAL: u8 = 0x04;
const RETAIN_AS_PUBLISHED: u8 = 0x08;
const RETAIN_HANDLING_SHIFT: u8 = 4;

fn decode_filter(r: &mut Reader) -> Result<TopicFilter, DecodeError> {
    TopicFilter::from_mqtt_string(r.string()?).map_err(DecodeError::TopicFilter)
}

/// The subscription options byte. Before 5.0 only the QoS bits exist and the rest are
/// reserved [MQTT-3.8.3-4 (3.1.1)]; in 5.0 bits 6-7 are reserved and Retain Handling 3 is
/// malformed [MQTT-3.8.3-5].
fn decode_options(byte: u8, version: ProtocolVersion) -> Result<SubscriptionOptions, DecodeError> {
    let reserved = if version.has_properties() { 0xC0 } else { 0xFC };
    if byte & reserved != 0 {
        return Err(DecodeError::InvalidSubscriptionOptions);
    }
    let qos = QoS::from_bits(byte & 0x03).ok_or(DecodeError::InvalidQoS)?;
    let retain_handling = match (byte >> RETAIN_HANDLING_SHIFT) & 0x03 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendAtSubscribeIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(DecodeError::InvalidSubscriptionOptions),
    };
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & NO_LOCAL != 0,
        retain_as_published: byte & RETAIN_AS_PUBLISHED != 0,
        retain_handling,
    })
}

fn encode_options(options: &SubscriptionOptions, version: ProtocolVersion) -> u8 {
    let mut byte = options.qos as u8;
    if version.has_properties() {
        if options.no_local {
            byte |= NO_LOCAL;
        }
        if options.retain_as_published {
            byte |= RETAIN_AS_PUBLISHED;
        }
        byte |= (options.retain_handling as u8) << RETAIN_HANDLING_SHIFT;
    }
    byte
}

pub(crate) fn decode_subscribe(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Subscribe, DecodeError> {
    let packet_id = decode_packet_id(r)?;
    let properties = decode_properties(r, version, PropertyContext::Subscribe)?;
    let mut subscriptions = Vec::new();
    while !r.is_empty() {
        let filter = decode_filter(r)?;
        let options = decode_options(r.u8()?, version)?;
        if options.no_local && filter.share_group().is_some() {
            return Err(DecodeError::NoLocalOnSharedSubscription);
        }
        subscriptions.push(Subscription { filter, options });
    }
    if subscriptions.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    Ok(Subscribe {
        packet_id,
        properties,
        subscriptions,
    })
}

impl Subscribe {
    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        let entries: usize = self
            .subscriptions
            .iter()
            .map(|s| prefixed_len(s.filter.as_bytes().len()) + 1)
            .sum();
        2 + properties_len(&self.properties, version, PropertyContext::Subscribe) + entries
    }

    pub(crate) fn encode_body(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        out.put_u16(self.packet_id.get());
        encode_properties(&self.properties, version, PropertyContext::Subscribe, out)?;
        for s in &self.subscriptions {
            put_string(out, s.filter.as_mqtt_string());
            out.put_u8(encode_options(&s.options, version));
        }
        Ok(())
    }
}

pub(crate) fn decode_suback(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<SubAck, DecodeError> {
    let packet_id = decode_packet_id(r)?;
    let properties = decode_properties(r, version, PropertyContext::SubAck)?;
    let mut codes = Vec::with_capacity(r.remaining());
    while !r.is_empty() {
        let code = r.u8()?;
        codes.push(if version.has_properties() {
            reasons::decode_in(code, reasons::SUBACK)?
        } else {
            reasons::suback_from_v4(code)?
        });
    }
    Ok(SubAck {
        packet_id,
        properties,
        reasons: codes,
    })
}

impl SubAck {
    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        2 + properties_len(&self.properties, version, PropertyContext::SubAck) + self.reasons.len()
    }

    pub(crate) fn encode_body(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        out.put_u16(self.packet_id.get());
        encode_properties(&self.properties, version, PropertyContext::SubAck, out)?;
        for &reason in &self.reasons {
            out.put_u8(if version.has_properties() {
                reason as u8
            } else {
                reasons::suback_to_v4(reason)
            });
        }
        Ok(())
    }
}

pub(crate) fn decode_unsubscribe(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Unsubscribe, DecodeError> {
    let packet_id = decode_packet_id(r)?;
    let properties = decode_properties(r, version, PropertyContext::Unsubscribe)?;
    let mut filters = Vec::new();
    while !r.is_empty() {
        filters.push(decode_filter(r)?);
    }
    if filters.is_empty() {
        return Err(DecodeError::NoTopicFilters);
    }
    Ok(Unsubscribe {
        packet_id,
        properties,
        filters,
    })
}

impl Unsubscribe {
    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        let filters: usize = self
            .filters
            .iter()
            .map(|f| prefixed_len(f.as_bytes().len()))
            .sum();
        2 + properties_len(&self.properties, version, PropertyContext::Unsubscribe) + filters
    }

    pub(crate) fn encode_body(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        out.put_u16(self.packet_id.get());
        encode_properties(&self.properties, version, PropertyContext::Unsubscribe, out)?;
        for filter in &self.filters {
            put_string(out, filter.as_mqtt_string());
        }
        Ok(())
    }
}

/// UNSUBACK: in 3.1/3.1.1 only the packet id (3.11 of 3.1.1); in 5.0 properties and one reason
/// code per filter.
pub(crate) fn decode_unsuback(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<UnsubAck, DecodeError> {
    let packet_id = decode_packet_id(r)?;
    let properties = decode_properties(r, version, PropertyContext::UnsubAck)?;
    let mut codes = Vec::new();
    if version.has_properties() {
        codes.reserve(r.remaining());
        while !r.is_empty() {
            codes.push(reasons::decode_in(r.u8()?, reasons::UNSUBACK)?);
        }
    }
    r.finish()?;
    Ok(UnsubAck {
        packet_id,
        properties,
        reasons: codes,
    })
}

impl UnsubAck {
    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        if version.has_properties() {
            2 + self.properties.encoded_len(PropertyContext::UnsubAck) + self.reasons.len()
        } else {
            2
        }
    }

    pub(crate) fn encode_body(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        out.put_u16(self.packet_id.get());
        if version.has_properties() {
            self.properties.encode(PropertyContext::UnsubAck, out)?;
            for &reason in &self.reasons {
                out.put_u8(reason as u8);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::packet::{
        Packet, RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck,
        Unsubscribe,
    };
    use super::super::{DecodeError, Properties, PropertyValues, QoS, ReasonCode, TopicError};

    fn subscribe(id: u16, entries: &[(&str, SubscriptionOptions)]) -> Subscribe {
        Subscribe {
            packet_id: pid(id),
            properties: Properties::default(),
            subscriptions: entries
                .iter()
                .map(|(f, options)| Subscription {
                    filter: filter(f),
                    options: *options,
                })
                .collect(),
        }
    }

    fn qos(qos: QoS) -> SubscriptionOptions {
        SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        }
    }

    #[test]
    fn subscribe_v4() {
        let bytes = [
            0x82, 0x08, // SUBSCRIBE, flags 0b0010 [MQTT-3.8.1-1]
            0x00, 0x01, // packet identifier
            0x00, 0x03, b'a', b'/', b'#', // topic filter
            0x01, // requested QoS 1
        ];
        let expected = subscribe(1, &[("a/#", qos(QoS::AtLeastOnce))]);
        assert_codec(&bytes, V4, &Packet::Subscribe(expected));
    }

    #[test]
    fn subscribe_v5_with_subscription_identifier_and_options() {
        let bytes = [
            0x82, 0x0B, // SUBSCRIBE, remaining length 11
            0x00, 0x02, // packet identifier
            0x02, 0x0B, 0x05, // properties: subscription identifier 5
            0x00, 0x03, b'a', b'/', b'+', // topic filter
            0x2E, // Retain Handling 2, Retain As Published, No Local, QoS 2 (3.8.3.1)
        ];
        let options = SubscriptionOptions {
            qos: QoS::ExactlyOnce,
            no_local: true,
            retain_as_published: true,
            retain_handling: RetainHandling::DoNotSend,
        };
        let expected = Subscribe {
            properties: Properties::from(PropertyValues {
                subscription_identifiers: vec![5],
                ..PropertyValues::default()
            }),
            ..subscribe(2, &[("a/+", options)])
        };
        assert_codec(&bytes, V5, &Packet::Subscribe(expected));
    }

    #[test]
    fn subscribe_v3_tolerates_dup_flag() {
        let bytes = [0x8A, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00];
        let expected = subscribe(1, &[("a", qos(QoS::AtMostOnce))]);
        assert_decodes(&bytes, V3, &Packet::Subscribe(expected));
    }

    #[test]
    fn subscribe_refuses_reserved_header_flags_mqtt_3_8_1_1() {
        let bytes = [0x80, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', 0x00];
        let error = DecodeError::ReservedFlags {
            packet_type: 8,
            flags: 0,
        };
        assert_refused(&bytes, V4, error);
    }

    #[test]
    fn subscribe_refuses_empty_payload_mqtt_3_8_3_3() {
        assert_refused(&[0x82, 0x02, 0x00, 0x01], V4, DecodeError::NoTopicFilters);
        assert_refused(
            &[0x82, 0x03, 0x00, 0x01, 0x00],
            V5,
            DecodeError::NoTopicFilters,
        );
    }

    fn subscribe_with_options(options: u8) -> [u8; 8] {
        [0x82, 0x06, 0x00, 0x01, 0x00, 0x01, b'a', options]
    }

    #[test]
    fn subscribe_v4_refuses_options_beyond_qos_mqtt_3_8_3_4() {
        let error = DecodeError::InvalidSubscriptionOptions;
        assert_refused(&subscribe_with_options(0x04), V4, error);
        assert_refused(&subscribe_with_options(0x03), V4, DecodeError::InvalidQoS);
    }

    #[test]
    fn subscribe_v5_refuses_retain_handling_3_and_reserved_bits_mqtt_3_8_3_5() {
        let v5 = |options: u8, error| {
            let mut bytes = vec![0x82, 0x07, 0x00, 0x01, 0x00, 0x00, 0x01, b'a', options];
            bytes[1] = (bytes.len() - 2) as u8;
            assert_refused(&bytes, V5, error);
        };
        v5(0x30, DecodeError::InvalidSubscriptionOptions);
        v5(0x40, DecodeError::InvalidSubscriptionOptions);
        v5(0x80, DecodeError::InvalidSubscriptionOptions);
        v5(0x03, DecodeError::InvalidQoS);
    }

    #[test]
    fn subscribe_v5_refuses_no_local_on_shared_subscription_mqtt_3_8_3_4() {
        let mut bytes = vec![0x82, 0, 0x00, 0x01, 0x00, 0x00, 0x0A];
        bytes.extend_from_slice(b"$share/g/a");
        bytes.push(0x04);
        bytes[1] = (bytes.len() - 2) as u8;
        assert_refused(&bytes, V5, DecodeError::NoLocalOnSharedSubscription);
    }

    #[test]
    fn subscribe_refuses_invalid_filters_mqtt_4_7_1_2() {
        let bytes = [
            0x82, 0x0A, 0x00, 0x01, 0x00, 0x05, b'a', b'/', b'#', b'/', b'b', 0x00,
        ];
        let error = DecodeError::TopicFilter(TopicError::MisplacedMultiLevelWildcard);
        assert_eq!(error.reason_code(), ReasonCode::TopicFilterInvalid);
        assert_refused(&bytes, V4, error);
    }

    #[test]
    fn subscribe_v5_refuses_two_subscription_identifiers() {
        let bytes = [
            0x82, 0x0A, 0x00, 0x01, 0x04, 0x0B, 0x01, 0x0B, 0x02, 0x00, 0x01, b'a', 0x00,
        ];
        let mut fixed = bytes.to_vec();
        fixed[1] = (fixed.len() - 2) as u8;
        assert_refused(&fixed, V5, DecodeError::DuplicateProperty(0x0B));
    }

    #[test]
    fn suback_v4_maps_return_codes() {
        let bytes = [
            0x90, 0x05, // SUBACK
            0x00, 0x01, // packet identifier
            0x00, 0x02, 0x80, // granted QoS 0, granted QoS 2, failure (3.9.3 of 3.1.1)
        ];
        let expected = SubAck {
            packet_id: pid(1),
            properties: Properties::default(),
            reasons: vec![
                ReasonCode::Success,
                ReasonCode::GrantedQoS2,
                ReasonCode::UnspecifiedError,
            ],
        };
        assert_codec(&bytes, V4, &Packet::SubAck(expected));
        assert_refused(
            &[0x90, 0x03, 0x00, 0x01, 0x03],
            V4,
            DecodeError::InvalidReasonCode(3),
        );
    }

    #[test]
    fn suback_v5_with_reason_codes() {
        let bytes = [0x90, 0x05, 0x00, 0x01, 0x00, 0x01, 0x8F];
        let expected = SubAck {
            packet_id: pid(1),
            properties: Properties::default(),
            reasons: vec![ReasonCode::GrantedQoS1, ReasonCode::TopicFilterInvalid],
        };
        assert_codec(&bytes, V5, &Packet::SubAck(expected));
        assert_refused(
            &[0x90, 0x04, 0x00, 0x01, 0x00, 0x04],
            V5,
            DecodeError::InvalidReasonCode(4),
        );
    }

    #[test]
    fn unsubscribe_v4() {
        let bytes = [
            0xA2, 0x05, // UNSUBSCRIBE, flags 0b0010 [MQTT-3.10.1-1]
            0x00, 0x01, // packet identifier
            0x00, 0x01, b'a', // topic filter
        ];
        let expected = Unsubscribe {
            packet_id: pid(1),
            properties: Properties::default(),
            filters: vec![filter("a")],
        };
        assert_codec(&bytes, V4, &Packet::Unsubscribe(expected));
    }

    #[test]
    fn unsubscribe_refuses_empty_payload_mqtt_3_10_3_2() {
        assert_refused(&[0xA2, 0x02, 0x00, 0x01], V4, DecodeError::NoTopicFilters);
    }

    #[test]
    fn unsuback_v4_has_no_payload() {
        let expected = UnsubAck {
            packet_id: pid(1),
            properties: Properties::default(),
            reasons: Vec::new(),
        };
        assert_codec(&[0xB0, 0x02, 0x00, 0x01], V4, &Packet::UnsubAck(expected));
        assert_refused(
            &[0xB0, 0x03, 0x00, 0x01, 0x00],
            V4,
            DecodeError::TrailingBytes,
        );
    }

    #[test]
    fn unsuback_v5_with_reason_codes() {
        let expected = UnsubAck {
            packet_id: pid(1),
            properties: Properties::default(),
            reasons: vec![ReasonCode::NoSubscriptionExisted],
        };
        assert_codec(
            &[0xB0, 0x04, 0x00, 0x01, 0x00, 0x11],
            V5,
            &Packet::UnsubAck(expected),
        );
    }
}
