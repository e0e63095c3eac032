//! An NVML-compatible shared library that plays a gpuscope simulator scenario.
//!
//! Load it by path with nvml-wrapper (`Nvml::builder().lib_path(..)`), or as `libnvidia-ml.so.1`
//! (a symlink on `LD_LIBRARY_PATH`) for NVIDIA's Python bindings. The environment picks the
//! scenario (`GPUSCOPE_SIM_SCENARIO`, `_NODE`, `_START`, `_SPEED`, `_TIME`: see `sim/README.md`).
//!
//! It behaves like the real library where the agent can tell the difference: return codes,
//! count-query conventions, struct versions, NOT_SUPPORTED for features a model lacks,
//! GPU_IS_LOST after a GPU falls off the bus, and it never crashes on bad arguments.

#![allow(non_snake_case, clippy::missing_safety_doc)]

use gpuscope_sim::SimClock;
use gpuscope_sim::clock::{self, unix_now};
use gpuscope_sim::engine::{G, GpuInfo, GpuState, Simulation};
use std::collections::{HashMap, HashSet};
use std::ffi::{CStr, c_char, c_int, c_uint, c_ulong, c_ulonglong, c_void};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::time::{Duration, Instant};

type Ret = c_uint;
const SUCCESS: Ret = 0;
const UNINITIALIZED: Ret = 1;
const INVALID_ARGUMENT: Ret = 2;
const NOT_SUPPORTED: Ret = 3;
const NOT_FOUND: Ret = 6;
const INSUFFICIENT_SIZE: Ret = 7;
const DRIVER_NOT_LOADED: Ret = 9;
const TIMEOUT: Ret = 10;
const GPU_IS_LOST: Ret = 15;
const ARGUMENT_VERSION_MISMATCH: Ret = 25;
const UNKNOWN: Ret = 999;

const EVENT_XID: u64 = 0x8;
const NOT_AVAILABLE_U32: u32 = 0xFFFF_FFFF;
const SAMPLE_PERIOD_US: u64 = 166_667;

/// The opaque `nvmlDevice_t` target: one per simulated GPU, never freed.
#[repr(C)]
pub struct Device {
    index: u32,
}

struct Loaded {
    sim: Simulation,
    clock: SimClock,
    devices: Box<[Device]>,
    /// MIG device handles: one per GPU instance of every GPU in MIG mode.
    migs: Box<[mig::MigDevice]>,
    /// Recently computed states: calls within one sampling pass see one consistent reading.
    states: Mutex<HashMap<u32, (Instant, Arc<GpuState>)>>,
}

static LOADED: OnceLock<Result<Loaded, String>> = OnceLock::new();
static INIT_COUNT: AtomicI64 = AtomicI64::new(0);
static REPORT_ONCE: Once = Once::new();
static EVENT_SETS: OnceLock<Mutex<HashSet<usize>>> = OnceLock::new();
static GPM_SAMPLES: OnceLock<Mutex<HashSet<usize>>> = OnceLock::new();

fn registry(r: &'static OnceLock<Mutex<HashSet<usize>>>) -> std::sync::MutexGuard<'static, HashSet<usize>> {
    r.get_or_init(|| Mutex::new(HashSet::new())).lock().unwrap_or_else(|e| e.into_inner())
}

fn load() -> &'static Result<Loaded, String> {
    LOADED.get_or_init(|| {
        let (sim, clock) = clock::from_env().map_err(|e| e.to_string())?;
        let devices = (0..sim.gpus().len() as u32).map(|index| Device { index }).collect();
        let migs = mig::devices(&sim);
        Ok(Loaded { sim, clock, devices, migs, states: Mutex::new(HashMap::new()) })
    })
}

fn init() -> Ret {
    match load() {
        Ok(_) => {
            INIT_COUNT.fetch_add(1, Ordering::SeqCst);
            SUCCESS
        }
        Err(msg) => {
            REPORT_ONCE.call_once(|| eprintln!("gpuscope NVML simulator: {msg}"));
            DRIVER_NOT_LOADED
        }
    }
}

fn loaded() -> Result<&'static Loaded, Ret> {
    if INIT_COUNT.load(Ordering::SeqCst) <= 0 {
        return Err(UNINITIALIZED);
    }
    match LOADED.get() {
        Some(Ok(l)) => Ok(l),
        _ => Err(UNINITIALIZED),
    }
}

fn device(dev: *mut c_void) -> Result<(&'static Loaded, u32), Ret> {
    let l = loaded()?;
    // A MIG device answers only the MIG-aware entry points (mig.rs); the rest are the parent's.
    if mig::is_mig(l, dev) {
        return Err(NOT_SUPPORTED);
    }
    let size = std::mem::size_of::<Device>();
    let base = l.devices.as_ptr() as usize;
    let p = dev as usize;
    if dev.is_null() || p < base || p >= base + l.devices.len() * size || !(p - base).is_multiple_of(size) {
        return Err(INVALID_ARGUMENT);
    }
    Ok((l, ((p - base) / size) as u32))
}

/// A device that has not fallen off the bus, with its static info and the scenario time.
fn live(dev: *mut c_void) -> Result<(&'static Loaded, &'static GpuInfo, f64), Ret> {
    let (l, i) = device(dev)?;
    let t = l.clock.now();
    if l.sim.gpu_lost(i, t) {
        return Err(GPU_IS_LOST);
    }
    Ok((l, &l.sim.gpus()[i as usize], t))
}

/// The device's full state now (cached for a few milliseconds).
fn state(dev: *mut c_void) -> Result<(&'static Loaded, &'static GpuInfo, Arc<GpuState>), Ret> {
    let (l, info, t) = live(dev)?;
    let mut cache = l.states.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, s)) = cache.get(&info.index)
        && (at.elapsed() < Duration::from_millis(5) || l.clock.frozen.is_some())
    {
        return Ok((l, info, s.clone()));
    }
    let s = Arc::new(l.sim.gpu(info.index, t).ok_or(UNKNOWN)?);
    cache.insert(info.index, (Instant::now(), s.clone()));
    Ok((l, info, s))
}

fn out<T>(p: *mut T, v: T) -> Result<(), Ret> {
    if p.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: the caller passed a pointer to a T it owns, as the NVML API requires.
    unsafe { p.write(v) };
    Ok(())
}

fn out_str(buf: *mut c_char, len: c_uint, s: &str) -> Result<(), Ret> {
    if buf.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    if s.len() + 1 > len as usize {
        return Err(INSUFFICIENT_SIZE);
    }
    // SAFETY: the buffer holds `len` bytes, and we write at most s.len() + 1 <= len.
    unsafe {
        std::ptr::copy_nonoverlapping(s.as_ptr(), buf.cast::<u8>(), s.len());
        *buf.add(s.len()) = 0;
    }
    Ok(())
}

