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

use ringmq::protocol::packet::{PubResp, Publish};
use ringmq::protocol::{Packet, ProtocolVersion, ReasonCode};
use support::*;

const V5: ProtocolVersion = ProtocolVersion::V5;

/// A lone continuation byte: not well-formed UTF-8.
const NOT_UTF8: &[u8] = b"caf\x80";

/// A PUBLISH with Payload Format Indicator `pfi` (1: the payload is UTF-8).
fn flagged(topic_name: &str, payload: &[u8], pfi: Option<u8>) -> PublishBuilder {
    PublishBuilder::new(topic_name, payload).properties(|p| p.payload_format_indicator = pfi)
}

/// A publisher and a QoS 2 subscriber of `filter`, on different shards.
fn pair(broker: &Broker, prefix: &str, filter: &str) -> (RawClient, RawClient) {
    let [pub_id, sub_id] = ids_on_distinct_shards(prefix);
    let mut sub = RawClient::connect(broker.addr, V5, &sub_id);
    sub.subscribe_ok(1, &[(filter, 2)]);
    let publisher = RawClient::connect(broker.addr, V5, &pub_id);
    (publisher, sub)
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
    publisher.send(
        &flagged("pf1/t", NOT_UTF8, Some(1))
            .qos(1, 7)
            .retain()
            .packet(),
    );
    let puback = publisher.expect_puback(7);
    assert_eq!(
        puback.reason,
        ReasonCode::PayloadFormatInvalid,
        "PUBACK reason"
    );
    publisher.send(&flagged("pf1/t", b"fine", Some(1)).qos(1, 8).packet());
    assert_eq!(publisher.expect_puback(8).reason, ReasonCode::Success);

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
    publisher.send(&flagged("pf2/t", NOT_UTF8, Some(1)).qos(2, 9).packet());
    let pubrec = publisher.expect_pubrec(9);
    assert_eq!(
        pubrec.reason,
        ReasonCode::PayloadFormatInvalid,
        "PUBREC reason"
    );
    let valid = flagged("pf2/t", "grüße".as_bytes(), Some(1)).qos(2, 9);
    publisher.send(&valid.packet());
    assert_eq!(publisher.expect_pubrec(9).reason, ReasonCode::Success);
    publisher.send(&Packet::PubRel(PubResp::new(pid(9))));
    let pubcomp = publisher.expect_pubcomp(9);
    assert_eq!(
        pubcomp.reason,
        ReasonCode::Success,
        "the valid message owns id 9"
    );

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
    publisher.send(&flagged("pf0/t", NOT_UTF8, Some(1)).packet());
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
        let publish = flagged("pfok/t", text.as_bytes(), Some(1));
        let id = 20 + u16::from(level);
        match level {
            0 => {
                publisher.send(&publish.packet());
                publisher.ping();
            }
            1 => {
                publisher.send(&publish.qos(1, id).packet());
                assert_eq!(publisher.expect_puback(id).reason, ReasonCode::Success);
            }
            _ => {
                publisher.send(&publish.qos(2, id).packet());
                assert_eq!(publisher.expect_pubrec(id).reason, ReasonCode::Success);
                publisher.send(&Packet::PubRel(PubResp::new(pid(id))));
                publisher.expect_pubcomp(id);
            }
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
        publisher.send(&flagged("pfbin/t", NOT_UTF8, pfi).qos(1, id).packet());
        assert_eq!(publisher.expect_puback(id).reason, ReasonCode::Success);
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
        ConnectBuilder::new(V5, "pf-will")
            .clean(false)
            .session_expiry(60)
            .will("pfw/t", payload, 0, false)
            .will_properties(|p| p.payload_format_indicator = pfi)
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
