//! Acknowledgements held until the log is durable (`durable`): with `fsync = "always"` a
//! PUBACK waits for this shard's batch to be synced and for every peer's `DurableAck`;
//! otherwise nothing is held.

use super::*;
use crate::persist::WallTime;

fn journaled(hold: bool) -> (ShardState, MeshEnds<MeshMsg>) {
    let (mut state, peer) = two_shards(Limits::default(), 64);
    state.enable_journal(clock(), WallTime(1_000), hold);
    (state, peer)
}

fn writer_turn(state: &mut ShardState) -> bool {
    let mut batch = Vec::new();
    state.take_journal(&mut batch, Waker::noop())
}

#[test]
fn with_fsync_always_a_puback_waits_for_the_sync_and_every_peers_durable_ack() {
    let (mut state, mut peer) = journaled(true);
    let publisher = open(&mut state, ProtocolVersion::V4, "pub");
    state.on_packet(
        publisher,
        publish("a/b", QoS::AtLeastOnce, Some(7)),
        clock(),
    );
    assert!(drain_packets(&mut state, publisher, ProtocolVersion::V4).is_empty());
    // The writer takes the turn (no records: nobody subscribed) and seals its ticket,
    // which asks the peer for a durability barrier.
    assert!(writer_turn(&mut state), "a ticket to write and sync");
    state.journal_durable(clock());
    assert!(
        drain_packets(&mut state, publisher, ProtocolVersion::V4).is_empty(),
        "synced here, but the peer has not answered"
    );
    let mut token = None;
    peer.drain(usize::MAX, |_, m| {
        if let MeshMsg::DurableBarrier { token: t } = m {
            token = Some(t);
        }
    });
    let token = token.expect("a DurableBarrier to the peer");
    assert!(peer.try_send(0, MeshMsg::DurableAck { token }).is_ok());
    peer.flush_wakes();
    state.drain_mesh(usize::MAX, clock(), &mut Vec::new());
    match drain_packets(&mut state, publisher, ProtocolVersion::V4).as_slice() {
        [Packet::PubAck(ack)] => assert_eq!(ack.packet_id, pid(7)),
        other => panic!("the PUBACK once durable everywhere, got {other:?}"),
    }
}

#[test]
fn a_peers_barrier_is_answered_once_its_batch_is_synced() {
    let (mut state, mut peer) = journaled(true);
    assert!(
        peer.try_send(0, MeshMsg::DurableBarrier { token: 5 })
            .is_ok()
    );
    peer.flush_wakes();
    state.drain_mesh(usize::MAX, clock(), &mut Vec::new());
    let answered = |peer: &mut MeshEnds<MeshMsg>| {
        let mut acks = Vec::new();
        peer.drain(usize::MAX, |_, m| {
            if let MeshMsg::DurableAck { token } = m {
                acks.push(token);
            }
        });
        acks
    };
    assert!(
        answered(&mut peer).is_empty(),
        "not before the writer's turn"
    );
    assert!(writer_turn(&mut state));
    state.journal_durable(clock());
    assert_eq!(answered(&mut peer), [5]);
}

#[test]
fn with_interval_or_never_acknowledgements_are_not_held() {
    let (mut state, _peer) = journaled(false);
    let publisher = open(&mut state, ProtocolVersion::V4, "pub");
    state.on_packet(
        publisher,
        publish("a/b", QoS::ExactlyOnce, Some(3)),
        clock(),
    );
    match drain_packets(&mut state, publisher, ProtocolVersion::V4).as_slice() {
        [Packet::PubRec(rec)] => assert_eq!(rec.packet_id, pid(3)),
        other => panic!("PUBREC at once, got {other:?}"),
    }
    assert!(!writer_turn(&mut state), "nothing for the writer");
}
