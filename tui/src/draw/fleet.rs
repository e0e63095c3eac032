//! The fleet list: one row per node, grouped by job (straggler marked), with health, GPUs,
//! mean SM activity, power and open findings by severity.

use super::format::{UNKNOWN, num, pct};
use crate::state::App;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

/// The sort (an index into `fleet::SORTS`) a click at `x` on the header line asks for, `x`
/// counted from the table's left edge inside its border: SM ACTIVE, POWER W, the finding counts,
/// and JOB (grouped by job); the other columns have no order of their own.
pub fn sort_at(x: u16) -> Option<usize> {
    // The header's layout: "  " NODE(24) " " HEALTH(8) " " GPUS(4) " " SM ACTIVE(9) " "
    // POWER W(9) "  " CRIT(4) " " WARN(4) " " INFO(4) "  " JOB.
    match x {
        41..=50 => Some(1),
        51..=60 => Some(2),
        61..=76 => Some(3),
        77.. => Some(0),
        _ => None,
    }
}

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let Some(fleet) = &app.fleet else { return };
    let rows = fleet.rows();
    let mut lines = vec![Line::styled(
        format!(
            "  {:<24} {:<8} {:>4} {:>9} {:>9}  {:>4} {:>4} {:>4}  {:<20}",
            "NODE", "HEALTH", "GPUS", "SM ACTIVE", "POWER W", "CRIT", "WARN", "INFO", "JOB"
        ),
        t.dim,
    )];
    let visible = usize::from(area.height.saturating_sub(3));
    let mut body: Vec<(Option<usize>, Line)> = Vec::new();
    let mut current_job: Option<Option<String>> = None;
    let grouped = fleet.sort == 0;
    for (i, r) in rows.iter().enumerate() {
        if grouped && current_job.as_ref() != Some(&r.job) {
            let members = rows.iter().filter(|x| x.job == r.job).count();
            let title = match &r.job {
                Some(j) => format!("job {j} — {members} node(s)"),
                None => format!("no job — {members} node(s)"),
            };
            body.push((None, Line::styled(title, t.accent)));
            current_job = Some(r.job.clone());
        }
        let (health, hstyle) = if fleet.down_since_ms.is_some() {
            ("unknown", t.dim)
        } else if r.stale {
            ("STALE", t.warn)
        } else if r.findings[2] > 0 {
            ("CRIT", t.crit)
        } else if r.findings[1] > 0 {
            ("WARN", t.warn)
        } else {
            ("ok", t.ok)
        };
        let style = if i == fleet.selected { t.selected } else { t.text };
        let count = |n: usize| if n == 0 { "·".to_string() } else { n.to_string() };
        let mut spans = vec![
            Span::styled(format!("  {:<24} ", r.node.chars().take(24).collect::<String>()), style),
            Span::styled(format!("{health:<8} "), hstyle),
            Span::styled(
                format!(
                    "{:>4} {:>9} {:>9}  {:>4} {:>4} {:>4}  {:<20}",
                    r.gpus,
                    pct(r.sm_active),
                    num(r.power_watts, 1.0, 0, ""),
                    count(r.findings[2]),
                    count(r.findings[1]),
                    count(r.findings[0]),
                    r.job.as_deref().unwrap_or(UNKNOWN)
                ),
                style,
            ),
        ];
        if r.straggler {
            spans.push(Span::styled(" ◀ straggler", t.crit));
        }
        body.push((Some(i), Line::from(spans)));
    }
    if rows.is_empty() {
        let why = if fleet.last.at_ms == 0 {
            "waiting for the collector…"
        } else if fleet.filter.is_empty() {
            "the collector knows no node yet"
        } else {
            "no node matches the filter"
        };
        body.push((None, Line::styled(why, t.dim)));
    }
    let sel_line = body.iter().position(|(i, _)| *i == Some(fleet.selected)).unwrap_or(0);
    let skip = (sel_line + 1).saturating_sub(visible);
    lines.extend(body.into_iter().skip(skip).take(visible).map(|(_, l)| l));
    let filter = if app.processes.editing_filter {
        format!("  filter: {}▏", fleet.filter)
    } else if !fleet.filter.is_empty() {
        format!("  filter: {}", fleet.filter)
    } else {
        String::new()
    };
    let title = format!(" Nodes ({}) by {}{filter} ", rows.len(), crate::fleet::SORTS[fleet.sort]);
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(Span::styled(title, t.accent))), area);
}
