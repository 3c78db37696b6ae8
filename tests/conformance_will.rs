//! Conformance of will messages, keep alive and session takeover (MQTT 3.1.1 / 5.0 sections
//! 3.1.2.5, 3.1.2.10, 3.1.4, 3.12, 3.14) against the real `ringmq` binary.

pub mod support;

use ringmq::protocol::{Packet, ProtocolVersion, ReasonCode};
use std::time::{Duration, Instant};
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// A watcher subscribed to `will/#` at QoS 1, homed on `shard`.
fn watcher(broker: &Broker, shard: usize, name: &str) -> RawClient {
    let mut w = RawClient::connect(broker.addr, V4, &id_on_shard(name, shard));
    w.subscribe_ok(1, &[("will/#", 1)]);
    w
}

/// Connects `id` (homed on the other shard than the watcher) with a will on `will/<id>`.
fn with_will(broker: &Broker, version: ProtocolVersion, id: &str, keep_alive: u16) -> RawClient {
    let connect = ConnectBuilder::new(version, id)
        .keep_alive(keep_alive)
        .will(&format!("will/{id}"), b"gone", 1, false);
    RawClient::connect_with(broker.addr, connect).0
}

fn expect_will(w: &mut RawClient, id: &str) {
    let got = w.expect_publish_acked();
    assert_eq!(got.topic.as_str(), format!("will/{id}"));
    assert_eq!(&got.payload[..], b"gone");
}

#[test]
fn the_will_is_published_when_the_socket_drops() {
    // [MQTT-3.1.2-8] published when the network connection closes without DISCONNECT.
    let broker = Broker::start();
    for version in [V4, V5] {
        let [a, b] = ids_on_distinct_shards(&format!("drop-{version:?}"));
        let mut w = watcher(&broker, 0, &a);
        let client = with_will(&broker, version, &b, 0);
        client.drop_connection();
        expect_will(&mut w, &b);
    }
}

#[test]
fn the_will_is_published_after_a_keepalive_timeout() {
    // [MQTT-3.1.2-24] the silent client is disconnected and, not having sent DISCONNECT, its
    // will is published [MQTT-3.1.2-8].
    let broker = Broker::start();
    let [a, b] = ids_on_distinct_shards("kawill");
    let mut w = watcher(&broker, 0, &a);
    let mut silent = with_will(&broker, V4, &b, 1);
    let got = w.recv(Duration::from_secs(3));
    match got {
        Recv::Packet(Packet::Publish(p)) => {
            w.ack(&p);
            assert_eq!(p.topic.as_str(), format!("will/{b}"));
        }
        other => panic!("expected the will within 3 s, got {other:?}"),
    }
    silent.expect_closed(PROMPT);
}

#[test]
fn the_will_is_published_when_the_server_closes_on_a_protocol_error() {
    // [MQTT-3.1.2-8] 3.1.1 section 3.1.2.5: a protocol error closing the connection publishes
    // the will (here: a second CONNECT [MQTT-3.1.0-2]).
    let broker = Broker::start();
    for version in [V4, V5] {
        let [a, b] = ids_on_distinct_shards(&format!("perr-{version:?}"));
        let mut w = watcher(&broker, 0, &a);
        let mut client = with_will(&broker, version, &b, 0);
        client.send(&ConnectBuilder::new(version, &b).packet());
        client.expect_closed_maybe_disconnect(PROMPT, &[ReasonCode::ProtocolError]);
        expect_will(&mut w, &b);
    }
}

#[test]
fn a_disconnect_closes_the_connection_and_discards_the_will() {
    // [MQTT-3.1.2-10] / [MQTT-3.14.4-3] DISCONNECT discards the will; 3.1.1 section 3.14.4:
    // the server closes the connection, sending nothing (5.0: no DISCONNECT back either).
    let broker = Broker::start();
    for version in [V4, V5] {
        let [a, b] = ids_on_distinct_shards(&format!("nowill-{version:?}"));
        let mut w = watcher(&broker, 0, &a);
        let mut client = with_will(&broker, version, &b, 0);
        client.send(&disconnect_packet(ReasonCode::NORMAL_DISCONNECTION));
        client.expect_closed(PROMPT);
        w.expect_nothing(Duration::from_millis(600));
    }
}

