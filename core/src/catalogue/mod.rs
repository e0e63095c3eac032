//! The metric catalogue: every exported signal declared once.
//!
//! Prometheus encoding, OTLP encoding, the OTLP interval aggregation, OTLP decoding in the
//! collector, dashboards and docs all walk [`CATALOGUE`] (the table is in `table.rs`). Each row
//! carries an [`Accessor`] that reads the value out of a snapshot part (returning `None` when
//! absent) and writes a decoded value back; the walk from a row to its series in a snapshot, and
//! back, is written once in `series.rs`, so encode→decode is symmetric by construction.

mod series;
mod table;

pub use series::{GpuId, Identity, Label, Owner, ProcessId, ProfileId, Series, Slot, Slots};
pub use table::CATALOGUE;

use crate::exposition::{self, LabelValue};
use crate::model::{
    CpuSample, DiskSample, FsSample, GpuSample, HostSample, KernelClassTime, KernelProfile, MigSample, NicSample,
    NvLinkSample, ProcessSample,
};
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

impl MetricKind {
    /// The Prometheus type of the family.
    pub fn exposition(self) -> exposition::Kind {
        match self {
            MetricKind::Counter => exposition::Kind::Counter,
            MetricKind::Gauge | MetricKind::UpDownCounter => exposition::Kind::Gauge,
        }
    }
}

/// What one series of the signal describes; decides the labels it carries. Derived from the
/// row's [`Accessor`] ([`MetricDef::scope`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// One GPU (`gpu`, `uuid`, `model`).
    Gpu,
    /// One NVLink link of a GPU (GPU labels + `link`).
    NvLink,
    /// One MIG instance of a GPU (GPU labels + `gpu_instance`, `gpu_instance_profile`).
    Mig,
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
    /// One mounted filesystem (`mountpoint`).
    Filesystem,
    /// One process profiled by the CUPTI injection library (`pid`, `process`, container/pod
    /// labels, `gpus`): a profile spans all the process's GPUs.
    KernelProfile,
    /// One kernel class of a profiled process (the profile's labels + `kind`, `pipe`,
    /// `precision`, and `collective` for collectives): bounded enums, never kernel names.
    KernelClass,
}

/// What a signal is about: dashboards build one row per group and the TUI one panel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Group {
    /// Whether the GPU answers and how it is set up (MIG, persistence mode).
    State,
    /// NVML's coarse utilization: kernels, memory copies, video engines.
    Utilization,
    /// Profiling ratios (GPM): engine, SM, pipe and DRAM activity.
    Profiling,
    /// Framebuffer memory.
    Memory,
    /// Temperatures and fans.
    Thermal,
    /// Power draw, limits and energy.
    Power,
    /// Clocks and the reasons that hold them down.
    Clocks,
    /// PCIe throughput, link state and replays.
    Pcie,
    /// NVLink throughput, link state and errors.
    NvLink,
    /// ECC, page retirement, row remapping and XID errors.
    Health,
    /// Per-process GPU and host usage.
    Process,
    /// Host CPU utilization and load.
    HostCpu,
    /// Host memory.
    HostMemory,
    /// Network interfaces, Ethernet and InfiniBand.
    Network,
    /// Block devices.
    Disk,
    /// Kernel-level profiles of CUDA processes (the CUPTI injection library).
    Kernel,
}

impl Group {
    /// Every group, in the order dashboards lay them out.
    pub const ALL: &[Group] = &[
        Group::State,
        Group::Utilization,
        Group::Profiling,
        Group::Memory,
        Group::Thermal,
        Group::Power,
        Group::Clocks,
        Group::Pcie,
        Group::NvLink,
        Group::Health,
        Group::Process,
        Group::HostCpu,
        Group::HostMemory,
        Group::Network,
        Group::Disk,
        Group::Kernel,
    ];

