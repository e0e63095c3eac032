//! The rule catalogue: one entry per rule of RULES.md, with its scope, default severity,
//! timing, advice and evaluation function.

mod efficiency;
mod health;
mod power;

use crate::config::{Thresholds, Timing};
use crate::window::NodeWindow;
use gpuscope_core::{Action, Evidence, GpuSample, NodeSnapshot, Severity};

/// What a finding of the rule is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleScope {
    /// One GPU.
    Gpu,
    /// One node.
    Node,
    /// A multi-node job.
    Job,
    /// One process (kernel-level rules, need CUPTI).
    Process,
}

impl RuleScope {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleScope::Gpu => "gpu",
            RuleScope::Node => "node",
            RuleScope::Job => "job",
            RuleScope::Process => "process",
        }
    }
}

/// The condition holds now for one scope key.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Node, for GPU and node scopes.
    pub node: Option<String>,
    /// GPUs concerned.
    pub gpus: Vec<u32>,
    /// Job, when known.
    pub job: Option<String>,
    /// Severity when it differs from the rule's default.
    pub severity: Option<Severity>,
    /// One sentence: what is wrong, here.
    pub summary: String,
    /// Observed values against thresholds.
    pub evidence: Vec<Evidence>,
    /// Action when it differs from the rule's default.
    pub action: Option<Action>,
    /// Advice when it differs from the rule's default.
    pub recommendation: Option<String>,
}

/// What a rule sees.
pub struct Ctx<'a> {
    /// Evaluation time, ms since the epoch.
    pub now_ms: u64,
    /// Every node's window, by host name.
    pub nodes: Vec<(&'a str, &'a NodeWindow)>,
    /// Thresholds.
    pub t: &'a Thresholds,
    /// Wall seconds per workload second.
    pub scale: f64,
}

impl Ctx<'_> {
    /// The smoothing span, ms.
    pub fn span(&self) -> u64 {
        self.ms(self.t.eval_span_s)
    }

    /// Workload seconds as wall milliseconds.
    pub fn ms(&self, secs: f64) -> u64 {
        (secs * self.scale * 1000.0) as u64
    }

    /// A rate the agent derived from counters over wall time, in workload units.
    pub fn workload_rate(&self, r: f64) -> f64 {
        r * self.scale
    }

    /// (node, window, latest snapshot) for every node with data.
    pub fn latest(&self) -> impl Iterator<Item = (&str, &NodeWindow, &NodeSnapshot)> {
        self.nodes.iter().filter_map(|(n, w)| w.latest().map(|s| (*n, *w, s)))
    }

    /// (node, window, latest, gpu) for every GPU that answers.
    pub fn gpus(&self) -> impl Iterator<Item = (&str, &NodeWindow, &NodeSnapshot, &GpuSample)> {
        self.latest().flat_map(|(n, w, s)| s.gpus.iter().filter(|g| !g.lost).map(move |g| (n, w, s, g)))
    }

    /// Mean SM activity of a GPU, or its utilization when GPM is absent (lower confidence).
    pub fn activity(&self, w: &NodeWindow, gpu: u32) -> Option<(f64, &'static str)> {
        w.gpu_mean(gpu, self.now_ms, self.span(), |g| g.sm_active_ratio)
            .map(|v| (v, "sm_active"))
            .or_else(|| w.gpu_mean(gpu, self.now_ms, self.span(), |g| g.utilization_ratio).map(|v| (v, "util")))
    }
}

/// Evidence entry.
pub fn ev(signal: &str, value: f64, threshold: f64) -> Evidence {
    Evidence { signal: signal.to_string(), value, threshold }
}

/// A GPU-scope hit.
pub fn gpu_hit(node: &str, snap: &NodeSnapshot, gpu: u32, summary: String, evidence: Vec<Evidence>) -> Hit {
    Hit {
        node: Some(node.to_string()),
        gpus: vec![gpu],
        job: snap.node.job.clone(),
        severity: None,
        summary,
        evidence,
        action: None,
        recommendation: None,
    }
}

/// A node-scope hit.
pub fn node_hit(node: &str, snap: &NodeSnapshot, gpus: Vec<u32>, summary: String, evidence: Vec<Evidence>) -> Hit {
    Hit { gpus, ..gpu_hit(node, snap, 0, summary, evidence) }
}

