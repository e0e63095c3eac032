//! OTLP/protobuf bodies as the collector receives them: decode, then turn into node snapshots
//! under the collector's default limits. Nothing may panic; every snapshot must respect them.
#![no_main]

use gpuscope_collector::decode::{Limits, decode_with};
use libfuzzer_sys::fuzz_target;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = ExportMetricsServiceRequest::decode(data) else { return };
    let limits = Limits { now_ms: 1_800_000_000_000, max_future_ms: 60_000, max_gpus: 64, max_processes: 1024 };
    let d = decode_with(&req, &limits);
    for s in &d.snapshots {
        assert!(s.gpus.len() <= 64 && s.processes.len() <= 1024);
        assert!(s.timestamp_ms <= limits.now_ms + limits.max_future_ms);
        assert!(!s.node.hostname.chars().any(char::is_control));
    }
});
