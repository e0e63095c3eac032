//! A CUPTI-compatible shared library (`libcupti.so`) that a simulated CUDA process drives.
//!
//! It exports the CUPTI entry points gpuscope's injection library calls, with the semantics of
//! the CUDA 12.8 CUPTI: return codes, one subscriber at a time, API callbacks with a real
//! `CUpti_CallbackData`, and activity records in the 12.8 layouts delivered through the client's
//! buffer callbacks. The "driver" side is the harness `gpuscope-sim-cuda` (or a test): it marks
//! the driver initialized (`gpuscopeSimCuptiDriverInit`) and plays a scenario's `[cuda]` workload
//! (`gpuscopeSimCuptiPlay`), which fires the callbacks and writes the records. Without a driver,
//! the calls that need one answer `CUPTI_ERROR_NOT_INITIALIZED`, as the real library does in a
//! process without CUDA. `sim/README.md` documents the behaviour.

#![allow(non_snake_case, clippy::missing_safety_doc)]

pub mod activity;
pub mod callbacks;
pub mod play;
pub mod records;

use gpuscope_sim::cuda::CudaSpec;
use gpuscope_sim::scenario::{BUILTIN, Scenario};
use records::result::*;
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static DRIVER: AtomicBool = AtomicBool::new(false);

/// CUPTI timestamps: CLOCK_REALTIME in ns, the real CUPTI's default clock.
pub fn timestamp_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A NUL-terminated copy of `s` that lives as long as the process (kernel names in records
/// point at it, as the real CUPTI's point at its own string table). Cut at an inner NUL.
pub fn intern(s: &str) -> &'static CStr {
    static NAMES: Mutex<Option<HashMap<String, &'static CStr>>> = Mutex::new(None);
    let mut names = NAMES.lock().unwrap_or_else(|e| e.into_inner());
    let map = names.get_or_insert_with(HashMap::new);
    if let Some(c) = map.get(s) {
        return c;
    }
    let cut = s.split('\0').next().unwrap_or_default();
    let owned = CString::new(cut).unwrap_or_default();
    let leaked: &'static CStr = Box::leak(owned.into_boxed_c_str());
    map.insert(s.to_string(), leaked);
    leaked
}

/// Finds the workload to play: the `[cuda]` table of `scenario` (a built-in name or a file), or
/// of the built-in scenario whose workload is named `workload`. With both, the scenario's
/// workload must have that name.
pub fn load_workload(scenario: Option<&str>, workload: Option<&str>) -> Result<(Scenario, CudaSpec), String> {
    let sc = match (scenario, workload) {
        (Some(s), _) => Scenario::load(s).map_err(|e| e.to_string())?,
        (None, Some(w)) => {
            let found = BUILTIN
                .iter()
                .filter_map(|(n, _)| Scenario::load(n).ok())
                .find(|s| s.cuda.as_ref().is_some_and(|c| c.name == w));
            match found {
                Some(s) => s,
                None => {
                    let names: Vec<String> = BUILTIN
                        .iter()
                        .filter_map(|(n, _)| Scenario::load(n).ok().and_then(|s| s.cuda.map(|c| c.name)))
                        .collect();
                    return Err(format!("no built-in workload named {w:?} (built-in workloads: {})", names.join(", ")));
                }
            }
        }
        (None, None) => return Err("give a scenario or a workload name".into()),
    };
    let Some(spec) = sc.cuda.clone() else {
        return Err(format!("scenario {} has no [cuda] table: it describes no CUDA workload", sc.name));
    };
    if let Some(w) = workload
        && w != spec.name
    {
        return Err(format!("scenario {}'s workload is named {:?}, not {w:?}", sc.name, spec.name));
    }
    Ok((sc, spec))
}

/// How many launches `seconds` at `rate` launches per second make.
pub fn launch_count(seconds: f64, rate: f64) -> Result<u64, String> {
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("seconds must be above 0 and at most 86400, not {seconds}"));
    }
    Ok((seconds * rate).round() as u64)
}

