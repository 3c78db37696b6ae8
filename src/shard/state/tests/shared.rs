//! Shared subscriptions across a shard and its peer (section 4.8.2): messages of a member
//! whose session ends go to another member, a shard with no member left bounces what reaches
//! it, all-offline and stalled members are passed over, and presence is announced to peers.

use super::*;
use crate::timer::test_clock as clock;

const GROUP: &str = "$share/g/w/+";

fn group() -> TopicFilter {
    TopicFilter::try_from(GROUP).expect("valid")
}

fn join(state: &mut ShardState, conn: ConnId) {
    state.on_packet(conn, subscribe(GROUP, QoS::AtLeastOnce), clock());
    drain_packets(state, conn, ProtocolVersion::V5);
}

/// A peer announcing its members of the group, as shard 1.
fn peer_members(state: &mut ShardState, peer: &mut MeshEnds<MeshMsg>, members: u32, online: u32) {
    let msg = MeshMsg::ShareInterest {
        filter: group(),
        members,
        online,
    };
    assert!(peer.try_send(0, msg).is_ok());
    state.drain_mesh(16, clock(), &mut Vec::new());
}

fn publishes(packets: &[Packet]) -> usize {
    packets
        .iter()
        .filter(|p| matches!(p, Packet::Publish(_)))
        .count()
}

fn shared_publishes(msgs: &[MeshMsg]) -> Vec<u8> {
    msgs.iter()
        .filter_map(|m| match m {
            MeshMsg::SharedPublish { hops, .. } => Some(*hops),
            _ => None,
        })
        .collect()
}

fn publish_n(state: &mut ShardState, publisher: ConnId, n: u16) {
    for i in 0..n {
        state.on_packet(
            publisher,
            publish("w/1", QoS::AtLeastOnce, Some(i + 1)),
            clock(),
        );
    }
}

#[test]
fn a_member_whose_session_ends_hands_its_unacknowledged_qos1_messages_to_another() {
    // 4.8.2: if the member's session terminates, the server SHOULD send its unacknowledged
    // QoS 1 messages to another member of the group.
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    let gone = open(&mut state, ProtocolVersion::V5, "gone");
    let stay = open(&mut state, ProtocolVersion::V5, "stay");
    join(&mut state, gone);
    join(&mut state, stay);
    let publisher = open(&mut state, ProtocolVersion::V5, "p");
    publish_n(&mut state, publisher, 4);
    let to_gone = publishes(&drain_packets(&mut state, gone, ProtocolVersion::V5));
    let to_stay = publishes(&drain_packets(&mut state, stay, ProtocolVersion::V5));
    assert_eq!(
        (to_gone, to_stay),
        (2, 2),
        "round robin while both are ready"
    );

    state.close(gone, None, false, clock());
    let handed = publishes(&drain_packets(&mut state, stay, ProtocolVersion::V5));
    assert_eq!(
        handed, 2,
        "the unacknowledged two go to the remaining member"
    );
    assert!(shared_publishes(&peer_messages(&mut peer)).is_empty());
    assert_eq!(state.counters().dropped_shared, 0);
}

#[test]
fn the_messages_of_the_last_member_to_go_have_no_subscriber_and_are_counted() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    let only = open(&mut state, ProtocolVersion::V5, "only");
    join(&mut state, only);
    let publisher = open(&mut state, ProtocolVersion::V5, "p");
    publish_n(&mut state, publisher, 3);
    state.close(only, None, false, clock());
    assert_eq!(state.counters().dropped_shared, 3);
}

