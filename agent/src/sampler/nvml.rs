//! NVML device signals, GPM profiling ratios and GPU processes.
//!
//! Static information is read once per GPU and device handles are reused. NOT_SUPPORTED leaves
//! a value `None` and is counted per signal; GPU_IS_LOST marks the GPU lost and stops sampling
//! it without disturbing the others. A missing library or driver is retried every slow pass.

use super::xid::XidWatcher;
use super::{Pass, SampleError, Sampler};
use gpuscope_core::{DriverInfo, GpuSample, NodeSnapshot, NvLinkSample, ProcessSample};
use nvml_wrapper::enum_wrappers::device::{
    Clock, EccCounter, MemoryError, PcieUtilCounter, RetirementCause, TemperatureSensor, TemperatureThreshold,
};
use nvml_wrapper::enums::device::SampleValue;
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::GpmSample;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::{Device, Nvml};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

// Field ids of nvml.h (`NVML_FI_DEV_*`) read through nvmlDeviceGetFieldValues.
const FI_ECC_CURRENT: u32 = 1;
const FI_ECC_PENDING: u32 = 2;
const FI_ECC_SBE_VOL_TOTAL: u32 = 3;
const FI_ECC_DBE_VOL_TOTAL: u32 = 4;
const FI_ECC_SBE_AGG_TOTAL: u32 = 5;
const FI_ECC_DBE_AGG_TOTAL: u32 = 6;
const FI_RETIRED_SBE: u32 = 29;
const FI_RETIRED_DBE: u32 = 30;
const FI_RETIRED_PENDING: u32 = 31;
const FI_MEMORY_TEMP: u32 = 82;
const FI_TOTAL_ENERGY: u32 = 83;
const FI_NVLINK_LINK_COUNT: u32 = 91;
const FI_PCIE_REPLAY_COUNTER: u32 = 94;
const FI_NVLINK_TX_KIB: u32 = 138;
const FI_NVLINK_RX_KIB: u32 = 139;
const FI_REMAPPED_COR: u32 = 142;
const FI_REMAPPED_UNC: u32 = 143;
const FI_REMAPPED_PENDING: u32 = 144;
const FI_REMAPPED_FAILURE: u32 = 145;
const FI_NVLINK_ERROR_DL_REPLAY: u32 = 161;
const FI_NVLINK_ERROR_DL_RECOVERY: u32 = 162;
const FI_NVLINK_ERROR_DL_CRC: u32 = 163;
const FI_NVLINK_GET_STATE: u32 = 165;
const FI_POWER_AVERAGE: u32 = 185;
const FI_POWER_MIN_LIMIT: u32 = 187;
const FI_POWER_MAX_LIMIT: u32 = 188;
const FI_POWER_DEFAULT_LIMIT: u32 = 189;
const FI_POWER_CURRENT_LIMIT: u32 = 190;
const FI_PCIE_TX_BYTES: u32 = 197;
const FI_PCIE_RX_BYTES: u32 = 198;

/// How long a NOT_SUPPORTED answer is trusted, in slow intervals: the entry point (or field) is
/// not asked again until the next inventory pass, this many slow intervals after the last.
const INVENTORY_SLOW_PASSES: u32 = 2;

/// NVML calls this process made, per entry point (the XID thread's too).
static CALLS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

/// Counts one call of `entry_point`, passing its result through.
pub(crate) fn call<T>(entry_point: &'static str, result: T) -> T {
    *CALLS.lock().unwrap_or_else(|e| e.into_inner()).entry(entry_point).or_insert(0) += 1;
    result
}

/// The NVML calls made so far, per entry point.
fn calls_so_far() -> BTreeMap<String, u64> {
    CALLS.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

/// Retired pages for one cause; nvml-wrapper asks for the count, then (if any) for the pages.
fn retired_pages(
    d: &Device<'static>,
    cause: RetirementCause,
) -> Result<Vec<nvml_wrapper::structs::device::RetiredPage>, NvmlError> {
    let r = call("nvmlDeviceGetRetiredPages", d.retired_pages(cause));
    if r.as_ref().is_ok_and(|p| !p.is_empty()) {
        call("nvmlDeviceGetRetiredPages_v2", ());
    }
    r
}

/// The process list and per-process utilization are read every this many passes (at most
/// every slow pass): processes start and end far less often than a pass.
const PROCESS_PASSES: u32 = 5;

/// GPM needs its two samples at least this far apart.
const GPM_MIN_GAP: Duration = Duration::from_millis(100);

/// After a GPM call fails, GPM is asked again only this much later: a device whose GPM keeps
/// failing (dcgm-exporter#661: fractional vGPU guests, where every sample fails) costs one
/// failed call per GPU every 30 s instead of one every pass.
///
/// Another profiler does not make GPM fail. Nsight Compute, Nsight Systems' GPU metrics, CUPTI's
/// profiling API and DCGM's profiling module (before Hopper) lock the GPU's perfmon unit, one
/// client at a time; GPM is a separate unit built so that metrics and profiling run at once, and
/// on GPM devices DCGM reads its profiling fields through NVML GPM itself (NVIDIA's DCGM
/// maintainer, NVIDIA/DCGM#62, January 2025). nvml.h documents no error for GPM calls beyond
/// "nonzero NVML_ERROR_? enum on error", so every failure is handled alike: the ratios are
/// absent, never the last pass's values.
const GPM_RETRY: Duration = Duration::from_secs(30);

/// Per-pass bookkeeping of NVML outcomes.
#[derive(Default)]
struct Outcome {
    errors: BTreeMap<String, u64>,
    unsupported: BTreeMap<String, u64>,
    lost: bool,
}

impl Outcome {
    /// Records `signal` as unsupported on this GPU without asking the driver.
    fn unsupported(&mut self, signal: &str) {
        *self.unsupported.entry(signal.to_string()).or_insert(0) += 1;
    }

    /// The value, or `None` after recording why not.
    fn ok<T>(&mut self, signal: &str, r: Result<T, NvmlError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(NvmlError::NotSupported) => {
                *self.unsupported.entry(signal.to_string()).or_insert(0) += 1;
                None
            }
            Err(NvmlError::GpuLost) => {
                self.lost = true;
                None
            }
            Err(_) => {
                *self.errors.entry(signal.to_string()).or_insert(0) += 1;
                None
            }
        }
    }
}

/// What is read once per GPU.
struct StaticInfo {
    uuid: String,
    model: String,
    serial: Option<String>,
    pci_bus_id: Option<String>,
    compute_capability: Option<String>,
    slowdown_c: Option<f64>,
    shutdown_c: Option<f64>,
    max_operating_c: Option<f64>,
    sm_clock_max: Option<f64>,
    mem_clock_max: Option<f64>,
    pcie_gen_max: Option<u32>,
    pcie_width_max: Option<u32>,
    nvlinks: u32,
    gpm: bool,
}

/// A pair of transmit/receive byte counters and when the driver read them.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Counters {
    tx: u64,
    rx: u64,
    /// The reading's timestamp, microseconds.
    at_us: i64,
}

impl Counters {
    /// Transmit and receive per second since `prev`; none without an earlier reading, when no
    /// time passed between the two (a cached or frozen reading) or when a counter went back
    /// (a reset): a rate that cannot be computed is absent, never 0.
    fn rates_since(&self, prev: Option<Counters>) -> Option<(f64, f64)> {
        let p = prev?;
        let dt = self.at_us.checked_sub(p.at_us)?;
        if dt <= 0 || self.tx < p.tx || self.rx < p.rx {
            return None;
        }
        let s = dt as f64 / 1e6;
        Some(((self.tx - p.tx) as f64 / s, (self.rx - p.rx) as f64 / s))
    }
}

