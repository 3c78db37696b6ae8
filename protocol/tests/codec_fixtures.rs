//! Byte fixtures: every packet type in every protocol version (3.1, 3.1.1, 5.0), each decoded
//! from annotated bytes and encoded back to exactly those bytes.

pub mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use ringmq_protocol::ProtocolVersion::{self, V3, V4, V5};
use ringmq_protocol::packet::{
    Auth, ConnAck, Connect, Disconnect, PubResp, Publish, SubAck, Subscribe, Subscription,
    SubscriptionOptions, UnsubAck, Unsubscribe,
};
use ringmq_protocol::{
    DecodeError, MqttString, Packet, PacketId, Properties, QoS, ReasonCode, TopicFilter, TopicName,
    decode, encoded_len,
};

fn assert_fixture(bytes: &[u8], version: ProtocolVersion, expected: &Packet) {
    assert_eq!(
        &decode_one(bytes, version),
        expected,
        "{version:?} decode of {bytes:02X?}"
    );
    assert_eq!(
        &encode_exact(expected, version)[..],
        bytes,
        "{version:?} encode of {expected:?}"
    );
    assert_eq!(encoded_len(expected, version), bytes.len());
}

fn id(v: u16) -> PacketId {
    PacketId::new(v).expect("non-zero")
}

fn filter_a() -> TopicFilter {
    TopicFilter::try_from("a").expect("valid filter")
}

#[test]
fn connect_in_every_version_mqtt_3_1_2_1_and_3_1_2_2() {
    let cases: [(ProtocolVersion, &[u8]); 3] = [
        // "MQIsdp" level 3 | clean session | keep alive 60 | client id "a"
        (
            V3,
            &[
                0x10, 0x0F, 0, 6, b'M', b'Q', b'I', b's', b'd', b'p', 3, 0x02, 0, 60, 0, 1, b'a',
            ],
        ),
        // "MQTT" level 4 | clean session | keep alive 60 | client id "a"
        (
            V4,
            &[
                0x10, 0x0D, 0, 4, b'M', b'Q', b'T', b'T', 4, 0x02, 0, 60, 0, 1, b'a',
            ],
        ),
        // "MQTT" level 5 | clean start | keep alive 60 | no properties | client id "a"
        (
            V5,
            &[
                0x10, 0x0E, 0, 4, b'M', b'Q', b'T', b'T', 5, 0x02, 0, 60, 0, 0, 1, b'a',
            ],
        ),
    ];
    for (version, bytes) in cases {
        let expected = Packet::Connect(Box::new(Connect {
            bridge: false,
            version,
            clean_start: true,
            keep_alive: 60,
            client_id: MqttString::try_from("a").expect("valid"),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        }));
        // Whatever the connection's version, CONNECT is read in its own.
        for connection_version in VERSIONS {
            assert_fixture(bytes, connection_version, &expected);
        }
    }
}

#[test]
fn connack_in_every_version() {
    let accepted = |session_present| {
        Packet::ConnAck(ConnAck {
            session_present,
            reason: ReasonCode::Success,
            properties: Properties::default(),
        })
    };
    // 3.1: unused byte | return code 0
    assert_fixture(&[0x20, 0x02, 0x00, 0x00], V3, &accepted(false));
    // 3.1.1: session present [MQTT-3.2.2-2] | return code 0
    assert_fixture(&[0x20, 0x02, 0x01, 0x00], V4, &accepted(true));
    // 5.0: session present | Success | property length 0
    assert_fixture(&[0x20, 0x03, 0x01, 0x00, 0x00], V5, &accepted(true));
}

#[test]
fn publish_in_every_version() {
    let expected = Packet::Publish(Publish {
        dup: false,
        qos: QoS::ExactlyOnce,
        retain: true,
        topic: TopicName::try_from("t").expect("valid"),
        packet_id: Some(id(9)),
        properties: Properties::default(),
        payload: Bytes::from_static(b"x"),
    });
    // QoS 2 + RETAIN | topic "t" | packet id 9 | payload "x"
    let old = [0x35, 0x06, 0, 1, b't', 0, 9, b'x'];
    assert_fixture(&old, V3, &expected);
    assert_fixture(&old, V4, &expected);
    // 5.0 adds the property length after the packet id (3.3.2.3).
    assert_fixture(&[0x35, 0x07, 0, 1, b't', 0, 9, 0, b'x'], V5, &expected);
}

