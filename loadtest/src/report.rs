//! The result of a run: counts, rates, histograms and the generator's own CPU use, printed as a
//! human table and written as JSON.

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::fmt::Write as _;

/// Percentiles in the human table and the JSON summary.
pub const PERCENTILES: [(&str, f64); 5] = [
    ("p50", 50.0),
    ("p90", 90.0),
    ("p99", 99.0),
    ("p99.9", 99.9),
    ("p99.99", 99.99),
];

/// Everything a run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub scenario: String,
    pub mqtt: String,
    pub qos: u8,
    pub size: usize,
    pub threads: usize,
    pub publishers: usize,
    pub subscribers: usize,
    pub clients: u32,
    /// Messages (or connects) per second per publisher (worker); 0 = closed loop.
    pub rate: f64,
    pub inflight: u32,
    pub warmup_secs: f64,
    /// From the end of the warm-up to the stop: the window rates are measured over.
    pub window_secs: f64,
    pub sent: u64,
    pub sent_in_window: u64,
    /// Deliveries the run should have seen: each message once per receiving group.
    pub expected: u64,
    pub received: u64,
    pub received_in_window: u64,
    /// PUBACKs (QoS 1) or PUBCOMPs (QoS 2) the publishers received.
    pub acked: u64,
    pub lost: u64,
    pub duplicated: u64,
    pub unexpected: u64,
    /// What `latency` measures: messages, connects or pings.
    pub latency_kind: &'static str,
    /// µs.
    pub latency: Histogram<u64>,
    /// µs, TCP connect to CONNACK.
    pub connect_latency: Histogram<u64>,
    /// µs, open loop: how late sends went out after their intended time (the generator's own
    /// lateness, part of every message latency). Empty in closed loop.
    pub send_lag: Histogram<u64>,
    pub connects: u64,
    pub connects_in_window: u64,
    pub connect_failures: u64,
    pub pings: u64,
    /// The generator's CPU seconds (all threads) over the window.
    pub cpu_secs: Option<f64>,
    pub cores: usize,
    pub own_rss_kib: Option<u64>,
    pub broker_rss_kib: Option<u64>,
}

fn per_sec(count: u64, secs: f64) -> f64 {
    if secs > 0.0 { count as f64 / secs } else { 0.0 }
}

impl Report {
    pub fn sent_per_sec(&self) -> f64 {
        per_sec(self.sent_in_window, self.window_secs)
    }

    pub fn delivered_per_sec(&self) -> f64 {
        per_sec(self.received_in_window, self.window_secs)
    }

    pub fn connects_per_sec(&self) -> f64 {
        per_sec(self.connects_in_window, self.window_secs)
    }

    /// CPU seconds per wall second: 1.0 is one core fully busy.
    pub fn cpu_share(&self) -> Option<f64> {
        let cpu = self.cpu_secs?;
        (self.window_secs > 0.0).then(|| cpu / self.window_secs)
    }

    /// Messages the generator handled (sent + received) per CPU second it used.
    pub fn msgs_per_cpu_sec(&self) -> Option<f64> {
        let cpu = self.cpu_secs?;
        (cpu > 0.0).then(|| (self.sent_in_window + self.received_in_window) as f64 / cpu)
    }

