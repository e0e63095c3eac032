//! The scenario file format (TOML): node inventory, GPUs, processes, phases and events.
//!
//! Every key is documented in `sim/README.md`. Unknown keys are errors, so a typo in a scenario
//! never silently falls back to a default.

use crate::presets::{self, GpuPreset};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has an unknown or mistyped key.
    #[error("invalid scenario {path}: {message}")]
    Parse {
        /// File path or built-in name.
        path: String,
        /// What the parser said (names the key).
        message: String,
    },
    /// The scenario parses but contradicts itself.
    #[error("invalid scenario {path}: {message}")]
    Invalid {
        /// File path or built-in name.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// No built-in scenario has that name and no file exists at that path.
    #[error("no scenario named {0:?} (built-in names: {1}) and no such file")]
    NotFound(String, String),
}

/// A whole scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Scenario name (defaults to the file stem).
    #[serde(default)]
    pub name: String,
    /// What the scenario shows.
    #[serde(default)]
    pub description: String,
    /// Finding rule ids the collector must open on this scenario, and no others.
    #[serde(default)]
    pub expect: Vec<String>,
    /// Seed of the deterministic noise.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Repeat the phases forever (else the last phase holds).
    #[serde(default, rename = "loop")]
    pub loop_phases: bool,
    /// Node inventory.
    #[serde(default)]
    pub node: NodeSpec,
    /// Multi-node job: how many nodes play this scenario.
    pub job: Option<JobSpec>,
    /// GPU groups, in index order.
    #[serde(default)]
    pub gpus: Vec<GpuGroup>,
    /// Processes using the GPUs.
    #[serde(default)]
    pub processes: Vec<ProcessSpec>,
    /// The timeline.
    #[serde(default)]
    pub phases: Vec<Phase>,
    /// Timed events (scenario seconds, not repeated by `loop`).
    #[serde(default)]
    pub events: Vec<Event>,
    /// Driver calls that fail for a while (a read that raced, a busy driver), scenario seconds.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// The CUDA workload of one of the processes, played by the simulated CUPTI.
    pub cuda: Option<crate::cuda::CudaSpec>,
}

fn default_seed() -> u64 {
    1
}

/// Host inventory of a node.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    /// Host name; `{node}` is replaced by the node index.
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Logical CPUs.
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// Memory in GiB.
    #[serde(default = "default_memory")]
    pub memory_gib: f64,
    /// Swap space in GiB (GPU nodes mostly run without).
    #[serde(default)]
    pub swap_gib: f64,
    /// Swap in use, GiB.
    #[serde(default)]
    pub swap_used_gib: f64,
    /// NVIDIA driver version string.
    #[serde(default = "default_driver")]
    pub driver_version: String,
    /// CUDA driver version as NVML encodes it (12040 = 12.4).
    #[serde(default = "default_cuda")]
    pub cuda_version: u32,
    /// cgroup hierarchy: `v2` (unified) or `v1`.
    #[serde(default)]
    pub cgroup: CgroupVersion,
    /// kubelet cgroup driver: `systemd` or `cgroupfs`.
    #[serde(default)]
    pub cgroup_driver: CgroupDriver,
    /// Network interfaces and InfiniBand ports.
    #[serde(default)]
    pub nics: Vec<NicSpec>,
    /// NVMe devices.
    #[serde(default)]
    pub nvme: Vec<NvmeSpec>,
}

impl Default for NodeSpec {
    fn default() -> Self {
        NodeSpec {
            hostname: default_hostname(),
            cpus: default_cpus(),
            memory_gib: default_memory(),
            swap_gib: 0.0,
            swap_used_gib: 0.0,
            driver_version: default_driver(),
            cuda_version: default_cuda(),
            cgroup: CgroupVersion::default(),
            cgroup_driver: CgroupDriver::default(),
            nics: Vec::new(),
            nvme: Vec::new(),
        }
    }
}

fn default_hostname() -> String {
    "sim-node-{node}".into()
}
fn default_cpus() -> u32 {
    32
}
fn default_memory() -> f64 {
    256.0
}
fn default_driver() -> String {
    "550.54.15".into()
}
fn default_cuda() -> u32 {
    12040
}

/// cgroup hierarchy version.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupVersion {
    /// Unified hierarchy (`0::/…`).
    #[default]
    V2,
    /// Legacy per-controller hierarchies.
    V1,
}

