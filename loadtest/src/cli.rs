//! The command line: one subcommand per scenario sharing [`Common`] options, and `compare`.

use clap::{Args, Parser, Subcommand};
use ringmq_protocol::{ProtocolVersion, QoS};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "ringmq-load",
    version,
    about = "MQTT load generator with latency histograms"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// P publishers to 1 subscriber (one topic, or one topic each under a wildcard).
    Fanin {
        /// Publishers.
        #[arg(short = 'p', long, default_value_t = 8)]
        publishers: u32,
        /// 1: all publish on one topic; otherwise each publisher has its own topic and the
        /// subscriber subscribes to a `+` wildcard.
        #[arg(long, default_value_t = 1)]
        topics: u32,
        #[command(flatten)]
        common: Common,
    },
    /// 1 publisher to S subscribers of its topic.
    Fanout {
        /// Subscribers.
        #[arg(short = 's', long, default_value_t = 100)]
        subscribers: u32,
        #[command(flatten)]
        common: Common,
    },
    /// N publisher/subscriber pairs, a topic each.
    Pairs {
        /// Pairs.
        #[arg(short = 'n', long, default_value_t = 50)]
        pairs: u32,
        #[command(flatten)]
        common: Common,
    },
    /// P publishers to a `$share/g/...` group of S subscribers (MQTT 5.0).
    Shared {
        #[arg(short = 'p', long, default_value_t = 4)]
        publishers: u32,
        #[arg(short = 's', long, default_value_t = 4)]
        subscribers: u32,
        #[command(flatten)]
        common: Common,
    },
    /// Connection storm: N concurrent clients connect, wait for CONNACK and disconnect in a
    /// loop; reports connects/s and the connect-latency histogram.
    Connect {
        /// Concurrent connecting clients.
        #[arg(short = 'n', long, default_value_t = 16)]
        clients: u32,
        #[command(flatten)]
        common: Common,
    },
    /// Hold C idle connections, pinging every keepalive/2; reports ping latency and, with
    /// --broker-pid, the broker's resident memory.
    Idle {
        /// Connections.
        #[arg(short = 'n', long, default_value_t = 1000)]
        connections: u32,
        /// Broker process whose VmRSS to report at the end.
        #[arg(long)]
        broker_pid: Option<u32>,
        #[command(flatten)]
        common: Common,
    },
    /// Many devices publishing telemetry at a low rate on `iot/<dev>/telemetry`, with a few
    /// `iot/+/telemetry` and `iot/#` subscribers. `--rate` is per device (default 1/s).
    Iot {
        /// Devices.
        #[arg(short = 'n', long, default_value_t = 1000)]
        devices: u32,
        /// Subscribers (alternately `iot/+/telemetry` and `iot/#`).
        #[arg(short = 's', long, default_value_t = 2)]
        subscribers: u32,
        #[command(flatten)]
        common: Common,
    },
    /// A long mixed run for leaks and losses: healthy QoS 0/1/2 pairs (persistent QoS 1/2
    /// subscribers reconnecting), takeovers, a reconnect storm, slow and non-reading
    /// consumers, malformed clients; broker RSS and descriptors every --report-every seconds,
    /// loss per QoS at the end (exit 1 if QoS 1/2 lost anything acknowledged).
    Soak {
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        #[arg(long, default_value_t = 1883)]
        port: u16,
        /// Seconds to run.
        #[arg(long, default_value_t = 60)]
        duration: u64,
        /// Seconds between report lines.
        #[arg(long, default_value_t = 10)]
        report_every: u64,
        /// The broker process whose VmRSS and open descriptors to report.
        #[arg(long)]
        broker_pid: Option<u32>,
        /// Healthy publisher/subscriber pairs per QoS level.
        #[arg(long, default_value_t = 2)]
        pairs: u32,
        /// Messages per second per healthy publisher.
        #[arg(long, default_value_t = 200)]
        rate: u32,
    },
    /// Compare .hgrm files: percentiles side by side, ratios to the first, optional SVG plot.
    Compare {
        /// .hgrm files written by --hgrm (or by any HdrHistogram tool, values in ms).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Write the percentile plot here.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Comma-separated labels, one per file (default: the file names).
        #[arg(long)]
        labels: Option<String>,
        /// LABEL=FILE: the broker's own histogram (ringmq's `GET /latency.hgrm`) of the run
        /// labelled LABEL, shown as its share of that run's latency and drawn dashed beside it.
        /// Repeatable.
        #[arg(long, value_name = "LABEL=FILE")]
        broker_side: Vec<String>,
    },
}

