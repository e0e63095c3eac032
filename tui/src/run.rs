//! The one event loop: draw, wait for the next input (or a tick), apply every input waiting,
//! draw again. The terminal is restored on every way out, a panic included.

use crate::draw::draw;
use crate::state::App;
use crate::update::{Effect, Input};
use ratatui::Terminal;
use ratatui::backend::Backend;
use ratatui::crossterm::event::{DisableMouseCapture, EnableMouseCapture};
use ratatui::crossterm::execute;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// Why the UI stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum TuiError {
    /// The terminal could not be set up or written.
    #[error("terminal: {0}")]
    Terminal(String),
}

/// How long the loop sleeps without input: one redraw a second keeps clocks and staleness
/// current at a negligible cost; a playing replay moves ten times a second.
const IDLE_WAKE: Duration = Duration::from_secs(1);
const PLAYING_WAKE: Duration = Duration::from_millis(100);

/// Runs the UI until the user quits, the inputs end, or the terminal fails. In fleet mode,
/// `follow` tells the poller which node the user opened.
pub fn run<B: Backend>(
    terminal: &mut Terminal<B>,
    app: &mut App,
    inputs: &Receiver<Input>,
    follow: Option<&Sender<Option<String>>>,
) -> Result<(), TuiError> {
    if let Ok(size) = terminal.size() {
        app.size = (size.width, size.height);
    }
    let mut last = Instant::now();
    loop {
        terminal.draw(|f| draw(f, app)).map_err(|e| TuiError::Terminal(e.to_string()))?;
        let wake = if app.playback.as_ref().is_some_and(|p| p.playing) { PLAYING_WAKE } else { IDLE_WAKE };
        let first = match inputs.recv_timeout(wake) {
            Ok(i) => Some(i),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let now = Instant::now();
        app.update(Input::Tick(now - last));
        last = now;
        for input in first.into_iter().chain(inputs.try_iter()) {
            match app.update(input) {
                Effect::None => {}
                Effect::Quit => return Ok(()),
                Effect::Signal { pid, signal } => app.message = Some(send_signal(pid, signal)),
                Effect::Follow(node) => {
                    if let Some(f) = follow {
                        let _ = f.send(node);
                    }
                }
            }
        }
    }
}

fn send_signal(pid: u32, signal: i32) -> String {
    let Ok(target) = libc::pid_t::try_from(pid) else { return format!("no such process {pid}") };
    // SAFETY: kill(2) with a positive PID touches no memory of ours; the user confirmed it.
    let rc = unsafe { libc::kill(target, signal) };
    if rc == 0 {
        format!("sent signal {signal} to {pid}")
    } else {
        format!("cannot signal {pid}: {}", std::io::Error::last_os_error())
    }
}

/// The real terminal in raw mode on the alternate screen with mouse reporting; dropping it
/// restores the terminal. A panic restores it too, before the message prints.
pub struct TerminalGuard {
    /// The terminal to draw on.
    pub terminal: ratatui::DefaultTerminal,
}

impl TerminalGuard {
    /// Takes over the terminal.
    pub fn enter() -> Result<TerminalGuard, TuiError> {
        let previous = std::panic::take_hook();
        let terminal = ratatui::try_init().map_err(|e| TuiError::Terminal(e.to_string()))?;
        // ratatui's own hook prints when restoring fails, which panics again on a terminal that
        // hung up (and a panic in a panic hook aborts, before the caller can clean up): ours
        // restores quietly, then prints the message as before.
        drop(std::panic::take_hook());
        std::panic::set_hook(Box::new(move |info| {
            quiet_restore();
            previous(info);
        }));
        if let Err(e) = execute!(std::io::stdout(), EnableMouseCapture) {
            quiet_restore();
            return Err(TuiError::Terminal(e.to_string()));
        }
        Ok(TerminalGuard { terminal })
    }
}

/// Mouse reporting off, raw mode off, the main screen back, the cursor shown; quietly: when the
/// terminal has hung up every write fails, and a message about it on the same dead terminal
/// would panic (ratatui's own restore prints one).
fn quiet_restore() {
    let _ = execute!(std::io::stdout(), DisableMouseCapture);
    let _ = ratatui::crossterm::terminal::disable_raw_mode();
    let _ = execute!(
        std::io::stdout(),
        ratatui::crossterm::terminal::LeaveAlternateScreen,
        ratatui::crossterm::cursor::Show
    );
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        quiet_restore();
        let _ = self.terminal.show_cursor();
    }
}
