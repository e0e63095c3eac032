//! What an agent would publish for a simulated node, built straight from the engine (no NVML,
//! no /proc): for rule tests and load generators that need many realistic snapshots fast. The
//! real agent path is tested separately; this follows its conventions (absent where NVML would
//! answer NOT_SUPPORTED, rates as the agent computes them).

use crate::engine::{GpuState, Simulation};
use crate::scenario::EventKind;
use gpuscope_core::*;

/// Unix time (ms) at scenario second 0 in snapshots built here.
pub const T0_MS: u64 = 1_800_000_000_000;

/// The GPU sample an agent would publish for GPU `i` in state `s`.
pub fn gpu_sample(sim: &Simulation, i: u32, s: &GpuState) -> GpuSample {
    let info = &sim.gpus()[i as usize];
    let p = info.preset;
    let mut g = GpuSample {
        index: i,
        uuid: info.uuid.clone(),
        model: p.name.into(),
        compute_capability: Some(format!("{}.{}", p.compute_capability.0, p.compute_capability.1)),
        lost: s.lost,
        ..GpuSample::default()
    };
    if s.lost {
        return g;
    }
    let pct = |x: f64| (x * 100.0).round() / 100.0;
    g.utilization_ratio = Some(pct(s.util));
    g.memory_copy_utilization_ratio = Some(pct(s.mem_util));
    g.memory_total_bytes = Some(s.memory_total);
    g.memory_used_bytes = Some(s.memory_used);
    g.memory_free_bytes = Some(s.memory_free);
    g.temperature_celsius = Some(s.temp_c.round());
    g.slowdown_temperature_celsius = Some(f64::from(p.slowdown_temp_c));
    g.power_watts = Some(s.power_w);
    g.power_limit_watts = Some(s.power_limit_w);
    g.power_default_limit_watts = Some(p.power_default_w);
    g.energy_joules = Some(s.energy_j);
    g.sm_clock_hertz = Some(s.sm_clock_mhz.round() * 1e6);
    g.sm_clock_max_hertz = Some(f64::from(p.max_sm_clock_mhz) * 1e6);
    g.clock_event_reasons = Some(s.throttle);
    g.pcie_rx_bytes_per_second = Some(s.pcie_rx);
    g.pcie_tx_bytes_per_second = Some(s.pcie_tx);
    g.pcie_link_generation = Some(s.pcie_gen);
    g.pcie_link_generation_max = Some(p.pcie_gen);
    g.pcie_link_width = Some(s.pcie_width);
    g.pcie_link_width_max = Some(p.pcie_width);
    g.pcie_replays_total = Some(s.pcie_replays);
    if p.gpm {
        g.sm_active_ratio = Some(s.sm_active);
        g.sm_occupancy_ratio = Some(s.sm_occupancy);
        g.tensor_active_ratio = Some(s.tensor);
        g.fp64_active_ratio = Some(s.fp64);
        g.fp32_active_ratio = Some(s.fp32);
        g.fp16_active_ratio = Some(s.fp16);
        g.dram_active_ratio = Some(s.dram);
    }
    if p.nvlinks > 0 {
        g.nvlink_rx_bytes_per_second = Some(s.nvlink_rx);
        g.nvlink_tx_bytes_per_second = Some(s.nvlink_tx);
        let active = s.links.iter().filter(|l| l.active).count().max(1) as f64;
        g.nvlinks = s
            .links
            .iter()
            .enumerate()
            .map(|(l, x)| NvLinkSample {
                link: l as u32,
                active: Some(x.active),
                crc_errors_total: Some(x.crc_errors),
                replay_errors_total: Some(x.replay_errors),
                recovery_errors_total: Some(x.recovery_errors),
                // The GPU's traffic is shared evenly by its active links (the engine's split).
                tx_bytes_per_second: Some(if x.active { s.nvlink_tx / active } else { 0.0 }),
                rx_bytes_per_second: Some(if x.active { s.nvlink_rx / active } else { 0.0 }),
            })
            .collect();
    }
    g.ecc_uncorrected_volatile_total = Some(s.ecc_uncorrected_volatile);
    g.ecc_corrected_volatile_total = Some(s.ecc_corrected_volatile);
    if p.row_remapping {
        g.row_remap_pending = Some(s.remap_pending);
        g.row_remap_failed = Some(s.remap_failed);
        g.remapped_rows_uncorrectable_total = Some(s.remapped_uncorrectable);
    } else {
        g.retired_pages_total = Some(s.retired_pages);
        g.retired_pages_pending = Some(s.retired_pending);
    }
    g
}