/// How the kubelet names cgroups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriver {
    /// `kubepods.slice/…/cri-containerd-<id>.scope`.
    #[default]
    Systemd,
    /// `/kubepods/<qos>/pod<uid>/<id>`.
    Cgroupfs,
}

/// Kind of network interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NicKindSpec {
    /// An Ethernet netdev.
    #[default]
    Ethernet,
    /// An InfiniBand HCA port (also gets an IPoIB netdev).
    Infiniband,
}

/// One network interface.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NicSpec {
    /// netdev name (`eth0`, `ib0`).
    pub name: String,
    /// `ethernet` or `infiniband`.
    #[serde(default)]
    pub kind: NicKindSpec,
    /// Link speed in Gbit/s.
    pub speed_gbps: f64,
    /// InfiniBand device name (`mlx5_0`); required for `infiniband`.
    pub device: Option<String>,
    /// InfiniBand port number.
    #[serde(default = "default_port")]
    pub port: u32,
    /// Faulty counters (a firmware or driver bug, a counter reset): the scenario's rates are
    /// written as given, even above the link speed, which a real link never carries.
    #[serde(default)]
    pub faulty_counters: bool,
}

fn default_port() -> u32 {
    1
}

/// One NVMe device.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NvmeSpec {
    /// Block device name (`nvme0n1`).
    pub name: String,
    /// Controller model string.
    #[serde(default = "default_nvme_model")]
    pub model: String,
    /// Maximum sequential read rate, MB/s.
    pub max_read_mb_s: f64,
    /// Maximum sequential write rate, MB/s.
    pub max_write_mb_s: f64,
}

fn default_nvme_model() -> String {
    "SAMSUNG MZWLR3T8HBLS-00007".into()
}

/// Multi-node job.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// Job name (the job label of every node).
    pub name: String,
    /// Number of nodes; each simulated process picks one with `GPUSCOPE_SIM_NODE`.
    pub nodes: u32,
}

/// A run of identical GPUs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuGroup {
    /// Preset key (`H100-SXM5-80GB`, …).
    pub model: String,
    /// How many GPUs of this model.
    #[serde(default = "one")]
    pub count: u32,
    /// Power limit in force, watts (default: the preset's default limit).
    pub power_limit_w: Option<f64>,
    /// MIG mode enabled.
    #[serde(default)]
    pub mig: bool,
    /// GPU instances created with MIG on, by profile name in creation order (`["3g.40gb",
    /// "1g.10gb"]`), each with one compute instance spanning it; needs `mig = true`.
    #[serde(default)]
    pub mig_instances: Vec<String>,
    /// Lifetime (aggregate) corrected ECC errors before the scenario starts.
    #[serde(default)]
    pub ecc_aggregate_corrected: u64,
    /// Pages already retired before the scenario starts (pre-Ampere).
    #[serde(default)]
    pub retired_pages: u64,
    /// Rows already remapped before the scenario starts (Ampere+).
    #[serde(default)]
    pub remapped_rows: u64,
}

fn one() -> u32 {
    1
}

/// Which GPUs a process uses.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum GpuSelection {
    /// `"all"`.
    All(String),
    /// Explicit indices.
    List(Vec<u32>),
}

/// Container runtime that started a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    /// containerd (CRI).
    Containerd,
    /// CRI-O.
    Crio,
    /// Docker.
    Docker,
}

/// Kubernetes QoS class (decides the cgroup path).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QosClass {
    /// `kubepods-burstable`.
    #[default]
    Burstable,
    /// `kubepods-besteffort`.
    Besteffort,
    /// Directly under `kubepods`.
    Guaranteed,
}

/// A process's container.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// Runtime.
    pub runtime: Runtime,
    /// Container id (64 hex digits).
    pub id: String,
}

/// A process's Kubernetes pod.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PodSpec {
    /// Pod UID.
    pub uid: String,
    /// Pod name.
    pub name: String,
    /// Namespace.
    pub namespace: String,
    /// QoS class.
    #[serde(default)]
    pub qos: QosClass,
}

