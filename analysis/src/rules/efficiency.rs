//! Why is the job slow: efficiency rules.

use super::{Ctx, Hit, ev, gpu_hit, node_hit};
use crate::window::mean;
use gpuscope_core::{NicKind, NodeSnapshot};
use std::collections::BTreeMap;

fn pct(x: f64) -> String {
    format!("{:.0}%", x * 100.0)
}

/// GPUs with a process on them in this snapshot.
fn held(s: &NodeSnapshot) -> Vec<u32> {
    let mut v: Vec<u32> = s.processes.iter().map(|p| p.gpu_index).collect();
    v.sort_unstable();
    v.dedup();
    v
}

pub(super) fn no_tensor_cores(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let major =
            g.compute_capability.as_deref().and_then(|cc| cc.split('.').next()).and_then(|m| m.parse::<u32>().ok());
        if major.is_none_or(|m| m < 7) {
            continue;
        }
        // Tensor activity must have been measured: absent is not "unused".
        let Some(tensor) = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.tensor_active_ratio) else { continue };
        let fp32 = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.fp32_active_ratio);
        let busy = match fp32 {
            Some(f) => (f >= t.fp32_high).then(|| ev("fp32", f, t.fp32_high)),
            None => {
                c.activity(w, g.index).filter(|(a, _)| *a >= t.sm_active_low).map(|(a, n)| ev(n, a, t.sm_active_low))
            }
        };
        if let Some(e) = busy
            && tensor < t.tensor_low
        {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} does its math in FP32 ({} FP32 pipe) while its tensor cores idle ({})",
                    g.index,
                    pct(e.value),
                    pct(tensor)
                ),
                vec![e, ev("tensor", tensor, t.tensor_low)],
            ));
        }
    }
    out
}

pub(super) fn fp64_heavy(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let m = |f: fn(&gpuscope_core::GpuSample) -> Option<f64>| w.gpu_mean(g.index, c.now_ms, c.span(), f);
        let (Some(fp64), Some(fp32), Some(tensor)) =
            (m(|g| g.fp64_active_ratio), m(|g| g.fp32_active_ratio), m(|g| g.tensor_active_ratio))
        else {
            continue;
        };
        if fp64 >= t.fp64_high && fp64 > fp32 + tensor {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} spends {} of its cycles in FP64, more than FP32 and tensor together",
                    g.index,
                    pct(fp64)
                ),
                vec![ev("fp64", fp64, t.fp64_high), ev("fp32+tensor", fp32 + tensor, fp64)],
            ));
        }
    }
    out
}

pub(super) fn launch_bound(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let util = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.utilization_ratio);
        let sm = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.sm_active_ratio);
        if let (Some(u), Some(sm)) = (util, sm)
            && u >= t.util_high
            && sm < t.sm_active_low
        {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} always has a kernel running ({}) but only {} of its SMs are busy",
                    g.index,
                    pct(u),
                    pct(sm)
                ),
                vec![ev("util", u, t.util_high), ev("sm_active", sm, t.sm_active_low)],
            ));
        }
    }
    out
}

pub(super) fn memory_bandwidth_bound(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let m = |f: fn(&gpuscope_core::GpuSample) -> Option<f64>| w.gpu_mean(g.index, c.now_ms, c.span(), f);
        let (Some(dram), Some(tensor), Some(fp32)) =
            (m(|g| g.dram_active_ratio), m(|g| g.tensor_active_ratio), m(|g| g.fp32_active_ratio))
        else {
            continue;
        };
        if dram >= t.dram_high && tensor < t.dram_bound_tensor_max && fp32 < t.dram_bound_fp32_max {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} is memory-bandwidth bound: DRAM {} busy, tensor {} and FP32 {}",
                    g.index,
                    pct(dram),
                    pct(tensor),
                    pct(fp32)
                ),
                vec![
                    ev("dram", dram, t.dram_high),
                    ev("tensor", tensor, t.dram_bound_tensor_max),
                    ev("fp32", fp32, t.dram_bound_fp32_max),
                ],
            ));
        }
    }
    out
}