/// The snapshot an agent would publish for `sim` at scenario second `t` (stamped `T0_MS + t`).
pub fn snapshot(sim: &Simulation, t: f64) -> NodeSnapshot {
    let sc = sim.scenario();
    let mut gpus = Vec::new();
    let mut processes = Vec::new();
    for i in 0..sim.gpus().len() as u32 {
        let Some(s) = sim.gpu(i, t) else { continue };
        let mut g = gpu_sample(sim, i, &s);
        if sim.failing(crate::scenario::FaultKind::Gpm, i, t) {
            // The agent reports GPM ratios absent while GPM fails (and asks again 30 s after a
            // failure, which these snapshots, built per second, do not play).
            for r in [
                &mut g.sm_active_ratio,
                &mut g.sm_occupancy_ratio,
                &mut g.tensor_active_ratio,
                &mut g.fp64_active_ratio,
                &mut g.fp32_active_ratio,
                &mut g.fp16_active_ratio,
                &mut g.dram_active_ratio,
            ] {
                *r = None;
            }
        }
        // A failing process list leaves the GPU without processes in that sample, as the agent
        // sees it.
        if !s.lost && !sim.failing(crate::scenario::FaultKind::Processes, i, t) {
            for p in sim.gpu_processes(i, t) {
                // The agent classifies the workload from the name and command line.
                let spec = sc.processes.iter().find(|x| x.pid == p.pid);
                let name: String = spec.map_or("python", |x| x.name.as_str()).chars().take(15).collect();
                let workload = spec.map(|x| gpuscope_core::workload::classify(&name, &x.cmdline).class);
                // The agent names the parent from its /proc entry: only scenario processes have one.
                let ppid = spec.map(|x| x.ppid);
                let parent_name = ppid
                    .and_then(|pp| sc.processes.iter().find(|x| x.pid == pp))
                    .map(|x| x.name.chars().take(15).collect());
                processes.push(ProcessSample {
                    pid: p.pid,
                    name,
                    user: spec.map(|x| x.user.clone()),
                    workload,
                    ppid,
                    parent_name,
                    gpu_index: i,
                    gpu_uuid: g.uuid.clone(),
                    gpu_memory_bytes: Some(p.memory_bytes),
                    sm_utilization_ratio: Some(p.sm_util),
                    ..ProcessSample::default()
                });
            }
        }
        gpus.push(g);
    }
    let h = sim.host(t);
    let n = h.core_busy.len() as f64;
    let mut nics: Vec<NicSample> = Vec::new();
    for nic in &h.nics {
        let (kind, name) = match &nic.ib {
            Some((dev, port)) => (NicKind::Infiniband, format!("{dev}/{port}")),
            None => (NicKind::Ethernet, nic.name.clone()),
        };
        let active = nic.state == crate::scenario::PortState::Active;
        let mut n = NicSample {
            name,
            kind,
            up: Some(active),
            rx_bytes_per_second: Some(nic.rx_rate),
            tx_bytes_per_second: Some(nic.tx_rate),
            ..NicSample::default()
        };
        if nic.ib.is_some() {
            use crate::procfs::saturated;
            let max = crate::procfs::adapter(nic.speed_gbps).map(|_| nic.speed_gbps);
            n.speed_bytes_per_second = Some(nic.rate_gbps * 1e9 / 8.0);
            n.speed_max_bytes_per_second = max.map(|g| g * 1e9 / 8.0);
            n.link_width = Some(nic.width);
            n.link_width_max = max.map(|_| 4);
            n.ib_state = Some(nic.state.number());
            n.ib_phys_state = Some(nic.state.phys_number());
            n.symbol_errors_total = Some(saturated(nic.symbol_errors, 0xffff));
            n.link_error_recovery_total = Some(saturated(nic.link_error_recovery, 0xff));
            n.link_downed_total = Some(saturated(nic.link_downed, 0xff));
            n.rx_errors_total = Some(saturated(nic.rcv_errors, 0xffff));
            n.link_integrity_errors_total = Some(0);
            n.buffer_overrun_errors_total = Some(0);
        } else {
            // An Ethernet netdev reports no speed without a link.
            n.speed_bytes_per_second = active.then_some(nic.rate_gbps * 1e9 / 8.0);
            n.carrier_changes_total = Some(1 + 2 * nic.link_downed.floor() as u64 + u64::from(!active));
        }
        nics.push(n);
    }
    let host = HostSample {
        cpus: h
            .core_busy
            .iter()
            .enumerate()
            .map(|(i, b)| CpuSample { cpu: i as u32, busy_ratio: Some(*b), iowait_ratio: Some(h.core_iowait[i]) })
            .collect(),
        cpu_busy_ratio: Some(h.core_busy.iter().sum::<f64>() / n),
        cpu_iowait_ratio: Some(h.core_iowait.iter().sum::<f64>() / n),
        cpu_steal_ratio: Some(h.core_steal.iter().sum::<f64>() / n),
        nics,
        disks: h
            .disks
            .iter()
            .map(|d| DiskSample {
                name: d.name.clone(),
                read_bytes_per_second: Some(d.read_rate),
                busy_ratio: Some(d.busy),
                ..DiskSample::default()
            })
            .collect(),
        ..HostSample::default()
    };
    // XID events as the agent's event thread records them (only those after it started: t0).
    let xid_events = sim
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::Xid && e.at_s <= t)
        .map(|e| XidEvent { unix_ms: T0_MS + (e.at_s * 1000.0) as u64, gpu: e.gpu, code: e.code.unwrap_or(0) })
        .collect();
    NodeSnapshot {
        node: NodeInfo {
            hostname: sim.hostname(),
            job: sc.job.as_ref().map(|j| j.name.clone()),
            ..NodeInfo::default()
        },
        timestamp_ms: T0_MS + (t * 1000.0) as u64,
        gpus,
        processes,
        host: Some(host),
        xid_events,
        ..NodeSnapshot::default()
    }
}