/// One process.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Host PID.
    pub pid: u32,
    /// `comm` (at most 15 bytes are kept, as the kernel does).
    pub name: String,
    /// Command line.
    #[serde(default)]
    pub cmdline: Vec<String>,
    /// User name.
    #[serde(default = "default_user")]
    pub user: String,
    /// Numeric uid.
    #[serde(default = "default_uid")]
    pub uid: u32,
    /// Parent PID: another process of the scenario (a launcher such as torchrun) or 1.
    #[serde(default = "init_pid")]
    pub ppid: u32,
    /// GPUs the process uses: a list of indices or `"all"`; an empty list is a process that
    /// holds no GPU (a launcher), written to /proc but not reported by NVML.
    pub gpus: GpuSelection,
    /// GPU memory per GPU, GiB.
    #[serde(default)]
    pub memory_gib: f64,
    /// The MIG instance it runs on: an index into its GPU's `mig_instances` (the GPU must be a
    /// single one with MIG instances).
    pub mig_instance: Option<u32>,
    /// Share of each GPU's SM time this process gets when several share a GPU.
    #[serde(default = "unit_share")]
    pub sm_share: f64,
    /// CPU cores the process keeps busy.
    #[serde(default)]
    pub cpu_cores: f64,
    /// Resident memory, GiB.
    #[serde(default = "default_rss")]
    pub rss_gib: f64,
    /// Scenario second the process starts.
    #[serde(default)]
    pub start_s: f64,
    /// Scenario second the process exits (never if absent).
    pub end_s: Option<f64>,
    /// Only on this node of a multi-node job (all nodes if absent).
    pub node: Option<u32>,
    /// Container, when containerized.
    pub container: Option<ContainerSpec>,
    /// Kubernetes pod, when in one.
    pub pod: Option<PodSpec>,
}

fn default_user() -> String {
    "root".into()
}

fn init_pid() -> u32 {
    1
}

fn default_uid() -> u32 {
    0
}
fn unit_share() -> f64 {
    1.0
}
fn default_rss() -> f64 {
    2.0
}

/// A target value: a number, or a table with noise and a ramp.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(untagged)]
pub enum Target {
    /// A constant (default noise of the signal applies).
    Value(f64),
    /// Full form.
    Full {
        /// Value at the phase start.
        value: f64,
        /// Noise amplitude (uniform ±); default: the signal's.
        noise: Option<f64>,
        /// Value at the phase end (linear ramp).
        to: Option<f64>,
    },
}

impl Target {
    /// (start value, end value, explicit noise).
    pub fn parts(&self) -> (f64, f64, Option<f64>) {
        match *self {
            Target::Value(v) => (v, v, None),
            Target::Full { value, noise, to } => (value, to.unwrap_or(value), noise),
        }
    }
}

/// Targets for GPU signals. Absent keys take the defaults documented in `sim/README.md`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuTargets {
    /// NVML GPU utilization, 0–1.
    pub util: Option<Target>,
    /// NVML memory (copy) utilization, 0–1.
    pub mem_util: Option<Target>,
    /// Encoder utilization, 0–1.
    pub enc_util: Option<Target>,
    /// Decoder utilization, 0–1.
    pub dec_util: Option<Target>,
    /// Graphics engine active, 0–1.
    pub graphics_active: Option<Target>,
    /// SM active, 0–1.
    pub sm_active: Option<Target>,
    /// SM occupancy, 0–1.
    pub sm_occupancy: Option<Target>,
    /// Tensor pipe active, 0–1.
    pub tensor: Option<Target>,
    /// FP64 pipe active, 0–1.
    pub fp64: Option<Target>,
    /// FP32 pipe active, 0–1.
    pub fp32: Option<Target>,
    /// FP16 pipe active, 0–1.
    pub fp16: Option<Target>,
    /// DRAM active, 0–1.
    pub dram: Option<Target>,
    /// Memory used, GiB (default: the sum of the GPU's processes).
    pub memory_used_gib: Option<Target>,
    /// Power draw, watts.
    pub power_w: Option<Target>,
    /// GPU temperature, °C.
    pub temp_c: Option<Target>,
    /// Memory temperature, °C.
    pub mem_temp_c: Option<Target>,
    /// SM clock, MHz.
    pub sm_clock_mhz: Option<Target>,
    /// Memory clock, MHz.
    pub mem_clock_mhz: Option<Target>,
    /// PCIe receive (host to device), GB/s.
    pub pcie_rx_gb_s: Option<Target>,
    /// PCIe transmit (device to host), GB/s.
    pub pcie_tx_gb_s: Option<Target>,
    /// NVLink receive over all links, GB/s.
    pub nvlink_rx_gb_s: Option<Target>,
    /// NVLink transmit over all links, GB/s.
    pub nvlink_tx_gb_s: Option<Target>,
    /// Current PCIe generation under load.
    pub pcie_gen: Option<u32>,
    /// Current PCIe width under load.
    pub pcie_width: Option<u32>,
    /// PCIe replays per minute.
    pub pcie_replays_per_min: Option<f64>,
    /// NVLink CRC errors per second on each active link.
    pub nvlink_crc_per_s: Option<f64>,
    /// NVLink links that are down.
    pub nvlink_down: Option<Vec<u32>>,
    /// Clock event reasons held (`sw_power_cap`, `hw_slowdown`, …).
    pub throttle: Option<Vec<String>>,
    /// Fraction of seconds the `throttle` reasons are active (default 1).
    pub throttle_duty: Option<f64>,
}

