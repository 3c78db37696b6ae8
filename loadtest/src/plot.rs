//! The SVG latency-percentile plot, drawn as text: x is logarithmic in 1/(1-percentile)
//! (0%, 90%, 99%, ... 99.999%, as HdrHistogram's plotter draws it), y is latency in ms, one
//! coloured polyline per run, with axes, grid and a legend. A broker's own histogram of a run
//! (ringmq's `GET /latency.hgrm`) is drawn dashed in that run's colour, so the broker's share
//! of the client-measured latency sits beside it.

use crate::hgrm::Distribution;
use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 540.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 220.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 70.0;
/// Decades of 1/(1-p) on the x axis: up to 99.999%.
const X_DECADES: f64 = 5.0;
const X_LABELS: [&str; 6] = ["0%", "90%", "99%", "99.9%", "99.99%", "99.999%"];
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// The x position (in decades) of a percentile in 0..=1, clamped to the axis.
pub fn percentile_to_x(percentile: f64) -> f64 {
    if percentile >= 1.0 {
        return X_DECADES;
    }
    (1.0 / (1.0 - percentile)).log10().clamp(0.0, X_DECADES)
}

/// The broker's own latency distribution for the run at index `run`.
#[derive(Debug, Clone)]
pub struct BrokerSide {
    pub run: usize,
    pub dist: Distribution,
}

/// An SVG document plotting each `(label, distribution)` as one solid line, and each
/// [`BrokerSide`] as a dashed line in its run's colour labelled `<run label> (broker)`.
pub fn render(runs: &[(String, Distribution)], broker_side: &[BrokerSide], title: &str) -> String {
    let y_max = nice_ceiling(
        runs.iter()
            .map(|(_, d)| d)
            .chain(broker_side.iter().map(|b| &b.dist))
            .flat_map(|d| d.rows.iter().map(|r| r.value))
            .fold(0.0, f64::max),
    );
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let to_px = |x: f64, y: f64| {
        (
            LEFT + x / X_DECADES * plot_w,
            TOP + plot_h - y / y_max * plot_h,
        )
    };

    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="28" text-anchor="middle" font-size="16">{}</text>"#,
        LEFT + plot_w / 2.0,
        escape(title)
    );
    draw_x_axis(&mut svg, &to_px, plot_h);
    draw_y_axis(&mut svg, &to_px, y_max, plot_w);
    for (i, (label, dist)) in runs.iter().enumerate() {
        let line = Line {
            label,
            colour: COLOURS[i % COLOURS.len()],
            dashed: false,
        };
        draw_run(&mut svg, &to_px, &line, dist);
        draw_legend_entry(&mut svg, i, &line);
    }
    for (i, side) in broker_side.iter().enumerate() {
        let Some((run_label, _)) = runs.get(side.run) else {
            continue;
        };
        let label = format!("{run_label} (broker)");
        let line = Line {
            label: &label,
            colour: COLOURS[side.run % COLOURS.len()],
            dashed: true,
        };
        draw_run(&mut svg, &to_px, &line, &side.dist);
        draw_legend_entry(&mut svg, runs.len() + i, &line);
    }
    svg.push_str("</svg>\n");
    svg
}

fn draw_x_axis(svg: &mut String, to_px: &impl Fn(f64, f64) -> (f64, f64), plot_h: f64) {
    let (x0, y0) = to_px(0.0, 0.0);
    let (x1, _) = to_px(X_DECADES, 0.0);
    let _ = writeln!(
        svg,
        r#"<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="black"/>"#
    );
    for (decade, label) in X_LABELS.iter().enumerate() {
        let (x, y) = to_px(decade as f64, 0.0);
        let _ = writeln!(
            svg,
            r##"<line x1="{x}" y1="{}" x2="{x}" y2="{y}" stroke="#ddd"/>"##,
            y - plot_h
        );
        let _ = writeln!(
            svg,
            r#"<text x="{x}" y="{}" text-anchor="middle">{label}</text>"#,
            y + 18.0
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">percentile</text>"#,
        (x0 + x1) / 2.0,
        y0 + 45.0
    );
}

fn draw_y_axis(svg: &mut String, to_px: &impl Fn(f64, f64) -> (f64, f64), y_max: f64, plot_w: f64) {
    let (x0, y0) = to_px(0.0, 0.0);
    let (_, y1) = to_px(0.0, y_max);
    let _ = writeln!(
        svg,
        r#"<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="black"/>"#
    );
    let step = y_max / 5.0;
    for i in 0..=5 {
        let value = step * i as f64;
        let (x, y) = to_px(0.0, value);
        let _ = writeln!(
            svg,
            r##"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="#ddd"/>"##,
            x + plot_w
        );
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            x - 6.0,
            y + 4.0,
            format_ms(value)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="20" y="{}" text-anchor="middle" transform="rotate(-90 20 {})">latency (ms)</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    );
}

/// How one line is drawn: its legend label, colour and whether it is dashed.
struct Line<'a> {
    label: &'a str,
    colour: &'a str,
    dashed: bool,
}

