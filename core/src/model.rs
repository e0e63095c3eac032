//! The node snapshot: one consistent reading of a node's GPUs, GPU processes and host.
//!
//! Every measured value is an `Option`: `None` means "could not be read" (not supported, driver
//! missing, GPU lost), which exporters omit and rules treat as unknown, never as zero.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One reading of a whole node, published by the agent's sampling engine.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NodeSnapshot {
    /// Who this node is.
    pub node: NodeInfo,
    /// When the sample was taken, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Driver and library versions; `None` when no NVIDIA driver could be loaded.
    pub driver: Option<DriverInfo>,
    /// One entry per GPU the driver enumerates, lost GPUs included (marked `lost`).
    pub gpus: Vec<GpuSample>,
    /// One entry per (process, GPU) pair using a GPU.
    pub processes: Vec<ProcessSample>,
    /// Host signals; `None` when the host samplers have not produced a reading yet.
    pub host: Option<HostSample>,
    /// The most recent XID events (oldest first, at most a few hundred), with their times.
    #[serde(default)]
    pub xid_events: Vec<XidEvent>,
    /// How the sampling itself went (the agent's own health).
    #[serde(default)]
    pub agent: AgentStats,
    /// Kernel-level profiles from the CUPTI injection library: one per profiled process that
    /// sent a window within the last 3 periods (`docs/cupti-protocol.md`).
    #[serde(default)]
    pub kernel_profiles: Vec<KernelProfile>,
}

impl NodeSnapshot {
    /// Mean SM activity over the GPUs that reported it; absent when none did.
    pub fn sm_active_mean(&self) -> Option<f64> {
        let v: Vec<f64> = self.gpus.iter().filter_map(|g| g.sm_active_ratio).collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    }

    /// Power drawn by the GPUs that reported it, together; absent when none did.
    pub fn gpu_power_watts(&self) -> Option<f64> {
        let v: Vec<f64> = self.gpus.iter().filter_map(|g| g.power_watts).collect();
        (!v.is_empty()).then(|| v.iter().sum())
    }
}

/// One XID event as the agent received it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XidEvent {
    /// When it arrived, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// GPU index.
    pub gpu: u32,
    /// XID code.
    pub code: u64,
}

/// The agent's own health: sampling cost, failures, unsupported signals.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AgentStats {
    /// Whether an NVIDIA driver (NVML) is loaded and answering.
    pub driver_up: bool,
    /// Wall time the last sampling pass took.
    pub sample_duration_seconds: f64,
    /// Per sampler: failures and last success.
    pub samplers: BTreeMap<String, SamplerStats>,
    /// NVML calls that failed (other than NOT_SUPPORTED), per entry point.
    pub nvml_errors: BTreeMap<String, u64>,
    /// Signals NVML reports as not supported, with the number of GPUs lacking each.
    pub unsupported: BTreeMap<String, u64>,
    /// NVML calls made since the agent started, per entry point (`nvmlDeviceGetFieldValues`…).
    #[serde(default)]
    pub nvml_calls: BTreeMap<String, u64>,
    /// GPUs with GPM whose last GPM read failed: their profiling ratios are absent (not the
    /// last good values) until GPM answers again, asked every 30 s.
    #[serde(default)]
    pub gpm_unavailable: Vec<u32>,
    /// The CUPTI receiver's counters; absent when the receiver is off.
    #[serde(default)]
    pub cupti: Option<CuptiStats>,
}

/// The CUPTI receiver's counters (its Unix socket for the injection library).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CuptiStats {
    /// Connections open now.
    pub connections: u64,
    /// Connections accepted since the agent started.
    pub connections_total: u64,
    /// Connections closed at once because the limit was reached.
    pub connections_refused_total: u64,
    /// Window summaries received.
    pub frames_received_total: u64,
    /// Frames rejected (the connection was closed), by reason.
    pub frames_rejected_total: BTreeMap<String, u64>,
    /// Profiles dropped to make room for a new process (the profile limit was reached).
    pub profiles_evicted_total: u64,
}

/// One sampler's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SamplerStats {
    /// Sampling passes that failed.
    pub errors_total: u64,
    /// Last successful pass, milliseconds since the Unix epoch.
    pub last_success_ms: Option<u64>,
    /// The most recent error message, if the last pass failed.
    pub last_error: Option<String>,
}

