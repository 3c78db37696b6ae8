//! `Sink`: the records a shard owes its log, encoded and framed into one buffer as its
//! state changes, until the shard's log writer takes them as one batch (group commit).
//! Shared within one shard (`Rc<RefCell<Sink>>`) by the shard's journal and its persistent
//! sessions, which write their own changes; never across threads. Sans-IO: bytes, the
//! writer's waker, and a wall-clock reading given by the writer.
//!
//! A record pushed with `push_body` can be taken back (`void`) while it is still
//! pending: a QoS 1/2 message a session took and retired before the writer took the batch
//! needs neither record, since nothing of it reached the file. Voided records are cut out
//! of the batch when the writer takes it, so the file only ever holds whole, valid records;
//! only then are the records left checksummed (`frame::seal`), none for nothing.
//!
//! The pending bytes are bounded (`set_cap`, `persistence.max_pending_bytes`): a writer that
//! cannot write (a full disk) or keep up would otherwise let them grow with every retained
//! QoS 0 message and every acknowledgement. Past the cap the sink drops what it holds and
//! collects nothing more until the writer has replaced the log by a snapshot of the
//! shard's state (`overflowed`, reset by `clear`): the state in memory is the truth, and a
//! snapshot of it holds the effect of every record dropped.

use super::error::RecordError;
use super::frame::{encode_frame_unsealed, seal};
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

/// What the sink saw since the start.
#[derive(Debug, Clone, Copy, Default)]
pub struct SinkStats {
    pub records: u64,
    pub voided: u64,
    /// Records dropped past the cap (a snapshot holds their effect).
    pub dropped: u64,
    /// Times the pending records passed the cap.
    pub overflows: u64,
}

/// Where a voidable record is in the pending batch of `epoch`: what `Sink::void` needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending {
    epoch: u64,
    start: u32,
    end: u32,
}

impl Pending {
    /// The batch it was pushed into (`Sink::epoch`).
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

pub struct Sink {
    /// Encoded records not yet taken by the writer.
    pending: Vec<u8>,
    /// Counts the batches taken (and cleared): a `Pending` of another epoch is no longer
    /// in `pending` (written, or replaced by a snapshot) and cannot be voided.
    epoch: u64,
    /// Byte ranges of `pending` voided, cut out when the writer takes the batch.
    voided: Vec<(u32, u32)>,
    /// The writer is woken once `pending` holds at least this many bytes (1: at the first
    /// record); a writer that lets records collect raises it while it waits.
    wake_at: usize,
    /// Records pushed, voided and dropped, for the writer's closing log line.
    pub stats: SinkStats,
    /// The most bytes `pending` may hold (`persistence.max_pending_bytes`).
    cap: usize,
    /// `pending` passed `cap`: records are dropped until a snapshot replaces the log
    /// (`clear`).
    overflowed: bool,
    writer: Option<Waker>,
    clock: WallClock,
}

// By hand: a session's or the shard's `Debug` output should not dump the pending bytes.
impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink")
            .field("pending_bytes", &self.pending.len())
            .field("epoch", &self.epoch)
            .field("voided", &self.voided.len())
            .field("overflowed", &self.overflowed)
            .field("writer_waiting", &self.writer.is_some())
            .field("clock", &self.clock)
            .finish()
    }
}

impl Sink {
    pub fn new(clock: WallClock) -> SharedSink {
        Rc::new(RefCell::new(Self {
            pending: Vec::with_capacity(64 * 1024),
            epoch: 0,
            voided: Vec::new(),
            wake_at: 1,
            stats: SinkStats::default(),
            cap: usize::MAX,
            overflowed: false,
            writer: None,
            clock,
        }))
    }

    /// Bounds the pending bytes (see the module's documentation).
    pub fn set_cap(&mut self, bytes: usize) {
        self.cap = bytes;
    }

    /// Whether records were dropped past the cap since the last `clear`: the log must be
    /// replaced by a snapshot before anything is appended to it again.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Appends `record`, framed, and wakes the writer.
    pub fn push(&mut self, record: &Record) {
        let _ = self.push_body(|out| record.encode_body(out));
    }

