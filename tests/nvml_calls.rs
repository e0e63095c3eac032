//! The agent's own NVML call counts (`agent.nvml_calls`, `gpuscope_agent_nvml_calls_total`)
//! equal what the simulated library counted answering it, entry point by entry point.
//!
//! `gpuscope query` samples twice on a frozen scenario and exits; the library writes its counts
//! at exit (`GPUSCOPE_SIM_NVML_CALLS`). Only what happens after the snapshot differs: GPM sample
//! buffers are freed when the samplers are dropped, and the XID thread may begin another
//! one-second wait before the process ends.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;

/// Entry points only called while the samplers are torn down, after the snapshot.
const TEARDOWN: &[&str] = &["nvmlGpmSampleFree", "nvmlEventSetFree", "nvmlShutdown"];

fn sim_counts(path: &std::path::Path) -> BTreeMap<String, u64> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (name, n) = l.rsplit_once(' ').unwrap();
            (name.to_string(), n.parse().unwrap())
        })
        .collect()
}

fn compare(scenario: &str, at: u32) -> BTreeMap<String, u64> {
    compare_query(scenario, at).0
}

/// The agent's NVML call counts, checked against the library's, and the `query --json` output.
fn compare_query(scenario: &str, at: u32) -> (BTreeMap<String, u64>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let counts = dir.path().join("calls.txt");
    let out = Command::new(common::bin())
        .args(["query", "--json", "--gap-ms", "150"])
        .env("GPUSCOPE_SIM_SCENARIO", scenario)
        .env("GPUSCOPE_SIM_TIME", at.to_string())
        .env("GPUSCOPE_NVML_LIB", common::nvml_lib())
        .env("GPUSCOPE_SIM_NVML_CALLS", &counts)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let q: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let agent: BTreeMap<String, u64> = serde_json::from_value(q["agent"]["nvml_calls"].clone()).unwrap();
    let sim = sim_counts(&counts);
    assert!(!agent.is_empty(), "{scenario}: the agent counted no NVML calls");
    for (entry, n) in &sim {
        let ours = agent.get(entry).copied().unwrap_or(0);
        if entry == "nvmlEventSetWait_v2" {
            assert!((ours..=ours + 3).contains(n), "{scenario}: {entry}: agent {ours}, library {n}");
        } else if TEARDOWN.contains(&entry.as_str()) {
            assert!(ours <= *n, "{scenario}: {entry}: agent {ours}, library {n}");
        } else {
            assert_eq!(ours, *n, "{scenario}: {entry}: agent vs library");
        }
    }
    for (entry, n) in &agent {
        assert!(sim.contains_key(entry), "{scenario}: the agent counted {n} × {entry}, the library none");
    }
    (agent, q)
}

#[test]
fn agent_counts_equal_the_library_counts() {
    // H100s: GPM, 18 NVLink links, row remapping, XID events registered.
    let h100 = compare("healthy-bf16-training", 100);
    assert_eq!(h100["nvmlDeviceGetHandleByIndex_v2"], 16, "one handle per GPU for sampling, one for XIDs");
    // `query` makes two passes, both slow: per GPU one batch for the link count, then per pass
    // one batch of per-pass fields and one of slow fields.
    assert_eq!(h100["nvmlDeviceGetFieldValues"], 8 * 5);
    // SM, memory and graphics every pass, video on slow passes (both of `query`'s are).
    assert_eq!(h100["nvmlDeviceGetClockInfo"], 8 * 2 * 4);
    assert_eq!(h100["nvmlDeviceGetPerformanceState"], 8 * 2);
    // Slowdown, shutdown and max operating temperature, once per GPU.
    assert_eq!(h100["nvmlDeviceGetTemperatureThreshold"], 8 * 3);
    assert!(!h100.contains_key("nvmlDeviceGetEccMode"), "ECC mode comes as fields");
    // The H100 has no encoder: NOT_SUPPORTED once, not asked again; the decoder every pass.
    assert_eq!(h100["nvmlDeviceGetEncoderUtilization"], 8);
    assert_eq!(h100["nvmlDeviceGetDecoderUtilization"], 8 * 2);
    // Processes are read every 5 s: once in two passes 150 ms apart.
    assert_eq!(h100["nvmlDeviceGetComputeRunningProcesses_v3"], 8);
    assert!(!h100.contains_key("nvmlDeviceGetNvLinkErrorCounter"), "NVLink errors come as fields");
    assert!(!h100.contains_key("nvmlDeviceGetPcieThroughput"), "PCIe rates come from the byte-counter fields");
    assert_eq!(h100["nvmlGpmSampleAlloc"], 8 * 2, "two sample buffers per GPU, then reused");
    // L4s: no NVLink, no GPM, an encoder and decoder.
    let l4 = compare("healthy-inference", 40);
    assert!(!l4.contains_key("nvmlGpmSampleGet"));
    // One H100 split in four MIG instances: the 7 slots looked at on each slow pass (both of
    // `query`'s passes are), each instance's GPM read every pass.
    let mig = compare("mig-inference", 60);
    assert_eq!(mig["nvmlDeviceGetMigDeviceHandleByIndex"], 7 * 2);
    assert_eq!(mig["nvmlGpmMigSampleGet"], 4 * 2);
    // Fan-cooled boards with one fan each: the fan count once, the fan every pass.
    let fan = compare("workstation-inference", 60);
    assert!(fan["nvmlDeviceGetNumFans"] > 0);
    assert_eq!(fan["nvmlDeviceGetFanSpeed_v2"], fan["nvmlDeviceGetNumFans"] * 2);
}

