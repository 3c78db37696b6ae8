//! `ringmq-load compare A.hgrm B.hgrm ...`: the runs' percentiles side by side with their ratio
//! to the first run, and optionally the SVG percentile plot of all of them.

use crate::error::LoadError;
use crate::hgrm::{Distribution, parse_distribution};
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
/// ratio to the first.
pub fn table(runs: &[(String, Distribution)]) -> String {
    let mut out = String::new();
    let _ = write!(out, "{:<10}", "(ms)");
    for (i, (label, _)) in runs.iter().enumerate() {
        let _ = write!(out, " {label:>14}");
        if i > 0 {
            let _ = write!(out, " {:>8}", "ratio");
        }
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
    out.push('\n');
    out
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
pub fn run(files: &[PathBuf], labels: Option<&str>, svg: Option<&Path>) -> Result<(), LoadError> {
    if files.is_empty() {
        return Err(LoadError::Usage(
            "compare needs at least one .hgrm file".into(),
        ));
    }
    let runs = load_runs(files, labels)?;
    print!("{}", table(&runs));
    if let Some(path) = svg {
        let doc = crate::plot::render(&runs, "Latency by percentile");
        std::fs::write(path, doc).map_err(|source| LoadError::File {
            path: path.display().to_string(),
            source,
        })?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
