//! ACL checks allocate nothing: `AclFile::compile` does the substitution once at CONNECT, and
//! `can_publish`, `can_read` and `can_subscribe` only walk the compiled filters. Runs under a
//! counting global allocator.

use ringmq::auth::acl::AclFile;
use ringmq::protocol::{TopicFilter, TopicName};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

fn count() {
    // try_with: the thread-local may already be gone while a thread exits.
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        }
    });
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    ALLOCATIONS.with(|n| n.set(0));
    COUNTING.with(|on| on.set(true));
    f();
    COUNTING.with(|on| on.set(false));
    ALLOCATIONS.with(|n| n.get())
}

const ACL: &str = "\
topic read $SYS/#
user alice
topic readwrite alice/#
topic deny alice/secret/#
topic read shared/+/status
pattern readwrite devices/%c/#
pattern read users/%u/inbox
pattern deny devices/%c/locked
";

#[test]
fn checks_allocate_nothing() {
    let file = AclFile::parse(ACL.as_bytes()).expect("valid acl");
    let acl = file.compile("sensor-42", Some("alice"));
    let long = format!("alice/{}", "deep/".repeat(20));
    let topics = [
        "alice/notes",
        "alice/secret/plans",
        "devices/sensor-42/temp",
        "devices/sensor-42/locked",
        "users/alice/inbox",
        "$SYS/broker/uptime",
        "nobody/here",
        long.trim_end_matches('/'),
    ]
    .map(|t| TopicName::try_from(t).expect("valid topic"));
    let filters = [
        "alice/#",
        "alice/+/x",
        "devices/sensor-42/+",
        "shared/+/status",
        "$share/g/alice/notes",
        "#",
        "$SYS/#",
    ]
    .map(|f| TopicFilter::try_from(f).expect("valid filter"));
    let mut answers = Vec::with_capacity(3 * topics.len() + filters.len());
    let allocations = allocations_during(|| {
        for _ in 0..100 {
            answers.clear();
            for t in &topics {
                answers.push(acl.can_publish(t));
                answers.push(acl.can_read(t));
            }
            for f in &filters {
                answers.push(acl.can_subscribe(f));
            }
        }
    });
    assert_eq!(allocations, 0);
    // The checks did run and answered both ways.
    assert!(answers.contains(&true) && answers.contains(&false));
}
