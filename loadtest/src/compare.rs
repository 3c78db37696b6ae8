//! `ringmq-load compare A.hgrm B.hgrm ...`: the runs' percentiles side by side with their ratio
//! to the first run, and optionally the SVG percentile plot of all of them. `--broker-side
//! LABEL=FILE` adds a broker's own histogram of the run labelled LABEL (ringmq's `GET
//! /latency.hgrm`): a column with its share of that run's client-side latency, and a dashed line
//! beside the run's in the plot.

use crate::error::LoadError;
use crate::hgrm::{Distribution, parse_distribution};
use crate::plot::BrokerSide;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The percentiles the table shows, with their labels.
pub const TABLE_PERCENTILES: [(&str, f64); 5] = [
    ("p50", 0.5),
    ("p90", 0.9),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
];

/// Reads each file; labels default to the file stems.
pub fn load_runs(
    files: &[PathBuf],
    labels: Option<&str>,
) -> Result<Vec<(String, Distribution)>, LoadError> {
    let labels: Vec<String> = labels
        .map(|l| l.split(',').map(|s| s.trim().to_string()).collect())
        .unwrap_or_default();
    files
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let label = labels.get(i).cloned().unwrap_or_else(|| stem(path));
            Ok((label, read_hgrm(path)?))
        })
        .collect()
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Reads each `LABEL=FILE` as the broker-side histogram of the run labelled LABEL.
pub fn load_broker_side(
    runs: &[(String, Distribution)],
    specs: &[String],
) -> Result<Vec<BrokerSide>, LoadError> {
    specs
        .iter()
        .map(|spec| {
            let (label, file) = spec.split_once('=').ok_or_else(|| {
                LoadError::Usage(format!("--broker-side {spec:?}: expected LABEL=FILE"))
            })?;
            let run = runs.iter().position(|(l, _)| l == label).ok_or_else(|| {
                let labels: Vec<&str> = runs.iter().map(|(l, _)| l.as_str()).collect();
                LoadError::Usage(format!(
                    "--broker-side {spec:?}: no run is labelled {label:?} (runs: {})",
                    labels.join(", ")
                ))
            })?;
            Ok(BrokerSide {
                run,
                dist: read_hgrm(Path::new(file))?,
            })
        })
        .collect()
}

pub fn read_hgrm(path: &Path) -> Result<Distribution, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::File {
        path: path.display().to_string(),
        source,
    })?;
    parse_distribution(&text).map_err(|source| LoadError::Hgrm {
        path: path.display().to_string(),
        source,
    })
}

/// The side-by-side table: one column per run (ms), and for every run after the first its
/// ratio to the first; then one column per broker side with its share of its run's value.
pub fn table(runs: &[(String, Distribution)], broker_side: &[BrokerSide]) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<10}", "(ms)");
    for (i, (label, _)) in runs.iter().enumerate() {
        let _ = write!(out, " {label:>14}");
        if i > 0 {
            let _ = write!(out, " {:>8}", "ratio");
        }
    }
    for side in broker_side {
        let label = runs.get(side.run).map_or("?", |(l, _)| l.as_str());
        let _ = write!(out, " {:>14} {:>8}", format!("{label} broker"), "share");
    }
    out.push('\n');
    let rows = TABLE_PERCENTILES
        .iter()
        .map(|&(name, p)| (name, runs.iter().map(|(_, d)| d.value_at(p)).collect()))
        .chain(std::iter::once((
            "max",
            runs.iter().map(|(_, d)| d.max_value()).collect::<Vec<_>>(),
        )));
    for (name, values) in rows {
        let _ = write!(out, "{name:<10}");
        write_values(&mut out, &values);
        for side in broker_side {
            let value = match name {
                "max" => side.dist.max_value(),
                _ => TABLE_PERCENTILES
                    .iter()
                    .find(|(n, _)| *n == name)
                    .and_then(|&(_, p)| side.dist.value_at(p)),
            };
            let client = values.get(side.run).copied().flatten();
            write_share(&mut out, value, client);
        }
        out.push('\n');
    }
    let _ = write!(out, "{:<10}", "count");
    for (i, (_, d)) in runs.iter().enumerate() {
        let _ = write!(out, " {:>14}", d.count());
        if i > 0 {
            let _ = write!(
                out,
                " {:>8}",
                ratio(Some(d.count() as f64), Some(runs[0].1.count() as f64))
            );
        }
    }
    for side in broker_side {
        let _ = write!(out, " {:>14} {:>8}", side.dist.count(), "");
    }
    out.push('\n');
    out
}

