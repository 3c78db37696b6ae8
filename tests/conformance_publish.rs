//! Conformance of PUBLISH / SUBSCRIBE routing against the real `ringmq` binary: QoS 0/1/2
//! flows in both directions and across shards, the delivered QoS, QoS 2 exactly-once, ordering,
//! SUBACK codes, wildcards and `$` topics, UNSUBSCRIBE, and rumqttc interop (3.1.1 and 5.0).

pub mod support;

use ringmq::protocol::packet::{PubResp, Publish};
use ringmq::protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use std::time::Duration;
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn qos_round_trip_between_shards(version: ProtocolVersion) {
    let broker = Broker::start();
    let ids = ids_on_distinct_shards(&format!("rt-{version:?}"));
    // Both directions: shard 0 -> shard 1 and shard 1 -> shard 0.
    for (pub_id, sub_id) in [(&ids[0], &ids[1]), (&ids[1], &ids[0])] {
        let mut sub = RawClient::connect(broker.addr, version, sub_id);
        sub.subscribe_ok(1, &[("rt/t", 2)]);
        let mut publisher = RawClient::connect(broker.addr, version, pub_id);
        for level in 0..=2u8 {
            let payload = format!("{pub_id}-q{level}");
            publisher.publish("rt/t", payload.as_bytes(), level, false);
            let got = sub.expect_publish_acked();
            assert_eq!(got.topic.as_str(), "rt/t");
            assert_eq!(payload_str(&got), payload);
            assert_eq!(
                got.qos as u8, level,
                "[MQTT-3.8.4-6] min(pub {level}, sub 2)"
            );
            assert_eq!(
                got.packet_id.is_some(),
                level > 0,
                "a packet id exactly for QoS 1/2"
            );
            assert!(!got.retain, "[MQTT-3.3.1-9] live delivery has RETAIN 0");
            assert!(!got.dup, "[MQTT-3.3.1-1] first delivery has DUP 0");
        }
        sub.disconnect();
        publisher.disconnect();
    }
}

#[test]
fn qos_0_1_2_publishes_flow_both_ways_between_shards_3_1_1() {
    // [MQTT-4.3.1-1] [MQTT-4.3.2-2] [MQTT-4.3.3-2] sender and receiver flows, both roles.
    qos_round_trip_between_shards(V4);
}

#[test]
fn qos_0_1_2_publishes_flow_both_ways_between_shards_5_0() {
    qos_round_trip_between_shards(V5);
}

