//! A window of recent snapshots of one node, with the summaries rules ask for.

use gpuscope_core::{GpuSample, HostSample, KernelProfile, NodeSnapshot};
use std::collections::{BTreeMap, VecDeque};
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
    /// GPU memory used (memory-near-full asks whether it grows).
    pub memory_used: Option<u64>,
    /// SM activity, or utilization where profiling is absent (gpu-idle-allocated asks how long
    /// the GPU has been idle).
    pub activity: Option<f32>,
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
            memory_used: g.memory_used_bytes,
            activity: g.sm_active_ratio.or(g.utilization_ratio).map(|a| a as f32),
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
    max_lag_ms: u64,
    /// What the rules read from the newest sample (see `presence_of`), for each sample of the
    /// last smoothing span.
    presence: VecDeque<(u64, Vec<u32>)>,
    /// The newest sample lacks something the span before it had: a read that failed or raced,
    /// not (yet) a changed workload.
    newest_incomplete: bool,
    /// Each profiled process's latest profiling window and the distinct one before it, by host
    /// PID: a snapshot carries only the latest window, and the kernel-level rules judge two.
    kernel: BTreeMap<u32, (KernelProfile, Option<KernelProfile>)>,
}

impl NodeWindow {
    /// An empty window keeping thin records for `retention_ms` and whole snapshots for `full_ms`,
    /// read up to its own newest sample while that lags the evaluation time by at most
    /// `max_lag_ms` (see [`NodeWindow::recent`]).
    pub fn new(retention_ms: u64, full_ms: u64, max_lag_ms: u64) -> NodeWindow {
        NodeWindow {
            samples: VecDeque::new(),
            thin: VecDeque::new(),
            retention_ms,
            full_ms: full_ms.min(retention_ms),
            max_lag_ms,
            presence: VecDeque::new(),
            newest_incomplete: false,
            kernel: BTreeMap::new(),
        }
    }

    /// Keeps the windows of the newest snapshot's profiled processes: a new window (another end
    /// time) moves the one seen before it to second place; a process whose window count went
    /// back is another process under a reused PID and starts afresh; a process the snapshot no
    /// longer lists has stopped sending windows and is forgotten.
    fn keep_kernel_windows(&mut self, snap: &NodeSnapshot) {
        let mut kept = BTreeMap::new();
        for p in &snap.kernel_profiles {
            let entry = match self.kernel.remove(&p.pid) {
                // The same window as before: nothing to copy.
                Some((last, prev)) if last.window_end_unix_ms == p.window_end_unix_ms => (last, prev),
                Some((last, _)) if last.windows_total < p.windows_total => (p.clone(), Some(last)),
                _ => (p.clone(), None),
            };
            kept.insert(p.pid, entry);
        }
        self.kernel = kept;
    }

    /// The profiling window of process `p` before its latest one (`p` as the newest snapshot
    /// has it), when the two are consecutive: the earlier one ended before the latest and at
    /// most three periods before it, the same horizon after which the agent stops listing a
    /// silent process. `None` for a process's first window or after a pause.
    pub fn kernel_previous(&self, p: &KernelProfile) -> Option<&KernelProfile> {
        let (last, prev) = self.kernel.get(&p.pid)?;
        let prev = prev.as_ref()?;
        if last.window_end_unix_ms != p.window_end_unix_ms || prev.window_end_unix_ms >= p.window_end_unix_ms {
            return None;
        }
        let horizon_ms = 3.0 * p.period_seconds.max(prev.period_seconds) * 1000.0;
        ((p.window_end_unix_ms - prev.window_end_unix_ms) as f64 <= horizon_ms).then_some(prev)
    }

    /// What the rules read from the newest sample rather than average over the span, counted:
    /// the GPUs that answer, each GPU's processes and static values (memory, PCIe link, compute
    /// capability, clock maximum), the host's cores, ports with a speed and disks. A value a
    /// span's mean covers (a ratio missing from one sample) is not here: the mean skips it.
    fn presence_of(snap: &NodeSnapshot) -> Vec<u32> {
        let mut v = vec![snap.gpus.iter().filter(|g| !g.lost).count() as u32];
        for g in snap.gpus.iter().filter(|g| !g.lost) {
            v.push(snap.processes.iter().filter(|p| p.gpu_index == g.index).count() as u32);
            v.extend(
                [
                    g.memory_used_bytes.is_some(),
                    g.memory_total_bytes.is_some(),
                    g.pcie_link_generation.is_some(),
                    g.pcie_link_width.is_some(),
                    g.compute_capability.is_some(),
                    g.sm_clock_max_hertz.is_some(),
                ]
                .map(u32::from),
            );
        }
        if let Some(h) = &snap.host {
            v.push(h.cpus.len() as u32);
            v.push(h.nics.iter().filter(|n| n.speed_bytes_per_second.is_some()).count() as u32);
            v.push(h.disks.len() as u32);
        }
        v
    }

    /// Whether the newest sample lacks something the rules read from it that the node reported
    /// within the smoothing span before it (a process list that failed, a value not read). A rule that does not
    /// hold on such data may only be missing its input: the analyzer pauses its timers instead
    /// of resetting them. A value that is really gone stops counting as missing after a span.
    pub fn newest_incomplete(&self) -> bool {
        self.newest_incomplete
    }

    /// Time of the newest sample.
    pub fn newest_ms(&self) -> Option<u64> {
        self.thin.back().map(|s| s.timestamp_ms)
    }