/// Identity of a node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Host name as the node reports it.
    pub hostname: String,
    /// Stable machine id (`/etc/machine-id`) when known.
    pub machine_id: Option<String>,
    /// The job this node currently works for, when known (scheduler label).
    pub job: Option<String>,
    /// Extra labels from configuration (cluster, rack, …).
    pub labels: BTreeMap<String, String>,
}

/// NVIDIA driver and library versions.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriverInfo {
    /// Kernel driver version string, e.g. `550.54.15`.
    pub driver_version: String,
    /// CUDA driver API version as NVML encodes it (12040 = 12.4).
    pub cuda_driver_version: Option<u32>,
    /// NVML library version string.
    pub nvml_version: Option<String>,
}

/// How one GPU reaches another GPU of the node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuPeer {
    /// NVML index of the other GPU.
    pub peer_gpu: u32,
    /// NVLink links between the two, directly or through NVSwitches (`NV18` in
    /// `nvidia-smi topo -m`); absent when the GPU has no NVLink.
    pub nvlinks: Option<u32>,
    /// Their nearest common PCIe ancestor, NVML's `nvmlGpuTopologyLevel_t`: 0 same board,
    /// 10 one PCIe switch (PIX), 20 several switches (PXB), 30 one host bridge (PHB), 40 one NUMA
    /// node (NODE), 50 across NUMA nodes (SYS).
    pub pcie_topology_level: Option<u32>,
}

impl GpuPeer {
    /// The link as `nvidia-smi topo -m` names it: `NV<n>` over NVLink, else the PCIe path.
    pub fn link_name(&self) -> Option<String> {
        if let Some(n) = self.nvlinks.filter(|n| *n > 0) {
            return Some(format!("NV{n}"));
        }
        let name = match self.pcie_topology_level? {
            0 | 10 => "PIX",
            20 => "PXB",
            30 => "PHB",
            40 => "NODE",
            50 => "SYS",
            _ => return None,
        };
        Some(name.to_string())
    }
}

