//! CONNECT (3.1) and CONNACK (3.2) for MQTT 3.1 ("MQIsdp", level 3), 3.1.1 ("MQTT", 4) and 5.0.

use super::error::{DecodeError, EncodeError};
use super::packet::{ConnAck, Connect, LastWill};
use super::properties::{Properties, PropertyContext};
use super::reasons;
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

/// The protocol name and level fix the version of everything after them [MQTT-3.1.2-1]
/// [MQTT-3.1.2-2].
fn decode_version(r: &mut Reader) -> Result<ProtocolVersion, DecodeError> {
    let name = r.binary()?;
    let level = r.u8()?;
    match (&name[..], level) {
        (b"MQIsdp", 3) => Ok(ProtocolVersion::V3),
        (b"MQTT", 4) => Ok(ProtocolVersion::V4),
        (b"MQTT", 5) => Ok(ProtocolVersion::V5),
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
    let version = decode_version(r)?;
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
        clean_start: flags & CLEAN_START != 0,
        keep_alive,
        client_id,
        will,
        username,
        password,
        properties,
    })
}

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
        out.put_u8(self.version as u8);
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

/// CONNACK: acknowledge flags, then the return code (3.1/3.1.1) or reason code and properties
/// (5.0). MQTT 3.1 has no Session Present: its first byte is unused and ignored.
pub(crate) fn decode_connack(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<ConnAck, DecodeError> {
    let flags = r.u8()?;
    let code = r.u8()?;
    let session_present = match version {
        ProtocolVersion::V3 => false,
        ProtocolVersion::V4 | ProtocolVersion::V5 if flags & 0xFE != 0 => {
            return Err(DecodeError::InvalidConnAckFlags);
        }
        ProtocolVersion::V4 | ProtocolVersion::V5 => flags & 0x01 != 0,
    };
    let (reason, properties) = if version.has_properties() {
        let reason = reasons::decode_in(code, reasons::CONNACK)?;
        (reason, Properties::decode(r, PropertyContext::ConnAck)?)
    } else {
        (reasons::connack_from_v4(code)?, Properties::default())
    };
    r.finish()?;
    Ok(ConnAck {
        session_present,
        reason,
        properties,
    })
}

impl ConnAck {
    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        match version {
            ProtocolVersion::V5 => 2 + self.properties.encoded_len(PropertyContext::ConnAck),
            ProtocolVersion::V3 | ProtocolVersion::V4 => 2,
        }
    }

    pub(crate) fn encode_body(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        let session_present = self.session_present && version != ProtocolVersion::V3;
        out.put_u8(u8::from(session_present));
        match version {
            ProtocolVersion::V5 => {
                out.put_u8(self.reason as u8);
                self.properties.encode(PropertyContext::ConnAck, out)
            }
            ProtocolVersion::V3 | ProtocolVersion::V4 => {
                out.put_u8(reasons::connack_to_v4(self.reason));
                Ok(())
            }
        }
    }
}
