//! Scenario files: any text loads or is refused with an error, and a loaded scenario answers
//! its own questions without panicking.
#![no_main]

use gpuscope_sim::scenario::Scenario;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(s) = Scenario::from_toml(text, "fuzz.toml") else { return };
    let _ = (s.gpu_count(), s.node_count(), s.timeline_s(), s.hostname(0));
});
