//! Shared subscriptions (`$share/{group}/{filter}`, MQTT 5.0 section 4.8.2) against the real
//! `ringmq` binary: each message goes to one member, spread over members on both shards, and
//! no QoS 1/2 message is lost when a member leaves, goes offline or stalls. Messages are
//! counted by distinct payload.

pub mod support;

use ringmq::protocol::packet::{PubResp, SubscriptionOptions};
use ringmq::protocol::{Packet, ProtocolVersion, QoS, ReasonCode};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

fn payloads(range: std::ops::Range<u32>) -> BTreeSet<String> {
    range.map(|i| i.to_string()).collect()
}

/// Reads PUBLISHes, acknowledging each as its QoS asks, until `want` distinct payloads are in
/// `got` or `within` passes, then until nothing arrives for a short while. Returns every
/// payload in arrival order (duplicates included, so a test can check there are none).
fn receive_acking(
    client: &mut RawClient,
    got: &mut Vec<String>,
    want: usize,
    within: Duration,
) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut arrived = Vec::new();
    loop {
        let distinct: BTreeSet<&String> = got.iter().collect();
        let now = Instant::now();
        let wait = if distinct.len() >= want || now >= deadline {
            Duration::from_millis(150)
        } else {
            deadline - now
        };
        match client.recv(wait) {
            Recv::Packet(Packet::Publish(p)) => {
                // [MQTT-3.3.1-9] live delivery to an established subscription: RETAIN 0.
                assert!(!p.retain, "{}: {p:?}", client.name);
                acknowledge(client, &p);
                got.push(payload_str(&p));
                arrived.push(payload_str(&p));
            }
            Recv::Packet(Packet::PubRel(r)) => {
                client.send(&Packet::PubComp(PubResp::new(r.packet_id)));
            }
            Recv::Packet(Packet::UnsubAck(_)) => {}
            Recv::Timeout if distinct.len() >= want || Instant::now() >= deadline => {
                return arrived;
            }
            Recv::Timeout => {}
            other => panic!("{}: expected PUBLISH, got {other:?}", client.name),
        }
    }
}

/// PUBACK for QoS 1, PUBREC for QoS 2 (the PUBREL is answered by `receive_acking`).
fn acknowledge(client: &mut RawClient, publish: &ringmq::protocol::packet::Publish) {
    match (publish.qos, publish.packet_id) {
        (QoS::AtLeastOnce, Some(id)) => client.send(&Packet::PubAck(PubResp::new(id))),
        (QoS::ExactlyOnce, Some(id)) => client.send(&Packet::PubRec(PubResp::new(id))),
        _ => {}
    }
}

/// Reads PUBLISHes without acknowledging any, until nothing arrives for `quiet`.
fn receive_without_acking(client: &mut RawClient, quiet: Duration) -> Vec<String> {
    let mut got = Vec::new();
    while let Recv::Packet(Packet::Publish(p)) = client.recv(quiet) {
        got.push(payload_str(&p));
    }
    got
}

fn member(addr: std::net::SocketAddr, id: &str, filter: &str, qos: u8) -> RawClient {
    let mut m = RawClient::connect(addr, V5, id);
    m.subscribe_ok(1, &[(filter, qos)]);
    m
}

fn persistent(addr: std::net::SocketAddr, id: &str, clean: bool) -> (RawClient, bool) {
    let connect = ConnectBuilder::new(V5, id).clean(clean).session_expiry(300);
    let (client, connack) = RawClient::connect_with(addr, connect);
    (client, connack.session_present)
}

fn publish_all(publisher: &mut RawClient, topic_name: &str, range: std::ops::Range<u32>, qos: u8) {
    for i in range {
        publisher.publish(topic_name, i.to_string().as_bytes(), qos, false);
    }
}

