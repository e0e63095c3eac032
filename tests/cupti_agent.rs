//! The agent's CUPTI receiver end to end, with the real binary: a test client plays the
//! injection library with the wire functions (GSCU summaries in, GSCR window requests answered)
//! on the agent's Unix socket, and the profile shows on /metrics, on the API, in
//! `query --json` and through `gpuscope profile`.
//!
//! The agent attributes a connection by its peer's PID (SO_PEERCRED): here that is this test
//! process, which the test makes a process of the simulated /proc tree (a copy of the scenario's
//! trainer, pid changed) so that it is named exactly as a real one would be.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::cupti::{GEMM, be_the_trainer, summary, unix_ns};
use common::{Clock, Node, NodeSpec, bin, get, request, start};
use gpuscope_cupti::wire;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

const SCENARIO: &str = "healthy-bf16-training";
const CONTAINER: &str = "3f1c2a9b7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a";

/// An agent on a simulated node with its CUPTI receiver on a socket in the node's directory,
/// and this process in the node's /proc as the scenario's trainer.
fn node(extra_args: &[&str]) -> (Node, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("run/gpuscope/cupti.sock");
    let mut spec = NodeSpec::new(SCENARIO, Clock::Frozen(100.0));
    spec.extra_args = ["--cupti-enabled", "true", "--cupti-socket", socket.to_str().unwrap()]
        .iter()
        .chain(extra_args)
        .map(|s| s.to_string())
        .collect();
    let node = start(spec);
    be_the_trainer(&node.root.path().join("proc"));
    (node, socket, dir)
}

/// Scrapes until `name` has a series (the agent samples every 200 ms).
fn scrape_until(node: &Node, name: &str) -> common::Metrics {
    common::eventually(30, || {
        let m = node.metrics();
        (!m.find(name, &[]).is_empty()).then_some(m)
    })
}

