//! Encode-once fan-out: a routed message is encoded at most once per (protocol family, QoS,
//! retain flag, outbound Topic Alias form) and the bytes are copied into each subscriber's
//! outbound buffer, with the subscriber's packet id and alias patched in.

use super::alias::AliasUse;
use crate::protocol::{self, PacketId, ProtocolVersion, Publish, QoS, TopicName};
use crate::session::Message;
use bytes::BytesMut;

/// Any valid id; each subscriber's own id overwrites it.
const PLACEHOLDER_ID: u16 = 1;
/// Any valid alias; each subscriber's own alias overwrites it.
const PLACEHOLDER_ALIAS: u16 = 1;
/// The DUP bit of a PUBLISH's first byte.
const DUP_FLAG: u8 = 0x08;
/// 3 QoS levels times retain on or off.
const FORMS: usize = 3 * 2;
/// 3.1/3.1.1 has one form per (QoS, retain); 5.0 three: no alias, setting one (full topic
/// plus alias) and using one (empty topic plus alias).
const SLOTS: usize = FORMS + 3 * FORMS;
/// A slot that grew past this for a large message gives its memory back when the next message
/// begins; smaller ones keep their capacity, so fan-out of ordinary messages never allocates.
pub const MAX_KEPT_SLOT: usize = 64 * 1024;

#[derive(Debug, Default)]
struct Slot {
    bytes: BytesMut,
    /// Where the two packet id bytes start (QoS 1/2 only).
    id_offset: usize,
    /// Where the two Topic Alias bytes start (alias forms only).
    alias_offset: usize,
    /// The `round` this slot was encoded in; older contents are stale.
    round: u64,
}

/// One encoded form of the message being routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Form {
    pub version: ProtocolVersion,
    pub qos: QoS,
    pub retain: bool,
    /// Ignored (no alias) for 3.1/3.1.1.
    pub alias: AliasUse,
}

impl Form {
    fn alias(&self) -> AliasUse {
        if self.version == ProtocolVersion::V5 {
            self.alias
        } else {
            AliasUse::None
        }
    }

    fn slot_index(&self) -> usize {
        let within = (self.qos as usize) * 2 + usize::from(self.retain);
        let family = match (self.version, self.alias()) {
            (ProtocolVersion::V5, AliasUse::None) => 1,
            (ProtocolVersion::V5, AliasUse::Set(_)) => 2,
            (ProtocolVersion::V5, AliasUse::Use(_)) => 3,
            _ => 0,
        };
        family * FORMS + within
    }
}

/// The per-shard cache of encoded PUBLISHes for the message being routed. Buffers keep their
/// capacity between messages (up to `MAX_KEPT_SLOT`), so steady-state fan-out does not
/// allocate, and a huge message does not pin its size in every slot it was encoded in.
#[derive(Debug, Default)]
pub struct PublishEncoder {
    slots: [Slot; SLOTS],
    round: u64,
    /// Some slot holds more than `MAX_KEPT_SLOT`.
    oversized: bool,
}

impl PublishEncoder {
    /// Starts a new message: every cached encoding becomes stale, and slots a large message
    /// grew are let go.
    pub fn begin(&mut self) {
        self.round += 1;
        self.release_oversized();
    }

    /// Lets go of the slots a large message grew (the shard's tick calls this too, so the
    /// last large message does not keep them until another message comes). Their encodings
    /// are of a finished message: the next one starts with `begin` anyway.
    pub fn release_oversized(&mut self) {
        if !self.oversized {
            return;
        }
        self.oversized = false;
        for slot in &mut self.slots {
            if slot.bytes.capacity() > MAX_KEPT_SLOT {
                slot.bytes = BytesMut::new();
            }
        }
    }

    /// The bytes the slots hold on to (for tests).
    #[cfg(test)]
    fn capacity(&self) -> usize {
        self.slots.iter().map(|s| s.bytes.capacity()).sum()
    }

