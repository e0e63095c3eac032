//! GPUSCOPE_SIM_CUPTI_SUBSCRIBED=1 plays "another CUPTI subscriber is already present" (Nsight
//! Systems, another profiler): cuptiSubscribe answers
//! CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED and hands out no handle.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[test]
fn another_subscriber_already_present_refuses_subscribe() {
    // SAFETY: the only test of this binary; set before any thread reads the environment.
    unsafe { std::env::set_var("GPUSCOPE_SIM_CUPTI_SUBSCRIBED", "1") };
    let api = common::open();
    let mut sub: common::Subscriber = std::ptr::null();
    unsafe {
        (api.driver_init)();
        assert_eq!((api.subscribe)(&mut sub, None, std::ptr::null_mut()), 39);
        assert!(sub.is_null());
        let mut s = std::ptr::null();
        assert_eq!((api.get_result_string)(39, &mut s), 0);
        assert_eq!(std::ffi::CStr::from_ptr(s).to_str().unwrap(), "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED");
    }
    // The workload still plays: the process goes on without this client.
    let played = api.play("cuda-bf16-tensor", 0.05);
    assert_eq!(played.launches, 150);
}
