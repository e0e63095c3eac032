//! The deterministic signal engine: every value of a scenario at any scenario time.
//!
//! Gauges are defined at whole seconds ("knots": phase target + seeded noise) and interpolated
//! linearly between them, so every counter is the exact integral of its gauge (a trapezoid sum),
//! and energy, bytes and error counts always agree with power, rates and error rates. Integrals
//! are cached at sparse checkpoints so a query costs at most [`CHECKPOINT_S`] knot evaluations.

use crate::noise;
use crate::presets::GpuPreset;
use crate::scenario::{
    EventKind, GpuTargets, HostTargets, NicKindSpec, Phase, ProcessSpec, Scenario, ScenarioError, Target,
};
use gpuscope_core::catalogue::CLOCK_EVENT_REASONS;
use std::collections::HashMap;
use std::sync::Mutex;

/// Seconds between cached integral checkpoints.
pub const CHECKPOINT_S: i64 = 64;
const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// Clock event bit for "GPU idle".
pub const REASON_GPU_IDLE: u64 = 0x1;

/// Index of each GPU gauge in a knot vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
#[allow(missing_docs)]
pub enum G {
    Util,
    MemUtil,
    EncUtil,
    DecUtil,
    Graphics,
    SmActive,
    Occupancy,
    Tensor,
    Fp64,
    Fp32,
    Fp16,
    Dram,
    MemUsed,
    Power,
    Temp,
    MemTemp,
    SmClock,
    MemClock,
    PcieRx,
    PcieTx,
    NvlinkRx,
    NvlinkTx,
    ReplayRate,
    CrcRate,
}
const NG: usize = G::CrcRate as usize + 1;

/// Identity and fixed configuration of one simulated GPU.
#[derive(Debug, Clone)]
pub struct GpuInfo {
    /// NVML index.
    pub index: u32,
    /// Model specification.
    pub preset: &'static GpuPreset,
    /// `GPU-xxxxxxxx-…` UUID, stable for (scenario, node, index).
    pub uuid: String,
    /// Board serial number.
    pub serial: String,
    /// PCI bus id `00000000:BB:00.0`.
    pub pci_bus_id: String,
    /// PCI bus number.
    pub pci_bus: u32,
    /// Power limit in force, watts.
    pub power_limit_w: f64,
    /// MIG mode enabled.
    pub mig: bool,
    /// GPU instances created (MIG on), in creation order.
    pub mig_instances: Vec<crate::mig::MigInstance>,
    /// Aggregate corrected ECC errors before the scenario.
    pub ecc_aggregate_base: u64,
    /// Pages retired before the scenario.
    pub retired_base: u64,
    /// Rows remapped before the scenario.
    pub remapped_base: u64,
}

/// One NVLink link's state at a time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LinkState {
    /// Link is up.
    pub active: bool,
    /// CRC errors so far.
    pub crc_errors: u64,
    /// Replay errors so far.
    pub replay_errors: u64,
    /// Recovery errors so far.
    pub recovery_errors: u64,
    /// Bytes received so far.
    pub rx_bytes: f64,
    /// Bytes sent so far.
    pub tx_bytes: f64,
}

/// Every GPU signal at one scenario time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GpuState {
    /// The GPU has fallen off the bus; every query answers GPU_IS_LOST.
    pub lost: bool,
    /// NVML utilization, 0–1.
    pub util: f64,
    /// Memory copy utilization, 0–1.
    pub mem_util: f64,
    /// Encoder utilization, 0–1.
    pub enc_util: f64,
    /// Decoder utilization, 0–1.
    pub dec_util: f64,
    /// Graphics engine active, 0–1.
    pub graphics_active: f64,
    /// SM active, 0–1.
    pub sm_active: f64,
    /// SM occupancy, 0–1.
    pub sm_occupancy: f64,
    /// Tensor active, 0–1.
    pub tensor: f64,
    /// FP64 active, 0–1.
    pub fp64: f64,
    /// FP32 active, 0–1.
    pub fp32: f64,
    /// FP16 active, 0–1.
    pub fp16: f64,
    /// DRAM active, 0–1.
    pub dram: f64,
    /// Total memory, bytes.
    pub memory_total: u64,
    /// Reserved memory, bytes.
    pub memory_reserved: u64,
    /// Used memory, bytes.
    pub memory_used: u64,
    /// Free memory, bytes.
    pub memory_free: u64,
    /// Power draw, watts.
    pub power_w: f64,
    /// Power limit, watts.
    pub power_limit_w: f64,
    /// Energy since the scenario start, joules.
    pub energy_j: f64,
    /// GPU temperature, °C.
    pub temp_c: f64,
    /// Memory temperature, °C.
    pub mem_temp_c: f64,
    /// Duty of each of the board's fans, percent (one value: the fans share one curve); `None`
    /// on passively cooled boards.
    pub fan_speed_pct: Option<u32>,
    /// SM clock, MHz.
    pub sm_clock_mhz: f64,
    /// Memory clock, MHz.
    pub mem_clock_mhz: f64,
    /// Clock event reasons bitmask.
    pub throttle: u64,
    /// PCIe receive, bytes/s.
    pub pcie_rx: f64,
    /// PCIe transmit, bytes/s.
    pub pcie_tx: f64,
    /// Bytes received over PCIe so far.
    pub pcie_rx_bytes: f64,
    /// Bytes sent over PCIe so far.
    pub pcie_tx_bytes: f64,
    /// Current PCIe generation.
    pub pcie_gen: u32,
    /// Current PCIe width.
    pub pcie_width: u32,
    /// PCIe replays so far.
    pub pcie_replays: u64,
    /// NVLink receive over all links, bytes/s.
    pub nvlink_rx: f64,
    /// NVLink transmit over all links, bytes/s.
    pub nvlink_tx: f64,
    /// Per-link state.
    pub links: Vec<LinkState>,
    /// Corrected ECC errors since driver load.
    pub ecc_corrected_volatile: u64,
    /// Uncorrected ECC errors since driver load.
    pub ecc_uncorrected_volatile: u64,
    /// Corrected ECC errors, lifetime.
    pub ecc_corrected_aggregate: u64,
    /// Uncorrected ECC errors, lifetime.
    pub ecc_uncorrected_aggregate: u64,
    /// Retired pages.
    pub retired_pages: u64,
    /// A page retirement is pending.
    pub retired_pending: bool,
    /// Rows remapped (correctable cause).
    pub remapped_correctable: u64,
    /// Rows remapped (uncorrectable cause).
    pub remapped_uncorrectable: u64,
    /// Row remapping pending.
    pub remap_pending: bool,
    /// Row remapping failed.
    pub remap_failed: bool,
    /// Last XID code so far.
    pub xid_last: Option<u64>,
}

