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
    agent
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
