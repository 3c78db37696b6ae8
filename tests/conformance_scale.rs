//! Conformance at the process level against the real `ringmq` binary: many concurrent clients
//! on all shards, publishers and subscribers that flood or stall, and the client-id to shard
//! mapping the other suites rely on.

pub mod support;

use ringmq::protocol::{Packet, ProtocolVersion};
use std::time::Duration;
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

#[test]
fn two_hundred_clients_each_receive_their_own_and_the_broadcast_message() {
    let broker = Broker::start();
    const N: usize = 200;
    let mut clients: Vec<RawClient> = (0..N)
        .map(|i| {
            let version = if i % 2 == 0 { V4 } else { V5 };
            let mut c = RawClient::connect(broker.addr, version, &format!("many-{i}"));
            c.subscribe_ok(1, &[(&format!("many/{i}"), 1), ("many/all", 0)]);
            c
        })
        .collect();
    let homes: Vec<usize> = (0..N)
        .map(|i| home_shard(&format!("many-{i}"), SHARDS))
        .collect();
    assert!(
        (0..SHARDS).all(|s| homes.contains(&s)),
        "clients on every shard"
    );

    let mut publisher = RawClient::connect(broker.addr, V5, "many-publisher");
    for i in 0..N {
        publisher.publish(&format!("many/{i}"), format!("to-{i}").as_bytes(), 1, false);
    }
    publisher.publish("many/all", b"everyone", 0, false);

    for (i, c) in clients.iter_mut().enumerate() {
        let mut got: Vec<String> = Vec::new();
        while got.len() < 2 {
            let p = c.expect_publish_acked();
            got.push(format!("{}={}", p.topic.as_str(), payload_str(&p)));
        }
        got.sort();
        assert_eq!(
            got,
            [format!("many/{i}=to-{i}"), "many/all=everyone".to_string()],
            "client {i}"
        );
    }
}