/// Mean activity over the GPUs that hold a process (the job's GPUs), with the signal used.
fn job_gpu_activity(c: &Ctx, w: &crate::window::NodeWindow, s: &NodeSnapshot) -> Option<(f64, &'static str, Vec<u32>)> {
    let gpus: Vec<u32> = held(s).into_iter().filter(|g| s.gpus.iter().any(|x| x.index == *g && !x.lost)).collect();
    let acts: Vec<(f64, &'static str)> = gpus.iter().filter_map(|g| c.activity(w, *g)).collect();
    let name = acts.first()?.1;
    Some((mean(&acts.iter().map(|a| a.0).collect::<Vec<_>>())?, name, gpus))
}

pub(super) fn input_bound_cpu(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s) in c.latest() {
        let Some((act, name, gpus)) = job_gpu_activity(c, w, s) else { continue };
        let Some(busy) = w.host_mean(c.now_ms, c.span(), |h| h.cpu_busy_ratio) else { continue };
        if act < t.sm_active_low && busy >= t.cpu_busy_high {
            out.push(node_hit(
                node,
                s,
                gpus,
                format!(
                    "The host CPUs are {} busy while the GPUs wait ({} {}): the input pipeline cannot keep up",
                    pct(busy),
                    name,
                    pct(act)
                ),
                vec![ev(name, act, t.sm_active_low), ev("cpu_busy", busy, t.cpu_busy_high)],
            ));
        }
    }
    out
}

pub(super) fn input_bound_io(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s) in c.latest() {
        let Some((act, name, gpus)) = job_gpu_activity(c, w, s) else { continue };
        if act >= t.sm_active_low {
            continue;
        }
        let iowait = w.host_mean(c.now_ms, c.span(), |h| h.cpu_iowait_ratio);
        let disks: Vec<String> =
            s.host.as_ref().map(|h| h.disks.iter().map(|d| d.name.clone()).collect()).unwrap_or_default();
        let busiest = disks
            .iter()
            .filter_map(|d| {
                w.host_mean(c.now_ms, c.span(), |h| h.disks.iter().find(|x| &x.name == d).and_then(|x| x.busy_ratio))
                    .map(|b| (d.clone(), (b * c.scale).min(1.0)))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let mut evidence = vec![ev(name, act, t.sm_active_low)];
        let mut why = Vec::new();
        if let Some(wt) = iowait.filter(|w| *w >= t.iowait_high) {
            evidence.push(ev("iowait", wt, t.iowait_high));
            why.push(format!("the CPUs wait on I/O {} of the time", pct(wt)));
        }
        if let Some((d, b)) = busiest.filter(|(_, b)| *b >= t.nvme_busy_high) {
            evidence.push(ev(&format!("nvme_busy:{d}"), b, t.nvme_busy_high));
            why.push(format!("{d} is {} busy", pct(b)));
        }
        if !why.is_empty() {
            out.push(node_hit(
                node,
                s,
                gpus,
                format!("Storage cannot feed the GPUs ({} {}): {}", name, pct(act), why.join(", ")),
                evidence,
            ));
        }
    }
    out
}

pub(super) fn host_thread_bound(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s) in c.latest() {
        let Some((act, name, gpus)) = job_gpu_activity(c, w, s) else { continue };
        let ncpu = s.host.as_ref().map_or(0, |h| h.cpus.len());
        if act >= t.sm_active_low || ncpu < 2 {
            continue;
        }
        let cores: Vec<Option<f64>> =
            (0..ncpu).map(|i| w.host_mean(c.now_ms, c.span(), |h| h.cpus.get(i).and_then(|x| x.busy_ratio))).collect();
        let Some((hot, hot_busy)) =
            cores.iter().enumerate().filter_map(|(i, b)| b.map(|b| (i, b))).max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            continue;
        };
        let others: Vec<f64> = cores.iter().enumerate().filter(|(i, _)| *i != hot).filter_map(|(_, b)| *b).collect();
        let Some(rest) = mean(&others) else { continue };
        if hot_busy >= t.hot_core && rest < t.other_cores_max {
            out.push(node_hit(
                node,
                s,
                gpus,
                format!(
                    "CPU {hot} is {} busy while the other cores average {}: one host thread bounds the job ({} {})",
                    pct(hot_busy),
                    pct(rest),
                    name,
                    pct(act)
                ),
                vec![
                    ev(&format!("cpu{hot}_busy"), hot_busy, t.hot_core),
                    ev("other_cores_busy", rest, t.other_cores_max),
                    ev(name, act, t.sm_active_low),
                ],
            ));
        }
    }
    out
}