#[test]
fn a_member_that_leaves_with_unacknowledged_qos1_messages_hands_them_to_the_other_member() {
    // 4.8.2: if the chosen member's Session terminates before it acknowledged a QoS 1
    // message, the Server SHOULD send the message to another member of the group. Here the
    // member (Session Expiry 0) drops its connection holding every message it got unanswered.
    let broker = Broker::start();
    let [leaving_id, staying_id] = ids_on_distinct_shards("shd-leave");
    let filter = "$share/g/shd-leave/t";
    let mut leaving = member(broker.addr, &leaving_id, filter, 1);
    let mut staying = member(broker.addr, &staying_id, filter, 1);
    let mut publisher = RawClient::connect(broker.addr, V5, &id_on_shard("shd-leave-pub", 0));
    publish_all(&mut publisher, "shd-leave/t", 0..30, 1);

    let held = receive_without_acking(&mut leaving, QUIET);
    assert!(!held.is_empty(), "the leaving member had a share");
    let mut got = Vec::new();
    receive_acking(&mut staying, &mut got, 30 - held.len(), PROMPT);
    leaving.drop_connection();
    receive_acking(&mut staying, &mut got, 30, PROMPT);

    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(distinct, payloads(0..30), "nothing lost");
    assert_eq!(got.len(), 30, "and nothing twice: {got:?}");
}

#[test]
fn an_offline_member_with_a_session_is_skipped_while_another_member_is_online() {
    // 4.8.2: the server picks the member; one offline only queues what it is given, so while
    // another member is online the messages go there, whichever shard receives them.
    let broker = Broker::start();
    let [away_id, online_id] = ids_on_distinct_shards("shd-away");
    let filter = "$share/g/shd-away/t";
    let (mut away, _) = persistent(broker.addr, &away_id, true);
    away.subscribe_ok(1, &[(filter, 1)]);
    away.disconnect();
    let mut online = member(broker.addr, &online_id, filter, 1);
    let [pub0, pub1] = ids_on_distinct_shards("shd-away-pub");
    let mut on_away_shard = RawClient::connect(broker.addr, V5, &pub0);
    let mut on_online_shard = RawClient::connect(broker.addr, V5, &pub1);
    publish_all(&mut on_away_shard, "shd-away/t", 0..10, 1);
    publish_all(&mut on_online_shard, "shd-away/t", 10..20, 1);

    let mut got = Vec::new();
    receive_acking(&mut online, &mut got, 20, PROMPT);
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(distinct, payloads(0..20), "all to the online member");
    let (mut back, session_present) = persistent(broker.addr, &away_id, false);
    assert!(session_present);
    back.expect_nothing(QUIET);
}

#[test]
fn with_every_member_offline_the_messages_wait_in_their_sessions() {
    // [MQTT-3.1.2-4]-style persistence applies to members too: with nobody online a shared
    // message is queued in an offline member's session and delivered when it returns.
    let broker = Broker::start();
    let [a_id, b_id] = ids_on_distinct_shards("shd-alloff");
    let filter = "$share/g/shd-alloff/t";
    for id in [&a_id, &b_id] {
        let (mut m, _) = persistent(broker.addr, id, true);
        m.subscribe_ok(1, &[(filter, 1)]);
        m.disconnect();
    }
    let mut publisher = RawClient::connect(broker.addr, V5, &id_on_shard("shd-alloff-pub", 1));
    publish_all(&mut publisher, "shd-alloff/t", 0..12, 1);
    let mut got = Vec::new();
    for id in [&a_id, &b_id] {
        let (mut m, session_present) = persistent(broker.addr, id, false);
        assert!(session_present);
        receive_acking(&mut m, &mut got, 0, Duration::ZERO);
    }
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(distinct, payloads(0..12));
    assert_eq!(got.len(), 12, "each to one member: {got:?}");
}

#[test]
fn messages_on_their_way_to_a_shard_whose_member_left_reach_the_member_on_the_other_shard() {
    // 4.8.2: a message goes to one member; a member that unsubscribed is no longer one.
    // The publisher (on the staying member's shard) pipelines its PUBLISHes while the other
    // member unsubscribes, so some are picked for the leaving member's shard and arrive
    // there after it left: they must go on to the staying member, not be dropped.
    let broker = Broker::start();
    let [leaving_id, staying_id] = ids_on_distinct_shards("shd-unsub");
    let filter = "$share/g/shd-unsub/t";
    let mut leaving = member(broker.addr, &leaving_id, filter, 1);
    let mut staying = member(broker.addr, &staying_id, filter, 1);
    let mut publisher = RawClient::connect(broker.addr, V4, &id_on_shard("shd-unsub-pub", 1));
    const N: u16 = 200;
    let burst: Vec<u8> = (0..N)
        .flat_map(|i| {
            let packet = publish_packet(
                "shd-unsub/t",
                i.to_string().as_bytes(),
                1,
                Some(i + 1),
                false,
            );
            encode_bytes(&packet, V4)
        })
        .collect();
    publisher.send_bytes(&burst);
    leaving.send(&unsubscribe_packet(2, &[filter]));
    for _ in 0..N {
        assert!(matches!(publisher.expect_packet(PROMPT), Packet::PubAck(_)));
    }

    let mut got = Vec::new();
    receive_acking(&mut leaving, &mut got, 0, Duration::ZERO);
    let before_leaving = got.len();
    receive_acking(&mut staying, &mut got, usize::from(N), PROMPT);
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(distinct, payloads(0..u32::from(N)), "nothing lost");
    assert_eq!(got.len(), usize::from(N), "nothing twice");
    assert!(
        before_leaving < usize::from(N),
        "the staying member had a share"
    );
}