#[test]
fn delivered_qos_is_the_minimum_of_publish_and_subscription_qos() {
    // [MQTT-3.8.4-6] (3.1.1) / [MQTT-3.8.4-8] (5.0), per subscriber: one message reaches a
    // subscriber on the other shard at its own QoS and one on the publisher's shard at QoS 0.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("minqos");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("min/0", 0), ("min/1", 1), ("min/2", 2)]);
    let low_id = id_on_shard("minqos-low", home_shard(&pub_id, SHARDS));
    let mut low = RawClient::connect(broker.addr, V4, &low_id);
    low.subscribe_ok(1, &[("min/+", 0)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    for sub_qos in 0..=2u8 {
        for pub_qos in 0..=2u8 {
            let t = format!("min/{sub_qos}");
            publisher.publish(&t, format!("p{pub_qos}").as_bytes(), pub_qos, false);
            let got = sub.expect_publish_acked();
            assert_eq!(got.topic.as_str(), t);
            assert_eq!(
                got.qos as u8,
                pub_qos.min(sub_qos),
                "pub QoS {pub_qos}, subscription QoS {sub_qos}"
            );
            assert_eq!(got.packet_id.is_some(), pub_qos.min(sub_qos) > 0);
        }
    }
    let got = collect_publishes(&mut low, QUIET);
    assert_eq!(
        got.len(),
        9,
        "every message reached the QoS 0 subscriber too"
    );
    assert!(got.iter().all(|p| p.qos == QoS::AtMostOnce), "{got:?}");
}

#[test]
fn a_duplicate_qos2_publish_before_pubrel_is_acknowledged_but_delivered_once() {
    // [MQTT-4.3.3-2] (3.1.1): until PUBREL, a PUBLISH with the same id gets a PUBREC and
    // must not cause a duplicate delivery to onward recipients.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("qos2dup");
    // One subscriber on the publisher's shard and one on the other.
    let mut remote = RawClient::connect(broker.addr, V4, &sub_id);
    remote.subscribe_ok(1, &[("dup/t", 2)]);
    let local_id = id_on_shard("qos2dup-local", home_shard(&pub_id, SHARDS));
    let mut local = RawClient::connect(broker.addr, V4, &local_id);
    local.subscribe_ok(1, &[("dup/t", 1)]);

    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    let first = PublishBuilder::new("dup/t", b"once").qos(2, 7);
    publisher.send(&first.clone().packet());
    publisher.expect_pubrec(7);
    publisher.send(&first.dup().packet());
    publisher.expect_pubrec(7);
    publisher.send(&Packet::PubRel(PubResp::new(pid(7))));
    publisher.expect_pubcomp(7);

    for sub in [&mut remote, &mut local] {
        let got = collect_publishes(sub, QUIET);
        assert_eq!(got.len(), 1, "{}: {got:?}", sub.name);
        assert_eq!(&got[0].payload[..], b"once");
    }
}

#[test]
fn a_pubrel_for_an_unknown_id_is_answered_with_pubcomp() {
    // [MQTT-4.3.3-2] the receiver answers PUBREL with PUBCOMP (5.0: reason 0x92 allowed when
    // the id is unknown), which lets a sender finish after a reconnect.
    let broker = Broker::start();
    let mut c = RawClient::connect(broker.addr, V4, "pubrel-unknown");
    c.send(&Packet::PubRel(PubResp::new(pid(99))));
    c.expect_pubcomp(99);
    let mut c5 = RawClient::connect(broker.addr, V5, "pubrel-unknown-5");
    c5.send(&Packet::PubRel(PubResp::new(pid(99))));
    let pubcomp = c5.expect_pubcomp(99);
    assert!(
        matches!(
            pubcomp.reason,
            ReasonCode::Success | ReasonCode::PacketIdentifierNotFound
        ),
        "{pubcomp:?}"
    );
}

#[test]
fn messages_on_one_topic_arrive_in_the_order_they_were_published() {
    // [MQTT-4.6.0-5] topics are ordered by default; [MQTT-4.6.0-6] same topic and QoS from one
    // client are sent to each subscriber in the order received. Publishes are pipelined.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("order");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("order/q0", 0), ("order/q1", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    const N: u16 = 300;
    let mut bytes = Vec::new();
    for i in 1..=N {
        let n = i.to_string();
        bytes.extend(encode_bytes(
            &publish_packet("order/q1", n.as_bytes(), 1, Some(i), false),
            V4,
        ));
        bytes.extend(encode_bytes(
            &publish_packet("order/q0", n.as_bytes(), 0, None, false),
            V4,
        ));
    }
    publisher.send_bytes(&bytes);
    for i in 1..=N {
        publisher.expect_puback(i);
    }
    let got = collect_publishes(&mut sub, QUIET);
    for t in ["order/q0", "order/q1"] {
        let seq: Vec<u16> = got
            .iter()
            .filter(|p| p.topic.as_str() == t)
            .filter_map(|p| payload_str(p).parse().ok())
            .collect();
        let expected: Vec<u16> = (1..=N).collect();
        assert_eq!(seq, expected, "{t}: delivery order");
    }
}

#[test]
fn suback_grants_each_requested_qos_in_order() {
    // [MQTT-3.8.4-1] SUBACK with [MQTT-3.8.4-2] the same packet id and [MQTT-3.8.4-5] one
    // return code per filter, in order.
    let broker = Broker::start();
    for version in [V4, V5] {
        let mut c = RawClient::connect(broker.addr, version, &format!("suback-{version:?}"));
        let reasons = c.subscribe(4242, &[("s/2", 2), ("s/0", 0), ("s/+/1", 1), ("s/#", 2)]);
        let codes: Vec<u8> = reasons.iter().map(|r| *r as u8).collect();
        assert_eq!(codes, vec![2, 0, 1, 2], "{version:?}");
    }
}

#[test]
fn a_refused_filter_gets_a_failure_code_while_the_others_are_granted() {
    // [MQTT-3.8.4-5] each filter gets its own code: a filter the server will not take (here:
    // deeper than the broker's 128-level trie limit) fails alone (3.1.1: 0x80; 5.0: >= 0x80)
    // and the connection stays usable.
    let broker = Broker::start();
    let deep = vec!["d"; 200].join("/");
    for version in [V4, V5] {
        let mut c = RawClient::connect(broker.addr, version, &format!("deep-{version:?}"));
        let reasons = c.subscribe(5, &[("ok/1", 1), (&deep, 0), ("ok/2", 2)]);
        let codes: Vec<u8> = reasons.iter().map(|r| *r as u8).collect();
        assert_eq!(codes.len(), 3, "{version:?}: {reasons:?}");
        assert_eq!((codes[0], codes[2]), (1, 2), "{version:?}: {reasons:?}");
        assert!(codes[1] >= 0x80, "{version:?}: {reasons:?}");
        if version == V4 {
            assert_eq!(codes[1], 0x80, "3.1.1 failure is 0x80");
        }
        // QoS 0: the order of our PUBACK and our own echo would be unspecified.
        c.publish("ok/1", b"still usable", 0, false);
        let got = c.expect_publish_acked();
        assert_eq!(got.topic.as_str(), "ok/1");
    }
}

/// SUBSCRIBE bytes for a filter our own codec would refuse to build.
fn raw_subscribe(version: ProtocolVersion, filter: &str) -> Vec<u8> {
    let mut body = vec![0, 9];
    if version == V5 {
        body.push(0);
    }
    body.extend((filter.len() as u16).to_be_bytes());
    body.extend(filter.as_bytes());
    body.push(0);
    frame(0x82, &body)
}

#[test]
fn an_invalid_topic_filter_closes_the_connection() {
    // [MQTT-4.7.1-2] `#` must be last and alone in its level; [MQTT-4.7.1-3] `+` must fill its
    // level. A malformed filter is a protocol violation: close [MQTT-4.8.0-1] (5.0: DISCONNECT
    // 0x81/0x82/0x8F first if any).
    let broker = Broker::start();
    for bad in ["a/#/b", "a#", "a/b+", "+a/b", ""] {
        for version in [V4, V5] {
            let mut c = RawClient::connect(broker.addr, version, &format!("badf-{version:?}"));
            c.send_bytes(&raw_subscribe(version, bad));
            c.expect_closed_maybe_disconnect(
                PROMPT,
                &[
                    ReasonCode::MalformedPacket,
                    ReasonCode::ProtocolError,
                    ReasonCode::TopicFilterInvalid,
                ],
            );
        }
    }
}

/// Subscribes one client per filter, publishes every topic from another shard, and returns
/// the topics each filter's subscriber received.
fn route(topics: &[&str], filters: &[&str]) -> Vec<Vec<String>> {
    let broker = Broker::start();
    let mut subs: Vec<RawClient> = filters
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let mut c = RawClient::connect(broker.addr, V4, &id_on_shard(&format!("wc{i}"), 1));
            c.subscribe_ok(1, &[(f, 1)]);
            c
        })
        .collect();
    let mut publisher = RawClient::connect(broker.addr, V4, &id_on_shard("wc-pub", 0));
    for t in topics {
        publisher.publish(t, t.as_bytes(), 1, false);
    }
    subs.iter_mut()
        .map(|s| {
            let mut got: Vec<String> = collect_publishes(s, QUIET)
                .iter()
                .map(|p| p.topic.as_str().to_string())
                .collect();
            got.sort();
            got
        })
        .collect()
}

