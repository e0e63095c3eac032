//! Activity records, read as CUDA 12.8's CUPTI writes them, into the aggregator.
//!
//! Layouts come from cudarc's `cuda-12080` bindings: `CUpti_ActivityKernel9`,
//! `CUpti_ActivityMemcpy6`, `CUpti_ActivityMemset4` and `CUpti_ActivitySynchronization`.
//! CUPTI only ever appends fields when it versions a record (Kernel10 and Memcpy6/Memset4 of
//! CUDA 13 add fields after the ones read here; Synchronization2 of 12.8 extends
//! Synchronization), so every field read here sits at the same offset in the newer versions.
//! Enum-typed fields are read as their `u32` (or `u8`) value, never as a Rust enum: CUPTI may
//! write codes this build does not know.

use std::ffi::CStr;
use std::mem::{offset_of, size_of};

use cudarc::cupti::sys::{
    CUpti_ActivityKernel9, CUpti_ActivityKind, CUpti_ActivityMemcpy6, CUpti_ActivityMemset4,
    CUpti_ActivitySynchronization,
};
use gpuscope_cupti::summary::{MemcpyKind, MemoryKind, SyncKind};
use gpuscope_cupti::{Aggregator, KernelRecord, MemcpyRecord, MemsetRecord, SyncRecord};

/// `CUPTI_ACTIVITY_KIND_MEMCPY`.
pub const KIND_MEMCPY: u32 = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY as u32;
/// `CUPTI_ACTIVITY_KIND_MEMSET`.
pub const KIND_MEMSET: u32 = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMSET as u32;
/// `CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL`.
pub const KIND_CONCURRENT_KERNEL: u32 = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL as u32;
/// `CUPTI_ACTIVITY_KIND_SYNCHRONIZATION`.
pub const KIND_SYNCHRONIZATION: u32 = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_SYNCHRONIZATION as u32;

/// `CUPTI_ACTIVITY_FLAG_MEMCPY_ASYNC` (bit 0 of a memcpy record's flags).
const FLAG_MEMCPY_ASYNC: u8 = 1;

/// What one record turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fed {
    /// A kernel was added.
    Kernel,
    /// A copy was added.
    Memcpy,
    /// A memset was added.
    Memset,
    /// A synchronization call was added.
    Sync,
    /// A synchronization record of an unknown type (or ending before it starts): skipped.
    SkippedSync,
    /// A kind the library did not enable (another client's, or a newer CUPTI's): skipped.
    OtherKind(u32),
    /// Fewer bytes left in the buffer than the record's layout: skipped.
    Truncated,
}

/// The kernel name used when CUPTI gives none.
pub const UNNAMED_KERNEL: &str = "<unnamed kernel>";

// Reads a field of a record at `base` typed by the binding's struct, without a reference (the
// structs are packed(8) and the buffer is only as aligned as CUPTI made it).
macro_rules! field {
    ($base:expr, $ty:ty, $field:ident, $as:ty) => {
        std::ptr::read_unaligned($base.add(offset_of!($ty, $field)).cast::<$as>())
    };
}

fn memcpy_kind(code: u8) -> MemcpyKind {
    // CUpti_ActivityMemcpyKind; a side that is a CUDA array counts as device memory.
    match code {
        1 | 3 => MemcpyKind::HostToDevice,   // HTOD, HTOA
        2 | 4 => MemcpyKind::DeviceToHost,   // DTOH, ATOH
        5..=8 => MemcpyKind::DeviceToDevice, // ATOA, ATOD, DTOA, DTOD
        9 => MemcpyKind::HostToHost,         // HTOH
        10 => MemcpyKind::PeerToPeer,        // PTOP
        _ => MemcpyKind::Unknown,
    }
}

fn memory_kind(code: u8) -> MemoryKind {
    // CUpti_ActivityMemoryKind.
    match code {
        1 => MemoryKind::Pageable,
        2 => MemoryKind::Pinned,
        3 => MemoryKind::Device,
        4 => MemoryKind::Array,
        5 => MemoryKind::Managed,
        6 => MemoryKind::DeviceStatic,
        7 => MemoryKind::ManagedStatic,
        _ => MemoryKind::Unknown,
    }
}

