//! A window of recent snapshots of one node, with the summaries rules ask for.

use gpuscope_core::{GpuSample, HostSample, NodeSnapshot};
use std::collections::VecDeque;
use std::sync::Arc;

/// Recent snapshots of one node, oldest first.
#[derive(Debug, Clone, Default)]
pub struct NodeWindow {
    samples: VecDeque<Arc<NodeSnapshot>>,
    retention_ms: u64,
}

impl NodeWindow {
    /// An empty window keeping `retention_ms` of history.
    pub fn new(retention_ms: u64) -> NodeWindow {
        NodeWindow { samples: VecDeque::new(), retention_ms }
    }

    /// Adds a snapshot (out-of-order ones are inserted in place) and drops what is too old.
    pub fn push(&mut self, snap: Arc<NodeSnapshot>) {
        let t = snap.timestamp_ms;
        let pos = self.samples.iter().rposition(|s| s.timestamp_ms <= t).map_or(0, |p| p + 1);
        if self.samples.get(pos.wrapping_sub(1)).is_some_and(|s| s.timestamp_ms == t) {
            // The same sample twice (a replayed batch): keep one.
            return;
        }
        self.samples.insert(pos, snap);
        let newest = self.samples.back().map_or(0, |s| s.timestamp_ms);
        while self.samples.front().is_some_and(|s| s.timestamp_ms + self.retention_ms < newest) {
            self.samples.pop_front();
        }
    }

    /// The newest snapshot.
    pub fn latest(&self) -> Option<&NodeSnapshot> {
        self.samples.back().map(|s| s.as_ref())
    }

    /// Number of snapshots held.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when no snapshot is held.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// Snapshots taken in the last `span_ms` before `now_ms` (inclusive).
    pub fn recent(&self, now_ms: u64, span_ms: u64) -> impl Iterator<Item = &NodeSnapshot> {
        let from = now_ms.saturating_sub(span_ms);
        // Samples are kept in time order: find the span by binary search, not by a scan.
        let start = self.samples.partition_point(|s| s.timestamp_ms < from);
        let end = self.samples.partition_point(|s| s.timestamp_ms <= now_ms);
        self.samples.range(start..end.max(start)).map(|s| s.as_ref())
    }

    /// Values of a GPU signal over the span (absent values skipped).
    pub fn gpu_values(&self, gpu: u32, now_ms: u64, span_ms: u64, f: impl Fn(&GpuSample) -> Option<f64>) -> Vec<f64> {
        self.recent(now_ms, span_ms)
            .filter_map(|s| s.gpus.iter().find(|g| g.index == gpu && !g.lost))
            .filter_map(&f)
            .collect()
    }

    /// Mean of a GPU signal over the span; `None` when it was never read (absent is not zero).
    pub fn gpu_mean(&self, gpu: u32, now_ms: u64, span_ms: u64, f: impl Fn(&GpuSample) -> Option<f64>) -> Option<f64> {
        mean(&self.gpu_values(gpu, now_ms, span_ms, f))
    }

    /// Mean of a host signal over the span.
    pub fn host_mean(&self, now_ms: u64, span_ms: u64, f: impl Fn(&HostSample) -> Option<f64>) -> Option<f64> {
        let v: Vec<f64> = self.recent(now_ms, span_ms).filter_map(|s| s.host.as_ref()).filter_map(&f).collect();
        mean(&v)
    }

    /// Fraction of the span's samples of `gpu` for which `pred` holds (`None` without samples).
    pub fn gpu_fraction(
        &self,
        gpu: u32,
        now_ms: u64,
        span_ms: u64,
        pred: impl Fn(&GpuSample) -> Option<bool>,
    ) -> Option<f64> {
        let v: Vec<bool> = self
            .recent(now_ms, span_ms)
            .filter_map(|s| s.gpus.iter().find(|g| g.index == gpu && !g.lost))
            .filter_map(&pred)
            .collect();
        (!v.is_empty()).then(|| v.iter().filter(|b| **b).count() as f64 / v.len() as f64)
    }

    /// Increase of a GPU counter over the span (first to last reading; a reset counts from 0).
    pub fn gpu_increase(
        &self,
        gpu: u32,
        now_ms: u64,
        span_ms: u64,
        f: impl Fn(&GpuSample) -> Option<f64>,
    ) -> Option<(f64, f64)> {
        let pts: Vec<(u64, f64)> = self
            .recent(now_ms, span_ms)
            .filter_map(|s| s.gpus.iter().find(|g| g.index == gpu && !g.lost).and_then(&f).map(|v| (s.timestamp_ms, v)))
            .collect();
        let (first, last) = (pts.first()?, pts.last()?);
        let mut inc = 0.0;
        for w in pts.windows(2) {
            inc += if w[1].1 >= w[0].1 { w[1].1 - w[0].1 } else { w[1].1 };
        }
        Some((inc, (last.0 - first.0) as f64 / 1000.0))
    }
}

/// Mean of the values, `None` when empty.
pub fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}