/// A process using one GPU at one time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct GpuProcessState {
    /// PID.
    pub pid: u32,
    /// GPU index.
    pub gpu: u32,
    /// GPU memory held, bytes.
    pub memory_bytes: u64,
    /// SM utilization share, 0–1.
    pub sm_util: f64,
    /// Memory utilization share, 0–1.
    pub mem_util: f64,
    /// The MIG instance it runs on (an index into the GPU's `mig_instances`).
    pub mig_instance: Option<u32>,
    /// Its `sm_share` as the scenario gives it.
    pub sm_share: f64,
    /// Video encoder utilization share, 0–1.
    pub enc_util: f64,
    /// Video decoder utilization share, 0–1.
    pub dec_util: f64,
}

/// One NIC at one time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NicState {
    /// netdev name.
    pub name: String,
    /// Ethernet or InfiniBand.
    pub kind: NicKindSpec,
    /// InfiniBand device and port.
    pub ib: Option<(String, u32)>,
    /// Link speed, Gbit/s.
    pub speed_gbps: f64,
    /// Receive, bytes/s.
    pub rx_rate: f64,
    /// Transmit, bytes/s.
    pub tx_rate: f64,
    /// Bytes received so far.
    pub rx_bytes: f64,
    /// Bytes sent so far.
    pub tx_bytes: f64,
    /// Rate the link trained at, Gbit/s.
    pub rate_gbps: f64,
    /// Lanes the link trained at.
    pub width: u32,
    /// Port state.
    pub state: crate::scenario::PortState,
    /// Symbol errors so far.
    pub symbol_errors: f64,
    /// Link error recoveries so far.
    pub link_error_recovery: f64,
    /// Link-down events so far.
    pub link_downed: f64,
    /// Receive errors so far.
    pub rcv_errors: f64,
}

/// One NVMe device at one time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DiskState {
    /// Block device name.
    pub name: String,
    /// Model string.
    pub model: String,
    /// Read, bytes/s.
    pub read_rate: f64,
    /// Write, bytes/s.
    pub write_rate: f64,
    /// Busy fraction.
    pub busy: f64,
    /// Bytes read so far.
    pub read_bytes: f64,
    /// Bytes written so far.
    pub written_bytes: f64,
    /// Busy seconds so far.
    pub busy_seconds: f64,
}

/// Host signals at one time.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HostState {
    /// Per-core busy fraction.
    pub core_busy: Vec<f64>,
    /// Per-core iowait fraction.
    pub core_iowait: Vec<f64>,
    /// Per-core steal fraction.
    pub core_steal: Vec<f64>,
    /// Per-core busy seconds so far.
    pub core_busy_s: Vec<f64>,
    /// Per-core iowait seconds so far.
    pub core_iowait_s: Vec<f64>,
    /// Per-core steal seconds so far.
    pub core_steal_s: Vec<f64>,
    /// Memory total, bytes.
    pub memory_total: u64,
    /// Memory used, bytes.
    pub memory_used: u64,
    /// Swap space, bytes.
    pub swap_total: u64,
    /// Swap in use, bytes.
    pub swap_used: u64,
    /// NICs.
    pub nics: Vec<NicState>,
    /// NVMe devices.
    pub disks: Vec<DiskState>,
}

/// A timed event resolved for this node.
#[derive(Debug, Clone, PartialEq)]
pub struct TimedEvent {
    /// Scenario second.
    pub at_s: f64,
    /// Kind.
    pub kind: EventKind,
    /// GPU index.
    pub gpu: u32,
    /// XID code.
    pub code: Option<u64>,
    /// ECC corrected added.
    pub corrected: u64,
    /// ECC uncorrected added.
    pub uncorrected: u64,
    /// Count (rows, pages).
    pub count: u64,
    /// Pending retirement.
    pub pending: bool,
}

/// Cumulative integrals at checkpoints `0, CHECKPOINT_S, 2·CHECKPOINT_S, …`, the last integral
/// computed (queries mostly move forward a little), and the last few knots.
#[derive(Default)]
struct Checkpoints {
    at: Vec<Vec<f64>>,
    cursors: Vec<(i64, Vec<f64>)>,
    knots: Vec<(i64, Vec<f64>)>,
}

impl Checkpoints {
    /// `knot(k)`, remembered: the same few seconds are asked for over and over.
    fn knot(&mut self, k: i64, knot: &dyn Fn(i64) -> Vec<f64>) -> Vec<f64> {
        if let Some((_, v)) = self.knots.iter().find(|(kk, _)| *kk == k) {
            return v.clone();
        }
        let v = knot(k);
        if self.knots.len() >= 4 {
            self.knots.remove(0);
        }
        self.knots.push((k, v.clone()));
        v
    }

