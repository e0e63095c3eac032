//! The metric catalogue: every exported signal declared once.
//!
//! Prometheus encoding, OTLP encoding, OTLP decoding in the collector, dashboards and docs all
//! walk [`CATALOGUE`]. Each row carries an [`Accessor`] that reads the value out of a snapshot
//! (returning `None` when absent) and writes a decoded value back, so encode→decode is symmetric
//! by construction.

use crate::model::{CpuSample, DiskSample, GpuSample, HostSample, NicSample, NvLinkSample, ProcessSample};
use crate::units::Unit;

/// How a signal behaves over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A value that goes up and down (OTLP gauge).
    Gauge,
    /// A level that can go up and down but is additive, like memory in use (OTLP non-monotonic sum,
    /// Prometheus gauge).
    UpDownCounter,
    /// A monotonically increasing count (OTLP cumulative monotonic sum, Prometheus `_total`).
    Counter,
}

/// What one series of the signal describes; decides the labels it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One GPU (`gpu`, `uuid`, `model`).
    Gpu,
    /// One NVLink link of a GPU (GPU labels + `link`).
    NvLink,
    /// One process on one GPU (GPU labels + `pid`, `process`, container/pod labels).
    Process,
    /// The whole host.
    Host,
    /// One CPU core (`cpu`).
    Cpu,
    /// One network interface (`interface`, `kind`).
    Nic,
    /// One block device (`device`).
    Disk,
}

/// The dcgm-exporter name a signal is also served under in compatibility mode.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DcgmAlias {
    /// dcgm-exporter field name, e.g. `DCGM_FI_DEV_GPU_UTIL`.
    pub name: &'static str,
    /// Kind as dcgm-exporter declares it (its counters carry no `_total`).
    pub kind: MetricKind,
    /// Multiply the base-unit value by this to get dcgm-exporter's unit (100 for %, 1e-6 for MHz).
    pub scale: f64,
}

/// Reads a signal from a snapshot part and writes a decoded value back.
#[derive(Clone, Copy)]
pub enum Accessor {
    /// A GPU value.
    Gpu(fn(&GpuSample) -> Option<f64>, fn(&mut GpuSample, f64)),
    /// A GPU value split by one label (clock event reason, XID code): returns (label value, value).
    GpuLabelled(fn(&GpuSample) -> Vec<(String, f64)>, fn(&mut GpuSample, &str, f64)),
    /// A per-link NVLink value.
    NvLink(fn(&NvLinkSample) -> Option<f64>, fn(&mut NvLinkSample, f64)),
    /// A per-process value.
    Process(fn(&ProcessSample) -> Option<f64>, fn(&mut ProcessSample, f64)),
    /// A whole-host value.
    Host(fn(&HostSample) -> Option<f64>, fn(&mut HostSample, f64)),
    /// A per-core value.
    Cpu(fn(&CpuSample) -> Option<f64>, fn(&mut CpuSample, f64)),
    /// A per-interface value.
    Nic(fn(&NicSample) -> Option<f64>, fn(&mut NicSample, f64)),
    /// A per-device value.
    Disk(fn(&DiskSample) -> Option<f64>, fn(&mut DiskSample, f64)),
}

impl std::fmt::Debug for Accessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Accessor::Gpu(..) => "Gpu",
            Accessor::GpuLabelled(..) => "GpuLabelled",
            Accessor::NvLink(..) => "NvLink",
            Accessor::Process(..) => "Process",
            Accessor::Host(..) => "Host",
            Accessor::Cpu(..) => "Cpu",
            Accessor::Nic(..) => "Nic",
            Accessor::Disk(..) => "Disk",
        })
    }
}

/// One signal, declared once.
#[derive(Debug, Clone, Copy)]
pub struct MetricDef {
    /// Prometheus name (native mode).
    pub prometheus: &'static str,
    /// OTLP metric name (semantic convention where one exists, else `gpuscope.*`).
    pub otlp: &'static str,
    /// Fixed OTLP attributes that distinguish this signal from others sharing the OTLP name.
    pub otlp_attributes: &'static [(&'static str, &'static str)],
    /// Base unit.
    pub unit: Unit,
    /// Gauge, up-down counter or counter.
    pub kind: MetricKind,
    /// What one series describes.
    pub scope: Scope,
    /// The extra label of a [`Accessor::GpuLabelled`] signal (`reason`, `xid`) or `link`.
    pub label: Option<&'static str>,
    /// One-line help text.
    pub help: &'static str,
    /// dcgm-exporter name in compatibility mode.
    pub dcgm: Option<DcgmAlias>,
    /// How to read and write the value.
    pub accessor: Accessor,
}

impl MetricDef {
    /// The row with this Prometheus name.
    pub fn by_prometheus(name: &str) -> Option<&'static MetricDef> {
        CATALOGUE.iter().find(|m| m.prometheus == name)
    }

    /// The row with this OTLP name whose fixed attributes all appear in `attrs`.
    pub fn by_otlp<'a>(name: &str, attr: impl FnMut(&str) -> Option<&'a str>) -> Option<&'static MetricDef> {
        Self::otlp_candidates(name).and_then(|c| Self::pick(c, attr))
    }

    /// The rows sharing this OTLP name (decoders look this up once per metric, then [`Self::pick`]
    /// per data point).
    pub fn otlp_candidates(name: &str) -> Option<&'static [&'static MetricDef]> {
        static BY_NAME: std::sync::OnceLock<std::collections::HashMap<&'static str, Vec<&'static MetricDef>>> =
            std::sync::OnceLock::new();
        let map = BY_NAME.get_or_init(|| {
            let mut m: std::collections::HashMap<&'static str, Vec<&'static MetricDef>> =
                std::collections::HashMap::new();
            for d in CATALOGUE {
                m.entry(d.otlp).or_default().push(d);
            }
            m
        });
        map.get(name).map(Vec::as_slice)
    }

    /// The candidate whose fixed attributes all appear in `attrs`.
    pub fn pick<'a>(
        candidates: &[&'static MetricDef],
        mut attr: impl FnMut(&str) -> Option<&'a str>,
    ) -> Option<&'static MetricDef> {
        candidates.iter().copied().find(|m| m.otlp_attributes.iter().all(|(k, v)| attr(k) == Some(*v)))
    }
}

