//! `timeline.svg`: an emulation run over time, drawn with plotters' SVG
//! backend (as the bench harness's plots): three panels on one wall-time
//! axis with tick values (the top one also in schedule seconds) —
//! delivered packets/s per ground-station pair, lost packets/s per pair,
//! and one-way latency per pair, predicted by the orbits (line) against
//! measured by the traffic (dots, the median of each second), with ticks at
//! the predicted path changes (FIB swaps). Faults are shaded from the link
//! going down to its restore (a red line down, a green one up, labels set
//! in rows so that none overprints another), intervals when the host was
//! overloaded are shaded grey, and the legend has its own strip below.
//! Rates are placed by their samples' wall time, not their index, so a
//! late tick's longer interval shows as one longer step where it was.

use anyhow::{anyhow, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use super::report::{FaultReport, PairTrace, Sample};

/// What the timeline shows of a run.
#[derive(Debug)]
pub struct Timeline<'a> {
    pub title: &'a str,
    pub pairs: &'a [PairTrace],
    /// Schedule time of the window's start and of a step, ns.
    pub start_ns: i64,
    pub step_ns: i64,
    /// Schedule seconds per wall second.
    pub time_scale: f64,
    /// Wall seconds of the run.
    pub wall_seconds: f64,
    pub faults: &'a [FaultReport],
    /// Host-overloaded intervals (wall s).
    pub overloaded: &'a [(f64, f64)],
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];
const DOWN: RGBColor = RGBColor(200, 0, 0);
const UP: RGBColor = RGBColor(0, 150, 0);
const OVERLOAD: RGBColor = RGBColor(120, 120, 120);
const WIDTH: u32 = 1200;
/// Left label area and margins (px): the plots are WIDTH - PLOT_INSET wide.
const Y_LABELS: u32 = 70;
const MARGIN: u32 = 12;
const PLOT_INSET: u32 = Y_LABELS + 2 * MARGIN;
/// Width of a label character (px, 12 px sans-serif, generous).
const CHAR_PX: f64 = 7.0;

fn color(k: usize) -> RGBColor {
    COLORS[k % COLORS.len()]
}

/// A fault on the plot: down at `from`, up at `to` (wall s; the end of
/// the plot if never restored).
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpan {
    pub from: f64,
    pub to: f64,
    pub restored: bool,
    pub name: String,
}

/// The faults as spans up to `end` (wall s).
pub fn fault_spans(faults: &[FaultReport], end: f64) -> Vec<FaultSpan> {
    faults
        .iter()
        .map(|f| FaultSpan {
            from: f.wall_s,
            to: f.restored_wall_s.unwrap_or(end).max(f.wall_s),
            restored: f.restored_wall_s.is_some(),
            name: format!("ISL {}-{}", f.link.0, f.link.1),
        })
        .collect()
}

/// Rows for labels that start at x and are w wide (both in plot units),
/// in order: each goes into the first row where it clears the last label
/// placed there, so no two overprint.
pub fn label_rows(labels: &[(f64, f64)]) -> Vec<usize> {
    let mut ends: Vec<f64> = Vec::new();
    let mut order: Vec<usize> = (0..labels.len()).collect();
    order.sort_by(|&a, &b| labels[a].0.total_cmp(&labels[b].0));
    let mut rows = vec![0; labels.len()];
    for i in order {
        let (x, w) = labels[i];
        let row = ends.iter().position(|&e| x >= e).unwrap_or(ends.len());
        if row == ends.len() {
            ends.push(f64::NEG_INFINITY);
        }
        ends[row] = x + w;
        rows[i] = row;
    }
    rows
}

/// A per-second series as steps: each sample's value (`of` divided by
/// the seconds it covers) held from its start to its end.
pub fn steps(samples: &[Sample], of: impl Fn(&Sample) -> u64) -> Vec<(f64, f64)> {
    samples
        .iter()
        .flat_map(|s| {
            let v = of(s) as f64 / s.secs().max(1e-3);
            [(s.from_s, v), (s.to_s, v)]
        })
        .collect()
}

