//! The fuzz seed `fuzz/corpus/cupti_summary/window-v1.bin` was written by hand from
//! `docs/cupti-protocol.md` (not by this crate's encoder): decoding it checks the document and the
//! code agree, and keeps the seed a valid frame as the format evolves.

use gpuscope_cupti::summary::{MemcpyKind, MemoryKind, SyncKind, TimeStats, TransferStats};
use gpuscope_cupti::{decode, encode};

const SEED: &[u8] = include_bytes!("../../fuzz/corpus/cupti_summary/window-v1.bin");

#[test]
fn the_documented_frame_decodes_to_the_documented_values() {
    let s = decode(SEED).unwrap();
    assert_eq!(s.pid, 4242);
    assert_eq!(s.window_ns(), 500_000_000);
    assert_eq!(s.period_ns, 30_000_000_000);
    assert_eq!(s.launches_per_second(), Some(20_000.0));
    assert_eq!(s.launches_in_window, 10_000);
    let classes: Vec<(String, TimeStats)> = s.classes.iter().map(|c| (c.class.label(), c.time)).collect();
    assert_eq!(
        classes,
        vec![
            ("gemm/simt/fp32".to_string(), TimeStats { count: 29, total_ns: 9_000_000 }),
            ("elementwise".to_string(), TimeStats { count: 100, total_ns: 50_000 }),
        ]
    );
    let top = &s.top_kernels[0];
    assert_eq!((top.name.as_str(), top.class.label()), ("ampere_sgemm_128x64_tn", "gemm/simt/fp32".to_string()));
    assert_eq!(
        (top.count, top.total_ns, top.max_ns, top.grid, top.block),
        (29, 9_000_000, 960_251, [86, 3, 3], [256, 1, 1])
    );
    assert_eq!(s.memcpy.len(), 1);
    assert_eq!(
        (s.memcpy[0].kind, s.memcpy[0].src, s.memcpy[0].dst),
        (MemcpyKind::HostToDevice, MemoryKind::Pageable, MemoryKind::Device)
    );
    assert_eq!(s.pageable_async_copies(), TransferStats { count: 4, bytes: 4 << 20, total_ns: 1_000_000 });
    assert_eq!((s.sync[0].kind, s.sync_ns()), (SyncKind::Stream, 40_000_000));
    assert_eq!((s.gpu_gaps[0].idle_ns, s.gpu_gaps[0].max_gap_ns), (490_000_000, 90_000_000));
    assert_eq!((s.duration_histogram[8], s.duration_histogram[18]), (100, 29));
    assert_eq!((s.callback_overhead_ns, s.callback_count), (2_500_000, 600_000));
    // Canonical: re-encoding gives the same bytes.
    assert_eq!(encode(&s).unwrap(), SEED);
}
