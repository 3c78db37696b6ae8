//! `blast`: a fake broker for measuring `ringmq-load`'s receive path alone. It answers CONNECT
//! and SUBSCRIBE, then writes pre-encoded QoS 0 PUBLISHes (publisher 0, increasing sequence
//! numbers) to every subscriber as fast as the socket takes them, for a fixed time. Publishers'
//! bytes are read and dropped. Latencies it causes are meaningless (its messages carry a
//! far-future send time, recorded as 1 µs); the received msgs/s and the generator's CPU are
//! the point.
//!
//! ```sh
//! cargo run --release -p ringmq-load --example blast -- 18840 10 &
//! taskset -c 1 target/release/ringmq-load fanin -p 1 --rate 1 --port 18840 --threads 1 \
//!     --duration 5 --warmup 1 --drain 0
//! ```

use bytes::{Bytes, BytesMut};
use ringmq_protocol::{
    ConnAck, Packet, Properties, ProtocolVersion, Publish, QoS, ReasonCode, SubAck, TopicName,
    decode, encode,
};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Messages encoded once and rewritten (sequence numbers only) for every pass.
const MESSAGES_PER_PASS: u64 = 100_000;
const PAYLOAD: usize = 64;
/// Header layout of ringmq-load's payload: publisher u32, seq u64, send time u64 (LE).
const SEQ_OFFSET: usize = 4;
const FAR_FUTURE_NS: u64 = u64::MAX / 2;

fn main() {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(18840);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("blast: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    eprintln!("blast: listening on 127.0.0.1:{port}, blasting for {seconds} s per subscriber");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || {
            if let Err(e) = serve(stream, Duration::from_secs(seconds)) {
                eprintln!("blast: {e}");
            }
        });
    }
}

fn serve(mut stream: TcpStream, blast_for: Duration) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut version = ProtocolVersion::V4;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        rbuf.extend_from_slice(&chunk[..n]);
        while let Ok(Some(packet)) = decode(&mut rbuf, version, 1 << 20) {
            let reply = match packet {
                Packet::Connect(c) => {
                    version = c.version;
                    Packet::ConnAck(ConnAck {
                        session_present: false,
                        reason: ReasonCode::Success,
                        properties: Properties::default(),
                    })
                }
                Packet::Subscribe(s) => {
                    let ack = Packet::SubAck(SubAck {
                        packet_id: s.packet_id,
                        properties: Properties::default(),
                        reasons: vec![ReasonCode::Success; s.subscriptions.len()],
                    });
                    write_packet(&mut stream, &ack, version)?;
                    return blast(&mut stream, version, blast_for);
                }
                _ => continue,
            };
            write_packet(&mut stream, &reply, version)?;
        }
    }
}

fn write_packet(
    stream: &mut TcpStream,
    packet: &Packet,
    version: ProtocolVersion,
) -> std::io::Result<()> {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out).map_err(std::io::Error::other)?;
    stream.write_all(&out)
}

fn blast(
    stream: &mut TcpStream,
    version: ProtocolVersion,
    blast_for: Duration,
) -> std::io::Result<()> {
    let topic =
        TopicName::try_from("load/fanin").map_err(|e| std::io::Error::other(format!("{e:?}")))?;
    let mut blob = BytesMut::new();
    let mut seq_offsets = Vec::with_capacity(MESSAGES_PER_PASS as usize);
    for seq in 0..MESSAGES_PER_PASS {
        let mut payload = vec![0u8; PAYLOAD];
        payload[SEQ_OFFSET..SEQ_OFFSET + 8].copy_from_slice(&seq.to_le_bytes());
        payload[12..20].copy_from_slice(&FAR_FUTURE_NS.to_le_bytes());
        let publish = Packet::Publish(Publish {
            dup: false,
            qos: QoS::AtMostOnce,
            retain: false,
            topic: topic.clone(),
            packet_id: None,
            properties: Properties::default(),
            payload: Bytes::from(payload),
        });
        encode(&publish, version, &mut blob).map_err(std::io::Error::other)?;
        seq_offsets.push(blob.len() - PAYLOAD + SEQ_OFFSET);
    }
    let end = Instant::now() + blast_for;
    let mut pass = 0u64;
    while Instant::now() < end {
        if pass > 0 {
            for (i, &at) in seq_offsets.iter().enumerate() {
                let seq = pass * MESSAGES_PER_PASS + i as u64;
                blob[at..at + 8].copy_from_slice(&seq.to_le_bytes());
            }
        }
        stream.write_all(&blob)?;
        pass += 1;
    }
    eprintln!("blast: sent {} messages", pass * MESSAGES_PER_PASS);
    Ok(())
}
