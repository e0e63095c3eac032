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
use nvml_wrapper::enums::device::{SampleValue, UsedGpuMemory};
use nvml_wrapper::enums::gpm::GpmMetricId;
use nvml_wrapper::error::NvmlError;
use nvml_wrapper::gpm::GpmSample;
use nvml_wrapper::structs::device::FieldId;
use nvml_wrapper::{Device, Nvml};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const FI_MEMORY_TEMP: u32 = 82;
const FI_NVLINK_LINK_COUNT: u32 = 91;
const FI_NVLINK_TX_KIB: u32 = 138;
const FI_NVLINK_RX_KIB: u32 = 139;
const FI_REMAPPED_COR: u32 = 142;
const FI_REMAPPED_UNC: u32 = 143;
const FI_REMAPPED_PENDING: u32 = 144;
const FI_REMAPPED_FAILURE: u32 = 145;

/// GPM needs its two samples at least this far apart.
const GPM_MIN_GAP: Duration = Duration::from_millis(100);

/// Per-pass bookkeeping of NVML outcomes.
#[derive(Default)]
struct Outcome {
    errors: BTreeMap<String, u64>,
    unsupported: BTreeMap<String, u64>,
    lost: bool,
}

impl Outcome {
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
    sm_clock_max: Option<f64>,
    mem_clock_max: Option<f64>,
    pcie_gen_max: Option<u32>,
    pcie_width_max: Option<u32>,
    nvlinks: u32,
    gpm: bool,
}

