//! Checks that matching a topic against the subscription trie allocates nothing.

pub mod alloc_count;

use alloc_count::allocations_during;
use ringmq::protocol::{TopicFilter, TopicName};
use ringmq::trie::Trie;

fn parse<T: TryFrom<&'static str>>(s: &'static str) -> T {
    match T::try_from(s) {
        Ok(v) => v,
        Err(_) => panic!("bad test topic or filter {s:?}"),
    }
}

#[test]
fn for_each_match_allocates_nothing() {
    let mut trie = Trie::new();
    let filters = [
        "sensors/+/temperature",
        "sensors/#",
        "#",
        "+/+/+",
        "sensors/kitchen/temperature",
        "$share/group/sensors/+/temperature",
        "$SYS/#",
        "other/deep/path/x",
    ];
    for (i, f) in filters.into_iter().enumerate() {
        assert!(trie.insert(&parse::<TopicFilter>(f), i).is_ok());
    }
    let topics: Vec<TopicName> = [
        "sensors/kitchen/temperature",
        "sensors/hall/humidity",
        "$SYS/broker/load",
        "nothing/here",
        "other/deep/path/x",
    ]
    .into_iter()
    .map(parse)
    .collect();

    let mut hits = 0usize;
    let allocated = allocations_during(|| {
        for _ in 0..100 {
            for t in &topics {
                trie.for_each_match(t, |v| hits += v);
            }
        }
    });

    assert_eq!(allocated, 0, "for_each_match allocated {allocated} times");
    assert!(hits > 0);
}
