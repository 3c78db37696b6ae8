//! What a shard gives back after abuse: timers cancelled when what they guard goes away, so
//! reconnecting clients with long keep alives and expiries leave nothing behind.

use super::*;
use crate::timer::test_clock as clock;

const CYCLES: usize = 1000;

/// A connection's whole life as its tasks see it: it is lost, then its writer ends.
fn lose(state: &mut ShardState, conn: ConnId) {
    state.on_connection_lost(conn, clock());
    state.remove_conn(conn, clock());
}

#[test]
fn connect_close_cycles_with_keep_alive_65535_leave_no_timer_behind() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    let start = state.timers.len();
    for n in 0..CYCLES {
        for version in [ProtocolVersion::V4, ProtocolVersion::V5] {
            let mut c = connect(version, &format!("ka-{n}"));
            c.keep_alive = u16::MAX;
            let conn = open_with(&mut state, &c);
            assert_eq!(state.timers.len(), start + 1, "its keep alive timer");
            lose(&mut state, conn);
        }
    }
    assert_eq!(
        state.timers.len(),
        start,
        "every keep alive timer was cancelled"
    );
}

#[test]
fn a_persistent_session_reconnecting_keeps_one_expiry_and_one_will_timer_at_most() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    let mut c = persistent_v5("back", u32::MAX - 1);
    c.keep_alive = u16::MAX;
    c.will = Some(crate::protocol::packet::LastWill {
        topic: TopicName::try_from("w/back").expect("valid"),
        payload: Bytes::from_static(b"gone"),
        qos: QoS::AtMostOnce,
        retain: false,
        properties: Properties::from(crate::protocol::PropertyValues {
            will_delay_interval: Some(u32::MAX - 1),
            ..Default::default()
        }),
    });
    let start = state.timers.len();
    for _ in 0..CYCLES {
        let conn = open_with(&mut state, &c);
        assert_eq!(state.timers.len(), start + 1, "online: its keep alive only");
        lose(&mut state, conn);
        assert_eq!(
            state.timers.len(),
            start + 2,
            "offline: its expiry and its will delay"
        );
    }
    // A clean start ends the stored session: its timers go with it.
    c.clean_start = true;
    c.properties.session_expiry_interval = None;
    let conn = open_with(&mut state, &c);
    lose(&mut state, conn);
    assert_eq!(
        state.timers.len(),
        start,
        "nothing left once the session ended"
    );
}

#[test]
fn a_stalled_connection_that_recovers_keeps_no_stall_timer() {
    let limits = Limits {
        max_outbound_bytes: 40,
        ..Limits::default()
    };
    let (mut state, _peer) = two_shards(limits, 64);
    let sub = open(&mut state, ProtocolVersion::V4, "flappy");
    state.on_packet(sub, subscribe("f/t", QoS::AtMostOnce), clock());
    drain_packets(&mut state, sub, ProtocolVersion::V4);
    let publisher = open(&mut state, ProtocolVersion::V4, "p");
    let start = state.timers.len();
    for _ in 0..CYCLES {
        for _ in 0..3 {
            state.on_packet(publisher, publish("f/t", QoS::AtMostOnce, None), clock());
        }
        assert_eq!(state.timers.len(), start + 1, "over its cap: a stall timer");
        drain_packets(&mut state, sub, ProtocolVersion::V4);
        assert_eq!(
            state.timers.len(),
            start,
            "drained: the stall timer is gone"
        );
    }
}

#[test]
fn max_sessions_refuses_only_a_connect_that_would_store_one_more() {
    let limits = Limits {
        max_sessions: 2,
        ..Limits::default()
    };
    let (mut state, _peer) = two_shards(limits, 64);
    for id in ["s1", "s2"] {
        let c = persistent_v5(id, 600);
        assert!(state.check_session_room(&c, id).is_ok());
        let conn = open_with(&mut state, &c);
        lose(&mut state, conn);
    }
    for version in [ProtocolVersion::V4, ProtocolVersion::V5] {
        let c = connect(version, "s3");
        let refusal = state.check_session_room(&c, "s3").err();
        let connack = refusal.and_then(|r| r.connack(&c)).map(|mut bytes| {
            protocol::decode(&mut bytes, version, usize::MAX >> 4)
                .ok()
                .flatten()
        });
        match connack.flatten() {
            // 3.1.1 return code 0x03 is what 0x97 becomes on the wire.
            Some(Packet::ConnAck(ack)) if version == ProtocolVersion::V4 => {
                assert_eq!(ack.reason, ReasonCode::ServerUnavailable)
            }
            Some(Packet::ConnAck(ack)) => assert_eq!(ack.reason, ReasonCode::QuotaExceeded),
            other => panic!("{version:?}: expected a refusing CONNACK, got {other:?}"),
        }
    }
    // Resuming, or replacing a stored session with a clean start, stores none more.
    assert!(
        state
            .check_session_room(&persistent_v5("s1", 600), "s1")
            .is_ok()
    );
    assert!(
        state
            .check_session_room(&connect(ProtocolVersion::V5, "s2"), "s2")
            .is_ok()
    );
}

/// The first bytes of a PUBLISH announcing 1,000,000 bytes more.
const MEGABYTE_PUBLISH_HEAD: &[u8] = &[0x30, 0xC0, 0x84, 0x3D, 0x00, 0x01, b'd'];

fn packet_timeout_limits() -> Limits {
    Limits {
        packet_timeout: Duration::from_secs(10),
        ..Limits::default()
    }
}

