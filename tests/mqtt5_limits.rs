//! What a 5.0 client's CONNECT limits in the packets the server sends it, and the server's
//! Reason Strings, against the real `ringmq` binary, mostly byte for byte: the client's
//! Maximum Packet Size applies to every packet (3.1.2.11.4) - PUBLISHes over it, live, queued
//! or retained, are skipped, and a SUBACK, UNSUBACK or CONNACK over it ends the connection -
//! optional properties go first when a packet would exceed it, Request Problem Information 0
//! keeps Reason Strings off everything but PUBLISH, CONNACK and DISCONNECT (3.1.2.11.8), and
//! refusals and server DISCONNECTs say why.

pub mod support;

use ringmq::protocol::packet::PubResp;
use ringmq::protocol::{Packet, ProtocolVersion};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;

// ---------------------------------------------------------------------------------------------
// Packets, and the bytes expected back, written out by hand
// ---------------------------------------------------------------------------------------------

fn filters(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}/{i}")).collect()
}

/// SUBSCRIBE to each of `filters` at QoS 0.
fn subscribe_all(packet_id: u16, filters: &[String]) -> Packet {
    filters
        .iter()
        .fold(SubscribeBuilder::new(packet_id), |s, f| s.filter(f, 0))
        .packet()
}

/// A filter of 129 levels: the SUBACK refuses it with 0x8F (the trie takes 128).
fn too_deep_filter() -> String {
    "a/".repeat(128) + "a"
}

/// A property list holding only a Reason String (0x1F), or an empty one.
fn reason_string_properties(text: Option<&str>) -> Vec<u8> {
    let Some(text) = text else { return vec![0x00] };
    let mut list = vec![0x1F];
    list.extend((text.len() as u16).to_be_bytes());
    list.extend(text.as_bytes());
    let mut out = var_int(list.len());
    out.extend(list);
    out
}

/// A server DISCONNECT: the short form without properties, else reason code and properties.
fn disconnect_bytes(code: u8, text: Option<&str>) -> Vec<u8> {
    let mut body = vec![code];
    if text.is_some() {
        body.extend(reason_string_properties(text));
    }
    frame(0xE0, &body)
}

/// A refusing CONNACK: no session present, the code, the properties.
fn connack_refusal_bytes(code: u8, text: Option<&str>) -> Vec<u8> {
    let mut body = vec![0x00, code];
    body.extend(reason_string_properties(text));
    frame(0x20, &body)
}

/// A PUBREL, PUBCOMP or other acknowledgement with a reason code.
fn ack_bytes(first_byte: u8, packet_id: u16, code: u8, text: Option<&str>) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    body.push(code);
    if text.is_some() {
        body.extend(reason_string_properties(text));
    }
    frame(first_byte, &body)
}

fn suback_bytes(packet_id: u16, codes: &[u8], text: Option<&str>) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    body.extend(reason_string_properties(text));
    body.extend(codes);
    frame(0x90, &body)
}

const TOO_DEEP: &str = "a topic filter has more levels than this server supports (128)";

// ---------------------------------------------------------------------------------------------
// The client's Maximum Packet Size
// ---------------------------------------------------------------------------------------------

#[test]
fn a_suback_over_the_clients_maximum_packet_size_is_not_sent_and_the_connection_closes_with_0x95() {
    // [MQTT-3.1.2-24] the server MUST NOT send a packet over the client's Maximum Packet Size,
    // and [MQTT-3.8.4-1] it MUST answer a SUBSCRIBE with a SUBACK. A SUBACK of 200 codes is
    // 206 bytes even without properties, so it cannot go to a client that takes 128: the
    // broker closes with DISCONNECT 0x95 Packet too large (whose Reason String fits), and
    // applies none of the filters.
    let broker = Broker::start();
    let id = id_on_shard("mps-suback", 0);
    let connect = ConnectBuilder::new(V5, &id)
        .maximum_packet_size(128)
        .session_expiry(60);
    let mut sub = RawClient::connect_with(broker.addr, connect.clone()).0;
    sub.send(&subscribe_all(1, &filters("f", 200)));
    let text = "the SUBACK for 200 topic filters would be 206 bytes, over the client's Maximum \
                Packet Size of 128 [MQTT-3.1.2-24]";
    let got = sub.expect_raw_until_closed();
    assert_eq!(got, disconnect_bytes(0x95, Some(text)));
    assert!(got.len() <= 128, "the DISCONNECT itself fits");

    // The session survived (it has an expiry) without any of the 200 subscriptions.
    let mut sub = RawClient::connect_with(broker.addr, connect.clean(false)).0;
    let mut publisher = RawClient::connect(broker.addr, V5, &id_on_shard("mps-pub", 1));
    publisher.publish("f/0", b"x", 1, false);
    publisher.publish("f/199", b"x", 1, false);
    sub.expect_nothing(QUIET);
}

