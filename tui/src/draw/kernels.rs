//! The kernels screen: the processes that load the CUPTI injection library, and for the one
//! selected its latest profiling window: time by kernel class, the top kernels, launch rate,
//! synchronization, GPU gaps, pageable copies and what the profiler costs.

use super::format::{UNKNOWN, bar, bytes, clock, count, num, pct, seconds};
use crate::state::{App, SourceKind};
use gpuscope_core::KernelProfile;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

/// What the screen says when no process sends kernel profiles.
pub const NO_PROFILE: &str = "no kernel profile — load the gpuscope injection library (docs/cupti.md)";

/// Host time in synchronization calls over the window's length.
fn sync_share(p: &KernelProfile) -> Option<f64> {
    (p.window_seconds > 0.0).then(|| p.sync_seconds / p.window_seconds)
}

/// A part of the window's kernel time.
fn share(part: f64, p: &KernelProfile) -> Option<f64> {
    (p.kernel_seconds > 0.0).then(|| part / p.kernel_seconds)
}

/// `text` cut to `w` cells, an ellipsis marking the cut.
fn cut(text: &str, w: usize) -> String {
    if text.chars().count() <= w {
        return text.to_string();
    }
    let mut s: String = text.chars().take(w.saturating_sub(1)).collect();
    s.push('…');
    s
}

/// Facts packed into lines of `width` cells, a fact never split, three spaces between facts.
fn flow(facts: impl IntoIterator<Item = Vec<Span<'static>>>, width: usize) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let mut line: Vec<Span> = Vec::new();
    let mut used = 0;
    for fact in facts {
        let w: usize = fact.iter().map(Span::width).sum();
        if used > 0 && used + 3 + w > width {
            lines.push(Line::from(std::mem::take(&mut line)));
            used = 0;
        }
        if used > 0 {
            line.push(Span::raw("   "));
            used += 3;
        }
        line.extend(fact);
        used += w;
    }
    if !line.is_empty() {
        lines.push(Line::from(line));
    }
    lines
}

/// GPU indices with runs joined (`0-7`, `0,2,4-5`).
fn gpu_list(gpus: &[u32]) -> String {
    let mut sorted = gpus.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for g in sorted {
        match runs.last_mut() {
            Some((_, end)) if g == *end + 1 => *end = g,
            _ => runs.push((g, g)),
        }
    }
    let parts: Vec<String> =
        runs.iter().map(|(a, b)| if a == b { a.to_string() } else { format!("{a}-{b}") }).collect();
    if parts.is_empty() { UNKNOWN.to_string() } else { parts.join(",") }
}

/// The line the process detail shows for one process: its kernel profile in brief, or how to
/// get one.
pub fn brief(p: Option<&KernelProfile>) -> String {
    let Some(p) = p else { return NO_PROFILE.to_string() };
    let mut classes: Vec<_> = p.classes.iter().collect();
    classes.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    let top = classes
        .first()
        .map_or(String::new(), |c| format!("   top class {} {}", c.class.label(), pct(share(c.seconds, p))));
    format!(
        "launches/s {}   median kernel {}   sync {}{top}   (5: kernels)",
        count(p.launches_per_second),
        seconds(p.median_kernel_seconds),
        pct(sync_share(p)),
    )
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let profiles = app.kernel_profiles();
    if profiles.is_empty() {
        let lines = vec![
            Line::styled(NO_PROFILE, t.warn),
            Line::styled(
                "CUDA_INJECTION64_PATH=…/libgpuscope_cupti_inject.so in the CUDA process, [cupti] enabled = true \
                 in the agent",
                t.dim,
            ),
        ];
        let block = Block::bordered().title(Span::styled(" Kernel profiles (0) ", t.accent));
        frame.render_widget(Paragraph::new(lines).block(block), area);
        return;
    }
    let selected = app.kernel_selected(&profiles);
    let list_h = (profiles.len().min(6) as u16 + 3).min(area.height / 2);
    let [list_area, detail_area] = Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(area);

    let mut lines = vec![Line::styled(
        format!(
            "  {:>7} {:<12} {:<7} {:>8} {:>8} {:>6} {:>4} {:>8} {:>7}  TOP KERNEL",
            "PID", "NAME", "GPU", "LAUNCH/S", "KERNEL T", "MEDIAN", "SYNC", "PAGEABLE", "GAP MAX"
        ),
        t.dim,
    )];
    let visible = usize::from(list_area.height.saturating_sub(3));
    let skip = (selected + 1).saturating_sub(visible);
    for (i, p) in profiles.iter().enumerate().skip(skip).take(visible) {
        let gpus = gpu_list(&p.gpus);
        let top = p.top_kernels.first().map_or(UNKNOWN.to_string(), |k| k.name.clone());
        let text = format!(
            "{} {:>7} {:<12} {:<7} {:>8} {:>8} {:>6} {:>4} {:>8} {:>7}  {}",
            if i == selected { "▶" } else { " " },
            p.pid,
            cut(&p.name, 12),
            cut(&gpus, 7),
            count(p.launches_per_second),
            seconds(Some(p.kernel_seconds)),
            seconds(p.median_kernel_seconds),
            pct(sync_share(p)),
            bytes(Some(p.pageable_copy_bytes)),
            seconds(p.gpu_gap_max_seconds),
            top
        );
        lines.push(Line::styled(text, if i == selected { t.selected } else { t.text }));
    }
    let title = format!(" Kernel profiles ({}) ", profiles.len());
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(Span::styled(title, t.accent))), list_area);

    if let Some(p) = profiles.get(selected) {
        detail(frame, detail_area, app, p);
    }
}

