//! Every built-in CUDA workload is what its scenario says: half a second of it, recorded through
//! the library's entry points and aggregated by gpuscope's own window aggregator
//! (`gpuscope_cupti::aggregate`), has exactly the kernel mix, copies and waits its description
//! and README row state — the facts the kernel-level rules read.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use cudarc::cupti::sys;
use gpuscope_cupti::aggregate::{Aggregator, AggregatorConfig, KernelRecord, MemcpyRecord, SyncRecord, WindowMeta};
use gpuscope_cupti::classify::{KernelKind, MathPipe};
use gpuscope_cupti::summary::{MemcpyKind, MemoryKind, SyncKind, WindowSummary};
use std::ffi::{CStr, c_void};
use std::sync::{Mutex, OnceLock};

static RECORDS: Mutex<Vec<(u32, Vec<u8>)>> = Mutex::new(Vec::new());
static API: OnceLock<common::Cupti> = OnceLock::new();

fn api() -> &'static common::Cupti {
    API.get_or_init(|| {
        let c = common::open();
        // SAFETY: the simulated driver's init.
        unsafe { (c.driver_init)() };
        c
    })
}

const BYTES: usize = 1 << 20;

unsafe extern "C" fn on_request(buffer: *mut *mut u8, size: *mut usize, max_records: *mut usize) {
    // SAFETY: out-parameters from the library; the buffer is freed in on_complete.
    unsafe {
        *buffer = std::alloc::alloc(std::alloc::Layout::from_size_align(BYTES, 8).unwrap());
        *size = BYTES;
        *max_records = 0;
    }
}

unsafe extern "C" fn on_complete(_ctx: *mut c_void, _stream: u32, buffer: *mut u8, size: usize, valid: usize) {
    let mut rec: *mut c_void = std::ptr::null_mut();
    let mut out = RECORDS.lock().unwrap();
    // SAFETY: the completed buffer and its valid size, as CUPTI gave them.
    while unsafe { (api().get_next_record)(buffer, valid, &mut rec) } == 0 {
        // SAFETY: a record starts with its kind; its bytes are within the buffer.
        let kind = unsafe { *rec.cast::<u32>() };
        let len = match kind {
            10 => size_of::<sys::CUpti_ActivityKernel9>(),
            1 => size_of::<sys::CUpti_ActivityMemcpy6>(),
            2 => size_of::<sys::CUpti_ActivityMemset4>(),
            _ => size_of::<sys::CUpti_ActivitySynchronization2>(),
        };
        out.push((kind, unsafe { std::slice::from_raw_parts(rec.cast::<u8>(), len) }.to_vec()));
    }
    // SAFETY: allocated by on_request with this size and alignment.
    unsafe { std::alloc::dealloc(buffer, std::alloc::Layout::from_size_align(size, 8).unwrap()) };
}

fn memory(code: u8) -> MemoryKind {
    match code {
        1 => MemoryKind::Pageable,
        2 => MemoryKind::Pinned,
        3 => MemoryKind::Device,
        _ => MemoryKind::Unknown,
    }
}

/// Plays `seconds` of a built-in workload with the four activity kinds on and aggregates the
/// records into one window spanning the play.
fn summary(workload: &str, seconds: f64) -> WindowSummary {
    let api = api();
    RECORDS.lock().unwrap().clear();
    unsafe {
        assert_eq!((api.register_callbacks)(Some(on_request), Some(on_complete)), 0);
        for k in [10, 1, 2, 38] {
            assert_eq!((api.activity_enable)(k), 0);
        }
    }
    let played = api.play(workload, seconds);
    unsafe {
        for k in [10, 1, 2, 38] {
            assert_eq!((api.activity_disable)(k), 0);
        }
        assert_eq!((api.flush_all)(1), 0);
    }
    let mut agg = Aggregator::new(AggregatorConfig::default());
    agg.launches(played.launches, true);
    for (kind, bytes) in RECORDS.lock().unwrap().iter() {
        // SAFETY: whole records of their kind.
        unsafe {
            match kind {
                10 => {
                    let k: sys::CUpti_ActivityKernel9 = std::ptr::read_unaligned(bytes.as_ptr().cast());
                    let name = CStr::from_ptr(k.name).to_string_lossy().into_owned();
                    let kernel = agg.intern(&name);
                    agg.kernel(&KernelRecord {
                        kernel,
                        start_ns: k.start,
                        end_ns: k.end,
                        device: k.deviceId,
                        stream: k.streamId,
                        grid: [k.gridX as u32, k.gridY as u32, k.gridZ as u32],
                        block: [k.blockX as u32, k.blockY as u32, k.blockZ as u32],
                        graph_id: k.graphId,
                    });
                }
                1 => {
                    let m: sys::CUpti_ActivityMemcpy6 = std::ptr::read_unaligned(bytes.as_ptr().cast());
                    agg.memcpy(&MemcpyRecord {
                        kind: match m.copyKind {
                            1 => MemcpyKind::HostToDevice,
                            2 => MemcpyKind::DeviceToHost,
                            8 => MemcpyKind::DeviceToDevice,
                            9 => MemcpyKind::HostToHost,
                            _ => MemcpyKind::Unknown,
                        },
                        src: memory(m.srcKind),
                        dst: memory(m.dstKind),
                        is_async: m.flags & 1 != 0,
                        bytes: m.bytes,
                        start_ns: m.start,
                        end_ns: m.end,
                    });
                }
                2 => {}
                _ => {
                    let s: sys::CUpti_ActivitySynchronization2 = std::ptr::read_unaligned(bytes.as_ptr().cast());
                    let kind = match s.type_ as u32 {
                        1 => SyncKind::Event,
                        2 => SyncKind::StreamWaitEvent,
                        3 => SyncKind::Stream,
                        _ => SyncKind::Device,
                    };
                    agg.sync(&SyncRecord { kind, duration_ns: s.end - s.start });
                }
            }
        }
    }
    let span = (seconds * 1e9) as u64;
    agg.finish_window(&WindowMeta {
        pid: 1,
        window_start_unix_ns: played.origin_ns,
        window_end_unix_ns: played.origin_ns + span,
        period_ns: span,
        launch_span_ns: span,
        summaries_dropped: 0,
    })
}

