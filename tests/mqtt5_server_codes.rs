//! The reason codes the broker sends when it ends or refuses a connection for its own
//! reasons (MQTT 5.0 sections 3.2.2.2, 3.14.2.1, 4.11 and 4.13.2), against the real `ringmq`
//! binary with raw-socket clients: the connection limit (0x97), the connection rate limit
//! (0x9F), server redirection (0x9C / 0x9D with a Server Reference), a stalled subscriber
//! (DISCONNECT 0x97) and a graceful shutdown (DISCONNECT 0x8B). A 3.1.1 client is refused with
//! return code 0x03 Server unavailable, the only one of its six that fits.

pub mod support;

use ringmq::protocol::packet::ConnAck;
use ringmq::protocol::{Packet, ProtocolVersion, ReasonCode};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::FromRawFd;
use std::time::{Duration, Instant};
use support::*;

const V4: ProtocolVersion = ProtocolVersion::V4;
const V5: ProtocolVersion = ProtocolVersion::V5;

/// Attempts a connection; a refusal must be a CONNACK with Session Present 0 [MQTT-3.2.2-6]
/// followed by the close [MQTT-3.2.2-7] ([MQTT-3.2.2-5] in 3.1.1).
fn attempt(addr: SocketAddr, version: ProtocolVersion, id: &str) -> Result<RawClient, ConnAck> {
    let mut client = RawClient::tcp(addr, version, id);
    client.send(&ConnectBuilder::new(version, id).packet());
    let connack = client.expect_connack();
    if connack.reason == ReasonCode::Success {
        return Ok(client);
    }
    assert!(
        !connack.session_present,
        "{id}: refused with Session Present 1"
    );
    client.expect_closed(PROMPT);
    Err(connack)
}

/// Connects clients (homes alternating between the shards) until one is refused; returns
/// the accepted ones and the refusal. The kernel picks the accepting shard, so how many get in
/// first varies, but each shard's share is small and fills within a few attempts.
fn connect_until_refused(
    addr: SocketAddr,
    version: ProtocolVersion,
    prefix: &str,
) -> (Vec<RawClient>, ConnAck) {
    let mut accepted = Vec::new();
    for n in 0..12 {
        let id = id_on_shard(&format!("{prefix}{n}"), n % SHARDS);
        match attempt(addr, version, &id) {
            Ok(client) => accepted.push(client),
            Err(connack) => return (accepted, connack),
        }
    }
    panic!("{prefix}: 12 connections accepted, none refused");
}

/// The accepted clients still work: each answers a ping, and a message goes from the last to
/// the first.
fn still_served(clients: &mut [RawClient]) {
    for c in clients.iter_mut() {
        c.ping();
    }
    let Some((first, rest)) = clients.split_first_mut() else {
        panic!("no client was accepted");
    };
    first.subscribe_ok(1, &[("still/#", 0)]);
    let publisher = rest.last_mut().unwrap_or(first);
    publisher.publish("still/here", b"ok", 0, false);
    assert_eq!(payload_str(&first.expect_publish()), "ok");
}

#[test]
fn over_max_connections_5_0_gets_connack_0x97_and_3_1_1_gets_0x03() {
    // 3.2.2.2: 0x97 Quota exceeded, "an implementation or administrative imposed limit has
    // been exceeded": the configured connection limit (1 per shard here).
    let broker = Broker::start_with_config("max_connections = 2\n");
    let (mut accepted, refusal) = connect_until_refused(broker.addr, V5, "full5-");
    assert_eq!(refusal.reason, ReasonCode::QuotaExceeded);
    // 3.1.1 section 3.2.2.3: return code 0x03, "the MQTT service is unavailable".
    let (more, refusal) = connect_until_refused(broker.addr, V4, "full4-");
    assert_eq!(refusal.reason, ReasonCode::ServerUnavailable);
    accepted.extend(more);
    assert!(
        accepted.len() <= 4,
        "{} connections accepted with a limit of 2 (1 per shard; a handed-off client counts \
         on its home shard)",
        accepted.len()
    );
    still_served(&mut accepted);
}

