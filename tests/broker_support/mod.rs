//! Shared harness of the broker integration tests: start the real `ringmq` binary on a
//! loopback port it picks, and a blocking raw MQTT client built on our codec.

#![allow(
    dead_code,
    reason = "each test file uses a different part of the harness"
)]

use bytes::{Bytes, BytesMut};
use ringmq::protocol::{
    self, Connect, LastWill, MqttString, Packet, PacketId, Properties, ProtocolVersion, PubResp,
    Publish, QoS, ReasonCode, Subscribe, Subscription, SubscriptionOptions, TopicFilter, TopicName,
};
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const SHARDS: usize = 2;
/// How long a test waits for something that should happen.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// A running broker process, killed on drop.
#[derive(Debug)]
pub struct Broker {
    child: Child,
    pub addr: SocketAddr,
}

impl Broker {
    /// Starts the broker on a port it picks itself (`127.0.0.1:0`) and reads the address
    /// from its `ringmq listening on ADDR` line. Choosing a free port here and passing it
    /// would race with other tests doing the same, and a test could end up talking to
    /// another test's broker.
    pub fn start() -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ringmq"))
            .args(["--listen", "127.0.0.1:0", "--shards", &SHARDS.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn ringmq");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        // Keeps draining stderr so the broker never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix("ringmq listening on ") {
                    let _ = tx.send(rest.split(' ').next().unwrap_or_default().to_string());
                }
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("broker announced its address");
        let addr = addr.parse().expect("a socket address");
        Self { child, addr }
    }

    /// Sends SIGTERM (graceful shutdown).
    pub fn terminate(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Whether the process exited within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client id whose home is `shard`, starting with `prefix`.
pub fn id_on_shard(prefix: &str, shard: usize) -> String {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|id| ringmq::shard::home_shard(id.as_bytes(), SHARDS) == shard)
        .expect("some id lands on every shard")
}

pub fn topic(s: &str) -> TopicName {
    TopicName::try_from(s).expect("valid topic")
}

pub fn filter(s: &str) -> TopicFilter {
    TopicFilter::try_from(s).expect("valid filter")
}

pub fn pid(n: u16) -> PacketId {
    PacketId::new(n).expect("non-zero id")
}

pub fn connect_packet(version: ProtocolVersion, client_id: &str, clean: bool) -> Connect {
    Connect {
        version,
        clean_start: clean,
        keep_alive: 60,
        client_id: MqttString::try_from(client_id).expect("valid id"),
        will: None,
        username: None,
        password: None,
        properties: Properties::default(),
    }
}

pub fn will(topic_name: &str, payload: &'static [u8]) -> LastWill {
    LastWill {
        topic: topic(topic_name),
        payload: Bytes::from_static(payload),
        qos: QoS::AtLeastOnce,
        retain: false,
        properties: Properties::default(),
    }
}

pub fn publish(
    topic_name: &str,
    payload: &[u8],
    qos: QoS,
    id: Option<u16>,
    retain: bool,
) -> Packet {
    Packet::Publish(Publish {
        dup: false,
        qos,
        retain,
        topic: topic(topic_name),
        packet_id: id.map(pid),
        properties: Properties::default(),
        payload: Bytes::copy_from_slice(payload),
    })
}

pub fn subscribe(id: u16, filter_str: &str, qos: QoS) -> Packet {
    Packet::Subscribe(Subscribe {
        packet_id: pid(id),
        properties: Properties::default(),
        subscriptions: vec![Subscription {
            filter: filter(filter_str),
            options: SubscriptionOptions {
                qos,
                ..SubscriptionOptions::default()
            },
        }],
    })
}

/// The SUBACK reason code that grants `qos`.
pub fn granted(qos: QoS) -> ReasonCode {
    match qos {
        QoS::AtMostOnce => ReasonCode::GRANTED_QOS0,
        QoS::AtLeastOnce => ReasonCode::GrantedQoS1,
        QoS::ExactlyOnce => ReasonCode::GrantedQoS2,
    }
}

/// What `RawClient::recv` saw.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "a test helper value, never stored"
)]
pub enum Recv {
    Packet(Packet),
    /// The broker closed the connection (EOF or reset).
    Closed,
    /// Nothing within the timeout.
    Timeout,
}