#[test]
fn a_stalled_member_does_not_keep_messages_from_the_other_member() {
    // 4.8.2 lets the server choose the member per message: one that does not acknowledge
    // (its Receive Maximum of 2 used up, section 4.9) holds only what it was already sent
    // plus one waiting message; the rest goes to the member that keeps up, and when the
    // stalled one's session ends its messages go there too.
    use rumqttc::v5::mqttbytes::QoS as Q;
    use rumqttc::v5::mqttbytes::v5::Packet as P;
    let broker = Broker::start();
    let [stalled_id, ok_id] = ids_on_distinct_shards("shd-stall");
    let filter = "$share/g/shd-stall/t";
    let connect = ConnectBuilder::new(V5, &stalled_id).receive_maximum(2);
    let (mut stalled, _) = RawClient::connect_with(broker.addr, connect);
    stalled.subscribe_ok(1, &[(filter, 1)]);
    let mut ok = Rumqtt5::connect(broker.addr, &ok_id);
    assert!(ok.client.subscribe(filter, Q::AtLeastOnce).is_ok());
    ok.wait_for_incoming(|p| matches!(p, P::SubAck(_)), "SUBACK");
    let [pub0, pub1] = ids_on_distinct_shards("shd-stall-pub");
    let mut publishers = [
        RawClient::connect(broker.addr, V5, &pub0),
        RawClient::connect(broker.addr, V5, &pub1),
    ];
    const N: u32 = 40;
    for i in 0..N {
        let p = &mut publishers[i as usize % 2];
        p.publish("shd-stall/t", i.to_string().as_bytes(), 1, false);
    }

    let mut got = BTreeSet::new();
    let deadline = Instant::now() + PROMPT;
    while got.len() < N as usize - 3 && Instant::now() < deadline {
        got.insert(String::from_utf8_lossy(&ok.next_publish().payload).into_owned());
    }
    assert!(
        got.len() >= N as usize - 3,
        "the stalled member holds at most its window plus one: {} of {N}",
        got.len()
    );
    let held = receive_without_acking(&mut stalled, QUIET);
    assert_eq!(held.len(), 2, "its Receive Maximum");
    stalled.drop_connection();
    while got.len() < N as usize {
        got.insert(String::from_utf8_lossy(&ok.next_publish().payload).into_owned());
    }
    assert_eq!(got, payloads(0..N));
}

