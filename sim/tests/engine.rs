//! The signal engine: scenarios load, values follow the targets, counters integrate the gauges,
//! and everything is a deterministic function of (scenario, node, time).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use gpuscope_sim::engine::REASON_GPU_IDLE;
use gpuscope_sim::scenario::{BUILTIN, Scenario, ScenarioError};
use gpuscope_sim::{SimClock, Simulation};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// The rule ids of RULES.md that node telemetry can show.
const RULE_IDS: &[&str] = &[
    "no-tensor-cores",
    "fp64-heavy",
    "launch-bound",
    "memory-bandwidth-bound",
    "input-bound-cpu",
    "input-bound-io",
    "host-thread-bound",
    "pcie-h2d-bound",
    "comm-bound",
    "nccl-over-tcp",
    "memory-underused",
    "memory-near-full",
    "gpu-idle-allocated",
    "straggler",
    "power-capped",
    "thermal-throttle",
    "hw-slowdown",
    "app-clocks-capped",
    "pcie-link-degraded",
    "gpu-lost",
    "xid-error",
    "ecc-uncorrectable",
    "row-remap",
    "retired-pages",
    "pcie-replay",
    "nvlink-errors",
    "net-link-degraded",
];

fn sim(name: &str) -> Simulation {
    let s = Scenario::load(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    Simulation::new(s, 0).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn every_scenario_file_is_built_in_and_every_rule_has_one() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("scenarios dir")
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_suffix(".toml")).map(String::from))
        .collect();
    files.sort();
    let mut builtin: Vec<String> = BUILTIN.iter().map(|(n, _)| n.to_string()).collect();
    builtin.sort();
    assert_eq!(files, builtin);
    let mut covered = std::collections::HashSet::new();
    for (name, _) in BUILTIN {
        let s = Scenario::load(name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&s.name, name, "name field matches the file");
        assert!(!s.description.is_empty(), "{name} has a description");
        for id in &s.expect {
            assert!(RULE_IDS.contains(&id.as_str()), "{name} expects unknown rule {id}");
            covered.insert(id.clone());
        }
        for node in 0..s.node_count() {
            Simulation::new(s.clone(), node).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
    for id in RULE_IDS {
        assert!(covered.contains(*id), "no scenario expects {id}");
    }
    for healthy in ["healthy-bf16-training", "healthy-inference"] {
        assert!(Scenario::load(healthy).map(|s| s.expect.is_empty()).unwrap_or(false));
    }
}

#[test]
fn same_scenario_and_time_give_the_same_values() {
    let a = sim("healthy-bf16-training");
    let b = sim("healthy-bf16-training");
    for t in [0.0, 1.5, 123.456, 599.99, 3600.0] {
        assert_eq!(a.gpu(3, t), b.gpu(3, t), "t = {t}");
        assert_eq!(a.host(t), b.host(t), "t = {t}");
        assert_eq!(a.gpu_processes(3, t), b.gpu_processes(3, t));
    }
    // A warm integral cache gives the same counters as a cold one.
    let _ = a.gpu(0, 5000.0);
    assert!(
        (a.gpu(0, 1000.25).map(|s| s.energy_j).unwrap_or(0.0) - b.gpu(0, 1000.25).map(|s| s.energy_j).unwrap_or(0.0))
            .abs()
            < 1e-6
    );
    // Different GPUs get different noise.
    assert_ne!(a.gpu(0, 100.0).map(|s| s.sm_active), a.gpu(1, 100.0).map(|s| s.sm_active));
}

#[test]
fn gauges_follow_targets_within_noise() {
    let s = sim("healthy-bf16-training");
    let sm: Vec<f64> = (0..600).map(|t| s.gpu(2, t as f64 + 0.5).map_or(f64::NAN, |g| g.sm_active)).collect();
    assert!(sm.iter().all(|v| (v - 0.88).abs() <= 0.02 + 1e-9), "sm_active stays within its ±0.02 noise");
    assert!((mean(sm.into_iter()) - 0.88).abs() < 0.003);
    let g = s.gpu(0, 100.0).expect("gpu 0");
    assert_eq!(g.memory_used, (62.0 * GIB) as u64, "memory comes from the GPU's processes");
    assert_eq!(g.memory_total, 81559 * 1024 * 1024);
    assert_eq!(g.memory_total, g.memory_used + g.memory_free + g.memory_reserved);
    assert_eq!(g.power_limit_w, 700.0);
    assert_eq!(g.throttle, 0);
    assert_eq!(g.pcie_gen, 5);
    assert_eq!(g.links.len(), 18);
    assert!((g.nvlink_rx - 95e9).abs() <= 10e9);
    assert!(g.temp_c > 50.0 && g.temp_c < 80.0);
    let host = s.host(100.0);
    assert_eq!(host.core_busy.len(), 224);
    let ib = host.nics.iter().find(|n| n.name == "ib1").expect("ib1");
    assert!((ib.rx_rate - 11e9).abs() < 1.0);
}

#[test]
fn counters_are_the_integrals_of_their_gauges() {
    let s = sim("healthy-bf16-training");
    let (t1, t2) = (200.25, 260.75);
    let e = |t: f64| s.gpu(1, t).map_or(f64::NAN, |g| g.energy_j);
    let steps = 6050;
    let dt = (t2 - t1) / steps as f64;
    // Midpoint sum of the instantaneous power.
    let numeric: f64 =
        (0..steps).map(|i| s.gpu(1, t1 + (i as f64 + 0.5) * dt).map_or(f64::NAN, |g| g.power_w) * dt).sum();
    assert!(((e(t2) - e(t1)) - numeric).abs() / numeric < 1e-4, "energy {} vs ∫power {}", e(t2) - e(t1), numeric);
    let bytes = |t: f64| s.host(t).nics.iter().find(|n| n.name == "ib0").map_or(f64::NAN, |n| n.rx_bytes);
    assert!(((bytes(310.0) - bytes(300.0)) / 10.0 - 11e9).abs() < 1.0);
    let busy = |t: f64| s.host(t).core_busy_s[5];
    let rate = (busy(400.0) - busy(300.0)) / 100.0;
    assert!((rate - 0.12).abs() < 0.01, "core busy rate {rate}");
}

#[test]
fn phases_change_and_loop() {
    let s = sim("dataloader-stall");
    let busy = |t: f64| mean(s.host(t).core_busy.into_iter());
    assert!((busy(60.0) - 0.45).abs() < 0.01);
    assert!((busy(200.0) - 0.97).abs() < 0.01);
    assert!((busy(420.0) - 0.45).abs() < 0.01);
    assert!((busy(480.0 + 200.0) - 0.97).abs() < 0.01, "the timeline loops");
    assert_eq!(s.phase_name(200.0), "data-loader stall");
    assert_eq!(s.phase_name(480.0 + 60.0), "healthy");
    let sm = s.gpu(0, 250.0).map_or(f64::NAN, |g| g.sm_active);
    assert!((sm - 0.27).abs() <= 0.05 + 1e-9);
}

#[test]
fn overrides_select_nodes_and_gpus() {
    let sc = Scenario::load("straggler").expect("straggler");
    let slow = Simulation::new(sc.clone(), 2).expect("node 2");
    let fast = Simulation::new(sc, 0).expect("node 0");
    let avg = |s: &Simulation| mean((0..300).map(|t| s.gpu(1, f64::from(t)).map_or(f64::NAN, |g| g.sm_active)));
    assert!((avg(&slow) - 0.42).abs() < 0.01);
    assert!((avg(&fast) - 0.62).abs() < 0.01);
    assert_eq!(slow.hostname(), "strag-2");
    let idle = sim("gpu-idle-allocated");
    let g1 = idle.gpu(1, 600.0).expect("gpu 1");
    assert_eq!(g1.util, 0.0);
    assert_eq!(g1.throttle & REASON_GPU_IDLE, REASON_GPU_IDLE, "an idle GPU reports the idle clock event");
    assert_eq!(g1.pcie_gen, 1, "an idle GPU trains its link down");
    assert_eq!(g1.memory_used, (45.0 * GIB) as u64);
    assert!(idle.gpu(0, 600.0).is_some_and(|g| g.util > 0.9));
}

#[test]
fn events_happen_at_their_time() {
    let s = sim("gpu-lost");
    assert!(!s.gpu_lost(3, 119.99));
    assert!(s.gpu_lost(3, 120.0));
    assert!(!s.gpu_lost(2, 500.0));
    assert_eq!(s.gpu(3, 130.0).and_then(|g| g.xid_last), Some(79));
    assert!(s.gpu(3, 130.0).is_some_and(|g| g.lost));
    let xids: Vec<_> = s.xid_events_between(100.0, 200.0).map(|e| (e.gpu, e.code)).collect();
    assert_eq!(xids, vec![(3, Some(79))]);
    let ecc = sim("ecc-uncorrectable");
    assert_eq!(ecc.gpu(1, 89.0).map(|g| g.ecc_uncorrected_volatile), Some(0));
    assert_eq!(ecc.gpu(1, 91.0).map(|g| (g.ecc_uncorrected_volatile, g.ecc_corrected_volatile)), Some((1, 3)));
    let rp = sim("retired-pages");
    assert_eq!(rp.gpu(0, 30.0).map(|g| (g.retired_pages, g.retired_pending)), Some((58, false)));
    assert_eq!(rp.gpu(0, 61.0).map(|g| (g.retired_pages, g.retired_pending)), Some((61, true)));
    let rr = sim("row-remap");
    assert_eq!(rr.gpu(2, 61.0).map(|g| (g.remap_pending, g.remapped_uncorrectable)), Some((true, 1)));
    let replay = sim("pcie-replay");
    assert_eq!(replay.gpu(1, 120.0).map(|g| g.pcie_replays), Some(60), "30 per minute for two minutes");
    assert_eq!(replay.gpu(0, 120.0).map(|g| g.pcie_replays), Some(0));
}

#[test]
fn throttle_duty_is_a_fraction_of_seconds() {
    let s = sim("power-capped");
    let on = (0..1000).filter(|t| s.gpu(0, f64::from(*t)).is_some_and(|g| g.throttle & 0x4 != 0)).count();
    assert!((750..=850).contains(&on), "sw_power_cap active {on} of 1000 s at duty 0.8");
    assert!(s.gpu(0, 10.0).is_some_and(|g| (g.power_limit_w - 450.0).abs() < 1e-9));
}

#[test]
fn the_clock_maps_wall_time_to_scenario_time() {
    let c = SimClock { start_unix: 1000.0, speed: 10.0, frozen: None };
    assert_eq!(c.at_unix(1001.5), 15.0);
    assert_eq!(c.at_unix(900.0), 0.0, "time before the start is scenario second 0");
    assert_eq!(c.unix_at(15.0), 1001.5);
    let frozen = SimClock { frozen: Some(42.0), ..c };
    assert_eq!(frozen.at_unix(5000.0), 42.0);
}

#[test]
fn bad_scenarios_name_the_problem() {
    let err = |text: &str| Scenario::from_toml(text, "bad.toml").map(|_| ()).expect_err("must fail").to_string();
    let phase = "[[phases]]\nduration_s = 10\n";
    let e = err(&format!("nmae = \"x\"\n{phase}"));
    assert!(e.contains("bad.toml") && e.contains("nmae"), "{e}");
    let e = err(&format!("[[gpus]]\nmodel = \"H200\"\n{phase}"));
    assert!(e.contains("H200") && e.contains("H100-SXM5-80GB"), "{e}");
    let e = err(&format!("[[gpus]]\nmodel = \"L4\"\n{phase}[phases.gpu]\nutil = \"high\"\n"));
    assert!(e.contains("util"), "{e}");
    let e = err(&format!("[[gpus]]\nmodel = \"L4\"\n[[processes]]\npid = 5\nname = \"p\"\ngpus = [3]\n{phase}"));
    assert!(e.contains("GPU 3"), "{e}");
    let e =
        err(&format!("[[gpus]]\nmodel = \"L4\"\n[[processes]]\npid = 5\nppid = 4\nname = \"p\"\ngpus = [0]\n{phase}"));
    assert!(e.contains("ppid 4 of pid 5"), "a parent must be init or a process of the scenario: {e}");
    let e = err(&format!("[[gpus]]\nmodel = \"L4\"\n{phase}[phases.gpu]\nthrottle = [\"too_hot\"]\n"));
    assert!(e.contains("too_hot"), "{e}");
    let e = err("[[gpus]]\nmodel = \"L4\"\n");
    assert!(e.contains("phases"), "{e}");
    let e = err(&format!("[[gpus]]\nmodel = \"L4\"\npower_limit_w = 300\n{phase}"));
    assert!(e.contains("power_limit_w"), "{e}");
    // MIG: instances need MIG mode, a known profile of the model, and room on the GPU; a
    // process's instance must exist on its one GPU.
    let h100 = "[[gpus]]\nmodel = \"H100-SXM5-80GB\"\n";
    let e = err(&format!("{h100}mig_instances = [\"1g.10gb\"]\n{phase}"));
    assert!(e.contains("gpus.mig_instances") && e.contains("mig = true"), "{e}");
    let e = err(&format!("{h100}mig = true\nmig_instances = [\"1g.5gb\"]\n{phase}"));
    assert!(e.contains("\"1g.5gb\" is not a H100-SXM5-80GB profile") && e.contains("1g.10gb, 2g.20gb"), "{e}");
    let e = err(&format!("{h100}mig = true\nmig_instances = [\"4g.40gb\", \"4g.40gb\"]\n{phase}"));
    assert!(e.contains("no room left for \"4g.40gb\""), "{e}");
    let e = err(&format!(
        "{h100}mig = true\nmig_instances = [\"7g.80gb\"]\n[[processes]]\npid = 5\nname = \"p\"\ngpus = [0]\nmig_instance = 1\n{phase}"
    ));
    assert!(e.contains("mig_instance 1 of pid 5: GPU 0 has 1 MIG instances"), "{e}");
    let e = err(&format!(
        "{h100}count = 2\nmig = true\nmig_instances = [\"7g.80gb\"]\n[[processes]]\npid = 5\nname = \"p\"\ngpus = \"all\"\nmig_instance = 0\n{phase}"
    ));
    assert!(e.contains("needs exactly one GPU"), "{e}");
    assert!(matches!(Scenario::load("no-such-scenario"), Err(ScenarioError::NotFound(..))));
    let job = Scenario::load("straggler").expect("straggler");
    assert!(Simulation::new(job, 4).is_err(), "node 4 of a 4-node job");
}

/// A `gpm` fault: the snapshots built from the engine lack the GPM ratios while it holds, as the
/// agent's do, and only on the GPUs it names.
#[test]
fn a_gpm_fault_leaves_the_ratios_absent_while_it_holds() {
    let base = BUILTIN.iter().find(|(n, _)| *n == "healthy-bf16-training").unwrap().1;
    let text = format!("{base}\n[[faults]]\nwhat = \"gpm\"\nat_s = 10\nduration_s = 5\ngpus = [1]\n");
    let sim = Simulation::new(Scenario::from_toml(&text, "gpm-fault.toml").unwrap(), 0).unwrap();
    let sm = |t: f64, gpu: usize| gpuscope_sim::snapshot::snapshot(&sim, t).gpus[gpu].sm_active_ratio;
    assert!(sm(9.0, 1).is_some());
    assert_eq!(sm(12.0, 1), None);
    assert!(sm(12.0, 0).is_some(), "GPU 0 is not named");
    assert!(gpuscope_sim::snapshot::snapshot(&sim, 12.0).gpus[1].utilization_ratio.is_some());
    assert!(sm(15.0, 1).is_some(), "over after 5 s");
}
