//! The session records of the log (kinds `0x10..=0x2F`): a persistent session's state
//! (client id, protocol level, expiry, will, subscriptions with their options and
//! Subscription Identifiers), its end, its outbound QoS 1/2 messages through their stages,
//! and its inbound QoS 2 packet ids awaiting PUBREL. Pure functions over bytes.

use super::{
    MessageFields, OUT_DONE, OUT_QUEUED, Reader, RetainedMessage, WallTime, decode_retained,
    encode_fields, encode_retained, put16,
};
use crate::persist::error::RecordError;
use crate::protocol::{
    PacketId, ProtocolVersion, QoS, RetainHandling, SubscriptionOptions, TopicFilter,
};
use bytes::Bytes;

/// `flags` bits of a session-state body.
const HAS_EXPIRES_AT: u8 = 0x01;
const HAS_WILL: u8 = 0x02;
const HAS_WILL_DUE: u8 = 0x04;
/// The will has a 5.0 Message Expiry Interval (format version 3).
const HAS_WILL_EXPIRY: u8 = 0x08;
const KNOWN_FLAGS: u8 = 0x0F;

/// A persistent session as the log keeps it: written whole when it is created or resumed,
/// when its subscriptions change and when its client goes away (each replaces the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub client_id: String,
    pub version: ProtocolVersion,
    /// Seconds the session outlives its connection (`u32::MAX`: never expires).
    pub expiry_interval: u32,
    /// When an offline session expires, as wall-clock time; `None` while its client is
    /// connected (the interval starts at the disconnect) or if it never expires.
    pub expires_at: Option<WallTime>,
    pub will: Option<WillRecord>,
    pub subscriptions: Vec<SubscriptionRecord>,
}

/// A session's will: the message, its 5.0 Will Delay Interval, when an offline session's
/// delayed will is due (`None` while connected), and its Message Expiry Interval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WillRecord {
    pub message: StoredMessage,
    pub delay: u32,
    pub due: Option<WallTime>,
    /// Seconds the will lives once published (its 5.0 Message Expiry Interval). Kept as the
    /// interval, not a time: it starts when the will is published, which for a connected
    /// client is not known yet; for an offline session it runs from `due`, so the time the
    /// broker was down past `due` counts against it.
    pub expiry_interval: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionRecord {
    pub filter: TopicFilter,
    pub options: SubscriptionOptions,
    /// 5.0 Subscription Identifier, 0 for none.
    pub id: u32,
}

/// A message with the RETAIN flag it goes out with (a queued message, a will).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredMessage {
    pub retain: bool,
    pub message: RetainedMessage,
}

/// `flags` bits of an outbound-message body.
const HAS_PACKET_ID: u8 = 0x01;

/// One outbound QoS 1/2 message of a session, numbered `n` in the order the session took it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutMessage {
    pub client_id: String,
    pub n: u64,
    /// Set when it went straight into the in-flight window.
    pub packet_id: Option<PacketId>,
    pub message: StoredMessage,
}

pub(super) fn encode_session(s: &SessionRecord, out: &mut Vec<u8>) -> Result<(), RecordError> {
    put16(out, s.client_id.as_bytes())?;
    out.push(s.version as u8);
    let mut flags = 0;
    if s.expires_at.is_some() {
        flags |= HAS_EXPIRES_AT;
    }
    if let Some(will) = &s.will {
        flags |= HAS_WILL;
        if will.due.is_some() {
            flags |= HAS_WILL_DUE;
        }
        if will.expiry_interval.is_some() {
            flags |= HAS_WILL_EXPIRY;
        }
    }
    out.push(flags);
    out.extend_from_slice(&s.expiry_interval.to_le_bytes());
    if let Some(at) = s.expires_at {
        out.extend_from_slice(&at.0.to_le_bytes());
    }
    if let Some(will) = &s.will {
        out.extend_from_slice(&will.delay.to_le_bytes());
        if let Some(due) = will.due {
            out.extend_from_slice(&due.0.to_le_bytes());
        }
        if let Some(interval) = will.expiry_interval {
            out.extend_from_slice(&interval.to_le_bytes());
        }
        encode_stored(&will.message, out)?;
    }
    let count =
        u32::try_from(s.subscriptions.len()).map_err(|_| RecordError::TooLong("subscriptions"))?;
    out.extend_from_slice(&count.to_le_bytes());
    for sub in &s.subscriptions {
        put16(out, sub.filter.as_bytes())?;
        out.push(options_byte(sub.options));
        out.extend_from_slice(&sub.id.to_le_bytes());
    }
    Ok(())
}