    /// The gauges at `t`: linear between the knots around it.
    fn value(&mut self, t: f64, knot: &dyn Fn(i64) -> Vec<f64>) -> Vec<f64> {
        let k = t.floor() as i64;
        let (a, b) = (self.knot(k, knot), self.knot(k + 1, knot));
        lerp(&a, &b, t - k as f64)
    }

    /// ∫₀ᵗ of every component of the piecewise-linear function through `knot(k)`.
    fn integral(&mut self, t: f64, knot: &dyn Fn(i64) -> Vec<f64>) -> Vec<f64> {
        let t = t.max(0.0);
        let whole = t.floor() as i64;
        let want = (whole / CHECKPOINT_S) as usize;
        if self.at.is_empty() {
            self.at.push(vec![0.0; knot(0).len()]);
        }
        while self.at.len() <= want {
            let start = (self.at.len() as i64 - 1) * CHECKPOINT_S;
            let mut acc = self.at[self.at.len() - 1].clone();
            add_trapezoids(&mut acc, start, start + CHECKPOINT_S, knot);
            self.at.push(acc);
        }
        let base = want as i64 * CHECKPOINT_S;
        // Start from the latest remembered integral at or before `whole` (GPM asks for the
        // previous sample's time right after "now" was asked for).
        let best = self.cursors.iter().filter(|(k, _)| *k <= whole && *k >= base).max_by_key(|(k, _)| *k);
        let (from, mut acc) = match best {
            Some((k, acc)) => (*k, acc.clone()),
            None => (base, self.at[want].clone()),
        };
        add_trapezoids(&mut acc, from, whole, knot);
        if !self.cursors.iter().any(|(k, _)| *k == whole) {
            if self.cursors.len() >= 4 {
                self.cursors.remove(0);
            }
            self.cursors.push((whole, acc.clone()));
        }
        let frac = t - whole as f64;
        if frac > 0.0 {
            let (a, b) = (self.knot(whole, knot), self.knot(whole + 1, knot));
            for ((s, x), y) in acc.iter_mut().zip(&a).zip(&b) {
                *s += frac * x + frac * frac / 2.0 * (y - x);
            }
        }
        acc
    }
}

fn add_trapezoids(acc: &mut [f64], from: i64, to: i64, knot: &dyn Fn(i64) -> Vec<f64>) {
    if from >= to {
        return;
    }
    let mut prev = knot(from);
    for k in from..to {
        let next = knot(k + 1);
        for ((s, a), b) in acc.iter_mut().zip(&prev).zip(&next) {
            *s += (a + b) / 2.0;
        }
        prev = next;
    }
}

fn lerp(a: &[f64], b: &[f64], f: f64) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x + (y - x) * f).collect()
}

/// A scenario played by one node.
pub struct Simulation {
    scenario: Scenario,
    node: u32,
    gpus: Vec<GpuInfo>,
    events: Vec<TimedEvent>,
    gpu_cache: Mutex<HashMap<u32, Checkpoints>>,
    host_cache: Mutex<Checkpoints>,
    /// Per GPU, the indices of the processes that use it on this node.
    gpu_procs: Vec<Vec<usize>>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation").field("scenario", &self.scenario.name).field("node", &self.node).finish()
    }
}

/// PCI bus numbers of the eight GPUs of an HGX baseboard, then sequential ones.
const HGX_BUSES: [u32; 8] = [0x18, 0x2a, 0x3a, 0x5d, 0x9a, 0xab, 0xba, 0xdb];

impl Simulation {
    /// Plays `scenario` as node `node` of its job (0 without a job).
    pub fn new(scenario: Scenario, node: u32) -> Result<Simulation, ScenarioError> {
        if node >= scenario.node_count() {
            return Err(ScenarioError::Invalid {
                path: scenario.name.clone(),
                message: format!("node index {node} is beyond job.nodes = {}", scenario.node_count()),
            });
        }
        let name_hash = noise::hash(&scenario.name.bytes().map(u64::from).collect::<Vec<_>>());
        let mut gpus = Vec::new();
        for index in 0..scenario.gpu_count() {
            let Some((group, preset)) = scenario.gpu_group(index) else {
                continue;
            };
            let h = noise::hash(&[name_hash, u64::from(node), u64::from(index)]);
            let h2 = noise::mix(h);
            let uuid = format!(
                "GPU-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
                h >> 32,
                (h >> 16) & 0xffff,
                h & 0xffff,
                h2 >> 48,
                h2 & 0xffff_ffff_ffff
            );
            let bus = HGX_BUSES.get(index as usize).copied().unwrap_or(0xe0 + index);
            gpus.push(GpuInfo {
                index,
                preset,
                uuid,
                serial: format!("{}", 1_650_000_000_000u64 + (h2 % 1_000_000_000)),
                pci_bus_id: format!("00000000:{bus:02X}:00.0"),
                pci_bus: bus,
                power_limit_w: group.power_limit_w.unwrap_or(preset.power_default_w),
                mig: group.mig,
                // The scenario was validated on load, so placement cannot fail here.
                mig_instances: crate::mig::place(&group.model, &group.mig_instances).unwrap_or_default(),
                ecc_aggregate_base: group.ecc_aggregate_corrected,
                retired_base: group.retired_pages,
                remapped_base: group.remapped_rows,
            });
        }
        let mut events: Vec<TimedEvent> = scenario
            .events
            .iter()
            .filter(|e| e.node.is_none_or(|n| n == node))
            .map(|e| TimedEvent {
                at_s: e.at_s,
                kind: e.kind,
                gpu: e.gpu,
                code: e.code,
                corrected: e.corrected,
                uncorrected: e.uncorrected,
                count: e.count,
                pending: e.pending,
            })
            .collect();
        events.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
        let gpu_procs = (0..scenario.gpu_count())
            .map(|g| {
                let procs = scenario.processes.iter().enumerate();
                procs.filter(|(_, p)| scenario.process_uses(p, node, g)).map(|(i, _)| i).collect()
            })
            .collect();
        Ok(Simulation {
            gpu_procs,
            scenario,
            node,
            gpus,
            events,
            gpu_cache: Mutex::new(HashMap::new()),
            host_cache: Mutex::new(Checkpoints::default()),
        })
    }

