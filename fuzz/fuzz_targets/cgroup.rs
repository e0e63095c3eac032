//! /proc/<pid>/cgroup contents: container and pod attribution from any text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = gpuscope_agent::cgroup::attribute(text);
    let _ = gpuscope_agent::cgroup::attribute_path(text);
});
