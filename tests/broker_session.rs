//! Sessions end to end: wills, takeover, persistent sessions (queued messages, resends,
//! session present), clean sessions, with our raw client and rumqttc.

pub mod broker_support;

use broker_support::*;
use ringmq::protocol::{Disconnect, Packet, Properties, ProtocolVersion, PubResp, QoS, ReasonCode};
use std::time::Duration;

fn settle() {
    std::thread::sleep(Duration::from_millis(100));
}

fn watcher(broker: &Broker, filter_str: &str, shard: usize) -> RawClient {
    let id = id_on_shard("watch", shard);
    let (mut c, _) = RawClient::connect(broker, connect_packet(ProtocolVersion::V4, &id, true));
    c.subscribe(filter_str, QoS::AtLeastOnce);
    c
}

fn with_will(version: ProtocolVersion, id: &str, will_topic: &str) -> ringmq::protocol::Connect {
    let mut connect = connect_packet(version, id, true);
    connect.will = Some(will(will_topic, b"gone"));
    connect
}

#[test]
fn will_is_published_when_the_socket_drops_mqtt_3_1_2_8() {
    let broker = Broker::start();
    let mut watch = watcher(&broker, "will/#", 0);
    let id = id_on_shard("dropper", 1);
    let (client, _) = RawClient::connect(&broker, with_will(ProtocolVersion::V4, &id, "will/drop"));
    drop(client);
    let got = watch.expect_publish();
    assert_eq!(got.topic.as_str(), "will/drop");
    assert_eq!(&got.payload[..], b"gone");
}

#[test]
fn will_is_published_on_keepalive_timeout() {
    let broker = Broker::start();
    let mut watch = watcher(&broker, "will/#", 1);
    let id = id_on_shard("silent", 0);
    let mut connect = with_will(ProtocolVersion::V4, &id, "will/ka");
    connect.keep_alive = 1;
    let (mut client, _) = RawClient::connect(&broker, connect);
    client.expect_closed(Duration::from_secs(3));
    assert_eq!(watch.expect_publish().topic.as_str(), "will/ka");
}

#[test]
fn no_will_after_a_normal_disconnect_mqtt_3_14_4_3() {
    let broker = Broker::start();
    let mut watch = watcher(&broker, "will/#", 0);
    let id = id_on_shard("polite", 1);
    let (mut client, _) =
        RawClient::connect(&broker, with_will(ProtocolVersion::V4, &id, "will/no"));
    client.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
    client.expect_closed(PATIENCE);
    watch.expect_silence(Duration::from_millis(500));
}

#[test]
fn v5_disconnect_with_will_message_0x04_publishes_the_will() {
    let broker = Broker::start();
    let mut watch = watcher(&broker, "will/#", 1);
    let id = id_on_shard("askwill", 0);
    let (mut client, _) =
        RawClient::connect(&broker, with_will(ProtocolVersion::V5, &id, "will/ask"));
    client.send(&Packet::Disconnect(Disconnect {
        reason: ReasonCode::DisconnectWithWillMessage,
        properties: Properties::default(),
    }));
    client.expect_closed(PATIENCE);
    assert_eq!(watch.expect_publish().topic.as_str(), "will/ask");
}

#[test]
fn takeover_closes_the_old_connection_and_publishes_its_will_mqtt_3_1_4_3() {
    let broker = Broker::start();
    let mut watch = watcher(&broker, "will/#", 0);
    let id = id_on_shard("twin", 1);
    // Several attempts so that, with SO_REUSEPORT, connections arrive on both shards.
    for _ in 0..4 {
        let (mut old, _) =
            RawClient::connect(&broker, with_will(ProtocolVersion::V4, &id, "will/twin"));
        let (mut new, _) =
            RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &id, true));
        old.expect_closed(PATIENCE);
        let will = watch.expect_publish();
        assert_eq!(will.topic.as_str(), "will/twin");
        watch.ack(&will);
        new.sync();
        new.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
        new.expect_closed(PATIENCE);
    }
}

