//! Topic Aliases (MQTT 5.0 section 3.3.2.3.4) both ways, against the real `ringmq` binary.
//! Inbound: a client's alias stands for its topic on that connection, and an invalid or
//! unmapped one is refused. Outbound: the broker gives each topic it sends to a 5.0 client an
//! alias within the client's Topic Alias Maximum, then sends that topic as an empty name plus
//! the alias. Publisher and subscriber sit on different shards, so every message crosses the
//! mesh before it is aliased.

pub mod support;

use ringmq::protocol::packet::Publish;
use ringmq::protocol::{Packet, ProtocolVersion, ReasonCode};
use std::collections::HashMap;
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;

/// Resolves each PUBLISH's topic as a client must, checking every alias against `max` and
/// that an empty topic only uses an alias set earlier on this connection.
fn resolve(got: &[Publish], max: u16) -> Vec<String> {
    let mut aliases: HashMap<u16, String> = HashMap::new();
    got.iter()
        .map(|p| match p.properties.topic_alias {
            None => {
                assert!(!p.topic.is_empty(), "an empty topic needs an alias: {p:?}");
                p.topic.as_str().to_string()
            }
            Some(alias) => {
                // [MQTT-3.1.2-26] [MQTT-3.3.2-11] never 0 and never above the client's maximum.
                assert!(
                    (1..=max).contains(&alias),
                    "alias {alias} outside 1..={max}"
                );
                if !p.topic.is_empty() {
                    aliases.insert(alias, p.topic.as_str().to_string());
                }
                aliases
                    .get(&alias)
                    .cloned()
                    .unwrap_or_else(|| panic!("alias {alias} used before it was set: {p:?}"))
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Inbound: the client's aliases
// ---------------------------------------------------------------------------------------------

#[test]
fn a_topic_alias_stands_for_its_topic_in_later_publishes() {
    // 5.0 section 3.3.2.3.4: an alias set with a topic is used by later PUBLISHes with an
    // empty topic, and may be mapped to another topic; subscribers see the full topic.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("alias");
    let mut sub = RawClient::connect(broker.addr, V5, &sub_id);
    sub.subscribe_ok(1, &[("alias/#", 0)]);
    let (mut publisher, connack) =
        RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, &pub_id));
    let max = connack.properties.topic_alias_maximum.unwrap_or(0);
    assert!(max >= 2, "the default config grants 16 aliases: {max}");
    let sent = [
        ("alias/one", 1),
        ("alias/two", 2),
        ("", 1),
        ("", 2),
        ("alias/three", 1),
        ("", 1),
    ];
    for (i, (name, alias)) in (1..).zip(sent) {
        let payload = i.to_string();
        let publish = PublishBuilder::new(name, payload.as_bytes()).topic_alias(alias);
        publisher.send(&publish.packet());
    }
    let got: Vec<String> = collect_publishes(&mut sub, QUIET)
        .iter()
        .map(|p| format!("{}={}", p.topic.as_str(), payload_str(p)))
        .collect();
    assert_eq!(
        got,
        [
            "alias/one=1",
            "alias/two=2",
            "alias/one=3",
            "alias/two=4",
            "alias/three=5",
            "alias/three=6"
        ]
    );
}

#[test]
fn an_invalid_topic_alias_gets_disconnect_0x94_and_an_unmapped_one_0x82() {
    // [MQTT-3.3.2-8] "A sender MUST NOT send a PUBLISH packet containing a Topic Alias which
    // has the value 0"; 3.3.2.3.4: a Topic Alias above the receiver's Topic Alias Maximum (16
    // here) is invalid too: DISCONNECT 0x94 Topic Alias invalid. An empty Topic Name with an
    // alias that has no mapping yet is a Protocol Error: 0x82. A bare close fails.
    let broker = Broker::start();
    let cases = [
        ("a/b", 0, ReasonCode::TopicAliasInvalid),
        ("a/b", 17, ReasonCode::TopicAliasInvalid),
        ("", 5, ReasonCode::ProtocolError),
    ];
    for (i, (name, n, reason)) in cases.into_iter().enumerate() {
        let mut c = RawClient::connect(broker.addr, V5, &format!("badalias-{i}"));
        c.send(&PublishBuilder::new(name, b"x").topic_alias(n).packet());
        c.expect_disconnect_then_close(PROMPT, &[reason]);
    }
}

#[test]
fn inbound_topic_aliases_do_not_survive_a_reconnect() {
    // [MQTT-3.3.2-7] alias mappings last only for the network connection, even when the
    // session continues: an alias from the previous connection is unknown (Protocol Error).
    let broker = Broker::start();
    let id = id_on_shard("alias-reconnect", 0);
    let persistent = || ConnectBuilder::new(V5, &id).persistent();
    let (mut c, _) = RawClient::connect_with(broker.addr, persistent());
    c.send(&PublishBuilder::new("ar/t", b"1").topic_alias(1).packet());
    c.ping();
    c.disconnect();
    let (mut c, ack) = RawClient::connect_with(broker.addr, persistent());
    assert!(ack.session_present);
    c.send(&PublishBuilder::new("", b"2").topic_alias(1).packet());
    c.expect_closed_maybe_disconnect(
        PROMPT,
        &[ReasonCode::ProtocolError, ReasonCode::TopicAliasInvalid],
    );
}

// ---------------------------------------------------------------------------------------------
// Outbound: the broker's aliases
// ---------------------------------------------------------------------------------------------

#[test]
fn the_first_publish_of_a_topic_sets_an_alias_and_later_ones_send_only_the_alias() {
    // 3.3.2.3.4: a PUBLISH with a topic and a Topic Alias sets the mapping; one with a
    // zero-length topic and the alias uses it. Exact bytes, so the encoding is pinned too.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("ta-bytes");
    let (mut sub, _) = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, &sub_id).topic_alias_maximum(4),
    );
    sub.subscribe_ok(1, &[("ta/#", 0)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("ta/x", b"1", 0, false);
    publisher.publish("ta/x", b"2", 0, false);
    publisher.publish("ta/x", b"3", 0, false);
    let (bytes, closed) = sub.read_raw_until_closed(QUIET);
    assert!(!closed);
    #[rustfmt::skip]
    let expected = [
        0x30, 0x0B, // PUBLISH QoS 0, remaining length 11
        0x00, 0x04, b't', b'a', b'/', b'x', // the full topic, once
        0x03, 0x23, 0x00, 0x01, // properties: Topic Alias 1
        b'1',
        0x30, 0x07, // PUBLISH QoS 0, remaining length 7
        0x00, 0x00, // zero-length topic: the alias stands for it
        0x03, 0x23, 0x00, 0x01, // Topic Alias 1
        b'2',
        0x30, 0x07, 0x00, 0x00, 0x03, 0x23, 0x00, 0x01, b'3',
    ];
    assert_eq!(bytes, expected);
}

#[test]
fn aliases_never_exceed_the_clients_topic_alias_maximum() {
    // [MQTT-3.1.2-26] [MQTT-3.3.2-11]: with a maximum of 2, the first two topics get aliases
    // 1 and 2 and keep them; the others always go with their full name and no alias.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("ta-max");
    let (mut sub, _) = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, &sub_id).topic_alias_maximum(2),
    );
    sub.subscribe_ok(1, &[("tm/#", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    let topics = [
        "tm/a", "tm/b", "tm/c", "tm/d", "tm/a", "tm/b", "tm/c", "tm/d",
    ];
    for t in topics {
        publisher.publish(t, t.as_bytes(), 1, false);
    }
    let got = collect_publishes(&mut sub, QUIET);
    let resolved = resolve(&got, 2);
    let payloads: Vec<String> = got.iter().map(payload_str).collect();
    assert_eq!(resolved, payloads, "each alias stands for its own topic");
    assert_eq!(payloads, topics);
    // The broker does use them: the first two topics set aliases 1 and 2 and then go by
    // alias alone; the others always go in full.
    let forms: Vec<(&str, Option<u16>)> = got
        .iter()
        .map(|p| (p.topic.as_str(), p.properties.topic_alias))
        .collect();
    let expected = [
        ("tm/a", Some(1)),
        ("tm/b", Some(2)),
        ("tm/c", None),
        ("tm/d", None),
        ("", Some(1)),
        ("", Some(2)),
        ("tm/c", None),
        ("tm/d", None),
    ];
    assert_eq!(forms, expected);
}

#[test]
fn the_brokers_cap_limits_aliases_below_the_clients_maximum() {
    // `mqtt.max_outbound_topic_aliases` caps what a client allows; still within
    // [MQTT-3.3.2-11] since it only lowers the bound.
    let broker = Broker::start_with_config("[mqtt]\nmax_outbound_topic_aliases = 1\n");
    let [pub_id, sub_id] = ids_on_distinct_shards("ta-cap");
    let (mut sub, _) = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, &sub_id).topic_alias_maximum(100),
    );
    sub.subscribe_ok(1, &[("tc/#", 0)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    for t in ["tc/a", "tc/b", "tc/a", "tc/b"] {
        publisher.publish(t, t.as_bytes(), 0, false);
    }
    let got = collect_publishes(&mut sub, QUIET);
    let aliases: Vec<Option<u16>> = got.iter().map(|p| p.properties.topic_alias).collect();
    assert_eq!(aliases, [Some(1), None, Some(1), None]);
    assert_eq!(resolve(&got, 1), ["tc/a", "tc/b", "tc/a", "tc/b"]);
}

#[test]
fn no_alias_is_sent_to_a_client_that_announced_no_topic_alias_maximum() {
    // [MQTT-3.1.2-27]: Topic Alias Maximum absent or 0 means no Topic Alias at all; a 3.1.1
    // client cannot take one either.
    let broker = Broker::start();
    let [pub_id, absent_id] = ids_on_distinct_shards("ta-none");
    let zero_id = id_on_shard("ta-zero", 1);
    let v4_id = id_on_shard("ta-v4", 1);
    let (mut absent, _) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, &absent_id));
    let (mut zero, _) = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, &zero_id).topic_alias_maximum(0),
    );
    let mut v4 = RawClient::connect(broker.addr, ProtocolVersion::V4, &v4_id);
    for client in [&mut absent, &mut zero, &mut v4] {
        client.subscribe_ok(1, &[("tn/#", 1)]);
    }
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    for _ in 0..3 {
        publisher.publish("tn/t", b"x", 1, false);
    }
    for client in [&mut absent, &mut zero, &mut v4] {
        let got = collect_publishes(client, QUIET);
        assert_eq!(got.len(), 3, "{}", client.name);
        for p in got {
            assert_eq!(p.properties.topic_alias, None, "{}: {p:?}", client.name);
            assert_eq!(p.topic.as_str(), "tn/t", "{}", client.name);
        }
    }
}

