//! The callback API: the one subscriber, the callbacks it enabled, and firing them around the
//! simulated driver and runtime calls with a real `CUpti_CallbackData`.

use crate::records::{API_ENTER, API_EXIT, CallbackData, domain, result};
use std::ffi::{CStr, c_void};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

/// `CUpti_CallbackFunc`.
pub type CallbackFn = unsafe extern "C" fn(userdata: *mut c_void, domain: u32, cbid: u32, cbdata: *const c_void);

/// The opaque `CUpti_SubscriberHandle` target; the handle is its address.
#[repr(C)]
pub struct Subscriber {
    _id: u32,
}

/// The one subscriber handle this library hands out.
pub static SUBSCRIBER: Subscriber = Subscriber { _id: 1 };

static SUBSCRIBED: AtomicBool = AtomicBool::new(false);
static CALLBACK: AtomicUsize = AtomicUsize::new(0);
static USERDATA: AtomicUsize = AtomicUsize::new(0);
// Subscribe and unsubscribe are rare; they take this lock so the fields above change together.
static SUBSCRIPTION: Mutex<()> = Mutex::new(());

const WORDS: usize = 13; // 782 driver callback ids need 13 words of 64 bits
static ENABLED: [[AtomicU64; WORDS]; domain::SIZE as usize] =
    [const { [const { AtomicU64::new(0) }; WORDS] }; domain::SIZE as usize];

static CORRELATION: AtomicU32 = AtomicU32::new(0);

/// The address of the simulated context (`CUcontext` is opaque to clients).
static CONTEXT: AtomicU64 = AtomicU64::new(0);

/// The `CUcontext` value callbacks carry: a stable non-null address.
pub fn context() -> *mut c_void {
    std::ptr::addr_of!(CONTEXT).cast_mut().cast()
}

/// The id `contextId` fields and `contextUid` carry.
pub const CONTEXT_ID: u32 = 1;

/// Whether `handle` is the live subscriber.
pub fn is_subscriber(handle: *const Subscriber) -> bool {
    std::ptr::eq(handle, &SUBSCRIBER) && SUBSCRIBED.load(Ordering::Acquire)
}

/// `cuptiSubscribe`: one subscriber at a time, as in CUDA 12.
pub fn subscribe(callback: Option<CallbackFn>, userdata: *mut c_void) -> u32 {
    let _s = SUBSCRIPTION.lock().unwrap_or_else(|e| e.into_inner());
    if SUBSCRIBED.load(Ordering::Acquire) || std::env::var("GPUSCOPE_SIM_CUPTI_SUBSCRIBED").is_ok_and(|v| v == "1") {
        return result::MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED;
    }
    for d in &ENABLED {
        for w in d {
            w.store(0, Ordering::Relaxed);
        }
    }
    CALLBACK.store(callback.map_or(0, |f| f as usize), Ordering::Relaxed);
    USERDATA.store(userdata as usize, Ordering::Relaxed);
    SUBSCRIBED.store(true, Ordering::Release);
    result::SUCCESS
}

/// `cuptiUnsubscribe`.
pub fn unsubscribe(handle: *const Subscriber) -> u32 {
    let _s = SUBSCRIPTION.lock().unwrap_or_else(|e| e.into_inner());
    if !is_subscriber(handle) {
        return result::INVALID_PARAMETER;
    }
    SUBSCRIBED.store(false, Ordering::Release);
    CALLBACK.store(0, Ordering::Relaxed);
    USERDATA.store(0, Ordering::Relaxed);
    result::SUCCESS
}

/// `cuptiEnableCallback`.
pub fn enable_callback(on: bool, handle: *const Subscriber, dom: u32, cbid: u32) -> u32 {
    if !is_subscriber(handle) || dom == 0 || dom >= domain::SIZE || cbid >= domain::CBID_COUNT[dom as usize] {
        return result::INVALID_PARAMETER;
    }
    let word = &ENABLED[dom as usize][(cbid / 64) as usize];
    let bit = 1u64 << (cbid % 64);
    if on {
        word.fetch_or(bit, Ordering::Relaxed);
    } else {
        word.fetch_and(!bit, Ordering::Relaxed);
    }
    result::SUCCESS
}

