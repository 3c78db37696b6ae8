//! Conformance under malformed and forbidden input (MQTT 3.1.1 section 4.8 / 5.0 section 4.13)
//! against the real `ringmq` binary: each bad stream gets its connection closed (5.0: after a
//! DISCONNECT with the matching reason code, if one is sent; never any other packet) while a
//! well-behaved publisher and subscriber on the same broker keep working.

pub mod support;

use ringmq::protocol::{Packet, ProtocolVersion, ReasonCode};
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A publisher and a subscriber on different shards that must keep working.
struct Bystanders {
    publisher: RawClient,
    subscriber: RawClient,
    sent: u32,
}

impl Bystanders {
    fn new(broker: &Broker) -> Self {
        let [p, s] = ids_on_distinct_shards("bystander");
        let mut subscriber = RawClient::connect(broker.addr, V4, &s);
        subscriber.subscribe_ok(1, &[("healthy/t", 1)]);
        let publisher = RawClient::connect(broker.addr, V5, &p);
        let mut this = Self {
            publisher,
            subscriber,
            sent: 0,
        };
        this.exchange();
        this
    }

    fn exchange(&mut self) {
        self.sent += 1;
        let payload = self.sent.to_string();
        self.publisher
            .publish("healthy/t", payload.as_bytes(), 1, false);
        let got = self.subscriber.expect_publish_acked();
        assert_eq!(payload_str(&got), payload, "the bystanders stopped working");
    }
}

/// Sends `bad` on two fresh connections (after a valid CONNECT when `connect_first`), expects
/// each closed - in 5.0 possibly after a DISCONNECT with one of `reasons` - and checks the
/// bystanders before, between and after.
fn refused_while_others_unaffected(
    version: ProtocolVersion,
    connect_first: bool,
    bad: &[u8],
    reasons: &[ReasonCode],
) {
    refused_on(&Broker::start(), version, connect_first, bad, reasons);
}

fn refused_on(
    broker: &Broker,
    version: ProtocolVersion,
    connect_first: bool,
    bad: &[u8],
    reasons: &[ReasonCode],
) {
    refused_on_with(
        broker,
        version,
        connect_first,
        bad,
        Refusal::MaybeDisconnect(reasons),
    );
}

