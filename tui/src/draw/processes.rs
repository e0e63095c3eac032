//! The process screen: one row per process (its GPUs merged), sortable and filterable, and the
//! detail of one process with its own history.

use super::format::{UNKNOWN, bytes, num, pct};
use crate::state::{App, ProcessColumn, ProcessRow, process_rows};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Sparkline};

fn cell(c: ProcessColumn, r: &ProcessRow, table_w: u16) -> String {
    let w = usize::from(c.width(table_w));
    let text = match c {
        ProcessColumn::Pid => r.pid.to_string(),
        ProcessColumn::User => r.user.clone().unwrap_or_else(|| UNKNOWN.into()),
        ProcessColumn::Place => r.place.clone().unwrap_or_else(|| UNKNOWN.into()),
        ProcessColumn::Class => r.workload.map_or(UNKNOWN.into(), |w| w.as_str().to_string()),
        ProcessColumn::Gpus => r.gpus.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
        ProcessColumn::Memory => bytes(r.gpu_memory_bytes),
        ProcessColumn::Sm => pct(r.sm_ratio),
        ProcessColumn::Cpu => num(r.cpu_cores, 100.0, 0, "%"),
        ProcessColumn::Rss => bytes(r.rss_bytes),
        ProcessColumn::Name => format!("{}{}", r.tree_prefix, r.name),
    };
    let text: String = text.chars().take(w).collect();
    match c {
        ProcessColumn::Pid | ProcessColumn::Memory | ProcessColumn::Sm | ProcessColumn::Cpu | ProcessColumn::Rss => {
            format!("{text:>w$}")
        }
        _ => format!("{text:<w$}"),
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    if let Some(pid) = app.process_detail {
        return detail(frame, area, app, pid);
    }
    let t = &app.theme;
    let rows = app.process_rows();
    let table_w = area.width.saturating_sub(2);
    let mut header = Vec::new();
    for c in ProcessColumn::ALL {
        let arrow = if c == app.processes.sort { if app.processes.descending { "▼" } else { "▲" } } else { "" };
        let w = usize::from(c.width(table_w));
        let title = format!("{}{arrow}", c.title());
        let style = if c == app.processes.sort { t.accent } else { t.dim };
        header.push(Span::styled(format!("{title:<w$} "), style));
    }
    let mut lines = vec![Line::from(header)];
    let visible = usize::from(area.height.saturating_sub(3));
    // A selection past the end (the list shrank with new data) must not scroll every row away.
    let skip = (app.processes.selected.min(rows.len().saturating_sub(1)) + 1).saturating_sub(visible);
    // The processes on the GPUs of the finding selected (on the GPU or findings screen).
    let marked: Vec<u32> = app.selected_finding().map(|f| f.finding.scope.gpus.clone()).unwrap_or_default();
    for (i, r) in rows.iter().enumerate().skip(skip).take(visible) {
        let text: Vec<String> = ProcessColumn::ALL.iter().map(|c| cell(*c, r, table_w)).collect();
        let style = if i == app.processes.selected {
            t.selected
        } else if r.launcher {
            t.dim
        } else if r.gpus.iter().any(|g| marked.contains(g)) {
            t.marked
        } else {
            t.text
        };
        lines.push(Line::styled(text.join(" "), style));
    }
    if rows.is_empty() {
        lines.push(Line::styled(
            if app.processes.filter.is_empty() { "no GPU processes" } else { "no process matches the filter" },
            t.dim,
        ));
    }
    let filter = if app.processes.editing_filter {
        format!("  filter: {}▏", app.processes.filter)
    } else if !app.processes.filter.is_empty() {
        format!("  filter: {}", app.processes.filter)
    } else {
        String::new()
    };
    let count = rows.iter().filter(|r| !r.launcher).count();
    let tree = if app.processes.tree { " tree" } else { "" };
    let title = format!(" Processes ({count}){tree}{filter} ");
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(Span::styled(title, t.accent))), area);
}