/// One GPU's reading.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuSample {
    /// NVML index.
    pub index: u32,
    /// GPU UUID (`GPU-…`).
    pub uuid: String,
    /// Product name, e.g. `NVIDIA H100 80GB HBM3`.
    pub model: String,
    /// Board serial number.
    pub serial: Option<String>,
    /// PCI bus id, e.g. `00000000:18:00.0`.
    pub pci_bus_id: Option<String>,
    /// CUDA compute capability, e.g. `9.0`.
    pub compute_capability: Option<String>,
    /// The GPU fell off the bus or is otherwise inaccessible; all other values are `None`.
    pub lost: bool,
    /// MIG mode currently enabled.
    pub mig_enabled: Option<bool>,
    /// Persistence mode enabled.
    pub persistence_mode: Option<bool>,
    /// VBIOS version, e.g. `96.00.30.00.01`.
    pub vbios_version: Option<String>,
    /// NUMA node of the memory nearest the GPU (absent where the host reports none).
    pub numa_node: Option<u32>,
    /// CPUs nearest the GPU, as a Linux CPU list (`0-55,112-167`).
    pub cpu_affinity: Option<String>,
    /// How this GPU reaches each other GPU of the node (`nvidia-smi topo -m`).
    #[serde(default)]
    pub peers: Vec<GpuPeer>,

    /// Total framebuffer memory.
    pub memory_total_bytes: Option<u64>,
    /// Used framebuffer memory.
    pub memory_used_bytes: Option<u64>,
    /// Free framebuffer memory.
    pub memory_free_bytes: Option<u64>,
    /// Memory reserved by the driver.
    pub memory_reserved_bytes: Option<u64>,

    /// Fraction of time one or more kernels ran (NVML utilization, coarse).
    pub utilization_ratio: Option<f64>,
    /// Fraction of time device memory was read or written.
    pub memory_copy_utilization_ratio: Option<f64>,
    /// Video encoder utilization.
    pub encoder_utilization_ratio: Option<f64>,
    /// Video decoder utilization.
    pub decoder_utilization_ratio: Option<f64>,

    /// Profiling ratio: graphics/compute engine active (GPM graphics utilization).
    pub graphics_active_ratio: Option<f64>,
    /// Profiling ratio: fraction of SMs with at least one warp resident (GPM SM utilization).
    pub sm_active_ratio: Option<f64>,
    /// Profiling ratio: resident warps over the maximum.
    pub sm_occupancy_ratio: Option<f64>,
    /// Profiling ratio: any tensor pipe active.
    pub tensor_active_ratio: Option<f64>,
    /// Profiling ratio: FP64 pipe active.
    pub fp64_active_ratio: Option<f64>,
    /// Profiling ratio: FP32 pipe active.
    pub fp32_active_ratio: Option<f64>,
    /// Profiling ratio: FP16 pipe active.
    pub fp16_active_ratio: Option<f64>,
    /// Profiling ratio: DRAM bandwidth utilization.
    pub dram_active_ratio: Option<f64>,

    /// GPU core temperature.
    pub temperature_celsius: Option<f64>,
    /// HBM / memory temperature.
    pub memory_temperature_celsius: Option<f64>,
    /// Temperature at which the GPU starts to slow down.
    pub slowdown_temperature_celsius: Option<f64>,
    /// Temperature at which the GPU shuts down.
    pub shutdown_temperature_celsius: Option<f64>,
    /// Highest temperature the GPU is specified to operate at (`nvidia-smi`: GPU Max Operating Temp).
    #[serde(default)]
    pub max_operating_temperature_celsius: Option<f64>,
    /// ECC mode now.
    #[serde(default)]
    pub ecc_mode_current: Option<bool>,
    /// ECC mode after the next reboot (a pending change).
    #[serde(default)]
    pub ecc_mode_pending: Option<bool>,
    /// Compute mode: 0 default, 2 prohibited, 3 exclusive process (`nvmlComputeMode_t`).
    #[serde(default)]
    pub compute_mode: Option<u32>,
    /// Performance state: 0 (P0, maximum performance) to 15 (P15, minimum).
    #[serde(default)]
    pub performance_state: Option<u32>,
    /// Video encoder/decoder clock.
    #[serde(default)]
    pub video_clock_hertz: Option<f64>,
    /// Fan speed as a fraction of the maximum (absent on passively cooled boards).
    pub fan_speed_ratio: Option<f64>,

    /// Power draw.
    pub power_watts: Option<f64>,
    /// Current power management limit.
    pub power_limit_watts: Option<f64>,
    /// Default power management limit.
    pub power_default_limit_watts: Option<f64>,
    /// Lowest settable power limit.
    pub power_min_limit_watts: Option<f64>,
    /// Highest settable power limit.
    pub power_max_limit_watts: Option<f64>,
    /// Energy consumed since the driver was loaded.
    pub energy_joules: Option<f64>,

    /// Current SM clock.
    pub sm_clock_hertz: Option<f64>,
    /// Current memory clock.
    pub memory_clock_hertz: Option<f64>,
    /// Current graphics clock.
    pub graphics_clock_hertz: Option<f64>,
    /// Maximum SM clock.
    pub sm_clock_max_hertz: Option<f64>,
    /// Maximum memory clock.
    pub memory_clock_max_hertz: Option<f64>,
    /// Current clock event (throttle) reasons bitmask, NVML encoding.
    pub clock_event_reasons: Option<u64>,

    /// PCIe transmit throughput (device to host).
    pub pcie_tx_bytes_per_second: Option<f64>,
    /// PCIe receive throughput (host to device).
    pub pcie_rx_bytes_per_second: Option<f64>,
    /// Current PCIe link generation.
    pub pcie_link_generation: Option<u32>,
    /// Maximum PCIe link generation.
    pub pcie_link_generation_max: Option<u32>,
    /// Current PCIe link width (lanes).
    pub pcie_link_width: Option<u32>,
    /// Maximum PCIe link width (lanes).
    pub pcie_link_width_max: Option<u32>,
    /// PCIe replay counter.
    pub pcie_replays_total: Option<u64>,
    /// NVLink transmit throughput over all links.
    pub nvlink_tx_bytes_per_second: Option<f64>,
    /// NVLink receive throughput over all links.
    pub nvlink_rx_bytes_per_second: Option<f64>,
    /// Per-link NVLink state and error counters.
    pub nvlinks: Vec<NvLinkSample>,
    /// The MIG instances (GPU instances) of a GPU in MIG mode, by GPU instance id.
    #[serde(default)]
    pub mig_instances: Vec<MigSample>,

    /// Corrected (single-bit) ECC errors since the last driver load.
    pub ecc_corrected_volatile_total: Option<u64>,
    /// Uncorrected (double-bit) ECC errors since the last driver load.
    pub ecc_uncorrected_volatile_total: Option<u64>,
    /// Corrected ECC errors over the GPU's lifetime.
    pub ecc_corrected_aggregate_total: Option<u64>,
    /// Uncorrected ECC errors over the GPU's lifetime.
    pub ecc_uncorrected_aggregate_total: Option<u64>,
    /// Retired memory pages (all causes).
    pub retired_pages_total: Option<u64>,
    /// A page retirement waits for the next reset.
    pub retired_pages_pending: Option<bool>,
    /// Rows remapped after correctable errors.
    pub remapped_rows_correctable_total: Option<u64>,
    /// Rows remapped after uncorrectable errors.
    pub remapped_rows_uncorrectable_total: Option<u64>,
    /// A row remapping waits for the next reset.
    pub row_remap_pending: Option<bool>,
    /// A row remapping failed.
    pub row_remap_failed: Option<bool>,

    /// The most recent XID code seen on this GPU.
    pub xid_last: Option<u64>,
    /// XID events seen since the agent started, per code.
    pub xid_counts: BTreeMap<u64, u64>,
}