pub(super) fn pcie_h2d_bound(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let (Some(gen_), Some(width)) = (g.pcie_link_generation, g.pcie_link_width) else { continue };
        let Some(rx) = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.pcie_rx_bytes_per_second) else { continue };
        let Some((act, name)) = c.activity(w, g.index) else { continue };
        let frac = rx / gpuscope_core::units::pcie_bytes_per_second(gen_, width);
        if frac >= t.pcie_rx_high && act < t.sm_active_low {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} receives {:.1} GB/s over PCIe Gen{gen_} x{width} ({} of the link) while {} is {}",
                    g.index,
                    rx / 1e9,
                    pct(frac),
                    name,
                    pct(act)
                ),
                vec![ev("pcie_rx_fraction", frac, t.pcie_rx_high), ev(name, act, t.sm_active_low)],
            ));
        }
    }
    out
}

pub(super) fn comm_bound(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s) in c.latest() {
        let Some((act, name, gpus)) = job_gpu_activity(c, w, s) else { continue };
        if act >= t.sm_active_low {
            continue;
        }
        let mut busiest: Option<(String, f64)> = None;
        let mut consider = |what: String, frac: f64| {
            if busiest.as_ref().is_none_or(|b| frac > b.1) {
                busiest = Some((what, frac));
            }
        };
        for g in s.gpus.iter().filter(|g| !g.lost) {
            let links = g.nvlinks.iter().filter(|l| l.active == Some(true)).count();
            if links == 0 {
                continue;
            }
            let cap = links as f64 * t.nvlink_link_bytes_per_second;
            for f in [
                |g: &gpuscope_core::GpuSample| g.nvlink_rx_bytes_per_second,
                |g: &gpuscope_core::GpuSample| g.nvlink_tx_bytes_per_second,
            ] {
                if let Some(r) = w.gpu_mean(g.index, c.now_ms, c.span(), f) {
                    consider(format!("nvlink:gpu{}", g.index), c.workload_rate(r) / cap);
                }
            }
        }
        for nic in s.host.as_ref().map(|h| h.nics.as_slice()).unwrap_or_default() {
            let Some(speed) = nic.speed_bytes_per_second else { continue };
            for rx in [true, false] {
                let r = w.host_mean(c.now_ms, c.span(), |h| {
                    h.nics
                        .iter()
                        .find(|n| n.name == nic.name)
                        .and_then(|n| if rx { n.rx_bytes_per_second } else { n.tx_bytes_per_second })
                });
                if let Some(r) = r {
                    consider(format!("nic:{}", nic.name), c.workload_rate(r) / speed);
                }
            }
        }
        if let Some((what, frac)) = busiest.filter(|b| b.1 >= t.link_high) {
            out.push(node_hit(
                node,
                s,
                gpus,
                format!("Communication saturates {what} ({} of its bandwidth) while {name} is {}", pct(frac), pct(act)),
                vec![ev(&format!("{what}_fraction"), frac, t.link_high), ev(name, act, t.sm_active_low)],
            ));
        }
    }
    out
}

