//! Every shard's snapshot in the Prometheus text exposition format 0.0.4: `HELP` and `TYPE`
//! per family, names prefixed `ringmq_`, every shard's number labelled `shard`.

use super::metrics::{DisconnectCause, Dropped, Scalar, Snapshot};
use crate::protocol::ReasonCode;
use std::fmt::Write;
use std::time::Duration;

/// The Content-Type of what `render` writes.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What the process adds to the shards' numbers.
#[derive(Debug, Clone, Copy)]
pub struct Process {
    pub uptime: Duration,
    pub log_lines_dropped: u64,
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

struct Out<'a> {
    text: &'a mut String,
    shards: &'a [Snapshot],
}

impl Out<'_> {
    fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let kind = match kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        let _ = writeln!(self.text, "# HELP ringmq_{name} {help}");
        let _ = writeln!(self.text, "# TYPE ringmq_{name} {kind}");
    }

    /// One sample; `labels` is `key="value"` pairs already joined by commas (or empty).
    fn sample(&mut self, name: &str, shard: usize, labels: &str, value: u64) {
        let sep = if labels.is_empty() { "" } else { "," };
        let _ = writeln!(
            self.text,
            "ringmq_{name}{{shard=\"{shard}\"{sep}{labels}}} {value}"
        );
    }

    /// A family with one unlabelled number per shard.
    fn per_shard(&mut self, name: &str, kind: Kind, help: &str, scalar: Scalar) {
        self.family(name, kind, help);
        for (id, s) in self.shards.iter().enumerate() {
            self.sample(name, id, "", s.get(scalar));
        }
    }

    /// A family with one number per shard and label value.
    fn labelled<'v>(
        &mut self,
        (name, kind, help): (&str, Kind, &str),
        label: &str,
        values: impl Fn(&Snapshot) -> Vec<(&'v str, u64)>,
    ) {
        self.family(name, kind, help);
        for (id, s) in self.shards.iter().enumerate() {
            for (value_label, value) in values(s) {
                self.sample(name, id, &format!("{label}=\"{value_label}\""), value);
            }
        }
    }
}

const QOS: [&str; 3] = ["0", "1", "2"];