#[test]
fn each_message_goes_to_exactly_one_member_spread_over_the_members_on_both_shards() {
    // 5.0 section 4.8.2: a message matching a Shared Subscription goes to only one of the
    // sessions subscribed to it, and the server spreads the messages over the members (four,
    // two on each shard: each gets some, each shard's pair between a quarter and three
    // quarters); a non-shared subscription to the topic still gets every message. QoS 1 and 2.
    let broker = Broker::start();
    let (_, connack) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, "probe"));
    assert_ne!(connack.properties.shared_subscription_available, Some(0));
    let filter = "$share/g/shd-once/t";
    let mut members: Vec<RawClient> = (0..4)
        .map(|i| {
            member(
                broker.addr,
                &id_on_shard(&format!("shd-once{i}"), i % SHARDS),
                filter,
                2,
            )
        })
        .collect();
    let mut plain = member(
        broker.addr,
        &id_on_shard("shd-once-plain", 1),
        "shd-once/t",
        1,
    );
    let mut publisher = RawClient::connect(broker.addr, V5, &id_on_shard("shd-once-pub", 0));
    publish_all(&mut publisher, "shd-once/t", 0..20, 1);
    publish_all(&mut publisher, "shd-once/t", 20..40, 2);

    let mut got = Vec::new();
    let mut per_member = [0usize; 4];
    let deadline = Instant::now() + PROMPT;
    loop {
        for (count, m) in per_member.iter_mut().zip(&mut members) {
            *count += receive_acking(m, &mut got, 0, Duration::ZERO).len();
        }
        let distinct: BTreeSet<&String> = got.iter().collect();
        if distinct.len() >= 40 || Instant::now() >= deadline {
            break;
        }
    }
    let distinct: BTreeSet<String> = got.iter().cloned().collect();
    assert_eq!(distinct, payloads(0..40));
    assert_eq!(got.len(), 40, "each exactly once: {got:?}");
    assert!(
        per_member.iter().all(|&n| n > 0),
        "every member: {per_member:?}"
    );
    let on_shard_0 = per_member[0] + per_member[2];
    let on_shard_1 = per_member[1] + per_member[3];
    assert!(
        (10..=30).contains(&on_shard_0) && (10..=30).contains(&on_shard_1),
        "spread over both shards: {per_member:?}"
    );
    assert_eq!(collect_publishes(&mut plain, QUIET).len(), 40);
}

#[test]
fn when_a_shared_subscription_member_leaves_the_others_get_every_message() {
    // 5.0 section 4.8.2: a session that is gone is no longer a member; later messages go to
    // the remaining members only, none is lost.
    let broker = Broker::start();
    let filter = "$share/grp/shl/t";
    let mut stay = member(broker.addr, &id_on_shard("shl-stay", 0), filter, 1);
    let leave = member(broker.addr, &id_on_shard("shl-leave", 1), filter, 1);
    leave.disconnect();
    let mut publisher = RawClient::connect(broker.addr, V5, &id_on_shard("shl-pub", 1));
    publish_all(&mut publisher, "shl/t", 0..20, 1);
    let got = collect_payloads(&mut stay, QUIET);
    let want: Vec<String> = (0..20u32).map(|i| i.to_string()).collect();
    assert_eq!(got, want);
}

#[test]
fn no_local_on_a_shared_subscription_is_a_protocol_error() {
    // [MQTT-3.8.3-4] No Local 1 on a Shared Subscription is a Protocol Error.
    let broker = Broker::start();
    let mut c = RawClient::connect(broker.addr, V5, "nolocal-shared");
    let no_local = SubscriptionOptions {
        no_local: true,
        ..sub_options(0)
    };
    c.send(
        &SubscribeBuilder::new(1)
            .filter_with("$share/g/t", no_local)
            .packet(),
    );
    c.expect_closed_maybe_disconnect(
        PROMPT,
        &[ReasonCode::ProtocolError, ReasonCode::MalformedPacket],
    );
}

#[test]
fn a_qos2_message_in_flight_to_a_member_that_drops_completes_with_it_on_reconnect() {
    // [MQTT-4.8.2-4] a QoS 2 message whose delivery to a member broke off is completed with
    // that member when it reconnects; [MQTT-4.8.2-5] no other member gets it meanwhile.
    let broker = Broker::start();
    let [first_id, other_id] = ids_on_distinct_shards("shd-q2");
    let filter = "$share/g/shd-q2/t";
    let (mut first, _) = persistent(broker.addr, &first_id, true);
    first.subscribe_ok(1, &[(filter, 2)]);
    let mut publisher = RawClient::connect(broker.addr, V5, &id_on_shard("shd-q2-pub", 0));
    publisher.publish("shd-q2/t", b"only", 2, false);
    let sent = first.expect_publish();
    assert_eq!(payload_str(&sent), "only");
    first.drop_connection();
    let mut other = member(broker.addr, &other_id, filter, 2);
    other.expect_nothing(QUIET);
    let (mut back, session_present) = persistent(broker.addr, &first_id, false);
    assert!(session_present);
    let resent = back.expect_publish();
    assert!(resent.dup, "a resend [MQTT-3.3.1-1]");
    assert_eq!(resent.packet_id, sent.packet_id, "[MQTT-4.4.0-1]");
    assert_eq!(payload_str(&resent), "only");
}
