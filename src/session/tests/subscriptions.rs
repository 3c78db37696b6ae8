//! Tests of SUBSCRIBE and UNSUBSCRIBE: granted QoS, shared subscription rules, UNSUBACK
//! reasons, acknowledgements over the client's Maximum Packet Size, filters too deep.

use super::*;
use crate::session::subscriptions::FILTER_TOO_DEEP;

fn subscribe_to(filters: &[String]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: id(1),
        properties: Properties::default(),
        subscriptions: filters
            .iter()
            .map(|f| Subscription {
                filter: TopicFilter::try_from(f.as_str()).expect("valid filter"),
                options: SubscriptionOptions::default(),
            })
            .collect(),
    })
}

#[test]
fn suback_grants_the_requested_qos_per_filter_in_order() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let sub = |f: &str, qos| Subscription {
        filter: TopicFilter::try_from(f).expect("valid filter"),
        options: SubscriptionOptions {
            qos,
            ..SubscriptionOptions::default()
        },
    };
    let mut out = Vec::new();
    s.on_packet(
        Packet::Subscribe(Subscribe {
            packet_id: id(1),
            properties: Properties::default(),
            subscriptions: vec![
                sub("a/+", QoS::AtLeastOnce),
                sub("$share/g/a", QoS::ExactlyOnce),
                sub("b", QoS::AtMostOnce),
            ],
        }),
        &mut out,
    );
    match &out[0] {
        Action::Send(Packet::SubAck(ack)) => assert_eq!(
            ack.reasons,
            vec![
                ReasonCode::GrantedQoS1,
                ReasonCode::GrantedQoS2,
                ReasonCode::GRANTED_QOS0
            ]
        ),
        other => panic!("SUBACK must come first, got {other:?}"),
    }
    assert_eq!(out.len(), 4);
    assert!(matches!(&out[1], Action::Subscribe { is_new: true, .. }));
    assert_eq!(
        s.subscription(&TopicFilter::try_from("a/+").expect("valid")),
        Some(SubscriptionOptions {
            qos: QoS::AtLeastOnce,
            ..SubscriptionOptions::default()
        })
    );
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error_mqtt_3_8_3_4() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(
        Packet::Subscribe(Subscribe {
            packet_id: id(1),
            properties: Properties::default(),
            subscriptions: vec![Subscription {
                filter: TopicFilter::try_from("$share/g/a").expect("valid filter"),
                options: SubscriptionOptions {
                    no_local: true,
                    ..SubscriptionOptions::default()
                },
            }],
        }),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        closed_with(&out).map(|r| r.code),
        Some(ReasonCode::ProtocolError)
    );
}

#[test]
fn unsubscribe_reports_missing_subscriptions_in_v5() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut out = Vec::new();
    s.on_packet(
        Packet::Unsubscribe(Unsubscribe {
            packet_id: id(2),
            properties: Properties::default(),
            filters: vec![TopicFilter::try_from("x").expect("valid")],
        }),
        &mut out,
    );
    match out.as_slice() {
        [Action::Send(Packet::UnsubAck(ack))] => {
            assert_eq!(ack.reasons, vec![ReasonCode::NoSubscriptionExisted])
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn a_filter_too_deep_is_refused_with_a_reason_string() {
    let mut s = session(ProtocolVersion::V5, true, Limits::default());
    let mut out = Vec::new();
    let deep = vec!["a/".repeat(crate::trie::MAX_LEVELS) + "a"];
    s.on_packet(subscribe_to(&deep), &mut out);
    let Some(Action::Send(Packet::SubAck(ack))) = out.first() else {
        panic!("expected a SUBACK, got {out:?}");
    };
    assert_eq!(ack.reasons, vec![ReasonCode::TopicFilterInvalid]);
    assert_eq!(ack.properties.reason_string, Some(FILTER_TOO_DEEP));
    out.clear();
    s.on_packet(subscribe_to(&["ok".to_string()]), &mut out);
    let Some(Action::Send(Packet::SubAck(ack))) = out.first() else {
        panic!("expected a SUBACK, got {out:?}");
    };
    assert!(ack.properties.is_empty(), "no Reason String on success");
}
