//! PUBLISH (3.3) and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 - 3.7). The
//! payload of a decoded PUBLISH is a zero-copy slice of the read buffer; a short topic is
//! copied inline instead of sliced.

use super::error::{DecodeError, EncodeError};
use super::packet::{Packet, PubResp, Publish};
use super::properties::id::TOPIC_ALIAS;
use super::properties::{Properties, PropertyContext};
use super::reasons;
use super::topic::TopicName;
use super::types::{PacketId, ProtocolVersion, QoS, ReasonCode};
use super::wire::{Reader, prefixed_len, put_binary, put_var_int, var_int_len};
use bytes::{BufMut, BytesMut};

const DUP: u8 = 0x08;
const RETAIN: u8 = 0x01;

/// Checks the PUBLISH fixed-header flags before the body is buffered: QoS 3 [MQTT-3.3.1-4],
/// DUP on QoS 0 [MQTT-3.3.1-2].
#[inline]
pub(crate) fn check_publish_flags(flags: u8) -> Result<QoS, DecodeError> {
    let qos = QoS::from_bits((flags >> 1) & 0x03).ok_or(DecodeError::InvalidQoS)?;
    if qos == QoS::AtMostOnce && flags & DUP != 0 {
        return Err(DecodeError::DupWithQoS0);
    }
    Ok(qos)
}

#[inline(always)]
pub(crate) fn decode_packet_id(r: &mut Reader) -> Result<PacketId, DecodeError> {
    PacketId::new(r.u16()?).ok_or(DecodeError::ZeroPacketId)
}

/// Decodes a PUBLISH straight into the value `decode` returns: the packet is large, and
/// building it in one place saves copying it between stack slots on the hottest path.
#[inline(always)]
pub(crate) fn decode_publish(
    mut r: Reader,
    flags: u8,
    version: ProtocolVersion,
) -> Result<Option<Packet>, DecodeError> {
    let qos = check_publish_flags(flags)?;
    let topic_range = r.binary_range()?;
    let topic = TopicName::decode(r.frame(), topic_range)?;
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce | QoS::ExactlyOnce => Some(decode_packet_id(&mut r)?),
    };
    // One struct literal per path, so the packet is written once, in place.
    macro_rules! publish {
        ($properties:expr) => {
            Ok(Some(Packet::Publish(Publish {
                dup: flags & DUP != 0,
                qos,
                retain: flags & RETAIN != 0,
                topic,
                packet_id,
                properties: $properties,
                payload: r.rest(),
            })))
        };
    }
    if !version.has_properties() || r.skip_zero_byte() {
        check_topic_present(&topic, false)?;
        return publish!(Properties::default());
    }
    let properties = Properties::decode(&mut r, PropertyContext::Publish)?;
    check_topic_present(&topic, properties.topic_alias.is_some())?;
    publish!(properties)
}

/// A 5.0 PUBLISH may leave the topic empty when a Topic Alias names it [MQTT-3.3.2-1]
/// [MQTT-3.3.2-8]; everywhere else the topic is at least one character [MQTT-4.7.3-1].
#[inline(always)]
fn check_topic_present(topic: &TopicName, has_alias: bool) -> Result<(), DecodeError> {
    if topic.is_empty() && !has_alias {
        return Err(DecodeError::EmptyTopic);
    }
    Ok(())
}

impl Publish {
    #[inline]
    pub(crate) fn flags(&self) -> u8 {
        let mut flags = (self.qos as u8) << 1;
        if self.dup {
            flags |= DUP;
        }
        if self.retain {
            flags |= RETAIN;
        }
        flags
    }

    #[inline]
    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        let mut len = prefixed_len(self.topic.as_bytes().len()) + self.payload.len();
        if self.qos != QoS::AtMostOnce {
            len += 2;
        }
        if version.has_properties() {
            len += self.properties.encoded_len(PropertyContext::Publish);
        }
        len
    }

    #[inline]
    pub(crate) fn encode_body(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        put_binary(out, self.topic.as_bytes())?;
        if self.qos != QoS::AtMostOnce {
            let id = self.packet_id.ok_or(EncodeError::MissingPacketId)?;
            out.put_u16(id.get());
        }
        if version.has_properties() {
            self.properties.encode(PropertyContext::Publish, out)?;
        }
        out.put_slice(&self.payload);
        Ok(())
    }
}

/// The Topic Alias property: identifier 0x23, then a Two Byte Integer.
const TOPIC_ALIAS_PROPERTY_LEN: usize = 3;

impl Publish {
    /// The remaining length of this PUBLISH in 5.0 with a Topic Alias added to its properties.
    fn aliased_body_len(&self) -> usize {
        let properties =
            self.properties.content_len(PropertyContext::Publish) + TOPIC_ALIAS_PROPERTY_LEN;
        let mut len = prefixed_len(self.topic.as_bytes().len())
            + var_int_len(properties)
            + properties
            + self.payload.len();
        if self.qos != QoS::AtMostOnce {
            len += 2;
        }
        len
    }
}