/// One process: what it is, what it holds now, and its SM share and GPU memory over the window.
fn detail(frame: &mut Frame, area: Rect, app: &App, pid: u32) {
    let t = &app.theme;
    let Some(snap) = app.shown() else { return };
    let rows = process_rows(&snap, app.before_shown().as_deref(), app.speed);
    let row = rows.iter().find(|r| r.pid == pid);
    let [info, sm_area, mem_area] =
        Layout::vertical([Constraint::Length(7), Constraint::Min(3), Constraint::Min(3)]).areas(area);
    let profile = snap.kernel_profiles.iter().find(|p| p.pid == pid);
    let lines = match row {
        Some(r) => vec![
            Line::from(vec![
                Span::styled("name  ", t.dim),
                Span::styled(r.name.clone(), t.text),
                Span::styled("   parent  ", t.dim),
                Span::styled(
                    match (r.ppid, &r.parent_name) {
                        (Some(pp), Some(n)) => format!("{n} ({pp})"),
                        (Some(pp), None) => pp.to_string(),
                        _ => UNKNOWN.into(),
                    },
                    t.text,
                ),
            ]),
            Line::from(vec![
                Span::styled("user  ", t.dim),
                Span::styled(r.user.clone().unwrap_or_else(|| UNKNOWN.into()), t.text),
                Span::styled("   container / pod  ", t.dim),
                Span::styled(r.place.clone().unwrap_or_else(|| UNKNOWN.into()), t.text),
                Span::styled("   workload  ", t.dim),
                Span::styled(r.workload.map_or(UNKNOWN.into(), |w| w.as_str().to_string()), t.text),
            ]),
            Line::from(vec![
                Span::styled("GPUs  ", t.dim),
                Span::styled(cell(ProcessColumn::Gpus, r, area.width).trim().to_string(), t.text),
                Span::styled("   GPU memory ", t.dim),
                Span::styled(bytes(r.gpu_memory_bytes), t.text),
                Span::styled("   SM ", t.dim),
                Span::styled(pct(r.sm_ratio), t.text),
                Span::styled("   CPU ", t.dim),
                Span::styled(num(r.cpu_cores, 100.0, 0, "%"), t.text),
                Span::styled("   RSS ", t.dim),
                Span::styled(bytes(r.rss_bytes), t.text),
            ]),
            Line::from(vec![
                Span::styled("kernels  ", t.dim),
                Span::styled(super::kernels::brief(profile), if profile.is_some() { t.text } else { t.dim }),
            ]),
            Line::styled("Esc: back to the list", t.dim),
        ],
        None => vec![Line::styled(format!("process {pid} holds no GPU at the time shown"), t.warn)],
    };
    let title = format!(" Process {pid} ");
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(Span::styled(title, t.accent))), info);
    let Some(end) = app.shown_ms() else { return };
    let window: Vec<_> = app.history.window(end, app.window_ms()).collect();
    let cells = usize::from(sm_area.width.saturating_sub(2)).max(1);
    let series = |f: &dyn Fn(&crate::state::ProcessThin) -> Option<f64>| -> Vec<Option<u64>> {
        super::gpus::buckets(&window, end, app.window_ms(), cells, |t| {
            t.processes.iter().find(|p| p.pid == pid).and_then(f).map(|v| v / 100.0)
        })
    };
    let sm = series(&|p| p.sm.map(|x| f64::from(x) * 100.0));
    let mem = series(&|p| p.gpu_memory_mib.map(f64::from));
    let span = super::format::duration_ms(app.window_ms());
    frame.render_widget(
        Sparkline::default()
            .data(&sm)
            .max(100)
            .absent_value_symbol(" ")
            .style(t.accent)
            .block(Block::bordered().title(Span::styled(format!(" SM % over {span} "), t.accent))),
        sm_area,
    );
    let peak = mem.iter().flatten().copied().max().unwrap_or(0);
    frame.render_widget(
        Sparkline::default().data(&mem).absent_value_symbol(" ").style(t.ok).block(
            Block::bordered().title(Span::styled(format!(" GPU memory over {span} (peak {peak} MiB) "), t.accent)),
        ),
        mem_area,
    );
}
