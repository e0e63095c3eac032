//! The host screen: CPU per core (busy and iowait), memory, NICs against their link speed, NVMe.

use super::format::{UNKNOWN, bar, bytes, pct, rate};
use crate::state::App;
use gpuscope_core::HostSample;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

/// Cells per core in the CPU grid: `c12  ████▌  45% io  3%`.
const CORE_W: u16 = 25;
/// Cells per core when the wide grid does not fit: `c12   45%/3%`.
const NARROW_CORE_W: u16 = 15;

pub fn draw(frame: &mut Frame, area: Rect, app: &App) {
    let t = &app.theme;
    let snap = app.shown();
    let Some(host) = snap.as_ref().and_then(|s| s.host.as_ref()) else {
        frame.render_widget(
            Paragraph::new("no host reading yet (the host samplers have not answered)")
                .style(t.dim)
                .block(Block::bordered()),
            area,
        );
        return;
    };
    let nic_h = host.nics.len() as u16 + 3;
    let disk_h = host.disks.len() as u16 + 3;
    // Wide cells with bars when the cores fit, narrow number-only cells on big hosts.
    let room = area.height.saturating_sub(nic_h + disk_h + 3 + 3);
    let cores = host.cpus.len() as u16;
    let wide = cores.div_ceil((area.width.saturating_sub(2) / CORE_W).max(1)) <= room;
    let per_row = (area.width.saturating_sub(2) / if wide { CORE_W } else { NARROW_CORE_W }).max(1);
    let core_rows = cores.div_ceil(per_row);
    let [cpu_area, mem_area, nic_area, disk_area] = Layout::vertical([
        Constraint::Length(core_rows + 3),
        Constraint::Length(3),
        Constraint::Length(nic_h),
        Constraint::Length(disk_h),
    ])
    .areas(area);
    cpus(frame, cpu_area, app, host, per_row, wide);
    memory(frame, mem_area, app, host);
    nics(frame, nic_area, app, host);
    disks(frame, disk_area, app, host);
}

fn cpus(frame: &mut Frame, area: Rect, app: &App, host: &HostSample, per_row: u16, wide: bool) {
    let t = &app.theme;
    let mut lines = vec![Line::from(vec![
        Span::styled("all cores  busy ", t.dim),
        Span::styled(pct(host.cpu_busy_ratio), t.text),
        Span::styled("  iowait ", t.dim),
        Span::styled(pct(host.cpu_iowait_ratio), t.text),
        Span::styled("  steal ", t.dim),
        Span::styled(pct(host.cpu_steal_ratio), t.text),
        Span::styled("  load1 ", t.dim),
        Span::styled(host.load1.map_or(UNKNOWN.into(), |l| format!("{l:.2}")), t.text),
    ])];
    for chunk in host.cpus.chunks(usize::from(per_row)) {
        let mut spans = Vec::new();
        for c in chunk {
            let io_high = c.iowait_ratio.is_some_and(|x| x >= 0.2);
            spans.push(Span::styled(format!("c{:<4}", c.cpu), t.dim));
            if wide {
                spans.push(Span::styled(bar(c.busy_ratio, 6), t.ok));
            }
            spans.push(Span::styled(format!("{:>4}", pct(c.busy_ratio)), t.text));
            let io =
                if wide { format!(" io{:>4}  ", pct(c.iowait_ratio)) } else { format!("/{:<4} ", pct(c.iowait_ratio)) };
            spans.push(Span::styled(io, if io_high { t.warn } else { t.dim }));
        }
        lines.push(Line::from(spans));
    }
    let title = format!(" CPU ({} cores: busy / iowait) ", host.cpus.len());
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(Span::styled(title, t.accent))), area);
}

fn memory(frame: &mut Frame, area: Rect, app: &App, host: &HostSample) {
    let t = &app.theme;
    let used = match (host.memory_total_bytes, host.memory_available_bytes) {
        (Some(total), Some(avail)) => Some(total.saturating_sub(avail)),
        _ => None,
    };
    let ratio = match (used, host.memory_total_bytes) {
        (Some(u), Some(tot)) if tot > 0 => Some(u as f64 / tot as f64),
        _ => None,
    };
    let line = Line::from(vec![
        Span::styled("used ", t.dim),
        Span::styled(bar(ratio, 30), t.ok),
        Span::styled(format!(" {} of {} ({})", bytes(used), bytes(host.memory_total_bytes), pct(ratio)), t.text),
    ]);
    frame.render_widget(Paragraph::new(line).block(Block::bordered().title(Span::styled(" Memory ", t.accent))), area);
}

fn nics(frame: &mut Frame, area: Rect, app: &App, host: &HostSample) {
    let t = &app.theme;
    let mut lines = vec![Line::styled(
        format!("{:<14} {:<11} {:>10} {:>10} {:>10}  {:<12}", "NAME", "KIND", "RX", "TX", "LINK", "RX+TX OF LINK"),
        t.dim,
    )];
    for n in &host.nics {
        let share = match (n.rx_bytes_per_second, n.tx_bytes_per_second, n.speed_bytes_per_second) {
            (Some(rx), Some(tx), Some(s)) if s > 0.0 => Some(rx.max(tx) / s),
            _ => None,
        };
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    "{:<14} {:<11} {:>10} {:>10} {:>10}  ",
                    n.name,
                    n.kind.as_str(),
                    rate(n.rx_bytes_per_second),
                    rate(n.tx_bytes_per_second),
                    rate(n.speed_bytes_per_second)
                ),
                t.text,
            ),
            Span::styled(bar(share, 10), t.ok),
            Span::styled(format!(" {}", pct(share)), t.text),
        ]));
    }
    frame
        .render_widget(Paragraph::new(lines).block(Block::bordered().title(Span::styled(" Network ", t.accent))), area);
}

fn disks(frame: &mut Frame, area: Rect, app: &App, host: &HostSample) {
    let t = &app.theme;
    let mut lines = vec![Line::styled(
        format!("{:<12} {:<24} {:>10} {:>10}  {:<12}", "NAME", "MODEL", "READ", "WRITE", "BUSY"),
        t.dim,
    )];
    for d in &host.disks {
        lines.push(Line::from(vec![
            Span::styled(
                format!(
                    "{:<12} {:<24} {:>10} {:>10}  ",
                    d.name,
                    d.model.as_deref().unwrap_or(UNKNOWN).chars().take(24).collect::<String>(),
                    rate(d.read_bytes_per_second),
                    rate(d.write_bytes_per_second)
                ),
                t.text,
            ),
            Span::styled(bar(d.busy_ratio, 10), t.ok),
            Span::styled(format!(" {}", pct(d.busy_ratio)), t.text),
        ]));
    }
    frame.render_widget(Paragraph::new(lines).block(Block::bordered().title(Span::styled(" NVMe ", t.accent))), area);
}
