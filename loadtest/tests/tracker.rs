//! Sequence tracking: lost messages are gaps never filled, duplicates are numbers seen twice,
//! and the members of a shared subscription merge into one stream.

use ringmq_load::plan;
use ringmq_load::run::count_losses;
use ringmq_load::tracker::SeqTracker;
use ringmq_load::worker::{SubscriberRecord, ThreadStats};

#[test]
fn an_in_order_stream_has_no_gaps_and_no_losses() {
    let mut t = SeqTracker::new();
    for seq in 0..1000 {
        assert!(t.record(seq));
    }
    assert_eq!(t.unique(), 1000);
    assert_eq!(t.gaps(), 0);
    assert_eq!(t.lost(1000), 0);
    assert_eq!(t.duplicates(), 0);
}

#[test]
fn a_gap_counts_until_filled() {
    let mut t = SeqTracker::new();
    for seq in [0, 1, 5] {
        t.record(seq);
    }
    assert_eq!(t.gaps(), 3);
    t.record(3);
    assert_eq!(t.gaps(), 2);
    assert_eq!(t.lost(6), 2);
}

#[test]
fn messages_never_received_at_the_end_are_lost() {
    let mut t = SeqTracker::new();
    for seq in 0..10 {
        t.record(seq);
    }
    assert_eq!(t.lost(15), 5);
}

#[test]
fn a_number_seen_twice_is_a_duplicate_not_a_new_message() {
    let mut t = SeqTracker::new();
    t.record(0);
    t.record(1);
    assert!(!t.record(1));
    assert!(!t.record(0));
    assert_eq!(t.duplicates(), 2);
    assert_eq!(t.unique(), 2);
    assert_eq!(t.lost(2), 0);
}

#[test]
fn sequence_numbers_far_apart_are_tracked() {
    let mut t = SeqTracker::new();
    t.record(1_000_000);
    t.record(0);
    assert_eq!(t.unique(), 2);
    assert_eq!(t.end(), 1_000_001);
    assert_eq!(t.received_below(1_000_000), 1);
}

#[test]
fn merging_shared_members_covers_the_whole_stream() {
    // A $share group: members see alternate messages; together they saw all of them.
    let (mut a, mut b) = (SeqTracker::new(), SeqTracker::new());
    for seq in 0..100 {
        if seq % 2 == 0 {
            a.record(seq)
        } else {
            b.record(seq)
        };
    }
    assert_eq!(a.gaps(), 49);
    a.merge(&b);
    assert_eq!(a.unique(), 100);
    assert_eq!(a.lost(100), 0);
    assert_eq!(a.duplicates(), 0);
}

#[test]
fn merging_counts_a_message_both_members_got_as_a_duplicate() {
    let (mut a, mut b) = (SeqTracker::new(), SeqTracker::new());
    a.record(0);
    a.record(1);
    b.record(1);
    b.record(2);
    a.merge(&b);
    assert_eq!(a.unique(), 3);
    assert_eq!(a.duplicates(), 1);
}

fn record(id: u32, group: u32, seqs_by_publisher: &[&[u64]]) -> SubscriberRecord {
    SubscriberRecord {
        id,
        group,
        trackers: seqs_by_publisher
            .iter()
            .map(|seqs| {
                let mut t = SeqTracker::new();
                seqs.iter().for_each(|&s| {
                    t.record(s);
                });
                t
            })
            .collect(),
    }
}

#[test]
fn losses_are_counted_per_group_against_what_each_publisher_sent() {
    // fanout 1 -> 2: subscriber 0 got everything, subscriber 1 missed seq 2 and 4 (the tail).
    let plan = plan::fanout(2, 0.0);
    let mut t0 = ThreadStats::new();
    t0.subscribers.push(record(0, 0, &[&[0, 1, 2, 3, 4]]));
    let mut t1 = ThreadStats::new();
    t1.subscribers.push(record(1, 1, &[&[0, 1, 3, 3]]));
    let (lost, duplicated, expected) = count_losses(&plan, &[5], &[t0, t1]);
    assert_eq!((lost, duplicated, expected), (2, 1, 10));
}

#[test]
fn shared_group_members_on_different_threads_merge_before_counting() {
    let plan = plan::shared(1, 2, 0.0);
    let mut t0 = ThreadStats::new();
    t0.subscribers.push(record(0, 0, &[&[0, 2, 4]]));
    let mut t1 = ThreadStats::new();
    t1.subscribers.push(record(1, 0, &[&[1, 3]]));
    assert_eq!(count_losses(&plan, &[5], &[t0, t1]), (0, 0, 5));
}

#[test]
fn a_sequence_number_far_beyond_the_stream_is_not_plausible() {
    let mut t = SeqTracker::new();
    assert!(t.plausible(0));
    assert!(!t.plausible(u64::MAX));
    assert!(!t.plausible(ringmq_load::tracker::MAX_JUMP));
    t.record(10);
    assert!(t.plausible(10 + ringmq_load::tracker::MAX_JUMP));
}
