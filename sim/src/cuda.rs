//! The `[cuda]` table of a scenario: the CUDA workload of one of its processes, as the simulated
//! CUPTI (`sim/cupti`) plays it: which kernels it launches and how often, its copies, memsets,
//! synchronizations and host-side pauses. Every key is documented in `sim/README.md`.

use serde::Deserialize;

/// The CUDA workload of one process of the scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CudaSpec {
    /// Workload name (`gpuscope-sim-cuda --workload`); default: the scenario's name.
    #[serde(default)]
    pub name: String,
    /// PID of the `[[processes]]` entry that runs this workload.
    pub pid: u32,
    /// CUDA device ordinal the work runs on, among the process's GPUs.
    #[serde(default)]
    pub device: u32,
    /// Kernel launch calls per second, averaged over the run (synchronizations and pauses
    /// included).
    pub launches_per_s: f64,
    /// Time from a launch call to the kernel's start on an idle GPU, µs.
    #[serde(default = "default_latency_us")]
    pub launch_latency_us: f64,
    /// Kernel-level finding rule ids the CUPTI path must open on this workload, and no others.
    #[serde(default)]
    pub expect: Vec<String>,
    /// The kernels, each with its share of the launches.
    pub kernels: Vec<CudaKernel>,
    /// Memory copies, each every N launches.
    #[serde(default)]
    pub copies: Vec<CudaCopy>,
    /// Memsets, each every N launches.
    #[serde(default)]
    pub memsets: Vec<CudaMemset>,
    /// Synchronization calls, each every N launches.
    #[serde(default)]
    pub syncs: Vec<CudaSync>,
    /// Host-side pauses (no CUDA call: a data-loader wait, a checkpoint), each every N launches.
    #[serde(default)]
    pub idle: Vec<CudaIdle>,
}

fn default_latency_us() -> f64 {
    4.0
}

/// The stream CUPTI reports for work on the legacy default stream.
pub const DEFAULT_STREAM: u32 = 7;

fn default_stream() -> u32 {
    DEFAULT_STREAM
}

fn default_grid() -> [u32; 3] {
    [1, 1, 1]
}

fn default_block() -> [u32; 3] {
    [128, 1, 1]
}

/// One kernel of the mix.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CudaKernel {
    /// The kernel's name as CUPTI reports it (mangled or not).
    pub name: String,
    /// Relative weight among the kernels' launches (normalized over all kernels).
    pub share: f64,
    /// Execution time on the GPU, µs.
    pub duration_us: f64,
    /// Grid dimensions.
    #[serde(default = "default_grid")]
    pub grid: [u32; 3],
    /// Block dimensions.
    #[serde(default = "default_block")]
    pub block: [u32; 3],
    /// Stream id in the records.
    #[serde(default = "default_stream")]
    pub stream: u32,
    /// Launched as a CUDA graph (`cudaGraphLaunch` / `cuGraphLaunch`, one kernel node).
    #[serde(default)]
    pub graph: bool,
}

/// Direction of a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CopyKind {
    /// Host to device.
    Htod,
    /// Device to host.
    Dtoh,
    /// Device to device.
    Dtod,
    /// Host to host.
    Htoh,
}

/// Host memory kind of a copy's host side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostMemory {
    /// Pageable (malloc'd) memory: the driver stages it, an async copy becomes synchronous.
    Pageable,
    /// Pinned (page-locked) memory.
    Pinned,
}

/// One copy, every `every` launches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CudaCopy {
    /// Direction.
    pub kind: CopyKind,
    /// Bytes copied.
    pub bytes: u64,
    /// Host memory kind (required for `htod`, `dtoh` and `htoh`; not allowed for `dtod`).
    pub host: Option<HostMemory>,
    /// Issued with the asynchronous API (`cudaMemcpyAsync`).
    #[serde(default)]
    pub r#async: bool,
    /// Time on the GPU, µs.
    pub duration_us: f64,
    /// One copy after every this many launches.
    pub every: u32,
    /// Stream id in the records.
    #[serde(default = "default_stream")]
    pub stream: u32,
}

/// One memset of device memory, every `every` launches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CudaMemset {
    /// Bytes set.
    pub bytes: u64,
    /// The byte value.
    #[serde(default)]
    pub value: u8,
    /// Issued with the asynchronous API (`cudaMemsetAsync`).
    #[serde(default)]
    pub r#async: bool,
    /// Time on the GPU, µs.
    pub duration_us: f64,
    /// One memset after every this many launches.
    pub every: u32,
    /// Stream id in the records.
    #[serde(default = "default_stream")]
    pub stream: u32,
}

/// What a synchronization call waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SyncKind {
    /// `cudaDeviceSynchronize` / `cuCtxSynchronize`.
    Device,
    /// `cudaStreamSynchronize` / `cuStreamSynchronize`.
    Stream,
    /// `cudaEventSynchronize` / `cuEventSynchronize`.
    Event,
    /// `cudaStreamWaitEvent` / `cuStreamWaitEvent`.
    StreamWaitEvent,
}

/// One synchronization call, every `every` launches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CudaSync {
    /// What it waits for.
    pub kind: SyncKind,
    /// Host time spent in the call, µs.
    pub duration_us: f64,
    /// One call after every this many launches.
    pub every: u32,
    /// Stream id in the records (stream and stream-wait-event syncs).
    #[serde(default = "default_stream")]
    pub stream: u32,
}