    /// The human summary printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = write!(
            out,
            "scenario {}  mqtt {}  threads {}",
            self.scenario, self.mqtt, self.threads
        );
        if self.publishers > 0 {
            let _ = writeln!(
                out,
                "  qos {}  size {} B  publishers {}  subscribers {}  {}",
                self.qos,
                self.size,
                self.publishers,
                self.subscribers,
                if self.rate > 0.0 {
                    format!("open loop {} msg/s each", self.rate)
                } else {
                    format!("closed loop, window {}", self.inflight)
                }
            );
        } else {
            let _ = writeln!(out, "  clients {}", self.clients);
        }
        let _ = writeln!(
            out,
            "window {:.2} s after {:.1} s warm-up",
            self.window_secs, self.warmup_secs
        );
        if self.publishers > 0 {
            let _ = writeln!(
                out,
                "sent      {:>12}   {:>14} msg/s",
                self.sent,
                fmt_rate(self.sent_per_sec())
            );
            let _ = writeln!(
                out,
                "received  {:>12}   {:>14} msg/s delivered (expected {})",
                self.received,
                fmt_rate(self.delivered_per_sec()),
                self.expected
            );
            let _ = write!(
                out,
                "lost {}  duplicated {}  unexpected {}",
                self.lost, self.duplicated, self.unexpected
            );
            if self.qos > 0 {
                let _ = write!(out, "  acked {}", self.acked);
            }
            out.push('\n');
        }
        if self.connects > 0 || self.connect_failures > 0 {
            let _ = writeln!(
                out,
                "connects  {:>12}   {:>14} /s   failures {}",
                self.connects,
                fmt_rate(self.connects_per_sec()),
                self.connect_failures
            );
        }
        if self.pings > 0 {
            let _ = writeln!(out, "pings     {:>12}", self.pings);
        }
        let _ = writeln!(
            out,
            "{:<22} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "(µs)", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean", "count"
        );
        write_hist_row(&mut out, self.latency_kind, &self.latency);
        if self.latency_kind != "connect" {
            write_hist_row(&mut out, "connect", &self.connect_latency);
        }
        if !self.send_lag.is_empty() {
            write_hist_row(&mut out, "send lag (generator)", &self.send_lag);
        }
        match (self.cpu_secs, self.cpu_share()) {
            (Some(cpu), Some(share)) => {
                let _ = write!(
                    out,
                    "generator cpu {cpu:.2} s = {:.0}% of one core ({} cores available)",
                    share * 100.0,
                    self.cores
                );
                if let Some(rate) = self.msgs_per_cpu_sec().filter(|r| *r > 0.0) {
                    let _ = write!(
                        out,
                        ", {} msgs (sent+received) per cpu-second",
                        fmt_rate(rate)
                    );
                }
                out.push('\n');
            }
            _ => out.push_str("generator cpu: unavailable\n"),
        }
        if let Some(kib) = self.broker_rss_kib {
            let _ = writeln!(
                out,
                "broker VmRSS {} KiB ({:.1} KiB per connection)",
                kib,
                kib as f64 / f64::from(self.clients.max(1))
            );
        }
        out
    }

    /// The machine-readable summary written by `--json`.
    pub fn json(&self) -> Value {
        json!({
            "scenario": self.scenario,
            "mqtt": self.mqtt,
            "qos": self.qos,
            "size": self.size,
            "threads": self.threads,
            "publishers": self.publishers,
            "subscribers": self.subscribers,
            "clients": self.clients,
            "rate": self.rate,
            "inflight": self.inflight,
            "warmup_secs": self.warmup_secs,
            "window_secs": self.window_secs,
            "sent": self.sent,
            "sent_in_window": self.sent_in_window,
            "sent_per_sec": self.sent_per_sec(),
            "expected": self.expected,
            "received": self.received,
            "received_in_window": self.received_in_window,
            "delivered_per_sec": self.delivered_per_sec(),
            "acked": self.acked,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "unexpected": self.unexpected,
            "latency_kind": self.latency_kind,
            "latency_p50_us": quantile(&self.latency, 0.5),
            "latency_p99_us": quantile(&self.latency, 0.99),
            "latency_us": hist_json(&self.latency),
            "connect_latency_us": hist_json(&self.connect_latency),
            "send_lag_p99_us": quantile(&self.send_lag, 0.99),
            "send_lag_us": hist_json(&self.send_lag),
            "connects": self.connects,
            "connects_per_sec": self.connects_per_sec(),
            "connect_failures": self.connect_failures,
            "pings": self.pings,
            "cpu_secs": self.cpu_secs,
            "cpu_share": self.cpu_share(),
            "msgs_per_cpu_sec": self.msgs_per_cpu_sec(),
            "cores": self.cores,
            "own_rss_kib": self.own_rss_kib,
            "broker_rss_kib": self.broker_rss_kib,
        })
    }
}

fn write_hist_row(out: &mut String, name: &str, hist: &Histogram<u64>) {
    let _ = write!(out, "{name:<22}");
    if hist.is_empty() {
        out.push_str(" (no samples)\n");
        return;
    }
    for (_, p) in PERCENTILES {
        let _ = write!(out, " {:>9}", hist.value_at_percentile(p));
    }
    let _ = writeln!(
        out,
        " {:>9} {:>9.1} {:>10}",
        hist.max(),
        hist.mean(),
        hist.len()
    );
}

fn quantile(hist: &Histogram<u64>, q: f64) -> Option<u64> {
    (!hist.is_empty()).then(|| hist.value_at_quantile(q))
}

fn hist_json(hist: &Histogram<u64>) -> Value {
    let mut obj = serde_json::Map::new();
    obj.insert("count".into(), json!(hist.len()));
    if !hist.is_empty() {
        for (name, p) in PERCENTILES {
            obj.insert(name.into(), json!(hist.value_at_percentile(p)));
        }
        obj.insert("min".into(), json!(hist.min()));
        obj.insert("max".into(), json!(hist.max()));
        obj.insert("mean".into(), json!(hist.mean()));
    }
    Value::Object(obj)
}

/// 1234567.0 as "1.23 M".
pub fn fmt_rate(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.1} k", rate / 1e3)
    } else {
        format!("{rate:.1}")
    }
}
