//! Conformance of the MQTT 5.0-only rules that have no `mqtt5_*` suite of their own, against
//! the real `ringmq` binary: flow control (Receive Maximum both ways), subscription options
//! (No Local, Retain As Published, Retain Handling), Subscription Identifiers, property
//! forwarding, message expiry, will delay and will properties, and UNSUBACK reason codes.

pub mod support;

use bytes::Bytes;
use ringmq::protocol::packet::{PubResp, RetainHandling, SubscriptionOptions};
use ringmq::protocol::{Packet, PropertyValues, ProtocolVersion, ReasonCode};
use std::time::{Duration, Instant};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;

#[test]
fn the_broker_never_exceeds_the_clients_receive_maximum() {
    // 5.0 section 4.9: the server must not send more unacknowledged QoS 1/2 PUBLISHes than the
    // client's Receive Maximum; acknowledging one releases the next.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("recvmax");
    let connect = ConnectBuilder::new(V5, &sub_id).receive_maximum(2);
    let (mut sub, _) = RawClient::connect_with(broker.addr, connect);
    sub.subscribe_ok(1, &[("rm/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    for i in 0..6 {
        publisher.publish("rm/t", format!("{i}").as_bytes(), 1, false);
    }
    let a = sub.expect_publish();
    let b = sub.expect_publish();
    sub.expect_nothing(QUIET);
    sub.ack(&a);
    let c = sub.expect_publish();
    sub.expect_nothing(QUIET);
    sub.ack(&b);
    sub.ack(&c);
    let rest = collect_publishes(&mut sub, QUIET);
    let all: Vec<String> = [a, b, c]
        .iter()
        .chain(rest.iter())
        .map(payload_str)
        .collect();
    assert_eq!(all, ["0", "1", "2", "3", "4", "5"]);
}

#[test]
fn exceeding_the_brokers_receive_maximum_is_refused_with_0x93() {
    // 5.0 section 3.3.4: more unacknowledged QoS 2 PUBLISHes than the Receive Maximum the
    // server announced -> DISCONNECT 0x93 Receive Maximum exceeded.
    let broker = Broker::start();
    let (mut c, connack) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, "greedy"));
    let max = connack.properties.receive_maximum.unwrap_or(u16::MAX);
    assert_eq!(max, 64, "the default config announces 64");
    let mut bytes = Vec::new();
    for id in 1..=max + 1 {
        bytes.extend(encode_bytes(
            &publish_packet("greedy/t", b"x", 2, Some(id), false),
            V5,
        ));
    }
    c.send_bytes(&bytes);
    let mut pubrecs = 0;
    loop {
        match c.recv(PROMPT) {
            Recv::Packet(Packet::PubRec(_)) => pubrecs += 1,
            Recv::Packet(Packet::Disconnect(d)) => {
                assert_eq!(d.reason, ReasonCode::ReceiveMaximumExceeded);
                c.expect_closed(PROMPT);
                break;
            }
            other => panic!("after {pubrecs} PUBRECs: expected DISCONNECT 0x93, got {other:?}"),
        }
    }
    assert!(pubrecs <= usize::from(max), "{pubrecs} PUBRECs");
}

#[test]
fn no_local_keeps_a_clients_own_messages_from_it() {
    // [MQTT-3.8.3-3] No Local 1: not forwarded to the publishing client id.
    let broker = Broker::start();
    let mut c = RawClient::connect(broker.addr, V5, "nolocal");
    let mut o = sub_options(1);
    o.no_local = true;
    c.subscribe_with_ok(SubscribeBuilder::new(1).filter_with("nl/t", o));
    c.subscribe_with_ok(SubscribeBuilder::new(2).filter_with("nl/other", sub_options(1)));
    c.publish("nl/t", b"mine", 0, false);
    c.publish("nl/other", b"echo", 0, false);
    let got = collect_payloads(&mut c, QUIET);
    assert_eq!(
        got,
        ["echo"],
        "only the subscription without No Local echoes"
    );
}

