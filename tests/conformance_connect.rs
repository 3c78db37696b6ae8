//! Conformance of CONNECT / CONNACK handling (MQTT 3.1.1 and 5.0 section 3.1 / 3.2) against the
//! real `ringmq` binary: protocol levels, refused levels, packet order, client identifiers,
//! Session Present, and interop with rumqttc.

pub mod support;

use ringmq::protocol::{Packet, ProtocolVersion, ReasonCode};
use support::*;

const V3: ProtocolVersion = ProtocolVersion::V3;
const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

#[test]
fn levels_3_4_and_5_are_accepted_with_a_success_connack() {
    let broker = Broker::start();
    for (version, id) in [(V3, "lvl3"), (V4, "lvl4"), (V5, "lvl5")] {
        let (mut client, connack) =
            RawClient::connect_with(broker.addr, ConnectBuilder::new(version, id));
        assert!(
            !connack.session_present,
            "{version:?}: clean session -> SP 0"
        );
        client.ping();
    }
}

#[test]
fn rumqttc_3_1_1_and_5_0_clients_connect() {
    let broker = Broker::start();
    let _v4 = Rumqtt4::connect(broker.addr, "rumqttc-v4");
    let _v5 = Rumqtt5::connect(broker.addr, "rumqttc-v5");
}

/// A CONNECT with "MQTT" and protocol level `level`, clean session, keep alive 0, id "x".
fn connect_with_level(level: u8) -> Vec<u8> {
    vec![
        0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', level, 0x02, 0, 0, 0, 1, b'x',
    ]
}

/// A refusing CONNACK for an unsupported level, in 3.1.1 (`20 02 00 01`) or 5.0 form
/// (`20 len 00 84 props`).
fn is_unsupported_version_connack(bytes: &[u8]) -> bool {
    match bytes {
        [0x20, 0x02, 0x00, 0x01] => true,
        [0x20, len, 0x00, 0x84, rest @ ..] => usize::from(*len) == 2 + rest.len(),
        _ => false,
    }
}

#[test]
fn an_unsupported_protocol_level_is_refused_with_connack_then_closed() {
    // [MQTT-3.1.2-2] 3.1.1: CONNACK 0x01 then disconnect; 5.0: CONNACK 0x84 then close.
    let broker = Broker::start();
    for level in [0u8, 2, 6, 0x7F] {
        let mut client = RawClient::tcp(broker.addr, V4, "bad-level");
        client.send_bytes(&connect_with_level(level));
        let (bytes, closed) = client.read_raw_until_closed(PROMPT);
        assert!(closed, "level {level}: connection left open");
        assert!(
            is_unsupported_version_connack(&bytes),
            "level {level}: expected CONNACK 0x01 / 0x84 before the close, got {bytes:02x?}"
        );
        if level == 6 {
            // A level newer than any the server knows is answered as 3.1.1 does: return code
            // 0x01, in the 4-byte form every client version reads.
            assert_eq!(bytes, [0x20, 0x02, 0x00, 0x01], "level 6");
        }
    }
}

#[test]
fn a_first_packet_other_than_connect_closes_the_connection() {
    // [MQTT-3.1.0-1] The first packet must be CONNECT; the server closes otherwise and does
    // not process it.
    let broker = Broker::start();
    let [sub_id, _] = ids_on_distinct_shards("first-not-connect");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("first/not/connect", 0)]);

    let mut pinger = RawClient::tcp(broker.addr, V4, "pinger");
    pinger.send(&Packet::PingReq);
    pinger.expect_closed(PROMPT);

    for _ in 0..2 {
        let mut publisher = RawClient::tcp(broker.addr, V4, "publisher");
        publisher.send(&publish_packet("first/not/connect", b"x", 0, None, false));
        publisher.expect_closed(PROMPT);
    }
    sub.expect_nothing(QUIET);
}

#[test]
fn a_second_connect_is_a_protocol_violation_that_closes_the_connection_3_1_1() {
    // [MQTT-3.1.0-2] 3.1.1: a second CONNECT is a protocol violation; disconnect.
    let broker = Broker::start();
    let mut client = RawClient::connect(broker.addr, V4, "twice-v4");
    client.send(&ConnectBuilder::new(V4, "twice-v4").packet());
    client.expect_closed(PROMPT);
}

#[test]
fn a_second_connect_gets_disconnect_0x82_and_the_close_in_5_0() {
    // [MQTT-3.1.0-2] 5.0: a second CONNECT is a Protocol Error; the server sends DISCONNECT
    // 0x82 Protocol Error [MQTT-4.13.1-1] and closes. A bare close fails.
    let broker = Broker::start();
    let mut client = RawClient::connect(broker.addr, V5, "twice-v5");
    client.send(&ConnectBuilder::new(V5, "twice-v5").packet());
    client.expect_disconnect_then_close(PROMPT, &[ReasonCode::ProtocolError]);
}

#[test]
fn an_empty_client_id_without_clean_session_is_rejected_with_0x02_in_3_1_1() {
    // [MQTT-3.1.3-8] zero-byte ClientId with CleanSession 0: CONNACK 0x02 then close.
    let broker = Broker::start();
    let mut client = RawClient::tcp(broker.addr, V4, "empty-id");
    client.send(&ConnectBuilder::new(V4, "").clean(false).packet());
    let connack = client.expect_connack();
    assert_eq!(connack.reason, ReasonCode::ClientIdentifierNotValid);
    assert!(!connack.session_present, "[MQTT-3.2.2-4] SP 0 on refusal");
    client.expect_closed(PROMPT);
}

