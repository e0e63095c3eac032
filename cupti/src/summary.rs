//! The window summary: everything the injection library tells the agent about one profiling
//! window of one process. `docs/cupti-protocol.md` is its reference; [`crate::wire`] encodes it.

use serde::{Deserialize, Serialize};

use crate::classify::KernelClass;

/// Number of kernel-duration histogram buckets. Bucket 0 holds durations of 0 and 1 ns; bucket
/// `i` (1 ≤ i < 31) holds `[2^i, 2^(i+1))` ns; bucket 31 holds everything from 2^31 ns (≈ 2.1 s).
pub const HISTOGRAM_BUCKETS: usize = 32;

/// The histogram bucket of a kernel duration in ns (see [`HISTOGRAM_BUCKETS`]).
pub fn histogram_bucket(duration_ns: u64) -> usize {
    let log2 = 63 - (duration_ns | 1).leading_zeros() as usize;
    log2.min(HISTOGRAM_BUCKETS - 1)
}

/// The inclusive lower bound, in ns, of a histogram bucket.
pub fn histogram_bucket_floor_ns(bucket: usize) -> u64 {
    if bucket == 0 { 0 } else { 1u64 << bucket.min(HISTOGRAM_BUCKETS - 1) }
}

/// One summary per profiling window of one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSummary {
    /// The profiled process, as the process sees itself (`getpid()`, its own PID namespace).
    pub pid: u32,
    /// Window start, Unix time in ns.
    pub window_start_unix_ns: u64,
    /// Window end, Unix time in ns (≥ start).
    pub window_end_unix_ns: u64,
    /// The period between window starts in effect when this window ran (stretched by the
    /// budget controller when launches are expensive), in ns.
    pub period_ns: u64,
    /// Kernel launches counted since the previous summary (counting runs outside windows too).
    pub launches: u64,
    /// The time over which `launches` were counted, in ns.
    pub launch_span_ns: u64,
    /// Kernel launches inside this window.
    pub launches_in_window: u64,
    /// Kernel time by class: one entry per class seen, ordered by class.
    pub classes: Vec<ClassStats>,
    /// The kernels with the most total time, longest first.
    pub top_kernels: Vec<KernelStats>,
    /// Kernels that ran but are not in `top_kernels` (their names are interned but ranked lower).
    pub other_kernels: TimeStats,
    /// Kernels whose names were not interned because the name table was full (folded).
    pub folded_kernels: TimeStats,
    /// Kernels launched from CUDA graphs (a graph id in the record); included in the totals above.
    pub graph_kernels: TimeStats,
    /// Copies by direction, memory kinds and asynchrony: one entry per combination seen.
    pub memcpy: Vec<MemcpyStats>,
    /// Memsets.
    pub memset: TransferStats,
    /// Synchronization API calls by kind: one entry per kind seen.
    pub sync: Vec<SyncStats>,
    /// Idle time between kernels, per device: one entry per device that ran a kernel.
    pub gpu_gaps: Vec<DeviceGaps>,
    /// Kernel durations, log2 buckets (see [`HISTOGRAM_BUCKETS`]).
    pub duration_histogram: [u64; HISTOGRAM_BUCKETS],
    /// Activity records CUPTI reported as dropped (its buffers were full).
    pub dropped_records: u64,
    /// Records that could not be used (end before start), not aggregated.
    pub invalid_records: u64,
    /// Time the injection library spent in its callbacks since the previous summary, in ns.
    pub callback_overhead_ns: u64,
    /// Callbacks run since the previous summary.
    pub callback_count: u64,
    /// Summaries the library could not deliver (no agent listening) since the last delivered one.
    pub summaries_dropped: u64,
}

/// Count and total duration.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeStats {
    /// How many.
    pub count: u64,
    /// Their summed duration, in ns.
    pub total_ns: u64,
}

/// Kernel time of one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassStats {
    /// The class.
    pub class: KernelClass,
    /// Kernels of this class and their summed duration.
    pub time: TimeStats,
}