    /// Appends the record whose body `body` encodes, framed, wakes the writer, and says
    /// where it is, so that it can be voided while pending (`void`). `None` if it could not
    /// be encoded (not logged), or dropped past the cap.
    pub fn push_body(
        &mut self,
        body: impl FnOnce(&mut Vec<u8>) -> Result<(), RecordError>,
    ) -> Option<Pending> {
        if self.overflowed {
            self.stats.dropped += 1;
            return None;
        }
        let start = self.pending.len();
        if let Err(e) = encode_frame_unsealed(&mut self.pending, body) {
            // Topics, payloads and ids fit their length fields by the MQTT limits.
            log::error!("persistence: a record could not be encoded ({e}); not logged");
            return None;
        }
        let end = self.pending.len();
        self.stats.records += 1;
        if end > self.cap {
            self.overflow();
            return None;
        }
        if end >= self.wake_at {
            self.wake();
        }
        // A batch past 4 GiB is not voidable (the writer takes batches long before).
        Some(Pending {
            epoch: self.epoch,
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
        })
    }

    /// Takes back a record pushed by `push_body`, if the writer has not taken it yet
    /// (true): it is never written. Each `Pending` may be voided once only (its bytes may
    /// belong to a later record once it is cut). False if it was taken (or dropped for a snapshot): then
    /// it is (or its effect is) in the file, and the caller writes what undoes it instead.
    pub fn void(&mut self, at: Pending) -> bool {
        if at.epoch != self.epoch {
            return false;
        }
        self.stats.voided += 1;
        if at.end as usize == self.pending.len() {
            // The last record: cut now, and any voided ones just before it.
            self.pending.truncate(at.start as usize);
            while let Some(&(start, end)) = self.voided.last() {
                if end as usize != self.pending.len() {
                    break;
                }
                self.pending.truncate(start as usize);
                self.voided.pop();
            }
        } else {
            self.voided.push((at.start, at.end));
        }
        true
    }

    /// The current batch's number: a `Pending` of an older one cannot be voided.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Bytes pending.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// The writer's side: it is woken once `bytes` are pending (at least 1), or by `wake`.
    pub fn set_wake_at(&mut self, bytes: usize) {
        self.wake_at = bytes.max(1);
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
        self.wake_at = 1;
        self.cut_voided();
        if self.pending.is_empty() {
            self.writer = Some(waker.clone());
            return false;
        }
        seal(&mut self.pending);
        std::mem::swap(batch, &mut self.pending);
        self.epoch += 1;
        true
    }

    /// Like `take`, but only once at least `min_bytes` are pending: with fewer, nothing is
    /// taken and `waker` is woken when there are that many (or by `wake`).
    pub fn take_at_least(&mut self, batch: &mut Vec<u8>, waker: &Waker, min_bytes: usize) -> bool {
        if self.pending.len() < min_bytes.max(1) {
            batch.clear();
            self.wake_at = min_bytes;
            self.writer = Some(waker.clone());
            return false;
        }
        self.take(batch, waker)
    }

    /// Removes the voided ranges from `pending`, moving what follows each down: the records
    /// left are whole frames, in their order.
    fn cut_voided(&mut self) {
        if self.voided.is_empty() {
            return;
        }
        self.voided.sort_unstable();
        let mut to = 0;
        let mut from = 0;
        for &(start, end) in &self.voided {
            let (start, end) = (start as usize, end as usize);
            if start > from {
                self.pending.copy_within(from..start, to);
                to += start - from;
            }
            from = end;
        }
        let len = self.pending.len();
        self.pending.copy_within(from..len, to);
        to += len - from;
        self.pending.truncate(to);
        self.voided.clear();
    }

    /// Drops the pending records (a snapshot that holds their effect replaces them), and
    /// collects again after an overflow.
    pub fn clear(&mut self) {
        self.pending.clear();
        self.voided.clear();
        self.epoch += 1;
        self.overflowed = false;
    }

    /// The pending records passed the cap: they are dropped (and cannot be voided: their
    /// epoch ends), nothing more is collected, and the writer is woken to write a snapshot.
    fn overflow(&mut self) {
        self.stats.dropped += self.frames_pending();
        self.stats.overflows += 1;
        log::warn!(
            pending = self.pending.len(), cap = self.cap;
            "persistence: {} bytes of records pending, over persistence.max_pending_bytes \
             ({}): dropped; the log will be replaced by a snapshot of the state",
            self.pending.len(), self.cap
        );
        self.pending.clear();
        self.voided.clear();
        self.epoch += 1;
        self.overflowed = true;
        self.wake();
    }