fn kernel_ns(s: &WindowSummary, pick: impl Fn(KernelKind, MathPipe) -> bool) -> u64 {
    s.classes.iter().filter(|c| pick(c.class.kind, c.class.pipe)).map(|c| c.time.total_ns).sum()
}

fn gemm_simt_share(s: &WindowSummary) -> f64 {
    let all = kernel_ns(s, |_, _| true) as f64;
    kernel_ns(s, |k, p| matches!(k, KernelKind::Gemm | KernelKind::Conv) && p == MathPipe::Simt) as f64 / all
}

#[test]
fn the_built_in_workloads_are_what_their_scenarios_say() {
    // fp32 SGEMM: 1,000 launches in 0.5 s; the SIMT GEMMs take 420 of the 493 ms of kernel time.
    let s = summary("cuda-fp32-sgemm", 0.5);
    assert_eq!(s.launches_per_second(), Some(2000.0));
    assert!((gemm_simt_share(&s) - 420.0 / 493.0).abs() < 1e-9, "{}", gemm_simt_share(&s));
    assert_eq!(s.pageable_async_copies().count, 0);

    // bf16: no SIMT matmul, tensor-core GEMMs and attention 92 % of the kernel time, the optimizer
    // step (10 % of 1,500 launches) from a graph, no pageable copy, medians well above 10 µs.
    let s = summary("cuda-bf16-tensor", 0.5);
    assert_eq!(gemm_simt_share(&s), 0.0);
    let tensor =
        kernel_ns(&s, |k, p| matches!(k, KernelKind::Gemm | KernelKind::Attention) && p == MathPipe::TensorCore);
    let tensor_share = tensor as f64 / kernel_ns(&s, |_, _| true) as f64;
    assert!((0.92..0.93).contains(&tensor_share), "{tensor_share}");
    assert_eq!(s.graph_kernels.count, 150);
    assert_eq!(s.pageable_async_copies().count, 0);
    assert!(s.median_kernel_duration_floor_ns().unwrap() >= 10_000);
    assert!((s.sync_ns() as f64) < 0.01 * 0.5e9);

    // Pageable copies: one 32 MiB async copy from pageable memory every 10 of 750 launches.
    let s = summary("cuda-pageable-copies", 0.5);
    let pageable = s.pageable_async_copies();
    assert_eq!((pageable.count, pageable.bytes), (75, 75 * 33_554_432));

    // Sync-heavy: 250 stream synchronizations of 300 µs in 0.5 s, 15 % of the time.
    let s = summary("cuda-sync-heavy", 0.5);
    assert_eq!(s.sync_ns(), 250 * 300_000);
    assert!(s.median_kernel_duration_floor_ns().unwrap() >= 10_000, "its short kernels are not that short");

    // Decode: 12,000 launches/s of kernels whose median (5 µs) is in the 4.1 µs bucket.
    let s = summary("cuda-decode-short-kernels", 0.25);
    assert_eq!(s.launches_per_second(), Some(12_000.0));
    assert_eq!(s.median_kernel_duration_floor_ns(), Some(4096));
    assert_eq!(gemm_simt_share(&s), 0.0);
    assert_eq!(s.pageable_async_copies().count, 0);
}