    /// Snake-case name (dashboard uids, config keys).
    pub fn as_str(self) -> &'static str {
        match self {
            Group::State => "state",
            Group::Utilization => "utilization",
            Group::Profiling => "profiling",
            Group::Memory => "memory",
            Group::Thermal => "thermal",
            Group::Power => "power",
            Group::Clocks => "clocks",
            Group::Pcie => "pcie",
            Group::NvLink => "nvlink",
            Group::Health => "health",
            Group::Process => "process",
            Group::HostCpu => "host_cpu",
            Group::HostMemory => "host_memory",
            Group::Network => "network",
            Group::Disk => "disk",
            Group::Kernel => "kernel",
        }
    }

    /// Human title (dashboard row, TUI panel).
    pub fn title(self) -> &'static str {
        match self {
            Group::State => "GPU state",
            Group::Utilization => "Utilization",
            Group::Profiling => "Profiling",
            Group::Memory => "GPU memory",
            Group::Thermal => "Thermal",
            Group::Power => "Power",
            Group::Clocks => "Clocks",
            Group::Pcie => "PCIe",
            Group::NvLink => "NVLink",
            Group::Health => "Health and errors",
            Group::Process => "Processes",
            Group::HostCpu => "Host CPU",
            Group::HostMemory => "Host memory",
            Group::Network => "Network",
            Group::Disk => "Disk",
            Group::Kernel => "Kernels (CUPTI)",
        }
    }
}

/// The dcgm-exporter name a signal is also served under in compatibility mode, by
/// dcgm-exporter version (docs/dcgm-compat.md is the table).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DcgmAlias {
    /// dcgm-exporter ≤ 4.8 field name, e.g. `DCGM_FI_DEV_GPU_UTIL`.
    pub name: &'static str,
    /// Kind as dcgm-exporter declares it (its counters carry no `_total`).
    pub kind: MetricKind,
    /// Multiply the base-unit value by this to get the ≤ 4.8 unit (100 for %, 1e-6 for MHz).
    pub scale: f64,
    /// The name from 4.9 on (DCGM 4.7's field names), in base units: Hz, J, ratio, bytes.
    pub renamed: &'static str,
    /// The name from 4.10 on (which added `_PER_SECOND` to the PCIe profiling rates).
    pub renamed_4_10: &'static str,
}

/// Which dcgm-exporter release's names, units and labels compatibility mode serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DcgmProfile {
    /// dcgm-exporter up to 4.8: MHz, mJ, %, MiB; labels `Hostname`, `DCGM_FI_DRIVER_VERSION`.
    Legacy,
    /// dcgm-exporter 4.9: DCGM 4.7's names in base units; labels `hostname`,
    /// `DCGM_FI_SYSTEM_DRIVER_VERSION`.
    V4_9,
    /// dcgm-exporter 4.10 and later: 4.9 plus `_PER_SECOND` on the PCIe profiling rates.
    V4_10,
}

impl DcgmProfile {
    /// Every profile, oldest first.
    pub const ALL: &[DcgmProfile] = &[DcgmProfile::Legacy, DcgmProfile::V4_9, DcgmProfile::V4_10];

    /// The label that carries the host name.
    pub fn hostname_label(self) -> &'static str {
        match self {
            DcgmProfile::Legacy => "Hostname",
            DcgmProfile::V4_9 | DcgmProfile::V4_10 => "hostname",
        }
    }

    /// The label that carries the driver version.
    pub fn driver_label(self) -> &'static str {
        match self {
            DcgmProfile::Legacy => "DCGM_FI_DRIVER_VERSION",
            DcgmProfile::V4_9 | DcgmProfile::V4_10 => "DCGM_FI_SYSTEM_DRIVER_VERSION",
        }
    }
}

impl DcgmAlias {
    /// The family name in `profile`.
    pub fn name_in(&self, profile: DcgmProfile) -> &'static str {
        match profile {
            DcgmProfile::Legacy => self.name,
            DcgmProfile::V4_9 => self.renamed,
            DcgmProfile::V4_10 => self.renamed_4_10,
        }
    }

    /// Multiply the base-unit value by this for `profile`'s unit (4.9 moved to base units).
    pub fn scale_in(&self, profile: DcgmProfile) -> f64 {
        match profile {
            DcgmProfile::Legacy => self.scale,
            DcgmProfile::V4_9 | DcgmProfile::V4_10 => 1.0,
        }
    }
}

