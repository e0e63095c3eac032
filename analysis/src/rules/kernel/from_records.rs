//! The kernel-level rules on profiles built the way the agent builds them: CUPTI-style records
//! through the injection library's aggregator (`gpuscope_cupti::aggregate`), the window summary
//! into `KernelProfile::record`, three windows 30 s apart. Each workload opens exactly its rule.

use crate::rules::testkit::*;
use gpuscope_core::{GpuSample, KernelProfile, NodeSnapshot};
use gpuscope_cupti::aggregate::{Aggregator, KernelRecord, MemcpyRecord, SyncRecord, WindowMeta};
use gpuscope_cupti::summary::{MemcpyKind, MemoryKind, SyncKind};

/// Unix ns of the first window's start.
const T0_NS: u64 = 1_799_999_000_000_000_000;

/// One window's activity: kernels as (name, duration, count) run back to back on device 0 with
/// `gap_ns` between consecutive kernels; copies, waits and launches counted over the period.
#[derive(Clone, Default)]
struct Workload {
    window_ns: u64,
    kernels: Vec<(&'static str, u64, u64)>,
    gap_ns: u64,
    /// (async, pageable, bytes) copies, each 1 ms.
    copies: Vec<(bool, bool, u64)>,
    /// Host waits in stream synchronization, ns each.
    syncs: Vec<u64>,
    launches_per_second: u64,
}

/// Plays `w` for three windows (at 0, 30 and 60 s) and evaluates the five kernel-level rules at
/// the third, on an H100 whose GPM tensor activity is `tensor`: the ids that hit.
fn rules_hit(w: &Workload, tensor: Option<f64>) -> Vec<&'static str> {
    let mut agg = Aggregator::new(Default::default());
    let mut profile = KernelProfile { pid: 31337, name: "python".into(), gpus: vec![0], ..KernelProfile::default() };
    let mut windows = Vec::new();
    for k in 0..3u64 {
        let start = T0_NS + k * 30_000_000_000;
        let mut t = start;
        for (name, dur, count) in &w.kernels {
            let kernel = agg.intern(name);
            for _ in 0..*count {
                agg.kernel(&KernelRecord {
                    kernel,
                    start_ns: t,
                    end_ns: t + dur,
                    device: 0,
                    stream: 7,
                    grid: [1, 1, 1],
                    block: [128, 1, 1],
                    graph_id: 0,
                });
                t += dur + w.gap_ns;
            }
        }
        for (is_async, pageable, bytes) in &w.copies {
            let host = if *pageable { MemoryKind::Pageable } else { MemoryKind::Pinned };
            agg.memcpy(&MemcpyRecord {
                kind: MemcpyKind::HostToDevice,
                src: host,
                dst: MemoryKind::Device,
                is_async: *is_async,
                bytes: *bytes,
                start_ns: start,
                end_ns: start + 1_000_000,
            });
        }
        for d in &w.syncs {
            agg.sync(&SyncRecord { kind: SyncKind::Stream, duration_ns: *d });
        }
        agg.launches(w.launches_per_second * 30, false);
        let summary = agg.finish_window(&WindowMeta {
            pid: 77,
            window_start_unix_ns: start,
            window_end_unix_ns: start + w.window_ns,
            period_ns: 30_000_000_000,
            launch_span_ns: 30_000_000_000,
            summaries_dropped: 0,
        });
        profile.record(&summary);
        windows.push(profile.clone());
    }
    let h100 = GpuSample { compute_capability: Some("9.0".into()), tensor_active_ratio: tensor, ..gpu(0) };
    // One snapshot a second from the first window's end; each carries the latest window.
    let w = series(60, |t| NodeSnapshot {
        kernel_profiles: vec![windows[(t / 30) as usize].clone()],
        ..node("n0", vec![h100.clone()])
    });
    ["fp32-gemm-kernels", "pageable-memcpy", "sync-heavy", "gpu-gaps", "short-kernels"]
        .into_iter()
        .filter(|id| !eval(id, &w).is_empty())
        .collect()
}

/// A bf16 training step: tensor-core GEMMs and attention, a few elementwise kernels, pinned
/// copies, an occasional event wait, 3,000 launches/s.
fn bf16() -> Workload {
    Workload {
        window_ns: 500_000_000,
        kernels: vec![
            (
                "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas",
                840_000,
                200,
            ),
            (
                "void flash_fwd_kernel<Flash_fwd_kernel_traits<128, 64, 64, 4, false, false, cutlass::bfloat16_t>>",
                500_000,
                100,
            ),
            ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>", 25_000, 300),
        ],
        gap_ns: 5_000,
        copies: vec![(true, false, 8 << 20)],
        syncs: vec![300_000],
        launches_per_second: 3000,
    }
}

#[test]
fn each_workload_opens_exactly_its_rule() {
    assert_eq!(rules_hit(&bf16(), Some(0.4)), Vec::<&str>::new(), "a healthy bf16 job");
    // SGEMM and an FFMA xmma kernel: 90% of the kernel time, all of the matmul time, SIMT.
    let sgemm = Workload {
        kernels: vec![
            ("volta_sgemm_64x32_sliced1x4_nn", 1_200_000, 100),
            ("sm80_xmma_gemm_f32f32_f32f32_f32_tn_n_tilesize128x64x8_stage3_warpsize2x2x1_ffma", 800_000, 60),
            ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>", 120_000, 160),
        ],
        ..bf16()
    };
    assert_eq!(rules_hit(&sgemm, Some(0.0)), ["fp32-gemm-kernels"]);
    // 150 batches a window copied with cudaMemcpyAsync from pageable memory.
    let pageable = Workload { copies: vec![(true, true, 32 << 20); 150], ..bf16() };
    assert_eq!(rules_hit(&pageable, Some(0.4)), ["pageable-memcpy"]);
    // The same copies issued synchronously: not this rule's concern.
    let sync_copies = Workload { copies: vec![(false, true, 32 << 20); 150], ..bf16() };
    assert_eq!(rules_hit(&sync_copies, Some(0.4)), Vec::<&str>::new());
    // 250 waits of 300 µs in a 0.5 s window: 15%.
    let waits = Workload { syncs: vec![300_000; 250], ..bf16() };
    assert_eq!(rules_hit(&waits, Some(0.4)), ["sync-heavy"]);
    // A 2 s window (an on-demand one) with 0.8 s between the two halves of the step.
    let gaps = Workload {
        window_ns: 2_000_000_000,
        kernels: vec![(
            "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1_execute_segment_k_off_kernel__5x_cublas",
            300_000_000,
            2,
        )],
        gap_ns: 800_000_000,
        ..bf16()
    };
    assert_eq!(rules_hit(&gaps, Some(0.4)), ["gpu-gaps"]);
    // Decode: 5 µs kernels at 12,000 launches/s.
    let decode = Workload {
        kernels: vec![
            ("void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>>", 5_000, 4000),
            ("RmsNormKernel", 3_000, 2000),
        ],
        gap_ns: 70_000,
        launches_per_second: 12_000,
        ..bf16()
    };
    assert_eq!(rules_hit(&decode, Some(0.4)), ["short-kernels"]);
}