/// Conversion between a model field's type and the catalogue's `f64` values.
pub trait MetricValue: Sized {
    /// The value as a float.
    fn to_f64(&self) -> f64;
    /// The value from a float (rounded for integers, `> 0.5` for booleans).
    fn from_f64(v: f64) -> Self;
}

impl MetricValue for f64 {
    fn to_f64(&self) -> f64 {
        *self
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}
impl MetricValue for u64 {
    fn to_f64(&self) -> f64 {
        *self as f64
    }
    fn from_f64(v: f64) -> Self {
        v.round().max(0.0) as u64
    }
}
impl MetricValue for u32 {
    fn to_f64(&self) -> f64 {
        f64::from(*self)
    }
    fn from_f64(v: f64) -> Self {
        v.round().clamp(0.0, f64::from(u32::MAX)) as u32
    }
}
impl MetricValue for bool {
    fn to_f64(&self) -> f64 {
        if *self { 1.0 } else { 0.0 }
    }
    fn from_f64(v: f64) -> Self {
        v > 0.5
    }
}

/// OTLP attribute keys, shared by the encoder (agent) and the decoder (collector).
pub mod otlp_keys {
    /// GPU UUID (semantic convention `hw.id`).
    pub const HW_ID: &str = "hw.id";
    /// `gpu` for GPU series.
    pub const HW_TYPE: &str = "hw.type";
    /// GPU product name.
    pub const HW_MODEL: &str = "hw.model";
    /// GPU vendor.
    pub const HW_VENDOR: &str = "hw.vendor";
    /// NVML index of the GPU.
    pub const GPU_INDEX: &str = "gpuscope.gpu.index";
    /// Compute capability (on `gpuscope.gpu.up` points).
    pub const GPU_CC: &str = "gpuscope.gpu.compute_capability";
    /// Board serial (on `gpuscope.gpu.up` points).
    pub const GPU_SERIAL: &str = "gpuscope.gpu.serial";
    /// PCI bus id (on `gpuscope.gpu.up` points).
    pub const GPU_PCI: &str = "gpuscope.gpu.pci_bus_id";
    /// Process id.
    pub const PID: &str = "process.pid";
    /// Process name.
    pub const PROCESS: &str = "process.executable.name";
    /// Process owner.
    pub const OWNER: &str = "process.owner";
    /// Container id.
    pub const CONTAINER: &str = "container.id";
    /// Kubernetes pod name.
    pub const POD: &str = "k8s.pod.name";
    /// Kubernetes namespace.
    pub const NAMESPACE: &str = "k8s.namespace.name";
    /// Kubernetes pod UID.
    pub const POD_UID: &str = "k8s.pod.uid";
    /// CPU core.
    pub const CPU: &str = "cpu.logical_number";
    /// Network interface.
    pub const INTERFACE: &str = "network.interface.name";
    /// Ethernet or InfiniBand.
    pub const NIC_KIND: &str = "gpuscope.network.kind";
    /// Block device.
    pub const DEVICE: &str = "system.device";
    /// Host name (resource).
    pub const HOST_NAME: &str = "host.name";
    /// Machine id (resource).
    pub const HOST_ID: &str = "host.id";
    /// Job label (resource).
    pub const JOB: &str = "gpuscope.job";
    /// Node labels are resource attributes with this prefix.
    pub const LABEL_PREFIX: &str = "gpuscope.label.";
    /// NVIDIA driver version (resource).
    pub const DRIVER: &str = "gpuscope.driver.version";

    /// The OTLP attribute that carries a labelled signal's extra label.
    pub fn for_label(label: &str) -> &'static str {
        match label {
            "reason" => "gpuscope.clock_event.reason",
            "xid" => "gpuscope.xid.code",
            "link" => "gpuscope.nvlink.link",
            "cpu" => CPU,
            _ => "gpuscope.label",
        }
    }
}

/// NVML clock event (throttle) reason bits and their label values.
pub const CLOCK_EVENT_REASONS: &[(u64, &str)] = &[
    (0x1, "gpu_idle"),
    (0x2, "applications_clocks_setting"),
    (0x4, "sw_power_cap"),
    (0x8, "hw_slowdown"),
    (0x10, "sync_boost"),
    (0x20, "sw_thermal_slowdown"),
    (0x40, "hw_thermal_slowdown"),
    (0x80, "hw_power_brake_slowdown"),
];

macro_rules! field {
    ($variant:ident, $field:ident) => {
        Accessor::$variant(
            |s| s.$field.as_ref().map(MetricValue::to_f64),
            |s, v| s.$field = Some(MetricValue::from_f64(v)),
        )
    };
}

const fn dcgm(name: &'static str, kind: MetricKind, scale: f64) -> Option<DcgmAlias> {
    Some(DcgmAlias { name, kind, scale })
}

#[allow(clippy::too_many_arguments)]
const fn def(
    prometheus: &'static str,
    otlp: &'static str,
    otlp_attributes: &'static [(&'static str, &'static str)],
    unit: Unit,
    kind: MetricKind,
    scope: Scope,
    help: &'static str,
    dcgm: Option<DcgmAlias>,
    accessor: Accessor,
) -> MetricDef {
    MetricDef { prometheus, otlp, otlp_attributes, unit, kind, scope, label: None, help, dcgm, accessor }
}

const fn labelled(mut d: MetricDef, label: &'static str) -> MetricDef {
    d.label = Some(label);
    d
}

const MIB: f64 = 1.0 / 1_048_576.0;
use MetricKind::{Counter, Gauge, UpDownCounter};
use Scope as S;
use Unit as U;