/// One rule.
pub struct RuleInfo {
    /// Stable id.
    pub id: &'static str,
    /// Scope.
    pub scope: RuleScope,
    /// Default severity.
    pub severity: Severity,
    /// Default timing.
    pub timing: Timing,
    /// The condition, in words.
    pub condition: &'static str,
    /// What to change.
    pub recommendation: &'static str,
    /// Operator action for health rules.
    pub action: Option<Action>,
    /// Evaluation; `None` for kernel-level rules that need CUPTI data.
    pub eval: Option<fn(&Ctx) -> Vec<Hit>>,
}

impl RuleInfo {
    /// Documentation link.
    pub fn docs(&self) -> String {
        format!("https://github.com/gpuscope/gpuscope/blob/main/docs/rules.md#{}", self.id)
    }
}

const STD: Timing = Timing { sustain_s: 60.0, clear_s: 60.0 };
const LONG: Timing = Timing { sustain_s: 600.0, clear_s: 60.0 };
const EVENT: Timing = Timing { sustain_s: 0.0, clear_s: 60.0 };

macro_rules! rule {
    ($id:literal, $scope:ident, $sev:ident, $timing:expr, $cond:literal, $rec:literal, $action:expr, $eval:expr) => {
        RuleInfo {
            id: $id,
            scope: RuleScope::$scope,
            severity: Severity::$sev,
            timing: $timing,
            condition: $cond,
            recommendation: $rec,
            action: $action,
            eval: $eval,
        }
    };
}

