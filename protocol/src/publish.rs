//! PUBLISH (3.3) and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 - 3.7). The
//! payload of a decoded PUBLISH is a zero-copy slice of the read buffer; a short topic is
//! copied inline instead of sliced.

use super::error::{DecodeError, EncodeError};
use super::packet::{Packet, PacketType, PubResp, Publish};
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
        self.body_len_with(version, false)
    }

    /// The remaining length in `version`, with a Topic Alias added to the properties when
    /// `add_alias` (5.0 only).
    #[inline]
    fn body_len_with(&self, version: ProtocolVersion, add_alias: bool) -> usize {
        let mut len = prefixed_len(self.topic.as_bytes().len()) + self.payload.len();
        if self.qos != QoS::AtMostOnce {
            len += 2;
        }
        if version.has_properties() {
            let mut properties = self.properties.content_len(PropertyContext::Publish);
            if add_alias {
                properties += TOPIC_ALIAS_PROPERTY_LEN;
            }
            len += var_int_len(properties) + properties;
        }
        len
    }

    #[inline]
    pub(crate) fn encode_body(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        self.encode_body_with(version, None, out).map(|_| ())
    }

    /// Everything after the remaining length; returns where the packet id and the Topic Alias
    /// value landed in `out`. An `alias` (5.0 only) goes first in the property list, ahead of
    /// the message's own properties, so it sits at the same place whatever follows it.
    #[inline]
    fn encode_body_with(
        &self,
        version: ProtocolVersion,
        alias: Option<u16>,
        out: &mut BytesMut,
    ) -> Result<PublishLayout, EncodeError> {
        let mut layout = PublishLayout::default();
        put_binary(out, self.topic.as_bytes())?;
        if self.qos != QoS::AtMostOnce {
            let id = self.packet_id.ok_or(EncodeError::MissingPacketId)?;
            layout.packet_id = Some(out.len());
            out.put_u16(id.get());
        }
        if version.has_properties() {
            layout.topic_alias = self.encode_properties(alias, out)?;
        }
        out.put_slice(&self.payload);
        Ok(layout)
    }

    /// The property list, with `alias` first when given; returns where the Topic Alias value
    /// is in `out`, whether added here or one of the message's own.
    #[inline]
    fn encode_properties(
        &self,
        alias: Option<u16>,
        out: &mut BytesMut,
    ) -> Result<Option<usize>, EncodeError> {
        const CTX: PropertyContext = PropertyContext::Publish;
        let Some(alias) = alias else {
            let own = self.properties.topic_alias.map(|_| {
                // Past the list's length prefix, the properties ahead of the alias (the list is
                // in identifier order) and the alias's identifier byte.
                let prefix = var_int_len(self.properties.content_len(CTX));
                out.len() + prefix + self.properties.len_before(CTX, TOPIC_ALIAS) + 1
            });
            self.properties.encode(CTX, out)?;
            return Ok(own);
        };
        if self.properties.topic_alias.is_some() {
            return Err(EncodeError::DuplicateTopicAlias);
        }
        put_var_int(
            out,
            self.properties.content_len(CTX) + TOPIC_ALIAS_PROPERTY_LEN,
        )?;
        out.put_u8(TOPIC_ALIAS);
        let at = out.len();
        out.put_u16(alias);
        self.properties.encode_content(CTX, out)?;
        Ok(Some(at))
    }
}

/// The Topic Alias property: identifier 0x23, then a Two Byte Integer.
const TOPIC_ALIAS_PROPERTY_LEN: usize = 3;

/// Where the bytes a fan-out patches per subscriber sit in an encoded PUBLISH, as offsets from
/// the packet's first byte: each field is two bytes, big-endian, and may be overwritten with
/// another valid value without changing the packet's length.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublishLayout {
    /// The Packet Identifier (QoS 1 and 2 only).
    pub packet_id: Option<usize>,
    /// The Topic Alias value (5.0 only, when the packet carries one).
    pub topic_alias: Option<usize>,
}

/// Appends `publish` for protocol `version` to `out`, and says where its packet id and Topic
/// Alias are.
///
/// `topic_alias` adds an outbound Topic Alias (section 3.3.2.3.4) in 5.0 and is ignored in
/// earlier versions, which have no properties. It goes first in the property list, so its
/// offset does not depend on the message's own properties; an empty topic with an alias is the
/// form that uses an alias set earlier on the connection, a full topic with one sets it.
/// Without `topic_alias` the bytes are exactly those of [`encode`](super::encode), and a Topic
/// Alias among `publish.properties` is reported where it sits; with it, `publish.properties`
/// must not hold one (`DuplicateTopicAlias`). On error `out` is left as it was.
pub fn encode_publish(
    publish: &Publish,
    version: ProtocolVersion,
    topic_alias: Option<u16>,
    out: &mut BytesMut,
) -> Result<PublishLayout, EncodeError> {
    let alias = topic_alias.filter(|_| version.has_properties());
    let body_len = publish.body_len_with(version, alias.is_some());
    if body_len > super::MAX_REMAINING_LENGTH {
        return Err(EncodeError::PacketTooLarge(body_len));
    }
    let start = out.len();
    out.reserve(1 + var_int_len(body_len) + body_len);
    out.put_u8((PacketType::Publish as u8) << 4 | publish.flags());
    let result = put_var_int(out, body_len)
        .and_then(|()| publish.encode_body_with(version, alias, out))
        .map(|layout| PublishLayout {
            packet_id: layout.packet_id.map(|at| at - start),
            topic_alias: layout.topic_alias.map(|at| at - start),
        });
    if result.is_err() {
        out.truncate(start);
    }
    result
}

/// The exact number of bytes [`encode_publish`] appends for the same arguments.
pub fn encoded_publish_len(
    publish: &Publish,
    version: ProtocolVersion,
    topic_alias: Option<u16>,
) -> usize {
    let body_len =
        publish.body_len_with(version, topic_alias.is_some() && version.has_properties());
    1 + var_int_len(body_len) + body_len
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
