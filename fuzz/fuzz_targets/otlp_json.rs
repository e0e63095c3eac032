//! OTLP/JSON bodies as the collector receives them: parse, then decode into node snapshots.
#![no_main]

use gpuscope_collector::decode::{Limits, decode_with};
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = serde_json::from_slice::<ExportMetricsServiceRequest>(data) else { return };
    let limits = Limits { now_ms: 1_800_000_000_000, max_future_ms: 60_000, max_gpus: 64, max_processes: 1024 };
    let _ = decode_with(&req, &limits);
});
