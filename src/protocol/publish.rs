//! PUBLISH (3.3) and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 - 3.7). The
//! topic and payload of a decoded PUBLISH are zero-copy slices of the read buffer.

use super::error::{DecodeError, EncodeError};
use super::packet::{PubResp, Publish};
use super::properties::{Properties, PropertyContext};
use super::reasons;
use super::topic::TopicName;
use super::types::{PacketId, ProtocolVersion, QoS, ReasonCode};
use super::wire::{Reader, prefixed_len, put_binary};
use bytes::{BufMut, BytesMut};

const DUP: u8 = 0x08;
const RETAIN: u8 = 0x01;

/// Checks the PUBLISH fixed-header flags before the body is buffered: QoS 3 [MQTT-3.3.1-4],
/// DUP on QoS 0 [MQTT-3.3.1-2].
pub(crate) fn check_publish_flags(flags: u8) -> Result<QoS, DecodeError> {
    let qos = QoS::from_bits((flags >> 1) & 0x03).ok_or(DecodeError::InvalidQoS)?;
    if qos == QoS::AtMostOnce && flags & DUP != 0 {
        return Err(DecodeError::DupWithQoS0);
    }
    Ok(qos)
}

pub(crate) fn decode_packet_id(r: &mut Reader) -> Result<PacketId, DecodeError> {
    PacketId::new(r.u16()?).ok_or(DecodeError::ZeroPacketId)
}

pub(crate) fn decode_publish(
    mut r: Reader,
    flags: u8,
    version: ProtocolVersion,
) -> Result<Publish, DecodeError> {
    let qos = check_publish_flags(flags)?;
    let topic = r.binary()?;
    let packet_id = match qos {
        QoS::AtMostOnce => None,
        QoS::AtLeastOnce | QoS::ExactlyOnce => Some(decode_packet_id(&mut r)?),
    };
    let properties = if version.has_properties() {
        Properties::decode(&mut r, PropertyContext::Publish)?
    } else {
        Properties::default()
    };
    // A 5.0 PUBLISH may leave the topic empty when a Topic Alias names it [MQTT-3.3.2-1]
    // [MQTT-3.3.2-8]; everywhere else the topic is at least one character [MQTT-4.7.3-1].
    let topic = if topic.is_empty() {
        if properties.topic_alias.is_none() {
            return Err(DecodeError::EmptyTopic);
        }
        TopicName::empty()
    } else {
        TopicName::new(topic)?
    };
    Ok(Publish {
        dup: flags & DUP != 0,
        qos,
        retain: flags & RETAIN != 0,
        topic,
        packet_id,
        properties,
        payload: r.rest(),
    })
}

impl Publish {
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
