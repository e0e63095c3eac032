//! Input → state changes. Every key, mouse action and piece of data arrives as an [`Input`];
//! [`App::update`] applies it and says whether the loop has something to do outside the state
//! (quit, send a signal).

use crate::state::{App, PendingSignal, ProcessColumn, SourceHealth, View, WINDOWS_S};
use gpuscope_core::NodeSnapshot;
use gpuscope_core::api::FindingEvent;
use ratatui::crossterm::event::{
    Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers, MouseButton, MouseEvent, MouseEventKind,
};
use std::sync::Arc;
use std::time::Duration;

/// Something that happened: terminal input, data from the source, or time passing.
#[derive(Debug, Clone)]
pub enum Input {
    /// A key, a mouse action or a resize.
    Terminal(Event),
    /// A new snapshot of the node.
    Snapshot(Arc<NodeSnapshot>),
    /// A finding opened or closed.
    Finding(Box<FindingEvent>),
    /// The source has no more data (the message says why).
    Ended(String),
    /// The source failed (the message says why); it may recover.
    Failed(String),
    /// Wall time passed (drives a replay).
    Tick(Duration),
    /// The program is stopping (a signal, the end of a timed run): leave the UI.
    Shutdown,
    /// A poll of the collector's fleet.
    Fleet(Box<crate::fleet::FleetUpdate>),
    /// The detail of the node drilled into.
    Node(Box<gpuscope_core::api::NodeDetail>),
    /// A finding opened or closed somewhere in the fleet (the collector's event stream).
    FleetEvent(Box<FindingEvent>),
}

/// What the event loop must do after an update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing beyond redrawing.
    None,
    /// Leave the UI.
    Quit,
    /// Send `signal` to `pid` (the user confirmed).
    Signal {
        /// Target PID.
        pid: u32,
        /// Signal number.
        signal: i32,
    },
    /// Fetch this node's detail on every poll (`None`: back to the fleet list).
    Follow(Option<String>),
}

/// The tabs on the first line, their keys, and the columns each occupies (for mouse clicks);
/// fleet mode adds the fleet list as tab 0.
pub fn tab_spans(fleet: bool) -> Vec<(View, char, u16, u16)> {
    // "gpuscope " then " n Title " per tab.
    let mut x = 9u16;
    let tabs: Vec<(View, char)> = fleet
        .then_some((View::Fleet, '0'))
        .into_iter()
        .chain(View::ALL.iter().zip('1'..='5').map(|(v, k)| (*v, k)))
        .collect();
    tabs.into_iter()
        .map(|(v, k)| {
            let w = v.title().len() as u16 + 4;
            let span = (v, k, x, x + w);
            x += w;
            span
        })
        .collect()
}

/// Row of the process table's header (below the tab line and the block's top border).
pub const PROCESS_HEADER_Y: u16 = 2;

/// Signal numbers for the kill keys.
const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

impl App {
    /// Applies one input.
    pub fn update(&mut self, input: Input) -> Effect {
        match input {
            Input::Snapshot(s) => {
                self.health = SourceHealth::Ok;
                self.history.push(s);
                Effect::None
            }
            Input::Finding(e) => {
                self.apply_finding(*e);
                Effect::None
            }
            Input::Ended(why) => {
                self.health = SourceHealth::Ended(why);
                Effect::None
            }
            Input::Failed(why) => {
                if let Some(f) = self.fleet.as_mut() {
                    f.failed(why.clone(), now_ms());
                }
                self.health = SourceHealth::Failed(why);
                Effect::None
            }
            Input::Fleet(u) => {
                if let Some(f) = self.fleet.as_mut() {
                    f.apply(*u);
                    let n = f.rows().len();
                    f.selected = f.selected.min(n.saturating_sub(1));
                }
                self.health = SourceHealth::Ok;
                Effect::None
            }
            Input::Node(d) => {
                self.apply_node(*d);
                Effect::None
            }
            Input::FleetEvent(e) => {
                if let Some(f) = self.fleet.as_mut() {
                    f.apply_event(&e);
                    let node = e.record().finding.scope.node.clone();
                    if node.is_some() && f.drilled == node {
                        self.apply_finding(*e);
                    }
                }
                Effect::None
            }
            Input::Tick(elapsed) => {
                self.advance_playback(elapsed);
                Effect::None
            }
            Input::Shutdown => Effect::Quit,
            Input::Terminal(Event::Key(k)) if k.kind != KeyEventKind::Release => self.key(k),
            Input::Terminal(Event::Mouse(m)) => self.mouse(m),
            Input::Terminal(Event::Resize(w, h)) => {
                self.size = (w, h);
                Effect::None
            }
            Input::Terminal(_) => Effect::None,
        }
    }

