//! Findings: severity, evidence (observed against threshold) and the advice, newest first; the
//! ones already closed at the time shown stay listed with how long they lasted.

use super::format::{clock, duration_ms};
use crate::state::App;
use gpuscope_core::Severity;
use gpuscope_core::api::FindingRecord;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

fn severity_style(app: &App, s: Severity) -> Style {
    match s {
        Severity::Critical => app.theme.crit,
        Severity::Warning => app.theme.warn,
        Severity::Info => app.theme.accent,
    }
}

fn scope(r: &FindingRecord) -> String {
    let s = &r.finding.scope;
    let mut parts = Vec::new();
    if !s.gpus.is_empty() {
        let g: Vec<String> = s.gpus.iter().map(u32::to_string).collect();
        parts.push(format!("GPU {}", g.join(",")));
    }
    if let Some(j) = &s.job {
        parts.push(format!("job {j}"));
    }
    if parts.is_empty() {
        parts.push("node".into());
    }
    parts.join(" ")
}

/// "open 3m05s" or "closed, lasted 1m10s", as of the time shown.
fn lifetime(app: &App, r: &FindingRecord) -> String {
    let now = app.shown_ms().unwrap_or(r.opened_ms);
    if app.open_at(r) {
        format!("open {}", duration_ms(now.saturating_sub(r.opened_ms)))
    } else {
        let closed = r.closed_ms.unwrap_or(now);
        format!("closed, lasted {}", duration_ms(closed.saturating_sub(r.opened_ms)))
    }
}

/// One entry per signal; a finding over several GPUs gives the range of their values.
fn evidence(r: &FindingRecord) -> String {
    let mut signals: Vec<&str> = Vec::new();
    for e in &r.finding.evidence {
        if !signals.contains(&e.signal.as_str()) {
            signals.push(&e.signal);
        }
    }
    signals
        .iter()
        .map(|sig| {
            let of: Vec<_> = r.finding.evidence.iter().filter(|e| e.signal == *sig).collect();
            let (lo, hi) =
                of.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), e| (l.min(e.value), h.max(e.value)));
            let threshold = of.first().map_or(0.0, |e| e.threshold);
            let gpus = of.iter().filter(|e| e.gpu.is_some()).count();
            let value = if short(lo) == short(hi) { short(lo) } else { format!("{}–{}", short(lo), short(hi)) };
            let over = if gpus > 1 { format!(" on {gpus} GPUs") } else { String::new() };
            format!("{sig} {value}{over} (threshold {})", short(threshold))
        })
        .collect::<Vec<_>>()
        .join(" · ")
}

fn short(v: f64) -> String {
    if v.abs() >= 100.0 || v.fract() == 0.0 { format!("{v:.0}") } else { format!("{v:.2}") }
}

/// The findings panel under the GPU charts: three lines per finding.
pub fn panel(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let list = app.findings_at();
    let mut lines = Vec::new();
    if list.is_empty() {
        lines.push(Line::styled("no findings: every rule's condition is clear", t.dim));
    }
    // The advice is what the panel is for: wrapped to the panel's width, never cut off.
    const ADVICE: &str = "    advice: ";
    let width = usize::from(area.width.saturating_sub(2)).saturating_sub(ADVICE.len()).max(20);
    let mut heights = Vec::with_capacity(list.len());
    for (i, r) in list.iter().enumerate() {
        let open = app.open_at(r);
        let sel = i == app.finding_selected;
        let f = &r.finding;
        let head_style = if open { severity_style(app, f.severity) } else { t.dim };
        let mut head = vec![
            Span::styled(if sel { "▶ " } else { "  " }, t.marked),
            Span::styled(format!("{:<8} ", f.severity.as_str().to_uppercase()), head_style),
            Span::styled(format!("{:<22} ", f.rule), if sel { t.selected } else { head_style }),
            Span::styled(format!("{:<10} {:<22} ", scope(r), lifetime(app, r)), t.dim),
        ];
        head.push(Span::styled(f.summary.clone(), if open { t.text } else { t.dim }));
        lines.push(Line::from(head));
        let before = lines.len();
        if open {
            lines.push(Line::from(vec![Span::styled("    evidence: ", t.dim), Span::styled(evidence(r), t.text)]));
            for (k, part) in wrap(&f.recommendation, width).into_iter().enumerate() {
                let lead = if k == 0 { ADVICE } else { "            " };
                lines.push(Line::from(vec![Span::styled(lead, t.dim), Span::styled(part, t.ok)]));
            }
        }
        heights.push(1 + lines.len() - before);
    }
    // Keep the selected finding on screen when the list is longer than the panel.
    let inner_h = usize::from(area.height.saturating_sub(2));
    let sel_line: usize = heights.iter().take(app.finding_selected).sum();
    let sel_h = heights.get(app.finding_selected).copied().unwrap_or(1);
    let skip = (sel_line + sel_h).saturating_sub(inner_h);
    let title = format!(
        " Findings ({} open, {} closed) ",
        list.iter().filter(|r| app.open_at(r)).count(),
        list.iter().filter(|r| !app.open_at(r)).count()
    );
    let p =
        Paragraph::new(lines).scroll((skip as u16, 0)).block(Block::bordered().title(Span::styled(title, t.accent)));
    frame.render_widget(p, area);
}

