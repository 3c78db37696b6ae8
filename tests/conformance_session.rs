//! Conformance of persistent sessions (MQTT 3.1.1 / 5.0 sections 3.1.2.4, 4.1, 4.4) against
//! the real `ringmq` binary: subscriptions and offline messages kept across reconnects,
//! redelivery of unacknowledged messages, and clean sessions discarding state.

pub mod support;

use ringmq::protocol::packet::{Disconnect, PubResp};
use ringmq::protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use std::time::Duration;
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A CONNECT that resumes (or starts) a persistent session in `version`.
fn persistent(version: ProtocolVersion, id: &str) -> ConnectBuilder {
    ConnectBuilder::new(version, id).persistent()
}

fn resume(broker: &Broker, version: ProtocolVersion, id: &str) -> RawClient {
    let (client, ack) = RawClient::connect_with(broker.addr, persistent(version, id));
    assert!(
        ack.session_present,
        "{version:?}: [MQTT-3.2.2-2] session present on resume"
    );
    client
}

fn subscriptions_and_offline_messages_survive(version: ProtocolVersion) {
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards(&format!("persist-{version:?}"));
    let (mut sub, ack) = RawClient::connect_with(broker.addr, persistent(version, &sub_id));
    assert!(!ack.session_present, "[MQTT-3.2.2-3] no session yet");
    sub.subscribe_ok(1, &[("p/q1", 1), ("p/q2", 2)]);
    sub.disconnect();

    let mut publisher = RawClient::connect(broker.addr, version, &pub_id);
    for i in 0..5 {
        publisher.publish("p/q1", format!("one-{i}").as_bytes(), 1, false);
        publisher.publish("p/q2", format!("two-{i}").as_bytes(), 2, false);
    }
    // A QoS 0 message is not kept for an offline session (3.1.1 [MQTT-3.1.2-5]: it MAY be).
    publisher.publish("p/q1", b"qos0", 0, false);
    publisher.ping();

    let mut sub = resume(&broker, version, &sub_id);
    let got = collect_publishes(&mut sub, QUIET);
    assert_eq!(
        got.len(),
        10,
        "{version:?}: the QoS 1 and 2 messages only: {got:?}"
    );
    for (t, prefix) in [("p/q1", "one"), ("p/q2", "two")] {
        let payloads: Vec<String> = got
            .iter()
            .filter(|p| p.topic.as_str() == t)
            .map(payload_str)
            .collect();
        let want: Vec<String> = (0..5).map(|i| format!("{prefix}-{i}")).collect();
        assert_eq!(
            payloads, want,
            "{version:?} {t}: queued while offline, in order"
        );
    }
    // The subscriptions themselves survived [MQTT-3.1.2-4]: live traffic still arrives.
    publisher.publish("p/q1", b"live", 1, false);
    assert_eq!(&sub.expect_publish_acked().payload[..], b"live");
}

#[test]
fn subscriptions_and_qos_1_2_messages_sent_while_offline_survive_a_reconnect_3_1_1() {
    // [MQTT-3.1.2-4] the session resumes; [MQTT-3.1.2-5] QoS 1 and 2 messages that arrive
    // while disconnected are stored and delivered.
    subscriptions_and_offline_messages_survive(V4);
}

#[test]
fn subscriptions_and_qos_1_2_messages_sent_while_offline_survive_a_reconnect_5_0() {
    // 5.0 with Session Expiry 300 s: [MQTT-3.1.2-4] / section 3.1.2.11.2.
    subscriptions_and_offline_messages_survive(V5);
}