#[test]
fn single_and_multi_level_wildcards_match_as_specified() {
    // [MQTT-4.7.1-2] `#` matches the parent and any number of levels; [MQTT-4.7.1-3] `+`
    // matches exactly one level, including an empty one.
    let topics = ["a", "a/b", "a/b/c", "a/b/d", "a/b/c/d", "a//c", "b/c", "/a"];
    let filters = ["a/+/c", "a/#", "+/c", "#", "a/b/c", "+/+", "/+"];
    let got = route(&topics, &filters);
    let want: [&[&str]; 7] = [
        &["a//c", "a/b/c"],
        &["a", "a//c", "a/b", "a/b/c", "a/b/c/d", "a/b/d"],
        &["b/c"],
        &["/a", "a", "a//c", "a/b", "a/b/c", "a/b/c/d", "a/b/d", "b/c"],
        &["a/b/c"],
        &["/a", "a/b", "b/c"],
        &["/a"],
    ];
    for ((f, g), w) in filters.iter().zip(&got).zip(want) {
        assert_eq!(g, w, "filter {f}");
    }
}

#[test]
fn wildcards_at_the_first_level_do_not_match_dollar_topics() {
    // [MQTT-4.7.2-1] `#` and `+/...` must not match topics starting with `$`; an explicit
    // `$app/#` does (the positive control keeps the check from passing vacuously).
    let topics = ["$app/x", "app/x"];
    let filters = ["#", "+/x", "$app/#", "$app/+"];
    let got = route(&topics, &filters);
    assert_eq!(got[0], ["app/x"], "# must not match $app/x");
    assert_eq!(got[1], ["app/x"], "+/x must not match $app/x");
    assert_eq!(got[2], ["$app/x"], "$app/# matches $app/x");
    assert_eq!(got[3], ["$app/x"], "$app/+ matches $app/x");
}