#[test]
fn v5_takeover_sends_session_taken_over_0x8e() {
    let broker = Broker::start();
    let id = id_on_shard("twin5", 0);
    let (mut old, _) = RawClient::connect(&broker, connect_packet(ProtocolVersion::V5, &id, true));
    let (mut new, _) = RawClient::connect(&broker, connect_packet(ProtocolVersion::V5, &id, true));
    let seen = old.expect_closed(PATIENCE);
    assert!(
        seen.iter().any(
            |p| matches!(p, Packet::Disconnect(d) if d.reason == ReasonCode::SessionTakenOver)
        ),
        "old connection gets DISCONNECT 0x8E: {seen:?}"
    );
    new.sync();
}

#[test]
fn persistent_session_keeps_subscriptions_and_queues_qos1_while_offline_mqtt_3_1_2_4() {
    let broker = Broker::start();
    let id = id_on_shard("durable", 0);
    let (mut sub, ack) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &id, false));
    assert!(!ack.session_present, "no session yet [MQTT-3.2.2-3]");
    sub.subscribe("p/t", QoS::AtLeastOnce);
    sub.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
    sub.expect_closed(PATIENCE);

    let pub_id = id_on_shard("durable-pub", 1);
    let (mut publisher, _) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &pub_id, true));
    for (i, payload) in [b"one", b"two"].iter().enumerate() {
        let packet_id = u16::try_from(i + 1).expect("small");
        publisher.send(&publish(
            "p/t",
            *payload,
            QoS::AtLeastOnce,
            Some(packet_id),
            false,
        ));
        assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));
    }
    publisher.send(&publish("p/t", b"lost", QoS::AtMostOnce, None, false));
    publisher.sync();
    settle();

    let (mut sub, ack) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &id, false));
    assert!(ack.session_present, "session resumed [MQTT-3.2.2-2]");
    let first = sub.expect_publish();
    let second = sub.expect_publish();
    assert_eq!(&first.payload[..], b"one");
    assert_eq!(&second.payload[..], b"two");
    sub.ack(&first);
    sub.ack(&second);
    sub.expect_silence(Duration::from_millis(300));

    // The subscription survived: no new SUBSCRIBE needed.
    publisher.send(&publish("p/t", b"live", QoS::AtLeastOnce, Some(5), false));
    assert_eq!(&sub.expect_publish().payload[..], b"live");
}

#[test]
fn unacknowledged_qos1_is_resent_with_dup_on_reconnect_mqtt_4_4_0_1() {
    let broker = Broker::start();
    let id = id_on_shard("forgetful", 1);
    let (mut sub, _) = RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &id, false));
    sub.subscribe("dup/t", QoS::AtLeastOnce);
    let pub_id = id_on_shard("dup-pub", 0);
    let (mut publisher, _) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &pub_id, true));
    publisher.send(&publish(
        "dup/t",
        b"again",
        QoS::AtLeastOnce,
        Some(1),
        false,
    ));
    let first = sub.expect_publish();
    assert!(!first.dup);
    drop(sub); // no PUBACK

    let (mut sub, ack) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &id, false));
    assert!(ack.session_present);
    let again = sub.expect_publish();
    assert!(again.dup, "DUP=1 on redelivery [MQTT-3.3.1-1]");
    assert_eq!(again.packet_id, first.packet_id, "original packet id");
    assert_eq!(&again.payload[..], b"again");
    sub.send(&Packet::PubAck(PubResp::new(
        again.packet_id.expect("QoS 1 has an id"),
    )));
    sub.sync();
}

#[test]
fn clean_session_discards_the_old_session_mqtt_3_1_2_6() {
    let broker = Broker::start();
    let id = id_on_shard("fresh", 0);
    let (mut sub, _) = RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &id, false));
    sub.subscribe("c/t", QoS::AtLeastOnce);
    sub.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
    sub.expect_closed(PATIENCE);

    let (mut sub, ack) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &id, true));
    assert!(
        !ack.session_present,
        "clean session starts empty [MQTT-3.2.2-1]"
    );
    let pub_id = id_on_shard("fresh-pub", 1);
    let (mut publisher, _) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &pub_id, true));
    publisher.send(&publish("c/t", b"x", QoS::AtLeastOnce, Some(1), false));
    assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));
    sub.expect_silence(Duration::from_millis(300));
}