#[test]
fn a_connect_that_would_store_a_session_over_max_sessions_gets_0x97_and_3_1_1_gets_0x03() {
    // 3.2.2.2: 0x97 Quota exceeded for the configured bound on stored sessions (1 per shard
    // here). A session stays stored while its client is offline; a client whose session is
    // stored resumes it [MQTT-3.2.2-2] and a new client id is refused until one ends.
    let broker = Broker::start_with_config("max_sessions = 2\n");
    let [kept, other] = [id_on_shard("kept", 0), id_on_shard("other", 0)];
    let connect = ConnectBuilder::new(V5, &kept).persistent();
    let (first, _) = RawClient::connect_with(broker.addr, connect.clone());
    first.disconnect();
    for version in [V5, V4] {
        let mut refused = RawClient::tcp(broker.addr, version, &other);
        refused.send(&ConnectBuilder::new(version, &other).packet());
        let connack = refused.expect_connack();
        let expected = match version {
            V5 => ReasonCode::QuotaExceeded,
            // 3.1.1 section 3.2.2.3: 0x03, "the MQTT service is unavailable".
            _ => ReasonCode::ServerUnavailable,
        };
        assert_eq!(connack.reason, expected, "{version:?}");
        assert!(!connack.session_present, "[MQTT-3.2.2-6]");
        refused.expect_closed(PROMPT);
    }
    let (mut back, connack) = RawClient::connect_with(broker.addr, connect);
    assert!(connack.session_present, "the stored session is resumed");
    back.ping();
    // The other shard has its own share.
    let mut elsewhere = RawClient::connect(broker.addr, V5, &id_on_shard("elsewhere", 1));
    elsewhere.ping();
}

#[test]
fn a_packet_dribbled_slower_than_the_packet_timeout_gets_disconnect_0x97_and_3_1_1_a_close() {
    // 3.14.2.1: 0x97 Quota exceeded, "an implementation or administrative imposed limit has
    // been exceeded": here `mqtt.packet_timeout_ms` (1 s), the time one packet may take to
    // arrive. After CONNECT, a PUBLISH announcing 1 MB comes 16 bytes every 200 ms; the
    // server says why [MQTT-3.14.4-1] and closes [MQTT-3.14.4-2] (3.1.1: just closes).
    let broker = Broker::start_with_config("[mqtt]\npacket_timeout_ms = 1000\n");
    for version in [V5, V4] {
        let mut c = RawClient::connect(broker.addr, version, &format!("slowloris-{version:?}"));
        let began = Instant::now();
        c.send_bytes(&[0x30, 0xC0, 0x84, 0x3D, 0x00, 0x03, b'a', b'/', b'b']);
        let got = loop {
            c.send_bytes(&[0x5A; 16]);
            match c.recv(Duration::from_millis(200)) {
                Recv::Timeout => {}
                other => break other,
            }
            assert!(
                began.elapsed() < Duration::from_secs(5),
                "{version:?}: never closed"
            );
        };
        let waited = began.elapsed();
        match (version, got) {
            (V5, Recv::Packet(Packet::Disconnect(d))) => {
                assert_eq!(d.reason, ReasonCode::QuotaExceeded);
                c.expect_closed(PROMPT);
            }
            (V4, Recv::Closed) => {}
            (_, other) => panic!("{version:?}: expected the close, got {other:?}"),
        }
        assert!(
            waited >= Duration::from_millis(1000) && waited < Duration::from_millis(2500),
            "{version:?}: closed after {waited:?}, the bound is 1 s (timer tick 100 ms)"
        );
    }
}

/// Writes `bytes` and then `more` in 16 KiB writes without reading anything back, as a client
/// busy sending does; every write must succeed (the broker reads and discards what follows
/// its DISCONNECT instead of resetting the connection under it).
fn keep_writing(c: &mut RawClient, bytes: &[u8], more: usize) {
    let junk = [0u8; 16 * 1024];
    let result = c
        .try_send_bytes(bytes)
        .and_then(|()| (0..more / junk.len()).try_for_each(|_| c.try_send_bytes(&junk)));
    if let Err(e) = result {
        panic!(
            "{}: a write failed before the client read anything: {e}",
            c.name
        );
    }
}

#[test]
fn a_client_still_writing_after_a_too_large_packet_reads_disconnect_0x95() {
    // 5.0 section 3.2.2.3.6 and 4.13.1: a packet over the server's Maximum Packet Size gets
    // DISCONNECT 0x95, then the close [MQTT-3.14.4-2]. The client goes on writing (the rest
    // of its packet and more) and reads only afterwards: it must still read the reason, so
    // the server may not reset the connection while input it has not read is pending.
    let broker = Broker::start_with_config("[mqtt]\nmax_packet_size = 1024\n");
    let mut c = RawClient::connect(broker.addr, V5, "too-large-writer");
    let big = encode_bytes(&publish_packet("big/t", &[7u8; 4000], 0, None, false), V5);
    keep_writing(&mut c, &big, 8 << 20);
    c.expect_disconnect_then_close(PROMPT, &[ReasonCode::PacketTooLarge]);
}