    /// Appends the PUBLISH of `msg` in `form` to `out`, with `packet_id`, the form's alias
    /// and the DUP flag (a resend [MQTT-3.3.1-1]) patched in. Returns the number of bytes
    /// appended (0 if it cannot be encoded).
    #[inline]
    pub fn append(
        &mut self,
        msg: &Message,
        form: Form,
        packet_id: Option<PacketId>,
        dup: bool,
        out: &mut BytesMut,
    ) -> usize {
        let Some(slot) = self.slot(msg, form) else {
            return 0;
        };
        let start = out.len();
        out.extend_from_slice(&slot.bytes);
        if dup {
            out[start] |= DUP_FLAG;
        }
        if let Some(id) = packet_id {
            let at = start + slot.id_offset;
            out[at..at + 2].copy_from_slice(&id.get().to_be_bytes());
        }
        if let AliasUse::Set(alias) | AliasUse::Use(alias) = form.alias() {
            let at = start + slot.alias_offset;
            out[at..at + 2].copy_from_slice(&alias.to_be_bytes());
        }
        slot.bytes.len()
    }

    /// The size of the PUBLISH `append` would write, for Maximum Packet Size checks
    /// (`usize::MAX` if it cannot be encoded).
    pub fn encoded_len(&mut self, msg: &Message, form: Form) -> usize {
        self.slot(msg, form)
            .map_or(usize::MAX, |slot| slot.bytes.len())
    }

    /// The slot of `form`, encoded for the current message if it was not yet.
    #[inline(always)]
    fn slot(&mut self, msg: &Message, form: Form) -> Option<&mut Slot> {
        let round = self.round;
        let index = form.slot_index();
        let slot = &self.slots[index];
        if slot.round != round || slot.bytes.is_empty() {
            self.fill(index, msg, form)?;
        }
        Some(&mut self.slots[index])
    }

    /// Encodes `msg` in `form` into slot `index`: once per message and form. Kept out of
    /// `slot`, which every delivery runs, so that the check stays small enough to inline.
    #[inline(never)]
    fn fill(&mut self, index: usize, msg: &Message, form: Form) -> Option<()> {
        let slot = &mut self.slots[index];
        slot.bytes.clear();
        let (id_offset, alias_offset) = encode_publish(msg, form, &mut slot.bytes)?;
        slot.id_offset = id_offset;
        slot.alias_offset = alias_offset;
        slot.round = self.round;
        self.oversized |= slot.bytes.capacity() > MAX_KEPT_SLOT;
        Some(())
    }
}