    /// The scenario being played.
    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    /// The node index being played.
    pub fn node(&self) -> u32 {
        self.node
    }

    /// Host name of this node.
    pub fn hostname(&self) -> String {
        self.scenario.hostname(self.node)
    }

    /// The GPUs, in index order.
    pub fn gpus(&self) -> &[GpuInfo] {
        &self.gpus
    }

    /// Events of this node, in time order.
    pub fn events(&self) -> &[TimedEvent] {
        &self.events
    }

    /// Processes alive at `t` (on this node).
    pub fn processes(&self, t: f64) -> Vec<&ProcessSpec> {
        self.scenario.processes.iter().filter(|p| self.alive(p, t)).collect()
    }

    fn alive(&self, p: &ProcessSpec, t: f64) -> bool {
        p.node.is_none_or(|n| n == self.node) && t >= p.start_s && p.end_s.is_none_or(|e| t < e)
    }

    /// The phase in force at second `k` and the fraction of it elapsed.
    fn phase_at(&self, k: i64) -> (&Phase, f64) {
        let total = self.scenario.timeline_s() as i64;
        let phases = &self.scenario.phases;
        let mut pos = k.max(0);
        if self.scenario.loop_phases {
            pos %= total.max(1);
        } else if pos >= total {
            let last = &phases[phases.len() - 1];
            return (last, 1.0);
        }
        for p in phases {
            let d = p.duration_s as i64;
            if pos < d {
                return (p, pos as f64 / d as f64);
            }
            pos -= d;
        }
        (&phases[phases.len() - 1], 1.0)
    }

    /// Name of the phase in force at `t`.
    pub fn phase_name(&self, t: f64) -> &str {
        &self.phase_at(t.floor() as i64).0.name
    }

    fn gpu_targets(&self, phase: &Phase, gpu: u32) -> GpuTargets {
        let mut t = phase.gpu.clone();
        for o in &phase.overrides {
            if o.node.is_none_or(|n| n == self.node) && o.gpus.as_ref().is_none_or(|g| g.contains(&gpu)) {
                merge_gpu(&mut t, &o.gpu);
            }
        }
        t
    }

    fn host_targets(&self, phase: &Phase) -> HostTargets {
        let mut t = phase.host.clone();
        for o in &phase.overrides {
            if o.node.is_none_or(|n| n == self.node) && o.gpus.is_none() {
                merge_host(&mut t, &o.host);
            }
        }
        t
    }

    fn sample(&self, target: Option<&Target>, frac: f64, default_noise: f64, key: &[u64]) -> Option<f64> {
        target.map(|tg| {
            let (a, b, n) = tg.parts();
            a + (b - a) * frac + n.unwrap_or(default_noise) * noise::signed(key)
        })
    }

