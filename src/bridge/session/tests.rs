//! `BridgeSession` on its own: what each side is sent for each packet, across outages.

use super::*;
use crate::protocol::{SubAck, TopicName};
use bytes::Bytes;

fn session(rules: &[&str]) -> BridgeSession {
    let rules = rules
        .iter()
        .map(|r| TopicRule::parse(r).expect("rule"))
        .collect();
    BridgeSession::new(rules, ProtocolVersion::V5)
}

fn publish(topic: &str, qos: QoS, packet_id: Option<u16>) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain: true,
        topic: TopicName::try_from(topic).expect("topic"),
        packet_id: packet_id.map(id),
        properties: Properties::default(),
        payload: Bytes::from_static(b"p"),
    })
}

fn ok_connack(session_present: bool) -> ConnAck {
    ConnAck {
        session_present,
        reason: ReasonCode::Success,
        properties: Properties::default(),
    }
}

fn sent_publish(p: &Packet) -> &Publish {
    match p {
        Packet::Publish(p) => p,
        other => panic!("not a PUBLISH: {other:?}"),
    }
}

#[test]
fn a_message_carried_out_is_acknowledged_locally_only_after_the_remote_did() {
    let mut s = session(&["a/# out 1 l/ r/"]);
    let mut sends = Sends::default();
    s.on_local(publish("l/a/x", QoS::AtLeastOnce, Some(7)), &mut sends)
        .expect("carried");
    assert!(sends.local.is_empty(), "no local PUBACK yet");
    let out = sent_publish(&sends.remote[0]);
    assert_eq!(out.topic.as_str(), "r/a/x");
    assert!(out.retain, "the retain flag is kept across");
    let r = out.packet_id.expect("an id at the remote");
    sends.remote.clear();
    s.on_remote(Packet::PubAck(PubResp::new(r)), &mut sends)
        .expect("ack");
    assert_eq!(sends.local, [Packet::PubAck(PubResp::new(id(7)))]);
}

#[test]
fn the_rule_qos_caps_and_a_qos_0_crossing_is_answered_at_once() {
    let mut s = session(&["a/# out 0"]);
    let mut sends = Sends::default();
    s.on_local(publish("a/x", QoS::AtLeastOnce, Some(3)), &mut sends)
        .expect("carried");
    assert_eq!(sent_publish(&sends.remote[0]).qos, QoS::AtMostOnce);
    assert_eq!(sends.local, [Packet::PubAck(PubResp::new(id(3)))]);
}

#[test]
fn a_message_carried_in_is_acknowledged_to_the_remote_after_the_local_session_did() {
    let mut s = session(&["c/# in 2 l/ r/"]);
    let mut sends = Sends::default();
    s.on_remote(publish("r/c/go", QoS::ExactlyOnce, Some(40)), &mut sends)
        .expect("carried");
    assert!(sends.remote.is_empty());
    let local = sent_publish(&sends.local[0]);
    assert_eq!(local.topic.as_str(), "l/c/go");
    let l = local.packet_id.expect("a local id");
    assert_ne!(l, SUBSCRIBE_ID, "never the local SUBSCRIBE's id");
    sends.local.clear();
    s.on_local(Packet::PubRec(PubResp::new(l)), &mut sends)
        .expect("pubrec");
    assert_eq!(sends.remote, [Packet::PubRec(PubResp::new(id(40)))]);
    assert_eq!(sends.local, [Packet::PubRel(PubResp::new(l))]);
    // [MQTT-4.3.3-2] (3.1.1): a resent PUBLISH before PUBREL is answered with PUBREC and
    // not carried on again.
    let mut again = Sends::default();
    s.on_remote(publish("r/c/go", QoS::ExactlyOnce, Some(40)), &mut again)
        .expect("dup");
    assert!(again.local.is_empty());
    assert_eq!(again.remote, [Packet::PubRec(PubResp::new(id(40)))]);
    s.on_remote(Packet::PubRel(PubResp::new(id(40))), &mut again)
        .expect("pubrel");
    assert_eq!(again.remote[1], Packet::PubComp(PubResp::new(id(40))));
}

#[test]
fn an_outage_forgets_what_the_local_session_will_send_again_and_keeps_pubrels() {
    let mut s = session(&["# out 2"]);
    let mut sends = Sends::default();
    s.on_local(publish("a", QoS::ExactlyOnce, Some(1)), &mut sends)
        .expect("a");
    s.on_local(publish("b", QoS::ExactlyOnce, Some(2)), &mut sends)
        .expect("b");
    let ra = sent_publish(&sends.remote[0]).packet_id.expect("id");
    let mut acks = Sends::default();
    s.on_remote(Packet::PubRec(PubResp::new(ra)), &mut acks)
        .expect("pubrec");
    assert_eq!(acks.local, [Packet::PubRec(PubResp::new(id(1)))]);
    s.remote_down();
    let mut resent = Sends::default();
    assert_eq!(s.on_connack(&ok_connack(true), &mut resent), Ok(true));
    assert_eq!(
        resent.remote,
        [Packet::PubRel(PubResp::new(ra))],
        "only the PUBREL"
    );
    s.remote_down();
    let mut fresh = Sends::default();
    assert_eq!(s.on_connack(&ok_connack(false), &mut fresh), Ok(false));
    assert!(
        fresh.remote.is_empty(),
        "a new remote session is owed nothing"
    );
}

#[test]
fn the_remote_subscription_is_no_local_and_retain_as_published() {
    let mut s = session(&["a/# out 1", "b/# in 1 l/ r/", "c/# both 2"]);
    let Ok(Some(Packet::Subscribe(sub))) = s.remote_subscribe() else {
        panic!("a SUBSCRIBE")
    };
    let filters: Vec<&str> = sub
        .subscriptions
        .iter()
        .map(|x| x.filter.as_str())
        .collect();
    assert_eq!(filters, ["r/b/#", "c/#"]);
    // [MQTT-3.8.3-3] (5.0) No Local: what the bridge publishes there is not sent back.
    assert!(sub.subscriptions.iter().all(|x| x.options.no_local));
    assert!(
        sub.subscriptions
            .iter()
            .all(|x| x.options.retain_as_published)
    );
    let mut sends = Sends::default();
    let suback = SubAck {
        packet_id: sub.packet_id,
        properties: Properties::default(),
        reasons: vec![ReasonCode::GrantedQoS1, ReasonCode::GrantedQoS2],
    };
    s.on_remote(Packet::SubAck(suback), &mut sends)
        .expect("suback");
    assert_eq!(s.in_flight_out(), 0, "the SUBSCRIBE's id is free again");
    let Some(Packet::Subscribe(local)) = s.local_subscribe() else {
        panic!("a local SUBSCRIBE")
    };
    let filters: Vec<&str> = local
        .subscriptions
        .iter()
        .map(|x| x.filter.as_str())
        .collect();
    assert_eq!(filters, ["a/#", "c/#"]);
}

#[test]
fn a_refused_connack_and_a_packet_only_clients_send_end_the_link() {
    let mut s = session(&["#"]);
    let mut sends = Sends::default();
    let refused = ConnAck {
        reason: ReasonCode::NotAuthorized,
        ..ok_connack(false)
    };
    assert_eq!(
        s.on_connack(&refused, &mut sends),
        Err(BridgeError::Refused(ReasonCode::NotAuthorized))
    );
    let bad = s.on_remote(Packet::PingReq, &mut sends);
    assert_eq!(bad, Err(BridgeError::Unexpected(PacketType::PingReq)));
}