/// Appends the exposition of `shards` (indexed by shard id) and `process` to `text`.
pub fn render(shards: &[Snapshot], process: Process, text: &mut String) {
    let mut out = Out { text, shards };
    use Kind::{Counter, Gauge};
    out.per_shard(
        "connections",
        Gauge,
        "Open client connections.",
        Scalar::Connections,
    );
    out.per_shard(
        "connections_accepted_total",
        Counter,
        "TCP connections accepted.",
        Scalar::ConnectionsAccepted,
    );
    let help = "CONNECTs refused, by CONNACK reason code.";
    out.family("connections_refused_total", Counter, help);
    for (id, s) in shards.iter().enumerate() {
        for (code, n) in s.refused.iter().enumerate().filter(|(_, n)| **n > 0) {
            let name = u8::try_from(code).ok().and_then(ReasonCode::from_u8);
            let labels = match name {
                Some(name) => format!("code=\"{code:#04x}\",reason=\"{name:?}\""),
                None => format!("code=\"{code:#04x}\""),
            };
            out.sample("connections_refused_total", id, &labels, *n);
        }
    }
    out.labelled(
        ("disconnects_total", Counter, "Connections ended, by cause."),
        "cause",
        |s| {
            DisconnectCause::ALL
                .iter()
                .map(|c| (c.label(), s.disconnects[*c as usize]))
                .collect()
        },
    );
    out.labelled(
        (
            "sessions",
            Gauge,
            "Sessions held, by whether their client is connected.",
        ),
        "state",
        |s| {
            vec![
                ("online", s.get(Scalar::SessionsOnline)),
                ("offline", s.get(Scalar::SessionsOffline)),
            ]
        },
    );
    out.per_shard(
        "sessions_expired_total",
        Counter,
        "Offline sessions removed at their Session Expiry Interval.",
        Scalar::SessionsExpired,
    );
    out.per_shard(
        "subscriptions",
        Gauge,
        "Subscriptions of the sessions homed on the shard (shared ones included).",
        Scalar::Subscriptions,
    );
    out.per_shard(
        "retained_messages",
        Gauge,
        "Retained messages (every shard holds a full copy).",
        Scalar::RetainedMessages,
    );
    out.per_shard(
        "retained_bytes",
        Gauge,
        "Topic and payload bytes of the retained messages.",
        Scalar::RetainedBytes,
    );
    out.labelled(
        (
            "messages_received_total",
            Counter,
            "PUBLISH packets received from clients, by QoS.",
        ),
        "qos",
        |s| QOS.iter().copied().zip(s.received).collect(),
    );
    out.labelled(
        (
            "messages_sent_total",
            Counter,
            "PUBLISH packets written to clients, by QoS.",
        ),
        "qos",
        |s| QOS.iter().copied().zip(s.sent).collect(),
    );
    out.per_shard(
        "packets_received_total",
        Counter,
        "MQTT packets of every type received after CONNECT.",
        Scalar::PacketsReceived,
    );
    out.per_shard(
        "packets_sent_total",
        Counter,
        "MQTT packets of every type written to clients.",
        Scalar::PacketsSent,
    );
    out.per_shard(
        "bytes_received_total",
        Counter,
        "Bytes read from client sockets.",
        Scalar::BytesReceived,
    );
    out.per_shard(
        "bytes_sent_total",
        Counter,
        "Bytes handed to client sockets.",
        Scalar::BytesSent,
    );
    out.labelled(
        (
            "messages_dropped_total",
            Counter,
            "Messages not delivered, by cause.",
        ),
        "cause",
        |s| {
            Dropped::ALL
                .iter()
                .map(|d| (d.label(), s.dropped(*d)))
                .collect()
        },
    );
    out.per_shard(
        "stalled_clients_cut_total",
        Counter,
        "Connections cut for reading nothing while over the outbound buffer limit (their \
         unsent bytes are dropped).",
        Scalar::StalledCut,
    );
    out.per_shard(
        "inflight_messages",
        Gauge,
        "Outbound QoS 1 and 2 messages sent and not yet acknowledged.",
        Scalar::Inflight,
    );
    out.per_shard(
        "queued_messages",
        Gauge,
        "Messages waiting in session queues.",
        Scalar::Queued,
    );
    out.family(
        "mesh_ring_messages",
        Gauge,
        "Messages in the ring from this shard to a peer shard, not yet taken by it.",
    );
    for (id, s) in shards.iter().enumerate() {
        for (peer, n) in s.ring.iter().enumerate().filter(|(peer, _)| *peer != id) {
            out.sample("mesh_ring_messages", id, &format!("peer=\"{peer}\""), *n);
        }
    }
    out.per_shard(
        "mesh_overflow_messages",
        Gauge,
        "Messages waiting in the overflow for full peer rings.",
        Scalar::MeshOverflowQueued,
    );
    out.per_shard(
        "mesh_overflows_total",
        Counter,
        "Messages that had to wait in an overflow because a peer ring was full.",
        Scalar::MeshOverflows,
    );
    out.per_shard(
        "bridges_up",
        Gauge,
        "Bridges (on this shard) connected to their remote broker.",
        Scalar::BridgesUp,
    );
    out.per_shard(
        "bridges_down",
        Gauge,
        "Bridges (on this shard) not connected: connecting or backing off.",
        Scalar::BridgesDown,
    );
    out.per_shard(
        "bridge_connects_total",
        Counter,
        "Bridge connections to a remote broker that got their CONNACK.",
        Scalar::BridgeConnects,
    );
    out.per_shard(
        "bridge_failures_total",
        Counter,
        "Bridge connection attempts that failed (refused, unreachable, timed out) and links \
         that ended.",
        Scalar::BridgeFailures,
    );
    let text = out.text;
    let _ = writeln!(
        text,
        "# HELP ringmq_log_lines_dropped_total Log lines dropped because the log queue was full."
    );
    let _ = writeln!(text, "# TYPE ringmq_log_lines_dropped_total counter");
    let _ = writeln!(
        text,
        "ringmq_log_lines_dropped_total {}",
        process.log_lines_dropped
    );
    let _ = writeln!(
        text,
        "# HELP ringmq_uptime_seconds Seconds since the broker started."
    );
    let _ = writeln!(text, "# TYPE ringmq_uptime_seconds gauge");
    let _ = writeln!(text, "ringmq_uptime_seconds {}", process.uptime.as_secs());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(shards: &[Snapshot]) -> String {
        let mut text = String::new();
        let process = Process {
            uptime: Duration::from_secs(5),
            log_lines_dropped: 1,
        };
        render(shards, process, &mut text);
        text
    }

    #[test]
    fn every_family_has_help_and_type_and_every_sample_a_shard() {
        let mut a = Snapshot::new(2);
        a.received[1] = 4;
        a.refused[0x87] = 1;
        a.ring[1] = 3;
        let text = rendered(&[a, Snapshot::new(2)]);
        assert!(text.contains("ringmq_messages_received_total{shard=\"0\",qos=\"1\"} 4\n"));
        assert!(text.contains("ringmq_connections_refused_total{shard=\"0\",code=\"0x87\",reason=\"NotAuthorized\"} 1\n"));
        assert!(text.contains("ringmq_mesh_ring_messages{shard=\"0\",peer=\"1\"} 3\n"));
        assert!(text.contains("ringmq_connections{shard=\"1\"} 0\n"));
        for own in ["shard=\"0\",peer=\"0\"", "shard=\"1\",peer=\"1\""] {
            assert!(!text.contains(own), "no ring to itself:\n{text}");
        }
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("# TYPE ") {
                let name = name.split(' ').next().unwrap_or_default();
                assert!(text.contains(&format!("# HELP {name} ")), "{name}");
            } else if !line.starts_with('#') {
                assert!(line.starts_with("ringmq_"), "{line}");
                let process_wide = line.starts_with("ringmq_log_lines_dropped_total")
                    || line.starts_with("ringmq_uptime_seconds");
                assert!(process_wide || line.contains("{shard=\""), "{line}");
            }
        }
    }
}
