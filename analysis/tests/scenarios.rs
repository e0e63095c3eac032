//! Every shipped scenario, played through the rules at 1 Hz for its whole timeline: the findings
//! that open are exactly the scenario's `expect` list, on the right GPUs and nodes, with
//! evidence. The snapshots are built from the simulator's engine with the agent's conventions
//! (absent where NVML would say NOT_SUPPORTED); the real agent → OTLP → collector path gets the
//! same matrix in the collector's tests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use gpuscope_analysis::{AnalysisConfig, Analyzer, Change};
use gpuscope_core::*;
use gpuscope_sim::Simulation;
use gpuscope_sim::engine::GpuState;
use gpuscope_sim::scenario::{BUILTIN, EventKind, NicKindSpec, Scenario};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const T0_MS: u64 = 1_800_000_000_000;

fn gpu_sample(sim: &Simulation, i: u32, s: &GpuState) -> GpuSample {
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

fn snapshot(sim: &Simulation, sc: &Scenario, t: f64) -> NodeSnapshot {
    let mut gpus = Vec::new();
    let mut processes = Vec::new();
    for i in 0..sim.gpus().len() as u32 {
        let s = sim.gpu(i, t).unwrap();
        let g = gpu_sample(sim, i, &s);
        if !s.lost {
            for p in sim.gpu_processes(i, t) {
                processes.push(ProcessSample {
                    pid: p.pid,
                    name: "python".into(),
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
        let _ = NicKindSpec::Ethernet;
        nics.push(NicSample {
            name,
            kind,
            speed_bytes_per_second: Some(nic.speed_gbps * 1e9 / 8.0),
            rx_bytes_per_second: Some(nic.rx_rate),
            tx_bytes_per_second: Some(nic.tx_rate),
            ..NicSample::default()
        });
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

/// Plays a scenario for `secs` and returns every finding that opened.
fn play(name: &str, secs: u64) -> Vec<Finding> {
    let sc = Scenario::load(name).unwrap();
    let sims: Vec<Simulation> = (0..sc.node_count()).map(|n| Simulation::new(sc.clone(), n).unwrap()).collect();
    let mut a = Analyzer::new(AnalysisConfig::default(), 900.0);
    let mut opened = Vec::new();
    for t in 0..=secs {
        for sim in &sims {
            a.ingest(Arc::new(snapshot(sim, &sc, t as f64)));
        }
        for c in a.evaluate(T0_MS + t * 1000) {
            if let Change::Opened(f) = c {
                opened.push(f);
            }
        }
    }
    opened
}

#[test]
fn every_scenario_opens_exactly_its_expected_findings() {
    let mut failures = Vec::new();
    for (name, _) in BUILTIN {
        let sc = Scenario::load(name).unwrap();
        // Long enough for the 10-minute rules, and for one loop of the phase-changing scenario.
        let secs =
            if sc.expect.iter().any(|r| r == "memory-underused" || r == "gpu-idle-allocated" || r == "hw-slowdown") {
                1000
            } else {
                500
            };
        let opened = play(name, secs);
        let got: BTreeSet<String> = opened.iter().map(|f| f.rule.clone()).collect();
        let want: BTreeSet<String> = sc.expect.iter().cloned().collect();
        if got != want {
            let detail: Vec<String> = opened.iter().map(|f| format!("{} [{}]", f.rule, f.summary)).collect();
            failures.push(format!("{name}: expected {want:?}, got {got:?}: {detail:#?}"));
        }
        for f in &opened {
            assert!(!f.evidence.is_empty(), "{name}: {} has no evidence", f.rule);
            assert!(!f.recommendation.is_empty());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn findings_name_the_right_gpu_and_node() {
    let lost = play("gpu-lost", 200);
    let g: BTreeMap<&str, Vec<u32>> = lost.iter().map(|f| (f.rule.as_str(), f.scope.gpus.clone())).collect();
    assert_eq!(g["gpu-lost"], vec![3]);
    assert_eq!(g["xid-error"], vec![3]);
    assert!(lost.iter().all(|f| f.severity == Severity::Critical));
    let strag = play("straggler", 200);
    assert_eq!(strag.len(), 1);
    assert_eq!(strag[0].scope.node.as_deref(), Some("strag-2"));
    assert_eq!(strag[0].scope.job.as_deref(), Some("llm-4node"));
    let hot = play("thermal-throttle", 300);
    assert_eq!(hot.iter().map(|f| f.scope.gpus.clone()).collect::<Vec<_>>(), vec![vec![1]]);
    let capped = play("power-capped", 300);
    assert_eq!(capped[0].severity, Severity::Warning, "a lowered limit escalates the finding");
    assert!(capped[0].recommendation.contains("nvidia-smi -pl 700"));
    let xid = play("xid-error", 200);
    assert_eq!(xid[0].action, Some(Action::RestartApp), "XID 13 and 43 are application faults");
}

#[test]
fn the_phase_changing_scenario_opens_and_closes_with_hysteresis() {
    let sc = Scenario::load("dataloader-stall").unwrap();
    let sim = Simulation::new(sc.clone(), 0).unwrap();
    let mut a = Analyzer::new(AnalysisConfig::default(), 900.0);
    let mut events = Vec::new();
    for t in 0..=480u64 {
        a.ingest(Arc::new(snapshot(&sim, &sc, t as f64)));
        for c in a.evaluate(T0_MS + t * 1000) {
            match c {
                Change::Opened(f) => events.push(("open", f.rule, t, (f.since_ms - T0_MS) / 1000)),
                Change::Closed { finding, at_ms } => events.push(("close", finding.rule, (at_ms - T0_MS) / 1000, 0)),
            }
        }
    }
    assert_eq!(events.len(), 2, "{events:?}");
    let (kind, rule, opened_at, since) = events[0].clone();
    assert_eq!((kind, rule.as_str()), ("open", "input-bound-cpu"));
    // The stall starts at 120 s; the 10 s smoothing sees it within seconds, 60 s sustain after.
    assert!((120..=135).contains(&since), "since {since}");
    assert!((180..=200).contains(&opened_at), "opened at {opened_at}");
    let (kind, _, closed_at, _) = events[1].clone();
    assert_eq!(kind, "close");
    // The stall ends at 360 s; 60 s clear after the smoothed condition turns false.
    assert!((420..=440).contains(&closed_at), "closed at {closed_at}");
}

#[test]
fn time_scale_compresses_every_period() {
    let sc = Scenario::load("dataloader-stall").unwrap();
    let sim = Simulation::new(sc.clone(), 0).unwrap();
    // As if the simulator ran at speed 10: snapshots every 0.1 wall seconds.
    let cfg = AnalysisConfig { time_scale: Some(0.1), ..AnalysisConfig::default() };
    let mut a = Analyzer::new(cfg, 900.0);
    let mut opened_at = None;
    // Snapshots every 10 wall ms, each 0.1 workload seconds apart.
    for i in 0..=3000u64 {
        let mut s = snapshot(&sim, &sc, i as f64 / 10.0);
        s.timestamp_ms = T0_MS + i * 10;
        a.ingest(Arc::new(s));
        for c in a.evaluate(T0_MS + i * 10) {
            if let Change::Opened(f) = c {
                opened_at.get_or_insert((f.rule, i / 10));
            }
        }
    }
    let (rule, i) = opened_at.expect("opens");
    assert_eq!(rule, "input-bound-cpu");
    assert!((180..=200).contains(&i), "opened after {i} workload seconds");
}
