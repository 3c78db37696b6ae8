//! Publish/subscribe end to end: QoS 0/1/2 both ways, min(publish, subscription) QoS, retained
//! messages, overlapping subscriptions, across shards, with our raw client and with rumqttc
//! (3.1.1 and 5.0).

pub mod broker_support;

use broker_support::*;
use ringmq::protocol::{Packet, ProtocolVersion, PubResp, QoS};
use std::time::Duration;

/// Retained copies, unsubscriptions and session ends reach the other shard over the mesh;
/// give them a moment. (A SUBACK needs no wait: it leaves only once every shard has the
/// subscription.)
fn settle() {
    std::thread::sleep(Duration::from_millis(100));
}

fn client(broker: &Broker, prefix: &str, shard: usize, version: ProtocolVersion) -> RawClient {
    let id = id_on_shard(prefix, shard);
    RawClient::connect(broker, connect_packet(version, &id, true)).0
}

/// Publishes at `qos` and completes the publisher's side of the flow [MQTT-4.3.2] [MQTT-4.3.3].
fn publish_and_complete(publisher: &mut RawClient, topic: &str, payload: &[u8], qos: QoS) {
    let id = (qos != QoS::AtMostOnce).then_some(9);
    publisher.send(&publish(topic, payload, qos, id, false));
    match qos {
        QoS::AtMostOnce => {}
        QoS::AtLeastOnce => match publisher.expect_packet() {
            Packet::PubAck(ack) => assert_eq!(ack.packet_id, pid(9)),
            other => panic!("expected PUBACK, got {other:?}"),
        },
        QoS::ExactlyOnce => {
            match publisher.expect_packet() {
                Packet::PubRec(rec) => assert_eq!(rec.packet_id, pid(9)),
                other => panic!("expected PUBREC, got {other:?}"),
            }
            publisher.send(&Packet::PubRel(PubResp::new(pid(9))));
            match publisher.expect_packet() {
                Packet::PubComp(comp) => assert_eq!(comp.packet_id, pid(9)),
                other => panic!("expected PUBCOMP, got {other:?}"),
            }
        }
    }
}

#[test]
fn every_qos_flows_both_ways_across_shards() {
    let broker = Broker::start();
    for version in [ProtocolVersion::V4, ProtocolVersion::V5] {
        let mut sub = client(&broker, "sub", 0, version);
        let mut publisher = client(&broker, "pub", 1, version);
        sub.subscribe("q/#", QoS::ExactlyOnce);
        for qos in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce] {
            publish_and_complete(&mut publisher, "q/x", b"m", qos);
            let got = sub.expect_publish();
            assert_eq!(got.qos, qos, "{version:?}");
            assert_eq!(got.topic.as_str(), "q/x");
            assert_eq!(&got.payload[..], b"m");
            assert_eq!(got.packet_id.is_some(), qos != QoS::AtMostOnce);
            sub.ack(&got);
        }
        sub.sync();
    }
}

#[test]
fn delivery_qos_is_the_minimum_of_publish_and_subscription_mqtt_3_8_4_6() {
    let broker = Broker::start();
    let mut sub1 = client(&broker, "s1", 0, ProtocolVersion::V4);
    let mut sub0 = client(&broker, "s0", 1, ProtocolVersion::V4);
    let mut publisher = client(&broker, "p", 1, ProtocolVersion::V4);
    sub1.subscribe("min/t", QoS::AtLeastOnce);
    sub0.subscribe("min/t", QoS::AtMostOnce);
    publish_and_complete(&mut publisher, "min/t", b"2", QoS::ExactlyOnce);
    assert_eq!(sub1.expect_publish().qos, QoS::AtLeastOnce);
    assert_eq!(sub0.expect_publish().qos, QoS::AtMostOnce);
    publish_and_complete(&mut publisher, "min/t", b"0", QoS::AtMostOnce);
    assert_eq!(sub1.expect_publish().qos, QoS::AtMostOnce);
}