/// Nodes grouped by job (only nodes that report one).
fn jobs<'a>(c: &'a Ctx) -> BTreeMap<String, Vec<(&'a str, &'a crate::window::NodeWindow, &'a NodeSnapshot)>> {
    let mut m: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for (n, w, s) in c.latest() {
        if let Some(j) = &s.node.job {
            m.entry(j.clone()).or_default().push((n, w, s));
        }
    }
    m
}

fn job_hit(
    job: &str,
    node: Option<&str>,
    gpus: Vec<u32>,
    summary: String,
    evidence: Vec<gpuscope_core::Evidence>,
) -> Hit {
    Hit {
        node: node.map(str::to_string),
        gpus,
        job: Some(job.to_string()),
        severity: None,
        summary,
        evidence,
        action: None,
        recommendation: None,
    }
}

pub(super) fn nccl_over_tcp(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (job, members) in jobs(c) {
        if members.len() < 2 {
            continue;
        }
        let mut ib_total = 0.0;
        let mut eth_total = 0.0;
        let mut has_ib = false;
        for (_, w, s) in &members {
            for nic in s.host.as_ref().map(|h| h.nics.as_slice()).unwrap_or_default() {
                let r = w.host_mean(c.now_ms, c.span(), |h| {
                    h.nics
                        .iter()
                        .find(|n| n.name == nic.name)
                        .and_then(|n| Some(n.rx_bytes_per_second? + n.tx_bytes_per_second?))
                });
                let Some(r) = r.map(|r| c.workload_rate(r)) else { continue };
                match nic.kind {
                    NicKind::Infiniband => {
                        has_ib = true;
                        ib_total += r;
                    }
                    NicKind::Ethernet => eth_total += r,
                }
            }
        }
        let ib_per_node = ib_total / members.len() as f64;
        let eth_per_node = eth_total / members.len() as f64;
        if has_ib && ib_per_node < t.ib_idle_bytes_per_second && eth_per_node >= t.ethernet_busy_bytes_per_second {
            out.push(job_hit(
                &job,
                None,
                Vec::new(),
                format!(
                    "Job {job} ({} nodes) moves {:.1} GB/s per node over Ethernet while InfiniBand carries {:.0} MB/s: NCCL is on TCP",
                    members.len(),
                    eth_per_node / 1e9,
                    ib_per_node / 1e6
                ),
                vec![ev("ethernet_bytes_per_second", eth_per_node, t.ethernet_busy_bytes_per_second), ev("infiniband_bytes_per_second", ib_per_node, t.ib_idle_bytes_per_second)],
            ));
        }
    }
    out
}

pub(super) fn memory_underused(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        if !held(s).contains(&g.index) {
            continue;
        }
        let (Some(used), Some(total)) = (g.memory_used_bytes, g.memory_total_bytes) else { continue };
        let Some((act, name)) = c.activity(w, g.index) else { continue };
        let frac = used as f64 / total as f64;
        // An idle GPU is gpu-idle-allocated's business, not a batch-size question.
        if frac < t.memory_low && act < t.sm_active_low && act >= t.idle {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} uses {} of its memory and {} {}: room for a larger batch",
                    g.index,
                    pct(frac),
                    name,
                    pct(act)
                ),
                vec![ev("memory_used_fraction", frac, t.memory_low), ev(name, act, t.sm_active_low)],
            ));
        }
    }
    out
}

pub(super) fn memory_near_full(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, _, s, g) in c.gpus() {
        let (Some(used), Some(total)) = (g.memory_used_bytes, g.memory_total_bytes) else { continue };
        let frac = used as f64 / total as f64;
        if frac >= t.memory_high {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} memory is {} full ({:.1} of {:.1} GiB)",
                    g.index,
                    pct(frac),
                    used as f64 / 1073741824.0,
                    total as f64 / 1073741824.0
                ),
                vec![ev("memory_used_fraction", frac, t.memory_high)],
            ));
        }
    }
    out
}

