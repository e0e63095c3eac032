//! Building blocks of the rules' boundary tests: hand-made windows, and one rule evaluated over
//! them at a fixed time.

use super::{Ctx, Hit, rule};
use crate::config::AnalysisConfig;
use crate::window::NodeWindow;
use gpuscope_core::{GpuSample, HostSample, KernelProfile, NodeInfo, NodeSnapshot, ProcessSample};
use std::sync::Arc;

/// Evaluation time of every test, ms since the epoch.
pub const NOW_MS: u64 = 1_800_000_000_000;

/// A window of one snapshot a second for the `secs` seconds up to `NOW_MS` (both ends
/// included): `at(t)` is the snapshot `t` seconds after the first; its timestamp is set here.
/// It keeps what the analyzer keeps: thin records for an hour, whole snapshots for twice the
/// smoothing span.
pub fn series(secs: u64, at: impl Fn(u64) -> NodeSnapshot) -> NodeWindow {
    let mut w = NodeWindow::new(3_600_000, 20_000, 60_000);
    for t in 0..=secs {
        let mut s = at(t);
        s.timestamp_ms = NOW_MS - (secs - t) * 1000;
        w.push(Arc::new(s));
    }
    w
}

/// The same snapshot every second over the default smoothing span (10 s).
pub fn steady(snap: NodeSnapshot) -> NodeWindow {
    series(10, |_| snap.clone())
}

/// A snapshot of `host` with these GPUs, no host sample and no processes.
pub fn node(host: &str, gpus: Vec<GpuSample>) -> NodeSnapshot {
    NodeSnapshot { node: NodeInfo { hostname: host.into(), ..NodeInfo::default() }, gpus, ..NodeSnapshot::default() }
}

/// GPU `index` with nothing read.
pub fn gpu(index: u32) -> GpuSample {
    GpuSample { index, uuid: format!("GPU-{index}"), ..GpuSample::default() }
}

/// A training process holding `bytes` of memory on GPU `gpu`.
pub fn process(gpu: u32, bytes: u64) -> ProcessSample {
    ProcessSample {
        pid: 4242,
        name: "python".into(),
        gpu_index: gpu,
        gpu_memory_bytes: Some(bytes),
        workload: Some(gpuscope_core::WorkloadClass::Training),
        ..ProcessSample::default()
    }
}

/// A snapshot of `host` whose GPU 0 has SM activity `sm` and a process on it, with this host
/// sample: the starting point of the node-scope rules.
pub fn busy_host(host: &str, sm: Option<f64>, h: HostSample) -> NodeSnapshot {
    NodeSnapshot {
        processes: vec![process(0, 1 << 30)],
        host: Some(h),
        ..node(host, vec![GpuSample { sm_active_ratio: sm, ..gpu(0) }])
    }
}

/// Seconds between two profiling windows in [`profiled`] (the default period).
pub const PERIOD_S: u64 = 30;

/// A profiled process: `python` with PID `pid` on GPU 0, 0.5 s windows every 30 s, nothing
/// measured yet (no kernels, copies or waits).
pub fn kernel_profile(pid: u32) -> KernelProfile {
    KernelProfile {
        pid,
        name: "python".into(),
        gpus: vec![0],
        window_seconds: 0.5,
        period_seconds: PERIOD_S as f64,
        ..KernelProfile::default()
    }
}

/// A window of one snapshot a second for `secs` seconds up to `NOW_MS` (as [`series`]) of a
/// node with these GPUs and one profiled process: window `k` (`at(k)`) arrives at second
/// `k × PERIOD_S` and every snapshot until the next carries it; its count and end time are set
/// here (it ends at its arrival).
pub fn profiled(secs: u64, gpus: Vec<GpuSample>, at: impl Fn(u64) -> KernelProfile) -> NodeWindow {
    series(secs, |t| {
        let k = t / PERIOD_S;
        let mut p = at(k);
        if p.windows_total == 0 {
            p.windows_total = k + 1;
        }
        p.window_end_unix_ms = NOW_MS - (secs - k * PERIOD_S) * 1000;
        NodeSnapshot { kernel_profiles: vec![p], ..node("n0", gpus.clone()) }
    })
}

/// Evaluates the rule `id` with `cfg` over these windows at `NOW_MS`.
pub fn eval_with(id: &str, cfg: &AnalysisConfig, nodes: &[(&str, &NodeWindow)]) -> Vec<Hit> {
    let Some(eval) = rule(id).and_then(|r| r.eval) else { panic!("{id} is not an evaluating rule") };
    eval(&Ctx { now_ms: NOW_MS, nodes: nodes.to_vec(), cfg, scale: cfg.scale() })
}

/// Evaluates the rule `id` with the default configuration over one node's window.
pub fn eval(id: &str, w: &NodeWindow) -> Vec<Hit> {
    eval_with(id, &AnalysisConfig::default(), &[("n0", w)])
}

/// Evaluates the rule `id` over one node's window with the configuration read from `toml`.
pub fn eval_toml(id: &str, toml: &str, w: &NodeWindow) -> Vec<Hit> {
    let cfg: AnalysisConfig = toml::from_str(toml).unwrap_or_else(|e| panic!("{toml}: {e}"));
    eval_with(id, &cfg, &[("n0", w)])
}

/// The evidence of a hit as (signal, value, threshold), values rounded to 1e-6.
pub fn evidence(h: &Hit) -> Vec<(String, f64, f64)> {
    let r = |x: f64| (x * 1e6).round() / 1e6;
    h.evidence.iter().map(|e| (e.signal.clone(), r(e.value), r(e.threshold))).collect()
}

/// The one hit of `hits`, on node `n0`, GPU list `gpus`.
pub fn one_hit<'a>(hits: &'a [Hit], gpus: &[u32]) -> &'a Hit {
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0].node.as_deref(), Some("n0"));
    assert_eq!(hits[0].gpus, gpus);
    &hits[0]
}
