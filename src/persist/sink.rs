//! `Sink`: the records a shard owes its log, encoded and framed into one buffer as its
//! state changes, until the shard's log writer takes them as one batch (group commit).
//! Shared within one shard (`Rc<RefCell<Sink>>`) by the shard's journal and its persistent
//! sessions, which write their own changes; never across threads. Sans-IO: bytes, the
//! writer's waker, and a wall-clock reading given by the writer.

use super::frame::encode_record;
use super::record::{Record, WallTime};
use std::cell::RefCell;
use std::rc::Rc;
use std::task::Waker;
use std::time::Instant;

/// One shard's sink, shared by its journal and its persistent sessions.
pub type SharedSink = Rc<RefCell<Sink>>;

/// A wall-clock reading and the `Instant` it was taken at, to turn deadlines (`Instant`)
/// into wall-clock times for the log. Given by the writer task, which reads both clocks.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    pub instant: Instant,
    pub wall: WallTime,
}

impl WallClock {
    pub fn wall_at(&self, at: Instant) -> WallTime {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.wall.plus(after),
            None => WallTime(self.wall.0.saturating_sub(
                u64::try_from((self.instant - at).as_millis()).unwrap_or(u64::MAX),
            )),
        }
    }
}

pub struct Sink {
    /// Encoded records not yet taken by the writer.
    pending: Vec<u8>,
    writer: Option<Waker>,
    clock: WallClock,
}

// By hand: a session's or the shard's `Debug` output should not dump the pending bytes.
impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("pending_bytes", &self.pending.len())
            .field("writer_waiting", &self.writer.is_some())
            .field("clock", &self.clock)
            .finish()
    }
}

impl Sink {
    pub fn new(clock: WallClock) -> SharedSink {
        Rc::new(RefCell::new(Self {
            pending: Vec::with_capacity(64 * 1024),
            writer: None,
            clock,
        }))
    }

    /// Appends `record`, framed, and wakes the writer.
    pub fn push(&mut self, record: &Record) {
        if let Err(e) = encode_record(record, &mut self.pending) {
            // Topics, payloads and ids fit their length fields by the MQTT limits.
            log::error!("persistence: a record could not be encoded ({e}); not logged");
            return;
        }
        self.wake();
    }

    /// Wakes the writer (records, or something else for it to do).
    pub fn wake(&mut self) {
        if let Some(w) = self.writer.take() {
            w.wake();
        }
    }

    pub fn clock(&self) -> WallClock {
        self.clock
    }

    pub fn set_clock(&mut self, clock: WallClock) {
        self.clock = clock;
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// The writer's side: swaps the pending records into `batch` (cleared first); true if
    /// there were any. With none, `waker` is woken by the next record.
    pub fn take(&mut self, batch: &mut Vec<u8>, waker: &Waker) -> bool {
        batch.clear();
        if self.pending.is_empty() {
            self.writer = Some(waker.clone());
            return false;
        }
        std::mem::swap(batch, &mut self.pending);
        true
    }

    /// Drops the pending records (a snapshot that holds their effect replaces them).
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadlines_become_wall_clock_times_around_the_reading() {
        let instant = Instant::now();
        let clock = WallClock {
            instant,
            wall: WallTime(10_000),
        };
        assert_eq!(clock.wall_at(instant), WallTime(10_000));
        assert_eq!(
            clock.wall_at(instant + Duration::from_millis(2_500)),
            WallTime(12_500)
        );
        if let Some(before) = instant.checked_sub(Duration::from_secs(1)) {
            assert_eq!(clock.wall_at(before), WallTime(9_000));
        }
    }
}