/// PCIe byte counters (fields 197/198) turned into a rate between two readings; absent until
/// two readings apart in time.
fn pcie_rate(
    prev: &mut Option<Counters>,
    f: &HashMap<(u32, u32), u64>,
    at: &HashMap<(u32, u32), i64>,
    g: &mut GpuSample,
) {
    let key = |id| (id, 0);
    let (Some(tx), Some(rx), Some(when)) =
        (f.get(&key(FI_PCIE_TX_BYTES)), f.get(&key(FI_PCIE_RX_BYTES)), at.get(&key(FI_PCIE_TX_BYTES)))
    else {
        *prev = None;
        return;
    };
    let now = Counters { tx: *tx, rx: *rx, at_us: *when };
    if let Some((t, r)) = now.rates_since(*prev) {
        g.pcie_tx_bytes_per_second = Some(t);
        g.pcie_rx_bytes_per_second = Some(r);
    }
    *prev = Some(now);
}

/// Per-GPU state kept between passes.
struct GpuSlot {
    index: u32,
    device: Device<'static>,
    info: StaticInfo,
    lost: bool,
    last_util_ts: u64,
    /// Per process: SM, memory, encoder and decoder shares, averaged over the last read's samples.
    proc_util: HashMap<u32, [f64; 4]>,
    proc_names: HashMap<u32, String>,
    proc_list: Vec<GpuProcess>,
    proc_at: Option<Instant>,
    proc_unsupported: Vec<String>,
    process_interval: Duration,
    inventory_interval: Duration,
    gpm_prev: Option<(GpmSample<'static>, Instant)>,
    /// A sample buffer whose reading is no longer needed, reused for the next sample.
    gpm_spare: Option<GpmSample<'static>>,
    gpm_values: [Option<f64>; 8],
    /// GPM failed: not asked again before this time (`GPM_RETRY`).
    gpm_retry_at: Option<Instant>,
    nvlink_prev: Option<Counters>,
    /// Each link's last byte counters, and its rates from the last pass (KiB turned to bytes).
    nvlink_links_prev: Vec<Counters>,
    nvlink_link_rates: Vec<Option<(f64, f64)>>,
    pcie_prev: Option<Counters>,
    slow: GpuSample,
    fans: super::fan::Fans,
    inventory: super::topology::Inventory,
    mig: super::mig::Instances,
    slow_done: bool,
    /// Slow signals found unsupported on the last slow pass, reported on every pass.
    slow_unsupported: Vec<String>,
    known: Known,
}

/// What the driver said it cannot answer for one GPU, remembered until the next inventory pass.
struct Known {
    /// Signals whose entry point (or every field) answered NOT_SUPPORTED.
    unsupported: HashSet<&'static str>,
    /// Field ids that answered NOT_SUPPORTED; their signals fall back to the single entry point.
    no_field: HashSet<u32>,
    since: Option<Instant>,
}

impl Known {
    fn new() -> Known {
        Known { unsupported: HashSet::new(), no_field: HashSet::new(), since: None }
    }

    /// Forgets what was learnt once an inventory interval has passed.
    fn refresh(&mut self, now: Instant, interval: Duration) {
        if self.since.is_none_or(|t| now.duration_since(t) >= interval) {
            self.unsupported.clear();
            self.no_field.clear();
            self.since = Some(now);
        }
    }

    /// Calls `f` unless `signal` is known to be unsupported; NOT_SUPPORTED is remembered.
    fn ask<T>(&mut self, o: &mut Outcome, signal: &'static str, f: impl FnOnce() -> Result<T, NvmlError>) -> Option<T> {
        if self.unsupported.contains(signal) {
            o.unsupported(signal);
            return None;
        }
        let r = f();
        if matches!(r, Err(NvmlError::NotSupported)) {
            self.unsupported.insert(signal);
        }
        o.ok(signal, r)
    }

    /// Whether a field read can be used for `id` (else the single entry point is asked).
    fn field(&self, id: u32) -> bool {
        !self.no_field.contains(&id)
    }
}

/// One field of a batched nvmlDeviceGetFieldValues request.
struct FieldReq {
    id: u32,
    scope: u32,
    signal: &'static str,
    /// A single entry point gives the same value: NOT_SUPPORTED as a field falls back to it.
    fallback: bool,
}

impl FieldReq {
    fn new(id: u32, scope: u32, signal: &'static str, fallback: bool) -> FieldReq {
        FieldReq { id, scope, signal, fallback }
    }
}

/// The NVML sampler.
pub struct NvmlSampler {
    lib: Option<PathBuf>,
    nvml: Option<&'static Nvml>,
    driver: Option<DriverInfo>,
    slots: Vec<GpuSlot>,
    xid: Option<XidWatcher>,
    init_error: Option<String>,
    last_attempt: Option<Instant>,
    retry: Duration,
    sysfs_root: Option<PathBuf>,
    process_interval: Duration,
}

impl NvmlSampler {
    /// A sampler that loads NVML from `lib` (default `libnvidia-ml.so.1`) on its first pass,
    /// retries a missing driver and re-reads slow values every `slow` interval, and samples
    /// every `interval`.
    pub fn new(lib: Option<PathBuf>, slow: Duration, interval: Duration) -> NvmlSampler {
        let retry = slow;
        NvmlSampler {
            lib,
            nvml: None,
            driver: None,
            slots: Vec::new(),
            xid: None,
            init_error: None,
            last_attempt: None,
            retry,
            sysfs_root: None,
            process_interval: (interval * PROCESS_PASSES).min(slow),
        }
    }

    /// Where to read the PCI devices' NUMA node and CPU list when NVML cannot tell them.
    pub fn with_sysfs_root(mut self, root: PathBuf) -> NvmlSampler {
        self.sysfs_root = Some(root);
        self
    }

    /// The XID watcher, once NVML is up.
    pub fn xid(&self) -> Option<&XidWatcher> {
        self.xid.as_ref()
    }

