//! HdrHistogram's percentile-distribution text (`.hgrm`), as Java's
//! `outputPercentileDistribution` writes it and HdrHistogram's plotter reads it, and a reader for
//! it. Histograms are recorded in microseconds; the file's values are in milliseconds (the
//! plotter's convention, scaling ratio 1000, three decimals keep microsecond resolution). The
//! footer carries an extra `#[Unit = ms]` line, which other readers skip as a comment.

use hdrhistogram::Histogram;
use std::fmt::Write as _;

/// Recorded values are µs; the file shows ms.
pub const VALUE_SCALE: f64 = 1000.0;
/// Java's default: 5 reporting ticks per half distance to 100%.
const TICKS_PER_HALF_DISTANCE: u32 = 5;

/// The percentile distribution of a µs histogram as `.hgrm` text (values in ms).
pub fn format_distribution(hist: &Histogram<u64>) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    if !hist.is_empty() {
        let mut total = 0u64;
        for v in hist.iter_quantiles(TICKS_PER_HALF_DISTANCE) {
            total += v.count_since_last_iteration();
            let value = v.value_iterated_to() as f64 / VALUE_SCALE;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    out,
                    "{value:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(out, "{value:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let sub_buckets = (2 * 10u64.pow(u32::from(hist.sigfig()))).next_power_of_two();
    let _ = writeln!(
        out,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        hist.mean() / VALUE_SCALE,
        hist.stdev() / VALUE_SCALE
    );
    let _ = writeln!(
        out,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        hist.max() as f64 / VALUE_SCALE,
        hist.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        hist.buckets(),
        sub_buckets
    );
    out.push_str("#[Unit = ms]\n");
    out
}

/// One row of a distribution: the value (ms) at or below which `percentile` (0..=1) of the
/// `total_count` samples fall.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Row {
    pub value: f64,
    pub percentile: f64,
    pub total_count: u64,
}

/// A percentile distribution read back from `.hgrm` text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Distribution {
    pub rows: Vec<Row>,
    pub mean: Option<f64>,
    pub max: Option<f64>,
    pub total_count: Option<u64>,
}

/// Why a `.hgrm` text could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Reads `.hgrm` text: rows of `value percentile total_count [1/(1-p)]`, the header line, and
/// the `#[...]` footer.
pub fn parse_distribution(text: &str) -> Result<Distribution, ParseError> {
    let mut dist = Distribution::default();
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with("Value") {
            continue;
        }
        if let Some(footer) = trimmed.strip_prefix("#[") {
            read_footer(footer.trim_end_matches(']'), &mut dist);
            continue;
        }
        if trimmed.starts_with('#') {
            continue;
        }
        dist.rows
            .push(parse_row(trimmed).map_err(|message| ParseError {
                line: i + 1,
                message,
            })?);
    }
    if dist.rows.is_empty() && dist.total_count.is_none() {
        return Err(ParseError {
            line: 0,
            message: "no percentile rows and no footer: not an .hgrm file".into(),
        });
    }
    Ok(dist)
}

fn parse_row(line: &str) -> Result<Row, String> {
    let mut fields = line.split_whitespace();
    let mut next = |name: &str| fields.next().ok_or_else(|| format!("missing {name}"));
    let value = next("value")?;
    let percentile = next("percentile")?;
    let total_count = next("total count")?;
    Ok(Row {
        value: value.parse().map_err(|_| format!("bad value {value:?}"))?,
        percentile: percentile
            .parse()
            .map_err(|_| format!("bad percentile {percentile:?}"))?,
        total_count: total_count
            .parse()
            .map_err(|_| format!("bad total count {total_count:?}"))?,
    })
}

/// Footer lines hold `Key = value` pairs separated by commas.
fn read_footer(footer: &str, dist: &mut Distribution) {
    for pair in footer.split(',') {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "Mean" => dist.mean = value.parse().ok(),
            "Max" => dist.max = value.parse().ok(),
            "Total count" => dist.total_count = value.parse().ok(),
            _ => {}
        }
    }
}

impl Distribution {
    /// The value (ms) at `percentile` (0..=1): the first row that reaches it.
    pub fn value_at(&self, percentile: f64) -> Option<f64> {
        self.rows
            .iter()
            .find(|r| r.percentile >= percentile)
            .or(self.rows.last())
            .map(|r| r.value)
    }

    /// The largest value: the footer's Max, else the last row's value.
    pub fn max_value(&self) -> Option<f64> {
        self.max.or_else(|| self.rows.last().map(|r| r.value))
    }

    /// The number of samples: the footer's total, else the last row's running total.
    pub fn count(&self) -> u64 {
        self.total_count
            .or_else(|| self.rows.last().map(|r| r.total_count))
            .unwrap_or(0)
    }
}
