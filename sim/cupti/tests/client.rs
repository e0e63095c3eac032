//! A minimal CUPTI client through the real entry points of the simulated libcupti.so: it
//! subscribes, enables launch callbacks and the activity kinds, hands out buffers, lets the
//! simulated driver play a workload, and walks the completed buffers with
//! `cuptiActivityGetNextRecord`, reading them as cudarc's CUDA 12.8 record structs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Cupti;
use cudarc::cupti::sys;
use std::collections::BTreeMap;
use std::ffi::{CStr, c_void};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

const MEMCPY: u32 = 1;
const MEMSET: u32 = 2;
const CONCURRENT_KERNEL: u32 = 10;
const SYNCHRONIZATION: u32 = 38;
const DRIVER: u32 = 1;
const RUNTIME: u32 = 2;
const CU_LAUNCH_KERNEL: u32 = 307;
const CU_GRAPH_LAUNCH: u32 = 514;
const CUDA_LAUNCH_KERNEL: u32 = 211;

/// One record as the client read it, times relative to the play's origin.
#[derive(Debug, Clone, PartialEq)]
enum Rec {
    Kernel {
        name: String,
        start: u64,
        end: u64,
        device: u32,
        stream: u32,
        grid: [i32; 3],
        block: [i32; 3],
        graph: u32,
        correlation: u32,
    },
    Memcpy {
        kind: u8,
        src: u8,
        dst: u8,
        flags: u8,
        bytes: u64,
        start: u64,
        end: u64,
        correlation: u32,
        runtime: u32,
    },
    Memset {
        bytes: u64,
        value: u32,
        flags: u16,
        start: u64,
        end: u64,
    },
    Sync {
        ty: u32,
        stream: u32,
        start: u64,
        end: u64,
    },
}

#[derive(Default)]
struct Client {
    records: Vec<(u32, Vec<u8>)>,
    completions: usize,
    bad_valid_sizes: usize,
    launch_enter: BTreeMap<(u32, u32), usize>,
    launch_exit: BTreeMap<(u32, u32), usize>,
    symbols: BTreeMap<String, usize>,
    correlations: Vec<u32>,
}

static CLIENT: Mutex<Option<Client>> = Mutex::new(None);
static HAND_OUT: AtomicBool = AtomicBool::new(true);
static BUFFER_BYTES: AtomicUsize = AtomicUsize::new(4096);
static API: OnceLock<Cupti> = OnceLock::new();
static SERIAL: Mutex<()> = Mutex::new(());

fn api() -> &'static Cupti {
    API.get_or_init(|| {
        let c = common::open();
        // SAFETY: the simulated driver's init.
        unsafe { (c.driver_init)() };
        c
    })
}

fn client() -> MutexGuard<'static, Option<Client>> {
    CLIENT.lock().unwrap_or_else(|e| e.into_inner())
}

unsafe extern "C" fn on_callback(_userdata: *mut c_void, domain: u32, cbid: u32, data: *const c_void) {
    // SAFETY: the library passes a CUpti_CallbackData.
    let data = unsafe { &*data.cast::<sys::CUpti_CallbackData>() };
    let mut g = client();
    let Some(c) = g.as_mut() else { return };
    let site = data.callbackSite as u32;
    let map = if site == 0 { &mut c.launch_enter } else { &mut c.launch_exit };
    *map.entry((domain, cbid)).or_default() += 1;
    if site == 0 && domain == DRIVER {
        // SAFETY: functionName is a C string.
        let function = unsafe { CStr::from_ptr(data.functionName) }.to_string_lossy().into_owned();
        let symbol = if data.symbolName.is_null() {
            "<none>".to_string()
        } else {
            // SAFETY: a C string when non-null.
            unsafe { CStr::from_ptr(data.symbolName) }.to_string_lossy().into_owned()
        };
        *c.symbols.entry(format!("{function} {symbol}")).or_default() += 1;
        c.correlations.push(data.correlationId);
    }
}

