//! Thresholds and timing of the rules; every default comes from `RULES.md` and can be changed.

use serde::Deserialize;
use std::collections::BTreeMap;

/// Timing of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// The condition must hold this long before the finding opens.
    pub sustain_s: f64,
    /// The condition must stay false this long before the finding closes.
    pub clear_s: f64,
}

/// Per-rule settings.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// Turn the rule off.
    #[serde(default)]
    pub disabled: bool,
    /// Override the sustain period.
    pub sustain_s: Option<f64>,
    /// Override the clear period.
    pub clear_s: Option<f64>,
}

/// Every threshold of the catalogue.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Thresholds {
    /// Seconds of samples averaged when a condition is evaluated (smooths the noise).
    pub eval_span_s: f64,
    /// SM activity below this is "low" (likely ineffective use).
    pub sm_active_low: f64,
    /// FP32 activity at or above this is "matrix math in FP32".
    pub fp32_high: f64,
    /// Tensor activity below this is "tensor cores unused".
    pub tensor_low: f64,
    /// FP64 activity at or above this is FP64-heavy.
    pub fp64_high: f64,
    /// NVML utilization at or above this is "always a kernel running".
    pub util_high: f64,
    /// DRAM activity at or above this is bandwidth-bound.
    pub dram_high: f64,
    /// Tensor activity below this (with high DRAM) is not compute-bound.
    pub dram_bound_tensor_max: f64,
    /// FP32 activity below this (with high DRAM) is not compute-bound.
    pub dram_bound_fp32_max: f64,
    /// Host CPU busy at or above this starves the input pipeline.
    pub cpu_busy_high: f64,
    /// I/O wait at or above this means storage cannot keep up.
    pub iowait_high: f64,
    /// NVMe busy fraction at or above this is saturated.
    pub nvme_busy_high: f64,
    /// One core at or above this ...
    pub hot_core: f64,
    /// ... while the others average below this: a single host thread bounds the job.
    pub other_cores_max: f64,
    /// PCIe receive at or above this fraction of the link's bandwidth.
    pub pcie_rx_high: f64,
    /// NVLink or NIC traffic at or above this fraction of capacity.
    pub link_high: f64,
    /// Per-link NVLink bandwidth per direction, bytes/s (NVLink 2–4: 25 GB/s).
    pub nvlink_link_bytes_per_second: f64,
    /// InfiniBand traffic below this (bytes/s) counts as none.
    pub ib_idle_bytes_per_second: f64,
    /// Ethernet traffic at or above this (bytes/s) while InfiniBand idles suggests NCCL on TCP.
    pub ethernet_busy_bytes_per_second: f64,
    /// Memory used below this fraction of total is under-used.
    pub memory_low: f64,
    /// Memory used at or above this fraction of total risks out-of-memory.
    pub memory_high: f64,
    /// SM activity (or utilization) below this is idle.
    pub idle: f64,
    /// SM activity this far below the job's median names a straggler.
    pub straggler_gap: f64,
    /// The others' utilization at or above this shows them waiting at collectives.
    pub straggler_others_util: f64,
    /// SW power cap active at least this fraction of the window.
    pub power_cap_fraction: f64,
    /// SM clock below this fraction of its maximum.
    pub clock_low: f64,
    /// Within this many °C of the slowdown temperature.
    pub thermal_margin_c: f64,
    /// HW slowdown or power brake onsets per minute.
    pub hw_slowdown_per_min: f64,
    /// Window for counting HW slowdown onsets, seconds.
    pub hw_slowdown_window_s: f64,
    /// Utilization above which a GPU is "under load" (PCIe link checks).
    pub load_util: f64,
    /// Retired pages at or above this are at the limit.
    pub retired_pages_max: f64,
    /// PCIe replays per minute above this.
    pub pcie_replays_per_min: f64,
    /// NVLink CRC errors per second at or above this are critical.
    pub nvlink_crc_per_s_critical: f64,
    /// How long an event (XID, ECC error) keeps its finding open, seconds.
    pub event_hold_s: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            eval_span_s: 10.0,
            sm_active_low: 0.5,
            fp32_high: 0.3,
            tensor_low: 0.05,
            fp64_high: 0.2,
            util_high: 0.9,
            dram_high: 0.6,
            dram_bound_tensor_max: 0.2,
            dram_bound_fp32_max: 0.3,
            cpu_busy_high: 0.9,
            iowait_high: 0.1,
            nvme_busy_high: 0.9,
            hot_core: 0.95,
            other_cores_max: 0.3,
            pcie_rx_high: 0.6,
            link_high: 0.7,
            nvlink_link_bytes_per_second: 25e9,
            ib_idle_bytes_per_second: 10e6,
            ethernet_busy_bytes_per_second: 1e9,
            memory_low: 0.5,
            memory_high: 0.95,
            idle: 0.05,
            straggler_gap: 0.15,
            straggler_others_util: 0.8,
            power_cap_fraction: 0.5,
            clock_low: 0.9,
            thermal_margin_c: 5.0,
            hw_slowdown_per_min: 0.6,
            hw_slowdown_window_s: 600.0,
            load_util: 0.5,
            retired_pages_max: 60.0,
            pcie_replays_per_min: 8.0,
            nvlink_crc_per_s_critical: 100.0,
            event_hold_s: 300.0,
        }
    }
}

/// The analysis configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Thresholds.
    pub thresholds: Thresholds,
    /// Wall seconds per workload second: 1 on real nodes. A simulator running at speed S
    /// compresses time, so 1/S here scales every period and window, and turns the rates the
    /// agent derives from counters (NIC, NVMe, NVLink) back into workload rates.
    pub time_scale: Option<f64>,
    /// Per-rule settings by rule id.
    pub rules: BTreeMap<String, RuleSettings>,
}

impl AnalysisConfig {
    /// The timing of `rule` in wall seconds: its override, else the rule's own, scaled.
    pub fn timing(&self, rule: &str, own: Timing) -> Timing {
        let r = self.rules.get(rule);
        Timing {
            sustain_s: r.and_then(|r| r.sustain_s).unwrap_or(own.sustain_s) * self.scale(),
            clear_s: r.and_then(|r| r.clear_s).unwrap_or(own.clear_s) * self.scale(),
        }
    }

    /// Wall seconds per workload second.
    pub fn scale(&self) -> f64 {
        self.time_scale.filter(|s| *s > 0.0).unwrap_or(1.0)
    }

    /// Whether `rule` is enabled.
    pub fn enabled(&self, rule: &str) -> bool {
        !self.rules.get(rule).is_some_and(|r| r.disabled)
    }
}
