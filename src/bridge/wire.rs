//! What marks a connection as a bridge's: Mosquitto's private protocol level (3.1.1 level
//! with the 0x80 bit, `try_private`), and the client id of a bridge's local session.

use bytes::BytesMut;

/// Set in the CONNECT's protocol level by a bridge (Mosquitto's `try_private`): 0x84 for
/// 3.1.1. A broker that does not know it refuses the CONNECT (0x01) and the bridge retries
/// with the plain level.
pub const BRIDGE_LEVEL_BIT: u8 = 0x80;

/// Where every bridge's local session id starts. Network clients may not use it (admission
/// refuses them), so no client can take over a bridge's session.
pub const LOCAL_ID_PREFIX: &str = "$bridge/";

/// The client id of bridge `name`'s local session; its home shard is where the bridge runs.
pub fn local_client_id(name: &str) -> String {
    format!("{LOCAL_ID_PREFIX}{name}")
}

/// Sets the private bit in an encoded CONNECT. The level is the byte after the fixed header
/// (type byte and 1 to 4 bytes of Remaining Length) and the protocol name (2-byte length +
/// "MQTT" or "MQIsdp") [MQTT-3.1.2-1]. Returns false if `connect` is not a CONNECT.
pub fn mark_private(connect: &mut BytesMut) -> bool {
    if connect.first() != Some(&0x10) {
        return false;
    }
    let Some(length_bytes) = connect.iter().skip(1).take(4).position(|b| b & 0x80 == 0) else {
        return false;
    };
    let name_at = 2 + length_bytes;
    let Some(name_len) = connect
        .get(name_at..name_at + 2)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    else {
        return false;
    };
    match connect.get_mut(name_at + 2 + name_len) {
        Some(level) => {
            *level |= BRIDGE_LEVEL_BIT;
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{self, Connect, Packet, Properties, ProtocolVersion};

    #[test]
    fn the_private_bit_goes_in_the_protocol_level() {
        let connect = Connect {
            version: ProtocolVersion::V4,
            clean_start: true,
            keep_alive: 60,
            client_id: "b".try_into().expect("id"),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        };
        let mut out = BytesMut::new();
        protocol::encode(
            &Packet::Connect(Box::new(connect)),
            ProtocolVersion::V4,
            &mut out,
        )
        .expect("encodes");
        assert!(mark_private(&mut out));
        // 0x10, remaining length, 0x00 0x04 "MQTT", level 0x84.
        assert_eq!(&out[2..9], &[0, 4, b'M', b'Q', b'T', b'T', 0x84]);
        assert!(!mark_private(&mut BytesMut::from(&[0x20u8, 2, 0, 0][..])));
    }
}