#[test]
fn disconnect_with_will_message_0x04_publishes_the_will_in_5_0() {
    // 5.0 section 3.14.2.1: reason 0x04 asks the server to publish the will.
    let broker = Broker::start();
    let [a, b] = ids_on_distinct_shards("dc04");
    let mut w = watcher(&broker, 0, &a);
    let mut client = with_will(&broker, V5, &b, 0);
    client.send(&disconnect_packet(ReasonCode::DisconnectWithWillMessage));
    client.expect_closed(PROMPT);
    expect_will(&mut w, &b);
}

/// Connects a client with a will on `will_topic` (Will Retain `retain`), drops its
/// connection and waits until a watcher homed on `late_id`'s shard has the will: that shard
/// has then also stored it if it is retained. Returns a new subscriber `late_id` to it.
fn will_then_late_subscriber(
    broker: &Broker,
    will_topic: &str,
    retain: bool,
    late_id: &str,
) -> RawClient {
    let will_id = id_on_shard(
        &format!("{late_id}-will"),
        (home_shard(late_id, SHARDS) + 1) % SHARDS,
    );
    let watcher_id = id_on_shard(&format!("{late_id}-watch"), home_shard(late_id, SHARDS));
    let mut watcher = RawClient::connect(broker.addr, V4, &watcher_id);
    watcher.subscribe_ok(1, &[(will_topic, 1)]);
    let connect = ConnectBuilder::new(V4, &will_id).will(will_topic, b"offline", 1, retain);
    let (client, _) = RawClient::connect_with(broker.addr, connect);
    client.drop_connection();
    assert_eq!(&watcher.expect_publish_acked().payload[..], b"offline");
    let mut late = RawClient::connect(broker.addr, V4, late_id);
    late.subscribe_ok(1, &[(will_topic, 1)]);
    late
}

#[test]
fn a_will_with_retain_is_stored_as_a_retained_message() {
    // [MQTT-3.1.2-17] Will Retain 1: the will is published as a retained message.
    let broker = Broker::start();
    let mut late = will_then_late_subscriber(&broker, "wret/status", true, "wret-late");
    let got = late.expect_publish_acked();
    assert_eq!(&got.payload[..], b"offline");
    assert!(
        got.retain,
        "[MQTT-3.3.1-8] retained will delivered on subscribe"
    );
}

#[test]
fn a_will_without_retain_is_not_stored() {
    // [MQTT-3.1.2-16] Will Retain 0: published as a non-retained message.
    let broker = Broker::start();
    let mut late = will_then_late_subscriber(&broker, "wnoret/status", false, "wnoret-late");
    late.expect_nothing(QUIET);
}

/// [MQTT-3.1.2-24] (3.1.1) / [MQTT-3.1.2-22] (5.0): a client silent for 1.5 x its keep alive
/// is closed within a second after that, and not before (a client pinging every keep alive
/// is compliant); 3.1.1 gets a bare close, 5.0 DISCONNECT 0x8D first. One client per keep
/// alive in `seconds` (ascending), all connected at once and each timed from its CONNACK.
fn assert_closed_after_one_and_a_half_keepalives(version: ProtocolVersion, seconds: &[u16]) {
    let broker = Broker::start();
    let mut silent: Vec<(u16, RawClient, Instant)> = seconds
        .iter()
        .map(|&ka| {
            let id = format!("silent-{version:?}-{ka}");
            let connect = ConnectBuilder::new(version, &id).keep_alive(ka);
            let (client, _) = RawClient::connect_with(broker.addr, connect);
            (ka, client, Instant::now())
        })
        .collect();
    for (ka, client, start) in &mut silent {
        let within = Duration::from_secs(u64::from(*ka) * 3);
        if version == V5 {
            client.expect_disconnect_then_close(within, &[ReasonCode::KeepAliveTimeout]);
        } else {
            client.expect_closed(within);
        }
        let took = start.elapsed();
        let limit = Duration::from_millis(u64::from(*ka) * 1500);
        assert!(
            took >= limit - Duration::from_millis(150),
            "{version:?}: closed after {took:?}, before 1.5 x {ka} s"
        );
        assert!(
            took <= limit + Duration::from_secs(1),
            "{version:?}: keep alive {ka} s, closed only after {took:?}"
        );
    }
}

#[test]
fn a_silent_client_is_disconnected_after_one_and_a_half_keepalives_3_1_1() {
    assert_closed_after_one_and_a_half_keepalives(V4, &[1]);
}

