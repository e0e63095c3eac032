//! The library loads into a process without CUDA and stays silent: a child process (this same
//! binary, re-executed with an empty `LD_LIBRARY_PATH`) dlopens the built cdylib exactly as the
//! CUDA driver does, calls `InitializeInjection`, and must return 1, print nothing, start no
//! thread and live on. With `GPUSCOPE_CUPTI_LOG=1` it says why it does nothing, in one line.
//! The same with NVIDIA's real CUPTI of CUDA 12.8 (the `nvidia-cuda-cupti-cu12` wheel that
//! `scripts/test` installs into `.venv`) but no driver: CUPTI refuses the subscription and the
//! library stays off.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

use std::ffi::CString;
use std::path::PathBuf;
use std::process::Command;

const CHILD: &str = "GPUSCOPE_INJECT_TEST_CHILD";
const LIB: &str = "libgpuscope_cupti_inject.so";

/// The cdylib cargo built for this package: next to the test binary's `deps/` folder.
fn library() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let deps = exe.parent().expect("deps folder").to_path_buf();
    let profile = deps.parent().expect("profile folder").to_path_buf();
    [profile.join(LIB), deps.join(LIB)]
        .into_iter()
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{LIB} is built next to {} (cargo builds the cdylib with the tests)", deps.display()))
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").map(|d| d.count()).unwrap_or(0)
}

/// The host process: what the CUDA driver does at cuInit.
fn child(lib: &str) {
    let before = threads();
    let path = CString::new(lib).unwrap();
    // SAFETY: dlopen/dlsym with valid strings; the symbol has the signature the driver uses.
    unsafe {
        let handle = libc::dlopen(path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
        assert!(!handle.is_null(), "dlopen {lib} failed");
        let symbol = libc::dlsym(handle, c"InitializeInjection".as_ptr());
        assert!(!symbol.is_null(), "InitializeInjection is exported");
        let init: extern "C" fn() -> std::ffi::c_int = std::mem::transmute(symbol);
        let first = init();
        let second = init();
        std::thread::sleep(std::time::Duration::from_millis(200));
        println!("returned {first} {second}; threads {before} -> {}", threads());
    }
}

/// The folder of NVIDIA's libcupti.so.12 from PyPI: `GPUSCOPE_TEST_CUPTI_DIR`, or the repository's
/// `.venv` (scripts/test installs tests/python/requirements.txt there).
fn real_cupti_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GPUSCOPE_TEST_CUPTI_DIR") {
        return PathBuf::from(dir);
    }
    let venv_lib = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/lib"));
    std::fs::read_dir(&venv_lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/nvidia/cuda_cupti/lib"))
        .find(|dir| dir.join("libcupti.so.12").is_file())
        .unwrap_or_else(|| {
            panic!(
                "NVIDIA's libcupti.so.12 is not in {}: run scripts/test (it installs nvidia-cuda-cupti-cu12 from \
                 tests/python/requirements.txt) or set GPUSCOPE_TEST_CUPTI_DIR",
                venv_lib.display()
            )
        })
}

fn run(log: bool) -> std::process::Output {
    run_with(log, "")
}

fn run_with(log: bool, library_path: &str) -> std::process::Output {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.env(CHILD, library())
        .env("LD_LIBRARY_PATH", library_path)
        .env("GPUSCOPE_CUPTI_WINDOW_MS", "not a number")
        .env_remove("CUDA_INJECTION64_PATH");
    if log {
        cmd.env("GPUSCOPE_CUPTI_LOG", "1");
    } else {
        cmd.env_remove("GPUSCOPE_CUPTI_LOG");
    }
    cmd.output().expect("run the child")
}

fn main() {
    if let Some(lib) = std::env::var_os(CHILD) {
        child(&lib.to_string_lossy());
        return;
    }

    let out = run(false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the host process lives: {:?}\n{stdout}\n{stderr}", out.status);
    let threads = stdout.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(
        stdout.trim(),
        format!("returned 1 1; threads {threads} -> {threads}"),
        "returns 1 (twice) and starts no thread"
    );
    assert_eq!(stderr, "", "silent: not even the invalid window variable is mentioned");
    println!("test the_library_loads_into_a_process_without_cuda_and_stays_silent ... ok");

    let out = run(true);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    assert_eq!(
        stderr, "gpuscope-cupti: no CUPTI library (libcupti.so) found: kernel profiling is off in this process\n",
        "one line, only when asked for"
    );
    println!("test with_gpuscope_cupti_log_it_says_why_in_one_line ... ok");

    let cupti = real_cupti_dir();
    let cupti = cupti.to_str().expect("a UTF-8 path");
    let out = run_with(false, cupti);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);
    let threads = stdout.trim().rsplit(' ').next().unwrap().to_string();
    assert_eq!(stdout.trim(), format!("returned 1 1; threads {threads} -> {threads}"));
    // With CUPTI there, the one thing said unasked is the invalid variable, once.
    let warning = "gpuscope-cupti: GPUSCOPE_CUPTI_WINDOW_MS=\"not a number\" is not a whole number of milliseconds \
                   in 1..=60000; using 500\n";
    assert_eq!(stderr, warning);
    let out = run_with(true, cupti);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "{warning}gpuscope-cupti: CUPTI API version 26\n\
             gpuscope-cupti: cuptiSubscribe failed (CUPTI_ERROR_NOT_INITIALIZED): kernel profiling is off\n"
        ),
        "CUDA 12.8's CUPTI (API version 26) found, and it refuses to work without a driver"
    );
    println!("test with_the_real_cupti_12_8_and_no_driver_it_stays_off_and_warns_once_of_a_bad_variable ... ok");
}
