//! The records of the log and the typed body of each kind, encoded and decoded by pure
//! functions (no IO, no clock). The frame around a body (length, CRC) is `frame`'s.
//!
//! A body starts with its kind byte. Each family has its range, so that a reader can tell
//! them apart: `0x01..=0x0F` retained messages (`0x01` set, `0x02` clear), `0x10..=0x1F`
//! sessions (`0x10` state, `0x11` end), `0x20..=0x2F` a session's outbound QoS 1/2 messages
//! and inbound QoS 2 ids with the acknowledgements that retire them (`session`). A new kind
//! comes with a new `FORMAT_VERSION`, so that an older broker refuses the file instead of
//! truncating records it cannot read.
//!
//! Integers are little-endian. `str16` is a u16 length and UTF-8 bytes, `bin16` a u16 length
//! and bytes, `bin32` a u32 length and bytes.

mod session;

pub use session::{
    OutMessage, SessionRecord, StoredMessage, SubscriptionRecord, WillRecord, encode_out_done,
    encode_out_queued,
};

use super::error::RecordError;
use crate::protocol::{MqttString, PacketId, Properties, PropertyValues, QoS, TopicName};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const RETAINED_SET: u8 = 0x01;
const RETAINED_CLEAR: u8 = 0x02;
const SESSION_STATE: u8 = 0x10;
const SESSION_END: u8 = 0x11;
const OUT_QUEUED: u8 = 0x20;
const OUT_SENT: u8 = 0x21;
const OUT_RELEASED: u8 = 0x22;
const OUT_DONE: u8 = 0x23;
const IN_QOS2: u8 = 0x24;
const IN_QOS2_DONE: u8 = 0x25;
const OUT_PUBREL: u8 = 0x26;

/// Which optional fields a retained-set body carries (its `present` byte).
const HAS_EXPIRY: u8 = 0x01;
const HAS_PAYLOAD_FORMAT: u8 = 0x02;
const HAS_CONTENT_TYPE: u8 = 0x04;
const HAS_RESPONSE_TOPIC: u8 = 0x08;
const HAS_CORRELATION_DATA: u8 = 0x10;
const HAS_USER_PROPERTIES: u8 = 0x20;
/// A queued message's Subscription Identifiers (those of its subscriber's matching
/// subscriptions [MQTT-3.3.4-3]); a retained message never has any.
const HAS_SUBSCRIPTION_IDS: u8 = 0x40;
const KNOWN_FIELDS: u8 = 0x7F;

/// One change that must survive a restart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// The retained message of its topic was set or replaced.
    RetainedSet(RetainedMessage),
    /// The retained message of this topic was deleted.
    RetainedClear(TopicName),
    /// A persistent session was created or resumed, changed its subscriptions, or went
    /// offline: its whole state, replacing the last.
    SessionState(SessionRecord),
    /// The session of this client id ended (expired, replaced by a clean start, or no
    /// longer persistent): it and its messages are forgotten.
    SessionEnd(String),
    /// A QoS 1/2 message entered a session's queue or in-flight window.
    OutQueued(OutMessage),
    /// Message `n` of the session was sent with this packet id (it left the queue).
    OutSent {
        client_id: String,
        n: u64,
        packet_id: PacketId,
    },
    /// QoS 2 message `n` was acknowledged with PUBREC: PUBREL is what is resent now.
    OutReleased { client_id: String, n: u64 },
    /// QoS 2 message `n`, sent with `packet_id`, awaits PUBCOMP (its PUBREC came): what a
    /// snapshot writes for it, as the message itself is no longer kept.
    OutPubRel {
        client_id: String,
        n: u64,
        packet_id: PacketId,
    },
    /// Message `n` is retired: PUBACK, PUBCOMP, a PUBREC with an error, or discarded.
    OutDone { client_id: String, n: u64 },
    /// An inbound QoS 2 PUBLISH with this packet id was routed and awaits PUBREL.
    InQos2 {
        client_id: String,
        packet_id: PacketId,
    },
    /// PUBREL released the inbound QoS 2 packet id.
    InQos2Done {
        client_id: String,
        packet_id: PacketId,
    },
}