pub(super) fn decode_session(r: &mut Reader<'_>) -> Result<SessionRecord, RecordError> {
    let client_id = r.client_id()?;
    let level = r.u8()?;
    let version = ProtocolVersion::from_level(level).ok_or(RecordError::BadVersion(level))?;
    let flags = r.u8()?;
    if flags & !KNOWN_FLAGS != 0 {
        return Err(RecordError::UnknownFields(flags));
    }
    let expiry_interval = r.u32()?;
    let expires_at = match flags & HAS_EXPIRES_AT {
        0 => None,
        _ => Some(WallTime(r.u64()?)),
    };
    let will = match flags & HAS_WILL {
        0 => None,
        _ => Some(decode_will(flags, r)?),
    };
    let count = r.u32()?;
    // Each entry takes at least 7 bytes: a corrupt count cannot reserve much.
    let mut subscriptions = Vec::with_capacity((count as usize).min(r.0.len() / 7));
    for _ in 0..count {
        let bytes = Bytes::copy_from_slice(r.bin16()?);
        let filter = TopicFilter::new(bytes).map_err(|_| RecordError::BadTopic)?;
        let options = options_from(r.u8()?)?;
        let id = r.u32()?;
        subscriptions.push(SubscriptionRecord {
            filter,
            options,
            id,
        });
    }
    Ok(SessionRecord {
        client_id,
        version,
        expiry_interval,
        expires_at,
        will,
        subscriptions,
    })
}

/// A session state's will, after its `flags`: `delay u32`, `[due u64]`, `[expiry interval
/// u32]`, `message`.
fn decode_will(flags: u8, r: &mut Reader<'_>) -> Result<WillRecord, RecordError> {
    let delay = r.u32()?;
    let due = match flags & HAS_WILL_DUE {
        0 => None,
        _ => Some(WallTime(r.u64()?)),
    };
    let expiry_interval = match flags & HAS_WILL_EXPIRY {
        0 => None,
        _ => Some(r.u32()?),
    };
    Ok(WillRecord {
        message: decode_stored(r)?,
        delay,
        due,
        expiry_interval,
    })
}

/// The SUBSCRIBE options byte as 5.0 lays it out (section 3.8.3.1).
fn options_byte(o: SubscriptionOptions) -> u8 {
    o.qos as u8
        | u8::from(o.no_local) << 2
        | u8::from(o.retain_as_published) << 3
        | (o.retain_handling as u8) << 4
}

fn options_from(byte: u8) -> Result<SubscriptionOptions, RecordError> {
    let qos = QoS::from_bits(byte & 0x03).ok_or(RecordError::BadOptions(byte))?;
    let retain_handling = match (byte >> 4) & 0x03 {
        0 => RetainHandling::SendAtSubscribe,
        1 => RetainHandling::SendAtSubscribeIfNew,
        2 => RetainHandling::DoNotSend,
        _ => return Err(RecordError::BadOptions(byte)),
    };
    if byte & 0xC0 != 0 {
        return Err(RecordError::BadOptions(byte));
    }
    Ok(SubscriptionOptions {
        qos,
        no_local: byte & 0x04 != 0,
        retain_as_published: byte & 0x08 != 0,
        retain_handling,
    })
}

/// `retain u8`, then the retained-set layout (QoS, optional fields, topic, payload).
pub(super) fn encode_stored(m: &StoredMessage, out: &mut Vec<u8>) -> Result<(), RecordError> {
    out.push(u8::from(m.retain));
    encode_retained(&m.message, out)
}

pub(super) fn decode_stored(r: &mut Reader<'_>) -> Result<StoredMessage, RecordError> {
    let retain = match r.u8()? {
        0 => false,
        1 => true,
        other => return Err(RecordError::BadFlag(other)),
    };
    Ok(StoredMessage {
        retain,
        message: decode_retained(r)?,
    })
}

