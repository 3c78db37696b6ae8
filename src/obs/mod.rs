//! Observability that is no shard's business: the broker's logger (`log` facade, bounded
//! queue, a writer thread of its own), and the types the config names for it.
//!
//! - `filter`: `LogFilter`, a default level plus per-module levels (`RUST_LOG`-style).
//! - `format`: one record as a plain text or JSON line.
//! - `logger`: the `log::Log` that never blocks its caller, and its writer thread.
//!
//! Nothing here knows a shard: shards log through the `log` macros like any code.

mod filter;
mod format;
mod logger;

pub use filter::{BadFilter, LogFilter};
pub use format::LogFormat;
pub use logger::{QUEUE_LINES, dropped_lines, flush as flush_logs, install as install_logger};
