//! Playing gpuscope's CUPTI injection library in end-to-end tests: a window summary with every
//! field set, and this test process made a process of a simulated node's /proc (the agent
//! attributes a connection by its peer's PID, which is this process).

use gpuscope_cupti::WindowSummary;
use gpuscope_cupti::classify;
use gpuscope_cupti::summary::{
    ClassStats, DeviceGaps, KernelStats, MemcpyKind, MemcpyStats, MemoryKind, SyncKind, SyncStats, TimeStats,
    TransferStats, histogram_bucket,
};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// A bf16 tensor-core GEMM kernel name (cuBLAS).
pub const GEMM: &str = "ampere_bf16_s16816gemm_bf16_128x256_ldg8_f2f_stages_64x3_nn";
/// An NCCL all-reduce kernel name.
pub const NCCL: &str = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL";

/// Now, Unix ns (the library's clock: CLOCK_REALTIME).
pub fn unix_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// Copies the simulated trainer (pid 41001: python, uid 1000, a pod's container) to this
/// process's PID in the simulated /proc.
pub fn be_the_trainer(proc: &Path) {
    let me = std::process::id().to_string();
    let from = proc.join("41001");
    let to = proc.join(&me);
    std::fs::create_dir_all(&to).unwrap();
    for f in ["cgroup", "cmdline", "comm", "status"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    let stat = std::fs::read_to_string(from.join("stat")).unwrap();
    std::fs::write(to.join("stat"), stat.replacen("41001", &me, 2)).unwrap();
}

/// One window as the library would summarise it: 3 bf16 tensor-core GEMMs (300 ms) and one NCCL
/// all-reduce (100 ms) in 500 ms, pageable copies, a device sync, gaps on GPU 0.
pub fn summary(start_ns: u64, window_ns: u64) -> WindowSummary {
    let mut s = WindowSummary::empty(7, start_ns, start_ns + window_ns, 5_000_000_000);
    s.launches = 30_000;
    s.launch_span_ns = 1_500_000_000;
    s.launches_in_window = 4;
    let (gemm, nccl) = (classify(GEMM), classify(NCCL));
    s.classes = vec![
        ClassStats { class: gemm, time: TimeStats { count: 3, total_ns: 300_000_000 } },
        ClassStats { class: nccl, time: TimeStats { count: 1, total_ns: 100_000_000 } },
    ];
    s.top_kernels = vec![
        KernelStats {
            name: GEMM.into(),
            class: gemm,
            count: 3,
            total_ns: 300_000_000,
            max_ns: 120_000_000,
            grid: [132, 1, 1],
            block: [256, 1, 1],
        },
        KernelStats {
            name: NCCL.into(),
            class: nccl,
            count: 1,
            total_ns: 100_000_000,
            max_ns: 100_000_000,
            grid: [32, 1, 1],
            block: [640, 1, 1],
        },
    ];
    s.graph_kernels = TimeStats { count: 2, total_ns: 200_000_000 };
    let copy = |is_async, count, bytes| MemcpyStats {
        kind: MemcpyKind::HostToDevice,
        src: MemoryKind::Pageable,
        dst: MemoryKind::Device,
        is_async,
        transfer: TransferStats { count, bytes, total_ns: 1_000_000 },
    };
    s.memcpy = vec![copy(false, 1, 1 << 20), copy(true, 5, 5 << 20)];
    s.sync = vec![SyncStats { kind: SyncKind::Device, time: TimeStats { count: 2, total_ns: 50_000_000 } }];
    s.gpu_gaps = vec![DeviceGaps {
        device: 0,
        busy_ns: 400_000_000,
        idle_ns: 60_000_000,
        gap_count: 3,
        max_gap_ns: 40_000_000,
        intervals_dropped: 0,
    }];
    s.duration_histogram[histogram_bucket(100_000_000)] = 4;
    s.dropped_records = 3;
    s.callback_overhead_ns = 12_000_000;
    s.callback_count = 30_000;
    s.summaries_dropped = 1;
    s
}
