//! The log writer task of a shard (`docs/persistence.md`): takes what `ShardState`'s journal
//! collected and writes it with one write per batch (group commit), syncs as `[persistence]
//! fsync` says, compacts the log past `max_log_bytes`, keeps the shard's files within its
//! share of `max_disk_bytes` (the log within half of it, the other half is room for
//! compaction's new file), and, after a failed write or records dropped past
//! `max_pending_bytes`, replaces the log by a snapshot before it appends anything again.

use super::conn::Shared;
use crate::config::{Fsync, PersistenceConfig};
use crate::persist::{LogFile, LogWriteError, WallTime};
use std::future::poll_fn;
use std::task::Poll;
use std::time::{Duration, Instant, SystemTime};

/// How long the writer waits after a failed write or compaction before it tries again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// With `interval` and `never` the writer lets records collect for `fsync_interval_ms`
/// after a write before it writes again, or until this many bytes are pending (voided
/// records included: they leave the buffer only when it is taken): fewer, larger writes,
/// and a message taken and retired within that time is never written at all
/// (`Sink::void`). What a `kill -9` can lose grows by as much (`docs/persistence.md`);
/// `always` writes every loop turn. 8 MiB is about 50 ms of 50 QoS 1 pairs at full speed
/// on one core, and bounds the buffer (twice, with the one being written). Never more
/// than half of `max_pending_bytes`, so that records collecting on purpose never pass it.
const WRITE_BYTES: usize = 8 << 20;

/// The writer's state between loop turns.
struct Writer {
    state: Shared,
    log: LogFile,
    config: PersistenceConfig,
    /// The most bytes this shard's log may hold: half its share of `max_disk_bytes`, so
    /// that a snapshot as large fits beside it (`u64::MAX`: no bound).
    bound: u64,
    /// The pending bytes that wake a writer letting records collect.
    write_bytes: usize,
    batch: Vec<u8>,
    spare: Vec<u8>,
    unsynced: bool,
    last_sync: Instant,
    last_write: Instant,
    writes: u64,
    bytes: u64,
    compact_at: u64,
    /// After a failed write the log's end is unknown (and after dropped records the log
    /// misses some): the next turn replaces it by a snapshot.
    broken: bool,
}

/// The log writer: waits for the journal's records, writes each batch with one write,
/// syncs per the policy, compacts past the bound. Ends after `close_journal`, once what was
/// left is written and synced.
pub(super) async fn journal_task(state: Shared, log: LogFile, config: PersistenceConfig) {
    let shards = state.borrow().shards().max(1) as u64;
    let bound = config.max_disk_bytes.map_or(u64::MAX, |b| b / shards / 2);
    let write_bytes = WRITE_BYTES.min(config.max_pending_bytes / 2).max(1);
    state.borrow_mut().set_journal_cap(config.max_pending_bytes);
    let mut writer = Writer {
        compact_at: compaction_bound(&config, log.len(), bound),
        state,
        log,
        config,
        bound,
        write_bytes,
        batch: Vec::with_capacity(64 * 1024),
        spare: Vec::new(),
        unsynced: false,
        last_sync: Instant::now(),
        last_write: Instant::now(),
        writes: 0,
        bytes: 0,
        broken: false,
    };
    writer.run().await;
}

impl Writer {
    async fn run(&mut self) {
        loop {
            let got = self.wait().await;
            let closing = self.state.borrow().journal_closing();
            {
                let mut s = self.state.borrow_mut();
                s.set_wall_clock(Instant::now(), WallTime::from_system(SystemTime::now()));
            }
            let overflowed = self.state.borrow().journal_overflowed();
            let next = self.log.len() + self.batch.len() as u64;
            if self.broken || overflowed || (got && next > self.compact_at.min(self.bound)) {
                self.compact().await;
            } else if got && !self.batch.is_empty() {
                self.append().await;
            }
            self.sync_if_due(closing).await;
            let durable = !self.broken && (!self.unsynced || self.config.fsync != Fsync::Always);
            if durable {
                // What was taken is written (and, with `always`, synced): the
                // acknowledgements held for it may go.
                self.state.borrow_mut().journal_durable(Instant::now());
            }
            if self.broken {
                if closing {
                    break;
                }
                monoio::time::sleep(RETRY_AFTER).await;
            } else if closing && !got {
                break;
            }
        }
        self.log_closing();
    }

    /// Waits for the next batch (true: it is in `batch`), a due sync, a retry or shutdown.
    async fn wait(&mut self) -> bool {
        let deadline = match self.broken {
            // A failed write is retried now (after `RETRY_AFTER`), not at the next record:
            // without traffic there might be none.
            true => Some(Instant::now()),
            false => (self.config.fsync == Fsync::Interval && self.unsynced)
                .then(|| self.last_sync + self.config.fsync_interval),
        };
        let lazy = self.config.fsync != Fsync::Always && !self.broken;
        if !lazy {
            return next_batch(&self.state, &mut self.batch, deadline, 1).await;
        }
        let due = self.last_write + self.config.fsync_interval;
        let until = deadline.map_or(due, |d| d.min(due));
        // Past the time (or closing): whatever is pending, else the first record.
        next_batch(&self.state, &mut self.batch, Some(until), self.write_bytes).await
            || next_batch(&self.state, &mut self.batch, deadline, 1).await
    }

    /// Appends the batch at the end of the log (`run` compacts instead past the bound).
    async fn append(&mut self) {
        let (result, written) = self.log.append(std::mem::take(&mut self.batch)).await;
        self.batch = written;
        self.last_write = Instant::now();
        match result {
            Ok(()) => {
                self.writes += 1;
                self.bytes += self.batch.len() as u64;
                self.unsynced = true;
            }
            Err(e) => self.fail("writing", &e.into(), "the log will be rewritten"),
        }
    }

