//! A minimal CUPTI client: the simulated libcupti.so opened with dlopen and its entry points
//! resolved by name, exactly as an injection library reaches the real one.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::ffi::{CStr, CString, c_char, c_void};
use std::path::PathBuf;

pub type Subscriber = *const c_void;
pub type CallbackFn = unsafe extern "C" fn(*mut c_void, u32, u32, *const c_void);
pub type RequestFn = unsafe extern "C" fn(*mut *mut u8, *mut usize, *mut usize);
pub type CompleteFn = unsafe extern "C" fn(*mut c_void, u32, *mut u8, usize, usize);

/// The library's entry points.
pub struct Cupti {
    pub get_version: unsafe extern "C" fn(*mut u32) -> u32,
    pub get_result_string: unsafe extern "C" fn(u32, *mut *const c_char) -> u32,
    pub subscribe: unsafe extern "C" fn(*mut Subscriber, Option<CallbackFn>, *mut c_void) -> u32,
    pub unsubscribe: unsafe extern "C" fn(Subscriber) -> u32,
    pub enable_callback: unsafe extern "C" fn(u32, Subscriber, u32, u32) -> u32,
    pub enable_domain: unsafe extern "C" fn(u32, Subscriber, u32) -> u32,
    pub register_callbacks: unsafe extern "C" fn(Option<RequestFn>, Option<CompleteFn>) -> u32,
    pub activity_enable: unsafe extern "C" fn(u32) -> u32,
    pub activity_disable: unsafe extern "C" fn(u32) -> u32,
    pub flush_all: unsafe extern "C" fn(u32) -> u32,
    pub get_next_record: unsafe extern "C" fn(*mut u8, usize, *mut *mut c_void) -> u32,
    pub get_num_dropped: unsafe extern "C" fn(*mut c_void, u32, *mut usize) -> u32,
    pub get_timestamp: unsafe extern "C" fn(*mut u64) -> u32,
    pub finalize: unsafe extern "C" fn() -> u32,
    pub driver_init: unsafe extern "C" fn(),
    pub play: unsafe extern "C" fn(
        *const c_char,
        *const c_char,
        f64,
        f64,
        *mut cupti::play::Played,
        *mut c_char,
        usize,
    ) -> u32,
}

/// The simulated libcupti.so cargo built next to the harness (`cargo build`) or in `deps/`
/// (`cargo test` builds it there only).
pub fn lib_path() -> PathBuf {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_gpuscope-sim-cuda"));
    let dir = exe.parent().expect("the harness is in a directory");
    [dir.join("libcupti.so"), dir.join("deps/libcupti.so")]
        .into_iter()
        .find(|p| p.exists())
        .expect("libcupti.so is built next to the harness")
}

fn sym<T: Copy>(handle: *mut c_void, name: &str) -> T {
    let c = CString::new(name).unwrap();
    // SAFETY: a live handle and a C string.
    let p = unsafe { libc::dlsym(handle, c.as_ptr()) };
    assert!(!p.is_null(), "libcupti.so exports {name}");
    assert_eq!(size_of::<T>(), size_of::<*mut c_void>());
    // SAFETY: T is the function-pointer type of that symbol.
    unsafe { std::mem::transmute_copy(&p) }
}

/// Opens the library (once per process; never closed, as CUPTI clients keep it).
pub fn open() -> Cupti {
    let path = CString::new(lib_path().to_str().unwrap()).unwrap();
    // SAFETY: a C string path.
    let h = unsafe { libc::dlopen(path.as_ptr(), libc::RTLD_NOW) };
    assert!(!h.is_null(), "dlopen {:?}", lib_path());
    Cupti {
        get_version: sym(h, "cuptiGetVersion"),
        get_result_string: sym(h, "cuptiGetResultString"),
        subscribe: sym(h, "cuptiSubscribe"),
        unsubscribe: sym(h, "cuptiUnsubscribe"),
        enable_callback: sym(h, "cuptiEnableCallback"),
        enable_domain: sym(h, "cuptiEnableDomain"),
        register_callbacks: sym(h, "cuptiActivityRegisterCallbacks"),
        activity_enable: sym(h, "cuptiActivityEnable"),
        activity_disable: sym(h, "cuptiActivityDisable"),
        flush_all: sym(h, "cuptiActivityFlushAll"),
        get_next_record: sym(h, "cuptiActivityGetNextRecord"),
        get_num_dropped: sym(h, "cuptiActivityGetNumDroppedRecords"),
        get_timestamp: sym(h, "cuptiGetTimestamp"),
        finalize: sym(h, "cuptiFinalize"),
        driver_init: sym(h, "gpuscopeSimCuptiDriverInit"),
        play: sym(h, "gpuscopeSimCuptiPlay"),
    }
}

impl Cupti {
    /// Plays `scenario` for `seconds` at its own rate; panics with the library's message.
    pub fn play(&self, scenario: &str, seconds: f64) -> cupti::play::Played {
        let s = CString::new(scenario).unwrap();
        let mut out = cupti::play::Played::default();
        let mut err = [0 as c_char; 256];
        // SAFETY: C strings, out-parameters of the right types.
        let r =
            unsafe { (self.play)(s.as_ptr(), std::ptr::null(), seconds, 0.0, &mut out, err.as_mut_ptr(), err.len()) };
        // SAFETY: NUL-terminated by the library.
        assert_eq!(r, 0, "play: {}", unsafe { CStr::from_ptr(err.as_ptr()) }.to_string_lossy());
        out
    }
}
