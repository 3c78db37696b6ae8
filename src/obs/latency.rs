//! The broker's own latency: per shard an HdrHistogram (nanoseconds) of the time from reading
//! a PUBLISH off the socket to handing its bytes to a subscriber's outbound buffer (across
//! the mesh included). The shard records into `LatencyRecorder` and, a few times a second,
//! hands what it recorded since to the reader with `try_send` on a bounded channel: when
//! the reader is behind, the shard keeps the counts and tries again later, never waiting.
//! The reader (`LatencyTotals`) adds the deltas up and writes them as Prometheus histogram
//! buckets or as `.hgrm` text (values in ms, as `ringmq-load --hgrm` writes them).

use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};

/// Recorded values: 1 ns to 60 s at 3 significant digits (about 220 KiB per histogram).
const HIGHEST_NS: u64 = 60_000_000_000;
const SIGFIG: u8 = 3;
/// Deltas that may wait for the reader per shard.
const PENDING_DELTAS: usize = 4;
/// The Prometheus bucket bounds, in seconds.
const BUCKETS: [f64; 19] = [
    1e-6, 2.5e-6, 5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2,
    5e-2, 0.1, 0.25, 0.5, 1.0,
];
const NS_PER_MS: f64 = 1e6;

fn histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, HIGHEST_NS, SIGFIG) {
        Ok(h) => h,
        // Constant bounds that `bounds_are_valid` checks.
        Err(e) => unreachable!("latency histogram bounds: {e}"),
    }
}

/// A shard's recording end.
#[derive(Debug)]
pub struct LatencyRecorder {
    pending: Histogram<u64>,
    out: SyncSender<Histogram<u64>>,
}

impl LatencyRecorder {
    /// Records one latency; values past the histogram's range count as its highest.
    pub fn record(&mut self, nanos: u64) {
        self.record_n(nanos, 1);
    }

    /// Records `count` deliveries that each took `nanos`.
    pub fn record_n(&mut self, nanos: u64, count: u64) {
        let _ = self.pending.record_n(nanos.min(HIGHEST_NS), count);
    }

