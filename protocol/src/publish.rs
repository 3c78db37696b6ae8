//! PUBLISH (3.3) and its acknowledgements PUBACK, PUBREC, PUBREL, PUBCOMP (3.4 - 3.7). The
//! payload of a decoded PUBLISH is a zero-copy slice of the read buffer; a short topic is
//! copied inline instead of sliced.

use super::error::{DecodeError, EncodeError};
use super::packet::{Packet, PubResp, Publish};
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
    out.put_u8(0x23);
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

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::packet::{Packet, PubResp, Publish};
    use super::super::{
        DecodeError, Properties, PropertyValues, ProtocolVersion, QoS, ReasonCode, StringError,
        TopicError,
    };
    use bytes::BytesMut;

    fn publish(qos: QoS, t: &str, id: Option<u16>, payload: &'static [u8]) -> Publish {
        Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic(t),
            packet_id: id.map(pid),
            properties: Properties::default(),
            payload: b(payload),
        }
    }

    #[test]
    fn publish_qos0_v4() {
        let bytes = [
            0x30, 0x07, // PUBLISH, QoS 0, remaining length 7
            0x00, 0x03, b'a', b'/', b'b', // topic name
            b'h', b'i', // payload: the rest of the packet (3.3.3)
        ];
        let expected = publish(QoS::AtMostOnce, "a/b", None, b"hi");
        assert_codec(&bytes, V4, &Packet::Publish(expected));
    }

    #[test]
    fn publish_qos1_dup_retain_v4() {
        let bytes = [
            0x3B, 0x07, // PUBLISH, DUP, QoS 1, RETAIN (3.3.1)
            0x00, 0x01, b't', // topic name
            0x00, 0x0A, // packet identifier 10 (3.3.2.2)
            b'p', b'l', // payload
        ];
        let expected = Publish {
            dup: true,
            retain: true,
            ..publish(QoS::AtLeastOnce, "t", Some(10), b"pl")
        };
        assert_codec(&bytes, V4, &Packet::Publish(expected));
    }

    #[test]
    fn publish_qos2_empty_payload_v3() {
        let bytes = [0x34, 0x05, 0x00, 0x01, b't', 0x00, 0x01];
        let expected = publish(QoS::ExactlyOnce, "t", Some(1), b"");
        assert_codec(&bytes, V3, &Packet::Publish(expected));
    }

    #[test]
    fn publish_v5_empty_topic_with_topic_alias_mqtt_3_3_2_8() {
        let bytes = [
            0x30, 0x07, // PUBLISH QoS 0
            0x00, 0x00, // zero-length topic name
            0x03, 0x23, 0x00, 0x01, // properties: topic alias 1
            b'x', // payload
        ];
        let expected = Publish {
            topic: super::TopicName::empty(),
            properties: Properties::from(PropertyValues {
                topic_alias: Some(1),
                ..PropertyValues::default()
            }),
            ..publish(QoS::AtMostOnce, "t", None, b"x")
        };
        assert_codec(&bytes, V5, &Packet::Publish(expected));
    }

    #[test]
    fn publish_v5_with_an_outbound_topic_alias_puts_it_first_mqtt_3_3_2_11() {
        let bytes = [
            0x32, 0x10, // PUBLISH QoS 1, remaining length 16
            0x00, 0x01, b't', // topic
            0x00, 0x05, // packet identifier 5
            0x0A, // property length 10
            0x23, 0x00, 0x02, // topic alias 2, first (its offset is fixed)
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property k=v
        ];
        let mut p = publish(QoS::AtLeastOnce, "t", Some(5), b"");
        p.properties = Properties::from(PropertyValues {
            user_properties: vec![(s("k"), s("v"))],
            ..PropertyValues::default()
        });
        let mut out = BytesMut::from(&b"before"[..]);
        let at = super::encode_with_topic_alias(&p, 2, &mut out).expect("encodes");
        assert_eq!(&out[6..], bytes);
        assert_eq!(at, 9, "offset of the alias value in the packet");
        assert_eq!(super::encoded_len_with_topic_alias(&p), bytes.len());
        let mut expected = p.clone();
        expected.properties.topic_alias = Some(2);
        assert_decodes(&bytes, V5, &Packet::Publish(expected));
    }

    #[test]
    fn publish_v5_with_an_outbound_topic_alias_and_an_empty_topic() {
        let mut p = publish(QoS::AtMostOnce, "t", None, b"x");
        p.topic = super::TopicName::empty();
        let mut out = BytesMut::new();
        let at = super::encode_with_topic_alias(&p, 1, &mut out).expect("encodes");
        // The same bytes a client may send (publish_v5_empty_topic_with_topic_alias_...).
        assert_eq!(
            &out[..],
            [0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, b'x']
        );
        assert_eq!(at, 6);
    }

    #[test]
    fn publish_v5_qos1_with_properties() {
        let bytes = [
            0x32, 0x10, // PUBLISH QoS 1, remaining length 16
            0x00, 0x01, b't', // topic
            0x00, 0x05, // packet identifier 5
            0x09, // property length 9
            0x01, 0x01, // payload format indicator: UTF-8
            0x26, 0x00, 0x01, b'k', 0x00, 0x01, b'v', // user property k=v
            b'p', // payload
        ];
        let expected = Publish {
            properties: Properties::from(PropertyValues {
                payload_format_indicator: Some(1),
                user_properties: vec![(s("k"), s("v"))],
                ..PropertyValues::default()
            }),
            ..publish(QoS::AtLeastOnce, "t", Some(5), b"p")
        };
        assert_codec(&bytes, V5, &Packet::Publish(expected));
    }

    #[test]
    fn publish_v5_accepts_several_subscription_identifiers() {
        let bytes = [
            0x30, 0x09, 0x00, 0x01, b't', 0x04, 0x0B, 0x01, 0x0B, 0x02, b'p',
        ];
        let expected = Publish {
            properties: Properties::from(PropertyValues {
                subscription_identifiers: vec![1, 2],
                ..PropertyValues::default()
            }),
            ..publish(QoS::AtMostOnce, "t", None, b"p")
        };
        assert_codec(&bytes, V5, &Packet::Publish(expected));
    }

    #[test]
    fn publish_short_topic_is_inline_and_payload_shares_the_read_buffer() {
        let mut buf =
            bytes::BytesMut::from(&[0x30, 0x07, 0x00, 0x03, b'a', b'/', b'b', b'h', b'i'][..]);
        let base = buf.as_ptr() as usize;
        let Ok(Some(Packet::Publish(p))) = super::super::decode(&mut buf, V4, usize::MAX) else {
            panic!("valid PUBLISH");
        };
        assert_eq!(p.topic.as_str(), "a/b");
        assert!(p.topic.is_inline());
        assert_eq!(p.payload.as_ptr() as usize, base + 7);
    }

    /// Encodes `packet` in `version` and decodes it back from a fresh buffer, returning the
    /// PUBLISH and the buffer's start address.
    fn round_trip_publish(packet: Publish, version: ProtocolVersion) -> (Publish, usize) {
        let mut buf = BytesMut::new();
        super::super::encode(&Packet::Publish(packet.clone()), version, &mut buf).expect("encodes");
        let base = buf.as_ptr() as usize;
        match super::super::decode(&mut buf, version, usize::MAX) {
            Ok(Some(Packet::Publish(p))) => {
                assert_eq!(p, packet);
                (p, base)
            }
            other => panic!("expected a PUBLISH, got {other:?}"),
        }
    }

    #[test]
    fn publish_16_byte_payload_decodes_inline_topic_and_zero_copy_payload() {
        const TOPIC: &str = "sensors/room1/temperature";
        for version in [V4, V5] {
            let packet = publish(QoS::AtLeastOnce, TOPIC, Some(7), b"0123456789abcdef");
            let (p, base) = round_trip_publish(packet, version);
            assert!(p.topic.is_inline());
            // fixed header 2, topic 2 + 25, packet id 2, property length 1 in 5.0
            let props = usize::from(version == V5);
            assert_eq!(
                p.payload.as_ptr() as usize,
                base + 2 + 2 + TOPIC.len() + 2 + props
            );
        }
    }

    #[test]
    fn publish_long_topic_is_a_slice_of_the_read_buffer() {
        let long = "l/".repeat(super::super::topic::INLINE_TOPIC_LEN);
        for version in [V3, V4, V5] {
            let (p, base) =
                round_trip_publish(publish(QoS::AtMostOnce, &long, None, b"x"), version);
            assert!(!p.topic.is_inline());
            assert_eq!(p.topic.as_bytes().as_ptr() as usize, base + 4);
            let props = usize::from(version == V5);
            assert_eq!(p.payload.as_ptr() as usize, base + 4 + long.len() + props);
        }
    }

    #[test]
    fn publish_response_topic_round_trips_inline_and_shared() {
        let long = "r/".repeat(super::super::topic::INLINE_TOPIC_LEN);
        for text in ["reply/to", long.as_str()] {
            let packet = Publish {
                properties: Properties::from(PropertyValues {
                    response_topic: Some(topic(text)),
                    ..PropertyValues::default()
                }),
                ..publish(QoS::AtMostOnce, text, None, b"p")
            };
            let (p, _) = round_trip_publish(packet, V5);
            let response = p
                .properties
                .response_topic
                .as_ref()
                .expect("response topic");
            assert_eq!(response.as_str(), text);
            assert_eq!(response.is_inline(), text.len() <= 38);
        }
    }

    #[test]
    fn publish_refuses_wildcard_in_short_and_long_topic_mqtt_3_3_2_2() {
        let long = "w/".repeat(super::super::topic::INLINE_TOPIC_LEN);
        for t in ["a/+".to_string(), format!("{long}#")] {
            let mut bytes = vec![0x30, 0, 0, t.len() as u8];
            bytes.extend_from_slice(t.as_bytes());
            bytes[1] = (bytes.len() - 2) as u8;
            assert_refused(&bytes, V4, DecodeError::Topic(TopicError::WildcardInName));
        }
    }

    #[test]
    fn publish_refuses_qos_3_mqtt_3_3_1_4() {
        assert_refused(&[0x36, 0x03, 0x00, 0x01, b't'], V4, DecodeError::InvalidQoS);
    }

    #[test]
    fn publish_refuses_dup_on_qos_0_mqtt_3_3_1_2() {
        assert_refused(
            &[0x38, 0x03, 0x00, 0x01, b't'],
            V4,
            DecodeError::DupWithQoS0,
        );
    }

    #[test]
    fn publish_refuses_packet_id_0_mqtt_2_2_1_3() {
        assert_refused(
            &[0x32, 0x05, 0x00, 0x01, b't', 0x00, 0x00],
            V4,
            DecodeError::ZeroPacketId,
        );
    }

    #[test]
    fn publish_refuses_empty_topic_without_alias_mqtt_4_7_3_1() {
        assert_refused(&[0x30, 0x02, 0x00, 0x00], V4, DecodeError::EmptyTopic);
        assert_refused(&[0x30, 0x03, 0x00, 0x00, 0x00], V5, DecodeError::EmptyTopic);
    }

    #[test]
    fn publish_refuses_wildcards_in_topic_mqtt_3_3_2_2() {
        assert_refused(
            &[0x30, 0x03, 0x00, 0x01, b'#'],
            V4,
            DecodeError::Topic(TopicError::WildcardInName),
        );
    }

    #[test]
    fn publish_refuses_ill_formed_utf8_topic_mqtt_1_5_4_1() {
        let error = DecodeError::Topic(TopicError::String(StringError::InvalidUtf8));
        assert_refused(&[0x30, 0x03, 0x00, 0x01, 0xFF], V4, error.clone());
        assert_eq!(error.reason_code(), ReasonCode::MalformedPacket);
    }

    #[test]
    fn publish_refuses_topic_alias_0_and_subscription_identifier_0() {
        assert_refused(
            &[0x30, 0x07, 0x00, 0x01, b't', 0x03, 0x23, 0x00, 0x00],
            V5,
            DecodeError::InvalidPropertyValue(0x23),
        );
        // [MQTT-3.3.2-8] / section 3.3.4: alias 0 is answered with 0x94, not 0x82.
        let alias_0 = DecodeError::InvalidPropertyValue(0x23);
        assert_eq!(alias_0.reason_code(), ReasonCode::TopicAliasInvalid);
        let sub_id_0 = DecodeError::InvalidPropertyValue(0x0B);
        assert_eq!(sub_id_0.reason_code(), ReasonCode::ProtocolError);
        assert_refused(
            &[0x30, 0x06, 0x00, 0x01, b't', 0x02, 0x0B, 0x00],
            V5,
            DecodeError::InvalidPropertyValue(0x0B),
        );
    }

    #[test]
    fn publish_refuses_property_length_past_the_packet() {
        assert_refused(
            &[0x30, 0x04, 0x00, 0x01, b't', 0x05],
            V5,
            DecodeError::UnexpectedEnd,
        );
    }

    fn resp(id: u16, reason: ReasonCode) -> PubResp {
        PubResp {
            reason,
            ..PubResp::new(pid(id))
        }
    }

    #[test]
    fn acknowledgements_v4_carry_only_the_packet_id() {
        assert_codec(
            &[0x40, 0x02, 0x00, 0x07],
            V4,
            &Packet::PubAck(PubResp::new(pid(7))),
        );
        assert_codec(
            &[0x50, 0x02, 0x00, 0x07],
            V4,
            &Packet::PubRec(PubResp::new(pid(7))),
        );
        // PUBREL's fixed header flags are 0b0010 [MQTT-3.6.1-1].
        assert_codec(
            &[0x62, 0x02, 0x00, 0x07],
            V4,
            &Packet::PubRel(PubResp::new(pid(7))),
        );
        assert_codec(
            &[0x70, 0x02, 0x00, 0x07],
            V3,
            &Packet::PubComp(PubResp::new(pid(7))),
        );
    }

    #[test]
    fn acknowledgements_v5_short_forms_3_4_2_1() {
        // Remaining length 2: Success, no properties.
        assert_codec(
            &[0x70, 0x02, 0x00, 0x07],
            V5,
            &Packet::PubComp(PubResp::new(pid(7))),
        );
        // Remaining length 3: a reason code, no properties.
        assert_codec(
            &[0x50, 0x03, 0x00, 0x07, 0x10],
            V5,
            &Packet::PubRec(resp(7, ReasonCode::NoMatchingSubscribers)),
        );
        // Success with an empty property list is the same packet as the short form.
        assert_decodes(
            &[0x40, 0x04, 0x00, 0x07, 0x00, 0x00],
            V5,
            &Packet::PubAck(PubResp::new(pid(7))),
        );
    }

    #[test]
    fn puback_v5_with_reason_string() {
        let bytes = [
            0x40, 0x08, // PUBACK, remaining length 8
            0x00, 0x07, // packet identifier
            0x80, // Unspecified error
            0x04, 0x1F, 0x00, 0x01, b'e', // properties: reason string "e"
        ];
        let expected = PubResp {
            properties: Properties::from(PropertyValues {
                reason_string: Some(s("e")),
                ..PropertyValues::default()
            }),
            ..resp(7, ReasonCode::UnspecifiedError)
        };
        assert_codec(&bytes, V5, &Packet::PubAck(expected));
    }

    #[test]
    fn pubrel_v3_tolerates_dup_flag() {
        assert_decodes(
            &[0x6A, 0x02, 0x00, 0x07],
            V3,
            &Packet::PubRel(PubResp::new(pid(7))),
        );
    }

    #[test]
    fn acknowledgements_refuse_reserved_flags_mqtt_2_1_3_1() {
        let error = DecodeError::ReservedFlags {
            packet_type: 6,
            flags: 0,
        };
        assert_refused(&[0x60, 0x02, 0x00, 0x07], V4, error);
        let error = DecodeError::ReservedFlags {
            packet_type: 4,
            flags: 1,
        };
        assert_refused(&[0x41, 0x02, 0x00, 0x07], V5, error);
    }

    #[test]
    fn acknowledgements_refuse_bad_lengths_and_reasons() {
        assert_refused(
            &[0x40, 0x03, 0x00, 0x07, 0x00],
            V4,
            DecodeError::TrailingBytes,
        );
        assert_refused(&[0x40, 0x01, 0x00], V4, DecodeError::UnexpectedEnd);
        assert_refused(&[0x40, 0x02, 0x00, 0x00], V4, DecodeError::ZeroPacketId);
        // 0x92 belongs to PUBREL/PUBCOMP, 0x10 to PUBACK/PUBREC.
        assert_refused(
            &[0x40, 0x03, 0x00, 0x07, 0x92],
            V5,
            DecodeError::InvalidReasonCode(0x92),
        );
        assert_refused(
            &[0x62, 0x03, 0x00, 0x07, 0x10],
            V5,
            DecodeError::InvalidReasonCode(0x10),
        );
    }
}