#[test]
fn a_shared_publish_reaching_a_shard_without_members_bounces_on_within_the_hop_bound() {
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    peer_members(&mut state, &mut peer, 1, 1);
    let msg = Message::from_publish(match publish("w/1", QoS::AtLeastOnce, Some(1)) {
        Packet::Publish(p) => p,
        _ => unreachable!("publish() builds a PUBLISH"),
    });
    let arriving = |hops| MeshMsg::SharedPublish {
        filter: group(),
        msg: msg.clone(),
        hops,
    };
    assert!(peer.try_send(0, arriving(0)).is_ok());
    state.drain_mesh(16, clock(), &mut Vec::new());
    assert_eq!(
        shared_publishes(&peer_messages(&mut peer)),
        [1],
        "passed on to the member shard"
    );
    // With two shards a message may bounce twice (once for a stalled member, once for a
    // member that left meanwhile).
    assert!(peer.try_send(0, arriving(1)).is_ok());
    state.drain_mesh(16, clock(), &mut Vec::new());
    assert_eq!(shared_publishes(&peer_messages(&mut peer)), [2]);
    assert!(peer.try_send(0, arriving(2)).is_ok());
    state.drain_mesh(16, clock(), &mut Vec::new());
    assert!(shared_publishes(&peer_messages(&mut peer)).is_empty());
    assert_eq!(
        state.counters().dropped_shared,
        1,
        "out of hops: dropped, counted"
    );
}

#[test]
fn a_peer_whose_members_are_all_offline_gets_nothing_while_one_is_online_here() {
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    let here = open(&mut state, ProtocolVersion::V5, "here");
    join(&mut state, here);
    peer_members(&mut state, &mut peer, 3, 0);
    let publisher = open(&mut state, ProtocolVersion::V5, "p");
    publish_n(&mut state, publisher, 4);
    assert_eq!(
        publishes(&drain_packets(&mut state, here, ProtocolVersion::V5)),
        4
    );
    assert!(shared_publishes(&peer_messages(&mut peer)).is_empty());

    peer_members(&mut state, &mut peer, 3, 1);
    publish_n(&mut state, publisher, 4);
    assert_eq!(shared_publishes(&peer_messages(&mut peer)).len(), 2);
}

#[test]
fn a_stalled_member_passes_its_share_to_a_shard_with_an_online_member() {
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    let mut c = connect(ProtocolVersion::V5, "slow");
    c.properties.receive_maximum = Some(1);
    let slow = state.open(&c, "slow".into(), false, clock());
    join(&mut state, slow);
    peer_members(&mut state, &mut peer, 1, 1);
    let publisher = open(&mut state, ProtocolVersion::V5, "p");
    // Picks alternate: here, peer, here, ... Here the first is sent (window 1), the second
    // waits first in line, and the member is stalled from then on.
    publish_n(&mut state, publisher, 8);
    assert_eq!(
        publishes(&drain_packets(&mut state, slow, ProtocolVersion::V5)),
        1
    );
    let hops = shared_publishes(&peer_messages(&mut peer));
    assert_eq!(
        hops.iter().filter(|&&h| h == 0).count(),
        4,
        "the peer's share"
    );
    assert_eq!(
        hops.iter().filter(|&&h| h == 1).count(),
        2,
        "bounced from here"
    );
}

#[test]
fn members_going_offline_and_back_are_announced_to_peers() {
    let (mut state, mut peer) = two_shards(Limits::default(), 64);
    let mut c = connect(ProtocolVersion::V5, "p1");
    c.properties.session_expiry_interval = Some(60);
    let member = state.open(&c, "p1".into(), false, clock());
    join(&mut state, member);
    let counts = |peer: &mut MeshEnds<MeshMsg>| -> Vec<(u32, u32)> {
        peer_messages(peer)
            .iter()
            .filter_map(|m| match m {
                MeshMsg::ShareInterest {
                    members, online, ..
                } => Some((*members, *online)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(counts(&mut peer), [(1, 1)]);
    state.close(member, None, false, clock());
    assert_eq!(counts(&mut peer), [(1, 0)], "offline, still a member");
    c.clean_start = false;
    state.open(&c, "p1".into(), false, clock());
    assert_eq!(counts(&mut peer), [(1, 1)], "back online");
}