impl Line<'_> {
    fn dash_attribute(&self) -> &'static str {
        if self.dashed {
            r#" stroke-dasharray="8 4""#
        } else {
            ""
        }
    }
}

fn draw_run(
    svg: &mut String,
    to_px: &impl Fn(f64, f64) -> (f64, f64),
    line: &Line<'_>,
    dist: &Distribution,
) {
    let mut points = String::new();
    for row in &dist.rows {
        let (x, y) = to_px(percentile_to_x(row.percentile), row.value);
        let _ = write!(points, "{x:.1},{y:.1} ");
    }
    let _ = writeln!(
        svg,
        r#"<polyline data-label="{}" fill="none" stroke="{}" stroke-width="2"{} points="{}"/>"#,
        escape(line.label),
        line.colour,
        line.dash_attribute(),
        points.trim_end()
    );
}

fn draw_legend_entry(svg: &mut String, index: usize, line: &Line<'_>) {
    let x = WIDTH - RIGHT + 20.0;
    let y = TOP + 10.0 + 22.0 * index as f64;
    let _ = writeln!(
        svg,
        r#"<line x1="{x}" y1="{y}" x2="{}" y2="{y}" stroke="{}" stroke-width="3"{}/>"#,
        x + 24.0,
        line.colour,
        line.dash_attribute()
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}">{}</text>"#,
        x + 30.0,
        y + 4.0,
        escape(line.label)
    );
}

/// The smallest 1, 2, 2.5 or 5 times a power of ten at or above `value` (1 µs for an empty plot).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 0.001;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|&c| c >= value)
        .unwrap_or(10.0 * magnitude)
}

fn format_ms(value: f64) -> String {
    if value == 0.0 {
        "0".into()
    } else if value >= 10.0 {
        format!("{value:.0}")
    } else if value >= 0.1 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// Escapes text for SVG content and attribute values.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hgrm::Row;

    fn dist(values: &[(f64, f64)]) -> Distribution {
        Distribution {
            rows: values
                .iter()
                .enumerate()
                .map(|(i, &(value, percentile))| Row {
                    value,
                    percentile,
                    total_count: i as u64 + 1,
                })
                .collect(),
            ..Distribution::default()
        }
    }

    #[test]
    fn a_broker_side_histogram_is_dashed_in_its_runs_colour_beside_the_client_line() {
        let runs = vec![
            ("mosquitto".to_string(), dist(&[(1.0, 0.5), (4.0, 1.0)])),
            ("ringmq".to_string(), dist(&[(0.1, 0.5), (0.4, 1.0)])),
        ];
        let broker_side = [BrokerSide {
            run: 1,
            dist: dist(&[(0.02, 0.5), (8.0, 1.0)]),
        }];
        let svg = render(&runs, &broker_side, "t");

        let lines: Vec<&str> = svg.lines().filter(|l| l.starts_with("<polyline")).collect();
        assert_eq!(lines.len(), 3);
        assert!(!lines[1].contains("stroke-dasharray"), "{}", lines[1]);
        let broker = lines[2];
        assert!(
            broker.contains(r#"data-label="ringmq (broker)""#),
            "{broker}"
        );
        assert!(broker.contains("stroke-dasharray"), "{broker}");
        assert!(
            broker.contains(&format!(r#"stroke="{}""#, COLOURS[1])),
            "{broker}"
        );
        assert!(svg.contains(">ringmq (broker)</text>"));
        // The y axis reaches the broker side's 8 ms, the largest value of any line.
        assert!(svg.contains(">8.00</text>"), "y axis up to 8 ms");
    }

    #[test]
    fn a_broker_side_for_a_run_that_does_not_exist_is_not_drawn() {
        let runs = vec![("ringmq".to_string(), dist(&[(0.1, 1.0)]))];
        let broker_side = [BrokerSide {
            run: 3,
            dist: dist(&[(0.1, 1.0)]),
        }];
        let svg = render(&runs, &broker_side, "t");
        assert_eq!(svg.matches("<polyline").count(), 1);
    }
}