#[test]
fn a_suback_of_exactly_the_clients_maximum_packet_size_is_sent_in_full() {
    // [MQTT-3.1.2-24] the limit includes the packet's own size: 123 codes make a SUBACK of
    // exactly 128 bytes (type, length 126, packet id, property length 0, codes).
    let broker = Broker::start();
    let mut sub = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, "mps-exact").maximum_packet_size(128),
    )
    .0;
    sub.send(&subscribe_all(7, &filters("e", 123)));
    let got = sub.expect_raw_packet();
    assert_eq!(got, suback_bytes(7, &[0x00; 123], None));
    assert_eq!(got.len(), 128);
}

#[test]
fn an_unsuback_over_the_clients_maximum_packet_size_closes_with_0x95() {
    // [MQTT-3.1.2-24] with [MQTT-3.10.4-4] (an UNSUBSCRIBE is answered with an UNSUBACK).
    let broker = Broker::start();
    let mut client = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, "mps-unsuback").maximum_packet_size(128),
    )
    .0;
    let many = filters("u", 200);
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    client.send(&unsubscribe_packet(2, &many));
    let text = "the UNSUBACK for 200 topic filters would be 206 bytes, over the client's Maximum \
                Packet Size of 128 [MQTT-3.1.2-24]";
    assert_eq!(
        client.expect_raw_until_closed(),
        disconnect_bytes(0x95, Some(text))
    );
}

#[test]
fn reason_strings_that_would_exceed_the_clients_maximum_packet_size_are_left_out() {
    let broker = Broker::start();
    // [MQTT-3.9.2-1] the SUBACK refusing a too-deep filter drops its Reason String for a
    // client that takes 30 bytes...
    let mut small = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, "rs-small").maximum_packet_size(30),
    )
    .0;
    small.send(&subscribe_all(1, &[too_deep_filter()]));
    assert_eq!(small.expect_raw_packet(), suback_bytes(1, &[0x8F], None));
    // ...and carries it for a client without a limit.
    let mut roomy = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, "rs-roomy")).0;
    roomy.send(&subscribe_all(1, &[too_deep_filter()]));
    assert_eq!(
        roomy.expect_raw_packet(),
        suback_bytes(1, &[0x8F], Some(TOO_DEEP))
    );
    // [MQTT-3.14.2-3] the DISCONNECT 0x95 for a SUBACK of 20 codes (25 bytes) to a client that
    // takes 20 has no room for its Reason String: the bare short form goes.
    let mut tiny = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, "rs-tiny").maximum_packet_size(20),
    )
    .0;
    tiny.send(&subscribe_all(1, &filters("s", 20)));
    assert_eq!(tiny.expect_raw_until_closed(), disconnect_bytes(0x95, None));
}

#[test]
fn a_connack_over_the_clients_maximum_packet_size_is_refused_with_0x95() {
    // [MQTT-3.2.2-19] [MQTT-3.1.2-24] the CONNACK accepting this client would carry Receive
    // Maximum, Maximum Packet Size and Topic Alias Maximum (16 bytes); a client that takes 12
    // gets the 5-byte refusal 0x95 instead, without its Reason String, and is closed.
    let broker = Broker::start();
    let mut client = RawClient::tcp(broker.addr, V5, "mps-connack");
    client.send(
        &ConnectBuilder::new(V5, "mps-connack")
            .maximum_packet_size(12)
            .packet(),
    );
    assert_eq!(
        client.expect_raw_until_closed(),
        connack_refusal_bytes(0x95, None)
    );
    // A client that takes 4 bytes cannot be sent any CONNACK: the connection just closes.
    let mut client = RawClient::tcp(broker.addr, V5, "mps-connack-4");
    client.send(
        &ConnectBuilder::new(V5, "mps-connack-4")
            .maximum_packet_size(4)
            .packet(),
    );
    assert_eq!(client.expect_raw_until_closed(), Vec::<u8>::new());
}