    /// How much of `(from_ms, to_ms]` this node's samples cover, and the longest stretch they
    /// do not: a spacing between consecutive samples (or from `from_ms` to the first) longer
    /// than `gap_ms` is a gap, the rest is covered.
    pub fn coverage(&self, from_ms: u64, to_ms: u64, gap_ms: u64) -> (u64, u64) {
        let start = self.thin.partition_point(|s| s.timestamp_ms <= from_ms);
        let end = self.thin.partition_point(|s| s.timestamp_ms <= to_ms);
        let (mut covered, mut longest, mut prev) = (0, 0, from_ms);
        for s in self.thin.range(start..end.max(start)) {
            let d = s.timestamp_ms - prev;
            if d > gap_ms {
                longest = longest.max(d);
            } else {
                covered += d;
            }
            prev = s.timestamp_ms;
        }
        (covered, longest)
    }

    /// Where a span read at `now_ms` ends: at this node's newest sample. Nodes report in batches
    /// at their own moments (and with their own clocks), so the fleet's newest sample time is
    /// ahead of most nodes' newest; reading every node up to `now_ms` would judge a member whose
    /// last batch is a little late on a partial or empty span — it would drop out of its job's
    /// comparison and reset the rules' timers. A node further behind than the lag limit has
    /// stopped reporting: it has no span (`None`).
    fn span_end(&self, now_ms: u64) -> Option<u64> {
        let newest = self.thin.back()?.timestamp_ms;
        (newest.saturating_add(self.max_lag_ms) >= now_ms).then_some(newest.min(now_ms))
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
        if tpos == self.thin.len() {
            let presence = Self::presence_of(&snap);
            self.newest_incomplete = presence
                .iter()
                .enumerate()
                .any(|(i, now)| self.presence.iter().any(|(_, before)| before.get(i).is_some_and(|b| b > now)));
            // The smoothing span: whole snapshots are kept for twice it.
            let span = self.full_ms / 2;
            while self.presence.front().is_some_and(|(at, _)| at + span < t) {
                self.presence.pop_front();
            }
            self.presence.push_back((t, presence));
            self.keep_kernel_windows(&snap);
        }
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

    /// Thin records of the last `span_ms` of this node's data as of `now_ms` (see
    /// [`NodeWindow::recent`]).
    pub fn thin(&self, now_ms: u64, span_ms: u64) -> impl Iterator<Item = &ThinSample> {
        let (start, end) = match self.span_end(now_ms) {
            Some(to) => {
                let from = to.saturating_sub(span_ms);
                (
                    self.thin.partition_point(|s| s.timestamp_ms < from),
                    self.thin.partition_point(|s| s.timestamp_ms <= to),
                )
            }
            None => (0, 0),
        };
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

    /// Snapshots of the last `span_ms` of this node's data as of `now_ms` (inclusive): the span
    /// ends at the node's newest sample no later than `now_ms`, and is empty when that sample
    /// lags `now_ms` by more than the window's lag limit.
    pub fn recent(&self, now_ms: u64, span_ms: u64) -> impl Iterator<Item = &NodeSnapshot> {
        // Samples are kept in time order: find the span by binary search, not by a scan.
        let (start, end) = match self.span_end(now_ms) {
            Some(to) => {
                let from = to.saturating_sub(span_ms);
                (
                    self.samples.partition_point(|s| s.timestamp_ms < from),
                    self.samples.partition_point(|s| s.timestamp_ms <= to),
                )
            }
            None => (0, 0),
        };
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

    /// How long `gpu` has been idle up to its newest record no later than `now_ms`: the time
    /// back to the oldest record of the unbroken run whose activity is below `idle`, wall
    /// milliseconds (bounded by the window's retention); `None` when the newest record is not idle.
    pub fn gpu_idle_ms(&self, gpu: u32, now_ms: u64, idle: f64) -> Option<u64> {
        let end = self.thin.partition_point(|s| s.timestamp_ms <= now_ms);
        let mut last = None;
        let mut since = None;
        for s in self.thin.range(..end).rev() {
            let Some(g) = s.gpus.iter().find(|g| g.index == gpu) else { break };
            match g.activity {
                Some(a) if f64::from(a) < idle => {
                    last.get_or_insert(s.timestamp_ms);
                    since = Some(s.timestamp_ms);
                }
                _ => break,
            }
        }
        Some(last? - since?)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(t_ms: u64, sm: f64) -> Arc<NodeSnapshot> {
        Arc::new(NodeSnapshot {
            timestamp_ms: t_ms,
            gpus: vec![GpuSample { index: 0, sm_active_ratio: Some(sm), ..GpuSample::default() }],
            ..NodeSnapshot::default()
        })
    }

    #[test]
    fn a_lagging_window_is_read_up_to_its_own_newest_sample() {
        let mut w = NodeWindow::new(600_000, 20_000, 60_000);
        // Samples every second up to t = 100 s: 0.2 until 90 s, then 0.8.
        for t in 0..=100u64 {
            w.push(snap(t * 1000, if t <= 90 { 0.2 } else { 0.8 }));
        }
        let sm = |now_ms| w.gpu_mean(0, now_ms, 10_000, |g| g.sm_active_ratio);
        // Read at its own time: the last 10 s (91..=100 at 0.8, and 90 at 0.2).
        let own = sm(100_000).expect("data");
        // Read 15 s later (the fleet's newest sample is ahead): the same span, not an empty one.
        assert_eq!(sm(115_000), Some(own));
        assert_eq!(w.thin(115_000, 10_000).count(), w.thin(100_000, 10_000).count());
        // Read at an earlier time: the span ending then (thin records reach that far back).
        assert_eq!(
            w.thin(50_000, 10_000).map(|s| s.timestamp_ms).collect::<Vec<_>>(),
            (40..=50).map(|t| t * 1000).collect::<Vec<_>>()
        );
        // A node 61 s behind has stopped reporting: no data, not its old values.
        assert_eq!(sm(161_000), None);
        assert_eq!(w.thin(161_000, 600_000).count(), 0);
    }
}
