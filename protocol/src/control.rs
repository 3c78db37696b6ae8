//! PINGREQ (3.12), PINGRESP (3.13), DISCONNECT (3.14) and AUTH (3.15, 5.0 only).

use super::error::{DecodeError, EncodeError};
use super::packet::{Auth, Disconnect};
use super::properties::{Properties, PropertyContext};
use super::reasons;
use super::types::{ProtocolVersion, ReasonCode};
use super::wire::Reader;
use bytes::{BufMut, BytesMut};

/// A reason code and properties that may both be left off: remaining length 0 means Success
/// without properties, 1 a reason code without properties (3.14.2.1, 3.15.2.1).
fn decode_reason_and_properties(
    r: &mut Reader,
    allowed: &[ReasonCode],
    ctx: PropertyContext,
) -> Result<(ReasonCode, Properties), DecodeError> {
    if r.is_empty() {
        return Ok((ReasonCode::Success, Properties::default()));
    }
    let reason = reasons::decode_in(r.u8()?, allowed)?;
    let properties = if r.is_empty() {
        Properties::default()
    } else {
        Properties::decode(r, ctx)?
    };
    r.finish()?;
    Ok((reason, properties))
}

fn reason_and_properties_len(
    reason: ReasonCode,
    properties: &Properties,
    ctx: PropertyContext,
) -> usize {
    match (reason, properties.content_len(ctx)) {
        (ReasonCode::Success, 0) => 0,
        (_, 0) => 1,
        (_, len) => 1 + super::wire::var_int_len(len) + len,
    }
}

fn encode_reason_and_properties(
    reason: ReasonCode,
    properties: &Properties,
    ctx: PropertyContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    match (reason, properties.content_len(ctx)) {
        (ReasonCode::Success, 0) => Ok(()),
        (_, 0) => {
            out.put_u8(reason as u8);
            Ok(())
        }
        (_, _) => {
            out.put_u8(reason as u8);
            properties.encode(ctx, out)
        }
    }
}

/// PINGREQ and PINGRESP have no variable header and no payload.
pub(crate) fn decode_empty(r: &Reader) -> Result<(), DecodeError> {
    r.finish()
}

/// DISCONNECT: empty before 5.0 (3.14 of 3.1.1).
pub(crate) fn decode_disconnect(
    r: &mut Reader,
    version: ProtocolVersion,
) -> Result<Disconnect, DecodeError> {
    if !version.has_properties() {
        r.finish()?;
        return Ok(Disconnect::new(ReasonCode::Success));
    }
    let (reason, properties) =
        decode_reason_and_properties(r, reasons::DISCONNECT, PropertyContext::Disconnect)?;
    Ok(Disconnect { reason, properties })
}

impl Disconnect {
    pub(crate) fn body_len(&self, version: ProtocolVersion) -> usize {
        if version.has_properties() {
            reason_and_properties_len(self.reason, &self.properties, PropertyContext::Disconnect)
        } else {
            0
        }
    }

    pub(crate) fn encode_body(
        &self,
        version: ProtocolVersion,
        out: &mut BytesMut,
    ) -> Result<(), EncodeError> {
        if version.has_properties() {
            encode_reason_and_properties(
                self.reason,
                &self.properties,
                PropertyContext::Disconnect,
                out,
            )
        } else {
            Ok(())
        }
    }
}

/// AUTH exists only in 5.0; the caller refuses it earlier for other versions.
pub(crate) fn decode_auth(r: &mut Reader) -> Result<Auth, DecodeError> {
    let (reason, properties) =
        decode_reason_and_properties(r, reasons::AUTH, PropertyContext::Auth)?;
    Ok(Auth { reason, properties })
}

impl Auth {
    pub(crate) fn body_len(&self) -> usize {
        reason_and_properties_len(self.reason, &self.properties, PropertyContext::Auth)
    }

    pub(crate) fn encode_body(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        encode_reason_and_properties(self.reason, &self.properties, PropertyContext::Auth, out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::*;
    use super::super::packet::{Auth, Disconnect, Packet};
    use super::super::{DecodeError, Properties, PropertyValues, ReasonCode};

    #[test]
    fn ping_in_every_version() {
        for version in [V3, V4, V5] {
            assert_codec(&[0xC0, 0x00], version, &Packet::PingReq);
            assert_codec(&[0xD0, 0x00], version, &Packet::PingResp);
        }
    }

    #[test]
    fn ping_refuses_a_body() {
        assert_refused(&[0xC0, 0x01, 0x00], V4, DecodeError::TrailingBytes);
    }

    #[test]
    fn disconnect_v4_is_empty() {
        let expected = Packet::Disconnect(Disconnect::new(ReasonCode::Success));
        assert_codec(&[0xE0, 0x00], V4, &expected);
        assert_refused(&[0xE0, 0x01, 0x00], V4, DecodeError::TrailingBytes);
    }

    #[test]
    fn disconnect_v5_short_forms_3_14_2_1() {
        let normal = Packet::Disconnect(Disconnect::new(ReasonCode::Success));
        assert_codec(&[0xE0, 0x00], V5, &normal);
        let taken_over = Packet::Disconnect(Disconnect::new(ReasonCode::SessionTakenOver));
        assert_codec(&[0xE0, 0x01, 0x8E], V5, &taken_over);
    }

    #[test]
    fn disconnect_v5_with_properties() {
        let bytes = [
            0xE0, 0x07, // DISCONNECT
            0x04, // Disconnect with Will Message
            0x05, 0x11, 0x00, 0x00, 0x00, 0x00, // properties: session expiry 0
        ];
        let expected = Disconnect {
            reason: ReasonCode::DisconnectWithWillMessage,
            properties: Properties::from(PropertyValues {
                session_expiry_interval: Some(0),
                ..PropertyValues::default()
            }),
        };
        assert_codec(&bytes, V5, &Packet::Disconnect(expected));
    }

    #[test]
    fn disconnect_refuses_reserved_flags_and_foreign_reasons() {
        let error = DecodeError::ReservedFlags {
            packet_type: 14,
            flags: 1,
        };
        assert_refused(&[0xE1, 0x00], V5, error);
        assert_refused(
            &[0xE0, 0x01, 0x18],
            V5,
            DecodeError::InvalidReasonCode(0x18),
        );
    }

    #[test]
    fn auth_v5() {
        assert_codec(
            &[0xF0, 0x00],
            V5,
            &Packet::Auth(Auth {
                reason: ReasonCode::Success,
                properties: Properties::default(),
            }),
        );
        let bytes = [
            0xF0, 0x0A, // AUTH
            0x18, // Continue authentication
            0x08, 0x15, 0x00, 0x05, b'S', b'C', b'R', b'A', b'M', // authentication method
        ];
        let expected = Auth {
            reason: ReasonCode::ContinueAuthentication,
            properties: Properties::from(PropertyValues {
                authentication_method: Some(s("SCRAM")),
                ..PropertyValues::default()
            }),
        };
        assert_codec(&bytes, V5, &Packet::Auth(expected));
        assert_refused(
            &[0xF0, 0x01, 0x80],
            V5,
            DecodeError::InvalidReasonCode(0x80),
        );
    }

    #[test]
    fn auth_does_not_exist_before_v5() {
        assert_refused(&[0xF0, 0x00], V4, DecodeError::PacketNotInVersion);
        assert_refused(&[0xF0, 0x00], V3, DecodeError::PacketNotInVersion);
    }
}
