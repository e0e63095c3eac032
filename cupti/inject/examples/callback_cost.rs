//! The launch callback's cost per kernel launch, next to an empty callback measured in the same
//! run (the baseline: what calling any callback costs). CUPTI calls the callback twice per
//! launch (API enter and exit), so a "launch" here is those two calls, with real
//! `CUpti_CallbackData`. Rounds alternate baseline and library to share the machine's noise;
//! the medians are reported, and the library's own estimate of its cost (what it puts in every
//! summary) next to them. Run by `bench/cupti_overhead.py`:
//!
//! `cargo run --release -p gpuscope-cupti-inject --example callback_cost -- [LAUNCHES] [ROUNDS] [THREADS]`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark fails by panicking

use std::ffi::c_void;
use std::hint::black_box;
use std::time::Instant;

use cudarc::cupti::sys::{CUpti_ApiCallbackSite, CUpti_CallbackData, CUpti_CallbackDomain};
use gpuscope_cupti_inject::cupti::{LAUNCH_CBIDS, LAUNCHES, on_api_callback};

type Callback = unsafe extern "C" fn(*mut c_void, CUpti_CallbackDomain, u32, *const c_void);

unsafe extern "C" fn empty(_: *mut c_void, _: CUpti_CallbackDomain, _: u32, cbdata: *const c_void) {
    black_box(cbdata);
}

fn data(site: CUpti_ApiCallbackSite) -> CUpti_CallbackData {
    // SAFETY: integers and null pointers; the site is set below.
    let mut d: CUpti_CallbackData = unsafe { std::mem::zeroed() };
    d.callbackSite = site;
    d
}

/// Nanoseconds per launch for `launches` launches on each of `threads` threads.
fn per_launch_ns(cb: Callback, launches: u64, threads: usize) -> f64 {
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                let enter = data(CUpti_ApiCallbackSite::CUPTI_API_ENTER);
                let exit = data(CUpti_ApiCallbackSite::CUPTI_API_EXIT);
                let cb = black_box(cb);
                let domain = CUpti_CallbackDomain::CUPTI_CB_DOMAIN_DRIVER_API;
                for _ in 0..launches {
                    // SAFETY: valid callback data for the callback's whole call.
                    unsafe {
                        cb(std::ptr::null_mut(), domain, LAUNCH_CBIDS[0], (&enter as *const CUpti_CallbackData).cast());
                        cb(std::ptr::null_mut(), domain, LAUNCH_CBIDS[0], (&exit as *const CUpti_CallbackData).cast());
                    }
                }
            });
        }
    });
    start.elapsed().as_nanos() as f64 / launches as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<u64> =
        std::env::args().skip(1).map(|a| a.parse().expect("numbers: LAUNCHES ROUNDS THREADS")).collect();
    let launches = args.first().copied().unwrap_or(20_000_000);
    let rounds = args.get(1).copied().unwrap_or(7) as usize;
    let threads = args.get(2).copied().unwrap_or(1) as usize;
    let (mut base, mut lib) = (Vec::new(), Vec::new());
    LAUNCHES.calibrate();
    let before = LAUNCHES.read();
    for _ in 0..rounds {
        base.push(per_launch_ns(empty, launches, threads));
        lib.push(per_launch_ns(on_api_callback, launches, threads));
    }
    let span = LAUNCHES.read().since(&before);
    assert_eq!(span.launches, launches * rounds as u64 * threads as u64, "every enter site counted");
    let (base, lib) = (median(base), median(lib));
    let reported = span.estimated_cost_ns() as f64 / span.launches as f64;
    println!(
        "{{\"launches\":{launches},\"rounds\":{rounds},\"threads\":{threads},\"empty_ns_per_launch\":{base:.2},\"library_ns_per_launch\":{lib:.2},\"added_ns_per_launch\":{:.2},\"ratio\":{:.2},\"self_reported_ns_per_launch\":{reported:.2}}}",
        lib - base,
        lib / base
    );
}
