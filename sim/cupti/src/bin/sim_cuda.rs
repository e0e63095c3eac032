//! `gpuscope-sim-cuda`: plays one CUDA process as the driver would, against the simulated CUPTI.
//!
//! It loads the simulated `libcupti.so`, initializes the simulated driver, loads the injection
//! library named by `CUDA_INJECTION64_PATH` and calls its `InitializeInjection` (what the real
//! driver does at `cuInit`), then plays a scenario's `[cuda]` workload in real time and prints
//! what it did as one JSON line. A missing or failing injection library is reported and the
//! workload still runs, as a real process goes on without it.

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "gpuscope-sim-cuda", about = "Play a simulated CUDA process against the simulated CUPTI")]
struct Args {
    /// Scenario with a [cuda] table: a built-in name or a file.
    #[arg(long)]
    scenario: Option<String>,
    /// Workload name (a built-in scenario's workload without --scenario).
    #[arg(long)]
    workload: Option<String>,
    /// How long to launch for, at the launch rate.
    #[arg(long)]
    seconds: f64,
    /// Launches per second (default: the workload's launches_per_s).
    #[arg(long)]
    rate: Option<f64>,
    /// The simulated libcupti.so (default: libcupti.so next to this program, or in its deps/).
    #[arg(long, env = "GPUSCOPE_SIM_CUPTI_LIB")]
    cupti_lib: Option<PathBuf>,
}

type PlayFn =
    unsafe extern "C" fn(*const c_char, *const c_char, f64, f64, *mut cupti::play::Played, *mut c_char, usize) -> u32;

fn dlerror() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated string valid until the next dl call.
    let e = unsafe { libc::dlerror() };
    if e.is_null() { "unknown error".into() } else { unsafe { CStr::from_ptr(e) }.to_string_lossy().into_owned() }
}

fn dlopen(path: &str) -> Result<*mut c_void, String> {
    let c = CString::new(path).map_err(|_| format!("{path:?} contains a NUL byte"))?;
    // SAFETY: a valid C string; RTLD_NOW as the driver loads injection libraries.
    let h = unsafe { libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL) };
    if h.is_null() { Err(dlerror()) } else { Ok(h) }
}

fn dlsym(handle: *mut c_void, name: &CStr) -> Option<*mut c_void> {
    // SAFETY: a live handle and a C string.
    let p = unsafe { libc::dlsym(handle, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

fn inject() {
    let Ok(path) = std::env::var("CUDA_INJECTION64_PATH") else {
        eprintln!("gpuscope-sim-cuda: CUDA_INJECTION64_PATH is not set: running without an injection library");
        return;
    };
    let handle = match dlopen(&path) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("gpuscope-sim-cuda: cannot load the injection library {path}: {e}; running without it");
            return;
        }
    };
    let Some(init) = dlsym(handle, c"InitializeInjection") else {
        eprintln!("gpuscope-sim-cuda: {path} has no InitializeInjection; running without it");
        return;
    };
    // SAFETY: the injection-library contract: `int InitializeInjection(void)`.
    let init: unsafe extern "C" fn() -> c_int = unsafe { std::mem::transmute(init) };
    // SAFETY: as above.
    if unsafe { init() } == 0 {
        eprintln!("gpuscope-sim-cuda: InitializeInjection of {path} returned 0 (failure); running without it");
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (_, spec) =
        cupti::load_workload(args.scenario.as_deref(), args.workload.as_deref()).map_err(anyhow::Error::msg)?;
    let rate = args.rate.unwrap_or(spec.launches_per_s);
    spec.check_rate(rate).map_err(|e| anyhow::anyhow!("--rate {rate}: {e}"))?;
    cupti::launch_count(args.seconds, rate).map_err(|e| anyhow::anyhow!("--{e}"))?;

    let lib = match args.cupti_lib {
        Some(p) => p,
        None => {
            let exe = std::env::current_exe().context("locating this program")?;
            let next = exe.with_file_name("libcupti.so");
            // `cargo test` leaves the library in deps/ only.
            let deps = exe.with_file_name("deps").join("libcupti.so");
            if !next.exists() && deps.exists() { deps } else { next }
        }
    };
    let lib_str = lib.to_str().context("the libcupti.so path is not UTF-8")?;
    let cupti = dlopen(lib_str).map_err(|e| anyhow::anyhow!("cannot load the simulated CUPTI {lib_str}: {e}"))?;
    let (Some(driver_init), Some(play)) =
        (dlsym(cupti, c"gpuscopeSimCuptiDriverInit"), dlsym(cupti, c"gpuscopeSimCuptiPlay"))
    else {
        bail!("{lib_str} is not the simulated CUPTI (no gpuscopeSimCuptiPlay)");
    };
    // SAFETY: the simulated CUPTI's own entry points, with their signatures.
    let driver_init: extern "C" fn() = unsafe { std::mem::transmute(driver_init) };
    let play: PlayFn = unsafe { std::mem::transmute(play) };
    driver_init();
    inject();

    let scenario = args.scenario.as_deref().map(CString::new).transpose().context("--scenario has a NUL byte")?;
    let name = CString::new(spec.name.clone()).context("workload name has a NUL byte")?;
    let mut played = cupti::play::Played::default();
    let mut err = [0 as c_char; 512];
    // SAFETY: valid C strings or NULL, out-parameters of the right types and length.
    let r = unsafe {
        play(
            scenario.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
            name.as_ptr(),
            args.seconds,
            rate,
            &mut played,
            err.as_mut_ptr(),
            err.len(),
        )
    };
    if r != 0 {
        // SAFETY: the library NUL-terminated the message within the buffer.
        bail!("{}", unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy());
    }
    let wall = played.wall_ns as f64 / 1e9;
    let summary = serde_json::json!({
        "workload": spec.name,
        "launches": played.launches,
        "copies": played.copies,
        "memsets": played.memsets,
        "syncs": played.syncs,
        "records": played.records,
        "wall_seconds": wall,
        "launches_per_second": if wall > 0.0 { played.launches as f64 / wall } else { 0.0 },
    });
    println!("{summary}");
    Ok(())
}