unsafe extern "C" fn on_request(buffer: *mut *mut u8, size: *mut usize, max_records: *mut usize) {
    let bytes = BUFFER_BYTES.load(Ordering::Relaxed);
    // SAFETY: out-parameters from the library.
    unsafe {
        *max_records = 0;
        if HAND_OUT.load(Ordering::Relaxed) {
            let layout = std::alloc::Layout::from_size_align(bytes, 8).unwrap();
            *buffer = std::alloc::alloc(layout);
            *size = bytes;
        } else {
            *buffer = std::ptr::null_mut();
            *size = 0;
        }
    }
}

unsafe extern "C" fn on_complete(_ctx: *mut c_void, _stream: u32, buffer: *mut u8, size: usize, valid: usize) {
    let api = api();
    let mut walked = Vec::new();
    let mut rec: *mut c_void = std::ptr::null_mut();
    loop {
        // SAFETY: the completed buffer and its valid size, as CUPTI gave them.
        let r = unsafe { (api.get_next_record)(buffer, valid, &mut rec) };
        if r != 0 {
            assert_eq!(r, 12, "the walk ends with CUPTI_ERROR_MAX_LIMIT_REACHED");
            break;
        }
        assert_eq!((rec as usize - buffer as usize) % 8, 0, "records are 8-byte aligned");
        // SAFETY: a record within the valid bytes starts with its kind.
        let kind = unsafe { *rec.cast::<u32>() };
        let len = match kind {
            CONCURRENT_KERNEL => size_of::<sys::CUpti_ActivityKernel9>(),
            MEMCPY => size_of::<sys::CUpti_ActivityMemcpy6>(),
            MEMSET => size_of::<sys::CUpti_ActivityMemset4>(),
            SYNCHRONIZATION => size_of::<sys::CUpti_ActivitySynchronization2>(),
            k => panic!("unexpected kind {k}"),
        };
        // SAFETY: the record's bytes are within the buffer.
        let bytes = unsafe { std::slice::from_raw_parts(rec.cast::<u8>(), len) }.to_vec();
        walked.push((kind, bytes));
    }
    let mut g = client();
    if let Some(c) = g.as_mut() {
        c.completions += 1;
        if valid > size || !valid.is_multiple_of(8) {
            c.bad_valid_sizes += 1;
        }
        c.records.extend(walked);
    }
    if !buffer.is_null() {
        // SAFETY: allocated by on_request with this size and alignment.
        unsafe { std::alloc::dealloc(buffer, std::alloc::Layout::from_size_align(size, 8).unwrap()) };
    }
}

fn parse(kind: u32, bytes: &[u8], origin: u64) -> Rec {
    // SAFETY: the bytes are a whole record of that kind.
    unsafe {
        match kind {
            CONCURRENT_KERNEL => {
                let k: sys::CUpti_ActivityKernel9 = std::ptr::read_unaligned(bytes.as_ptr().cast());
                Rec::Kernel {
                    name: CStr::from_ptr(k.name).to_string_lossy().into_owned(),
                    start: k.start - origin,
                    end: k.end - origin,
                    device: k.deviceId,
                    stream: k.streamId,
                    grid: [k.gridX, k.gridY, k.gridZ],
                    block: [k.blockX, k.blockY, k.blockZ],
                    graph: k.graphId,
                    correlation: k.correlationId,
                }
            }
            MEMCPY => {
                let m: sys::CUpti_ActivityMemcpy6 = std::ptr::read_unaligned(bytes.as_ptr().cast());
                Rec::Memcpy {
                    kind: m.copyKind,
                    src: m.srcKind,
                    dst: m.dstKind,
                    flags: m.flags,
                    bytes: m.bytes,
                    start: m.start - origin,
                    end: m.end - origin,
                    correlation: m.correlationId,
                    runtime: m.runtimeCorrelationId,
                }
            }
            MEMSET => {
                let m: sys::CUpti_ActivityMemset4 = std::ptr::read_unaligned(bytes.as_ptr().cast());
                Rec::Memset {
                    bytes: m.bytes,
                    value: m.value,
                    flags: m.flags,
                    start: m.start - origin,
                    end: m.end - origin,
                }
            }
            _ => {
                let s: sys::CUpti_ActivitySynchronization2 = std::ptr::read_unaligned(bytes.as_ptr().cast());
                Rec::Sync { ty: s.type_ as u32, stream: s.streamId, start: s.start - origin, end: s.end - origin }
            }
        }
    }
}

