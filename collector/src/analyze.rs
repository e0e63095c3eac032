//! The analysis loop: the only writer of the state. It drains the ingest queue into the node
//! windows, evaluates the rules on a cadence, publishes finding changes, watches liveness and
//! hands the store's writes to its writer thread after letting go of the state.

use crate::ingest::{Batch, Counters};
use crate::state::{State, now_ms};
use crate::store::writer::StoreWriter;
use gpuscope_core::api::FindingEvent;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};

/// What the loop owns.
pub struct Analysis {
    /// The state it updates.
    pub state: Arc<Mutex<State>>,
    /// Batches from the receivers.
    pub queue: mpsc::Receiver<Batch>,
    /// Where finding changes go (the SSE stream and [`crate::Running::subscribe`]).
    pub events: broadcast::Sender<FindingEvent>,
    /// Counts ingested snapshots.
    pub counters: Arc<Counters>,
    /// The store's writer, when there is a store.
    pub writer: Option<StoreWriter>,
    /// Nodes to forget (the API's DELETE), each with where to say whether it was known.
    pub forget: mpsc::Receiver<Forget>,
}

/// A request to forget a node, and where to answer whether it was known.
pub type Forget = (String, tokio::sync::oneshot::Sender<bool>);

impl Analysis {
    /// Runs until every receiver is gone.
    pub async fn run(mut self) {
        // Rules run over every node, so they run on a cadence, not per batch: every 250 ms, or
        // four times as long as the last evaluation took, so that on a large fleet evaluation
        // never takes more than a fifth of a core from ingestion.
        let mut last_eval = Instant::now();
        let mut cadence = Duration::from_millis(250);
        loop {
            let (batch, forget) = tokio::select! {
                b = self.queue.recv() => match b {
                    Some(b) => (Some(b), None),
                    None => return,
                },
                Some(f) = self.forget.recv() => (None, Some(f)),
                () = tokio::time::sleep(cadence) => (None, None),
            };
            let writes = {
                let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((node, answer)) = forget {
                    let _ = answer.send(s.forget(&node));
                }
                if let Some(b) = batch {
                    self.counters.snapshots_ingested(b.len());
                    s.ingest_only(b);
                }
                if last_eval.elapsed() >= cadence {
                    last_eval = Instant::now();
                    for e in s.evaluate() {
                        // Nobody listening is fine.
                        let _ = self.events.send(e);
                    }
                    s.check_liveness(now_ms());
                    cadence = (last_eval.elapsed() * 4).max(Duration::from_millis(250));
                }
                s.take_writes()
            };
            if let Some(w) = &mut self.writer {
                for write in writes {
                    if !w.submit(write) {
                        self.counters.store_write_dropped();
                    }
                }
            }
        }
    }
}