/// How a 5.0 connection must be refused (3.1.1 has no server DISCONNECT: always a bare close).
#[derive(Debug, Clone, Copy)]
enum Refusal<'a> {
    /// A close, possibly after a DISCONNECT with one of these reasons (any when empty).
    MaybeDisconnect(&'a [ReasonCode]),
    /// A DISCONNECT with one of these reasons, then the close; a bare close fails.
    Disconnect(&'a [ReasonCode]),
}

fn refused_on_with(
    broker: &Broker,
    version: ProtocolVersion,
    connect_first: bool,
    bad: &[u8],
    refusal: Refusal<'_>,
) {
    let mut bystanders = Bystanders::new(broker);
    for round in 0..2 {
        let name = format!("bad-{version:?}-{round}");
        let mut client = if connect_first {
            RawClient::connect(broker.addr, version, &name)
        } else {
            RawClient::tcp(broker.addr, version, &name)
        };
        client.send_bytes(bad);
        match refusal {
            _ if version != V5 => client.expect_closed(PROMPT),
            Refusal::MaybeDisconnect(reasons) => {
                let sent = client.expect_closed_maybe_disconnect(PROMPT, reasons);
                let head = &bad[..bad.len().min(8)];
                eprintln!("5.0 refusal of {head:02x?}...: DISCONNECT {sent:?}");
            }
            Refusal::Disconnect(reasons) => client.expect_disconnect_then_close(PROMPT, reasons),
        }
        bystanders.exchange();
    }
}

/// A PUBLISH body: topic bytes, optional packet id, (5.0) empty properties, payload "p".
fn publish_body(version: ProtocolVersion, topic: &[u8], packet_id: Option<u16>) -> Vec<u8> {
    let mut body = (topic.len() as u16).to_be_bytes().to_vec();
    body.extend_from_slice(topic);
    if let Some(id) = packet_id {
        body.extend(id.to_be_bytes());
    }
    if version == V5 {
        body.push(0);
    }
    body.push(b'p');
    body
}

const MALFORMED: &[ReasonCode] = &[ReasonCode::MalformedPacket];
const MALFORMED_OR_PROTOCOL: &[ReasonCode] =
    &[ReasonCode::MalformedPacket, ReasonCode::ProtocolError];

#[test]
fn reserved_fixed_header_flags_close_the_connection() {
    // [MQTT-2.2.2-1] [MQTT-2.2.2-2] (3.1.1) / [MQTT-2.1.3-1] (5.0): wrong reserved flags are
    // malformed. SUBSCRIBE with flags 0000 instead of 0010, and PINGREQ with flags 0001.
    let broker = Broker::start();
    for version in [V4, V5] {
        let mut sub_body = vec![0, 1];
        if version == V5 {
            sub_body.push(0);
        }
        sub_body.extend([0, 1, b't', 0]);
        refused_on(&broker, version, true, &frame(0x80, &sub_body), MALFORMED);
        refused_on(&broker, version, true, &[0xC1, 0x00], MALFORMED);
    }
}

#[test]
fn a_five_byte_remaining_length_closes_the_connection() {
    // [MQTT-1.5.5-1] (5.0) / 3.1.1 section 2.2.3: at most four bytes of remaining length.
    for version in [V4, V5] {
        refused_while_others_unaffected(
            version,
            true,
            &[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F],
            MALFORMED,
        );
    }
}

#[test]
fn ill_formed_utf8_in_a_topic_closes_the_connection() {
    // [MQTT-1.5.3-1] (3.1.1) / [MQTT-1.5.4-1] (5.0): ill-formed UTF-8 is malformed.
    let broker = Broker::start();
    for version in [V4, V5] {
        for topic in [&b"a/\xFF"[..], b"\xC0\xAF", b"\xED\xA0\x80"] {
            refused_on(
                &broker,
                version,
                true,
                &frame(0x30, &publish_body(version, topic, None)),
                MALFORMED,
            );
        }
    }
}

#[test]
fn a_null_character_in_a_topic_closes_the_connection() {
    // [MQTT-1.5.3-2] (3.1.1) / [MQTT-1.5.4-2] (5.0): U+0000 is malformed.
    for version in [V4, V5] {
        refused_while_others_unaffected(
            version,
            true,
            &frame(0x30, &publish_body(version, b"a\0b", None)),
            MALFORMED,
        );
    }
}

#[test]
fn a_wildcard_in_a_publish_topic_closes_the_connection() {
    // [MQTT-3.3.2-2] the topic name of a PUBLISH must not contain wildcards (5.0: 0x90 Topic
    // Name invalid is also a fitting reason).
    let broker = Broker::start();
    let reasons = &[
        ReasonCode::MalformedPacket,
        ReasonCode::ProtocolError,
        ReasonCode::TopicNameInvalid,
    ];
    for version in [V4, V5] {
        for topic in [&b"a/+"[..], b"a/#", b"#", b"+"] {
            refused_on(
                &broker,
                version,
                true,
                &frame(0x30, &publish_body(version, topic, None)),
                reasons,
            );
        }
    }
}

#[test]
fn packet_identifier_0_closes_the_connection() {
    // [MQTT-2.3.1-1] (3.1.1) / [MQTT-2.2.1-3] (5.0): QoS > 0 PUBLISH, SUBSCRIBE and
    // UNSUBSCRIBE need a non-zero packet identifier.
    let broker = Broker::start();
    for version in [V4, V5] {
        let publish = frame(0x32, &publish_body(version, b"t", Some(0)));
        refused_on(&broker, version, true, &publish, MALFORMED_OR_PROTOCOL);
        let mut sub_body = vec![0, 0];
        if version == V5 {
            sub_body.push(0);
        }
        sub_body.extend([0, 1, b't', 0]);
        refused_on(
            &broker,
            version,
            true,
            &frame(0x82, &sub_body),
            MALFORMED_OR_PROTOCOL,
        );
    }
}

#[test]
fn a_qos_3_publish_closes_the_connection_after_disconnect_0x81_in_5_0() {
    // [MQTT-3.3.1-4] a PUBLISH must not have both QoS bits set: malformed. 5.0 names the
    // reason, DISCONNECT 0x81 Malformed Packet before the close [MQTT-4.13.1-1]; 3.1.1 just
    // closes.
    let broker = Broker::start();
    for version in [V4, V5] {
        let bad = frame(0x36, &publish_body(version, b"t", Some(1)));
        refused_on_with(&broker, version, true, &bad, Refusal::Disconnect(MALFORMED));
    }
}

#[test]
fn dup_on_a_qos_0_publish_closes_the_connection() {
    // [MQTT-3.3.1-2] DUP must be 0 for QoS 0.
    for version in [V4, V5] {
        refused_while_others_unaffected(
            version,
            true,
            &frame(0x38, &publish_body(version, b"t", None)),
            MALFORMED_OR_PROTOCOL,
        );
    }
}

#[test]
fn a_packet_before_connect_is_refused_without_processing() {
    // [MQTT-3.1.0-1] PUBLISH and SUBSCRIBE before CONNECT: close, nothing processed.
    for version in [V4, V5] {
        refused_while_others_unaffected(
            version,
            false,
            &frame(0x30, &publish_body(V4, b"healthy/t", None)),
            MALFORMED_OR_PROTOCOL,
        );
    }
}

/// Sends a CONNECT the server must refuse and expects the close, optionally after an error
/// CONNACK (never a success).
fn connect_refused(version: ProtocolVersion, bad: &[u8]) {
    let broker = Broker::start();
    let mut bystanders = Bystanders::new(&broker);
    let mut client = RawClient::tcp(broker.addr, version, "bad-connect");
    client.send_bytes(bad);
    match client.recv(PROMPT) {
        Recv::Closed => {}
        Recv::Packet(Packet::ConnAck(c)) if c.reason.is_error() => client.expect_closed(PROMPT),
        other => panic!("expected the close (or an error CONNACK), got {other:?}"),
    }
    bystanders.exchange();
}

#[test]
fn a_connect_with_the_reserved_flag_set_is_refused() {
    // [MQTT-3.1.2-3] the reserved connect flag must be 0, otherwise disconnect.
    connect_refused(
        V4,
        &[
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x03, 0, 0, 0, 1, b'x',
        ],
    );
}

#[test]
fn a_connect_with_an_unknown_protocol_name_is_refused() {
    // [MQTT-3.1.2-1] a protocol name other than "MQTT": the server may disconnect without
    // CONNACK.
    connect_refused(
        V4,
        &[
            0x10, 13, 0, 4, b'M', b'Q', b'T', b'X', 4, 0x02, 0, 0, 0, 1, b'x',
        ],
    );
}

#[test]
fn a_connect_with_will_qos_3_is_refused() {
    // [MQTT-3.1.2-14] Will QoS must not be 3.
    let mut bytes = vec![
        0x10, 0, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x1E, 0, 0, 0, 1, b'x',
    ];
    bytes.extend([0, 1, b'w', 0, 1, b'!']);
    bytes[1] = (bytes.len() - 2) as u8;
    connect_refused(V4, &bytes);
}

const SMALL_LIMIT: &str = "[mqtt]\nmax_packet_size = 1024\n";

#[test]
fn a_packet_over_max_packet_size_closes_the_connection() {
    // 5.0 section 3.2.2.3.6 / 4.13: a packet larger than the server's Maximum Packet Size is
    // refused with DISCONNECT 0x95 (or a close); 3.1.1 connections are closed too.
    let broker = Broker::start_with_config(SMALL_LIMIT);
    for version in [V4, V5] {
        let name = format!("big-{version:?}");
        let (mut client, connack) =
            RawClient::connect_with(broker.addr, ConnectBuilder::new(version, &name));
        if version == V5 {
            assert_eq!(
                connack.properties.maximum_packet_size,
                Some(1024),
                "the CONNACK announces the configured Maximum Packet Size"
            );
        }
        // A packet just under the limit is fine.
        client.publish("big/t", &[7u8; 900], 1, false);
        let big = encode_bytes(
            &publish_packet("big/t", &[7u8; 2000], 0, None, false),
            version,
        );
        refused_on(&broker, version, true, &big, &[ReasonCode::PacketTooLarge]);
        client.ping();
    }
}

#[test]
fn an_oversized_remaining_length_is_refused_before_the_body_arrives() {
    // Only the fixed header of a 200 MB PUBLISH is sent: the server must refuse it from the
    // header alone instead of waiting for (or buffering) the body.
    let broker = Broker::start_with_config(SMALL_LIMIT);
    for version in [V4, V5] {
        refused_on(
            &broker,
            version,
            true,
            &[0x30, 0x80, 0x80, 0x80, 0x60],
            &[ReasonCode::PacketTooLarge],
        );
    }
}

#[test]
fn garbage_bytes_after_connect_close_the_connection_and_the_broker_survives() {
    // 4.8 (3.1.1) / 4.13 (5.0): an unparseable stream closes only that connection.
    let mut broker = Broker::start();
    let mut seed: u32 = 0x1234_5678;
    for case in 0..20 {
        let mut bytes = vec![0u8; 64];
        for b in bytes.iter_mut() {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            *b = seed as u8;
        }
        // Packet type 0 (reserved) guarantees the stream is invalid from its first byte.
        bytes[0] &= 0x0F;
        let version = if case % 2 == 0 { V4 } else { V5 };
        refused_on(&broker, version, true, &bytes, &[]);
    }
    broker.assert_alive();
}

#[test]
fn a_3_1_1_connect_with_a_password_but_no_user_name_is_refused() {
    // [MQTT-3.1.2-22] 3.1.1: if the User Name Flag is 0, the Password Flag must be 0.
    let mut bytes = vec![
        0x10, 0, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x42, 0, 0, 0, 1, b'x',
    ];
    bytes.extend([0, 2, b'p', b'w']);
    bytes[1] = (bytes.len() - 2) as u8;
    connect_refused(V4, &bytes);
}

#[test]
fn auth_without_an_authentication_method_is_a_protocol_error() {
    // 5.0 section 4.12: AUTH when CONNECT had no Authentication Method is a
    // Protocol Error; 3.1.1 has no packet type 15 (malformed).
    refused_while_others_unaffected(
        V5,
        true,
        &[0xF0, 0x00],
        &[ReasonCode::ProtocolError, ReasonCode::MalformedPacket],
    );
    refused_while_others_unaffected(V4, true, &[0xF0, 0x00], &[]);
}

#[test]
fn an_empty_topic_name_in_a_3_1_1_publish_closes_the_connection() {
    // [MQTT-4.7.3-1] topic names are at least one character; 5.0 allows empty only with a
    // Topic Alias (none here: Protocol Error).
    for version in [V4, V5] {
        refused_while_others_unaffected(
            version,
            true,
            &frame(0x30, &publish_body(version, b"", None)),
            &[
                ReasonCode::ProtocolError,
                ReasonCode::TopicNameInvalid,
                ReasonCode::MalformedPacket,
            ],
        );
    }
}

#[test]
fn a_connect_whose_will_topic_has_a_wildcard_is_refused() {
    // 3.1.1 section 3.1.3.3: the Will Topic is a topic name, so no wildcards
    // [MQTT-3.3.2-2].
    let mut bytes = vec![
        0x10, 0, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x06, 0, 0, 0, 1, b'x',
    ];
    bytes.extend([0, 3, b'w', b'/', b'#', 0, 1, b'!']);
    bytes[1] = (bytes.len() - 2) as u8;
    connect_refused(V4, &bytes);
}

#[test]
fn a_5_0_connect_with_receive_maximum_0_is_refused() {
    // 5.0 section 3.1.2.11.3: a Receive Maximum of 0 is a Protocol Error.
    let mut bytes = vec![
        0x10, 0, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 0, 3, 0x21, 0, 0, 0, 1, b'x',
    ];
    bytes[1] = (bytes.len() - 2) as u8;
    connect_refused(V5, &bytes);
}

/// A 5.0 QoS 0 PUBLISH to `t` carrying the raw property bytes `props`.
fn v5_publish_with_props(props: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 1, b't', props.len() as u8];
    body.extend_from_slice(props);
    body.push(b'p');
    frame(0x30, &body)
}