    /// Replaces the log by a snapshot of the shard's state (which holds the effect of the
    /// batch taken and of any record dropped), if the snapshot is within the bound. A
    /// snapshot over it, while the batch fits, leaves the log to grow up to the bound;
    /// otherwise the disk counts as full until the state shrinks.
    async fn compact(&mut self) {
        self.state
            .borrow_mut()
            .journal_snapshot(Instant::now(), &mut self.spare);
        let need = self.spare.len() as u64;
        if need > self.bound {
            let appendable = !self.broken
                && !self.state.borrow().journal_overflowed()
                && self.log.len() + self.batch.len() as u64 <= self.bound;
            if appendable {
                self.compact_at = u64::MAX;
                self.spare.clear();
                self.append().await;
                return;
            }
            let error = LogWriteError::OverBound {
                need,
                bound: self.bound,
            };
            self.state.borrow_mut().journal_snapshot_taken();
            self.fail("compacting", &error, "retrying every second");
            self.spare.clear();
            return;
        }
        self.state.borrow_mut().journal_snapshot_taken();
        let before = self.log.len();
        let (result, snapshot) = self.log.replace(std::mem::take(&mut self.spare)).await;
        self.spare = snapshot;
        self.spare.clear();
        match result {
            Ok(()) => self.compacted(before),
            Err(e) => self.fail("compacting", &e.into(), "retrying every second"),
        }
    }

    fn compacted(&mut self, before: u64) {
        let path = self.log.path();
        log::info!(
            file:% = path.display(), before, after = self.log.len();
            "persistence: {} compacted from {before} to {} bytes", path.display(), self.log.len()
        );
        self.state
            .borrow_mut()
            .set_log_failing(false, self.log.path());
        self.broken = false;
        self.unsynced = false;
        self.last_sync = Instant::now();
        self.compact_at = compaction_bound(&self.config, self.log.len(), self.bound);
    }

    /// `doing` failed with `error`: the shard refuses new QoS 1/2 work, the error is logged
    /// once per episode (`set_log_failing`), and the log is replaced by a snapshot next.
    fn fail(&mut self, doing: &str, error: &LogWriteError, then: &str) {
        let path = self.log.path();
        if self.state.borrow_mut().set_log_failing(true, path) {
            log::error!(
                file:% = path.display(), error:% = error;
                "persistence: {doing} {} failed: {error}; {then}", path.display()
            );
        } else {
            log::debug!(
                file:% = path.display(), error:% = error;
                "persistence: {doing} {} failed again: {error}", path.display()
            );
        }
        self.broken = true;
    }

    async fn sync_if_due(&mut self, closing: bool) {
        let due = match self.config.fsync {
            Fsync::Always => true,
            Fsync::Interval => self.last_sync.elapsed() >= self.config.fsync_interval,
            Fsync::Never => false,
        };
        if !(self.unsynced && (due || closing)) {
            return;
        }
        match self.log.sync().await {
            Ok(()) => self.unsynced = false,
            // What the kernel held may be lost: the log is rewritten, as after a failed
            // write.
            Err(e) => self.fail("syncing", &e.into(), "the log will be rewritten"),
        }
        self.last_sync = Instant::now();
    }

    fn log_closing(&self) {
        let stats = self.state.borrow().journal_stats();
        let (writes, bytes) = (self.writes, self.bytes);
        log::info!(
            file:% = self.log.path().display(), writes, bytes, records = stats.records,
            voided = stats.voided, dropped = stats.dropped;
            "persistence: {} closed: {writes} writes of {bytes} bytes; {} records, {} of them \
             voided before they were written, {} dropped past persistence.max_pending_bytes",
            self.log.path().display(), stats.records, stats.voided, stats.dropped
        );
    }
}

/// The size past which a log is compacted: the configured bound, or twice the live state
/// just written if that is more (a snapshot over the bound would be compacted over again);
/// never past `bound`, the log's share of `max_disk_bytes`.
fn compaction_bound(config: &PersistenceConfig, len: u64, bound: u64) -> u64 {
    config.max_log_bytes.max(len.saturating_mul(2)).min(bound)
}

/// Waits for at least `min_bytes` of records (true: they are in `batch`), for shutdown, for
/// records dropped past the cap (a snapshot is due), or until `deadline` (a sync or a write
/// is due).
async fn next_batch(
    state: &Shared,
    batch: &mut Vec<u8>,
    deadline: Option<Instant>,
    min_bytes: usize,
) -> bool {
    let mut got = false;
    let wait = poll_fn(|cx| {
        let mut s = state.borrow_mut();
        if s.take_journal_at_least(batch, cx.waker(), min_bytes) {
            got = true;
            return Poll::Ready(());
        }
        if s.journal_closing() || s.journal_overflowed() {
            return Poll::Ready(());
        }
        Poll::Pending
    });
    match deadline {
        None => wait.await,
        Some(at) => {
            let _ = monoio::time::timeout(at.saturating_duration_since(Instant::now()), wait).await;
        }
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_is_compacted_past_its_size_bound_and_never_past_its_share_of_the_disk() {
        let config = PersistenceConfig {
            max_log_bytes: 1000,
            ..PersistenceConfig::default()
        };
        // No share: the configured bound, or twice the live state.
        assert_eq!(compaction_bound(&config, 100, u64::MAX), 1000);
        assert_eq!(compaction_bound(&config, 800, u64::MAX), 1600);
        // A log bound of 1200 (a share of 2400 of max_disk_bytes).
        assert_eq!(compaction_bound(&config, 100, 1200), 1000);
        assert_eq!(compaction_bound(&config, 700, 1200), 1200);
    }
}