    /// The drilled-in node's detail: its newest snapshot joins the history, and its open
    /// findings replace the ones it no longer reports (closed at its newest sample).
    fn apply_node(&mut self, d: gpuscope_core::api::NodeDetail) {
        if self.fleet.as_ref().and_then(|f| f.drilled.as_deref()) != Some(d.node.node.as_str()) {
            return;
        }
        if d.latest.timestamp_ms > 0 {
            self.history.push(Arc::new(d.latest));
        }
        let now = d.node.last_sample_ms;
        for r in self.findings.iter_mut().filter(|r| r.closed_ms.is_none()) {
            let still =
                d.findings.iter().any(|x| x.finding.rule == r.finding.rule && x.finding.scope == r.finding.scope);
            if !still {
                r.closed_ms = Some(now.max(r.opened_ms));
            }
        }
        for r in d.findings {
            self.apply_finding(FindingEvent::Opened(r));
        }
    }

    fn advance_playback(&mut self, elapsed: Duration) {
        let Some(p) = self.playback.as_mut() else { return };
        if !p.playing {
            return;
        }
        let newest = self.history.latest().map_or(0, |s| s.timestamp_ms);
        p.position_ms = (p.position_ms + (elapsed.as_secs_f64() * 1000.0 * p.speed) as u64).min(newest);
        if p.position_ms >= newest {
            p.playing = false;
        }
        self.cursor_ms = Some(p.position_ms);
    }