    /// Hands what was recorded since the last hand-off to the reader, unless it is behind
    /// (then the counts stay here for the next try). Allocates one histogram per hand-off.
    pub fn hand_off(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        match self.out.try_send(self.pending.clone()) {
            Ok(()) => self.pending.reset(),
            Err(TrySendError::Full(_)) => {}
            // Nobody reads: keep counting here, bounded by the histogram's size.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }
}

/// The reading end: every shard's latencies so far.
#[derive(Debug)]
pub struct LatencyTotals {
    inputs: Vec<Receiver<Histogram<u64>>>,
    totals: Vec<Histogram<u64>>,
}

/// One recorder per shard and the totals that read them all.
pub fn latency_channels(shards: usize) -> (Vec<LatencyRecorder>, LatencyTotals) {
    let (recorders, inputs) = (0..shards)
        .map(|_| {
            let (out, input) = mpsc::sync_channel(PENDING_DELTAS);
            let recorder = LatencyRecorder {
                pending: histogram(),
                out,
            };
            (recorder, input)
        })
        .unzip();
    let totals = LatencyTotals {
        inputs,
        totals: (0..shards).map(|_| histogram()).collect(),
    };
    (recorders, totals)
}

impl LatencyTotals {
    /// Takes in what the shards handed off since the last call.
    pub fn collect(&mut self) {
        for (input, total) in self.inputs.iter().zip(&mut self.totals) {
            for delta in input.try_iter() {
                let _ = total.add(&delta);
            }
        }
    }

    /// Every shard's totals merged.
    fn merged(&self) -> Histogram<u64> {
        let mut all = histogram();
        for total in &self.totals {
            let _ = all.add(total);
        }
        all
    }

    /// `ringmq_delivery_latency_seconds` as a Prometheus histogram per shard.
    pub fn render_prometheus(&self, text: &mut String) {
        let name = "ringmq_delivery_latency_seconds";
        let _ = writeln!(
            text,
            "# HELP {name} From reading a PUBLISH off the socket to handing it to a \
             subscriber's outbound buffer, mesh included."
        );
        let _ = writeln!(text, "# TYPE {name} histogram");
        for (shard, h) in self.totals.iter().enumerate() {
            let mut counts = [0u64; BUCKETS.len()];
            for v in h.iter_recorded() {
                let seconds = h.highest_equivalent(v.value_iterated_to()) as f64 / 1e9;
                for (count, bound) in counts.iter_mut().zip(BUCKETS) {
                    if seconds <= bound {
                        *count += v.count_at_value();
                    }
                }
            }
            for (count, bound) in counts.iter().zip(BUCKETS) {
                let _ = writeln!(
                    text,
                    "{name}_bucket{{shard=\"{shard}\",le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                text,
                "{name}_bucket{{shard=\"{shard}\",le=\"+Inf\"}} {}",
                h.len()
            );
            let sum = h.mean() * h.len() as f64 / 1e9;
            let _ = writeln!(text, "{name}_sum{{shard=\"{shard}\"}} {sum}");
            let _ = writeln!(text, "{name}_count{{shard=\"{shard}\"}} {}", h.len());
        }
    }

    /// Every shard's latencies merged, as HdrHistogram percentile-distribution text (values
    /// in ms, the format `ringmq-load compare` reads).
    pub fn hgrm(&self) -> String {
        let h = self.merged();
        let mut out = format!(
            "{:>12} {:>14} {:>10} {:>14}\n\n",
            "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
        );
        if !h.is_empty() {
            let mut total = 0u64;
            for v in h.iter_quantiles(5) {
                total += v.count_since_last_iteration();
                let value = v.value_iterated_to() as f64 / NS_PER_MS;
                let q = v.quantile_iterated_to();
                if q < 1.0 {
                    let inverse = 1.0 / (1.0 - q);
                    let _ = writeln!(out, "{value:12.6} {q:2.12} {total:10} {inverse:14.2}");
                } else {
                    let _ = writeln!(out, "{value:12.6} {q:2.12} {total:10}");
                }
            }
        }
        let sub_buckets = (2 * 10u64.pow(u32::from(h.sigfig()))).next_power_of_two();
        let _ = writeln!(
            out,
            "#[Mean    = {:12.6}, StdDeviation   = {:12.6}]",
            h.mean() / NS_PER_MS,
            h.stdev() / NS_PER_MS
        );
        let _ = writeln!(
            out,
            "#[Max     = {:12.6}, Total count    = {:12}]",
            h.max() as f64 / NS_PER_MS,
            h.len()
        );
        let _ = writeln!(
            out,
            "#[Buckets = {:12}, SubBuckets     = {:12}]",
            h.buckets(),
            sub_buckets
        );
        out.push_str("#[Unit = ms]\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_valid() {
        assert_eq!(histogram().high(), HIGHEST_NS);
    }

    #[test]
    fn handed_off_latencies_reach_the_totals_and_a_full_channel_keeps_them() {
        let (mut recorders, mut totals) = latency_channels(2);
        for _ in 0..PENDING_DELTAS + 2 {
            recorders[1].record(3_000);
            recorders[1].hand_off();
        }
        // The channel held PENDING_DELTAS; the rest waits in the recorder.
        assert_eq!(recorders[1].pending.len(), 2);
        totals.collect();
        recorders[1].hand_off();
        totals.collect();
        assert_eq!(totals.totals[1].len(), PENDING_DELTAS as u64 + 2);
        assert!(totals.totals[0].is_empty());
    }

    #[test]
    fn buckets_are_cumulative_and_the_hgrm_is_in_milliseconds() {
        let (mut recorders, mut totals) = latency_channels(1);
        recorders[0].record(2_000); // 2 µs
        recorders[0].record(40_000); // 40 µs
        recorders[0].record(2_000_000_000); // 2 s
        recorders[0].hand_off();
        totals.collect();
        let mut text = String::new();
        totals.render_prometheus(&mut text);
        let bucket = |le: &str| {
            let key = format!("ringmq_delivery_latency_seconds_bucket{{shard=\"0\",le=\"{le}\"}} ");
            text.lines()
                .find_map(|l| l.strip_prefix(key.as_str()))
                .and_then(|n| n.parse::<u64>().ok())
        };
        assert_eq!(bucket("0.000001"), Some(0));
        assert_eq!(bucket("0.0000025"), Some(1));
        assert_eq!(bucket("0.00005"), Some(2));
        assert_eq!(bucket("1"), Some(2));
        assert_eq!(bucket("+Inf"), Some(3));
        assert!(text.contains("ringmq_delivery_latency_seconds_count{shard=\"0\"} 3"));
        let hgrm = totals.hgrm();
        assert!(hgrm.contains("#[Unit = ms]"), "{hgrm}");
        assert!(hgrm.contains("Total count    =            3"), "{hgrm}");
        let max_row = hgrm.lines().find(|l| l.contains(" 1.000000000000 "));
        assert!(
            max_row.is_some_and(|l| l.trim_start().starts_with("200")),
            "{hgrm}"
        );
    }
}