/// Per-GPU state kept between passes.
struct GpuSlot {
    index: u32,
    device: Device<'static>,
    info: StaticInfo,
    lost: bool,
    last_util_ts: u64,
    proc_util: HashMap<u32, (f64, f64)>,
    proc_names: HashMap<u32, String>,
    gpm_prev: Option<(GpmSample<'static>, Instant)>,
    gpm_values: [Option<f64>; 8],
    nvlink_prev: Option<(u64, u64, Instant)>,
    slow: GpuSample,
    fans: super::fan::Fans,
    inventory: super::topology::Inventory,
    mig: super::mig::Instances,
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
}

impl NvmlSampler {
    /// A sampler that loads NVML from `lib` (default `libnvidia-ml.so.1`) on its first pass.
    pub fn new(lib: Option<PathBuf>, retry: Duration) -> NvmlSampler {
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
        let nvml = builder.init().map_err(|e| {
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
            driver_version: nvml.sys_driver_version().unwrap_or_default(),
            cuda_driver_version: nvml.sys_cuda_driver_version().ok().map(|v| v as u32),
            nvml_version: nvml.sys_nvml_version().ok(),
        });
        let count = nvml.device_count().map_err(|e| SampleError::Nvml(format!("nvmlDeviceGetCount failed: {e}")))?;
        let mut live = Vec::new();
        for index in 0..count {
            let device = match nvml.device_by_index(index) {
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
                gpm_prev: None,
                gpm_values: [None; 8],
                nvlink_prev: None,
                slow: GpuSample::default(),
                fans: Default::default(),
                inventory: Default::default(),
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
    let nvlinks = match d.field_values_for(&[FieldId(FI_NVLINK_LINK_COUNT)]) {
        Ok(v) => v.into_iter().next().and_then(|r| r.ok()).and_then(|s| u64_value(s.value)).unwrap_or(0) as u32,
        Err(_) => 0,
    };
    StaticInfo {
        uuid: o.ok("uuid", d.uuid()).unwrap_or_default(),
        model: o.ok("name", d.name()).unwrap_or_default(),
        serial: o.ok("serial", d.serial()),
        pci_bus_id: o.ok("pci_info", d.pci_info()).map(|p| p.bus_id),
        compute_capability: o
            .ok("compute_capability", d.cuda_compute_capability())
            .map(|c| format!("{}.{}", c.major, c.minor)),
        slowdown_c: o
            .ok("temperature_slowdown", d.temperature_threshold(TemperatureThreshold::Slowdown))
            .map(f64::from),
        shutdown_c: o
            .ok("temperature_shutdown", d.temperature_threshold(TemperatureThreshold::Shutdown))
            .map(f64::from),
        sm_clock_max: o.ok("sm_clock_max", d.max_clock_info(Clock::SM)).map(|m| f64::from(m) * 1e6),
        mem_clock_max: o.ok("memory_clock_max", d.max_clock_info(Clock::Memory)).map(|m| f64::from(m) * 1e6),
        pcie_gen_max: o.ok("pcie_link_generation_max", d.max_pcie_link_gen()),
        pcie_width_max: o.ok("pcie_link_width_max", d.max_pcie_link_width()),
        nvlinks,
        gpm: d.gpm_support().unwrap_or(false),
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

/// Field values by id; NOT_SUPPORTED per field is counted under `signal`.
fn fields(d: &Device<'static>, ids: &[(u32, &str)], o: &mut Outcome) -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    let req: Vec<FieldId> = ids.iter().map(|(id, _)| FieldId(*id)).collect();
    let Some(values) = o.ok("field_values", d.field_values_for(&req)) else {
        return out;
    };
    for ((id, signal), v) in ids.iter().zip(values) {
        if let Some(x) = o.ok(signal, v.and_then(|s| s.value)).and_then(|sv| u64_value(Ok(sv))) {
            out.insert(*id, x);
        }
    }
    out
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
        if let Some(u) = o.ok("utilization", d.utilization_rates()) {
            g.utilization_ratio = Some(f64::from(u.gpu) / 100.0);
            g.memory_copy_utilization_ratio = Some(f64::from(u.memory) / 100.0);
        }
        g.encoder_utilization_ratio =
            o.ok("encoder_utilization", d.encoder_utilization()).map(|u| f64::from(u.utilization) / 100.0);
        g.decoder_utilization_ratio =
            o.ok("decoder_utilization", d.decoder_utilization()).map(|u| f64::from(u.utilization) / 100.0);
        if let Some(m) = o.ok("memory", d.memory_info()) {
            g.memory_total_bytes = Some(m.total);
            g.memory_used_bytes = Some(m.used);
            g.memory_free_bytes = Some(m.free);
            g.memory_reserved_bytes = Some(m.reserved);
        }
        g.temperature_celsius = o.ok("temperature", d.temperature(TemperatureSensor::Gpu)).map(f64::from);
        g.fan_speed_ratio = o.ok("fan_speed", self.fans.mean_speed(d));
        self.inventory.fill(&mut g);
        g.power_watts = o.ok("power", d.power_usage()).map(|mw| f64::from(mw) / 1000.0);
        g.energy_joules = o.ok("energy", d.total_energy_consumption()).map(|mj| mj as f64 / 1000.0);
        g.sm_clock_hertz = o.ok("sm_clock", d.clock_info(Clock::SM)).map(|m| f64::from(m) * 1e6);
        g.memory_clock_hertz = o.ok("memory_clock", d.clock_info(Clock::Memory)).map(|m| f64::from(m) * 1e6);
        g.graphics_clock_hertz = o.ok("graphics_clock", d.clock_info(Clock::Graphics)).map(|m| f64::from(m) * 1e6);
        g.clock_event_reasons = o.ok("clock_event_reasons", d.current_throttle_reasons()).map(|r| r.bits());
        g.pcie_tx_bytes_per_second =
            o.ok("pcie_tx", d.pcie_throughput(PcieUtilCounter::Send)).map(|k| f64::from(k) * 1024.0);
        g.pcie_rx_bytes_per_second =
            o.ok("pcie_rx", d.pcie_throughput(PcieUtilCounter::Receive)).map(|k| f64::from(k) * 1024.0);
        g.pcie_link_generation = o.ok("pcie_link_generation", d.current_pcie_link_gen());
        g.pcie_link_width = o.ok("pcie_link_width", d.current_pcie_link_width());
        g.pcie_replays_total = o.ok("pcie_replays", d.pcie_replay_counter()).map(u64::from);
        let f = fields(d, &[(FI_MEMORY_TEMP, "memory_temperature")], o);
        g.memory_temperature_celsius = f.get(&FI_MEMORY_TEMP).map(|t| *t as f64);
        if self.info.nvlinks > 0 {
            self.nvlink_sample(nvml, &mut g, pass, o);
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
        if pass.slow || self.slow.power_limit_watts.is_none() {
            self.sample_slow(o);
        }
        copy_slow(&self.slow, &mut g);
        self.mig.sample(nvml, &self.device, pass.slow, self.info.gpm, pass.now, &mut g);
        let procs = self.processes(nvml, o);
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

    /// Per-link NVLink data counters (KiB) summed, turned into a rate between passes.
    fn nvlink_sample(&mut self, nvml: &'static Nvml, g: &mut GpuSample, pass: &Pass, o: &mut Outcome) {
        let Some((tx, rx)) = nvlink_totals(nvml, &self.device, self.info.nvlinks, o) else {
            return;
        };
        if let Some((ptx, prx, then)) = self.nvlink_prev {
            let dt = pass.now.duration_since(then).as_secs_f64();
            if dt > 0.0 && tx >= ptx && rx >= prx {
                g.nvlink_tx_bytes_per_second = Some((tx - ptx) as f64 * 1024.0 / dt);
                g.nvlink_rx_bytes_per_second = Some((rx - prx) as f64 * 1024.0 / dt);
            }
        }
        self.nvlink_prev = Some((tx, rx, pass.now));
    }

    fn gpm_sample(&mut self, nvml: &'static Nvml, pass: &Pass, o: &mut Outcome) {
        let Some(now) = o.ok("gpm_sample", self.device.gpm_sample()) else {
            return;
        };
        if let Some((prev, then)) = &self.gpm_prev
            && pass.now.duration_since(*then) >= GPM_MIN_GAP
        {
            match nvml_wrapper::gpm::gpm_metrics_get(nvml, prev, &now, &GPM_IDS) {
                Ok(results) => {
                    for (slot, r) in self.gpm_values.iter_mut().zip(results) {
                        *slot = o.ok("gpm_metric", r).map(|m| (m.value / 100.0).clamp(0.0, 1.0));
                    }
                }
                Err(e) => {
                    o.ok::<()>("gpm_metrics", Err(e));
                }
            }
        } else if self.gpm_prev.is_some() {
            // Too soon after the previous sample: keep the last ratios and the older sample.
            return;
        }
        self.gpm_prev = Some((now, pass.now));
    }

    fn sample_slow(&mut self, o: &mut Outcome) {
        let d = &self.device;
        let mut s = GpuSample {
            power_limit_watts: o.ok("power_limit", d.power_management_limit()).map(|mw| f64::from(mw) / 1000.0),
            ..GpuSample::default()
        };
        s.power_default_limit_watts =
            o.ok("power_default_limit", d.power_management_limit_default()).map(|mw| f64::from(mw) / 1000.0);
        if let Some(c) = o.ok("power_limit_constraints", d.power_management_limit_constraints()) {
            s.power_min_limit_watts = Some(f64::from(c.min_limit) / 1000.0);
            s.power_max_limit_watts = Some(f64::from(c.max_limit) / 1000.0);
        }
        s.persistence_mode = o.ok("persistence_mode", d.is_in_persistent_mode());
        s.mig_enabled = o.ok("mig_mode", d.mig_mode()).map(|m| m.current == 1);
        s.ecc_corrected_volatile_total = o.ok("ecc", d.total_ecc_errors(MemoryError::Corrected, EccCounter::Volatile));
        s.ecc_uncorrected_volatile_total =
            o.ok("ecc", d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Volatile));
        s.ecc_corrected_aggregate_total =
            o.ok("ecc", d.total_ecc_errors(MemoryError::Corrected, EccCounter::Aggregate));
        s.ecc_uncorrected_aggregate_total =
            o.ok("ecc", d.total_ecc_errors(MemoryError::Uncorrected, EccCounter::Aggregate));
        let sbe = o.ok("retired_pages", d.retired_pages(RetirementCause::MultipleSingleBitEccErrors));
        let dbe = o.ok("retired_pages", d.retired_pages(RetirementCause::DoubleBitEccError));
        if let (Some(a), Some(b)) = (sbe, dbe) {
            s.retired_pages_total = Some((a.len() + b.len()) as u64);
        }
        s.retired_pages_pending = o.ok("retired_pages_pending", d.are_pages_pending_retired());
        let f = fields(
            d,
            &[
                (FI_REMAPPED_COR, "row_remapping"),
                (FI_REMAPPED_UNC, "row_remapping"),
                (FI_REMAPPED_PENDING, "row_remapping"),
                (FI_REMAPPED_FAILURE, "row_remapping"),
            ],
            o,
        );
        s.remapped_rows_correctable_total = f.get(&FI_REMAPPED_COR).copied();
        s.remapped_rows_uncorrectable_total = f.get(&FI_REMAPPED_UNC).copied();
        s.row_remap_pending = f.get(&FI_REMAPPED_PENDING).map(|v| *v != 0);
        s.row_remap_failed = f.get(&FI_REMAPPED_FAILURE).map(|v| *v != 0);
        for link in 0..self.info.nvlinks {
            let w = d.link_wrapper_for(link);
            use nvml_wrapper::enum_wrappers::nv_link::ErrorCounter;
            s.nvlinks.push(NvLinkSample {
                link,
                active: o.ok("nvlink_state", w.is_active()),
                crc_errors_total: o.ok("nvlink_errors", w.error_counter(ErrorCounter::DlCrcData)),
                replay_errors_total: o.ok("nvlink_errors", w.error_counter(ErrorCounter::DlReplay)),
                recovery_errors_total: o.ok("nvlink_errors", w.error_counter(ErrorCounter::DlRecovery)),
            });
        }
        self.slow = s;
    }

    fn processes(&mut self, nvml: &'static Nvml, o: &mut Outcome) -> Vec<ProcessSample> {
        let d = &self.device;
        let Some(list) = o.ok("processes", d.running_compute_processes()) else {
            return Vec::new();
        };
        // Pass the newest timestamp seen, or the driver returns stale samples again.
        match d.process_utilization_stats(self.last_util_ts) {
            Ok(samples) => {
                for s in samples {
                    self.last_util_ts = self.last_util_ts.max(s.timestamp);
                    self.proc_util.insert(s.pid, (f64::from(s.sm_util) / 100.0, f64::from(s.mem_util) / 100.0));
                }
            }
            // NOT_FOUND: nothing newer than last time; keep the previous shares.
            Err(NvmlError::NotFound) => {}
            Err(e) => {
                o.ok::<()>("process_utilization", Err(e));
            }
        }
        let live: Vec<u32> = list.iter().map(|p| p.pid).collect();
        self.proc_util.retain(|pid, _| live.contains(pid));
        self.proc_names.retain(|pid, _| live.contains(pid));
        list.into_iter()
            .map(|p| {
                let util = self.proc_util.get(&p.pid);
                ProcessSample {
                    pid: p.pid,
                    // The process sampler replaces this with /proc's comm when it can read it.
                    name: self
                        .proc_names
                        .entry(p.pid)
                        .or_insert_with(|| nvml.sys_process_name(p.pid, 64).unwrap_or_default())
                        .clone(),
                    gpu_index: self.index,
                    gpu_uuid: self.info.uuid.clone(),
                    gpu_memory_bytes: match p.used_gpu_memory {
                        UsedGpuMemory::Used(b) => Some(b),
                        UsedGpuMemory::Unavailable => None,
                    },
                    sm_utilization_ratio: util.map(|u| u.0),
                    memory_utilization_ratio: util.map(|u| u.1),
                    ..ProcessSample::default()
                }
            })
            .collect()
    }
}

/// Sums the per-link NVLink data counters (KiB, fields 138/139). The link travels in the
/// request's scope id, which nvml-wrapper's field query does not expose, so this one call goes
/// through the raw entry point.
fn nvlink_totals(nvml: &'static Nvml, d: &Device<'static>, links: u32, o: &mut Outcome) -> Option<(u64, u64)> {
    use nvml_wrapper_sys::bindings::nvmlFieldValue_t;
    let Ok(f) = nvml.lib().nvmlDeviceGetFieldValues.as_ref() else {
        o.ok::<()>("nvlink_throughput", Err(NvmlError::NotSupported));
        return None;
    };
    let mut req: Vec<nvmlFieldValue_t> = (0..links)
        .flat_map(|l| [(FI_NVLINK_TX_KIB, l), (FI_NVLINK_RX_KIB, l)])
        .map(|(id, l)| {
            // SAFETY: nvmlFieldValue_t is plain old data; all-zero is a valid request.
            let mut v: nvmlFieldValue_t = unsafe { std::mem::zeroed() };
            v.fieldId = id;
            v.scopeId = l;
            v
        })
        .collect();
    // SAFETY: the handle belongs to this live NVML instance and `req` holds `len` requests.
    let ret = unsafe { f(d.handle(), req.len() as i32, req.as_mut_ptr()) };
    if ret != 0 {
        o.ok::<()>("nvlink_throughput", Err(nvml_wrapper::error::nvml_try(ret).err().unwrap_or(NvmlError::Unknown)));
        return None;
    }
    let (mut tx, mut rx) = (0u64, 0u64);
    for v in &req {
        if v.nvmlReturn != 0 {
            o.ok::<()>(
                "nvlink_throughput",
                Err(nvml_wrapper::error::nvml_try(v.nvmlReturn).err().unwrap_or(NvmlError::Unknown)),
            );
            return None;
        }
        // SAFETY: these fields are unsigned long long counters.
        let x = unsafe { v.value.ullVal };
        if v.fieldId == FI_NVLINK_TX_KIB { tx += x } else { rx += x }
    }
    Some((tx, rx))
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
        snap.xid_events = self.xid.as_ref().map(XidWatcher::recent).unwrap_or_default();
        Ok(())
    }
}