#[test]
fn retain_as_published_keeps_the_retain_flag_on_live_delivery() {
    // [MQTT-3.3.1-12] RAP 0: RETAIN 0 when forwarding; [MQTT-3.3.1-13] RAP 1: as published.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("rap");
    let mut sub = RawClient::connect(broker.addr, V5, &sub_id);
    let mut rap = sub_options(0);
    rap.retain_as_published = true;
    sub.subscribe_with_ok(SubscribeBuilder::new(1).filter_with("rap/yes", rap));
    sub.subscribe_with_ok(SubscribeBuilder::new(2).filter_with("rap/no", sub_options(0)));
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("rap/yes", b"r", 0, true);
    publisher.publish("rap/yes", b"n", 0, false);
    publisher.publish("rap/no", b"r", 0, true);
    let got: Vec<String> = collect_publishes(&mut sub, QUIET)
        .iter()
        .map(|p| format!("{}:{}:{}", p.topic.as_str(), payload_str(p), p.retain))
        .collect();
    assert_eq!(got, ["rap/yes:r:true", "rap/yes:n:false", "rap/no:r:false"]);
}

#[test]
fn retain_handling_controls_retained_delivery_at_subscribe() {
    // [MQTT-3.3.1-9] 0: send at subscribe; [MQTT-3.3.1-10] 1: only if the subscription did
    // not exist; [MQTT-3.3.1-11] 2: never at subscribe.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("rh");
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("rh/t", b"kept", 1, true);
    let mut sub = RawClient::connect(broker.addr, V5, &sub_id);
    let with = |h| SubscriptionOptions {
        retain_handling: h,
        ..sub_options(1)
    };
    sub.subscribe_with_ok(
        SubscribeBuilder::new(1).filter_with("rh/t", with(RetainHandling::DoNotSend)),
    );
    sub.expect_nothing(QUIET);
    // The subscription exists now: "if new" sends nothing.
    sub.subscribe_with_ok(
        SubscribeBuilder::new(2).filter_with("rh/t", with(RetainHandling::SendAtSubscribeIfNew)),
    );
    sub.expect_nothing(QUIET);
    sub.subscribe_with_ok(
        SubscribeBuilder::new(3).filter_with("rh/t", with(RetainHandling::SendAtSubscribe)),
    );
    assert_eq!(&sub.expect_publish_acked().payload[..], b"kept");
    sub.subscribe_with_ok(
        SubscribeBuilder::new(4).filter_with("rh/+", with(RetainHandling::SendAtSubscribeIfNew)),
    );
    assert_eq!(&sub.expect_publish_acked().payload[..], b"kept");
}

/// The properties an application message carries through the broker, a User Property key
/// repeated (order matters).
fn application_properties(response_topic: &str) -> PropertyValues {
    PropertyValues {
        payload_format_indicator: Some(1),
        content_type: Some(mqtt_string("application/json")),
        response_topic: Some(topic(response_topic)),
        correlation_data: Some(Bytes::from_static(b"\x00\x01corr")),
        user_properties: vec![
            (mqtt_string("k"), mqtt_string("v1")),
            (mqtt_string("a"), mqtt_string("b")),
            (mqtt_string("k"), mqtt_string("v2")),
        ],
        ..PropertyValues::default()
    }
}

fn assert_forwarded(got: &PropertyValues, sent: &PropertyValues) {
    assert_eq!(got.payload_format_indicator, sent.payload_format_indicator);
    assert_eq!(got.content_type, sent.content_type);
    assert_eq!(got.response_topic, sent.response_topic);
    assert_eq!(got.correlation_data, sent.correlation_data);
    assert_eq!(got.user_properties, sent.user_properties);
}