/// `text` in lines of at most `width` characters, broken between words (a word longer than a
/// line is cut).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let (len, wlen) = (line.chars().count(), word.chars().count());
        if len > 0 && len + 1 + wlen > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word.chars().take(width).collect::<String>());
    }
    if !line.is_empty() || out.is_empty() {
        out.push(line);
    }
    out
}

/// The findings screen: the list on top, the selected finding in full below.
pub fn draw_view(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let list = app.findings_at();
    let list_h = (list.len() as u16 + 2).clamp(3, area.height / 2);
    let [top, bottom] = Layout::vertical([Constraint::Length(list_h), Constraint::Min(0)]).areas(area);
    let rows: Vec<Line> = if list.is_empty() {
        vec![Line::styled("no findings", t.dim)]
    } else {
        list.iter()
            .enumerate()
            .map(|(i, r)| {
                let open = app.open_at(r);
                let style = if i == app.finding_selected {
                    t.selected
                } else if open {
                    severity_style(app, r.finding.severity)
                } else {
                    t.dim
                };
                Line::styled(
                    format!(
                        "{:<8} {:<24} {:<12} opened {}  {:<24} {}",
                        r.finding.severity.as_str().to_uppercase(),
                        r.finding.rule,
                        scope(r),
                        clock(r.opened_ms),
                        lifetime(app, r),
                        r.finding.summary
                    ),
                    style,
                )
            })
            .collect()
    };
    let skip = (app.finding_selected + 1).saturating_sub(usize::from(list_h.saturating_sub(2)));
    frame.render_widget(
        Paragraph::new(rows)
            .scroll((skip as u16, 0))
            .block(Block::bordered().title(Span::styled(" Findings, newest first ", t.accent))),
        top,
    );
    let Some(r) = app.selected_finding() else {
        frame.render_widget(Block::bordered(), bottom);
        return;
    };
    let f = &r.finding;
    let mut lines = vec![
        Line::from(vec![
            Span::styled(format!("{} ", f.severity.as_str().to_uppercase()), severity_style(app, f.severity)),
            Span::styled(f.summary.clone(), t.text),
        ]),
        Line::from(vec![
            Span::styled("scope ", t.dim),
            Span::styled(scope(r), t.marked),
            Span::styled(
                format!(
                    "   condition since {}   opened {}   {}",
                    clock(f.since_ms),
                    clock(r.opened_ms),
                    lifetime(app, r)
                ),
                t.dim,
            ),
        ]),
        Line::raw(""),
        Line::styled(format!("{:<28} {:>5} {:>12} {:>12}", "EVIDENCE", "GPU", "OBSERVED", "THRESHOLD"), t.dim),
    ];
    for e in &f.evidence {
        let gpu = e.gpu.map_or(String::new(), |g| g.to_string());
        lines.push(Line::styled(
            format!("{:<28} {:>5} {:>12} {:>12}", e.signal, gpu, short(e.value), short(e.threshold)),
            t.text,
        ));
    }
    lines.push(Line::raw(""));
    lines.push(Line::from(vec![Span::styled("advice  ", t.dim), Span::styled(f.recommendation.clone(), t.ok)]));
    if let Some(c) = &f.cause {
        lines.push(Line::from(vec![Span::styled("cause   ", t.dim), Span::styled(c.clone(), t.text)]));
    }
    if let Some(a) = f.action {
        lines.push(Line::from(vec![Span::styled("action  ", t.dim), Span::styled(format!("{a:?}"), t.warn)]));
    }
    if let Some(d) = &f.docs {
        lines.push(Line::from(vec![Span::styled("docs    ", t.dim), Span::styled(d.clone(), t.text)]));
    }
    lines.push(Line::styled("g: pause the charts and tables at the moment it opened", t.dim));
    let title = format!(" {} ", f.rule);
    frame.render_widget(
        Paragraph::new(lines).wrap(Wrap { trim: false }).block(Block::bordered().title(Span::styled(title, t.accent))),
        bottom,
    );
}

#[cfg(test)]
mod wrap_tests {
    use super::wrap;

    #[test]
    fn advice_wraps_between_words_and_keeps_every_word() {
        let text = "Pin host memory (pin_memory=True), copy with non_blocking=True.";
        let lines = wrap(text, 20);
        assert_eq!(lines, vec!["Pin host memory", "(pin_memory=True),", "copy with", "non_blocking=True."]);
        assert!(lines.iter().all(|l| l.chars().count() <= 20));
        assert_eq!(wrap("", 10), vec![String::new()]);
        assert_eq!(wrap("abcdefghijkl", 5), vec!["abcde"], "a word longer than a line is cut");
    }
}