    fn key(&mut self, k: KeyEvent) -> Effect {
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && k.code == KeyCode::Char('c') {
            return Effect::Quit;
        }
        if let Some(p) = self.confirm.take() {
            return match k.code {
                KeyCode::Char('y') | KeyCode::Char('Y') => Effect::Signal { pid: p.pid, signal: p.signal },
                _ => {
                    self.message = Some(format!("signal to {} cancelled", p.pid));
                    Effect::None
                }
            };
        }
        if self.processes.editing_filter {
            let fleet_list = self.view == View::Fleet;
            let filter = match self.fleet.as_mut() {
                Some(f) if fleet_list => &mut f.filter,
                _ => &mut self.processes.filter,
            };
            match k.code {
                KeyCode::Enter => self.processes.editing_filter = false,
                KeyCode::Esc => {
                    self.processes.editing_filter = false;
                    filter.clear();
                }
                KeyCode::Backspace => {
                    filter.pop();
                }
                KeyCode::Char(c) => {
                    filter.push(c);
                    self.processes.selected = 0;
                    if let Some(f) = self.fleet.as_mut() {
                        f.selected = 0;
                    }
                }
                _ => {}
            }
            return Effect::None;
        }
        if self.view == View::Fleet && self.fleet.is_some() {
            match k.code {
                KeyCode::Up | KeyCode::Char('k') => self.move_fleet(-1),
                KeyCode::Down | KeyCode::Char('j') => self.move_fleet(1),
                KeyCode::Enter => return self.drill_in(),
                KeyCode::Char('s') => {
                    if let Some(f) = self.fleet.as_mut() {
                        f.sort = (f.sort + 1) % crate::fleet::SORTS.len();
                        self.message = Some(format!("nodes sorted by {}", crate::fleet::SORTS[f.sort]));
                    }
                }
                KeyCode::Char('/') => self.processes.editing_filter = true,
                KeyCode::Char('q') => return Effect::Quit,
                KeyCode::Char('?') => self.help = true,
                KeyCode::Char(c @ '1'..='5') if self.fleet.as_ref().is_some_and(|f| f.drilled.is_some()) => {
                    self.view = View::ALL[(c as usize) - ('1' as usize)];
                }
                _ => {}
            }
            return Effect::None;
        }
        if self.help {
            // Any key closes the help; q still quits.
            self.help = false;
            return if k.code == KeyCode::Char('q') { Effect::Quit } else { Effect::None };
        }
        match k.code {
            KeyCode::Char('q') => return Effect::Quit,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Esc | KeyCode::Char('0') if self.fleet.is_some() && self.process_detail.is_none() => {
                return self.back_to_fleet();
            }
            KeyCode::Esc => {
                self.process_detail = None;
                self.message = None;
            }
            KeyCode::Char(c @ '1'..='5') => self.open_view(View::ALL[(c as usize) - ('1' as usize)]),
            KeyCode::Tab => self.cycle_view(1),
            KeyCode::BackTab => self.cycle_view(View::ALL.len() - 1),
            KeyCode::Char(' ') | KeyCode::Char('p') => self.toggle_pause(),
            KeyCode::Left => self.step(-1),
            KeyCode::Right => self.step(1),
            KeyCode::Char('[') => self.seek_by(-60_000),
            KeyCode::Char(']') => self.seek_by(60_000),
            KeyCode::Home => self.seek_to(self.history.time_at(0)),
            KeyCode::End => self.resume(),
            KeyCode::Char('w') => self.window = (self.window + 1) % WINDOWS_S.len(),
            KeyCode::Char('c') => self.compact = !self.compact,
            KeyCode::Up | KeyCode::Char('k') => self.move_selection(-1),
            KeyCode::Down | KeyCode::Char('j') => self.move_selection(1),
            KeyCode::Char('s') => self.next_sort(),
            KeyCode::Char('r') => self.processes.descending = !self.processes.descending,
            KeyCode::Char('t') => self.processes.tree = !self.processes.tree,
            KeyCode::Char('/') => {
                self.view = View::Processes;
                self.processes.editing_filter = true;
            }
            KeyCode::Enter if self.view == View::Processes => {
                self.process_detail = self.selected_process().map(|(pid, _)| pid);
            }
            KeyCode::Char('g') => self.jump_to_finding(),
            KeyCode::Char('x') => self.ask_signal(SIGTERM),
            KeyCode::Char('X') => self.ask_signal(SIGKILL),
            KeyCode::Char('+') => self.set_speed(2.0),
            KeyCode::Char('-') => self.set_speed(0.5),
            _ => {}
        }
        Effect::None
    }

    fn move_fleet(&mut self, by: isize) {
        if let Some(f) = self.fleet.as_mut() {
            let n = f.rows().len();
            f.selected = f.selected.saturating_add_signed(by).min(n.saturating_sub(1));
        }
    }

    /// Opens the selected node with the node panels, fed from the collector.
    fn drill_in(&mut self) -> Effect {
        let Some(f) = self.fleet.as_mut() else { return Effect::None };
        let Some(row) = f.rows().into_iter().nth(f.selected) else { return Effect::None };
        f.drilled = Some(row.node.clone());
        self.history = crate::state::History::new(crate::state::DEFAULT_HISTORY_MS);
        self.findings.clear();
        self.cursor_ms = None;
        self.finding_selected = 0;
        self.processes.selected = 0;
        self.view = View::Gpus;
        self.message = Some(format!("{}: Esc or 0 back to the fleet", row.node));
        Effect::Follow(Some(row.node))
    }

    fn back_to_fleet(&mut self) -> Effect {
        if let Some(f) = self.fleet.as_mut() {
            f.drilled = None;
        }
        self.view = View::Fleet;
        self.message = None;
        Effect::Follow(None)
    }