/// Per-NIC traffic and link health targets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NicTargets {
    /// Receive, GB/s.
    pub rx_gb_s: Option<Target>,
    /// Transmit, GB/s.
    pub tx_gb_s: Option<Target>,
    /// Rate the link trained at, Gbit/s (default: the NIC's `speed_gbps`); traffic is capped to it.
    pub rate_gbps: Option<f64>,
    /// Lanes the InfiniBand link trained at (default 4).
    pub width: Option<u32>,
    /// Port state (default `active`); a port that is not active carries no traffic.
    pub state: Option<PortState>,
    /// InfiniBand symbol errors per second.
    pub symbol_errors_per_s: Option<Target>,
    /// InfiniBand link error recoveries per second.
    pub link_error_recovery_per_s: Option<Target>,
    /// Link-down events per second (InfiniBand `link_downed`; Ethernet carrier changes, two each).
    pub link_downed_per_s: Option<Target>,
    /// InfiniBand receive errors per second.
    pub rcv_errors_per_s: Option<Target>,
}

/// State of a port, as InfiniBand names it (an Ethernet netdev is `up` only when `active`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PortState {
    /// No link (physical state Polling).
    Down,
    /// Link up, subnet manager has not configured it.
    Init,
    /// Configured, not yet active.
    Armed,
    /// Carries traffic.
    #[default]
    Active,
}

impl PortState {
    /// The `state` file: `4: ACTIVE`.
    pub fn sysfs_state(self) -> &'static str {
        match self {
            PortState::Down => "1: DOWN",
            PortState::Init => "2: INIT",
            PortState::Armed => "3: ARMED",
            PortState::Active => "4: ACTIVE",
        }
    }

    /// The kernel's number of the logical state (4 ACTIVE).
    pub fn number(self) -> u32 {
        match self {
            PortState::Down => 1,
            PortState::Init => 2,
            PortState::Armed => 3,
            PortState::Active => 4,
        }
    }

    /// The kernel's number of the physical state (2 Polling, 5 LinkUp).
    pub fn phys_number(self) -> u32 {
        match self {
            PortState::Down => 2,
            _ => 5,
        }
    }

    /// The `phys_state` file: the training state under the logical one.
    pub fn sysfs_phys_state(self) -> &'static str {
        match self {
            PortState::Down => "2: Polling",
            _ => "5: LinkUp",
        }
    }
}

/// Per-NVMe targets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NvmeTargets {
    /// Read, MB/s.
    pub read_mb_s: Option<Target>,
    /// Write, MB/s.
    pub write_mb_s: Option<Target>,
    /// Busy fraction, 0–1 (default: from the rates against the device's maximum).
    pub busy: Option<Target>,
}

/// Host targets.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostTargets {
    /// Busy fraction of every core, 0–1 (default: from the processes' `cpu_cores`).
    pub cpu_busy: Option<Target>,
    /// Busy fraction of single cores by index, overriding `cpu_busy`.
    #[serde(default)]
    pub cpu_busy_cores: BTreeMap<String, Target>,
    /// I/O wait fraction of every core.
    pub iowait: Option<Target>,
    /// Steal fraction of every core.
    pub steal: Option<Target>,
    /// Memory used, GiB.
    pub memory_used_gib: Option<Target>,
    /// Traffic per NIC name.
    #[serde(default)]
    pub nics: BTreeMap<String, NicTargets>,
    /// Traffic per NVMe block device name.
    #[serde(default)]
    pub nvme: BTreeMap<String, NvmeTargets>,
}

