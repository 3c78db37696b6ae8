//! Codec benchmark: decode and encode of PUBLISH (16 B, 1 KiB, 64 KiB payloads) and CONNECT in
//! MQTT 3.1.1 and 5.0, ringmq side by side with rumqttc's codec on the same bytes in the same
//! run. Throughput is reported both as packets/s and bytes/s. Decoding runs over a read buffer
//! holding up to 64 copies of the packet, as a socket read would; encoding appends one packet to
//! a reused buffer.
//!
//! Run briefly:
//! `cargo bench -p ringmq-protocol --bench codec -- --warm-up-time 1 --measurement-time 2`.

use bytes::{Bytes, BytesMut};
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use ringmq_protocol::packet::{Connect, Publish};
use ringmq_protocol::{
    MqttString, Packet, PacketId, Properties, ProtocolVersion, QoS, TopicName, decode, encode,
};
use rumqttc::mqttbytes::v4 as rv4;
use rumqttc::v5::mqttbytes::v5 as rv5;
use std::hint::black_box;

const TOPIC: &str = "sensors/room1/temperature";
const PACKET_ID: u16 = 42;
const MAX: usize = 1 << 20;

fn ours_publish(payload: &Bytes) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: QoS::AtLeastOnce,
        retain: false,
        topic: TopicName::try_from(TOPIC).expect("valid topic"),
        packet_id: PacketId::new(PACKET_ID),
        properties: Properties::default(),
        payload: payload.clone(),
    })
}

fn ours_connect(version: ProtocolVersion) -> Packet {
    Packet::Connect(Box::new(Connect {
        bridge: false,
        version,
        clean_start: true,
        keep_alive: 30,
        client_id: MqttString::try_from("ringmq-bench-client").expect("valid id"),
        will: None,
        username: Some(MqttString::try_from("user").expect("valid user")),
        password: Some(Bytes::from_static(b"pass")),
        properties: Properties::default(),
    }))
}

fn rumqttc_v4_publish(payload: &Bytes) -> rv4::Publish {
    let mut p =
        rv4::Publish::from_bytes(TOPIC, rumqttc::mqttbytes::QoS::AtLeastOnce, payload.clone());
    p.pkid = PACKET_ID;
    p
}

fn rumqttc_v5_publish(payload: &Bytes) -> rv5::Publish {
    let mut p = rv5::Publish::new(
        TOPIC,
        rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
        payload.clone(),
        None,
    );
    p.pkid = PACKET_ID;
    p
}

fn rumqttc_v4_connect() -> rv4::Connect {
    let mut c = rv4::Connect::new("ringmq-bench-client");
    c.keep_alive = 30;
    c.set_login("user", "pass");
    c
}

fn rumqttc_v5_connect() -> (rv5::Connect, Option<rv5::LastWill>, Option<rv5::Login>) {
    let connect = rv5::Connect {
        keep_alive: 30,
        client_id: "ringmq-bench-client".to_string(),
        clean_start: true,
        properties: None,
    };
    (connect, None, Some(rv5::Login::new("user", "pass")))
}

fn encoded(packet: &Packet, version: ProtocolVersion) -> Bytes {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out).expect("bench packet encodes");
    out.freeze()
}

fn throughput(group: &mut BenchmarkGroup<'_, WallTime>, packet_len: usize, count: usize) {
    group.throughput(Throughput::ElementsAndBytes {
        elements: count as u64,
        bytes: (packet_len * count) as u64,
    });
}

/// How many copies of a packet one read buffer holds: a real read buffer holds many packets,
/// and allocating and freeing the buffer would otherwise dominate small packets.
fn copies(packet_len: usize) -> usize {
    (256 * 1024 / packet_len).clamp(1, 64)
}

fn repeated(input: &Bytes, count: usize) -> BytesMut {
    let mut buf = BytesMut::with_capacity(input.len() * count);
    for _ in 0..count {
        buf.extend_from_slice(input);
    }
    buf
}

/// Decodes a buffer of `copies(input.len())` packets with ours in `version` and with `theirs`,
/// after checking both accept the input.
fn bench_decode_pair(
    group: &mut BenchmarkGroup<'_, WallTime>,
    input: &Bytes,
    version: ProtocolVersion,
    theirs_name: &str,
    theirs: fn(&mut BytesMut) -> bool,
) {
    let count = copies(input.len());
    throughput(group, input.len(), count);
    assert!(
        theirs(&mut BytesMut::from(&input[..])),
        "{theirs_name} decodes the input"
    );
    let check = decode(&mut BytesMut::from(&input[..]), version, MAX);
    assert!(matches!(check, Ok(Some(_))), "ringmq decodes the input");
    group.bench_function(format!("ringmq_{version:?}"), |b| {
        b.iter_batched(
            || repeated(input, count),
            |mut buf| {
                while matches!(decode(&mut buf, version, MAX), Ok(Some(_))) {}
                black_box(buf.len())
            },
            BatchSize::LargeInput,
        )
    });
    group.bench_function(theirs_name, |b| {
        b.iter_batched(
            || repeated(input, count),
            |mut buf| {
                while !buf.is_empty() && theirs(&mut buf) {}
                black_box(buf.len())
            },
            BatchSize::LargeInput,
        )
    });
}