/// A broker-side value and its share of the client-side one, `42%`.
fn write_share(out: &mut String, value: Option<f64>, client: Option<f64>) {
    match value {
        Some(v) => {
            let _ = write!(out, " {v:>14.3}");
        }
        None => {
            let _ = write!(out, " {:>14}", "-");
        }
    }
    let share = match (value, client) {
        (Some(v), Some(c)) if c > 0.0 => format!("{:.0}%", 100.0 * v / c),
        _ => "-".into(),
    };
    let _ = write!(out, " {share:>8}");
}

fn write_values(out: &mut String, values: &[Option<f64>]) {
    let first = values.first().copied().flatten();
    for (i, value) in values.iter().enumerate() {
        match value {
            Some(v) => {
                let _ = write!(out, " {v:>14.3}");
            }
            None => {
                let _ = write!(out, " {:>14}", "-");
            }
        }
        if i > 0 {
            let _ = write!(out, " {:>8}", ratio(*value, first));
        }
    }
}

/// `value / base` as `x1.23`, or `-` when either is missing or the base is zero.
pub fn ratio(value: Option<f64>, base: Option<f64>) -> String {
    match (value, base) {
        (Some(v), Some(b)) if b > 0.0 => format!("x{:.2}", v / b),
        _ => "-".into(),
    }
}

/// Runs `compare`: prints the table, writes the SVG if asked.
pub fn run(
    files: &[PathBuf],
    labels: Option<&str>,
    broker_side: &[String],
    svg: Option<&Path>,
) -> Result<(), LoadError> {
    if files.is_empty() {
        return Err(LoadError::Usage(
            "compare needs at least one .hgrm file".into(),
        ));
    }
    let runs = load_runs(files, labels)?;
    let broker_side = load_broker_side(&runs, broker_side)?;
    print!("{}", table(&runs, &broker_side));
    if let Some(path) = svg {
        let doc = crate::plot::render(&runs, &broker_side, "Latency by percentile");
        std::fs::write(path, doc).map_err(|source| LoadError::File {
            path: path.display().to_string(),
            source,
        })?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hgrm::Row;

    fn dist(p50: f64, max: f64) -> Distribution {
        let row = |value, percentile, total_count| Row {
            value,
            percentile,
            total_count,
        };
        Distribution {
            rows: vec![row(p50, 0.5, 5), row(max, 1.0, 10)],
            ..Distribution::default()
        }
    }

    #[test]
    fn a_broker_side_column_shows_its_share_of_its_runs_latency() {
        let runs = vec![
            ("mosquitto".to_string(), dist(1.0, 2.0)),
            ("ringmq".to_string(), dist(0.2, 0.4)),
        ];
        let side = [BrokerSide {
            run: 1,
            dist: dist(0.05, 0.1),
        }];
        let table = table(&runs, &side);
        let header = table.lines().next().expect("header");
        assert!(header.contains("ringmq broker"), "{header}");
        let p50 = table.lines().find(|l| l.starts_with("p50")).expect("p50");
        assert!(p50.ends_with("25%"), "{p50}");
        let max = table.lines().find(|l| l.starts_with("max")).expect("max");
        assert!(max.ends_with("25%"), "{max}");
    }

    #[test]
    fn a_broker_side_must_name_a_run() {
        let runs = vec![("ringmq".to_string(), dist(0.2, 0.4))];
        for spec in ["no-equals-sign", "other=/nonexistent.hgrm"] {
            let err = load_broker_side(&runs, &[spec.to_string()]).expect_err(spec);
            assert!(matches!(err, LoadError::Usage(_)), "{spec}: {err}");
        }
    }
}