macro_rules! cupti {
    ($( $(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block )*) => {$(
        $(#[$doc])*
        #[unsafe(no_mangle)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> u32 {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> u32 { $body })).unwrap_or(UNKNOWN)
        }
    )*};
}

fn driver() -> bool {
    DRIVER.load(Ordering::Acquire)
}

/// `CUptiResult` names, as `cuptiGetResultString` gives them.
const RESULT_NAMES: &[(u32, &CStr)] = &[
    (0, c"CUPTI_SUCCESS"),
    (1, c"CUPTI_ERROR_INVALID_PARAMETER"),
    (2, c"CUPTI_ERROR_INVALID_DEVICE"),
    (3, c"CUPTI_ERROR_INVALID_CONTEXT"),
    (4, c"CUPTI_ERROR_INVALID_EVENT_DOMAIN_ID"),
    (5, c"CUPTI_ERROR_INVALID_EVENT_ID"),
    (6, c"CUPTI_ERROR_INVALID_EVENT_NAME"),
    (7, c"CUPTI_ERROR_INVALID_OPERATION"),
    (8, c"CUPTI_ERROR_OUT_OF_MEMORY"),
    (9, c"CUPTI_ERROR_HARDWARE"),
    (10, c"CUPTI_ERROR_PARAMETER_SIZE_NOT_SUFFICIENT"),
    (11, c"CUPTI_ERROR_API_NOT_IMPLEMENTED"),
    (12, c"CUPTI_ERROR_MAX_LIMIT_REACHED"),
    (13, c"CUPTI_ERROR_NOT_READY"),
    (14, c"CUPTI_ERROR_NOT_COMPATIBLE"),
    (15, c"CUPTI_ERROR_NOT_INITIALIZED"),
    (16, c"CUPTI_ERROR_INVALID_METRIC_ID"),
    (17, c"CUPTI_ERROR_INVALID_METRIC_NAME"),
    (18, c"CUPTI_ERROR_QUEUE_EMPTY"),
    (19, c"CUPTI_ERROR_INVALID_HANDLE"),
    (20, c"CUPTI_ERROR_INVALID_STREAM"),
    (21, c"CUPTI_ERROR_INVALID_KIND"),
    (22, c"CUPTI_ERROR_INVALID_EVENT_VALUE"),
    (23, c"CUPTI_ERROR_DISABLED"),
    (24, c"CUPTI_ERROR_INVALID_MODULE"),
    (25, c"CUPTI_ERROR_INVALID_METRIC_VALUE"),
    (26, c"CUPTI_ERROR_HARDWARE_BUSY"),
    (27, c"CUPTI_ERROR_NOT_SUPPORTED"),
    (28, c"CUPTI_ERROR_UM_PROFILING_NOT_SUPPORTED"),
    (29, c"CUPTI_ERROR_UM_PROFILING_NOT_SUPPORTED_ON_DEVICE"),
    (30, c"CUPTI_ERROR_UM_PROFILING_NOT_SUPPORTED_ON_NON_P2P_DEVICES"),
    (31, c"CUPTI_ERROR_UM_PROFILING_NOT_SUPPORTED_WITH_MPS"),
    (32, c"CUPTI_ERROR_CDP_TRACING_NOT_SUPPORTED"),
    (33, c"CUPTI_ERROR_VIRTUALIZED_DEVICE_NOT_SUPPORTED"),
    (34, c"CUPTI_ERROR_CUDA_COMPILER_NOT_COMPATIBLE"),
    (35, c"CUPTI_ERROR_INSUFFICIENT_PRIVILEGES"),
    (36, c"CUPTI_ERROR_OLD_PROFILER_API_INITIALIZED"),
    (37, c"CUPTI_ERROR_OPENACC_UNDEFINED_ROUTINE"),
    (38, c"CUPTI_ERROR_LEGACY_PROFILER_NOT_SUPPORTED"),
    (39, c"CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED"),
    (40, c"CUPTI_ERROR_VIRTUALIZED_DEVICE_INSUFFICIENT_PRIVILEGES"),
    (41, c"CUPTI_ERROR_CONFIDENTIAL_COMPUTING_NOT_SUPPORTED"),
    (42, c"CUPTI_ERROR_CMP_DEVICE_NOT_SUPPORTED"),
    (43, c"CUPTI_ERROR_MIG_DEVICE_NOT_SUPPORTED"),
    (44, c"CUPTI_ERROR_SLI_DEVICE_NOT_SUPPORTED"),
    (45, c"CUPTI_ERROR_WSL_DEVICE_NOT_SUPPORTED"),
    (999, c"CUPTI_ERROR_UNKNOWN"),
];

cupti! {
    /// `cuptiGetVersion`: the CUPTI API version of CUDA 12.8 (needs no driver).
    fn cuptiGetVersion(version: *mut u32) {
        if version.is_null() {
            return INVALID_PARAMETER;
        }
        // SAFETY: checked non-null; the caller's out-parameter.
        unsafe { *version = records::API_VERSION };
        SUCCESS
    }

    /// `cuptiGetResultString`: the result's enum name (needs no driver).
    fn cuptiGetResultString(result: u32, out: *mut *const c_char) {
        if out.is_null() {
            return INVALID_PARAMETER;
        }
        let Some((_, name)) = RESULT_NAMES.iter().find(|(r, _)| *r == result) else {
            return INVALID_PARAMETER;
        };
        // SAFETY: checked non-null.
        unsafe { *out = name.as_ptr() };
        SUCCESS
    }

    /// `cuptiSubscribe`.
    fn cuptiSubscribe(
        subscriber: *mut *const callbacks::Subscriber,
        callback: Option<callbacks::CallbackFn>,
        userdata: *mut c_void,
    ) {
        if subscriber.is_null() {
            return INVALID_PARAMETER;
        }
        if !driver() {
            return NOT_INITIALIZED;
        }
        let r = callbacks::subscribe(callback, userdata);
        if r == SUCCESS {
            // SAFETY: checked non-null.
            unsafe { *subscriber = &callbacks::SUBSCRIBER };
        }
        r
    }

    /// `cuptiUnsubscribe`.
    fn cuptiUnsubscribe(subscriber: *const callbacks::Subscriber) {
        if !driver() {
            return NOT_INITIALIZED;
        }
        callbacks::unsubscribe(subscriber)
    }

    /// `cuptiEnableCallback`.
    fn cuptiEnableCallback(enable: u32, subscriber: *const callbacks::Subscriber, domain: u32, cbid: u32) {
        if !driver() {
            return NOT_INITIALIZED;
        }
        callbacks::enable_callback(enable != 0, subscriber, domain, cbid)
    }

    /// `cuptiEnableDomain`.
    fn cuptiEnableDomain(enable: u32, subscriber: *const callbacks::Subscriber, domain: u32) {
        if !driver() {
            return NOT_INITIALIZED;
        }
        callbacks::enable_domain(enable != 0, subscriber, domain)
    }

    /// `cuptiActivityRegisterCallbacks`.
    fn cuptiActivityRegisterCallbacks(
        requested: Option<activity::RequestFn>,
        completed: Option<activity::CompleteFn>,
    ) {
        let (Some(requested), Some(completed)) = (requested, completed) else {
            return INVALID_PARAMETER;
        };
        if !driver() {
            return NOT_INITIALIZED;
        }
        activity::register(requested, completed);
        SUCCESS
    }

    /// `cuptiActivityEnable`.
    fn cuptiActivityEnable(kind: u32) {
        if !driver() {
            return NOT_INITIALIZED;
        }
        activity::set_enabled(kind, true)
    }

    /// `cuptiActivityDisable`.
    fn cuptiActivityDisable(kind: u32) {
        if !driver() {
            return NOT_INITIALIZED;
        }
        activity::set_enabled(kind, false)
    }

    /// `cuptiActivityFlushAll`: flag 0 delivers the buffers whose records are all complete,
    /// `CUPTI_ACTIVITY_FLAG_FLUSH_FORCED` (1) every buffer holding records.
    fn cuptiActivityFlushAll(flag: u32) {
        if !driver() {
            return NOT_INITIALIZED;
        }
        let mode = if flag & 1 != 0 { activity::Flush::Forced } else { activity::Flush::Default };
        activity::deliver(mode, timestamp_ns());
        SUCCESS
    }

    /// `cuptiActivityGetNextRecord`: walks the records of a completed buffer (needs no driver).
    fn cuptiActivityGetNextRecord(buffer: *mut u8, valid_size: usize, record: *mut *mut c_void) {
        if buffer.is_null() || record.is_null() {
            return INVALID_PARAMETER;
        }
        // SAFETY: checked non-null; the caller's cursor.
        let cur = unsafe { *record }.cast::<u8>();
        let offset = if cur.is_null() {
            0
        } else {
            let at = (cur as usize).wrapping_sub(buffer as usize);
            if at >= valid_size || valid_size - at < 4 {
                return MAX_LIMIT_REACHED;
            }
            // SAFETY: `at + 4 <= valid_size`: the record's kind is within the valid bytes.
            let kind = unsafe { std::ptr::read_unaligned(cur.cast::<u32>()) };
            let Some(size) = records::record_size(kind) else {
                return INVALID_KIND;
            };
            at + size.next_multiple_of(records::RECORD_ALIGNMENT)
        };
        if offset >= valid_size || valid_size - offset < 4 {
            return MAX_LIMIT_REACHED;
        }
        // SAFETY: `offset + 4 <= valid_size`.
        let next = unsafe { buffer.add(offset) };
        let kind = unsafe { std::ptr::read_unaligned(next.cast::<u32>()) };
        match records::record_size(kind) {
            None => INVALID_KIND,
            Some(size) if valid_size - offset < size => MAX_LIMIT_REACHED,
            Some(_) => {
                // SAFETY: checked non-null.
                unsafe { *record = next.cast() };
                SUCCESS
            }
        }
    }

    /// `cuptiActivityGetNumDroppedRecords`: records dropped since the last call (all records
    /// go to the global queue: `context` NULL; a context's own queue has dropped none).
    fn cuptiActivityGetNumDroppedRecords(context: *mut c_void, stream_id: u32, dropped: *mut usize) {
        if dropped.is_null() {
            return INVALID_PARAMETER;
        }
        if !driver() {
            return NOT_INITIALIZED;
        }
        let n = if context.is_null() { activity::take_dropped() } else { 0 };
        let _ = stream_id;
        // SAFETY: checked non-null.
        unsafe { *dropped = n };
        SUCCESS
    }

    /// `cuptiGetTimestamp`: CLOCK_REALTIME ns, the clock of every record.
    fn cuptiGetTimestamp(timestamp: *mut u64) {
        if timestamp.is_null() {
            return INVALID_PARAMETER;
        }
        if !driver() {
            return NOT_INITIALIZED;
        }
        // SAFETY: checked non-null.
        unsafe { *timestamp = timestamp_ns() };
        SUCCESS
    }

    /// `cuptiFinalize`: every buffer back to the client, activity off, the subscriber gone.
    fn cuptiFinalize() {
        if !driver() {
            return NOT_INITIALIZED;
        }
        activity::finalize(timestamp_ns());
        callbacks::finalize();
        SUCCESS
    }
}

/// The simulated driver's `cuInit`: from now on the CUPTI calls that need a driver work.
#[unsafe(no_mangle)]
pub extern "C" fn gpuscopeSimCuptiDriverInit() {
    DRIVER.store(true, Ordering::Release);
}

fn c_str_arg<'a>(p: *const c_char) -> Result<Option<&'a str>, String> {
    if p.is_null() {
        return Ok(None);
    }
    // SAFETY: the caller passes a NUL-terminated string or NULL.
    let s = unsafe { CStr::from_ptr(p) };
    s.to_str().map(Some).map_err(|_| "arguments must be UTF-8".to_string())
}

/// Plays a workload in real time (the simulated driver's work): `scenario` (a built-in name or
/// file, or NULL) and `workload` (a workload name, or NULL) pick it as [`load_workload`] does;
/// `seconds` of launches at `rate` per second (the workload's rate when `rate <= 0`). Fills
/// `*out` (when non-NULL) and returns 0, or returns 1 with the reason in `err` (NUL-terminated,
/// cut to `err_len`).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gpuscopeSimCuptiPlay(
    scenario: *const c_char,
    workload: *const c_char,
    seconds: f64,
    rate: f64,
    out: *mut play::Played,
    err: *mut c_char,
    err_len: usize,
) -> u32 {
    let run = || -> Result<play::Played, String> {
        let (_, spec) = load_workload(c_str_arg(scenario)?, c_str_arg(workload)?)?;
        let rate = if rate > 0.0 { rate } else { spec.launches_per_s };
        let launches = launch_count(seconds, rate)?;
        gpuscopeSimCuptiDriverInit();
        play::play(&spec, rate, launches)
    };
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
        .unwrap_or_else(|_| Err("the simulated driver panicked".into()));
    match result {
        Ok(played) => {
            if !out.is_null() {
                // SAFETY: checked non-null; the caller's out-parameter.
                unsafe { *out = played };
            }
            0
        }
        Err(message) => {
            if !err.is_null() && err_len > 0 {
                let bytes = message.as_bytes();
                let n = bytes.len().min(err_len - 1);
                // SAFETY: the caller's buffer holds `err_len` bytes; we write `n + 1 <= err_len`.
                unsafe {
                    std::ptr::copy_nonoverlapping(bytes.as_ptr(), err.cast::<u8>(), n);
                    *err.add(n) = 0;
                }
            }
            1
        }
    }
}
