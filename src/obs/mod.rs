//! Observability that is no shard's business: the broker's logger (`log` facade, bounded
//! queue, a writer thread of its own), the numbers shards publish and the endpoint that
//! serves them, and the types the config names for them.
//!
//! - `filter`: `LogFilter`, a default level plus per-module levels (`RUST_LOG`-style).
//! - `format`: one record as a plain text or JSON line.
//! - `logger`: the `log::Log` that never blocks its caller, and its writer thread.
//! - `metrics`: `Snapshot` (a shard's counters and gauges), `ShardMetrics` (the same as
//!   atomics only its shard writes), `Registry` (every shard's).
//! - `latency`: per-shard HdrHistograms of the broker's own delivery latency, handed to the
//!   reader without waiting, as Prometheus buckets and `.hgrm`.
//! - `prometheus`: snapshots in the Prometheus text format.
//! - `http`: the metrics listener's thread (`GET /metrics`).
//! - `sys`: the `$SYS/broker/...` topics from the shards' snapshots.
//! - `thread`: spawning those threads with SIGINT/SIGTERM blocked, as every broker thread.
//!
//! Nothing here knows a shard: shards log through the `log` macros like any code, and fill
//! a `Snapshot` they publish themselves.

mod filter;
mod format;
mod http;
mod latency;
mod logger;
mod metrics;
mod prometheus;
mod sys;
mod thread;

pub use filter::{BadFilter, LogFilter};
pub use format::LogFormat;
pub use http::{Endpoints, spawn as spawn_metrics_server};
pub use latency::{LatencyRecorder, LatencyTotals};
pub use logger::{QUEUE_LINES, dropped_lines, flush as flush_logs, install as install_logger};
pub use metrics::{DisconnectCause, Dropped, Registry, Scalar, ShardMetrics, Snapshot};
pub use prometheus::{CONTENT_TYPE, Process, render as render_prometheus};
pub use sys::SysTopics;