/// One kernel name's totals in the window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelStats {
    /// Kernel name as CUPTI reported it, cut to at most [`crate::wire::MAX_NAME_BYTES`] bytes
    /// at a character boundary.
    pub name: String,
    /// Its class.
    pub class: KernelClass,
    /// Launches of it that completed in the window.
    pub count: u64,
    /// Their summed duration, in ns.
    pub total_ns: u64,
    /// The longest one, in ns.
    pub max_ns: u64,
    /// Grid dimensions of the longest one.
    pub grid: [u32; 3],
    /// Block dimensions of the longest one.
    pub block: [u32; 3],
}

/// Direction of a copy (CUPTI's `CUpti_ActivityMemcpyKind`, folded: arrays count as their side).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemcpyKind {
    /// Host to device.
    HostToDevice,
    /// Device to host.
    DeviceToHost,
    /// Device to device (same device).
    DeviceToDevice,
    /// Host to host.
    HostToHost,
    /// Peer to peer (between devices).
    PeerToPeer,
    /// CUPTI reported a kind we do not know.
    Unknown,
}

/// Memory kind of one side of a copy (CUPTI's `CUpti_ActivityMemoryKind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemoryKind {
    /// Pageable host memory: an async copy from or to it is silently synchronous.
    Pageable,
    /// Pinned (page-locked) host memory.
    Pinned,
    /// Device memory.
    Device,
    /// A CUDA array.
    Array,
    /// Managed (unified) memory.
    Managed,
    /// Device-static memory.
    DeviceStatic,
    /// Managed static memory.
    ManagedStatic,
    /// CUPTI did not say.
    Unknown,
}

/// Copies of one direction, source and destination memory kind and asynchrony.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemcpyStats {
    /// Direction.
    pub kind: MemcpyKind,
    /// Source memory kind.
    pub src: MemoryKind,
    /// Destination memory kind.
    pub dst: MemoryKind,
    /// Issued with an asynchronous API (`cudaMemcpyAsync`).
    pub is_async: bool,
    /// Copies, bytes and duration.
    pub transfer: TransferStats,
}

/// Count, bytes and duration of copies or memsets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferStats {
    /// How many.
    pub count: u64,
    /// Bytes moved or set.
    pub bytes: u64,
    /// Summed duration on the GPU, in ns.
    pub total_ns: u64,
}

/// What a synchronization call waited for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    /// `cudaDeviceSynchronize` / `cuCtxSynchronize`.
    Device,
    /// `cudaStreamSynchronize` / `cuStreamSynchronize`.
    Stream,
    /// `cudaEventSynchronize` / `cuEventSynchronize`.
    Event,
    /// `cudaStreamWaitEvent` / `cuStreamWaitEvent` (a GPU-side wait; host time is the call's).
    StreamWaitEvent,
}

/// Synchronization calls of one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncStats {
    /// What was waited for.
    pub kind: SyncKind,
    /// Calls and the host time spent in them.
    pub time: TimeStats,
}

/// Idle time between kernels on one device within the window: the kernels' intervals on all
/// streams are merged (overlap counts once), and a gap is the time between one merged interval's
/// end and the next one's start. Time before the first and after the last kernel is not a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceGaps {
    /// CUDA device ordinal.
    pub device: u32,
    /// Time at least one kernel ran, in ns.
    pub busy_ns: u64,
    /// Summed gaps, in ns.
    pub idle_ns: u64,
    /// Number of gaps.
    pub gap_count: u64,
    /// The longest gap, in ns.
    pub max_gap_ns: u64,
    /// Kernel intervals left out because the interval store was full: when not 0 the gaps are
    /// computed from the first intervals only.
    pub intervals_dropped: u64,
}

impl WindowSummary {
    /// An empty summary for a window (no records yet).
    pub fn empty(pid: u32, window_start_unix_ns: u64, window_end_unix_ns: u64, period_ns: u64) -> Self {
        WindowSummary {
            pid,
            window_start_unix_ns,
            window_end_unix_ns,
            period_ns,
            launches: 0,
            launch_span_ns: 0,
            launches_in_window: 0,
            classes: Vec::new(),
            top_kernels: Vec::new(),
            other_kernels: TimeStats::default(),
            folded_kernels: TimeStats::default(),
            graph_kernels: TimeStats::default(),
            memcpy: Vec::new(),
            memset: TransferStats::default(),
            sync: Vec::new(),
            gpu_gaps: Vec::new(),
            duration_histogram: [0; HISTOGRAM_BUCKETS],
            dropped_records: 0,
            invalid_records: 0,
            callback_overhead_ns: 0,
            callback_count: 0,
            summaries_dropped: 0,
        }
    }