    fn init(&mut self) -> Result<(), SampleError> {
        let mut builder = Nvml::builder();
        if let Some(lib) = &self.lib {
            builder.lib_path(lib.as_os_str());
        }
        let nvml = builder.init();
        if !matches!(nvml, Err(NvmlError::LibloadingError(_))) {
            call("nvmlInit_v2", ());
        }
        if nvml.is_ok() {
            // nvml-wrapper reads the driver version at init to pick its field-id numbering.
            call("nvmlSystemGetDriverVersion", ());
        }
        let nvml = nvml.map_err(|e| {
            let lib = self.lib.as_ref().map_or("libnvidia-ml.so.1".to_string(), |p| p.display().to_string());
            SampleError::Nvml(match e {
                NvmlError::LibloadingError(_) => {
                    format!("cannot load NVML from {lib}: library not found — is the NVIDIA driver installed?")
                }
                NvmlError::DriverNotLoaded => format!("NVML ({lib}) loaded but the NVIDIA driver is not running"),
                NvmlError::NoPermission => format!("NVML ({lib}): no permission to talk to the NVIDIA driver"),
                other => format!("NVML ({lib}) failed to initialise: {other}"),
            })
        })?;
        // NVML lives for the rest of the process: device handles, GPM samples and the XID
        // thread borrow it, and a driver that was found stays loaded.
        let nvml: &'static Nvml = Box::leak(Box::new(nvml));
        self.driver = Some(DriverInfo {
            driver_version: call("nvmlSystemGetDriverVersion", nvml.sys_driver_version()).unwrap_or_default(),
            cuda_driver_version: call("nvmlSystemGetCudaDriverVersion_v2", nvml.sys_cuda_driver_version())
                .ok()
                .map(|v| v as u32),
            nvml_version: call("nvmlSystemGetNVMLVersion", nvml.sys_nvml_version()).ok(),
        });
        let count = call("nvmlDeviceGetCount_v2", nvml.device_count())
            .map_err(|e| SampleError::Nvml(format!("nvmlDeviceGetCount failed: {e}")))?;
        let mut live = Vec::new();
        for index in 0..count {
            let device = match call("nvmlDeviceGetHandleByIndex_v2", nvml.device_by_index(index)) {
                Ok(d) => d,
                Err(e) => {
                    tracing::warn!("GPU {index}: cannot get a handle: {e}");
                    continue;
                }
            };
            let mut o = Outcome::default();
            let info = static_info(&device, &mut o);
            if !o.lost {
                live.push(index);
            }
            self.slots.push(GpuSlot {
                index,
                device,
                info,
                lost: o.lost,
                last_util_ts: 0,
                proc_util: HashMap::new(),
                proc_names: HashMap::new(),
                proc_list: Vec::new(),
                proc_at: None,
                proc_unsupported: Vec::new(),
                process_interval: self.process_interval,
                inventory_interval: self.retry * INVENTORY_SLOW_PASSES,
                gpm_prev: None,
                gpm_spare: None,
                gpm_values: [None; 8],
                gpm_retry_at: None,
                nvlink_prev: None,
                nvlink_links_prev: Vec::new(),
                nvlink_link_rates: Vec::new(),
                pcie_prev: None,
                slow: GpuSample::default(),
                fans: Default::default(),
                inventory: Default::default(),
                slow_done: false,
                slow_unsupported: Vec::new(),
                known: Known::new(),
                mig: Default::default(),
            });
        }
        let gpus: Vec<_> =
            self.slots.iter().map(|s| (s.index, &s.device, s.info.pci_bus_id.as_deref(), s.info.nvlinks)).collect();
        for (slot, inventory) in (0..).zip(super::topology::read(nvml, &gpus, self.sysfs_root.as_deref())) {
            self.slots[slot].inventory = inventory;
        }
        self.xid = Some(XidWatcher::start(nvml, live));
        self.nvml = Some(nvml);
        Ok(())
    }
}

fn static_info(d: &Device<'static>, o: &mut Outcome) -> StaticInfo {
    let nvlinks = match call("nvmlDeviceGetFieldValues", d.field_values_for(&[FieldId(FI_NVLINK_LINK_COUNT)])) {
        Ok(v) => v.into_iter().next().and_then(|r| r.ok()).and_then(|s| u64_value(s.value)).unwrap_or(0) as u32,
        Err(_) => 0,
    };
    StaticInfo {
        uuid: o.ok("uuid", call("nvmlDeviceGetUUID", d.uuid())).unwrap_or_default(),
        model: o.ok("name", call("nvmlDeviceGetName", d.name())).unwrap_or_default(),
        serial: o.ok("serial", call("nvmlDeviceGetSerial", d.serial())),
        pci_bus_id: o.ok("pci_info", call("nvmlDeviceGetPciInfo_v3", d.pci_info())).map(|p| p.bus_id),
        compute_capability: o
            .ok("compute_capability", call("nvmlDeviceGetCudaComputeCapability", d.cuda_compute_capability()))
            .map(|c| format!("{}.{}", c.major, c.minor)),
        slowdown_c: o
            .ok(
                "temperature_slowdown",
                call("nvmlDeviceGetTemperatureThreshold", d.temperature_threshold(TemperatureThreshold::Slowdown)),
            )
            .map(f64::from),
        shutdown_c: o
            .ok(
                "temperature_shutdown",
                call("nvmlDeviceGetTemperatureThreshold", d.temperature_threshold(TemperatureThreshold::Shutdown)),
            )
            .map(f64::from),
        max_operating_c: o
            .ok(
                "temperature_max_operating",
                call("nvmlDeviceGetTemperatureThreshold", d.temperature_threshold(TemperatureThreshold::GpuMax)),
            )
            .map(f64::from),
        sm_clock_max: o
            .ok("sm_clock_max", call("nvmlDeviceGetMaxClockInfo", d.max_clock_info(Clock::SM)))
            .map(|m| f64::from(m) * 1e6),
        mem_clock_max: o
            .ok("memory_clock_max", call("nvmlDeviceGetMaxClockInfo", d.max_clock_info(Clock::Memory)))
            .map(|m| f64::from(m) * 1e6),
        pcie_gen_max: o
            .ok("pcie_link_generation_max", call("nvmlDeviceGetMaxPcieLinkGeneration", d.max_pcie_link_gen())),
        pcie_width_max: o.ok("pcie_link_width_max", call("nvmlDeviceGetMaxPcieLinkWidth", d.max_pcie_link_width())),
        nvlinks,
        gpm: call("nvmlGpmQueryDeviceSupport", d.gpm_support()).unwrap_or(false),
    }
}

fn u64_value(v: Result<SampleValue, NvmlError>) -> Option<u64> {
    match v.ok()? {
        SampleValue::U32(x) => Some(u64::from(x)),
        SampleValue::U64(x) => Some(x),
        SampleValue::I64(x) => u64::try_from(x).ok(),
        SampleValue::F64(x) => Some(x as u64),
    }
}

/// Reads `reqs` in one nvmlDeviceGetFieldValues call; values by (field id, scope id).
///
/// A field that answers NOT_SUPPORTED is not requested again until the next inventory pass:
/// with a single-entry-point fallback its signal is read that way instead (the caller checks
/// [`Known::field`]), without one its signal is counted unsupported. Requests for signals already
/// known unsupported are left out and counted as such.
fn read_fields(
    nvml: &'static Nvml,
    d: &Device<'static>,
    reqs: &[FieldReq],
    known: &mut Known,
    o: &mut Outcome,
) -> HashMap<(u32, u32), u64> {
    read_fields_timed(nvml, d, reqs, known, o).0
}

/// A field value's (field id, scope id).
type FieldKey = (u32, u32);

/// [`read_fields`], with each value's timestamp (microseconds, the driver's clock) by the same
/// key: counters turned into rates are timed from their reading, not from the pass.
fn read_fields_timed(
    nvml: &'static Nvml,
    d: &Device<'static>,
    reqs: &[FieldReq],
    known: &mut Known,
    o: &mut Outcome,
) -> (HashMap<FieldKey, u64>, HashMap<FieldKey, i64>) {
    use nvml_wrapper_sys::bindings::nvmlFieldValue_t;
    let mut out = HashMap::new();
    let mut at = HashMap::new();
    let mut skipped: HashSet<&'static str> = HashSet::new();
    let wanted: Vec<&FieldReq> = reqs
        .iter()
        .filter(|r| {
            let asked = !known.unsupported.contains(r.signal) && known.field(r.id);
            if !asked && !r.fallback {
                skipped.insert(r.signal);
            }
            asked
        })
        .collect();
    for signal in skipped {
        o.unsupported(signal);
    }
    if wanted.is_empty() {
        return (out, at);
    }
    let Ok(f) = nvml.lib().nvmlDeviceGetFieldValues.as_ref() else {
        for r in &wanted {
            known.no_field.insert(r.id);
        }
        return (out, at);
    };
    let mut values: Vec<nvmlFieldValue_t> = wanted
        .iter()
        .map(|r| {
            // SAFETY: nvmlFieldValue_t is plain old data; all-zero is a valid request.
            let mut v: nvmlFieldValue_t = unsafe { std::mem::zeroed() };
            v.fieldId = r.id;
            v.scopeId = r.scope;
            v
        })
        .collect();
    // SAFETY: the handle belongs to this live NVML instance and `values` holds `len` requests.
    let ret = call("nvmlDeviceGetFieldValues", unsafe { f(d.handle(), values.len() as i32, values.as_mut_ptr()) });
    if ret != 0 {
        o.ok::<()>("field_values", Err(nvml_wrapper::error::nvml_try(ret).err().unwrap_or(NvmlError::Unknown)));
        return (out, at);
    }
    let mut unsupported: HashSet<&'static str> = HashSet::new();
    for (r, v) in wanted.iter().zip(&values) {
        if v.nvmlReturn != 0 {
            let e = nvml_wrapper::error::nvml_try(v.nvmlReturn).err().unwrap_or(NvmlError::Unknown);
            if matches!(e, NvmlError::NotSupported) {
                known.no_field.insert(r.id);
                if !r.fallback {
                    known.unsupported.insert(r.signal);
                    unsupported.insert(r.signal);
                }
            } else {
                o.ok::<()>(r.signal, Err(e));
            }
            continue;
        }
        if let Some(x) = field_u64(v) {
            out.insert((r.id, r.scope), x);
            at.insert((r.id, r.scope), v.timestamp);
        }
    }
    for signal in unsupported {
        o.unsupported(signal);
    }
    (out, at)
}

/// A field's value as an unsigned integer, by its `nvmlValueType_t`.
fn field_u64(v: &nvml_wrapper_sys::bindings::nvmlFieldValue_t) -> Option<u64> {
    // SAFETY: the union member read is the one `valueType` names.
    unsafe {
        match v.valueType {
            0 => Some(v.value.dVal).filter(|x| x.is_finite() && *x >= 0.0).map(|x| x as u64),
            1 => Some(u64::from(v.value.uiVal)),
            2 => Some(v.value.ulVal),
            3 => Some(v.value.ullVal),
            4 => u64::try_from(v.value.sllVal).ok(),
            5 => u64::try_from(v.value.siVal).ok(),
            6 => Some(u64::from(v.value.usVal)),
            _ => None,
        }
    }
}

const GPM_IDS: [GpmMetricId; 8] = [
    GpmMetricId::GraphicsUtil,
    GpmMetricId::SmUtil,
    GpmMetricId::SmOccupancy,
    GpmMetricId::AnyTensorUtil,
    GpmMetricId::Fp64Util,
    GpmMetricId::Fp32Util,
    GpmMetricId::Fp16Util,
    GpmMetricId::DramBwUtil,
];

impl GpuSlot {
    fn sample(&mut self, nvml: &'static Nvml, pass: &Pass, o: &mut Outcome) -> (GpuSample, Vec<ProcessSample>) {
        let d = &self.device;
        let info = &self.info;
        let mut g = GpuSample {
            index: self.index,
            uuid: info.uuid.clone(),
            model: info.model.clone(),
            serial: info.serial.clone(),
            pci_bus_id: info.pci_bus_id.clone(),
            compute_capability: info.compute_capability.clone(),
            slowdown_temperature_celsius: info.slowdown_c,
            shutdown_temperature_celsius: info.shutdown_c,
            max_operating_temperature_celsius: info.max_operating_c,
            sm_clock_max_hertz: info.sm_clock_max,
            memory_clock_max_hertz: info.mem_clock_max,
            pcie_link_generation_max: info.pcie_gen_max,
            pcie_link_width_max: info.pcie_width_max,
            ..GpuSample::default()
        };
        if self.lost {
            g.lost = true;
            return (g, Vec::new());
        }
        if pass.slow {
            self.known.refresh(pass.now, self.inventory_interval);
        }
        let k = &mut self.known;
        if let Some(u) = k.ask(o, "utilization", || call("nvmlDeviceGetUtilizationRates", d.utilization_rates())) {
            g.utilization_ratio = Some(f64::from(u.gpu) / 100.0);
            g.memory_copy_utilization_ratio = Some(f64::from(u.memory) / 100.0);
        }
        g.encoder_utilization_ratio = k
            .ask(o, "encoder_utilization", || call("nvmlDeviceGetEncoderUtilization", d.encoder_utilization()))
            .map(|u| f64::from(u.utilization) / 100.0);
        g.decoder_utilization_ratio = k
            .ask(o, "decoder_utilization", || call("nvmlDeviceGetDecoderUtilization", d.decoder_utilization()))
            .map(|u| f64::from(u.utilization) / 100.0);
        if let Some(m) = k.ask(o, "memory", || call("nvmlDeviceGetMemoryInfo_v2", d.memory_info())) {
            g.memory_total_bytes = Some(m.total);
            g.memory_used_bytes = Some(m.used);
            g.memory_free_bytes = Some(m.free);
            g.memory_reserved_bytes = Some(m.reserved);
        }
        g.temperature_celsius = k
            .ask(o, "temperature", || call("nvmlDeviceGetTemperature", d.temperature(TemperatureSensor::Gpu)))
            .map(f64::from);
        g.sm_clock_hertz = k
            .ask(o, "sm_clock", || call("nvmlDeviceGetClockInfo", d.clock_info(Clock::SM)))
            .map(|m| f64::from(m) * 1e6);
        g.memory_clock_hertz = k
            .ask(o, "memory_clock", || call("nvmlDeviceGetClockInfo", d.clock_info(Clock::Memory)))
            .map(|m| f64::from(m) * 1e6);
        g.graphics_clock_hertz = k
            .ask(o, "graphics_clock", || call("nvmlDeviceGetClockInfo", d.clock_info(Clock::Graphics)))
            .map(|m| f64::from(m) * 1e6);
        g.clock_event_reasons = k
            .ask(o, "clock_event_reasons", || {
                call("nvmlDeviceGetCurrentClocksThrottleReasons", d.current_throttle_reasons())
            })
            .map(|r| r.bits());
        // Everything NVML exposes as a field, in one call.
        let mut reqs = vec![
            FieldReq::new(FI_MEMORY_TEMP, 0, "memory_temperature", false),
            FieldReq::new(FI_TOTAL_ENERGY, 0, "energy", true),
            FieldReq::new(FI_POWER_AVERAGE, 0, "power", true),
            FieldReq::new(FI_PCIE_REPLAY_COUNTER, 0, "pcie_replays", true),
            FieldReq::new(FI_PCIE_TX_BYTES, 0, "pcie_tx", true),
            FieldReq::new(FI_PCIE_RX_BYTES, 0, "pcie_rx", true),
        ];
        for link in 0..self.info.nvlinks {
            reqs.push(FieldReq::new(FI_NVLINK_TX_KIB, link, "nvlink_throughput", false));
            reqs.push(FieldReq::new(FI_NVLINK_RX_KIB, link, "nvlink_throughput", false));
        }
        let (f, at) = read_fields_timed(nvml, d, &reqs, k, o);
        g.memory_temperature_celsius = f.get(&(FI_MEMORY_TEMP, 0)).map(|t| *t as f64);
        g.energy_joules = match k.field(FI_TOTAL_ENERGY) {
            true => f.get(&(FI_TOTAL_ENERGY, 0)).copied(),
            false => k.ask(o, "energy", || call("nvmlDeviceGetTotalEnergyConsumption", d.total_energy_consumption())),
        }
        .map(|mj| mj as f64 / 1000.0);
        g.power_watts = match k.field(FI_POWER_AVERAGE) {
            true => f.get(&(FI_POWER_AVERAGE, 0)).copied(),
            false => k.ask(o, "power", || call("nvmlDeviceGetPowerUsage", d.power_usage())).map(u64::from),
        }
        .map(|mw| mw as f64 / 1000.0);
        g.pcie_replays_total = match k.field(FI_PCIE_REPLAY_COUNTER) {
            true => f.get(&(FI_PCIE_REPLAY_COUNTER, 0)).copied(),
            false => k
                .ask(o, "pcie_replays", || call("nvmlDeviceGetPcieReplayCounter", d.pcie_replay_counter()))
                .map(u64::from),
        };
        if k.field(FI_PCIE_TX_BYTES) && k.field(FI_PCIE_RX_BYTES) {
            pcie_rate(&mut self.pcie_prev, &f, &at, &mut g);
        } else {
            // A driver without the byte counters: its own 20 ms sample, in KiB/s.
            g.pcie_tx_bytes_per_second = k
                .ask(o, "pcie_tx", || call("nvmlDeviceGetPcieThroughput", d.pcie_throughput(PcieUtilCounter::Send)))
                .map(|k| f64::from(k) * 1024.0);
            g.pcie_rx_bytes_per_second = k
                .ask(o, "pcie_rx", || call("nvmlDeviceGetPcieThroughput", d.pcie_throughput(PcieUtilCounter::Receive)))
                .map(|k| f64::from(k) * 1024.0);
        }
        g.fan_speed_ratio = o.ok("fan_speed", self.fans.mean_speed(d));
        self.inventory.fill(&mut g);
        if self.info.nvlinks > 0 {
            self.nvlink_rate(&f, &at, &mut g);
        }
        if !self.info.gpm {
            // Profiling ratios need GPM (Hopper+): absent here, and counted as such.
            o.ok::<()>("gpm_profiling", Err(NvmlError::NotSupported));
        } else {
            self.gpm_sample(nvml, pass, o);
            let v = self.gpm_values;
            g.graphics_active_ratio = v[0];
            g.sm_active_ratio = v[1];
            g.sm_occupancy_ratio = v[2];
            g.tensor_active_ratio = v[3];
            g.fp64_active_ratio = v[4];
            g.fp32_active_ratio = v[5];
            g.fp16_active_ratio = v[6];
            g.dram_active_ratio = v[7];
        }
        if pass.slow || !self.slow_done {
            // What the fast signals found unsupported is already in `o`: set it apart.
            let fast = std::mem::take(&mut o.unsupported);
            self.sample_slow(nvml, o);
            self.slow_done = true;
            for (k, v) in fast {
                *o.unsupported.entry(k).or_insert(0) += v;
            }
        } else {
            for k in &self.slow_unsupported {
                o.unsupported(k);
            }
        }
        copy_slow(&self.slow, &mut g);
        for (link, rate) in self.nvlink_link_rates.iter().enumerate() {
            let Some((tx, rx)) = *rate else { continue };
            let link = link as u32;
            let i = match g.nvlinks.iter().position(|l| l.link == link) {
                Some(i) => i,
                None => {
                    g.nvlinks.push(NvLinkSample { link, ..NvLinkSample::default() });
                    g.nvlinks.len() - 1
                }
            };
            g.nvlinks[i].tx_bytes_per_second = Some(tx);
            g.nvlinks[i].rx_bytes_per_second = Some(rx);
        }
        self.mig.sample(nvml, &self.device, pass.slow, self.info.gpm, pass.now, &mut g);
        let procs = self.processes(nvml, pass, o);
        if o.lost {
            self.lost = true;
            tracing::error!(gpu = self.index, uuid = %self.info.uuid, "GPU is lost (fallen off the bus); no longer sampling it");
            let mut lost = GpuSample { lost: true, ..GpuSample::default() };
            lost.index = g.index;
            lost.uuid = g.uuid;
            lost.model = g.model;
            lost.serial = g.serial;
            lost.pci_bus_id = g.pci_bus_id;
            lost.compute_capability = g.compute_capability;
            return (lost, Vec::new());
        }
        (g, procs)
    }

