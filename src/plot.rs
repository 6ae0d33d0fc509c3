//! A small, dependency-free SVG line-plot writer: a title, axis labels, ticks
//! at "nice" values, several named series with a legend, and an optional
//! logarithmic y axis. Used for learning curves (`loss` / `val_loss`), and
//! general enough for per-data-set validation curves or metric-vs-time plots.
//!
//! ```
//! use gated::plot::{Plot, Series};
//!
//! let plot = Plot::new("Loss")
//!     .x_label("epoch")
//!     .y_label("loss")
//!     .series(Series::new("loss", vec![(1.0, 0.9), (2.0, 0.5), (3.0, 0.3)]))
//!     .series(Series::new("val_loss", vec![(1.0, 1.0), (2.0, 0.7), (3.0, 0.6)]));
//! let svg = gated::plot::render(&[plot]);
//! assert!(svg.starts_with("<svg"));
//! assert_eq!(svg.matches("<polyline").count(), 2);
//! ```

use std::fmt::Write as _;
use std::path::Path;

use crate::Result;

/// Width of one panel in SVG user units (pixels).
pub const PANEL_WIDTH: f64 = 640.0;
/// Height of one panel in SVG user units (pixels).
pub const PANEL_HEIGHT: f64 = 360.0;

const MARGIN_LEFT: f64 = 70.0;
const MARGIN_RIGHT: f64 = 150.0;
const MARGIN_TOP: f64 = 36.0;
const MARGIN_BOTTOM: f64 = 50.0;

/// Line colours, cycled over the series (colour-blind-safe Tableau 10 order).
const COLOURS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf",
];

/// One named line: `(x, y)` points in order. Points with a non-finite
/// coordinate (or `y <= 0` on a log axis) are left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend entry.
    pub name: String,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
    /// Draw dashed (e.g. validation curves).
    pub dashed: bool,
}

impl Series {
    /// A solid series.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
            dashed: false,
        }
    }

    /// Draws the series dashed.
    pub fn dashed(mut self, dashed: bool) -> Self {
        self.dashed = dashed;
        self
    }
}

/// One panel: a set of axes with its series.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plot {
    /// Title above the axes.
    pub title: String,
    /// Label under the x axis.
    pub x_label: String,
    /// Label beside the y axis.
    pub y_label: String,
    /// Logarithmic (base-10) y axis.
    pub log_y: bool,
    /// The lines, drawn in order and listed in the legend.
    pub series: Vec<Series>,
}

impl Plot {
    /// An empty panel with a title.
    pub fn new(title: impl Into<String>) -> Self {
        Plot {
            title: title.into(),
            ..Plot::default()
        }
    }

    /// Sets the x-axis label.
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Sets the y-axis label.
    pub fn y_label(mut self, label: impl Into<String>) -> Self {
        self.y_label = label.into();
        self
    }

    /// Uses a logarithmic y axis.
    pub fn log_y(mut self, log_y: bool) -> Self {
        self.log_y = log_y;
        self
    }

    /// Adds a series.
    pub fn series(mut self, series: Series) -> Self {
        self.series.push(series);
        self
    }

    /// The points that can be drawn, with y already transformed (log10 on a log axis).
    fn drawable(&self, s: &Series) -> Vec<(f64, f64)> {
        s.points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!self.log_y || *y > 0.0))
            .map(|&(x, y)| (x, if self.log_y { y.log10() } else { y }))
            .collect()
    }
}

