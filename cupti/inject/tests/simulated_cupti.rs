//! The whole path without a GPU: the simulated CUDA process (`gpuscope-sim-cuda`, sim/cupti)
//! loads this library through `CUDA_INJECTION64_PATH` against the simulated `libcupti.so`,
//! plays the kernel mix of `tests/scenarios/inject-mix.toml`, and the test is the agent: it
//! listens on the socket and decodes every frame with `gpuscope_cupti::read_frame`.
//!
//! Which launches fall inside a window depends on when the worker thread runs, so the test
//! checks what every window must say whatever its boundaries: each kernel's exact duration,
//! dimensions and class, totals that are exact multiples of them, the mix's proportions, copies
//! by memory kind, synchronization time, the period, and two callbacks per driver launch.
//!
//! Needs the workspace built (`cargo build --workspace`, as `scripts/test` does): the harness
//! and the simulated CUPTI are another package's artifacts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::collections::BTreeMap;
use std::io::ErrorKind;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use gpuscope_cupti::summary::{MemcpyKind, MemoryKind, SyncKind, TimeStats, TransferStats};
use gpuscope_cupti::{ReadError, WindowSummary, classify, read_frame};

const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/scenarios/inject-mix.toml");

/// One kernel of `inject-mix.toml`: name, share, duration (ns), grid, block, launched from a graph.
type MixKernel = (&'static str, f64, u64, [u32; 3], [u32; 3], bool);

const MIX: [MixKernel; 5] = [
    ("ampere_bf16_s16816gemm_bf16_256x128_ldg8_f2f_stages_32x3_nn", 0.2, 200_000, [132, 2, 1], [256, 1, 1], false),
    ("volta_sgemm_64x32_sliced1x4_nn", 0.1, 150_000, [512, 4, 1], [128, 1, 1], false),
    (
        "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float> >",
        0.4,
        20_000,
        [2048, 1, 1],
        [128, 1, 1],
        false,
    ),
    ("ncclDevKernel_AllReduce_Sum_bf16_RING_LL", 0.1, 100_000, [16, 1, 1], [512, 1, 1], false),
    ("triton_poi_fused_add_mul_0", 0.2, 10_000, [64, 1, 1], [128, 1, 1], true),
];

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

fn artifact(names: &[&str]) -> PathBuf {
    let dir = target_dir();
    names
        .iter()
        .flat_map(|n| [dir.join(n), dir.join("deps").join(n)])
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{names:?} not built in {}: run cargo build --workspace first", dir.display()))
}

struct Run {
    summaries: Vec<WindowSummary>,
    stderr: String,
    harness: serde_json::Value,
    pid: u32,
}

/// Plays the mix for `seconds` with the library injected and `env` set; the test listens on the
/// socket unless `listen` is false, sending `requests` (GSCR frames, back to back) once connected.
fn play(seconds: f64, env: &[(&str, &str)], listen: bool, requests: &[Duration]) -> Run {
    play_with(seconds, env, listen, requests, None)
}

/// [`play`], and when `after_first` is set, a request of that length once the first summary came.
fn play_with(
    seconds: f64,
    env: &[(&str, &str)],
    listen: bool,
    requests: &[Duration],
    after_first: Option<Duration>,
) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("cupti.sock");
    let listener = listen.then(|| {
        let l = UnixListener::bind(&socket).unwrap();
        l.set_nonblocking(true).unwrap();
        l
    });
    let mut cmd = Command::new(artifact(&["gpuscope-sim-cuda"]));
    cmd.args(["--scenario", SCENARIO, "--seconds", &seconds.to_string()])
        .env("CUDA_INJECTION64_PATH", artifact(&["libgpuscope_cupti_inject.so"]))
        .env("GPUSCOPE_SIM_CUPTI_LIB", artifact(&["libcupti.so"]))
        .env("GPUSCOPE_CUPTI_SOCKET", &socket)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for key in ["GPUSCOPE_CUPTI_LOG", "GPUSCOPE_CUPTI_WINDOW_MS", "GPUSCOPE_CUPTI_PERIOD_MS", "GPUSCOPE_CUPTI_BUDGET"] {
        cmd.env_remove(key);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start gpuscope-sim-cuda");
    let pid = child.id();
    let summaries = match &listener {
        Some(l) => receive(l, &mut child, requests, after_first),
        None => Vec::new(),
    };
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the simulated process ends normally: {:?}\n{stderr}", out.status);
    let harness = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("harness output ({e}): {stderr}"));
    Run { summaries, stderr, harness, pid }
}