#[test]
fn a_silent_client_gets_disconnect_0x8d_after_one_and_a_half_keepalives_5_0() {
    // 5.0 section 3.14.2.1 names the reason: DISCONNECT 0x8D Keep Alive timeout, then the
    // close; a bare close fails.
    assert_closed_after_one_and_a_half_keepalives(V5, &[1, 2]);
}

#[test]
fn pingreq_gets_pingresp_and_keeps_the_connection_alive() {
    // [MQTT-3.12.4-1] PINGRESP for PINGREQ; any packet within 1.5 x keep alive keeps it open.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("pinger");
    let connect = ConnectBuilder::new(V4, &sub_id).keep_alive(1);
    let (mut client, _) = RawClient::connect_with(broker.addr, connect);
    client.subscribe_ok(1, &[("ping/t", 0)]);
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3200) {
        std::thread::sleep(Duration::from_millis(700));
        client.ping();
    }
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("ping/t", b"alive", 0, false);
    assert_eq!(&client.expect_publish().payload[..], b"alive");
}

#[test]
fn a_second_connection_with_the_same_id_takes_the_session_over_3_1_1() {
    // [MQTT-3.1.4-2] the existing client is disconnected; its will is published because it
    // did not send DISCONNECT. Repeated so the connections land on both shards.
    let broker = Broker::start();
    let [w_id, id] = ids_on_distinct_shards("takeover4");
    let mut w = watcher(&broker, 0, &w_id);
    let mut old = with_will(&broker, V4, &id, 0);
    for _ in 0..4 {
        let new = with_will(&broker, V4, &id, 0);
        old.expect_closed(PROMPT);
        expect_will(&mut w, &id);
        old = new;
    }
    old.ping();
}

#[test]
fn a_taken_over_5_0_client_receives_disconnect_0x8e_and_its_will_is_published() {
    // [MQTT-3.1.4-3] DISCONNECT 0x8E (Session taken over) to the existing client, then close.
    let broker = Broker::start();
    let [w_id, id] = ids_on_distinct_shards("takeover5");
    let mut w = watcher(&broker, 0, &w_id);
    let mut old = with_will(&broker, V5, &id, 0);
    for _ in 0..4 {
        let new = with_will(&broker, V5, &id, 0);
        old.expect_disconnect_then_close(PROMPT, &[ReasonCode::SessionTakenOver]);
        expect_will(&mut w, &id);
        old = new;
    }
    old.ping();
}

#[test]
fn the_new_connection_gets_the_subscriptions_after_a_takeover() {
    // [MQTT-3.1.4-2] with CleanSession 0 the session continues on the new connection
    // [MQTT-3.2.2-2] (Session Present 1) and messages go to the new connection only.
    let broker = Broker::start();
    let [pub_id, id] = ids_on_distinct_shards("takeover-sub");
    let (mut old, _) =
        RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, &id).clean(false));
    old.subscribe_ok(1, &[("to/t", 1)]);
    let (mut new, ack) =
        RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, &id).clean(false));
    assert!(
        ack.session_present,
        "[MQTT-3.2.2-2] the session was taken over"
    );
    old.expect_closed(PROMPT);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("to/t", b"after", 1, false);
    assert_eq!(&new.expect_publish_acked().payload[..], b"after");
}

