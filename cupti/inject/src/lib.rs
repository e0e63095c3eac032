//! gpuscope's CUPTI injection library: loaded by a CUDA process through
//! `CUDA_INJECTION64_PATH`, it counts kernel launches all the time (one atomic add per launch),
//! traces kernels, copies, memsets and synchronizations with CUPTI's activity API only in short
//! windows (0.5 s every 30 s by default, stretched to keep within an overhead budget), and sends
//! one summary per window to the local agent over a Unix socket (`docs/cupti.md`).
//!
//! It never stops the host: every entry point catches panics, a process without CUPTI gets a
//! library that does nothing, another CUPTI subscriber makes it step aside, and an absent agent
//! only costs dropped summaries.

pub mod budget;
pub mod config;
pub mod counter;
pub mod cupti;
pub mod link;
pub mod pool;
pub mod records;
pub mod worker;

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use cudarc::cupti::sys::CUptiResult;

use crate::config::Config;
use crate::cupti::{SHARED, Shared, guard};

/// Activity buffers in the pool.
pub const POOL_BUFFERS: usize = 8;
/// Size of each activity buffer.
pub const POOL_BUFFER_BYTES: usize = 1 << 20;

/// Writes one diagnostic line on stderr; a failed write is ignored (stderr may be closed).
pub(crate) fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "gpuscope-cupti: {line}");
}

static INITIALIZED: AtomicBool = AtomicBool::new(false);

/// The entry point the CUDA driver calls once, at `cuInit`, in a process started with
/// `CUDA_INJECTION64_PATH` naming this library. Always returns 1: not profiling (no CUPTI,
/// another profiler) is not a failure of the host's CUDA initialization.
#[unsafe(no_mangle)]
pub extern "C" fn InitializeInjection() -> std::ffi::c_int {
    guard(1, || {
        if !INITIALIZED.swap(true, Ordering::AcqRel) {
            start();
        }
        1
    })
}

fn start() {
    let (config, warnings) = Config::from_env();
    // SAFETY: loads and unloads the library by name to see whether it exists; cudarc's CUPTI
    // calls panic when it does not, so nothing else runs first.
    if !unsafe { cudarc::cupti::sys::is_culib_present() } {
        if config.log {
            say("no CUPTI library (libcupti.so) found: kernel profiling is off in this process");
        }
        return;
    }
    for warning in &warnings {
        say(warning);
    }
    if config.log {
        match cupti::version() {
            Some(v) => say(&format!("CUPTI API version {v}")),
            None => say("CUPTI did not say its version"),
        }
    }
    let subscriber = match cupti::subscribe() {
        Ok(s) => s,
        Err(CUptiResult::CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED) => {
            say("another CUPTI client (a profiler such as Nsight Systems, or DCGM profiling) is subscribed; \
                 gpuscope kernel profiling steps aside in this process");
            return;
        }
        Err(e) => {
            if config.log {
                say(&format!("cuptiSubscribe failed ({}): kernel profiling is off", cupti::describe(e)));
            }
            return;
        }
    };
    if let Err(e) = cupti::enable_launch_callbacks(&subscriber) {
        cupti::unsubscribe(subscriber);
        if config.log {
            say(&format!("cuptiEnableCallback failed ({}): kernel profiling is off", cupti::describe(e)));
        }
        return;
    }
    let Some(pool) = pool::BufferPool::new(POOL_BUFFERS, POOL_BUFFER_BYTES) else {
        cupti::unsubscribe(subscriber);
        return;
    };
    cupti::LAUNCHES.calibrate();
    let shared = SHARED.get_or_init(|| Shared { pool, dropped_records: AtomicU64::new(0) });
    if let Err(e) = cupti::register_buffers() {
        cupti::unsubscribe(subscriber);
        if config.log {
            say(&format!("cuptiActivityRegisterCallbacks failed ({}): kernel profiling is off", cupti::describe(e)));
        }
        return;
    }
    if config.log {
        say(&format!(
            "profiling pid {}: windows of {} ms every {} s (budget {} % of a CPU), summaries to {}",
            std::process::id(),
            config.window.as_millis(),
            config.period.as_secs_f64(),
            config.budget * 100.0,
            config.socket.display()
        ));
    }
    let log = config.log;
    let spawned = std::thread::Builder::new().name("gpuscope-cupti".into()).spawn(move || {
        // A panic in the worker ends profiling, not the process.
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| worker::Worker::new(config, shared).run())).is_err()
        {
            cupti::set_window_kinds(false);
            if log {
                say("the profiling worker stopped after an internal error: kernel profiling is off");
            }
        }
    });
    if spawned.is_err() {
        cupti::unsubscribe(subscriber);
        if log {
            say("cannot start the profiling thread: kernel profiling is off");
        }
    }
}