/// One NVLink link of a GPU.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NvLinkSample {
    /// Link number.
    pub link: u32,
    /// Link is up.
    pub active: Option<bool>,
    /// CRC errors on data flits.
    pub crc_errors_total: Option<u64>,
    /// Replay errors.
    pub replay_errors_total: Option<u64>,
    /// Recovery errors.
    pub recovery_errors_total: Option<u64>,
    /// Data transmitted per second on this link, between two readings of its byte counter.
    #[serde(default)]
    pub tx_bytes_per_second: Option<f64>,
    /// Data received per second on this link, between two readings of its byte counter.
    #[serde(default)]
    pub rx_bytes_per_second: Option<f64>,
}

/// One MIG instance (a GPU instance and its compute instance) of a GPU in MIG mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MigSample {
    /// GPU instance id (dcgm-exporter's `GPU_I_ID`).
    pub gpu_instance_id: u32,
    /// GPU instance profile name, e.g. `1g.10gb` (dcgm-exporter's `GPU_I_PROFILE`).
    pub profile: String,
    /// The instance's framebuffer memory.
    pub memory_total_bytes: Option<u64>,
    /// Memory its processes hold.
    pub memory_used_bytes: Option<u64>,
    /// Memory free in the instance.
    pub memory_free_bytes: Option<u64>,
    /// Fraction of time the instance's graphics/compute engine was busy (GPM, 0–1).
    pub graphics_engine_active: Option<f64>,
}

/// One process using one GPU.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    /// Host PID.
    pub pid: u32,
    /// Process name (`comm`); command lines are not exported by default.
    pub name: String,
    /// User name or uid.
    pub user: Option<String>,
    /// NVML index of the GPU.
    pub gpu_index: u32,
    /// UUID of the GPU.
    pub gpu_uuid: String,
    /// GPU memory this process holds on that GPU.
    pub gpu_memory_bytes: Option<u64>,
    /// Share of the GPU's SM time this process used.
    pub sm_utilization_ratio: Option<f64>,
    /// Share of the GPU's memory bandwidth this process used.
    pub memory_utilization_ratio: Option<f64>,
    /// Share of the GPU's video encoder time this process used (absent on GPUs without one).
    #[serde(default)]
    pub encoder_utilization_ratio: Option<f64>,
    /// Share of the GPU's video decoder time this process used (absent on GPUs without one).
    #[serde(default)]
    pub decoder_utilization_ratio: Option<f64>,
    /// Container id (runtime-specific, e.g. containerd's 64 hex digits).
    pub container: Option<String>,
    /// Kubernetes pod name.
    pub pod: Option<String>,
    /// Kubernetes namespace.
    pub namespace: Option<String>,
    /// Kubernetes pod UID.
    pub pod_uid: Option<String>,
    /// CPU time the process used.
    pub cpu_seconds_total: Option<f64>,
    /// Time since the process started (`ps`'s elapsed time).
    pub running_seconds: Option<f64>,
    /// Resident set size.
    pub rss_bytes: Option<u64>,
    /// What the process does (training, inference server, notebook), classified on the node
    /// from its name and command line; `None` where nobody classified it.
    #[serde(default)]
    pub workload: Option<crate::workload::WorkloadClass>,
    /// Parent PID (what launched it: torchrun, a shell, a server's master process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppid: Option<u32>,
    /// The parent's `comm`, read when the process was first seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_name: Option<String>,
}