const SCENARIO: &str = r#"
name = "client-test"
description = "A small workload with every kind of step."
[[gpus]]
model = "H100-SXM5-80GB"
[[processes]]
pid = 10
name = "python"
gpus = [0]
[[phases]]
name = "p"
duration_s = 1
[cuda]
pid = 10
launches_per_s = 4000
[[cuda.kernels]]
name = "ampere_sgemm_128x64_tn"
share = 3
duration_us = 50
grid = [64, 2, 1]
block = [256, 1, 1]
stream = 13
[[cuda.kernels]]
name = "ncclDevKernel_AllReduce_Sum_bf16_RING_LL"
share = 1
duration_us = 20
graph = true
[[cuda.copies]]
kind = "htod"
bytes = 1048576
host = "pageable"
async = true
duration_us = 30
every = 10
[[cuda.memsets]]
bytes = 4096
value = 7
duration_us = 5
every = 20
[[cuda.syncs]]
kind = "stream"
duration_us = 100
every = 40
[[cuda.idle]]
duration_us = 500
every = 100
"#;

fn scenario_file() -> &'static str {
    static FILE: OnceLock<(tempfile::TempDir, String)> = OnceLock::new();
    &FILE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("client-test.toml");
            std::fs::write(&path, SCENARIO).unwrap();
            let p = path.to_str().unwrap().to_string();
            (dir, p)
        })
        .1
}

/// Subscribes, enables the launch callbacks and the four activity kinds, plays 0.1 s of the
/// test workload (400 launches), flushes and returns what the client saw, then cleans up.
fn session(enable_activity: bool) -> (cupti::play::Played, Client) {
    let api = api();
    *client() = Some(Client::default());
    let mut sub: common::Subscriber = std::ptr::null();
    unsafe {
        assert_eq!((api.subscribe)(&mut sub, Some(on_callback), std::ptr::null_mut()), 0);
        for (d, cbid) in [(DRIVER, CU_LAUNCH_KERNEL), (DRIVER, CU_GRAPH_LAUNCH), (RUNTIME, CUDA_LAUNCH_KERNEL)] {
            assert_eq!((api.enable_callback)(1, sub, d, cbid), 0);
        }
        assert_eq!((api.register_callbacks)(Some(on_request), Some(on_complete)), 0);
        if enable_activity {
            for k in [CONCURRENT_KERNEL, MEMCPY, MEMSET, SYNCHRONIZATION] {
                assert_eq!((api.activity_enable)(k), 0);
            }
        }
    }
    let played = api.play(scenario_file(), 0.1);
    unsafe {
        for k in [CONCURRENT_KERNEL, MEMCPY, MEMSET, SYNCHRONIZATION] {
            assert_eq!((api.activity_disable)(k), 0);
        }
        assert_eq!((api.flush_all)(1), 0);
        assert_eq!((api.unsubscribe)(sub), 0);
    }
    let seen = client().take().unwrap();
    (played, seen)
}

