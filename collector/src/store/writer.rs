//! The store's writer: a thread that owns the database connection and makes the writes the
//! analysis queues, a batch per transaction. The queue is bounded and [`StoreWriter::submit`]
//! never waits: when the disk cannot keep up the write is dropped, counted and logged (at most
//! once a minute), so a stalled disk costs history, never the analysis or the API.

use super::{Store, StoreWrite};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Writes queued before [`StoreWriter::submit`] drops. A finding change is one write and a
/// node's inventory one every 10 s: 10,000 nodes make about 1,000 writes a second, and SQLite
/// in WAL mode with a transaction per batch takes tens of thousands, so this fills only when
/// the disk stalls for seconds.
pub const QUEUE: usize = 4096;

/// Writes made per transaction at most.
const BATCH: usize = 512;

/// The handle the analysis loop holds; dropping it finishes the queued writes and stops the thread.
pub struct StoreWriter {
    tx: Option<SyncSender<StoreWrite>>,
    thread: Option<JoinHandle<()>>,
    dropped: u64,
    last_warning: Option<Instant>,
}

impl StoreWriter {
    /// Starts the thread that writes to `store`, with room for `capacity` queued writes.
    pub fn spawn(store: Store, capacity: usize) -> std::io::Result<StoreWriter> {
        let (tx, rx) = sync_channel(capacity.max(1));
        let thread = std::thread::Builder::new().name("findings-store".into()).spawn(move || write_all(&store, &rx))?;
        Ok(StoreWriter { tx: Some(tx), thread: Some(thread), dropped: 0, last_warning: None })
    }

    /// Queues `w` without waiting; false when it was dropped (queue full, or the writer gone).
    pub fn submit(&mut self, w: StoreWrite) -> bool {
        let Some(tx) = &self.tx else { return false };
        match tx.try_send(w) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped += 1;
                if self.last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                    self.last_warning = Some(Instant::now());
                    tracing::warn!(
                        dropped_total = self.dropped,
                        "the findings store cannot keep up: writes dropped, its history will miss them"
                    );
                }
                false
            }
        }
    }

    /// Writes dropped so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Drop for StoreWriter {
    fn drop(&mut self) {
        // Closing the queue lets the thread finish what is queued (at most QUEUE writes) and exit.
        self.tx = None;
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("the findings store writer panicked");
        }
    }
}

fn write_all(store: &Store, rx: &Receiver<StoreWrite>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        batch.extend(rx.try_iter().take(BATCH - 1));
        if let Err(e) = store.apply(&batch) {
            tracing::error!("{e}");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
    use super::*;
    use crate::history::tests::finding;
    use gpuscope_core::api::FindingRecord;

    #[test]
    fn queued_writes_land_before_the_writer_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let mut w = StoreWriter::spawn(Store::open(&path).unwrap(), 16).unwrap();
        let open = FindingRecord { finding: finding("gpu-lost", "n0", 3), opened_ms: 10, closed_ms: None };
        assert!(w.submit(StoreWrite::Insert { id: 7, record: open.clone() }));
        let closed = FindingRecord { closed_ms: Some(20), ..open };
        assert!(w.submit(StoreWrite::Update { id: 7, record: closed.clone() }));
        assert!(w.submit(StoreWrite::Node { node: "n0".into(), job: None, seen_ms: 5, inventory: "{}".into() }));
        drop(w);
        let s = Store::open(&path).unwrap();
        assert_eq!(s.load().unwrap(), vec![(7, closed)]);
        assert_eq!(s.node("n0").unwrap(), Some((None, 5, 5, "{}".into())));
    }

    #[test]
    fn a_full_queue_drops_and_counts_instead_of_waiting() {
        // No thread drains this queue: it stays full after one write.
        let (tx, _rx) = sync_channel(1);
        let mut w = StoreWriter { tx: Some(tx), thread: None, dropped: 0, last_warning: None };
        let node = || StoreWrite::Node { node: "n0".into(), job: None, seen_ms: 5, inventory: "{}".into() };
        assert!(w.submit(node()));
        assert!(!w.submit(node()));
        assert!(!w.submit(node()));
        assert_eq!(w.dropped(), 2);
    }
}
