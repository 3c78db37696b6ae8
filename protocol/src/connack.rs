//! CONNACK (3.2) for MQTT 3.1, 3.1.1 and 5.0: acknowledge flags, then a 3.x return code or a
//! 5.0 reason code with properties.

use super::error::{DecodeError, EncodeError};
use super::packet::ConnAck;
use super::properties::{Properties, PropertyContext};
use super::reasons;
use super::types::ProtocolVersion;
use super::wire::Reader;
use bytes::{BufMut, BytesMut};

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

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::packet::{ConnAck, Packet};
    use super::super::{DecodeError, Properties, PropertyValues, ReasonCode};

    fn connack(session_present: bool, reason: ReasonCode) -> Packet {
        Packet::ConnAck(ConnAck {
            session_present,
            reason,
            properties: Properties::default(),
        })
    }

    #[test]
    fn connack_v4_maps_return_codes() {
        // Session present, return code 0 (3.2.2.2, 3.2.2.3 of 3.1.1).
        assert_codec(
            &[0x20, 0x02, 0x01, 0x00],
            V4,
            &connack(true, ReasonCode::Success),
        );
        assert_codec(
            &[0x20, 0x02, 0x00, 0x01],
            V4,
            &connack(false, ReasonCode::UnsupportedProtocolVersion),
        );
        assert_codec(
            &[0x20, 0x02, 0x00, 0x02],
            V4,
            &connack(false, ReasonCode::ClientIdentifierNotValid),
        );
        assert_codec(
            &[0x20, 0x02, 0x00, 0x03],
            V4,
            &connack(false, ReasonCode::ServerUnavailable),
        );
        assert_codec(
            &[0x20, 0x02, 0x00, 0x04],
            V4,
            &connack(false, ReasonCode::BadUserNameOrPassword),
        );
        assert_codec(
            &[0x20, 0x02, 0x00, 0x05],
            V4,
            &connack(false, ReasonCode::NotAuthorized),
        );
        assert_refused(
            &[0x20, 0x02, 0x00, 0x06],
            V4,
            DecodeError::InvalidReasonCode(6),
        );
    }

    #[test]
    fn connack_v3_has_no_session_present() {
        assert_codec(
            &[0x20, 0x02, 0x00, 0x02],
            V3,
            &connack(false, ReasonCode::ClientIdentifierNotValid),
        );
    }

    #[test]
    fn connack_v4_encodes_v5_reasons_as_nearest_return_code() {
        let mut out = bytes::BytesMut::new();
        super::super::encode(&connack(false, ReasonCode::Banned), V4, &mut out).expect("encodes");
        assert_eq!(&out[..], [0x20, 0x02, 0x00, 0x05]);
    }

    #[test]
    fn connack_v5_with_properties() {
        let bytes = [
            0x20, 0x06, // CONNACK, remaining length 6
            0x00, // no session present
            0x00, // Success
            0x03, 0x21, 0x00, 0x14, // properties: receive maximum 20
        ];
        let expected = Packet::ConnAck(ConnAck {
            session_present: false,
            reason: ReasonCode::Success,
            properties: Properties::from(PropertyValues {
                receive_maximum: Some(20),
                ..PropertyValues::default()
            }),
        });
        assert_codec(&bytes, V5, &expected);
    }

    #[test]
    fn connack_refuses_reserved_acknowledge_flags_mqtt_3_2_2_1() {
        assert_refused(
            &[0x20, 0x02, 0x02, 0x00],
            V4,
            DecodeError::InvalidConnAckFlags,
        );
    }

    #[test]
    fn connack_v5_refuses_reason_codes_outside_its_table() {
        assert_refused(
            &[0x20, 0x03, 0x00, 0x10, 0x00],
            V5,
            DecodeError::InvalidReasonCode(0x10),
        );
    }
}