    /// GPU gauges at whole second `k`.
    fn gpu_knot(&self, gpu: u32, k: i64) -> Vec<f64> {
        let info = &self.gpus[gpu as usize];
        let p = info.preset;
        let (phase, frac) = self.phase_at(k);
        let t = self.gpu_targets(phase, gpu);
        let seed = self.scenario.seed;
        let ku = k as u64;
        let key = |sig: G| [seed, u64::from(self.node), u64::from(gpu), sig as u64, ku];
        let ratio = |tg: Option<&Target>, sig: G| self.sample(tg, frac, 0.01, &key(sig)).map(|v| v.clamp(0.0, 1.0));
        let mut v = vec![0.0; NG];
        let util = ratio(t.util.as_ref(), G::Util).unwrap_or(0.0);
        v[G::Util as usize] = util;
        let sm = ratio(t.sm_active.as_ref(), G::SmActive).unwrap_or(util * 0.9);
        v[G::SmActive as usize] = sm;
        v[G::Graphics as usize] = ratio(t.graphics_active.as_ref(), G::Graphics).unwrap_or(util.max(sm));
        v[G::Occupancy as usize] = ratio(t.sm_occupancy.as_ref(), G::Occupancy).unwrap_or(sm * 0.45);
        v[G::Tensor as usize] = ratio(t.tensor.as_ref(), G::Tensor).unwrap_or(0.0);
        v[G::Fp64 as usize] = ratio(t.fp64.as_ref(), G::Fp64).unwrap_or(0.0);
        v[G::Fp32 as usize] = ratio(t.fp32.as_ref(), G::Fp32).unwrap_or(0.0);
        v[G::Fp16 as usize] = ratio(t.fp16.as_ref(), G::Fp16).unwrap_or(0.0);
        let dram = ratio(t.dram.as_ref(), G::Dram).unwrap_or(sm * 0.3);
        v[G::Dram as usize] = dram;
        v[G::MemUtil as usize] = ratio(t.mem_util.as_ref(), G::MemUtil).unwrap_or(dram);
        v[G::EncUtil as usize] = ratio(t.enc_util.as_ref(), G::EncUtil).unwrap_or(0.0);
        v[G::DecUtil as usize] = ratio(t.dec_util.as_ref(), G::DecUtil).unwrap_or(0.0);

        let usable = (p.memory_mib - p.reserved_mib) as f64 * MIB;
        let from_procs: f64 = self.gpu_procs[gpu as usize]
            .iter()
            .map(|&i| &self.scenario.processes[i])
            .filter(|pr| self.alive(pr, k as f64))
            .map(|pr| pr.memory_gib * GIB)
            .sum();
        let mem = self.sample(t.memory_used_gib.as_ref(), frac, 0.0, &key(G::MemUsed)).map(|g| g * GIB);
        v[G::MemUsed as usize] = mem.unwrap_or(from_procs).clamp(0.0, usable);

        let limit = info.power_limit_w;
        let activity =
            v[G::Tensor as usize].max(v[G::Fp32 as usize]).max(v[G::Fp16 as usize]).max(v[G::Fp64 as usize]).max(dram);
        let modelled = p.idle_power_w + (limit - p.idle_power_w) * (0.55 * sm + 0.45 * activity);
        let power = self.sample(t.power_w.as_ref(), frac, limit * 0.01, &key(G::Power)).unwrap_or(modelled);
        v[G::Power as usize] = power.clamp(0.0, limit * 1.02);
        let temp = self
            .sample(t.temp_c.as_ref(), frac, 0.5, &key(G::Temp))
            .unwrap_or(30.0 + 42.0 * v[G::Power as usize] / p.power_max_w);
        v[G::Temp as usize] = temp;
        v[G::MemTemp as usize] = self.sample(t.mem_temp_c.as_ref(), frac, 0.5, &key(G::MemTemp)).unwrap_or(temp + 6.0);

        let idle = util < 0.01;
        let max_sm = f64::from(p.max_sm_clock_mhz);
        let default_clock = if idle { f64::from(p.idle_sm_clock_mhz) } else { max_sm };
        v[G::SmClock as usize] = self
            .sample(t.sm_clock_mhz.as_ref(), frac, 0.0, &key(G::SmClock))
            .unwrap_or(default_clock)
            .clamp(0.0, max_sm);
        v[G::MemClock as usize] = self
            .sample(t.mem_clock_mhz.as_ref(), frac, 0.0, &key(G::MemClock))
            .unwrap_or(f64::from(p.max_mem_clock_mhz));

        let gb = |tg: Option<&Target>, sig: G| {
            self.sample(tg, frac, 0.0, &key(sig)).map(|g| (g * 1e9).max(0.0)).unwrap_or(0.0)
        };
        v[G::PcieRx as usize] = gb(t.pcie_rx_gb_s.as_ref(), G::PcieRx);
        v[G::PcieTx as usize] = gb(t.pcie_tx_gb_s.as_ref(), G::PcieTx);
        if p.nvlinks > 0 {
            v[G::NvlinkRx as usize] = gb(t.nvlink_rx_gb_s.as_ref(), G::NvlinkRx);
            v[G::NvlinkTx as usize] = gb(t.nvlink_tx_gb_s.as_ref(), G::NvlinkTx);
        }
        v[G::ReplayRate as usize] = t.pcie_replays_per_min.unwrap_or(0.0) / 60.0;
        v[G::CrcRate as usize] = t.nvlink_crc_per_s.unwrap_or(0.0);
        v
    }

    /// Clock event reasons at second `k` (a step function, not interpolated).
    fn throttle_at(&self, gpu: u32, k: i64, util: f64) -> u64 {
        let (phase, _) = self.phase_at(k);
        let t = self.gpu_targets(phase, gpu);
        let mut mask = if util < 0.01 { REASON_GPU_IDLE } else { 0 };
        let duty = t.throttle_duty.unwrap_or(1.0);
        let on = noise::unit(&[self.scenario.seed, u64::from(self.node), u64::from(gpu), 0x7407, k as u64]) < duty;
        if on {
            for r in t.throttle.iter().flatten() {
                if let Some((bit, _)) = CLOCK_EVENT_REASONS.iter().find(|(_, n)| n == r) {
                    mask |= bit;
                }
            }
        }
        mask
    }

