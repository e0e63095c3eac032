//! The in-process aggregator: activity records in, one [`WindowSummary`] per window out.
//!
//! Pure logic, no CUPTI: the injection library feeds it what CUPTI's activity buffers hold, the
//! simulated CUPTI and the tests feed it synthetic records. Its heap is bounded by construction:
//! at most `max_kernel_names` interned names of at most [`MAX_NAME_BYTES`] each (further names
//! are folded: counted and classified, not kept), at most `max_intervals` kernel intervals per
//! window for the gap computation, and keyed tables whose keys are small enums.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use crate::classify::{KernelClass, classify};
use crate::summary::{
    ClassStats, DeviceGaps, KernelStats, MemcpyKind, MemcpyStats, MemoryKind, SyncKind, SyncStats, TimeStats,
    TransferStats, WindowSummary, histogram_bucket,
};
use crate::wire::{MAX_DEVICES, MAX_NAME_BYTES, MAX_TOP_KERNELS};

/// Limits of one aggregator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// Distinct kernel names kept; later names are folded.
    pub max_kernel_names: usize,
    /// Kernels reported by name in each summary (at most [`MAX_TOP_KERNELS`]).
    pub top_kernels: usize,
    /// Kernel intervals kept per window to compute GPU gaps.
    pub max_intervals: usize,
}

impl Default for AggregatorConfig {
    fn default() -> Self {
        AggregatorConfig { max_kernel_names: 1024, top_kernels: 16, max_intervals: 65_536 }
    }
}

/// An interned kernel name: its id (or folded) and its class, computed once at interning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRef {
    id: Option<u32>,
    /// The kernel's class.
    pub class: KernelClass,
}

impl KernelRef {
    /// Whether the name was folded (the name table was full).
    pub fn is_folded(&self) -> bool {
        self.id.is_none()
    }
}

/// One completed kernel (from `CUpti_ActivityKernel*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelRecord {
    /// The interned name.
    pub kernel: KernelRef,
    /// GPU start timestamp, ns.
    pub start_ns: u64,
    /// GPU end timestamp, ns.
    pub end_ns: u64,
    /// CUDA device ordinal.
    pub device: u32,
    /// Stream id.
    pub stream: u32,
    /// Grid dimensions.
    pub grid: [u32; 3],
    /// Block dimensions.
    pub block: [u32; 3],
    /// CUDA graph id, 0 when not launched from a graph.
    pub graph_id: u32,
}

/// One completed copy (from `CUpti_ActivityMemcpy*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemcpyRecord {
    /// Direction.
    pub kind: MemcpyKind,
    /// Source memory kind.
    pub src: MemoryKind,
    /// Destination memory kind.
    pub dst: MemoryKind,
    /// Issued with an asynchronous API.
    pub is_async: bool,
    /// Bytes copied.
    pub bytes: u64,
    /// GPU start timestamp, ns.
    pub start_ns: u64,
    /// GPU end timestamp, ns.
    pub end_ns: u64,
}

/// One completed memset (from `CUpti_ActivityMemset*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemsetRecord {
    /// Bytes set.
    pub bytes: u64,
    /// GPU start timestamp, ns.
    pub start_ns: u64,
    /// GPU end timestamp, ns.
    pub end_ns: u64,
}

/// One synchronization API call (from the runtime/driver API records or callbacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRecord {
    /// What was waited for.
    pub kind: SyncKind,
    /// Host time spent in the call, ns.
    pub duration_ns: u64,
}

/// What only the caller knows about a window: who, when, at which period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowMeta {
    /// The profiled process.
    pub pid: u32,
    /// Window start, Unix ns.
    pub window_start_unix_ns: u64,
    /// Window end, Unix ns. An end before the start (the wall clock stepped back) is taken as
    /// the start: the summary says a zero-length window rather than being lost.
    pub window_end_unix_ns: u64,
    /// Period in effect, ns.
    pub period_ns: u64,
    /// The time launches were counted over since the previous summary, ns.
    pub launch_span_ns: u64,
    /// Summaries not delivered since the last delivered one.
    pub summaries_dropped: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct NameStats {
    count: u64,
    total_ns: u64,
    max_ns: u64,
    grid: [u32; 3],
    block: [u32; 3],
}