#[test]
fn a_subscriber_that_stops_reading_does_not_stall_the_publisher_or_other_subscribers() {
    // Back-pressure must stay per connection: a stuck QoS 0 subscriber loses its own messages
    // (or is disconnected) while everyone else keeps flowing.
    let broker = Broker::start();
    let [pub_id, good_id] = ids_on_distinct_shards("slow");
    let stuck_id = id_on_shard("slow-stuck", home_shard(&good_id, SHARDS));
    let mut stuck = RawClient::connect(broker.addr, V4, &stuck_id);
    stuck.subscribe_ok(1, &[("flood/t", 0)]);
    let mut good = RawClient::connect(broker.addr, V4, &good_id);
    good.subscribe_ok(1, &[("flood/t", 0), ("flood/end", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);

    let payload = vec![b'x'; 4096];
    let started = std::time::Instant::now();
    let reader = std::thread::spawn(move || {
        let mut count = 0usize;
        loop {
            match good.recv(Duration::from_secs(5)) {
                Recv::Packet(Packet::Publish(p)) if p.topic.as_str() == "flood/end" => {
                    good.ack(&p);
                    return count;
                }
                Recv::Packet(Packet::Publish(_)) => count += 1,
                other => panic!("good subscriber: {other:?} after {count} messages"),
            }
        }
    });
    // 8000 x 4 KiB = 32 MiB: far beyond any socket buffer and the 2 MiB outbound limit.
    for _ in 0..8000 {
        publisher.send(&publish_packet("flood/t", &payload, 0, None, false));
    }
    publisher.publish("flood/end", b"end", 1, false);
    publisher.ping();
    let count = reader
        .join()
        .unwrap_or_else(|_| panic!("the good subscriber failed"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "flood took {:?}",
        started.elapsed()
    );
    eprintln!("good subscriber received {count} of 8000 flood messages");
    assert!(count > 0, "the good subscriber received nothing");
    drop(stuck);
}

#[test]
fn a_qos1_subscriber_that_never_reads_does_not_stall_the_publisher_or_other_subscribers() {
    // Section 4.3.2: a QoS 1 subscriber that never reads fills only its own window and queue;
    // a reading subscriber on the same shard gets every message, and the publisher (on the
    // other shard) every PUBACK, as if it were not there.
    let broker = Broker::start();
    let [stuck_id, pub_id] = ids_on_distinct_shards("qos1-stuck");
    let reader_id = id_on_shard("qos1-reader", home_shard(&stuck_id, SHARDS));
    let mut stuck = RawClient::connect(broker.addr, V4, &stuck_id);
    stuck.subscribe_ok(1, &[("big/t", 1)]);
    let mut reader = RawClient::connect(broker.addr, V4, &reader_id);
    reader.subscribe_ok(1, &[("big/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    const N: usize = 100;
    let payload = vec![7u8; 64 * 1024];
    let reading = std::thread::spawn(move || {
        for i in 1..=N {
            let got = reader.expect_publish_acked();
            assert_eq!(got.payload.len(), 64 * 1024, "message {i}");
        }
    });
    for _ in 0..N {
        publisher.publish("big/t", &payload, 1, false);
    }
    assert!(
        reading.join().is_ok(),
        "the reading subscriber got every message"
    );
    drop(stuck);
}

#[test]
fn the_home_shard_of_a_client_id_matches_the_broker() {
    // The suite's home shard (which every cross-shard test relies on) must agree with
    // the broker's own.
    for id in ["", "a", "client-1", "bystander-a-0", "many-199"] {
        for shards in [1usize, 2, 3, 8] {
            assert_eq!(
                home_shard(id, shards),
                ringmq::shard::home_shard(id.as_bytes(), shards),
                "{id:?} over {shards} shards"
            );
        }
    }
}

#[test]
fn qos1_messages_from_many_publishers_on_both_shards_are_never_lost() {
    // Section 4.3.2: every PUBACKed QoS 1 message reaches the (reading)
    // subscriber; ten publishers pipeline 100 each through the mesh and the local path.
    let broker = Broker::start();
    let sub_id = id_on_shard("fanin-sub", 1);
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("fanin/+", 1)]);
    let addr = broker.addr;
    let publishers: Vec<_> = (0..10)
        .map(|p| {
            std::thread::spawn(move || {
                let id = id_on_shard(&format!("fanin-pub{p}"), p % SHARDS);
                let mut c = RawClient::connect(addr, V4, &id);
                let mut bytes = Vec::new();
                for i in 1..=100u16 {
                    bytes.extend(encode_bytes(
                        &publish_packet(&format!("fanin/{p}"), &i.to_be_bytes(), 1, Some(i), false),
                        V4,
                    ));
                }
                c.send_bytes(&bytes);
                for _ in 1..=100 {
                    assert!(matches!(c.expect_packet(PROMPT), Packet::PubAck(_)));
                }
            })
        })
        .collect();
    let got = collect_publishes(&mut sub, Duration::from_millis(1500));
    for p in publishers {
        assert!(p.join().is_ok(), "a publisher failed");
    }
    for p in 0..10 {
        let t = format!("fanin/{p}");
        let seq: Vec<u16> = got
            .iter()
            .filter(|m| m.topic.as_str() == t)
            .map(|m| u16::from_be_bytes([m.payload[0], m.payload[1]]))
            .collect();
        assert_eq!(
            seq,
            (1..=100).collect::<Vec<u16>>(),
            "{t}: lost or reordered"
        );
    }
}

#[test]
fn a_qos1_subscriber_that_pauses_reading_gets_every_message_when_it_resumes() {
    // Section 4.3.2: QoS 1 messages the server accepted are delivered at least once; a
    // subscriber that stops reading for a while (socket buffers full, broker queue filling)
    // then catches up receives all of them, in order [MQTT-4.6.0-6].
    let broker = Broker::start();
    let [pub_id, sub_id] = ids_on_distinct_shards("pause");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("pause/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    const N: u16 = 800;
    let mut payload = vec![b'p'; 2048];
    let mut bytes = Vec::new();
    for i in 1..=N {
        payload[..2].copy_from_slice(&i.to_be_bytes());
        bytes.extend(encode_bytes(
            &publish_packet("pause/t", &payload, 1, Some(i), false),
            V4,
        ));
    }
    publisher.send_bytes(&bytes);
    for _ in 1..=N {
        assert!(matches!(publisher.expect_packet(PROMPT), Packet::PubAck(_)));
    }
    std::thread::sleep(Duration::from_millis(500));
    let got = collect_publishes(&mut sub, Duration::from_millis(800));
    let seq: Vec<u16> = got
        .iter()
        .map(|p| u16::from_be_bytes([p.payload[0], p.payload[1]]))
        .collect();
    assert_eq!(seq, (1..=N).collect::<Vec<u16>>());
}

#[test]
fn a_qos1_publisher_faster_than_a_reading_subscriber_on_the_other_shard_loses_nothing() {
    // Section 4.3.2: what the broker acknowledged must reach a subscriber that keeps reading.
    // The publisher keeps 64 QoS 1 messages of 8 KiB in flight; the subscriber, homed on the
    // other shard, acknowledges slowly; its queue (4 MiB, 512 of these) would overflow
    // without back pressure across the mesh holding the publisher's PUBACKs.
    let broker = Broker::start_with_config("[queues]\nmax_queued_bytes = 4194304\n");
    let [sub_id, pub_id] = ids_on_distinct_shards("qos1-bp");
    let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
    sub.subscribe_ok(1, &[("bp/t", 1)]);
    let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
    const N: u16 = 1500;
    let reading = std::thread::spawn(move || {
        for i in 1..=N {
            let got = sub.expect_publish_acked();
            assert_eq!(&got.payload[..2], &i.to_be_bytes(), "message {i} in order");
            if i % 8 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    });
    let mut payload = vec![0u8; 8 * 1024];
    let mut oldest = 1u16;
    for i in 1..=N {
        if i - oldest >= 64 {
            publisher.expect_puback(oldest);
            oldest += 1;
        }
        payload[..2].copy_from_slice(&i.to_be_bytes());
        publisher.send(&publish_packet("bp/t", &payload, 1, Some(i), false));
    }
    while oldest <= N {
        publisher.expect_puback(oldest);
        oldest += 1;
    }
    assert!(
        reading.join().is_ok(),
        "every acknowledged message arrived, in order"
    );
}

#[test]
fn large_packets_from_many_publishers_wait_for_the_shards_read_budget_and_all_arrive() {
    // A shard reads packets over 64 KiB only within `mqtt.max_partial_bytes`: here room for
    // one 1 MB PUBLISH per shard at a time. Six publishers (both shards) send one each at
    // once; those without room wait (their reads pause) and every message arrives, once.
    let broker = Broker::start_with_config(
        "[mqtt]\nmax_packet_size = 1100000\nmax_partial_bytes = 1100000\n",
    );
    let mut sub = RawClient::connect(broker.addr, V4, "budget-sub");
    sub.subscribe_ok(1, &[("budget/#", 1)]);
    std::thread::scope(|scope| {
        for n in 0..6 {
            let addr = broker.addr;
            scope.spawn(move || {
                let id = id_on_shard(&format!("budget-pub{n}"), n % SHARDS);
                let mut publisher = RawClient::connect(addr, V4, &id);
                let payload = vec![n as u8; 1_000_000];
                publisher.publish(&format!("budget/{n}"), &payload, 1, false);
            });
        }
    });
    let mut got: Vec<u8> = (0..6)
        .map(|_| {
            let p = sub.expect_publish_acked();
            assert_eq!(p.payload.len(), 1_000_000);
            p.payload[0]
        })
        .collect();
    got.sort_unstable();
    assert_eq!(got, [0, 1, 2, 3, 4, 5]);
    sub.expect_nothing(QUIET);
}