fn encode_publish(msg: &Message, form: Form, out: &mut BytesMut) -> Option<(usize, usize)> {
    let (topic, alias) = match form.alias() {
        AliasUse::None => (msg.topic.clone(), None),
        AliasUse::Set(_) => (msg.topic.clone(), Some(PLACEHOLDER_ALIAS)),
        AliasUse::Use(_) => (TopicName::empty(), Some(PLACEHOLDER_ALIAS)),
    };
    let publish = Publish {
        dup: false,
        qos: form.qos,
        retain: form.retain,
        topic,
        packet_id: (form.qos != QoS::AtMostOnce)
            .then(|| PacketId::new(PLACEHOLDER_ID))
            .flatten(),
        properties: msg.properties.as_deref().cloned().unwrap_or_default(),
        payload: msg.payload.clone(),
    };
    let layout = protocol::encode_publish(&publish, form.version, alias, out).ok()?;
    Some((
        layout.packet_id.unwrap_or(0),
        layout.topic_alias.unwrap_or(0),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Packet, TopicName};
    use bytes::Bytes;

    fn msg() -> Message {
        Message {
            topic: TopicName::try_from("a/b").expect("valid"),
            payload: Bytes::from_static(b"payload"),
            qos: QoS::ExactlyOnce,
            retain: false,
            properties: None,
            expires_at: None,
            received_at: None,
        }
    }

    fn form(version: ProtocolVersion, qos: QoS, retain: bool) -> Form {
        Form {
            version,
            qos,
            retain,
            alias: AliasUse::None,
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
            let qos1 = form(version, QoS::AtLeastOnce, false);
            enc.append(&m, qos1, Some(a), false, &mut out);
            enc.append(&m, qos1, Some(b), false, &mut out);
            enc.append(
                &m,
                form(version, QoS::AtMostOnce, true),
                None,
                false,
                &mut out,
            );
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
        let qos0 = form(ProtocolVersion::V4, QoS::AtMostOnce, false);
        enc.append(&msg(), qos0, None, false, &mut out);
        enc.begin();
        let mut other = msg();
        other.topic = TopicName::try_from("c").expect("valid");
        enc.append(&other, qos0, None, false, &mut out);
        decode_publish(&mut out, ProtocolVersion::V4);
        assert_eq!(
            decode_publish(&mut out, ProtocolVersion::V4).topic.as_str(),
            "c"
        );
    }

    #[test]
    fn aliases_are_patched_per_subscriber_mqtt_3_3_2_11() {
        let mut enc = PublishEncoder::default();
        enc.begin();
        let m = msg();
        let a = PacketId::new(3).expect("non-zero");
        let b = PacketId::new(4).expect("non-zero");
        let with = |alias| Form {
            alias,
            ..form(ProtocolVersion::V5, QoS::AtLeastOnce, false)
        };
        let mut out = BytesMut::new();
        let set_len = enc.encoded_len(&m, with(AliasUse::Set(7)));
        assert_eq!(
            enc.append(&m, with(AliasUse::Set(7)), Some(a), false, &mut out),
            set_len
        );
        enc.append(&m, with(AliasUse::Set(300)), Some(b), false, &mut out);
        enc.append(&m, with(AliasUse::Use(7)), Some(b), false, &mut out);
        enc.append(&m, with(AliasUse::None), Some(a), false, &mut out);
        let set = decode_publish(&mut out, ProtocolVersion::V5);
        assert_eq!(
            (set.topic.as_str(), set.properties.topic_alias),
            ("a/b", Some(7))
        );
        assert_eq!(set.packet_id, Some(a));
        let other = decode_publish(&mut out, ProtocolVersion::V5);
        assert_eq!(other.properties.topic_alias, Some(300));
        let used = decode_publish(&mut out, ProtocolVersion::V5);
        assert_eq!(
            (used.topic.as_str(), used.properties.topic_alias),
            ("", Some(7))
        );
        assert_eq!(
            (used.packet_id, &used.payload[..]),
            (Some(b), &b"payload"[..])
        );
        let plain = decode_publish(&mut out, ProtocolVersion::V5);
        assert_eq!(
            (plain.topic.as_str(), plain.properties.topic_alias),
            ("a/b", None)
        );
        assert!(out.is_empty());
    }

    #[test]
    fn slots_a_large_message_grew_are_let_go_when_the_next_message_begins() {
        let mut enc = PublishEncoder::default();
        let mut out = BytesMut::new();
        let qos1 = form(ProtocolVersion::V5, QoS::AtLeastOnce, false);
        let id = PacketId::new(1);
        enc.begin();
        enc.append(&msg(), qos1, id, false, &mut out);
        let small = enc.capacity();
        assert!(small <= MAX_KEPT_SLOT);
        let mut large = msg();
        large.payload = Bytes::from(vec![0u8; 4 * MAX_KEPT_SLOT]);
        enc.begin();
        enc.append(&large, qos1, id, false, &mut out);
        enc.append(
            &large,
            form(ProtocolVersion::V4, QoS::AtMostOnce, false),
            None,
            false,
            &mut out,
        );
        assert!(
            enc.capacity() > 8 * MAX_KEPT_SLOT,
            "both forms hold the large message"
        );
        enc.begin();
        enc.append(&msg(), qos1, id, false, &mut out);
        assert!(
            enc.capacity() <= small + MAX_KEPT_SLOT,
            "back to small: {} bytes kept",
            enc.capacity()
        );
        // The last large message is let go by the tick, without another message.
        enc.begin();
        enc.append(&large, qos1, id, false, &mut out);
        enc.release_oversized();
        assert!(enc.capacity() <= small + MAX_KEPT_SLOT);
    }

    #[test]
    fn a_3_1_1_form_never_carries_an_alias() {
        let mut enc = PublishEncoder::default();
        enc.begin();
        let mut out = BytesMut::new();
        let aliased = Form {
            alias: AliasUse::Use(1),
            ..form(ProtocolVersion::V4, QoS::AtMostOnce, false)
        };
        enc.append(&msg(), aliased, None, false, &mut out);
        assert_eq!(
            decode_publish(&mut out, ProtocolVersion::V4).topic.as_str(),
            "a/b"
        );
    }
}