/// The latest window of one process.
fn detail(frame: &mut Frame, area: Rect, app: &App, p: &KernelProfile) {
    let t = &app.theme;
    let inner = usize::from(area.width.saturating_sub(2));
    let kv = |k: &str, v: String| vec![Span::styled(format!("{k} "), t.dim), Span::styled(v, t.text)];
    let facts = [
        kv("launches/s", count(p.launches_per_second)),
        kv("kernels", format!("{} ({} of kernel time)", p.kernel_count, seconds(Some(p.kernel_seconds)))),
        kv("median kernel", seconds(p.median_kernel_seconds)),
        kv("graph kernels", p.graph_kernels.to_string()),
        kv("sync", format!("{} of the window ({})", pct(sync_share(p)), seconds(Some(p.sync_seconds)))),
        kv(
            "largest GPU gap",
            format!("{} ({} idle in all)", seconds(p.gpu_gap_max_seconds), seconds(p.gpu_gap_seconds)),
        ),
        kv(
            "pageable copies",
            format!(
                "{}, {} ({} async)",
                p.pageable_copies,
                bytes(Some(p.pageable_copy_bytes)),
                p.async_pageable_copies
            ),
        ),
        kv(
            "profiler",
            format!("a {} window every {}", seconds(Some(p.window_seconds)), seconds(Some(p.period_seconds))),
        ),
        kv(
            "overhead",
            format!(
                "{} in all ({} of its CPU)",
                seconds(Some(p.overhead_seconds_total)),
                num(p.overhead_cpu_ratio, 100.0, 2, "%")
            ),
        ),
        kv("dropped", format!("{} records, {} summaries", p.dropped_records_total, p.summaries_dropped_total)),
    ];
    let mut lines = flow(facts, inner);
    let n_classes = p.classes.len().max(1);
    let n_top = p.top_kernels.len().max(1);
    // The blank separators go first when the screen is short.
    let roomy = lines.len() + 4 + n_classes + n_top <= usize::from(area.height.saturating_sub(2));
    if roomy {
        lines.push(Line::raw(""));
    }

    // Time by class, largest first, as bars of the window's kernel time.
    let bar_w = inner.saturating_sub(24 + 1 + 1 + 5 + 10 + 9).clamp(4, 40);
    lines.push(Line::styled(
        format!("{:<24} {:<bar_w$} {:>5} {:>9} {:>8}", "TIME BY CLASS", "", "SHARE", "TIME", "COUNT"),
        t.dim,
    ));
    let mut classes: Vec<_> = p.classes.iter().collect();
    classes.sort_by(|a, b| b.seconds.total_cmp(&a.seconds).then_with(|| a.class.cmp(&b.class)));
    for c in &classes {
        let s = share(c.seconds, p);
        lines.push(Line::from(vec![
            Span::styled(format!("{:<24} ", cut(&c.class.label(), 24)), t.text),
            Span::styled(bar(s, bar_w), t.accent),
            Span::styled(format!(" {:>5} {:>9} {:>8}", pct(s), seconds(Some(c.seconds)), c.count), t.text),
        ]));
    }
    if classes.is_empty() {
        lines.push(Line::styled("no kernel ran in the latest window", t.dim));
    }
    if roomy {
        lines.push(Line::raw(""));
    }

    // The top kernels: the name takes what the numbers leave.
    // Capped, so that on a wide terminal the numbers stay next to the names they belong to.
    let name_w = inner.saturating_sub(1 + 24 + 1 + 8 + 1 + 9 + 1 + 5).clamp(12, 120);
    lines.push(Line::styled(
        format!("{:<name_w$} {:<24} {:>8} {:>9} {:>5}", "TOP KERNELS", "CLASS", "COUNT", "TIME", "SHARE"),
        t.dim,
    ));
    for k in &p.top_kernels {
        lines.push(Line::styled(
            format!(
                "{:<name_w$} {:<24} {:>8} {:>9} {:>5}",
                cut(&k.name, name_w),
                cut(&k.class.label(), 24),
                k.count,
                seconds(Some(k.seconds)),
                pct(share(k.seconds, p))
            ),
            t.text,
        ));
    }
    if p.top_kernels.is_empty() {
        let why = if matches!(app.source, SourceKind::Collector { .. }) {
            format!("kernel names do not travel over OTLP: gpuscope profile --pid {} on the node shows them", p.pid)
        } else if p.kernel_count == 0 {
            "no kernel ran in the latest window".to_string()
        } else {
            "no kernel names in the latest window".to_string()
        };
        lines.push(Line::styled(why, t.dim));
    }

    let title = format!(
        " {} ({}): latest window ended {}, {} windows ",
        p.name,
        p.pid,
        clock(p.window_end_unix_ms),
        p.windows_total
    );
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(Span::styled(title, t.accent))), area);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_runs_are_joined() {
        assert_eq!(gpu_list(&[3, 0, 1, 2, 5, 7, 6]), "0-3,5-7");
        assert_eq!(gpu_list(&[4]), "4");
        assert_eq!(gpu_list(&[]), UNKNOWN, "no GPU known is not GPU 0");
    }

    #[test]
    fn long_names_are_cut_with_a_mark() {
        assert_eq!(cut("ampere_sgemm_128x64_nn", 10), "ampere_sg…");
        assert_eq!(cut("short", 10), "short");
    }
}