/// Host signals of a node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostSample {
    /// Per-core CPU usage.
    pub cpus: Vec<CpuSample>,
    /// Busy fraction over all cores (not idle, not iowait).
    pub cpu_busy_ratio: Option<f64>,
    /// Fraction of CPU time waiting on I/O.
    pub cpu_iowait_ratio: Option<f64>,
    /// Fraction of CPU time stolen by the hypervisor.
    pub cpu_steal_ratio: Option<f64>,
    /// One-minute load average.
    pub load1: Option<f64>,
    /// Five-minute load average.
    #[serde(default)]
    pub load5: Option<f64>,
    /// Fifteen-minute load average.
    #[serde(default)]
    pub load15: Option<f64>,
    /// Time since the host booted (`/proc/uptime`).
    #[serde(default)]
    pub uptime_seconds: Option<f64>,
    /// Total memory.
    pub memory_total_bytes: Option<u64>,
    /// Memory available for new work.
    pub memory_available_bytes: Option<u64>,
    /// Swap space (0 on a host without swap).
    #[serde(default)]
    pub swap_total_bytes: Option<u64>,
    /// Swap in use.
    #[serde(default)]
    pub swap_used_bytes: Option<u64>,
    /// Network interfaces, Ethernet and InfiniBand.
    pub nics: Vec<NicSample>,
    /// NVMe block devices.
    pub disks: Vec<DiskSample>,
    /// Mounted filesystems (real ones: no proc, sysfs, cgroup, overlay…), by mount point.
    #[serde(default)]
    pub filesystems: Vec<FsSample>,
}

/// One mounted filesystem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FsSample {
    /// Mount point, e.g. `/data`.
    pub mountpoint: String,
    /// Mounted device or source, e.g. `/dev/nvme0n1p1`.
    #[serde(default)]
    pub device: String,
    /// Filesystem type, e.g. `ext4`.
    #[serde(default)]
    pub fstype: String,
    /// Size.
    pub size_bytes: Option<u64>,
    /// Free space, the blocks reserved for root included.
    pub free_bytes: Option<u64>,
    /// Space available to unprivileged users.
    pub avail_bytes: Option<u64>,
}

/// One CPU core.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuSample {
    /// Core number.
    pub cpu: u32,
    /// Busy fraction over the last interval.
    pub busy_ratio: Option<f64>,
    /// I/O wait fraction over the last interval.
    pub iowait_ratio: Option<f64>,
}

/// Kind of network interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NicKind {
    /// Ethernet (or anything that is not InfiniBand).
    #[default]
    Ethernet,
    /// InfiniBand HCA port.
    Infiniband,
}

impl NicKind {
    /// Lower-case label value.
    pub fn as_str(self) -> &'static str {
        match self {
            NicKind::Ethernet => "ethernet",
            NicKind::Infiniband => "infiniband",
        }
    }
}

/// One network interface or InfiniBand port.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NicSample {
    /// Interface name (`eth0`) or `device/port` for InfiniBand (`mlx5_0/1`).
    pub name: String,
    /// Ethernet or InfiniBand.
    pub kind: NicKind,
    /// Link speed.
    pub speed_bytes_per_second: Option<f64>,
    /// Bytes received.
    pub rx_bytes_total: Option<u64>,
    /// Bytes sent.
    pub tx_bytes_total: Option<u64>,
    /// Packets received.
    pub rx_packets_total: Option<u64>,
    /// Packets sent.
    pub tx_packets_total: Option<u64>,
    /// Receive errors.
    pub rx_errors_total: Option<u64>,
    /// Transmit errors.
    pub tx_errors_total: Option<u64>,
    /// Received packets dropped.
    pub rx_dropped_total: Option<u64>,
    /// Receive rate over the last interval.
    pub rx_bytes_per_second: Option<f64>,
    /// Transmit rate over the last interval.
    pub tx_bytes_per_second: Option<f64>,
    /// The fastest rate the adapter can train at (InfiniBand: from the HCA model).
    #[serde(default)]
    pub speed_max_bytes_per_second: Option<f64>,
    /// Lanes the link trained at (InfiniBand `4X` → 4).
    #[serde(default)]
    pub link_width: Option<u32>,
    /// Lanes the adapter supports (InfiniBand: from the HCA model).
    #[serde(default)]
    pub link_width_max: Option<u32>,
    /// The link carries traffic: Ethernet `operstate` up, InfiniBand port state ACTIVE.
    #[serde(default)]
    pub up: Option<bool>,
    /// InfiniBand logical port state as the kernel numbers it (1 DOWN, 2 INIT, 3 ARMED,
    /// 4 ACTIVE, 5 ACTIVE_DEFER).
    #[serde(default)]
    pub ib_state: Option<u32>,
    /// InfiniBand physical port state as the kernel numbers it (2 Polling, 3 Disabled,
    /// 5 LinkUp, 6 LinkErrorRecovery, …).
    #[serde(default)]
    pub ib_phys_state: Option<u32>,
    /// Times the Ethernet carrier went up or down.
    #[serde(default)]
    pub carrier_changes_total: Option<u64>,
    /// InfiniBand symbol errors (bit errors on a lane).
    #[serde(default)]
    pub symbol_errors_total: Option<u64>,
    /// InfiniBand link error recoveries (the link retrained).
    #[serde(default)]
    pub link_error_recovery_total: Option<u64>,
    /// InfiniBand link-down events.
    #[serde(default)]
    pub link_downed_total: Option<u64>,
    /// InfiniBand local link integrity errors.
    #[serde(default)]
    pub link_integrity_errors_total: Option<u64>,
    /// InfiniBand excessive buffer overrun errors.
    #[serde(default)]
    pub buffer_overrun_errors_total: Option<u64>,
}

