//! Shared support for the MQTT conformance suites (`tests/conformance_*.rs`): starting and
//! stopping the real `ringmq` binary, client ids pinned to a home shard, a raw-socket MQTT
//! client built on our own codec, and a thread-driven rumqttc client for interop checks.
//! Each suite includes it as `pub mod support;` so helpers it does not use are not dead code.

use bytes::{Bytes, BytesMut};
use ringmq::protocol::packet::{
    ConnAck, Connect, Disconnect, LastWill, PubResp, Publish, SubAck, Subscribe, Subscription,
    SubscriptionOptions,
};
use ringmq::protocol::{
    DecodeError, MqttString, Packet, PacketId, Properties, ProtocolVersion, QoS, ReasonCode,
    TopicFilter, TopicName, decode, encode,
};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Shards every test broker runs with.
pub const SHARDS: usize = 2;
/// How long a test waits for something that should happen promptly on a local broker.
pub const PROMPT: Duration = Duration::from_secs(3);
/// How long a test watches for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(400);

// ---------------------------------------------------------------------------------------------
// The broker process
// ---------------------------------------------------------------------------------------------

/// A running `ringmq` process on its own port; SIGKILLed on drop.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    pub addr: SocketAddr,
    pub shards: usize,
    config_path: Option<std::path::PathBuf>,
}

impl Broker {
    /// A broker with the default config and [`SHARDS`] shards on an ephemeral local port.
    pub fn start() -> Self {
        Self::start_with_config("")
    }

    /// A broker whose config file holds `toml` (listen address and shard count come from the
    /// command line).
    pub fn start_with_config(toml: &str) -> Self {
        let mut last_error = String::new();
        for attempt in 0..3 {
            match Self::try_start(toml, attempt) {
                Ok(broker) => return broker,
                Err(e) => last_error = e,
            }
        }
        panic!("ringmq did not start: {last_error}");
    }

    fn try_start(toml: &str, attempt: u32) -> Result<Self, String> {
        let config_path = if toml.is_empty() {
            None
        } else {
            let path = std::env::temp_dir().join(format!(
                "ringmq-conformance-{}-{}-{attempt}.toml",
                std::process::id(),
                unique_suffix()
            ));
            std::fs::write(&path, toml).map_err(|e| format!("write config: {e}"))?;
            Some(path)
        };
        let mut command = Command::new(broker_binary());
        command.args(["--listen", "127.0.0.1:0", "--shards", &SHARDS.to_string()]);
        if let Some(path) = &config_path {
            command.arg("--config").arg(path);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn: {e}"))?;
        let mut broker = Self {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            shards: SHARDS,
            config_path,
        };
        broker.addr = broker.wait_for_listening_line()?;
        Ok(broker)
    }

    /// Reads stderr up to `ringmq listening on ADDR with N shards`, then keeps draining it on
    /// a thread (echoed to the test's stderr) so the broker never blocks on a full pipe.
    fn wait_for_listening_line(&mut self) -> Result<SocketAddr, String> {
        let stderr = self.child.stderr.take().ok_or("no stderr pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut announced = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !announced && let Some(rest) = line.strip_prefix("ringmq listening on ") {
                    announced = true;
                    let addr = rest.split(' ').next().unwrap_or_default().to_string();
                    let _ = tx.send(addr);
                    continue;
                }
                eprintln!("[broker] {line}");
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .map_err(|_| "no `ringmq listening on` line within 10 s".to_string())?;
        addr.parse()
            .map_err(|e| format!("bad address {addr:?}: {e}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn sigterm(&self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: sends a signal to the child this struct spawned; no memory is involved.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "kill(SIGTERM) failed");
    }

    /// The exit status if the process ends within `within`.
    pub fn wait_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// Panics if the broker process has died (a crash is never acceptable).
    pub fn assert_alive(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("the broker process exited: {status}");
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(path) = &self.config_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The binary under test: `RINGMQ_BIN` when set (to check another build), else this
/// package's `ringmq`.
fn broker_binary() -> std::path::PathBuf {
    std::env::var_os("RINGMQ_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_ringmq").into())
}

fn unique_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

// ---------------------------------------------------------------------------------------------
// Home shards
// ---------------------------------------------------------------------------------------------

/// The home shard of a client id: FNV-1a 64-bit of its bytes modulo the shard count.
pub fn home_shard(client_id: &str, shards: usize) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in client_id.as_bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % shards as u64) as usize
}

/// A client id starting with `prefix` whose home is `shard` (of [`SHARDS`]).
pub fn id_on_shard(prefix: &str, shard: usize) -> String {
    (0u32..)
        .map(|n| format!("{prefix}-{n}"))
        .find(|id| home_shard(id, SHARDS) == shard)
        .unwrap_or_default()
}

/// Two client ids with different home shards: `[on shard 0, on shard 1]`.
pub fn ids_on_distinct_shards(prefix: &str) -> [String; 2] {
    [
        id_on_shard(&format!("{prefix}-a"), 0),
        id_on_shard(&format!("{prefix}-b"), 1),
    ]
}

// ---------------------------------------------------------------------------------------------
// Packet builders
// ---------------------------------------------------------------------------------------------

pub fn mqtt_string(s: &str) -> MqttString {
    MqttString::try_from(s).unwrap_or_else(|e| panic!("bad test string {s:?}: {e}"))
}

pub fn topic(s: &str) -> TopicName {
    TopicName::try_from(s).unwrap_or_else(|e| panic!("bad test topic {s:?}: {e:?}"))
}

pub fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).unwrap_or_else(|e| panic!("bad test filter {s:?}: {e:?}"))
}

