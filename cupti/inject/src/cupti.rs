//! The CUPTI side: the calls the library makes (only those of the contract in
//! `docs/cupti.md`), and the callbacks CUPTI makes into it. Every callback runs its body under
//! [`guard`]: a panic is caught and the callback returns normally, never unwinding into CUPTI.

use std::ffi::{CStr, c_void};
use std::mem::offset_of;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use cudarc::cupti::sys::{
    self, CUpti_ActivityKind, CUpti_ApiCallbackSite, CUpti_CallbackData, CUpti_CallbackDomain, CUpti_CallbackId,
    CUpti_SubscriberHandle, CUpti_driver_api_trace_cbid, CUptiResult,
};
use cudarc::driver::sys::CUcontext;

use crate::counter::LaunchCounter;
use crate::pool::BufferPool;

/// Runs `f`, or gives `fallback` if it panics: nothing unwinds out of an `extern "C"` entry.
pub fn guard<T>(fallback: T, f: impl FnOnce() -> T) -> T {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The driver-API launch entry points counted outside windows (with their per-thread-stream
/// twins, which a program built with `--default-stream per-thread` calls instead). Runtime
/// launches go through these, so counting the driver API alone counts each launch once.
pub const LAUNCH_CBIDS: [CUpti_CallbackId; 8] = [
    CUpti_driver_api_trace_cbid::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel as u32,
    CUpti_driver_api_trace_cbid::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx as u32,
    CUpti_driver_api_trace_cbid::CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel as u32,
    CUpti_driver_api_trace_cbid::CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch as u32,
    CUpti_driver_api_trace_cbid::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernel_ptsz as u32,
    CUpti_driver_api_trace_cbid::CUPTI_DRIVER_TRACE_CBID_cuLaunchKernelEx_ptsz as u32,
    CUpti_driver_api_trace_cbid::CUPTI_DRIVER_TRACE_CBID_cuLaunchCooperativeKernel_ptsz as u32,
    CUpti_driver_api_trace_cbid::CUPTI_DRIVER_TRACE_CBID_cuGraphLaunch_ptsz as u32,
];

/// The activity kinds a window enables.
pub const WINDOW_KINDS: [CUpti_ActivityKind; 4] = [
    CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL,
    CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY,
    CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMSET,
    CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_SYNCHRONIZATION,
];

/// What the callbacks share with the worker once CUPTI is set up.
#[derive(Debug)]
pub struct Shared {
    /// The activity buffers.
    pub pool: BufferPool,
    /// Records CUPTI reported dropped, not yet put in a summary.
    pub dropped_records: AtomicU64,
}

/// Launch counters: live before CUPTI is set up, so the callback never waits for anything.
pub static LAUNCHES: LaunchCounter = LaunchCounter::new();
/// Set once CUPTI accepted the library as its subscriber.
pub static SHARED: OnceLock<Shared> = OnceLock::new();

/// CUPTI's text for a result code (`cuptiGetResultString`), or its number.
pub fn describe(result: CUptiResult) -> String {
    let mut text: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: `text` is a valid out-pointer; CUPTI points it at a static string.
    let got = unsafe { sys::cuptiGetResultString(result, &mut text) };
    if got == CUptiResult::CUPTI_SUCCESS && !text.is_null() {
        // SAFETY: a NUL-terminated static string from CUPTI.
        unsafe { CStr::from_ptr(text) }.to_string_lossy().into_owned()
    } else {
        format!("CUPTI error {}", result as u32)
    }
}

/// Converts a result code.
pub fn check(result: CUptiResult) -> Result<(), CUptiResult> {
    if result == CUptiResult::CUPTI_SUCCESS { Ok(()) } else { Err(result) }
}

/// Whether the callback data says "API enter" (read as a number: CUPTI may pass codes this build
/// does not know).
///
/// # Safety
/// `cbdata` is null or points at a `CUpti_CallbackData`.
unsafe fn is_enter(cbdata: *const c_void) -> bool {
    if cbdata.is_null() {
        return false;
    }
    // SAFETY: the field lies inside the struct the caller vouches for.
    let site = unsafe {
        std::ptr::read_unaligned(cbdata.cast::<u8>().add(offset_of!(CUpti_CallbackData, callbackSite)).cast::<u32>())
    };
    site == CUpti_ApiCallbackSite::CUPTI_API_ENTER as u32
}

/// The subscriber callback: counts a launch at its enter site. This is the code that runs on
/// every kernel launch of the host; keep it to an atomic add.
///
/// # Safety
/// Called by CUPTI with `cbdata` null or pointing at a `CUpti_CallbackData`.
pub unsafe extern "C" fn on_api_callback(
    _userdata: *mut c_void,
    _domain: CUpti_CallbackDomain,
    _cbid: CUpti_CallbackId,
    cbdata: *const c_void,
) {
    // SAFETY: forwarded from the caller.
    guard((), || LAUNCHES.run(|| unsafe { is_enter(cbdata) }))
}

/// CUPTI asks for an activity buffer: one from the pool, or none when the pool is empty (CUPTI
/// then drops records and counts them).
///
/// # Safety
/// Called by CUPTI with valid out-pointers (null ones are left alone).
pub unsafe extern "C" fn on_buffer_requested(buffer: *mut *mut u8, size: *mut usize, max_records: *mut usize) {
    guard((), || {
        if buffer.is_null() || size.is_null() {
            return;
        }
        let (ptr, len) = SHARED.get().and_then(|s| s.pool.take()).unwrap_or((std::ptr::null_mut(), 0));
        // SAFETY: non-null out-pointers from CUPTI.
        unsafe {
            *buffer = ptr;
            *size = len;
            if !max_records.is_null() {
                // 0: as many records as fit.
                *max_records = 0;
            }
        }
    })
}

/// CUPTI hands back a filled buffer: queue it for the worker, note CUPTI's dropped records.
///
/// # Safety
/// Called by CUPTI with a buffer it got from [`on_buffer_requested`] (or null).
pub unsafe extern "C" fn on_buffer_completed(
    context: CUcontext,
    stream_id: u32,
    buffer: *mut u8,
    _size: usize,
    valid_size: usize,
) {
    guard((), || {
        let Some(shared) = SHARED.get() else { return };
        if !buffer.is_null() {
            shared.pool.complete(buffer, valid_size);
        }
        let mut dropped = 0usize;
        // SAFETY: `dropped` is a valid out-pointer; context and stream come from CUPTI.
        if unsafe { sys::cuptiActivityGetNumDroppedRecords(context, stream_id, &mut dropped) }
            == CUptiResult::CUPTI_SUCCESS
        {
            shared.dropped_records.fetch_add(dropped as u64, Ordering::Relaxed);
        }
    })
}

/// The library's CUPTI subscription (only [`subscribe`] makes one).
#[derive(Debug)]
pub struct Subscriber(CUpti_SubscriberHandle);

/// Records dropped from CUPTI's global queue (context NULL) since the last call: drops that no
/// completed buffer of a context reports (when the pool had no buffer to give at all).
pub fn take_global_dropped_records() -> u64 {
    let mut dropped = 0usize;
    // SAFETY: valid out-pointer; a NULL context asks for the global queue.
    let result = unsafe { sys::cuptiActivityGetNumDroppedRecords(std::ptr::null_mut(), 0, &mut dropped) };
    if result == CUptiResult::CUPTI_SUCCESS { dropped as u64 } else { 0 }
}

/// Subscribes the launch callback; `Err` carries CUPTI's refusal.
pub fn subscribe() -> Result<Subscriber, CUptiResult> {
    let mut subscriber: CUpti_SubscriberHandle = std::ptr::null_mut();
    // SAFETY: valid out-pointer; the callback has CUPTI's signature and lives forever.
    check(unsafe { sys::cuptiSubscribe(&mut subscriber, Some(on_api_callback), std::ptr::null_mut()) })?;
    Ok(Subscriber(subscriber))
}

/// Enables the launch callbacks; the error of the first of the four main entry points that
/// CUPTI refused (a refused per-thread-stream twin is not an error: older CUPTIs lack some).
pub fn enable_launch_callbacks(subscriber: &Subscriber) -> Result<(), CUptiResult> {
    for (i, cbid) in LAUNCH_CBIDS.iter().enumerate() {
        // SAFETY: a subscriber handle CUPTI gave.
        let result = unsafe {
            sys::cuptiEnableCallback(1, subscriber.0, CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API, *cbid)
        };
        if i < 4 {
            check(result)?;
        }
    }
    Ok(())
}

/// Gives the subscription back (after a failed setup).
pub fn unsubscribe(subscriber: Subscriber) {
    // SAFETY: a subscriber handle CUPTI gave; the result does not matter on this path.
    let _ = unsafe { sys::cuptiUnsubscribe(subscriber.0) };
}

/// Registers the buffer callbacks.
pub fn register_buffers() -> Result<(), CUptiResult> {
    // SAFETY: both callbacks have CUPTI's signatures and live forever.
    check(unsafe { sys::cuptiActivityRegisterCallbacks(Some(on_buffer_requested), Some(on_buffer_completed)) })
}

/// CUPTI's API version (`cuptiGetVersion`).
pub fn version() -> Option<u32> {
    let mut version = 0u32;
    // SAFETY: valid out-pointer.
    check(unsafe { sys::cuptiGetVersion(&mut version) }).ok().map(|()| version)
}

/// Enables (or disables) the window's activity kinds; the kinds CUPTI refused.
pub fn set_window_kinds(enable: bool) -> Vec<(CUpti_ActivityKind, CUptiResult)> {
    let mut refused = Vec::new();
    for kind in WINDOW_KINDS {
        // SAFETY: plain calls with a kind value.
        let result = unsafe { if enable { sys::cuptiActivityEnable(kind) } else { sys::cuptiActivityDisable(kind) } };
        if result != CUptiResult::CUPTI_SUCCESS {
            refused.push((kind, result));
        }
    }
    refused
}

/// Flushes every buffer, completing even partly filled ones (`cuptiActivityFlushAll(1)`).
pub fn flush_all() -> Result<(), CUptiResult> {
    // SAFETY: a plain call; 1 is CUPTI_ACTIVITY_FLAG_FLUSH_FORCED.
    check(unsafe { sys::cuptiActivityFlushAll(1) })
}

/// Walks the records of a filled buffer, calling `each(record, bytes left)`; stops at the end
/// (or at anything CUPTI does not call a record).
///
/// # Safety
/// `buffer` holds `valid_bytes` bytes of records CUPTI wrote.
pub unsafe fn for_each_record(buffer: *mut u8, valid_bytes: usize, mut each: impl FnMut(*const u8, usize)) {
    let mut record: *mut sys::CUpti_Activity = std::ptr::null_mut();
    // Every record is at least 8 bytes: a bound on the walk whatever CUPTI answers.
    for _ in 0..valid_bytes / 8 {
        // SAFETY: the buffer and out-pointer are valid; CUPTI advances `record` inside it.
        if unsafe { sys::cuptiActivityGetNextRecord(buffer, valid_bytes, &mut record) } != CUptiResult::CUPTI_SUCCESS {
            return;
        }
        let offset = (record as usize).wrapping_sub(buffer as usize);
        if record.is_null() || offset >= valid_bytes {
            return;
        }
        each(record as *const u8, valid_bytes - offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn launch_callback_ids_are_those_of_the_cuda_12_8_header() {
        // cupti_driver_cbid.h of CUDA 12.8: cuLaunchKernel, cuLaunchKernelEx,
        // cuLaunchCooperativeKernel, cuGraphLaunch, then their _ptsz twins.
        assert_eq!(LAUNCH_CBIDS, [307, 652, 477, 514, 442, 653, 478, 515]);
    }

    #[test]
    fn a_panic_is_caught_and_the_fallback_returned() {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let got = guard(7, || -> i32 { panic!("inside a callback") });
        let fine = guard(7, || 3);
        std::panic::set_hook(previous);
        assert_eq!((got, fine), (7, 3));
    }

    #[test]
    fn the_launch_callback_counts_enter_sites_only() {
        // SAFETY (both calls): a zeroed CUpti_CallbackData is valid (integers, null pointers,
        // and 0 = CUPTI_API_ENTER).
        let mut data: CUpti_CallbackData = unsafe { std::mem::zeroed() };
        let before = LAUNCHES.read();
        let cbid = LAUNCH_CBIDS[0];
        let domain = CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API;
        let ptr = (&data as *const CUpti_CallbackData).cast::<c_void>();
        // SAFETY: a valid callback data pointer.
        unsafe { on_api_callback(std::ptr::null_mut(), domain, cbid, ptr) };
        data.callbackSite = CUpti_ApiCallbackSite::CUPTI_API_EXIT;
        let ptr = (&data as *const CUpti_CallbackData).cast::<c_void>();
        // SAFETY: as above; null data is allowed.
        unsafe {
            on_api_callback(std::ptr::null_mut(), domain, cbid, ptr);
            on_api_callback(std::ptr::null_mut(), domain, cbid, std::ptr::null());
        }
        let span = LAUNCHES.read().since(&before);
        // No other test of this binary touches LAUNCHES.
        assert_eq!((span.callbacks, span.launches), (3, 1));
    }

    #[test]
    fn without_a_pool_a_buffer_request_gets_none() {
        let mut buffer = 8usize as *mut u8;
        let mut size = 99usize;
        let mut max = 5usize;
        if SHARED.get().is_none() {
            // SAFETY: valid out-pointers.
            unsafe { on_buffer_requested(&mut buffer, &mut size, &mut max) };
            assert_eq!((buffer, size, max), (std::ptr::null_mut(), 0, 0));
        }
        // SAFETY: null out-pointers are ignored.
        unsafe { on_buffer_requested(std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut()) };
    }
}
