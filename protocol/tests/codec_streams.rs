//! Robustness: seeded random and mutated byte streams, fed to `decode` whole and in chunks
//! split at every point (and at many random points). `decode` must never panic, never consume
//! bytes when it returns `Ok(None)`, return the same packets however the stream is chunked,
//! and every packet it returns must re-encode and decode back to itself.

pub mod common;

use bytes::BytesMut;
use common::*;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use ringmq_protocol::{DecodeError, Packet, ProtocolVersion, decode};

/// xorshift64*: a tiny seeded generator, so failures reproduce from the printed seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[derive(Debug, PartialEq)]
struct Outcome {
    packets: Vec<Packet>,
    error: Option<DecodeError>,
}

/// Feeds `chunks` one after another into a read buffer, decoding after each.
fn decode_chunks<'a>(chunks: impl Iterator<Item = &'a [u8]>, version: ProtocolVersion) -> Outcome {
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match decode(&mut buf, version, usize::MAX) {
                Ok(Some(packet)) => {
                    assert!(buf.len() < before, "a packet must consume bytes");
                    packets.push(packet);
                }
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) must consume nothing");
                    break;
                }
                Err(error) => {
                    return Outcome {
                        packets,
                        error: Some(error),
                    };
                }
            }
        }
    }
    Outcome {
        packets,
        error: None,
    }
}

fn assert_re_encodes(packet: &Packet, version: ProtocolVersion) {
    let bytes = encode_exact(packet, version);
    assert_eq!(&decode_one(&bytes, version), packet);
}

/// Checks one stream in one version: whole, at every split point (when `every_split`), and
/// in random chunks.
fn check_stream(
    stream: &[u8],
    version: ProtocolVersion,
    rng: &mut Rng,
    every_split: bool,
) -> usize {
    let whole = decode_chunks(std::iter::once(stream), version);
    for packet in &whole.packets {
        assert_re_encodes(packet, version);
    }
    if every_split {
        for split in 0..=stream.len() {
            let (a, b) = stream.split_at(split);
            assert_eq!(
                decode_chunks([a, b].into_iter(), version),
                whole,
                "split at {split}"
            );
        }
    }
    let mut chunks = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(1 + rng.below(rest.len().min(16)));
        chunks.push(chunk);
        rest = tail;
    }
    assert_eq!(
        decode_chunks(chunks.into_iter(), version),
        whole,
        "random chunks"
    );
    whole.packets.len()
}

/// A few valid packets of `version` back to back.
fn valid_stream(runner: &mut TestRunner, version: ProtocolVersion, count: usize) -> Vec<u8> {
    let strategy = packet(version);
    let mut stream = Vec::new();
    for _ in 0..count {
        let tree = strategy.new_tree(runner).expect("strategy generates");
        stream.extend_from_slice(&encode_exact(&tree.current(), version));
    }
    stream
}

fn mutate(stream: &mut Vec<u8>, rng: &mut Rng) {
    for _ in 0..1 + rng.below(3) {
        if stream.is_empty() {
            stream.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(stream.len());
        match rng.below(5) {
            0 => stream[at] ^= 1 << rng.below(8),
            1 => stream[at] = rng.next() as u8,
            2 => stream.insert(at, rng.next() as u8),
            3 => {
                stream.remove(at);
            }
            _ => stream.truncate(at),
        }
    }
}

/// The first byte of each packet type with its fixed flags (PUBLISH with QoS 0..2).
const FIRST_BYTES: [u8; 17] = [
    0x10, 0x20, 0x30, 0x32, 0x34, 0x3B, 0x40, 0x50, 0x62, 0x70, 0x82, 0x90, 0xA2, 0xB0, 0xC0, 0xD0,
    0xE0,
];

/// Random bytes; half the time framed as packets with a plausible first byte and a correct
/// remaining length, so the body parsers see random input too.
fn random_stream(rng: &mut Rng) -> Vec<u8> {
    let mut stream = Vec::new();
    if rng.below(2) == 0 {
        let len = rng.below(48);
        stream.extend((0..len).map(|_| rng.next() as u8));
        return stream;
    }
    for _ in 0..1 + rng.below(3) {
        let body_len = if rng.below(2) == 0 {
            rng.below(5)
        } else {
            rng.below(24)
        };
        stream.push(FIRST_BYTES[rng.below(FIRST_BYTES.len())]);
        stream.push(body_len as u8);
        stream.extend((0..body_len).map(|_| rng.next() as u8));
    }
    stream
}

#[test]
fn valid_streams_decode_identically_at_every_split_point() {
    let mut runner = TestRunner::deterministic();
    let mut rng = Rng(0x5EED_0001);
    for _ in 0..400 {
        for version in VERSIONS {
            let stream = valid_stream(&mut runner, version, 3);
            let whole = decode_chunks(std::iter::once(&stream[..]), version);
            assert_eq!(whole.error, None);
            assert_eq!(whole.packets.len(), 3);
            check_stream(&stream, version, &mut rng, true);
        }
    }
}

#[test]
fn mutated_streams_never_panic_and_round_trip_what_they_decode() {
    let mut runner = TestRunner::deterministic();
    let mut rng = Rng(0x5EED_0002);
    let mut decoded = 0;
    for i in 0..10_000 {
        let version = VERSIONS[i % 3];
        let mut stream = valid_stream(&mut runner, version, 2);
        mutate(&mut stream, &mut rng);
        for version in VERSIONS {
            decoded += check_stream(&stream, version, &mut rng, i % 10 == 0);
        }
    }
    // Mutations must leave plenty of packets decodable, or the round-trip check is idle.
    assert!(decoded > 5_000, "only {decoded} packets decoded");
}

#[test]
fn random_streams_never_panic_and_round_trip_what_they_decode() {
    let mut rng = Rng(0x5EED_0003);
    let mut decoded = 0;
    for i in 0..30_000 {
        let stream = random_stream(&mut rng);
        for version in VERSIONS {
            decoded += check_stream(&stream, version, &mut rng, i % 10 == 0);
        }
    }
    assert!(decoded > 1_000, "only {decoded} packets decoded");
}