/// Escapes text for SVG character data and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A "nice" step (1, 2 or 5 times a power of ten) giving about `target` ticks over `span`.
fn nice_step(span: f64, target: usize) -> f64 {
    let raw = span / target.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// The axis range (widened when degenerate) and tick positions within it.
fn axis(lo: f64, hi: f64, target: usize, integer_ticks: bool) -> (f64, f64, Vec<f64>) {
    let (mut lo, mut hi) = (lo, hi);
    if !(lo.is_finite() && hi.is_finite()) {
        lo = 0.0;
        hi = 1.0;
    }
    if hi - lo <= f64::EPSILON * lo.abs().max(1.0) {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= pad;
        hi += pad;
    }
    let mut step = nice_step(hi - lo, target);
    if integer_ticks {
        step = step.max(1.0).round();
    }
    let first = (lo / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut t = first;
    while t <= hi + step * 1e-9 && ticks.len() < 50 {
        ticks.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    (lo, hi, ticks)
}

/// Formats a tick value compactly.
fn tick_label(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{v:.0e}");
    }
    let s = format!("{v:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// Draws one panel whose top-left corner is at (0, `y0`).
fn render_panel(out: &mut String, plot: &Plot, y0: f64) {
    let left = MARGIN_LEFT;
    let right = PANEL_WIDTH - MARGIN_RIGHT;
    let top = y0 + MARGIN_TOP;
    let bottom = y0 + PANEL_HEIGHT - MARGIN_BOTTOM;
    let drawable: Vec<Vec<(f64, f64)>> = plot.series.iter().map(|s| plot.drawable(s)).collect();
    let all = drawable.iter().flatten();
    let (mut xmin, mut xmax, mut ymin, mut ymax) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(x, y) in all {
        xmin = xmin.min(x);
        xmax = xmax.max(x);
        ymin = ymin.min(y);
        ymax = ymax.max(y);
    }
    let integer_x = drawable.iter().flatten().all(|(x, _)| x.fract() == 0.0);
    let (xmin, xmax, xticks) = axis(xmin, xmax, 8, integer_x);
    let (ymin, ymax, yticks) = if plot.log_y {
        let (lo, hi) = if ymin.is_finite() {
            (ymin.floor(), ymax.ceil().max(ymin.floor() + 1.0))
        } else {
            (0.0, 1.0)
        };
        let ticks = (lo as i64..=hi as i64).map(|e| e as f64).collect();
        (lo, hi, ticks)
    } else {
        axis(ymin, ymax, 6, false)
    };
    let sx = |x: f64| left + (x - xmin) / (xmax - xmin) * (right - left);
    let sy = |y: f64| bottom - (y - ymin) / (ymax - ymin) * (bottom - top);

    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        (left + right) / 2.0,
        y0 + 22.0,
        escape(&plot.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{left:.1}" y="{top:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#333"/>"##,
        right - left,
        bottom - top
    );
    for &t in &xticks {
        let x = sx(t);
        let _ = writeln!(
            out,
            r##"<line x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11">{}</text>"#,
            bottom + 16.0,
            escape(&tick_label(t))
        );
    }
    for &t in &yticks {
        let y = sy(t);
        let label = if plot.log_y {
            tick_label(10f64.powf(t))
        } else {
            tick_label(t)
        };
        let _ = writeln!(
            out,
            r##"<line x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"#,
            left - 6.0,
            y + 4.0,
            escape(&label)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{}</text>"#,
        (left + right) / 2.0,
        bottom + 38.0,
        escape(&plot.x_label)
    );
    let ylabel = if plot.log_y && !plot.y_label.is_empty() {
        format!("{} (log scale)", plot.y_label)
    } else {
        plot.y_label.clone()
    };
    let _ = writeln!(
        out,
        r#"<text x="16" y="{:.1}" text-anchor="middle" font-size="12" transform="rotate(-90 16 {:.1})">{}</text>"#,
        (top + bottom) / 2.0,
        (top + bottom) / 2.0,
        escape(&ylabel)
    );
    for (i, (s, pts)) in plot.series.iter().zip(&drawable).enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let coords: Vec<String> = pts
            .iter()
            .map(|&(x, y)| format!("{:.2},{:.2}", sx(x), sy(y)))
            .collect();
        let _ = writeln!(
            out,
            r#"<polyline data-series="{}" fill="none" stroke="{colour}" stroke-width="2"{dash} points="{}"/>"#,
            escape(&s.name),
            coords.join(" ")
        );
        if pts.len() == 1 {
            let (x, y) = pts[0];
            let _ = writeln!(
                out,
                r#"<circle cx="{:.2}" cy="{:.2}" r="3" fill="{colour}"/>"#,
                sx(x),
                sy(y)
            );
        }
        let ly = top + 14.0 + 20.0 * i as f64;
        let _ = writeln!(
            out,
            r#"<line x1="{:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"{dash}/>"#,
            right + 12.0,
            right + 36.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            right + 42.0,
            ly + 4.0,
            escape(&s.name)
        );
    }
}

/// Renders panels stacked vertically into one SVG document.
pub fn render(panels: &[Plot]) -> String {
    let height = PANEL_HEIGHT * panels.len().max(1) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{PANEL_WIDTH}" height="{height}" viewBox="0 0 {PANEL_WIDTH} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(
        out,
        r#"<rect x="0" y="0" width="{PANEL_WIDTH}" height="{height}" fill="white"/>"#
    );
    for (i, p) in panels.iter().enumerate() {
        let _ = writeln!(out, "<g>");
        render_panel(&mut out, p, PANEL_HEIGHT * i as f64);
        let _ = writeln!(out, "</g>");
    }
    out.push_str("</svg>\n");
    out
}

/// Renders `panels` and writes them to `path` atomically.
pub fn save_svg(path: impl AsRef<Path>, panels: &[Plot]) -> Result<()> {
    crate::io::atomic::write_atomic(path, render(panels).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks that every element is closed in order and returns the tag names seen.
    fn check_balanced(svg: &str) -> Vec<String> {
        let mut stack: Vec<String> = Vec::new();
        let mut seen = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("unterminated tag") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(name.trim()),
                    "mismatched </{name}>"
                );
            } else {
                let name = tag.split_whitespace().next().unwrap_or("").to_string();
                seen.push(name.clone());
                if !tag.ends_with('/') {
                    stack.push(name);
                }
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        seen
    }

    fn numbers_in(attr: &str, svg: &str) -> Vec<f64> {
        let key = format!(" {attr}=\"");
        svg.match_indices(&key)
            .flat_map(|(i, _)| {
                let v = &svg[i + key.len()..];
                let v = &v[..v.find('"').unwrap()];
                v.split([' ', ','])
                    .filter(|s| !s.is_empty())
                    .map(|s| s.parse::<f64>().unwrap_or(f64::NAN))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[test]
    fn two_panels_with_series_legend_and_finite_coordinates() {
        let loss = Plot::new("loss <& val>")
            .x_label("epoch")
            .y_label("loss")
            .series(Series::new(
                "loss",
                vec![(1.0, 2.0), (2.0, 1.0), (3.0, f64::NAN)],
            ))
            .series(Series::new("val_loss", vec![(1.0, 2.5), (2.0, 1.5)]).dashed(true));
        let acc = Plot::new("accuracy")
            .series(Series::new("accuracy", vec![(1.0, 0.5), (2.0, 0.9)]))
            .series(Series::new("val_accuracy", vec![(1.0, 0.4), (2.0, 0.8)]))
            .series(Series::new("single", vec![(1.0, 0.6)]));
        let svg = render(&[loss, acc]);
        let tags = check_balanced(&svg);
        assert_eq!(tags.iter().filter(|t| *t == "polyline").count(), 5);
        assert_eq!(svg.matches("data-series=").count(), 5);
        assert!(svg.contains("loss &lt;&amp; val&gt;"));
        for attr in ["points", "x", "y", "x1", "y1", "x2", "y2", "cx", "cy"] {
            let v = numbers_in(attr, &svg);
            assert!(!v.is_empty() || attr.starts_with('c'), "{attr}");
            assert!(v.iter().all(|n| n.is_finite()), "{attr}: {v:?}");
        }
        // Every point lies inside the canvas.
        let pts = numbers_in("points", &svg);
        assert!(pts.iter().all(|&v| (0.0..=2.0 * PANEL_HEIGHT).contains(&v)));
    }

    #[test]
    fn log_axis_skips_non_positive_and_ticks_decades() {
        let p = Plot::new("ppl").log_y(true).series(Series::new(
            "perplexity",
            vec![(1.0, 100.0), (2.0, 10.0), (3.0, 0.0), (4.0, 2.0)],
        ));
        let svg = render(&[p]);
        check_balanced(&svg);
        let pts = numbers_in("points", &svg);
        assert_eq!(pts.len(), 6, "3 drawable points of 4");
        assert!(svg.contains(">100<") && svg.contains(">10<") && svg.contains(">1<"));
    }

    #[test]
    fn empty_and_constant_series_still_render_finite() {
        let svg = render(&[
            Plot::new("empty"),
            Plot::new("flat").series(Series::new("c", vec![(0.0, 3.0), (0.0, 3.0)])),
        ]);
        check_balanced(&svg);
        assert!(numbers_in("points", &svg).iter().all(|v| v.is_finite()));
    }

    #[test]
    fn nice_ticks() {
        let (_, _, t) = axis(0.0, 1.0, 5, false);
        let want = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0];
        assert_eq!(t.len(), want.len(), "{t:?}");
        assert!(
            t.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12),
            "{t:?}"
        );
        let (_, _, t) = axis(1.0, 10.0, 8, true);
        assert!(t.iter().all(|v| v.fract() == 0.0));
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(tick_label(3.0), "3");
    }
}
