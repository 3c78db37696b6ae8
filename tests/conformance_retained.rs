//! Conformance of retained messages (MQTT 3.1.1 / 5.0 section 3.3.1.3) against the real
//! `ringmq` binary: storage, delivery on subscribe with RETAIN 1, wildcard subscribers,
//! replacement, deletion by an empty payload, and visibility across shards.

pub mod support;

use ringmq::protocol::packet::Publish;
use ringmq::protocol::{ProtocolVersion, QoS};
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

#[test]
fn a_retained_message_is_delivered_on_subscribe_with_retain_1() {
    // [MQTT-3.3.1-5] stored; [MQTT-3.3.1-6] sent to a new matching subscription;
    // [MQTT-3.3.1-8] with RETAIN 1.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("ret");
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("ret/a", b"kept", 1, true);
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("ret/a", 1)]);
    let got = sub.expect_publish_acked();
    assert_eq!(got.topic.as_str(), "ret/a");
    assert_eq!(&got.payload[..], b"kept");
    assert!(got.retain, "[MQTT-3.3.1-8] RETAIN 1 on subscribe delivery");
    sub.expect_nothing(QUIET);
}

#[test]
fn retained_messages_are_visible_to_subscribers_on_every_shard() {
    // [MQTT-3.3.1-6] any new matching subscription (here a wildcard one), whichever shard
    // holds the subscriber's session, gets the retained message with RETAIN 1 [MQTT-3.3.1-8].
    let broker = Broker::start();
    for pub_shard in 0..SHARDS {
        let t = format!("ret/shard/{pub_shard}");
        let wildcard = format!("ret/+/{pub_shard}");
        let mut publisher = RawClient::connect(
            broker.addr,
            V4,
            &id_on_shard(&format!("rp{pub_shard}"), pub_shard),
        );
        publisher.publish(&t, t.as_bytes(), 1, true);
        publisher.disconnect();
        for sub_shard in 0..SHARDS {
            for version in [V4, V5] {
                let id = id_on_shard(&format!("rs{pub_shard}-{version:?}"), sub_shard);
                let mut sub = RawClient::connect(broker.addr, version, &id);
                sub.subscribe_ok(1, &[(&wildcard, 1)]);
                let got = sub.expect_publish_acked();
                assert_eq!(
                    payload_str(&got),
                    t,
                    "retained from shard {pub_shard} seen on shard {sub_shard}"
                );
                assert!(got.retain);
                assert_eq!(got.qos, QoS::AtLeastOnce);
            }
        }
    }
}

#[test]
fn wildcard_subscribers_receive_every_matching_retained_message() {
    // [MQTT-3.3.1-6] every retained message whose topic matches the new filter.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("retwc");
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    for t in ["w/1/x", "w/2/x", "w/2/y", "w/3", "other/x"] {
        publisher.publish(t, t.as_bytes(), 1, true);
    }
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("w/+/x", 1)]);
    let mut topics: Vec<String> = collect_publishes(&mut sub, QUIET)
        .iter()
        .inspect(|p| assert!(p.retain, "{p:?}"))
        .map(|p| p.topic.as_str().to_string())
        .collect();
    topics.sort();
    assert_eq!(topics, ["w/1/x", "w/2/x"]);

    let mut all = RawClient::connect(broker.addr, V4, &format!("{sub_id}-all"));
    all.subscribe_ok(1, &[("#", 0)]);
    assert_eq!(collect_publishes(&mut all, QUIET).len(), 5);
}

#[test]
fn a_new_retained_message_replaces_the_old_one() {
    // [MQTT-3.3.1-5] the new message replaces any existing retained message for the topic
    // ([MQTT-3.3.1-7] even at QoS 0).
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("retrep");
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("rep/t", b"first", 1, true);
    publisher.publish("rep/t", b"second", 0, true);
    publisher.ping();
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("rep/t", 1)]);
    let got = collect_publishes(&mut sub, QUIET);
    let payloads: Vec<String> = got.iter().map(payload_str).collect();
    assert_eq!(payloads, ["second"]);
}