fn profile_json(node: &Node) -> serde_json::Value {
    let (status, _, body) = get(&node.addr, "/api/v1/profiles", &[]);
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

#[test]
fn a_library_shows_up_on_metrics_the_api_and_query_json_with_exact_values() {
    let (node, socket, _dir) = node(&[]);
    // Connected but silent: no profile yet, and absent, not zero.
    let mut lib = UnixStream::connect(&socket).unwrap();
    let m = common::eventually(30, || {
        let m = node.metrics();
        (m.one("gpuscope_agent_cupti_connections", &[]) == 1.0).then_some(m)
    });
    assert!(m.find("gpuscope_process_kernel_time_seconds", &[]).is_empty());
    assert_eq!(profile_json(&node), serde_json::json!([]));

    lib.write_all(&wire::encode(&summary(unix_ns(), 500_000_000)).unwrap()).unwrap();
    let m = scrape_until(&node, "gpuscope_process_kernel_time_seconds");
    let me = std::process::id().to_string();
    let who = [
        ("pid", me.as_str()),
        ("process", "python"),
        ("user", "trainer"),
        ("container", CONTAINER),
        ("pod", "llama-pretrain-worker-0"),
        ("namespace", "ml-training"),
    ];
    // Exact: the process labels, no GPU label (NVML does not list this process on a GPU).
    let labels = m.labels_of("gpuscope_process_kernel_time_seconds", &[]);
    let mut want: Vec<(String, String)> = who.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    want.sort();
    let mut got = labels[0].clone();
    got.sort();
    assert_eq!(got, want);
    for (name, value) in [
        ("gpuscope_process_kernel_profile_windows_total", 1.0),
        ("gpuscope_process_kernel_profile_window_seconds", 0.5),
        ("gpuscope_process_kernel_profile_period_seconds", 5.0),
        ("gpuscope_process_kernel_launches_per_second", 20_000.0),
        ("gpuscope_process_kernel_time_seconds", 0.4),
        ("gpuscope_process_kernel_executions", 4.0),
        // The floor of the power-of-two bucket of 100 ms: 2^26 ns.
        ("gpuscope_process_kernel_median_duration_seconds", 0.067108864),
        ("gpuscope_process_kernel_graph_executions", 2.0),
        ("gpuscope_process_kernel_pageable_copies", 6.0),
        ("gpuscope_process_kernel_pageable_copy_bytes", 6291456.0),
        ("gpuscope_process_kernel_async_pageable_copies", 5.0),
        ("gpuscope_process_kernel_sync_seconds", 0.05),
        ("gpuscope_process_kernel_gpu_gap_max_seconds", 0.04),
        ("gpuscope_process_kernel_gpu_gap_seconds", 0.06),
        ("gpuscope_process_kernel_profiler_overhead_seconds_total", 0.012),
        // 12 ms of callbacks over the trainer's 2400 s of CPU time.
        ("gpuscope_process_kernel_profiler_overhead_ratio", 0.012 / 2400.0),
        ("gpuscope_process_kernel_profiler_dropped_records_total", 3.0),
        ("gpuscope_process_kernel_profiler_summaries_dropped_total", 1.0),
        ("gpuscope_agent_cupti_frames_received_total", 1.0),
    ] {
        assert_eq!(m.one(name, &[]), value, "{name}");
    }
    // Per class: bounded labels, the collective's operation only on the collective.
    let gemm = [("kind", "gemm"), ("pipe", "tensor"), ("precision", "bf16")];
    assert_eq!(m.one("gpuscope_process_kernel_class_time_seconds", &gemm), 0.3);
    assert_eq!(m.one("gpuscope_process_kernel_class_executions", &gemm), 3.0);
    let nccl = [("kind", "collective"), ("collective", "allreduce"), ("pipe", "unknown"), ("precision", "unknown")];
    assert_eq!(m.one("gpuscope_process_kernel_class_time_seconds", &nccl), 0.1);
    assert_eq!(m.labels_of("gpuscope_process_kernel_class_time_seconds", &[]).len(), 2);
    assert!(
        !m.labels_of("gpuscope_process_kernel_class_time_seconds", &gemm)[0].iter().any(|(k, _)| k == "collective")
    );
    // Kernel names never become label values.
    let (_, _, text) = get(&node.addr, "/metrics", &[]);
    let text = String::from_utf8(text).unwrap();
    assert!(!text.contains("s16816gemm") && !text.contains("ncclDevKernel"), "a kernel name leaked into /metrics");
    // Prometheus's own linter has nothing to say about the new families.
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (scripts/test installs the Debian prometheus package)");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let lint = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&lint.stdout), String::from_utf8_lossy(&lint.stderr));
    assert!(lint.status.success() && said.trim().is_empty(), "promtool: {said}");

    // The API has the profile with its top kernels.
    let api = profile_json(&node);
    let p = &api[0];
    assert_eq!(p["pid"], std::process::id());
    assert_eq!(p["name"], "python");
    assert_eq!(p["pod"], "llama-pretrain-worker-0");
    assert_eq!(p["kernel_seconds"], 0.4);
    assert_eq!(p["top_kernels"][0]["name"], GEMM);
    assert_eq!(p["top_kernels"][0]["seconds"], 0.3);
    assert_eq!(p["top_kernels"][0]["class"]["kind"], "gemm");
    assert_eq!(p["top_kernels"][1]["class"]["kind"], serde_json::json!({"collective": "all_reduce"}));
    assert_eq!(p["classes"].as_array().unwrap().len(), 2);

    // query --json asks the running agent for them.
    let out = std::process::Command::new(bin())
        .args(["query", "--json", "--gap-ms", "150"])
        .env("GPUSCOPE_SIM_SCENARIO", SCENARIO)
        .env("GPUSCOPE_SIM_TIME", "100")
        .env("GPUSCOPE_NVML_LIB", common::nvml_lib())
        .env("GPUSCOPE_PROCFS_ROOT", node.root.path().join("proc"))
        .env("GPUSCOPE_SYSFS_ROOT", node.root.path().join("sys"))
        .env("GPUSCOPE_LISTEN", &node.addr)
        .env("GPUSCOPE_CUPTI_ENABLED", "true")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let q: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(q["kernel_profiles"], api);
    assert_eq!(q["agent"]["cupti"], serde_json::Value::Null, "query samples without a receiver of its own");

    // Closed and gone from /proc: the profile goes with the connection.
    drop(lib);
    std::fs::remove_dir_all(node.root.path().join("proc").join(std::process::id().to_string())).unwrap();
    common::eventually(30, || {
        node.metrics().find("gpuscope_process_kernel_time_seconds", &[]).is_empty().then_some(())
    });
    assert_eq!(profile_json(&node), serde_json::json!([]));
}

#[test]
fn malformed_frames_are_rejected_and_counted_and_the_agent_goes_on() {
    let (node, socket, _dir) = node(&[]);
    let good = wire::encode(&summary(unix_ns(), 500_000_000)).unwrap();
    let mut oversize = good.clone();
    oversize[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut version = good.clone();
    version[4] = 9;
    let mut trailing = good.clone();
    trailing.push(0);
    let len = (trailing.len() - wire::HEADER_BYTES) as u32;
    trailing[8..12].copy_from_slice(&len.to_le_bytes());
    for (reason, bytes) in [
        ("bad_magic", b"\x00\x01garbage that is not a frame".to_vec()),
        ("oversize", oversize),
        ("unsupported_version", version),
        ("malformed", trailing),
    ] {
        let mut c = UnixStream::connect(&socket).unwrap();
        c.write_all(&bytes).unwrap();
        // The agent closes the connection (the read ends instead of hanging).
        let mut rest = Vec::new();
        let _ = c.read_to_end(&mut rest);
        // The counters reach /metrics with the next sampling pass.
        common::eventually(30, || {
            let m = node.metrics();
            (m.one("gpuscope_agent_cupti_frames_rejected_total", &[("reason", reason)]) == 1.0).then_some(())
        });
    }
    // A payload cut short: the peer goes away mid-frame.
    let mut c = UnixStream::connect(&socket).unwrap();
    c.write_all(&good[..good.len() / 2]).unwrap();
    drop(c);
    common::eventually(30, || {
        let m = node.metrics();
        (m.one("gpuscope_agent_cupti_frames_rejected_total", &[("reason", "truncated")]) == 1.0).then_some(())
    });
    // Still serving, and the next good client is heard.
    assert_eq!(get(&node.addr, "/readyz", &[]).0, 200);
    let mut c = UnixStream::connect(&socket).unwrap();
    c.write_all(&good).unwrap();
    let m = scrape_until(&node, "gpuscope_process_kernel_time_seconds");
    assert_eq!(m.one("gpuscope_agent_cupti_frames_received_total", &[]), 1.0);
    assert_eq!(m.one("gpuscope_agent_cupti_frames_rejected_total", &[("reason", "timeout")]), 0.0);
    let mut node = node;
    assert!(node.drain_log().iter().any(|l| l.contains("CUPTI summary rejected")));
}

#[test]
fn connections_past_the_limit_are_closed_and_counted() {
    let (node, socket, _dir) = node(&[]);
    let open: Vec<UnixStream> = (0..256).map(|_| UnixStream::connect(&socket).unwrap()).collect();
    common::eventually(60, || (node.metrics().one("gpuscope_agent_cupti_connections", &[]) == 256.0).then_some(()));
    let mut extra = UnixStream::connect(&socket).unwrap();
    let mut rest = Vec::new();
    assert_eq!(extra.read_to_end(&mut rest).unwrap_or(0), 0, "closed at once");
    let m = common::eventually(30, || {
        let m = node.metrics();
        (m.one("gpuscope_agent_cupti_connections_refused_total", &[]) == 1.0).then_some(m)
    });
    assert_eq!(m.one("gpuscope_agent_cupti_connections", &[]), 256.0);
    drop(open);
    common::eventually(60, || (node.metrics().one("gpuscope_agent_cupti_connections", &[]) == 0.0).then_some(()));
    // Room again.
    let mut c = UnixStream::connect(&socket).unwrap();
    c.write_all(&wire::encode(&summary(unix_ns(), 500_000_000)).unwrap()).unwrap();
    scrape_until(&node, "gpuscope_process_kernel_time_seconds");
}

/// Plays the library: answers every window request with a window of the requested length,
/// started when the request arrived and sent when it ends.
fn answer_requests(mut lib: UnixStream) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut answered = 0;
        while let Ok(window_ns) = wire::read_request(&mut lib) {
            let start = unix_ns();
            std::thread::sleep(Duration::from_nanos(window_ns));
            lib.write_all(&wire::encode(&summary(start, window_ns)).unwrap()).unwrap();
            answered += 1;
        }
        answered
    })
}