pub fn pid(id: u16) -> PacketId {
    PacketId::new(id).unwrap_or_else(|| panic!("packet id 0 in a test"))
}

pub fn qos(level: u8) -> QoS {
    QoS::from_bits(level).unwrap_or_else(|| panic!("QoS {level} in a test"))
}

/// CONNECT with keep alive 0 (off) unless changed with [`ConnectBuilder`] methods.
#[derive(Debug, Clone)]
pub struct ConnectBuilder(pub Connect);

impl ConnectBuilder {
    pub fn new(version: ProtocolVersion, client_id: &str) -> Self {
        Self(Connect {
            version,
            clean_start: true,
            keep_alive: 0,
            client_id: mqtt_string(client_id),
            will: None,
            username: None,
            password: None,
            properties: Properties::default(),
        })
    }

    pub fn clean(mut self, clean: bool) -> Self {
        self.0.clean_start = clean;
        self
    }

    pub fn keep_alive(mut self, seconds: u16) -> Self {
        self.0.keep_alive = seconds;
        self
    }

    /// MQTT 5.0 Session Expiry Interval (a persistent session needs one > 0).
    pub fn session_expiry(mut self, seconds: u32) -> Self {
        self.0.properties.session_expiry_interval = Some(seconds);
        self
    }

    pub fn will(mut self, will_topic: &str, payload: &[u8], will_qos: u8, retain: bool) -> Self {
        self.0.will = Some(LastWill {
            topic: topic(will_topic),
            payload: Bytes::copy_from_slice(payload),
            qos: qos(will_qos),
            retain,
            properties: Properties::default(),
        });
        self
    }

    pub fn packet(self) -> Packet {
        Packet::Connect(Box::new(self.0))
    }
}

pub fn publish_packet(
    topic_name: &str,
    payload: &[u8],
    level: u8,
    packet_id: Option<u16>,
    retain: bool,
) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos: qos(level),
        retain,
        topic: topic(topic_name),
        packet_id: packet_id.map(pid),
        properties: Properties::default(),
        payload: Bytes::copy_from_slice(payload),
    })
}

pub fn subscribe_packet(packet_id: u16, filters: &[(&str, u8)]) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: pid(packet_id),
        properties: Properties::default(),
        subscriptions: filters
            .iter()
            .map(|&(f, level)| Subscription {
                filter: filter(f),
                options: SubscriptionOptions {
                    qos: qos(level),
                    ..SubscriptionOptions::default()
                },
            })
            .collect(),
    })
}

pub fn disconnect_packet(reason: ReasonCode) -> Packet {
    Packet::Disconnect(Disconnect::new(reason))
}