fn sync_kind(code: u32) -> Option<SyncKind> {
    // CUpti_ActivitySynchronizationType.
    match code {
        1 => Some(SyncKind::Event),
        2 => Some(SyncKind::StreamWaitEvent),
        3 => Some(SyncKind::Stream),
        4 => Some(SyncKind::Device),
        _ => None,
    }
}

fn dim(value: i32) -> u32 {
    u32::try_from(value).unwrap_or(0)
}

/// Adds one activity record to `agg`.
///
/// # Safety
/// `record` points at an activity record CUPTI returned from `cuptiActivityGetNextRecord`, with
/// `available` readable bytes from `record` to the end of the buffer's valid part; a kernel
/// record's name pointer is null or a NUL-terminated string.
pub unsafe fn feed(agg: &mut Aggregator, record: *const u8, available: usize) -> Fed {
    if available < size_of::<u32>() {
        return Fed::Truncated;
    }
    // SAFETY (for every read below): the size check before each read keeps it inside the
    // `available` bytes the caller vouches for.
    unsafe {
        let kind = std::ptr::read_unaligned(record.cast::<u32>());
        match kind {
            KIND_CONCURRENT_KERNEL => {
                if available < size_of::<CUpti_ActivityKernel9>() {
                    return Fed::Truncated;
                }
                type K = CUpti_ActivityKernel9;
                let name_ptr = field!(record, K, name, *const std::ffi::c_char);
                let name = if name_ptr.is_null() {
                    std::borrow::Cow::Borrowed(UNNAMED_KERNEL)
                } else {
                    CStr::from_ptr(name_ptr).to_string_lossy()
                };
                let kernel = agg.intern(&name);
                agg.kernel(&KernelRecord {
                    kernel,
                    start_ns: field!(record, K, start, u64),
                    end_ns: field!(record, K, end, u64),
                    device: field!(record, K, deviceId, u32),
                    stream: field!(record, K, streamId, u32),
                    grid: [
                        dim(field!(record, K, gridX, i32)),
                        dim(field!(record, K, gridY, i32)),
                        dim(field!(record, K, gridZ, i32)),
                    ],
                    block: [
                        dim(field!(record, K, blockX, i32)),
                        dim(field!(record, K, blockY, i32)),
                        dim(field!(record, K, blockZ, i32)),
                    ],
                    graph_id: field!(record, K, graphId, u32),
                });
                Fed::Kernel
            }
            KIND_MEMCPY => {
                if available < size_of::<CUpti_ActivityMemcpy6>() {
                    return Fed::Truncated;
                }
                type M = CUpti_ActivityMemcpy6;
                agg.memcpy(&MemcpyRecord {
                    kind: memcpy_kind(field!(record, M, copyKind, u8)),
                    src: memory_kind(field!(record, M, srcKind, u8)),
                    dst: memory_kind(field!(record, M, dstKind, u8)),
                    is_async: field!(record, M, flags, u8) & FLAG_MEMCPY_ASYNC != 0,
                    bytes: field!(record, M, bytes, u64),
                    start_ns: field!(record, M, start, u64),
                    end_ns: field!(record, M, end, u64),
                });
                Fed::Memcpy
            }
            KIND_MEMSET => {
                if available < size_of::<CUpti_ActivityMemset4>() {
                    return Fed::Truncated;
                }
                type M = CUpti_ActivityMemset4;
                agg.memset(&MemsetRecord {
                    bytes: field!(record, M, bytes, u64),
                    start_ns: field!(record, M, start, u64),
                    end_ns: field!(record, M, end, u64),
                });
                Fed::Memset
            }
            KIND_SYNCHRONIZATION => {
                if available < size_of::<CUpti_ActivitySynchronization>() {
                    return Fed::Truncated;
                }
                type Y = CUpti_ActivitySynchronization;
                let start = field!(record, Y, start, u64);
                let end = field!(record, Y, end, u64);
                match (sync_kind(field!(record, Y, type_, u32)), end.checked_sub(start)) {
                    (Some(kind), Some(duration_ns)) => {
                        agg.sync(&SyncRecord { kind, duration_ns });
                        Fed::Sync
                    }
                    _ => Fed::SkippedSync,
                }
            }
            other => Fed::OtherKind(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cudarc::cupti::sys::CUpti_ActivitySynchronizationType;
    use gpuscope_cupti::summary::{MemcpyStats, SyncStats, TimeStats, TransferStats};
    use gpuscope_cupti::{AggregatorConfig, KernelKind, Precision, WindowMeta};
    use std::mem::MaybeUninit;

    const META: WindowMeta = WindowMeta {
        pid: 7,
        window_start_unix_ns: 1_000,
        window_end_unix_ns: 2_000,
        period_ns: 30_000_000_000,
        launch_span_ns: 0,
        summaries_dropped: 0,
    };

    /// A zeroed record of the binding's type: every field of these structs is an integer, a
    /// pointer or a repr(u32) enum whose 0 is a valid variant.
    fn zeroed<T>() -> T {
        // SAFETY: see above; the callers only use these record types.
        unsafe { MaybeUninit::<T>::zeroed().assume_init() }
    }

    /// Lays `record` out in a buffer, as CUPTI would, at an 8-byte aligned offset after `pad`
    /// bytes of an earlier record, and feeds it.
    fn feed_laid_out<T: Copy>(agg: &mut Aggregator, record: &T) -> Fed {
        let mut buffer = vec![0u64; 64];
        let offset = 16;
        let bytes = buffer.as_mut_ptr().cast::<u8>();
        // SAFETY: the buffer holds 512 bytes, more than offset + any record here.
        unsafe {
            std::ptr::copy_nonoverlapping((record as *const T).cast::<u8>(), bytes.add(offset), size_of::<T>());
            feed(agg, bytes.add(offset), size_of::<T>())
        }
    }

    #[test]
    fn a_kernel9_record_becomes_a_kernel_of_its_class() {
        let name = c"ampere_bf16_s16816gemm_bf16_128x256_ldg8_f2f_stages_64x3_tn";
        let mut k: CUpti_ActivityKernel9 = zeroed();
        k.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
        k.start = 5_000;
        k.end = 7_500;
        k.deviceId = 1;
        k.streamId = 13;
        k.gridX = 108;
        k.gridY = 2;
        k.gridZ = 1;
        k.blockX = 256;
        k.blockY = 1;
        k.blockZ = 1;
        k.name = name.as_ptr();
        k.graphId = 0;
        let mut agg = Aggregator::new(AggregatorConfig::default());
        assert_eq!(feed_laid_out(&mut agg, &k), Fed::Kernel);
        k.start = 8_000;
        k.end = 8_100;
        k.gridX = 1;
        k.graphId = 3;
        assert_eq!(feed_laid_out(&mut agg, &k), Fed::Kernel);
        let s = agg.finish_window(&META);
        assert_eq!(s.top_kernels.len(), 1);
        let top = &s.top_kernels[0];
        assert_eq!(top.name, name.to_str().unwrap());
        assert_eq!((top.count, top.total_ns, top.max_ns), (2, 2_600, 2_500));
        assert_eq!((top.grid, top.block), ([108, 2, 1], [256, 1, 1]));
        assert_eq!(top.class.kind, KernelKind::Gemm);
        assert_eq!(top.class.precision, Precision::Bf16);
        assert_eq!(s.graph_kernels, TimeStats { count: 1, total_ns: 100 });
        assert_eq!(s.gpu_gaps.len(), 1);
        assert_eq!((s.gpu_gaps[0].device, s.gpu_gaps[0].busy_ns, s.gpu_gaps[0].max_gap_ns), (1, 2_600, 500));
    }

    #[test]
    fn a_kernel_without_a_name_and_with_negative_dimensions_is_still_counted() {
        let mut k: CUpti_ActivityKernel9 = zeroed();
        k.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL;
        k.start = 1;
        k.end = 4;
        k.gridX = -1;
        let mut agg = Aggregator::new(AggregatorConfig::default());
        assert_eq!(feed_laid_out(&mut agg, &k), Fed::Kernel);
        let s = agg.finish_window(&META);
        assert_eq!(s.top_kernels[0].name, UNNAMED_KERNEL);
        assert_eq!(s.top_kernels[0].grid, [0, 0, 0]);
    }

    #[test]
    fn memcpy6_records_say_pageable_or_pinned_and_async() {
        let mut m: CUpti_ActivityMemcpy6 = zeroed();
        m.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMCPY;
        m.copyKind = 1; // HTOD
        m.srcKind = 1; // PAGEABLE
        m.dstKind = 3; // DEVICE
        m.flags = 1; // ASYNC
        m.bytes = 4 << 20;
        m.start = 100;
        m.end = 1_100;
        let mut agg = Aggregator::new(AggregatorConfig::default());
        assert_eq!(feed_laid_out(&mut agg, &m), Fed::Memcpy);
        m.copyKind = 2; // DTOH
        m.srcKind = 3;
        m.dstKind = 2; // PINNED
        m.flags = 0;
        m.bytes = 64;
        assert_eq!(feed_laid_out(&mut agg, &m), Fed::Memcpy);
        m.copyKind = 4; // ATOH: an array side counts as device
        m.srcKind = 4;
        m.dstKind = 99; // a code this build does not know
        assert_eq!(feed_laid_out(&mut agg, &m), Fed::Memcpy);
        let s = agg.finish_window(&META);
        let t = |bytes| TransferStats { count: 1, bytes, total_ns: 1_000 };
        assert_eq!(
            s.memcpy,
            vec![
                MemcpyStats {
                    kind: MemcpyKind::HostToDevice,
                    src: MemoryKind::Pageable,
                    dst: MemoryKind::Device,
                    is_async: true,
                    transfer: t(4 << 20)
                },
                MemcpyStats {
                    kind: MemcpyKind::DeviceToHost,
                    src: MemoryKind::Device,
                    dst: MemoryKind::Pinned,
                    is_async: false,
                    transfer: t(64)
                },
                MemcpyStats {
                    kind: MemcpyKind::DeviceToHost,
                    src: MemoryKind::Array,
                    dst: MemoryKind::Unknown,
                    is_async: false,
                    transfer: t(64)
                },
            ]
        );
        assert_eq!(s.pageable_async_copies(), t(4 << 20));
    }

    #[test]
    fn memset4_and_synchronization_records_are_summed() {
        let mut m: CUpti_ActivityMemset4 = zeroed();
        m.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_MEMSET;
        m.bytes = 256;
        m.start = 10;
        m.end = 30;
        let mut y: CUpti_ActivitySynchronization = zeroed();
        y.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
        y.type_ = CUpti_ActivitySynchronizationType::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_STREAM_SYNCHRONIZE;
        y.start = 1_000;
        y.end = 4_000;
        let mut agg = Aggregator::new(AggregatorConfig::default());
        assert_eq!(feed_laid_out(&mut agg, &m), Fed::Memset);
        assert_eq!(feed_laid_out(&mut agg, &y), Fed::Sync);
        y.type_ = CUpti_ActivitySynchronizationType::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_CONTEXT_SYNCHRONIZE;
        assert_eq!(feed_laid_out(&mut agg, &y), Fed::Sync);
        y.type_ = CUpti_ActivitySynchronizationType::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_UNKNOWN;
        assert_eq!(feed_laid_out(&mut agg, &y), Fed::SkippedSync);
        let s = agg.finish_window(&META);
        assert_eq!(s.memset, TransferStats { count: 1, bytes: 256, total_ns: 20 });
        assert_eq!(
            s.sync,
            vec![
                SyncStats { kind: SyncKind::Device, time: TimeStats { count: 1, total_ns: 3_000 } },
                SyncStats { kind: SyncKind::Stream, time: TimeStats { count: 1, total_ns: 3_000 } },
            ]
        );
    }

    #[test]
    fn the_synchronization2_record_of_cuda_12_8_reads_the_same() {
        let mut y: cudarc::cupti::sys::CUpti_ActivitySynchronization2 = zeroed();
        y.kind = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_SYNCHRONIZATION;
        y.type_ = CUpti_ActivitySynchronizationType::CUPTI_ACTIVITY_SYNCHRONIZATION_TYPE_EVENT_SYNCHRONIZE;
        y.start = 10;
        y.end = 15;
        y.cudaEventSyncId = u64::MAX;
        let mut agg = Aggregator::new(AggregatorConfig::default());
        assert_eq!(feed_laid_out(&mut agg, &y), Fed::Sync);
        let s = agg.finish_window(&META);
        assert_eq!(s.sync, vec![SyncStats { kind: SyncKind::Event, time: TimeStats { count: 1, total_ns: 5 } }]);
    }

    #[test]
    fn other_kinds_and_short_records_are_skipped() {
        let mut agg = Aggregator::new(AggregatorConfig::default());
        let driver_api: u32 = CUpti_ActivityKind::CUPTI_ACTIVITY_KIND_DRIVER as u32;
        let buffer = [u64::from(driver_api), 0, 0, 0];
        // SAFETY: 32 readable bytes.
        assert_eq!(unsafe { feed(&mut agg, buffer.as_ptr().cast(), 32) }, Fed::OtherKind(driver_api));
        let kernel = [u64::from(KIND_CONCURRENT_KERNEL), 0, 0, 0];
        // SAFETY: 32 readable bytes, fewer than a kernel record: refused before reading more.
        assert_eq!(unsafe { feed(&mut agg, kernel.as_ptr().cast(), 32) }, Fed::Truncated);
        // SAFETY: no bytes are read.
        assert_eq!(unsafe { feed(&mut agg, kernel.as_ptr().cast(), 2) }, Fed::Truncated);
        let s = agg.finish_window(&META);
        assert!(s.classes.is_empty());
    }

    #[test]
    fn field_offsets_match_the_cuda_12_8_headers() {
        // Offsets and sizes of NVIDIA's cupti_activity.h of CUDA 12.8 (nvidia-cuda-cupti-cu12
        // 12.8.90, measured with offsetof/sizeof in C) for the fields read here: a binding
        // change that moved one would be caught before it misreads a real buffer.
        assert_eq!(offset_of!(CUpti_ActivityKernel9, start), 16);
        assert_eq!(offset_of!(CUpti_ActivityKernel9, end), 24);
        assert_eq!(offset_of!(CUpti_ActivityKernel9, deviceId), 40);
        assert_eq!(offset_of!(CUpti_ActivityKernel9, streamId), 48);
        assert_eq!(offset_of!(CUpti_ActivityKernel9, gridX), 52);
        assert_eq!(offset_of!(CUpti_ActivityKernel9, gridId), 96);
        assert_eq!(offset_of!(CUpti_ActivityKernel9, name), 104);
        assert_eq!(offset_of!(CUpti_ActivityKernel9, graphId), 156);
        assert_eq!(offset_of!(CUpti_ActivityMemcpy6, bytes), 8);
        assert_eq!(offset_of!(CUpti_ActivityMemcpy6, start), 16);
        assert_eq!(offset_of!(CUpti_ActivityMemcpy6, graphId), 72);
        assert_eq!(size_of::<CUpti_ActivityMemcpy6>(), 96);
        assert_eq!(size_of::<CUpti_ActivityKernel9>(), 208);
        assert_eq!(offset_of!(CUpti_ActivityMemset4, bytes), 8);
        assert_eq!(size_of::<CUpti_ActivityMemset4>(), 88);
        assert_eq!(size_of::<CUpti_ActivitySynchronization>(), 40);
        assert_eq!(size_of::<cudarc::cupti::sys::CUpti_ActivitySynchronization2>(), 56);
        assert_eq!(offset_of!(cudarc::cupti::sys::CUpti_CallbackData, callbackSite), 0);
    }
}
