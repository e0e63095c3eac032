//! GPU inventory signals end to end: the simulated driver answers per GPU model, the real agent
//! serves the values on `/metrics` (native and dcgm-exporter names) and in `query --json`, and a
//! model that lacks a signal gets no series at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Clock, NodeSpec, engine, start};
use std::process::Command;

/// `gpuscope query --json` against the node's simulated tree, frozen at `t`.
fn query_json(node: &common::Node, scenario: &str, t: f64) -> serde_json::Value {
    let out = Command::new(common::bin())
        .args(["query", "--json", "--gap-ms", "150"])
        .env("GPUSCOPE_SIM_SCENARIO", scenario)
        .env("GPUSCOPE_SIM_TIME", t.to_string())
        .env("GPUSCOPE_NVML_LIB", common::nvml_lib())
        .env("GPUSCOPE_PROCFS_ROOT", node.root.path().join("proc"))
        .env("GPUSCOPE_SYSFS_ROOT", node.root.path().join("sys"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn fan_speed_follows_the_board_curve_and_is_absent_on_passive_boards() {
    // Workstation cards at 70 °C and 57 °C (the scenario pins them): the fan curve's 30 % floor
    // up to 45 °C, linear to 100 % at the 95 °C slowdown: 65 % and 47 %.
    let t = 120.0;
    let want = engine("workstation-inference", t, 0);
    let pct: Vec<u64> =
        want["gpus"].as_array().unwrap().iter().map(|g| g["state"]["fan_speed_pct"].as_u64().unwrap()).collect();
    assert_eq!(pct, [65, 47]);
    let mut spec = NodeSpec::new("workstation-inference", Clock::Frozen(t));
    spec.extra_args = vec!["--compat".into(), "dcgm".into()];
    let node = start(spec);
    let m = node.metrics();
    assert_eq!(m.one("gpuscope_gpu_fan_speed_ratio", &[("gpu", "0")]), 0.65);
    assert_eq!(m.one("gpuscope_gpu_fan_speed_ratio", &[("gpu", "1")]), 0.47);
    assert_eq!(m.one("DCGM_FI_DEV_FAN_SPEED", &[("gpu", "0")]), 65.0);
    assert_eq!(m.one("DCGM_FI_DEV_FAN_SPEED", &[("gpu", "1")]), 47.0);
    assert!(m.find("gpuscope_agent_unsupported_gpus", &[("signal", "fan_speed")]).is_empty());
    let q = query_json(&node, "workstation-inference", t);
    let fans: Vec<f64> = q["gpus"].as_array().unwrap().iter().map(|g| g["fan_speed_ratio"].as_f64().unwrap()).collect();
    assert_eq!(fans, [0.65, 0.47]);

    // Data-center boards are cooled by the chassis: NOT_SUPPORTED, so no series, not 0.
    let mut spec = NodeSpec::new("healthy-bf16-training", Clock::Frozen(t));
    spec.extra_args = vec!["--compat".into(), "dcgm".into()];
    let node = start(spec);
    let m = node.metrics();
    assert!(m.find("gpuscope_gpu_fan_speed_ratio", &[]).is_empty());
    assert!(m.find("DCGM_FI_DEV_FAN_SPEED", &[]).is_empty());
    assert_eq!(m.one("gpuscope_agent_unsupported_gpus", &[("signal", "fan_speed")]), 8.0);
    let q = query_json(&node, "healthy-bf16-training", t);
    assert!(q["gpus"].as_array().unwrap().iter().all(|g| g["fan_speed_ratio"].is_null()));
}