/// One NVMe block device.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskSample {
    /// Block device name, e.g. `nvme0n1`.
    pub name: String,
    /// Controller model when known.
    pub model: Option<String>,
    /// Bytes read.
    pub read_bytes_total: Option<u64>,
    /// Bytes written.
    pub write_bytes_total: Option<u64>,
    /// Completed reads.
    pub reads_total: Option<u64>,
    /// Completed writes.
    pub writes_total: Option<u64>,
    /// Time the device was busy.
    pub busy_seconds_total: Option<f64>,
    /// Read rate over the last interval.
    pub read_bytes_per_second: Option<f64>,
    /// Write rate over the last interval.
    pub write_bytes_per_second: Option<f64>,
    /// Busy fraction over the last interval.
    pub busy_ratio: Option<f64>,
}

/// What the CUPTI injection library saw in one process: the latest profiling window and totals.
///
/// "Latest window" values describe one short window (the library profiles in windows, a small
/// share of the time); totals add up every summary the agent received from the process.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelProfile {
    /// Host PID (from the socket's peer credentials, never from the summary).
    pub pid: u32,
    /// Process name (`comm`).
    pub name: String,
    /// User name or uid.
    pub user: Option<String>,
    /// Container id.
    pub container: Option<String>,
    /// Kubernetes pod name.
    pub pod: Option<String>,
    /// Kubernetes namespace.
    pub namespace: Option<String>,
    /// Kubernetes pod UID.
    pub pod_uid: Option<String>,
    /// NVML indices of the GPUs the process uses (from the process sampler).
    pub gpus: Vec<u32>,
    /// Summaries received from this process.
    pub windows_total: u64,
    /// Length of the latest window.
    pub window_seconds: f64,
    /// Period between window starts in effect (stretched by the library's budget controller).
    pub period_seconds: f64,
    /// End of the latest window, milliseconds since the Unix epoch.
    pub window_end_unix_ms: u64,
    /// Kernel launches per second, counted since the previous summary (outside windows too);
    /// absent when the library counted over no time.
    pub launches_per_second: Option<f64>,
    /// Latest window: kernel time by class, one entry per class seen.
    pub classes: Vec<KernelClassTime>,
    /// Latest window: kernel time, all kernels.
    pub kernel_seconds: f64,
    /// Latest window: kernels that ran.
    pub kernel_count: u64,
    /// Latest window: the median kernel duration, as the floor of its log2 histogram bucket;
    /// absent when no kernel ran.
    pub median_kernel_seconds: Option<f64>,
    /// Latest window: copies from or to pageable host memory.
    pub pageable_copies: u64,
    /// Latest window: bytes of those copies.
    pub pageable_copy_bytes: u64,
    /// Latest window: of those copies, the ones issued as async (silently synchronous).
    pub async_pageable_copies: u64,
    /// Latest window: host time in synchronization calls.
    pub sync_seconds: f64,
    /// Latest window: the longest idle gap between kernels on any device; absent when no
    /// device ran a kernel.
    pub gpu_gap_max_seconds: Option<f64>,
    /// Latest window: summed idle gaps between kernels (the device with the most); absent when
    /// no device ran a kernel.
    pub gpu_gap_seconds: Option<f64>,
    /// Latest window: kernels launched from CUDA graphs.
    pub graph_kernels: u64,
    /// Time the library spent in its callbacks, all summaries together.
    pub overhead_seconds_total: f64,
    /// `overhead_seconds_total` as a share of the process's CPU time (both counted from about
    /// the process's start: the library loads when CUDA initialises); absent when the process's
    /// CPU time could not be read.
    #[serde(default)]
    pub overhead_cpu_ratio: Option<f64>,
    /// Activity records CUPTI dropped (its buffers were full), all summaries together.
    pub dropped_records_total: u64,
    /// Summaries the library could not deliver, as it reported them.
    pub summaries_dropped_total: u64,
    /// Latest window: the kernels with the most time, at most 8, longest first. Kernel names go
    /// to the API, `query --json` and the TUI; never to metric labels.
    pub top_kernels: Vec<TopKernel>,
}

