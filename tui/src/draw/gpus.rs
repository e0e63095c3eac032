//! The GPU screen: one row (compact) or two per GPU, the history charts, and the findings next
//! to them.

use super::findings;
use super::format::{UNKNOWN, bar, clock_badges, gib, num, nvlink_capacity, pcie_capacity, pct, rate};
use crate::state::{App, GpuThin, Thin};
use gpuscope_core::{GpuSample, NodeSnapshot};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph, Sparkline};

/// A utilization/SM-active gap this wide (in points) is flagged: the GPU looks busy but most
/// SMs are idle ("utilization lies").
const GAP_FLAG: f64 = 0.30;

/// Columns of wide rows; narrower terminals get the short row.
const WIDE: u16 = 150;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let Some(snap) = app.shown() else { return };
    let n = snap.gpus.len() as u16;
    // Findings get at least 5 lines and the charts 6; GPUs fold to one line each when two do not fit.
    let compact = app.compact || 2 * n + 3 + 11 > area.height;
    let gpu_h = if compact { n + 3 } else { 2 * n + 3 };
    let rest = area.height.saturating_sub(gpu_h);
    let findings_h = (rest / 2).clamp(5, 12);
    let [gpu_area, chart_area, findings_area] =
        Layout::vertical([Constraint::Length(gpu_h), Constraint::Min(0), Constraint::Length(findings_h)]).areas(area);
    gpu_table(frame, gpu_area, app, &snap, compact);
    charts(frame, chart_area, app);
    findings::panel(frame, findings_area, app);
}

/// GPUs the selected finding concerns.
fn marked_gpus(app: &App) -> Vec<u32> {
    app.selected_finding().map(|r| r.finding.scope.gpus.clone()).unwrap_or_default()
}