#[test]
fn acknowledgements_in_every_version() {
    let ack = || PubResp::new(id(9));
    for version in VERSIONS {
        assert_fixture(&[0x40, 0x02, 0, 9], version, &Packet::PubAck(ack()));
        assert_fixture(&[0x50, 0x02, 0, 9], version, &Packet::PubRec(ack()));
        // PUBREL flags 0b0010 [MQTT-3.6.1-1]
        assert_fixture(&[0x62, 0x02, 0, 9], version, &Packet::PubRel(ack()));
        assert_fixture(&[0x70, 0x02, 0, 9], version, &Packet::PubComp(ack()));
    }
}

#[test]
fn subscribe_in_every_version() {
    let expected = Packet::Subscribe(Subscribe {
        packet_id: id(10),
        properties: Properties::default(),
        subscriptions: vec![Subscription {
            filter: filter_a(),
            options: SubscriptionOptions {
                qos: QoS::AtLeastOnce,
                ..SubscriptionOptions::default()
            },
        }],
    });
    // flags 0b0010 [MQTT-3.8.1-1] | packet id 10 | filter "a" | QoS 1
    let old = [0x82, 0x06, 0, 10, 0, 1, b'a', 0x01];
    assert_fixture(&old, V3, &expected);
    assert_fixture(&old, V4, &expected);
    assert_fixture(&[0x82, 0x07, 0, 10, 0, 0, 1, b'a', 0x01], V5, &expected);
}

#[test]
fn suback_in_every_version() {
    let expected = Packet::SubAck(SubAck {
        packet_id: id(10),
        properties: Properties::default(),
        reasons: vec![ReasonCode::GrantedQoS1],
    });
    assert_fixture(&[0x90, 0x03, 0, 10, 0x01], V3, &expected);
    assert_fixture(&[0x90, 0x03, 0, 10, 0x01], V4, &expected);
    assert_fixture(&[0x90, 0x04, 0, 10, 0x00, 0x01], V5, &expected);
}

#[test]
fn unsubscribe_in_every_version() {
    let expected = Packet::Unsubscribe(Unsubscribe {
        packet_id: id(10),
        properties: Properties::default(),
        filters: vec![filter_a()],
    });
    // flags 0b0010 [MQTT-3.10.1-1] | packet id 10 | filter "a"
    assert_fixture(&[0xA2, 0x05, 0, 10, 0, 1, b'a'], V3, &expected);
    assert_fixture(&[0xA2, 0x05, 0, 10, 0, 1, b'a'], V4, &expected);
    assert_fixture(&[0xA2, 0x06, 0, 10, 0, 0, 1, b'a'], V5, &expected);
}

#[test]
fn unsuback_in_every_version() {
    let expected = |reasons| {
        Packet::UnsubAck(UnsubAck {
            packet_id: id(10),
            properties: Properties::default(),
            reasons,
        })
    };
    // 3.1 / 3.1.1: the packet id only.
    assert_fixture(&[0xB0, 0x02, 0, 10], V3, &expected(Vec::new()));
    assert_fixture(&[0xB0, 0x02, 0, 10], V4, &expected(Vec::new()));
    // 5.0: property length 0 | one reason code per filter (3.11.3).
    assert_fixture(
        &[0xB0, 0x04, 0, 10, 0, 0x00],
        V5,
        &expected(vec![ReasonCode::Success]),
    );
}

#[test]
fn ping_and_disconnect_in_every_version() {
    for version in VERSIONS {
        assert_fixture(&[0xC0, 0x00], version, &Packet::PingReq);
        assert_fixture(&[0xD0, 0x00], version, &Packet::PingResp);
        let normal = Packet::Disconnect(Disconnect::new(ReasonCode::Success));
        assert_fixture(&[0xE0, 0x00], version, &normal);
    }
}

#[test]
fn auth_only_in_v5_mqtt_3_15() {
    let expected = Packet::Auth(Auth {
        reason: ReasonCode::ReAuthenticate,
        properties: Properties::default(),
    });
    assert_fixture(&[0xF0, 0x01, 0x19], V5, &expected);
    for version in [V3, V4] {
        let mut buf = BytesMut::from(&[0xF0, 0x01, 0x19][..]);
        assert_eq!(
            decode(&mut buf, version, usize::MAX),
            Err(DecodeError::PacketNotInVersion)
        );
    }
}