#[test]
fn overlapping_subscriptions_deliver_once_at_the_highest_qos_mqtt_3_3_5_1() {
    let broker = Broker::start();
    let mut sub = client(&broker, "ov", 0, ProtocolVersion::V4);
    sub.subscribe("o/+", QoS::AtMostOnce);
    sub.subscribe("o/#", QoS::AtLeastOnce);
    let mut publisher = client(&broker, "op", 1, ProtocolVersion::V4);
    publish_and_complete(&mut publisher, "o/a", b"x", QoS::AtLeastOnce);
    let got = sub.expect_publish();
    assert_eq!(got.qos, QoS::AtLeastOnce);
    sub.ack(&got);
    sub.expect_silence(Duration::from_millis(300));
}

#[test]
fn unsubscribe_stops_delivery() {
    let broker = Broker::start();
    let mut sub = client(&broker, "un", 1, ProtocolVersion::V4);
    sub.subscribe("u/t", QoS::AtMostOnce);
    sub.send(&Packet::Unsubscribe(ringmq::protocol::Unsubscribe {
        packet_id: pid(2),
        properties: Default::default(),
        filters: vec![filter("u/t")],
    }));
    assert!(matches!(sub.expect_packet(), Packet::UnsubAck(_)));
    let mut publisher = client(&broker, "up", 0, ProtocolVersion::V4);
    settle();
    publish_and_complete(&mut publisher, "u/t", b"x", QoS::AtMostOnce);
    sub.expect_silence(Duration::from_millis(300));
}

#[test]
fn retained_message_reaches_later_wildcard_subscribers_on_every_shard_mqtt_3_3_1_6() {
    let broker = Broker::start();
    let mut publisher = client(&broker, "rp", 1, ProtocolVersion::V4);
    publisher.send(&publish("r/a/b", b"kept", QoS::AtLeastOnce, Some(3), true));
    assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));
    settle();
    for shard in 0..SHARDS {
        let mut sub = client(&broker, "rs", shard, ProtocolVersion::V4);
        sub.subscribe("r/+/b", QoS::AtLeastOnce);
        let got = sub.expect_publish();
        assert!(got.retain, "sent because of a new subscription: RETAIN=1");
        assert_eq!(&got.payload[..], b"kept");
        assert_eq!(got.qos, QoS::AtLeastOnce);
        sub.ack(&got);
    }
}

#[test]
fn live_subscribers_get_retain_0_in_3_1_1_mqtt_3_3_1_9() {
    let broker = Broker::start();
    let mut sub = client(&broker, "lr", 0, ProtocolVersion::V4);
    sub.subscribe("lr/t", QoS::AtMostOnce);
    let mut publisher = client(&broker, "lp", 1, ProtocolVersion::V4);
    publisher.send(&publish("lr/t", b"x", QoS::AtMostOnce, None, true));
    assert!(!sub.expect_publish().retain);
}

#[test]
fn empty_retained_payload_deletes_the_retained_message_mqtt_3_3_1_10() {
    let broker = Broker::start();
    let mut publisher = client(&broker, "dp", 0, ProtocolVersion::V4);
    publisher.send(&publish("d/t", b"old", QoS::AtMostOnce, None, true));
    publisher.send(&publish("d/t", b"", QoS::AtMostOnce, None, true));
    publisher.sync();
    settle();
    for shard in 0..SHARDS {
        let mut sub = client(&broker, "ds", shard, ProtocolVersion::V4);
        sub.subscribe("d/#", QoS::AtMostOnce);
        sub.expect_silence(Duration::from_millis(300));
    }
}