#[test]
fn aliases_restart_with_each_connection_of_a_persistent_session() {
    // [MQTT-3.3.2-7] mappings last only as long as the network connection: after a reconnect
    // the resent (DUP) and queued messages set the alias again before using it.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("ta-re");
    let persistent = || {
        ConnectBuilder::new(V5, &sub_id)
            .topic_alias_maximum(4)
            .clean(false)
            .session_expiry(60)
    };
    let (mut sub, _) = RawClient::connect_with(broker.addr, persistent());
    sub.subscribe_ok(1, &[("tr/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("tr/t", b"1", 1, false);
    publisher.publish("tr/t", b"2", 1, false);
    // Received, never acknowledged: both are resent on the next connection.
    let first = sub.expect_publish();
    let second = sub.expect_publish();
    assert_eq!(
        (first.topic.as_str(), first.properties.topic_alias),
        ("tr/t", Some(1))
    );
    assert_eq!(
        (second.topic.as_str(), second.properties.topic_alias),
        ("", Some(1))
    );
    sub.drop_connection();
    publisher.publish("tr/t", b"3", 1, false);
    let (mut sub, connack) = RawClient::connect_with(broker.addr, persistent());
    assert!(connack.session_present);
    publisher.publish("tr/t", b"4", 1, false);
    let got = collect_publishes(&mut sub, QUIET);
    let payloads: Vec<String> = got.iter().map(payload_str).collect();
    assert_eq!(payloads, ["1", "2", "3", "4"]);
    assert!(got[0].dup && got[1].dup, "resends carry DUP [MQTT-3.3.1-1]");
    assert_eq!(
        got[0].topic.as_str(),
        "tr/t",
        "first PUBLISH names its topic again"
    );
    assert_eq!(got[0].properties.topic_alias, Some(1));
    for p in &got[1..] {
        assert_eq!((p.topic.as_str(), p.properties.topic_alias), ("", Some(1)));
    }
    assert_eq!(resolve(&got, 4), ["tr/t"; 4]);
}

#[test]
fn retained_messages_at_subscribe_set_aliases_that_live_messages_then_use() {
    // 3.3.2.3.4 applies to every PUBLISH the server sends, retained ones included.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("ta-ret");
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("tt/r", b"kept", 1, true);
    let (mut sub, _) = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, &sub_id).topic_alias_maximum(3),
    );
    sub.subscribe_ok(1, &[("tt/#", 1)]);
    publisher.publish("tt/r", b"live", 1, false);
    let got = collect_publishes(&mut sub, QUIET);
    assert_eq!(got.len(), 2);
    assert!(got[0].retain);
    assert_eq!(
        (got[0].topic.as_str(), got[0].properties.topic_alias),
        ("tt/r", Some(1))
    );
    assert_eq!(
        (got[1].topic.as_str(), got[1].properties.topic_alias),
        ("", Some(1))
    );
}

#[test]
fn the_clients_maximum_packet_size_counts_the_packet_as_sent_with_its_alias() {
    // [MQTT-3.1.2-24] [MQTT-3.1.2-25]: the limit applies to the packet actually sent. Setting
    // an alias adds 3 bytes, so a message that fits only without it goes with its full topic
    // and no alias; once the alias is set, an empty topic saves bytes again.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("ta-mps");
    // "tp/topic" QoS 0 with a 10-byte payload: 23 bytes plain, 26 setting an alias,
    // 18 using one.
    let connect = ConnectBuilder::new(V5, &sub_id)
        .topic_alias_maximum(2)
        .maximum_packet_size(25);
    let (mut sub, _) = RawClient::connect_with(broker.addr, connect);
    sub.subscribe_ok(1, &[("tp/#", 0)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("tp/topic", b"0123456789", 0, false);
    publisher.publish("tp/topic", b"", 0, false);
    publisher.publish("tp/topic", b"0123456789", 0, false);
    let got = collect_publishes(&mut sub, QUIET);
    let forms: Vec<(&str, Option<u16>, usize)> = got
        .iter()
        .map(|p| (p.topic.as_str(), p.properties.topic_alias, p.payload.len()))
        .collect();
    assert_eq!(
        forms,
        [
            ("tp/topic", None, 10),
            ("tp/topic", Some(1), 0),
            ("", Some(1), 10)
        ]
    );
    for p in &got {
        let size = ringmq::protocol::encoded_len(&Packet::Publish(p.clone()), V5);
        assert!(size <= 25, "{size} bytes: {p:?}");
    }
}

#[test]
fn a_rumqttc_5_subscriber_accepts_the_aliases_and_stays_connected() {
    // Interop: a widely used client takes the aliases the broker sets and uses
    // [MQTT-3.3.2-10], with no protocol error and no lost message.
    use rumqttc::v5::mqttbytes::QoS as Q;
    use rumqttc::v5::mqttbytes::v5::Packet as P;
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("ta-rumqttc");
    let mut options = Rumqtt5::options(broker.addr, &sub_id);
    options.set_topic_alias_max(Some(8));
    let (mut sub, _) = Rumqtt5::connect_with(options);
    assert!(sub.client.subscribe("tq/#", Q::AtLeastOnce).is_ok());
    sub.wait_for_incoming(|p| matches!(p, P::SubAck(_)), "SUBACK");
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    for i in 0..4u8 {
        publisher.publish("tq/t", &[b'0' + i], 1, false);
    }
    let got: Vec<_> = (0..4).map(|_| sub.next_publish()).collect();
    let alias = |p: &rumqttc::v5::mqttbytes::v5::Publish| {
        p.properties.as_ref().and_then(|props| props.topic_alias)
    };
    assert_eq!((&got[0].topic[..], alias(&got[0])), (&b"tq/t"[..], Some(1)));
    for (i, p) in got.iter().enumerate().skip(1) {
        // rumqttc reports the packet as received; it resolves the alias internally.
        assert_eq!((&p.topic[..], alias(p)), (&b""[..], Some(1)));
        assert_eq!(&p.payload[..], [b'0' + i as u8]);
    }
    // Still connected: another SUBSCRIBE is answered.
    assert!(sub.client.subscribe("tq/other", Q::AtMostOnce).is_ok());
    sub.wait_for_incoming(|p| matches!(p, P::SubAck(_)), "second SUBACK");
}
