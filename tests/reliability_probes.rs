//! Memory probes of the real broker under abuse, for `docs/reliability.md`: they measure
//! (VmRSS of the broker process) and print, and assert only loose bounds. Ignored by default;
//! run one at a time in release mode, e.g.
//! `cargo test --release --test reliability_probes -- --ignored --nocapture --test-threads 1`.
//! `PROBE_CYCLES` sets the number of connect/close cycles (default 100,000); `PROBE_TOML`
//! replaces the config of the large-message probe (for a broker without its keys).

pub mod support;

use ringmq::protocol::{Packet, ProtocolVersion};
use std::time::{Duration, Instant};
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// The resident set of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn cycles() -> usize {
    std::env::var("PROBE_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Connects `connect`, waits for its CONNACK, and drops the socket without DISCONNECT.
fn connect_and_drop(broker: &Broker, connect: &ConnectBuilder) {
    let (client, _) = RawClient::connect_with(broker.addr, connect.clone());
    client.drop_connection();
}

/// `cycles` connect/close cycles of `connect_for(n)`, printing the RSS every tenth of them.
fn cycle(broker: &Broker, what: &str, connect_for: impl Fn(usize) -> ConnectBuilder) -> u64 {
    let total = cycles();
    // Warm up: the first connections size the slabs and buffers once.
    for n in 0..1000 {
        connect_and_drop(broker, &connect_for(n));
    }
    std::thread::sleep(Duration::from_secs(1));
    let start = rss_kib(broker.pid());
    println!("{what}: {start} KiB after 1,000 warm-up cycles");
    let began = Instant::now();
    for n in 0..total {
        connect_and_drop(broker, &connect_for(n));
        if (n + 1) % (total / 10).max(1) == 0 {
            println!(
                "{what}: {} KiB after {} cycles",
                rss_kib(broker.pid()),
                n + 1
            );
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    let end = rss_kib(broker.pid());
    println!(
        "{what}: {end} KiB 2 s after {total} cycles ({:.1} s), {:+} KiB",
        began.elapsed().as_secs_f64(),
        end as i64 - start as i64
    );
    end.saturating_sub(start)
}

#[test]
#[ignore = "a memory probe: run by hand"]
fn rss_over_connect_close_cycles_with_keep_alive_65535() {
    let broker = Broker::start();
    let grown = cycle(&broker, "keep alive 65535, new ids", |n| {
        ConnectBuilder::new(V4, &format!("cycle-{n}")).keep_alive(u16::MAX)
    });
    assert!(grown < 4 * 1024, "grew {grown} KiB");
}

#[test]
#[ignore = "a memory probe: run by hand"]
fn rss_over_reconnects_of_one_persistent_session() {
    let broker = Broker::start();
    let grown = cycle(&broker, "one session, expiry 0xFFFFFFFE", |_| {
        ConnectBuilder::new(V5, "persistent")
            .clean(false)
            .session_expiry(u32::MAX - 1)
            .keep_alive(u16::MAX)
    });
    assert!(grown < 4 * 1024, "grew {grown} KiB");
}

#[test]
#[ignore = "a memory probe: run by hand"]
fn rss_after_two_100_mib_messages() {
    const SIZE: usize = 100 * 1024 * 1024;
    let toml = std::env::var("PROBE_TOML").unwrap_or_else(|_| {
        "[mqtt]\nmax_packet_size = 268435460\nmax_partial_bytes = 268435460\n".into()
    });
    let broker = Broker::start_with_config(&toml);
    std::thread::sleep(Duration::from_secs(1));
    let idle = rss_kib(broker.pid());
    println!("idle: {idle} KiB");
    let payload = vec![0x5Au8; SIZE];
    for (round, [pub_id, sub_id]) in [ids_on_distinct_shards("huge"), same_shard("huge")]
        .into_iter()
        .enumerate()
    {
        let mut sub = RawClient::connect(broker.addr, V4, &sub_id);
        sub.subscribe_ok(1, &[("huge/#", 1)]);
        let mut publisher = RawClient::connect(broker.addr, V4, &pub_id);
        let began = Instant::now();
        for n in 0..2u16 {
            publisher.send(&publish_packet("huge/t", &payload, 1, Some(n + 1), false));
            let got = loop {
                match sub.recv(Duration::from_secs(60)) {
                    Recv::Packet(Packet::Publish(p)) => break p,
                    Recv::Packet(Packet::PubAck(_)) => {}
                    other => panic!("expected the 100 MiB PUBLISH, got {other:?}"),
                }
            };
            assert_eq!(got.payload.len(), SIZE);
            sub.ack(&got);
            publisher.expect_puback(n + 1);
        }
        let peak = rss_kib(broker.pid());
        println!(
            "round {round}: two 100 MiB messages in {:.2} s, {peak} KiB while connected",
            began.elapsed().as_secs_f64()
        );
        std::thread::sleep(Duration::from_secs(1));
        println!(
            "round {round}: {} KiB 1 s later, both still connected",
            rss_kib(broker.pid())
        );
        sub.disconnect();
        publisher.disconnect();
        for after in 1..=3 {
            std::thread::sleep(Duration::from_secs(1));
            println!(
                "round {round}: {} KiB {after} s after both left",
                rss_kib(broker.pid())
            );
        }
    }
    let end = rss_kib(broker.pid());
    assert!(end < idle + 16 * 1024, "{end} KiB vs {idle} KiB idle");
}

/// Two client ids homed on the same shard.
fn same_shard(prefix: &str) -> [String; 2] {
    [
        id_on_shard(&format!("{prefix}-p"), 0),
        id_on_shard(&format!("{prefix}-s"), 0),
    ]
}

#[test]
#[ignore = "a memory probe: run by hand"]
fn rss_of_stored_sessions_up_to_max_sessions() {
    // A client-id sprayer with persistent sessions: the sessions stored stop at
    // `max_sessions` (each shard its share), and further new ids are refused with 0x97.
    const MAX: usize = 20_000;
    let broker = Broker::start_with_config(&format!("max_sessions = {MAX}\n"));
    std::thread::sleep(Duration::from_secs(1));
    let idle = rss_kib(broker.pid());
    let (mut stored, mut refused) = (0, 0);
    for n in 0..2 * MAX {
        let id = format!("spray-{n}");
        let mut c = RawClient::tcp(broker.addr, V5, &id);
        c.send(
            &ConnectBuilder::new(V5, &id)
                .session_expiry(u32::MAX - 1)
                .packet(),
        );
        match c.expect_connack().reason {
            ringmq::protocol::ReasonCode::Success => stored += 1,
            ringmq::protocol::ReasonCode::QuotaExceeded => refused += 1,
            other => panic!("{id}: {other:?}"),
        }
        c.drop_connection();
    }
    std::thread::sleep(Duration::from_secs(2));
    let end = rss_kib(broker.pid());
    println!(
        "{stored} sessions stored, {refused} refused: {end} KiB ({idle} KiB idle), \
         {} bytes per stored session",
        (end - idle) * 1024 / stored.max(1) as u64
    );
    assert!(
        stored <= MAX + SHARDS,
        "{stored} stored with max_sessions = {MAX}"
    );
}