/// Accepts the library's connection (if it makes one before the process ends) and reads frames
/// until the process closes it.
fn receive(
    listener: &UnixListener,
    child: &mut Child,
    requests: &[Duration],
    after_first: Option<Duration>,
) -> Vec<WindowSummary> {
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if child.try_wait().unwrap().is_some() {
                    // Ended: a connection made just before is still in the backlog.
                    match listener.accept() {
                        Ok((s, _)) => break s,
                        Err(_) => return Vec::new(),
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let send = |stream: &mut std::os::unix::net::UnixStream, window: Duration| {
        use std::io::Write;
        let frame = gpuscope_cupti::wire::encode_request(window.as_nanos() as u64).unwrap();
        stream.write_all(&frame).unwrap();
    };
    for window in requests {
        send(&mut stream, *window);
    }
    let mut summaries = Vec::new();
    loop {
        match read_frame(&mut stream) {
            Ok(s) => {
                summaries.push(s);
                if let (1, Some(window)) = (summaries.len(), after_first) {
                    send(&mut stream, window);
                }
            }
            Err(ReadError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => return summaries,
            Err(e) => panic!("frame {} is not a valid summary: {e}", summaries.len()),
        }
    }
}

/// What every window must say, whatever launches it caught.
fn check_window(s: &WindowSummary) {
    assert_eq!((s.dropped_records, s.invalid_records, s.summaries_dropped), (0, 0, 0));
    let kernels: u64 = s.classes.iter().map(|c| c.time.count).sum();
    assert_eq!(s.folded_kernels, TimeStats::default());
    assert_eq!(s.other_kernels, TimeStats::default(), "5 kernels, all in the top 16");
    assert_eq!(s.top_kernels.iter().map(|k| k.count).sum::<u64>(), kernels);
    let mut by_class: BTreeMap<String, TimeStats> = BTreeMap::new();
    for k in &s.top_kernels {
        let (_, share, ns, grid, block, graph) =
            MIX.iter().find(|m| m.0 == k.name).unwrap_or_else(|| panic!("{} is not a kernel of the mix", k.name));
        assert_eq!((k.max_ns, k.total_ns, k.grid, k.block), (*ns, k.count * ns, *grid, *block), "{}", k.name);
        assert_eq!(k.class, classify(&k.name));
        // Smooth weighted round-robin: any run of launches holds each kernel within 2 of its share.
        let expected = kernels as f64 * share;
        assert!((k.count as f64 - expected).abs() < 2.0, "{}: {} of {kernels}, share {share}", k.name, k.count);
        if *graph {
            assert_eq!(s.graph_kernels, TimeStats { count: k.count, total_ns: k.total_ns });
        }
        let c = by_class.entry(k.class.label()).or_default();
        c.count += k.count;
        c.total_ns += k.total_ns;
    }
    let classes: BTreeMap<String, TimeStats> = s.classes.iter().map(|c| (c.class.label(), c.time)).collect();
    assert_eq!(classes, by_class);
    if kernels > 0 {
        assert_eq!(s.gpu_gaps.len(), 1);
        assert_eq!(s.gpu_gaps[0].device, 0);
    }
    for m in &s.memcpy {
        let expected = match (m.kind, m.src, m.dst, m.is_async) {
            (MemcpyKind::HostToDevice, MemoryKind::Pageable, MemoryKind::Device, true) => (1 << 20, 90_000),
            (MemcpyKind::DeviceToHost, MemoryKind::Device, MemoryKind::Pinned, false) => (4096, 5_000),
            other => panic!("a copy the mix does not make: {other:?}"),
        };
        let n = m.transfer.count;
        assert_eq!(m.transfer, TransferStats { count: n, bytes: n * expected.0, total_ns: n * expected.1 });
    }
    assert_eq!(s.memset.bytes, s.memset.count * 65_536);
    for y in &s.sync {
        assert_eq!(y.kind, SyncKind::Stream);
        assert_eq!(y.time.total_ns, y.time.count * 300_000);
    }
    // CUPTI calls the subscriber at the enter and exit of each driver launch; the runtime API's
    // launches (which the simulated process also fires) are not subscribed.
    let launches = s.launches as i64;
    assert!((s.callback_count as i64 - 2 * launches).abs() <= 2, "{} callbacks, {launches} launches", s.callback_count);
}

#[test]
fn summaries_of_the_simulated_process_carry_its_kernel_mix() {
    let run = play(
        3.5,
        &[("GPUSCOPE_CUPTI_WINDOW_MS", "300"), ("GPUSCOPE_CUPTI_PERIOD_MS", "1000"), ("GPUSCOPE_CUPTI_BUDGET", "1")],
        true,
        &[],
    );
    assert_eq!(run.stderr, "", "silent");
    assert_eq!(run.harness["launches"], 7_000);
    assert!(!run.summaries.is_empty(), "windows open 1 s, 2 s, 3 s after cuInit");
    for s in &run.summaries {
        assert_eq!(s.pid, run.pid);
        assert_eq!(s.period_ns, 1_000_000_000, "a budget of a whole CPU never stretches");
        assert!(s.window_ns() >= 300_000_000, "a window lasts at least its length");
        check_window(s);
    }
    let seen: u64 = run.summaries.iter().flat_map(|s| &s.classes).map(|c| c.time.count).sum();
    assert!(seen > 0, "the windows saw kernels");
    let launches: u64 = run.summaries.iter().map(|s| s.launches).sum();
    assert!(launches > 0 && launches <= 7_000, "{launches} launches counted of 7,000");
    let copies: u64 = run.summaries.iter().map(|s| s.pageable_async_copies().count).sum();
    assert!(copies > 0, "the async copies from pageable memory are seen");
    for pair in run.summaries.windows(2) {
        assert!(pair[1].window_start_unix_ns >= pair[0].window_end_unix_ns);
    }
}

#[test]
fn an_agent_request_opens_a_window_at_once() {
    // Scheduled windows are 10 minutes apart (the first 5 s after cuInit, after the run): any
    // summary comes from the request.
    let run = play(
        2.0,
        &[("GPUSCOPE_CUPTI_WINDOW_MS", "100"), ("GPUSCOPE_CUPTI_PERIOD_MS", "600000"), ("GPUSCOPE_CUPTI_BUDGET", "1")],
        true,
        &[Duration::from_millis(400)],
    );
    assert_eq!(run.summaries.len(), 1, "one requested window");
    let s = &run.summaries[0];
    assert!(s.window_ns() >= 400_000_000, "the requested length, not the configured 100 ms: {}", s.window_ns());
    assert_eq!(s.period_ns, 600_000_000_000);
    check_window(s);
    assert!(s.classes.iter().map(|c| c.time.count).sum::<u64>() > 0);
}

#[test]
fn a_request_during_a_window_extends_it() {
    // The first request opens a window; the second, already waiting on the socket, is read
    // inside it and extends it to 1.5 s from then: one summary answers both.
    let run = play(
        3.0,
        &[("GPUSCOPE_CUPTI_WINDOW_MS", "100"), ("GPUSCOPE_CUPTI_PERIOD_MS", "600000"), ("GPUSCOPE_CUPTI_BUDGET", "1")],
        true,
        &[Duration::from_millis(400), Duration::from_millis(1_500)],
    );
    assert_eq!(run.summaries.len(), 1, "one extended window");
    assert!(run.summaries[0].window_ns() >= 1_500_000_000, "{}", run.summaries[0].window_ns());
    check_window(&run.summaries[0]);
}

#[test]
fn an_expensive_window_stretches_the_period_and_the_next_summary_says_so() {
    // A budget of one millionth of a CPU: any window costs more than 1 s of it allows (reading
    // its records alone takes the worker well over a microsecond), so after the first window the
    // controller stretches the 1 s period (to at least the window's cost / budget, at most
    // 10 minutes). A request gets the next summary, which carries the stretched period.
    let run = play_with(
        3.5,
        &[
            ("GPUSCOPE_CUPTI_WINDOW_MS", "200"),
            ("GPUSCOPE_CUPTI_PERIOD_MS", "1000"),
            ("GPUSCOPE_CUPTI_BUDGET", "0.000001"),
        ],
        true,
        &[],
        Some(Duration::from_millis(200)),
    );
    assert_eq!(run.summaries.len(), 2, "the scheduled window, then the requested one");
    assert_eq!(run.summaries[0].period_ns, 1_000_000_000, "the configured period while the first ran");
    let stretched = run.summaries[1].period_ns;
    assert!(stretched > 1_000_000_000 && stretched <= 600_000_000_000, "{stretched}");
    check_window(&run.summaries[1]);
}

#[test]
fn without_an_agent_the_process_runs_and_nothing_is_printed() {
    let run = play(1.5, &[("GPUSCOPE_CUPTI_WINDOW_MS", "200"), ("GPUSCOPE_CUPTI_PERIOD_MS", "500")], false, &[]);
    assert_eq!(run.stderr, "");
    assert_eq!(run.harness["launches"], 3_000);
}

#[test]
fn with_another_subscriber_the_library_steps_aside_and_says_so_once() {
    let run = play(1.5, &[("GPUSCOPE_SIM_CUPTI_SUBSCRIBED", "1"), ("GPUSCOPE_CUPTI_PERIOD_MS", "500")], true, &[]);
    assert!(run.summaries.is_empty(), "no connection, no summary");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(lines[0].starts_with("gpuscope-cupti: another CUPTI client"), "{}", lines[0]);
    assert!(lines[0].contains("steps aside"), "{}", lines[0]);
    assert_eq!(run.harness["launches"], 3_000);
}
