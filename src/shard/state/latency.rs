//! `Latency`: the shard's side of the broker-latency histogram. A PUBLISH carries the time
//! its read batch began (`Message::received_at`, the one clock read the read loop makes
//! anyway); each live delivery into a subscriber's buffer notes it, and once per batch (a
//! read or a mesh drain) the task reads the clock once more and records every noted delivery.
//! The messages of one read batch share their `received_at`, so the notes are counted per
//! distinct time: a fan-out to 100 subscribers is one histogram update, not 100.

use super::ShardState;
use crate::obs::LatencyRecorder;
use std::time::Instant;

#[derive(Debug, Default)]
pub(super) struct Latency {
    /// `None`: not measured (nothing is noted).
    recorder: Option<LatencyRecorder>,
    /// When the messages delivered in this batch were read, and how many deliveries each
    /// time had, in order; its capacity is kept.
    pending: Vec<(Instant, u64)>,
}

impl Latency {
    /// Notes a delivery of a message read at `received_at`.
    pub fn delivered(&mut self, received_at: Option<Instant>) {
        let (Some(at), Some(_)) = (received_at, &self.recorder) else {
            return;
        };
        match self.pending.last_mut() {
            Some((last, count)) if *last == at => *count += 1,
            _ => self.pending.push((at, 1)),
        }
    }
}

impl ShardState {
    /// Measures the broker's delivery latency into `recorder` from now on.
    pub fn set_latency_recorder(&mut self, recorder: LatencyRecorder) {
        self.latency.recorder = Some(recorder);
    }

    /// Whether deliveries wait to be recorded (then read the clock for `record_latency`).
    pub fn latency_pending(&self) -> bool {
        !self.latency.pending.is_empty()
    }

    /// Records the deliveries noted since the last call as done at `done`.
    pub fn record_latency(&mut self, done: Instant) {
        let latency = &mut self.latency;
        if let Some(recorder) = &mut latency.recorder {
            for (at, count) in latency.pending.drain(..) {
                let nanos = done.saturating_duration_since(at).as_nanos();
                recorder.record_n(u64::try_from(nanos).unwrap_or(u64::MAX), count);
            }
        }
        latency.pending.clear();
    }

    /// Hands the latencies recorded so far to the metrics endpoint (never waits).
    pub fn hand_off_latency(&mut self) {
        if let Some(recorder) = &mut self.latency.recorder {
            recorder.hand_off();
        }
    }
}
