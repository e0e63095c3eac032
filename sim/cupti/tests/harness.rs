//! The harness `gpuscope-sim-cuda`: command line, exact counts, the injection contract
//! (CUDA_INJECTION64_PATH, InitializeInjection) and "another subscriber already present".

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn harness() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gpuscope-sim-cuda"));
    c.env_remove("CUDA_INJECTION64_PATH").env_remove("GPUSCOPE_SIM_CUPTI_SUBSCRIBED");
    c
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "harness failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("one JSON line on stdout")
}

#[test]
fn plays_a_built_in_workload_with_exact_counts() {
    let out = harness().args(["--workload", "cuda-sync-heavy", "--seconds", "0.25"]).output().unwrap();
    let v = json(&out);
    assert_eq!(v["workload"], "cuda-sync-heavy");
    // 4,000 launches/s for 0.25 s; a sync after every 8th launch.
    assert_eq!(v["launches"], 1000);
    assert_eq!(v["syncs"], 125);
    assert_eq!(v["records"], 0, "no client enabled any activity");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CUDA_INJECTION64_PATH is not set"), "{stderr}");
}

#[test]
fn a_rate_override_changes_the_counts_and_bad_input_is_named() {
    let out = harness()
        .args(["--scenario", "cuda-decode-short-kernels", "--workload", "cuda-decode-short-kernels"])
        .args(["--seconds", "0.1", "--rate", "20000"])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["launches"], 2000);
    assert_eq!(v["copies"], 6, "one copy every 300 launches");

    let out = harness().args(["--workload", "no-such-workload", "--seconds", "1"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no built-in workload named \"no-such-workload\""));
    let out = harness().args(["--scenario", "healthy-bf16-training", "--seconds", "1"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no [cuda] table"));
    let out = harness().args(["--workload", "cuda-fp32-sgemm", "--seconds", "1", "--rate", "4000"]).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("keep the GPU busy"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_missing_or_failing_injection_library_is_reported_and_the_process_goes_on() {
    let out = harness()
        .env("CUDA_INJECTION64_PATH", "/nonexistent/libinject.so")
        .args(["--workload", "cuda-bf16-tensor", "--seconds", "0.1"])
        .output()
        .unwrap();
    let v = json(&out);
    assert_eq!(v["launches"], 300);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot load the injection library /nonexistent/libinject.so")
    );

    // A shared library without InitializeInjection: the simulated CUPTI itself.
    let lib = std::path::PathBuf::from(env!("CARGO_BIN_EXE_gpuscope-sim-cuda"));
    let dir = lib.parent().unwrap();
    let cupti = [dir.join("libcupti.so"), dir.join("deps/libcupti.so")].into_iter().find(|p| p.exists()).unwrap();
    let out = harness()
        .env("CUDA_INJECTION64_PATH", &cupti)
        .args(["--workload", "cuda-bf16-tensor", "--seconds", "0.1"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["launches"], 300);
    assert!(String::from_utf8_lossy(&out.stderr).contains("has no InitializeInjection"));
}