#[test]
fn a_client_publish_with_a_subscription_identifier_gets_disconnect_0x82_and_is_not_delivered() {
    // [MQTT-3.3.4-6] "A PUBLISH packet sent from a Client to a Server MUST NOT contain a
    // Subscription Identifier"; breaking it is a Protocol Error: DISCONNECT 0x82
    // [MQTT-4.13.1-1]. The message reaches no subscriber.
    let broker = Broker::start();
    let mut sub = RawClient::connect(broker.addr, V5, &id_on_shard("subid-sub", 1));
    sub.subscribe_ok(1, &[("t", 0)]);
    let bad = v5_publish_with_props(&[0x0B, 0x05]);
    let refusal = Refusal::Disconnect(&[ReasonCode::ProtocolError]);
    refused_on_with(&broker, V5, true, &bad, refusal);
    sub.expect_nothing(QUIET);
}

#[test]
fn a_duplicated_property_is_a_protocol_error() {
    // 5.0 section 2.2.2.2: including a property more than once (unless allowed, like User
    // Property) is a Protocol Error.
    refused_while_others_unaffected(
        V5,
        true,
        &v5_publish_with_props(&[0x01, 0x00, 0x01, 0x00]),
        MALFORMED_OR_PROTOCOL,
    );
}

#[test]
fn a_property_not_allowed_in_publish_is_refused() {
    // 5.0 section 2.2.2.2 / table 2-4: Session Expiry Interval (0x11) is not a PUBLISH
    // property; the packet is malformed or a protocol error.
    refused_while_others_unaffected(
        V5,
        true,
        &v5_publish_with_props(&[0x11, 0, 0, 0, 5]),
        MALFORMED_OR_PROTOCOL,
    );
}

