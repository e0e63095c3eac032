//! State → screen. Drawing reads the [`App`] and never changes it; a frame costs what is on
//! screen, not what is in the history.

mod findings;
pub(crate) mod fleet;
pub mod format;
mod gpus;
mod host;
pub mod kernels;
mod processes;
#[cfg(test)]
mod tests;

use crate::state::{App, SourceHealth, SourceKind, View};
use crate::update::tab_spans;
use format::{clock, duration_ms};
use gpuscope_core::Severity;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

/// Draws the whole screen.
pub fn draw(frame: &mut Frame, app: &App) {
    let area = frame.area();
    let [top, body, bottom] =
        Layout::vertical([Constraint::Length(1), Constraint::Min(0), Constraint::Length(1)]).areas(area);
    frame.render_widget(title_line(app, top.width), top);
    if app.view == View::Fleet {
        fleet::draw(frame, body, app);
    } else if app.history.is_empty() {
        let why = match &app.health {
            SourceHealth::Ok => "waiting for the first sample…".to_string(),
            SourceHealth::Ended(m) | SourceHealth::Failed(m) => m.clone(),
        };
        frame.render_widget(Paragraph::new(why).style(app.theme.dim).block(Block::bordered()), body);
    } else {
        match app.view {
            View::Gpus => gpus::draw(frame, body, app),
            View::Processes => processes::draw(frame, body, app),
            View::Host => host::draw(frame, body, app),
            View::Findings => findings::draw_view(frame, body, app),
            View::Kernels => kernels::draw(frame, body, app),
            View::Fleet => fleet::draw(frame, body, app),
        }
    }
    frame.render_widget(status_line(app), bottom);
    if app.help {
        help(frame, area, app);
    }
    if let Some(c) = &app.confirm {
        let name = if c.signal == 9 { "SIGKILL" } else { "SIGTERM" };
        let text = format!("Send {name} to {} ({})?  y = yes, any other key = no", c.pid, c.name);
        popup(frame, area, app, " Confirm ", vec![Line::from(text)], 60, 3);
    }
}

/// First line: the tabs, the node, live / paused / replay, and the open findings by severity.
fn title_line(app: &App, width: u16) -> Line<'static> {
    let t = &app.theme;
    let mut spans = vec![Span::styled("gpuscope ", t.accent)];
    for (v, key, _, _) in tab_spans(app.fleet.is_some()) {
        let style = if v == app.view { t.selected } else { t.text };
        spans.push(Span::styled(format!(" {key} {} ", v.title()), style));
    }
    let host = match &app.fleet {
        Some(f) if app.view == View::Fleet || f.drilled.is_none() => format!("{} nodes", f.last.nodes.len()),
        _ => app.shown().map_or(String::new(), |s| s.node.hostname.clone()),
    };
    spans.push(Span::styled(format!("  {host}"), t.text));
    let source = match &app.source {
        SourceKind::Local => String::new(),
        SourceKind::Demo { scenario } => format!(" (demo: {scenario})"),
        SourceKind::Replay { file } => format!(" (replay: {file})"),
        SourceKind::Collector { url } => format!(" (collector: {url})"),
    };
    spans.push(Span::styled(source, t.dim));
    let open = match &app.fleet {
        Some(f) if app.view == View::Fleet => f.last.findings.iter().fold([0usize; 3], |mut n, r| {
            n[r.finding.severity as usize] += 1;
            n
        }),
        _ => app.findings_at().into_iter().filter(|r| app.open_at(r)).fold([0usize; 3], |mut n, r| {
            n[r.finding.severity as usize] += 1;
            n
        }),
    };
    let used: usize = spans.iter().map(|s| s.width()).sum();
    let counts = format!(
        " {} crit {} warn {} info ",
        open[Severity::Critical as usize],
        open[Severity::Warning as usize],
        open[Severity::Info as usize]
    );
    if used + counts.len() < usize::from(width) {
        spans.push(Span::raw(" ".repeat(usize::from(width) - used - counts.len())));
        let style = if open[Severity::Critical as usize] > 0 {
            t.crit
        } else if open[Severity::Warning as usize] > 0 {
            t.warn
        } else {
            t.ok
        };
        spans.push(Span::styled(counts, style));
    }
    Line::from(spans)
}