/// Reads a signal from a snapshot part and writes a decoded value back. The variant decides the
/// row's [`Scope`]; the walk (`series.rs`) turns it into series and back.
#[derive(Clone, Copy)]
pub enum Accessor {
    /// A GPU value.
    Gpu(fn(&GpuSample) -> Option<f64>, fn(&mut GpuSample, f64)),
    /// A GPU value split by one extra label (clock event reason, XID code).
    GpuLabelled {
        /// The label's name (`reason`, `xid`).
        label: &'static str,
        /// The GPU's `n`-th (label value, value), `None` past the last: an index rather than a
        /// list, so that the walk allocates nothing.
        get: for<'a> fn(&'a GpuSample, usize) -> Option<(LabelValue<'a>, f64)>,
        /// Writes the value of one label value.
        set: fn(&mut GpuSample, LabelValue<'_>, f64),
    },
    /// A per-link NVLink value.
    NvLink(fn(&NvLinkSample) -> Option<f64>, fn(&mut NvLinkSample, f64)),
    /// A per-MIG-instance value.
    Mig(fn(&MigSample) -> Option<f64>, fn(&mut MigSample, f64)),
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
    /// A per-filesystem value.
    Fs(fn(&FsSample) -> Option<f64>, fn(&mut FsSample, f64)),
    /// A value of a process profiled through CUPTI.
    Profile(fn(&KernelProfile) -> Option<f64>, fn(&mut KernelProfile, f64)),
    /// A value of one kernel class of a profiled process (its labels come from the class).
    ProfileClass(fn(&KernelClassTime) -> Option<f64>, fn(&mut KernelClassTime, f64)),
}

impl Accessor {
    /// What one series describes.
    pub fn scope(&self) -> Scope {
        match self {
            Accessor::Gpu(..) | Accessor::GpuLabelled { .. } => Scope::Gpu,
            Accessor::NvLink(..) => Scope::NvLink,
            Accessor::Mig(..) => Scope::Mig,
            Accessor::Process(..) => Scope::Process,
            Accessor::Host(..) => Scope::Host,
            Accessor::Cpu(..) => Scope::Cpu,
            Accessor::Nic(..) => Scope::Nic,
            Accessor::Disk(..) => Scope::Disk,
            Accessor::Fs(..) => Scope::Filesystem,
            Accessor::Profile(..) => Scope::KernelProfile,
            Accessor::ProfileClass(..) => Scope::KernelClass,
        }
    }

    /// The extra label of a labelled signal (`reason`, `xid`).
    pub fn label(&self) -> Option<&'static str> {
        match self {
            Accessor::GpuLabelled { label, .. } => Some(label),
            _ => None,
        }
    }
}

impl std::fmt::Debug for Accessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Accessor::GpuLabelled { label, .. } => write!(f, "GpuLabelled({label})"),
            other => write!(f, "{:?}", other.scope()),
        }
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
    /// What the signal is about (dashboard row, TUI panel).
    pub group: Group,
    /// One-line help text.
    pub help: &'static str,
    /// dcgm-exporter name in compatibility mode.
    pub dcgm: Option<DcgmAlias>,
    /// The GPU's identity (serial, PCI bus id, compute capability) rides on this row's OTLP
    /// points: the one row every GPU always has, lost or not.
    pub carries_gpu_identity: bool,
    /// How to read and write the value.
    pub accessor: Accessor,
}

impl MetricDef {
    /// What one series describes (from the accessor).
    pub fn scope(&self) -> Scope {
        self.accessor.scope()
    }

