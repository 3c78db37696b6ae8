//! Encode-once fan-out: a routed message is encoded at most once per (protocol family, QoS,
//! retain flag) and the bytes are copied into each subscriber's outbound buffer, with the
//! subscriber's packet id patched in for QoS 1/2.

use crate::protocol::{self, Packet, PacketId, ProtocolVersion, Publish, QoS};
use crate::session::Message;
use bytes::BytesMut;

/// Any valid id; each subscriber's own id overwrites it.
const PLACEHOLDER_ID: u16 = 1;
/// 3.1/3.1.1 and 5.0 encode a PUBLISH differently; 3 QoS levels; retain on or off.
const SLOTS: usize = 2 * 3 * 2;

#[derive(Debug, Default)]
struct Slot {
    bytes: BytesMut,
    /// Where the two packet id bytes start (QoS 1/2 only).
    id_offset: usize,
    /// The `round` this slot was encoded in; older contents are stale.
    round: u64,
}

/// The per-shard cache of encoded PUBLISHes for the message being routed. Buffers keep their
/// capacity between messages, so steady-state fan-out does not allocate.
#[derive(Debug, Default)]
pub struct PublishEncoder {
    slots: [Slot; SLOTS],
    round: u64,
}

impl PublishEncoder {
    /// Starts a new message: every cached encoding becomes stale.
    pub fn begin(&mut self) {
        self.round += 1;
    }

    /// Appends the PUBLISH of `msg` at `qos`/`retain` for a `version` client to `out`, with
    /// `packet_id` patched in. Returns the number of bytes appended (0 if it cannot be encoded).
    pub fn append(
        &mut self,
        msg: &Message,
        version: ProtocolVersion,
        qos: QoS,
        retain: bool,
        packet_id: Option<PacketId>,
        out: &mut BytesMut,
    ) -> usize {
        let round = self.round;
        let slot = &mut self.slots[slot_index(version, qos, retain)];
        if slot.round != round || slot.bytes.is_empty() {
            slot.bytes.clear();
            let Some(id_offset) = encode_publish(msg, version, qos, retain, &mut slot.bytes) else {
                return 0;
            };
            slot.id_offset = id_offset;
            slot.round = round;
        }
        let start = out.len();
        out.extend_from_slice(&slot.bytes);
        if let Some(id) = packet_id {
            let at = start + slot.id_offset;
            out[at..at + 2].copy_from_slice(&id.get().to_be_bytes());
        }
        slot.bytes.len()
    }

    /// The encoded size of the last `append`ed variant, for Maximum Packet Size checks.
    pub fn encoded_len(
        &mut self,
        msg: &Message,
        version: ProtocolVersion,
        qos: QoS,
        retain: bool,
    ) -> usize {
        let round = self.round;
        let slot = &mut self.slots[slot_index(version, qos, retain)];
        if slot.round != round || slot.bytes.is_empty() {
            slot.bytes.clear();
            match encode_publish(msg, version, qos, retain, &mut slot.bytes) {
                Some(id_offset) => {
                    slot.id_offset = id_offset;
                    slot.round = round;
                }
                None => return usize::MAX,
            }
        }
        slot.bytes.len()
    }
}

fn slot_index(version: ProtocolVersion, qos: QoS, retain: bool) -> usize {
    let family = usize::from(version == ProtocolVersion::V5);
    family * 6 + (qos as usize) * 2 + usize::from(retain)
}

/// Encodes the PUBLISH and returns the offset of its packet id bytes.
fn encode_publish(
    msg: &Message,
    version: ProtocolVersion,
    qos: QoS,
    retain: bool,
    out: &mut BytesMut,
) -> Option<usize> {
    let packet = Packet::Publish(Publish {
        dup: false,
        qos,
        retain,
        topic: msg.topic.clone(),
        packet_id: (qos != QoS::AtMostOnce)
            .then(|| PacketId::new(PLACEHOLDER_ID))
            .flatten(),
        properties: msg.properties.as_deref().cloned().unwrap_or_default(),
        payload: msg.payload.clone(),
    });
    protocol::encode(&packet, version, out).ok()?;
    // Fixed header: one type byte, then a variable byte integer of up to 4 bytes.
    let varint_len = out.iter().skip(1).take(4).position(|b| b & 0x80 == 0)? + 1;
    Some(1 + varint_len + 2 + msg.topic.as_bytes().len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::TopicName;
    use bytes::Bytes;

    fn msg() -> Message {
        Message {
            topic: TopicName::try_from("a/b").expect("valid"),
            payload: Bytes::from_static(b"payload"),
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: None,
            expires_at: None,
        }
    }

    fn decode_publish(bytes: &mut BytesMut, version: ProtocolVersion) -> Publish {
        match protocol::decode(bytes, version, 1 << 20) {
            Ok(Some(Packet::Publish(p))) => p,
            other => panic!("expected a PUBLISH, got {other:?}"),
        }
    }

    #[test]
    fn patched_packet_ids_decode_per_subscriber() {
        let mut enc = PublishEncoder::default();
        enc.begin();
        let m = msg();
        for version in [ProtocolVersion::V4, ProtocolVersion::V5] {
            let mut out = BytesMut::new();
            let a = PacketId::new(0x1234).expect("non-zero");
            let b = PacketId::new(7).expect("non-zero");
            enc.append(&m, version, QoS::AtLeastOnce, false, Some(a), &mut out);
            enc.append(&m, version, QoS::AtLeastOnce, false, Some(b), &mut out);
            enc.append(&m, version, QoS::AtMostOnce, true, None, &mut out);
            let first = decode_publish(&mut out, version);
            let second = decode_publish(&mut out, version);
            let third = decode_publish(&mut out, version);
            assert_eq!(first.packet_id, Some(a));
            assert_eq!(second.packet_id, Some(b));
            assert_eq!(first.topic.as_str(), "a/b");
            assert_eq!(&first.payload[..], b"payload");
            assert_eq!(third.qos, QoS::AtMostOnce);
            assert!(third.retain);
            assert!(out.is_empty());
        }
    }

    #[test]
    fn a_new_round_reencodes() {
        let mut enc = PublishEncoder::default();
        enc.begin();
        let mut out = BytesMut::new();
        enc.append(
            &msg(),
            ProtocolVersion::V4,
            QoS::AtMostOnce,
            false,
            None,
            &mut out,
        );
        enc.begin();
        let mut other = msg();
        other.topic = TopicName::try_from("c").expect("valid");
        enc.append(
            &other,
            ProtocolVersion::V4,
            QoS::AtMostOnce,
            false,
            None,
            &mut out,
        );
        decode_publish(&mut out, ProtocolVersion::V4);
        assert_eq!(
            decode_publish(&mut out, ProtocolVersion::V4).topic.as_str(),
            "c"
        );
    }
}
