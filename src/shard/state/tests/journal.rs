//! A persistent session's message records in the journal: a QoS 1 message taken and
//! retired before the writer takes the batch leaves no record at all; one the writer took
//! is retired by a record of its own.

use super::*;
use crate::persist::{HEADER, Record, Replay, WallTime};

/// The records of the writer's next batch, read back as recovery reads them.
fn writer_turn(state: &mut ShardState) -> Vec<Record> {
    let mut batch = Vec::new();
    state.take_journal(&mut batch, Waker::noop());
    let mut log = HEADER.to_vec();
    log.extend_from_slice(&batch);
    let replay = Replay::new(&log).unwrap_or_else(|v| panic!("version {v}"));
    replay
        .map(|r| {
            r.map(|(record, _)| record)
                .unwrap_or_else(|t| panic!("{t:?}"))
        })
        .collect()
}

fn delivered_id(state: &mut ShardState, sub: ConnId) -> PacketId {
    match drain_packets(state, sub, ProtocolVersion::V5).as_slice() {
        [Packet::Publish(p)] => p.packet_id.expect("QoS 1"),
        other => panic!("one PUBLISH, got {other:?}"),
    }
}

fn kinds(records: &[Record]) -> Vec<&'static str> {
    records
        .iter()
        .map(|r| match r {
            Record::OutQueued(_) => "queued",
            Record::OutDone { .. } => "done",
            Record::OutSent { .. } => "sent",
            _ => "other",
        })
        .collect()
}

#[test]
fn a_message_retired_before_the_writer_takes_the_batch_is_never_written() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    state.enable_journal(clock(), WallTime(1_000), false);
    let sub = open_with(&mut state, &persistent_v5("s", 600));
    state.on_packet(sub, subscribe("l/t", QoS::AtLeastOnce), clock());
    drain_packets(&mut state, sub, ProtocolVersion::V5);
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    assert!(
        kinds(&writer_turn(&mut state)).contains(&"other"),
        "the session's state"
    );

    // Taken and acknowledged within one batch: neither record is written.
    state.on_packet(
        publisher,
        publish("l/t", QoS::AtLeastOnce, Some(4)),
        clock(),
    );
    let id = delivered_id(&mut state, sub);
    state.on_packet(sub, Packet::PubAck(PubResp::new(id)), clock());
    assert_eq!(writer_turn(&mut state), vec![]);

    // Taken, then written, then acknowledged: the log retires it.
    state.on_packet(
        publisher,
        publish("l/t", QoS::AtLeastOnce, Some(5)),
        clock(),
    );
    let id = delivered_id(&mut state, sub);
    let taken = writer_turn(&mut state);
    let n = match taken.as_slice() {
        [Record::OutQueued(m)] => {
            assert_eq!((m.client_id.as_str(), m.packet_id), ("s", Some(id)));
            assert_eq!(m.message.message.payload.as_ref(), b"0123456789");
            m.n
        }
        other => panic!("the message taken, got {other:?}"),
    };
    // A third message taken in the same batch as the second's PUBACK stays.
    state.on_packet(
        publisher,
        publish("l/t", QoS::AtLeastOnce, Some(6)),
        clock(),
    );
    let third = delivered_id(&mut state, sub);
    state.on_packet(sub, Packet::PubAck(PubResp::new(id)), clock());
    let records = writer_turn(&mut state);
    assert_eq!(kinds(&records), vec!["queued", "done"]);
    assert!(matches!(&records[1], Record::OutDone { n: m, .. } if *m == n));
    state.on_packet(sub, Packet::PubAck(PubResp::new(third)), clock());
    assert_eq!(kinds(&writer_turn(&mut state)), vec!["done"]);
}