/// Fills an array under NVML's count convention: a short (or NULL) buffer gets
/// INSUFFICIENT_SIZE and the needed count.
fn out_array<T>(count: *mut c_uint, buf: *mut T, items: Vec<T>) -> Result<(), Ret> {
    if count.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: `count` is non-null and points to the caller's c_uint.
    let cap = unsafe { *count } as usize;
    let n = items.len();
    // SAFETY: as above.
    unsafe { *count = n as c_uint };
    if n == 0 {
        return Ok(());
    }
    if buf.is_null() || cap < n {
        return Err(INSUFFICIENT_SIZE);
    }
    for (i, item) in items.into_iter().enumerate() {
        // SAFETY: the caller's buffer has room for `cap >= n` elements.
        unsafe { buf.add(i).write(item) };
    }
    Ok(())
}

macro_rules! nvml {
    ($( fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $body:block )*) => {$(
        #[unsafe(no_mangle)]
        #[allow(unused_variables)]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $crate::Ret {
            $crate::calls::count(stringify!($name));
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(
                || -> Result<(), $crate::Ret> { $body },
            ));
            match result {
                Ok(Ok(())) => $crate::SUCCESS,
                Ok(Err(code)) => code,
                Err(_) => $crate::UNKNOWN,
            }
        }
    )*};
}

/// `nvmlPciInfo_t` (v2/v3 layout).
#[repr(C)]
pub struct PciInfo {
    bus_id_legacy: [c_char; 16],
    domain: c_uint,
    bus: c_uint,
    device: c_uint,
    pci_device_id: c_uint,
    pci_sub_system_id: c_uint,
    bus_id: [c_char; 32],
}

/// The original `nvmlPciInfo_t` of `nvmlDeviceGetPciInfo`.
#[repr(C)]
pub struct PciInfoV1 {
    bus_id: [c_char; 16],
    domain: c_uint,
    bus: c_uint,
    device: c_uint,
    pci_device_id: c_uint,
    pci_sub_system_id: c_uint,
    reserved: [c_uint; 4],
}

/// `nvmlUtilization_t`.
#[repr(C)]
pub struct Utilization {
    gpu: c_uint,
    memory: c_uint,
}

/// `nvmlMemory_t`.
#[repr(C)]
pub struct Memory {
    total: c_ulonglong,
    free: c_ulonglong,
    used: c_ulonglong,
}

/// `nvmlMemory_v2_t`.
#[repr(C)]
pub struct MemoryV2 {
    version: c_uint,
    total: c_ulonglong,
    reserved: c_ulonglong,
    free: c_ulonglong,
    used: c_ulonglong,
}

/// `nvmlProcessInfo_v1_t`.
#[repr(C)]
pub struct ProcessInfoV1 {
    pid: c_uint,
    used_gpu_memory: c_ulonglong,
}

/// `nvmlProcessInfo_v2_t` (also the v3 entry point's element).
#[repr(C)]
pub struct ProcessInfo {
    pid: c_uint,
    used_gpu_memory: c_ulonglong,
    gpu_instance_id: c_uint,
    compute_instance_id: c_uint,
}

/// `nvmlProcessUtilizationSample_t`.
#[repr(C)]
pub struct ProcessUtilizationSample {
    pid: c_uint,
    time_stamp: c_ulonglong,
    sm_util: c_uint,
    mem_util: c_uint,
    enc_util: c_uint,
    dec_util: c_uint,
}

/// `nvmlEventData_t`.
#[repr(C)]
pub struct EventData {
    device: *mut c_void,
    event_type: c_ulonglong,
    event_data: c_ulonglong,
    gpu_instance_id: c_uint,
    compute_instance_id: c_uint,
}

/// `nvmlFieldValue_t`; the value union is 8 bytes.
#[repr(C)]
pub struct FieldValue {
    field_id: c_uint,
    scope_id: c_uint,
    timestamp: i64,
    latency_usec: i64,
    value_type: c_uint,
    nvml_return: Ret,
    value: u64,
}

/// `nvmlGpmSupport_t`.
#[repr(C)]
pub struct GpmSupport {
    version: c_uint,
    is_supported_device: c_uint,
}

/// `nvmlGpmMetric_t`'s name block.
#[repr(C)]
pub struct GpmMetricInfo {
    short_name: *const c_char,
    long_name: *const c_char,
    unit: *const c_char,
}

/// `nvmlGpmMetric_t`.
#[repr(C)]
pub struct GpmMetric {
    metric_id: c_uint,
    nvml_return: Ret,
    value: f64,
    info: GpmMetricInfo,
}

/// `nvmlGpmMetricsGet_t`.
#[repr(C)]
pub struct GpmMetricsGet {
    version: c_uint,
    num_metrics: c_uint,
    sample1: *mut c_void,
    sample2: *mut c_void,
    metrics: [GpmMetric; 210],
}

/// What a GPM sample holds: the device and the scenario time it was taken at.
struct GpmSample {
    taken: Option<(u32, f64)>,
    /// The GPU instance id, for a sample of one MIG instance (`nvmlGpmMigSampleGet`).
    instance: Option<u32>,
}

/// An event set: registered devices and the next event to deliver.
struct EventSet {
    devices: Mutex<HashMap<u32, u64>>,
    next: Mutex<usize>,
}

fn pct(x: f64) -> c_uint {
    (x * 100.0).round().clamp(0.0, 100.0) as c_uint
}

fn bus_ids(info: &GpuInfo) -> ([c_char; 16], [c_char; 32]) {
    let legacy = format!("0000:{:02X}:00.0", info.pci_bus);
    let mut a = [0 as c_char; 16];
    let mut b = [0 as c_char; 32];
    for (d, s) in a.iter_mut().zip(legacy.bytes()) {
        *d = s as c_char;
    }
    for (d, s) in b.iter_mut().zip(info.pci_bus_id.bytes()) {
        *d = s as c_char;
    }
    (a, b)
}

fn now_us() -> u64 {
    (unix_now() * 1e6) as u64
}

fn cstr_arg<'a>(p: *const c_char) -> Result<&'a str, Ret> {
    if p.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: the caller passes a NUL-terminated string.
    unsafe { CStr::from_ptr(p) }.to_str().map_err(|_| INVALID_ARGUMENT)
}

fn handle(l: &'static Loaded, index: u32) -> *mut c_void {
    (&l.devices[index as usize] as *const Device).cast_mut().cast()
}