    /// Window length in ns.
    pub fn window_ns(&self) -> u64 {
        self.window_end_unix_ns.saturating_sub(self.window_start_unix_ns)
    }

    /// Launch rate over `launch_span_ns`; `None` when the span is 0 (nothing to divide by).
    pub fn launches_per_second(&self) -> Option<f64> {
        (self.launch_span_ns > 0).then(|| self.launches as f64 * 1e9 / self.launch_span_ns as f64)
    }

    /// Copies from or to pageable host memory (what the `pageable-memcpy` rule looks at), async
    /// ones only: a synchronous copy from pageable memory costs what it says.
    pub fn pageable_async_copies(&self) -> TransferStats {
        self.memcpy
            .iter()
            .filter(|m| m.is_async && (m.src == MemoryKind::Pageable || m.dst == MemoryKind::Pageable))
            .fold(TransferStats::default(), |acc, m| TransferStats {
                count: acc.count.saturating_add(m.transfer.count),
                bytes: acc.bytes.saturating_add(m.transfer.bytes),
                total_ns: acc.total_ns.saturating_add(m.transfer.total_ns),
            })
    }

    /// The lower bound, in ns, of the histogram bucket holding the median kernel duration (the
    /// `short-kernels` rule compares it with its threshold); `None` when no kernel ran.
    pub fn median_kernel_duration_floor_ns(&self) -> Option<u64> {
        let total = self.duration_histogram.iter().fold(0u64, |acc, n| acc.saturating_add(*n));
        if total == 0 {
            return None;
        }
        // The lower median: the bucket holding the ceil(total / 2)-th shortest kernel.
        let rank = total.div_ceil(2);
        let mut seen = 0u64;
        self.duration_histogram.iter().enumerate().find_map(|(bucket, n)| {
            seen = seen.saturating_add(*n);
            (seen >= rank).then(|| histogram_bucket_floor_ns(bucket))
        })
    }

    /// Host time in synchronization calls, in ns.
    pub fn sync_ns(&self) -> u64 {
        self.sync.iter().fold(0u64, |acc, s| acc.saturating_add(s.time.total_ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_log2_of_ns() {
        assert_eq!(histogram_bucket(0), 0);
        assert_eq!(histogram_bucket(1), 0);
        assert_eq!(histogram_bucket(2), 1);
        assert_eq!(histogram_bucket(3), 1);
        assert_eq!(histogram_bucket(1023), 9);
        assert_eq!(histogram_bucket(1024), 10);
        assert_eq!(histogram_bucket(u64::MAX), HISTOGRAM_BUCKETS - 1);
        for bucket in 1..HISTOGRAM_BUCKETS {
            assert_eq!(histogram_bucket(histogram_bucket_floor_ns(bucket)), bucket);
            assert_eq!(histogram_bucket(histogram_bucket_floor_ns(bucket) - 1), bucket - 1);
        }
    }

    #[test]
    fn the_median_comes_from_the_histogram() {
        let mut summary = WindowSummary::empty(1, 0, 10, 10);
        assert_eq!(summary.median_kernel_duration_floor_ns(), None);
        summary.duration_histogram[histogram_bucket(3_000)] = 2; // 2048..4095 ns
        summary.duration_histogram[histogram_bucket(50_000)] = 1; // 32768..65535 ns
        assert_eq!(summary.median_kernel_duration_floor_ns(), Some(2_048));
        summary.duration_histogram[histogram_bucket(50_000)] = 2;
        assert_eq!(summary.median_kernel_duration_floor_ns(), Some(2_048), "lower median of 4");
        summary.duration_histogram[histogram_bucket(50_000)] = 3;
        assert_eq!(summary.median_kernel_duration_floor_ns(), Some(32_768), "3rd of 5");
    }

    #[test]
    fn launch_rate_is_absent_without_a_span() {
        let mut summary = WindowSummary::empty(1, 0, 10, 10);
        assert_eq!(summary.launches_per_second(), None);
        summary.launches = 30_000;
        summary.launch_span_ns = 1_500_000_000;
        assert_eq!(summary.launches_per_second(), Some(20_000.0));
    }
}
