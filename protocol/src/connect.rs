//! CONNECT (3.1) for MQTT 3.1 ("MQIsdp", level 3), 3.1.1 ("MQTT", 4) and 5.0; CONNACK is
//! `connack.rs`.

use super::error::{DecodeError, EncodeError};
use super::packet::{Connect, LastWill};
use super::properties::{PropertyContext, decode_properties};
use super::topic::TopicName;
use super::types::{ProtocolVersion, QoS};
use super::wire::{Reader, prefixed_len, put_binary, put_string};
use bytes::{BufMut, BytesMut};

const RESERVED: u8 = 0x01;
const CLEAN_START: u8 = 0x02;
const WILL: u8 = 0x04;
const WILL_QOS_SHIFT: u8 = 3;
const WILL_RETAIN: u8 = 0x20;
const PASSWORD: u8 = 0x40;
const USERNAME: u8 = 0x80;

fn protocol_name(version: ProtocolVersion) -> &'static [u8] {
    match version {
        ProtocolVersion::V3 => b"MQIsdp",
        ProtocolVersion::V4 | ProtocolVersion::V5 => b"MQTT",
    }
}

/// Set in the protocol level by a bridge (Mosquitto's `try_private`): 0x83 / 0x84 for 3.1 /
/// 3.1.1. Not defined for 5.0, whose subscription options say the same (No Local, Retain As
/// Published).
pub const BRIDGE_LEVEL_BIT: u8 = 0x80;

/// The protocol name and level fix the version of everything after them [MQTT-3.1.2-1]
/// [MQTT-3.1.2-2].
/// Also returns whether the level carries `BRIDGE_LEVEL_BIT` (3.1 and 3.1.1 only).
fn decode_version(r: &mut Reader) -> Result<(ProtocolVersion, bool), DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    let bridge = level & BRIDGE_LEVEL_BIT != 0;
    match (&name[..], level & !BRIDGE_LEVEL_BIT) {
        (b"MQIsdp", 3) => Ok((ProtocolVersion::V3, bridge)),
        (b"MQTT", 4) => Ok((ProtocolVersion::V4, bridge)),
        (b"MQTT", 5) if !bridge => Ok((ProtocolVersion::V5, false)),
        (b"MQIsdp" | b"MQTT", _) => Err(DecodeError::UnsupportedProtocolVersion(level)),
        _ => Err(DecodeError::InvalidProtocolName),
    }
}

/// Checks the connect flags byte: reserved bit 0 [MQTT-3.1.2-3], will QoS and retain only with
/// a will [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15], will QoS 3 [MQTT-3.1.2-12], and
/// before 5.0 no password without a user name [MQTT-3.1.2-22].
fn check_flags(flags: u8, version: ProtocolVersion) -> Result<(), DecodeError> {
    let will_qos = (flags >> WILL_QOS_SHIFT) & 0x03;
    if flags & RESERVED != 0 {
        return Err(DecodeError::InvalidConnectFlags);
    }
    if will_qos == 3 {
        return Err(DecodeError::InvalidQoS);
    }
    if flags & WILL == 0 && (will_qos != 0 || flags & WILL_RETAIN != 0) {
        return Err(DecodeError::InvalidConnectFlags);
    }
    if version != ProtocolVersion::V5 && flags & PASSWORD != 0 && flags & USERNAME == 0 {
        return Err(DecodeError::InvalidConnectFlags);
    }
    Ok(())
}

