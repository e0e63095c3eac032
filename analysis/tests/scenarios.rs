//! Every shipped scenario, played through the rules at 1 Hz for its whole timeline: the findings
//! that open are exactly the scenario's `expect` list, on the right GPUs and nodes, with
//! evidence. The snapshots are built from the simulator's engine with the agent's conventions
//! (absent where NVML would say NOT_SUPPORTED); the real agent → OTLP → collector path gets the
//! same matrix in the collector's tests.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use gpuscope_analysis::{AnalysisConfig, Analyzer, Change};
use gpuscope_core::*;
use gpuscope_sim::Simulation;
use gpuscope_sim::scenario::{BUILTIN, Scenario};
use gpuscope_sim::snapshot::{T0_MS, snapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Plays a scenario for `secs` and returns every finding that opened.
fn play(name: &str, secs: u64) -> Vec<Finding> {
    let sc = Scenario::load(name).unwrap();
    let sims: Vec<Simulation> = (0..sc.node_count()).map(|n| Simulation::new(sc.clone(), n).unwrap()).collect();
    let mut a = Analyzer::new(AnalysisConfig::default(), 900.0);
    let mut opened = Vec::new();
    for t in 0..=secs {
        for sim in &sims {
            // As the collector does: physically impossible values never reach the rules.
            let mut s = snapshot(sim, t as f64);
            gpuscope_analysis::validate::sanitize(&mut s, 1.0);
            a.ingest(Arc::new(s));
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
        let secs = if sc.needs_long_play() { 1000 } else { 500 };
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

/// The waiting members of a job look launch-bound on their own: without the job (each node
/// judged alone) the same data opens launch-bound on them, which the straggler finding replaces.
#[test]
fn waiting_members_are_explained_by_the_straggler_not_called_launch_bound() {
    let sc = Scenario::load("straggler-throttled").unwrap();
    let sims: Vec<Simulation> = (0..sc.node_count()).map(|n| Simulation::new(sc.clone(), n).unwrap()).collect();
    let mut a = Analyzer::new(AnalysisConfig::default(), 900.0);
    let mut opened = BTreeSet::new();
    for t in 0..=200u64 {
        for sim in &sims {
            let mut s = snapshot(sim, t as f64);
            s.node.job = None;
            a.ingest(Arc::new(s));
        }
        for c in a.evaluate(T0_MS + t * 1000) {
            if let Change::Opened(f) = c {
                opened.insert((f.rule, f.scope.node.unwrap_or_default()));
            }
        }
    }
    let launch: Vec<&String> = opened.iter().filter(|(r, _)| r == "launch-bound").map(|(_, n)| n).collect();
    assert_eq!(launch.len(), 8, "every node's waiting GPUs look launch-bound alone: {opened:?}");
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
    assert!(strag[0].summary.contains("steals 25% of its CPU time"), "{}", strag[0].summary);
    // The member that never waits: one hot GPU in an eight-node job, named with its cause; the
    // fifteen GPUs that wait for it get no launch-bound finding.
    let hot8 = play("straggler-throttled", 200);
    let s = hot8.iter().find(|f| f.rule == "straggler").expect("straggler");
    assert_eq!((s.scope.node.as_deref(), s.scope.gpus.clone()), (Some("hot-5"), vec![1]));
    assert!(s.summary.contains("GPU 1 clocks throttled (thermal), SM clock at 70% of its maximum"), "{}", s.summary);
    let pair = play("straggler-2node", 200);
    let s = pair.iter().find(|f| f.rule == "straggler").expect("straggler");
    assert_eq!((s.scope.node.as_deref(), s.scope.gpus.clone()), (Some("pair-1"), vec![0, 1, 2, 3]));
    assert!(s.summary.contains("(power cap)"), "{}", s.summary);
    let hot = play("thermal-throttle", 300);
    assert_eq!(hot.iter().map(|f| f.scope.gpus.clone()).collect::<Vec<_>>(), vec![vec![1]]);
    let capped = play("power-capped", 300);
    assert_eq!(capped[0].severity, Severity::Warning, "a lowered limit escalates the finding");
    assert!(capped[0].recommendation.contains("nvidia-smi -pl 700"));
    let xid = play("xid-error", 200);
    assert_eq!(xid[0].action, Some(Action::RestartApp), "XID 13 and 43 are application faults");
}

/// The forgotten notebook's finding names the process and its user, and counts the idle
/// GPU-hours from the start of the idle run (second 30) to the finding's opening: the 10 s
/// smoothing span and the 600 s sustain later, 610 s.
#[test]
fn an_idle_held_gpu_names_its_holder_and_the_idle_hours() {
    let f = play("gpu-idle-allocated", 1000);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(
        f[0].summary,
        "GPU 1 is held by jupyter-kernel (62202, user ml) but does nothing (sm_active 0%) for 0.17 GPU-hours"
    );
    let hours = f[0].evidence.iter().find(|e| e.signal == "idle_gpu_hours").expect("idle_gpu_hours").value;
    assert!((hours - 610.0 / 3600.0).abs() < 1e-9, "{hours}");
}

/// Node 5 of eight has one port trained at 2X 200 Gb/s with symbol errors: one finding, on that
/// node, naming the port and everything wrong with it; the seven healthy nodes stay quiet.
#[test]
fn a_degraded_port_on_one_node_of_eight_is_named() {
    let f = play("net-link-degraded", 200);
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].rule, "net-link-degraded");
    assert_eq!(f[0].scope.node.as_deref(), Some("hgx-5"));
    assert_eq!(f[0].scope.job.as_deref(), Some("llm-8node"));
    assert_eq!(
        f[0].summary,
        "Network port mlx5_1/1: trained at 200 of 400 Gb/s, 2X of 4X lanes, 180 symbol/receive errors a minute"
    );
}

#[test]
fn the_phase_changing_scenario_opens_and_closes_with_hysteresis() {
    let sc = Scenario::load("dataloader-stall").unwrap();
    let sim = Simulation::new(sc.clone(), 0).unwrap();
    let mut a = Analyzer::new(AnalysisConfig::default(), 900.0);
    let mut events = Vec::new();
    for t in 0..=480u64 {
        a.ingest(Arc::new(snapshot(&sim, t as f64)));
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
        let mut s = snapshot(&sim, i as f64 / 10.0);
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