    /// Per-link NVLink data counters (KiB, fields 138/139) summed, turned into a rate between
    /// two readings; absent unless every link answered, and until two readings apart in time.
    fn nvlink_rate(&mut self, f: &HashMap<(u32, u32), u64>, at: &HashMap<(u32, u32), i64>, g: &mut GpuSample) {
        let (mut tx, mut rx, mut when) = (0u64, 0u64, i64::MIN);
        let prev_links = std::mem::take(&mut self.nvlink_links_prev);
        self.nvlink_link_rates.clear();
        for link in 0..self.info.nvlinks {
            let (Some(t), Some(r)) = (f.get(&(FI_NVLINK_TX_KIB, link)), f.get(&(FI_NVLINK_RX_KIB, link))) else {
                self.nvlink_prev = None;
                self.nvlink_link_rates.clear();
                return;
            };
            let at_us = at.get(&(FI_NVLINK_TX_KIB, link)).copied().unwrap_or(i64::MIN);
            let one = Counters { tx: *t, rx: *r, at_us };
            let rate = one.rates_since(prev_links.get(link as usize).copied());
            self.nvlink_link_rates.push(rate.map(|(t, r)| (t * 1024.0, r * 1024.0)));
            self.nvlink_links_prev.push(one);
            tx = tx.saturating_add(*t);
            rx = rx.saturating_add(*r);
            when = when.max(at_us);
        }
        let now = Counters { tx, rx, at_us: when };
        if let Some((t, r)) = now.rates_since(self.nvlink_prev) {
            g.nvlink_tx_bytes_per_second = Some(t * 1024.0);
            g.nvlink_rx_bytes_per_second = Some(r * 1024.0);
        }
        self.nvlink_prev = Some(now);
    }

