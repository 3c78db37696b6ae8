//! The byte layout of a log file, as pure functions: an 8-byte header, then records, each
//! framed as `len u32 LE | crc u32 LE | body (len bytes)`, where `crc` is the CRC-32
//! (IEEE, as zlib and ethernet compute it) of the four length bytes and the body.
//!
//! Decoding (`Replay`) stops at the first frame that is short, fails its CRC or does not
//! decode, and says where the last good record ends: everything after that offset is a torn
//! or corrupt tail, which recovery cuts off.

use super::error::{RecordError, TailError};
use super::record::Record;

/// `RMQLOG` and the format version (u16 LE).
pub const HEADER: [u8; HEADER_LEN] = [b'R', b'M', b'Q', b'L', b'O', b'G', FORMAT_VERSION as u8, 0];
pub const HEADER_LEN: usize = 8;
/// The version this broker writes; it reads this one and older ones, each a subset of the
/// next (version 1 had the retained kinds only; version 2 had no will Message Expiry
/// Interval and no connection wills). A log of a newer one is refused, not truncated.
pub const FORMAT_VERSION: u16 = 3;
/// Length and CRC fields in front of each body.
const FRAME_LEN: usize = 8;

/// Appends `record`, framed, to `out`. On error `out` is left as it was.
pub fn encode_record(record: &Record, out: &mut Vec<u8>) -> Result<(), RecordError> {
    encode_frame(out, |out| record.encode_body(out))
}

/// Appends the body `body` appends, framed, to `out`. On error `out` is left as it was.
pub fn encode_frame(
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), RecordError>,
) -> Result<(), RecordError> {
    let start = out.len();
    encode_frame_unsealed(out, body)?;
    seal(&mut out[start..]);
    Ok(())
}

/// `encode_frame` without the CRC (left 0): for a record that may still be cut from its
/// batch before it is written (`Sink::void`), so that only the records written are
/// checksummed, by `seal`, when the batch is taken.
pub(super) fn encode_frame_unsealed(
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), RecordError>,
) -> Result<(), RecordError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_LEN]);
    if let Err(e) = body(out) {
        out.truncate(start);
        return Err(e);
    }
    let Ok(len) = u32::try_from(out.len() - start - FRAME_LEN) else {
        out.truncate(start);
        return Err(RecordError::TooLong("record"));
    };
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Fills in the CRC of each frame of `frames`, whole frames written by
/// `encode_frame_unsealed`, in order.
pub(super) fn seal(frames: &mut [u8]) {
    let mut at = 0;
    while let Some(len) = frames.get(at..at + 4) {
        let len: [u8; 4] = [len[0], len[1], len[2], len[3]];
        let end = at + FRAME_LEN + u32::from_le_bytes(len) as usize;
        let Some(body) = frames.get(at + FRAME_LEN..end) else {
            return;
        };
        let crc = crc(&len, body);
        frames[at + 4..at + FRAME_LEN].copy_from_slice(&crc.to_le_bytes());
        at = end;
    }
}

fn crc(len: &[u8; 4], body: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(len);
    hasher.update(body);
    hasher.finalize()
}

/// Where decoding stopped: `offset` is the end of the last good record (the length to cut
/// the file to), `error` what was found there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Torn {
    pub offset: usize,
    pub error: TailError,
}

/// The records of a log, in order, each with the offset where it ends; then, if the log
/// does not end cleanly, one `Err(Torn)`; then nothing.
#[derive(Debug)]
pub struct Replay<'a> {
    bytes: &'a [u8],
    /// The end of the last good record (or of the header).
    good_end: usize,
    done: bool,
    /// The header's format version (0 without a valid header).
    version: u16,
}

impl<'a> Replay<'a> {
    /// A replay of a whole log file. `Err(version)` for a log of a newer format version.
    /// An empty file is an empty log; a file too short for its header or with a foreign
    /// header is torn at 0.
    pub fn new(bytes: &'a [u8]) -> Result<Self, u16> {
        let mut replay = Self {
            bytes,
            good_end: 0,
            done: bytes.is_empty(),
            version: 0,
        };
        if let Some(header) = bytes.get(..HEADER_LEN)
            && header[..6] == HEADER[..6]
        {
            let version = u16::from_le_bytes([header[6], header[7]]);
            if version > FORMAT_VERSION {
                return Err(version);
            }
            if version >= 1 {
                replay.good_end = HEADER_LEN;
                replay.version = version;
            }
        }
        Ok(replay)
    }