nvml! {
    fn nvmlInit() { match init() { SUCCESS => Ok(()), e => Err(e) } }
    fn nvmlInit_v2() { match init() { SUCCESS => Ok(()), e => Err(e) } }
    fn nvmlInitWithFlags(flags: c_uint) { match init() { SUCCESS => Ok(()), e => Err(e) } }
    fn nvmlShutdown() {
        let prev = INIT_COUNT.fetch_sub(1, Ordering::SeqCst);
        if prev <= 0 {
            INIT_COUNT.fetch_add(1, Ordering::SeqCst);
            return Err(UNINITIALIZED);
        }
        Ok(())
    }

    fn nvmlSystemGetDriverVersion(version: *mut c_char, length: c_uint) {
        let l = loaded()?;
        out_str(version, length, &l.sim.scenario().node.driver_version)
    }
    fn nvmlSystemGetNVMLVersion(version: *mut c_char, length: c_uint) {
        let l = loaded()?;
        let v = format!("12.{}", l.sim.scenario().node.driver_version);
        out_str(version, length, &v)
    }
    fn nvmlSystemGetCudaDriverVersion(v: *mut c_int) {
        let l = loaded()?;
        out(v, l.sim.scenario().node.cuda_version as c_int)
    }
    fn nvmlSystemGetCudaDriverVersion_v2(v: *mut c_int) {
        let l = loaded()?;
        out(v, l.sim.scenario().node.cuda_version as c_int)
    }
    fn nvmlSystemGetProcessName(pid: c_uint, name: *mut c_char, length: c_uint) {
        let l = loaded()?;
        let t = l.clock.now();
        let p = l.sim.processes(t).into_iter().find(|p| p.pid == pid).ok_or(NOT_FOUND)?;
        let full = p.cmdline.first().cloned().unwrap_or_else(|| p.name.clone());
        out_str(name, length, &full)
    }

    fn nvmlDeviceGetCount(count: *mut c_uint) { out(count, loaded()?.devices.len() as c_uint) }
    fn nvmlDeviceGetCount_v2(count: *mut c_uint) { out(count, loaded()?.devices.len() as c_uint) }
    fn nvmlDeviceGetHandleByIndex(index: c_uint, dev: *mut *mut c_void) {
        let l = loaded()?;
        if index as usize >= l.devices.len() { return Err(INVALID_ARGUMENT); }
        out(dev, handle(l, index))
    }
    fn nvmlDeviceGetHandleByIndex_v2(index: c_uint, dev: *mut *mut c_void) {
        let l = loaded()?;
        if index as usize >= l.devices.len() { return Err(INVALID_ARGUMENT); }
        out(dev, handle(l, index))
    }
    fn nvmlDeviceGetHandleByUUID(uuid: *const c_char, dev: *mut *mut c_void) {
        let l = loaded()?;
        let uuid = cstr_arg(uuid)?;
        let g = l.sim.gpus().iter().find(|g| g.uuid == uuid).ok_or(NOT_FOUND)?;
        out(dev, handle(l, g.index))
    }
    fn nvmlDeviceGetHandleByPciBusId_v2(bus_id: *const c_char, dev: *mut *mut c_void) {
        let l = loaded()?;
        let id = cstr_arg(bus_id)?.to_ascii_uppercase();
        let g = l.sim.gpus().iter().find(|g| g.pci_bus_id == id || g.pci_bus_id.ends_with(&id)).ok_or(NOT_FOUND)?;
        out(dev, handle(l, g.index))
    }
    fn nvmlDeviceGetIndex(dev: *mut c_void, index: *mut c_uint) { let (_, i) = device(dev)?; out(index, i) }
    fn nvmlDeviceGetMinorNumber(dev: *mut c_void, minor: *mut c_uint) { let (_, g, _) = live(dev)?; out(minor, g.index) }

    fn nvmlDeviceGetName(dev: *mut c_void, name: *mut c_char, length: c_uint) {
        if let Some(m) = mig::lookup(dev)? { return out_str(name, length, &mig::name(m)); }
        let (_, g, _) = live(dev)?;
        out_str(name, length, g.preset.name)
    }
    fn nvmlDeviceGetUUID(dev: *mut c_void, uuid: *mut c_char, length: c_uint) {
        if let Some(m) = mig::lookup(dev)? { return out_str(uuid, length, &mig::uuid(m)); }
        let (_, g, _) = live(dev)?;
        out_str(uuid, length, &g.uuid)
    }
    fn nvmlDeviceGetSerial(dev: *mut c_void, serial: *mut c_char, length: c_uint) {
        let (_, g, _) = live(dev)?;
        out_str(serial, length, &g.serial)
    }
    fn nvmlDeviceGetVbiosVersion(dev: *mut c_void, version: *mut c_char, length: c_uint) {
        let (_, g, _) = live(dev)?;
        out_str(version, length, &format!("96.00.{:02X}.00.01", g.preset.pci_device_id & 0xff))
    }
    fn nvmlDeviceGetPciInfo(dev: *mut c_void, pci: *mut PciInfoV1) {
        let (_, g, _) = live(dev)?;
        let (legacy, _) = bus_ids(g);
        out(pci, PciInfoV1 {
            bus_id: legacy, domain: 0, bus: g.pci_bus, device: 0,
            pci_device_id: (g.preset.pci_device_id << 16) | 0x10DE, pci_sub_system_id: (0x16C1 << 16) | 0x10DE,
            reserved: [0; 4],
        })
    }
    fn nvmlDeviceGetPciInfo_v2(dev: *mut c_void, pci: *mut PciInfo) { pci_info(dev, pci) }
    fn nvmlDeviceGetPciInfo_v3(dev: *mut c_void, pci: *mut PciInfo) { pci_info(dev, pci) }
    fn nvmlDeviceGetCudaComputeCapability(dev: *mut c_void, major: *mut c_int, minor: *mut c_int) {
        let (_, g, _) = live(dev)?;
        out(major, g.preset.compute_capability.0 as c_int)?;
        out(minor, g.preset.compute_capability.1 as c_int)
    }
    fn nvmlDeviceGetArchitecture(dev: *mut c_void, arch: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        let a = match g.preset.compute_capability {
            (7, 0) => 5,
            (7, 5) => 6,
            (8, 9) => 8,
            (8, _) => 7,
            (9, _) => 9,
            _ => NOT_AVAILABLE_U32,
        };
        out(arch, a)
    }
    fn nvmlDeviceGetPersistenceMode(dev: *mut c_void, mode: *mut c_uint) { live(dev)?; out(mode, 1) }
    fn nvmlDeviceGetComputeMode(dev: *mut c_void, mode: *mut c_uint) { live(dev)?; out(mode, 0) }
    fn nvmlDeviceGetPerformanceState(dev: *mut c_void, pstate: *mut c_uint) {
        // P0 while the GPU is busy or holds a context; an idle GPU with no process drops to P8,
        // as datacenter boards do.
        let (_, _, s) = state(dev)?;
        let held = !gpu_processes(dev)?.is_empty();
        out(pstate, if s.util > 0.0 || held { 0 } else { 8 })
    }
    fn nvmlDeviceGetMigMode(dev: *mut c_void, current: *mut c_uint, pending: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        // MIG exists on A100 and H100 class parts only.
        if !(g.preset.compute_capability == (8, 0) || g.preset.compute_capability.0 >= 9) {
            return Err(NOT_SUPPORTED);
        }
        out(current, u32::from(g.mig))?;
        out(pending, u32::from(g.mig))
    }

    fn nvmlDeviceGetUtilizationRates(dev: *mut c_void, u: *mut Utilization) {
        let (_, g, s) = state(dev)?;
        // "On MIG-enabled GPUs, querying device utilization rates is not currently supported" (nvml.h).
        if g.mig { return Err(NOT_SUPPORTED); }
        out(u, Utilization { gpu: pct(s.util), memory: pct(s.mem_util) })
    }
    fn nvmlDeviceGetEncoderUtilization(dev: *mut c_void, util: *mut c_uint, period_us: *mut c_uint) {
        let (_, g, s) = state(dev)?;
        if !g.preset.encoder { return Err(NOT_SUPPORTED); }
        out(util, pct(s.enc_util))?;
        out(period_us, 1_000_000)
    }
    fn nvmlDeviceGetDecoderUtilization(dev: *mut c_void, util: *mut c_uint, period_us: *mut c_uint) {
        let (_, g, s) = state(dev)?;
        if !g.preset.decoder { return Err(NOT_SUPPORTED); }
        out(util, pct(s.dec_util))?;
        out(period_us, 1_000_000)
    }

    fn nvmlDeviceGetMemoryInfo(dev: *mut c_void, m: *mut Memory) {
        if let Some(d) = mig::lookup(dev)? {
            let (total, used) = mig::memory(d);
            return out(m, Memory { total, free: total - used, used });
        }
        let (_, _, s) = state(dev)?;
        // v1 has no "reserved": the driver's reservation counts as used.
        out(m, Memory { total: s.memory_total, free: s.memory_free, used: s.memory_total - s.memory_free })
    }
    fn nvmlDeviceGetMemoryInfo_v2(dev: *mut c_void, m: *mut MemoryV2) {
        if m.is_null() { return Err(INVALID_ARGUMENT); }
        let expected = (std::mem::size_of::<MemoryV2>() as c_uint) | (2 << 24);
        // SAFETY: non-null, points to the caller's struct whose version it set.
        if unsafe { (*m).version } != expected { return Err(ARGUMENT_VERSION_MISMATCH); }
        if let Some(d) = mig::lookup(dev)? {
            let (total, used) = mig::memory(d);
            return out(m, MemoryV2 { version: expected, total, reserved: 0, free: total - used, used });
        }
        let (_, _, s) = state(dev)?;
        out(m, MemoryV2 { version: expected, total: s.memory_total, reserved: s.memory_reserved, free: s.memory_free, used: s.memory_used })
    }

    fn nvmlDeviceGetTemperature(dev: *mut c_void, sensor: c_uint, temp: *mut c_uint) {
        if sensor != 0 { return Err(INVALID_ARGUMENT); }
        let (_, _, s) = state(dev)?;
        out(temp, s.temp_c.round().max(0.0) as c_uint)
    }
    fn nvmlDeviceGetTemperatureThreshold(dev: *mut c_void, kind: c_uint, temp: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        let p = g.preset;
        let v = match kind {
            0 => p.shutdown_temp_c,
            1 => p.slowdown_temp_c,
            2 if p.memory_temperature => 95,
            3 => p.slowdown_temp_c - 3,
            2 | 4..=7 => return Err(NOT_SUPPORTED),
            _ => return Err(INVALID_ARGUMENT),
        };
        out(temp, v)
    }
    fn nvmlDeviceGetFanSpeed(dev: *mut c_void, speed: *mut c_uint) { fan::speed(dev, 0, speed) }
    fn nvmlDeviceGetFanSpeed_v2(dev: *mut c_void, fan: c_uint, speed: *mut c_uint) { fan::speed(dev, fan, speed) }
    fn nvmlDeviceGetNumFans(dev: *mut c_void, n: *mut c_uint) { fan::count(dev, n) }

    fn nvmlDeviceGetPowerUsage(dev: *mut c_void, mw: *mut c_uint) {
        let (_, _, s) = state(dev)?;
        out(mw, (s.power_w * 1000.0).round() as c_uint)
    }
    fn nvmlDeviceGetTotalEnergyConsumption(dev: *mut c_void, mj: *mut c_ulonglong) {
        let (_, _, s) = state(dev)?;
        out(mj, (s.energy_j * 1000.0).floor() as c_ulonglong)
    }
    fn nvmlDeviceGetPowerManagementLimit(dev: *mut c_void, mw: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        out(mw, (g.power_limit_w * 1000.0) as c_uint)
    }
    fn nvmlDeviceGetEnforcedPowerLimit(dev: *mut c_void, mw: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        out(mw, (g.power_limit_w * 1000.0) as c_uint)
    }
    fn nvmlDeviceGetPowerManagementDefaultLimit(dev: *mut c_void, mw: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        out(mw, (g.preset.power_default_w * 1000.0) as c_uint)
    }
    fn nvmlDeviceGetPowerManagementLimitConstraints(dev: *mut c_void, min: *mut c_uint, max: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        out(min, (g.preset.power_min_w * 1000.0) as c_uint)?;
        out(max, (g.preset.power_max_w * 1000.0) as c_uint)
    }

    fn nvmlDeviceGetClockInfo(dev: *mut c_void, kind: c_uint, mhz: *mut c_uint) {
        let (_, _, s) = state(dev)?;
        let v = match kind {
            0 | 1 => s.sm_clock_mhz,
            2 => s.mem_clock_mhz,
            3 => s.sm_clock_mhz * 0.9,
            _ => return Err(INVALID_ARGUMENT),
        };
        out(mhz, v.round() as c_uint)
    }
    fn nvmlDeviceGetMaxClockInfo(dev: *mut c_void, kind: c_uint, mhz: *mut c_uint) {
        let (_, g, _) = live(dev)?;
        let v = match kind {
            0 | 1 => g.preset.max_sm_clock_mhz,
            2 => g.preset.max_mem_clock_mhz,
            // 0.9 × the SM clock, rounded as the current video clock is: never below it.
            3 => (g.preset.max_sm_clock_mhz * 9 + 5) / 10,
            _ => return Err(INVALID_ARGUMENT),
        };
        out(mhz, v)
    }
    fn nvmlDeviceGetCurrentClocksThrottleReasons(dev: *mut c_void, r: *mut c_ulonglong) {
        let (_, _, s) = state(dev)?;
        out(r, s.throttle)
    }
    fn nvmlDeviceGetCurrentClocksEventReasons(dev: *mut c_void, r: *mut c_ulonglong) {
        let (_, _, s) = state(dev)?;
        out(r, s.throttle)
    }
    fn nvmlDeviceGetSupportedClocksThrottleReasons(dev: *mut c_void, r: *mut c_ulonglong) { live(dev)?; out(r, 0xff) }
    fn nvmlDeviceGetSupportedClocksEventReasons(dev: *mut c_void, r: *mut c_ulonglong) { live(dev)?; out(r, 0xff) }

    fn nvmlDeviceGetPcieThroughput(dev: *mut c_void, counter: c_uint, kbps: *mut c_uint) {
        let (_, _, s) = state(dev)?;
        let v = match counter {
            0 => s.pcie_tx,
            1 => s.pcie_rx,
            _ => return Err(INVALID_ARGUMENT),
        };
        out(kbps, (v / 1024.0).round() as c_uint)
    }
    fn nvmlDeviceGetCurrPcieLinkGeneration(dev: *mut c_void, g: *mut c_uint) { let (_, _, s) = state(dev)?; out(g, s.pcie_gen) }
    fn nvmlDeviceGetCurrPcieLinkWidth(dev: *mut c_void, w: *mut c_uint) { let (_, _, s) = state(dev)?; out(w, s.pcie_width) }
    fn nvmlDeviceGetMaxPcieLinkGeneration(dev: *mut c_void, g: *mut c_uint) { let (_, i, _) = live(dev)?; out(g, i.preset.pcie_gen) }
    fn nvmlDeviceGetGpuMaxPcieLinkGeneration(dev: *mut c_void, g: *mut c_uint) { let (_, i, _) = live(dev)?; out(g, i.preset.pcie_gen) }
    fn nvmlDeviceGetMaxPcieLinkWidth(dev: *mut c_void, w: *mut c_uint) { let (_, i, _) = live(dev)?; out(w, i.preset.pcie_width) }
    fn nvmlDeviceGetPcieReplayCounter(dev: *mut c_void, n: *mut c_uint) {
        let (_, _, s) = state(dev)?;
        out(n, s.pcie_replays as c_uint)
    }

    fn nvmlDeviceGetNvLinkState(dev: *mut c_void, link: c_uint, active: *mut c_uint) {
        let (_, _, s) = link_state(dev, link)?;
        out(active, u32::from(s.links[link as usize].active))
    }
    fn nvmlDeviceGetNvLinkVersion(dev: *mut c_void, link: c_uint, version: *mut c_uint) {
        let (_, g, _) = link_state(dev, link)?;
        out(version, match g.preset.compute_capability.0 { 7 => 2, 8 => 3, _ => 4 })
    }
    fn nvmlDeviceGetNvLinkErrorCounter(dev: *mut c_void, link: c_uint, counter: c_uint, value: *mut c_ulonglong) {
        let (_, _, s) = link_state(dev, link)?;
        let l = &s.links[link as usize];
        let v = match counter {
            0 => l.replay_errors,
            1 => l.recovery_errors,
            2 | 3 => l.crc_errors,
            4 => 0,
            _ => return Err(INVALID_ARGUMENT),
        };
        out(value, v)
    }
    fn nvmlDeviceGetNvLinkUtilizationCounter(dev: *mut c_void, link: c_uint, counter: c_uint, rx: *mut c_ulonglong, tx: *mut c_ulonglong) {
        live(dev)?;
        Err(NOT_SUPPORTED)
    }

    fn nvmlDeviceGetEccMode(dev: *mut c_void, current: *mut c_uint, pending: *mut c_uint) {
        live(dev)?;
        out(current, 1)?;
        out(pending, 1)
    }
    fn nvmlDeviceGetTotalEccErrors(dev: *mut c_void, error_type: c_uint, counter_type: c_uint, count: *mut c_ulonglong) {
        let (_, _, s) = state(dev)?;
        let v = match (error_type, counter_type) {
            (0, 0) => s.ecc_corrected_volatile,
            (1, 0) => s.ecc_uncorrected_volatile,
            (0, 1) => s.ecc_corrected_aggregate,
            (1, 1) => s.ecc_uncorrected_aggregate,
            _ => return Err(INVALID_ARGUMENT),
        };
        out(count, v)
    }
    fn nvmlDeviceGetRetiredPages(dev: *mut c_void, cause: c_uint, count: *mut c_uint, addresses: *mut c_ulonglong) {
        let pages = retired_pages(dev, cause)?;
        out_array(count, addresses, pages)
    }
    fn nvmlDeviceGetRetiredPages_v2(dev: *mut c_void, cause: c_uint, count: *mut c_uint, addresses: *mut c_ulonglong, timestamps: *mut c_ulonglong) {
        let pages = retired_pages(dev, cause)?;
        let stamps = vec![now_us() / 1_000_000; pages.len()];
        if !count.is_null() && !timestamps.is_null() && unsafe { *count } as usize >= pages.len() {
            for (i, ts) in stamps.into_iter().enumerate() {
                // SAFETY: the caller's timestamp buffer has `*count` elements.
                unsafe { timestamps.add(i).write(ts) };
            }
        }
        out_array(count, addresses, pages)
    }
    fn nvmlDeviceGetRetiredPagesPendingStatus(dev: *mut c_void, pending: *mut c_uint) {
        let (_, g, s) = state(dev)?;
        if g.preset.row_remapping { return Err(NOT_SUPPORTED); }
        out(pending, u32::from(s.retired_pending))
    }
    fn nvmlDeviceGetRemappedRows(dev: *mut c_void, corr: *mut c_uint, unc: *mut c_uint, pending: *mut c_uint, failed: *mut c_uint) {
        let (_, g, s) = state(dev)?;
        if !g.preset.row_remapping { return Err(NOT_SUPPORTED); }
        out(corr, s.remapped_correctable as c_uint)?;
        out(unc, s.remapped_uncorrectable as c_uint)?;
        out(pending, u32::from(s.remap_pending))?;
        out(failed, u32::from(s.remap_failed))
    }

    fn nvmlDeviceGetFieldValues(dev: *mut c_void, count: c_int, values: *mut FieldValue) {
        let (l, g, t) = live(dev)?;
        if values.is_null() || count < 0 { return Err(INVALID_ARGUMENT); }
        // Counters and timestamp from one instant (not the few-ms state cache). The timestamp is
        // wall time, as a real driver's is: in compressed time the counters run `speed` times
        // faster, exactly like the /proc counters, and the analysis scales every rate back the
        // same way; with a frozen clock they stand still, a measured 0.
        let s = l.sim.gpu(g.index, t).ok_or(UNKNOWN)?;
        // The wall instant of `t` itself, so counters and stamp agree to the microsecond.
        let ts = (l.clock.unix_at(t) * 1e6) as i64;
        for i in 0..count as usize {
            // SAFETY: the caller passes `count` initialised field requests.
            let fv = unsafe { &mut *values.add(i) };
            let (ret, vtype, value) = field_value(g, &s, fv.field_id, fv.scope_id);
            fv.timestamp = ts;
            fv.latency_usec = 0;
            fv.nvml_return = ret;
            fv.value_type = vtype;
            fv.value = value;
        }
        Ok(())
    }

    fn nvmlDeviceGetComputeRunningProcesses(dev: *mut c_void, count: *mut c_uint, infos: *mut ProcessInfoV1) {
        let procs = gpu_processes(dev)?;
        out_array(count, infos, procs.into_iter().map(|p| ProcessInfoV1 { pid: p.pid, used_gpu_memory: p.used_gpu_memory }).collect())
    }
    fn nvmlDeviceGetComputeRunningProcesses_v2(dev: *mut c_void, count: *mut c_uint, infos: *mut ProcessInfo) {
        let procs = gpu_processes(dev)?;
        out_array(count, infos, procs)
    }
    fn nvmlDeviceGetComputeRunningProcesses_v3(dev: *mut c_void, count: *mut c_uint, infos: *mut ProcessInfo) {
        let procs = gpu_processes(dev)?;
        out_array(count, infos, procs)
    }
    fn nvmlDeviceGetGraphicsRunningProcesses_v3(dev: *mut c_void, count: *mut c_uint, infos: *mut ProcessInfo) {
        if mig::lookup(dev)?.is_some() { return out_array::<ProcessInfo>(count, infos, Vec::new()); }
        live(dev)?;
        out_array::<ProcessInfo>(count, infos, Vec::new())
    }
    fn nvmlDeviceGetMPSComputeRunningProcesses_v3(dev: *mut c_void, count: *mut c_uint, infos: *mut ProcessInfo) {
        if mig::lookup(dev)?.is_some() { return out_array::<ProcessInfo>(count, infos, Vec::new()); }
        live(dev)?;
        out_array::<ProcessInfo>(count, infos, Vec::new())
    }
    fn nvmlDeviceGetProcessUtilization(dev: *mut c_void, samples: *mut ProcessUtilizationSample, count: *mut c_uint, last_seen: c_ulonglong) {
        let (l, g, _) = live(dev)?;
        // The driver samples every 1/6 s; report the newest sample, if newer than last_seen.
        let ts = now_us() / SAMPLE_PERIOD_US * SAMPLE_PERIOD_US;
        if ts <= last_seen {
            return Err(NOT_FOUND);
        }
        let t = l.clock.at_unix(ts as f64 / 1e6);
        let procs = l.sim.gpu_processes(g.index, t);
        if procs.is_empty() {
            return Err(NOT_FOUND);
        }
        let items = procs
            .into_iter()
            .map(|p| ProcessUtilizationSample { pid: p.pid, time_stamp: ts, sm_util: pct(p.sm_util), mem_util: pct(p.mem_util), enc_util: pct(p.enc_util), dec_util: pct(p.dec_util) })
            .collect();
        out_array(count, samples, items)
    }

    fn nvmlEventSetCreate(set: *mut *mut c_void) {
        let l = loaded()?;
        let now = l.clock.now();
        let next = l.sim.events().iter().take_while(|e| e.at_s <= now).count();
        let es = Box::into_raw(Box::new(EventSet { devices: Mutex::new(HashMap::new()), next: Mutex::new(next) }));
        registry(&EVENT_SETS).insert(es as usize);
        out(set, es.cast())
    }
    fn nvmlDeviceGetSupportedEventTypes(dev: *mut c_void, types: *mut c_ulonglong) { live(dev)?; out(types, EVENT_XID) }
    fn nvmlDeviceRegisterEvents(dev: *mut c_void, types: c_ulonglong, set: *mut c_void) {
        let (_, g, _) = live(dev)?;
        let es = event_set(set)?;
        if types & !EVENT_XID != 0 { return Err(NOT_SUPPORTED); }
        es.devices.lock().unwrap_or_else(|e| e.into_inner()).insert(g.index, types);
        Ok(())
    }
    fn nvmlEventSetWait(set: *mut c_void, data: *mut EventData, timeout_ms: c_uint) { event_wait(set, data, timeout_ms) }
    fn nvmlEventSetWait_v2(set: *mut c_void, data: *mut EventData, timeout_ms: c_uint) { event_wait(set, data, timeout_ms) }
    fn nvmlEventSetFree(set: *mut c_void) {
        if !registry(&EVENT_SETS).remove(&(set as usize)) { return Err(INVALID_ARGUMENT); }
        // SAFETY: the pointer came from Box::into_raw in nvmlEventSetCreate and was still registered.
        drop(unsafe { Box::from_raw(set.cast::<EventSet>()) });
        Ok(())
    }

    fn nvmlGpmQueryDeviceSupport(dev: *mut c_void, support: *mut GpmSupport) {
        let (_, g, _) = live(dev)?;
        if support.is_null() { return Err(INVALID_ARGUMENT); }
        // SAFETY: non-null caller struct with its version set.
        if unsafe { (*support).version } != 1 { return Err(ARGUMENT_VERSION_MISMATCH); }
        out(support, GpmSupport { version: 1, is_supported_device: u32::from(g.preset.gpm) })
    }
    fn nvmlGpmQueryIfStreamingEnabled(dev: *mut c_void, state: *mut c_uint) { gpm_device(dev)?; out(state, 0) }
    fn nvmlGpmSetStreamingEnabled(dev: *mut c_void, state: c_uint) { gpm_device(dev)?; Err(NOT_SUPPORTED) }
    fn nvmlGpmSampleAlloc(sample: *mut *mut c_void) {
        if sample.is_null() { return Err(INVALID_ARGUMENT); }
        let p = Box::into_raw(Box::new(GpmSample { taken: None, instance: None }));
        registry(&GPM_SAMPLES).insert(p as usize);
        out(sample, p.cast())
    }
    fn nvmlGpmSampleFree(sample: *mut c_void) {
        if !registry(&GPM_SAMPLES).remove(&(sample as usize)) { return Err(INVALID_ARGUMENT); }
        // SAFETY: allocated by nvmlGpmSampleAlloc and still registered.
        drop(unsafe { Box::from_raw(sample.cast::<GpmSample>()) });
        Ok(())
    }
    fn nvmlGpmSampleGet(dev: *mut c_void, sample: *mut c_void) {
        let (l, g) = gpm_device(dev)?;
        if !registry(&GPM_SAMPLES).contains(&(sample as usize)) { return Err(INVALID_ARGUMENT); }
        gpm_fault(l, g)?;
        // SAFETY: a live sample allocated by nvmlGpmSampleAlloc.
        unsafe { *sample.cast::<GpmSample>() = GpmSample { taken: Some((g.index, l.clock.now())), instance: None } };
        Ok(())
    }
    fn nvmlGpmMigSampleGet(dev: *mut c_void, gpu_instance_id: c_uint, sample: *mut c_void) {
        let (l, g) = gpm_device(dev)?;
        if !g.mig_instances.iter().any(|i| i.gpu_instance_id == gpu_instance_id) { return Err(NOT_FOUND); }
        if !registry(&GPM_SAMPLES).contains(&(sample as usize)) { return Err(INVALID_ARGUMENT); }
        gpm_fault(l, g)?;
        // SAFETY: a live sample allocated by nvmlGpmSampleAlloc.
        unsafe { *sample.cast::<GpmSample>() = GpmSample { taken: Some((g.index, l.clock.now())), instance: Some(gpu_instance_id) } };
        Ok(())
    }
    fn nvmlGpmMetricsGet(mg: *mut GpmMetricsGet) { gpm_metrics_get(mg) }
}