    /// Takes a GPM sample into a sample buffer kept from earlier passes (nvml-wrapper allocates
    /// and frees one per sample: two more calls every pass) and turns two samples into ratios.
    fn gpm_sample(&mut self, nvml: &'static Nvml, pass: &Pass, o: &mut Outcome) {
        if self.gpm_retry_at.is_some_and(|t| pass.now < t) {
            return;
        }
        self.gpm_retry_at = None;
        let Some(now) = o.ok("gpm_sample", gpm_sample_into(nvml, &self.device, self.gpm_spare.take())) else {
            self.gpm_failed(pass);
            return;
        };
        if let Some((prev, then)) = &self.gpm_prev
            && pass.now.duration_since(*then) >= GPM_MIN_GAP
        {
            match call("nvmlGpmMetricsGet", nvml_wrapper::gpm::gpm_metrics_get(nvml, prev, &now, &GPM_IDS)) {
                Ok(results) => {
                    for (slot, r) in self.gpm_values.iter_mut().zip(results) {
                        *slot = o.ok("gpm_metric", r).map(|m| (m.value / 100.0).clamp(0.0, 1.0));
                    }
                }
                Err(e) => {
                    o.ok::<()>("gpm_metrics", Err(e));
                    // The sample itself is good: it stays the baseline of the next attempt.
                    self.gpm_spare = self.gpm_prev.replace((now, pass.now)).map(|(old, _)| old);
                    self.gpm_failed(pass);
                    return;
                }
            }
        } else if self.gpm_prev.is_some() {
            // Too soon after the previous sample: keep the last ratios and the older sample.
            self.gpm_spare = Some(now);
            return;
        }
        self.gpm_spare = self.gpm_prev.replace((now, pass.now)).map(|(old, _)| old);
    }

    /// A GPM call failed: the ratios are absent until GPM answers again, asked `GPM_RETRY` later.
    fn gpm_failed(&mut self, pass: &Pass) {
        self.gpm_values = [None; 8];
        self.gpm_retry_at = Some(pass.now + GPM_RETRY);
    }