#[test]
fn gpuscope_profile_asks_the_agent_for_a_window() {
    let (node, socket, _dir) = node(&[]);
    let lib = UnixStream::connect(&socket).unwrap();
    common::eventually(30, || (node.metrics().one("gpuscope_agent_cupti_connections", &[]) == 1.0).then_some(()));
    let library = answer_requests(lib.try_clone().unwrap());
    let me = std::process::id().to_string();
    let profile_of = |pid: &str, args: &[&str]| {
        std::process::Command::new(bin())
            .args(["profile", "--pid", pid])
            .args(args)
            .env("GPUSCOPE_LISTEN", &node.addr)
            .output()
            .unwrap()
    };
    let profile = |args: &[&str]| profile_of(&me, args);
    let out = profile(&["--duration", "200ms", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["pid"], std::process::id());
    assert_eq!(p["window_seconds"], 0.2);
    assert_eq!(p["kernel_seconds"], 0.4);
    assert_eq!(p["top_kernels"][0]["name"], GEMM);
    // Named by the sampling pass (the profile exists there after the first window); the next
    // answer carries the name.
    common::eventually(30, || (profile_json(&node)[0]["name"] == "python").then_some(()));
    let out = profile(&["--duration", "1s"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains(&format!("pid {me} python  user trainer  pod ml-training/llama-pretrain-worker-0")),
        "{table}"
    );
    assert!(table.contains("window 1000.000 ms"), "{table}");
    assert!(table.contains(GEMM) && table.contains("gemm/tensor/bf16"), "{table}");
    assert!(table.contains("collective/allreduce"), "{table}");
    assert!(table.contains("copies from/to pageable memory: 6 (6.0 MiB), 5 of them async"), "{table}");
    assert!(table.contains("synchronization: 50.000 ms (5.0% of the window)"), "{table}");
    assert!(table.contains("GPU gaps between kernels: longest 40.000 ms, total 60.000 ms"), "{table}");

    // Refusals: bad parameters, an unknown process, the wrong method.
    let post = |q: &str| request(&node.addr, "POST", &format!("/api/v1/profile{q}"), &[], &[]);
    let (status, _, body) = post("?pid=1");
    assert_eq!(status, 404);
    assert_eq!(String::from_utf8(body).unwrap(), "no gpuscope injection library connected for pid 1\n");
    assert_eq!(post("?pid=x").0, 400);
    assert_eq!(post("").0, 400);
    assert_eq!(post(&format!("?pid={me}&duration_ms=0")).0, 400);
    assert_eq!(post(&format!("?pid={me}&duration_ms=60001")).0, 400);
    assert_eq!(get(&node.addr, &format!("/api/v1/profile?pid={me}"), &[]).0, 405);
    let out = profile_of("1", &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no gpuscope injection library connected for pid 1"));
    drop(lib);
    node_stop(node);
    assert_eq!(library.join().unwrap(), 2, "two windows were requested");
}

/// A library that never answers its window request: the agent gives up after the window and
/// its grace, with 504.
#[test]
fn a_window_that_never_comes_is_a_timeout() {
    let (node, socket, _dir) = node(&[]);
    let _lib = UnixStream::connect(&socket).unwrap();
    common::eventually(30, || (node.metrics().one("gpuscope_agent_cupti_connections", &[]) == 1.0).then_some(()));
    let me = std::process::id();
    let (status, _, body) = request(&node.addr, "POST", &format!("/api/v1/profile?pid={me}&duration_ms=1"), &[], &[]);
    assert_eq!(status, 504, "{}", String::from_utf8_lossy(&body));
}

#[test]
fn without_the_receiver_there_is_nothing_cupti_on_metrics() {
    let node = start(NodeSpec::new(SCENARIO, Clock::Frozen(100.0)));
    let (_, _, text) = get(&node.addr, "/metrics", &[]);
    let text = String::from_utf8(text).unwrap();
    assert!(!text.contains("gpuscope_agent_cupti_"), "{text}");
    assert!(!text.contains("gpuscope_process_kernel_"));
    let (status, _, body) = request(&node.addr, "POST", "/api/v1/profile?pid=1", &[], &[]);
    assert_eq!(status, 404);
    assert!(String::from_utf8(body).unwrap().contains("[cupti] enabled = false"));
}

#[test]
fn a_second_agent_does_not_take_a_live_socket() {
    let (node, socket, _dir) = node(&[]);
    let out = std::process::Command::new(bin())
        .args(["agent", "--listen", "127.0.0.1:0", "--cupti-enabled", "true", "--cupti-socket"])
        .arg(&socket)
        .env("GPUSCOPE_NVML_LIB", common::nvml_lib())
        .env("GPUSCOPE_PROCFS_ROOT", node.root.path().join("proc"))
        .env("GPUSCOPE_SYSFS_ROOT", node.root.path().join("sys"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another process already listens on"), "{err}");
    // The first agent still has it.
    let mut c = UnixStream::connect(&socket).unwrap();
    c.write_all(&wire::encode(&summary(unix_ns(), 500_000_000)).unwrap()).unwrap();
    scrape_until(&node, "gpuscope_process_kernel_time_seconds");
}

fn node_stop(node: Node) {
    drop(node);
}

/// The profile endpoints sit behind the web configuration's authentication like /metrics, and
/// `gpuscope profile --basic-auth` gets through.
#[test]
fn the_profile_endpoints_require_the_endpoints_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    // Cost 4, bcrypt's lowest: the agent checks a hash per request.
    let hash = bcrypt::hash("s3cret", 4).unwrap().replacen("$2b$", "$2y$", 1);
    std::fs::write(&web, format!("basic_auth_users:\n  prom: {hash}\n")).unwrap();
    let socket = dir.path().join("cupti.sock");
    let addr = format!("127.0.0.1:{}", common::free_port());
    let agent = common::Proc(
        std::process::Command::new(bin())
            .args(["agent", "--listen", &addr, "--interval-ms", "200", "--cupti-enabled", "true"])
            .arg("--cupti-socket")
            .arg(&socket)
            .arg("--web.config.file")
            .arg(&web)
            // No driver and an empty /proc: the samplers fail, the endpoint and the receiver serve.
            .env("GPUSCOPE_NVML_LIB", dir.path().join("no-libnvidia-ml.so"))
            .env("GPUSCOPE_PROCFS_ROOT", dir.path().join("proc"))
            .env("GPUSCOPE_SYSFS_ROOT", dir.path().join("sys"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    common::eventually(30, || (std::net::TcpStream::connect(&addr).is_ok() && socket.exists()).then_some(()));
    let lib = UnixStream::connect(&socket).unwrap();
    let library = answer_requests(lib);
    let me = std::process::id().to_string();
    assert_eq!(request(&addr, "POST", &format!("/api/v1/profile?pid={me}"), &[], &[]).0, 401);
    assert_eq!(get(&addr, "/api/v1/profiles", &[]).0, 401);
    let profile = |auth: Option<&str>| {
        let mut c = std::process::Command::new(bin());
        c.args(["profile", "--pid", &me, "--duration", "100ms", "--json"]).env("GPUSCOPE_LISTEN", &addr);
        if let Some(a) = auth {
            c.args(["--basic-auth", a]);
        }
        c.output().unwrap()
    };
    let refused = profile(None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("answered 401"), "{refused:?}");
    let out = profile(Some("prom:s3cret"));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["window_seconds"], 0.1);
    drop(agent);
    assert_eq!(library.join().unwrap(), 1);
}
