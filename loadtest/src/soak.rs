//! `ringmq-load soak`: a long mixed run that looks for leaks and losses rather than speed.
//! Healthy publisher/subscriber pairs at QoS 0, 1 and 2 (the QoS 1/2 subscribers persistent
//! and reconnecting now and then), beside the clients a production broker meets: takeovers of
//! one client id, a reconnect storm, a slow consumer, a consumer that never reads, and clients
//! that send garbage. Every `--report-every` seconds a line with the broker's RSS and open
//! descriptors (`--broker-pid`) and the healthy streams' counts; at the end the loss per QoS.
//! QoS 1 and 2 must lose nothing acknowledged (QoS 1 may duplicate, QoS 2 may not); the exit
//! status says whether they did.
//!
//! Each client is one OS thread on a blocking socket: this measures the broker over time, not
//! its speed, so the simplest client that speaks exactly the protocol is the right one.

use crate::error::LoadError;
use bytes::{Bytes, BytesMut};
use ringmq_protocol::{
    Connect, MqttString, Packet, PacketId, Properties, ProtocolVersion, PubResp, Publish, QoS,
    Subscribe, Subscription, SubscriptionOptions, TopicFilter, TopicName, decode, encode,
};
use std::collections::HashSet;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The soak's settings (from the command line).
#[derive(Debug, Clone)]
pub struct SoakSettings {
    pub broker: SocketAddr,
    pub duration: Duration,
    pub report_every: Duration,
    pub broker_pid: Option<u32>,
    /// Healthy pairs per QoS level.
    pub pairs: u32,
    /// Messages per second per healthy publisher.
    pub rate: u32,
}

/// What one healthy stream counted.
#[derive(Debug, Default)]
struct Stream {
    /// Messages the publisher had acknowledged (QoS 1/2) or sent (QoS 0).
    acked: AtomicU64,
    received: AtomicU64,
    duplicates: AtomicU64,
}

const READ_SLICE: Duration = Duration::from_millis(50);
const WAIT: Duration = Duration::from_secs(10);

/// A blocking MQTT 3.1.1 client on ringmq's codec.
struct Client {
    stream: TcpStream,
    buf: BytesMut,
    next_id: u16,
}

impl Client {
    fn connect(addr: SocketAddr, id: &str, clean: bool) -> Result<Self, String> {
        let stream = TcpStream::connect_timeout(&addr, WAIT).map_err(|e| e.to_string())?;
        let _ = stream.set_nodelay(true);
        stream
            .set_read_timeout(Some(READ_SLICE))
            .map_err(|e| e.to_string())?;
        let mut client = Self {
            stream,
            buf: BytesMut::with_capacity(4096),
            next_id: 0,
        };
        let connect = Connect {
            bridge: false,
            version: ProtocolVersion::V4,
            clean_start: clean,
            keep_alive: 60,
            client_id: MqttString::try_from(id).map_err(|e| e.to_string())?,
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        };
        client.send(&Packet::Connect(Box::new(connect)))?;
        match client.recv(WAIT)? {
            Some(Packet::ConnAck(ack)) if !ack.reason.is_error() => Ok(client),
            other => Err(format!("{id}: no CONNACK: {other:?}")),
        }
    }

    fn send(&mut self, packet: &Packet) -> Result<(), String> {
        let mut out = BytesMut::new();
        encode(packet, ProtocolVersion::V4, &mut out).map_err(|e| e.to_string())?;
        self.stream.write_all(&out).map_err(|e| e.to_string())
    }