    /// The format version of the log's header (0 if it has no valid header).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The end of the last good record so far (the whole log once the replay is done and
    /// found no tail).
    pub fn good_end(&self) -> usize {
        self.good_end
    }

    fn stop(&mut self, error: TailError) -> Option<Result<(Record, usize), Torn>> {
        self.done = true;
        Some(Err(Torn {
            offset: self.good_end,
            error,
        }))
    }
}

impl Iterator for Replay<'_> {
    type Item = Result<(Record, usize), Torn>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.good_end == 0 {
            return self.stop(TailError::BadHeader);
        }
        let rest = &self.bytes[self.good_end..];
        if rest.is_empty() {
            self.done = true;
            return None;
        }
        let Some((frame, after)) = rest.split_first_chunk::<FRAME_LEN>() else {
            return self.stop(TailError::ShortFrame);
        };
        let len_bytes = [frame[0], frame[1], frame[2], frame[3]];
        let len = u32::from_le_bytes(len_bytes);
        let stored = u32::from_le_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if len == 0 {
            return self.stop(TailError::EmptyBody);
        }
        let Some(body) = after.get(..len as usize) else {
            let available = after.len();
            return self.stop(TailError::ShortBody { len, available });
        };
        let computed = crc(&len_bytes, body);
        if computed != stored {
            return self.stop(TailError::BadCrc { stored, computed });
        }
        match Record::decode_body(body) {
            Ok(record) => {
                self.good_end += FRAME_LEN + body.len();
                Some(Ok((record, self.good_end)))
            }
            Err(e) => self.stop(TailError::BadBody(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::record::RetainedMessage;
    use crate::protocol::{QoS, TopicName};
    use bytes::Bytes;

    fn topic(name: &str) -> TopicName {
        TopicName::try_from(name).unwrap_or_default()
    }

    fn set(name: &str, payload: &'static [u8]) -> Record {
        Record::RetainedSet(RetainedMessage {
            topic: topic(name),
            payload: Bytes::from_static(payload),
            qos: QoS::AtMostOnce,
            properties: None,
            expires_at: None,
        })
    }

    /// A header and three records; the offsets where each record ends.
    fn log() -> (Vec<u8>, Vec<usize>) {
        let mut bytes = HEADER.to_vec();
        let mut ends = Vec::new();
        for record in [
            set("a", b"1"),
            Record::RetainedClear(topic("a")),
            set("b", b"22"),
        ] {
            assert_eq!(encode_record(&record, &mut bytes), Ok(()));
            ends.push(bytes.len());
        }
        (bytes, ends)
    }

    #[test]
    fn frames_sealed_later_are_the_frames_encoded_at_once() {
        let (bytes, _) = log();
        let mut unsealed = HEADER.to_vec();
        for record in [
            set("a", b"1"),
            Record::RetainedClear(topic("a")),
            set("b", b"22"),
        ] {
            let body = |out: &mut Vec<u8>| record.encode_body(out);
            assert_eq!(encode_frame_unsealed(&mut unsealed, body), Ok(()));
        }
        assert_ne!(unsealed, bytes, "no CRC yet");
        seal(&mut unsealed[HEADER_LEN..]);
        assert_eq!(unsealed, bytes);
        // A cut frame at the end is left as it is, not read past.
        let mut cut = unsealed[HEADER_LEN..unsealed.len() - 1].to_vec();
        let before = cut.clone();
        seal(&mut cut);
        assert_eq!(cut, before);
    }

    /// The records up to the tail, the good end, and the tail's error if any.
    fn replay_all(bytes: &[u8]) -> (Vec<Record>, usize, Option<Torn>) {
        let mut replay = Replay::new(bytes).unwrap_or_else(|v| panic!("version {v}"));
        let mut records = Vec::new();
        let mut torn = None;
        for item in replay.by_ref() {
            match item {
                Ok((record, _)) => records.push(record),
                Err(t) => torn = Some(t),
            }
        }
        (records, replay.good_end(), torn)
    }

    #[test]
    fn a_frame_is_length_crc_and_body_byte_for_byte() {
        let mut bytes = Vec::new();
        assert_eq!(
            encode_record(&Record::RetainedClear(topic("x")), &mut bytes),
            Ok(())
        );
        let body = [0x02, 0x01, 0x00, b'x'];
        let expected_crc = {
            let mut h = crc32fast::Hasher::new();
            h.update(&[4, 0, 0, 0]);
            h.update(&body);
            h.finalize()
        };
        #[rustfmt::skip]
        let mut expected = vec![
            0x04, 0x00, 0x00, 0x00, // len: 4 body bytes
        ];
        expected.extend_from_slice(&expected_crc.to_le_bytes()); // crc of len + body
        expected.extend_from_slice(&body);
        assert_eq!(bytes, expected);
        assert_eq!(HEADER, *b"RMQLOG\x03\x00");
    }

    #[test]
    fn a_clean_log_replays_every_record_to_its_end() {
        let (bytes, ends) = log();
        let mut replay = Replay::new(&bytes).unwrap_or_else(|v| panic!("version {v}"));
        let got: Vec<_> = replay.by_ref().collect();
        assert_eq!(
            got,
            vec![
                Ok((set("a", b"1"), ends[0])),
                Ok((Record::RetainedClear(topic("a")), ends[1])),
                Ok((set("b", b"22"), ends[2])),
            ]
        );
        assert_eq!(replay.good_end(), bytes.len());
        assert_eq!(replay_all(&HEADER), (vec![], HEADER_LEN, None));
        assert_eq!(
            replay_all(&[]),
            (vec![], 0, None),
            "an empty file is an empty log"
        );
    }

    #[test]
    fn a_log_cut_anywhere_replays_up_to_the_last_whole_record() {
        let (bytes, ends) = log();
        for cut in HEADER_LEN..bytes.len() {
            let whole = ends.iter().filter(|&&end| end <= cut).count();
            let good_end = ends[..whole].last().copied().unwrap_or(HEADER_LEN);
            let (records, end, torn) = replay_all(&bytes[..cut]);
            assert_eq!(records.len(), whole, "cut at {cut}");
            assert_eq!(end, good_end, "cut at {cut}");
            if cut == good_end {
                assert_eq!(torn, None, "cut at {cut} is a record boundary");
            } else {
                let torn = torn.unwrap_or_else(|| panic!("cut at {cut}: no tail reported"));
                assert_eq!(torn.offset, good_end);
                assert!(
                    matches!(
                        torn.error,
                        TailError::ShortFrame | TailError::ShortBody { .. }
                    ),
                    "cut at {cut}: {:?}",
                    torn.error
                );
            }
        }
    }

    #[test]
    fn a_flipped_byte_in_the_last_record_stops_before_it() {
        let (bytes, ends) = log();
        for at in ends[1]..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[at] ^= 0x5A;
            let (records, end, torn) = replay_all(&flipped);
            assert_eq!(records.len(), 2, "flip at {at}");
            assert_eq!(end, ends[1], "flip at {at}");
            let error = torn.map(|t| t.error);
            assert!(
                matches!(
                    error,
                    Some(TailError::BadCrc { .. } | TailError::ShortBody { .. })
                ),
                "flip at {at}: {error:?}"
            );
        }
    }

    #[test]
    fn a_zero_length_or_undecodable_record_is_a_tail_too() {
        let (mut bytes, ends) = log();
        bytes.extend_from_slice(&[0; 12]);
        let (_, end, torn) = replay_all(&bytes);
        assert_eq!(end, ends[2]);
        assert_eq!(torn.map(|t| t.error), Some(TailError::EmptyBody));

        // A CRC-valid frame whose body is of an unknown kind.
        let (mut bytes, ends) = log();
        let body = [0x7F];
        bytes.extend_from_slice(&1u32.to_le_bytes());
        bytes.extend_from_slice(&crc(&1u32.to_le_bytes(), &body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let (records, end, torn) = replay_all(&bytes);
        assert_eq!((records.len(), end), (3, ends[2]));
        assert_eq!(
            torn.map(|t| t.error),
            Some(TailError::BadBody(RecordError::UnknownKind(0x7F)))
        );
    }

    #[test]
    fn a_bad_header_is_torn_at_0_and_a_newer_version_is_refused() {
        let (bytes, _) = log();
        for cut in 1..HEADER_LEN {
            let (records, end, torn) = replay_all(&bytes[..cut]);
            assert_eq!((records.len(), end), (0, 0));
            assert_eq!(torn.map(|t| t.error), Some(TailError::BadHeader));
        }
        let mut foreign = bytes.clone();
        foreign[0] = b'X';
        assert_eq!(replay_all(&foreign).1, 0);
        let mut newer = bytes.clone();
        newer[6] = 4;
        assert_eq!(Replay::new(&newer).map(|_| ()), Err(4));
        // Versions 1 (retained records only) and 2 are read, and say so.
        for version in [1, 2] {
            let mut older = bytes.clone();
            older[6] = version;
            let replay = Replay::new(&older).unwrap_or_else(|v| panic!("version {v}"));
            assert_eq!(replay.version(), u16::from(version));
            assert_eq!(replay.count(), 3);
        }
    }
}