/// `client id str16, n u64, flags u8, [packet id u16]`: an outbound message's body up to
/// its `message`.
pub(super) fn encode_out_head(
    client_id: &str,
    n: u64,
    packet_id: Option<PacketId>,
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    put16(out, client_id.as_bytes())?;
    out.extend_from_slice(&n.to_le_bytes());
    match packet_id {
        Some(id) => {
            out.push(HAS_PACKET_ID);
            out.extend_from_slice(&id.get().to_le_bytes());
        }
        None => out.push(0),
    }
    Ok(())
}

pub(super) fn decode_out(r: &mut Reader<'_>) -> Result<OutMessage, RecordError> {
    let client_id = r.client_id()?;
    let n = r.u64()?;
    let packet_id = match r.u8()? {
        0 => None,
        HAS_PACKET_ID => Some(r.packet_id()?),
        other => return Err(RecordError::UnknownFields(other)),
    };
    Ok(OutMessage {
        client_id,
        n,
        packet_id,
        message: decode_stored(r)?,
    })
}

/// An `OutQueued` body (`Record::OutQueued`) from borrowed parts; `message` is its RETAIN
/// flag and fields.
pub fn encode_out_queued(
    client_id: &str,
    n: u64,
    packet_id: Option<PacketId>,
    message: (bool, MessageFields<'_>),
    out: &mut Vec<u8>,
) -> Result<(), RecordError> {
    out.push(OUT_QUEUED);
    encode_out_head(client_id, n, packet_id, out)?;
    out.push(u8::from(message.0));
    encode_fields(message.1, out)
}

/// An `OutDone` body (`Record::OutDone`) from borrowed parts.
pub fn encode_out_done(client_id: &str, n: u64, out: &mut Vec<u8>) -> Result<(), RecordError> {
    out.push(OUT_DONE);
    put16(out, client_id.as_bytes())?;
    out.extend_from_slice(&n.to_le_bytes());
    Ok(())
}

impl Reader<'_> {
    pub(super) fn client_id(&mut self) -> Result<String, RecordError> {
        let bytes = self.bin16()?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| RecordError::BadString)
    }

    pub(super) fn packet_id(&mut self) -> Result<PacketId, RecordError> {
        PacketId::new(self.u16()?).ok_or(RecordError::ZeroPacketId)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::record::Record;
    use crate::protocol::TopicName;

    fn body(record: &Record) -> Vec<u8> {
        let mut out = Vec::new();
        assert_eq!(record.encode_body(&mut out), Ok(()));
        out
    }

    fn message(topic: &str, payload: &'static [u8]) -> StoredMessage {
        StoredMessage {
            retain: true,
            message: RetainedMessage {
                topic: TopicName::try_from(topic).unwrap_or_default(),
                payload: Bytes::from_static(payload),
                qos: QoS::ExactlyOnce,
                properties: None,
                expires_at: None,
            },
        }
    }

    fn filter(f: &str) -> TopicFilter {
        TopicFilter::try_from(f).unwrap_or_else(|e| panic!("{f}: {e:?}"))
    }

    #[test]
    fn a_session_state_is_laid_out_field_by_field() {
        let state = SessionRecord {
            client_id: "c".into(),
            version: ProtocolVersion::V5,
            expiry_interval: 60,
            expires_at: Some(WallTime(7)),
            will: None,
            subscriptions: vec![SubscriptionRecord {
                filter: filter("a/+"),
                options: SubscriptionOptions {
                    qos: QoS::AtLeastOnce,
                    no_local: true,
                    retain_as_published: true,
                    retain_handling: RetainHandling::DoNotSend,
                },
                id: 9,
            }],
        };
        let bytes = body(&Record::SessionState(state.clone()));
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x10,                   // kind: session state
            0x01, 0x00, b'c',       // client id str16
            0x05,                   // protocol level 5
            0x01,                   // flags: expires_at
            60, 0, 0, 0,            // expiry interval u32
            7, 0, 0, 0, 0, 0, 0, 0, // expires at (wall ms) u64
            1, 0, 0, 0,             // one subscription
            0x03, 0x00, b'a', b'/', b'+', // filter str16
            0x2D,                   // options: QoS 1, No Local, RAP, Retain Handling 2
            9, 0, 0, 0,             // Subscription Identifier
        ];
        assert_eq!(bytes, expected);
        assert_eq!(Record::decode_body(&bytes), Ok(Record::SessionState(state)));
    }

    #[test]
    fn a_will_is_laid_out_with_its_delay_due_time_and_message_expiry_interval() {
        let state = SessionRecord {
            client_id: "c".into(),
            version: ProtocolVersion::V5,
            expiry_interval: 60,
            expires_at: None,
            will: Some(WillRecord {
                message: StoredMessage {
                    retain: false,
                    message: RetainedMessage {
                        qos: QoS::AtMostOnce,
                        ..message("w", b"!").message
                    },
                },
                delay: 5,
                due: Some(WallTime(9)),
                expiry_interval: Some(30),
            }),
            subscriptions: vec![],
        };
        let bytes = body(&Record::SessionState(state.clone()));
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0x10,                   // kind: session state
            0x01, 0x00, b'c',       // client id str16
            0x05,                   // protocol level 5
            0x0E,                   // flags: will, will due, will expiry
            60, 0, 0, 0,            // expiry interval u32
            5, 0, 0, 0,             // Will Delay Interval u32
            9, 0, 0, 0, 0, 0, 0, 0, // will due (wall ms) u64
            30, 0, 0, 0,            // will Message Expiry Interval u32
            0x00,                   // retain 0
            0x00, 0x00,             // QoS 0, no optional field
            0x01, 0x00, b'w',       // topic str16
            1, 0, 0, 0, b'!',       // payload bin32
            0, 0, 0, 0,             // no subscription
        ];
        assert_eq!(bytes, expected);
        assert_eq!(Record::decode_body(&bytes), Ok(Record::SessionState(state)));
    }

    #[test]
    fn every_session_and_message_record_round_trips() {
        let Some(packet_id) = PacketId::new(7) else {
            panic!("7 is a packet id")
        };
        let records = [
            Record::SessionState(SessionRecord {
                client_id: "dev-1".into(),
                version: ProtocolVersion::V4,
                expiry_interval: u32::MAX,
                expires_at: None,
                will: Some(WillRecord {
                    message: message("will/dev-1", b"gone"),
                    delay: 30,
                    due: Some(WallTime(1_000)),
                    expiry_interval: Some(120),
                }),
                subscriptions: vec![],
            }),
            Record::SessionEnd("dev-1".into()),
            Record::OutQueued(OutMessage {
                client_id: "dev-1".into(),
                n: 3,
                packet_id: Some(packet_id),
                message: message("t", b"x"),
            }),
            Record::OutQueued(OutMessage {
                client_id: "dev-1".into(),
                n: 4,
                packet_id: None,
                message: message("t", b""),
            }),
            Record::OutSent {
                client_id: "d".into(),
                n: 4,
                packet_id,
            },
            Record::OutReleased {
                client_id: "d".into(),
                n: 3,
            },
            Record::OutPubRel {
                client_id: "d".into(),
                n: 3,
                packet_id,
            },
            Record::OutDone {
                client_id: "d".into(),
                n: u64::MAX,
            },
            Record::InQos2 {
                client_id: "d".into(),
                packet_id,
            },
            Record::InQos2Done {
                client_id: "d".into(),
                packet_id,
            },
        ];
        for record in records {
            let bytes = body(&record);
            assert_eq!(Record::decode_body(&bytes).as_ref(), Ok(&record));
            for cut in 0..bytes.len() {
                assert!(
                    Record::decode_body(&bytes[..cut]).is_err(),
                    "{record:?} cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn bad_session_fields_are_refused() {
        // Level 6, reserved option bits, a packet id of 0.
        let cases: &[(&[u8], RecordError)] = &[
            (&[0x10, 0x01, 0x00, b'c', 6], RecordError::BadVersion(6)),
            (
                &[
                    0x10, 0x01, 0x00, b'c', 4, 0x00, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, b'a', 0xC0,
                ],
                RecordError::BadOptions(0xC0),
            ),
            (&[0x24, 0x01, 0x00, b'c', 0, 0], RecordError::ZeroPacketId),
        ];
        for (bytes, error) in cases {
            assert_eq!(Record::decode_body(bytes).as_ref(), Err(error), "{bytes:?}");
        }
    }
}