    /// Values that change rarely (limits, error counters, modes, link state), read every slow
    /// pass: what NVML exposes as fields in one call, the rest (and fields a driver does not
    /// answer) through their entry points.
    fn sample_slow(&mut self, nvml: &'static Nvml, o: &mut Outcome) {
        let d = &self.device;
        let k = &mut self.known;
        let mut reqs = vec![
            FieldReq::new(FI_POWER_CURRENT_LIMIT, 0, "power_limit", true),
            FieldReq::new(FI_POWER_DEFAULT_LIMIT, 0, "power_default_limit", true),
            FieldReq::new(FI_POWER_MIN_LIMIT, 0, "power_limit_constraints", true),
            FieldReq::new(FI_POWER_MAX_LIMIT, 0, "power_limit_constraints", true),
            FieldReq::new(FI_ECC_CURRENT, 0, "ecc_mode", true),
            FieldReq::new(FI_ECC_PENDING, 0, "ecc_mode", true),
            FieldReq::new(FI_ECC_SBE_VOL_TOTAL, 0, "ecc", true),
            FieldReq::new(FI_ECC_DBE_VOL_TOTAL, 0, "ecc", true),
            FieldReq::new(FI_ECC_SBE_AGG_TOTAL, 0, "ecc", true),
            FieldReq::new(FI_ECC_DBE_AGG_TOTAL, 0, "ecc", true),
            FieldReq::new(FI_RETIRED_SBE, 0, "retired_pages", true),
            FieldReq::new(FI_RETIRED_DBE, 0, "retired_pages", true),
            FieldReq::new(FI_RETIRED_PENDING, 0, "retired_pages_pending", true),
            FieldReq::new(FI_REMAPPED_COR, 0, "row_remapping", false),
            FieldReq::new(FI_REMAPPED_UNC, 0, "row_remapping", false),
            FieldReq::new(FI_REMAPPED_PENDING, 0, "row_remapping", false),
            FieldReq::new(FI_REMAPPED_FAILURE, 0, "row_remapping", false),
        ];
        for link in 0..self.info.nvlinks {
            reqs.push(FieldReq::new(FI_NVLINK_GET_STATE, link, "nvlink_state", true));
            reqs.push(FieldReq::new(FI_NVLINK_ERROR_DL_CRC, link, "nvlink_errors", true));
            reqs.push(FieldReq::new(FI_NVLINK_ERROR_DL_REPLAY, link, "nvlink_errors", true));
            reqs.push(FieldReq::new(FI_NVLINK_ERROR_DL_RECOVERY, link, "nvlink_errors", true));
        }
        let f = read_fields(nvml, d, &reqs, k, o);
        // A field read, or the single entry point where the driver has no such field.
        macro_rules! pick {
            ($id:expr, $scope:expr, $signal:literal, $single:expr) => {
                match k.field($id) {
                    true => f.get(&($id, $scope)).copied(),
                    false => k.ask(o, $signal, || $single),
                }
            };
        }
        let watts = |mw: u64| mw as f64 / 1000.0;
        let mut s = GpuSample {
            power_limit_watts: pick!(
                FI_POWER_CURRENT_LIMIT,
                0,
                "power_limit",
                call("nvmlDeviceGetPowerManagementLimit", d.power_management_limit()).map(u64::from)
            )
            .map(watts),
            power_default_limit_watts: pick!(
                FI_POWER_DEFAULT_LIMIT,
                0,
                "power_default_limit",
                call("nvmlDeviceGetPowerManagementDefaultLimit", d.power_management_limit_default()).map(u64::from)
            )
            .map(watts),
            ..GpuSample::default()
        };
        if k.field(FI_POWER_MIN_LIMIT) && k.field(FI_POWER_MAX_LIMIT) {
            s.power_min_limit_watts = f.get(&(FI_POWER_MIN_LIMIT, 0)).map(|v| watts(*v));
            s.power_max_limit_watts = f.get(&(FI_POWER_MAX_LIMIT, 0)).map(|v| watts(*v));
        } else if let Some(c) = k.ask(o, "power_limit_constraints", || {
            call("nvmlDeviceGetPowerManagementLimitConstraints", d.power_management_limit_constraints())
        }) {
            s.power_min_limit_watts = Some(f64::from(c.min_limit) / 1000.0);
            s.power_max_limit_watts = Some(f64::from(c.max_limit) / 1000.0);
        }
        if k.field(FI_ECC_CURRENT) && k.field(FI_ECC_PENDING) {
            s.ecc_mode_current = f.get(&(FI_ECC_CURRENT, 0)).map(|v| *v != 0);
            s.ecc_mode_pending = f.get(&(FI_ECC_PENDING, 0)).map(|v| *v != 0);
        } else if let Some(m) = k.ask(o, "ecc_mode", || call("nvmlDeviceGetEccMode", d.is_ecc_enabled())) {
            s.ecc_mode_current = Some(m.currently_enabled);
            s.ecc_mode_pending = Some(m.pending_enabled);
        }
        s.compute_mode =
            k.ask(o, "compute_mode", || call("nvmlDeviceGetComputeMode", d.compute_mode())).map(|m| m.as_c());
        // P-state and video clock on slow passes: two calls per GPU per pass would buy little for
        // what dashboards show of them (docs/nvml-calls.md).
        s.performance_state = k
            .ask(o, "performance_state", || call("nvmlDeviceGetPerformanceState", d.performance_state()))
            .map(|p| p.as_c());
        s.video_clock_hertz = k
            .ask(o, "video_clock", || call("nvmlDeviceGetClockInfo", d.clock_info(Clock::Video)))
            .map(|m| f64::from(m) * 1e6);
        s.persistence_mode =
            k.ask(o, "persistence_mode", || call("nvmlDeviceGetPersistenceMode", d.is_in_persistent_mode()));
        s.mig_enabled = k.ask(o, "mig_mode", || call("nvmlDeviceGetMigMode", d.mig_mode())).map(|m| m.current == 1);
        s.ecc_corrected_volatile_total = pick!(
            FI_ECC_SBE_VOL_TOTAL,
            0,
            "ecc",
            call("nvmlDeviceGetTotalEccErrors", d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile))
        );
        s.ecc_uncorrected_volatile_total = pick!(
            FI_ECC_DBE_VOL_TOTAL,
            0,
            "ecc",
            call("nvmlDeviceGetTotalEccErrors", d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile))
        );
        s.ecc_corrected_aggregate_total = pick!(
            FI_ECC_SBE_AGG_TOTAL,
            0,
            "ecc",
            call("nvmlDeviceGetTotalEccErrors", d.total_ecc_errors(MemoryError::Corrected, EccCounter::Aggregate))
        );
        s.ecc_uncorrected_aggregate_total = pick!(
            FI_ECC_DBE_AGG_TOTAL,
            0,
            "ecc",
            call("nvmlDeviceGetTotalEccErrors", d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate))
        );
        let sbe = pick!(
            FI_RETIRED_SBE,
            0,
            "retired_pages",
            retired_pages(d, RetirementCause::MultipleSingleBitEccErrors).map(|p| p.len() as u64)
        );
        let dbe = pick!(
            FI_RETIRED_DBE,
            0,
            "retired_pages",
            retired_pages(d, RetirementCause::DoubleBitEccError).map(|p| p.len() as u64)
        );
        if let (Some(a), Some(b)) = (sbe, dbe) {
            s.retired_pages_total = Some(a + b);
        }
        s.retired_pages_pending = pick!(
            FI_RETIRED_PENDING,
            0,
            "retired_pages_pending",
            call("nvmlDeviceGetRetiredPagesPendingStatus", d.are_pages_pending_retired()).map(u64::from)
        )
        .map(|v| v != 0);
        s.remapped_rows_correctable_total = f.get(&(FI_REMAPPED_COR, 0)).copied();
        s.remapped_rows_uncorrectable_total = f.get(&(FI_REMAPPED_UNC, 0)).copied();
        s.row_remap_pending = f.get(&(FI_REMAPPED_PENDING, 0)).map(|v| *v != 0);
        s.row_remap_failed = f.get(&(FI_REMAPPED_FAILURE, 0)).map(|v| *v != 0);
        for link in 0..self.info.nvlinks {
            let w = d.link_wrapper_for(link);
            use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
            s.nvlinks.push(NvLinkSample {
                link,
                active: pick!(
                    FI_NVLINK_GET_STATE,
                    link,
                    "nvlink_state",
                    call("nvmlDeviceGetNvLinkState", w.is_active()).map(u64::from)
                )
                .map(|v| v != 0),
                crc_errors_total: pick!(
                    FI_NVLINK_ERROR_DL_CRC,
                    link,
                    "nvlink_errors",
                    call("nvmlDeviceGetNvLinkErrorCounter", w.error_counter(ErrorCounter::DlCrcData))
                ),
                replay_errors_total: pick!(
                    FI_NVLINK_ERROR_DL_REPLAY,
                    link,
                    "nvlink_errors",
                    call("nvmlDeviceGetNvLinkErrorCounter", w.error_counter(ErrorCounter::DlReplay))
                ),
                recovery_errors_total: pick!(
                    FI_NVLINK_ERROR_DL_RECOVERY,
                    link,
                    "nvlink_errors",
                    call("nvmlDeviceGetNvLinkErrorCounter", w.error_counter(ErrorCounter::DlRecovery))
                ),
                // Rates come from the per-pass byte counters.
                ..NvLinkSample::default()
            });
        }
        // The link retrains with the GPU's power state; a slow-pass reading is recent enough.
        s.pcie_link_generation =
            k.ask(o, "pcie_link_generation", || call("nvmlDeviceGetCurrPcieLinkGeneration", d.current_pcie_link_gen()));
        s.pcie_link_width =
            k.ask(o, "pcie_link_width", || call("nvmlDeviceGetCurrPcieLinkWidth", d.current_pcie_link_width()));
        self.slow = s;
        self.slow_unsupported = o.unsupported.keys().cloned().collect();
    }

    /// The GPU's processes: the list and their utilization are read every [`PROCESS_PASSES`]
    /// passes, the last list served in between.
    fn processes(&mut self, nvml: &'static Nvml, pass: &Pass, o: &mut Outcome) -> Vec<ProcessSample> {
        let due = self.proc_at.is_none_or(|t| pass.now.duration_since(t) >= self.process_interval);
        if !due {
            for k in &self.proc_unsupported {
                o.unsupported(k);
            }
            return self.process_samples(nvml);
        }
        self.proc_at = Some(pass.now);
        let d = &self.device;
        let room = self.proc_list.len() + 8;
        let Some(list) = self.known.ask(o, "processes", || compute_processes(nvml, d, room)) else {
            self.proc_list.clear();
            self.proc_unsupported = o.unsupported.keys().filter(|k| *k == "processes").cloned().collect();
            if self.proc_unsupported.is_empty() {
                // A failed read is retried on the next pass.
                self.proc_at = None;
            }
            return Vec::new();
        };
        self.proc_unsupported.clear();
        if !list.is_empty() {
            // Pass the newest timestamp seen, or the driver returns stale samples again.
            match process_utilization(nvml, d, self.last_util_ts, list.len() * 2 + 8) {
                Ok(samples) => {
                    // Every sample since the last read, averaged per process.
                    let mut sums: HashMap<u32, ([f64; 4], u32)> = HashMap::new();
                    for s in samples {
                        self.last_util_ts = self.last_util_ts.max(s.timeStamp);
                        let e = sums.entry(s.pid).or_insert(([0.0; 4], 0));
                        for (sum, pct) in e.0.iter_mut().zip([s.smUtil, s.memUtil, s.encUtil, s.decUtil]) {
                            *sum += f64::from(pct) / 100.0;
                        }
                        e.1 += 1;
                    }
                    for (pid, (sum, n)) in sums {
                        self.proc_util.insert(pid, sum.map(|x| x / f64::from(n)));
                    }
                }
                // NOT_FOUND: nothing newer than last time; keep the previous shares.
                Err(NvmlError::NotFound) => {}
                Err(e) => {
                    o.ok::<()>("process_utilization", Err(e));
                }
            }
        }
        let live: Vec<u32> = list.iter().map(|p| p.pid).collect();
        self.proc_util.retain(|pid, _| live.contains(pid));
        self.proc_names.retain(|pid, _| live.contains(pid));
        self.proc_list = list;
        self.process_samples(nvml)
    }

    /// The last process list read, with each process's utilization and name.
    fn process_samples(&mut self, nvml: &'static Nvml) -> Vec<ProcessSample> {
        let no_enc = self.known.unsupported.contains("encoder_utilization");
        let no_dec = self.known.unsupported.contains("decoder_utilization");
        self.proc_list
            .iter()
            .map(|p| {
                let util = self.proc_util.get(&p.pid);
                ProcessSample {
                    pid: p.pid,
                    // The process sampler replaces this with /proc's comm when it can read it.
                    name: self
                        .proc_names
                        .entry(p.pid)
                        .or_insert_with(|| {
                            call("nvmlSystemGetProcessName", nvml.sys_process_name(p.pid, 64)).unwrap_or_default()
                        })
                        .clone(),
                    gpu_index: self.index,
                    gpu_uuid: self.info.uuid.clone(),
                    gpu_memory_bytes: p.used_gpu_memory,
                    sm_utilization_ratio: util.map(|u| u[0]),
                    memory_utilization_ratio: util.map(|u| u[1]),
                    // The samples carry 0 for an engine the GPU lacks: absent where the GPU's own
                    // encoder or decoder utilization is unsupported.
                    encoder_utilization_ratio: util.filter(|_| !no_enc).map(|u| u[2]),
                    decoder_utilization_ratio: util.filter(|_| !no_dec).map(|u| u[3]),
                    ..ProcessSample::default()
                }
            })
            .collect()
    }
}