/// Targets for a subset of nodes and GPUs, over the phase's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// Only on this node (all nodes if absent).
    pub node: Option<u32>,
    /// Only on these GPUs (all GPUs if absent).
    pub gpus: Option<Vec<u32>>,
    /// GPU targets replacing the phase's.
    #[serde(default)]
    pub gpu: GpuTargets,
    /// Host targets replacing the phase's.
    #[serde(default)]
    pub host: HostTargets,
}

/// One phase of the timeline.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Phase {
    /// Phase name.
    #[serde(default)]
    pub name: String,
    /// Length in whole seconds.
    pub duration_s: u64,
    /// GPU targets for every GPU.
    #[serde(default)]
    pub gpu: GpuTargets,
    /// Host targets.
    #[serde(default)]
    pub host: HostTargets,
    /// Node- or GPU-specific targets, applied in order.
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// Kind of timed event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// An XID error (`code`).
    Xid,
    /// ECC errors (`corrected`, `uncorrected`).
    Ecc,
    /// The GPU falls off the bus (answers GPU_IS_LOST from then on).
    GpuLost,
    /// A row remapping becomes pending (and `count` rows are remapped).
    RowRemapPending,
    /// A row remapping fails.
    RowRemapFailed,
    /// `count` pages are retired (pending retirement if `pending`).
    RetiredPages,
}

/// A timed event.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    /// Scenario second.
    pub at_s: f64,
    /// What happens.
    pub kind: EventKind,
    /// GPU index.
    pub gpu: u32,
    /// Only on this node (all nodes if absent).
    pub node: Option<u32>,
    /// XID code.
    pub code: Option<u64>,
    /// Corrected ECC errors added.
    #[serde(default)]
    pub corrected: u64,
    /// Uncorrected ECC errors added.
    #[serde(default)]
    pub uncorrected: u64,
    /// Rows remapped or pages retired.
    #[serde(default = "one_u64")]
    pub count: u64,
    /// Retired pages wait for a reset.
    #[serde(default)]
    pub pending: bool,
}

/// What a [`Fault`] makes fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// The running-process lists (`nvmlDeviceGetComputeRunningProcesses*`) answer UNKNOWN.
    Processes,
    /// GPM samples (`nvmlGpmSampleGet`, `nvmlGpmMigSampleGet`) answer UNKNOWN on a GPM GPU.
    Gpm,
}

/// A driver call that fails for `duration_s` at `at_s`, and again every `every_s` if given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// What fails.
    pub what: FaultKind,
    /// First failure, scenario seconds.
    #[serde(default)]
    pub at_s: f64,
    /// Repeat period, scenario seconds (once if absent).
    pub every_s: Option<f64>,
    /// How long each failure lasts, scenario seconds.
    #[serde(default = "one_f64")]
    pub duration_s: f64,
    /// Only on this node of a multi-node job (all nodes if absent).
    pub node: Option<u32>,
    /// Only on these GPUs (all if absent).
    pub gpus: Option<Vec<u32>>,
}

impl Fault {
    /// Whether this fault holds at scenario second `t` on `node`'s GPU `gpu`.
    pub fn holds(&self, node: u32, gpu: u32, t: f64) -> bool {
        if self.node.is_some_and(|n| n != node) || self.gpus.as_ref().is_some_and(|g| !g.contains(&gpu)) {
            return false;
        }
        let since = t - self.at_s;
        if since < 0.0 {
            return false;
        }
        let into = match self.every_s.filter(|p| *p > 0.0) {
            Some(p) => since % p,
            None => since,
        };
        into < self.duration_s
    }
}

fn one_f64() -> f64 {
    1.0
}

fn one_u64() -> u64 {
    1
}

