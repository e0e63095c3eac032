//! In a process where no (simulated) CUDA driver initialized, the calls that need the driver
//! answer CUPTI_ERROR_NOT_INITIALIZED, as the real CUPTI does in a process without CUDA; the
//! ones that need none work; NULL out-pointers are refused first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::ffi::c_void;

#[test]
fn without_a_driver_calls_answer_not_initialized() {
    let api = common::open();
    let mut sub: common::Subscriber = std::ptr::null();
    let mut ts = 0u64;
    let mut dropped = 0usize;
    let mut version = 0u32;
    unsafe {
        assert_eq!((api.subscribe)(&mut sub, None, std::ptr::null_mut()), 15);
        assert!(sub.is_null());
        assert_eq!((api.subscribe)(std::ptr::null_mut(), None, std::ptr::null_mut()), 1);
        assert_eq!((api.get_timestamp)(&mut ts), 15);
        assert_eq!((api.get_timestamp)(std::ptr::null_mut()), 1);
        assert_eq!((api.activity_enable)(10), 15);
        assert_eq!((api.flush_all)(1), 15);
        assert_eq!((api.get_num_dropped)(std::ptr::null_mut(), 0, &mut dropped), 15);
        assert_eq!((api.finalize)(), 15);
        assert_eq!((api.get_version)(&mut version), 0);
        assert_eq!(version, 26);
        let mut rec: *mut c_void = std::ptr::null_mut();
        let mut buf = [0u64; 4];
        assert_eq!((api.get_next_record)(buf.as_mut_ptr().cast(), 0, &mut rec), 12);
    }
}
