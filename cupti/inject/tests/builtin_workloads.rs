//! The simulator's built-in CUDA workloads (`sim/scenarios/cuda-*.toml`) through the whole
//! library path: `gpuscope-sim-cuda` plays each one with this library injected against the
//! simulated `libcupti.so`, and the test, as the agent, decodes the summaries it sends. Each
//! workload's windows carry the facts its kernel-level rule reads (and the others' do not):
//! SIMT matmul time, pageable async copies, synchronization time, the median kernel duration.
//!
//! Window boundaries depend on when the worker thread runs, so the checks hold for any window of
//! a few hundred milliseconds. Needs the workspace built (`cargo build --workspace`, as
//! `scripts/test` does): the harness and the simulated CUPTI are another package's artifacts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::io::ErrorKind;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use gpuscope_cupti::{KernelKind, MathPipe, ReadError, WindowSummary, read_frame};

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf()
}

/// The newest build of an artifact (a copy next to the binaries may be an older build's).
fn artifact(name: &str) -> PathBuf {
    let dir = target_dir();
    [dir.join(name), dir.join("deps").join(name)]
        .into_iter()
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
        .unwrap_or_else(|| panic!("{name} not built in {}: run cargo build --workspace first", dir.display()))
}

/// Plays `workload` for 2.2 s with 400 ms windows every 800 ms (two windows) and returns the
/// summaries that saw kernels.
fn windows(workload: &str) -> Vec<WindowSummary> {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("cupti.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    listener.set_nonblocking(true).unwrap();
    let mut child = Command::new(artifact("gpuscope-sim-cuda"))
        .args(["--workload", workload, "--seconds", "2.2"])
        .env("CUDA_INJECTION64_PATH", artifact("libgpuscope_cupti_inject.so"))
        .env("GPUSCOPE_SIM_CUPTI_LIB", artifact("libcupti.so"))
        .env("GPUSCOPE_CUPTI_SOCKET", &socket)
        .env("GPUSCOPE_CUPTI_WINDOW_MS", "400")
        .env("GPUSCOPE_CUPTI_PERIOD_MS", "800")
        .env("GPUSCOPE_CUPTI_BUDGET", "1")
        .env_remove("GPUSCOPE_CUPTI_LOG")
        .env_remove("GPUSCOPE_SIM_CUPTI_SUBSCRIBED")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gpuscope-sim-cuda");
    let mut stream = loop {
        match listener.accept() {
            Ok((s, _)) => break s,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if child.try_wait().unwrap().is_some() {
                    match listener.accept() {
                        Ok((s, _)) => break s,
                        Err(_) => panic!("{workload}: the library never connected"),
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    };
    stream.set_nonblocking(false).unwrap();
    let mut summaries = Vec::new();
    loop {
        match read_frame(&mut stream) {
            Ok(s) => summaries.push(s),
            Err(ReadError::Io(e)) if e.kind() == ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("{workload}: frame {} is not a valid summary: {e}", summaries.len()),
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{workload}: {}", String::from_utf8_lossy(&out.stderr));
    let with_kernels: Vec<WindowSummary> =
        summaries.into_iter().filter(|s| s.classes.iter().any(|c| c.time.count > 0)).collect();
    assert!(!with_kernels.is_empty(), "{workload}: no window saw a kernel");
    for s in &with_kernels {
        assert_eq!((s.dropped_records, s.invalid_records), (0, 0), "{workload}");
    }
    with_kernels
}

fn kernel_ns(s: &WindowSummary, pick: impl Fn(KernelKind, MathPipe) -> bool) -> f64 {
    s.classes.iter().filter(|c| pick(c.class.kind, c.class.pipe)).map(|c| c.time.total_ns as f64).sum()
}

/// Matmul and convolution time on the SIMT cores, as a share of all kernel time.
fn simt_matmul_share(s: &WindowSummary) -> f64 {
    let simt = kernel_ns(s, |k, p| matches!(k, KernelKind::Gemm | KernelKind::Conv) && p == MathPipe::Simt);
    simt / kernel_ns(s, |_, _| true)
}

fn sync_share(s: &WindowSummary) -> f64 {
    s.sync_ns() as f64 / s.window_ns() as f64
}

#[test]
fn each_built_in_workload_shows_its_own_kernel_level_facts() {
    // SIMT SGEMMs take 85 % of the kernel time (420 of every 493 µs per 20 launches).
    for s in windows("cuda-fp32-sgemm") {
        let share = simt_matmul_share(&s);
        assert!((0.8..0.9).contains(&share), "fp32: SIMT share {share}");
        assert_eq!(s.pageable_async_copies().count, 0);
        assert!(sync_share(&s) < 0.05);
    }
    for s in windows("cuda-bf16-tensor") {
        assert_eq!(simt_matmul_share(&s), 0.0);
        assert!(s.graph_kernels.count > 0, "the optimizer step is a graph");
        assert_eq!(s.pageable_async_copies().count, 0);
        assert!(sync_share(&s) < 0.05);
        assert!(s.median_kernel_duration_floor_ns().unwrap() >= 16_384);
    }
    // One 32 MiB async copy from pageable memory every 10 launches.
    for s in windows("cuda-pageable-copies") {
        let p = s.pageable_async_copies();
        assert!(p.count > 0 && p.bytes == p.count * 33_554_432, "pageable: {p:?}");
        assert_eq!(simt_matmul_share(&s), 0.0);
    }
    // 300 µs of stream synchronization after every 8th launch (15 % of the time at the paced
    // 4,000 launches/s). Per launch, so that a late harness catching up cannot move it.
    for s in windows("cuda-sync-heavy") {
        let per_launch = s.sync_ns() as f64 / s.launches_in_window as f64;
        assert!((30_000.0..45_000.0).contains(&per_launch), "sync-heavy: {per_launch} ns per launch");
        assert!(s.median_kernel_duration_floor_ns().unwrap() >= 16_384);
        assert_eq!(s.pageable_async_copies().count, 0);
    }
    // Median 5 µs: the 4.1 µs bucket.
    for s in windows("cuda-decode-short-kernels") {
        assert_eq!(s.median_kernel_duration_floor_ns(), Some(4096));
        assert!(s.launches_per_second().is_some_and(|r| r > 0.0));
        assert_eq!(simt_matmul_share(&s), 0.0);
        assert_eq!(s.pageable_async_copies().count, 0);
    }
}