#[test]
fn a_client_sees_exactly_the_workload_through_callbacks_and_records() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    BUFFER_BYTES.store(4096, Ordering::Relaxed);
    HAND_OUT.store(true, Ordering::Relaxed);
    let (played, seen) = session(true);
    assert_eq!((played.launches, played.copies, played.memsets, played.syncs), (400, 40, 20, 10));
    assert_eq!(played.records, 470);

    // Launch callbacks: runtime and driver, ENTER and EXIT, with the kernel's name on cuLaunchKernel.
    assert_eq!(seen.launch_enter.get(&(DRIVER, CU_LAUNCH_KERNEL)), Some(&300));
    assert_eq!(seen.launch_enter.get(&(DRIVER, CU_GRAPH_LAUNCH)), Some(&100));
    assert_eq!(seen.launch_enter.get(&(RUNTIME, CUDA_LAUNCH_KERNEL)), Some(&300));
    assert_eq!(seen.launch_enter, seen.launch_exit);
    assert_eq!(seen.symbols.get("cuLaunchKernel ampere_sgemm_128x64_tn"), Some(&300));
    assert_eq!(seen.symbols.get("cuGraphLaunch <none>"), Some(&100));

    // Records: 4096-byte buffers hold 19 kernel records; every one came back, walkable.
    assert!(seen.completions >= 470 * 88 / 4096, "{} completions", seen.completions);
    assert_eq!(seen.bad_valid_sizes, 0);
    let recs: Vec<Rec> = seen.records.iter().map(|(k, b)| parse(*k, b, played.origin_ns)).collect();
    let kernels: Vec<&Rec> = recs.iter().filter(|r| matches!(r, Rec::Kernel { .. })).collect();
    assert_eq!(kernels.len(), 400);
    let mut by_name: BTreeMap<&str, usize> = BTreeMap::new();
    for k in &kernels {
        let Rec::Kernel { name, start, end, device, stream, grid, block, graph, correlation } = k else {
            unreachable!()
        };
        *by_name.entry(name.as_str()).or_default() += 1;
        assert_eq!(*device, 0);
        if name == "ampere_sgemm_128x64_tn" {
            assert_eq!((end - start, *stream, *grid, *block, *graph), (50_000, 13, [64, 2, 1], [256, 1, 1], 0));
        } else {
            assert_eq!((end - start, *stream, *grid, *block, *graph), (20_000, 7, [1, 1, 1], [128, 1, 1], 2));
        }
        assert!(seen.correlations.contains(correlation), "a kernel's correlation id is its driver call's");
    }
    assert_eq!(by_name.get("ampere_sgemm_128x64_tn"), Some(&300));
    assert_eq!(by_name.get("ncclDevKernel_AllReduce_Sum_bf16_RING_LL"), Some(&100));
    // The first kernel starts one launch latency (4 µs) after the first launch, at the origin.
    let Rec::Kernel { start, .. } = kernels[0] else { unreachable!() };
    assert_eq!(*start, 4_000);
    // Three pauses of 500 µs of host time leave the GPU idle between kernels; nothing else does
    // for more than a launch slot.
    let mut gaps: Vec<u64> = kernels
        .windows(2)
        .map(|w| match (w[0], w[1]) {
            (Rec::Kernel { end, .. }, Rec::Kernel { start, .. }) => start.saturating_sub(*end),
            _ => unreachable!(),
        })
        .collect();
    gaps.sort_unstable();
    assert!(gaps[gaps.len() - 3] > 500_000 && gaps[gaps.len() - 4] < 400_000, "{:?}", &gaps[gaps.len() - 5..]);

    let copies: Vec<&Rec> = recs.iter().filter(|r| matches!(r, Rec::Memcpy { .. })).collect();
    assert_eq!(copies.len(), 40);
    for c in &copies {
        let Rec::Memcpy { kind, src, dst, flags, bytes, start, end, correlation, runtime } = c else { unreachable!() };
        assert_eq!((*kind, *src, *dst, *flags, *bytes, end - start), (1, 1, 3, 1, 1_048_576, 30_000));
        assert_eq!(*correlation, runtime + 1, "the driver call nests in the runtime call");
    }
    let memsets: Vec<&Rec> = recs.iter().filter(|r| matches!(r, Rec::Memset { .. })).collect();
    assert_eq!(memsets.len(), 20);
    assert!(
        memsets
            .iter()
            .all(|m| matches!(m, Rec::Memset { bytes: 4096, value: 7, flags: 0, start, end } if end - start == 5_000))
    );
    let syncs: Vec<&Rec> = recs.iter().filter(|r| matches!(r, Rec::Sync { .. })).collect();
    assert_eq!(syncs.len(), 10);
    assert!(syncs.iter().all(|s| matches!(s, Rec::Sync { ty: 3, stream: 7, start, end } if end - start == 100_000)));
}