    fn cycle_view(&mut self, by: usize) {
        let i = View::ALL.iter().position(|v| *v == self.view).unwrap_or(0);
        self.open_view(View::ALL[(i + by) % View::ALL.len()]);
    }

    /// Switches screens; the kernels screen opens on the process selected in the process list
    /// (or whose detail is open) when that process is profiled.
    fn open_view(&mut self, v: View) {
        if v == View::Kernels && self.view == View::Processes {
            let pid = self.process_detail.or_else(|| self.selected_process().map(|(pid, _)| pid));
            if let Some(pid) = pid.filter(|pid| self.kernel_profiles().iter().any(|p| p.pid == *pid)) {
                self.kernel_pid = Some(pid);
            }
        }
        self.view = v;
        self.process_detail = None;
    }

    fn toggle_pause(&mut self) {
        if let Some(p) = self.playback.as_mut() {
            p.playing = !p.playing;
            return;
        }
        if self.cursor_ms.is_some() {
            self.cursor_ms = None;
        } else {
            self.cursor_ms = self.history.latest().map(|s| s.timestamp_ms);
        }
    }

    /// Back to live (or, in a replay, to the end of the recording).
    fn resume(&mut self) {
        if self.playback.is_some() {
            self.seek_to(self.history.latest().map(|s| s.timestamp_ms));
        } else {
            self.cursor_ms = None;
        }
    }

    /// Moves the cursor by `by` samples, pausing a live view first.
    fn step(&mut self, by: isize) {
        let Some(i) = self.shown_index() else { return };
        let j = i.saturating_add_signed(by).min(self.history.len().saturating_sub(1));
        self.seek_to(self.history.time_at(j));
    }

    fn seek_by(&mut self, ms: i64) {
        let Some(t) = self.shown_ms() else { return };
        self.seek_to(Some(t.saturating_add_signed(ms)));
    }

    /// Shows the values at `ms` (clamped to the history), paused.
    pub fn seek_to(&mut self, ms: Option<u64>) {
        let (Some(ms), Some(first), Some(last)) = (ms, self.history.time_at(0), self.history.latest()) else { return };
        let ms = ms.clamp(first, last.timestamp_ms);
        if let Some(p) = self.playback.as_mut() {
            p.position_ms = ms;
        }
        // Seeking to the newest sample of a live view still pauses it: new data would otherwise
        // move what the user is reading.
        self.cursor_ms = Some(ms);
    }

    fn move_selection(&mut self, by: isize) {
        match self.view {
            View::Processes => {
                let n = self.visible_process_count();
                self.processes.selected = self.processes.selected.saturating_add_signed(by).min(n.saturating_sub(1));
            }
            View::Gpus | View::Findings => {
                let n = self.findings_at().len();
                self.finding_selected = self.finding_selected.saturating_add_signed(by).min(n.saturating_sub(1));
            }
            View::Kernels => {
                let profiles = self.kernel_profiles();
                let i = self.kernel_selected(&profiles).saturating_add_signed(by).min(profiles.len().saturating_sub(1));
                self.kernel_pid = profiles.get(i).map(|p| p.pid);
            }
            View::Fleet => self.move_fleet(by),
            View::Host => {}
        }
    }

    fn next_sort(&mut self) {
        let i = ProcessColumn::ALL.iter().position(|c| *c == self.processes.sort).unwrap_or(0);
        self.sort_by(ProcessColumn::ALL[(i + 1) % ProcessColumn::ALL.len()]);
    }

    /// Sorts by `c`; the same column again reverses the order.
    pub fn sort_by(&mut self, c: ProcessColumn) {
        if self.processes.sort == c {
            self.processes.descending = !self.processes.descending;
        } else {
            self.processes.sort = c;
            // Names read best A→Z, numbers largest first.
            self.processes.descending = !matches!(
                c,
                ProcessColumn::Name
                    | ProcessColumn::User
                    | ProcessColumn::Place
                    | ProcessColumn::Class
                    | ProcessColumn::Pid
                    | ProcessColumn::Gpus
            );
        }
        self.message = Some(format!("sorted by {}", c.title()));
    }