#[derive(Debug, Clone, Copy)]
struct Interval {
    device: u32,
    start_ns: u64,
    end_ns: u64,
}

/// Aggregates one process's activity records into window summaries.
#[derive(Debug)]
pub struct Aggregator {
    config: AggregatorConfig,
    // One allocation per name, shared by the lookup map and the id-indexed table.
    ids: HashMap<Arc<str>, u32>,
    names: Vec<(Arc<str>, KernelClass)>,
    // Per-window state below; `finish_window` resets it and keeps the allocations.
    per_name: Vec<NameStats>,
    classes: BTreeMap<KernelClass, TimeStats>,
    folded: TimeStats,
    graph: TimeStats,
    memcpy: BTreeMap<(MemcpyKind, MemoryKind, MemoryKind, bool), TransferStats>,
    memset: TransferStats,
    sync: BTreeMap<SyncKind, TimeStats>,
    intervals: Vec<Interval>,
    intervals_dropped: BTreeMap<u32, u64>,
    histogram: [u64; crate::summary::HISTOGRAM_BUCKETS],
    launches: u64,
    launches_in_window: u64,
    dropped_records: u64,
    invalid_records: u64,
    callback_overhead_ns: u64,
    callback_count: u64,
}

fn add_time(stats: &mut TimeStats, duration_ns: u64) {
    stats.count = stats.count.saturating_add(1);
    stats.total_ns = stats.total_ns.saturating_add(duration_ns);
}

fn add_transfer(stats: &mut TransferStats, bytes: u64, duration_ns: u64) {
    stats.count = stats.count.saturating_add(1);
    stats.bytes = stats.bytes.saturating_add(bytes);
    stats.total_ns = stats.total_ns.saturating_add(duration_ns);
}

fn no_gaps(device: u32) -> DeviceGaps {
    DeviceGaps { device, busy_ns: 0, idle_ns: 0, gap_count: 0, max_gap_ns: 0, intervals_dropped: 0 }
}