/// A retained message as the log keeps it: what a later subscriber is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetainedMessage {
    pub topic: TopicName,
    pub payload: Bytes,
    pub qos: QoS,
    /// The 5.0 properties kept with it: Payload Format Indicator, Content Type, Response
    /// Topic, Correlation Data, User Properties, and for a queued message its subscriber's
    /// Subscription Identifiers. Others are not stored (Message Expiry is `expires_at`; a
    /// Topic Alias belongs to one connection).
    pub properties: Option<Arc<Properties>>,
    /// When its Message Expiry Interval runs out, as wall-clock time: the interval counts the
    /// time the broker was down.
    pub expires_at: Option<WallTime>,
}

/// Wall-clock time in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime(pub u64);

impl WallTime {
    /// `time` in milliseconds since the epoch (0 before it).
    pub fn from_system(time: SystemTime) -> Self {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// How long from `self` until `later` (zero if `later` is not after it).
    pub fn until(self, later: Self) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0))
    }

    pub fn plus(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl Record {
    /// Appends this record's body to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) -> Result<(), RecordError> {
        match self {
            Self::RetainedSet(m) => {
                out.push(RETAINED_SET);
                encode_retained(m, out)
            }
            Self::RetainedClear(topic) => {
                out.push(RETAINED_CLEAR);
                put16(out, topic.as_bytes())
            }
            Self::SessionState(s) => {
                out.push(SESSION_STATE);
                session::encode_session(s, out)
            }
            Self::SessionEnd(client_id) => {
                out.push(SESSION_END);
                put16(out, client_id.as_bytes())
            }
            Self::OutQueued(m) => {
                let message = &m.message.message;
                let fields = MessageFields {
                    topic: &message.topic,
                    payload: &message.payload,
                    qos: message.qos,
                    properties: message.properties.as_deref(),
                    expires_at: message.expires_at,
                };
                let stored = (m.message.retain, fields);
                encode_out_queued(&m.client_id, m.n, m.packet_id, stored, out)
            }
            Self::OutSent {
                client_id,
                n,
                packet_id,
            }
            | Self::OutPubRel {
                client_id,
                n,
                packet_id,
            } => {
                let kind = match self {
                    Self::OutSent { .. } => OUT_SENT,
                    _ => OUT_PUBREL,
                };
                out.push(kind);
                put16(out, client_id.as_bytes())?;
                out.extend_from_slice(&n.to_le_bytes());
                out.extend_from_slice(&packet_id.get().to_le_bytes());
                Ok(())
            }
            Self::OutReleased { client_id, n } => {
                out.push(OUT_RELEASED);
                put16(out, client_id.as_bytes())?;
                out.extend_from_slice(&n.to_le_bytes());
                Ok(())
            }
            Self::OutDone { client_id, n } => encode_out_done(client_id, *n, out),
            Self::InQos2 {
                client_id,
                packet_id,
            }
            | Self::InQos2Done {
                client_id,
                packet_id,
            } => {
                let kind = match self {
                    Self::InQos2 { .. } => IN_QOS2,
                    _ => IN_QOS2_DONE,
                };
                out.push(kind);
                put16(out, client_id.as_bytes())?;
                out.extend_from_slice(&packet_id.get().to_le_bytes());
                Ok(())
            }
        }
    }

    /// The client id of a session record; `None` for a retained one.
    pub fn client_id(&self) -> Option<&str> {
        match self {
            Self::RetainedSet(_) | Self::RetainedClear(_) => None,
            Self::SessionState(s) => Some(&s.client_id),
            Self::OutQueued(m) => Some(&m.client_id),
            Self::SessionEnd(client_id)
            | Self::OutSent { client_id, .. }
            | Self::OutPubRel { client_id, .. }
            | Self::OutReleased { client_id, .. }
            | Self::OutDone { client_id, .. }
            | Self::InQos2 { client_id, .. }
            | Self::InQos2Done { client_id, .. } => Some(client_id),
        }
    }

    /// Decodes one whole body (all of `body`, nothing left over).
    pub fn decode_body(body: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader(body);
        let record = match r.u8()? {
            RETAINED_SET => Self::RetainedSet(decode_retained(&mut r)?),
            RETAINED_CLEAR => Self::RetainedClear(r.topic()?),
            SESSION_STATE => Self::SessionState(session::decode_session(&mut r)?),
            SESSION_END => Self::SessionEnd(r.client_id()?),
            OUT_QUEUED => Self::OutQueued(session::decode_out(&mut r)?),
            OUT_SENT => Self::OutSent {
                client_id: r.client_id()?,
                n: r.u64()?,
                packet_id: r.packet_id()?,
            },
            OUT_PUBREL => Self::OutPubRel {
                client_id: r.client_id()?,
                n: r.u64()?,
                packet_id: r.packet_id()?,
            },
            OUT_RELEASED => Self::OutReleased {
                client_id: r.client_id()?,
                n: r.u64()?,
            },
            OUT_DONE => Self::OutDone {
                client_id: r.client_id()?,
                n: r.u64()?,
            },
            IN_QOS2 => Self::InQos2 {
                client_id: r.client_id()?,
                packet_id: r.packet_id()?,
            },
            IN_QOS2_DONE => Self::InQos2Done {
                client_id: r.client_id()?,
                packet_id: r.packet_id()?,
            },
            kind => return Err(RecordError::UnknownKind(kind)),
        };
        match r.0.len() {
            0 => Ok(record),
            extra => Err(RecordError::TrailingBytes(extra)),
        }
    }
}

