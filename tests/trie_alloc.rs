//! Checks that matching a topic against the subscription trie allocates nothing.

use ringmq::protocol::{TopicFilter, TopicName};
use ringmq::trie::Trie;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts every allocation the process makes (this file holds a single test).
struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `System` with `layout`; the caller upholds the contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

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
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    for _ in 0..100 {
        for t in &topics {
            trie.for_each_match(t, |v| hits += v);
        }
    }
    let allocated = ALLOCATIONS.load(Ordering::SeqCst) - before;

    assert_eq!(allocated, 0, "for_each_match allocated {allocated} times");
    assert!(hits > 0);
}
