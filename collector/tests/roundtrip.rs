//! Encode (agent) → decode (collector) through the one catalogue is lossless.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use gpuscope_collector::decode::decode;
use gpuscope_core::catalogue::{Accessor, CATALOGUE};
use gpuscope_core::exposition::LabelValue;
use gpuscope_core::*;
use gpuscope_exporters::otlp::{Identity, encode};
use prost::Message;

/// A snapshot with every catalogue signal set to a distinct value.
fn full(ts: u64, bump: f64) -> NodeSnapshot {
    let mut g0 = GpuSample {
        index: 0,
        uuid: "GPU-aaaa".into(),
        model: "NVIDIA H100 80GB HBM3".into(),
        compute_capability: Some("9.0".into()),
        serial: Some("1650000000001".into()),
        pci_bus_id: Some("00000000:18:00.0".into()),
        nvlinks: vec![NvLinkSample { link: 0, ..Default::default() }, NvLinkSample { link: 1, ..Default::default() }],
        mig_instances: vec![
            MigSample { gpu_instance_id: 2, profile: "3g.40gb".into(), ..Default::default() },
            MigSample { gpu_instance_id: 9, profile: "1g.10gb".into(), ..Default::default() },
        ],
        ..GpuSample::default()
    };
    let mut p = ProcessSample {
        pid: 4242,
        name: "python".into(),
        user: Some("alice".into()),
        gpu_index: 0,
        gpu_uuid: "GPU-aaaa".into(),
        container: Some("c0ffee".into()),
        pod: Some("trainer-0".into()),
        namespace: Some("ml".into()),
        pod_uid: Some("6b1f0d7e-2c4a-4f7e-9a51-0c7d2e8b9f13".into()),
        ppid: Some(4200),
        parent_name: Some("torchrun".into()),
        ..ProcessSample::default()
    };
    let mut h = HostSample {
        cpus: vec![CpuSample { cpu: 0, ..Default::default() }, CpuSample { cpu: 1, ..Default::default() }],
        nics: vec![NicSample { name: "mlx5_0/1".into(), kind: NicKind::Infiniband, ..Default::default() }],
        disks: vec![DiskSample { name: "nvme0n1".into(), ..Default::default() }],
        filesystems: vec![gpuscope_core::FsSample { mountpoint: "/data".into(), ..Default::default() }],
        ..HostSample::default()
    };
    // A CUPTI profile spanning two GPUs, with a matmul class and a collective (whose class has a
    // fourth label). Kernel names (top_kernels) stay on the agent: never labels, never OTLP.
    let mut kp = KernelProfile {
        pid: 4242,
        name: "python".into(),
        user: Some("alice".into()),
        container: Some("c0ffee".into()),
        pod: Some("trainer-0".into()),
        namespace: Some("ml".into()),
        pod_uid: Some("6b1f0d7e-2c4a-4f7e-9a51-0c7d2e8b9f13".into()),
        gpus: vec![0, 1],
        classes: [
            "ampere_bf16_s16816gemm_bf16_128x256_ldg8_f2f_stages_64x3_nn",
            "ncclDevKernel_AllReduce_Sum_bf16_RING_LL",
        ]
        .iter()
        .map(|n| KernelClassTime { class: gpuscope_cupti::classify(n), count: 0, seconds: 0.0 })
        .collect(),
        ..KernelProfile::default()
    };
    for (i, m) in CATALOGUE.iter().enumerate() {
        // Whole numbers survive the integer fields; booleans and the up flag get 1.
        let v = (i as f64 + 1.0 + bump).round();
        match m.accessor {
            Accessor::Gpu(_, set) => set(
                &mut g0,
                if m.prometheus.contains("up")
                    || m.prometheus.contains("pending")
                    || m.prometheus.contains("failed")
                    || m.prometheus.contains("enabled")
                    || m.prometheus.contains("mode")
                {
                    1.0
                } else {
                    v
                },
            ),
            Accessor::GpuLabelled { label, set, .. } => {
                let label = if label == "xid" { "79" } else { "sw_power_cap" };
                set(&mut g0, LabelValue::Text(label), 1.0 + bump.round());
            }
            Accessor::NvLink(_, set) => {
                for l in &mut g0.nvlinks {
                    set(l, if m.prometheus.contains("_up") { 1.0 } else { v });
                }
            }
            Accessor::Mig(_, set) => g0.mig_instances.iter_mut().for_each(|x| set(x, v)),
            Accessor::Process(_, set) => set(&mut p, v),
            Accessor::Host(_, set) => set(&mut h, v),
            Accessor::Cpu(_, set) => h.cpus.iter_mut().for_each(|c| set(c, v)),
            Accessor::Nic(_, set) => h.nics.iter_mut().for_each(|n| set(n, v)),
            Accessor::Disk(_, set) => h.disks.iter_mut().for_each(|d| set(d, v)),
            Accessor::Fs(_, set) => h.filesystems.iter_mut().for_each(|f| set(f, v)),
            Accessor::Profile(_, set) => set(&mut kp, v),
            Accessor::ProfileClass(_, set) => kp.classes.iter_mut().for_each(|c| set(c, v)),
        }
    }
    let g1 = GpuSample {
        index: 1,
        uuid: "GPU-bbbb".into(),
        model: "NVIDIA H100 80GB HBM3".into(),
        lost: true,
        ..GpuSample::default()
    };
    NodeSnapshot {
        node: NodeInfo {
            hostname: "node-a".into(),
            machine_id: Some("m1".into()),
            job: Some("llm".into()),
            labels: [("rack".to_string(), "r7".to_string())].into(),
        },
        timestamp_ms: ts,
        driver: Some(DriverInfo { driver_version: "550.54.15".into(), ..DriverInfo::default() }),
        gpus: vec![g0, g1],
        processes: vec![p],
        host: Some(h),
        agent: AgentStats { driver_up: true, ..AgentStats::default() },
        kernel_profiles: vec![kp],
        ..NodeSnapshot::default()
    }
}

#[test]
fn every_signal_survives_encode_wire_decode() {
    let a = full(1_800_000_000_000, 0.0);
    let b = full(1_800_000_001_000, 1000.0);
    let req = encode(&[&a, &b], &Identity { instance: "node-a".into(), start_unix_nano: 1 });
    // Through the protobuf wire format, as the HTTP and gRPC receivers see it.
    let bytes = req.encode_to_vec();
    let req = opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest::decode(bytes.as_slice())
        .unwrap();
    let d = decode(&req);
    assert_eq!(d.rejected, 0, "{:?}", d.reasons);
    assert_eq!(d.snapshots.len(), 2);
    assert_eq!(d.snapshots[0], a);
    assert_eq!(d.snapshots[1], b);
}

#[test]
fn foreign_points_are_rejected_and_counted_not_fatal() {
    let a = full(1_800_000_000_000, 0.0);
    let mut req = encode(&[&a], &Identity { instance: "node-a".into(), start_unix_nano: 1 });
    let foreign = opentelemetry_proto::tonic::metrics::v1::Metric {
        name: "http.server.request.duration".into(),
        data: Some(opentelemetry_proto::tonic::metrics::v1::metric::Data::Gauge(
            opentelemetry_proto::tonic::metrics::v1::Gauge {
                data_points: vec![Default::default(), Default::default()],
            },
        )),
        ..Default::default()
    };
    req.resource_metrics[0].scope_metrics[0].metrics.push(foreign);
    let d = decode(&req);
    assert_eq!(d.rejected, 2);
    assert_eq!(d.snapshots.len(), 1);
    assert!(d.reasons[0].contains("http.server.request.duration"));
}