#[test]
fn two_plays_write_the_same_records() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    BUFFER_BYTES.store(1 << 20, Ordering::Relaxed);
    HAND_OUT.store(true, Ordering::Relaxed);
    let normalized = |played: &cupti::play::Played, seen: &Client| -> Vec<Rec> {
        let recs: Vec<Rec> = seen.records.iter().map(|(k, b)| parse(*k, b, played.origin_ns)).collect();
        let first = recs
            .iter()
            .find_map(|r| if let Rec::Kernel { correlation, .. } = r { Some(*correlation) } else { None })
            .unwrap();
        recs.into_iter()
            .map(|mut r| {
                match &mut r {
                    Rec::Kernel { correlation, .. } => *correlation -= first,
                    Rec::Memcpy { correlation, runtime, .. } => {
                        *correlation -= first;
                        *runtime -= first;
                    }
                    _ => {}
                }
                r
            })
            .collect()
    };
    let (p1, s1) = session(true);
    let (p2, s2) = session(true);
    let (a, b) = (normalized(&p1, &s1), normalized(&p2, &s2));
    assert_eq!(a.len(), 470);
    assert_eq!(a, b);
}

#[test]
fn records_without_a_buffer_are_dropped_and_counted_once() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let api = api();
    HAND_OUT.store(false, Ordering::Relaxed);
    let (played, seen) = session(true);
    HAND_OUT.store(true, Ordering::Relaxed);
    assert_eq!(played.records, 0);
    assert!(seen.records.is_empty());
    let mut dropped = 0usize;
    unsafe {
        assert_eq!((api.get_num_dropped)(std::ptr::null_mut(), 0, &mut dropped), 0);
        assert_eq!(dropped, 470);
        assert_eq!((api.get_num_dropped)(std::ptr::null_mut(), 0, &mut dropped), 0);
        assert_eq!(dropped, 0, "reading the count resets it");
        assert_eq!((api.get_num_dropped)(std::ptr::null_mut(), 0, std::ptr::null_mut()), 1);
    }

    // 64-byte buffers hold a 56-byte sync record but no kernel, copy or memset record: those are
    // dropped and their buffers come straight back, empty, for the client to free.
    BUFFER_BYTES.store(64, Ordering::Relaxed);
    let (played, seen) = session(true);
    BUFFER_BYTES.store(4096, Ordering::Relaxed);
    assert_eq!(played.records, 10);
    assert_eq!(seen.records.len(), 10);
    assert!(seen.records.iter().all(|(k, _)| *k == SYNCHRONIZATION));
    assert_eq!(seen.completions, 470, "every buffer handed out came back");
    unsafe {
        assert_eq!((api.get_num_dropped)(std::ptr::null_mut(), 0, &mut dropped), 0);
    }
    assert_eq!(dropped, 460);
}

#[test]
fn without_activity_only_callbacks_fire_and_a_second_subscriber_is_refused() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (played, seen) = session(false);
    assert_eq!(played.launches, 400);
    assert_eq!(played.records, 0);
    assert!(seen.records.is_empty());
    assert_eq!(seen.launch_enter.values().sum::<usize>(), 700);

    let api = api();
    let (mut a, mut b): (common::Subscriber, common::Subscriber) = (std::ptr::null(), std::ptr::null());
    unsafe {
        assert_eq!((api.subscribe)(&mut a, Some(on_callback), std::ptr::null_mut()), 0);
        assert_eq!((api.subscribe)(&mut b, Some(on_callback), std::ptr::null_mut()), 39);
        assert!(b.is_null());
        assert_eq!((api.enable_callback)(1, a, 9, 0), 1, "invalid domain");
        assert_eq!((api.enable_callback)(1, a, DRIVER, 782), 1, "cbid past the domain");
        assert_eq!((api.activity_enable)(0), 21);
        assert_eq!((api.activity_enable)(55), 21);
        assert_eq!((api.activity_enable)(CONCURRENT_KERNEL), 0);
        assert_eq!((api.activity_enable)(3), 14, "KERNEL and CONCURRENT_KERNEL exclude each other");
        assert_eq!((api.activity_disable)(CONCURRENT_KERNEL), 0);
        assert_eq!((api.register_callbacks)(None, Some(on_complete)), 1);
        let mut ts = 0u64;
        assert_eq!((api.get_timestamp)(&mut ts), 0);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
        assert!(ts <= now && now - ts < 60_000_000_000, "CLOCK_REALTIME ns");
        assert_eq!((api.unsubscribe)(a), 0);
        assert_eq!((api.unsubscribe)(a), 1, "a handle is dead after unsubscribing");
        assert_eq!((api.finalize)(), 0);
        assert_eq!((api.subscribe)(&mut b, None, std::ptr::null_mut()), 0, "subscribing again after finalize");
        assert_eq!((api.unsubscribe)(b), 0);
    }
}

