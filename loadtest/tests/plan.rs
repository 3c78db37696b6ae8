//! Scenario plans: which topics publishers use, which filters subscribers hold, and which
//! receiving group expects which publisher (the basis of the loss count).

use ringmq_load::plan::{fanin, fanout, iot, pairs_plan, shared};

#[test]
fn fanin_with_one_topic_shares_it_and_with_many_uses_a_wildcard() {
    let one = fanin(3, 1, 0.0);
    assert!(one.publishers.iter().all(|p| p.topic == "load/fanin"));
    assert_eq!(one.subscribers[0].filter, "load/fanin");
    let many = fanin(3, 3, 0.0);
    let topics: Vec<&str> = many.publishers.iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(topics, ["load/fanin/0", "load/fanin/1", "load/fanin/2"]);
    assert_eq!(many.subscribers[0].filter, "load/fanin/+");
    assert_eq!(many.fanout_of(), vec![1, 1, 1]);
}

#[test]
fn fanout_expects_every_subscriber_to_get_every_message() {
    let plan = fanout(4, 0.0);
    assert_eq!(plan.fanout_of(), vec![4]);
    assert!((0..4).all(|g| plan.expects(g, 0)));
}

#[test]
fn pairs_expect_only_their_own_publisher() {
    let plan = pairs_plan(3, 0.0);
    assert!(plan.expects(1, 1));
    assert!(!plan.expects(1, 0));
    assert_eq!(plan.fanout_of(), vec![1, 1, 1]);
}

#[test]
fn a_shared_group_counts_once_however_many_members_it_has() {
    let plan = shared(2, 5, 0.0);
    assert!(plan.shared_groups);
    assert!(plan.subscribers.iter().all(|s| s.group == 0));
    assert!(
        plan.subscribers
            .iter()
            .all(|s| s.filter.starts_with("$share/g/"))
    );
    assert_eq!(plan.fanout_of(), vec![1, 1]);
}

#[test]
fn iot_devices_publish_telemetry_to_wildcard_subscribers() {
    let plan = iot(3, 2, 0.0);
    assert_eq!(plan.publishers[2].topic, "iot/dev2/telemetry");
    assert_eq!(plan.subscribers[0].filter, "iot/+/telemetry");
    assert_eq!(plan.subscribers[1].filter, "iot/#");
    assert_eq!(plan.fanout_of(), vec![2, 2, 2]);
    assert_eq!(plan.rate, 1.0, "devices default to one message a second");
}