#[test]
fn unsubscribe_is_acknowledged_and_stops_delivery() {
    // [MQTT-3.10.4-1] the subscription is deleted; [MQTT-3.10.4-4] UNSUBACK with the same id;
    // [MQTT-3.10.4-5] UNSUBACK even when nothing matched.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("unsub");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("u/+", 1), ("u/keep", 0)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("u/x", b"1", 1, false);
    sub.expect_publish_acked();

    sub.unsubscribe(2, &["u/+", "never/subscribed"]);
    publisher.publish("u/x", b"2", 1, false);
    publisher.publish("u/keep", b"3", 0, false);
    let got = collect_publishes(&mut sub, QUIET);
    let topics: Vec<&str> = got.iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(
        topics,
        ["u/keep"],
        "only the remaining subscription delivers"
    );
}

#[test]
fn a_resubscription_replaces_the_existing_one_without_duplicates() {
    // [MQTT-3.8.4-3] a SUBSCRIBE with an existing filter replaces it (new QoS), and retained
    // messages are re-sent, but there is only one subscription afterwards.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("resub");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("r/t", 0)]);
    sub.subscribe_ok(2, &[("r/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("r/t", b"x", 1, false);
    let got = collect_publishes(&mut sub, QUIET);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].qos, QoS::AtLeastOnce, "the new QoS applies");
}

#[test]
fn rumqttc_3_1_1_clients_exchange_qos_0_1_2_messages() {
    let broker = Broker::start();
    let [a, b] = ids_on_distinct_shards("rumqttc4");
    let mut sub = Rumqtt4::connect(broker.addr, &b);
    let subscribed = sub.client.subscribe("interop/#", rumqttc::QoS::ExactlyOnce);
    assert!(subscribed.is_ok());
    sub.wait_for_incoming(|p| matches!(p, rumqttc::Packet::SubAck(_)), "SUBACK");
    let mut publisher = Rumqtt4::connect(broker.addr, &a);
    let levels = [
        rumqttc::QoS::AtMostOnce,
        rumqttc::QoS::AtLeastOnce,
        rumqttc::QoS::ExactlyOnce,
    ];
    for (i, level) in levels.into_iter().enumerate() {
        let sent =
            publisher
                .client
                .publish(format!("interop/{i}"), level, false, vec![i as u8; 10]);
        assert!(sent.is_ok());
        // The publisher's flow completes: PUBACK for QoS 1, PUBCOMP for QoS 2.
        match level {
            rumqttc::QoS::AtMostOnce => {}
            rumqttc::QoS::AtLeastOnce => {
                publisher.wait_for_incoming(|p| matches!(p, rumqttc::Packet::PubAck(_)), "PUBACK")
            }
            rumqttc::QoS::ExactlyOnce => {
                publisher.wait_for_incoming(|p| matches!(p, rumqttc::Packet::PubComp(_)), "PUBCOMP")
            }
        }
        let got = sub.next_publish();
        assert_eq!(got.topic, format!("interop/{i}"));
        assert_eq!(got.qos, level);
        assert_eq!(&got.payload[..], &[i as u8; 10]);
    }
}

#[test]
fn rumqttc_5_0_clients_exchange_qos_0_1_2_messages() {
    use rumqttc::v5::mqttbytes::QoS as Q;
    use rumqttc::v5::mqttbytes::v5::Packet as P;
    let broker = Broker::start();
    let [a, b] = ids_on_distinct_shards("rumqttc5");
    let mut sub = Rumqtt5::connect(broker.addr, &a);
    assert!(sub.client.subscribe("interop5/#", Q::ExactlyOnce).is_ok());
    sub.wait_for_incoming(|p| matches!(p, P::SubAck(_)), "SUBACK");
    let mut publisher = Rumqtt5::connect(broker.addr, &b);
    for (i, level) in [Q::AtMostOnce, Q::AtLeastOnce, Q::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        let sent =
            publisher
                .client
                .publish(format!("interop5/{i}"), level, false, vec![i as u8; 10]);
        assert!(sent.is_ok());
        match level {
            Q::AtMostOnce => {}
            Q::AtLeastOnce => {
                publisher.wait_for_incoming(|p| matches!(p, P::PubAck(_)), "PUBACK");
            }
            Q::ExactlyOnce => {
                publisher.wait_for_incoming(|p| matches!(p, P::PubComp(_)), "PUBCOMP");
            }
        }
        let got = sub.next_publish();
        assert_eq!(got.topic, format!("interop5/{i}").as_bytes());
        assert_eq!(got.qos, level);
        assert_eq!(&got.payload[..], &[i as u8; 10]);
    }
}

#[test]
fn a_5_0_publisher_reaches_a_3_1_1_subscriber_and_back() {
    // Versions interoperate through the broker; properties are dropped for 3.1.1 receivers.
    let broker = Broker::start();
    let [a, b] = ids_on_distinct_shards("mixed");
    let mut v4 = RawClient::connect(broker.addr, V4, &a);
    v4.subscribe_ok(1, &[("mixed/to4", 1)]);
    let mut v5 = RawClient::connect(broker.addr, V5, &b);
    v5.subscribe_ok(1, &[("mixed/to5", 1)]);
    let with_props = PublishBuilder::new("mixed/to4", b"hello4")
        .qos(1, 3)
        .properties(|p| p.content_type = Some(mqtt_string("text/plain")));
    v5.send(&with_props.packet());
    v5.expect_puback(3);
    let got: Publish = v4.expect_publish_acked();
    assert_eq!(&got.payload[..], b"hello4");
    v4.publish("mixed/to5", b"hello5", 1, false);
    let got = v5.expect_publish_acked();
    assert_eq!(&got.payload[..], b"hello5");
}

#[test]
fn overlapping_subscriptions_deliver_at_the_highest_matching_qos() {
    // [MQTT-3.3.5-1] (3.1.1): with overlapping subscriptions the message is delivered
    // respecting the maximum QoS of all matching subscriptions; ringmq sends a 3.1.1 client
    // one copy. 5.0 allows one copy per subscription; then one copy must carry it.
    let broker = Broker::start();
    for version in [V4, V5] {
        let [pub_id, sub_id] = ids_on_distinct_shards(&format!("overlap-{version:?}"));
        let mut sub = RawClient::connect(broker.addr, version, &sub_id);
        sub.subscribe_ok(1, &[("ov/#", 0), ("ov/+/x", 2), ("ov/a/x", 1)]);
        let mut publisher = RawClient::connect(broker.addr, version, &pub_id);
        publisher.publish("ov/a/x", b"m", 2, false);
        let got = collect_publishes(&mut sub, QUIET);
        assert!(!got.is_empty(), "{version:?}: not delivered");
        assert!(
            got.iter().any(|p| p.qos == QoS::ExactlyOnce),
            "{version:?}: no copy at QoS 2: {got:?}"
        );
        if version == V4 {
            assert_eq!(got.len(), 1, "{version:?}: {} copies", got.len());
        }
    }
}

#[test]
fn large_payloads_arrive_intact_across_shards() {
    // Payloads up to the default 1 MiB Maximum Packet Size are forwarded byte for byte,
    // however the broker's reads and writes split them.
    let broker = Broker::start();
    for version in [V4, V5] {
        let [pub_id, sub_id] = ids_on_distinct_shards(&format!("large-{version:?}"));
        let mut sub = RawClient::connect(broker.addr, version, &sub_id);
        sub.subscribe_ok(1, &[("large/t", 1)]);
        let mut publisher = RawClient::connect(broker.addr, version, &pub_id);
        for size in [65_536usize, 300_001, 1_048_000] {
            let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            publisher.publish("large/t", &payload, 1, false);
            let got = sub.expect_publish_acked();
            assert_eq!(got.payload.len(), size, "{version:?}");
            assert!(
                got.payload[..] == payload[..],
                "{version:?}: {size} bytes corrupted"
            );
        }
    }
}

#[test]
fn packets_split_byte_by_byte_or_coalesced_in_one_write_are_all_processed() {
    // The stream is a byte stream: packet boundaries need not match reads (section 4.2).
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("framing");
    let mut sub = RawClient::tcp(broker.addr, V4, &sub_id);
    let mut all = encode_bytes(&ConnectBuilder::new(V4, &sub_id).packet(), V4);
    all.extend(encode_bytes(&subscribe_packet(1, &[("frame/t", 1)]), V4));
    all.extend(encode_bytes(&Packet::PingReq, V4));
    for byte in &all {
        sub.send_bytes(std::slice::from_ref(byte));
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(matches!(sub.expect_packet(PROMPT), Packet::ConnAck(_)));
    assert!(matches!(sub.expect_packet(PROMPT), Packet::SubAck(_)));
    assert!(matches!(sub.expect_packet(PROMPT), Packet::PingResp));

    let mut publisher = RawClient::tcp(broker.addr, V4, &pub_id);
    let mut burst = encode_bytes(&ConnectBuilder::new(V4, &pub_id).packet(), V4);
    for i in 1..=50u16 {
        burst.extend(encode_bytes(
            &publish_packet("frame/t", &i.to_be_bytes(), 1, Some(i), false),
            V4,
        ));
    }
    publisher.send_bytes(&burst);
    assert!(matches!(
        publisher.expect_packet(PROMPT),
        Packet::ConnAck(_)
    ));
    for i in 1..=50u16 {
        publisher.expect_puback(i);
    }
    let got = collect_publishes(&mut sub, QUIET);
    let seq: Vec<u16> = got
        .iter()
        .map(|p| u16::from_be_bytes([p.payload[0], p.payload[1]]))
        .collect();
    assert_eq!(seq, (1..=50).collect::<Vec<u16>>());
}

#[test]
fn a_packet_id_reused_after_pubcomp_carries_a_new_message() {
    // [MQTT-4.3.3-2]: once PUBREL has been answered the id is free; a new PUBLISH with it is
    // a new message and must be delivered.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("reuse");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("reuse/t", 2)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    for payload in [&b"first"[..], b"second"] {
        publisher.send(&publish_packet("reuse/t", payload, 2, Some(11), false));
        publisher.expect_pubrec(11);
        publisher.send(&Packet::PubRel(PubResp::new(pid(11))));
        publisher.expect_pubcomp(11);
    }
    let payloads = collect_payloads(&mut sub, QUIET);
    assert_eq!(payloads, ["first", "second"]);
}

#[test]
fn a_subscription_is_in_force_for_publishers_on_every_shard_once_subscribed() {
    // A message published after the SUBACK was received (causally after the subscription)
    // matches it, whichever shard the publisher is on ([MQTT-3.8.4-1] the SUBACK confirms
    // the subscription). Checked tightly, 40 times per shard.
    let broker = Broker::start();
    let sub_id = id_on_shard("vis-sub", 1);
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    let mut pubs = [
        RawClient::connect(broker.addr, V4, &id_on_shard("vis-p0", 0)),
        RawClient::connect(broker.addr, V4, &id_on_shard("vis-p1", 1)),
    ];
    let mut missed = Vec::new();
    for i in 0..80u16 {
        let t = format!("vis/{i}");
        sub.subscribe_ok(i + 1, &[(&t, 1)]);
        let p = &mut pubs[usize::from(i) % 2];
        p.send(&publish_packet(&t, b"x", 1, Some(1), false));
        p.expect_puback(1);
        match sub.recv(Duration::from_millis(500)) {
            Recv::Packet(Packet::Publish(m)) => sub.ack(&m),
            _ => missed.push(t),
        }
    }
    assert!(
        missed.is_empty(),
        "published after SUBACK but not delivered: {missed:?}"
    );
}

#[test]
fn nothing_is_delivered_from_any_shard_after_the_unsuback() {
    // [MQTT-3.10.4-2] after UNSUBSCRIBE the server stops adding new messages for the client;
    // checked with publishes sent right after the UNSUBACK, from both shards.
    let broker = Broker::start();
    let mut sub = RawClient::connect(broker.addr, V4, &id_on_shard("unvis-sub", 1));
    let mut pubs = [
        RawClient::connect(broker.addr, V4, &id_on_shard("unvis-p0", 0)),
        RawClient::connect(broker.addr, V4, &id_on_shard("unvis-p1", 1)),
    ];
    let mut leaked = Vec::new();
    for i in 0..12u16 {
        let t = format!("unvis/{i}");
        sub.subscribe_ok(1, &[(&t, 1)]);
        sub.unsubscribe(2, &[&t]);
        let p = &mut pubs[usize::from(i) % 2];
        p.publish(&t, b"late", 1, false);
        if let Recv::Packet(Packet::Publish(m)) = sub.recv(Duration::from_millis(80)) {
            sub.ack(&m);
            leaked.push(t);
        }
    }
    assert!(leaked.is_empty(), "delivered after UNSUBACK: {leaked:?}");
}

#[test]
fn pubrecs_follow_the_order_of_the_qos2_publishes() {
    // [MQTT-4.6.0-3] PUBREC packets go out in the order the QoS 2 PUBLISHes were received
    // (and [MQTT-4.6.0-2] PUBACKs for QoS 1, checked in the ordering test).
    let broker = Broker::start();
    let mut c = RawClient::connect(broker.addr, V4, "pubrec-order");
    let mut bytes = Vec::new();
    for i in 1..=50u16 {
        bytes.extend(encode_bytes(
            &publish_packet("pro/t", b"x", 2, Some(i), false),
            V4,
        ));
    }
    c.send_bytes(&bytes);
    for i in 1..=50u16 {
        c.expect_pubrec(i);
    }
    for i in 1..=50u16 {
        c.send(&Packet::PubRel(PubResp::new(pid(i))));
    }
    for i in 1..=50u16 {
        c.expect_pubcomp(i);
    }
}

#[test]
fn long_and_deep_topic_names_are_routed_to_matching_wildcards() {
    // [MQTT-4.7.1-2] `#` matches any topic; topic names may be up to 65,535 bytes
    // (section 1.5.3 string length) and have any number of levels, even where filters are
    // capped (the broker refuses filters over 128 levels, not topic names).
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("longtopic");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    let plus_127 = format!("{}/end", vec!["+"; 127].join("/"));
    sub.subscribe_ok(1, &[("lt/#", 1), (&plus_127, 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    let long = format!("lt/{}", "x".repeat(60_000));
    let deep = format!("lt/{}", vec!["d"; 300].join("/"));
    for t in [&long, &deep] {
        publisher.publish(t, b"p", 1, false);
        let got = sub.expect_publish_acked();
        assert_eq!(got.topic.as_str().len(), t.len());
        assert_eq!(got.topic.as_str(), t.as_str());
    }
}

#[test]
fn a_subscribe_with_hundreds_of_filters_is_acknowledged_in_full_and_in_force() {
    // [MQTT-3.8.4-4] a SUBSCRIBE with many filters is handled like a sequence of SUBSCRIBEs
    // and [MQTT-3.8.4-5] answered with one code per filter; every one is then in force for
    // publishers on the other shard.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("manyfilters");
    let mut sub = RawClient::connect(broker.addr, V5, &sub_id);
    let filters: Vec<String> = (0..500).map(|i| format!("mf/{i}")).collect();
    let entries: Vec<(&str, u8)> = filters.iter().map(|f| (f.as_str(), 1)).collect();
    let reasons = sub.subscribe(1, &entries);
    assert_eq!(reasons.len(), 500);
    assert!(
        reasons.iter().all(|r| *r == ReasonCode::GrantedQoS1),
        "{reasons:?}"
    );
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    for f in &filters {
        publisher.publish(f, b"x", 0, false);
    }
    assert_eq!(collect_publishes(&mut sub, QUIET).len(), 500);
}