/// The predicted latency (ms) at its steps' wall times up to `end`, in
/// runs between unreachable steps (each a line of its own).
pub fn predicted_runs(
    p: &PairTrace,
    step_ns: i64,
    time_scale: f64,
    end: f64,
) -> Vec<Vec<(f64, f64)>> {
    let mut runs = vec![Vec::new()];
    // At most ~2000 points a series: the plot is ~1100 px wide.
    // A point per chunk of `every` steps: the chunk's first value, or a
    // break in the line when any step of the chunk is unreachable (so a
    // one-step outage between two kept points still shows).
    let every = p.latency_ms.len().div_ceil(2000).max(1);
    for (k, chunk) in p.latency_ms.chunks(every).enumerate() {
        let t = (k * every) as f64 * step_ns as f64 / 1e9 / time_scale;
        if t > end {
            break;
        }
        let v = match chunk.iter().all(|v| v.is_finite()) {
            true => chunk[0],
            false => f64::NAN,
        };
        match (v.is_finite(), runs.last_mut()) {
            (true, Some(r)) => r.push((t, v)),
            (false, Some(r)) if !r.is_empty() => runs.push(Vec::new()),
            _ => {}
        }
    }
    runs.retain(|r| !r.is_empty());
    runs
}

/// Wall s of each path change after the first path (`start_ns`: the
/// window's start in schedule ns).
pub fn path_changes(p: &PairTrace, start_ns: i64, time_scale: f64) -> Vec<f64> {
    p.paths
        .iter()
        .skip(1)
        .map(|(t, _)| (t - start_ns) as f64 / 1e9 / time_scale)
        .collect()
}

/// A panel's caption and axes.
struct Axes<'s> {
    caption: &'s str,
    ymax: f64,
    y_desc: &'s str,
    /// The x axis's description (the bottom panel).
    x_desc: bool,
    /// Schedule seconds on a top axis (the top panel).
    top_axis: bool,
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow!("drawing the timeline: {e:?}")
}

type Area<'b> = DrawingArea<SVGBackend<'b>, Shift>;
type Chart<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// One line per pair, in the pair's colour.
fn pair_lines(chart: &mut Chart<'_, '_>, series: &[Vec<(f64, f64)>]) -> Result<()> {
    for (k, pts) in series.iter().enumerate() {
        chart
            .draw_series(LineSeries::new(
                pts.iter().copied(),
                color(k).stroke_width(2),
            ))
            .map_err(plot_err)?;
    }
    Ok(())
}

