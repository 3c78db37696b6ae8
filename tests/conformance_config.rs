//! Conformance of what the broker announces and enforces from its configuration (MQTT 5.0
//! CONNACK properties, section 3.2.2.3) against the real `ringmq` binary: Retain Available,
//! the Session Expiry cap, a disabled Topic Alias Maximum and a capped or imposed keep alive.

pub mod support;

use ringmq::protocol::{ProtocolVersion, ReasonCode};
use std::time::{Duration, Instant};
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

const NO_RETAIN: &str = "[retained]\nenabled = false\n";

#[test]
fn with_retain_disabled_a_5_0_retained_publish_is_refused_with_0x9a() {
    // 5.0 section 3.2.2.3.5: Retain Available 0 announced; a PUBLISH with RETAIN 1 is then
    // answered with DISCONNECT 0x9A Retain not supported (section 3.3.1.3; the client broke
    // [MQTT-3.2.2-14]).
    let broker = Broker::start_with_config(NO_RETAIN);
    let (mut c, connack) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, "nr5"));
    assert_eq!(connack.properties.retain_available, Some(0));
    c.send(&publish_packet("nr/t", b"x", 1, Some(1), true));
    c.expect_disconnect_then_close(PROMPT, &[ReasonCode::RetainNotSupported]);
}

#[test]
fn a_1_mib_payload_passes_with_the_default_maximum_packet_size() {
    // 5.0 section 3.2.2.3.6: the Maximum Packet Size announced (2 MiB by default) is what
    // the server accepts; a PUBLISH with a 1 MiB payload fits, as in Mosquitto and FlashMQ.
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("mib");
    let (mut sub, connack) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, &sub_id));
    assert_eq!(
        connack.properties.maximum_packet_size,
        Some(2 * 1024 * 1024)
    );
    sub.subscribe_ok(1, &[("mib/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    let payload = vec![0xA5u8; 1024 * 1024];
    publisher.publish("mib/t", &payload, 1, false);
    let got = sub.expect_publish_acked();
    assert!(
        got.payload[..] == payload[..],
        "the 1 MiB payload arrives whole"
    );
}

#[test]
fn with_retain_disabled_a_5_0_will_with_retain_is_refused_with_connack_0x9a() {
    // [MQTT-3.2.2-13] a CONNECT whose will has Will Retain 1 while retained messages are not
    // supported must be rejected (CONNACK 0x9A should be sent) and closed.
    let broker = Broker::start_with_config(NO_RETAIN);
    let mut c = RawClient::tcp(broker.addr, V5, "nr5-will");
    c.send(
        &ConnectBuilder::new(V5, "nr5-will")
            .will("nr/will", b"x", 0, true)
            .packet(),
    );
    let connack = c.expect_connack();
    assert_eq!(connack.reason, ReasonCode::RetainNotSupported);
    c.expect_closed(PROMPT);
}

#[test]
fn with_retain_disabled_3_1_1_retained_publishes_are_forwarded_but_not_stored() {
    // The config documents: RETAIN is "stored not" for clients that cannot be told; the
    // message itself is still routed to current subscribers.
    let broker = Broker::start_with_config(NO_RETAIN);
    let [pub_id, sub_id] = ids_on_distinct_shards("nr4");
    let mut live = RawClient::connect(broker.addr, V4, &sub_id);
    live.subscribe_ok(1, &[("nr4/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    publisher.publish("nr4/t", b"x", 1, true);
    assert_eq!(&live.expect_publish_acked().payload[..], b"x");
    let mut late = RawClient::connect(broker.addr, V4, &format!("{sub_id}-late"));
    late.subscribe_ok(1, &[("nr4/t", 1)]);
    late.expect_nothing(QUIET);
}

#[test]
fn a_capped_session_expiry_is_announced_and_applied() {
    // 5.0 section 3.2.2.3.2: a server using another Session Expiry Interval than the client
    // asked for says so in CONNACK; the session then ends after the capped interval. That
    // holds for 0xFFFFFFFF too, which would otherwise never expire (3.1.2.11.2).
    let broker = Broker::start_with_config("[mqtt]\nmax_session_expiry = 1\n");
    let connect = |asked: u32| {
        let id = id_on_shard(&format!("capped-expiry-{asked}"), 1);
        ConnectBuilder::new(V5, &id)
            .clean(false)
            .session_expiry(asked)
    };
    for asked in [300, u32::MAX] {
        let (c, connack) = RawClient::connect_with(broker.addr, connect(asked));
        assert_eq!(
            connack.properties.session_expiry_interval,
            Some(1),
            "asked for {asked}: the CONNACK must announce the capped Session Expiry Interval"
        );
        c.disconnect();
    }
    std::thread::sleep(Duration::from_millis(2000));
    for asked in [300, u32::MAX] {
        let (_c, ack) = RawClient::connect_with(broker.addr, connect(asked));
        assert!(
            !ack.session_present,
            "asked for {asked}: the session outlived the 1 s cap"
        );
    }
}

#[test]
fn with_topic_aliases_disabled_none_is_announced_and_using_one_is_refused() {
    // 5.0 section 3.2.2.3.8: Topic Alias Maximum absent/0 - the client must not send aliases
    // [MQTT-3.3.2-9]; one that does gets DISCONNECT 0x94 Topic Alias invalid.
    let broker = Broker::start_with_config("[mqtt]\ntopic_alias_maximum = 0\n");
    let (mut c, connack) = RawClient::connect_with(broker.addr, ConnectBuilder::new(V5, "noalias"));
    assert!(
        connack.properties.topic_alias_maximum.unwrap_or(0) == 0,
        "{:?}",
        connack.properties.topic_alias_maximum
    );
    c.send(&PublishBuilder::new("na/t", b"x").topic_alias(1).packet());
    c.expect_closed_maybe_disconnect(
        PROMPT,
        &[ReasonCode::TopicAliasInvalid, ReasonCode::ProtocolError],
    );
}

#[test]
fn a_server_keep_alive_is_announced_and_enforced_when_capped_or_imposed() {
    // [MQTT-3.2.2-21] / 5.0 section 3.2.2.3.14: a Server Keep Alive in CONNACK replaces the
    // client's value and is the keep alive in force: the server closes after 1.5 x it
    // [MQTT-3.1.2-22]. `max_keepalive` caps a longer one (60 here), `zero_keepalive` imposes
    // one on a client asking for none.
    let broker = Broker::start_with_config("[mqtt]\nmax_keepalive = 1\nzero_keepalive = 1\n");
    let mut clients: Vec<(RawClient, Instant)> = [("capped", 60), ("zero-ka", 0)]
        .into_iter()
        .map(|(id, asked)| {
            let connect = ConnectBuilder::new(V5, id).keep_alive(asked);
            let (c, connack) = RawClient::connect_with(broker.addr, connect);
            assert_eq!(connack.properties.server_keep_alive, Some(1), "{id}");
            (c, Instant::now())
        })
        .collect();
    for (c, start) in &mut clients {
        c.expect_closed_maybe_disconnect(Duration::from_secs(4), &[ReasonCode::KeepAliveTimeout]);
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(1350) && took <= Duration::from_millis(2600),
            "{}: closed after {took:?}",
            c.name
        );
    }
}
