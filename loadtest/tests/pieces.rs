//! Small pieces of the generator: the message header, packet-identifier bookkeeping, the
//! process's CPU time and a broker's memory from /proc.

use ringmq_load::clock::{parse_cpu_ticks, parse_vm_rss_kib, process_cpu_seconds};
use ringmq_load::payload::{HEADER_LEN, Header};
use ringmq_load::worker::IdPool;

#[test]
fn the_header_round_trips_through_a_payload() {
    let header = Header {
        publisher: 7,
        seq: 1 << 40,
        sent_ns: 123_456_789,
    };
    let mut payload = vec![0u8; 64];
    assert!(header.write_to(&mut payload));
    assert_eq!(Header::read_from(&payload), Some(header));
    assert!(
        payload[HEADER_LEN..].iter().all(|&b| b == 0),
        "padding untouched"
    );
}

#[test]
fn a_payload_shorter_than_the_header_is_refused() {
    assert_eq!(Header::read_from(&[0u8; HEADER_LEN - 1]), None);
    assert!(
        !Header {
            publisher: 0,
            seq: 0,
            sent_ns: 0
        }
        .write_to(&mut [0u8; 3])
    );
}

#[test]
fn packet_ids_are_never_zero_and_never_reused_while_in_use() {
    // [MQTT-2.2.1-3] a packet identifier is non-zero; an id in flight is not handed out again.
    let mut pool = IdPool::default();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..65_535 {
        let id = pool.alloc().expect("free id");
        assert_ne!(id.get(), 0);
        assert!(seen.insert(id.get()));
    }
    assert_eq!(pool.free(), 0);
    assert!(pool.alloc().is_none());
    let released = ringmq_protocol::PacketId::new(42).expect("non-zero");
    assert!(pool.release(released));
    assert!(
        !pool.release(released),
        "a second ack for the same id is ignored"
    );
    assert_eq!(pool.alloc(), Some(released));
}

#[test]
fn cpu_ticks_are_read_after_the_command_name() {
    let stat = "1234 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0";
    assert_eq!(parse_cpu_ticks(stat), Some(300));
}

#[test]
fn this_process_has_used_some_cpu() {
    let mut x = 0u64;
    for i in 0..20_000_000u64 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    std::hint::black_box(x);
    assert!(process_cpu_seconds().is_some());
}

#[test]
fn vm_rss_is_read_in_kib() {
    let status = "Name:\tmosquitto\nVmPeak:\t  9000 kB\nVmRSS:\t  4321 kB\nThreads: 1\n";
    assert_eq!(parse_vm_rss_kib(status), Some(4321));
}
