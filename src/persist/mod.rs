//! Persistence: what a shard writes to its append-only log so that state survives a restart
//! (`docs/persistence.md`): retained messages, persistent sessions, their queued and
//! in-flight QoS 1/2 messages and inbound QoS 2 ids.
//!
//! - `record`: the record kinds (`Record`) and the typed body of each, encoded and decoded
//!   by pure functions.
//! - `frame`: the file's byte layout: a header, then records framed as length + CRC32 +
//!   body; `Replay` decodes a log up to its last good record and says where that ends.
//! - `recovery`: start-up, before any shard runs (blocking `std::fs`): lock the directory,
//!   replay every shard's log, truncate torn tails, rehome records when the shard count
//!   changed, drop expired messages.
//! - `log_file`: a shard's open log on monoio file IO: append a batch, sync, replace it by a
//!   snapshot (compaction).
//! - `sink`: the records a shard owes its log, shared by its journal and its persistent
//!   sessions, taken by the writer as one batch per loop turn.
//! - `error`: why a record does not decode and why persistence could not start.
//!
//! Nothing here knows shards' state: the shard turns its changes into `Record`s
//! (`shard::state::journal`) and recovered records back into messages (`shard::persist`).

mod error;
mod frame;
mod log_file;
mod record;
mod recovery;
mod sink;

pub use error::{LogWriteError, PersistError, RecordError, TailError};
pub use frame::{FORMAT_VERSION, HEADER, HEADER_LEN, Replay, Torn, encode_frame, encode_record};
pub use log_file::LogFile;
pub use record::{
    MessageFields, OutMessage, Record, RetainedMessage, SessionRecord, StoredMessage,
    SubscriptionRecord, WallTime, WillRecord, encode_out_done, encode_out_queued,
};
pub use recovery::{
    DirLock, Recovered, RecoveredOut, RecoveredSession, encode_session, log_path, recover,
};
pub use sink::{Pending, SharedSink, Sink, SinkStats, WallClock};