/// Encodes `packet` as `version` bytes.
pub fn encode_bytes(packet: &Packet, version: ProtocolVersion) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode(packet, version, &mut out).unwrap_or_else(|e| panic!("cannot encode {packet:?}: {e}"));
    out.to_vec()
}

// ---------------------------------------------------------------------------------------------
// The raw client
// ---------------------------------------------------------------------------------------------

/// What one read from the broker produced.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "one per read in tests; matching through a Box would obscure the tests"
)]
pub enum Recv {
    Packet(Packet),
    /// The broker closed the connection (EOF or reset).
    Closed,
    /// Nothing arrived in time.
    Timeout,
    /// The broker sent bytes our codec refuses.
    Garbage(DecodeError),
}

/// A blocking MQTT client on a plain TCP socket: sends exactly the bytes a test asks for and
/// reports exactly what the broker sends back (nothing is acknowledged automatically).
#[derive(Debug)]
pub struct RawClient {
    stream: TcpStream,
    buf: BytesMut,
    pub version: ProtocolVersion,
    pub name: String,
}

impl RawClient {
    /// A TCP connection, no MQTT yet.
    pub fn tcp(addr: SocketAddr, version: ProtocolVersion, name: &str) -> Self {
        let stream = TcpStream::connect_timeout(&addr, PROMPT)
            .unwrap_or_else(|e| panic!("{name}: cannot connect to {addr}: {e}"));
        let _ = stream.set_nodelay(true);
        Self {
            stream,
            buf: BytesMut::with_capacity(4096),
            version,
            name: name.to_string(),
        }
    }

    /// Connects with `connect` and returns the CONNACK, asserting it is a success.
    pub fn connect_with(addr: SocketAddr, connect: ConnectBuilder) -> (Self, ConnAck) {
        let version = connect.0.version;
        let name = connect.0.client_id.as_str().to_string();
        let mut client = Self::tcp(addr, version, &name);
        client.send(&connect.packet());
        let connack = client.expect_connack();
        assert_eq!(
            connack.reason,
            ReasonCode::Success,
            "{name}: CONNACK refused: {connack:?}"
        );
        (client, connack)
    }

    /// A clean session, keep alive off.
    pub fn connect(addr: SocketAddr, version: ProtocolVersion, client_id: &str) -> Self {
        Self::connect_with(addr, ConnectBuilder::new(version, client_id)).0
    }

    pub fn send(&mut self, packet: &Packet) {
        let bytes = encode_bytes(packet, self.version);
        self.send_bytes(&bytes);
    }