/// Options every scenario shares.
#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Broker host (an IP address).
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// Subscribers connect to this broker instead (an IP address; default --host): with a
    /// bridge between them, publishers on one broker and subscribers on the other measure
    /// the bridge (loadtest/bridge-bench.sh).
    #[arg(long)]
    pub sub_host: Option<String>,
    /// The subscribers' broker port (default --port).
    #[arg(long)]
    pub sub_port: Option<u16>,
    /// TLS to the broker (mqtts://, or wss:// with --ws); needs --cafile.
    #[arg(long)]
    pub tls: bool,
    /// CA certificates (PEM) the broker's certificate is checked against (with --tls).
    #[arg(long, requires = "tls")]
    pub cafile: Option<PathBuf>,
    /// The name the broker's certificate must carry (default: --host).
    #[arg(long, requires = "tls")]
    pub server_name: Option<String>,
    /// Resume TLS sessions when reconnecting (default: a full handshake per connection, what
    /// a handshake-rate measurement wants).
    #[arg(long, requires = "tls")]
    pub tls_resume: bool,
    /// MQTT over WebSocket (ws://, or wss:// with --tls).
    #[arg(long)]
    pub ws: bool,
    /// The WebSocket upgrade request's path (with --ws).
    #[arg(long, default_value = "/mqtt")]
    pub ws_path: String,
    /// MQTT protocol version: 3.1.1 or 5.
    #[arg(long, default_value = "3.1.1", value_parser = parse_version)]
    pub mqtt: ProtocolVersion,
    /// QoS of publishes and subscriptions: 0, 1 or 2.
    #[arg(long, default_value = "0", value_parser = parse_qos)]
    pub qos: QoS,
    /// Payload bytes (at least 20, the header).
    #[arg(long, default_value_t = 64)]
    pub size: usize,
    /// Messages per second per publisher; 0 = closed loop with --inflight.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Closed loop: unacknowledged (QoS 1/2) or sent-but-not-received (QoS 0) messages per
    /// publisher.
    #[arg(long, default_value_t = 64)]
    pub inflight: u32,
    /// Seconds of measurement (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of warm-up, excluded from the statistics.
    #[arg(long, default_value_t = 2.0)]
    pub warmup: f64,
    /// Seconds to wait after the last send for messages still in flight.
    #[arg(long, default_value_t = 2.0)]
    pub drain: f64,
    /// Stop each publisher after this many messages (the run may end before --duration).
    #[arg(long)]
    pub count: Option<u64>,
    /// Worker threads, each with its own runtime (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Pin worker thread i to core i.
    #[arg(long)]
    pub pin: bool,
    /// Client identifiers are `<prefix>-<role><n>`.
    #[arg(long, default_value = "ringmq-load")]
    pub client_prefix: String,
    /// Clean session / clean start (the default).
    #[arg(long, conflicts_with = "persistent")]
    pub clean: bool,
    /// Persistent sessions (clean session 0; in 5.0 a session expiry of 1 hour).
    #[arg(long)]
    pub persistent: bool,
    /// Keepalive seconds sent in CONNECT (0 = off; default 30 for `idle`, else 0); idle
    /// connections ping every half of it.
    #[arg(long)]
    pub keepalive: Option<u16>,
    /// Write the latency percentile distribution (HdrHistogram .hgrm text, ms) here.
    #[arg(long)]
    pub hgrm: Option<PathBuf>,
    /// Write a JSON summary here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No progress line.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn parse_version(s: &str) -> Result<ProtocolVersion, String> {
    match s {
        "3.1.1" | "4" | "311" => Ok(ProtocolVersion::V4),
        "5" | "5.0" => Ok(ProtocolVersion::V5),
        "3.1" | "3" => Ok(ProtocolVersion::V3),
        _ => Err(format!("unknown MQTT version {s:?} (use 3.1.1 or 5)")),
    }
}

pub fn parse_qos(s: &str) -> Result<QoS, String> {
    s.parse::<u8>()
        .ok()
        .and_then(QoS::from_bits)
        .ok_or_else(|| format!("QoS must be 0, 1 or 2, not {s:?}"))
}

pub fn version_name(v: ProtocolVersion) -> &'static str {
    match v {
        ProtocolVersion::V3 => "3.1",
        ProtocolVersion::V4 => "3.1.1",
        ProtocolVersion::V5 => "5",
    }
}
