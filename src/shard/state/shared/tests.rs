//! The pure rules of shared subscription groups: member shard picks, member counts, the
//! readiest local member and what a member shard does with a message.

use super::*;

fn shard(shard: usize, members: u32, online: u32) -> MemberShard {
    MemberShard {
        shard,
        members,
        online,
    }
}

fn picks(shards: &[MemberShard], exclude: Option<usize>, n: usize) -> Vec<Option<usize>> {
    let mut next = 0;
    (0..n)
        .map(|_| pick_member_shard(shards, &mut next, exclude))
        .collect()
}

#[test]
fn member_shards_are_picked_round_robin_weighted_by_online_members() {
    let shards = [shard(0, 1, 1), shard(1, 3, 2)];
    assert_eq!(
        picks(&shards, None, 6),
        [Some(0), Some(1), Some(1), Some(0), Some(1), Some(1)]
    );
}

#[test]
fn a_shard_whose_members_are_all_offline_is_skipped_while_one_is_online_elsewhere() {
    // 4.8.2: the server chooses the member; an offline one would only queue the message.
    let shards = [shard(0, 5, 0), shard(1, 1, 1)];
    assert_eq!(picks(&shards, None, 3), [Some(1); 3]);
}

#[test]
fn with_no_member_online_anywhere_offline_members_share_by_member_count() {
    let shards = [shard(0, 1, 0), shard(1, 2, 0)];
    assert_eq!(picks(&shards, None, 3), [Some(0), Some(1), Some(1)]);
}

#[test]
fn a_bounce_never_picks_the_excluded_shard() {
    let shards = [shard(0, 3, 3), shard(1, 1, 0), shard(2, 1, 1)];
    assert_eq!(picks(&shards, Some(0), 3), [Some(2); 3]);
    assert_eq!(picks(&[shard(0, 1, 1)], Some(0), 1), [None]);
    assert_eq!(picks(&[], None, 1), [None]);
}

#[test]
fn member_counts_are_set_absolutely_and_a_shard_without_members_is_removed() {
    let mut shards = Vec::new();
    assert!(set_member_shard(&mut shards, shard(1, 2, 1)));
    assert!(set_member_shard(&mut shards, shard(0, 1, 1)));
    assert!(!set_member_shard(&mut shards, shard(1, 2, 1)), "unchanged");
    assert!(set_member_shard(&mut shards, shard(1, 2, 0)));
    assert_eq!(shards, [shard(0, 1, 1), shard(1, 2, 0)]);
    assert!(set_member_shard(&mut shards, shard(0, 0, 0)));
    assert!(!set_member_shard(&mut shards, shard(3, 0, 0)));
    assert_eq!(shards, [shard(1, 2, 0)]);
}

#[test]
fn the_readiest_local_member_is_picked_round_robin_among_equals() {
    use Readiness::*;
    let members = [Stalled, Ready, Offline, Ready];
    let pick = |start| pick_local(&members, start, |&r| r);
    assert_eq!(pick(0), Some((1, Ready)));
    assert_eq!(pick(2), Some((3, Ready)));
    assert_eq!(pick(4), Some((1, Ready)));
    let members = [Offline, Stalled, Busy, Stalled];
    assert_eq!(pick_local(&members, 3, |&r| r), Some((2, Busy)));
    let members = [Offline, Stalled, Offline, Stalled];
    assert_eq!(pick_local(&members, 2, |&r| r), Some((3, Stalled)));
    assert_eq!(pick_local(&[] as &[Readiness], 0, |&r| r), None);
}

#[test]
fn a_ready_or_busy_member_takes_the_message_here() {
    let everywhere = Elsewhere {
        members: true,
        online: true,
    };
    for r in [Readiness::Ready, Readiness::Busy] {
        assert_eq!(
            next_step(Some((2, r)), 0, 1, everywhere),
            LocalStep::Deliver(2)
        );
    }
}

#[test]
fn stalled_members_let_the_message_go_once_to_a_shard_with_an_online_member() {
    let stalled = Some((0, Readiness::Stalled));
    let online = Elsewhere {
        members: true,
        online: true,
    };
    let offline = Elsewhere {
        members: true,
        online: false,
    };
    assert_eq!(next_step(stalled, 0, 3, online), LocalStep::Bounce);
    assert_eq!(next_step(stalled, 1, 3, online), LocalStep::Deliver(0));
    assert_eq!(next_step(stalled, 0, 3, offline), LocalStep::Deliver(0));
}

#[test]
fn offline_members_keep_the_message_only_when_nobody_is_online_or_bounces_ran_out() {
    let offline_here = Some((1, Readiness::Offline));
    let online = Elsewhere {
        members: true,
        online: true,
    };
    assert_eq!(next_step(offline_here, 0, 1, online), LocalStep::Bounce);
    assert_eq!(next_step(offline_here, 1, 1, online), LocalStep::Deliver(1));
    let nobody_online = Elsewhere {
        members: true,
        online: false,
    };
    assert_eq!(
        next_step(offline_here, 0, 1, nobody_online),
        LocalStep::Deliver(1)
    );
}

#[test]
fn a_shard_without_members_bounces_while_it_may_and_drops_when_nobody_is_left() {
    let members = Elsewhere {
        members: true,
        online: false,
    };
    assert_eq!(next_step(None, 0, 1, members), LocalStep::Bounce);
    assert_eq!(next_step(None, 1, 1, members), LocalStep::Drop, "hop bound");
    assert_eq!(next_step(None, 0, 1, Elsewhere::default()), LocalStep::Drop);
}