#[test]
fn rumqttc_v4_qos1_publish_subscribe_across_shards() {
    use rumqttc::{Client, Event, Incoming, MqttOptions, QoS as RQoS};
    let broker = Broker::start();
    let mut sub_opts = MqttOptions::new(id_on_shard("rv4s", 0), "127.0.0.1", broker.port());
    sub_opts.set_keep_alive(Duration::from_secs(5));
    let (sub, mut sub_conn) = Client::new(sub_opts, 10);
    sub.subscribe("rv4/#", RQoS::AtLeastOnce)
        .expect("subscribe");
    wait_for(&mut || match sub_conn.recv_timeout(PATIENCE) {
        Ok(Ok(Event::Incoming(Incoming::SubAck(_)))) => Some(()),
        Ok(Ok(_)) => None,
        other => panic!("subscriber: {other:?}"),
    });
    let pub_opts = MqttOptions::new(id_on_shard("rv4p", 1), "127.0.0.1", broker.port());
    let (publisher, mut pub_conn) = Client::new(pub_opts, 10);
    publisher
        .publish("rv4/t", RQoS::AtLeastOnce, false, b"hi".to_vec())
        .expect("publish");
    wait_for(&mut || match pub_conn.recv_timeout(PATIENCE) {
        Ok(Ok(Event::Incoming(Incoming::PubAck(_)))) => Some(()),
        Ok(Ok(_)) => None,
        other => panic!("publisher: {other:?}"),
    });
    let got = wait_for(&mut || match sub_conn.recv_timeout(PATIENCE) {
        Ok(Ok(Event::Incoming(Incoming::Publish(p)))) => Some(p),
        Ok(Ok(_)) => None,
        other => panic!("subscriber: {other:?}"),
    });
    assert_eq!(got.topic, "rv4/t");
    assert_eq!(&got.payload[..], b"hi");
    assert_eq!(got.qos, RQoS::AtLeastOnce);
}

#[test]
fn rumqttc_v5_qos2_publish_subscribe_across_shards() {
    use rumqttc::v5::mqttbytes::QoS as RQoS;
    use rumqttc::v5::{Client, Event, Incoming, MqttOptions};
    let broker = Broker::start();
    let sub_opts = MqttOptions::new(id_on_shard("rv5s", 1), "127.0.0.1", broker.port());
    let (sub, mut sub_conn) = Client::new(sub_opts, 10);
    sub.subscribe("rv5/#", RQoS::ExactlyOnce)
        .expect("subscribe");
    wait_for(&mut || match sub_conn.recv_timeout(PATIENCE) {
        Ok(Ok(Event::Incoming(Incoming::SubAck(_)))) => Some(()),
        Ok(Ok(_)) => None,
        other => panic!("subscriber: {other:?}"),
    });
    let pub_opts = MqttOptions::new(id_on_shard("rv5p", 0), "127.0.0.1", broker.port());
    let (publisher, mut pub_conn) = Client::new(pub_opts, 10);
    publisher
        .publish("rv5/t", RQoS::ExactlyOnce, false, b"five".to_vec())
        .expect("publish");
    wait_for(&mut || match pub_conn.recv_timeout(PATIENCE) {
        Ok(Ok(Event::Incoming(Incoming::PubComp(_)))) => Some(()),
        Ok(Ok(_)) => None,
        other => panic!("publisher: {other:?}"),
    });
    let got = wait_for(&mut || match sub_conn.recv_timeout(PATIENCE) {
        Ok(Ok(Event::Incoming(Incoming::Publish(p)))) => Some(p),
        Ok(Ok(_)) => None,
        other => panic!("subscriber: {other:?}"),
    });
    assert_eq!(&got.topic[..], b"rv5/t");
    assert_eq!(&got.payload[..], b"five");
    assert_eq!(got.qos, RQoS::ExactlyOnce);
}

/// Polls `step` until it yields a value (each step has its own timeout).
fn wait_for<T>(step: &mut dyn FnMut() -> Option<T>) -> T {
    for _ in 0..50 {
        if let Some(v) = step() {
            return v;
        }
    }
    panic!("gave up waiting")
}

