//! ACL checks allocate nothing: `AclFile::compile` does the substitution once at CONNECT, and
//! `can_publish`, `can_read` and `can_subscribe` only walk the compiled filters. Runs under a
//! counting global allocator.

pub mod alloc_count;

use alloc_count::allocations_during;
use ringmq::auth::acl::AclFile;
use ringmq::protocol::{TopicFilter, TopicName};

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