fn pci_info(dev: *mut c_void, pci: *mut PciInfo) -> Result<(), Ret> {
    let (_, g, _) = live(dev)?;
    let (legacy, full) = bus_ids(g);
    out(
        pci,
        PciInfo {
            bus_id_legacy: legacy,
            domain: 0,
            bus: g.pci_bus,
            device: 0,
            pci_device_id: (g.preset.pci_device_id << 16) | 0x10DE,
            pci_sub_system_id: (0x16C1 << 16) | 0x10DE,
            bus_id: full,
        },
    )
}

fn link_state(dev: *mut c_void, link: c_uint) -> Result<(&'static Loaded, &'static GpuInfo, Arc<GpuState>), Ret> {
    let (l, g, s) = state(dev)?;
    if g.preset.nvlinks == 0 {
        return Err(NOT_SUPPORTED);
    }
    if link >= g.preset.nvlinks {
        return Err(INVALID_ARGUMENT);
    }
    Ok((l, g, s))
}

fn retired_pages(dev: *mut c_void, cause: c_uint) -> Result<Vec<c_ulonglong>, Ret> {
    let (_, g, s) = state(dev)?;
    if g.preset.row_remapping {
        return Err(NOT_SUPPORTED);
    }
    // The simulator retires pages for double-bit errors (cause 1) only.
    let n = match cause {
        0 => 0,
        1 => s.retired_pages,
        _ => return Err(INVALID_ARGUMENT),
    };
    Ok((0..n).map(|i| 0x4_0000 + i * 0x1_3000 + u64::from(g.index) * 0x100_0000).collect())
}