fn unacked_qos1_is_redelivered_with_dup(version: ProtocolVersion) {
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards(&format!("redeliver-{version:?}"));
    let (mut sub, _) = RawClient::connect_with(broker.addr, persistent(version, &sub_id));
    sub.subscribe_ok(1, &[("rd/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, version, &pub_id);
    publisher.publish("rd/t", b"unacked", 1, false);
    let first = sub.expect_publish();
    assert_eq!(first.qos, QoS::AtLeastOnce);
    assert!(!first.dup);
    sub.drop_connection();

    let mut sub = resume(&broker, version, &sub_id);
    let again = sub.expect_publish();
    assert_eq!(&again.payload[..], b"unacked");
    assert_eq!(
        again.packet_id, first.packet_id,
        "[MQTT-4.4.0-1] original packet id"
    );
    assert!(again.dup, "[MQTT-3.3.1-1] DUP 1 on redelivery");
    sub.ack(&again);
    sub.expect_nothing(QUIET);
}

#[test]
fn an_unacknowledged_qos1_publish_is_resent_with_dup_and_its_id_on_reconnect_3_1_1() {
    // [MQTT-4.4.0-1] resend unacknowledged PUBLISH with the original packet id;
    // [MQTT-3.3.1-1] with DUP 1.
    unacked_qos1_is_redelivered_with_dup(V4);
}

#[test]
fn an_unacknowledged_qos1_publish_is_resent_with_dup_and_its_id_on_reconnect_5_0() {
    unacked_qos1_is_redelivered_with_dup(V5);
}

#[test]
fn an_unacknowledged_qos2_publish_and_pubrel_are_resent_on_reconnect() {
    // [MQTT-4.4.0-1] unacknowledged PUBLISH (no PUBREC yet) and PUBREL (no PUBCOMP yet) are
    // resent with their original ids.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("qos2resend");
    let (mut sub, _) = RawClient::connect_with(broker.addr, persistent(V4, &sub_id));
    sub.subscribe_ok(1, &[("q2/t", 2)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("q2/t", b"a", 2, false);
    publisher.publish("q2/t", b"b", 2, false);

    // "a": PUBREC sent, PUBREL received, PUBCOMP withheld. "b": not acknowledged at all.
    let a = sub.expect_publish();
    let a_id = a.packet_id.unwrap_or_else(|| panic!("QoS 2 without id"));
    sub.send(&Packet::PubRec(PubResp::new(a_id)));
    let mut b = None;
    let mut pubrel_seen = false;
    while b.is_none() || !pubrel_seen {
        match sub.expect_packet(PROMPT) {
            Packet::PubRel(r) if r.packet_id == a_id => pubrel_seen = true,
            Packet::Publish(p) => b = Some(p),
            other => panic!("unexpected {other:?}"),
        }
    }
    let b = b.unwrap_or_else(|| panic!("loop exits only with b"));
    assert_eq!(&b.payload[..], b"b");
    sub.drop_connection();

    let mut sub = resume(&broker, V4, &sub_id);
    let mut pubrel_again = false;
    let mut b_again = false;
    while !(pubrel_again && b_again) {
        match sub.expect_packet(PROMPT) {
            Packet::PubRel(r) => {
                assert_eq!(r.packet_id, a_id, "PUBREL with its original id");
                pubrel_again = true;
                sub.send(&Packet::PubComp(PubResp::new(a_id)));
            }
            Packet::Publish(p) => {
                assert_eq!(&p.payload[..], b"b", "\"a\" was received: never resent");
                assert_eq!(p.packet_id, b.packet_id, "original id");
                assert!(p.dup, "[MQTT-3.3.1-1] DUP 1");
                sub.ack(&p);
                b_again = true;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    sub.expect_nothing(QUIET);
}

#[test]
fn a_clean_session_discards_subscriptions_and_queued_messages_3_1_1() {
    // [MQTT-3.1.2-6] CleanSession 1 discards the previous session; nothing queued for it is
    // delivered and its subscriptions are gone.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("clean");
    let (mut sub, _) = RawClient::connect_with(broker.addr, persistent(V4, &sub_id));
    sub.subscribe_ok(1, &[("c/t", 1)]);
    sub.disconnect();
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("c/t", b"queued", 1, false);

    let (mut sub, ack) =
        RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, &sub_id).clean(true));
    assert!(!ack.session_present, "[MQTT-3.2.2-1]");
    sub.expect_nothing(QUIET);
    publisher.publish("c/t", b"live", 1, false);
    sub.expect_nothing(QUIET);
}

#[test]
fn clean_start_discards_the_session_in_5_0() {
    // 5.0 [MQTT-3.1.2-4] Clean Start 1 discards any existing session.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("clean5");
    let (mut sub, _) = RawClient::connect_with(broker.addr, persistent(V5, &sub_id));
    sub.subscribe_ok(1, &[("c5/t", 1)]);
    sub.disconnect();
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("c5/t", b"queued", 1, false);

    let connect = ConnectBuilder::new(V5, &sub_id)
        .clean(true)
        .session_expiry(300);
    let (mut sub, ack) = RawClient::connect_with(broker.addr, connect);
    assert!(!ack.session_present, "[MQTT-3.2.2-2]");
    sub.expect_nothing(QUIET);
    publisher.publish("c5/t", b"live", 1, false);
    sub.expect_nothing(QUIET);
}

#[test]
fn a_5_0_session_with_expiry_0_ends_with_its_connection() {
    // 5.0 section 3.1.2.11.2: Session Expiry 0 (absent) - the session ends when the network
    // connection closes, even with Clean Start 0. The interval of the latest CONNECT counts:
    // a session kept by an earlier one is resumed, then ends with that connection.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("expiry0");
    let no_expiry = || ConnectBuilder::new(V5, &sub_id).clean(false);
    let (mut sub, _) = RawClient::connect_with(broker.addr, no_expiry());
    sub.subscribe_ok(1, &[("e0/t", 1)]);
    sub.disconnect();
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("e0/t", b"nobody", 1, false);
    let (sub, ack) = RawClient::connect_with(broker.addr, no_expiry());
    assert!(!ack.session_present, "the session must have ended");
    sub.disconnect();

    let (kept, _) = RawClient::connect_with(broker.addr, no_expiry().session_expiry(600));
    kept.disconnect();
    let (resumed, ack) = RawClient::connect_with(broker.addr, no_expiry());
    assert!(
        ack.session_present,
        "the session with expiry 600 was still there"
    );
    resumed.disconnect();
    let (mut sub, ack) = RawClient::connect_with(broker.addr, no_expiry());
    assert!(
        !ack.session_present,
        "resumed without an interval, it ended with that connection"
    );
    sub.expect_nothing(QUIET);
}

#[test]
fn unacknowledged_messages_move_to_the_connection_that_takes_the_session_over() {
    // [MQTT-3.1.4-2] takeover with CleanSession 0 keeps the session; [MQTT-4.4.0-1] its
    // unacknowledged QoS 1 PUBLISH is resent on the new connection with DUP 1.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("takeover-inflight");
    let (mut old, _) = RawClient::connect_with(broker.addr, persistent(V4, &sub_id));
    old.subscribe_ok(1, &[("ti/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("ti/t", b"pending", 1, false);
    let first = old.expect_publish();
    let mut new = resume(&broker, V4, &sub_id);
    old.expect_closed(PROMPT);
    let again = new.expect_publish();
    assert_eq!(&again.payload[..], b"pending");
    assert_eq!(again.packet_id, first.packet_id);
    assert!(again.dup, "[MQTT-3.3.1-1]");
    new.ack(&again);
    new.expect_nothing(QUIET);
}

#[test]
fn more_offline_messages_than_the_inflight_window_all_arrive_in_order() {
    // [MQTT-3.1.2-5] every QoS 1 message stored while offline is delivered; the in-flight
    // window (max_inflight 64) only paces them [MQTT-4.6.0-6].
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("backlog");
    let (mut sub, _) = RawClient::connect_with(broker.addr, persistent(V4, &sub_id));
    sub.subscribe_ok(1, &[("bl/t", 1)]);
    sub.disconnect();
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    for i in 0..200u32 {
        publisher.publish("bl/t", i.to_string().as_bytes(), 1, false);
    }
    let mut sub = resume(&broker, V4, &sub_id);
    let got = collect_payloads(&mut sub, QUIET);
    let want: Vec<String> = (0..200).map(|i: u32| i.to_string()).collect();
    assert_eq!(got, want);
}

#[test]
fn a_5_0_session_ends_when_its_expiry_interval_passes() {
    // 5.0 section 3.1.2.11.2 / [MQTT-4.1.0-2]: the server discards the session state once
    // the Session Expiry Interval has passed after the connection closed.
    let broker = Broker::start();
    let id = id_on_shard("expiring-session", 1);
    let connect = || ConnectBuilder::new(V5, &id).clean(false).session_expiry(1);
    let (mut c, _) = RawClient::connect_with(broker.addr, connect());
    c.subscribe_ok(1, &[("es/t", 1)]);
    c.disconnect();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let (c, ack) = RawClient::connect_with(broker.addr, connect());
    assert!(ack.session_present, "still within the 1 s expiry");
    c.disconnect();
    std::thread::sleep(std::time::Duration::from_millis(2000));
    let (_c, ack) = RawClient::connect_with(broker.addr, connect());
    assert!(!ack.session_present, "the session expired after 1 s");
}

#[test]
fn a_disconnect_may_lower_the_session_expiry_to_zero_but_raising_it_from_zero_gets_0x82() {
    // 5.0 [MQTT-3.14.2-2]: Session Expiry on DISCONNECT may change a non-zero interval; set
    // to 0 the session ends now. 3.14.2.2.2: "If the Session Expiry Interval in the CONNECT
    // packet was zero, then it is a Protocol Error to set a non-zero Session Expiry Interval
    // in the DISCONNECT packet sent by the Client": DISCONNECT 0x82 [MQTT-4.13.1-1]. That is
    // not a normal disconnection, so the will is published [MQTT-3.1.2-8], and the session
    // (expiry 0) ends with the connection [MQTT-3.1.2-23].
    let broker = Broker::start();
    let [id, watcher_id] = ids_on_distinct_shards("dc-expiry");
    let (mut c, _) = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, &id).clean(false).session_expiry(60),
    );
    let mut dc = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    dc.properties.session_expiry_interval = Some(0);
    c.send(&Packet::Disconnect(dc.clone()));
    c.expect_closed(PROMPT);
    let (_c, ack) = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, &id).clean(false).session_expiry(60),
    );
    assert!(!ack.session_present, "DISCONNECT set the expiry to 0");

    let mut watcher = RawClient::connect(broker.addr, V5, &watcher_id);
    watcher.subscribe_ok(1, &[("raise/will", 0)]);
    let zero_id = format!("{id}-zero");
    let connect = ConnectBuilder::new(V5, &zero_id).will("raise/will", b"w", 0, false);
    let (mut zero, _) = RawClient::connect_with(broker.addr, connect);
    dc.properties.session_expiry_interval = Some(30);
    zero.send(&Packet::Disconnect(dc));
    zero.expect_disconnect_then_close(PROMPT, &[ReasonCode::ProtocolError]);
    assert_eq!(payload_str(&watcher.expect_publish()), "w");
    let resumed = ConnectBuilder::new(V5, &zero_id)
        .clean(false)
        .session_expiry(30);
    let (_c, ack) = RawClient::connect_with(broker.addr, resumed);
    assert!(!ack.session_present, "the refused raise kept no session");
}

#[test]
fn a_qos2_publish_resent_after_reconnect_is_not_delivered_twice() {
    // [MQTT-4.4.0-1] the publisher resends its unfinished QoS 2 PUBLISH (DUP 1, same id) on
    // a resumed session; the server kept the id [MQTT-4.3.3-2] and must not deliver again.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("q2pubresume");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("q2r/t", 2)]);
    let (mut publisher, _) = RawClient::connect_with(broker.addr, persistent(V4, &pub_id));
    let publish = PublishBuilder::new("q2r/t", b"exactly-once").qos(2, 5);
    publisher.send(&publish.clone().packet());
    publisher.expect_pubrec(5);
    publisher.drop_connection();

    let mut publisher = resume(&broker, V4, &pub_id);
    publisher.send(&publish.dup().packet());
    publisher.expect_pubrec(5);
    publisher.send(&Packet::PubRel(PubResp::new(pid(5))));
    publisher.expect_pubcomp(5);
    let got = collect_publishes(&mut sub, QUIET);
    assert_eq!(got.len(), 1, "{got:?}");
}

#[test]
fn a_pubrel_resent_after_reconnect_completes_the_qos2_flow() {
    // [MQTT-4.4.0-1] the publisher resends PUBREL after reconnecting; the server answers
    // PUBCOMP and the message was delivered exactly once.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("q2relresume");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("q2rel/t", 2)]);
    let (mut publisher, _) = RawClient::connect_with(broker.addr, persistent(V4, &pub_id));
    publisher.send(&publish_packet("q2rel/t", b"m", 2, Some(6), false));
    publisher.expect_pubrec(6);
    publisher.send(&Packet::PubRel(PubResp::new(pid(6))));
    publisher.drop_connection();

    let mut publisher = resume(&broker, V4, &pub_id);
    publisher.send(&Packet::PubRel(PubResp::new(pid(6))));
    publisher.expect_pubcomp(6);
    let got = collect_publishes(&mut sub, QUIET);
    assert_eq!(got.len(), 1, "{got:?}");
}

#[test]
fn a_retained_message_queued_for_an_offline_session_arrives_once_as_a_normal_message() {
    // [MQTT-3.3.1-9] it matched an established subscription: RETAIN 0; resuming the session
    // is not a new subscription, so it is not sent again as retained [MQTT-3.3.1-6].
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("offret");
    let (mut sub, _) = RawClient::connect_with(broker.addr, persistent(V4, &sub_id));
    sub.subscribe_ok(1, &[("or/t", 1)]);
    sub.disconnect();
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("or/t", b"kept", 1, true);
    let mut sub = resume(&broker, V4, &sub_id);
    let got = collect_publishes(&mut sub, QUIET);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(!got[0].retain, "[MQTT-3.3.1-9] RETAIN 0");
}

#[test]
fn in_flight_packet_ids_are_distinct_and_non_zero() {
    // [MQTT-2.3.1-2] (3.1.1) / [MQTT-2.2.1-3] (5.0): a new PUBLISH gets an id not in use by
    // another unacknowledged one, and never 0.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("ids");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("ids/t", 2)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    for i in 0..40u32 {
        publisher.publish("ids/t", &i.to_be_bytes(), 1 + (i % 2) as u8, false);
    }
    let mut held = Vec::new();
    while let Recv::Packet(Packet::Publish(p)) = sub.recv(QUIET) {
        held.push(p);
    }
    assert!(!held.is_empty());
    let mut ids: Vec<u16> = held
        .iter()
        .map(|p| p.packet_id.map_or(0, |id| id.get()))
        .collect();
    assert!(ids.iter().all(|&id| id != 0));
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), held.len(), "duplicate in-flight ids");
}

#[test]
fn a_resumed_session_is_not_expired_by_the_timer_of_its_previous_disconnect() {
    // 5.0 section 3.1.2.11.2: the Session Expiry Interval counts from the close of the
    // connection; once resumed, the session lives as long as its connection.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("stale-expiry");
    let connect = || {
        ConnectBuilder::new(V5, &sub_id)
            .clean(false)
            .session_expiry(1)
    };
    let (mut sub, _) = RawClient::connect_with(broker.addr, connect());
    sub.subscribe_ok(1, &[("se/t", 1)]);
    sub.disconnect();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let (mut sub, ack) = RawClient::connect_with(broker.addr, connect());
    assert!(ack.session_present);
    std::thread::sleep(std::time::Duration::from_millis(1800));
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("se/t", b"still-here", 1, false);
    assert_eq!(&sub.expect_publish_acked().payload[..], b"still-here");
    sub.disconnect();
    let (_sub, ack) = RawClient::connect_with(broker.addr, connect());
    assert!(
        ack.session_present,
        "the session was dropped while connected"
    );
}

#[test]
fn unacknowledged_messages_are_resent_in_their_original_order() {
    // [MQTT-4.6.0-1] re-sent PUBLISH packets go out in the order of the originals.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("resend-order");
    let (mut sub, _) = RawClient::connect_with(broker.addr, persistent(V4, &sub_id));
    sub.subscribe_ok(1, &[("ro/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    for i in 0..5u32 {
        publisher.publish("ro/t", i.to_string().as_bytes(), 1, false);
    }
    let mut first = Vec::new();
    while let Recv::Packet(Packet::Publish(p)) = sub.recv(QUIET) {
        first.push(p);
    }
    assert_eq!(first.len(), 5);
    sub.drop_connection();
    let mut sub = resume(&broker, V4, &sub_id);
    let again = collect_publishes(&mut sub, QUIET);
    let ids = |v: &[ringmq::protocol::packet::Publish]| -> Vec<(String, Option<u16>)> {
        v.iter()
            .map(|p| (payload_str(p), p.packet_id.map(|i| i.get())))
            .collect()
    };
    assert_eq!(ids(&again), ids(&first), "same messages, ids and order");
    assert!(again.iter().all(|p| p.dup), "[MQTT-3.3.1-1]");
}

#[test]
fn a_rumqttc_3_1_1_persistent_session_receives_messages_queued_while_offline() {
    // Interop of [MQTT-3.1.2-4] / [MQTT-3.1.2-5]: rumqttc resumes its session with Session
    // Present 1 [MQTT-3.2.2-2] and gets the QoS 1 message published while it was away.
    let broker = Broker::start();
    let [sub_id, pub_id] = ids_on_distinct_shards("rdurable");
    let options = || {
        let mut options = Rumqtt4::options(broker.addr, &sub_id);
        options.set_clean_session(false);
        options
    };
    let (mut sub, _) = Rumqtt4::connect_with(options());
    assert!(
        sub.client
            .subscribe("rq/t", rumqttc::QoS::AtLeastOnce)
            .is_ok()
    );
    sub.wait_for_incoming(|p| matches!(p, rumqttc::Packet::SubAck(_)), "SUBACK");
    assert!(sub.client.disconnect().is_ok());
    sub.wait_closed();

    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("rq/t", b"waiting", 1, false);
    let (mut sub, connack) = Rumqtt4::connect_with(options());
    assert!(connack.session_present, "{connack:?}");
    let got = sub.next_publish();
    assert_eq!(&got.payload[..], b"waiting");
}

#[test]
fn a_session_expiry_of_0xffffffff_keeps_the_session_and_its_messages() {
    // 5.0 section 3.1.2.11.2: "If the Session Expiry Interval is 0xFFFFFFFF (UINT_MAX), the
    // Session does not expire." With no server cap, the CONNACK announces no other value
    // (3.2.2.3.2) and a message published while the client is away waits for it
    // [MQTT-3.1.2-23], [MQTT-4.1.0-1].
    let broker = Broker::start();
    let [sub_id, pub_id] = ids_on_distinct_shards("forever");
    let connect = || {
        ConnectBuilder::new(V5, &sub_id)
            .clean(false)
            .session_expiry(u32::MAX)
    };
    let (mut sub, connack) = RawClient::connect_with(broker.addr, connect());
    assert_eq!(connack.properties.session_expiry_interval, None);
    sub.subscribe_ok(1, &[("forever/t", 1)]);
    sub.disconnect();
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("forever/t", b"kept", 1, false);
    // An interval mistaken for 0 (or one that wrapped) would fire within a 100 ms tick.
    std::thread::sleep(Duration::from_millis(300));

    let (mut sub, ack) = RawClient::connect_with(broker.addr, connect());
    assert!(ack.session_present, "a 0xFFFFFFFF session is still there");
    let got = sub.expect_publish_acked();
    assert_eq!(payload_str(&got), "kept");
}