    /// Every signal of GPU `gpu` at scenario time `t` (seconds).
    pub fn gpu(&self, gpu: u32, t: f64) -> Option<GpuState> {
        let info = self.gpus.get(gpu as usize)?;
        let p = info.preset;
        let t = t.max(0.0);
        let k = t.floor() as i64;
        let (now, integral) = {
            let mut cache = self.gpu_cache.lock().unwrap_or_else(|e| e.into_inner());
            let cp = cache.entry(gpu).or_default();
            let knot = |k| self.gpu_knot(gpu, k);
            (cp.value(t, &knot), cp.integral(t, &knot))
        };
        let (phase, _) = self.phase_at(k);
        let targets = self.gpu_targets(phase, gpu);
        let util = now[G::Util as usize];
        let loaded = util >= 0.01;
        let past: Vec<&TimedEvent> = self.events.iter().filter(|e| e.gpu == gpu && e.at_s <= t).collect();
        let sum = |f: fn(&TimedEvent) -> u64, kind: EventKind| -> u64 {
            past.iter().filter(|e| e.kind == kind).map(|e| f(e)).sum()
        };
        let has = |kind: EventKind| past.iter().any(|e| e.kind == kind);
        let down: Vec<u32> = targets.nvlink_down.clone().unwrap_or_default();
        let active_links = (0..p.nvlinks).filter(|l| !down.contains(l)).count().max(1) as f64;
        let links = (0..p.nvlinks)
            .map(|l| {
                let active = !down.contains(&l);
                let share = if active { 1.0 / active_links } else { 0.0 };
                let crc = if active { integral[G::CrcRate as usize] } else { 0.0 };
                LinkState {
                    active,
                    crc_errors: crc.floor() as u64,
                    replay_errors: if active { (crc / 1000.0).floor() as u64 } else { 0 },
                    recovery_errors: u64::from(!active),
                    rx_bytes: integral[G::NvlinkRx as usize] * share,
                    tx_bytes: integral[G::NvlinkTx as usize] * share,
                }
            })
            .collect();
        let total = p.memory_mib as f64 * MIB;
        let reserved = p.reserved_mib as f64 * MIB;
        let used = now[G::MemUsed as usize].round();
        Some(GpuState {
            lost: has(EventKind::GpuLost),
            util,
            mem_util: now[G::MemUtil as usize],
            enc_util: now[G::EncUtil as usize],
            dec_util: now[G::DecUtil as usize],
            graphics_active: now[G::Graphics as usize],
            sm_active: now[G::SmActive as usize],
            sm_occupancy: now[G::Occupancy as usize],
            tensor: now[G::Tensor as usize],
            fp64: now[G::Fp64 as usize],
            fp32: now[G::Fp32 as usize],
            fp16: now[G::Fp16 as usize],
            dram: now[G::Dram as usize],
            memory_total: total as u64,
            memory_reserved: reserved as u64,
            memory_used: used as u64,
            memory_free: (total - reserved - used).max(0.0) as u64,
            power_w: now[G::Power as usize],
            power_limit_w: info.power_limit_w,
            energy_j: integral[G::Power as usize],
            temp_c: now[G::Temp as usize],
            mem_temp_c: now[G::MemTemp as usize],
            fan_speed_pct: p.fan_speed_pct(now[G::Temp as usize]),
            sm_clock_mhz: now[G::SmClock as usize],
            mem_clock_mhz: now[G::MemClock as usize],
            throttle: self.throttle_at(gpu, k, util),
            pcie_rx: now[G::PcieRx as usize],
            pcie_tx: now[G::PcieTx as usize],
            pcie_rx_bytes: integral[G::PcieRx as usize],
            pcie_tx_bytes: integral[G::PcieTx as usize],
            // Idle GPUs train their link down to save power, as real ones do.
            pcie_gen: if loaded { targets.pcie_gen.unwrap_or(p.pcie_gen) } else { 1 },
            pcie_width: targets.pcie_width.unwrap_or(p.pcie_width),
            pcie_replays: integral[G::ReplayRate as usize].floor() as u64,
            nvlink_rx: now[G::NvlinkRx as usize],
            nvlink_tx: now[G::NvlinkTx as usize],
            links,
            ecc_corrected_volatile: sum(|e| e.corrected, EventKind::Ecc),
            ecc_uncorrected_volatile: sum(|e| e.uncorrected, EventKind::Ecc),
            ecc_corrected_aggregate: info.ecc_aggregate_base + sum(|e| e.corrected, EventKind::Ecc),
            ecc_uncorrected_aggregate: sum(|e| e.uncorrected, EventKind::Ecc),
            retired_pages: info.retired_base + sum(|e| e.count, EventKind::RetiredPages),
            retired_pending: past.iter().any(|e| e.kind == EventKind::RetiredPages && e.pending),
            remapped_correctable: info.remapped_base,
            remapped_uncorrectable: sum(|e| e.count, EventKind::RowRemapPending),
            remap_pending: has(EventKind::RowRemapPending),
            remap_failed: has(EventKind::RowRemapFailed),
            xid_last: past.iter().rev().find(|e| e.kind == EventKind::Xid).and_then(|e| e.code),
        })
    }

    /// Whether the driver call `what` fails for GPU `gpu` at `t` (a scenario fault).
    pub fn failing(&self, what: crate::scenario::FaultKind, gpu: u32, t: f64) -> bool {
        self.scenario.faults.iter().any(|f| f.what == what && f.holds(self.node, gpu, t))
    }

    /// Whether GPU `gpu` has fallen off the bus at `t` (cheap: no signal evaluation).
    pub fn gpu_lost(&self, gpu: u32, t: f64) -> bool {
        self.events.iter().any(|e| e.gpu == gpu && e.kind == EventKind::GpuLost && e.at_s <= t)
    }

    /// Averages of the profiling ratios between two times, as GPM reports them (0–1).
    pub fn gpu_profile_average(&self, gpu: u32, t1: f64, t2: f64) -> Option<Vec<(G, f64)>> {
        let sigs = [
            G::Graphics,
            G::SmActive,
            G::Occupancy,
            G::Tensor,
            G::Fp64,
            G::Fp32,
            G::Fp16,
            G::Dram,
            G::PcieRx,
            G::PcieTx,
            G::NvlinkRx,
            G::NvlinkTx,
        ];
        self.gpus.get(gpu as usize)?;
        let (t1, t2) = (t1.max(0.0), t2.max(0.0));
        let mut cache = self.gpu_cache.lock().unwrap_or_else(|e| e.into_inner());
        let cp = cache.entry(gpu).or_default();
        if (t2 - t1).abs() < 1e-9 {
            let now = cp.value(t1, &|k| self.gpu_knot(gpu, k));
            return Some(sigs.iter().map(|s| (*s, now[*s as usize])).collect());
        }
        let a = cp.integral(t1.min(t2), &|k| self.gpu_knot(gpu, k));
        let b = cp.integral(t1.max(t2), &|k| self.gpu_knot(gpu, k));
        let dt = (t2 - t1).abs();
        Some(sigs.iter().map(|s| (*s, (b[*s as usize] - a[*s as usize]) / dt)).collect())
    }

