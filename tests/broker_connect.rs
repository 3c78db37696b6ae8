//! CONNECT handling end to end: CONNACK codes per protocol level, client id rules, first
//! packet and second CONNECT rules, malformed input, keepalive.

pub mod broker_support;

use broker_support::*;
use ringmq::protocol::{Disconnect, Packet, Properties, ProtocolVersion, QoS, ReasonCode};
use std::time::{Duration, Instant};

#[test]
fn connack_accepts_levels_3_4_and_5() {
    let broker = Broker::start();
    for version in [
        ProtocolVersion::V3,
        ProtocolVersion::V4,
        ProtocolVersion::V5,
    ] {
        let (_client, ack) = RawClient::connect(&broker, connect_packet(version, "lvl", true));
        assert_eq!(ack.reason, ReasonCode::Success, "level {version:?}");
        assert!(!ack.session_present);
    }
}

#[test]
fn unsupported_protocol_level_gets_connack_0x01_then_close_mqtt_3_1_2_2() {
    let broker = Broker::start();
    let mut client = RawClient::open(&broker, ProtocolVersion::V4);
    // CONNECT, protocol "MQTT" level 6, clean session, keepalive 60, client id "x".
    client.send_raw(&[
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 6, 0x02, 0, 60, 0, 1, b'x',
    ]);
    match client.expect_packet() {
        Packet::ConnAck(ack) => assert_eq!(ack.reason, ReasonCode::UnsupportedProtocolVersion),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    client.expect_closed(PATIENCE);
}

#[test]
fn empty_client_id_with_clean_session_0_is_rejected_0x02_mqtt_3_1_3_8() {
    let broker = Broker::start();
    let mut client = RawClient::open(&broker, ProtocolVersion::V4);
    client.send(&Packet::Connect(Box::new(connect_packet(
        ProtocolVersion::V4,
        "",
        false,
    ))));
    match client.expect_packet() {
        Packet::ConnAck(ack) => assert_eq!(ack.reason, ReasonCode::ClientIdentifierNotValid),
        other => panic!("expected CONNACK, got {other:?}"),
    }
    client.expect_closed(PATIENCE);
}

#[test]
fn empty_client_id_with_clean_session_is_assigned_mqtt_3_1_3_6() {
    let broker = Broker::start();
    let (mut v4, ack) = RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, "", true));
    assert_eq!(ack.reason, ReasonCode::Success);
    v4.sync();
    let (mut v5, ack) = RawClient::connect(&broker, connect_packet(ProtocolVersion::V5, "", true));
    assert_eq!(ack.reason, ReasonCode::Success);
    let assigned = ack
        .properties
        .assigned_client_identifier
        .clone()
        .expect("5.0 CONNACK carries the Assigned Client Identifier");
    assert!(!assigned.is_empty());
    v5.sync();
}

#[test]
fn first_packet_other_than_connect_closes_mqtt_3_1_0_1() {
    let broker = Broker::start();
    let mut client = RawClient::open(&broker, ProtocolVersion::V4);
    client.send(&Packet::PingReq);
    let seen = client.expect_closed(PATIENCE);
    assert!(
        seen.is_empty(),
        "no answer to a non-CONNECT first packet: {seen:?}"
    );
}

#[test]
fn second_connect_is_a_protocol_violation_mqtt_3_1_0_2() {
    let broker = Broker::start();
    let connect = connect_packet(ProtocolVersion::V5, "twice", true);
    let (mut client, _) = RawClient::connect(&broker, connect.clone());
    client.send(&Packet::Connect(Box::new(connect)));
    let seen = client.expect_closed(PATIENCE);
    assert!(
        seen.iter()
            .any(|p| matches!(p, Packet::Disconnect(d) if d.reason == ReasonCode::ProtocolError)),
        "5.0 gets DISCONNECT 0x82 first: {seen:?}"
    );
}

#[test]
fn malformed_packet_disconnects_only_that_client_v5_gets_reason_0x81() {
    let broker = Broker::start();
    let (mut good, _) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, "good", true));
    good.subscribe("m/t", QoS::AtMostOnce);
    let (mut bad, _) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V5, "bad", true));
    // PUBLISH with QoS 3 is malformed [MQTT-3.3.1-4].
    bad.send_raw(&[0x36, 5, 0, 1, b'm', 0, 1]);
    let seen = bad.expect_closed(PATIENCE);
    assert!(
        seen.iter()
            .any(|p| matches!(p, Packet::Disconnect(d) if d.reason == ReasonCode::MalformedPacket)),
        "5.0 gets DISCONNECT 0x81: {seen:?}"
    );
    let (mut bad4, _) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, "bad4", true));
    bad4.send_raw(&[0xF0, 0]); // AUTH does not exist in 3.1.1
    assert!(
        bad4.expect_closed(PATIENCE).is_empty(),
        "3.1.1 is just closed"
    );

    let (mut publisher, _) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V4, "pub", true));
    publisher.send(&publish("m/t", b"still here", QoS::AtMostOnce, None, false));
    assert_eq!(&good.expect_publish().payload[..], b"still here");
}

#[test]
fn keepalive_timeout_closes_within_one_and_a_half_times_mqtt_3_1_2_24() {
    let broker = Broker::start();
    let mut connect = connect_packet(ProtocolVersion::V5, "sleepy", true);
    connect.keep_alive = 1;
    let started = Instant::now();
    let (mut client, _) = RawClient::connect(&broker, connect);
    let seen = client.expect_closed(Duration::from_secs(4));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1400),
        "closed too early: {elapsed:?}"
    );
    assert!(
        elapsed <= Duration::from_millis(2600),
        "1.5 x keepalive + 1 s: {elapsed:?}"
    );
    assert!(
        seen.iter().any(
            |p| matches!(p, Packet::Disconnect(d) if d.reason == ReasonCode::KeepAliveTimeout)
        ),
        "5.0 gets DISCONNECT 0x8D: {seen:?}"
    );
}

#[test]
fn pings_keep_the_connection_alive() {
    let broker = Broker::start();
    let mut connect = connect_packet(ProtocolVersion::V4, "pinger", true);
    connect.keep_alive = 1;
    let (mut client, _) = RawClient::connect(&broker, connect);
    for _ in 0..4 {
        std::thread::sleep(Duration::from_millis(700));
        client.sync();
    }
}

#[test]
fn normal_disconnect_closes_the_connection() {
    let broker = Broker::start();
    let (mut client, _) =
        RawClient::connect(&broker, connect_packet(ProtocolVersion::V5, "bye", true));
    client.send(&Packet::Disconnect(Disconnect {
        reason: ReasonCode::Success,
        properties: Properties::default(),
    }));
    assert!(client.expect_closed(PATIENCE).is_empty());
}