fn gpu_table(frame: &mut Frame, area: Rect, app: &App, snap: &NodeSnapshot, compact: bool) {
    let t = &app.theme;
    let wide = area.width >= WIDE;
    let marked = marked_gpus(app);
    let mut lines = Vec::with_capacity(snap.gpus.len() * 2 + 1);
    let header = if wide {
        format!(
            "{:<3} {:<16} {:>4} {:>4} {:>4}  {:>4} {:>4} {:>4} {:>4} {:>4}  {:>11} {:>9} {:>7} {:>10} {:>10} {:>17} {:>17}  CLOCK EVENTS",
            "GPU",
            "MODEL",
            "UTIL",
            "SM",
            "GAP",
            "TENS",
            "FP32",
            "FP16",
            "FP64",
            "DRAM",
            "MEM GiB",
            "POWER W",
            "TEMP C",
            "SM MHz",
            "MEM MHz",
            "PCIe rx / tx",
            "NVLink rx / tx"
        )
    } else {
        format!(
            "{:<3} {:>4} {:>4} {:>4} {:>4} {:>11} {:>9} {:>7}  CLOCK EVENTS",
            "GPU", "UTIL", "SM", "GAP", "TENS", "MEM GiB", "POWER W", "TEMP C"
        )
    };
    lines.push(Line::styled(header, t.dim));
    for g in &snap.gpus {
        let mark = marked.contains(&g.index);
        let lead = Span::styled(if mark { "▶" } else { " " }, t.marked);
        if g.lost {
            lines.push(Line::from(vec![
                lead,
                Span::styled(
                    format!("{:<2} {:<16} LOST — fell off the bus; no values can be read", g.index, short_model(g)),
                    t.crit,
                ),
            ]));
            if !compact {
                lines.push(Line::raw(""));
            }
            continue;
        }
        let gap = match (g.utilization_ratio, g.sm_active_ratio) {
            (Some(u), Some(s)) => Some(u - s),
            _ => None,
        };
        let gap_style = if gap.is_some_and(|d| d >= GAP_FLAG) { t.warn } else { t.text };
        let gap_text = gap.map_or(UNKNOWN.to_string(), |d| format!("{:+.0}", d * 100.0));
        let row_style = if mark { t.marked } else { t.text };
        let mut spans = vec![lead, Span::styled(format!("{:<2} ", g.index), row_style)];
        if wide {
            spans.push(Span::styled(format!("{:<16} ", short_model(g)), t.dim));
        }
        spans.push(Span::styled(format!("{:>4} {:>4} ", pct(g.utilization_ratio), pct(g.sm_active_ratio)), t.text));
        spans.push(Span::styled(format!("{gap_text:>4}"), gap_style));
        if wide {
            spans.push(Span::styled(
                format!(
                    "  {:>4} {:>4} {:>4} {:>4} {:>4}",
                    pct(g.tensor_active_ratio),
                    pct(g.fp32_active_ratio),
                    pct(g.fp16_active_ratio),
                    pct(g.fp64_active_ratio),
                    pct(g.dram_active_ratio)
                ),
                t.text,
            ));
        } else {
            spans.push(Span::styled(format!(" {:>4}", pct(g.tensor_active_ratio)), t.text));
        }
        let mem = format!("{}/{}", gib(g.memory_used_bytes), gib(g.memory_total_bytes));
        let power = format!("{}/{}", num(g.power_watts, 1.0, 0, ""), num(g.power_limit_watts, 1.0, 0, ""));
        let hot = matches!((g.temperature_celsius, g.slowdown_temperature_celsius), (Some(c), Some(s)) if c >= s - 5.0);
        let temp =
            format!("{}/{}", num(g.temperature_celsius, 1.0, 0, ""), num(g.slowdown_temperature_celsius, 1.0, 0, ""));
        spans.push(Span::styled(format!("  {mem:>11} {power:>9} "), t.text));
        spans.push(Span::styled(format!("{temp:>7}"), if hot { t.warn } else { t.text }));
        if wide {
            let sm = format!("{}/{}", num(g.sm_clock_hertz, 1e-6, 0, ""), num(g.sm_clock_max_hertz, 1e-6, 0, ""));
            let memclk =
                format!("{}/{}", num(g.memory_clock_hertz, 1e-6, 0, ""), num(g.memory_clock_max_hertz, 1e-6, 0, ""));
            let pcie = format!("{} / {}", rate(g.pcie_rx_bytes_per_second), rate(g.pcie_tx_bytes_per_second));
            let nvl = format!("{} / {}", rate(g.nvlink_rx_bytes_per_second), rate(g.nvlink_tx_bytes_per_second));
            spans.push(Span::styled(format!(" {sm:>10} {memclk:>10} {pcie:>17} {nvl:>17}"), t.text));
        }
        spans.push(Span::raw("  "));
        for b in clock_badges(g.clock_event_reasons) {
            let style = if b == "IDLE" { t.dim } else { t.warn };
            spans.push(Span::styled(format!("[{b}]"), style));
        }
        lines.push(Line::from(spans));
        if !compact {
            lines.push(bars_line(app, g, wide));
        }
    }
    let title = format!(" GPUs at {} ", super::format::clock(snap.timestamp_ms));
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(Span::styled(title, t.accent))), area);
}