#[test]
fn a_packet_slower_than_the_packet_timeout_closes_its_connection_with_0x97() {
    let (mut state, _peer) = two_shards(packet_timeout_limits(), 64);
    let conn = open(&mut state, ProtocolVersion::V5, "slowloris");
    let start = clock();
    state.end_of_batch(conn, start, MEGABYTE_PUBLISH_HEAD);
    // Dribbling more of the same packet does not restart its clock.
    for s in 1..10 {
        state.end_of_batch(conn, start + Duration::from_secs(s), MEGABYTE_PUBLISH_HEAD);
        state.tick(start + Duration::from_secs(s));
    }
    assert!(state.is_live(conn), "not late yet");
    state.tick(start + Duration::from_millis(10_100));
    assert!(!state.is_live(conn), "closed once the packet is late");
    match drain_packets(&mut state, conn, ProtocolVersion::V5).as_slice() {
        [Packet::Disconnect(d)] => assert_eq!(d.reason, ReasonCode::QuotaExceeded),
        other => panic!("expected DISCONNECT 0x97, got {other:?}"),
    }
    state.remove_conn(conn, clock());
    assert_eq!(state.timers.len(), 0);
}

#[test]
fn each_packet_has_its_own_clock() {
    let (mut state, _peer) = two_shards(packet_timeout_limits(), 64);
    let conn = open(&mut state, ProtocolVersion::V4, "steady");
    let start = clock();
    state.end_of_batch(conn, start, MEGABYTE_PUBLISH_HEAD);
    // At 6 s a packet completes and the next one begins.
    let later = start + Duration::from_secs(6);
    assert!(state.on_packet(conn, Packet::PingReq, later));
    state.end_of_batch(conn, later, b"\x30");
    state.tick(start + Duration::from_millis(10_100));
    assert!(
        state.is_live(conn),
        "the packet begun at 6 s is not late at 10 s"
    );
    state.end_of_batch(conn, start + Duration::from_secs(12), &[]);
    state.tick(start + Duration::from_secs(17));
    assert!(state.is_live(conn), "nothing part-read: no clock");
    state.end_of_batch(conn, start + Duration::from_secs(18), b"\x30");
    state.tick(start + Duration::from_millis(28_100));
    assert!(
        !state.is_live(conn),
        "a packet begun at 18 s is late at 28 s"
    );
}

/// A waker that counts its wakes.
struct Count(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn large_packets_are_read_only_within_the_shards_budget() {
    use std::sync::Arc;
    use std::task::Poll;
    const MIB: usize = 1024 * 1024;
    let limits = Limits {
        max_partial_bytes: 5 * MIB,
        ..packet_timeout_limits()
    };
    let (mut state, _peer) = two_shards(limits, 64);
    let [a, b] = ["a", "b"].map(|id| open(&mut state, ProtocolVersion::V4, id));
    let count = Arc::new(Count(0.into()));
    let waker = Waker::from(count.clone());
    let start = clock();
    assert_eq!(
        state.take_read_room(Some(a), 3 * MIB, start, &waker),
        Poll::Ready(true)
    );
    state.end_of_batch(b, start, MEGABYTE_PUBLISH_HEAD);
    assert_eq!(
        state.take_read_room(Some(b), 3 * MIB, start, &waker),
        Poll::Pending,
        "3 + 3 MiB is over the 5 MiB budget: b waits"
    );
    // Waiting for room is not the client's delay: no packet timeout meanwhile.
    state.tick(start + Duration::from_secs(11));
    assert!(state.is_live(b));
    state.give_back_read_room(3 * MIB);
    assert_eq!(
        count.0.load(std::sync::atomic::Ordering::Relaxed),
        1,
        "b is woken"
    );
    let granted = start + Duration::from_secs(12);
    assert_eq!(
        state.take_read_room(Some(b), 3 * MIB, granted, &waker),
        Poll::Ready(true)
    );
    assert_eq!(state.read_room_in_use(), 3 * MIB);
    state.tick(granted + Duration::from_secs(9));
    assert!(state.is_live(b), "its clock restarted when it got room");
    state.tick(granted + Duration::from_millis(10_100));
    assert!(!state.is_live(b), "and runs from there");
    assert_eq!(
        state.take_read_room(Some(b), MIB, granted, &waker),
        Poll::Ready(false),
        "a closing connection takes nothing"
    );
}

#[test]
fn a_reader_lingers_after_the_broker_closed_its_connection_but_not_after_an_abort() {
    let (mut state, _peer) = two_shards(Limits::default(), 64);
    let [live, closed, aborted] =
        ["live", "closed", "aborted"].map(|id| open(&mut state, ProtocolVersion::V5, id));
    assert!(!state.lingers(live), "a live connection reads packets");
    state.close(
        closed,
        Some(ReasonCode::PacketTooLarge.into()),
        true,
        clock(),
    );
    assert!(
        state.lingers(closed),
        "closed with a reason: linger so it arrives"
    );
    state.remove_conn(closed, clock());
    assert!(state.lingers(closed), "and after its writer finished");
    state.on_write_error(aborted, clock());
    assert!(!state.lingers(aborted), "an aborted connection is not read");
    let started = (0..reading::MAX_LINGERING + 1)
        .filter(|_| state.start_linger())
        .count();
    assert_eq!(started, reading::MAX_LINGERING, "bounded per shard");
    state.end_linger();
    assert!(state.start_linger());
}