    /// The processes on `gpu` at `t`, with their memory and utilization shares.
    pub fn gpu_processes(&self, gpu: u32, t: f64) -> Vec<GpuProcessState> {
        if self.gpus.get(gpu as usize).is_none() {
            return Vec::new();
        }
        let now = {
            let mut cache = self.gpu_cache.lock().unwrap_or_else(|e| e.into_inner());
            let cp = cache.entry(gpu).or_default();
            cp.value(t.max(0.0), &|k| self.gpu_knot(gpu, k))
        };
        let (util, mem_util) = (now[G::Util as usize], now[G::MemUtil as usize]);
        let procs: Vec<&ProcessSpec> =
            self.processes(t).into_iter().filter(|p| self.scenario.process_uses(p, self.node, gpu)).collect();
        let shares: f64 = procs.iter().map(|p| p.sm_share.max(0.0)).sum();
        procs
            .iter()
            .map(|p| {
                let share = if shares > 0.0 { p.sm_share.max(0.0) / shares } else { 0.0 };
                GpuProcessState {
                    pid: p.pid,
                    gpu,
                    memory_bytes: (p.memory_gib * GIB) as u64,
                    sm_util: util * share,
                    mem_util: mem_util * share,
                    mig_instance: p.mig_instance,
                    sm_share: p.sm_share.max(0.0),
                    enc_util: now[G::EncUtil as usize] * share,
                    dec_util: now[G::DecUtil as usize] * share,
                }
            })
            .collect()
    }

    /// Layout of the host knot vector: cores ×3 (busy, iowait, steal), mem, NICs ×6 (rx, tx,
    /// symbol errors, link error recoveries, link downed, receive errors), disks ×3.
    fn host_knot(&self, k: i64) -> Vec<f64> {
        let (phase, frac) = self.phase_at(k);
        let t = self.host_targets(phase);
        let node = &self.scenario.node;
        let seed = self.scenario.seed;
        let ku = k as u64;
        let n = node.cpus as usize;
        let key = |a: u64, b: u64| [seed, u64::from(self.node), 0x4057, a, b, ku];
        let procs_cores: f64 = self.processes(k as f64).iter().map(|p| p.cpu_cores).sum();
        let base_busy = (0.02 + procs_cores / f64::from(node.cpus.max(1))).min(1.0);
        let mut v = Vec::with_capacity(3 * n + 1 + 6 * node.nics.len() + 3 * node.nvme.len());
        let iowait = t.iowait.as_ref();
        let steal = t.steal.as_ref();
        let mut cores = Vec::with_capacity(3 * n);
        for c in 0..n {
            let cu = c as u64;
            let core_target = t.cpu_busy_cores.get(&c.to_string()).or(t.cpu_busy.as_ref());
            let busy = self.sample(core_target, frac, 0.02, &key(1, cu)).unwrap_or(base_busy).clamp(0.0, 1.0);
            let wait = self.sample(iowait, frac, 0.01, &key(2, cu)).unwrap_or(0.0).clamp(0.0, 1.0 - busy);
            let st = self.sample(steal, frac, 0.0, &key(3, cu)).unwrap_or(0.0).clamp(0.0, 1.0 - busy - wait);
            cores.extend([busy, wait, st]);
        }
        v.extend(cores);
        let procs_rss: f64 = self.processes(k as f64).iter().map(|p| p.rss_gib).sum();
        let mem = self
            .sample(t.memory_used_gib.as_ref(), frac, 0.0, &key(4, 0))
            .unwrap_or(8.0 + procs_rss)
            .clamp(0.0, node.memory_gib);
        v.push(mem * GIB);
        for (i, nic) in node.nics.iter().enumerate() {
            let nt = t.nics.get(&nic.name);
            let state = nt.and_then(|x| x.state).unwrap_or_default();
            let trained = nt.and_then(|x| x.rate_gbps).unwrap_or(nic.speed_gbps);
            // A link carries at most the rate it trained at, and nothing unless active; only
            // faulty counters say otherwise.
            let cap = match (nic.faulty_counters, state) {
                (true, _) => f64::INFINITY,
                (false, crate::scenario::PortState::Active) => trained * 1e9 / 8.0,
                (false, _) => 0.0,
            };
            let rate = |tg: Option<&Target>, j: u64| {
                self.sample(tg, frac, 0.0, &key(5 + j, i as u64)).map(|g| (g * 1e9).clamp(0.0, cap)).unwrap_or(0.0)
            };
            v.push(rate(nt.and_then(|x| x.rx_gb_s.as_ref()), 0));
            v.push(rate(nt.and_then(|x| x.tx_gb_s.as_ref()), 1));
            // Error rates use keys of their own (0x4e1c) so that adding them moves no other signal.
            let errors = |tg: Option<&Target>, j: u64| {
                self.sample(tg, frac, 0.0, &[seed, u64::from(self.node), 0x4e1c, j, i as u64, ku])
                    .unwrap_or(0.0)
                    .max(0.0)
            };
            v.push(errors(nt.and_then(|x| x.symbol_errors_per_s.as_ref()), 0));
            v.push(errors(nt.and_then(|x| x.link_error_recovery_per_s.as_ref()), 1));
            v.push(errors(nt.and_then(|x| x.link_downed_per_s.as_ref()), 2));
            v.push(errors(nt.and_then(|x| x.rcv_errors_per_s.as_ref()), 3));
        }
        for (i, d) in node.nvme.iter().enumerate() {
            let dt = t.nvme.get(&d.name);
            let rate = |tg: Option<&Target>, j: u64, max_mb: f64| {
                self.sample(tg, frac, 0.0, &key(8 + j, i as u64))
                    .map(|m| (m * 1e6).clamp(0.0, max_mb * 1e6))
                    .unwrap_or(0.0)
            };
            let r = rate(dt.and_then(|x| x.read_mb_s.as_ref()), 0, d.max_read_mb_s);
            let w = rate(dt.and_then(|x| x.write_mb_s.as_ref()), 1, d.max_write_mb_s);
            let modelled = (r / (d.max_read_mb_s * 1e6) + w / (d.max_write_mb_s * 1e6)).min(1.0);
            let busy = self
                .sample(dt.and_then(|x| x.busy.as_ref()), frac, 0.01, &key(10, i as u64))
                .unwrap_or(modelled)
                .clamp(0.0, 1.0);
            v.extend([r, w, busy]);
        }
        v
    }