/// A message's fields as a record lays them out, borrowed: what the hot path encodes from
/// a session's message without building a `Record` (no clone of its parts).
#[derive(Debug, Clone, Copy)]
pub struct MessageFields<'a> {
    pub topic: &'a TopicName,
    pub payload: &'a [u8],
    pub qos: QoS,
    pub properties: Option<&'a Properties>,
    pub expires_at: Option<WallTime>,
}

fn encode_retained(m: &RetainedMessage, out: &mut Vec<u8>) -> Result<(), RecordError> {
    encode_fields(
        MessageFields {
            topic: &m.topic,
            payload: &m.payload,
            qos: m.qos,
            properties: m.properties.as_deref(),
            expires_at: m.expires_at,
        },
        out,
    )
}

/// `qos u8, present u8, topic str16, [expiry u64 ms], [payload format u8],
/// [content type str16], [response topic str16], [correlation data bin16],
/// [user properties: u16 count, count x (str16, str16)], [subscription identifiers: u16
/// count, count x u32], payload bin32`.
fn encode_fields(m: MessageFields<'_>, out: &mut Vec<u8>) -> Result<(), RecordError> {
    let none = Properties::default();
    let p: &PropertyValues = m.properties.unwrap_or(&none);
    let mut present = 0;
    for (set, bit) in [
        (m.expires_at.is_some(), HAS_EXPIRY),
        (p.payload_format_indicator.is_some(), HAS_PAYLOAD_FORMAT),
        (p.content_type.is_some(), HAS_CONTENT_TYPE),
        (p.response_topic.is_some(), HAS_RESPONSE_TOPIC),
        (p.correlation_data.is_some(), HAS_CORRELATION_DATA),
        (!p.user_properties.is_empty(), HAS_USER_PROPERTIES),
        (!p.subscription_identifiers.is_empty(), HAS_SUBSCRIPTION_IDS),
    ] {
        if set {
            present |= bit;
        }
    }
    out.push(m.qos as u8);
    out.push(present);
    put16(out, m.topic.as_bytes())?;
    if let Some(at) = m.expires_at {
        out.extend_from_slice(&at.0.to_le_bytes());
    }
    if let Some(format) = p.payload_format_indicator {
        out.push(format);
    }
    if let Some(content_type) = &p.content_type {
        put16(out, content_type.as_bytes())?;
    }
    if let Some(topic) = &p.response_topic {
        put16(out, topic.as_bytes())?;
    }
    if let Some(data) = &p.correlation_data {
        put16(out, data)?;
    }
    if !p.user_properties.is_empty() {
        let count = u16::try_from(p.user_properties.len())
            .map_err(|_| RecordError::TooLong("user properties"))?;
        out.extend_from_slice(&count.to_le_bytes());
        for (key, value) in &p.user_properties {
            put16(out, key.as_bytes())?;
            put16(out, value.as_bytes())?;
        }
    }
    if !p.subscription_identifiers.is_empty() {
        let count = u16::try_from(p.subscription_identifiers.len())
            .map_err(|_| RecordError::TooLong("subscription identifiers"))?;
        out.extend_from_slice(&count.to_le_bytes());
        for id in &p.subscription_identifiers {
            out.extend_from_slice(&id.to_le_bytes());
        }
    }
    let len = u32::try_from(m.payload.len()).map_err(|_| RecordError::TooLong("payload"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(m.payload);
    Ok(())
}

fn decode_retained(r: &mut Reader<'_>) -> Result<RetainedMessage, RecordError> {
    let qos_bits = r.u8()?;
    let qos = QoS::from_bits(qos_bits).ok_or(RecordError::BadQoS(qos_bits))?;
    let present = r.u8()?;
    if present & !KNOWN_FIELDS != 0 {
        return Err(RecordError::UnknownFields(present));
    }
    let topic = r.topic()?;
    let expires_at = match present & HAS_EXPIRY {
        0 => None,
        _ => Some(WallTime(r.u64()?)),
    };
    let mut p = PropertyValues::EMPTY;
    if present & HAS_PAYLOAD_FORMAT != 0 {
        p.payload_format_indicator = Some(r.u8()?);
    }
    if present & HAS_CONTENT_TYPE != 0 {
        p.content_type = Some(r.string()?);
    }
    if present & HAS_RESPONSE_TOPIC != 0 {
        p.response_topic = Some(r.topic()?);
    }
    if present & HAS_CORRELATION_DATA != 0 {
        p.correlation_data = Some(Bytes::copy_from_slice(r.bin16()?));
    }
    if present & HAS_USER_PROPERTIES != 0 {
        let count = r.u16()?;
        // Each pair takes at least 4 bytes: a corrupt count cannot reserve much.
        p.user_properties = Vec::with_capacity(usize::from(count).min(r.0.len() / 4));
        for _ in 0..count {
            let key = r.string()?;
            p.user_properties.push((key, r.string()?));
        }
    }
    if present & HAS_SUBSCRIPTION_IDS != 0 {
        let count = r.u16()?;
        p.subscription_identifiers = Vec::with_capacity(usize::from(count).min(r.0.len() / 4));
        for _ in 0..count {
            p.subscription_identifiers.push(r.u32()?);
        }
    }
    let len = r.u32()? as usize;
    let payload = Bytes::copy_from_slice(r.take(len)?);
    let properties = Properties::from(p);
    Ok(RetainedMessage {
        topic,
        payload,
        qos,
        properties: (!properties.is_empty()).then(|| Arc::new(properties)),
        expires_at,
    })
}

fn put16(out: &mut Vec<u8>, bytes: &[u8]) -> Result<(), RecordError> {
    let len = u16::try_from(bytes.len()).map_err(|_| RecordError::TooLong("string"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// A cursor over a body; every read checks what is left.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Short);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, RecordError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, RecordError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        self.array().map(u64::from_le_bytes)
    }

    fn bin16(&mut self) -> Result<&'a [u8], RecordError> {
        let len = self.u16()?;
        self.take(usize::from(len))
    }

    fn string(&mut self) -> Result<MqttString, RecordError> {
        let bytes = Bytes::copy_from_slice(self.bin16()?);
        MqttString::from_bytes(bytes).map_err(|_| RecordError::BadString)
    }

    fn topic(&mut self) -> Result<TopicName, RecordError> {
        let bytes = Bytes::copy_from_slice(self.bin16()?);
        TopicName::new(bytes).map_err(|_| RecordError::BadTopic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(name: &str) -> TopicName {
        TopicName::try_from(name).unwrap_or_default()
    }

    fn plain(name: &str, payload: &'static [u8]) -> RetainedMessage {
        RetainedMessage {
            topic: topic(name),
            payload: Bytes::from_static(payload),
            qos: QoS::AtLeastOnce,
            properties: None,
            expires_at: None,
        }
    }

    fn body(record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(record.encode_body(&mut out), Ok(()));
        out
    }

    #[test]
    fn a_plain_retained_set_is_laid_out_field_by_field() {
        let bytes = body(&Record::RetainedSet(plain("a/b", b"hi")));
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x01,             // kind: retained set
            0x01,             // QoS 1
            0x00,             // present: no optional field
            0x03, 0x00, b'a', b'/', b'b', // topic str16
            0x02, 0x00, 0x00, 0x00, b'h', b'i', // payload bin32
        ];
        assert_eq!(bytes, expected);
        assert_eq!(
            Record::decode_body(&bytes),
            Ok(Record::RetainedSet(plain("a/b", b"hi")))
        );
    }

    #[test]
    fn a_retained_clear_is_its_kind_and_topic() {
        let bytes = body(&Record::RetainedClear(topic("x")));
        assert_eq!(bytes, [0x02, 0x01, 0x00, b'x']);
        assert_eq!(
            Record::decode_body(&bytes),
            Ok(Record::RetainedClear(topic("x")))
        );
    }

    #[test]
    fn every_kept_property_and_the_wall_clock_expiry_round_trip() {
        let mut p = PropertyValues::EMPTY;
        p.payload_format_indicator = Some(1);
        p.content_type = MqttString::try_from("text/plain").ok();
        p.response_topic = Some(topic("reply/to"));
        p.correlation_data = Some(Bytes::from_static(b"\x00\x01"));
        p.user_properties = vec![
            (
                MqttString::try_from("k").unwrap_or_default(),
                MqttString::try_from("v").unwrap_or_default(),
            );
            2
        ];
        // A queued message's Subscription Identifiers (largest: 268,435,455).
        p.subscription_identifiers = vec![1, 268_435_455];
        let m = RetainedMessage {
            properties: Some(Arc::new(Properties::from(p))),
            expires_at: Some(WallTime(0x0102_0304_0506_0708)),
            qos: QoS::ExactlyOnce,
            ..plain("t", b"")
        };
        let bytes = body(&Record::RetainedSet(m.clone()));
        assert_eq!(&bytes[..5], [0x01, 0x02, 0x7F, 0x01, 0x00]);
        assert_eq!(&bytes[6..14], 0x0102_0304_0506_0708_u64.to_le_bytes());
        assert_eq!(Record::decode_body(&bytes), Ok(Record::RetainedSet(m)));
    }

    #[test]
    fn malformed_bodies_are_refused_not_panicked_on() {
        let good = body(&Record::RetainedSet(plain("a", b"xyz")));
        for cut in 0..good.len() {
            assert!(Record::decode_body(&good[..cut]).is_err(), "cut at {cut}");
        }
        let cases: &[(&[u8], RecordError)] = &[
            (&[0x7F], RecordError::UnknownKind(0x7F)),
            (&[0x01, 0x03], RecordError::BadQoS(3)),
            (&[0x01, 0x00, 0x80], RecordError::UnknownFields(0x80)),
            (&[0x02, 0x01, 0x00, b'+'], RecordError::BadTopic),
            (&[0x02, 0x01, 0x00, 0xFF], RecordError::BadTopic),
            (
                &[0x02, 0x01, 0x00, b'x', 0x00],
                RecordError::TrailingBytes(1),
            ),
            // A payload length far past the body.
            (
                &[0x01, 0x00, 0x00, 0x01, 0x00, b'a', 0xFF, 0xFF, 0xFF, 0xFF],
                RecordError::Short,
            ),
        ];
        for (bytes, error) in cases {
            assert_eq!(Record::decode_body(bytes).as_ref(), Err(error), "{bytes:?}");
        }
    }

    #[test]
    fn wall_time_counts_milliseconds_since_the_epoch() {
        let t = UNIX_EPOCH + Duration::from_millis(1_500);
        assert_eq!(WallTime::from_system(t), WallTime(1_500));
        assert_eq!(
            WallTime(1_000).until(WallTime(1_500)),
            Duration::from_millis(500)
        );
        assert_eq!(WallTime(2_000).until(WallTime(1_500)), Duration::ZERO);
    }
}
