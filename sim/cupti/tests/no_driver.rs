//! In a process where no (simulated) CUDA driver initialized, every call answers what NVIDIA's
//! `libcupti.so.12` of CUDA 12.8 (nvidia-cuda-cupti-cu12 12.8.90) answers in a process without
//! CUDA, measured call by call: the calls that need the driver say
//! CUPTI_ERROR_NOT_INITIALIZED (`cuptiSubscribe` and the activity switches before looking at their
//! arguments, the subscriber calls after refusing a NULL handle); the others work.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::{CStr, c_void};

unsafe extern "C" fn request(_: *mut *mut u8, _: *mut usize, _: *mut usize) {}
unsafe extern "C" fn complete(_: *mut c_void, _: u32, _: *mut u8, _: usize, _: usize) {}

#[test]
fn without_a_driver_calls_answer_as_the_real_cupti_does() {
    let api = common::open();
    let mut sub: common::Subscriber = std::ptr::null();
    let mut ts = 0u64;
    let mut dropped = 7usize;
    let mut version = 0u32;
    let bogus = 0x1234 as common::Subscriber;
    unsafe {
        assert_eq!((api.get_version)(&mut version), 0);
        assert_eq!(version, 26);
        assert_eq!((api.get_version)(std::ptr::null_mut()), 1);
        let mut s = std::ptr::null();
        assert_eq!((api.get_result_string)(15, &mut s), 0);
        assert_eq!(CStr::from_ptr(s).to_str().unwrap(), "CUPTI_ERROR_NOT_INITIALIZED");
        assert_eq!((api.get_result_string)(4242, &mut s), 1);
        assert_eq!(CStr::from_ptr(s).to_str().unwrap(), "<unknown>");
        assert_eq!((api.get_timestamp)(&mut ts), 0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        assert!(ts <= now && now - ts < 60_000_000_000, "CLOCK_REALTIME ns: {ts}");
        assert_eq!((api.get_timestamp)(std::ptr::null_mut()), 1);

        assert_eq!((api.subscribe)(std::ptr::null_mut(), None, std::ptr::null_mut()), 15);
        assert_eq!((api.subscribe)(&mut sub, None, std::ptr::null_mut()), 15);
        assert!(sub.is_null());
        assert_eq!((api.unsubscribe)(std::ptr::null()), 1);
        assert_eq!((api.unsubscribe)(bogus), 15);
        assert_eq!((api.enable_callback)(1, std::ptr::null(), 1, 307), 1);
        assert_eq!((api.enable_domain)(1, std::ptr::null(), 1), 1);

        assert_eq!((api.activity_enable)(10), 15);
        assert_eq!((api.activity_enable)(0), 15);
        assert_eq!((api.activity_enable)(55), 15);
        assert_eq!((api.activity_disable)(10), 15);
        assert_eq!((api.flush_all)(0), 15);
        assert_eq!((api.flush_all)(1), 15);
        assert_eq!((api.register_callbacks)(None, None), 1);
        assert_eq!((api.register_callbacks)(None, Some(complete)), 1);
        assert_eq!((api.register_callbacks)(Some(request), Some(complete)), 0);
        assert_eq!((api.get_num_dropped)(std::ptr::null_mut(), 0, &mut dropped), 0);
        assert_eq!(dropped, 0);
        assert_eq!((api.get_num_dropped)(std::ptr::null_mut(), 0, std::ptr::null_mut()), 1);

        let mut rec: *mut c_void = std::ptr::null_mut();
        let mut buf = [0u64; 8];
        assert_eq!((api.get_next_record)(buf.as_mut_ptr().cast(), 0, &mut rec), 12);
        assert_eq!((api.get_next_record)(std::ptr::null_mut(), 8, &mut rec), 1);
        buf[0] = 999;
        assert_eq!((api.get_next_record)(buf.as_mut_ptr().cast(), 64, &mut rec), 21);
        assert_eq!((api.finalize)(), 0);
    }
}