    /// The extra label of a labelled signal (`reason`, `xid`).
    pub fn label(&self) -> Option<&'static str> {
        self.accessor.label()
    }

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
    /// VBIOS version (on `gpuscope.gpu.up` points).
    pub const GPU_VBIOS: &str = "gpuscope.gpu.vbios_version";
    /// CPUs nearest the GPU (on `gpuscope.gpu.up` points).
    pub const GPU_CPU_AFFINITY: &str = "gpuscope.gpu.cpu_affinity";
    /// GPU instance id of a MIG instance.
    pub const MIG_GPU_INSTANCE: &str = "gpuscope.gpu.mig.gpu_instance.id";
    /// GPU instance profile of a MIG instance (`1g.10gb`).
    pub const MIG_PROFILE: &str = "gpuscope.gpu.mig.profile";
    /// Process id.
    pub const PID: &str = "process.pid";
    /// Process name.
    pub const PROCESS: &str = "process.executable.name";
    /// Parent process id.
    pub const PPID: &str = "process.parent_pid";
    /// Parent process name.
    pub const PARENT_NAME: &str = "gpuscope.process.parent.name";
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
    /// The GPUs a profiled process uses, NVML indices separated by commas (`0,1`).
    pub const PROCESS_GPUS: &str = "gpuscope.process.gpus";
    /// Kernel class: what the kernels compute (`gemm`, `attention`, `collective`, …).
    pub const KERNEL_KIND: &str = "gpuscope.kernel.kind";
    /// Kernel class: the NCCL operation of a collective (`allreduce`, …).
    pub const KERNEL_COLLECTIVE: &str = "gpuscope.kernel.collective";
    /// Kernel class: tensor cores, SIMT cores or unknown.
    pub const KERNEL_PIPE: &str = "gpuscope.kernel.pipe";
    /// Kernel class: arithmetic precision (`bf16`, `fp32`, …).
    pub const KERNEL_PRECISION: &str = "gpuscope.kernel.precision";
    /// Workload class of a process (`training`, `inference`, `notebook`, `unknown`).
    pub const WORKLOAD: &str = "gpuscope.workload.class";
    /// CPU core.
    pub const CPU: &str = "cpu.logical_number";
    /// Network interface.
    pub const INTERFACE: &str = "network.interface.name";
    /// Ethernet or InfiniBand.
    pub const NIC_KIND: &str = "gpuscope.network.kind";
    /// Block device.
    pub const DEVICE: &str = "system.device";
    /// A filesystem's mount point (OpenTelemetry semantic conventions).
    pub const MOUNTPOINT: &str = "system.filesystem.mountpoint";
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
            "peer_gpu" => "gpuscope.gpu.peer.index",
            "cpu" => CPU,
            _ => "gpuscope.label",
        }
    }
}

/// The labels of a kernel class, as metric labels and OTLP attributes carry them: `kind`, then
/// `collective` (collectives only), `pipe`, `precision`. Every value comes from a bounded enum.
pub fn kernel_class_labels(class: &gpuscope_cupti::KernelClass) -> Vec<(&'static str, &'static str)> {
    let mut labels = vec![("kind", class.kind.label())];
    if let gpuscope_cupti::KernelKind::Collective(op) = class.kind {
        labels.push(("collective", op.label()));
    }
    labels.push(("pipe", class.pipe.label()));
    labels.push(("precision", class.precision.label()));
    labels
}