#[test]
fn v5_session_persists_only_with_a_session_expiry_interval() {
    let broker = Broker::start();
    let id = id_on_shard("v5durable", 1);
    let mut connect = connect_packet(ProtocolVersion::V5, &id, true);
    connect.properties.session_expiry_interval = Some(600);
    let (mut c, _) = RawClient::connect(&broker, connect.clone());
    c.subscribe("v5/t", QoS::AtLeastOnce);
    c.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
    c.expect_closed(PATIENCE);

    connect.clean_start = false;
    let (mut c, ack) = RawClient::connect(&broker, connect.clone());
    assert!(ack.session_present);
    c.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
    c.expect_closed(PATIENCE);

    // Without a Session Expiry Interval the session ends with the connection.
    connect.properties.session_expiry_interval = None;
    let (mut c, ack) = RawClient::connect(&broker, connect.clone());
    assert!(ack.session_present, "the expiring session was still there");
    c.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
    c.expect_closed(PATIENCE);
    let (_c, ack) = RawClient::connect(&broker, connect);
    assert!(!ack.session_present);
}

#[test]
fn rumqttc_v4_persistent_session_receives_messages_queued_while_offline() {
    use rumqttc::{Client, Event, Incoming, MqttOptions, QoS as RQoS};
    let broker = Broker::start();
    let id = id_on_shard("rdurable", 0);
    let options = || {
        let mut o = MqttOptions::new(id.clone(), "127.0.0.1", broker.port());
        o.set_clean_session(false);
        o
    };
    {
        let (client, mut conn) = Client::new(options(), 10);
        client
            .subscribe("rq/t", RQoS::AtLeastOnce)
            .expect("subscribe");
        loop {
            match conn.recv_timeout(PATIENCE) {
                Ok(Ok(Event::Incoming(Incoming::SubAck(_)))) => break,
                Ok(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
        client.disconnect().expect("disconnect");
        while let Ok(Ok(_)) = conn.recv_timeout(Duration::from_millis(300)) {}
    }
    let pub_id = id_on_shard("rdurable-pub", 1);
    let (mut publisher, _) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &pub_id, true));
    publisher.send(&publish(
        "rq/t",
        b"waiting",
        QoS::AtLeastOnce,
        Some(1),
        false,
    ));
    assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));

    let (_client, mut conn) = Client::new(options(), 10);
    let mut present = None;
    for _ in 0..20 {
        match conn.recv_timeout(PATIENCE) {
            Ok(Ok(Event::Incoming(Incoming::ConnAck(ack)))) => present = Some(ack.session_present),
            Ok(Ok(Event::Incoming(Incoming::Publish(p)))) => {
                assert_eq!(&p.payload[..], b"waiting");
                assert_eq!(present, Some(true));
                return;
            }
            Ok(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
    panic!("queued message never arrived");
}

#[test]
fn v5_session_expires_after_its_session_expiry_interval() {
    let broker = Broker::start();
    let id = id_on_shard("brief", 0);
    let mut connect = connect_packet(ProtocolVersion::V5, &id, true);
    connect.properties.session_expiry_interval = Some(1);
    let (mut c, _) = RawClient::connect(&broker, connect.clone());
    c.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
    c.expect_closed(PATIENCE);
    std::thread::sleep(Duration::from_millis(1500));
    connect.clean_start = false;
    let (_c, ack) = RawClient::connect(&broker, connect);
    assert!(
        !ack.session_present,
        "the session expired (section 3.1.2.11.2)"
    );
}

#[test]
fn shutdown_sends_v5_clients_server_shutting_down_0x8b() {
    let mut broker = Broker::start();
    let id = id_on_shard("bystander", 1);
    let (mut c, _) = RawClient::connect(&broker, connect_packet(ProtocolVersion::V5, &id, true));
    c.sync();
    broker.terminate();
    let seen = c.expect_closed(PATIENCE);
    assert!(
        seen.iter().any(
            |p| matches!(p, Packet::Disconnect(d) if d.reason == ReasonCode::ServerShuttingDown)
        ),
        "DISCONNECT 0x8B before close: {seen:?}"
    );
    assert!(
        broker.wait_exit(PATIENCE),
        "the broker exits after shutdown"
    );
}

fn delayed_will_connect(id: &str, delay: u32) -> ringmq::protocol::Connect {
    let mut connect = with_will(ProtocolVersion::V5, id, "will/late");
    connect.properties.session_expiry_interval = Some(60);
    if let Some(will) = connect.will.as_mut() {
        will.properties.will_delay_interval = Some(delay);
    }
    connect
}

#[test]
fn v5_will_waits_for_its_will_delay_interval() {
    let broker = Broker::start();
    let mut watch = watcher(&broker, "will/#", 0);
    let id = id_on_shard("late", 1);
    let (client, _) = RawClient::connect(&broker, delayed_will_connect(&id, 1));
    drop(client);
    watch.expect_silence(Duration::from_millis(600));
    assert_eq!(watch.expect_publish().topic.as_str(), "will/late");
}

#[test]
fn v5_reconnect_within_the_will_delay_cancels_the_will_mqtt_3_1_3_9() {
    let broker = Broker::start();
    let mut watch = watcher(&broker, "will/#", 1);
    let id = id_on_shard("back", 0);
    let connect = delayed_will_connect(&id, 1);
    let (client, _) = RawClient::connect(&broker, connect.clone());
    drop(client);
    std::thread::sleep(Duration::from_millis(300));
    let mut again = connect;
    again.clean_start = false;
    let (mut client, ack) = RawClient::connect(&broker, again);
    assert!(ack.session_present);
    watch.expect_silence(Duration::from_millis(1500));
    client.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
    client.expect_closed(PATIENCE);
}

#[test]
fn messages_over_the_client_maximum_packet_size_are_not_sent_mqtt_3_1_2_25() {
    let broker = Broker::start();
    let id = id_on_shard("small", 0);
    let mut connect = connect_packet(ProtocolVersion::V5, &id, true);
    connect.properties.session_expiry_interval = Some(60);
    connect.properties.maximum_packet_size = Some(100);
    let (mut c, _) = RawClient::connect(&broker, connect.clone());
    c.subscribe("mps/t", QoS::AtLeastOnce);
    let pub_id = id_on_shard("mps-pub", 1);
    let (mut publisher, _) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, &pub_id, true));
    let big = [0u8; 200];
    publisher.send(&publish("mps/t", &big, QoS::AtLeastOnce, Some(1), false));
    assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));
    publisher.send(&publish("mps/t", b"fits", QoS::AtLeastOnce, Some(2), false));
    assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));
    let got = c.expect_publish();
    assert_eq!(
        &got.payload[..],
        b"fits",
        "the live oversized message was skipped"
    );
    c.ack(&got);

    c.send(&Packet::Disconnect(Disconnect::new(ReasonCode::Success)));
    c.expect_closed(PATIENCE);
    publisher.send(&publish("mps/t", &big, QoS::AtLeastOnce, Some(3), false));
    assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));
    publisher.send(&publish(
        "mps/t",
        b"queued",
        QoS::AtLeastOnce,
        Some(4),
        false,
    ));
    assert!(matches!(publisher.expect_packet(), Packet::PubAck(_)));
    connect.clean_start = false;
    let (mut c, ack) = RawClient::connect(&broker, connect);
    assert!(ack.session_present);
    let got = c.expect_publish();
    assert_eq!(
        &got.payload[..],
        b"queued",
        "the queued oversized message was skipped"
    );
    c.ack(&got);
    c.expect_silence(Duration::from_millis(300));
}
