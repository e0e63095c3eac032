//! A window of recent snapshots of one node, with the summaries rules ask for.

use gpuscope_core::{GpuSample, HostSample, NodeSnapshot};
use std::collections::VecDeque;
use std::sync::Arc;

/// What the long-span rules read of one GPU in one sample: the clock event reasons and the
/// error counters. Every sample keeps this much for the whole retention; whole snapshots are
/// kept only for the short span the other rules average over, so a 10-minute window of a big
/// node costs tens of kilobytes, not megabytes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ThinGpu {
    /// GPU index.
    pub index: u32,
    /// Clock event reasons bitmask.
    pub reasons: Option<u64>,
    /// Volatile uncorrectable ECC errors.
    pub ecc_uncorrected: Option<u64>,
    /// PCIe replays.
    pub pcie_replays: Option<u64>,
    /// NVLink CRC errors over all links.
    pub nvlink_crc: Option<u64>,
    /// NVLink replay errors over all links.
    pub nvlink_replay: Option<u64>,
    /// NVLink recovery errors over all links.
    pub nvlink_recovery: Option<u64>,
}

impl ThinGpu {
    fn of(g: &GpuSample) -> ThinGpu {
        let sum = |f: fn(&gpuscope_core::NvLinkSample) -> Option<u64>| {
            let v: Vec<u64> = g.nvlinks.iter().filter_map(f).collect();
            (!v.is_empty()).then(|| v.iter().sum())
        };
        ThinGpu {
            index: g.index,
            reasons: g.clock_event_reasons,
            ecc_uncorrected: g.ecc_uncorrected_volatile_total,
            pcie_replays: g.pcie_replays_total,
            nvlink_crc: sum(|l| l.crc_errors_total),
            nvlink_replay: sum(|l| l.replay_errors_total),
            nvlink_recovery: sum(|l| l.recovery_errors_total),
        }
    }
}

/// The thin record of one sample (GPUs that answered only).
#[derive(Debug, Clone, Default)]
pub struct ThinSample {
    /// Sample time, ms.
    pub timestamp_ms: u64,
    /// Per GPU.
    pub gpus: Vec<ThinGpu>,
}

/// Recent snapshots of one node, oldest first: whole ones for a short span, thin records for the
/// whole retention.
#[derive(Debug, Clone, Default)]
pub struct NodeWindow {
    samples: VecDeque<Arc<NodeSnapshot>>,
    thin: VecDeque<ThinSample>,
    retention_ms: u64,
    full_ms: u64,
}

impl NodeWindow {
    /// An empty window keeping thin records for `retention_ms` and whole snapshots for `full_ms`.
    pub fn new(retention_ms: u64, full_ms: u64) -> NodeWindow {
        NodeWindow { samples: VecDeque::new(), thin: VecDeque::new(), retention_ms, full_ms: full_ms.min(retention_ms) }
    }

    /// Adds a snapshot (out-of-order ones are inserted in place) and drops what is too old.
    pub fn push(&mut self, snap: Arc<NodeSnapshot>) {
        let t = snap.timestamp_ms;
        let tpos = self.thin.partition_point(|s| s.timestamp_ms <= t);
        if tpos > 0 && self.thin[tpos - 1].timestamp_ms == t {
            // The same sample twice (a replayed batch): keep one.
            return;
        }
        let thin =
            ThinSample { timestamp_ms: t, gpus: snap.gpus.iter().filter(|g| !g.lost).map(ThinGpu::of).collect() };
        self.thin.insert(tpos, thin);
        let pos = self.samples.partition_point(|s| s.timestamp_ms <= t);
        self.samples.insert(pos, snap);
        let newest = self.thin.back().map_or(0, |s| s.timestamp_ms);
        while self.thin.front().is_some_and(|s| s.timestamp_ms + self.retention_ms < newest) {
            self.thin.pop_front();
        }
        // Whole snapshots: the short span, and never fewer than the two newest.
        while self.samples.len() > 2 && self.samples.front().is_some_and(|s| s.timestamp_ms + self.full_ms < newest) {
            self.samples.pop_front();
        }
    }

    /// Thin records of the last `span_ms` before `now_ms`.
    pub fn thin(&self, now_ms: u64, span_ms: u64) -> impl Iterator<Item = &ThinSample> {
        let from = now_ms.saturating_sub(span_ms);
        let start = self.thin.partition_point(|s| s.timestamp_ms < from);
        let end = self.thin.partition_point(|s| s.timestamp_ms <= now_ms);
        self.thin.range(start..end.max(start))
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
        pred: impl Fn(&ThinGpu) -> Option<bool>,
    ) -> Option<f64> {
        let v: Vec<bool> = self
            .thin(now_ms, span_ms)
            .filter_map(|s| s.gpus.iter().find(|g| g.index == gpu))
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
        f: impl Fn(&ThinGpu) -> Option<f64>,
    ) -> Option<(f64, f64)> {
        let pts: Vec<(u64, f64)> = self
            .thin(now_ms, span_ms)
            .filter_map(|s| s.gpus.iter().find(|g| g.index == gpu).and_then(&f).map(|v| (s.timestamp_ms, v)))
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
