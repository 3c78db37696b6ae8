//! Checks that matching a topic against the subscription trie allocates nothing.

use ringmq::protocol::{TopicFilter, TopicName};
use ringmq::trie::Trie;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// Counts the allocations of each thread: only the test's own thread is looked at, so the
/// test harness allocating on its threads meanwhile does not count.
struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count() {
    // `try_with`: a thread being torn down may still allocate.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards every call unchanged to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract, which we pass on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
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
    let before = allocations();
    for _ in 0..100 {
        for t in &topics {
            trie.for_each_match(t, |v| hits += v);
        }
    }
    let allocated = allocations() - before;

    assert_eq!(allocated, 0, "for_each_match allocated {allocated} times");
    assert!(hits > 0);
}