#[test]
fn a_client_still_writing_past_the_receive_maximum_reads_disconnect_0x93() {
    // [MQTT-3.3.4-9] more unacknowledged QoS 2 PUBLISHes than the Receive Maximum announced
    // (64) gets DISCONNECT 0x93 (3.3.4). The client sends many more and reads only after:
    // it still reads its PUBRECs and the reason.
    let broker = Broker::start();
    let mut c = RawClient::connect(broker.addr, V5, "greedy-writer");
    let mut bytes = Vec::new();
    for id in 1..=1000u16 {
        let publish = publish_packet("greedy/t", &[1u8; 100], 2, Some(id), false);
        bytes.extend(encode_bytes(&publish, V5));
    }
    keep_writing(&mut c, &bytes, 8 << 20);
    let mut pubrecs = 0;
    loop {
        match c.recv(PROMPT) {
            Recv::Packet(Packet::PubRec(_)) => pubrecs += 1,
            Recv::Packet(Packet::Disconnect(d)) => {
                assert_eq!(d.reason, ReasonCode::ReceiveMaximumExceeded);
                c.expect_closed(PROMPT);
                break;
            }
            other => panic!("after {pubrecs} PUBRECs: expected DISCONNECT 0x93, got {other:?}"),
        }
    }
    assert_eq!(
        pubrecs, 64,
        "one PUBREC per PUBLISH within the Receive Maximum"
    );
}

#[test]
fn over_max_connection_rate_5_0_gets_connack_0x9f_and_3_1_1_gets_0x03() {
    // 3.2.2.2: 0x9F Connection rate exceeded. 2 per second over 2 shards: 1 each.
    let broker = Broker::start_with_config("max_connection_rate = 2\n");
    let (mut accepted, refusal) = connect_until_refused(broker.addr, V5, "rate5-");
    assert_eq!(refusal.reason, ReasonCode::ConnectionRateExceeded);
    let (more, refusal) = connect_until_refused(broker.addr, V4, "rate4-");
    assert_eq!(refusal.reason, ReasonCode::ServerUnavailable);
    accepted.extend(more);
    still_served(&mut accepted);
}

#[test]
fn without_a_rate_limit_a_burst_of_connections_is_accepted() {
    // The default is unlimited: a burst that the test above refuses goes through.
    let broker = Broker::start();
    let mut clients: Vec<RawClient> = (0..8)
        .map(|n| RawClient::connect(broker.addr, V5, &format!("burst-{n}")))
        .collect();
    still_served(&mut clients);
}

fn redirect_config(permanent: bool) -> String {
    format!(
        "[redirect]\nserver_reference = \"other.example:1883 backup:1883\"\npermanent = {permanent}\n"
    )
}

fn assert_redirected(addr: SocketAddr, reason: ReasonCode) {
    let refusal = attempt(addr, V5, "redirected5").err();
    let Some(connack) = refusal else {
        panic!("a redirecting broker accepted a 5.0 client");
    };
    assert_eq!(connack.reason, reason);
    // 3.2.2.3.16 / 4.11: the Server Reference names the server to use.
    let reference = connack
        .properties
        .server_reference
        .as_ref()
        .map(|r| r.as_str());
    assert_eq!(reference, Some("other.example:1883 backup:1883"));
    // 3.1.1 has neither code nor property: 0x03 Server unavailable.
    let refusal = attempt(addr, V4, "redirected4").err();
    assert_eq!(
        refusal.map(|c| c.reason),
        Some(ReasonCode::ServerUnavailable)
    );
}

#[test]
fn a_temporary_redirect_answers_connack_0x9c_with_the_server_reference() {
    // 4.11, 3.2.2.2: 0x9C Use another server, "the Client should temporarily use another
    // server".
    let broker = Broker::start_with_config(&redirect_config(false));
    assert_redirected(broker.addr, ReasonCode::UseAnotherServer);
}

#[test]
fn a_permanent_redirect_answers_connack_0x9d_with_the_server_reference() {
    // 4.11, 3.2.2.2: 0x9D Server moved, "the Client should permanently use another server".
    let broker = Broker::start_with_config(&redirect_config(true));
    assert_redirected(broker.addr, ReasonCode::ServerMoved);
}