/// Built-in scenarios shipped in `sim/scenarios/`, by name.
pub static BUILTIN: &[(&str, &str)] = &[
    ("healthy-bf16-training", include_str!("../scenarios/healthy-bf16-training.toml")),
    ("healthy-inference", include_str!("../scenarios/healthy-inference.toml")),
    ("workstation-inference", include_str!("../scenarios/workstation-inference.toml")),
    ("mig-inference", include_str!("../scenarios/mig-inference.toml")),
    ("dataloader-stall", include_str!("../scenarios/dataloader-stall.toml")),
    ("no-tensor-cores", include_str!("../scenarios/no-tensor-cores.toml")),
    ("fp64-heavy", include_str!("../scenarios/fp64-heavy.toml")),
    ("launch-bound", include_str!("../scenarios/launch-bound.toml")),
    ("memory-bandwidth-bound", include_str!("../scenarios/memory-bandwidth-bound.toml")),
    ("input-bound-cpu", include_str!("../scenarios/input-bound-cpu.toml")),
    ("input-bound-io", include_str!("../scenarios/input-bound-io.toml")),
    ("host-thread-bound", include_str!("../scenarios/host-thread-bound.toml")),
    ("pcie-h2d-bound", include_str!("../scenarios/pcie-h2d-bound.toml")),
    ("comm-bound", include_str!("../scenarios/comm-bound.toml")),
    ("nccl-over-tcp", include_str!("../scenarios/nccl-over-tcp.toml")),
    ("memory-underused", include_str!("../scenarios/memory-underused.toml")),
    ("memory-near-full", include_str!("../scenarios/memory-near-full.toml")),
    ("gpu-idle-allocated", include_str!("../scenarios/gpu-idle-allocated.toml")),
    ("straggler", include_str!("../scenarios/straggler.toml")),
    ("straggler-throttled", include_str!("../scenarios/straggler-throttled.toml")),
    ("straggler-2node", include_str!("../scenarios/straggler-2node.toml")),
    ("sparse-samples", include_str!("../scenarios/sparse-samples.toml")),
    ("triton-moderate-load", include_str!("../scenarios/triton-moderate-load.toml")),
    ("vllm-preallocated", include_str!("../scenarios/vllm-preallocated.toml")),
    ("memory-growing", include_str!("../scenarios/memory-growing.toml")),
    ("impossible-nic-rates", include_str!("../scenarios/impossible-nic-rates.toml")),
    ("power-capped", include_str!("../scenarios/power-capped.toml")),
    ("thermal-throttle", include_str!("../scenarios/thermal-throttle.toml")),
    ("hw-slowdown", include_str!("../scenarios/hw-slowdown.toml")),
    ("app-clocks-capped", include_str!("../scenarios/app-clocks-capped.toml")),
    ("pcie-link-degraded", include_str!("../scenarios/pcie-link-degraded.toml")),
    ("gpu-lost", include_str!("../scenarios/gpu-lost.toml")),
    ("xid-error", include_str!("../scenarios/xid-error.toml")),
    ("ecc-uncorrectable", include_str!("../scenarios/ecc-uncorrectable.toml")),
    ("row-remap", include_str!("../scenarios/row-remap.toml")),
    ("retired-pages", include_str!("../scenarios/retired-pages.toml")),
    ("pcie-replay", include_str!("../scenarios/pcie-replay.toml")),
    ("nvlink-errors", include_str!("../scenarios/nvlink-errors.toml")),
    ("net-link-degraded", include_str!("../scenarios/net-link-degraded.toml")),
    ("cuda-fp32-sgemm", include_str!("../scenarios/cuda-fp32-sgemm.toml")),
    ("cuda-bf16-tensor", include_str!("../scenarios/cuda-bf16-tensor.toml")),
    ("cuda-pageable-copies", include_str!("../scenarios/cuda-pageable-copies.toml")),
    ("cuda-sync-heavy", include_str!("../scenarios/cuda-sync-heavy.toml")),
    ("cuda-decode-short-kernels", include_str!("../scenarios/cuda-decode-short-kernels.toml")),
];

