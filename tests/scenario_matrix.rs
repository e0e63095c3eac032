//! Every shipped scenario through the whole product at 20× speed: simulated node(s) → the real
//! agent (simulated NVML, simulated /proc) → OTLP/HTTP → the real collector → findings. The
//! findings that open are exactly the scenario's `expect` list, on the right GPUs and nodes.
//!
//! A scenario's `[cuda]` table (the `cuda-*` ones) is not played here: its kernel-level
//! findings (`[cuda] expect`) are tests/cupti_e2e.rs's. The CUDA process runs in wall-clock
//! time whatever the node's speed, and keeps a core busy launching kernels: three scenarios at a
//! time with one each would starve the agents of a two-core test machine, and the matrix would
//! only repeat, without exact evidence, what cupti_e2e checks one scenario at a time. Here those
//! scenarios are judged on what NVML and /proc show (`expect`), and no kernel-level finding can
//! open without a profiled process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::{Clock, NodeSpec, collector, start, unix_now};
use gpuscope_sim::Scenario;
use gpuscope_sim::scenario::BUILTIN;
use std::sync::Mutex;
use std::time::Duration;

const SPEED: f64 = 20.0;

/// Plays `name` and returns (rules that opened, findings JSON, the collector's /metrics).
fn play(name: &str) -> (Vec<String>, serde_json::Value, String) {
    let sc = Scenario::load(name).unwrap();
    // Every simulated node pushes from 127.0.0.1, up to eight of them ten times a second: the
    // per-address push limit, meant for one node per address, is lifted.
    let c = collector(
        &["--time-scale", &(1.0 / SPEED).to_string(), "--max-pushes-per-client-per-s", "1000"],
        ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"),
    );
    let start_at = unix_now();
    // The nodes of a job start together, not one after the other: a member that came up
    // seconds after the others would leave them looking launch-bound, with no straggler in
    // sight, for those seconds of scenario time.
    let nodes: Vec<_> = std::thread::scope(|s| {
        let started: Vec<_> = (0..sc.node_count())
            .map(|n| {
                let (sc, http) = (&sc, &c.http);
                s.spawn(move || {
                    let mut spec = NodeSpec::new(name, Clock::Running { start: start_at });
                    spec.node = n;
                    spec.interval_ms = 100;
                    spec.slow_interval_ms = 1500;
                    spec.extra_env = vec![("GPUSCOPE_SIM_SPEED".into(), SPEED.to_string())];
                    spec.extra_args = vec![
                        "--otlp-endpoint".into(),
                        format!("http://{http}"),
                        "--otlp-interval-ms".into(),
                        "100".into(),
                    ];
                    if let Some(job) = &sc.job {
                        spec.extra_args.extend(["--job".to_string(), job.name.clone()]);
                    }
                    start(spec)
                })
            })
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Long enough for the 10-minute rules where they are expected; else 7 scenario minutes.
    // Scenarios that expect nothing run long too: a 10-minute rule must stay quiet on them.
    let workload_s = if sc.needs_long_play() { 800.0 } else { 420.0 };
    let wall = workload_s / SPEED - (unix_now() - start_at);
    std::thread::sleep(Duration::from_secs_f64(wall.max(0.0)));
    // On a busy machine the agents deliver fewer samples than they would on an idle one, and a
    // rule's timer runs only on the time its data covers: an expected finding may still be
    // on its way. The findings listed are every one that opened (closed ones stay listed), so
    // the set only grows: wait for the expected set as long again, and no longer. A finding
    // that should not open fails the test whenever it opens; an idle machine never waits here.
    let mut want = sc.expect.clone();
    want.sort();
    let patience = std::time::Instant::now() + Duration::from_secs_f64(workload_s / SPEED);
    let mut rules = c.rules();
    while rules != want && std::time::Instant::now() < patience && rules.iter().all(|r| want.contains(r)) {
        std::thread::sleep(Duration::from_millis(500));
        rules = c.rules();
    }
    let findings = c.api_json("/api/v1/findings");
    // The rules of the findings returned (one that opened since the last look included).
    let mut rules: Vec<String> =
        findings.as_array().unwrap().iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect();
    rules.sort();
    rules.dedup();
    let (_, _, metrics) = common::get(&c.api, "/metrics", &[]);
    drop(nodes);
    (rules, findings, String::from_utf8_lossy(&metrics).into_owned())
}

#[test]
fn every_scenario_opens_exactly_its_findings_through_agent_otlp_and_collector() {
    // GPUSCOPE_MATRIX_ONLY=a,b narrows the run while developing; CI runs them all.
    let only = std::env::var("GPUSCOPE_MATRIX_ONLY").ok();
    let names: Vec<&str> = BUILTIN
        .iter()
        .map(|(n, _)| *n)
        .filter(|n| only.as_ref().is_none_or(|o| o.split(',').any(|x| x == *n)))
        .collect();
    let queue = Mutex::new(names.clone());
    let failures = Mutex::new(Vec::new());
    let results = Mutex::new(Vec::new());
    // Three scenarios at a time: each is a collector plus one or more agents and /proc writers.
    std::thread::scope(|s| {
        for _ in 0..3 {
            s.spawn(|| {
                loop {
                    let Some(name) = queue.lock().unwrap().pop() else { return };
                    let sc = Scenario::load(name).unwrap();
                    let (rules, findings, metrics) = play(name);
                    let mut want = sc.expect.clone();
                    want.sort();
                    if rules != want {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{name}: expected {want:?}, got {rules:?}: {findings:#}"));
                    }
                    for f in findings.as_array().unwrap() {
                        if f["evidence"].as_array().is_none_or(|e| e.is_empty()) {
                            failures.lock().unwrap().push(format!("{name}: {} without evidence", f["rule"]));
                        }
                    }
                    results.lock().unwrap().push((name, findings, metrics));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // Spot checks of scope.
    let results = results.into_inner().unwrap();
    assert_eq!(names.len(), results.len());
    if only.is_some() {
        return;
    }
    let get = |name: &str| results.iter().find(|(n, _, _)| *n == name).map(|(_, f, _)| f.clone()).unwrap();
    let metrics = |name: &str| results.iter().find(|(n, _, _)| *n == name).map(|(_, _, m)| m.clone()).unwrap();
    let lost = get("gpu-lost");
    assert!(lost.as_array().unwrap().iter().all(|f| f["scope"]["gpus"] == serde_json::json!([3])), "{lost}");
    let strag = get("straggler");
    assert_eq!(strag[0]["scope"]["node"], "strag-2");
    let hot = get("thermal-throttle");
    assert_eq!(hot[0]["scope"]["gpus"], serde_json::json!([1]));
    // The straggler is the member that never waits: named with its GPU and its cause, in an
    // eight-node job and in a two-node one.
    let hot = get("straggler-throttled");
    let s = hot.as_array().unwrap().iter().find(|f| f["rule"] == "straggler").unwrap();
    assert_eq!(
        (&s["scope"]["node"], &s["scope"]["gpus"]),
        (&serde_json::json!("hot-5"), &serde_json::json!([1])),
        "{s}"
    );
    assert!(s["summary"].as_str().unwrap().contains("clocks throttled (thermal"), "{s}");
    let pair = get("straggler-2node");
    let s = pair.as_array().unwrap().iter().find(|f| f["rule"] == "straggler").unwrap();
    assert_eq!(s["scope"]["node"], "pair-1", "{s}");
    assert!(s["summary"].as_str().unwrap().contains("power cap"), "{s}");
    // Impossible rates were dropped and counted, not believed.
    let m = metrics("impossible-nic-rates");
    let dropped: f64 = m
        .lines()
        .find(|l| l.starts_with("gpuscope_collector_impossible_values_total{reason=\"nic_rate_above_link_speed\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(dropped > 0.0, "{m}");
    // The notebook's GPU is named once, with the notebook's own advice.
    let sparse = get("sparse-samples");
    assert_eq!(sparse[0]["scope"]["gpus"], serde_json::json!([1]), "{sparse}");
    assert_eq!(sparse[0]["cause"], "notebook", "{sparse}");
    let tcp = get("nccl-over-tcp");
    assert_eq!(tcp[0]["scope"]["job"], "llm-tcp");
    // One degraded port among the 32 of an eight-node job, named on its node with what is wrong.
    let net = get("net-link-degraded");
    assert_eq!(net.as_array().unwrap().len(), 1, "{net}");
    assert_eq!(net[0]["scope"]["node"], "hgx-5", "{net}");
    assert!(
        net[0]["summary"]
            .as_str()
            .unwrap()
            .starts_with("Network port mlx5_1/1: trained at 200 of 400 Gb/s, 2X of 4X lanes"),
        "{net}"
    );
}