#[test]
fn a_publish_without_retain_leaves_the_retained_message_alone() {
    // [MQTT-3.3.1-12] RETAIN 0: the server must not store, remove or replace a retained one.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("retkeep");
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("keep/t", b"retained", 1, true);
    publisher.publish("keep/t", b"live", 1, false);
    publisher.publish("keep/t", b"", 1, false);
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("keep/t", 1)]);
    let payloads = collect_payloads(&mut sub, QUIET);
    assert_eq!(payloads, ["retained"]);
}

#[test]
fn an_empty_retained_payload_deletes_the_retained_message_and_is_still_delivered() {
    // [MQTT-3.3.1-10] an empty retained payload removes the retained message;
    // [MQTT-3.3.1-11] and is not stored itself; it is delivered normally to current
    // subscribers (3.1.1 section 3.3.1.3).
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("retdel");
    let mut live = RawClient::connect(broker.addr, V4, &sub_id);
    live.subscribe_ok(1, &[("del/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("del/t", b"doomed", 1, true);
    assert_eq!(&live.expect_publish_acked().payload[..], b"doomed");
    publisher.publish("del/t", b"", 1, true);
    let deletion = live.expect_publish_acked();
    assert!(
        deletion.payload.is_empty(),
        "the empty message reaches current subscribers"
    );
    assert!(!deletion.retain, "[MQTT-3.3.1-9] live delivery RETAIN 0");

    let mut late = RawClient::connect(broker.addr, V4, &format!("{sub_id}-late"));
    late.subscribe_ok(1, &[("del/t", 1)]);
    late.expect_nothing(QUIET);
}

#[test]
fn live_delivery_of_a_retained_publish_to_an_existing_subscriber_has_retain_0() {
    // [MQTT-3.3.1-9] RETAIN 0 when the message matches an established subscription.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("retlive");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("live/t", 2)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    for level in 0..=2 {
        publisher.publish("live/t", b"x", level, true);
        let got = sub.expect_publish_acked();
        assert!(
            !got.retain,
            "QoS {level}: RETAIN must be 0 for live delivery"
        );
    }
}

#[test]
fn retained_delivery_on_subscribe_uses_the_minimum_qos() {
    // [MQTT-3.8.4-6] the retained copy obeys the same QoS rule as live traffic.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("retqos");
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("rq/2", b"two", 2, true);
    publisher.publish("rq/0", b"zero", 0, true);
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("rq/2", 1)]);
    assert_eq!(sub.expect_publish_acked().qos as u8, 1);
    sub.subscribe_ok(2, &[("rq/0", 2)]);
    assert_eq!(sub.expect_publish_acked().qos as u8, 0);
}

#[test]
fn retained_messages_are_matched_with_the_same_wildcard_rules_as_live_ones() {
    // [MQTT-3.3.1-6] with [MQTT-4.7.1-2] (`#` includes the parent), [MQTT-4.7.1-3] (`+`
    // matches an empty level) and [MQTT-4.7.2-1] (no `$` topic for a leading wildcard).
    let broker = Broker::start();
    let mut publisher = RawClient::connect(broker.addr, V4, &id_on_shard("retrules-pub", 0));
    for t in ["r", "r/a", "r//b", "r/a/b", "$r/a"] {
        publisher.publish(t, t.as_bytes(), 1, true);
    }
    let cases: [(&str, &[&str]); 6] = [
        ("r/#", &["r", "r//b", "r/a", "r/a/b"]),
        ("r/+/b", &["r//b", "r/a/b"]),
        ("#", &["r", "r//b", "r/a", "r/a/b"]),
        ("+/a", &["r/a"]),
        ("+/+", &["r/a"]),
        ("$r/#", &["$r/a"]),
    ];
    for (i, (f, want)) in cases.into_iter().enumerate() {
        let mut sub = RawClient::connect(broker.addr, V4, &id_on_shard(&format!("rr{i}"), 1));
        sub.subscribe_ok(1, &[(f, 1)]);
        let mut got: Vec<String> = collect_publishes(&mut sub, QUIET)
            .iter()
            .map(|p| p.topic.as_str().to_string())
            .collect();
        got.sort();
        assert_eq!(got, want, "retained messages for {f}");
    }
}

