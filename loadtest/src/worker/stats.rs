//! What one thread measured: latency histograms, counters and each subscriber's sequence
//! trackers, kept thread-local and merged by the run at the end.

use crate::tracker::SeqTracker;
use hdrhistogram::Histogram;
use std::cell::RefCell;
use std::rc::Rc;

/// 1 µs to 60 s at 3 significant figures, the range of every latency the run records.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("constant histogram bounds are valid")
}

/// Records a duration in µs (at least 1, the histogram's floor).
pub(super) fn record_ns(hist: &mut Histogram<u64>, ns: u64) {
    hist.saturating_record((ns / 1000).max(1));
}

/// Records how late a send went out, in µs; 0 (on time) is a valid value here.
pub(super) fn record_lag_ns(hist: &mut Histogram<u64>, ns: u64) {
    hist.saturating_record(ns / 1000);
}

/// One subscriber's view: its group and a tracker per publisher.
#[derive(Debug, Clone)]
pub struct SubscriberRecord {
    pub id: u32,
    pub group: u32,
    pub trackers: Vec<SeqTracker>,
}

/// What one thread measured.
#[derive(Debug)]
pub struct ThreadStats {
    /// End-to-end message latency (µs), or ping round trips in the idle scenario, or connect
    /// latency in the connect scenario; warm-up excluded.
    pub latency: Histogram<u64>,
    /// TCP connect to CONNACK (µs) of every connection the run opened.
    pub connect_latency: Histogram<u64>,
    /// Open loop: how late each send went out after its intended time (µs), warm-up
    /// excluded. Large values mean the generator, not the broker, was behind.
    pub send_lag: Histogram<u64>,
    pub received: u64,
    pub received_in_window: u64,
    /// Messages without a valid header or from a publisher the subscriber should not hear.
    pub unexpected: u64,
    pub sent_in_window: u64,
    pub connects_in_window: u64,
    pub subscribers: Vec<SubscriberRecord>,
}

impl ThreadStats {
    pub fn new() -> Self {
        Self {
            latency: new_histogram(),
            connect_latency: new_histogram(),
            send_lag: new_histogram(),
            received: 0,
            received_in_window: 0,
            unexpected: 0,
            sent_in_window: 0,
            connects_in_window: 0,
            subscribers: Vec::new(),
        }
    }
}

impl Default for ThreadStats {
    fn default() -> Self {
        Self::new()
    }
}

pub(super) type Stats = Rc<RefCell<ThreadStats>>;