#[test]
fn qos1_stream_arrives_complete_and_in_order_across_shards_mqtt_4_6_0_6() {
    let broker = Broker::start();
    let mut sub = client(&broker, "order-s", 0, ProtocolVersion::V4);
    sub.subscribe("seq", QoS::AtLeastOnce);
    let mut publisher = client(&broker, "order-p", 1, ProtocolVersion::V4);
    const N: u16 = 500;
    for i in 1..=N {
        publisher.send(&publish(
            "seq",
            &i.to_be_bytes(),
            QoS::AtLeastOnce,
            Some(i),
            false,
        ));
    }
    for i in 1..=N {
        let got = sub.expect_publish();
        assert_eq!(&got.payload[..], &i.to_be_bytes(), "message {i} in order");
        sub.ack(&got);
    }
    for _ in 1..=N {
        assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));
    }
}

#[test]
fn a_subscriber_that_never_reads_does_not_stall_the_others() {
    let broker = Broker::start();
    let mut stuck = client(&broker, "stuck", 0, ProtocolVersion::V4);
    stuck.subscribe("big", QoS::AtLeastOnce);
    let mut reader = client(&broker, "reader", 0, ProtocolVersion::V4);
    reader.subscribe("big", QoS::AtLeastOnce);
    let mut publisher = client(&broker, "bigpub", 1, ProtocolVersion::V4);
    const N: u16 = 100;
    let payload = vec![7u8; 64 * 1024];
    let reading = std::thread::spawn(move || {
        for i in 1..=N {
            let got = reader.expect_publish();
            assert_eq!(got.payload.len(), 64 * 1024, "message {i}");
            reader.ack(&got);
        }
    });
    for i in 1..=N {
        publisher.send(&publish("big", &payload, QoS::AtLeastOnce, Some(i), false));
        assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));
    }
    reading
        .join()
        .expect("the reading subscriber got every message");
    drop(stuck);
}

fn expiring(
    topic: &str,
    payload: &[u8],
    qos: QoS,
    id: Option<u16>,
    retain: bool,
    secs: u32,
) -> Packet {
    let mut packet = publish(topic, payload, qos, id, retain);
    if let Packet::Publish(p) = &mut packet {
        p.properties.message_expiry_interval = Some(secs);
    }
    packet
}

#[test]
fn expired_retained_and_queued_messages_are_not_delivered_mqtt_3_3_2_5() {
    let broker = Broker::start();
    let mut publisher = client(&broker, "xp", 1, ProtocolVersion::V5);
    let durable = id_on_shard("xq", 0);
    let mut offline = connect_packet(ProtocolVersion::V4, &durable, false);
    let (mut sub, _) = RawClient::connect(&broker, offline.clone());
    sub.subscribe("x/q", QoS::AtLeastOnce);
    sub.send(&Packet::Disconnect(ringmq::protocol::Disconnect::new(
        ringmq::protocol::ReasonCode::Success,
    )));
    sub.expect_closed(PATIENCE);
    settle();

    publisher.send(&expiring("x/r", b"short", QoS::AtMostOnce, None, true, 1));
    publisher.send(&expiring(
        "x/q",
        b"short",
        QoS::AtLeastOnce,
        Some(1),
        false,
        1,
    ));
    assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));
    publisher.send(&expiring(
        "x/q",
        b"long",
        QoS::AtLeastOnce,
        Some(2),
        false,
        60,
    ));
    assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));

    let mut early = client(&broker, "xe", 0, ProtocolVersion::V5);
    early.subscribe("x/r", QoS::AtMostOnce);
    let got = early.expect_publish();
    assert_eq!(
        got.properties.message_expiry_interval,
        Some(1),
        "remaining time, rounded up"
    );

    std::thread::sleep(Duration::from_millis(1300));
    let mut late = client(&broker, "xl", 1, ProtocolVersion::V5);
    late.subscribe("x/r", QoS::AtMostOnce);
    late.expect_silence(Duration::from_millis(300));

    offline.clean_start = false;
    let (mut sub, ack) = RawClient::connect(&broker, offline);
    assert!(ack.session_present);
    let got = sub.expect_publish();
    assert_eq!(&got.payload[..], b"long", "the expired one was dropped");
    sub.ack(&got);
    sub.expect_silence(Duration::from_millis(300));
}

