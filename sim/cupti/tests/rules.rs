//! Each built-in CUDA scenario opens exactly the findings it is built for: its node played
//! through the rules at 1 Hz (the simulator's snapshots, as `analysis/tests/scenarios.rs` does),
//! with a profile of its `[cuda]` process added the way the agent builds one — a 0.5 s window of
//! the workload's deterministic schedule every 30 s, through gpuscope's window aggregator into
//! `KernelProfile::record`. The kernel-level findings that open are exactly `cuda.expect`, the
//! NVML-level ones are among `expect` (the 10-minute rules are `analysis/tests/scenarios.rs`'s).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use cupti::play::{Schedule, Step};
use gpuscope_analysis::{AnalysisConfig, Analyzer, Change};
use gpuscope_core::KernelProfile;
use gpuscope_cupti::aggregate::{Aggregator, KernelRecord, MemcpyRecord, MemsetRecord, SyncRecord, WindowMeta};
use gpuscope_cupti::summary::{MemcpyKind, MemoryKind, SyncKind};
use gpuscope_sim::Simulation;
use gpuscope_sim::cuda::{CopyKind, CudaSpec, HostMemory};
use gpuscope_sim::scenario::{BUILTIN, GpuSelection, Scenario};
use gpuscope_sim::snapshot::{T0_MS, snapshot};
use std::collections::BTreeSet;
use std::sync::Arc;

const KERNEL_RULES: &[&str] = &["fp32-gemm-kernels", "pageable-memcpy", "sync-heavy", "gpu-gaps", "short-kernels"];
const PERIOD_S: u64 = 30;
const WINDOW_NS: u64 = 500_000_000;

/// One profiling window of `spec` starting at `start_ns`: the schedule's first 0.5 s.
fn window(agg: &mut Aggregator, spec: &CudaSpec, start_ns: u64) -> gpuscope_cupti::WindowSummary {
    let rate = spec.launches_per_s;
    let launches = (rate * WINDOW_NS as f64 / 1e9).round() as u64;
    for step in Schedule::new(spec, rate, launches).unwrap() {
        match step {
            Step::Launch { kernel, start, end, .. } => {
                let k = &spec.kernels[kernel];
                let r = agg.intern(&k.name);
                agg.kernel(&KernelRecord {
                    kernel: r,
                    start_ns: start_ns + start,
                    end_ns: start_ns + end,
                    device: spec.device,
                    stream: k.stream,
                    grid: k.grid,
                    block: k.block,
                    graph_id: if k.graph { kernel as u32 + 1 } else { 0 },
                });
            }
            Step::Copy { copy, start, end, .. } => {
                let c = &spec.copies[copy];
                let host = match c.host {
                    Some(HostMemory::Pageable) => MemoryKind::Pageable,
                    _ => MemoryKind::Pinned,
                };
                let (kind, src, dst) = match c.kind {
                    CopyKind::Htod => (MemcpyKind::HostToDevice, host, MemoryKind::Device),
                    CopyKind::Dtoh => (MemcpyKind::DeviceToHost, MemoryKind::Device, host),
                    CopyKind::Dtod => (MemcpyKind::DeviceToDevice, MemoryKind::Device, MemoryKind::Device),
                    CopyKind::Htoh => (MemcpyKind::HostToHost, host, host),
                };
                agg.memcpy(&MemcpyRecord {
                    kind,
                    src,
                    dst,
                    is_async: c.r#async,
                    bytes: c.bytes,
                    start_ns: start_ns + start,
                    end_ns: start_ns + end,
                });
            }
            Step::Memset { memset, start, end, .. } => {
                let bytes = spec.memsets[memset].bytes;
                agg.memset(&MemsetRecord { bytes, start_ns: start_ns + start, end_ns: start_ns + end });
            }
            Step::Sync { sync, host, end } => {
                let kind = match spec.syncs[sync].kind {
                    gpuscope_sim::cuda::SyncKind::Device => SyncKind::Device,
                    gpuscope_sim::cuda::SyncKind::Stream => SyncKind::Stream,
                    gpuscope_sim::cuda::SyncKind::Event => SyncKind::Event,
                    gpuscope_sim::cuda::SyncKind::StreamWaitEvent => SyncKind::StreamWaitEvent,
                };
                agg.sync(&SyncRecord { kind, duration_ns: end - host });
            }
            Step::Idle { .. } => {}
        }
    }
    // Launches are counted over the whole period, at the workload's rate.
    agg.launches((rate * PERIOD_S as f64).round() as u64, false);
    agg.finish_window(&WindowMeta {
        pid: spec.pid,
        window_start_unix_ns: start_ns,
        window_end_unix_ns: start_ns + WINDOW_NS,
        period_ns: PERIOD_S * 1_000_000_000,
        launch_span_ns: PERIOD_S * 1_000_000_000,
        summaries_dropped: 0,
    })
}

/// Plays `name` for `secs` with its process profiled from second `from`: the rule ids that opened.
fn opened(name: &str, from: u64, secs: u64) -> BTreeSet<String> {
    let sc = Scenario::load(name).unwrap();
    let spec = sc.cuda.clone().expect("a [cuda] scenario");
    let process = sc.processes.iter().find(|p| p.pid == spec.pid).unwrap();
    let gpus = match &process.gpus {
        GpuSelection::List(l) => l.clone(),
        GpuSelection::All(_) => (0..sc.gpu_count()).collect(),
    };
    let sim = Simulation::new(sc.clone(), 0).unwrap();
    let mut agg = Aggregator::new(Default::default());
    let mut profile = KernelProfile { pid: spec.pid, name: process.name.clone(), gpus, ..KernelProfile::default() };
    let mut analyzer = Analyzer::new(AnalysisConfig::default(), 900.0);
    let mut rules = BTreeSet::new();
    for t in 0..=secs {
        let mut s = snapshot(&sim, t as f64);
        if t >= from && (t - from).is_multiple_of(PERIOD_S) {
            let start_ns = (T0_MS + t * 1000) * 1_000_000 - WINDOW_NS;
            profile.record(&window(&mut agg, &spec, start_ns));
        }
        if t >= from {
            s.kernel_profiles = vec![profile.clone()];
        }
        gpuscope_analysis::validate::sanitize(&mut s, 1.0);
        analyzer.ingest(Arc::new(s));
        for c in analyzer.evaluate(T0_MS + t * 1000) {
            if let Change::Opened(f) = c {
                rules.insert(f.rule.clone());
            }
        }
    }
    rules
}

#[test]
fn each_cuda_scenario_opens_exactly_its_kernel_level_findings() {
    let mut failures = Vec::new();
    for (name, _) in BUILTIN {
        let sc = Scenario::load(name).unwrap();
        let Some(cuda) = &sc.cuda else { continue };
        // Profiled from second 60 (after any warm-up phase) for four windows.
        let got = opened(name, 60, 60 + 4 * PERIOD_S);
        let kernel: BTreeSet<String> = got.iter().filter(|r| KERNEL_RULES.contains(&r.as_str())).cloned().collect();
        let want: BTreeSet<String> = cuda.expect.iter().cloned().collect();
        if kernel != want {
            failures.push(format!("{name}: kernel-level {kernel:?}, expected {want:?}"));
        }
        let nvml: Vec<&String> = got.iter().filter(|r| !KERNEL_RULES.contains(&r.as_str())).collect();
        if let Some(r) = nvml.iter().find(|r| !sc.expect.contains(r)) {
            failures.push(format!("{name}: {r} opened, not in expect {:?}", sc.expect));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