#[test]
fn a_response_topic_with_a_wildcard_is_refused() {
    // [MQTT-3.3.2-14] the Response Topic is a topic name: no wildcards.
    refused_while_others_unaffected(
        V5,
        true,
        &v5_publish_with_props(&[0x08, 0, 3, b'a', b'/', b'#']),
        &[
            ReasonCode::MalformedPacket,
            ReasonCode::ProtocolError,
            ReasonCode::TopicNameInvalid,
        ],
    );
}

#[test]
fn an_invalid_unsubscribe_filter_closes_the_connection() {
    // [MQTT-4.7.1-2] the same filter rules apply to UNSUBSCRIBE; [MQTT-3.10.3-2] it needs at
    // least one filter.
    let broker = Broker::start();
    for version in [V4, V5] {
        let props: &[u8] = if version == V5 { &[0] } else { &[] };
        let mut bad_filter = vec![0, 1];
        bad_filter.extend_from_slice(props);
        bad_filter.extend([0, 3, b'a', b'#', b'b']);
        refused_on(
            &broker,
            version,
            true,
            &frame(0xA2, &bad_filter),
            &[
                ReasonCode::MalformedPacket,
                ReasonCode::ProtocolError,
                ReasonCode::TopicFilterInvalid,
            ],
        );
        let mut empty = vec![0, 1];
        empty.extend_from_slice(props);
        refused_on(
            &broker,
            version,
            true,
            &frame(0xA2, &empty),
            MALFORMED_OR_PROTOCOL,
        );
    }
}