pub(super) fn gpu_idle_allocated(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let holders: Vec<String> = s
            .processes
            .iter()
            .filter(|p| p.gpu_index == g.index && p.gpu_memory_bytes.is_some_and(|m| m > 0))
            .map(|p| format!("{} ({})", p.name, p.pid))
            .collect();
        if holders.is_empty() {
            continue;
        }
        let Some((act, name)) = c.activity(w, g.index) else { continue };
        if act < t.idle {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!("GPU {} is held by {} but does nothing ({} {})", g.index, holders.join(", "), name, pct(act)),
                vec![ev(name, act, t.idle)],
            ));
        }
    }
    out
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

pub(super) fn straggler(c: &Ctx) -> Vec<Hit> {
    let t = c.t;
    let mut out = Vec::new();
    for (job, members) in jobs(c) {
        // Every GPU of the job: (node, gpu, activity, utilization).
        let mut gpus: Vec<(&str, u32, f64, Option<f64>)> = Vec::new();
        for (node, w, s) in &members {
            for g in s.gpus.iter().filter(|g| !g.lost) {
                if let Some((a, _)) = c.activity(w, g.index) {
                    gpus.push((node, g.index, a, w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.utilization_ratio)));
                }
            }
        }
        if gpus.len() < 2 {
            continue;
        }
        let name = if members.iter().any(|(_, _, s)| s.gpus.iter().any(|g| g.sm_active_ratio.is_some())) {
            "sm_active"
        } else {
            "util"
        };
        // Node level first: the median of the nodes' means.
        let mut per_node: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (n, _, a, _) in &gpus {
            per_node.entry(n).or_default().push(*a);
        }
        let node_means: Vec<(&str, f64)> = per_node.iter().filter_map(|(n, v)| mean(v).map(|m| (*n, m))).collect();
        let mut all: Vec<f64> = node_means.iter().map(|x| x.1).collect();
        let slow_nodes: Vec<(&str, f64)> = if node_means.len() >= 2 {
            let med = median(&mut all).unwrap_or(0.0);
            node_means.iter().filter(|(_, m)| *m <= med - t.straggler_gap).copied().collect()
        } else {
            Vec::new()
        };
        let waiting = |exclude: &dyn Fn(&str, u32) -> bool| {
            let others: Vec<f64> = gpus.iter().filter(|(n, g, _, _)| !exclude(n, *g)).filter_map(|x| x.3).collect();
            mean(&others).is_some_and(|u| u >= t.straggler_others_util)
        };
        if slow_nodes.len() == 1 {
            let (n, m) = slow_nodes[0];
            let mut others: Vec<f64> = node_means.iter().filter(|x| x.0 != n).map(|x| x.1).collect();
            let med = median(&mut others).unwrap_or(0.0);
            if waiting(&|node, _| node == n) {
                let node_gpus: Vec<u32> = gpus.iter().filter(|x| x.0 == n).map(|x| x.1).collect();
                out.push(job_hit(
                    &job,
                    Some(n),
                    node_gpus,
                    format!(
                        "Node {n} is the straggler of job {job}: {name} {} against the others' median {}",
                        pct(m),
                        pct(med)
                    ),
                    vec![ev(name, m, med - t.straggler_gap), ev("job_median", med, med)],
                ));
            }
            continue;
        }
        // Else one GPU below the job's median.
        let mut acts: Vec<f64> = gpus.iter().map(|x| x.2).collect();
        let med = median(&mut acts).unwrap_or(0.0);
        let slow: Vec<&(&str, u32, f64, Option<f64>)> = gpus.iter().filter(|x| x.2 <= med - t.straggler_gap).collect();
        if slow.len() == 1 {
            let (n, g, a, _) = *slow[0];
            if waiting(&|node, gpu| node == n && gpu == g) {
                out.push(job_hit(
                    &job,
                    Some(n),
                    vec![g],
                    format!(
                        "GPU {g} on {n} is the straggler of job {job}: {name} {} against the job's median {}",
                        pct(a),
                        pct(med)
                    ),
                    vec![ev(name, a, med - t.straggler_gap), ev("job_median", med, med)],
                ));
            }
        }
    }
    out
}