    /// Host signals at scenario time `t`.
    pub fn host(&self, t: f64) -> HostState {
        let t = t.max(0.0);
        let (now, integral) = {
            let mut cache = self.host_cache.lock().unwrap_or_else(|e| e.into_inner());
            let knot = |k| self.host_knot(k);
            (cache.value(t, &knot), cache.integral(t, &knot))
        };
        let node = &self.scenario.node;
        let n = node.cpus as usize;
        let col = |v: &[f64], j: usize| -> Vec<f64> { (0..n).map(|c| v[3 * c + j]).collect() };
        let mut off = 3 * n + 1;
        let targets = self.host_targets(self.phase_at(t.floor() as i64).0);
        let nics = node
            .nics
            .iter()
            .map(|nic| {
                let nt = targets.nics.get(&nic.name);
                let s = NicState {
                    name: nic.name.clone(),
                    kind: nic.kind,
                    ib: nic.device.clone().map(|d| (d, nic.port)),
                    speed_gbps: nic.speed_gbps,
                    rx_rate: now[off],
                    tx_rate: now[off + 1],
                    rx_bytes: integral[off],
                    tx_bytes: integral[off + 1],
                    rate_gbps: nt.and_then(|x| x.rate_gbps).unwrap_or(nic.speed_gbps),
                    width: nt.and_then(|x| x.width).unwrap_or(4),
                    state: nt.and_then(|x| x.state).unwrap_or_default(),
                    symbol_errors: integral[off + 2],
                    link_error_recovery: integral[off + 3],
                    link_downed: integral[off + 4],
                    rcv_errors: integral[off + 5],
                };
                off += 6;
                s
            })
            .collect();
        let disks = node
            .nvme
            .iter()
            .map(|d| {
                let s = DiskState {
                    name: d.name.clone(),
                    model: d.model.clone(),
                    read_rate: now[off],
                    write_rate: now[off + 1],
                    busy: now[off + 2],
                    read_bytes: integral[off],
                    written_bytes: integral[off + 1],
                    busy_seconds: integral[off + 2],
                };
                off += 3;
                s
            })
            .collect();
        HostState {
            core_busy: col(&now, 0),
            core_iowait: col(&now, 1),
            core_steal: col(&now, 2),
            core_busy_s: col(&integral, 0),
            core_iowait_s: col(&integral, 1),
            core_steal_s: col(&integral, 2),
            memory_total: (node.memory_gib * GIB) as u64,
            memory_used: now[3 * n] as u64,
            swap_total: (node.swap_gib * GIB) as u64,
            swap_used: (node.swap_used_gib * GIB) as u64,
            nics,
            disks,
        }
    }

    /// XID events on `gpus` with `after < at_s <= until`, in time order.
    pub fn xid_events_between(&self, after: f64, until: f64) -> impl Iterator<Item = &TimedEvent> {
        self.events.iter().filter(move |e| e.kind == EventKind::Xid && e.at_s > after && e.at_s <= until)
    }
}

macro_rules! merge_fields {
    ($dst:expr, $src:expr, $($f:ident),* $(,)?) => {
        $( if $src.$f.is_some() { $dst.$f = $src.$f.clone(); } )*
    };
}

fn merge_gpu(dst: &mut GpuTargets, src: &GpuTargets) {
    merge_fields!(
        dst,
        src,
        util,
        mem_util,
        enc_util,
        dec_util,
        graphics_active,
        sm_active,
        sm_occupancy,
        tensor,
        fp64,
        fp32,
        fp16,
        dram,
        memory_used_gib,
        power_w,
        temp_c,
        mem_temp_c,
        sm_clock_mhz,
        mem_clock_mhz,
        pcie_rx_gb_s,
        pcie_tx_gb_s,
        nvlink_rx_gb_s,
        nvlink_tx_gb_s,
        pcie_gen,
        pcie_width,
        pcie_replays_per_min,
        nvlink_crc_per_s,
        nvlink_down,
        throttle,
        throttle_duty
    );
}

fn merge_host(dst: &mut HostTargets, src: &HostTargets) {
    merge_fields!(dst, src, cpu_busy, iowait, steal, memory_used_gib);
    for (k, v) in &src.cpu_busy_cores {
        dst.cpu_busy_cores.insert(k.clone(), *v);
    }
    // Field by field: an override that degrades a link keeps the phase's traffic.
    for (k, v) in &src.nics {
        let d = dst.nics.entry(k.clone()).or_default();
        merge_fields!(
            d,
            v,
            rx_gb_s,
            tx_gb_s,
            rate_gbps,
            width,
            state,
            symbol_errors_per_s,
            link_error_recovery_per_s,
            link_downed_per_s,
            rcv_errors_per_s
        );
    }
    for (k, v) in &src.nvme {
        dst.nvme.insert(k.clone(), v.clone());
    }
}