/// Every rule of RULES.md.
pub static RULES: &[RuleInfo] = &[
    rule!(
        "no-tensor-cores",
        Gpu,
        Warning,
        STD,
        "GPU has tensor cores (CC >= 7.0), fp32 >= 0.3 (or sm_active >= 0.5 without pipe data) and tensor < 0.05",
        "Matrix math runs in FP32 on the CUDA cores. Enable automatic mixed precision (bf16 on Ampere+, fp16 with loss scaling on Volta/Turing); on Ampere+ at least allow TF32; on Hopper consider FP8 for transformer layers. Expected gain: several times on matmul-heavy steps.",
        None,
        Some(efficiency::no_tensor_cores)
    ),
    rule!(
        "fp64-heavy",
        Gpu,
        Warning,
        STD,
        "fp64 >= 0.2 and fp64 > fp32 + tensor",
        "Double precision dominates, usually by accident (NumPy float64 defaults). Cast inputs and parameters to fp32/bf16.",
        None,
        Some(efficiency::fp64_heavy)
    ),
    rule!(
        "launch-bound",
        Gpu,
        Warning,
        STD,
        "util >= 0.9 and sm_active < 0.5",
        "Kernels are always running but occupy few SMs: tiny kernels or small batches, launch overhead. Larger batch, kernel fusion (torch.compile), CUDA Graphs.",
        None,
        Some(efficiency::launch_bound)
    ),
    rule!(
        "memory-bandwidth-bound",
        Gpu,
        Info,
        STD,
        "dram >= 0.6 and tensor < 0.2 and fp32 < 0.3",
        "Memory-bandwidth bound. Fuse elementwise ops, use fused/flash attention, keep activations in bf16/fp8, raise arithmetic intensity.",
        None,
        Some(efficiency::memory_bandwidth_bound)
    ),
    rule!(
        "input-bound-cpu",
        Node,
        Warning,
        STD,
        "sm_active < 0.5 on the job's GPUs and host cpu_busy >= 0.9",
        "The input pipeline cannot feed the GPUs. More DataLoader workers, move decoding/augmentation to the GPU (e.g. DALI), cache preprocessed data, persistent_workers, check CPU limits of the container.",
        None,
        Some(efficiency::input_bound_cpu)
    ),
    rule!(
        "input-bound-io",
        Node,
        Warning,
        STD,
        "sm_active < 0.5 and (iowait >= 0.1 or an NVMe device >= 0.9 busy)",
        "Storage cannot feed the job. Stage the data set on local NVMe, use large sequential record formats (WebDataset, TFRecord, Parquet shards), raise prefetch, add reader threads.",
        None,
        Some(efficiency::input_bound_io)
    ),
    rule!(
        "host-thread-bound",
        Node,
        Warning,
        STD,
        "one core >= 0.95 busy, mean of the others < 0.3, sm_active < 0.5",
        "A single host thread (often the Python training loop) is the bottleneck: CUDA Graphs / torch.compile to cut launch work, larger batch, move logging/metrics off the hot loop.",
        None,
        Some(efficiency::host_thread_bound)
    ),
    rule!(
        "pcie-h2d-bound",
        Gpu,
        Warning,
        STD,
        "pcie_rx >= 0.6 of the link's bandwidth and sm_active < 0.5",
        "Host-to-device copies dominate. Pin host memory (pin_memory=True), copy with non_blocking=True, keep data on the GPU between steps, batch small transfers.",
        None,
        Some(efficiency::pcie_h2d_bound)
    ),
    rule!(
        "comm-bound",
        Node,
        Warning,
        STD,
        "sm_active < 0.5 and NVLink or a NIC >= 0.7 of its bandwidth",
        "Collective communication dominates. Overlap communication with compute (bucket sizes in DDP/FSDP), gradient accumulation, compression, check topology.",
        None,
        Some(efficiency::comm_bound)
    ),
    rule!(
        "nccl-over-tcp",
        Job,
        Warning,
        STD,
        "multi-node job, InfiniBand present but idle while Ethernet carries >= 1 GB/s",
        "NCCL is likely falling back to TCP sockets. Check NCCL_IB_HCA, RDMA drivers and the container's access to /dev/infiniband.",
        None,
        Some(efficiency::nccl_over_tcp)
    ),
    rule!(
        "memory-underused",
        Gpu,
        Info,
        LONG,
        "a process holds the GPU, mem_used < 0.5 of total and sm_active < 0.5 for 10 min",
        "Room for a larger batch (mind convergence: scale the learning rate), or pack more work onto the GPU.",
        None,
        Some(efficiency::memory_underused)
    ),
    rule!(
        "memory-near-full",
        Gpu,
        Warning,
        STD,
        "mem_used >= 0.95 of total",
        "Risk of out-of-memory. Activation checkpointing, mixed precision, smaller micro-batch with gradient accumulation.",
        None,
        Some(efficiency::memory_near_full)
    ),
    rule!(
        "gpu-idle-allocated",
        Gpu,
        Warning,
        LONG,
        "a process holds memory on the GPU and sm_active (or util) < 0.05 for 10 min",
        "The GPU is reserved but idle (hung job, notebook left open, waiting on input). Release it or find what blocks the job.",
        None,
        Some(efficiency::gpu_idle_allocated)
    ),
    rule!(
        "straggler",
        Job,
        Warning,
        STD,
        "one node or GPU >= 15 points of sm_active below the job's median while the others wait",
        "One member slows the whole job. Look at that GPU/node: throttling, a bad NIC, a noisy neighbour.",
        None,
        Some(efficiency::straggler)
    ),
    rule!(
        "power-capped",
        Gpu,
        Info,
        STD,
        "SW power cap active >= 50% of the window and SM clock < 0.9 of max",
        "Power-bound. Normal for some workloads at full load; if the power limit is below the default limit, it was lowered: restore it. For efficiency, a lower limit can save energy with little slowdown on memory-bound work.",
        None,
        Some(power::power_capped)
    ),
    rule!(
        "thermal-throttle",
        Gpu,
        Warning,
        STD,
        "SW or HW thermal slowdown active, or temperature within 5 C of the slowdown threshold",
        "Cooling problem: airflow, fans, inlet temperature, thermal paste.",
        Some(Action::Monitor),
        Some(power::thermal_throttle)
    ),
    rule!(
        "hw-slowdown",
        Gpu,
        Critical,
        STD,
        "HW slowdown or HW power brake onsets >= 0.6 per minute over 10 min",
        "Clocks cut hard by hardware: power supply or external power brake, or overheating. Check PSU/PDU and cooling; drain if persistent.",
        Some(Action::Drain),
        Some(power::hw_slowdown)
    ),
    rule!(
        "app-clocks-capped",
        Gpu,
        Info,
        STD,
        "applications-clocks-setting clock event active",
        "Application clocks cap the GPU; reset them (nvidia-smi -rac) unless intended.",
        None,
        Some(power::app_clocks_capped)
    ),
    rule!(
        "pcie-link-degraded",
        Gpu,
        Warning,
        STD,
        "current PCIe generation or width below the maximum while under load",
        "Link trained below capability: reseat, check riser/BIOS/ASPM.",
        Some(Action::Monitor),
        Some(power::pcie_link_degraded)
    ),
    rule!(
        "gpu-lost",
        Gpu,
        Critical,
        EVENT,
        "NVML reports the GPU lost, or XID 79",
        "Critical: drain the node and reboot; a repeat means hardware.",
        Some(Action::RebootNode),
        Some(health::gpu_lost)
    ),
    rule!(
        "xid-error",
        Gpu,
        Warning,
        EVENT,
        "any XID event (classified: application, reset, reboot, NVLink, memory)",
        "Per class: debug the application, reset the GPU, reboot, NVLink or memory workflow.",
        Some(Action::Monitor),
        Some(health::xid_error)
    ),
    rule!(
        "ecc-uncorrectable",
        Gpu,
        Critical,
        EVENT,
        "volatile uncorrectable ECC count increases",
        "Drain and reset the GPU; run diagnostics.",
        Some(Action::ResetGpu),
        Some(health::ecc_uncorrectable)
    ),
    rule!(
        "row-remap",
        Gpu,
        Warning,
        EVENT,
        "row remapping pending (warning) or failed (critical)",
        "Pending: schedule a GPU reset. Failed: field diagnostic / RMA.",
        Some(Action::ResetGpu),
        Some(health::row_remap)
    ),
    rule!(
        "retired-pages",
        Gpu,
        Warning,
        EVENT,
        "retired pages >= 60, or a retirement pending",
        "Pending: reset to apply. At the limit: field diagnostic / RMA.",
        Some(Action::ResetGpu),
        Some(health::retired_pages)
    ),
    rule!(
        "pcie-replay",
        Gpu,
        Warning,
        EVENT,
        "PCIe replay counter rises > 8 per minute",
        "Signal-integrity problem: reseat, check the slot and riser.",
        Some(Action::Monitor),
        Some(health::pcie_replay)
    ),
    rule!(
        "nvlink-errors",
        Gpu,
        Warning,
        EVENT,
        "NVLink CRC errors rising (>= 100/s critical), any replay/recovery error, or a link down",
        "NVLink fault: check link state and Fabric Manager; field diagnostic if it persists.",
        Some(Action::Monitor),
        Some(health::nvlink_errors)
    ),
    rule!(
        "fp32-gemm-kernels",
        Process,
        Warning,
        STD,
        ">= 50% of matmul/convolution kernel time in kernels without tensor cores (needs CUPTI)",
        "Same fix as no-tensor-cores, with the top offending kernels as evidence.",
        None,
        None
    ),
    rule!(
        "pageable-memcpy",
        Process,
        Warning,
        STD,
        "asynchronous copies from or to pageable host memory (needs CUPTI)",
        "The copy silently becomes synchronous. Pin host memory (pin_memory=True, tensor.pin_memory()).",
        None,
        None
    ),
    rule!(
        "sync-heavy",
        Process,
        Warning,
        STD,
        "time in device/stream synchronization >= 10% of the window (needs CUPTI)",
        "The host waits on the GPU too often: remove .item(), .cpu(), printing tensors and explicit synchronizations from the step loop; use events.",
        None,
        None
    ),
    rule!(
        "gpu-gaps",
        Process,
        Warning,
        STD,
        "GPU idle gaps > 500 ms between kernels while the process runs (needs CUPTI)",
        "The CPU side stalls between GPU work: profile the host (data loading, checkpointing, logging).",
        None,
        None
    ),
    rule!(
        "short-kernels",
        Process,
        Info,
        STD,
        "median kernel duration < 10 us and kernels are launch-limited (needs CUPTI)",
        "Launch overhead dominates: CUDA Graphs, torch.compile, fusion.",
        None,
        None
    ),
];

/// The rule with this id.
pub fn rule(id: &str) -> Option<&'static RuleInfo> {
    RULES.iter().find(|r| r.id == id)
}
