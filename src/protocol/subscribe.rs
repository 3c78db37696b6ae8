//! SUBSCRIBE (3.8), SUBACK (3.9), UNSUBSCRIBE (3.10) and UNSUBACK (3.11).

use super::error::{DecodeError, EncodeError};
use super::packet::{
    RetainHandling, SubAck, Subscribe, Subscription, SubscriptionOptions, UnsubAck, Unsubscribe,
};
use super::properties::{Properties, PropertyContext};
use super::publish::decode_packet_id;
use super::reasons;
use super::topic::TopicFilter;
use super::types::{ProtocolVersion, QoS};
use super::wire::{Reader, prefixed_len, put_string};
use bytes::{BufMut, BytesMut};

const NO_LOCAL: u8 = 0x04;
const RETAIN_AS_PUBLISHED: u8 = 0x08;
const RETAIN_HANDLING_SHIFT: u8 = 4;

fn decode_properties(
    r: &mut Reader,
    version: ProtocolVersion,
    ctx: PropertyContext,
) -> Result<Properties, DecodeError> {
    if version.has_properties() {
        Properties::decode(r, ctx)
    } else {
        Ok(Properties::default())
    }
}

fn properties_len(
    properties: &Properties,
    version: ProtocolVersion,
    ctx: PropertyContext,
) -> usize {
    if version.has_properties() {
        properties.encoded_len(ctx)
    } else {
        0
    }
}

fn encode_properties(
    properties: &Properties,
    version: ProtocolVersion,
    ctx: PropertyContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    if version.has_properties() {
        properties.encode(ctx, out)
    } else {
        Ok(())
    }
}

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