#[test]
fn packets_over_the_clients_maximum_packet_size_are_not_sent() {
    // [MQTT-3.1.2-24] the server must not send packets over the client's Maximum Packet Size;
    // [MQTT-3.1.2-25] it discards them and carries on, for live messages and for those
    // queued while the client was away.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("cmps");
    let connect = || {
        ConnectBuilder::new(V5, &sub_id)
            .persistent()
            .maximum_packet_size(200)
    };
    let (mut sub, _) = RawClient::connect_with(broker.addr, connect());
    sub.subscribe_ok(1, &[("mps/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &pub_id);
    publisher.publish("mps/t", &[1u8; 500], 1, false);
    publisher.publish("mps/t", b"small", 1, false);
    let got = collect_publishes(&mut sub, QUIET);
    let payloads: Vec<String> = got.iter().map(payload_str).collect();
    assert_eq!(
        payloads,
        ["small"],
        "the live oversized message was skipped"
    );

    sub.disconnect();
    publisher.publish("mps/t", &[2u8; 500], 1, false);
    publisher.publish("mps/t", b"queued", 1, false);
    let (mut sub, ack) = RawClient::connect_with(broker.addr, connect());
    assert!(ack.session_present);
    let payloads = collect_payloads(&mut sub, QUIET);
    assert_eq!(
        payloads,
        ["queued"],
        "the queued oversized message was skipped"
    );
}

#[test]
fn retained_messages_over_the_clients_maximum_packet_size_are_not_sent() {
    // [MQTT-3.1.2-24] [MQTT-3.1.2-25] also for retained messages sent at subscribe.
    let broker = Broker::start();
    let mut publisher = RawClient::connect(broker.addr, V5, &id_on_shard("rmps-pub", 0));
    publisher.publish("rmps/big", &[9u8; 500], 1, true);
    publisher.publish("rmps/small", b"small", 1, true);
    let connect = ConnectBuilder::new(V5, &id_on_shard("rmps-sub", 1)).maximum_packet_size(200);
    let (mut sub, _) = RawClient::connect_with(broker.addr, connect);
    sub.subscribe_ok(1, &[("rmps/#", 1)]);
    let got = collect_payloads(&mut sub, QUIET);
    assert_eq!(got, ["small"]);
}

// ---------------------------------------------------------------------------------------------
// Reason Strings
// ---------------------------------------------------------------------------------------------

fn alias_publish(alias: u16) -> Packet {
    PublishBuilder::new("t", b"x").topic_alias(alias).packet()
}

const ALIAS_17: &str = "topic alias 17 is outside 1..=16, the Topic Alias Maximum [MQTT-3.3.2-9]";

#[test]
fn a_protocol_error_disconnect_says_what_was_wrong() {
    // 3.14.2.2.3: the server's DISCONNECT 0x94 Topic Alias invalid [MQTT-3.3.2-9] carries a
    // Reason String naming the alias and the maximum.
    let broker = Broker::start();
    let mut client = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, "rs-alias")).0;
    client.send(&alias_publish(17));
    assert_eq!(
        client.expect_raw_until_closed(),
        disconnect_bytes(0x94, Some(ALIAS_17))
    );
}

#[test]
fn a_refused_connack_says_why() {
    // 3.2.2.3.9: CONNACK 0x8C Bad authentication method [MQTT-4.12.0-1] names the method.
    let broker = Broker::start();
    let connect = ConnectBuilder::new(V5, "rs-auth")
        .properties(|p| p.authentication_method = Some(mqtt_string("SCRAM-SHA-999")));
    let mut client = RawClient::tcp(broker.addr, V5, "rs-auth");
    client.send(&connect.packet());
    let text = "authentication method \"SCRAM-SHA-999\" is not supported";
    assert_eq!(
        client.expect_raw_until_closed(),
        connack_refusal_bytes(0x8C, Some(text))
    );
}

#[test]
fn a_taken_over_connection_is_told_why() {
    // [MQTT-3.1.4-3] the old connection gets DISCONNECT 0x8E, with a Reason String.
    let broker = Broker::start();
    let id = id_on_shard("rs-takeover", 1);
    let mut old = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, &id)).0;
    let _new = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, &id)).0;
    let text = "another connection with the same client identifier took over the session";
    assert_eq!(
        old.expect_raw_until_closed(),
        disconnect_bytes(0x8E, Some(text))
    );
}

#[test]
fn a_pubrel_for_an_unknown_packet_id_gets_pubcomp_0x92_with_a_reason_string() {
    // 3.7.2.1: PUBCOMP 0x92 Packet Identifier not found, explained.
    let broker = Broker::start();
    let mut client = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, "rs-pubrel")).0;
    client.send(&Packet::PubRel(PubResp::new(pid(5))));
    let text = "no QoS 2 PUBLISH with this packet identifier awaits PUBREL";
    assert_eq!(
        client.expect_raw_packet(),
        ack_bytes(0x70, 5, 0x92, Some(text))
    );
}

#[test]
fn request_problem_information_0_keeps_reason_strings_off_acks_but_not_off_connack_or_disconnect() {
    // [MQTT-3.1.2-29] Request Problem Information 0: no Reason String on any packet but
    // PUBLISH, CONNACK and DISCONNECT.
    let broker = Broker::start();
    let mut client = RawClient::connect_with(
        broker.addr,
        ConnectBuilder::new(V5, "rpi-0").properties(|p| p.request_problem_information = Some(0)),
    )
    .0;
    client.send(&subscribe_all(1, &[too_deep_filter()]));
    assert_eq!(client.expect_raw_packet(), suback_bytes(1, &[0x8F], None));
    client.send(&Packet::PubRel(PubResp::new(pid(5))));
    assert_eq!(client.expect_raw_packet(), ack_bytes(0x70, 5, 0x92, None));
    // The DISCONNECT still explains itself...
    client.send(&alias_publish(17));
    assert_eq!(
        client.expect_raw_until_closed(),
        disconnect_bytes(0x94, Some(ALIAS_17))
    );
    // ...and so does a refusing CONNACK.
    let connect = ConnectBuilder::new(V5, "rpi-0-auth").properties(|p| {
        p.request_problem_information = Some(0);
        p.authentication_method = Some(mqtt_string("X"));
    });
    let mut refused = RawClient::tcp(broker.addr, V5, "rpi-0-auth");
    refused.send(&connect.packet());
    let text = "authentication method \"X\" is not supported";
    assert_eq!(
        refused.expect_raw_until_closed(),
        connack_refusal_bytes(0x8C, Some(text))
    );
}