    /// Writes raw bytes; a write error is ignored (the broker may already have closed).
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// Waits up to `within` for the next packet.
    pub fn recv(&mut self, within: Duration) -> Recv {
        let deadline = Instant::now() + within;
        loop {
            match decode(&mut self.buf, self.version, usize::MAX) {
                Ok(Some(packet)) => return Recv::Packet(packet),
                Ok(None) => {}
                Err(e) => return Recv::Garbage(e),
            }
            let now = Instant::now();
            if now >= deadline {
                return Recv::Timeout;
            }
            let _ = self.stream.set_read_timeout(Some(deadline - now));
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Recv::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Recv::Closed,
            }
        }
    }

    /// Reads raw bytes until the broker closes the connection or `within` passes; returns the
    /// bytes and whether the connection was closed.
    pub fn read_raw_until_closed(&mut self, within: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + within;
        let mut bytes = self.buf.split().to_vec();
        loop {
            let now = Instant::now();
            if now >= deadline {
                return (bytes, false);
            }
            let _ = self.stream.set_read_timeout(Some(deadline - now));
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return (bytes, true),
                Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return (bytes, true),
            }
        }
    }

    pub fn expect_packet(&mut self, within: Duration) -> Packet {
        match self.recv(within) {
            Recv::Packet(p) => p,
            other => panic!("{}: expected a packet, got {other:?}", self.name),
        }
    }

    pub fn expect_connack(&mut self) -> ConnAck {
        match self.expect_packet(PROMPT) {
            Packet::ConnAck(c) => c,
            other => panic!("{}: expected CONNACK, got {other:?}", self.name),
        }
    }

    pub fn expect_publish(&mut self) -> Publish {
        match self.expect_packet(PROMPT) {
            Packet::Publish(p) => p,
            other => panic!("{}: expected PUBLISH, got {other:?}", self.name),
        }
    }

    /// The next PUBLISH, acknowledged as its QoS requires (QoS 2 flow completed to PUBCOMP,
    /// the broker's PUBREL checked).
    pub fn expect_publish_acked(&mut self) -> Publish {
        let publish = self.expect_publish();
        self.ack(&publish);
        publish
    }

    /// Completes the receiver side of a PUBLISH's QoS flow.
    pub fn ack(&mut self, publish: &Publish) {
        let Some(id) = publish.packet_id else { return };
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(PubResp::new(id))),
            QoS::ExactlyOnce => {
                self.send(&Packet::PubRec(PubResp::new(id)));
                match self.expect_packet(PROMPT) {
                    Packet::PubRel(r) if r.packet_id == id => {}
                    other => panic!(
                        "{}: expected PUBREL {} after PUBREC [MQTT-4.3.3-1], got {other:?}",
                        self.name,
                        id.get()
                    ),
                }
                self.send(&Packet::PubComp(PubResp::new(id)));
            }
        }
    }

    /// Subscribes and returns the SUBACK's reason codes.
    pub fn subscribe(&mut self, packet_id: u16, filters: &[(&str, u8)]) -> Vec<ReasonCode> {
        self.send(&subscribe_packet(packet_id, filters));
        let suback: SubAck = match self.expect_packet(PROMPT) {
            Packet::SubAck(s) => s,
            other => panic!("{}: expected SUBACK, got {other:?}", self.name),
        };
        assert_eq!(
            suback.packet_id.get(),
            packet_id,
            "{}: SUBACK packet id [MQTT-3.8.4-2]",
            self.name
        );
        suback.reasons
    }

    /// Subscribes to each filter and checks none was refused. The exact granted QoS is left
    /// to the SUBACK tests, so that one SUBACK bug does not hide the behaviour a test checks.
    pub fn subscribe_ok(&mut self, packet_id: u16, filters: &[(&str, u8)]) {
        let reasons = self.subscribe(packet_id, filters);
        assert_eq!(reasons.len(), filters.len(), "{}: SUBACK codes", self.name);
        assert!(
            reasons.iter().all(|r| !r.is_error()),
            "{}: subscription refused: {reasons:?}",
            self.name
        );
    }

    /// Publishes and completes the sender side of the QoS flow (PUBACK, or PUBREC/PUBREL/PUBCOMP).
    pub fn publish(&mut self, topic_name: &str, payload: &[u8], level: u8, retain: bool) {
        let packet_id = (level > 0).then(|| self.next_id());
        self.send(&publish_packet(
            topic_name, payload, level, packet_id, retain,
        ));
        if let Some(id) = packet_id {
            self.finish_publish(id, level);
        }
    }

    fn next_id(&mut self) -> u16 {
        use std::sync::atomic::{AtomicU16, Ordering};
        static NEXT: AtomicU16 = AtomicU16::new(1);
        loop {
            let id = NEXT.fetch_add(1, Ordering::Relaxed);
            if id != 0 {
                return id;
            }
        }
    }

    fn finish_publish(&mut self, id: u16, level: u8) {
        if level == 1 {
            match self.expect_packet(PROMPT) {
                Packet::PubAck(r) if r.packet_id.get() == id => return,
                other => panic!("{}: expected PUBACK {id}, got {other:?}", self.name),
            }
        }
        match self.expect_packet(PROMPT) {
            Packet::PubRec(r) if r.packet_id.get() == id => {}
            other => panic!("{}: expected PUBREC {id}, got {other:?}", self.name),
        }
        self.send(&Packet::PubRel(PubResp::new(pid(id))));
        match self.expect_packet(PROMPT) {
            Packet::PubComp(r) if r.packet_id.get() == id => {}
            other => panic!("{}: expected PUBCOMP {id}, got {other:?}", self.name),
        }
    }

    /// PINGREQ, then PINGRESP. Doubles as a barrier: every packet sent before it was processed.
    pub fn ping(&mut self) {
        self.send(&Packet::PingReq);
        match self.expect_packet(PROMPT) {
            Packet::PingResp => {}
            other => panic!("{}: expected PINGRESP, got {other:?}", self.name),
        }
    }

    /// Asserts nothing arrives for `quiet` (the connection may stay open).
    pub fn expect_nothing(&mut self, quiet: Duration) {
        match self.recv(quiet) {
            Recv::Timeout => {}
            other => panic!("{}: expected nothing, got {other:?}", self.name),
        }
    }

    /// Asserts the broker closes the connection within `within` without sending any packet
    /// (3.1.1 has no server DISCONNECT).
    pub fn expect_closed(&mut self, within: Duration) {
        match self.recv(within) {
            Recv::Closed => {}
            other => panic!(
                "{}: expected the connection closed, got {other:?}",
                self.name
            ),
        }
    }

    /// Asserts the broker closes the connection; in 5.0 a DISCONNECT may come first and, if
    /// it does, its reason code must be one of `reasons` (any code when `reasons` is empty).
    /// Returns the DISCONNECT's reason, if one was sent.
    pub fn expect_closed_maybe_disconnect(
        &mut self,
        within: Duration,
        reasons: &[ReasonCode],
    ) -> Option<ReasonCode> {
        match self.recv(within) {
            Recv::Closed => None,
            Recv::Packet(Packet::Disconnect(d)) if self.version == ProtocolVersion::V5 => {
                assert!(
                    reasons.is_empty() || reasons.contains(&d.reason),
                    "{}: DISCONNECT reason {:?}, expected one of {reasons:?}",
                    self.name,
                    d.reason
                );
                self.expect_closed(within);
                Some(d.reason)
            }
            other => panic!(
                "{}: expected the connection closed, got {other:?}",
                self.name
            ),
        }
    }

    /// Asserts a 5.0 DISCONNECT with one of `reasons` arrives, then the close.
    pub fn expect_disconnect_then_close(&mut self, within: Duration, reasons: &[ReasonCode]) {
        match self.recv(within) {
            Recv::Packet(Packet::Disconnect(d)) => {
                assert!(
                    reasons.contains(&d.reason),
                    "{}: DISCONNECT reason {:?}, expected one of {reasons:?}",
                    self.name,
                    d.reason
                );
                self.expect_closed(within);
            }
            other => panic!(
                "{}: expected DISCONNECT {reasons:?} then close, got {other:?}",
                self.name
            ),
        }
    }

    /// Sends DISCONNECT (normal) and closes the socket.
    pub fn disconnect(mut self) {
        self.send(&disconnect_packet(ReasonCode::NORMAL_DISCONNECTION));
        let _ = self.stream.shutdown(Shutdown::Write);
        let _ = self.recv(Duration::from_millis(200));
    }

    /// Drops the TCP connection without DISCONNECT.
    pub fn drop_connection(self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Collects PUBLISHes until nothing arrives for `quiet`, acknowledging each as its QoS
/// requires. QoS 2 flows may interleave (PUBLISH, PUBLISH, PUBREL, ...); every PUBREL must
/// name a PUBLISH this client answered with PUBREC [MQTT-4.3.3-1], and none may be missing.
pub fn collect_publishes(client: &mut RawClient, quiet: Duration) -> Vec<Publish> {
    let mut got = Vec::new();
    let mut awaiting_pubrel: Vec<PacketId> = Vec::new();
    loop {
        match client.recv(quiet) {
            Recv::Packet(Packet::Publish(p)) => {
                match (p.qos, p.packet_id) {
                    (QoS::AtLeastOnce, Some(id)) => client.send(&Packet::PubAck(PubResp::new(id))),
                    (QoS::ExactlyOnce, Some(id)) => {
                        client.send(&Packet::PubRec(PubResp::new(id)));
                        awaiting_pubrel.push(id);
                    }
                    _ => {}
                }
                got.push(p);
            }
            Recv::Packet(Packet::PubRel(r)) => {
                let Some(i) = awaiting_pubrel.iter().position(|&id| id == r.packet_id) else {
                    panic!("{}: PUBREL for unknown id {:?}", client.name, r.packet_id);
                };
                awaiting_pubrel.remove(i);
                client.send(&Packet::PubComp(PubResp::new(r.packet_id)));
            }
            Recv::Timeout => {
                assert!(
                    awaiting_pubrel.is_empty(),
                    "{}: no PUBREL after PUBREC for {awaiting_pubrel:?} [MQTT-4.3.3-1]",
                    client.name
                );
                return got;
            }
            other => panic!(
                "{}: expected PUBLISH or silence, got {other:?}",
                client.name
            ),
        }
    }
}

pub fn payload_str(publish: &Publish) -> String {
    String::from_utf8_lossy(&publish.payload).into_owned()
}

// ---------------------------------------------------------------------------------------------
// rumqttc clients, each driven by its own thread
// ---------------------------------------------------------------------------------------------

/// A rumqttc 3.1.1 client whose event loop runs on a thread; events arrive on `events`.
pub struct Rumqtt4 {
    pub client: rumqttc::Client,
    pub events: mpsc::Receiver<rumqttc::Event>,
}

impl std::fmt::Debug for Rumqtt4 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rumqtt4")
    }
}