fn rumqttc_v4_read(buf: &mut BytesMut) -> bool {
    rv4::Packet::read(buf, MAX).is_ok()
}

fn rumqttc_v5_read(buf: &mut BytesMut) -> bool {
    rv5::Packet::read(buf, Some(MAX as u32)).is_ok()
}

fn bench_encode<F: FnMut(&mut BytesMut)>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    capacity: usize,
    mut write: F,
) {
    let mut out = BytesMut::with_capacity(capacity);
    group.bench_function(name, |b| {
        b.iter(|| {
            out.clear();
            write(&mut out);
            black_box(out.len())
        })
    });
}

fn publish_benches(c: &mut Criterion) {
    for (label, size) in [("16B", 16), ("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let payload = Bytes::from(vec![0xA5; size]);
        let ours = ours_publish(&payload);
        let v4_bytes = encoded(&ours, ProtocolVersion::V4);
        let v5_bytes = encoded(&ours, ProtocolVersion::V5);

        let mut group = c.benchmark_group(format!("decode_publish_{label}"));
        bench_decode_pair(
            &mut group,
            &v4_bytes,
            ProtocolVersion::V4,
            "rumqttc_V4",
            rumqttc_v4_read,
        );
        bench_decode_pair(
            &mut group,
            &v5_bytes,
            ProtocolVersion::V5,
            "rumqttc_V5",
            rumqttc_v5_read,
        );
        group.finish();

        let mut group = c.benchmark_group(format!("encode_publish_{label}"));
        throughput(&mut group, v4_bytes.len(), 1);
        let cap = v5_bytes.len();
        for version in [ProtocolVersion::V4, ProtocolVersion::V5] {
            bench_encode(&mut group, &format!("ringmq_{version:?}"), cap, |out| {
                encode(&ours, version, out).expect("encodes")
            });
        }
        let theirs_v4 = rumqttc_v4_publish(&payload);
        bench_encode(&mut group, "rumqttc_V4", cap, |out| {
            theirs_v4.write(out).expect("encodes");
        });
        let theirs_v5 = rumqttc_v5_publish(&payload);
        bench_encode(&mut group, "rumqttc_V5", cap, |out| {
            theirs_v5.write(out).expect("encodes");
        });
        group.finish();
    }
}

fn connect_benches(c: &mut Criterion) {
    let v4 = ours_connect(ProtocolVersion::V4);
    let v5 = ours_connect(ProtocolVersion::V5);
    let v4_bytes = encoded(&v4, ProtocolVersion::V4);
    let v5_bytes = encoded(&v5, ProtocolVersion::V5);

    let mut group = c.benchmark_group("decode_connect");
    bench_decode_pair(
        &mut group,
        &v4_bytes,
        ProtocolVersion::V4,
        "rumqttc_V4",
        rumqttc_v4_read,
    );
    bench_decode_pair(
        &mut group,
        &v5_bytes,
        ProtocolVersion::V5,
        "rumqttc_V5",
        rumqttc_v5_read,
    );
    group.finish();

    let mut group = c.benchmark_group("encode_connect");
    throughput(&mut group, v4_bytes.len(), 1);
    bench_encode(&mut group, "ringmq_V4", 128, |out| {
        encode(&v4, ProtocolVersion::V4, out).expect("encodes")
    });
    bench_encode(&mut group, "ringmq_V5", 128, |out| {
        encode(&v5, ProtocolVersion::V5, out).expect("encodes")
    });
    let theirs_v4 = rumqttc_v4_connect();
    bench_encode(&mut group, "rumqttc_V4", 128, |out| {
        theirs_v4.write(out).expect("encodes");
    });
    let (theirs_v5, will, login) = rumqttc_v5_connect();
    bench_encode(&mut group, "rumqttc_V5", 128, |out| {
        theirs_v5.write(&will, &login, out).expect("encodes");
    });
    group.finish();
}

criterion_group!(benches, publish_benches, connect_benches);
criterion_main!(benches);