/// A blocking MQTT client speaking through our codec, for exact control of the bytes.
#[derive(Debug)]
pub struct RawClient {
    pub stream: TcpStream,
    buf: BytesMut,
    pub version: ProtocolVersion,
}

impl RawClient {
    pub fn open(broker: &Broker, version: ProtocolVersion) -> Self {
        let stream = TcpStream::connect(broker.addr).expect("connect to broker");
        stream.set_nodelay(true).expect("nodelay");
        Self {
            stream,
            buf: BytesMut::new(),
            version,
        }
    }

    /// Opens a connection and completes CONNECT/CONNACK; returns the client and CONNACK.
    pub fn connect(broker: &Broker, connect: Connect) -> (Self, protocol::ConnAck) {
        let mut client = Self::open(broker, connect.version);
        client.send(&Packet::Connect(Box::new(connect)));
        match client.recv(PATIENCE) {
            Recv::Packet(Packet::ConnAck(ack)) => (client, ack),
            other => panic!("expected CONNACK, got {other:?}"),
        }
    }

    pub fn send(&mut self, packet: &Packet) {
        let mut out = BytesMut::new();
        protocol::encode(packet, self.version, &mut out).expect("encodable");
        self.send_raw(&out);
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        // The broker may already have closed the socket; the test checks that via recv.
        let _ = self.stream.write_all(bytes);
    }

    pub fn recv(&mut self, timeout: Duration) -> Recv {
        let deadline = Instant::now() + timeout;
        loop {
            match protocol::decode(&mut self.buf, self.version, usize::MAX >> 4) {
                Ok(Some(packet)) => return Recv::Packet(packet),
                Ok(None) => {}
                Err(e) => panic!("broker sent malformed bytes: {e:?}"),
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Recv::Timeout;
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("set timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Recv::Closed,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Recv::Timeout;
                }
                Err(_) => return Recv::Closed,
            }
        }
    }

    /// The next packet, failing the test on close or timeout.
    pub fn expect_packet(&mut self) -> Packet {
        match self.recv(PATIENCE) {
            Recv::Packet(p) => p,
            other => panic!("expected a packet, got {other:?}"),
        }
    }

    /// The next PUBLISH, answering nothing.
    pub fn expect_publish(&mut self) -> Publish {
        match self.expect_packet() {
            Packet::Publish(p) => p,
            other => panic!("expected PUBLISH, got {other:?}"),
        }
    }

    /// Subscribes and waits for the SUBACK, which must grant `qos` (section 3.9.3).
    pub fn subscribe(&mut self, filter_str: &str, qos: QoS) {
        self.send(&subscribe(1, filter_str, qos));
        match self.expect_packet() {
            Packet::SubAck(ack) => assert_eq!(ack.reasons, [granted(qos)], "SUBACK"),
            other => panic!("expected SUBACK, got {other:?}"),
        }
    }

    /// Asserts the broker closes the connection within `timeout`, skipping packets before.
    pub fn expect_closed(&mut self, timeout: Duration) -> Vec<Packet> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            match self.recv(deadline.saturating_duration_since(Instant::now())) {
                Recv::Closed => return seen,
                Recv::Packet(p) => seen.push(p),
                Recv::Timeout => panic!("connection still open; saw {seen:?}"),
            }
        }
    }

    /// Asserts nothing arrives for `quiet`.
    pub fn expect_silence(&mut self, quiet: Duration) {
        match self.recv(quiet) {
            Recv::Timeout => {}
            other => panic!("expected silence, got {other:?}"),
        }
    }

    pub fn ack(&mut self, publish: &Publish) {
        let Some(id) = publish.packet_id else { return };
        match publish.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.send(&Packet::PubAck(PubResp::new(id))),
            QoS::ExactlyOnce => {
                self.send(&Packet::PubRec(PubResp::new(id)));
                match self.expect_packet() {
                    Packet::PubRel(r) => assert_eq!(r.packet_id, id),
                    other => panic!("expected PUBREL, got {other:?}"),
                }
                self.send(&Packet::PubComp(PubResp::new(id)));
            }
        }
    }

    /// Round trip a PINGREQ so earlier packets are known to be processed.
    pub fn sync(&mut self) {
        self.send(&Packet::PingReq);
        match self.expect_packet() {
            Packet::PingResp => {}
            other => panic!("expected PINGRESP, got {other:?}"),
        }
    }
}