/// Kernel time of one kernel class in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KernelClassTime {
    /// The class (kind, pipe, precision).
    pub class: gpuscope_cupti::KernelClass,
    /// Kernels of the class.
    pub count: u64,
    /// Their summed duration.
    pub seconds: f64,
}

/// One kernel name's time in a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopKernel {
    /// Kernel name as CUPTI reported it.
    pub name: String,
    /// Its class.
    pub class: gpuscope_cupti::KernelClass,
    /// Launches that completed in the window.
    pub count: u64,
    /// Their summed duration.
    pub seconds: f64,
}

/// Most top kernels a profile keeps (the summary may carry more).
pub const PROFILE_TOP_KERNELS: usize = 8;

impl KernelProfile {
    /// Takes in one window summary from this process: the latest-window values are replaced,
    /// the totals grow. Identity (pid, name, user, container, GPUs) is the caller's to fill.
    pub fn record(&mut self, s: &gpuscope_cupti::WindowSummary) {
        // Divided, not multiplied by 1e-9: 300 ms of ns becomes exactly 0.3 s.
        let secs = |ns: u64| ns as f64 / 1e9;
        self.windows_total = self.windows_total.saturating_add(1);
        self.window_seconds = secs(s.window_ns());
        self.period_seconds = secs(s.period_ns);
        self.window_end_unix_ms = s.window_end_unix_ns / 1_000_000;
        self.launches_per_second = s.launches_per_second();
        self.classes = s
            .classes
            .iter()
            .map(|c| KernelClassTime { class: c.class, count: c.time.count, seconds: secs(c.time.total_ns) })
            .collect();
        let (count, ns) = s
            .classes
            .iter()
            .fold((0u64, 0u64), |(n, t), c| (n.saturating_add(c.time.count), t.saturating_add(c.time.total_ns)));
        self.kernel_count = count;
        self.kernel_seconds = secs(ns);
        self.median_kernel_seconds = s.median_kernel_duration_floor_ns().map(secs);
        let pageable = s.memcpy.iter().filter(|m| {
            use gpuscope_cupti::summary::MemoryKind::Pageable;
            m.src == Pageable || m.dst == Pageable
        });
        let (copies, bytes) = pageable
            .clone()
            .fold((0u64, 0u64), |(n, b), m| (n.saturating_add(m.transfer.count), b.saturating_add(m.transfer.bytes)));
        self.pageable_copies = copies;
        self.pageable_copy_bytes = bytes;
        self.async_pageable_copies = s.pageable_async_copies().count;
        self.sync_seconds = secs(s.sync_ns());
        self.gpu_gap_max_seconds = s.gpu_gaps.iter().map(|g| g.max_gap_ns).max().map(secs);
        self.gpu_gap_seconds = s.gpu_gaps.iter().map(|g| g.idle_ns).max().map(secs);
        self.graph_kernels = s.graph_kernels.count;
        self.overhead_seconds_total += secs(s.callback_overhead_ns);
        self.dropped_records_total = self.dropped_records_total.saturating_add(s.dropped_records);
        self.summaries_dropped_total = self.summaries_dropped_total.saturating_add(s.summaries_dropped);
        self.top_kernels = s
            .top_kernels
            .iter()
            .take(PROFILE_TOP_KERNELS)
            .map(|k| TopKernel { name: k.name.clone(), class: k.class, count: k.count, seconds: secs(k.total_ns) })
            .collect();
    }
}