/// The compute processes of a GPU, or of one MIG device; with MIG on, each names its GPU and
/// compute instance.
fn gpu_processes(dev: *mut c_void) -> Result<Vec<ProcessInfo>, Ret> {
    let (l, g, only) = match mig::lookup(dev)? {
        Some(m) => (m.loaded, m.gpu, Some(m.slot)),
        None => {
            let (l, g, _) = live(dev)?;
            (l, g, None)
        }
    };
    let t = l.clock.now();
    if l.sim.failing(gpuscope_sim::scenario::FaultKind::Processes, g.index, t) {
        return Err(UNKNOWN);
    }
    Ok(l.sim
        .gpu_processes(g.index, t)
        .into_iter()
        .filter(|p| only.is_none() || p.mig_instance == only)
        .map(|p| {
            let inst = p.mig_instance.and_then(|i| g.mig_instances.get(i as usize));
            ProcessInfo {
                pid: p.pid,
                used_gpu_memory: p.memory_bytes,
                gpu_instance_id: inst.map_or(NOT_AVAILABLE_U32, |i| i.gpu_instance_id),
                compute_instance_id: inst.map_or(NOT_AVAILABLE_U32, |i| i.compute_instance_id),
            }
        })
        .collect())
}

fn field_value(g: &GpuInfo, s: &GpuState, id: c_uint, scope: c_uint) -> (Ret, c_uint, u64) {
    const DOUBLE: c_uint = 0;
    const UINT: c_uint = 1;
    const ULL: c_uint = 3;
    let p = g.preset;
    let link = |l: u32| s.links.get(l as usize);
    let total = |f: fn(&gpuscope_sim::engine::LinkState) -> u64| s.links.iter().map(f).sum::<u64>();
    let ok = |t: c_uint, v: u64| (SUCCESS, t, v);
    let nvlink_only = |v: Option<u64>| match v {
        _ if p.nvlinks == 0 => (NOT_SUPPORTED, ULL, 0),
        Some(v) => (SUCCESS, ULL, v),
        None => (INVALID_ARGUMENT, ULL, 0),
    };
    match id {
        // ECC mode current and pending: on, as nvmlDeviceGetEccMode answers.
        1 | 2 => ok(UINT, 1),
        3 => ok(ULL, s.ecc_corrected_volatile),
        4 => ok(ULL, s.ecc_uncorrected_volatile),
        5 => ok(ULL, s.ecc_corrected_aggregate),
        6 => ok(ULL, s.ecc_uncorrected_aggregate),
        29..=31 if p.row_remapping => (NOT_SUPPORTED, UINT, 0),
        29 => ok(UINT, 0),
        30 => ok(UINT, s.retired_pages),
        31 => ok(UINT, u64::from(s.retired_pending)),
        39..=44 => nvlink_only(link(id - 39).map(|l| l.crc_errors)),
        45 => nvlink_only(Some(total(|l| l.crc_errors))),
        46..=51 => nvlink_only(link(id - 46).map(|l| l.replay_errors)),
        52 => nvlink_only(Some(total(|l| l.replay_errors))),
        53..=58 => nvlink_only(link(id - 53).map(|l| l.recovery_errors)),
        59 => nvlink_only(Some(total(|l| l.recovery_errors))),
        82 if p.memory_temperature => ok(UINT, s.mem_temp_c.round().max(0.0) as u64),
        83 => ok(ULL, (s.energy_j * 1000.0) as u64),
        90 if p.nvlinks > 0 => ok(UINT, (p.nvlink_link_bytes_per_second * 8.0 / 1e6 / 1.0) as u64),
        91 => ok(UINT, u64::from(p.nvlinks)),
        94 => ok(UINT, s.pcie_replays),
        138 => nvlink_only(link(scope).map(|l| (l.tx_bytes / 1024.0) as u64)),
        139 => nvlink_only(link(scope).map(|l| (l.rx_bytes / 1024.0) as u64)),
        142..=145 if !p.row_remapping => (NOT_SUPPORTED, UINT, 0),
        142 => ok(UINT, s.remapped_correctable),
        143 => ok(UINT, s.remapped_uncorrectable),
        144 => ok(UINT, u64::from(s.remap_pending)),
        145 => ok(UINT, u64::from(s.remap_failed)),
        161 => nvlink_only(link(scope).map(|l| l.replay_errors)),
        162 => nvlink_only(link(scope).map(|l| l.recovery_errors)),
        163 => nvlink_only(link(scope).map(|l| l.crc_errors)),
        165 => nvlink_only(link(scope).map(|l| u64::from(l.active))),
        // The 1 s average (what nvmlDeviceGetPowerUsage reports on these models) and the
        // instantaneous draw: one value in the simulator.
        185 | 186 => ok(UINT, (s.power_w * 1000.0).round() as u64),
        187 => ok(UINT, (p.power_min_w * 1000.0) as u64),
        188 => ok(UINT, (p.power_max_w * 1000.0) as u64),
        189 => ok(UINT, (p.power_default_w * 1000.0) as u64),
        190 => ok(UINT, (g.power_limit_w * 1000.0) as u64),
        197 => ok(ULL, s.pcie_tx_bytes as u64),
        198 => ok(ULL, s.pcie_rx_bytes as u64),
        _ => (NOT_SUPPORTED, DOUBLE, 0),
    }
}

