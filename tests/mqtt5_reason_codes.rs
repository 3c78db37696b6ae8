//! Exact MQTT 5.0 reason codes on the closes and refusals whose older end-to-end tests also
//! accept a bare close (docs/mqtt5.md rows 5, 22, 51, 53 and 61), and Session Expiry
//! 0xFFFFFFFF (row 3), against the real `ringmq` binary. Every close here must be preceded by
//! the DISCONNECT (or CONNACK) with the reason code the spec gives; a bare close fails.

pub mod support;

use bytes::Bytes;
use ringmq::protocol::packet::{Disconnect, Publish};
use ringmq::protocol::{
    MqttString, Packet, Properties, PropertyValues, ProtocolVersion, ReasonCode, TopicName,
};
use std::time::{Duration, Instant};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;

fn publish_with(
    topic_name: Option<&str>,
    level: u8,
    packet_id: Option<u16>,
    properties: Properties,
) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: qos(level),
        retain: false,
        topic: topic_name.map_or_else(TopicName::empty, topic),
        packet_id: packet_id.map(pid),
        properties,
        payload: Bytes::from_static(b"x"),
    })
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

#[test]
fn a_server_cap_replaces_a_session_expiry_of_0xffffffff() {
    // 5.0 section 3.2.2.3.2: a server that uses another Session Expiry Interval than the
    // client's says so in CONNACK, and that value applies: "never" becomes the 1 s cap.
    let broker = Broker::start_with_config("[mqtt]\nmax_session_expiry = 1\n");
    let id = id_on_shard("forever-capped", 1);
    let connect = || {
        ConnectBuilder::new(V5, &id)
            .clean(false)
            .session_expiry(u32::MAX)
    };
    let (c, connack) = RawClient::connect_with(broker.addr, connect());
    assert_eq!(connack.properties.session_expiry_interval, Some(1));
    c.disconnect();
    std::thread::sleep(Duration::from_millis(1500));
    let (_c, ack) = RawClient::connect_with(broker.addr, connect());
    assert!(!ack.session_present, "the capped session ended after 1 s");
}

#[test]
fn raising_a_session_expiry_of_zero_on_disconnect_gets_0x82_and_the_will() {
    // 5.0 section 3.14.2.2.2: "If the Session Expiry Interval in the CONNECT packet was zero,
    // then it is a Protocol Error to set a non-zero Session Expiry Interval in the DISCONNECT
    // packet sent by the Client"; the server answers DISCONNECT 0x82 [MQTT-4.13.1-1]. That is
    // not a normal disconnection, so the will is published [MQTT-3.1.2-8], and the session
    // (expiry 0) ends with the connection [MQTT-3.1.2-23].
    let broker = Broker::start();
    let [id, watcher_id] = ids_on_distinct_shards("raise-expiry");
    let mut watcher = RawClient::connect(broker.addr, V5, &watcher_id);
    watcher.subscribe_ok(1, &[("raise/will", 0)]);
    let connect = ConnectBuilder::new(V5, &id).will("raise/will", b"w", 0, false);
    let (mut c, _) = RawClient::connect_with(broker.addr, connect);
    let mut dc = Disconnect::new(ReasonCode::NORMAL_DISCONNECTION);
    dc.properties.session_expiry_interval = Some(30);
    c.send(&Packet::Disconnect(dc));
    c.expect_disconnect_then_close(PROMPT, &[ReasonCode::ProtocolError]);
    assert_eq!(payload_str(&watcher.expect_publish()), "w");

    let resumed = ConnectBuilder::new(V5, &id).clean(false).session_expiry(30);
    let (_c, ack) = RawClient::connect_with(broker.addr, resumed);
    assert!(!ack.session_present, "the refused raise kept no session");
}

#[test]
fn a_client_publish_with_a_subscription_identifier_gets_0x82_and_is_not_delivered() {
    // [MQTT-3.3.4-6] "A PUBLISH packet sent from a Client to a Server MUST NOT contain a
    // Subscription Identifier"; breaking it is a Protocol Error: DISCONNECT 0x82
    // [MQTT-4.13.1-1].
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("subid-pub");
    let mut sub = RawClient::connect(broker.addr, V5, &sub_id);
    sub.subscribe_ok(1, &[("sid/#", 0)]);
    let mut c = RawClient::connect(broker.addr, V5, &pub_id);
    let properties = Properties::from(PropertyValues {
        subscription_identifiers: vec![5],
        ..PropertyValues::default()
    });
    c.send(&publish_with(Some("sid/t"), 0, None, properties));
    c.expect_disconnect_then_close(PROMPT, &[ReasonCode::ProtocolError]);
    sub.expect_nothing(QUIET);
}

#[test]
fn keep_alive_expiry_gets_disconnect_0x8d() {
    // [MQTT-3.1.2-22] a client silent for 1.5 x its Keep Alive is disconnected; 5.0 section
    // 3.14.2.1 names the reason: 0x8D Keep Alive timeout.
    let broker = Broker::start();
    let connect = ConnectBuilder::new(V5, "ka-0x8d").keep_alive(1);
    let (mut c, _) = RawClient::connect_with(broker.addr, connect);
    let start = Instant::now();
    c.expect_disconnect_then_close(Duration::from_secs(4), &[ReasonCode::KeepAliveTimeout]);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(1350) && took <= Duration::from_millis(2600),
        "closed after {took:?}"
    );
}

#[test]
fn an_invalid_topic_alias_gets_0x94_and_an_unmapped_one_0x82() {
    // [MQTT-3.3.2-8] "A sender MUST NOT send a PUBLISH packet containing a Topic Alias which
    // has the value 0"; 3.3.2.3.4: a Topic Alias above the receiver's Topic Alias Maximum (16
    // here) is invalid too: DISCONNECT 0x94 Topic Alias invalid. An empty Topic Name with an
    // alias that has no mapping yet is a Protocol Error: 0x82.
    let broker = Broker::start();
    let cases = [
        (Some("ta/t"), 0, ReasonCode::TopicAliasInvalid),
        (Some("ta/t"), 17, ReasonCode::TopicAliasInvalid),
        (None, 5, ReasonCode::ProtocolError),
    ];
    for (i, (name, alias, reason)) in cases.into_iter().enumerate() {
        let mut c = RawClient::connect(broker.addr, V5, &format!("ta-{i}"));
        let mut properties = Properties::default();
        properties.topic_alias = Some(alias);
        c.send(&publish_with(name, 0, None, properties));
        c.expect_disconnect_then_close(PROMPT, &[reason]);
    }
}

#[test]
fn an_unsupported_authentication_method_gets_connack_0x8c_then_the_close() {
    // [MQTT-4.12.0-1] "If the Server does not support the Authentication Method supplied by
    // the Client, it MAY send a CONNACK with a Reason Code of 0x8C (Bad authentication
    // method) or 0x87 (Not Authorized) as described in section 4.13 and MUST close the
    // Network Connection." ringmq supports none and answers 0x8C.
    let broker = Broker::start();
    let mut connect = ConnectBuilder::new(V5, "auth-0x8c");
    connect.0.properties = Properties::from(PropertyValues {
        authentication_method: MqttString::try_from("SCRAM-SHA-999").ok(),
        ..PropertyValues::default()
    });
    let mut c = RawClient::tcp(broker.addr, V5, "auth-0x8c");
    c.send(&connect.packet());
    let connack = c.expect_connack();
    assert_eq!(connack.reason, ReasonCode::BadAuthenticationMethod);
    c.expect_closed(PROMPT);
}