/// A TCP connection to `addr` whose receive buffer is a few KiB (set before connecting, so
/// the kernel does not grow it), so that a subscriber that does not read stalls the broker's
/// writer after little data.
fn small_window_stream(addr: SocketAddr) -> TcpStream {
    let SocketAddr::V4(v4) = addr else {
        panic!("the test broker listens on IPv4 loopback");
    };
    // SAFETY: plain socket syscalls on a descriptor this function creates and then hands to
    // `TcpStream` as its only owner; the pointers are to locals that outlive each call.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0, "socket() failed");
        let size: libc::c_int = 4096;
        let rc = libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            (&size as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "setsockopt(SO_RCVBUF) failed");
        let sin = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from_ne_bytes(v4.ip().octets()),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            (&sin as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        assert_eq!(rc, 0, "connect() failed");
        TcpStream::from_raw_fd(fd)
    }
}

#[test]
fn a_stalled_subscriber_is_closed_with_disconnect_0x97_behind_what_it_was_sent() {
    // 3.14.2.1: 0x97 Quota exceeded, "an implementation or administrative imposed limit has
    // been exceeded": the outbound buffer limit, for longer than the stall timeout. The
    // DISCONNECT is best effort: it follows the bytes the broker's writer already holds, for
    // as long as the stall grace (5 s); this client starts reading well within it.
    let broker = Broker::start_with_config(
        "[queues]\noutbound_buffer_limit = 65536\nstall_timeout_ms = 300\n\
         [runtime]\ntimer_tick_ms = 10\n",
    );
    let stream = small_window_stream(broker.addr);
    let mut sub = RawClient::from_stream(stream, V5, "stalled");
    sub.send(&ConnectBuilder::new(V5, "stalled").packet());
    assert_eq!(sub.expect_connack().reason, ReasonCode::Success);
    assert_eq!(sub.subscribe(1, &[("stall/#", 0)]), [ReasonCode::Success]);
    let mut publisher = RawClient::connect(broker.addr, V5, "stall-publisher");
    let payload = vec![b'x'; 64 * 1024];
    for _ in 0..192 {
        publisher.publish("stall/big", &payload, 0, false);
    }
    publisher.ping();
    // Past the stall timeout (plus ticks), the broker has given up on the subscriber.
    std::thread::sleep(Duration::from_millis(1000));
    publisher.ping();

    let mut last = None;
    let mut publishes = 0usize;
    let deadline = Instant::now() + Duration::from_secs(10);
    let closed = loop {
        match sub.recv(deadline.saturating_duration_since(Instant::now())) {
            Recv::Packet(packet) => {
                if matches!(packet, Packet::Publish(_)) {
                    publishes += 1;
                }
                last = Some(packet);
            }
            Recv::Closed => break true,
            Recv::Timeout => break false,
            Recv::Garbage(e) => panic!("stalled subscriber: garbage from the broker: {e:?}"),
        }
    };
    assert!(closed, "the stalled subscriber was not closed");
    assert!(publishes > 0, "it was sent messages before it stalled");
    assert_eq!(sub.unread_bytes(), 0, "the stream ended mid-packet");
    match last {
        Some(Packet::Disconnect(d)) => assert_eq!(d.reason, ReasonCode::QuotaExceeded),
        Some(Packet::Publish(p)) => panic!("the last packet was a PUBLISH to {}", p.topic),
        other => panic!("expected DISCONNECT 0x97 last, got {other:?}"),
    }
}

#[test]
fn a_graceful_shutdown_sends_5_0_clients_disconnect_0x8b_and_closes_3_1_1_clients() {
    // 3.14.2.1: 0x8B Server shutting down. 3.1.1 has no server DISCONNECT: a bare close.
    // SIGTERM closes every connection, subscribed or not, on both shards; the process then
    // exits with status 0.
    let mut broker = Broker::start();
    let mut clients: Vec<RawClient> = (0..6)
        .map(|i| {
            let version = if i % 2 == 0 { V4 } else { V5 };
            let id = id_on_shard(&format!("bye{i}"), i / 2 % SHARDS);
            let mut c = RawClient::connect(broker.addr, version, &id);
            if i < 4 {
                c.subscribe_ok(1, &[("bye/t", 1)]);
            }
            c.ping();
            c
        })
        .collect();
    broker.sigterm();
    for c in clients.iter_mut() {
        if c.version == V5 {
            c.expect_disconnect_then_close(PROMPT, &[ReasonCode::ServerShuttingDown]);
        } else {
            c.expect_closed(PROMPT);
        }
    }
    let status = broker.wait_exit(Duration::from_secs(5));
    assert!(
        status.is_some_and(|s| s.success()),
        "exit status after SIGTERM: {status:?}"
    );
}
