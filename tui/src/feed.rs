//! Where inputs come from, each on its own thread so the UI never waits on sampling, the disk
//! or the network: terminal events, a sampling engine's snapshots (with the rules run locally),
//! a collector's finding changes, and a recording.

use crate::recording::{Recorder, Recording};
use crate::state::{App, History, Playback, SourceKind};
use crate::update::Input;
use gpuscope_analysis::{AnalysisConfig, Analyzer, Change};
use gpuscope_core::NodeSnapshot;
use gpuscope_core::api::{FindingEvent, FindingRecord};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use tokio::sync::{broadcast, watch};

/// The rules run on this node's snapshots, as the collector runs them on pushed data.
pub struct LocalAnalysis {
    analyzer: Analyzer,
    /// When each open finding opened, by rule and scope.
    opened: HashMap<String, u64>,
}

fn key(f: &gpuscope_core::Finding) -> String {
    format!("{}|{:?}", f.rule, f.scope)
}

impl LocalAnalysis {
    /// An analysis with the given rule settings.
    pub fn new(cfg: AnalysisConfig) -> LocalAnalysis {
        LocalAnalysis { analyzer: Analyzer::new(cfg, 0.0), opened: HashMap::new() }
    }

    /// Adds a snapshot, evaluates the rules at its time, and returns what opened and closed.
    pub fn ingest(&mut self, snap: Arc<NodeSnapshot>) -> Vec<FindingEvent> {
        let now = snap.timestamp_ms;
        self.analyzer.ingest(snap);
        self.analyzer
            .evaluate(now)
            .into_iter()
            .map(|c| match c {
                Change::Opened(finding) => {
                    self.opened.insert(key(&finding), now);
                    FindingEvent::Opened(FindingRecord { finding, opened_ms: now, closed_ms: None })
                }
                Change::Closed { finding, at_ms } => {
                    let opened_ms = self.opened.remove(&key(&finding)).unwrap_or(finding.since_ms);
                    FindingEvent::Closed(FindingRecord { finding, opened_ms, closed_ms: Some(at_ms) })
                }
            })
            .collect()
    }
}

/// Terminal events (keys, mouse, resize) into `tx`, until the UI stops listening.
pub fn terminal_events(tx: Sender<Input>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("gpuscope-tui-input".into()).spawn(move || {
        loop {
            let input = match ratatui::crossterm::event::read() {
                Ok(e) => Input::Terminal(e),
                Err(e) => {
                    let _ = tx.send(Input::Failed(format!("terminal input: {e}")));
                    return;
                }
            };
            if tx.send(input).is_err() {
                return;
            }
        }
    })
}

/// A sampling engine's snapshots into `tx`; with `analysis`, the rules' findings too, and with
/// `recorder`, both written to a recording. Ends when the engine stops or the UI goes.
pub fn snapshots(
    mut rx: watch::Receiver<Arc<NodeSnapshot>>,
    mut analysis: Option<LocalAnalysis>,
    mut recorder: Option<Recorder>,
    tx: Sender<Input>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("gpuscope-tui-feed".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().build() {
            Ok(r) => r,
            Err(e) => {
                let _ = tx.send(Input::Failed(format!("cannot start the feed: {e}")));
                return;
            }
        };
        runtime.block_on(async {
            while rx.changed().await.is_ok() {
                let snap = rx.borrow_and_update().clone();
                // The engine publishes an empty snapshot before its first pass.
                if snap.timestamp_ms == 0 {
                    continue;
                }
                let events = analysis.as_mut().map(|a| a.ingest(snap.clone())).unwrap_or_default();
                if let Some(r) = recorder.as_mut() {
                    let written = r.snapshot(&snap).and_then(|()| events.iter().try_for_each(|e| r.finding(e)));
                    if let Err(e) = written {
                        let _ = tx.send(Input::Failed(format!("recording stopped: {e}")));
                        recorder = None;
                    }
                }
                if tx.send(Input::Snapshot(snap)).is_err() {
                    return;
                }
                for e in events {
                    if tx.send(Input::Finding(Box::new(e))).is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(Input::Ended("sampling stopped".into()));
        });
        if let Some(r) = recorder
            && let Err(e) = r.finish()
        {
            let _ = tx.send(Input::Failed(format!("recording: {e}")));
        }
    })
}

/// A collector's finding changes (from its in-process broadcast) into `tx`.
pub fn findings(mut rx: broadcast::Receiver<FindingEvent>, tx: Sender<Input>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("gpuscope-tui-findings".into()).spawn(move || {
        loop {
            let input = match rx.blocking_recv() {
                Ok(e) => Input::Finding(Box::new(e)),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    Input::Failed(format!("{n} finding changes were missed"))
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if tx.send(input).is_err() {
                return;
            }
        }
    })
}

/// A UI holding a whole recording, paused at its start and ready to play at `speed`.
pub fn replay_app(file: &str, rec: Recording, theme: crate::theme::Theme, speed: f64) -> App {
    let mut app = App::new(SourceKind::Replay { file: file.to_string() }, theme);
    // The whole recording stays seekable, however long it is.
    app.history = History::new(u64::MAX);
    for s in rec.snapshots {
        app.history.push(s);
    }
    for e in rec.findings {
        app.apply_finding(e);
    }
    app.readonly = true;
    let start = app.history.time_at(0).unwrap_or(0);
    app.playback = Some(Playback { speed, playing: true, position_ms: start });
    app.cursor_ms = Some(start);
    if rec.truncated {
        app.message = Some("the recording ends mid-record (a crash?): played up to its last complete record".into());
    }
    app
}