    fn visible_process_count(&self) -> usize {
        self.process_rows().len()
    }

    /// The selected process's PID and name.
    pub fn selected_process(&self) -> Option<(u32, String)> {
        self.process_rows().get(self.processes.selected).map(|r| (r.pid, r.name.clone()))
    }

    fn jump_to_finding(&mut self) {
        let Some(opened) = self.selected_finding().map(|r| r.opened_ms) else {
            self.message = Some("no finding selected".into());
            return;
        };
        let rule = self.selected_finding().map(|r| r.finding.rule.clone()).unwrap_or_default();
        self.seek_to(Some(opened));
        if let Some(p) = self.playback.as_mut() {
            p.playing = false;
        }
        // The list is judged at the new time: keep the same finding selected.
        self.finding_selected =
            self.findings_at().iter().position(|r| r.finding.rule == rule && r.opened_ms == opened).unwrap_or(0);
        self.message = Some(format!("paused where {rule} opened"));
    }

    fn ask_signal(&mut self, signal: i32) {
        if self.view != View::Processes {
            return;
        }
        if self.readonly {
            self.message = Some("read-only: signals are disabled".into());
            return;
        }
        if self.paused() {
            self.message = Some("signals go to live processes only: resume first (End)".into());
            return;
        }
        if let Some((pid, name)) = self.selected_process() {
            self.confirm = Some(PendingSignal { pid, name, signal });
        }
    }

    fn set_speed(&mut self, factor: f64) {
        if let Some(p) = self.playback.as_mut() {
            p.speed = (p.speed * factor).clamp(0.25, 256.0);
            self.message = Some(format!("replay speed {}x", p.speed));
        }
    }