/// The second line of a GPU: bars that show the gap between utilization and SM activity, and
/// the links against their capacity.
fn bars_line(app: &App, g: &GpuSample, wide: bool) -> Line<'static> {
    let t = &app.theme;
    let w = if wide { 12 } else { 8 };
    let mut spans = vec![
        Span::styled("    util ", t.dim),
        Span::styled(bar(g.utilization_ratio, w), t.ok),
        Span::styled(" sm ", t.dim),
        Span::styled(bar(g.sm_active_ratio, w), t.accent),
        Span::styled(" tensor ", t.dim),
        Span::styled(bar(g.tensor_active_ratio, w), t.text),
    ];
    if wide {
        let power = match (g.power_watts, g.power_limit_watts) {
            (Some(p), Some(l)) if l > 0.0 => Some(p / l),
            _ => None,
        };
        let pcie_cap = pcie_capacity(g.pcie_link_generation, g.pcie_link_width);
        let pcie = match (g.pcie_rx_bytes_per_second, g.pcie_tx_bytes_per_second, pcie_cap) {
            (Some(rx), Some(tx), Some(c)) if c > 0.0 => Some(rx.max(tx) / c),
            _ => None,
        };
        let nvl_cap = nvlink_capacity(g);
        let nvl = match (g.nvlink_rx_bytes_per_second, g.nvlink_tx_bytes_per_second, nvl_cap) {
            (Some(rx), Some(tx), Some(c)) if c > 0.0 => Some(rx.max(tx) / c),
            _ => None,
        };
        spans.extend([
            Span::styled(" dram ", t.dim),
            Span::styled(bar(g.dram_active_ratio, w), t.text),
            Span::styled(" power ", t.dim),
            Span::styled(bar(power, w), t.text),
            Span::styled(format!(" pcie gen{}x{} ", num_u(g.pcie_link_generation), num_u(g.pcie_link_width)), t.dim),
            Span::styled(bar(pcie, 6), t.text),
            Span::styled(format!(" of {}", rate(pcie_cap)), t.dim),
            Span::styled(" nvlink ", t.dim),
            Span::styled(bar(nvl, 6), t.text),
            Span::styled(format!(" of {}", rate(nvl_cap)), t.dim),
        ]);
    }
    Line::from(spans)
}

fn num_u(v: Option<u32>) -> String {
    v.map_or(UNKNOWN.into(), |x| x.to_string())
}

fn short_model(g: &GpuSample) -> String {
    g.model.trim_start_matches("NVIDIA ").chars().take(16).collect()
}

/// Mean of a GPU signal over the GPUs that report it; unknown when none does.
fn mean(s: &Thin, f: impl Fn(&GpuThin) -> Option<f32>) -> Option<f64> {
    let v: Vec<f64> = s.gpus.iter().filter_map(&f).map(f64::from).collect();
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Node-wide charts (mean utilization, SM active, power share) over the window ending at the
/// time shown, with the selected finding's opening marked; per-GPU SM-active sparklines beside.
fn charts(frame: &mut Frame, area: Rect, app: &App) {
    if area.height < 3 {
        return;
    }
    let t = &app.theme;
    let Some(end) = app.shown_ms() else { return };
    let window_ms = app.window_ms();
    let snaps: Vec<&Thin> = app.history.window(end, window_ms).collect();
    let x = |s: &Thin| -((end - s.timestamp_ms) as f64 / 1000.0);
    let series = |f: &dyn Fn(&Thin) -> Option<f64>| -> Vec<(f64, f64)> {
        snaps.iter().filter_map(|s| f(s).map(|v| (x(s), v * 100.0))).collect()
    };
    let util = series(&|s| mean(s, |g| g.utilization));
    let sm = series(&|s| mean(s, |g| g.sm_active));
    let power = series(&|s| mean(s, |g| g.power_share));
    let window_s = window_ms as f64 / 1000.0;
    let marker: Vec<(f64, f64)> = app
        .selected_finding()
        .filter(|r| r.opened_ms <= end && end - r.opened_ms <= window_ms)
        .map(|r| {
            let at = -((end - r.opened_ms) as f64 / 1000.0);
            vec![(at, 0.0), (at, 100.0)]
        })
        .unwrap_or_default();
    let gpus = app.shown().map_or(0, |s| s.gpus.len());
    let spark_w = if area.width >= 100 && gpus > 0 { area.width / 3 } else { 0 };
    let [chart_area, spark_area] = Layout::horizontal([Constraint::Min(0), Constraint::Length(spark_w)]).areas(area);
    let mut datasets = vec![
        Dataset::default().name("util %").marker(Marker::Braille).graph_type(GraphType::Line).style(t.ok).data(&util),
        Dataset::default()
            .name("SM active %")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.accent)
            .data(&sm),
        Dataset::default()
            .name("power % of limit")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(t.warn)
            .data(&power),
    ];
    if !marker.is_empty() {
        datasets.push(
            Dataset::default()
                .name("finding opened")
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(t.marked)
                .data(&marker),
        );
    }
    let title = format!(" Node, last {} (w) ", super::format::duration_ms(window_ms));
    let chart = Chart::new(datasets)
        .block(Block::bordered().title(Span::styled(title, t.accent)))
        .x_axis(
            Axis::default()
                .bounds([-window_s, 0.0])
                .labels([format!("-{}", super::format::duration_ms(window_ms)), "now".into()])
                .style(t.dim),
        )
        .y_axis(Axis::default().bounds([0.0, 100.0]).labels(["0", "100"]).style(t.dim))
        .legend_position(Some(ratatui::widgets::LegendPosition::TopLeft))
        .hidden_legend_constraints((Constraint::Percentage(60), Constraint::Percentage(60)));
    frame.render_widget(chart, chart_area);
    if spark_w > 0 {
        sparklines(frame, spark_area, app, &snaps, end, window_ms);
    }
}