/// `cuptiEnableDomain`: every callback id of the domain.
pub fn enable_domain(on: bool, handle: *const Subscriber, dom: u32) -> u32 {
    if !is_subscriber(handle) || dom == 0 || dom >= domain::SIZE {
        return result::INVALID_PARAMETER;
    }
    let count = domain::CBID_COUNT[dom as usize];
    for (i, word) in ENABLED[dom as usize].iter().enumerate() {
        let first = i as u32 * 64;
        let bits = match count.saturating_sub(first) {
            0 => 0,
            n if n >= 64 => u64::MAX,
            n => (1u64 << n) - 1,
        };
        word.store(if on { bits } else { 0 }, Ordering::Relaxed);
    }
    result::SUCCESS
}

/// Forgets the subscriber (`cuptiFinalize`).
pub fn finalize() {
    let _s = SUBSCRIPTION.lock().unwrap_or_else(|e| e.into_inner());
    SUBSCRIBED.store(false, Ordering::Release);
    CALLBACK.store(0, Ordering::Relaxed);
    USERDATA.store(0, Ordering::Relaxed);
}

fn callback_for(dom: u32, cbid: u32) -> Option<(CallbackFn, *mut c_void)> {
    if !SUBSCRIBED.load(Ordering::Acquire) {
        return None;
    }
    let word = ENABLED.get(dom as usize)?.get((cbid / 64) as usize)?.load(Ordering::Relaxed);
    if word & (1u64 << (cbid % 64)) == 0 {
        return None;
    }
    let f = CALLBACK.load(Ordering::Relaxed);
    if f == 0 {
        return None;
    }
    // SAFETY: CALLBACK only ever holds 0 or a `CallbackFn` stored by `subscribe`.
    let f: CallbackFn = unsafe { std::mem::transmute::<usize, CallbackFn>(f) };
    Some((f, USERDATA.load(Ordering::Relaxed) as *mut c_void))
}

/// A new correlation id (shared by the callbacks and activity records of one API call).
pub fn next_correlation() -> u32 {
    CORRELATION.fetch_add(1, Ordering::Relaxed).wrapping_add(1)
}

/// One API call as a callback sees it.
pub struct ApiCall<'a> {
    /// `CUPTI_CB_DOMAIN_DRIVER_API` or `_RUNTIME_API`.
    pub domain: u32,
    /// The callback id.
    pub cbid: u32,
    /// The function's name (`cuLaunchKernel`).
    pub function: &'static CStr,
    /// The kernel's name for launch calls.
    pub symbol: Option<&'a CStr>,
    /// The call's parameter struct, or null.
    pub params: *const c_void,
    /// Its correlation id.
    pub correlation: u32,
}

/// Fires the ENTER callback of `call` (if enabled), runs `body`, fires the EXIT callback.
pub fn around<T>(call: &ApiCall<'_>, body: impl FnOnce() -> T) -> T {
    let Some((f, userdata)) = callback_for(call.domain, call.cbid) else {
        return body();
    };
    let mut correlation_data = 0u64;
    let mut ret = 0u32; // CUDA_SUCCESS / cudaSuccess
    let mut data = CallbackData {
        callbackSite: API_ENTER,
        functionName: call.function.as_ptr(),
        functionParams: call.params,
        functionReturnValue: std::ptr::addr_of_mut!(ret).cast(),
        symbolName: call.symbol.map_or(std::ptr::null(), CStr::as_ptr),
        context: context(),
        contextUid: CONTEXT_ID,
        correlationData: &mut correlation_data,
        correlationId: call.correlation,
    };
    // SAFETY: the subscriber's callback with a CallbackData that outlives the call.
    unsafe { f(userdata, call.domain, call.cbid, std::ptr::addr_of!(data).cast()) };
    let out = body();
    data.callbackSite = API_EXIT;
    // SAFETY: as above.
    unsafe { f(userdata, call.domain, call.cbid, std::ptr::addr_of!(data).cast()) };
    out
}