/// The kernel class its labels name (the inverse of [`kernel_class_labels`]); `None` for a
/// value no class has.
pub fn kernel_class_from_labels(
    kind: &str,
    collective: Option<&str>,
    pipe: &str,
    precision: &str,
) -> Option<gpuscope_cupti::KernelClass> {
    use gpuscope_cupti::{CollectiveKind as C, KernelKind as K, MathPipe as M, Precision as P};
    let kind = match kind {
        "collective" => {
            let ops = [
                C::AllReduce,
                C::AllGather,
                C::ReduceScatter,
                C::Broadcast,
                C::Reduce,
                C::SendRecv,
                C::AllToAll,
                C::Other,
            ];
            K::Collective(ops.into_iter().find(|op| Some(op.label()) == collective)?)
        }
        other => {
            let kinds = [
                K::Gemm,
                K::Conv,
                K::Attention,
                K::Elementwise,
                K::Reduction,
                K::Normalization,
                K::Memcpy,
                K::Memset,
                K::Other,
            ];
            kinds.into_iter().find(|k| k.label() == other)?
        }
    };
    let pipe = [M::TensorCore, M::Simt, M::Unknown].into_iter().find(|p| p.label() == pipe)?;
    let precision = [P::Fp64, P::Fp32, P::Tf32, P::Fp16, P::Bf16, P::Fp8, P::Fp4, P::Int8, P::Unknown]
        .into_iter()
        .find(|p| p.label() == precision)?;
    Some(gpuscope_cupti::KernelClass { kind, pipe, precision })
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn scope_and_label_come_from_the_accessor() {
        let m = |name| MetricDef::by_prometheus(name).expect(name);
        assert_eq!(m("gpuscope_gpu_power_watts").scope(), Scope::Gpu);
        assert_eq!(m("gpuscope_gpu_power_watts").label(), None);
        assert_eq!(m("gpuscope_gpu_clock_event_active").scope(), Scope::Gpu);
        assert_eq!(m("gpuscope_gpu_clock_event_active").label(), Some("reason"));
        assert_eq!(m("gpuscope_gpu_xid_errors_total").label(), Some("xid"));
        assert_eq!(m("gpuscope_gpu_nvlink_up").scope(), Scope::NvLink);
        assert_eq!(m("gpuscope_process_cpu_seconds_total").scope(), Scope::Process);
        assert_eq!(m("gpuscope_host_load1").scope(), Scope::Host);
        assert_eq!(m("gpuscope_host_cpu_core_busy_ratio").scope(), Scope::Cpu);
        assert_eq!(m("gpuscope_host_network_receive_bytes_total").scope(), Scope::Nic);
        assert_eq!(m("gpuscope_host_disk_busy_ratio").scope(), Scope::Disk);
        assert_eq!(format!("{:?}", m("gpuscope_gpu_xid_errors_total").accessor), "GpuLabelled(xid)");
    }

    #[test]
    fn only_labelled_rows_carry_a_label_key_otlp_knows() {
        for m in CATALOGUE {
            if let Some(label) = m.label() {
                assert_ne!(otlp_keys::for_label(label), "gpuscope.label", "{}: no OTLP key for {label}", m.prometheus);
            }
        }
    }

    #[test]
    fn groups_have_names_and_titles() {
        let names: HashSet<_> = Group::ALL.iter().map(|g| g.as_str()).collect();
        assert_eq!(names.len(), Group::ALL.len(), "group names are unique");
        for g in Group::ALL {
            let n = g.as_str();
            assert!(!n.is_empty() && n.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{n}");
            let t = g.title();
            assert!(!t.is_empty() && t.starts_with(|c: char| c.is_ascii_uppercase()) && !t.ends_with('.'), "{t}");
        }
    }

    #[test]
    fn kernel_class_labels_name_the_class_and_parse_back() {
        use gpuscope_cupti::classify;
        for name in [
            "ampere_bf16_s16816gemm_bf16_128x256_ldg8_f2f_stages_64x3_nn",
            "ampere_sgemm_128x64_tn",
            "ncclDevKernel_AllReduce_Sum_bf16_RING_LL",
            "void at::native::elementwise_kernel<128, 4>",
            "flash_fwd_kernel",
            "some_unknown_kernel",
        ] {
            let class = classify(name);
            let labels = kernel_class_labels(&class);
            let get = |k: &str| labels.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
            let parsed = kernel_class_from_labels(
                get("kind").unwrap_or_default(),
                get("collective"),
                get("pipe").unwrap_or_default(),
                get("precision").unwrap_or_default(),
            );
            assert_eq!(parsed, Some(class), "{name}: {labels:?}");
        }
        let nccl = kernel_class_labels(&classify("ncclDevKernel_AllReduce_Sum_bf16_RING_LL"));
        assert_eq!(
            nccl,
            vec![("kind", "collective"), ("collective", "allreduce"), ("pipe", "unknown"), ("precision", "unknown")]
        );
        let gemm = kernel_class_labels(&classify("ampere_sgemm_128x64_tn"));
        assert_eq!(gemm, vec![("kind", "gemm"), ("pipe", "simt"), ("precision", "fp32")]);
        assert_eq!(kernel_class_from_labels("gemm", None, "tensor", "fp33"), None);
        assert_eq!(kernel_class_from_labels("collective", None, "unknown", "unknown"), None);
        assert_eq!(kernel_class_from_labels("collective", Some("gossip"), "unknown", "unknown"), None);
    }

    #[test]
    fn lookups_by_name() {
        let m = MetricDef::by_otlp("hw.gpu.utilization", |k| (k == "hw.gpu.task").then_some("encoder"));
        assert_eq!(m.map(|m| m.prometheus), Some("gpuscope_gpu_encoder_utilization_ratio"));
        assert!(MetricDef::by_prometheus("gpuscope_gpu_power_watts").is_some());
    }
}
