//! The whole CUPTI path without a GPU, for every `cuda-*` scenario: the simulated node (the
//! /proc writer and the real agent against the simulated NVML) with its `[cupti]` receiver on a
//! socket, `gpuscope-sim-cuda` playing the scenario's CUDA process with gpuscope's injection
//! library (`CUDA_INJECTION64_PATH`) over the simulated `libcupti.so`, the agent pushing OTLP to
//! the real collector. The collector opens exactly the kernel-level findings of the scenario's
//! `[cuda] expect`, with the rule's evidence; the agent's /metrics carries the class series and
//! never a kernel name as a label value; `gpuscope profile --pid` returns the top kernels.
//!
//! The node plays in real time (the CUDA process does: its launches and windows are wall-clock),
//! so only the kernel-level findings are judged here: the scenario matrix judges the node-level
//! ones at 20× speed. Nothing waits on a wall-clock assumption: every step polls for the state
//! it needs.
//!
//! Needs the workspace built (`cargo build --workspace`, as `scripts/test` does): the harness,
//! the injection library and the simulated CUPTI are other packages' artifacts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::sim_cuda::{CudaProcess, FAST, be_process, start_cuda};
use common::{Clock, Collector, Metrics, Node, NodeSpec, bin, collector, eventually, start, unix_now};
use gpuscope_cupti::{KernelClass, classify};
use gpuscope_sim::Scenario;
use gpuscope_sim::cuda::CudaSpec;
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Mutex;

/// The kernel-level rules: the ones that read `kernel_profiles` (analysis/src/rules/kernel).
const KERNEL_RULES: [&str; 5] = ["fp32-gemm-kernels", "gpu-gaps", "pageable-memcpy", "short-kernels", "sync-heavy"];

/// Windows the collector must have seen from the process before the findings are judged: a
/// kernel-level rule needs two consecutive ones, and the ones after show it holds (or stays
/// quiet) as the windows go on.
const WINDOWS_SEEN: u64 = 5;

/// One scenario at a time: each keeps a core busy launching kernels, and a test machine has two.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A scenario played through the whole path, after the collector saw [`WINDOWS_SEEN`] windows.
struct Played {
    spec: CudaSpec,
    host: String,
    /// The name of the scenario's process the harness plays (its comm).
    process: String,
    /// The kernel-level findings the collector recorded.
    findings: Vec<Value>,
    /// Order matters on drop: the CUDA process goes before the node's directory does.
    cuda: CudaProcess,
    node: Node,
    _collector: Collector,
    _dir: tempfile::TempDir,
}

fn kernel_findings(c: &Collector) -> Vec<Value> {
    let all = c.api_json("/api/v1/findings");
    all.as_array().unwrap().iter().filter(|f| KERNEL_RULES.contains(&f["rule"].as_str().unwrap())).cloned().collect()
}

fn rules_of(findings: &[Value]) -> Vec<String> {
    let set: BTreeSet<String> = findings.iter().map(|f| f["rule"].as_str().unwrap().to_string()).collect();
    set.into_iter().collect()
}

/// The windows the collector's latest snapshot of `host` reports for `pid` (0 before any).
fn windows_at_collector(c: &Collector, host: &str, pid: u32) -> u64 {
    let (status, _, body) = common::get(&c.api, &format!("/api/v1/nodes/{host}"), &[]);
    if status != 200 {
        return 0;
    }
    let node: Value = serde_json::from_slice(&body).unwrap();
    node["latest"]["kernel_profiles"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["pid"] == pid))
        .and_then(|p| p["windows_total"].as_u64())
        .unwrap_or(0)
}

fn play(name: &str) -> Played {
    let sc = Scenario::load(name).unwrap();
    let spec = sc.cuda.clone().unwrap_or_else(|| panic!("{name} has no [cuda] table"));
    let host = sc.hostname(0);
    let process = sc.processes.iter().find(|p| p.pid == spec.pid).expect("[cuda] pid is a process").name.clone();
    let c = collector(&[], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("cupti.sock");
    let mut node_spec = NodeSpec::new(name, Clock::Running { start: unix_now() });
    node_spec.extra_args = vec![
        "--cupti-enabled".into(),
        "true".into(),
        "--cupti-socket".into(),
        socket.to_str().unwrap().into(),
        "--otlp-endpoint".into(),
        format!("http://{}", c.http),
        "--otlp-interval-ms".into(),
        "200".into(),
    ];
    let node = start(node_spec);
    // Ten minutes of launches: far more than the test needs; dropped (killed) at its end.
    let cuda = start_cuda(name, &socket, 600.0, FAST, dir.path());
    // The harness plays the scenario's CUDA process: the agent names it as that process.
    be_process(&node.root.path().join("proc"), spec.pid, cuda.pid);
    let want = sorted(&spec.expect);
    // The findings recorded only grow (closed ones stay listed): an unexpected one fails at
    // once, an expected one may still be on its way while the windows keep coming.
    let findings = eventually_or(
        180,
        || {
            let f = kernel_findings(&c);
            let rules = rules_of(&f);
            assert!(
                rules.iter().all(|r| want.contains(r)),
                "{name}: kernel-level findings {rules:?}, expected {want:?}: {f:#?}\n{}",
                cuda.log()
            );
            (rules == want && windows_at_collector(&c, &host, cuda.pid) >= WINDOWS_SEEN).then_some(f)
        },
        || format!("{name}: expected {want:?}, got {:?}; harness log:\n{}", rules_of(&kernel_findings(&c)), cuda.log()),
    );
    Played { spec, host, process, findings, cuda, node, _collector: c, _dir: dir }
}

/// Polls `f` until it returns Some; past `secs`, fails with what `why` says.
fn eventually_or<T>(secs: u64, mut f: impl FnMut() -> Option<T>, why: impl Fn() -> String) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "not within {secs} s: {}", why());
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn sorted(v: &[String]) -> Vec<String> {
    let mut v = v.to_vec();
    v.sort();
    v
}