#[test]
fn an_empty_client_id_with_clean_session_is_accepted_in_3_1_1() {
    // [MQTT-3.1.3-6] the server assigns a unique id and processes the CONNECT as usual.
    let broker = Broker::start();
    let (mut a, _) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, ""));
    let (mut b, _) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, ""));
    // Two anonymous clients must not take each other over.
    a.ping();
    b.ping();
}

#[test]
fn an_empty_client_id_with_clean_start_gets_an_assigned_client_identifier_in_5_0() {
    // [MQTT-3.2.2-16] the CONNACK carries an Assigned Client Identifier, unique per client.
    let broker = Broker::start();
    let (mut a, ca) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, ""));
    let (mut b, cb) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, ""));
    let ida = ca.properties.assigned_client_identifier.clone();
    let idb = cb.properties.assigned_client_identifier.clone();
    assert!(
        ida.as_ref().is_some_and(|s| !s.is_empty()),
        "no Assigned Client Identifier: {ida:?}"
    );
    assert!(
        idb.as_ref().is_some_and(|s| !s.is_empty()),
        "no Assigned Client Identifier: {idb:?}"
    );
    assert_ne!(ida, idb, "assigned identifiers must be unique");
    a.ping();
    b.ping();
}

#[test]
fn session_present_is_0_for_clean_session_and_new_sessions_and_1_for_resumed_ones_3_1_1() {
    let broker = Broker::start();
    let id = id_on_shard("sp-v4", 1);
    // [MQTT-3.2.2-3] no stored session: SP 0.
    let (c, ack) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, &id).clean(false));
    assert!(!ack.session_present, "[MQTT-3.2.2-3] new session");
    c.disconnect();
    // [MQTT-3.2.2-2] stored session resumed: SP 1.
    let (c, ack) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, &id).clean(false));
    assert!(ack.session_present, "[MQTT-3.2.2-2] resumed session");
    c.disconnect();
    // [MQTT-3.2.2-1] clean session: SP 0 even though a session was stored.
    let (c, ack) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, &id).clean(true));
    assert!(!ack.session_present, "[MQTT-3.2.2-1] clean session");
    c.disconnect();
    // The clean session discarded the stored one [MQTT-3.1.2-6].
    let (c, ack) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, &id).clean(false));
    assert!(
        !ack.session_present,
        "[MQTT-3.1.2-6] state of a clean session must not be reused"
    );
    c.disconnect();
}

#[test]
fn session_present_follows_clean_start_and_session_expiry_in_5_0() {
    let broker = Broker::start();
    let id = id_on_shard("sp-v5", 0);
    let persistent = || ConnectBuilder::new(V5, &id).clean(false).session_expiry(60);
    // 5.0 numbering: [MQTT-3.2.2-3] Clean Start 0 without stored state -> SP 0.
    let (c, ack) = RawClient::connect_with(broker.addr, persistent());
    assert!(!ack.session_present, "new session");
    c.disconnect();
    // [MQTT-3.2.2-3] session kept (expiry 60 s) and resumed -> SP 1.
    let (c, ack) = RawClient::connect_with(broker.addr, persistent());
    assert!(ack.session_present, "[MQTT-3.2.2-3] resumed session");
    c.disconnect();
    // [MQTT-3.2.2-2] Clean Start 1 -> SP 0 and the session is discarded [MQTT-3.1.2-4].
    let (c, ack) = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, &id).clean(true).session_expiry(0),
    );
    assert!(!ack.session_present, "[MQTT-3.2.2-2] clean start");
    c.disconnect();
    // Session Expiry 0 on the last connection: the session ended with it (5.0 3.1.2.11.2).
    let (c, ack) = RawClient::connect_with(broker.addr, persistent());
    assert!(
        !ack.session_present,
        "a session with expiry 0 must end when its connection closes"
    );
    c.disconnect();
}

#[test]
fn mqtt_3_1_clients_publish_and_subscribe() {
    // MQTT 3.1 (level 3, "MQIsdp") is supported alongside 3.1.1 and 5.0 clients.
    let broker = Broker::start();
    let [a, b] = ids_on_distinct_shards("v3");
    let mut sub = RawClient::connect(broker.addr, V3, &a);
    sub.subscribe_ok(1, &[("v3/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &b);
    publisher.publish("v3/t", b"from-5.0", 1, false);
    let got = sub.expect_publish_acked();
    assert_eq!(got.topic.as_str(), "v3/t");
    assert_eq!(&got.payload[..], b"from-5.0");
}

#[test]
fn mqtt_3_1_client_ids_must_be_1_to_23_characters() {
    // MQTT 3.1 section 3.1 (CONNECT payload): the Client Identifier is 1 to 23 characters;
    // otherwise CONNACK return code 2 (Identifier Rejected).
    let broker = Broker::start();
    for id in ["", "abcdefghijklmnopqrstuvwxyz"] {
        let mut c = RawClient::tcp(broker.addr, V3, "v3-id");
        c.send(&ConnectBuilder::new(V3, id).packet());
        match c.recv(PROMPT) {
            Recv::Packet(Packet::ConnAck(a)) => {
                assert_eq!(a.reason, ReasonCode::ClientIdentifierNotValid, "id {id:?}");
                c.expect_closed(PROMPT);
            }
            other => panic!("id {id:?}: expected CONNACK 2, got {other:?}"),
        }
    }
}
