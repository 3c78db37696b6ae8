//! MQTT 5.0 Payload Format Indicator validation against the real `ringmq` binary: a payload
//! flagged as UTF-8 (indicator 1) that is not well-formed UTF-8 is refused with reason 0x99
//! (PUBACK, PUBREC, DISCONNECT for QoS 0, CONNACK for a will) and reaches no subscriber,
//! while a well-formed one is forwarded with its indicator. Publishers and subscribers sit on
//! different shards, so a refused message would have to cross the mesh to be seen.
//!
//! 5.0 section 3.3.2.3.2: "A Server MUST send the Payload Format Indicator unaltered to all
//! subscribers receiving the Application Message [MQTT-3.3.2-4]. The receiver MAY validate
//! that the Payload is of the format indicated, and if it is not send a PUBACK, PUBREC, or
//! DISCONNECT with Reason Code of 0x99 (Payload format invalid) as described in section 4.13."
//! Section 3.1.3.2.3 says the same of a will, answered with CONNACK 0x99.

pub mod support;

use bytes::Bytes;
use ringmq::protocol::packet::{LastWill, PubResp, Publish};
use ringmq::protocol::{Packet, Properties, ProtocolVersion, ReasonCode};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;

/// A lone continuation byte: not well-formed UTF-8.
const NOT_UTF8: &[u8] = b"caf\x80";

fn flagged(pfi: Option<u8>) -> Properties {
    let mut properties = Properties::default();
    properties.payload_format_indicator = pfi;
    properties
}

/// A PUBLISH whose Payload Format Indicator says UTF-8.
fn publish_flagged(
    topic_name: &str,
    payload: &[u8],
    level: u8,
    packet_id: Option<u16>,
    retain: bool,
) -> Packet {
    let mut packet = publish_packet(topic_name, payload, level, packet_id, retain);
    if let Packet::Publish(p) = &mut packet {
        p.properties = flagged(Some(1));
    }
    packet
}

/// A publisher and a QoS 2 subscriber of `filter`, on different shards.
fn pair(broker: &Broker, prefix: &str, filter: &str) -> (RawClient, RawClient) {
    let [pub_id, sub_id] = ids_on_distinct_shards(prefix);
    let mut sub = RawClient::connect(broker.addr, V5, &sub_id);
    sub.subscribe_ok(1, &[(filter, 2)]);
    let publisher = RawClient::connect(broker.addr, V5, &pub_id);
    (publisher, sub)
}

fn expect_ack(client: &mut RawClient, id: u16, reason: ReasonCode, pubrec: bool) {
    let resp = match client.expect_packet(PROMPT) {
        Packet::PubAck(r) if !pubrec => r,
        Packet::PubRec(r) if pubrec => r,
        other => panic!("expected {} {id}, got {other:?}", ack_name(pubrec)),
    };
    assert_eq!(resp.packet_id.get(), id);
    assert_eq!(resp.reason, reason, "{} reason", ack_name(pubrec));
}

fn ack_name(pubrec: bool) -> &'static str {
    if pubrec { "PUBREC" } else { "PUBACK" }
}

fn payloads(got: &[Publish]) -> Vec<Vec<u8>> {
    got.iter().map(|p| p.payload.to_vec()).collect()
}

#[test]
fn invalid_utf8_at_qos1_gets_puback_0x99_and_is_neither_delivered_nor_retained() {
    // 3.3.2.3.2: PUBACK 0x99. 4.13.2: an acknowledgement >= 0x80 refuses that packet only,
    // so the connection stays and the next valid message goes through.
    let broker = Broker::start();
    let (mut publisher, mut sub) = pair(&broker, "pf-q1", "pf1/#");
    publisher.send(&publish_flagged("pf1/t", NOT_UTF8, 1, Some(7), true));
    expect_ack(&mut publisher, 7, ReasonCode::PayloadFormatInvalid, false);
    publisher.send(&publish_flagged("pf1/t", b"fine", 1, Some(8), false));
    expect_ack(&mut publisher, 8, ReasonCode::Success, false);

    let got = collect_publishes(&mut sub, QUIET);
    assert_eq!(payloads(&got), [b"fine".to_vec()], "only the valid message");

    let mut late = RawClient::connect(broker.addr, V5, "pf-q1-late");
    late.subscribe_ok(1, &[("pf1/#", 1)]);
    late.expect_nothing(QUIET);
}

#[test]
fn invalid_utf8_at_qos2_gets_pubrec_0x99_and_the_packet_id_is_free_again() {
    // 3.3.2.3.2: PUBREC 0x99. 4.3.3: a PUBREC >= 0x80 ends the exchange (no PUBREL), so the
    // publisher may reuse the packet id at once; the server must not hold it as in use.
    let broker = Broker::start();
    let (mut publisher, mut sub) = pair(&broker, "pf-q2", "pf2/#");
    publisher.send(&publish_flagged("pf2/t", NOT_UTF8, 2, Some(9), false));
    expect_ack(&mut publisher, 9, ReasonCode::PayloadFormatInvalid, true);
    publisher.send(&publish_flagged(
        "pf2/t",
        "grüße".as_bytes(),
        2,
        Some(9),
        false,
    ));
    expect_ack(&mut publisher, 9, ReasonCode::Success, true);
    publisher.send(&Packet::PubRel(PubResp::new(pid(9))));
    match publisher.expect_packet(PROMPT) {
        Packet::PubComp(r) => {
            assert_eq!(r.packet_id.get(), 9);
            assert_eq!(r.reason, ReasonCode::Success, "the valid message owns id 9");
        }
        other => panic!("expected PUBCOMP, got {other:?}"),
    }

    let got = collect_publishes(&mut sub, QUIET);
    assert_eq!(payloads(&got), ["grüße".as_bytes().to_vec()]);
}