/// The one finding of `rule`, about the harness's process on the scenario's node.
fn finding<'a>(p: &'a Played, rule: &str) -> &'a Value {
    let f: Vec<&Value> = p.findings.iter().filter(|f| f["rule"] == rule).collect();
    assert_eq!(f.len(), 1, "{rule}: {f:#?}");
    let f = f[0];
    assert_eq!(f["scope"]["node"], p.host.as_str(), "{f:#}");
    assert_eq!(f["cause"], format!("process {}", p.cuda.pid), "{f:#}");
    f
}

/// The evidence of a finding as (signal, value, threshold).
fn evidence(f: &Value) -> Vec<(String, f64, f64)> {
    f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (e["signal"].as_str().unwrap().to_string(), e["value"].as_f64().unwrap(), e["threshold"].as_f64().unwrap())
        })
        .collect()
}

/// The kernel with the most time in the mix (share × duration): the top of every window long
/// enough to hold a few cycles of the mix.
fn longest(spec: &CudaSpec) -> &str {
    let k = spec.kernels.iter().max_by(|a, b| (a.share * a.duration_us).total_cmp(&(b.share * b.duration_us))).unwrap();
    &k.name
}

/// Checks every scenario shares: the class series on the agent's /metrics, no kernel name as a
/// label value, and `gpuscope profile --pid` answering with the mix's top kernel.
fn check_agent(p: &Played) {
    let pid = p.cuda.pid.to_string();
    let classes: BTreeSet<(String, String, String)> = p
        .spec
        .kernels
        .iter()
        .map(|k| {
            let c: KernelClass = classify(&k.name);
            (c.kind.label().to_string(), c.pipe.label().to_string(), c.precision.label().to_string())
        })
        .collect();
    // The latest window on the agent holds every kernel of the mix (each has a tenth of the
    // launches or more: dozens in 300 ms).
    let m: Metrics = eventually(60, || {
        let m = p.node.metrics();
        let labels = m.labels_of("gpuscope_process_kernel_class_time_seconds", &[("pid", &pid)]);
        let got: BTreeSet<(String, String, String)> = labels
            .iter()
            .map(|l| {
                let get = |k: &str| l.iter().find(|(lk, _)| lk == k).map(|(_, v)| v.clone()).unwrap_or_default();
                (get("kind"), get("pipe"), get("precision"))
            })
            .collect();
        (got == classes).then_some(m)
    });
    // Named as the scenario's process.
    for l in m.labels_of("gpuscope_process_kernel_class_time_seconds", &[("pid", &pid)]) {
        assert!(l.contains(&("process".into(), p.process.clone())), "{l:?}");
    }
    assert!(m.one("gpuscope_process_kernel_time_seconds", &[("pid", &pid)]) > 0.0);
    // Kernel names are never label values, anywhere on the endpoint.
    let names: BTreeSet<&str> = p.spec.kernels.iter().map(|k| k.name.as_str()).collect();
    for (metric, labels, _) in &m.samples {
        for (k, v) in labels {
            assert!(!names.contains(v.as_str()), "{metric} has the kernel name {v:?} as label {k}");
        }
    }

    // `gpuscope profile` asks the library for a window of its own and prints its top kernels.
    let out = std::process::Command::new(bin())
        .args(["profile", "--pid", &pid, "--duration", "500ms", "--json"])
        .env("GPUSCOPE_LISTEN", &p.node.addr)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stderr), p.cuda.log());
    let prof: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(prof["pid"], p.cuda.pid);
    // The window asked for (the library times it: at least about that), not a periodic one of 300 ms.
    assert!(prof["window_seconds"].as_f64().unwrap() > 0.45, "{prof:#}");
    let top = prof["top_kernels"].as_array().unwrap();
    assert_eq!(top[0]["name"], longest(&p.spec), "{prof:#}");
    for k in top {
        assert!(names.contains(k["name"].as_str().unwrap()), "{k}");
        assert!(k["count"].as_u64().unwrap() > 0, "{k}");
    }
}