/// Each of `pubs` publishes the retained marker `{prefix}/marker-{i}` after its earlier
/// retained messages.
fn publish_markers(pubs: &mut [RawClient], prefix: &str) {
    for (i, p) in pubs.iter_mut().enumerate() {
        p.publish(&format!("{prefix}/marker-{i}"), b"m", 1, true);
    }
}

/// The retained messages a new subscriber to `{prefix}/+` on `shard` gets, once the
/// `markers` markers of [`publish_markers`] are among them: every retained change the
/// publishers made before their marker has then reached that shard's store, since the mesh
/// between two shards is first in, first out. The markers are left out.
fn retained_after_markers(
    broker: &Broker,
    prefix: &str,
    shard: usize,
    markers: usize,
) -> Vec<Publish> {
    let mut attempt = 0;
    eventually(&format!("markers on shard {shard}"), || {
        attempt += 1;
        let id = id_on_shard(&format!("{prefix}-s{shard}-{attempt}"), shard);
        let mut sub = RawClient::connect(broker.addr, V4, &id);
        sub.subscribe_ok(1, &[(&format!("{prefix}/+"), 1)]);
        let (seen, got): (Vec<Publish>, Vec<Publish>) = collect_publishes(&mut sub, QUIET)
            .into_iter()
            .partition(|p| p.topic.as_str().contains("/marker-"));
        if seen.len() == markers {
            Ok(got)
        } else {
            Err(format!("{} of {markers} markers", seen.len()))
        }
    })
}

#[test]
fn the_last_retained_message_wins_on_every_shard_whichever_shard_published_it() {
    // [MQTT-3.3.1-5] the newest retained message replaces the old one. Successive updates of
    // one topic come from publishers on different shards (each acknowledged before the next
    // is sent); every shard must end up with the last one.
    let broker = Broker::start();
    let mut pubs = [
        RawClient::connect(broker.addr, V4, &id_on_shard("lw-p0", 0)),
        RawClient::connect(broker.addr, V4, &id_on_shard("lw-p1", 1)),
    ];
    for round in 0..10 {
        let t = format!("lw/{round}");
        pubs[0].publish(&t, b"v1", 1, true);
        pubs[1].publish(&t, b"v2", 1, true);
        pubs[0].publish(&t, b"v3", 1, true);
        pubs[1].publish(&t, b"v4", 1, true);
    }
    publish_markers(&mut pubs, "lw");
    for shard in 0..SHARDS {
        let got = retained_after_markers(&broker, "lw", shard, pubs.len());
        assert_eq!(got.len(), 10, "shard {shard}: {got:?}");
        for p in &got {
            assert_eq!(payload_str(p), "v4", "shard {shard}, {}", p.topic.as_str());
        }
    }
}

#[test]
fn a_retained_message_deleted_from_another_shard_is_gone_everywhere() {
    // [MQTT-3.3.1-10] [MQTT-3.3.1-11] the deletion applies to every later subscriber.
    let broker = Broker::start();
    let mut pubs = [
        RawClient::connect(broker.addr, V4, &id_on_shard("rd-set", 0)),
        RawClient::connect(broker.addr, V4, &id_on_shard("rd-del", 1)),
    ];
    for i in 0..10 {
        pubs[0].publish(&format!("rdel/{i}"), b"x", 1, true);
        pubs[1].publish(&format!("rdel/{i}"), b"", 1, true);
    }
    publish_markers(&mut pubs, "rdel");
    for shard in 0..SHARDS {
        let got = retained_after_markers(&broker, "rdel", shard, pubs.len());
        assert!(got.is_empty(), "shard {shard}: {got:?}");
    }
}