impl Rumqtt4 {
    pub fn connect(addr: SocketAddr, client_id: &str) -> Self {
        let mut options = rumqttc::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut connection) = rumqttc::Client::new(options, 64);
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for event in connection.iter() {
                let Ok(event) = event else { break };
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        let mut this = Self { client, events };
        this.wait_for(|e| matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(c)) if c.code == rumqttc::ConnectReturnCode::Success), "CONNACK success");
        this
    }

    /// Waits for an event matching `want`, skipping others.
    pub fn wait_for(
        &mut self,
        mut want: impl FnMut(&rumqttc::Event) -> bool,
        what: &str,
    ) -> rumqttc::Event {
        let deadline = Instant::now() + PROMPT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if want(&e) => return e,
                Ok(_) => {}
                Err(_) => panic!("rumqttc 3.1.1: no {what} in time"),
            }
        }
    }

    pub fn next_publish(&mut self) -> rumqttc::Publish {
        match self.wait_for(
            |e| matches!(e, rumqttc::Event::Incoming(rumqttc::Packet::Publish(_))),
            "PUBLISH",
        ) {
            rumqttc::Event::Incoming(rumqttc::Packet::Publish(p)) => p,
            _ => unreachable!("filtered above"),
        }
    }
}

/// A rumqttc 5.0 client whose event loop runs on a thread; events arrive on `events`.
pub struct Rumqtt5 {
    pub client: rumqttc::v5::Client,
    pub events: mpsc::Receiver<rumqttc::v5::Event>,
}