/// GPM failing on every GPU (the scenario's `gpm` fault): the first pass asks once per GPU and
/// fails, the second (150 ms later) does not ask again (GPM is retried 30 s after a failure),
/// and the ratios are absent, not 0 and not an earlier pass's values.
#[test]
fn failing_gpm_is_asked_once_and_its_ratios_are_absent() {
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sim/scenarios/healthy-bf16-training.toml"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpm-failing.toml");
    std::fs::write(&path, format!("{base}\n[[faults]]\nwhat = \"gpm\"\nduration_s = 3600\n")).unwrap();
    let (calls, q) = compare_query(path.to_str().unwrap(), 100);
    assert_eq!(calls["nvmlGpmSampleGet"], 8, "one failed sample per GPU, then none for 30 s");
    assert!(!calls.contains_key("nvmlGpmMetricsGet"), "no two samples to compare");
    assert_eq!(q["agent"]["nvml_errors"]["gpm_sample"], 8, "{}", q["agent"]);
    assert_eq!(q["agent"]["gpm_unavailable"], serde_json::json!([0, 1, 2, 3, 4, 5, 6, 7]), "the state query shows");
    let gpus = q["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 8);
    for g in gpus {
        for k in
            ["sm_active_ratio", "sm_occupancy_ratio", "tensor_active_ratio", "fp32_active_ratio", "dram_active_ratio"]
        {
            assert!(g[k].is_null(), "GPU {}: {k} = {}", g["index"], g[k]);
        }
        assert!(g["utilization_ratio"].is_number(), "the other signals stay: {}", g["utilization_ratio"]);
    }
    // Without the fault the same scenario has every ratio, from the two samples of the two passes.
    let (calls, q) = compare_query("healthy-bf16-training", 100);
    assert_eq!((calls["nvmlGpmSampleGet"], calls["nvmlGpmMetricsGet"]), (16, 8));
    assert!(q["gpus"][0]["sm_active_ratio"].is_number());
    assert_eq!(q["agent"]["gpm_unavailable"], serde_json::json!([]));
}

/// A running agent on H100s whose GPM fails from scenario second 8 on: the ratios it read
/// before are gone from `/metrics` once a sample fails, not kept from the last good pass.
#[test]
fn gpm_ratios_read_before_a_failure_are_not_exported_after_it() {
    use common::{Clock, NodeSpec, eventually, start, unix_now};
    let base =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/sim/scenarios/healthy-bf16-training.toml"))
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpm-fails-at-8s.toml");
    std::fs::write(&path, format!("{base}\n[[faults]]\nwhat = \"gpm\"\nat_s = 8\nduration_s = 3600\n")).unwrap();
    let node = start(NodeSpec::new(path.to_str().unwrap(), Clock::Running { start: unix_now() }));
    node.wait_ready();
    let sm = |m: &common::Metrics| m.find("gpuscope_gpu_sm_active_ratio", &[]).len();
    // Two good samples before second 8 (the agent samples every 200 ms).
    eventually(8, || (sm(&node.metrics()) == 8).then_some(()));
    let m = eventually(60, || {
        let m = node.metrics();
        (!m.find("gpuscope_agent_nvml_errors_total", &[("signal", "gpm_sample")]).is_empty()).then_some(m)
    });
    assert_eq!(sm(&m), 0, "no GPU keeps an SM activity once its GPM sample failed");
    assert_eq!(m.one("gpuscope_agent_gpm_unavailable_gpus", &[]), 8.0);
    assert!(m.find("gpuscope_gpu_tensor_active_ratio", &[]).is_empty());
    assert_eq!(m.find("gpuscope_gpu_utilization_ratio", &[]).len(), 8, "the other signals stay");
}