/// Every signal gpuscope exports, in the order exporters emit them.
pub static CATALOGUE: &[MetricDef] = &[
    // ---- GPU state and utilization
    def(
        "gpuscope_gpu_up",
        "gpuscope.gpu.up",
        &[],
        U::State,
        Gauge,
        S::Gpu,
        "1 when the GPU answers, 0 when it is lost (fallen off the bus).",
        None,
        Accessor::Gpu(|g| Some(if g.lost { 0.0 } else { 1.0 }), |g, v| g.lost = v < 0.5),
    ),
    def(
        "gpuscope_gpu_utilization_ratio",
        "hw.gpu.utilization",
        &[("hw.gpu.task", "general")],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Fraction of time one or more kernels ran on the GPU (NVML, coarse).",
        dcgm("DCGM_FI_DEV_GPU_UTIL", Gauge, 100.0),
        field!(Gpu, utilization_ratio),
    ),
    def(
        "gpuscope_gpu_memory_copy_utilization_ratio",
        "hw.gpu.memory.utilization",
        &[],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Fraction of time device memory was being read or written.",
        dcgm("DCGM_FI_DEV_MEM_COPY_UTIL", Gauge, 100.0),
        field!(Gpu, memory_copy_utilization_ratio),
    ),
    def(
        "gpuscope_gpu_encoder_utilization_ratio",
        "hw.gpu.utilization",
        &[("hw.gpu.task", "encoder")],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Video encoder utilization.",
        dcgm("DCGM_FI_DEV_ENC_UTIL", Gauge, 100.0),
        field!(Gpu, encoder_utilization_ratio),
    ),
    def(
        "gpuscope_gpu_decoder_utilization_ratio",
        "hw.gpu.utilization",
        &[("hw.gpu.task", "decoder")],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Video decoder utilization.",
        dcgm("DCGM_FI_DEV_DEC_UTIL", Gauge, 100.0),
        field!(Gpu, decoder_utilization_ratio),
    ),
    // ---- profiling ratios (GPM on Hopper+)
    def(
        "gpuscope_gpu_graphics_active_ratio",
        "gpuscope.gpu.graphics.active",
        &[],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Fraction of time the graphics/compute engine was active (profiling).",
        dcgm("DCGM_FI_PROF_GR_ENGINE_ACTIVE", Gauge, 1.0),
        field!(Gpu, graphics_active_ratio),
    ),
    def(
        "gpuscope_gpu_sm_active_ratio",
        "gpuscope.gpu.sm.active",
        &[],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Fraction of SM time with at least one warp resident (profiling).",
        dcgm("DCGM_FI_PROF_SM_ACTIVE", Gauge, 1.0),
        field!(Gpu, sm_active_ratio),
    ),
    def(
        "gpuscope_gpu_sm_occupancy_ratio",
        "gpuscope.gpu.sm.occupancy",
        &[],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Resident warps over the maximum the SMs can hold (profiling).",
        dcgm("DCGM_FI_PROF_SM_OCCUPANCY", Gauge, 1.0),
        field!(Gpu, sm_occupancy_ratio),
    ),
    def(
        "gpuscope_gpu_tensor_active_ratio",
        "gpuscope.gpu.pipe.active",
        &[("gpuscope.pipe", "tensor")],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Fraction of cycles any tensor pipe was active (profiling).",
        dcgm("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", Gauge, 1.0),
        field!(Gpu, tensor_active_ratio),
    ),
    def(
        "gpuscope_gpu_fp64_active_ratio",
        "gpuscope.gpu.pipe.active",
        &[("gpuscope.pipe", "fp64")],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Fraction of cycles the FP64 pipe was active (profiling).",
        dcgm("DCGM_FI_PROF_PIPE_FP64_ACTIVE", Gauge, 1.0),
        field!(Gpu, fp64_active_ratio),
    ),
    def(
        "gpuscope_gpu_fp32_active_ratio",
        "gpuscope.gpu.pipe.active",
        &[("gpuscope.pipe", "fp32")],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Fraction of cycles the FP32 pipe was active (profiling).",
        dcgm("DCGM_FI_PROF_PIPE_FP32_ACTIVE", Gauge, 1.0),
        field!(Gpu, fp32_active_ratio),
    ),
    def(
        "gpuscope_gpu_fp16_active_ratio",
        "gpuscope.gpu.pipe.active",
        &[("gpuscope.pipe", "fp16")],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Fraction of cycles the FP16 pipe was active (profiling).",
        dcgm("DCGM_FI_PROF_PIPE_FP16_ACTIVE", Gauge, 1.0),
        field!(Gpu, fp16_active_ratio),
    ),
    def(
        "gpuscope_gpu_dram_active_ratio",
        "gpuscope.gpu.dram.active",
        &[],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Fraction of cycles device memory was busy (DRAM bandwidth utilization, profiling).",
        dcgm("DCGM_FI_PROF_DRAM_ACTIVE", Gauge, 1.0),
        field!(Gpu, dram_active_ratio),
    ),
    // ---- memory
    def(
        "gpuscope_gpu_memory_total_bytes",
        "hw.gpu.memory.limit",
        &[],
        U::Bytes,
        UpDownCounter,
        S::Gpu,
        "Total framebuffer memory.",
        None,
        field!(Gpu, memory_total_bytes),
    ),
    def(
        "gpuscope_gpu_memory_used_bytes",
        "hw.gpu.memory.usage",
        &[],
        U::Bytes,
        UpDownCounter,
        S::Gpu,
        "Framebuffer memory in use.",
        dcgm("DCGM_FI_DEV_FB_USED", Gauge, MIB),
        field!(Gpu, memory_used_bytes),
    ),
    def(
        "gpuscope_gpu_memory_free_bytes",
        "gpuscope.gpu.memory.free",
        &[],
        U::Bytes,
        UpDownCounter,
        S::Gpu,
        "Framebuffer memory free.",
        dcgm("DCGM_FI_DEV_FB_FREE", Gauge, MIB),
        field!(Gpu, memory_free_bytes),
    ),
    def(
        "gpuscope_gpu_memory_reserved_bytes",
        "gpuscope.gpu.memory.reserved",
        &[],
        U::Bytes,
        UpDownCounter,
        S::Gpu,
        "Framebuffer memory reserved by the driver.",
        dcgm("DCGM_FI_DEV_FB_RESERVED", Gauge, MIB),
        field!(Gpu, memory_reserved_bytes),
    ),
    // ---- thermals and power
    def(
        "gpuscope_gpu_temperature_celsius",
        "hw.temperature",
        &[("hw.sensor_location", "gpu")],
        U::Celsius,
        Gauge,
        S::Gpu,
        "GPU core temperature.",
        dcgm("DCGM_FI_DEV_GPU_TEMP", Gauge, 1.0),
        field!(Gpu, temperature_celsius),
    ),
    def(
        "gpuscope_gpu_memory_temperature_celsius",
        "hw.temperature",
        &[("hw.sensor_location", "memory")],
        U::Celsius,
        Gauge,
        S::Gpu,
        "GPU memory (HBM) temperature.",
        dcgm("DCGM_FI_DEV_MEMORY_TEMP", Gauge, 1.0),
        field!(Gpu, memory_temperature_celsius),
    ),
    def(
        "gpuscope_gpu_slowdown_temperature_celsius",
        "gpuscope.gpu.temperature.slowdown",
        &[],
        U::Celsius,
        Gauge,
        S::Gpu,
        "Temperature at which the GPU starts to slow its clocks.",
        None,
        field!(Gpu, slowdown_temperature_celsius),
    ),
    def(
        "gpuscope_gpu_shutdown_temperature_celsius",
        "gpuscope.gpu.temperature.shutdown",
        &[],
        U::Celsius,
        Gauge,
        S::Gpu,
        "Temperature at which the GPU shuts down.",
        None,
        field!(Gpu, shutdown_temperature_celsius),
    ),
    def(
        "gpuscope_gpu_fan_speed_ratio",
        "gpuscope.gpu.fan.speed",
        &[],
        U::Ratio,
        Gauge,
        S::Gpu,
        "Fan speed as a fraction of its maximum.",
        None,
        field!(Gpu, fan_speed_ratio),
    ),
    def(
        "gpuscope_gpu_power_watts",
        "hw.power",
        &[],
        U::Watts,
        Gauge,
        S::Gpu,
        "Power draw.",
        dcgm("DCGM_FI_DEV_POWER_USAGE", Gauge, 1.0),
        field!(Gpu, power_watts),
    ),
    def(
        "gpuscope_gpu_power_limit_watts",
        "gpuscope.gpu.power.limit",
        &[("gpuscope.limit", "current")],
        U::Watts,
        Gauge,
        S::Gpu,
        "Power management limit in force.",
        None,
        field!(Gpu, power_limit_watts),
    ),
    def(
        "gpuscope_gpu_power_default_limit_watts",
        "gpuscope.gpu.power.limit",
        &[("gpuscope.limit", "default")],
        U::Watts,
        Gauge,
        S::Gpu,
        "Default power management limit.",
        None,
        field!(Gpu, power_default_limit_watts),
    ),
    def(
        "gpuscope_gpu_power_min_limit_watts",
        "gpuscope.gpu.power.limit",
        &[("gpuscope.limit", "min")],
        U::Watts,
        Gauge,
        S::Gpu,
        "Lowest settable power limit.",
        None,
        field!(Gpu, power_min_limit_watts),
    ),
    def(
        "gpuscope_gpu_power_max_limit_watts",
        "gpuscope.gpu.power.limit",
        &[("gpuscope.limit", "max")],
        U::Watts,
        Gauge,
        S::Gpu,
        "Highest settable power limit.",
        None,
        field!(Gpu, power_max_limit_watts),
    ),
    def(
        "gpuscope_gpu_energy_joules_total",
        "hw.energy",
        &[],
        U::Joules,
        Counter,
        S::Gpu,
        "Energy consumed since the driver was loaded.",
        dcgm("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", Counter, 1000.0),
        field!(Gpu, energy_joules),
    ),
    // ---- clocks
    def(
        "gpuscope_gpu_sm_clock_hertz",
        "gpuscope.gpu.clock",
        &[("gpuscope.clock", "sm")],
        U::Hertz,
        Gauge,
        S::Gpu,
        "Current SM clock.",
        dcgm("DCGM_FI_DEV_SM_CLOCK", Gauge, 1e-6),
        field!(Gpu, sm_clock_hertz),
    ),
    def(
        "gpuscope_gpu_memory_clock_hertz",
        "gpuscope.gpu.clock",
        &[("gpuscope.clock", "memory")],
        U::Hertz,
        Gauge,
        S::Gpu,
        "Current memory clock.",
        dcgm("DCGM_FI_DEV_MEM_CLOCK", Gauge, 1e-6),
        field!(Gpu, memory_clock_hertz),
    ),
    def(
        "gpuscope_gpu_graphics_clock_hertz",
        "gpuscope.gpu.clock",
        &[("gpuscope.clock", "graphics")],
        U::Hertz,
        Gauge,
        S::Gpu,
        "Current graphics clock.",
        None,
        field!(Gpu, graphics_clock_hertz),
    ),
    def(
        "gpuscope_gpu_sm_clock_max_hertz",
        "gpuscope.gpu.clock.max",
        &[("gpuscope.clock", "sm")],
        U::Hertz,
        Gauge,
        S::Gpu,
        "Maximum SM clock.",
        None,
        field!(Gpu, sm_clock_max_hertz),
    ),
    def(
        "gpuscope_gpu_memory_clock_max_hertz",
        "gpuscope.gpu.clock.max",
        &[("gpuscope.clock", "memory")],
        U::Hertz,
        Gauge,
        S::Gpu,
        "Maximum memory clock.",
        None,
        field!(Gpu, memory_clock_max_hertz),
    ),
    labelled(
        def(
            "gpuscope_gpu_clock_event_active",
            "gpuscope.gpu.clock.event.active",
            &[],
            U::State,
            Gauge,
            S::Gpu,
            "1 while this clock event (throttle) reason holds the clocks down.",
            None,
            Accessor::GpuLabelled(
                |g| match g.clock_event_reasons {
                    Some(mask) => CLOCK_EVENT_REASONS
                        .iter()
                        .map(|(bit, name)| ((*name).to_string(), if mask & bit != 0 { 1.0 } else { 0.0 }))
                        .collect(),
                    None => Vec::new(),
                },
                |g, reason, v| {
                    if let Some((bit, _)) = CLOCK_EVENT_REASONS.iter().find(|(_, n)| *n == reason) {
                        let mask = g.clock_event_reasons.unwrap_or(0);
                        g.clock_event_reasons = Some(if v > 0.5 { mask | bit } else { mask & !bit });
                    }
                },
            ),
        ),
        "reason",
    ),
    // ---- interconnect
    def(
        "gpuscope_gpu_pcie_tx_bytes_per_second",
        "gpuscope.gpu.pcie.throughput",
        &[("network.io.direction", "transmit")],
        U::BytesPerSecond,
        Gauge,
        S::Gpu,
        "PCIe transmit throughput (device to host).",
        dcgm("DCGM_FI_PROF_PCIE_TX_BYTES", Gauge, 1.0),
        field!(Gpu, pcie_tx_bytes_per_second),
    ),
    def(
        "gpuscope_gpu_pcie_rx_bytes_per_second",
        "gpuscope.gpu.pcie.throughput",
        &[("network.io.direction", "receive")],
        U::BytesPerSecond,
        Gauge,
        S::Gpu,
        "PCIe receive throughput (host to device).",
        dcgm("DCGM_FI_PROF_PCIE_RX_BYTES", Gauge, 1.0),
        field!(Gpu, pcie_rx_bytes_per_second),
    ),
    def(
        "gpuscope_gpu_pcie_link_generation",
        "gpuscope.gpu.pcie.link.generation",
        &[("gpuscope.link", "current")],
        U::Count,
        Gauge,
        S::Gpu,
        "Current PCIe link generation.",
        None,
        field!(Gpu, pcie_link_generation),
    ),
    def(
        "gpuscope_gpu_pcie_link_generation_max",
        "gpuscope.gpu.pcie.link.generation",
        &[("gpuscope.link", "max")],
        U::Count,
        Gauge,
        S::Gpu,
        "Maximum PCIe link generation.",
        None,
        field!(Gpu, pcie_link_generation_max),
    ),
    def(
        "gpuscope_gpu_pcie_link_width",
        "gpuscope.gpu.pcie.link.width",
        &[("gpuscope.link", "current")],
        U::Count,
        Gauge,
        S::Gpu,
        "Current PCIe link width in lanes.",
        None,
        field!(Gpu, pcie_link_width),
    ),
    def(
        "gpuscope_gpu_pcie_link_width_max",
        "gpuscope.gpu.pcie.link.width",
        &[("gpuscope.link", "max")],
        U::Count,
        Gauge,
        S::Gpu,
        "Maximum PCIe link width in lanes.",
        None,
        field!(Gpu, pcie_link_width_max),
    ),
    def(
        "gpuscope_gpu_pcie_replays_total",
        "gpuscope.gpu.pcie.replays",
        &[],
        U::Count,
        Counter,
        S::Gpu,
        "PCIe replay counter.",
        dcgm("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", Counter, 1.0),
        field!(Gpu, pcie_replays_total),
    ),
    def(
        "gpuscope_gpu_nvlink_tx_bytes_per_second",
        "gpuscope.gpu.nvlink.throughput",
        &[("network.io.direction", "transmit")],
        U::BytesPerSecond,
        Gauge,
        S::Gpu,
        "NVLink transmit throughput over all links.",
        None,
        field!(Gpu, nvlink_tx_bytes_per_second),
    ),
    def(
        "gpuscope_gpu_nvlink_rx_bytes_per_second",
        "gpuscope.gpu.nvlink.throughput",
        &[("network.io.direction", "receive")],
        U::BytesPerSecond,
        Gauge,
        S::Gpu,
        "NVLink receive throughput over all links.",
        None,
        field!(Gpu, nvlink_rx_bytes_per_second),
    ),
    labelled(
        def(
            "gpuscope_gpu_nvlink_up",
            "gpuscope.gpu.nvlink.up",
            &[],
            U::State,
            Gauge,
            S::NvLink,
            "1 when the NVLink link is active.",
            None,
            field!(NvLink, active),
        ),
        "link",
    ),
    labelled(
        def(
            "gpuscope_gpu_nvlink_crc_errors_total",
            "hw.errors",
            &[("error.type", "nvlink_crc")],
            U::Count,
            Counter,
            S::NvLink,
            "NVLink CRC errors on data flits.",
            None,
            field!(NvLink, crc_errors_total),
        ),
        "link",
    ),
    labelled(
        def(
            "gpuscope_gpu_nvlink_replay_errors_total",
            "hw.errors",
            &[("error.type", "nvlink_replay")],
            U::Count,
            Counter,
            S::NvLink,
            "NVLink replay errors.",
            None,
            field!(NvLink, replay_errors_total),
        ),
        "link",
    ),
    labelled(
        def(
            "gpuscope_gpu_nvlink_recovery_errors_total",
            "hw.errors",
            &[("error.type", "nvlink_recovery")],
            U::Count,
            Counter,
            S::NvLink,
            "NVLink recovery errors.",
            None,
            field!(NvLink, recovery_errors_total),
        ),
        "link",
    ),
    // ---- health
    def(
        "gpuscope_gpu_ecc_corrected_volatile_errors_total",
        "hw.errors",
        &[("error.type", "ecc_corrected"), ("gpuscope.ecc.counter", "volatile")],
        U::Count,
        Counter,
        S::Gpu,
        "Corrected (single-bit) ECC errors since the driver was loaded.",
        dcgm("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", Counter, 1.0),
        field!(Gpu, ecc_corrected_volatile_total),
    ),
    def(
        "gpuscope_gpu_ecc_uncorrected_volatile_errors_total",
        "hw.errors",
        &[("error.type", "ecc_uncorrected"), ("gpuscope.ecc.counter", "volatile")],
        U::Count,
        Counter,
        S::Gpu,
        "Uncorrected (double-bit) ECC errors since the driver was loaded.",
        dcgm("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", Counter, 1.0),
        field!(Gpu, ecc_uncorrected_volatile_total),
    ),
    def(
        "gpuscope_gpu_ecc_corrected_aggregate_errors_total",
        "hw.errors",
        &[("error.type", "ecc_corrected"), ("gpuscope.ecc.counter", "aggregate")],
        U::Count,
        Counter,
        S::Gpu,
        "Corrected ECC errors over the GPU's lifetime.",
        None,
        field!(Gpu, ecc_corrected_aggregate_total),
    ),
    def(
        "gpuscope_gpu_ecc_uncorrected_aggregate_errors_total",
        "hw.errors",
        &[("error.type", "ecc_uncorrected"), ("gpuscope.ecc.counter", "aggregate")],
        U::Count,
        Counter,
        S::Gpu,
        "Uncorrected ECC errors over the GPU's lifetime.",
        None,
        field!(Gpu, ecc_uncorrected_aggregate_total),
    ),
    def(
        "gpuscope_gpu_retired_pages",
        "gpuscope.gpu.retired_pages",
        &[],
        U::Count,
        UpDownCounter,
        S::Gpu,
        "Memory pages retired (all causes).",
        None,
        field!(Gpu, retired_pages_total),
    ),
    def(
        "gpuscope_gpu_retired_pages_pending",
        "gpuscope.gpu.retired_pages.pending",
        &[],
        U::State,
        Gauge,
        S::Gpu,
        "1 when a page retirement waits for the next GPU reset.",
        None,
        field!(Gpu, retired_pages_pending),
    ),
    def(
        "gpuscope_gpu_remapped_rows_correctable",
        "gpuscope.gpu.remapped_rows",
        &[("gpuscope.cause", "correctable")],
        U::Count,
        UpDownCounter,
        S::Gpu,
        "Rows remapped after correctable errors.",
        dcgm("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", Counter, 1.0),
        field!(Gpu, remapped_rows_correctable_total),
    ),
    def(
        "gpuscope_gpu_remapped_rows_uncorrectable",
        "gpuscope.gpu.remapped_rows",
        &[("gpuscope.cause", "uncorrectable")],
        U::Count,
        UpDownCounter,
        S::Gpu,
        "Rows remapped after uncorrectable errors.",
        dcgm("DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS", Counter, 1.0),
        field!(Gpu, remapped_rows_uncorrectable_total),
    ),
    def(
        "gpuscope_gpu_row_remap_pending",
        "gpuscope.gpu.row_remap.pending",
        &[],
        U::State,
        Gauge,
        S::Gpu,
        "1 when a row remapping waits for the next GPU reset.",
        None,
        field!(Gpu, row_remap_pending),
    ),
    def(
        "gpuscope_gpu_row_remap_failed",
        "gpuscope.gpu.row_remap.failed",
        &[],
        U::State,
        Gauge,
        S::Gpu,
        "1 when a row remapping failed.",
        dcgm("DCGM_FI_DEV_ROW_REMAP_FAILURE", Gauge, 1.0),
        field!(Gpu, row_remap_failed),
    ),
    def(
        "gpuscope_gpu_xid_last",
        "gpuscope.gpu.xid.last",
        &[],
        U::State,
        Gauge,
        S::Gpu,
        "Code of the most recent XID event on this GPU.",
        dcgm("DCGM_FI_DEV_XID_ERRORS", Gauge, 1.0),
        field!(Gpu, xid_last),
    ),
    labelled(
        def(
            "gpuscope_gpu_xid_errors_total",
            "gpuscope.gpu.xid.errors",
            &[],
            U::Count,
            Counter,
            S::Gpu,
            "XID events seen since the agent started, by code.",
            None,
            Accessor::GpuLabelled(
                |g| g.xid_counts.iter().map(|(code, n)| (code.to_string(), *n as f64)).collect(),
                |g, code, v| {
                    if let Ok(code) = code.parse::<u64>() {
                        g.xid_counts.insert(code, MetricValue::from_f64(v));
                    }
                },
            ),
        ),
        "xid",
    ),
    def(
        "gpuscope_gpu_mig_enabled",
        "gpuscope.gpu.mig.enabled",
        &[],
        U::State,
        Gauge,
        S::Gpu,
        "1 when MIG mode is enabled.",
        None,
        field!(Gpu, mig_enabled),
    ),
    def(
        "gpuscope_gpu_persistence_mode",
        "gpuscope.gpu.persistence_mode",
        &[],
        U::State,
        Gauge,
        S::Gpu,
        "1 when persistence mode is enabled.",
        None,
        field!(Gpu, persistence_mode),
    ),
    // ---- GPU processes
    def(
        "gpuscope_process_gpu_memory_bytes",
        "gpuscope.process.gpu.memory.usage",
        &[],
        U::Bytes,
        UpDownCounter,
        S::Process,
        "GPU memory the process holds on this GPU.",
        None,
        field!(Process, gpu_memory_bytes),
    ),
    def(
        "gpuscope_process_sm_utilization_ratio",
        "gpuscope.process.gpu.utilization",
        &[("gpuscope.resource", "sm")],
        U::Ratio,
        Gauge,
        S::Process,
        "Share of the GPU's SM time the process used.",
        None,
        field!(Process, sm_utilization_ratio),
    ),
    def(
        "gpuscope_process_memory_utilization_ratio",
        "gpuscope.process.gpu.utilization",
        &[("gpuscope.resource", "memory")],
        U::Ratio,
        Gauge,
        S::Process,
        "Share of the GPU's memory bandwidth the process used.",
        None,
        field!(Process, memory_utilization_ratio),
    ),
    def(
        "gpuscope_process_cpu_seconds_total",
        "process.cpu.time",
        &[],
        U::Seconds,
        Counter,
        S::Process,
        "CPU time the process used.",
        None,
        field!(Process, cpu_seconds_total),
    ),
    def(
        "gpuscope_process_resident_memory_bytes",
        "process.memory.usage",
        &[],
        U::Bytes,
        UpDownCounter,
        S::Process,
        "Resident set size of the process.",
        None,
        field!(Process, rss_bytes),
    ),
    // ---- host CPU and memory
    def(
        "gpuscope_host_cpu_busy_ratio",
        "system.cpu.utilization",
        &[("cpu.mode", "busy")],
        U::Ratio,
        Gauge,
        S::Host,
        "Busy fraction over all cores (not idle, not iowait).",
        None,
        field!(Host, cpu_busy_ratio),
    ),
    def(
        "gpuscope_host_cpu_iowait_ratio",
        "system.cpu.utilization",
        &[("cpu.mode", "iowait")],
        U::Ratio,
        Gauge,
        S::Host,
        "Fraction of CPU time waiting on I/O.",
        None,
        field!(Host, cpu_iowait_ratio),
    ),
    def(
        "gpuscope_host_cpu_steal_ratio",
        "system.cpu.utilization",
        &[("cpu.mode", "steal")],
        U::Ratio,
        Gauge,
        S::Host,
        "Fraction of CPU time stolen by the hypervisor.",
        None,
        field!(Host, cpu_steal_ratio),
    ),
    def(
        "gpuscope_host_load1",
        "system.cpu.load_average.1m",
        &[],
        U::Count,
        Gauge,
        S::Host,
        "One-minute load average.",
        None,
        field!(Host, load1),
    ),
    def(
        "gpuscope_host_memory_total_bytes",
        "system.memory.limit",
        &[],
        U::Bytes,
        UpDownCounter,
        S::Host,
        "Total memory.",
        None,
        field!(Host, memory_total_bytes),
    ),
    def(
        "gpuscope_host_memory_available_bytes",
        "gpuscope.host.memory.available",
        &[],
        U::Bytes,
        UpDownCounter,
        S::Host,
        "Memory available for new work.",
        None,
        field!(Host, memory_available_bytes),
    ),
    labelled(
        def(
            "gpuscope_host_cpu_core_busy_ratio",
            "gpuscope.host.cpu.core.utilization",
            &[("cpu.mode", "busy")],
            U::Ratio,
            Gauge,
            S::Cpu,
            "Busy fraction of one core.",
            None,
            field!(Cpu, busy_ratio),
        ),
        "cpu",
    ),
    labelled(
        def(
            "gpuscope_host_cpu_core_iowait_ratio",
            "gpuscope.host.cpu.core.utilization",
            &[("cpu.mode", "iowait")],
            U::Ratio,
            Gauge,
            S::Cpu,
            "I/O wait fraction of one core.",
            None,
            field!(Cpu, iowait_ratio),
        ),
        "cpu",
    ),
    // ---- network
    def(
        "gpuscope_host_network_speed_bytes_per_second",
        "gpuscope.host.network.speed",
        &[],
        U::BytesPerSecond,
        Gauge,
        S::Nic,
        "Link speed of the interface.",
        None,
        field!(Nic, speed_bytes_per_second),
    ),
    def(
        "gpuscope_host_network_receive_bytes_total",
        "system.network.io",
        &[("network.io.direction", "receive")],
        U::Bytes,
        Counter,
        S::Nic,
        "Bytes received.",
        None,
        field!(Nic, rx_bytes_total),
    ),
    def(
        "gpuscope_host_network_transmit_bytes_total",
        "system.network.io",
        &[("network.io.direction", "transmit")],
        U::Bytes,
        Counter,
        S::Nic,
        "Bytes sent.",
        None,
        field!(Nic, tx_bytes_total),
    ),
    def(
        "gpuscope_host_network_receive_packets_total",
        "system.network.packet.count",
        &[("network.io.direction", "receive")],
        U::Count,
        Counter,
        S::Nic,
        "Packets received.",
        None,
        field!(Nic, rx_packets_total),
    ),
    def(
        "gpuscope_host_network_transmit_packets_total",
        "system.network.packet.count",
        &[("network.io.direction", "transmit")],
        U::Count,
        Counter,
        S::Nic,
        "Packets sent.",
        None,
        field!(Nic, tx_packets_total),
    ),
    def(
        "gpuscope_host_network_receive_errors_total",
        "system.network.errors",
        &[("network.io.direction", "receive")],
        U::Count,
        Counter,
        S::Nic,
        "Receive errors.",
        None,
        field!(Nic, rx_errors_total),
    ),
    def(
        "gpuscope_host_network_transmit_errors_total",
        "system.network.errors",
        &[("network.io.direction", "transmit")],
        U::Count,
        Counter,
        S::Nic,
        "Transmit errors.",
        None,
        field!(Nic, tx_errors_total),
    ),
    def(
        "gpuscope_host_network_receive_dropped_total",
        "system.network.packet.dropped",
        &[("network.io.direction", "receive")],
        U::Count,
        Counter,
        S::Nic,
        "Received packets dropped.",
        None,
        field!(Nic, rx_dropped_total),
    ),
    def(
        "gpuscope_host_network_receive_bytes_per_second",
        "gpuscope.host.network.throughput",
        &[("network.io.direction", "receive")],
        U::BytesPerSecond,
        Gauge,
        S::Nic,
        "Receive rate over the last sampling interval.",
        None,
        field!(Nic, rx_bytes_per_second),
    ),
    def(
        "gpuscope_host_network_transmit_bytes_per_second",
        "gpuscope.host.network.throughput",
        &[("network.io.direction", "transmit")],
        U::BytesPerSecond,
        Gauge,
        S::Nic,
        "Transmit rate over the last sampling interval.",
        None,
        field!(Nic, tx_bytes_per_second),
    ),
    // ---- storage
    def(
        "gpuscope_host_disk_read_bytes_total",
        "system.disk.io",
        &[("disk.io.direction", "read")],
        U::Bytes,
        Counter,
        S::Disk,
        "Bytes read.",
        None,
        field!(Disk, read_bytes_total),
    ),
    def(
        "gpuscope_host_disk_written_bytes_total",
        "system.disk.io",
        &[("disk.io.direction", "write")],
        U::Bytes,
        Counter,
        S::Disk,
        "Bytes written.",
        None,
        field!(Disk, write_bytes_total),
    ),
    def(
        "gpuscope_host_disk_reads_completed_total",
        "system.disk.operations",
        &[("disk.io.direction", "read")],
        U::Count,
        Counter,
        S::Disk,
        "Reads completed.",
        None,
        field!(Disk, reads_total),
    ),
    def(
        "gpuscope_host_disk_writes_completed_total",
        "system.disk.operations",
        &[("disk.io.direction", "write")],
        U::Count,
        Counter,
        S::Disk,
        "Writes completed.",
        None,
        field!(Disk, writes_total),
    ),
    def(
        "gpuscope_host_disk_busy_seconds_total",
        "system.disk.io_time",
        &[],
        U::Seconds,
        Counter,
        S::Disk,
        "Time the device was busy.",
        None,
        field!(Disk, busy_seconds_total),
    ),
    def(
        "gpuscope_host_disk_read_bytes_per_second",
        "gpuscope.host.disk.throughput",
        &[("disk.io.direction", "read")],
        U::BytesPerSecond,
        Gauge,
        S::Disk,
        "Read rate over the last sampling interval.",
        None,
        field!(Disk, read_bytes_per_second),
    ),
    def(
        "gpuscope_host_disk_write_bytes_per_second",
        "gpuscope.host.disk.throughput",
        &[("disk.io.direction", "write")],
        U::BytesPerSecond,
        Gauge,
        S::Disk,
        "Write rate over the last sampling interval.",
        None,
        field!(Disk, write_bytes_per_second),
    ),
    def(
        "gpuscope_host_disk_busy_ratio",
        "gpuscope.host.disk.utilization",
        &[],
        U::Ratio,
        Gauge,
        S::Disk,
        "Busy fraction over the last sampling interval.",
        None,
        field!(Disk, busy_ratio),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn valid_prometheus_name(n: &str) -> bool {
        let mut chars = n.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    }

    #[test]
    fn prometheus_names_are_unique_and_valid() {
        let mut seen = HashSet::new();
        for m in CATALOGUE {
            assert!(seen.insert(m.prometheus), "duplicate name {}", m.prometheus);
            assert!(valid_prometheus_name(m.prometheus), "invalid name {}", m.prometheus);
            assert!(m.prometheus.starts_with("gpuscope_"), "{} lacks the prefix", m.prometheus);
            assert!(!m.help.is_empty() && !m.help.contains('\n'), "{} help", m.prometheus);
        }
    }

    #[test]
    fn units_and_kinds_are_in_the_names() {
        for m in CATALOGUE {
            let base = m.prometheus.strip_suffix("_total");
            assert_eq!(base.is_some(), m.kind == MetricKind::Counter, "{}: `_total` iff counter", m.prometheus);
            let base = base.unwrap_or(m.prometheus);
            if let Some(suffix) = m.unit.prometheus_suffix() {
                assert!(base.ends_with(suffix), "{} must end in {suffix}", m.prometheus);
            }
            // A ratio is never exported as a percentage.
            assert!(!base.contains("percent"), "{}", m.prometheus);
        }
    }

    #[test]
    fn otlp_identity_is_unique() {
        let mut seen = HashSet::new();
        for m in CATALOGUE {
            let mut attrs: Vec<_> = m.otlp_attributes.to_vec();
            attrs.sort();
            assert!(seen.insert((m.otlp, attrs)), "duplicate OTLP identity for {}", m.prometheus);
            assert!(
                m.otlp.starts_with("hw.")
                    || m.otlp.starts_with("system.")
                    || m.otlp.starts_with("process.")
                    || m.otlp.starts_with("gpuscope."),
                "{}",
                m.otlp
            );
        }
    }

    #[test]
    fn dcgm_aliases_are_unique_and_cover_the_default_set() {
        let aliases: Vec<_> = CATALOGUE.iter().filter_map(|m| m.dcgm.map(|d| d.name)).collect();
        let unique: HashSet<_> = aliases.iter().collect();
        assert_eq!(unique.len(), aliases.len());
        for name in [
            "DCGM_FI_DEV_SM_CLOCK",
            "DCGM_FI_DEV_MEM_CLOCK",
            "DCGM_FI_DEV_MEMORY_TEMP",
            "DCGM_FI_DEV_GPU_TEMP",
            "DCGM_FI_DEV_POWER_USAGE",
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION",
            "DCGM_FI_DEV_PCIE_REPLAY_COUNTER",
            "DCGM_FI_DEV_GPU_UTIL",
            "DCGM_FI_DEV_MEM_COPY_UTIL",
            "DCGM_FI_DEV_ENC_UTIL",
            "DCGM_FI_DEV_DEC_UTIL",
            "DCGM_FI_DEV_XID_ERRORS",
            "DCGM_FI_DEV_FB_FREE",
            "DCGM_FI_DEV_FB_USED",
            "DCGM_FI_DEV_FB_RESERVED",
            "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
            "DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS",
            "DCGM_FI_DEV_ROW_REMAP_FAILURE",
            "DCGM_FI_PROF_GR_ENGINE_ACTIVE",
            "DCGM_FI_PROF_PIPE_TENSOR_ACTIVE",
            "DCGM_FI_PROF_DRAM_ACTIVE",
            "DCGM_FI_PROF_PCIE_TX_BYTES",
            "DCGM_FI_PROF_PCIE_RX_BYTES",
        ] {
            assert!(unique.contains(&name), "{name} has no source signal");
        }
    }

    #[test]
    fn accessors_round_trip_and_absent_stays_absent() {
        let empty = GpuSample::default();
        let mut filled = GpuSample::default();
        for m in CATALOGUE {
            match m.accessor {
                Accessor::Gpu(get, set) => {
                    if m.prometheus != "gpuscope_gpu_up" {
                        assert_eq!(get(&empty), None, "{} reads a value from an empty sample", m.prometheus);
                    }
                    set(&mut filled, 1.0);
                    assert_eq!(get(&filled), Some(1.0), "{}", m.prometheus);
                }
                Accessor::GpuLabelled(get, set) => {
                    assert!(get(&empty).is_empty(), "{}", m.prometheus);
                    let label = if m.label == Some("xid") { "79" } else { "sw_power_cap" };
                    set(&mut filled, label, 1.0);
                    assert!(get(&filled).contains(&(label.to_string(), 1.0)), "{}", m.prometheus);
                }
                Accessor::Disk(get, set) => {
                    let mut d = DiskSample::default();
                    assert_eq!(get(&d), None);
                    set(&mut d, 4096.0);
                    assert_eq!(get(&d), Some(4096.0), "{}", m.prometheus);
                }
                _ => {}
            }
        }
        assert_eq!(filled.clock_event_reasons, Some(0x4));
        assert_eq!(filled.xid_counts.get(&79), Some(&1));
    }

    #[test]
    fn lookups_by_name() {
        let m = MetricDef::by_otlp("hw.gpu.utilization", |k| (k == "hw.gpu.task").then_some("encoder"));
        assert_eq!(m.map(|m| m.prometheus), Some("gpuscope_gpu_encoder_utilization_ratio"));
        assert!(MetricDef::by_prometheus("gpuscope_gpu_power_watts").is_some());
    }
}