#[test]
fn publish_properties_are_forwarded_unaltered() {
    // [MQTT-3.3.2-4] Payload Format Indicator, [MQTT-3.3.2-15] Response Topic,
    // [MQTT-3.3.2-16] Correlation Data, [MQTT-3.3.2-17] [MQTT-3.3.2-18] User Properties in
    // order, [MQTT-3.3.2-20] Content Type: all forwarded unaltered.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("props");
    let mut sub = RawClient::connect(broker.addr, V5, &sub_id);
    sub.subscribe_ok(1, &[("props/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    let values = application_properties("props/reply");
    let publish = PublishBuilder::new("props/t", b"{}")
        .qos(1, 9)
        .properties(|p| *p = values.clone());
    publisher.send(&publish.packet());
    let got = sub.expect_publish_acked();
    assert_forwarded(&got.properties, &values);
}

#[test]
fn an_expired_message_is_not_delivered_and_a_waiting_one_has_its_expiry_reduced() {
    // [MQTT-3.3.2-5] not delivered after the Message Expiry Interval has passed;
    // [MQTT-3.3.2-6] the forwarded interval is reduced by the time the message waited. The
    // expiry applies to a 3.1.1 session's queue too, though 3.1.1 cannot carry the interval.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("expiry");
    let persistent = || {
        ConnectBuilder::new(V5, &sub_id)
            .clean(false)
            .session_expiry(300)
    };
    let (mut sub, _) = RawClient::connect_with(broker.addr, persistent());
    sub.subscribe_ok(1, &[("exp/t", 1)]);
    sub.disconnect();
    let v4_id = id_on_shard("expiry-v4", 0);
    let v4_persistent = || ConnectBuilder::new(ProtocolVersion::V4, &v4_id).clean(false);
    let (mut v4, _) = RawClient::connect_with(broker.addr, v4_persistent());
    v4.subscribe_ok(1, &[("exp/t", 1)]);
    v4.disconnect();
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    let expiring = |payload: &[u8], packet_id, secs| {
        let publish = PublishBuilder::new("exp/t", payload).qos(1, packet_id);
        publish.properties(|p| p.message_expiry_interval = Some(secs))
    };
    publisher.send(&expiring(b"short", 1, 1).packet());
    publisher.send(&expiring(b"long", 2, 100).packet());
    std::thread::sleep(Duration::from_millis(2100));
    let (mut sub, _) = RawClient::connect_with(broker.addr, persistent());
    let got = collect_publishes(&mut sub, QUIET);
    let payloads: Vec<String> = got.iter().map(payload_str).collect();
    assert_eq!(payloads, ["long"], "the 1 s message expired while queued");
    let left = got[0].properties.message_expiry_interval;
    assert!(
        left.is_some_and(|s| (95..=98).contains(&s)),
        "expiry after waiting ~2 s: {left:?}"
    );
    let (mut v4, ack) = RawClient::connect_with(broker.addr, v4_persistent());
    assert!(ack.session_present);
    let payloads = collect_payloads(&mut v4, QUIET);
    assert_eq!(
        payloads,
        ["long"],
        "3.1.1: the 1 s message expired while queued"
    );
}

/// A 5.0 client with a will on `will/<id>` delayed by `delay` seconds, session expiry 60 s.
fn with_delayed_will(broker: &Broker, id: &str, delay: u32) -> RawClient {
    RawClient::connect_with(broker.addr, delayed_will(id, delay)).0
}

fn delayed_will(id: &str, delay: u32) -> ConnectBuilder {
    ConnectBuilder::new(V5, id)
        .clean(false)
        .session_expiry(60)
        .will(&format!("will/{id}"), b"late", 1, false)
        .will_properties(|p| p.will_delay_interval = Some(delay))
}

#[test]
fn a_delayed_will_is_published_after_the_will_delay_interval() {
    // 5.0 section 3.1.3.2.2: the will waits for the Will Delay Interval.
    let broker = Broker::start();
    let [w_id, id] = ids_on_distinct_shards("wdelay");
    let mut w = RawClient::connect(broker.addr, V5, &w_id);
    w.subscribe_ok(1, &[("will/#", 1)]);
    let client = with_delayed_will(&broker, &id, 1);
    let start = Instant::now();
    client.drop_connection();
    let got = w.expect_publish_acked();
    let took = start.elapsed();
    assert_eq!(&got.payload[..], b"late");
    assert!(
        took >= Duration::from_millis(900),
        "published after {took:?}, before the 1 s delay"
    );
}

#[test]
fn reconnecting_within_the_will_delay_cancels_the_will() {
    // [MQTT-3.1.3-9] a new connection to the session before the delay: no will.
    let broker = Broker::start();
    let [w_id, id] = ids_on_distinct_shards("wcancel");
    let mut w = RawClient::connect(broker.addr, V5, &w_id);
    w.subscribe_ok(1, &[("will/#", 1)]);
    let client = with_delayed_will(&broker, &id, 2);
    client.drop_connection();
    std::thread::sleep(Duration::from_millis(300));
    let (_back, ack) = RawClient::connect_with(broker.addr, delayed_will(&id, 2));
    assert!(ack.session_present, "the session waited for its client");
    w.expect_nothing(Duration::from_millis(2500));
}

#[test]
fn unsuback_reports_success_or_no_subscription_existed_per_filter() {
    // 5.0 section 3.11.3: one reason code per filter, 0x00 or 0x11.
    let broker = Broker::start();
    let mut c = RawClient::connect(broker.addr, V5, "unsub5");
    c.subscribe_ok(1, &[("u5/a", 1)]);
    let unsuback = c.unsubscribe(2, &["u5/a", "u5/none"]);
    assert_eq!(
        unsuback.reasons,
        [ReasonCode::Success, ReasonCode::NoSubscriptionExisted]
    );
}

#[test]
fn a_takeover_that_continues_the_session_does_not_send_a_delayed_will() {
    // [MQTT-3.1.3-9] a new connection to the session before the Will Delay Interval passes
    // (here: a takeover with Clean Start 0) means the will is not sent.
    let broker = Broker::start();
    let [w_id, id] = ids_on_distinct_shards("tkdelay");
    let mut w = RawClient::connect(broker.addr, V5, &w_id);
    w.subscribe_ok(1, &[("will/#", 1)]);
    let mut old = with_delayed_will(&broker, &id, 3);
    let _new = with_delayed_will(&broker, &id, 3);
    old.expect_disconnect_then_close(PROMPT, &[ReasonCode::SessionTakenOver]);
    w.expect_nothing(Duration::from_millis(1500));
}

#[test]
fn a_takeover_with_clean_start_ends_the_session_and_sends_the_delayed_will_at_once() {
    // 5.0 section 3.1.3.2.2: the will goes out when the delay passes or the session ends,
    // whichever is first; Clean Start 1 on the new connection ends the old session.
    let broker = Broker::start();
    let [w_id, id] = ids_on_distinct_shards("tkclean");
    let mut w = RawClient::connect(broker.addr, V5, &w_id);
    w.subscribe_ok(1, &[("will/#", 1)]);
    let mut old = with_delayed_will(&broker, &id, 30);
    let (_new, ack) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, &id));
    assert!(!ack.session_present);
    old.expect_disconnect_then_close(PROMPT, &[ReasonCode::SessionTakenOver]);
    let got = w.expect_publish_acked();
    assert_eq!(&got.payload[..], b"late");
}

#[test]
fn subscription_identifiers_are_sent_with_matching_messages() {
    // [MQTT-3.3.4-3] the Subscription Identifiers of every matching subscription are sent
    // with the message; ringmq sends one copy listing them all (section 3.3.4 also allows a
    // copy per subscription). None goes to a subscription made without one, and a retained
    // message sent at subscribe carries that subscription's identifier.
    let broker = Broker::start();
    let (mut sub, connack) =
        RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, &id_on_shard("sid", 1)));
    assert_ne!(
        connack.properties.subscription_identifier_available,
        Some(0),
        "ringmq supports Subscription Identifiers"
    );
    sub.subscribe_with_ok(SubscribeBuilder::new(1).filter("sid/+", 1).identifier(7));
    sub.subscribe_with_ok(SubscribeBuilder::new(2).filter("sid/a", 1).identifier(300));
    sub.subscribe_ok(3, &[("sid/#", 0)]);
    let mut plain = RawClient::connect(broker.addr, V5, &id_on_shard("sid-plain", 0));
    plain.subscribe_ok(1, &[("sid/#", 0)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &id_on_shard("sid-pub", 0));
    publisher.publish("sid/a", b"a", 1, true);
    publisher.publish("sid/b", b"b", 1, false);
    let ids: Vec<(String, Vec<u32>)> = collect_publishes(&mut sub, QUIET)
        .iter()
        .map(|p| {
            let mut v = p.properties.subscription_identifiers.clone();
            v.sort_unstable();
            (payload_str(p), v)
        })
        .collect();
    let want = [("a".to_string(), vec![7, 300]), ("b".to_string(), vec![7])];
    assert_eq!(
        ids, want,
        "one copy each, listing every matching identifier"
    );
    let got = collect_publishes(&mut plain, QUIET);
    assert_eq!(got.len(), 2);
    for p in got {
        assert!(p.properties.subscription_identifiers.is_empty(), "{p:?}");
    }

    let mut late = RawClient::connect(broker.addr, V5, &id_on_shard("sid-late", 1));
    late.subscribe_with_ok(SubscribeBuilder::new(1).filter("sid/a", 0).identifier(42));
    let retained = late.expect_publish();
    assert!(retained.retain);
    assert_eq!(retained.properties.subscription_identifiers, [42]);
}