/// Takes a GPM sample of `d` into `spare`, or into a newly allocated buffer.
fn gpm_sample_into(
    nvml: &'static Nvml,
    d: &Device<'static>,
    spare: Option<GpmSample<'static>>,
) -> Result<GpmSample<'static>, NvmlError> {
    let lib = nvml.lib();
    let get = lib.nvmlGpmSampleGet.as_ref().map_err(|_| NvmlError::NotSupported)?;
    let sample = match spare {
        Some(s) => s,
        None => {
            let alloc = lib.nvmlGpmSampleAlloc.as_ref().map_err(|_| NvmlError::NotSupported)?;
            let mut handle = std::ptr::null_mut();
            // SAFETY: alloc writes a new sample handle through the pointer.
            nvml_wrapper::error::nvml_try(call("nvmlGpmSampleAlloc", unsafe { alloc(&mut handle) }))?;
            // SAFETY: allocated just now by this library; the GpmSample owns and frees it.
            unsafe { GpmSample::from_handle(nvml, handle) }
        }
    };
    // SAFETY: a live sample of this library and a live device handle.
    let ret = call("nvmlGpmSampleGet", unsafe { get(d.handle(), sample.handle()) });
    if ret != 0 {
        // Dropping the sample frees it.
        call("nvmlGpmSampleFree", ());
    }
    nvml_wrapper::error::nvml_try(ret)?;
    Ok(sample)
}

/// A GPU process and the device memory it uses (`None`: the driver cannot tell).
struct GpuProcess {
    pid: u32,
    used_gpu_memory: Option<u64>,
}