fn event_set(set: *mut c_void) -> Result<&'static EventSet, Ret> {
    if !registry(&EVENT_SETS).contains(&(set as usize)) {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: registered sets are live Box allocations, freed only by nvmlEventSetFree.
    Ok(unsafe { &*set.cast::<EventSet>() })
}

fn event_wait(set: *mut c_void, data: *mut EventData, timeout_ms: c_uint) -> Result<(), Ret> {
    let l = loaded()?;
    let es = event_set(set)?;
    if data.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    let deadline = Instant::now() + Duration::from_millis(u64::from(timeout_ms));
    loop {
        let now = l.clock.now();
        {
            let mut next = es.next.lock().unwrap_or_else(|e| e.into_inner());
            let devices = es.devices.lock().unwrap_or_else(|e| e.into_inner());
            while let Some(e) = l.sim.events().get(*next) {
                if e.at_s > now {
                    break;
                }
                *next += 1;
                let wanted = devices.get(&e.gpu).is_some_and(|types| types & EVENT_XID != 0);
                if e.kind == gpuscope_sim::scenario::EventKind::Xid && wanted {
                    return out(
                        data,
                        EventData {
                            device: handle(l, e.gpu),
                            event_type: EVENT_XID,
                            event_data: e.code.unwrap_or(0),
                            gpu_instance_id: NOT_AVAILABLE_U32,
                            compute_instance_id: NOT_AVAILABLE_U32,
                        },
                    );
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(TIMEOUT);
        }
        // Sleep until the next event is due (or the timeout), like a driver blocking in the
        // kernel: polling here would bill the caller for a busy loop a real GPU never costs.
        let next_due = {
            let next = *es.next.lock().unwrap_or_else(|e| e.into_inner());
            l.sim.events().get(next).map(|e| l.clock.unix_at(e.at_s) - unix_now())
        };
        let until_event = match (next_due, l.clock.frozen) {
            (Some(secs), None) => Duration::from_secs_f64(secs.max(0.001)),
            _ => left,
        };
        std::thread::sleep(left.min(until_event));
    }
}

fn gpm_device(dev: *mut c_void) -> Result<(&'static Loaded, &'static GpuInfo), Ret> {
    let (l, g, _) = live(dev)?;
    if !g.preset.gpm {
        return Err(NOT_SUPPORTED);
    }
    Ok((l, g))
}

/// A scenario's `gpm` fault: the sample fails with UNKNOWN, the generic error nvml.h allows GPM
/// calls ("nonzero NVML_ERROR_? enum on error"); the sample buffer keeps what it held.
fn gpm_fault(l: &Loaded, g: &GpuInfo) -> Result<(), Ret> {
    if l.sim.failing(gpuscope_sim::scenario::FaultKind::Gpm, g.index, l.clock.now()) {
        return Err(UNKNOWN);
    }
    Ok(())
}

const GPM_NAMES: &[(u32, &CStr, &CStr)] = &[
    (1, c"gr_util", c"%"),
    (2, c"sm_util", c"%"),
    (3, c"sm_occupancy", c"%"),
    (5, c"any_tensor_util", c"%"),
    (6, c"dfma_tensor_util", c"%"),
    (7, c"hmma_tensor_util", c"%"),
    (9, c"imma_tensor_util", c"%"),
    (10, c"dram_bw_util", c"%"),
    (11, c"fp64_util", c"%"),
    (12, c"fp32_util", c"%"),
    (13, c"fp16_util", c"%"),
    (20, c"pcie_tx_per_sec", c"MiB/sec"),
    (21, c"pcie_rx_per_sec", c"MiB/sec"),
    (60, c"nvlink_total_rx_per_sec", c"MiB/sec"),
    (61, c"nvlink_total_tx_per_sec", c"MiB/sec"),
    (62, c"nvlink_per_link_per_sec", c"MiB/sec"),
];

fn gpm_metrics_get(mg: *mut GpmMetricsGet) -> Result<(), Ret> {
    let l = loaded()?;
    if mg.is_null() {
        return Err(INVALID_ARGUMENT);
    }
    // SAFETY: non-null pointer to the caller's nvmlGpmMetricsGet_t.
    let mg = unsafe { &mut *mg };
    if mg.version != 1 {
        return Err(ARGUMENT_VERSION_MISMATCH);
    }
    if mg.num_metrics as usize > mg.metrics.len() {
        return Err(INVALID_ARGUMENT);
    }
    let samples = registry(&GPM_SAMPLES);
    if !samples.contains(&(mg.sample1 as usize)) || !samples.contains(&(mg.sample2 as usize)) {
        return Err(INVALID_ARGUMENT);
    }
    drop(samples);
    // SAFETY: both samples are live allocations from nvmlGpmSampleAlloc.
    let (s1, s2) = unsafe { (&*mg.sample1.cast::<GpmSample>(), &*mg.sample2.cast::<GpmSample>()) };
    let (Some((g1, t1)), Some((g2, t2))) = (s1.taken, s2.taken) else {
        return Err(INVALID_ARGUMENT);
    };
    if g1 != g2 || s1.instance != s2.instance {
        return Err(INVALID_ARGUMENT);
    }
    // An instance's engines are as busy as its processes keep them: the GPU's activity times their
    // summed `sm_share`, at most 1; its bus traffic is not counted per instance.
    let instance_share = s2.instance.map(|gi| mig::activity_share(l, g1, gi, t2));
    if l.sim.gpu_lost(g1, l.clock.now()) {
        return Err(GPU_IS_LOST);
    }
    let avg = l.sim.gpu_profile_average(g1, t1, t2).ok_or(UNKNOWN)?;
    let get = |sig: G| avg.iter().find(|(s, _)| *s == sig).map_or(0.0, |(_, v)| *v);
    let links = l.sim.gpus()[g1 as usize].preset.nvlinks;
    const MIB: f64 = 1_048_576.0;
    for m in mg.metrics.iter_mut().take(mg.num_metrics as usize) {
        let id = m.metric_id;
        let scale = match (id, instance_share) {
            (1..=13, Some(share)) => Some(share),
            (_, Some(_)) => None,
            (_, None) => Some(1.0),
        };
        let value = scale.and_then(|scale| {
            match id {
                1 => Some(get(G::Graphics) * 100.0),
                2 => Some(get(G::SmActive) * 100.0),
                3 => Some(get(G::Occupancy) * 100.0),
                5 | 7 => Some(get(G::Tensor) * 100.0),
                6 | 9 => Some(0.0),
                10 => Some(get(G::Dram) * 100.0),
                11 => Some(get(G::Fp64) * 100.0),
                12 => Some(get(G::Fp32) * 100.0),
                13 => Some(get(G::Fp16) * 100.0),
                20 => Some(get(G::PcieTx) / MIB),
                21 => Some(get(G::PcieRx) / MIB),
                60 => Some(get(G::NvlinkRx) / MIB),
                61 => Some(get(G::NvlinkTx) / MIB),
                62..=97 if (id - 62) / 2 < links => {
                    let per = f64::from(links.max(1));
                    Some(if (id - 62) % 2 == 0 { get(G::NvlinkRx) } else { get(G::NvlinkTx) } / per / MIB)
                }
                _ => None,
            }
            .map(|v| v * scale)
        });
        let (ret, v) = match value {
            Some(v) => (SUCCESS, v),
            None => (NOT_SUPPORTED, 0.0),
        };
        m.nvml_return = ret;
        m.value = v;
        let names = GPM_NAMES.iter().find(|(i, _, _)| *i == id || (id >= 62 && *i == 62));
        let (name, unit) = names.map_or((c"unknown", c""), |(_, n, u)| (*n, *u));
        m.info = GpmMetricInfo { short_name: name.as_ptr(), long_name: name.as_ptr(), unit: unit.as_ptr() };
    }
    Ok(())
}

/// `nvmlErrorString`: a static description of a return code.
#[unsafe(no_mangle)]
pub extern "C" fn nvmlErrorString(result: Ret) -> *const c_char {
    let s: &'static CStr = match result {
        0 => c"Success",
        1 => c"Uninitialized",
        2 => c"Invalid Argument",
        3 => c"Not Supported",
        4 => c"Insufficient Permissions",
        5 => c"Already Initialized",
        6 => c"Not Found",
        7 => c"Insufficient Size",
        9 => c"Driver Not Loaded",
        10 => c"Timeout",
        13 => c"Function Not Found",
        15 => c"GPU is lost",
        21 => c"No data",
        25 => c"Argument version mismatch",
        _ => c"Unknown Error",
    };
    s.as_ptr()
}
pub mod calls;
mod compat;
mod fan;
mod mig;
mod topo;