/// The longest prefix of `name` of at most [`MAX_NAME_BYTES`] bytes that ends on a character
/// boundary (names longer than that share an entry when their prefixes are equal).
fn cut_name(name: &str) -> &str {
    if name.len() <= MAX_NAME_BYTES {
        return name;
    }
    let mut end = MAX_NAME_BYTES;
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

impl Aggregator {
    /// An empty aggregator with these limits (`top_kernels` is capped at [`MAX_TOP_KERNELS`]).
    pub fn new(config: AggregatorConfig) -> Self {
        let config = AggregatorConfig { top_kernels: config.top_kernels.min(MAX_TOP_KERNELS), ..config };
        Aggregator {
            config,
            ids: HashMap::new(),
            names: Vec::new(),
            per_name: Vec::new(),
            classes: BTreeMap::new(),
            folded: TimeStats::default(),
            graph: TimeStats::default(),
            memcpy: BTreeMap::new(),
            memset: TransferStats::default(),
            sync: BTreeMap::new(),
            intervals: Vec::new(),
            intervals_dropped: BTreeMap::new(),
            histogram: [0; crate::summary::HISTOGRAM_BUCKETS],
            launches: 0,
            launches_in_window: 0,
            dropped_records: 0,
            invalid_records: 0,
            callback_overhead_ns: 0,
            callback_count: 0,
        }
    }

    /// Interns a kernel name (classifying it once). Names stay interned across windows; when
    /// the table is full the name is folded: classified, but neither kept nor reported by name.
    /// The caller caches the result per CUPTI name pointer so this runs once per name.
    pub fn intern(&mut self, name: &str) -> KernelRef {
        let name = cut_name(name);
        if let Some(&id) = self.ids.get(name) {
            return KernelRef { id: Some(id), class: self.names[id as usize].1 };
        }
        let class = classify(name);
        if self.names.len() >= self.config.max_kernel_names {
            return KernelRef { id: None, class };
        }
        let id = self.names.len() as u32;
        let name: Arc<str> = name.into();
        self.ids.insert(Arc::clone(&name), id);
        self.names.push((name, class));
        KernelRef { id: Some(id), class }
    }

    /// Distinct names interned so far.
    pub fn interned_names(&self) -> usize {
        self.names.len()
    }

    /// Adds a completed kernel.
    pub fn kernel(&mut self, record: &KernelRecord) {
        let Some(duration_ns) = record.end_ns.checked_sub(record.start_ns) else {
            self.invalid_records += 1;
            return;
        };
        add_time(self.classes.entry(record.kernel.class).or_default(), duration_ns);
        self.histogram[histogram_bucket(duration_ns)] += 1;
        if record.graph_id != 0 {
            add_time(&mut self.graph, duration_ns);
        }
        match record.kernel.id {
            // Ids come from `intern` of this aggregator, so they index `names`; a foreign id
            // (a caller bug) is folded rather than trusted.
            Some(id) if (id as usize) < self.names.len() => {
                let index = id as usize;
                if self.per_name.len() <= index {
                    self.per_name.resize(index + 1, NameStats::default());
                }
                let stats = &mut self.per_name[index];
                stats.count = stats.count.saturating_add(1);
                stats.total_ns = stats.total_ns.saturating_add(duration_ns);
                if stats.count == 1 || duration_ns > stats.max_ns {
                    stats.max_ns = duration_ns;
                    stats.grid = record.grid;
                    stats.block = record.block;
                }
            }
            _ => add_time(&mut self.folded, duration_ns),
        }
        if self.intervals.len() < self.config.max_intervals {
            self.intervals.push(Interval { device: record.device, start_ns: record.start_ns, end_ns: record.end_ns });
        } else {
            *self.intervals_dropped.entry(record.device).or_default() += 1;
        }
    }

    /// Adds a completed copy.
    pub fn memcpy(&mut self, record: &MemcpyRecord) {
        let Some(duration_ns) = record.end_ns.checked_sub(record.start_ns) else {
            self.invalid_records += 1;
            return;
        };
        let key = (record.kind, record.src, record.dst, record.is_async);
        add_transfer(self.memcpy.entry(key).or_default(), record.bytes, duration_ns);
    }

    /// Adds a completed memset.
    pub fn memset(&mut self, record: &MemsetRecord) {
        let Some(duration_ns) = record.end_ns.checked_sub(record.start_ns) else {
            self.invalid_records += 1;
            return;
        };
        add_transfer(&mut self.memset, record.bytes, duration_ns);
    }

    /// Adds a synchronization call.
    pub fn sync(&mut self, record: &SyncRecord) {
        add_time(self.sync.entry(record.kind).or_default(), record.duration_ns);
    }

    /// Adds launches counted since the last call; `in_window` when they ran inside the window.
    pub fn launches(&mut self, count: u64, in_window: bool) {
        self.launches = self.launches.saturating_add(count);
        if in_window {
            self.launches_in_window = self.launches_in_window.saturating_add(count);
        }
    }

    /// Adds records CUPTI reported as dropped.
    pub fn dropped_records(&mut self, count: u64) {
        self.dropped_records = self.dropped_records.saturating_add(count);
    }

    /// Adds the cost of callbacks: their count and the time spent in them.
    pub fn callback_overhead(&mut self, callbacks: u64, overhead_ns: u64) {
        self.callback_count = self.callback_count.saturating_add(callbacks);
        self.callback_overhead_ns = self.callback_overhead_ns.saturating_add(overhead_ns);
    }

    /// Builds the window's summary and starts the next window (names stay interned).
    pub fn finish_window(&mut self, meta: &WindowMeta) -> WindowSummary {
        let mut s = WindowSummary::empty(
            meta.pid,
            meta.window_start_unix_ns,
            meta.window_end_unix_ns.max(meta.window_start_unix_ns),
            meta.period_ns,
        );
        s.launch_span_ns = meta.launch_span_ns;
        s.summaries_dropped = meta.summaries_dropped;
        s.launches = std::mem::take(&mut self.launches);
        s.launches_in_window = std::mem::take(&mut self.launches_in_window);
        s.classes =
            std::mem::take(&mut self.classes).into_iter().map(|(class, time)| ClassStats { class, time }).collect();
        let (top, other) = self.rank_kernels();
        s.top_kernels = top;
        s.other_kernels = other;
        s.folded_kernels = std::mem::take(&mut self.folded);
        s.graph_kernels = std::mem::take(&mut self.graph);
        s.memcpy = std::mem::take(&mut self.memcpy)
            .into_iter()
            .map(|((kind, src, dst, is_async), transfer)| MemcpyStats { kind, src, dst, is_async, transfer })
            .collect();
        s.memset = std::mem::take(&mut self.memset);
        s.sync = std::mem::take(&mut self.sync).into_iter().map(|(kind, time)| SyncStats { kind, time }).collect();
        s.gpu_gaps = self.gaps();
        s.duration_histogram = std::mem::replace(&mut self.histogram, [0; crate::summary::HISTOGRAM_BUCKETS]);
        s.dropped_records = std::mem::take(&mut self.dropped_records);
        s.invalid_records = std::mem::take(&mut self.invalid_records);
        s.callback_overhead_ns = std::mem::take(&mut self.callback_overhead_ns);
        s.callback_count = std::mem::take(&mut self.callback_count);
        s
    }

    /// The top kernels by total time (ties: the earlier interned first) and the rest summed.
    fn rank_kernels(&mut self) -> (Vec<KernelStats>, TimeStats) {
        let mut ranked: Vec<(usize, NameStats)> =
            self.per_name.iter().copied().enumerate().filter(|(_, stats)| stats.count > 0).collect();
        ranked.sort_by(|(a_id, a), (b_id, b)| b.total_ns.cmp(&a.total_ns).then(a_id.cmp(b_id)));
        let mut other = TimeStats::default();
        for (_, stats) in ranked.iter().skip(self.config.top_kernels) {
            other.count = other.count.saturating_add(stats.count);
            other.total_ns = other.total_ns.saturating_add(stats.total_ns);
        }
        let top = ranked
            .into_iter()
            .take(self.config.top_kernels)
            .map(|(id, stats)| {
                let (name, class) = &self.names[id];
                KernelStats {
                    name: name.to_string(),
                    class: *class,
                    count: stats.count,
                    total_ns: stats.total_ns,
                    max_ns: stats.max_ns,
                    grid: stats.grid,
                    block: stats.block,
                }
            })
            .collect();
        self.per_name.iter_mut().for_each(|stats| *stats = NameStats::default());
        (top, other)
    }

    /// Per device: merge the kernel intervals (overlapping streams count once), then sum the
    /// gaps between consecutive merged intervals.
    fn gaps(&mut self) -> Vec<DeviceGaps> {
        self.intervals.sort_unstable_by_key(|i| (i.device, i.start_ns, i.end_ns));
        let mut out: Vec<DeviceGaps> = Vec::new();
        // The merged interval being extended: device, start, end.
        let mut merged: Option<(u32, u64, u64)> = None;
        for interval in &self.intervals {
            match merged {
                Some((device, start, end)) if device == interval.device => {
                    if interval.start_ns <= end {
                        merged = Some((device, start, end.max(interval.end_ns)));
                        continue;
                    }
                    if let Some(g) = out.last_mut() {
                        let gap = interval.start_ns - end;
                        g.busy_ns = g.busy_ns.saturating_add(end - start);
                        g.idle_ns = g.idle_ns.saturating_add(gap);
                        g.gap_count += 1;
                        g.max_gap_ns = g.max_gap_ns.max(gap);
                    }
                    merged = Some((device, interval.start_ns, interval.end_ns));
                }
                _ => {
                    if let (Some((_, start, end)), Some(g)) = (merged, out.last_mut()) {
                        g.busy_ns = g.busy_ns.saturating_add(end - start);
                    }
                    out.push(no_gaps(interval.device));
                    merged = Some((interval.device, interval.start_ns, interval.end_ns));
                }
            }
        }
        if let (Some((_, start, end)), Some(g)) = (merged, out.last_mut()) {
            g.busy_ns = g.busy_ns.saturating_add(end - start);
        }
        self.intervals.clear();
        for (device, dropped) in std::mem::take(&mut self.intervals_dropped) {
            match out.binary_search_by_key(&device, |g| g.device) {
                Ok(index) => out[index].intervals_dropped = dropped,
                Err(index) => out.insert(index, DeviceGaps { intervals_dropped: dropped, ..no_gaps(device) }),
            }
        }
        // More devices than the wire carries cannot happen on real nodes (CUDA ordinals are
        // dense and few); keep the lowest ordinals.
        out.truncate(MAX_DEVICES);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::{KernelKind, MathPipe, Precision};
    use crate::summary::HISTOGRAM_BUCKETS;

    const META: WindowMeta = WindowMeta {
        pid: 99,
        window_start_unix_ns: 1_000_000_000,
        window_end_unix_ns: 1_500_000_000,
        period_ns: 30_000_000_000,
        launch_span_ns: 30_000_000_000,
        summaries_dropped: 0,
    };

    fn kernel(kernel: KernelRef, device: u32, start_ns: u64, end_ns: u64) -> KernelRecord {
        KernelRecord { kernel, start_ns, end_ns, device, stream: 7, grid: [1, 1, 1], block: [128, 1, 1], graph_id: 0 }
    }

    #[test]
    fn kernels_are_summed_by_class_and_name_and_ranked_by_time() {
        let mut agg = Aggregator::new(AggregatorConfig::default());
        let sgemm = agg.intern("ampere_sgemm_128x64_tn");
        let bf16 = agg.intern("ampere_bf16_s16816gemm_bf16_256x128_ldg8_f2f_stages_32x3_nn");
        let copy = agg.intern("void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float> >");
        agg.kernel(&kernel(sgemm, 0, 0, 1_000));
        agg.kernel(&KernelRecord { grid: [86, 3, 3], block: [256, 1, 1], ..kernel(sgemm, 0, 2_000, 5_000) });
        agg.kernel(&kernel(bf16, 0, 6_000, 8_000));
        agg.kernel(&KernelRecord { graph_id: 4, ..kernel(copy, 0, 9_000, 9_003) });
        let s = agg.finish_window(&META);

        assert_eq!(s.top_kernels.len(), 3);
        let top = &s.top_kernels[0];
        assert_eq!(top.name, "ampere_sgemm_128x64_tn");
        assert_eq!((top.count, top.total_ns, top.max_ns), (2, 4_000, 3_000));
        assert_eq!((top.grid, top.block), ([86, 3, 3], [256, 1, 1]), "dimensions of the longest launch");
        assert_eq!(top.class, KernelClass { kind: KernelKind::Gemm, pipe: MathPipe::Simt, precision: Precision::Fp32 });
        assert_eq!((s.top_kernels[1].total_ns, s.top_kernels[2].total_ns), (2_000, 3));
        assert_eq!(s.other_kernels, TimeStats::default());
        assert_eq!(s.graph_kernels, TimeStats { count: 1, total_ns: 3 });

        let by_label: Vec<(String, u64, u64)> =
            s.classes.iter().map(|c| (c.class.label(), c.time.count, c.time.total_ns)).collect();
        assert_eq!(
            by_label,
            vec![
                ("gemm/tensor/bf16".to_string(), 1, 2_000),
                ("gemm/simt/fp32".to_string(), 2, 4_000),
                ("elementwise".to_string(), 1, 3),
            ]
        );
        let mut histogram = [0u64; HISTOGRAM_BUCKETS];
        histogram[1] = 1; // 3 ns
        histogram[9] = 1; // 1000 ns
        histogram[10] = 1; // 2000 ns
        histogram[11] = 1; // 3000 ns
        assert_eq!(s.duration_histogram, histogram);
    }

    #[test]
    fn gaps_merge_overlapping_streams_per_device() {
        let mut agg = Aggregator::new(AggregatorConfig::default());
        let k = agg.intern("triton_poi_fused_add_0");
        // Out of completion order, as CUPTI buffers deliver them across streams.
        agg.kernel(&kernel(k, 0, 1_000, 1_100));
        agg.kernel(&kernel(k, 0, 200, 300));
        agg.kernel(&kernel(k, 1, 10, 20));
        agg.kernel(&kernel(k, 0, 50, 150)); // overlaps [0, 100] on another stream
        agg.kernel(&kernel(k, 0, 0, 100));
        let s = agg.finish_window(&META);
        assert_eq!(
            s.gpu_gaps,
            vec![
                DeviceGaps {
                    device: 0,
                    busy_ns: 350,
                    idle_ns: 750,
                    gap_count: 2,
                    max_gap_ns: 700,
                    intervals_dropped: 0
                },
                DeviceGaps { device: 1, busy_ns: 10, idle_ns: 0, gap_count: 0, max_gap_ns: 0, intervals_dropped: 0 },
            ]
        );
    }

    #[test]
    fn a_kernel_inside_another_adds_no_busy_time_and_touching_kernels_no_gap() {
        let mut agg = Aggregator::new(AggregatorConfig::default());
        let k = agg.intern("gemv2T_kernel_val");
        agg.kernel(&kernel(k, 2, 0, 1_000));
        agg.kernel(&kernel(k, 2, 100, 200));
        agg.kernel(&kernel(k, 2, 1_000, 1_050));
        agg.kernel(&kernel(k, 2, 1_150, 1_200));
        let s = agg.finish_window(&META);
        assert_eq!(
            s.gpu_gaps,
            vec![DeviceGaps {
                device: 2,
                busy_ns: 1_100,
                idle_ns: 100,
                gap_count: 1,
                max_gap_ns: 100,
                intervals_dropped: 0
            }]
        );
    }

    #[test]
    fn names_beyond_the_cap_are_folded_but_still_classified() {
        let mut agg = Aggregator::new(AggregatorConfig { max_kernel_names: 2, ..AggregatorConfig::default() });
        let a = agg.intern("volta_sgemm_64x32_sliced1x4_nn");
        let b = agg.intern("ncclDevKernel_AllGather_RING_LL");
        let c = agg.intern("ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x1_nn");
        assert!(!a.is_folded() && !b.is_folded() && c.is_folded());
        assert_eq!(agg.intern("volta_sgemm_64x32_sliced1x4_nn"), a, "an interned name keeps its id");
        assert_eq!(agg.interned_names(), 2);
        agg.kernel(&kernel(a, 0, 0, 10));
        agg.kernel(&kernel(c, 0, 10, 40));
        agg.kernel(&kernel(c, 0, 40, 50));
        let s = agg.finish_window(&META);
        assert_eq!(s.top_kernels.len(), 1);
        assert_eq!(s.folded_kernels, TimeStats { count: 2, total_ns: 40 });
        let fp16 = s.classes.iter().find(|c| c.class.label() == "gemm/tensor/fp16").unwrap();
        assert_eq!(fp16.time, TimeStats { count: 2, total_ns: 40 });
    }

    #[test]
    fn kernels_below_the_top_n_are_summed_and_ties_keep_interning_order() {
        let mut agg = Aggregator::new(AggregatorConfig { top_kernels: 1, ..AggregatorConfig::default() });
        let first = agg.intern("first_kernel");
        let second = agg.intern("second_kernel");
        let third = agg.intern("third_kernel");
        agg.kernel(&kernel(third, 0, 0, 5));
        agg.kernel(&kernel(second, 0, 5, 10));
        agg.kernel(&kernel(first, 0, 10, 15));
        let s = agg.finish_window(&META);
        assert_eq!(s.top_kernels.iter().map(|k| k.name.as_str()).collect::<Vec<_>>(), vec!["first_kernel"]);
        assert_eq!(s.other_kernels, TimeStats { count: 2, total_ns: 10 });
    }

    #[test]
    fn records_ending_before_they_start_are_counted_not_aggregated() {
        let mut agg = Aggregator::new(AggregatorConfig::default());
        let k = agg.intern("elementwise_kernel");
        agg.kernel(&kernel(k, 0, 10, 5));
        agg.memcpy(&MemcpyRecord {
            kind: MemcpyKind::HostToDevice,
            src: MemoryKind::Pinned,
            dst: MemoryKind::Device,
            is_async: true,
            bytes: 8,
            start_ns: 3,
            end_ns: 2,
        });
        agg.memset(&MemsetRecord { bytes: 8, start_ns: 3, end_ns: 1 });
        let s = agg.finish_window(&META);
        assert_eq!(s.invalid_records, 3);
        assert!(s.classes.is_empty() && s.top_kernels.is_empty() && s.memcpy.is_empty() && s.gpu_gaps.is_empty());
        assert_eq!(s.memset, TransferStats::default());
        assert_eq!(s.duration_histogram, [0; HISTOGRAM_BUCKETS]);
    }

    #[test]
    fn intervals_beyond_the_cap_are_counted_per_device() {
        let mut agg = Aggregator::new(AggregatorConfig { max_intervals: 2, ..AggregatorConfig::default() });
        let k = agg.intern("reduce_kernel");
        agg.kernel(&kernel(k, 0, 0, 10));
        agg.kernel(&kernel(k, 0, 20, 30));
        agg.kernel(&kernel(k, 0, 40, 50));
        agg.kernel(&kernel(k, 5, 0, 10));
        let s = agg.finish_window(&META);
        assert_eq!(
            s.gpu_gaps,
            vec![
                DeviceGaps { device: 0, busy_ns: 20, idle_ns: 10, gap_count: 1, max_gap_ns: 10, intervals_dropped: 1 },
                DeviceGaps { device: 5, busy_ns: 0, idle_ns: 0, gap_count: 0, max_gap_ns: 0, intervals_dropped: 1 },
            ]
        );
        // Kernel time is still complete: only the gap computation is partial.
        assert_eq!(s.classes[0].time, TimeStats { count: 4, total_ns: 40 });
    }

    #[test]
    fn copies_memsets_syncs_and_counters_are_summed_and_reset_per_window() {
        let mut agg = Aggregator::new(AggregatorConfig::default());
        let pageable = MemcpyRecord {
            kind: MemcpyKind::HostToDevice,
            src: MemoryKind::Pageable,
            dst: MemoryKind::Device,
            is_async: true,
            bytes: 1 << 20,
            start_ns: 100,
            end_ns: 400,
        };
        agg.memcpy(&pageable);
        agg.memcpy(&MemcpyRecord { bytes: 3 << 20, start_ns: 500, end_ns: 1_400, ..pageable });
        agg.memcpy(&MemcpyRecord { is_async: false, ..pageable });
        agg.memcpy(&MemcpyRecord {
            kind: MemcpyKind::DeviceToHost,
            src: MemoryKind::Device,
            dst: MemoryKind::Pinned,
            ..pageable
        });
        agg.memset(&MemsetRecord { bytes: 64, start_ns: 0, end_ns: 2 });
        agg.memset(&MemsetRecord { bytes: 64, start_ns: 5, end_ns: 9 });
        agg.sync(&SyncRecord { kind: SyncKind::Stream, duration_ns: 7_000 });
        agg.sync(&SyncRecord { kind: SyncKind::Stream, duration_ns: 3_000 });
        agg.sync(&SyncRecord { kind: SyncKind::Device, duration_ns: 1_000 });
        agg.launches(9_000, false);
        agg.launches(1_000, true);
        agg.dropped_records(12);
        agg.callback_overhead(10_000, 2_500_000);
        let s = agg.finish_window(&WindowMeta { summaries_dropped: 4, ..META });

        let copies: Vec<(MemcpyKind, MemoryKind, MemoryKind, bool, TransferStats)> =
            s.memcpy.iter().map(|m| (m.kind, m.src, m.dst, m.is_async, m.transfer)).collect();
        assert_eq!(
            copies,
            vec![
                (
                    MemcpyKind::HostToDevice,
                    MemoryKind::Pageable,
                    MemoryKind::Device,
                    false,
                    TransferStats { count: 1, bytes: 1 << 20, total_ns: 300 }
                ),
                (
                    MemcpyKind::HostToDevice,
                    MemoryKind::Pageable,
                    MemoryKind::Device,
                    true,
                    TransferStats { count: 2, bytes: 4 << 20, total_ns: 1_200 }
                ),
                (
                    MemcpyKind::DeviceToHost,
                    MemoryKind::Device,
                    MemoryKind::Pinned,
                    true,
                    TransferStats { count: 1, bytes: 1 << 20, total_ns: 300 }
                ),
            ]
        );
        assert_eq!(s.pageable_async_copies(), TransferStats { count: 2, bytes: 4 << 20, total_ns: 1_200 });
        assert_eq!(s.memset, TransferStats { count: 2, bytes: 128, total_ns: 6 });
        let syncs: Vec<(SyncKind, TimeStats)> = s.sync.iter().map(|x| (x.kind, x.time)).collect();
        assert_eq!(
            syncs,
            vec![
                (SyncKind::Device, TimeStats { count: 1, total_ns: 1_000 }),
                (SyncKind::Stream, TimeStats { count: 2, total_ns: 10_000 }),
            ]
        );
        assert_eq!(s.sync_ns(), 11_000);
        assert_eq!((s.launches, s.launches_in_window, s.launch_span_ns), (10_000, 1_000, 30_000_000_000));
        assert_eq!(s.launches_per_second(), Some(10_000.0 / 30.0));
        assert_eq!((s.dropped_records, s.callback_count, s.callback_overhead_ns), (12, 10_000, 2_500_000));
        assert_eq!(
            (s.pid, s.window_start_unix_ns, s.window_end_unix_ns, s.period_ns),
            (99, 1_000_000_000, 1_500_000_000, 30_000_000_000)
        );
        assert_eq!(s.summaries_dropped, 4);

        // The next window starts empty; interned names survive.
        let names = agg.interned_names();
        let next = agg.finish_window(&META);
        assert_eq!(
            next,
            WindowSummary {
                launch_span_ns: META.launch_span_ns,
                ..WindowSummary::empty(99, 1_000_000_000, 1_500_000_000, 30_000_000_000)
            }
        );
        assert_eq!(agg.interned_names(), names);
    }

    #[test]
    fn long_names_are_cut_at_a_character_boundary() {
        let mut agg = Aggregator::new(AggregatorConfig::default());
        // 'é' is two bytes: a cut at MAX_NAME_BYTES would split it.
        let long = format!("{}é{}", "a".repeat(MAX_NAME_BYTES - 1), "b".repeat(100));
        let k = agg.intern(&long);
        agg.kernel(&kernel(k, 0, 0, 1));
        let s = agg.finish_window(&META);
        assert_eq!(s.top_kernels[0].name, "a".repeat(MAX_NAME_BYTES - 1));
        // Same prefix, same entry.
        assert_eq!(agg.intern(&format!("{}é-other", "a".repeat(MAX_NAME_BYTES - 1))), k);
    }

    #[test]
    fn an_aggregated_summary_goes_through_the_wire_unchanged() {
        let mut agg = Aggregator::new(AggregatorConfig::default());
        for i in 0..40u64 {
            let k = agg.intern(&format!("ncclDevKernel_AllReduce_Sum_bf16_RING_LL_{}", i % 20));
            agg.kernel(&kernel(k, (i % 3) as u32, i * 100, i * 100 + 50 + i));
        }
        agg.sync(&SyncRecord { kind: SyncKind::Event, duration_ns: 5 });
        let s = agg.finish_window(&META);
        assert_eq!(s.top_kernels.len(), 16);
        assert_eq!(s.other_kernels.count, 8);
        let frame = crate::wire::encode(&s).unwrap();
        assert_eq!(crate::wire::decode(&frame).unwrap(), s);
    }
}