    /// The next packet within `within`; `None` when nothing came.
    fn recv(&mut self, within: Duration) -> Result<Option<Packet>, String> {
        let deadline = Instant::now() + within;
        loop {
            match decode(&mut self.buf, ProtocolVersion::V4, 1 << 20) {
                Ok(Some(packet)) => return Ok(Some(packet)),
                Ok(None) => {}
                Err(e) => return Err(e.to_string()),
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("closed by the broker".into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }

    fn packet_id(&mut self) -> PacketId {
        loop {
            self.next_id = self.next_id.wrapping_add(1);
            if let Some(id) = PacketId::new(self.next_id) {
                return id;
            }
        }
    }

    fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<(), String> {
        let packet_id = self.packet_id();
        let subscribe = Subscribe {
            packet_id,
            properties: Properties::default(),
            subscriptions: vec![Subscription {
                filter: TopicFilter::try_from(filter).map_err(|e| e.to_string())?,
                options: SubscriptionOptions {
                    qos,
                    ..SubscriptionOptions::default()
                },
            }],
        };
        self.send(&Packet::Subscribe(subscribe))?;
        loop {
            match self.recv(WAIT)? {
                Some(Packet::SubAck(_)) => return Ok(()),
                Some(Packet::Publish(p)) => self.acknowledge(&p)?,
                Some(_) => {}
                None => return Err("no SUBACK".into()),
            }
        }
    }

    /// The receiver's side of a PUBLISH's QoS flow.
    fn acknowledge(&mut self, publish: &Publish) -> Result<(), String> {
        match (publish.qos, publish.packet_id) {
            (QoS::AtLeastOnce, Some(id)) => self.send(&Packet::PubAck(PubResp::new(id))),
            (QoS::ExactlyOnce, Some(id)) => self.send(&Packet::PubRec(PubResp::new(id))),
            _ => Ok(()),
        }
    }

    /// Publishes and waits for the end of its QoS flow.
    fn publish(&mut self, topic: &TopicName, payload: Bytes, qos: QoS) -> Result<(), String> {
        let packet_id = (qos != QoS::AtMostOnce).then(|| self.packet_id());
        let publish = Publish {
            dup: false,
            qos,
            retain: false,
            topic: topic.clone(),
            packet_id,
            properties: Properties::default(),
            payload,
        };
        self.send(&Packet::Publish(publish))?;
        let Some(id) = packet_id else {
            return Ok(());
        };
        loop {
            match self.recv(WAIT)? {
                Some(Packet::PubAck(r)) if r.packet_id == id => return Ok(()),
                Some(Packet::PubRec(r)) if r.packet_id == id => {
                    self.send(&Packet::PubRel(PubResp::new(id)))?
                }
                Some(Packet::PubComp(r)) if r.packet_id == id => return Ok(()),
                Some(_) => {}
                None => return Err("no acknowledgement within 10 s".into()),
            }
        }
    }

    fn disconnect(mut self) {
        let _ = self.send(&crate::mqtt::disconnect_packet());
    }
}

struct Run {
    settings: SoakSettings,
    stop: AtomicBool,
    /// Healthy streams: [qos][pair].
    streams: Vec<Vec<Stream>>,
    errors: AtomicU64,
}

impl Run {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }
}

/// Runs the soak to its end and prints the report; an error if QoS 1/2 lost anything.
pub fn run(settings: SoakSettings) -> Result<(), LoadError> {
    let streams = (0..3)
        .map(|_| (0..settings.pairs).map(|_| Stream::default()).collect())
        .collect();
    let run = Arc::new(Run {
        settings,
        stop: AtomicBool::new(false),
        streams,
        errors: AtomicU64::new(0),
    });
    let mut threads = Vec::new();
    for q in 0..3u8 {
        for pair in 0..run.settings.pairs {
            threads.push(spawn(&run, move |r| healthy_subscriber(r, q, pair)));
        }
    }
    // The subscribers are in before the first message.
    std::thread::sleep(Duration::from_millis(500));
    for q in 0..3u8 {
        for pair in 0..run.settings.pairs {
            threads.push(spawn(&run, move |r| healthy_publisher(r, q, pair)));
        }
    }
    threads.push(spawn(&run, takeovers));
    threads.push(spawn(&run, reconnect_storm));
    threads.push(spawn(&run, |r| {
        consumer(r, Some(Duration::from_millis(100)))
    }));
    threads.push(spawn(&run, |r| consumer(r, None)));
    threads.push(spawn(&run, malformed));
    monitor(&run);
    run.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    report(&run)
}

fn spawn(run: &Arc<Run>, role: impl FnOnce(&Run) + Send + 'static) -> JoinHandle<()> {
    let run = Arc::clone(run);
    std::thread::spawn(move || role(&run))
}

fn qos_of(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

fn healthy_publisher(run: &Run, q: u8, pair: u32) {
    let topic = TopicName::try_from(format!("soak/{q}/{pair}").as_str());
    let Ok(topic) = topic else { return };
    let stream = &run.streams[usize::from(q)][pair as usize];
    let period = Duration::from_secs(1) / run.settings.rate.max(1);
    let mut seq = 0u64;
    while run.running() {
        let id = format!("soak-pub-{q}-{pair}");
        let Ok(mut client) = Client::connect(run.settings.broker, &id, true) else {
            run.errors.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        let mut next = Instant::now();
        while run.running() {
            let payload = Bytes::copy_from_slice(&(seq + 1).to_be_bytes());
            if client.publish(&topic, payload, qos_of(q)).is_err() {
                run.errors.fetch_add(1, Ordering::Relaxed);
                break;
            }
            seq += 1;
            stream.acked.store(seq, Ordering::Relaxed);
            next += period;
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
        client.disconnect();
    }
}

/// A healthy subscriber: QoS 1/2 ones are persistent and reconnect every 20 s (a clean
/// DISCONNECT, 300 ms away), so what was published meanwhile must come from their sessions.
fn healthy_subscriber(run: &Run, q: u8, pair: u32) {
    let stream = &run.streams[usize::from(q)][pair as usize];
    let id = format!("soak-sub-{q}-{pair}");
    let persistent = q > 0;
    let mut seen = HashSet::new();
    let mut first = true;
    // Runs until stopped, then drains for a while (QoS 1/2 only need everything acknowledged).
    let drain_until = |r: &Run| !r.running();
    let mut drained_since: Option<Instant> = None;
    if persistent {
        // Start from an empty session: a clean connection ends any earlier one.
        if let Ok(client) = Client::connect(run.settings.broker, &id, true) {
            client.disconnect();
        }
    }
    loop {
        let Ok(mut client) = Client::connect(run.settings.broker, &id, !persistent) else {
            run.errors.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        if (first || !persistent)
            && client
                .subscribe(&format!("soak/{q}/{pair}"), qos_of(q))
                .is_err()
        {
            run.errors.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        first = false;
        let connected = Instant::now();
        loop {
            if drain_until(run) {
                let since = *drained_since.get_or_insert_with(Instant::now);
                if since.elapsed() > Duration::from_secs(5) {
                    client.disconnect();
                    return;
                }
            } else if persistent && connected.elapsed() > Duration::from_secs(20) {
                break;
            }
            match client.recv(READ_SLICE) {
                Ok(Some(Packet::Publish(p))) => {
                    let _ = client.acknowledge(&p);
                    let mut seq = [0u8; 8];
                    if p.payload.len() == 8 {
                        seq.copy_from_slice(&p.payload);
                    }
                    if seen.insert(u64::from_be_bytes(seq)) {
                        stream.received.fetch_add(1, Ordering::Relaxed);
                    } else if !p.dup {
                        // A resend (DUP 1) of a QoS 2 message whose PUBREC was cut off is
                        // the protocol's, not a second delivery [MQTT-4.3.3-2].
                        stream.duplicates.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(Some(Packet::PubRel(r))) => {
                    let _ = client.send(&Packet::PubComp(PubResp::new(r.packet_id)));
                }
                Ok(_) => {}
                Err(_) => {
                    run.errors.fetch_add(1, Ordering::Relaxed);
                    break;
                }
            }
        }
        client.disconnect();
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// Two connections taking one client id from each other, every 100 ms.
fn takeovers(run: &Run) {
    let mut holder = None;
    while run.running() {
        if let Ok(client) = Client::connect(run.settings.broker, "soak-takeover", false) {
            // The previous holder is closed by the broker [MQTT-3.1.4-3].
            drop(holder.replace(client));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Clean clients connecting and disconnecting as fast as the broker answers.
fn reconnect_storm(run: &Run) {
    let mut n = 0u64;
    while run.running() {
        n += 1;
        match Client::connect(run.settings.broker, &format!("soak-storm-{}", n % 64), true) {
            Ok(client) if n.is_multiple_of(2) => client.disconnect(),
            Ok(client) => drop(client), // no DISCONNECT: a lost connection
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A QoS 1 subscriber to everything that reads one message per `pace`, or never (`None`,
/// with a persistent session that keeps queueing within its bounds).
fn consumer(run: &Run, pace: Option<Duration>) {
    let id = if pace.is_some() {
        "soak-slow"
    } else {
        "soak-stuck"
    };
    let Ok(mut client) = Client::connect(run.settings.broker, id, pace.is_some()) else {
        return;
    };
    if client.subscribe("soak/#", QoS::AtLeastOnce).is_err() {
        return;
    }
    while run.running() {
        match pace {
            None => std::thread::sleep(READ_SLICE),
            Some(pace) => {
                if let Ok(Some(Packet::Publish(p))) = client.recv(READ_SLICE) {
                    let _ = client.acknowledge(&p);
                }
                std::thread::sleep(pace);
            }
        }
    }
}

/// Clients that break the protocol: garbage before CONNECT, a PUBLISH whose length lies, a
/// reserved packet type. Each must cost the broker only that connection.
fn malformed(run: &Run) {
    let garbage: [&[u8]; 3] = [
        b"GET / HTTP/1.1\r\n\r\n",
        &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01],
        &[0xf0, 0x00],
    ];
    let mut n = 0usize;
    while run.running() {
        if let Ok(mut client) = Client::connect(run.settings.broker, "soak-malformed", true) {
            let _ = client.stream.write_all(garbage[n % garbage.len()]);
        }
        if let Ok(mut raw) = TcpStream::connect(run.settings.broker) {
            let _ = raw.write_all(garbage[n % garbage.len()]);
        }
        n += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Prints a line every `report_every` until the duration is over.
fn monitor(run: &Run) {
    let start = Instant::now();
    let s = &run.settings;
    println!("soak for {} s against {}", s.duration.as_secs(), s.broker);
    println!("elapsed_s rss_kb fds acked/received(q0 q1 q2) client_errors");
    while start.elapsed() < s.duration {
        std::thread::sleep(
            s.report_every
                .min(s.duration.saturating_sub(start.elapsed())),
        );
        let (rss, fds) = s.broker_pid.map_or((None, None), broker_usage);
        let counts: Vec<String> = run
            .streams
            .iter()
            .map(|pairs| {
                let acked: u64 = pairs.iter().map(|p| p.acked.load(Ordering::Relaxed)).sum();
                let got: u64 = pairs
                    .iter()
                    .map(|p| p.received.load(Ordering::Relaxed))
                    .sum();
                format!("{acked}/{got}")
            })
            .collect();
        println!(
            "{:>9} {:>6} {:>3} {} {}",
            start.elapsed().as_secs(),
            rss.map_or("-".into(), |v: u64| v.to_string()),
            fds.map_or("-".into(), |v: usize| v.to_string()),
            counts.join(" "),
            run.errors.load(Ordering::Relaxed)
        );
    }
}

/// The broker's resident memory (kB) and open descriptors.
fn broker_usage(pid: u32) -> (Option<u64>, Option<usize>) {
    let rss = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        });
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()
        .map(|d| d.count());
    (rss, fds)
}

fn report(run: &Run) -> Result<(), LoadError> {
    let mut failed = Vec::new();
    println!("qos acked received lost duplicated");
    for (q, pairs) in run.streams.iter().enumerate() {
        let acked: u64 = pairs.iter().map(|p| p.acked.load(Ordering::Relaxed)).sum();
        let got: u64 = pairs
            .iter()
            .map(|p| p.received.load(Ordering::Relaxed))
            .sum();
        let dups: u64 = pairs
            .iter()
            .map(|p| p.duplicates.load(Ordering::Relaxed))
            .sum();
        let lost = acked.saturating_sub(got);
        println!("{q} {acked} {got} {lost} {dups}");
        if q > 0 && lost > 0 {
            failed.push(format!("QoS {q} lost {lost} acknowledged messages"));
        }
        if q == 2 && dups > 0 {
            failed.push(format!("QoS 2 delivered {dups} duplicates"));
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    Err(LoadError::Usage(failed.join("; ")))
}
