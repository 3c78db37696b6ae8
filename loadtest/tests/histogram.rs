//! Latency histograms: per-thread histograms merge into the run's, the .hgrm text round-trips
//! through `compare`'s reader, and `compare` draws one line per run with its label.

use hdrhistogram::Histogram;
use ringmq_load::compare;
use ringmq_load::hgrm::{format_distribution, parse_distribution};
use ringmq_load::plot::{percentile_to_x, render};
use ringmq_load::run::{merge_histograms, merge_send_lag};
use ringmq_load::worker::{ThreadStats, new_histogram};

fn sample_histogram(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
    let mut h = new_histogram();
    for v in values {
        h.record(v).expect("in range");
    }
    h
}

#[test]
fn send_lags_of_all_threads_merge_keeping_on_time_sends_as_zero() {
    let stats: Vec<ThreadStats> = [vec![0, 0, 30], vec![0, 2_000]]
        .into_iter()
        .map(|lags| {
            let mut s = ThreadStats::new();
            for lag in lags {
                s.send_lag.record(lag).expect("in range");
            }
            s
        })
        .collect();
    let merged = merge_send_lag(&stats);
    assert_eq!(merged.len(), 5);
    assert_eq!(
        merged.value_at_quantile(0.5),
        0,
        "on-time sends count as 0 µs late"
    );
    assert_eq!(merged.max(), 2_000);
}

#[test]
fn histograms_recorded_on_separate_threads_merge_into_the_whole() {
    let stats: Vec<ThreadStats> = (0..4u64)
        .map(|t| {
            std::thread::spawn(move || {
                let mut s = ThreadStats::new();
                for v in (1..=10_000u64).filter(|v| v % 4 == t) {
                    s.latency.record(v).expect("in range");
                    s.connect_latency.record(v * 2).expect("in range");
                }
                s
            })
        })
        .map(|h| h.join().expect("thread"))
        .collect();
    let (latency, connect) = merge_histograms(&stats);
    let whole = sample_histogram(1..=10_000);
    assert_eq!(latency.len(), 10_000);
    assert_eq!(connect.len(), 10_000);
    for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
        assert_eq!(
            latency.value_at_quantile(q),
            whole.value_at_quantile(q),
            "q {q}"
        );
    }
    assert_eq!(latency.max(), whole.max());
}

#[test]
fn hgrm_text_has_the_hdrhistogram_layout() {
    let text = format_distribution(&sample_histogram(1..=1000));
    let mut lines = text.lines();
    let header = lines.next().expect("header");
    for column in ["Value", "Percentile", "TotalCount", "1/(1-Percentile)"] {
        assert!(header.contains(column), "{header}");
    }
    assert!(text.contains("#[Mean    ="));
    assert!(text.contains("#[Max     ="));
    assert!(text.contains("Total count    =         1000]"));
    assert!(text.contains("#[Buckets ="));
    // The last row is the 100% row, without the 1/(1-p) column.
    let last_row = text
        .lines()
        .rfind(|l| !l.starts_with('#') && !l.trim().is_empty());
    let fields: Vec<&str> = last_row.expect("rows").split_whitespace().collect();
    assert_eq!(fields.len(), 3);
    assert_eq!(fields[1], "1.000000000000");
}

#[test]
fn hgrm_round_trips_through_the_reader() {
    // µs recorded; the file holds ms with µs resolution.
    let hist = sample_histogram((1..=100_000).map(|v| v * 3));
    let dist = parse_distribution(&format_distribution(&hist)).expect("parses");
    assert_eq!(dist.count(), 100_000);
    for p in [0.5, 0.9, 0.99, 0.999] {
        let expected = hist.value_at_quantile(p) as f64 / 1000.0;
        let read = dist.value_at(p).expect("value");
        assert!(
            (read - expected).abs() < 0.0011,
            "p {p}: {read} vs {expected}"
        );
    }
    let max = dist.max_value().expect("max");
    assert!((max - hist.max() as f64 / 1000.0).abs() < 0.0011);
    let mean = dist.mean.expect("mean");
    assert!((mean - hist.mean() / 1000.0).abs() < 0.0011);
    assert!(
        dist.rows
            .windows(2)
            .all(|w| w[0].percentile <= w[1].percentile)
    );
}

#[test]
fn an_empty_histogram_round_trips_with_zero_count() {
    let dist = parse_distribution(&format_distribution(&new_histogram())).expect("parses");
    assert_eq!(dist.count(), 0);
    assert!(dist.rows.is_empty());
}

#[test]
fn text_that_is_not_hgrm_is_refused() {
    assert!(parse_distribution("hello world\n").is_err());
    assert!(parse_distribution("").is_err());
}

#[test]
fn percentiles_map_to_decades_on_the_x_axis() {
    assert_eq!(percentile_to_x(0.0), 0.0);
    assert!((percentile_to_x(0.9) - 1.0).abs() < 1e-9);
    assert!((percentile_to_x(0.999) - 3.0).abs() < 1e-9);
    assert_eq!(percentile_to_x(1.0), 5.0);
}

fn write_hgrm(dir: &std::path::Path, name: &str, scale: u64) -> std::path::PathBuf {
    let path = dir.join(name);
    let text = format_distribution(&sample_histogram((1..=5000).map(|v| v * scale)));
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn compare_plots_one_labelled_line_per_run() {
    let dir = std::env::temp_dir().join(format!("ringmq-load-compare-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let files = vec![
        write_hgrm(&dir, "a.hgrm", 10),
        write_hgrm(&dir, "b.hgrm", 20),
        write_hgrm(&dir, "c.hgrm", 40),
    ];
    let runs = compare::load_runs(&files, Some("ringmq,mosquitto & co,other")).expect("load");
    let svg = render(&runs, &[], "test");
    assert!(svg.starts_with("<svg"));
    assert!(svg.trim_end().ends_with("</svg>"));
    assert_eq!(svg.matches("<polyline").count(), 3);
    assert!(svg.contains(">ringmq</text>"));
    assert!(svg.contains(">mosquitto &amp; co</text>"));
    assert!(svg.contains(">other</text>"));
    for axis_label in ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"] {
        assert!(
            svg.contains(&format!(">{axis_label}</text>")),
            "{axis_label}"
        );
    }

    let out = dir.join("plot.svg");
    compare::run(&files, None, &[], Some(&out)).expect("compare");
    let written = std::fs::read_to_string(&out).expect("svg written");
    assert_eq!(written.matches("<polyline").count(), 3);
    assert!(
        written.contains(">a</text>"),
        "labels default to file stems"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_compare_table_shows_ratios_to_the_first_run() {
    let dir = std::env::temp_dir().join(format!("ringmq-load-table-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let files = vec![
        write_hgrm(&dir, "base.hgrm", 10),
        write_hgrm(&dir, "double.hgrm", 20),
    ];
    let runs = compare::load_runs(&files, None).expect("load");
    let table = compare::table(&runs, &[]);
    let p50 = table
        .lines()
        .find(|l| l.starts_with("p50"))
        .expect("p50 row");
    assert!(p50.ends_with("x2.00"), "{p50}");
    assert!(table.lines().any(|l| l.starts_with("max")));
    let _ = std::fs::remove_dir_all(&dir);
}