#[test]
fn walking_a_buffer_checks_its_arguments() {
    let api = api();
    let mut buf = [0u64; 32];
    let p = buf.as_mut_ptr().cast::<u8>();
    let mut rec: *mut c_void = std::ptr::null_mut();
    unsafe {
        assert_eq!((api.get_next_record)(p, 0, &mut rec), 12, "an empty buffer has no record");
        assert_eq!((api.get_next_record)(std::ptr::null_mut(), 8, &mut rec), 1);
        assert_eq!((api.get_next_record)(p, 8, std::ptr::null_mut()), 1);
        // A kind this CUPTI never writes.
        *p.cast::<u32>() = 999;
        assert_eq!((api.get_next_record)(p, 256, &mut rec), 21);
        let mut version = 0;
        assert_eq!((api.get_version)(&mut version), 0);
        assert_eq!(version, 26);
        let mut s = std::ptr::null();
        assert_eq!((api.get_result_string)(39, &mut s), 0);
        assert_eq!(CStr::from_ptr(s).to_str().unwrap(), "CUPTI_ERROR_MULTIPLE_SUBSCRIBERS_NOT_SUPPORTED");
        assert_eq!((api.get_result_string)(4242, &mut s), 1);
        assert_eq!(CStr::from_ptr(s).to_str().unwrap(), "<unknown>");
    }
}

const LONG_KERNEL: &str = r#"
name = "long-kernel"
description = "One 30 s kernel."
[[gpus]]
model = "H100-SXM5-80GB"
[[processes]]
pid = 10
name = "python"
gpus = [0]
[[phases]]
name = "p"
duration_s = 1
[cuda]
pid = 10
launches_per_s = 0.02
[[cuda.kernels]]
name = "ampere_sgemm_128x64_tn"
share = 1
duration_us = 30000000
"#;

#[test]
fn a_default_flush_keeps_a_buffer_whose_kernel_is_still_running_and_a_forced_one_does_not() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long-kernel.toml");
    std::fs::write(&path, LONG_KERNEL).unwrap();
    BUFFER_BYTES.store(1 << 16, Ordering::Relaxed);
    HAND_OUT.store(true, Ordering::Relaxed);
    let api = api();
    *client() = Some(Client::default());
    unsafe {
        assert_eq!((api.register_callbacks)(Some(on_request), Some(on_complete)), 0);
        assert_eq!((api.activity_enable)(CONCURRENT_KERNEL), 0);
    }
    // One launch (50 s at 0.02/s): the kernel runs for 30 s from the play's start.
    let played = api.play(path.to_str().unwrap(), 50.0);
    assert_eq!((played.launches, played.records), (1, 1));
    unsafe {
        assert_eq!((api.activity_disable)(CONCURRENT_KERNEL), 0);
        assert_eq!((api.flush_all)(0), 0);
    }
    assert_eq!(client().as_ref().unwrap().completions, 0, "the record is not complete yet");
    unsafe { assert_eq!((api.flush_all)(1), 0) };
    let seen = client().take().unwrap();
    assert_eq!(seen.completions, 1);
    let Rec::Kernel { start, end, .. } = parse(seen.records[0].0, &seen.records[0].1, played.origin_ns) else {
        panic!("a kernel record")
    };
    assert_eq!((start, end), (4_000, 30_000_004_000));
}