/// Last line: where in time the view is, the source's health, and the last message or key hints.
fn status_line(app: &App) -> Line<'static> {
    let t = &app.theme;
    let mut spans = Vec::new();
    let newest = app.history.latest().map(|s| s.timestamp_ms);
    match (&app.playback, app.cursor_ms, app.shown_ms()) {
        (Some(p), _, Some(at)) => {
            let state = if p.playing { "▶" } else { "❚❚" };
            spans.push(Span::styled(format!(" REPLAY {state} {}x {} ", p.speed, clock(at)), t.accent));
            if let (Some(first), Some(last)) = (app.history.time_at(0), newest) {
                spans.push(Span::styled(
                    format!(
                        "[{} / {}] ",
                        duration_ms(at.saturating_sub(first)),
                        duration_ms(last.saturating_sub(first))
                    ),
                    t.dim,
                ));
            }
        }
        (None, Some(at), _) => {
            let behind = newest.map_or(0, |n| n.saturating_sub(at));
            spans.push(Span::styled(format!(" PAUSED {} (-{}) ", clock(at), duration_ms(behind)), t.warn));
        }
        (None, None, Some(at)) => spans.push(Span::styled(format!(" LIVE {} ", clock(at)), t.ok)),
        _ => spans.push(Span::styled(" LIVE ", t.ok)),
    }
    if let Some(since) = app.fleet.as_ref().and_then(|f| f.down_since_ms) {
        let shown = app.fleet.as_ref().map_or(0, |f| f.last.at_ms);
        let data = if shown > 0 { format!("; showing data from {}", clock(shown)) } else { String::new() };
        spans.push(Span::styled(
            format!(" collector unreachable since {} (retrying every second){data} ", clock(since)),
            t.crit,
        ));
    }
    match &app.health {
        SourceHealth::Failed(_) if app.fleet.is_some() => {}
        SourceHealth::Ok => {}
        SourceHealth::Ended(m) => spans.push(Span::styled(format!(" {m} "), t.warn)),
        SourceHealth::Failed(m) => spans.push(Span::styled(format!(" {m} "), t.crit)),
    }
    let hint = app.message.clone().unwrap_or_else(|| {
        let keys = match (app.view, app.playback.is_some()) {
            (View::Fleet, _) => "↑↓ select  enter open the node  s sort  / filter  ? help  q quit",
            (_, true) => "space play/pause  ←→ step  [ ] 1 min  +/- speed  g finding  ? help  q quit",
            (View::Kernels, false) => "↑↓ select  space pause  ←→ scroll back  ? help  q quit",
            (View::Processes, false) => {
                "s sort  r reverse  t tree  / filter  enter detail  x kill  space pause  ? help  q quit"
            }
            _ => "space pause  ←→ scroll back  g jump to finding  w window  c compact  ? help  q quit",
        };
        keys.to_string()
    });
    spans.push(Span::styled(format!(" {hint}"), t.dim));
    Line::from(spans)
}

/// The key list.
fn help(frame: &mut Frame, area: Rect, app: &App) {
    let rows = [
        ("1-5, Tab", "GPUs, Processes, Host, Findings, Kernels"),
        ("0 / Esc", "fleet mode: back to the node list (Enter opens a node)"),
        ("space / p", "pause or resume (replay: play or pause)"),
        ("← →", "one sample back / forward (pauses a live view)"),
        ("[ ]", "one minute back / forward"),
        ("Home / End", "oldest sample / back to live (replay: its end)"),
        ("g", "jump to when the selected finding opened"),
        ("↑ ↓ / j k", "select a finding, a process or a kernel profile"),
        ("w", "chart window: 1 min, 5 min, 15 min, 1 h"),
        ("c", "compact GPU rows"),
        ("s / r", "next sort column / reverse order (or click a header)"),
        ("t", "process tree: each process under its parent (torchrun)"),
        ("/", "filter processes (Enter keeps, Esc clears)"),
        ("Enter", "process detail with its history (Esc back)"),
        ("x / X", "send SIGTERM / SIGKILL to the process (asks first)"),
        ("+ - / ?", "replay speed / this help (any key closes it)"),
        ("q, Ctrl-C", "quit"),
    ];
    let lines: Vec<Line> = rows
        .iter()
        .map(|(k, v)| {
            Line::from(vec![Span::styled(format!(" {k:<12}"), app.theme.accent), Span::styled(*v, app.theme.text)])
        })
        .collect();
    let h = lines.len() as u16 + 2;
    popup(frame, area, app, " Keys ", lines, 70, h);
}

fn popup(frame: &mut Frame, area: Rect, app: &App, title: &str, lines: Vec<Line>, w: u16, h: u16) {
    let w = w.min(area.width);
    let h = h.min(area.height);
    let r = Rect { x: area.x + (area.width - w) / 2, y: area.y + (area.height - h) / 2, width: w, height: h };
    frame.render_widget(Clear, r);
    let block = Block::bordered().title(Span::styled(title.to_string(), app.theme.accent));
    frame.render_widget(Paragraph::new(lines).block(block).wrap(Wrap { trim: false }), r);
}
