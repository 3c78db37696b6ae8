//! Unit tests of the session state machine: constructed packets in, actions out. This file
//! holds the shared builders and the life-cycle tests (CONNECT, DISCONNECT, persistence);
//! each concern has its file beside it.

mod inbound;
mod outbound;
mod subscriptions;

use super::*;
use crate::protocol::{
    MqttString, Properties, PropertyValues, PubResp, Publish, Subscribe, Subscription,
    SubscriptionOptions, TopicName, Unsubscribe,
};
use bytes::Bytes;

fn connect(version: ProtocolVersion, clean_start: bool) -> Connect {
    let mut properties = Properties::default();
    if version == ProtocolVersion::V5 && !clean_start {
        properties.session_expiry_interval = Some(3600);
    }
    Connect {
        bridge: false,
        version,
        clean_start,
        keep_alive: 30,
        client_id: MqttString::try_from("c1").expect("valid id"),
        will: None,
        username: None,
        password: None,
        properties,
    }
}

/// The reason of the close (with the will published) among `out`, if there is one.
fn closed_with(out: &[Action]) -> Option<&Reason> {
    out.iter().find_map(|a| match a {
        Action::Close {
            reason,
            publish_will: true,
        } => reason.as_ref(),
        _ => None,
    })
}

fn session(version: ProtocolVersion, clean: bool, limits: Limits) -> Session {
    Session::new("c1".into(), &connect(version, clean), limits)
}

fn message(topic: &str, qos: QoS) -> Message {
    Message {
        topic: TopicName::try_from(topic).expect("valid topic"),
        payload: Bytes::from_static(b"hello"),
        qos,
        retain: false,
        properties: None,
        expires_at: None,
        received_at: None,
    }
}

fn id(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero")
}

fn publish(qos: QoS, packet_id: Option<u16>) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: false,
        topic: TopicName::try_from("a/b").expect("valid topic"),
        packet_id: packet_id.map(id),
        properties: Properties::default(),
        payload: Bytes::from_static(b"x"),
    })
}

fn routed(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::Route(_)))
        .count()
}

fn sent_id(delivery: Delivery) -> PacketId {
    match delivery {
        Delivery::Send {
            packet_id: Some(id),
            ..
        } => id,
        other => panic!("expected a QoS>0 send, got {other:?}"),
    }
}

#[test]
fn normal_disconnect_discards_the_will_mqtt_3_14_4_3() {
    let mut c = connect(ProtocolVersion::V4, true);
    c.will = Some(LastWill {
        topic: TopicName::try_from("will").expect("valid"),
        payload: Bytes::from_static(b"bye"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::default(),
    });
    let mut s = Session::new("c1".into(), &c, Limits::default());
    let mut out = Vec::new();
    s.on_packet(
        Packet::Disconnect(Disconnect::new(ReasonCode::Success)),
        &mut out,
    );
    assert_eq!(
        out,
        vec![Action::Disconnected {
            code: ReasonCode::Success,
            publish_will: false
        }]
    );
    assert_eq!(s.detach(true), None, "the will is gone");

    let mut s = Session::new("c1".into(), &c, Limits::default());
    let will = s.detach(true).expect("will on abnormal loss");
    assert_eq!(will.topic.as_str(), "will");
}

#[test]
fn second_connect_is_a_protocol_violation_mqtt_3_1_0_2() {
    let mut s = session(ProtocolVersion::V4, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(
        Packet::Connect(Box::new(connect(ProtocolVersion::V4, true))),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        closed_with(&out).map(|r| r.code),
        Some(ReasonCode::ProtocolError)
    );
}

#[test]
fn v5_persistence_follows_session_expiry_not_clean_start() {
    let mut c = connect(ProtocolVersion::V5, false);
    c.properties.session_expiry_interval = None;
    assert!(!Session::wants_persistence(&c));
    c.properties.session_expiry_interval = Some(10);
    c.clean_start = true;
    assert!(Session::wants_persistence(&c));
    assert!(Session::wants_persistence(&connect(
        ProtocolVersion::V4,
        false
    )));
    assert!(!Session::wants_persistence(&connect(
        ProtocolVersion::V4,
        true
    )));
}

#[test]
fn disconnect_cannot_raise_a_session_expiry_of_zero_3_14_2_2_2() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut disconnect = Disconnect::new(ReasonCode::Success);
    disconnect.properties.session_expiry_interval = Some(60);
    let mut out = Vec::new();
    s.on_packet(Packet::Disconnect(disconnect), &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        closed_with(&out).map(|r| r.code),
        Some(ReasonCode::ProtocolError)
    );
    assert!(!s.is_persistent());
}