impl Scenario {
    /// Parses scenario TOML; `origin` names the file in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Scenario, ScenarioError> {
        let mut s: Scenario = toml::from_str(text).map_err(|e| ScenarioError::Parse {
            path: origin.to_string(),
            message: e.to_string().trim_end().to_string(),
        })?;
        if s.name.is_empty() {
            s.name = Path::new(origin)
                .file_stem()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| origin.to_string());
        }
        s.validate().map_err(|message| ScenarioError::Invalid { path: origin.to_string(), message })?;
        if let Some(cuda) = &mut s.cuda
            && cuda.name.is_empty()
        {
            cuda.name = s.name.clone();
        }
        Ok(s)
    }

    /// Loads a built-in scenario by name, or a file by path.
    pub fn load(name_or_path: &str) -> Result<Scenario, ScenarioError> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Scenario::from_toml(text, &format!("{name}.toml"));
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
            return Err(ScenarioError::NotFound(name_or_path.to_string(), names.join(", ")));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Read { path: name_or_path.to_string(), source })?;
        Scenario::from_toml(&text, name_or_path)
    }

    /// Whether checking the scenario's findings needs a long play: it expects nothing (a
    /// 10-minute rule must stay quiet on it) or one of the rules that wait 10 minutes.
    pub fn needs_long_play(&self) -> bool {
        self.expect.is_empty()
            || self
                .expect
                .iter()
                .any(|r| ["memory-underused", "gpu-idle-allocated", "hw-slowdown"].contains(&r.as_str()))
    }

    /// Number of GPUs on each node.
    pub fn gpu_count(&self) -> u32 {
        self.gpus.iter().map(|g| g.count).sum()
    }

    /// Number of nodes (1 without a job).
    pub fn node_count(&self) -> u32 {
        self.job.as_ref().map_or(1, |j| j.nodes)
    }

    /// The preset and group of GPU `index`.
    pub fn gpu_group(&self, index: u32) -> Option<(&GpuGroup, &'static GpuPreset)> {
        let mut first = 0;
        for g in &self.gpus {
            if index < first + g.count {
                return presets::preset(&g.model).map(|p| (g, p));
            }
            first += g.count;
        }
        None
    }

    /// Total length of one pass over the phases, seconds.
    pub fn timeline_s(&self) -> u64 {
        self.phases.iter().map(|p| p.duration_s).sum()
    }

    /// Host name of node `node`.
    pub fn hostname(&self, node: u32) -> String {
        self.node.hostname.replace("{node}", &node.to_string())
    }

    /// Whether process `p` runs on `gpu` of `node`.
    pub fn process_uses(&self, p: &ProcessSpec, node: u32, gpu: u32) -> bool {
        p.node.is_none_or(|n| n == node)
            && match &p.gpus {
                GpuSelection::All(_) => gpu < self.gpu_count(),
                GpuSelection::List(l) => l.contains(&gpu),
            }
    }

    fn validate(&self) -> Result<(), String> {
        for g in &self.gpus {
            if presets::preset(&g.model).is_none() {
                let keys: Vec<&str> = presets::PRESETS.iter().map(|p| p.key).collect();
                return Err(format!("gpus.model {:?} is not a known preset ({})", g.model, keys.join(", ")));
            }
            if !g.mig_instances.is_empty() && !g.mig {
                return Err(format!("gpus.mig_instances on a {} needs mig = true", g.model));
            }
            crate::mig::place(&g.model, &g.mig_instances)?;
            if let (Some(limit), Some(p)) = (g.power_limit_w, presets::preset(&g.model))
                && !(p.power_min_w..=p.power_max_w).contains(&limit)
            {
                return Err(format!(
                    "gpus.power_limit_w {limit} is outside {}'s range {}–{} W",
                    p.key, p.power_min_w, p.power_max_w
                ));
            }
        }
        if self.phases.is_empty() {
            return Err("a scenario needs at least one [[phases]] entry".into());
        }
        if self.phases.iter().any(|p| p.duration_s == 0) {
            return Err("phases.duration_s must be at least 1".into());
        }
        let n = self.gpu_count();
        let nodes = self.node_count();
        if nodes == 0 {
            return Err("job.nodes must be at least 1".into());
        }
        let mut pids = std::collections::HashSet::new();
        for p in &self.processes {
            if let GpuSelection::List(l) = &p.gpus
                && let Some(bad) = l.iter().find(|&&g| g >= n)
            {
                return Err(format!("processes.gpus: process {} names GPU {bad}, the node has {n}", p.pid));
            }
            if let GpuSelection::All(s) = &p.gpus
                && s != "all"
            {
                return Err(format!("processes.gpus must be a list of indices or \"all\", not {s:?}"));
            }
            if !pids.insert((p.pid, p.node)) {
                return Err(format!("processes.pid {} appears twice", p.pid));
            }
            if p.node.is_some_and(|x| x >= nodes) {
                return Err(format!("processes.node of pid {} is beyond job.nodes", p.pid));
            }
            if p.pid == 0 {
                return Err("processes.pid must be positive".into());
            }
            if let Some(i) = p.mig_instance {
                let gpu = match &p.gpus {
                    GpuSelection::List(l) if l.len() == 1 => l[0],
                    _ => return Err(format!("processes.mig_instance of pid {} needs exactly one GPU in gpus", p.pid)),
                };
                let count = self.gpu_group(gpu).map_or(0, |(g, _)| g.mig_instances.len());
                if i as usize >= count {
                    return Err(format!(
                        "processes.mig_instance {i} of pid {}: GPU {gpu} has {count} MIG instances",
                        p.pid
                    ));
                }
            }
            // A parent is init or a process of the scenario on the same node: the agent names a
            // parent from its /proc entry, which only scenario processes have.
            if p.ppid == p.pid
                || (p.ppid != 1
                    && !self.processes.iter().any(|q| q.pid == p.ppid && (q.node.is_none() || q.node == p.node)))
            {
                return Err(format!(
                    "processes.ppid {} of pid {} is neither 1 nor another process of the node",
                    p.ppid, p.pid
                ));
            }
        }
        if let Some(cuda) = &self.cuda {
            cuda.validate(|pid| {
                self.processes.iter().find(|p| p.pid == pid).map(|p| match &p.gpus {
                    GpuSelection::All(_) => n,
                    GpuSelection::List(l) => l.len() as u32,
                })
            })?;
        }
        for e in &self.events {
            if e.gpu >= n {
                return Err(format!("events.gpu {} is beyond the node's {n} GPUs", e.gpu));
            }
            if e.kind == EventKind::Xid && e.code.is_none() {
                return Err("events: an xid event needs `code`".into());
            }
            if e.at_s < 0.0 {
                return Err("events.at_s must not be negative".into());
            }
        }
        if !(self.node.swap_gib >= 0.0 && (0.0..=self.node.swap_gib).contains(&self.node.swap_used_gib)) {
            return Err("node.swap_used_gib must be between 0 and node.swap_gib".into());
        }
        for nic in &self.node.nics {
            if nic.kind == NicKindSpec::Infiniband && nic.device.is_none() {
                return Err(format!("node.nics: InfiniBand interface {} needs `device`", nic.name));
            }
        }
        for ph in &self.phases {
            for t in std::iter::once(&ph.gpu).chain(ph.overrides.iter().map(|o| &o.gpu)) {
                for r in t.throttle.iter().flatten() {
                    if !gpuscope_core::catalogue::CLOCK_EVENT_REASONS.iter().any(|(_, n)| n == r) {
                        return Err(format!("phases.gpu.throttle: unknown clock event reason {r:?}"));
                    }
                }
            }
            for h in std::iter::once(&ph.host).chain(ph.overrides.iter().map(|o| &o.host)) {
                for (name, t) in &h.nics {
                    let Some(nic) = self.node.nics.iter().find(|n| &n.name == name) else {
                        return Err(format!("phases.host.nics: no NIC named {name:?} in node.nics"));
                    };
                    if t.rate_gbps.is_some_and(|r| !(r > 0.0 && r <= nic.speed_gbps)) {
                        return Err(format!(
                            "phases.host.nics.{name}.rate_gbps must be above 0 and at most the NIC's speed_gbps {}",
                            nic.speed_gbps
                        ));
                    }
                    if t.width.is_some_and(|w| ![1, 2, 4, 8, 12].contains(&w)) {
                        return Err(format!("phases.host.nics.{name}.width must be 1, 2, 4, 8 or 12 lanes"));
                    }
                }
                for name in h.nvme.keys() {
                    if !self.node.nvme.iter().any(|n| &n.name == name) {
                        return Err(format!("phases.host.nvme: no device named {name:?} in node.nvme"));
                    }
                }
                for core in h.cpu_busy_cores.keys() {
                    if core.parse::<u32>().map_or(true, |c| c >= self.node.cpus) {
                        return Err(format!(
                            "phases.host.cpu_busy_cores: {core:?} is not a core index below {}",
                            self.node.cpus
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