/// NVML's "not available" for a 64-bit value.
const NOT_AVAILABLE_U64: u64 = u64::MAX;
const RET_INSUFFICIENT_SIZE: u32 = 7;

/// Calls an NVML array query with room for `room` items, once more with the size the driver
/// asks for if that was too small. nvml-wrapper asks for the count first: two calls every time.
fn array_query<T>(room: usize, mut call: impl FnMut(&mut u32, *mut T) -> u32) -> Result<Vec<T>, NvmlError> {
    let mut room = room.max(1);
    for _ in 0..2 {
        let mut buf: Vec<T> = Vec::with_capacity(room);
        let mut count = room as u32;
        let ret = call(&mut count, buf.as_mut_ptr());
        if ret == RET_INSUFFICIENT_SIZE {
            room = count as usize + 8;
            continue;
        }
        nvml_wrapper::error::nvml_try(ret)?;
        let n = (count as usize).min(room);
        // SAFETY: the driver wrote `count` (<= room) initialised elements.
        unsafe { buf.set_len(n) };
        return Ok(buf);
    }
    Err(NvmlError::InsufficientSize(Some(room)))
}

/// The compute processes on a GPU, in one call where the last count still fits.
fn compute_processes(nvml: &'static Nvml, d: &Device<'static>, room: usize) -> Result<Vec<GpuProcess>, NvmlError> {
    use nvml_wrapper_sys::bindings::nvmlProcessInfo_t;
    let f = nvml.lib().nvmlDeviceGetComputeRunningProcesses_v3.as_ref().map_err(|_| NvmlError::NotSupported)?;
    let items = array_query::<nvmlProcessInfo_t>(room, |count, buf| {
        // SAFETY: `buf` has room for `*count` elements; the handle is live.
        call("nvmlDeviceGetComputeRunningProcesses_v3", unsafe { f(d.handle(), count, buf) })
    })?;
    Ok(items
        .into_iter()
        .map(|p| GpuProcess { pid: p.pid, used_gpu_memory: Some(p.usedGpuMemory).filter(|m| *m != NOT_AVAILABLE_U64) })
        .collect())
}

/// Per-process utilization samples newer than `last_seen`, in one call where they fit.
fn process_utilization(
    nvml: &'static Nvml,
    d: &Device<'static>,
    last_seen: u64,
    room: usize,
) -> Result<Vec<nvml_wrapper_sys::bindings::nvmlProcessUtilizationSample_t>, NvmlError> {
    let f = nvml.lib().nvmlDeviceGetProcessUtilization.as_ref().map_err(|_| NvmlError::NotSupported)?;
    array_query(room, |count, buf| {
        // SAFETY: `buf` has room for `*count` elements; the handle is live.
        call("nvmlDeviceGetProcessUtilization", unsafe { f(d.handle(), buf, count, last_seen) })
    })
}

fn copy_slow(s: &GpuSample, g: &mut GpuSample) {
    g.power_limit_watts = s.power_limit_watts;
    g.power_default_limit_watts = s.power_default_limit_watts;
    g.power_min_limit_watts = s.power_min_limit_watts;
    g.power_max_limit_watts = s.power_max_limit_watts;
    g.persistence_mode = s.persistence_mode;
    g.mig_enabled = s.mig_enabled;
    g.ecc_corrected_volatile_total = s.ecc_corrected_volatile_total;
    g.ecc_uncorrected_volatile_total = s.ecc_uncorrected_volatile_total;
    g.ecc_corrected_aggregate_total = s.ecc_corrected_aggregate_total;
    g.ecc_uncorrected_aggregate_total = s.ecc_uncorrected_aggregate_total;
    g.retired_pages_total = s.retired_pages_total;
    g.retired_pages_pending = s.retired_pages_pending;
    g.remapped_rows_correctable_total = s.remapped_rows_correctable_total;
    g.remapped_rows_uncorrectable_total = s.remapped_rows_uncorrectable_total;
    g.row_remap_pending = s.row_remap_pending;
    g.row_remap_failed = s.row_remap_failed;
    g.nvlinks = s.nvlinks.clone();
    g.ecc_mode_current = s.ecc_mode_current;
    g.ecc_mode_pending = s.ecc_mode_pending;
    g.compute_mode = s.compute_mode;
    g.performance_state = s.performance_state;
    g.video_clock_hertz = s.video_clock_hertz;
    g.pcie_link_generation = s.pcie_link_generation;
    g.pcie_link_width = s.pcie_link_width;
}

impl Sampler for NvmlSampler {
    fn name(&self) -> &'static str {
        "nvml"
    }

    fn sample(&mut self, snap: &mut NodeSnapshot, pass: &Pass) -> Result<(), SampleError> {
        if self.nvml.is_none() {
            let due = self.last_attempt.is_none_or(|t| pass.now.duration_since(t) >= self.retry);
            if !due {
                snap.agent.driver_up = false;
                return Err(SampleError::Nvml(self.init_error.clone().unwrap_or_default()));
            }
            self.last_attempt = Some(pass.now);
            if let Err(e) = self.init() {
                snap.agent.driver_up = false;
                self.init_error = Some(e.to_string());
                return Err(e);
            }
            self.init_error = None;
            tracing::info!(gpus = self.slots.len(), "NVML initialised");
        }
        let Some(nvml) = self.nvml else { return Ok(()) };
        snap.agent.driver_up = true;
        snap.driver = self.driver.clone();
        let (xid_counts, xid_last) = self.xid.as_ref().map(XidWatcher::counts).unwrap_or_default();
        let mut errors = BTreeMap::new();
        let mut unsupported = BTreeMap::new();
        for slot in &mut self.slots {
            let mut o = Outcome::default();
            let (mut g, procs) = slot.sample(nvml, pass, &mut o);
            if slot.gpm_retry_at.is_some() {
                snap.agent.gpm_unavailable.push(slot.index);
            }
            g.xid_last = xid_last.get(&slot.index).copied();
            g.xid_counts = xid_counts
                .iter()
                .filter(|((gpu, _), _)| *gpu == slot.index)
                .map(|((_, code), n)| (*code, *n))
                .collect();
            for (k, v) in o.errors {
                *errors.entry(k).or_insert(0) += v;
            }
            if !g.lost {
                for k in o.unsupported.into_keys() {
                    *unsupported.entry(k).or_insert(0) += 1;
                }
            }
            snap.gpus.push(g);
            snap.processes.extend(procs);
        }
        for (k, v) in errors {
            *snap.agent.nvml_errors.entry(k).or_insert(0) += v;
        }
        snap.agent.unsupported = unsupported;
        snap.agent.nvml_calls = calls_so_far();
        snap.xid_events = self.xid.as_ref().map(XidWatcher::recent).unwrap_or_default();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Counters;

    #[test]
    fn counter_rates_need_two_readings_apart_in_time() {
        let a = Counters { tx: 1_000, rx: 5_000, at_us: 10_000_000 };
        assert_eq!(a.rates_since(None), None, "one reading: no rate");
        assert_eq!(a.rates_since(Some(a)), None, "no time between the readings: no rate, not 0");
        let b = Counters { tx: 401_000, rx: 205_000, at_us: 10_500_000 };
        assert_eq!(b.rates_since(Some(a)), Some((800_000.0, 400_000.0)));
        let reset = Counters { tx: 10, rx: 205_000, at_us: 11_000_000 };
        assert_eq!(reset.rates_since(Some(b)), None, "a counter that went back");
        let idle = Counters { at_us: 11_000_000, ..b };
        assert_eq!(idle.rates_since(Some(b)), Some((0.0, 0.0)), "no traffic over 0.5 s is a measured 0");
    }
}