    fn mouse(&mut self, m: MouseEvent) -> Effect {
        match m.kind {
            MouseEventKind::ScrollUp => self.move_selection(-1),
            MouseEventKind::ScrollDown => self.move_selection(1),
            MouseEventKind::Down(MouseButton::Left) => {
                if m.row == 0 {
                    let tabs = tab_spans(self.fleet.is_some());
                    if let Some((_, key, _, _)) = tabs.into_iter().find(|(_, _, a, b)| (*a..*b).contains(&m.column)) {
                        return self.key(KeyEvent::new(KeyCode::Char(key), KeyModifiers::NONE));
                    }
                } else if self.view == View::Fleet && m.row == PROCESS_HEADER_Y {
                    if let (Some(s), Some(f)) =
                        (crate::draw::fleet::sort_at(m.column.saturating_sub(1)), self.fleet.as_mut())
                    {
                        f.sort = s;
                        self.message = Some(format!("nodes sorted by {}", crate::fleet::SORTS[s]));
                    }
                } else if self.view == View::Processes && self.process_detail.is_none() {
                    if m.row == PROCESS_HEADER_Y {
                        if let Some(c) = ProcessColumn::at_x(m.column.saturating_sub(1), self.size.0.saturating_sub(2))
                        {
                            self.sort_by(c);
                        }
                    } else if m.row > PROCESS_HEADER_Y {
                        let i = usize::from(m.row - PROCESS_HEADER_Y - 1);
                        if i < self.visible_process_count() {
                            self.processes.selected = i;
                        }
                    }
                }
            }
            _ => {}
        }
        Effect::None
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::state::{Playback, SourceKind};
    use crate::theme::Theme;
    use gpuscope_core::ProcessSample;

    fn key(c: KeyCode) -> Input {
        Input::Terminal(Event::Key(KeyEvent::new(c, KeyModifiers::NONE)))
    }

    fn app_with(n: u64) -> App {
        let mut app = App::new(SourceKind::Local, Theme::plain());
        for s in 0..n {
            let p = |pid| ProcessSample { pid, name: format!("p{pid}"), ..ProcessSample::default() };
            app.update(Input::Snapshot(Arc::new(NodeSnapshot {
                timestamp_ms: s * 1000,
                processes: vec![p(10), p(20), p(30)],
                ..NodeSnapshot::default()
            })));
        }
        app
    }

    #[test]
    fn pause_freezes_the_view_while_data_keeps_arriving() {
        let mut app = app_with(5);
        app.update(key(KeyCode::Char(' ')));
        assert_eq!(app.shown_ms(), Some(4000));
        app.update(Input::Snapshot(Arc::new(NodeSnapshot { timestamp_ms: 5000, ..NodeSnapshot::default() })));
        assert_eq!(app.shown_ms(), Some(4000), "still at the pause");
        app.update(key(KeyCode::Left));
        app.update(key(KeyCode::Left));
        assert_eq!(app.shown_ms(), Some(2000));
        app.update(key(KeyCode::Char('[')));
        assert_eq!(app.shown_ms(), Some(0), "clamped to the oldest sample");
        app.update(key(KeyCode::End));
        assert_eq!(app.shown_ms(), Some(5000));
        assert!(!app.paused());
    }

    #[test]
    fn left_arrow_on_a_live_view_pauses_one_sample_back() {
        let mut app = app_with(5);
        app.update(key(KeyCode::Left));
        assert_eq!(app.cursor_ms, Some(3000));
    }

    #[test]
    fn signals_need_a_yes_and_are_refused_read_only() {
        let mut app = app_with(2);
        app.update(key(KeyCode::Char('2')));
        app.update(key(KeyCode::Char('s')));
        assert_eq!(app.processes.sort, ProcessColumn::Sm);
        app.processes.sort = ProcessColumn::Pid;
        app.processes.descending = false;
        app.update(key(KeyCode::Down));
        assert_eq!(app.update(key(KeyCode::Char('x'))), Effect::None);
        assert_eq!(app.confirm.as_ref().map(|c| c.pid), Some(20));
        assert_eq!(app.update(key(KeyCode::Char('y'))), Effect::Signal { pid: 20, signal: 15 });
        app.update(key(KeyCode::Char('X')));
        assert_eq!(app.update(key(KeyCode::Char('n'))), Effect::None, "anything but y cancels");
        app.readonly = true;
        app.update(key(KeyCode::Char('x')));
        assert!(app.confirm.is_none());
        assert_eq!(app.message.as_deref(), Some("read-only: signals are disabled"));
    }

    #[test]
    fn the_filter_line_takes_the_keys_until_enter() {
        let mut app = app_with(1);
        for c in ['/', 'p', '3', 'q'] {
            app.update(key(KeyCode::Char(c)));
        }
        assert_eq!(app.processes.filter, "p3q", "q is text while filtering");
        app.update(key(KeyCode::Backspace));
        app.update(key(KeyCode::Enter));
        assert_eq!(app.visible_process_count(), 1);
        assert_eq!(app.update(key(KeyCode::Char('q'))), Effect::Quit);
    }

    #[test]
    fn a_click_on_a_header_sorts_and_on_a_tab_switches() {
        let mut app = app_with(1);
        let click = |col, row| {
            Input::Terminal(Event::Mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column: col,
                row,
                modifiers: KeyModifiers::NONE,
            }))
        };
        let (_, _, x, _) = tab_spans(false)[1];
        app.update(click(x + 1, 0));
        assert_eq!(app.view, View::Processes);
        app.update(click(2, PROCESS_HEADER_Y));
        assert_eq!(app.processes.sort, ProcessColumn::Pid);
        app.update(click(2, PROCESS_HEADER_Y + 3));
        assert_eq!(app.processes.selected, 2);
    }

    #[test]
    fn a_replay_advances_with_time_at_its_speed_and_stops_at_the_end() {
        let mut app = app_with(10);
        app.playback = Some(Playback { speed: 1.0, playing: true, position_ms: 0 });
        app.update(key(KeyCode::Char('+')));
        app.update(Input::Tick(Duration::from_millis(1500)));
        assert_eq!(app.shown_ms(), Some(3000));
        app.update(Input::Tick(Duration::from_secs(60)));
        assert_eq!(app.shown_ms(), Some(9000));
        assert!(!app.playback.as_ref().unwrap().playing);
    }
}