impl Timeline<'_> {
    /// The wall seconds the plot spans.
    fn end(&self) -> f64 {
        let last_sample = self
            .pairs
            .iter()
            .filter_map(|p| p.samples.last())
            .map(|s| s.to_s)
            .fold(0.0, f64::max);
        self.wall_seconds.max(last_sample).max(1.0)
    }

    /// The SVG.
    pub fn svg(&self) -> Result<String> {
        let mut out = String::new();
        let height = 1000 + 20 * (self.pairs.len() as u32).div_ceil(4);
        {
            let root = SVGBackend::with_string(&mut out, (WIDTH, height)).into_drawing_area();
            root.fill(&WHITE).map_err(plot_err)?;
            let root = root
                .titled(self.title, ("sans-serif", 21))
                .map_err(plot_err)?;
            let legend_h = 70 + 20 * (self.pairs.len() as u32).div_ceil(4) as i32;
            let (charts, legend) = root.split_vertically(root.dim_in_pixel().1 as i32 - legend_h);
            let areas = charts.split_by_breakpoints(
                Vec::<i32>::new(),
                [
                    charts.dim_in_pixel().1 as i32 * 36 / 100,
                    charts.dim_in_pixel().1 as i32 * 62 / 100,
                ],
            );
            self.rates(&areas[0])?;
            self.losses(&areas[1])?;
            self.latency(&areas[2])?;
            self.legend(&legend)?;
            root.present().map_err(plot_err)?;
        }
        Ok(out)
    }

    /// A panel's chart on `area`: y from 0 to `ymax`, the x axis in wall
    /// seconds with ticks (`top_axis`: schedule seconds on top too), the
    /// overloaded and fault spans under what `draw` draws.
    fn chart<'a, 'b>(
        &self,
        area: &'a Area<'b>,
        axes: Axes,
        draw: impl FnOnce(&mut Chart<'a, 'b>) -> Result<()>,
    ) -> Result<()> {
        let end = self.end();
        let mut b = ChartBuilder::on(area);
        b.caption(axes.caption, ("sans-serif", 17))
            .margin(MARGIN)
            .x_label_area_size(if axes.x_desc { 45 } else { 28 })
            .y_label_area_size(Y_LABELS);
        if axes.top_axis {
            b.top_x_label_area_size(40);
        }
        let chart = b
            .build_cartesian_2d(0f64..end, 0f64..axes.ymax)
            .map_err(plot_err)?;
        if axes.top_axis {
            let s0 = self.start_ns as f64 / 1e9;
            let mut dual =
                chart.set_secondary_coord(s0..s0 + end * self.time_scale, 0f64..axes.ymax);
            dual.configure_secondary_axes()
                .x_desc(format!("schedule seconds (x{})", self.time_scale))
                .x_label_formatter(&|v| format!("{v:.0}"))
                .x_labels(16)
                .y_labels(0)
                .label_style(("sans-serif", 14))
                .axis_desc_style(("sans-serif", 15))
                .draw()
                .map_err(plot_err)?;
            self.underlay(&mut dual, &axes)?;
            draw(&mut dual)
        } else {
            let mut chart = chart;
            self.underlay(&mut chart, &axes)?;
            draw(&mut chart)
        }
    }

    /// The mesh and axes, then the overloaded host's and the faults' spans.
    fn underlay(&self, chart: &mut Chart, axes: &Axes) -> Result<()> {
        let (end, ymax) = (self.end(), axes.ymax);
        // Whole numbers, but a decimal where the axis is short (0..1.1).
        let y_label = |v: &f64| {
            if ymax < 5.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            }
        };
        let mut mesh = chart.configure_mesh();
        mesh.x_labels(16)
            .y_labels(6)
            .y_desc(axes.y_desc)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&y_label)
            .label_style(("sans-serif", 14))
            .axis_desc_style(("sans-serif", 15))
            .light_line_style(WHITE.mix(0.0));
        if axes.x_desc {
            mesh.x_desc("wall seconds of the run");
        }
        mesh.draw().map_err(plot_err)?;
        chart
            .draw_series(
                self.overloaded.iter().map(|&(a, b)| {
                    Rectangle::new([(a, 0.0), (b, ymax)], OVERLOAD.mix(0.25).filled())
                }),
            )
            .map_err(plot_err)?;
        for f in fault_spans(self.faults, end) {
            let line = |x: f64, c: RGBColor| {
                PathElement::new(vec![(x, 0.0), (x, ymax)], c.stroke_width(1))
            };
            chart
                .draw_series([Rectangle::new(
                    [(f.from, 0.0), (f.to, ymax)],
                    DOWN.mix(0.08).filled(),
                )])
                .map_err(plot_err)?;
            chart.draw_series([line(f.from, DOWN)]).map_err(plot_err)?;
            if f.restored {
                chart.draw_series([line(f.to, UP)]).map_err(plot_err)?;
            }
        }
        Ok(())
    }

    /// Delivered packets/s per pair, with the faults' labels on top.
    fn rates(&self, area: &Area) -> Result<()> {
        let series: Vec<_> = self
            .pairs
            .iter()
            .map(|p| steps(&p.samples, |s| s.delivered))
            .collect();
        let max = series.iter().flatten().map(|p| p.1).fold(1.0, f64::max);
        // The faults' labels, in rows above the lines.
        let end = self.end();
        let spans = fault_spans(self.faults, end);
        let plot_px = (WIDTH - PLOT_INSET) as f64;
        let px_to_s = end / plot_px;
        let mut labels = Vec::new();
        for f in &spans {
            let down = format!("{} down {:.1} s", f.name, f.from);
            labels.push((f.from, down, DOWN));
            if f.restored {
                labels.push((f.to, format!("{} restored {:.1} s", f.name, f.to), UP));
            }
        }
        let extents: Vec<(f64, f64)> = labels
            .iter()
            .map(|(x, text, _)| (*x, (text.chars().count() as f64 * CHAR_PX + 8.0) * px_to_s))
            .collect();
        let rows = label_rows(&extents);
        let n_rows = rows.iter().max().map_or(0, |r| r + 1);
        let ymax = max * (1.1 + 0.09 * n_rows as f64);
        let axes = Axes {
            caption: "delivered packets/s per pair (both directions)",
            ymax,
            y_desc: "packets/s",
            x_desc: false,
            top_axis: true,
        };
        self.chart(area, axes, |chart| {
            pair_lines(chart, &series)?;
            for ((x, text, c), row) in labels.iter().zip(&rows) {
                let y = ymax * (1.0 - 0.09 * (*row as f64 + 0.4));
                let font = ("sans-serif", 15).into_font().color(c);
                chart
                    .draw_series([Text::new(text.clone(), (x + 3.0 * px_to_s, y), font)])
                    .map_err(plot_err)?;
            }
            Ok(())
        })
    }

    /// Lost packets/s per pair.
    fn losses(&self, area: &Area) -> Result<()> {
        let series: Vec<_> = self
            .pairs
            .iter()
            .map(|p| steps(&p.samples, |s| s.lost))
            .collect();
        let max = series.iter().flatten().map(|p| p.1).fold(1.0, f64::max);
        let axes = Axes {
            caption: "lost packets/s per pair (sequence gaps)",
            ymax: max * 1.1,
            y_desc: "packets/s",
            x_desc: false,
            top_axis: false,
        };
        self.chart(area, axes, |chart| {
            pair_lines(chart, &series)?;
            Ok(())
        })
    }

    /// Predicted (lines) and measured (dots) one-way latency, path changes.
    fn latency(&self, area: &Area) -> Result<()> {
        let end = self.end();
        let predicted: Vec<_> = self
            .pairs
            .iter()
            .map(|p| predicted_runs(p, self.step_ns, self.time_scale, end))
            .collect();
        let max = predicted
            .iter()
            .flatten()
            .flatten()
            .map(|p| p.1)
            .chain(
                self.pairs
                    .iter()
                    .flat_map(|p| p.measured_ms.iter().map(|m| m.1)),
            )
            .fold(1.0, f64::max);
        let rows = self.pairs.len() as f64;
        let ymax = max * (1.1 + 0.035 * rows);
        let axes = Axes {
            caption: "one-way latency per pair: predicted (line), measured (dots: median of each second); ticks: path changes",
            ymax,
            y_desc: "ms",
            x_desc: true,
            top_axis: false,
        };
        self.chart(area, axes, |chart| {
            for (k, p) in self.pairs.iter().enumerate() {
                let c = color(k);
                for run in &predicted[k] {
                    chart
                        .draw_series(LineSeries::new(run.iter().copied(), c.stroke_width(1)))
                        .map_err(plot_err)?;
                }
                chart
                    .draw_series(p.measured_ms.iter().map(|&m| Circle::new(m, 2, c.filled())))
                    .map_err(plot_err)?;
                // Path changes: a row of ticks per pair at the top.
                let y1 = ymax * (0.995 - 0.035 * k as f64 - 0.008);
                let y0 = ymax * (0.995 - 0.035 * (k as f64 + 1.0));
                chart
                    .draw_series(
                        path_changes(p, self.start_ns, self.time_scale)
                            .into_iter()
                            .filter(|&t| t <= end)
                            .map(|t| PathElement::new(vec![(t, y0), (t, y1)], c.stroke_width(2))),
                    )
                    .map_err(plot_err)?;
            }
            Ok(())
        })
    }

    /// The legend strip: the pairs, then what the shades and marks mean.
    fn legend(&self, area: &Area) -> Result<()> {
        let text = |s: &str, x: i32, y: i32, c: &RGBColor| {
            Text::new(
                s.to_string(),
                (x, y),
                ("sans-serif", 16).into_font().color(c),
            )
        };
        let (x0, col_w, row_h) = ((Y_LABELS + MARGIN) as i32, 270, 20);
        for (k, p) in self.pairs.iter().enumerate() {
            let (x, y) = (x0 + col_w * (k % 4) as i32, 8 + row_h * (k / 4) as i32);
            let c = color(k);
            area.draw(&PathElement::new(
                vec![(x, y + 7), (x + 22, y + 7)],
                c.stroke_width(3),
            ))
            .map_err(plot_err)?;
            area.draw(&text(&p.name, x + 28, y, &BLACK))
                .map_err(plot_err)?;
        }
        let y = 8 + row_h * (self.pairs.len() as u32).div_ceil(4) as i32 + 8;
        area.draw(&Rectangle::new(
            [(x0, y), (x0 + 22, y + 14)],
            DOWN.mix(0.15).filled(),
        ))
        .map_err(plot_err)?;
        area.draw(&text(
            "ISL down (red line) .. restored (green line)",
            x0 + 28,
            y,
            &BLACK,
        ))
        .map_err(plot_err)?;
        let x1 = x0 + 2 * col_w;
        area.draw(&Rectangle::new(
            [(x1, y), (x1 + 22, y + 14)],
            OVERLOAD.mix(0.35).filled(),
        ))
        .map_err(plot_err)?;
        area.draw(&text(
            "host overloaded (others' processes; see summary)",
            x1 + 28,
            y,
            &BLACK,
        ))
        .map_err(plot_err)?;
        let lateness = format!(
            "rates are per second over each tick's interval, at its wall time; {} ms schedule steps",
            self.step_ns / 1_000_000
        );
        area.draw(&text(&lateness, x0, y + row_h, &BLACK))
            .map_err(plot_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(from_s: f64, to_s: f64, delivered: u64, lost: u64) -> Sample {
        Sample {
            from_s,
            to_s,
            delivered,
            lost,
        }
    }

    fn fault(link: (u32, u32), wall_s: f64, restored: Option<f64>) -> FaultReport {
        FaultReport {
            link,
            at_s: wall_s * 20.0,
            restored_at_s: restored.map(|r| r * 20.0),
            wall_s,
            restored_wall_s: restored,
            lost_around: 0,
            repaired_after_s: None,
            pairs_on_link: Vec::new(),
        }
    }

    #[test]
    fn rates_are_placed_by_time_and_divided_by_the_interval() {
        // A stall: the third tick came 3 s after the second.
        let s = [
            sample(0.0, 1.0, 400, 0),
            sample(1.0, 2.0, 400, 2),
            sample(2.0, 5.0, 600, 30),
        ];
        assert_eq!(
            steps(&s, |s| s.delivered),
            vec![
                (0.0, 400.0),
                (1.0, 400.0),
                (1.0, 400.0),
                (2.0, 400.0),
                (2.0, 200.0),
                (5.0, 200.0)
            ]
        );
        assert_eq!(steps(&s, |s| s.lost)[4..], [(2.0, 10.0), (5.0, 10.0)]);
    }

    #[test]
    fn labels_that_would_overprint_go_to_the_next_row() {
        // Two faults 1 s apart with labels 5 s wide, a third well after.
        let rows = label_rows(&[(10.0, 5.0), (11.0, 5.0), (30.0, 5.0), (12.0, 1.0)]);
        assert_eq!(rows, vec![0, 1, 0, 2]);
        assert_eq!(
            label_rows(&[(16.0, 1.0), (10.0, 5.0)]),
            vec![0, 0],
            "clear after the end"
        );
    }

    #[test]
    fn faults_span_to_their_restore_or_the_end() {
        let spans = fault_spans(
            &[fault((3, 4), 30.0, Some(45.0)), fault((0, 1), 50.0, None)],
            120.0,
        );
        assert_eq!(
            spans,
            vec![
                FaultSpan {
                    from: 30.0,
                    to: 45.0,
                    restored: true,
                    name: "ISL 3-4".into()
                },
                FaultSpan {
                    from: 50.0,
                    to: 120.0,
                    restored: false,
                    name: "ISL 0-1".into()
                }
            ]
        );
    }

    #[test]
    fn predicted_latency_breaks_where_unreachable_and_maps_to_wall_time() {
        let p = PairTrace {
            latency_ms: vec![10.0, 11.0, f64::NAN, 12.0, 13.0],
            paths: vec![
                (1_000_000_000, vec![1, 2]),
                (1_041_000_000_000, vec![1, 3, 2]),
            ],
            ..Default::default()
        };
        // 20 s steps at x20: one wall second a step.
        let runs = predicted_runs(&p, 20_000_000_000, 20.0, 3.5);
        assert_eq!(
            runs,
            vec![vec![(0.0, 10.0), (1.0, 11.0)], vec![(3.0, 12.0)]]
        );
        // Path changes are placed from the window's start.
        assert_eq!(path_changes(&p, 1_000_000_000, 20.0), vec![52.0]);
    }

    /// More steps than points: a one-step outage that falls between two
    /// kept points still breaks the line.
    #[test]
    fn a_one_step_outage_between_kept_points_still_breaks_the_line() {
        let mut latency_ms = vec![10.0; 5000];
        latency_ms[2501] = f64::NAN; // every = 3: kept points are 2499, 2502
        let p = PairTrace {
            latency_ms,
            ..Default::default()
        };
        let runs = predicted_runs(&p, 1_000_000_000, 1.0, f64::INFINITY);
        assert_eq!(runs.len(), 2, "the outage at step 2501 split the line");
        assert!(runs.iter().map(Vec::len).sum::<usize>() < 2000);
    }

    /// A fixture run: two pairs, a stall, two faults close together (one
    /// restored), an overloaded interval.
    fn fixture_svg() -> String {
        let pair = |a, b, name: &str| PairTrace {
            a,
            b,
            name: name.into(),
            latency_ms: (0..120).map(|i| 20.0 + i as f64 / 10.0).collect(),
            paths: vec![(0, vec![4, 0, 5]), (400_000_000_000, vec![4, 1, 5])],
            samples: (0..60)
                .map(|i| sample(i as f64, i as f64 + 1.0, 400, u64::from(i == 31) * 57))
                .chain([sample(60.0, 63.2, 1280, 300)])
                .collect(),
            measured_ms: (0..60)
                .map(|i| (i as f64 + 1.0, 21.0 + i as f64 / 10.0))
                .collect(),
        };
        let pairs = [pair(0, 1, "Tokyo-Delhi"), pair(0, 2, "Tokyo-São-Paulo")];
        let faults = [fault((3, 4), 30.5, Some(45.0)), fault((0, 1), 31.0, None)];
        Timeline {
            title: "fixture",
            pairs: &pairs,
            start_ns: 0,
            step_ns: 20_000_000_000,
            time_scale: 20.0,
            wall_seconds: 64.0,
            faults: &faults,
            overloaded: &[(60.0, 63.2)],
        }
        .svg()
        .unwrap()
    }

    #[test]
    fn the_svg_has_tick_values_faults_restores_and_overload() {
        let s = fixture_svg();
        if let Some(dir) = std::env::var_os("TIMELINE_FIXTURE_OUT") {
            std::fs::write(std::path::Path::new(&dir).join("timeline-fixture.svg"), &s).unwrap();
        }
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        // Tick values on the wall-time axis, and the schedule axis on top.
        let texts: Vec<&str> = s
            .split("<text")
            .skip(1)
            .map(|t| t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()].trim())
            .collect();
        for tick in ["0", "10", "20", "50", "60", "800"] {
            assert!(texts.contains(&tick), "no tick label {tick}: {texts:?}");
        }
        assert!(s.contains("wall seconds of the run") && s.contains("schedule seconds (x20)"));
        assert!(s.contains("ISL 3-4 down 30.5 s"));
        assert!(s.contains("ISL 3-4 restored 45.0 s"));
        assert!(s.contains("ISL 0-1 down 31.0 s"));
        assert!(!s.contains("ISL 0-1 restored"), "never restored");
        assert!(s.contains("lost packets/s per pair"));
        assert!(s.contains("Tokyo-São-Paulo"));
        // The two close fault labels are in different rows (different y).
        let y_of = |label: &str| {
            let at = s.find(label).unwrap();
            let tag = &s[s[..at].rfind("<text").unwrap()..at];
            let y = tag.split("y=\"").nth(1).unwrap();
            y[..y.find('"').unwrap()].parse::<f64>().unwrap()
        };
        assert_ne!(y_of("ISL 3-4 down"), y_of("ISL 0-1 down"));
    }
}
