//! `ringmq-load` as a library: the scenarios, the measurement pieces and the comparison tools,
//! exposed so that `loadtest/tests/` can test them directly.
//!
//! - [`cli`]: the command line (clap).
//! - [`clock`]: the process-wide monotonic epoch and the process's CPU time.
//! - [`payload`]: the header every test message carries (publisher, sequence, send time).
//! - [`schedule`]: the open-loop send schedule (intended send times, no coordinated omission).
//! - [`precise`]: sub-millisecond sleeps for open-loop sends (monoio's timer ticks in ms).
//! - [`tracker`]: per-stream sequence tracking (lost and duplicated messages).
//! - [`hgrm`]: HdrHistogram percentile-distribution text, written and read back.
//! - [`plot`]: the SVG latency-percentile plot.
//! - [`compare`]: `ringmq-load compare`.
//! - [`plan`]: which clients a scenario runs and which subscriber expects which publisher.
//! - [`link`]: what a connection's bytes go through: plain TCP, TLS, WebSocket, both.
//! - [`mqtt`]: connection set-up and buffered IO on monoio with ringmq's codec.
//! - [`worker`]: one thread's runtime and its client tasks.
//! - [`run`]: the orchestration of a run across threads, progress and the final report.
//! - [`report`]: the results, the human table and the JSON summary.
//! - [`soak`]: `ringmq-load soak`, the long mixed run for leaks and losses.

pub mod cli;
pub mod clock;
pub mod compare;
pub mod error;
pub mod hgrm;
pub mod link;
pub mod mqtt;
pub mod payload;
pub mod plan;
pub mod plot;
pub mod precise;
pub mod report;
pub mod run;
pub mod schedule;
pub mod soak;
pub mod tracker;
pub mod worker;