    /// How many frames `pending` holds, the one that passed the cap included (walked by
    /// their length; voided ones too).
    fn frames_pending(&self) -> u64 {
        let mut count = 0;
        let mut at = 0usize;
        while let Some(len) = self.pending.get(at..at + 4) {
            let Ok(len) = <[u8; 4]>::try_from(len) else {
                break;
            };
            at += 8 + u32::from_le_bytes(len) as usize;
            count += 1;
        }
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::frame::{HEADER, Replay};
    use std::time::Duration;

    fn sink() -> Sink {
        let clock = WallClock {
            instant: Instant::now(),
            wall: WallTime(0),
        };
        Rc::try_unwrap(Sink::new(clock)).map_or_else(|_| panic!("one owner"), RefCell::into_inner)
    }

    fn done(n: u64) -> Record {
        Record::OutDone {
            client_id: "c".into(),
            n,
        }
    }

    fn push(sink: &mut Sink, n: u64) -> Pending {
        let record = done(n);
        sink.push_body(|out| record.encode_body(out))
            .unwrap_or_else(|| panic!("record {n} encodes"))
    }

    /// The records of a taken batch, decoded as recovery would read them from the file.
    fn take(sink: &mut Sink) -> Vec<Record> {
        let mut batch = Vec::new();
        sink.take(&mut batch, Waker::noop());
        let mut log = HEADER.to_vec();
        log.extend_from_slice(&batch);
        let replay = Replay::new(&log).unwrap_or_else(|v| panic!("version {v}"));
        replay
            .map(|r| {
                r.map(|(record, _)| record)
                    .unwrap_or_else(|t| panic!("{t:?}"))
            })
            .collect()
    }

    #[test]
    fn voided_records_are_cut_out_of_the_batch_and_the_rest_stays_whole() {
        let mut sink = sink();
        let at: Vec<Pending> = (0..6).map(|n| push(&mut sink, n)).collect();
        // Out of order, the first, one in the middle, and two adjacent ones.
        for i in [3, 0, 2] {
            assert!(sink.void(at[i]));
        }
        assert_eq!(take(&mut sink), vec![done(1), done(4), done(5)]);
    }

    #[test]
    fn voiding_the_last_records_shortens_the_batch_at_once() {
        let mut sink = sink();
        let a = push(&mut sink, 0);
        let len = sink.len();
        let b = push(&mut sink, 1);
        let c = push(&mut sink, 2);
        assert!(sink.void(b));
        assert!(sink.void(c));
        // `c` was the tail, and `b` before it: both gone from the buffer.
        assert_eq!(sink.len(), len);
        let d = push(&mut sink, 3);
        assert!(sink.void(a));
        assert_eq!(take(&mut sink), vec![done(3)]);
        assert!(!sink.void(d), "taken by the writer: it is in the file");
    }

    #[test]
    fn a_record_taken_or_replaced_by_a_snapshot_cannot_be_voided() {
        let mut sink = sink();
        let a = push(&mut sink, 0);
        assert_eq!(take(&mut sink), vec![done(0)]);
        assert!(!sink.void(a));
        let b = push(&mut sink, 1);
        sink.clear();
        assert!(!sink.void(b));
        let c = push(&mut sink, 2);
        assert_eq!(c.epoch(), sink.epoch());
        assert_eq!(take(&mut sink), vec![done(2)]);
        assert_eq!((sink.stats.records, sink.stats.voided), (3, 0));
    }

    #[test]
    fn the_writer_can_wait_for_a_number_of_bytes() {
        let mut sink = sink();
        let mut batch = Vec::new();
        let _ = push(&mut sink, 0);
        let one = sink.len();
        assert!(!sink.take_at_least(&mut batch, Waker::noop(), 2 * one));
        assert!(batch.is_empty());
        let _ = push(&mut sink, 1);
        assert!(sink.take_at_least(&mut batch, Waker::noop(), 2 * one));
        assert_eq!(batch.len(), 2 * one);
        assert!(sink.is_empty());
    }

    #[test]
    fn past_the_cap_the_pending_records_are_dropped_until_a_snapshot_clears_the_sink() {
        let mut sink = sink();
        let _ = push(&mut sink, 0);
        let one = sink.len();
        sink.set_cap(3 * one);
        let kept = [push(&mut sink, 1), push(&mut sink, 2)];
        assert!(!sink.overflowed());
        // The fourth record passes the cap: everything pending goes.
        assert!(sink.push_body(|out| done(3).encode_body(out)).is_none());
        assert!(sink.overflowed() && sink.is_empty());
        assert!(!sink.void(kept[0]), "dropped records are not voided");
        // Nothing more is collected until the snapshot's `clear`.
        assert!(sink.push_body(|out| done(4).encode_body(out)).is_none());
        assert!(sink.is_empty());
        assert_eq!((sink.stats.dropped, sink.stats.overflows), (5, 1));
        let mut batch = Vec::new();
        assert!(!sink.take(&mut batch, Waker::noop()));
        sink.clear();
        assert!(!sink.overflowed());
        let _ = push(&mut sink, 5);
        assert_eq!(take(&mut sink), vec![done(5)]);
    }

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