#[test]
fn fp32_sgemm_opens_fp32_gemm_kernels_and_names_where_the_kernels_are() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let p = play("cuda-fp32-sgemm");
    let f = finding(&p, "fp32-gemm-kernels");
    // Every matrix kernel of the mix is a SIMT SGEMM: the whole matmul time, in each window.
    assert_eq!(evidence(f), vec![("fp32_matmul_share".to_string(), 1.0, 0.5)], "{f:#}");
    // The collector's snapshots carry no kernel names: the finding says where to read them.
    let summary = f["summary"].as_str().unwrap();
    assert!(
        summary
            .starts_with(&format!("python ({}, user ml) runs 100% of its matmul/convolution kernel time", p.cuda.pid)),
        "{summary}"
    );
    assert!(
        summary.ends_with(&format!("(its kernels: gpuscope profile --pid {} on {})", p.cuda.pid, p.host)),
        "{summary}"
    );
    check_agent(&p);
    // …and there, the SGEMM is the top kernel.
    assert_eq!(longest(&p.spec), "volta_sgemm_64x32_sliced1x4_nn");
}

#[test]
fn pageable_copies_open_pageable_memcpy_with_the_bytes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let p = play("cuda-pageable-copies");
    let f = finding(&p, "pageable-memcpy");
    let ev = evidence(f);
    assert_eq!(
        ev.iter().map(|e| (e.0.as_str(), e.2)).collect::<Vec<_>>(),
        [("async_pageable_copies", 1.0), ("pageable_copy_bytes", 0.0)]
    );
    // Every copy of the mix is a 32 MiB async one from pageable memory: the bytes are a whole
    // number of them, as many as the copies counted.
    let (copies, bytes) = (ev[0].1, ev[1].1);
    assert!(copies >= 1.0, "{f:#}");
    assert_eq!(bytes % 33_554_432.0, 0.0, "{f:#}");
    // The count is the weaker window's, the bytes the latest window's.
    assert!(bytes >= copies * 33_554_432.0, "{f:#}");
    let summary = f["summary"].as_str().unwrap();
    assert!(summary.contains("issues asynchronous copies from or to pageable host memory"), "{summary}");
    assert!(
        summary.contains(" MiB from pageable memory in all)") || summary.contains(" GiB from pageable memory in all)")
    );
    check_agent(&p);
}

#[test]
fn sync_heavy_opens_sync_heavy_with_the_share_of_the_window() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let p = play("cuda-sync-heavy");
    let f = finding(&p, "sync-heavy");
    let ev = evidence(f);
    assert_eq!((ev.len(), ev[0].0.as_str(), ev[0].2), (1, "sync_share", 0.1), "{f:#}");
    // At least the threshold in both windows (15 % on schedule: 300 µs after every 8th of
    // 4,000 launches a second; a harness catching up on a busy machine packs them closer).
    assert!(ev[0].1 >= 0.1, "{f:#}");
    let summary = f["summary"].as_str().unwrap();
    assert!(summary.contains("waiting for the GPU in synchronization calls"), "{summary}");
    check_agent(&p);
    // The records' sync time is whole 300 µs stream synchronizations, whatever the window.
    let m = p.node.metrics();
    let secs = m.one("gpuscope_process_kernel_sync_seconds", &[("pid", &p.cuda.pid.to_string())]);
    let n = (secs / 300e-6).round();
    assert!(n >= 1.0 && (secs - n * 300e-6).abs() < 1e-9, "{secs} s is not a whole number of 300 µs syncs");
}

#[test]
fn decode_short_kernels_open_short_kernels_with_the_median_bucket() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let p = play("cuda-decode-short-kernels");
    let f = finding(&p, "short-kernels");
    let ev = evidence(f);
    // The median kernel is the 5 µs one (2.5 and 3 µs make 35 % of the launches, 5 µs the next
    // 25 %): the floor of its power-of-two bucket, 4,096 ns.
    assert_eq!((ev[0].0.as_str(), ev[0].1, ev[0].2), ("median_kernel_s", 4.096e-6, 10e-6), "{f:#}");
    assert_eq!((ev[1].0.as_str(), ev[1].2), ("launches_per_second", 5000.0), "{f:#}");
    assert!(ev[1].1 >= 5000.0, "{f:#}");
    check_agent(&p);
}

#[test]
fn bf16_tensor_cores_open_no_kernel_level_finding() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let p = play("cuda-bf16-tensor");
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
    check_agent(&p);
}