#[test]
fn invalid_utf8_at_qos0_gets_disconnect_0x99_and_only_the_will_arrives() {
    // 3.3.2.3.2: QoS 0 has no acknowledgement, so the receiver's answer is DISCONNECT 0x99;
    // [MQTT-4.13.2-1] the connection is then closed. The server closed it, not a normal
    // DISCONNECT from the client, so the will is published [MQTT-3.1.2-8].
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("pf-q0");
    let mut sub = RawClient::connect(broker.addr, V5, &sub_id);
    sub.subscribe_ok(1, &[("pf0/#", 1)]);
    let connect = ConnectBuilder::new(V5, &pub_id).will("pf0/will", b"gone", 1, false);
    let (mut publisher, _) = RawClient::connect_with(broker.addr, connect);
    publisher.send(&publish_flagged("pf0/t", NOT_UTF8, 0, None, false));
    publisher.expect_disconnect_then_close(PROMPT, &[ReasonCode::PayloadFormatInvalid]);

    let got = collect_publishes(&mut sub, QUIET);
    let topics: Vec<&str> = got.iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(topics, ["pf0/will"], "the invalid message is not delivered");
}

#[test]
fn valid_utf8_with_payload_format_1_is_forwarded_with_the_indicator_at_every_qos() {
    // [MQTT-3.3.2-4] the indicator reaches the subscriber unaltered, across shards, with the
    // payload bytes as sent.
    let broker = Broker::start();
    let (mut publisher, mut sub) = pair(&broker, "pf-ok", "pfok/#");
    let texts: Vec<String> = (0..=2).map(|level| format!("ünïcödé ✓ {level}")).collect();
    for (level, text) in (0u8..).zip(&texts) {
        let id = (level > 0).then_some(20 + u16::from(level));
        publisher.send(&publish_flagged(
            "pfok/t",
            text.as_bytes(),
            level,
            id,
            false,
        ));
        match id {
            Some(id) => expect_ack(&mut publisher, id, ReasonCode::Success, level == 2),
            None => publisher.ping(),
        }
        if level == 2 {
            publisher.send(&Packet::PubRel(PubResp::new(pid(22))));
            assert!(matches!(
                publisher.expect_packet(PROMPT),
                Packet::PubComp(_)
            ));
        }
    }
    let got = collect_publishes(&mut sub, QUIET);
    let sent: Vec<Vec<u8>> = texts.iter().map(|t| t.as_bytes().to_vec()).collect();
    assert_eq!(payloads(&got), sent);
    for p in &got {
        assert_eq!(p.properties.payload_format_indicator, Some(1), "{p:?}");
    }
}

#[test]
fn unflagged_bytes_are_never_checked() {
    // An indicator of 0 (or none) means unspecified bytes (3.3.2.3.2): any payload goes.
    let broker = Broker::start();
    let (mut publisher, mut sub) = pair(&broker, "pf-bin", "pfbin/#");
    for (id, pfi) in [(31, Some(0)), (32, None)] {
        let mut packet = publish_flagged("pfbin/t", NOT_UTF8, 1, Some(id), false);
        if let Packet::Publish(p) = &mut packet {
            p.properties = flagged(pfi);
        }
        publisher.send(&packet);
        expect_ack(&mut publisher, id, ReasonCode::Success, false);
    }
    let got = collect_publishes(&mut sub, QUIET);
    assert_eq!(payloads(&got), [NOT_UTF8.to_vec(), NOT_UTF8.to_vec()]);
    assert_eq!(got[0].properties.payload_format_indicator, Some(0));
}

#[test]
fn a_will_flagged_utf8_that_is_not_gets_connack_0x99_and_no_session() {
    // 3.1.3.2.3: "The Server MAY validate that the Will Message is of the format indicated,
    // and if it is not send a CONNACK with the Reason Code of 0x99 (Payload format invalid)";
    // [MQTT-4.13.2-1] the connection is then closed.
    let broker = Broker::start();
    let will = |payload: &[u8], pfi: Option<u8>| {
        let mut connect = ConnectBuilder::new(V5, "pf-will")
            .clean(false)
            .session_expiry(60);
        connect.0.will = Some(LastWill {
            topic: topic("pfw/t"),
            payload: Bytes::copy_from_slice(payload),
            qos: qos(0),
            retain: false,
            properties: flagged(pfi),
        });
        connect
    };
    let mut refused = RawClient::tcp(broker.addr, V5, "pf-will");
    refused.send(&will(NOT_UTF8, Some(1)).packet());
    let connack = refused.expect_connack();
    assert_eq!(connack.reason, ReasonCode::PayloadFormatInvalid);
    refused.expect_closed(PROMPT);

    // No session was created for the refused CONNECT; a valid will (or unflagged bytes) is
    // accepted.
    let (c, ack) = RawClient::connect_with(broker.addr, will("✓".as_bytes(), Some(1)));
    assert!(!ack.session_present, "the refused CONNECT left no session");
    c.disconnect();
    let (_c, _) = RawClient::connect_with(broker.addr, will(NOT_UTF8, Some(0)));
}