#[test]
fn retained_messages_sent_at_subscribe_respect_the_clients_receive_maximum() {
    // 5.0 section 4.9: flow control applies to every QoS 1/2 PUBLISH the server sends,
    // including retained messages delivered at subscribe.
    let broker = Broker::start();
    let mut publisher = RawClient::connect(broker.addr, V5, &id_on_shard("rrm-pub", 0));
    for i in 0..6 {
        publisher.publish(&format!("rrm/{i}"), b"r", 1, true);
    }
    let connect = ConnectBuilder::new(V5, &id_on_shard("rrm-sub", 1)).receive_maximum(2);
    let (mut sub, _) = RawClient::connect_with(broker.addr, connect);
    sub.subscribe_ok(1, &[("rrm/+", 1)]);
    let mut held = Vec::new();
    while let Recv::Packet(Packet::Publish(p)) = sub.recv(QUIET) {
        held.push(p);
    }
    assert_eq!(held.len(), 2, "unacknowledged retained PUBLISHes in flight");
    for p in &held {
        sub.ack(p);
    }
    let rest = collect_publishes(&mut sub, QUIET);
    assert_eq!(held.len() + rest.len(), 6);
}

#[test]
fn a_qos2_message_counts_against_receive_maximum_until_pubcomp() {
    // 5.0 section 4.9: a QoS 2 PUBLISH stays in flight until PUBCOMP (only a PUBREC with an
    // error code would free it), so with Receive Maximum 1 the next one waits for PUBCOMP.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("rm-q2");
    let connect = ConnectBuilder::new(V5, &sub_id).receive_maximum(1);
    let (mut sub, _) = RawClient::connect_with(broker.addr, connect);
    sub.subscribe_ok(1, &[("rmq2/t", 2)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("rmq2/t", b"1", 2, false);
    publisher.publish("rmq2/t", b"2", 2, false);
    let first = sub.expect_publish();
    let id = first
        .packet_id
        .unwrap_or_else(|| panic!("QoS 2 without id"));
    sub.send(&Packet::PubRec(PubResp::new(id)));
    sub.expect_pubrel(id.get());
    sub.expect_nothing(QUIET);
    sub.send(&Packet::PubComp(PubResp::new(id)));
    let second = sub.expect_publish_acked();
    assert_eq!(&second.payload[..], b"2");
}

#[test]
fn an_expired_retained_message_is_not_sent_to_new_subscribers() {
    // [MQTT-3.3.2-5] a retained message past its Message Expiry Interval is not delivered;
    // before that, [MQTT-3.3.2-6] a new subscriber gets it with the time left (rounded up).
    let broker = Broker::start();
    let mut publisher = RawClient::connect(broker.addr, V5, &id_on_shard("rexp-pub", 0));
    let publish = PublishBuilder::new("rexp/t", b"brief")
        .qos(1, 1)
        .retain()
        .properties(|p| p.message_expiry_interval = Some(1));
    publisher.send(&publish.packet());
    publisher.expect_puback(1);
    let mut early = RawClient::connect(broker.addr, V5, &id_on_shard("rexp-early", 1));
    early.subscribe_ok(1, &[("rexp/t", 1)]);
    let got = early.expect_publish_acked();
    assert_eq!(got.properties.message_expiry_interval, Some(1));
    std::thread::sleep(Duration::from_millis(2100));
    let mut sub = RawClient::connect(broker.addr, V5, &id_on_shard("rexp-sub", 1));
    sub.subscribe_ok(1, &[("rexp/t", 1)]);
    sub.expect_nothing(QUIET);
}

#[test]
fn will_properties_are_forwarded_with_the_will_message() {
    // 5.0 section 3.1.3.2: the will's Payload Format Indicator, Content Type, Response Topic,
    // Correlation Data and User Properties go out with it; [MQTT-3.1.3-10] User Properties in
    // their order.
    let broker = Broker::start();
    let [w_id, id] = ids_on_distinct_shards("willprops");
    let mut w = RawClient::connect(broker.addr, V5, &w_id);
    w.subscribe_ok(1, &[("wp/#", 1)]);
    let values = application_properties("wp/reply");
    let connect = ConnectBuilder::new(V5, &id)
        .will("wp/status", b"gone", 1, false)
        .will_properties(|p| *p = values.clone());
    let (c, _) = RawClient::connect_with(broker.addr, connect);
    c.drop_connection();
    let got = w.expect_publish_acked();
    assert_forwarded(&got.properties, &values);
}