pub(crate) fn decode_connect(r: &mut Reader) -> Result<Connect, DecodeError> {
    let (version, bridge) = decode_version(r)?;
    let flags = r.u8()?;
    check_flags(flags, version)?;
    let keep_alive = r.u16()?;
    let properties = decode_properties(r, version, PropertyContext::Connect)?;
    let client_id = r.string()?;
    let will = if flags & WILL != 0 {
        Some(decode_will(r, flags, version)?)
    } else {
        None
    };
    let username = if flags & USERNAME != 0 {
        Some(r.string()?)
    } else {
        None
    };
    let password = if flags & PASSWORD != 0 {
        Some(r.binary()?)
    } else {
        None
    };
    r.finish()?;
    Ok(Connect {
        version,
        bridge,
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

fn decode_will(
    r: &mut Reader,
    flags: u8,
    version: ProtocolVersion,
) -> Result<LastWill, DecodeError> {
    let properties = decode_properties(r, version, PropertyContext::Will)?;
    let topic = TopicName::from_mqtt_string(r.string()?)?;
    let payload = r.binary()?;
    Ok(LastWill {
        topic,
        payload,
        qos: QoS::from_bits((flags >> WILL_QOS_SHIFT) & 0x03).ok_or(DecodeError::InvalidQoS)?,
        retain: flags & WILL_RETAIN != 0,
        properties,
    })
}

impl Connect {
    fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_start {
            flags |= CLEAN_START;
        }
        if let Some(will) = &self.will {
            flags |= WILL | ((will.qos as u8) << WILL_QOS_SHIFT);
            if will.retain {
                flags |= WILL_RETAIN;
            }
        }
        if self.username.is_some() {
            flags |= USERNAME;
        }
        if self.password.is_some() {
            flags |= PASSWORD;
        }
        flags
    }

    /// The remaining length, in the packet's own protocol version.
    pub(crate) fn body_len(&self) -> usize {
        let v5 = self.version.has_properties();
        let mut len = prefixed_len(protocol_name(self.version).len()) + 1 + 1 + 2;
        if v5 {
            len += self.properties.encoded_len(PropertyContext::Connect);
        }
        len += prefixed_len(self.client_id.len());
        if let Some(will) = &self.will {
            if v5 {
                len += will.properties.encoded_len(PropertyContext::Will);
            }
            len += prefixed_len(will.topic.as_bytes().len()) + prefixed_len(will.payload.len());
        }
        if let Some(username) = &self.username {
            len += prefixed_len(username.len());
        }
        if let Some(password) = &self.password {
            len += prefixed_len(password.len());
        }
        len
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let v5 = self.version.has_properties();
        put_binary(out, protocol_name(self.version))?;
        let bridge = match self.version {
            ProtocolVersion::V5 => 0,
            _ if self.bridge => BRIDGE_LEVEL_BIT,
            _ => 0,
        };
        out.put_u8(self.version as u8 | bridge);
        out.put_u8(self.flags());
        out.put_u16(self.keep_alive);
        if v5 {
            self.properties.encode(PropertyContext::Connect, out)?;
        }
        put_string(out, &self.client_id);
        if let Some(will) = &self.will {
            if v5 {
                will.properties.encode(PropertyContext::Will, out)?;
            }
            put_binary(out, will.topic.as_bytes())?;
            put_binary(out, &will.payload)?;
        }
        if let Some(username) = &self.username {
            put_string(out, username);
        }
        if let Some(password) = &self.password {
            put_binary(out, password)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::packet::{Connect, LastWill, Packet};
    use super::super::{DecodeError, Properties, PropertyValues, QoS};

    fn connect(version: super::ProtocolVersion) -> Connect {
        Connect {
            bridge: false,
            version,
            clean_start: true,
            keep_alive: 60,
            client_id: s(""),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }
    }

    #[test]
    fn connect_v3_with_will_user_and_password() {
        let bytes = [
            0x10, 30, // CONNECT, remaining length 30
            0x00, 0x06, b'M', b'Q', b'I', b's', b'd', b'p', // protocol name (3.1)
            0x03, // protocol level 3
            0xEE, // user, password, will retain, will QoS 1, will, clean session
            0x00, 0x3C, // keep alive 60 s
            0x00, 0x02, b'c', b'1', // client identifier
            0x00, 0x01, b'w', // will topic
            0x00, 0x03, b'b', b'y', b'e', // will message
            0x00, 0x01, b'u', // user name
            0x00, 0x01, b'p', // password
        ];
        let expected = Connect {
            bridge: false,
            client_id: s("c1"),
            will: Some(LastWill {
                topic: topic("w"),
                payload: b(b"bye"),
                qos: QoS::AtLeastOnce,
                retain: true,
                properties: Properties::default(),
            }),
            username: Some(s("u")),
            password: Some(b(b"p")),
            ..connect(V3)
        };
        // CONNECT carries its own version: the connection's is ignored.
        assert_codec(&bytes, V5, &Packet::Connect(Box::new(expected)));
    }

    #[test]
    fn will_topic_round_trips_inline_and_shared() {
        let long = "w/".repeat(super::super::topic::INLINE_TOPIC_LEN);
        for (text, version) in [("will/t", V4), (long.as_str(), V4), (long.as_str(), V5)] {
            let packet = Packet::Connect(Box::new(Connect {
                bridge: false,
                will: Some(LastWill {
                    topic: topic(text),
                    payload: b(b"bye"),
                    qos: QoS::AtMostOnce,
                    retain: false,
                    properties: Properties::default(),
                }),
                ..connect(version)
            }));
            let mut buf = bytes::BytesMut::new();
            super::super::encode(&packet, version, &mut buf).expect("encodes");
            let decoded = super::super::decode(&mut buf, version, usize::MAX);
            assert_eq!(decoded, Ok(Some(packet)));
        }
    }

    #[test]
    fn connect_v4_minimal_with_empty_client_id() {
        let bytes = [
            0x10, 12, // CONNECT, remaining length 12
            0x00, 0x04, b'M', b'Q', b'T', b'T', // protocol name [MQTT-3.1.2-1]
            0x04, // protocol level 4 [MQTT-3.1.2-2]
            0x02, // clean session
            0x00, 0x3C, // keep alive
            0x00, 0x00, // zero-length client identifier [MQTT-3.1.3-6]
        ];
        assert_codec(&bytes, V4, &Packet::Connect(Box::new(connect(V4))));
    }

    #[test]
    fn connect_v5_with_properties_and_will_properties() {
        let bytes = [
            0x10, 30, // CONNECT, remaining length 30
            0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, // "MQTT" level 5
            0x06, // will, clean start
            0x00, 0x0A, // keep alive 10 s
            0x05, 0x11, 0x00, 0x00, 0x00, 0x78, // properties: session expiry 120
            0x00, 0x01, b'a', // client identifier
            0x05, 0x18, 0x00, 0x00, 0x00, 0x05, // will properties: will delay 5 (3.1.3.2)
            0x00, 0x01, b't', // will topic
            0x00, 0x00, // empty will payload
        ];
        let expected = Connect {
            bridge: false,
            keep_alive: 10,
            client_id: s("a"),
            will: Some(LastWill {
                topic: topic("t"),
                payload: b(b""),
                qos: QoS::AtMostOnce,
                retain: false,
                properties: Properties::from(PropertyValues {
                    will_delay_interval: Some(5),
                    ..PropertyValues::default()
                }),
            }),
            properties: Properties::from(PropertyValues {
                session_expiry_interval: Some(120),
                ..PropertyValues::default()
            }),
            ..connect(V5)
        };
        assert_codec(&bytes, V4, &Packet::Connect(Box::new(expected)));
    }

    const V4_HEAD: [u8; 8] = [0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x00];

    fn v4_connect_with_flags(flags: u8) -> Vec<u8> {
        let mut bytes = vec![0x10, 12];
        bytes.extend_from_slice(&V4_HEAD);
        bytes[9] = flags;
        bytes.extend_from_slice(&[0x00, 0x3C, 0x00, 0x00]);
        bytes
    }

    #[test]
    fn connect_refuses_reserved_flag_mqtt_3_1_2_3() {
        assert_refused(
            &v4_connect_with_flags(0x03),
            V4,
            DecodeError::InvalidConnectFlags,
        );
    }

    #[test]
    fn connect_refuses_will_qos_or_retain_without_will_mqtt_3_1_2_11_and_15() {
        assert_refused(
            &v4_connect_with_flags(0x0A),
            V4,
            DecodeError::InvalidConnectFlags,
        );
        assert_refused(
            &v4_connect_with_flags(0x22),
            V4,
            DecodeError::InvalidConnectFlags,
        );
    }

    #[test]
    fn connect_refuses_will_qos_3_mqtt_3_1_2_12() {
        assert_refused(&v4_connect_with_flags(0x1E), V4, DecodeError::InvalidQoS);
    }

    #[test]
    fn connect_v4_refuses_password_without_user_name_mqtt_3_1_2_22() {
        assert_refused(
            &v4_connect_with_flags(0x42),
            V4,
            DecodeError::InvalidConnectFlags,
        );
    }

    #[test]
    fn connect_refuses_unknown_protocol_name_mqtt_3_1_2_1() {
        let mut bytes = v4_connect_with_flags(0x02);
        bytes[7] = b'X';
        assert_refused(&bytes, V4, DecodeError::InvalidProtocolName);
    }

    #[test]
    fn connect_refuses_unsupported_level_mqtt_3_1_2_2() {
        let mut bytes = v4_connect_with_flags(0x02);
        bytes[8] = 6;
        assert_refused(&bytes, V4, DecodeError::UnsupportedProtocolVersion(6));
        bytes[8] = 3;
        assert_refused(&bytes, V4, DecodeError::UnsupportedProtocolVersion(3));
        bytes[8] = 0x85;
        assert_refused(&bytes, V4, DecodeError::UnsupportedProtocolVersion(0x85));
    }

    #[test]
    fn a_bridge_level_0x84_is_3_1_1_from_a_bridge_and_encodes_back() {
        let mut bytes = v4_connect_with_flags(0x02);
        bytes[8] = 0x84;
        let mut buf = bytes::BytesMut::from(&bytes[..]);
        let Ok(Some(Packet::Connect(c))) = crate::decode(&mut buf, V4, 1 << 20) else {
            panic!("0x84 refused")
        };
        assert!(c.bridge && c.version == crate::ProtocolVersion::V4);
        let mut out = bytes::BytesMut::new();
        assert!(crate::encode(&Packet::Connect(c), V4, &mut out).is_ok());
        assert_eq!(&out[..], &bytes[..]);
    }

    #[test]
    fn connect_refuses_trailing_bytes() {
        let mut bytes = v4_connect_with_flags(0x02);
        bytes[1] = 13;
        bytes.push(0);
        assert_refused(&bytes, V4, DecodeError::TrailingBytes);
    }

    fn v5_connect_with_properties(props: &[u8]) -> Vec<u8> {
        let mut bytes = vec![
            0x10, 0, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x05, 0x02, 0x00, 0x00,
        ];
        bytes.push(props.len() as u8);
        bytes.extend_from_slice(props);
        bytes.extend_from_slice(&[0x00, 0x00]);
        bytes[1] = (bytes.len() - 2) as u8;
        bytes
    }

    #[test]
    fn connect_properties_are_checked_against_the_table() {
        let refused =
            |props: &[u8], error| assert_refused(&v5_connect_with_properties(props), V5, error);
        refused(&[0x23, 0x00, 0x01], DecodeError::PropertyNotAllowed(0x23));
        refused(&[0x7F, 0x00], DecodeError::UnknownProperty(0x7F));
        refused(&[0x21, 0x00, 0x00], DecodeError::InvalidPropertyValue(0x21));
        refused(&[0x27, 0, 0, 0, 0], DecodeError::InvalidPropertyValue(0x27));
        refused(&[0x17, 0x02], DecodeError::InvalidPropertyValue(0x17));
        refused(
            &[0x11, 0, 0, 0, 1, 0x11, 0, 0, 0, 2],
            DecodeError::DuplicateProperty(0x11),
        );
        refused(&[0x11, 0, 0], DecodeError::UnexpectedEnd);
    }

    #[test]
    fn connect_accepts_repeated_user_properties_in_order() {
        let props = [0x26, 0, 1, b'k', 0, 1, b'1', 0x26, 0, 1, b'k', 0, 1, b'2'];
        let mut buf = bytes::BytesMut::from(&v5_connect_with_properties(&props)[..]);
        let Ok(Some(Packet::Connect(c))) = super::super::decode(&mut buf, V5, usize::MAX) else {
            panic!("valid CONNECT");
        };
        assert_eq!(
            c.properties.user_properties,
            [(s("k"), s("1")), (s("k"), s("2"))]
        );
    }
}