/// Every PUBLISH received until `quiet` passes without one, acknowledged.
fn drain_publishes(client: &mut RawClient, quiet: Duration) -> Vec<ringmq::protocol::Publish> {
    let mut got = Vec::new();
    while let Recv::Packet(packet) = client.recv(quiet) {
        match packet {
            Packet::Publish(p) => {
                client.ack(&p);
                got.push(p);
            }
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }
    got
}

#[test]
fn shared_subscription_delivers_each_message_to_one_member_across_shards_mqtt_4_8_2() {
    let broker = Broker::start();
    let mut members: Vec<RawClient> = (0..4)
        .map(|i| {
            client(
                &broker,
                &format!("member{i}"),
                i % SHARDS,
                ProtocolVersion::V5,
            )
        })
        .collect();
    for m in &mut members {
        m.subscribe("$share/workers/jobs/+", QoS::AtLeastOnce);
    }
    let mut watcher = client(&broker, "all", 1, ProtocolVersion::V5);
    watcher.subscribe("jobs/#", QoS::AtMostOnce);
    let mut publisher = client(&broker, "boss", 0, ProtocolVersion::V5);
    const N: u16 = 40;
    for i in 1..=N {
        publisher.send(&publish(
            "jobs/a",
            &i.to_be_bytes(),
            QoS::AtLeastOnce,
            Some(i),
            false,
        ));
        assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));
    }
    let mut seen = Vec::new();
    for m in &mut members {
        let got = drain_publishes(m, Duration::from_millis(300));
        assert!(!got.is_empty(), "round robin reaches every member");
        assert!(got.iter().all(|p| !p.retain));
        seen.extend(
            got.iter()
                .map(|p| u16::from_be_bytes([p.payload[0], p.payload[1]])),
        );
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=N).collect::<Vec<_>>(),
        "each message to exactly one member"
    );
    assert_eq!(
        drain_publishes(&mut watcher, Duration::from_millis(300)).len(),
        usize::from(N)
    );
}

#[test]
fn subscription_identifiers_of_every_matching_subscription_are_sent_mqtt_3_3_4_3() {
    let broker = Broker::start();
    let mut tagged = client(&broker, "tagged", 0, ProtocolVersion::V5);
    let mut plain = client(&broker, "plain", 0, ProtocolVersion::V5);
    for (filter_str, id) in [("s/+", 7), ("s/#", 9)] {
        let mut packet = subscribe(2, filter_str, QoS::AtMostOnce);
        if let Packet::Subscribe(s) = &mut packet {
            s.properties.subscription_identifiers = vec![id];
        }
        tagged.send(&packet);
        assert!(matches!(tagged.expect_packet(), Packet::SubAck(_)));
    }
    plain.subscribe("s/#", QoS::AtMostOnce);
    let mut publisher = client(&broker, "sp", 1, ProtocolVersion::V4);
    publisher.send(&publish("s/a", b"x", QoS::AtMostOnce, None, true));
    let mut ids = tagged
        .expect_publish()
        .properties
        .subscription_identifiers
        .clone();
    ids.sort_unstable();
    assert_eq!(ids, [7, 9], "one PUBLISH listing both identifiers");
    assert!(
        plain
            .expect_publish()
            .properties
            .subscription_identifiers
            .is_empty()
    );

    // A retained message sent on subscribe carries that subscription's identifier.
    let mut late = client(&broker, "late-tagged", 1, ProtocolVersion::V5);
    let mut packet = subscribe(3, "s/a", QoS::AtMostOnce);
    if let Packet::Subscribe(s) = &mut packet {
        s.properties.subscription_identifiers = vec![42];
    }
    late.send(&packet);
    assert!(matches!(late.expect_packet(), Packet::SubAck(_)));
    let retained = late.expect_publish();
    assert!(retained.retain);
    assert_eq!(retained.properties.subscription_identifiers, [42]);
}