/// One SM-active sparkline per GPU (utilization where SM activity is unknown), one bucket per cell.
fn sparklines(frame: &mut Frame, area: Rect, app: &App, snaps: &[&Thin], end_ms: u64, window_ms: u64) {
    let t = &app.theme;
    let block = Block::bordered().title(Span::styled(" SM active per GPU ", t.accent));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let Some(shown) = app.shown() else { return };
    let label_w = 5u16;
    let cells = usize::from(inner.width.saturating_sub(label_w));
    if cells == 0 {
        return;
    }
    for (row, g) in shown.gpus.iter().enumerate().take(usize::from(inner.height)) {
        let y = inner.y + row as u16;
        let uses_sm = snaps.iter().any(|s| s.gpus.get(row).is_some_and(|x| x.sm_active.is_some()));
        let label = format!("{}{:<3}", if uses_sm { "" } else { "u" }, g.index);
        frame.render_widget(Paragraph::new(label).style(t.dim), Rect { x: inner.x, y, width: label_w, height: 1 });
        // One bucket per cell over the window's time span, the time shown at the right edge;
        // a bucket without samples stays empty, one where the signal is unknown shows a dot.
        let data = buckets(snaps, end_ms, window_ms, cells, |s| {
            let x = s.gpus.get(row)?;
            if uses_sm { x.sm_active } else { x.utilization }.map(f64::from)
        });
        let spark = Sparkline::default().data(&data).max(100).style(t.accent).absent_value_symbol(" ");
        frame.render_widget(spark, Rect { x: inner.x + label_w, y, width: inner.width - label_w, height: 1 });
    }
}

/// Means of `f` per time bucket: `cells` buckets over `(end_ms - window_ms, end_ms]`, in percent.
/// `None` where a bucket holds no sample with a known value.
pub(super) fn buckets(
    snaps: &[&Thin],
    end_ms: u64,
    window_ms: u64,
    cells: usize,
    f: impl Fn(&Thin) -> Option<f64>,
) -> Vec<Option<u64>> {
    let mut sum = vec![(0.0f64, 0u32); cells];
    let start = end_ms.saturating_sub(window_ms);
    for s in snaps {
        let Some(v) = f(s) else { continue };
        let offset = s.timestamp_ms.saturating_sub(start).saturating_sub(1);
        let i = ((offset as u128 * cells as u128) / u128::from(window_ms.max(1))) as usize;
        if let Some(b) = sum.get_mut(i.min(cells - 1)) {
            b.0 += v;
            b.1 += 1;
        }
    }
    sum.into_iter().map(|(s, n)| (n > 0).then(|| (s / f64::from(n) * 100.0).round() as u64)).collect()
}