#[test]
fn rapid_takeovers_of_one_client_id_leave_exactly_one_connection_alive() {
    // [MQTT-3.1.4-2] each CONNECT is answered and closes the connection it takes over,
    // whichever shard accepted either. The CONNECTs race across shards, so any one of them
    // may end up last; exactly one connection survives and owns the session.
    let broker = Broker::start();
    let [pub_id, id] = ids_on_distinct_shards("burst");
    let mut conns: Vec<RawClient> = Vec::new();
    for _ in 0..20 {
        let mut c = RawClient::tcp(broker.addr, V4, &id);
        c.send(&ConnectBuilder::new(V4, &id).clean(false).packet());
        conns.push(c);
    }
    for c in conns.iter_mut() {
        assert_eq!(c.expect_connack().reason, ReasonCode::Success);
    }
    std::thread::sleep(QUIET);
    let mut alive: Vec<RawClient> = conns
        .into_iter()
        .enumerate()
        .filter_map(|(i, mut c)| match c.recv(Duration::from_millis(100)) {
            Recv::Closed => None,
            Recv::Timeout => Some(c),
            other => panic!("connection {i}: expected close or nothing, got {other:?}"),
        })
        .collect();
    assert_eq!(alive.len(), 1, "connections left open");
    let mut last = alive.remove(0);
    last.subscribe_ok(1, &[("burst/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("burst/t", b"to-last", 1, false);
    assert_eq!(&last.expect_publish_acked().payload[..], b"to-last");
}

#[test]
fn takeover_across_protocol_versions_closes_the_old_connection_in_its_own_version() {
    // [MQTT-3.1.4-2] / [MQTT-3.1.4-3]: a 3.1.1 connection taken over is just closed (3.1.1
    // has no server DISCONNECT); a 5.0 one gets DISCONNECT 0x8E first.
    let broker = Broker::start();
    let id = id_on_shard("xver", 1);
    let mut old4 = RawClient::connect(broker.addr, V4, &id);
    let mut new5 = RawClient::connect(broker.addr, V5, &id);
    old4.expect_closed(PROMPT);
    let _new4 = RawClient::connect(broker.addr, V4, &id);
    new5.expect_disconnect_then_close(PROMPT, &[ReasonCode::SessionTakenOver]);
}

#[test]
fn the_keep_alive_of_a_taken_over_connection_does_not_apply_to_the_new_one() {
    // [MQTT-3.1.2-24] applies per connection: the old connection's 1 s keep alive must not
    // close the new connection (keep alive 0) that took its session over.
    let broker = Broker::start();
    let id = id_on_shard("stale-ka", 0);
    let (mut old, _) =
        RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, &id).keep_alive(1));
    let (mut new, _) =
        RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, &id).keep_alive(0));
    old.expect_closed(PROMPT);
    new.expect_nothing(Duration::from_millis(2600));
    new.ping();
}

#[test]
fn any_control_packet_counts_as_keep_alive_activity() {
    // [MQTT-3.1.2-24] the server closes only when no control packet at all arrived within
    // 1.5 x keep alive; a client that keeps publishing (never PINGREQ) stays connected.
    let broker = Broker::start();
    let (mut c, _) =
        RawClient::connect_with(broker.addr, ConnectBuilder::new(V4, "busy").keep_alive(1));
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(3000) {
        c.send(&publish_packet("busy/t", b"x", 0, None, false));
        c.expect_nothing(Duration::from_millis(600));
    }
    c.ping();
}

#[test]
fn concurrent_takeover_chains_publish_exactly_one_will_per_replaced_connection() {
    // [MQTT-3.1.4-2] with [MQTT-3.1.2-8]: every connection closed by a takeover publishes its
    // will once; the final DISCONNECT publishes none [MQTT-3.14.4-3]. Five client ids (on
    // both shards) are taken over nine times each, concurrently.
    let broker = Broker::start();
    let mut w = watcher(&broker, 0, "chain-watcher");
    let addr = broker.addr;
    let chains: Vec<_> = (0..5)
        .map(|n| {
            std::thread::spawn(move || {
                let id = id_on_shard(&format!("chain{n}"), n % SHARDS);
                let will = |i: usize| {
                    ConnectBuilder::new(V4, &id).will(
                        &format!("will/{id}"),
                        format!("{i}").as_bytes(),
                        1,
                        false,
                    )
                };
                let (mut current, _) = RawClient::connect_with(addr, will(0));
                for i in 1..10 {
                    let (next, _) = RawClient::connect_with(addr, will(i));
                    current.expect_closed(PROMPT);
                    current = next;
                }
                current.disconnect();
                id
            })
        })
        .collect();
    let ids: Vec<String> = chains
        .into_iter()
        .map(|c| {
            c.join()
                .unwrap_or_else(|_| panic!("a takeover chain failed"))
        })
        .collect();
    let got = collect_publishes(&mut w, Duration::from_millis(800));
    for id in ids {
        let mut wills: Vec<String> = got
            .iter()
            .filter(|p| p.topic.as_str() == format!("will/{id}"))
            .map(payload_str)
            .collect();
        wills.sort();
        let want: Vec<String> = (0..9).map(|i| i.to_string()).collect();
        assert_eq!(wills, want, "{id}: one will per replaced connection");
    }
}