/// The exact number of bytes [`encode_with_topic_alias`] appends for `publish`.
pub fn encoded_len_with_topic_alias(publish: &Publish) -> usize {
    let body_len = publish.aliased_body_len();
    1 + var_int_len(body_len) + body_len
}

/// Appends `publish` as a 5.0 PUBLISH that carries the outbound Topic Alias `alias`
/// (section 3.3.2.3.4); its topic is empty when the alias stands for a topic set earlier on
/// the connection. The alias goes first in the property list, so it sits at a fixed place
/// whatever other properties follow: returns the offset of its two value bytes from the
/// start of the packet, for encode-once fan-out to patch. `publish.properties` must not hold a
/// Topic Alias of its own (a routed message never does). On error `out` is left as it was.
pub fn encode_with_topic_alias(
    publish: &Publish,
    alias: u16,
    out: &mut BytesMut,
) -> Result<usize, EncodeError> {
    debug_assert!(publish.properties.topic_alias.is_none(), "one Topic Alias");
    let body_len = publish.aliased_body_len();
    if body_len > super::MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge(body_len));
    }
    let start = out.len();
    out.reserve(1 + var_int_len(body_len) + body_len);
    out.put_u8(0x30 | publish.flags());
    let result = encode_aliased_body(publish, alias, body_len, out).map(|at| at - start);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// Everything after the PUBLISH type byte; returns where the alias value bytes are in `out`.
fn encode_aliased_body(
    publish: &Publish,
    alias: u16,
    body_len: usize,
    out: &mut BytesMut,
) -> Result<usize, EncodeError> {
    put_var_int(out, body_len)?;
    put_binary(out, publish.topic.as_bytes())?;
    if publish.qos != QoS::AtMostOnce {
        let id = publish.packet_id.ok_or(EncodeError::MissingPacketId)?;
        out.put_u16(id.get());
    }
    let properties =
        publish.properties.content_len(PropertyContext::Publish) + TOPIC_ALIAS_PROPERTY_LEN;
    put_var_int(out, properties)?;
    out.put_u8(TOPIC_ALIAS);
    let alias_at = out.len();
    out.put_u16(alias);
    publish
        .properties
        .encode_content(PropertyContext::Publish, out)?;
    out.put_slice(&publish.payload);
    Ok(alias_at)
}

/// The reason codes allowed in each acknowledgement, by packet type.
fn allowed_reasons(packet_type: u8) -> &'static [ReasonCode] {
    match packet_type {
        4 | 5 => reasons::PUBACK,
        _ => reasons::PUBREL,
    }
}

/// PUBACK/PUBREC/PUBREL/PUBCOMP. In 5.0 a remaining length of 2 means Success without
/// properties and 3 a reason code without properties (3.4.2.1).
pub(crate) fn decode_pub_resp(
    r: &mut Reader,
    packet_type: u8,
    version: ProtocolVersion,
) -> Result<PubResp, DecodeError> {
    let packet_id = decode_packet_id(r)?;
    if !version.has_properties() || r.is_empty() {
        r.finish()?;
        return Ok(PubResp::new(packet_id));
    }
    let reason = reasons::decode_in(r.u8()?, allowed_reasons(packet_type))?;
    let properties = if r.is_empty() {
        Properties::default()
    } else {
        Properties::decode(r, PropertyContext::PubResp)?
    };
    r.finish()?;
    Ok(PubResp {
        packet_id,
        reason,
        properties,
    })
}

impl PubResp {
    fn properties_len(&self, version: ProtocolVersion) -> usize {
        if version.has_properties() {
            self.properties.content_len(PropertyContext::PubResp)
        } else {
            0
        }
    }

    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        if !version.has_properties() {
            return 2;
        }
        match (self.reason, self.properties_len(version)) {
            (ReasonCode::Success, 0) => 2,
            (_, 0) => 3,
            (_, _) => 3 + self.properties.encoded_len(PropertyContext::PubResp),
        }
    }

    pub(crate) fn encode_body(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        out.put_u16(self.packet_id.get());
        if !version.has_properties() {
            return Ok(());
        }
        match (self.reason, self.properties_len(version)) {
            (ReasonCode::Success, 0) => Ok(()),
            (reason, 0) => {
                out.put_u8(reason as u8);
                Ok(())
            }
            (reason, _) => {
                out.put_u8(reason as u8);
                self.properties.encode(PropertyContext::PubResp, out)
            }
        }
    }
}

// The fixture table outweighs the code it checks, so it has a file of its own.
#[cfg(test)]
mod tests;