/// A host-side pause with no CUDA call, every `every` launches: the GPU idles meanwhile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CudaIdle {
    /// Length of the pause, µs.
    pub duration_us: f64,
    /// One pause after every this many launches.
    pub every: u32,
}

fn positive(v: f64) -> bool {
    v.is_finite() && v > 0.0
}

impl CudaSpec {
    /// Host time the syncs and pauses take per launch, µs.
    pub fn host_wait_us_per_launch(&self) -> f64 {
        self.syncs.iter().map(|s| s.duration_us / f64::from(s.every)).sum::<f64>()
            + self.idle.iter().map(|i| i.duration_us / f64::from(i.every)).sum::<f64>()
    }

    /// GPU time (kernels, copies, memsets) per launch, µs.
    pub fn gpu_us_per_launch(&self) -> f64 {
        let total: f64 = self.kernels.iter().map(|k| k.share).sum();
        self.kernels.iter().map(|k| k.share / total * k.duration_us).sum::<f64>()
            + self.copies.iter().map(|c| c.duration_us / f64::from(c.every)).sum::<f64>()
            + self.memsets.iter().map(|m| m.duration_us / f64::from(m.every)).sum::<f64>()
    }

    /// Checks that the workload can run at `rate` launches per second: the host time the syncs
    /// and pauses take, and the GPU time the work takes, both fit in a second.
    pub fn check_rate(&self, rate: f64) -> Result<(), String> {
        if !(positive(rate) && rate <= 1e6) {
            return Err(format!("cuda.launches_per_s must be above 0 and at most 1000000, not {rate}"));
        }
        let slot_us = 1e6 / rate;
        let wait = self.host_wait_us_per_launch();
        if wait >= slot_us {
            return Err(format!(
                "cuda.syncs and cuda.idle take {wait:.1} µs of host time per launch, more than the {slot_us:.1} µs \
                 between launches at {rate} launches/s"
            ));
        }
        let busy = self.gpu_us_per_launch() * rate / 1e6;
        if busy > 1.0 {
            return Err(format!(
                "cuda.kernels, copies and memsets keep the GPU busy {busy:.2} s per second at {rate} launches/s: \
                 at most 1"
            ));
        }
        Ok(())
    }

    /// Validates the table against the scenario's processes (`gpus_of(pid)`: how many GPUs that
    /// process holds, `None` when there is no such process).
    pub fn validate(&self, gpus_of: impl Fn(u32) -> Option<u32>) -> Result<(), String> {
        match gpus_of(self.pid) {
            None => return Err(format!("cuda.pid {} is not a process of the scenario", self.pid)),
            Some(0) => return Err(format!("cuda.pid {}: the process holds no GPU", self.pid)),
            Some(n) if self.device >= n => {
                return Err(format!("cuda.device {} is beyond the {n} GPUs of process {}", self.device, self.pid));
            }
            Some(_) => {}
        }
        if !(self.launch_latency_us.is_finite() && self.launch_latency_us >= 0.0) {
            return Err("cuda.launch_latency_us must be a number of µs, at least 0".into());
        }
        if self.kernels.is_empty() {
            return Err("cuda.kernels: a workload needs at least one kernel".into());
        }
        for k in &self.kernels {
            if k.name.is_empty() || k.name.contains('\0') {
                return Err(format!("cuda.kernels.name {:?} must be non-empty, without NUL", k.name));
            }
            if !positive(k.share) {
                return Err(format!("cuda.kernels.share of {} must be above 0", k.name));
            }
            if !positive(k.duration_us) {
                return Err(format!("cuda.kernels.duration_us of {} must be above 0", k.name));
            }
            if k.grid.contains(&0) || k.block.contains(&0) {
                return Err(format!("cuda.kernels.grid and block of {} must be at least 1 in every dimension", k.name));
            }
            if k.block.iter().map(|&b| u64::from(b)).product::<u64>() > 1024 {
                return Err(format!("cuda.kernels.block of {} has more than 1024 threads", k.name));
            }
        }
        for c in &self.copies {
            if c.every == 0 || c.bytes == 0 || !positive(c.duration_us) {
                return Err("cuda.copies: every, bytes and duration_us must be above 0".into());
            }
            match (c.kind, c.host) {
                (CopyKind::Dtod, Some(_)) => return Err("cuda.copies.host is not allowed on a dtod copy".into()),
                (CopyKind::Htod | CopyKind::Dtoh | CopyKind::Htoh, None) => {
                    return Err(
                        "cuda.copies.host (pageable or pinned) is required on a copy from or to the host".into()
                    );
                }
                _ => {}
            }
        }
        for m in &self.memsets {
            if m.every == 0 || m.bytes == 0 || !positive(m.duration_us) {
                return Err("cuda.memsets: every, bytes and duration_us must be above 0".into());
            }
        }
        for s in &self.syncs {
            if s.every == 0 || !positive(s.duration_us) {
                return Err("cuda.syncs: every and duration_us must be above 0".into());
            }
        }
        for i in &self.idle {
            if i.every == 0 || !positive(i.duration_us) {
                return Err("cuda.idle: every and duration_us must be above 0".into());
            }
        }
        self.check_rate(self.launches_per_s)
    }
}