impl std::fmt::Debug for Rumqtt5 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Rumqtt5")
    }
}

impl Rumqtt5 {
    pub fn connect(addr: SocketAddr, client_id: &str) -> Self {
        let mut options =
            rumqttc::v5::MqttOptions::new(client_id, addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut connection) = rumqttc::v5::Client::new(options, 64);
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for event in connection.iter() {
                let Ok(event) = event else { break };
                if tx.send(event).is_err() {
                    break;
                }
            }
        });
        let mut this = Self { client, events };
        this.wait_for(
            |e| {
                matches!(e, rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::ConnAck(c))
                    if c.code == rumqttc::v5::mqttbytes::v5::ConnectReturnCode::Success)
            },
            "CONNACK success",
        );
        this
    }

    pub fn wait_for(
        &mut self,
        mut want: impl FnMut(&rumqttc::v5::Event) -> bool,
        what: &str,
    ) -> rumqttc::v5::Event {
        let deadline = Instant::now() + PROMPT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) if want(&e) => return e,
                Ok(_) => {}
                Err(_) => panic!("rumqttc 5.0: no {what} in time"),
            }
        }
    }

    pub fn next_publish(&mut self) -> rumqttc::v5::mqttbytes::v5::Publish {
        match self.wait_for(
            |e| {
                matches!(
                    e,
                    rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::Publish(_))
                )
            },
            "PUBLISH",
        ) {
            rumqttc::v5::Event::Incoming(rumqttc::v5::mqttbytes::v5::Packet::Publish(p)) => p,
            _ => unreachable!("filtered above"),
        }
    }
}
