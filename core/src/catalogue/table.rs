//! The signal table: one row per exported signal, in the order exporters emit them.
//!
//! A row names its fields; what most rows share (no fixed OTLP attributes, no dcgm alias, no GPU
//! identity) comes from [`base`], which also sets the row's [`Group`]. Rows stay in emission
//! order (the golden files pin it), so a group can appear in more than one run.

use super::{Accessor, CLOCK_EVENT_REASONS, DcgmAlias, Group, MetricDef, MetricKind, MetricValue};
use crate::exposition::LabelValue;
use crate::units::Unit;

/// A plain `Option` field of a snapshot part, read and written through [`MetricValue`].
macro_rules! field {
    ($variant:ident, $field:ident) => {
        Accessor::$variant(
            |s| s.$field.as_ref().map(MetricValue::to_f64),
            |s, v| s.$field = Some(MetricValue::from_f64(v)),
        )
    };
}

/// A field that always has a value (a kernel profile's), read and written through [`MetricValue`].
macro_rules! value {
    ($variant:ident, $field:ident) => {
        Accessor::$variant(|s| Some(MetricValue::to_f64(&s.$field)), |s, v| s.$field = MetricValue::from_f64(v))
    };
}

/// A dcgm-exporter alias: its ≤ 4.8 name, kind and unit scale, and its 4.9 name (in base units,
/// unchanged by 4.10).
const fn dcgm(name: &'static str, renamed: &'static str, kind: MetricKind, scale: f64) -> Option<DcgmAlias> {
    Some(DcgmAlias { name, kind, scale, renamed, renamed_4_10: renamed })
}

/// A dcgm-exporter alias that 4.9 kept and 4.10 renamed (the PCIe profiling rates).
const fn dcgm_4_10(name: &'static str, renamed_4_10: &'static str, kind: MetricKind, scale: f64) -> Option<DcgmAlias> {
    Some(DcgmAlias { name, kind, scale, renamed: name, renamed_4_10 })
}

/// The defaults of a row in `group`. Names, unit, kind, help and accessor are placeholders every
/// row sets itself; the invariant tests fail on a row that forgets one (empty names and help are
/// refused, the placeholder accessor reads nothing back).
const fn base(group: Group) -> MetricDef {
    MetricDef {
        prometheus: "",
        otlp: "",
        otlp_attributes: &[],
        unit: Unit::State,
        kind: MetricKind::Gauge,
        group,
        help: "",
        dcgm: None,
        carries_gpu_identity: false,
        accessor: Accessor::Host(|_| None, |_, _| {}),
    }
}

const MIB: f64 = 1.0 / 1_048_576.0;

/// The GPU's record of `peer`, added (in peer order) when absent.
fn peer_of(g: &mut crate::model::GpuSample, peer: u32) -> &mut crate::model::GpuPeer {
    let at = match g.peers.binary_search_by_key(&peer, |p| p.peer_gpu) {
        Ok(i) => i,
        Err(i) => {
            g.peers.insert(i, crate::model::GpuPeer { peer_gpu: peer, ..Default::default() });
            i
        }
    };
    &mut g.peers[at]
}
use MetricKind::{Counter, Gauge, UpDownCounter};
use Unit::{Bytes, BytesPerSecond, Celsius, Count, Hertz, Joules, PerSecond, Ratio, Seconds, State, Watts};

/// Every signal gpuscope exports, in the order exporters emit them.
pub static CATALOGUE: &[MetricDef] = &[
    // ---- GPU state and utilization
    MetricDef {
        prometheus: "gpuscope_gpu_up",
        otlp: "gpuscope.gpu.up",
        unit: State,
        kind: Gauge,
        help: "1 when the GPU answers, 0 when it is lost (fallen off the bus).",
        carries_gpu_identity: true,
        accessor: Accessor::Gpu(|g| Some(if g.lost { 0.0 } else { 1.0 }), |g, v| g.lost = v < 0.5),
        ..base(Group::State)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_utilization_ratio",
        otlp: "hw.gpu.utilization",
        otlp_attributes: &[("hw.gpu.task", "general")],
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of time one or more kernels ran on the GPU (NVML, coarse).",
        dcgm: dcgm("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_GPU_UTIL_RATIO", Gauge, 100.0),
        accessor: field!(Gpu, utilization_ratio),
        ..base(Group::Utilization)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_memory_copy_utilization_ratio",
        otlp: "hw.gpu.memory.utilization",
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of time device memory was being read or written.",
        dcgm: dcgm("DCGM_FI_DEV_MEM_COPY_UTIL", "DCGM_FI_DEV_MEMORY_UTIL_RATIO", Gauge, 100.0),
        accessor: field!(Gpu, memory_copy_utilization_ratio),
        ..base(Group::Utilization)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_encoder_utilization_ratio",
        otlp: "hw.gpu.utilization",
        otlp_attributes: &[("hw.gpu.task", "encoder")],
        unit: Ratio,
        kind: Gauge,
        help: "Video encoder utilization.",
        dcgm: dcgm("DCGM_FI_DEV_ENC_UTIL", "DCGM_FI_DEV_ENC_UTIL_RATIO", Gauge, 100.0),
        accessor: field!(Gpu, encoder_utilization_ratio),
        ..base(Group::Utilization)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_decoder_utilization_ratio",
        otlp: "hw.gpu.utilization",
        otlp_attributes: &[("hw.gpu.task", "decoder")],
        unit: Ratio,
        kind: Gauge,
        help: "Video decoder utilization.",
        dcgm: dcgm("DCGM_FI_DEV_DEC_UTIL", "DCGM_FI_DEV_DEC_UTIL_RATIO", Gauge, 100.0),
        accessor: field!(Gpu, decoder_utilization_ratio),
        ..base(Group::Utilization)
    },
    // ---- profiling ratios (GPM on Hopper+)
    MetricDef {
        prometheus: "gpuscope_gpu_graphics_active_ratio",
        otlp: "gpuscope.gpu.graphics.active",
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of time the graphics/compute engine was active (profiling).",
        dcgm: dcgm("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_GR_ENGINE_UTIL_RATIO", Gauge, 1.0),
        accessor: field!(Gpu, graphics_active_ratio),
        ..base(Group::Profiling)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_sm_active_ratio",
        otlp: "gpuscope.gpu.sm.active",
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of SM time with at least one warp resident (profiling).",
        dcgm: dcgm("DCGM_FI_PROF_SM_ACTIVE", "DCGM_FI_PROF_SM_UTIL_RATIO", Gauge, 1.0),
        accessor: field!(Gpu, sm_active_ratio),
        ..base(Group::Profiling)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_sm_occupancy_ratio",
        otlp: "gpuscope.gpu.sm.occupancy",
        unit: Ratio,
        kind: Gauge,
        help: "Resident warps over the maximum the SMs can hold (profiling).",
        dcgm: dcgm("DCGM_FI_PROF_SM_OCCUPANCY", "DCGM_FI_PROF_SM_OCCUPANCY_RATIO", Gauge, 1.0),
        accessor: field!(Gpu, sm_occupancy_ratio),
        ..base(Group::Profiling)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_tensor_active_ratio",
        otlp: "gpuscope.gpu.pipe.active",
        otlp_attributes: &[("gpuscope.pipe", "tensor")],
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of cycles any tensor pipe was active (profiling).",
        dcgm: dcgm("DCGM_FI_PROF_PIPE_TENSOR_ACTIVE", "DCGM_FI_PROF_TENSOR_UTIL_RATIO", Gauge, 1.0),
        accessor: field!(Gpu, tensor_active_ratio),
        ..base(Group::Profiling)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_fp64_active_ratio",
        otlp: "gpuscope.gpu.pipe.active",
        otlp_attributes: &[("gpuscope.pipe", "fp64")],
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of cycles the FP64 pipe was active (profiling).",
        dcgm: dcgm("DCGM_FI_PROF_PIPE_FP64_ACTIVE", "DCGM_FI_PROF_FP64_UTIL_RATIO", Gauge, 1.0),
        accessor: field!(Gpu, fp64_active_ratio),
        ..base(Group::Profiling)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_fp32_active_ratio",
        otlp: "gpuscope.gpu.pipe.active",
        otlp_attributes: &[("gpuscope.pipe", "fp32")],
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of cycles the FP32 pipe was active (profiling).",
        dcgm: dcgm("DCGM_FI_PROF_PIPE_FP32_ACTIVE", "DCGM_FI_PROF_FP32_UTIL_RATIO", Gauge, 1.0),
        accessor: field!(Gpu, fp32_active_ratio),
        ..base(Group::Profiling)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_fp16_active_ratio",
        otlp: "gpuscope.gpu.pipe.active",
        otlp_attributes: &[("gpuscope.pipe", "fp16")],
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of cycles the FP16 pipe was active (profiling).",
        dcgm: dcgm("DCGM_FI_PROF_PIPE_FP16_ACTIVE", "DCGM_FI_PROF_FP16_UTIL_RATIO", Gauge, 1.0),
        accessor: field!(Gpu, fp16_active_ratio),
        ..base(Group::Profiling)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_dram_active_ratio",
        otlp: "gpuscope.gpu.dram.active",
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of cycles device memory was busy (DRAM bandwidth utilization, profiling).",
        dcgm: dcgm("DCGM_FI_PROF_DRAM_ACTIVE", "DCGM_FI_PROF_DRAM_UTIL_RATIO", Gauge, 1.0),
        accessor: field!(Gpu, dram_active_ratio),
        ..base(Group::Profiling)
    },
    // Per MIG instance (dcgm-exporter: the GPU's family, with GPU_I_ID / GPU_I_PROFILE).
    MetricDef {
        prometheus: "gpuscope_gpu_mig_graphics_active_ratio",
        otlp: "gpuscope.gpu.mig.graphics.active",
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of time the MIG instance's graphics/compute engine was active (profiling).",
        dcgm: dcgm("DCGM_FI_PROF_GR_ENGINE_ACTIVE", "DCGM_FI_PROF_GR_ENGINE_UTIL_RATIO", Gauge, 1.0),
        accessor: field!(Mig, graphics_engine_active),
        ..base(Group::Profiling)
    },
    // ---- memory
    MetricDef {
        prometheus: "gpuscope_gpu_memory_total_bytes",
        otlp: "hw.gpu.memory.limit",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Total framebuffer memory.",
        accessor: field!(Gpu, memory_total_bytes),
        ..base(Group::Memory)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_memory_used_bytes",
        otlp: "hw.gpu.memory.usage",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Framebuffer memory in use.",
        dcgm: dcgm("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_USED_BYTES", Gauge, MIB),
        accessor: field!(Gpu, memory_used_bytes),
        ..base(Group::Memory)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_memory_free_bytes",
        otlp: "gpuscope.gpu.memory.free",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Framebuffer memory free.",
        dcgm: dcgm("DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_FREE_BYTES", Gauge, MIB),
        accessor: field!(Gpu, memory_free_bytes),
        ..base(Group::Memory)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_memory_reserved_bytes",
        otlp: "gpuscope.gpu.memory.reserved",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Framebuffer memory reserved by the driver.",
        dcgm: dcgm("DCGM_FI_DEV_FB_RESERVED", "DCGM_FI_DEV_FB_RESERVED_BYTES", Gauge, MIB),
        accessor: field!(Gpu, memory_reserved_bytes),
        ..base(Group::Memory)
    },
    // MIG instances: dcgm-exporter serves them in the GPU's families, with GPU_I_ID / GPU_I_PROFILE.
    MetricDef {
        prometheus: "gpuscope_gpu_mig_memory_total_bytes",
        otlp: "gpuscope.gpu.mig.memory.limit",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Framebuffer memory of the MIG instance.",
        accessor: field!(Mig, memory_total_bytes),
        ..base(Group::Memory)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_mig_memory_used_bytes",
        otlp: "gpuscope.gpu.mig.memory.usage",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Framebuffer memory in use in the MIG instance.",
        dcgm: dcgm("DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_USED_BYTES", Gauge, MIB),
        accessor: field!(Mig, memory_used_bytes),
        ..base(Group::Memory)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_mig_memory_free_bytes",
        otlp: "gpuscope.gpu.mig.memory.free",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Framebuffer memory free in the MIG instance.",
        dcgm: dcgm("DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_FB_FREE_BYTES", Gauge, MIB),
        accessor: field!(Mig, memory_free_bytes),
        ..base(Group::Memory)
    },
    // ---- thermals and power
    MetricDef {
        prometheus: "gpuscope_gpu_temperature_celsius",
        otlp: "hw.temperature",
        otlp_attributes: &[("hw.sensor_location", "gpu")],
        unit: Celsius,
        kind: Gauge,
        help: "GPU core temperature.",
        dcgm: dcgm("DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_GPU_TEMP_CELSIUS", Gauge, 1.0),
        accessor: field!(Gpu, temperature_celsius),
        ..base(Group::Thermal)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_memory_temperature_celsius",
        otlp: "hw.temperature",
        otlp_attributes: &[("hw.sensor_location", "memory")],
        unit: Celsius,
        kind: Gauge,
        help: "GPU memory (HBM) temperature.",
        dcgm: dcgm("DCGM_FI_DEV_MEMORY_TEMP", "DCGM_FI_DEV_MEMORY_TEMP_CELSIUS", Gauge, 1.0),
        accessor: field!(Gpu, memory_temperature_celsius),
        ..base(Group::Thermal)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_slowdown_temperature_celsius",
        otlp: "gpuscope.gpu.temperature.slowdown",
        unit: Celsius,
        kind: Gauge,
        help: "Temperature at which the GPU starts to slow its clocks.",
        accessor: field!(Gpu, slowdown_temperature_celsius),
        ..base(Group::Thermal)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_shutdown_temperature_celsius",
        otlp: "gpuscope.gpu.temperature.shutdown",
        unit: Celsius,
        kind: Gauge,
        help: "Temperature at which the GPU shuts down.",
        accessor: field!(Gpu, shutdown_temperature_celsius),
        ..base(Group::Thermal)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_max_operating_temperature_celsius",
        otlp: "gpuscope.gpu.temperature.max_operating",
        unit: Celsius,
        kind: Gauge,
        help: "Highest temperature the GPU is specified to operate at.",
        accessor: field!(Gpu, max_operating_temperature_celsius),
        ..base(Group::Thermal)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_fan_speed_ratio",
        otlp: "gpuscope.gpu.fan.speed",
        unit: Ratio,
        kind: Gauge,
        help: "Fan speed as a fraction of its maximum (the mean over the board's fans).",
        dcgm: dcgm("DCGM_FI_DEV_FAN_SPEED", "DCGM_FI_DEV_FAN_SPEED_RATIO", Gauge, 100.0),
        accessor: field!(Gpu, fan_speed_ratio),
        ..base(Group::Thermal)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_power_watts",
        otlp: "hw.power",
        unit: Watts,
        kind: Gauge,
        help: "Power draw.",
        dcgm: dcgm("DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_BOARD_POWER_WATTS", Gauge, 1.0),
        accessor: field!(Gpu, power_watts),
        ..base(Group::Power)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_power_limit_watts",
        otlp: "gpuscope.gpu.power.limit",
        otlp_attributes: &[("gpuscope.limit", "current")],
        unit: Watts,
        kind: Gauge,
        help: "Power management limit in force.",
        accessor: field!(Gpu, power_limit_watts),
        ..base(Group::Power)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_power_default_limit_watts",
        otlp: "gpuscope.gpu.power.limit",
        otlp_attributes: &[("gpuscope.limit", "default")],
        unit: Watts,
        kind: Gauge,
        help: "Default power management limit.",
        accessor: field!(Gpu, power_default_limit_watts),
        ..base(Group::Power)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_power_min_limit_watts",
        otlp: "gpuscope.gpu.power.limit",
        otlp_attributes: &[("gpuscope.limit", "min")],
        unit: Watts,
        kind: Gauge,
        help: "Lowest settable power limit.",
        accessor: field!(Gpu, power_min_limit_watts),
        ..base(Group::Power)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_power_max_limit_watts",
        otlp: "gpuscope.gpu.power.limit",
        otlp_attributes: &[("gpuscope.limit", "max")],
        unit: Watts,
        kind: Gauge,
        help: "Highest settable power limit.",
        accessor: field!(Gpu, power_max_limit_watts),
        ..base(Group::Power)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_energy_joules_total",
        otlp: "hw.energy",
        unit: Joules,
        kind: Counter,
        help: "Energy consumed since the driver was loaded.",
        dcgm: dcgm("DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION", "DCGM_FI_DEV_GPU_ENERGY_JOULES_TOTAL", Counter, 1000.0),
        accessor: field!(Gpu, energy_joules),
        ..base(Group::Power)
    },
    // ---- clocks
    MetricDef {
        prometheus: "gpuscope_gpu_sm_clock_hertz",
        otlp: "gpuscope.gpu.clock",
        otlp_attributes: &[("gpuscope.clock", "sm")],
        unit: Hertz,
        kind: Gauge,
        help: "Current SM clock.",
        dcgm: dcgm("DCGM_FI_DEV_SM_CLOCK", "DCGM_FI_DEV_SM_CLOCK_HERTZ", Gauge, 1e-6),
        accessor: field!(Gpu, sm_clock_hertz),
        ..base(Group::Clocks)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_memory_clock_hertz",
        otlp: "gpuscope.gpu.clock",
        otlp_attributes: &[("gpuscope.clock", "memory")],
        unit: Hertz,
        kind: Gauge,
        help: "Current memory clock.",
        dcgm: dcgm("DCGM_FI_DEV_MEM_CLOCK", "DCGM_FI_DEV_MEMORY_CLOCK_HERTZ", Gauge, 1e-6),
        accessor: field!(Gpu, memory_clock_hertz),
        ..base(Group::Clocks)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_graphics_clock_hertz",
        otlp: "gpuscope.gpu.clock",
        otlp_attributes: &[("gpuscope.clock", "graphics")],
        unit: Hertz,
        kind: Gauge,
        help: "Current graphics clock.",
        accessor: field!(Gpu, graphics_clock_hertz),
        ..base(Group::Clocks)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_video_clock_hertz",
        otlp: "gpuscope.gpu.clock",
        otlp_attributes: &[("gpuscope.clock", "video")],
        unit: Hertz,
        kind: Gauge,
        help: "Current video encoder/decoder clock; read every slow pass.",
        accessor: field!(Gpu, video_clock_hertz),
        dcgm: dcgm("DCGM_FI_DEV_VIDEO_CLOCK", "DCGM_FI_DEV_VIDEO_CLOCK_HERTZ", Gauge, 1e-6),
        ..base(Group::Clocks)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_sm_clock_max_hertz",
        otlp: "gpuscope.gpu.clock.max",
        otlp_attributes: &[("gpuscope.clock", "sm")],
        unit: Hertz,
        kind: Gauge,
        help: "Maximum SM clock.",
        accessor: field!(Gpu, sm_clock_max_hertz),
        ..base(Group::Clocks)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_memory_clock_max_hertz",
        otlp: "gpuscope.gpu.clock.max",
        otlp_attributes: &[("gpuscope.clock", "memory")],
        unit: Hertz,
        kind: Gauge,
        help: "Maximum memory clock.",
        accessor: field!(Gpu, memory_clock_max_hertz),
        ..base(Group::Clocks)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_clock_event_active",
        otlp: "gpuscope.gpu.clock.event.active",
        unit: State,
        kind: Gauge,
        help: "1 while this clock event (throttle) reason holds the clocks down.",
        accessor: Accessor::GpuLabelled {
            label: "reason",
            // Every reason is a series (0 or 1) once the mask was read.
            get: |g, n| {
                let (bit, name) = CLOCK_EVENT_REASONS.get(n)?;
                let mask = g.clock_event_reasons?;
                Some((LabelValue::Text(name), if mask & bit != 0 { 1.0 } else { 0.0 }))
            },
            set: |g, reason, v| {
                if let LabelValue::Text(reason) = reason
                    && let Some((bit, _)) = CLOCK_EVENT_REASONS.iter().find(|(_, n)| *n == reason)
                {
                    let mask = g.clock_event_reasons.unwrap_or(0);
                    g.clock_event_reasons = Some(if v > 0.5 { mask | bit } else { mask & !bit });
                }
            },
        },
        ..base(Group::Clocks)
    },
    // ---- interconnect
    MetricDef {
        prometheus: "gpuscope_gpu_pcie_tx_bytes_per_second",
        otlp: "gpuscope.gpu.pcie.throughput",
        otlp_attributes: &[("network.io.direction", "transmit")],
        unit: BytesPerSecond,
        kind: Gauge,
        help: "PCIe transmit throughput (device to host).",
        dcgm: dcgm_4_10("DCGM_FI_PROF_PCIE_TX_BYTES", "DCGM_FI_PROF_PCIE_TX_BYTES_PER_SECOND", Gauge, 1.0),
        accessor: field!(Gpu, pcie_tx_bytes_per_second),
        ..base(Group::Pcie)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_pcie_rx_bytes_per_second",
        otlp: "gpuscope.gpu.pcie.throughput",
        otlp_attributes: &[("network.io.direction", "receive")],
        unit: BytesPerSecond,
        kind: Gauge,
        help: "PCIe receive throughput (host to device).",
        dcgm: dcgm_4_10("DCGM_FI_PROF_PCIE_RX_BYTES", "DCGM_FI_PROF_PCIE_RX_BYTES_PER_SECOND", Gauge, 1.0),
        accessor: field!(Gpu, pcie_rx_bytes_per_second),
        ..base(Group::Pcie)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_pcie_link_generation",
        otlp: "gpuscope.gpu.pcie.link.generation",
        otlp_attributes: &[("gpuscope.link", "current")],
        unit: Count,
        kind: Gauge,
        help: "Current PCIe link generation.",
        accessor: field!(Gpu, pcie_link_generation),
        ..base(Group::Pcie)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_pcie_link_generation_max",
        otlp: "gpuscope.gpu.pcie.link.generation",
        otlp_attributes: &[("gpuscope.link", "max")],
        unit: Count,
        kind: Gauge,
        help: "Maximum PCIe link generation.",
        accessor: field!(Gpu, pcie_link_generation_max),
        ..base(Group::Pcie)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_pcie_link_width",
        otlp: "gpuscope.gpu.pcie.link.width",
        otlp_attributes: &[("gpuscope.link", "current")],
        unit: Count,
        kind: Gauge,
        help: "Current PCIe link width in lanes.",
        accessor: field!(Gpu, pcie_link_width),
        ..base(Group::Pcie)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_pcie_link_width_max",
        otlp: "gpuscope.gpu.pcie.link.width",
        otlp_attributes: &[("gpuscope.link", "max")],
        unit: Count,
        kind: Gauge,
        help: "Maximum PCIe link width in lanes.",
        accessor: field!(Gpu, pcie_link_width_max),
        ..base(Group::Pcie)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_pcie_replays_total",
        otlp: "gpuscope.gpu.pcie.replays",
        unit: Count,
        kind: Counter,
        help: "PCIe replay counter.",
        dcgm: dcgm("DCGM_FI_DEV_PCIE_REPLAY_COUNTER", "DCGM_FI_DEV_PCIE_REPLAY_TOTAL", Counter, 1.0),
        accessor: field!(Gpu, pcie_replays_total),
        ..base(Group::Pcie)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_peer_pcie_topology_level",
        otlp: "gpuscope.gpu.peer.pcie.topology_level",
        unit: State,
        kind: Gauge,
        help: "Nearest common PCIe ancestor of this GPU and the peer GPU (NVML topology level: 10 PIX, 20 PXB, 30 PHB, 40 NODE, 50 SYS).",
        accessor: Accessor::GpuLabelled {
            label: "peer_gpu",
            get: |g, n| {
                g.peers
                    .iter()
                    .filter_map(|p| {
                        Some((LabelValue::Number(u64::from(p.peer_gpu)), f64::from(p.pcie_topology_level?)))
                    })
                    .nth(n)
            },
            set: |g, peer, v| {
                if let Some(peer) = peer.as_u64().and_then(|p| u32::try_from(p).ok()) {
                    peer_of(g, peer).pcie_topology_level = Some(MetricValue::from_f64(v));
                }
            },
        },
        ..base(Group::Pcie)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_nvlink_tx_bytes_per_second",
        otlp: "gpuscope.gpu.nvlink.throughput",
        otlp_attributes: &[("network.io.direction", "transmit")],
        unit: BytesPerSecond,
        kind: Gauge,
        help: "NVLink transmit throughput over all links.",
        accessor: field!(Gpu, nvlink_tx_bytes_per_second),
        ..base(Group::NvLink)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_nvlink_rx_bytes_per_second",
        otlp: "gpuscope.gpu.nvlink.throughput",
        otlp_attributes: &[("network.io.direction", "receive")],
        unit: BytesPerSecond,
        kind: Gauge,
        help: "NVLink receive throughput over all links.",
        accessor: field!(Gpu, nvlink_rx_bytes_per_second),
        ..base(Group::NvLink)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_nvlink_link_tx_bytes_per_second",
        otlp: "gpuscope.gpu.nvlink.link.throughput",
        otlp_attributes: &[("network.io.direction", "transmit")],
        unit: BytesPerSecond,
        kind: Gauge,
        help: "NVLink transmit throughput of one link.",
        accessor: field!(NvLink, tx_bytes_per_second),
        ..base(Group::NvLink)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_nvlink_link_rx_bytes_per_second",
        otlp: "gpuscope.gpu.nvlink.link.throughput",
        otlp_attributes: &[("network.io.direction", "receive")],
        unit: BytesPerSecond,
        kind: Gauge,
        help: "NVLink receive throughput of one link.",
        accessor: field!(NvLink, rx_bytes_per_second),
        ..base(Group::NvLink)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_nvlink_up",
        otlp: "gpuscope.gpu.nvlink.up",
        unit: State,
        kind: Gauge,
        help: "1 when the NVLink link is active.",
        accessor: field!(NvLink, active),
        ..base(Group::NvLink)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_nvlink_crc_errors_total",
        otlp: "hw.errors",
        otlp_attributes: &[("error.type", "nvlink_crc")],
        unit: Count,
        kind: Counter,
        help: "NVLink CRC errors on data flits.",
        accessor: field!(NvLink, crc_errors_total),
        ..base(Group::NvLink)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_nvlink_replay_errors_total",
        otlp: "hw.errors",
        otlp_attributes: &[("error.type", "nvlink_replay")],
        unit: Count,
        kind: Counter,
        help: "NVLink replay errors.",
        accessor: field!(NvLink, replay_errors_total),
        ..base(Group::NvLink)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_nvlink_recovery_errors_total",
        otlp: "hw.errors",
        otlp_attributes: &[("error.type", "nvlink_recovery")],
        unit: Count,
        kind: Counter,
        help: "NVLink recovery errors.",
        accessor: field!(NvLink, recovery_errors_total),
        ..base(Group::NvLink)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_peer_nvlinks",
        otlp: "gpuscope.gpu.peer.nvlinks",
        unit: Count,
        kind: Gauge,
        help: "NVLink links between this GPU and the peer GPU, directly or through NVSwitches (NV<n> in nvidia-smi topo -m).",
        accessor: Accessor::GpuLabelled {
            label: "peer_gpu",
            get: |g, n| {
                g.peers
                    .iter()
                    .filter_map(|p| Some((LabelValue::Number(u64::from(p.peer_gpu)), f64::from(p.nvlinks?))))
                    .nth(n)
            },
            set: |g, peer, v| {
                if let Some(peer) = peer.as_u64().and_then(|p| u32::try_from(p).ok()) {
                    peer_of(g, peer).nvlinks = Some(MetricValue::from_f64(v));
                }
            },
        },
        ..base(Group::NvLink)
    },
    // ---- health
    MetricDef {
        prometheus: "gpuscope_gpu_ecc_corrected_volatile_errors_total",
        otlp: "hw.errors",
        otlp_attributes: &[("error.type", "ecc_corrected"), ("gpuscope.ecc.counter", "volatile")],
        unit: Count,
        kind: Counter,
        help: "Corrected (single-bit) ECC errors since the driver was loaded.",
        dcgm: dcgm("DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL", Counter, 1.0),
        accessor: field!(Gpu, ecc_corrected_volatile_total),
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_ecc_uncorrected_volatile_errors_total",
        otlp: "hw.errors",
        otlp_attributes: &[("error.type", "ecc_uncorrected"), ("gpuscope.ecc.counter", "volatile")],
        unit: Count,
        kind: Counter,
        help: "Uncorrected (double-bit) ECC errors since the driver was loaded.",
        dcgm: dcgm("DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL", Counter, 1.0),
        accessor: field!(Gpu, ecc_uncorrected_volatile_total),
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_ecc_corrected_aggregate_errors_total",
        otlp: "hw.errors",
        otlp_attributes: &[("error.type", "ecc_corrected"), ("gpuscope.ecc.counter", "aggregate")],
        unit: Count,
        kind: Counter,
        help: "Corrected ECC errors over the GPU's lifetime.",
        accessor: field!(Gpu, ecc_corrected_aggregate_total),
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_ecc_uncorrected_aggregate_errors_total",
        otlp: "hw.errors",
        otlp_attributes: &[("error.type", "ecc_uncorrected"), ("gpuscope.ecc.counter", "aggregate")],
        unit: Count,
        kind: Counter,
        help: "Uncorrected ECC errors over the GPU's lifetime.",
        accessor: field!(Gpu, ecc_uncorrected_aggregate_total),
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_retired_pages",
        otlp: "gpuscope.gpu.retired_pages",
        unit: Count,
        kind: UpDownCounter,
        help: "Memory pages retired (all causes).",
        accessor: field!(Gpu, retired_pages_total),
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_retired_pages_pending",
        otlp: "gpuscope.gpu.retired_pages.pending",
        unit: State,
        kind: Gauge,
        help: "1 when a page retirement waits for the next GPU reset.",
        accessor: field!(Gpu, retired_pages_pending),
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_remapped_rows_correctable",
        otlp: "gpuscope.gpu.remapped_rows",
        otlp_attributes: &[("gpuscope.cause", "correctable")],
        unit: Count,
        kind: UpDownCounter,
        help: "Rows remapped after correctable errors.",
        dcgm: dcgm("DCGM_FI_DEV_CORRECTABLE_REMAPPED_ROWS", "DCGM_FI_DEV_ROW_REMAP_CORRECTABLE_TOTAL", Counter, 1.0),
        accessor: field!(Gpu, remapped_rows_correctable_total),
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_remapped_rows_uncorrectable",
        otlp: "gpuscope.gpu.remapped_rows",
        otlp_attributes: &[("gpuscope.cause", "uncorrectable")],
        unit: Count,
        kind: UpDownCounter,
        help: "Rows remapped after uncorrectable errors.",
        dcgm: dcgm(
            "DCGM_FI_DEV_UNCORRECTABLE_REMAPPED_ROWS",
            "DCGM_FI_DEV_ROW_REMAP_UNCORRECTABLE_TOTAL",
            Counter,
            1.0,
        ),
        accessor: field!(Gpu, remapped_rows_uncorrectable_total),
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_row_remap_pending",
        otlp: "gpuscope.gpu.row_remap.pending",
        unit: State,
        kind: Gauge,
        help: "1 when a row remapping waits for the next GPU reset.",
        accessor: field!(Gpu, row_remap_pending),
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_row_remap_failed",
        otlp: "gpuscope.gpu.row_remap.failed",
        unit: State,
        kind: Gauge,
        help: "1 when a row remapping failed.",
        dcgm: dcgm("DCGM_FI_DEV_ROW_REMAP_FAILURE", "DCGM_FI_DEV_ROW_REMAP_FAILED", Gauge, 1.0),
        accessor: field!(Gpu, row_remap_failed),
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_xid_last",
        otlp: "gpuscope.gpu.xid.last",
        unit: State,
        kind: Gauge,
        help: "Code of the most recent XID event on this GPU.",
        dcgm: dcgm("DCGM_FI_DEV_XID_ERRORS", "DCGM_FI_DEV_XID_ERROR", Gauge, 1.0),
        accessor: field!(Gpu, xid_last),
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_xid_errors_total",
        otlp: "gpuscope.gpu.xid.errors",
        unit: Count,
        kind: Counter,
        help: "XID events seen since the agent started, by code.",
        accessor: Accessor::GpuLabelled {
            label: "xid",
            get: |g, n| g.xid_counts.iter().nth(n).map(|(code, count)| (LabelValue::Number(*code), count.to_f64())),
            set: |g, code, v| {
                if let Some(code) = code.as_u64() {
                    g.xid_counts.insert(code, MetricValue::from_f64(v));
                }
            },
        },
        ..base(Group::Health)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_mig_enabled",
        otlp: "gpuscope.gpu.mig.enabled",
        unit: State,
        kind: Gauge,
        help: "1 when MIG mode is enabled.",
        accessor: field!(Gpu, mig_enabled),
        dcgm: dcgm("DCGM_FI_DEV_MIG_MODE", "DCGM_FI_DEV_MIG_MODE", Gauge, 1.0),
        ..base(Group::State)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_persistence_mode",
        otlp: "gpuscope.gpu.persistence_mode",
        unit: State,
        kind: Gauge,
        help: "1 when persistence mode is enabled.",
        accessor: field!(Gpu, persistence_mode),
        dcgm: dcgm("DCGM_FI_DEV_PERSISTENCE_MODE", "DCGM_FI_DEV_PERSISTENCE_MODE", Gauge, 1.0),
        ..base(Group::State)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_numa_node",
        otlp: "gpuscope.gpu.numa.node",
        unit: State,
        kind: Gauge,
        help: "NUMA node of the memory nearest the GPU (place its host threads and buffers there).",
        accessor: field!(Gpu, numa_node),
        ..base(Group::State)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_ecc_mode",
        otlp: "gpuscope.gpu.ecc.mode",
        otlp_attributes: &[("gpuscope.ecc.mode", "current")],
        unit: State,
        kind: Gauge,
        help: "1 when ECC is enabled.",
        accessor: field!(Gpu, ecc_mode_current),
        dcgm: dcgm("DCGM_FI_DEV_ECC_CURRENT", "DCGM_FI_DEV_ECC_CURRENT", Gauge, 1.0),
        ..base(Group::State)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_ecc_mode_pending",
        otlp: "gpuscope.gpu.ecc.mode",
        otlp_attributes: &[("gpuscope.ecc.mode", "pending")],
        unit: State,
        kind: Gauge,
        help: "1 when ECC will be enabled after the next reboot.",
        accessor: field!(Gpu, ecc_mode_pending),
        dcgm: dcgm("DCGM_FI_DEV_ECC_PENDING", "DCGM_FI_DEV_ECC_PENDING", Gauge, 1.0),
        ..base(Group::State)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_compute_mode",
        otlp: "gpuscope.gpu.compute_mode",
        unit: State,
        kind: Gauge,
        help: "Compute mode: 0 default, 2 prohibited, 3 exclusive process.",
        accessor: field!(Gpu, compute_mode),
        ..base(Group::State)
    },
    MetricDef {
        prometheus: "gpuscope_gpu_performance_state",
        otlp: "gpuscope.gpu.performance_state",
        unit: State,
        kind: Gauge,
        help: "Performance state: 0 (P0, maximum performance) to 15 (P15, minimum); read every slow pass.",
        accessor: field!(Gpu, performance_state),
        dcgm: dcgm("DCGM_FI_DEV_PSTATE", "DCGM_FI_DEV_PSTATE", Gauge, 1.0),
        ..base(Group::State)
    },
    // ---- GPU processes
    MetricDef {
        prometheus: "gpuscope_process_gpu_memory_bytes",
        otlp: "gpuscope.process.gpu.memory.usage",
        unit: Bytes,
        kind: UpDownCounter,
        help: "GPU memory the process holds on this GPU.",
        accessor: field!(Process, gpu_memory_bytes),
        ..base(Group::Process)
    },
    MetricDef {
        prometheus: "gpuscope_process_sm_utilization_ratio",
        otlp: "gpuscope.process.gpu.utilization",
        otlp_attributes: &[("gpuscope.resource", "sm")],
        unit: Ratio,
        kind: Gauge,
        help: "Share of the GPU's SM time the process used.",
        accessor: field!(Process, sm_utilization_ratio),
        ..base(Group::Process)
    },
    MetricDef {
        prometheus: "gpuscope_process_memory_utilization_ratio",
        otlp: "gpuscope.process.gpu.utilization",
        otlp_attributes: &[("gpuscope.resource", "memory")],
        unit: Ratio,
        kind: Gauge,
        help: "Share of the GPU's memory bandwidth the process used.",
        accessor: field!(Process, memory_utilization_ratio),
        ..base(Group::Process)
    },
    MetricDef {
        prometheus: "gpuscope_process_encoder_utilization_ratio",
        otlp: "gpuscope.process.gpu.utilization",
        otlp_attributes: &[("gpuscope.resource", "encoder")],
        unit: Ratio,
        kind: Gauge,
        help: "Share of the GPU's video encoder time the process used.",
        accessor: field!(Process, encoder_utilization_ratio),
        ..base(Group::Process)
    },
    MetricDef {
        prometheus: "gpuscope_process_decoder_utilization_ratio",
        otlp: "gpuscope.process.gpu.utilization",
        otlp_attributes: &[("gpuscope.resource", "decoder")],
        unit: Ratio,
        kind: Gauge,
        help: "Share of the GPU's video decoder time the process used.",
        accessor: field!(Process, decoder_utilization_ratio),
        ..base(Group::Process)
    },
    MetricDef {
        prometheus: "gpuscope_process_cpu_seconds_total",
        otlp: "process.cpu.time",
        unit: Seconds,
        kind: Counter,
        help: "CPU time the process used.",
        accessor: field!(Process, cpu_seconds_total),
        ..base(Group::Process)
    },
    MetricDef {
        prometheus: "gpuscope_process_running_seconds",
        otlp: "process.uptime",
        unit: Seconds,
        kind: Gauge,
        help: "Time since the process started.",
        accessor: field!(Process, running_seconds),
        ..base(Group::Process)
    },
    MetricDef {
        prometheus: "gpuscope_process_resident_memory_bytes",
        otlp: "process.memory.usage",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Resident set size of the process.",
        accessor: field!(Process, rss_bytes),
        ..base(Group::Process)
    },
    // ---- kernel profiles (CUPTI injection library), one series per profiled process
    MetricDef {
        prometheus: "gpuscope_process_kernel_profile_windows_total",
        otlp: "gpuscope.process.kernel.profile.windows",
        unit: Count,
        kind: Counter,
        help: "Profiling windows the CUPTI injection library reported for the process.",
        accessor: value!(Profile, windows_total),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_profile_window_seconds",
        otlp: "gpuscope.process.kernel.profile.window.duration",
        unit: Seconds,
        kind: Gauge,
        help: "Length of the process's latest profiling window.",
        accessor: value!(Profile, window_seconds),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_profile_period_seconds",
        otlp: "gpuscope.process.kernel.profile.period",
        unit: Seconds,
        kind: Gauge,
        help: "Time between profiling window starts in effect (the library stretches it to keep its overhead in budget).",
        accessor: value!(Profile, period_seconds),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_profile_window_end_timestamp_seconds",
        otlp: "gpuscope.process.kernel.profile.window.end",
        unit: Seconds,
        kind: Gauge,
        help: "When the process's latest profiling window ended, Unix time.",
        accessor: Accessor::Profile(
            |p| Some(p.window_end_unix_ms as f64 / 1000.0),
            |p, v| p.window_end_unix_ms = MetricValue::from_f64(v * 1000.0),
        ),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_launches_per_second",
        otlp: "gpuscope.process.kernel.launch.rate",
        unit: PerSecond,
        kind: Gauge,
        help: "Kernel launches per second (driver API launches and graph launches), counted between profiling windows too.",
        accessor: field!(Profile, launches_per_second),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_time_seconds",
        otlp: "gpuscope.process.kernel.time",
        unit: Seconds,
        kind: Gauge,
        help: "Kernel time in the latest profiling window, all kernels on all the process's GPUs.",
        accessor: value!(Profile, kernel_seconds),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_executions",
        otlp: "gpuscope.process.kernel.executions",
        unit: Count,
        kind: Gauge,
        help: "Kernels that completed in the latest profiling window.",
        accessor: value!(Profile, kernel_count),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_median_duration_seconds",
        otlp: "gpuscope.process.kernel.duration.median",
        unit: Seconds,
        kind: Gauge,
        help: "Median kernel duration in the latest profiling window (the floor of its power-of-two bucket).",
        accessor: field!(Profile, median_kernel_seconds),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_graph_executions",
        otlp: "gpuscope.process.kernel.graph.executions",
        unit: Count,
        kind: Gauge,
        help: "Kernels launched from CUDA graphs in the latest profiling window.",
        accessor: value!(Profile, graph_kernels),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_pageable_copies",
        otlp: "gpuscope.process.kernel.memcpy.pageable.copies",
        unit: Count,
        kind: Gauge,
        help: "Copies from or to pageable host memory in the latest profiling window.",
        accessor: value!(Profile, pageable_copies),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_pageable_copy_bytes",
        otlp: "gpuscope.process.kernel.memcpy.pageable.size",
        unit: Bytes,
        kind: Gauge,
        help: "Bytes copied from or to pageable host memory in the latest profiling window.",
        accessor: value!(Profile, pageable_copy_bytes),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_async_pageable_copies",
        otlp: "gpuscope.process.kernel.memcpy.pageable.async_copies",
        unit: Count,
        kind: Gauge,
        help: "Asynchronous copies from or to pageable host memory in the latest profiling window (they run synchronously).",
        accessor: value!(Profile, async_pageable_copies),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_sync_seconds",
        otlp: "gpuscope.process.kernel.sync.time",
        unit: Seconds,
        kind: Gauge,
        help: "Host time in CUDA synchronization calls in the latest profiling window.",
        accessor: value!(Profile, sync_seconds),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_gpu_gap_max_seconds",
        otlp: "gpuscope.process.kernel.gpu.gap.max",
        unit: Seconds,
        kind: Gauge,
        help: "Longest idle gap between kernels on any of the process's GPUs in the latest profiling window.",
        accessor: field!(Profile, gpu_gap_max_seconds),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_gpu_gap_seconds",
        otlp: "gpuscope.process.kernel.gpu.gap.time",
        unit: Seconds,
        kind: Gauge,
        help: "Idle time between kernels in the latest profiling window (the GPU of the process with the most).",
        accessor: field!(Profile, gpu_gap_seconds),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_profiler_overhead_seconds_total",
        otlp: "gpuscope.process.kernel.profiler.overhead",
        unit: Seconds,
        kind: Counter,
        help: "Time the CUPTI injection library spent in its callbacks in the process.",
        accessor: value!(Profile, overhead_seconds_total),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_profiler_overhead_ratio",
        otlp: "gpuscope.process.kernel.profiler.cpu_share",
        unit: Ratio,
        kind: Gauge,
        help: "The injection library's callback time as a share of the process's CPU time.",
        accessor: field!(Profile, overhead_cpu_ratio),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_profiler_dropped_records_total",
        otlp: "gpuscope.process.kernel.profiler.dropped_records",
        unit: Count,
        kind: Counter,
        help: "Activity records CUPTI dropped in the process because its buffers were full.",
        accessor: value!(Profile, dropped_records_total),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_profiler_summaries_dropped_total",
        otlp: "gpuscope.process.kernel.profiler.summaries_dropped",
        unit: Count,
        kind: Counter,
        help: "Window summaries the injection library could not deliver to the agent.",
        accessor: value!(Profile, summaries_dropped_total),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_class_time_seconds",
        otlp: "gpuscope.process.kernel.class.time",
        unit: Seconds,
        kind: Gauge,
        help: "Kernel time by kernel class (kind, pipe, precision) in the latest profiling window.",
        accessor: value!(ProfileClass, seconds),
        ..base(Group::Kernel)
    },
    MetricDef {
        prometheus: "gpuscope_process_kernel_class_executions",
        otlp: "gpuscope.process.kernel.class.executions",
        unit: Count,
        kind: Gauge,
        help: "Kernels by kernel class (kind, pipe, precision) that completed in the latest profiling window.",
        accessor: value!(ProfileClass, count),
        ..base(Group::Kernel)
    },
    // ---- host CPU and memory
    MetricDef {
        prometheus: "gpuscope_host_cpu_busy_ratio",
        otlp: "system.cpu.utilization",
        otlp_attributes: &[("cpu.mode", "busy")],
        unit: Ratio,
        kind: Gauge,
        help: "Busy fraction over all cores (not idle, not iowait).",
        accessor: field!(Host, cpu_busy_ratio),
        ..base(Group::HostCpu)
    },
    MetricDef {
        prometheus: "gpuscope_host_cpu_iowait_ratio",
        otlp: "system.cpu.utilization",
        otlp_attributes: &[("cpu.mode", "iowait")],
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of CPU time waiting on I/O.",
        accessor: field!(Host, cpu_iowait_ratio),
        ..base(Group::HostCpu)
    },
    MetricDef {
        prometheus: "gpuscope_host_cpu_steal_ratio",
        otlp: "system.cpu.utilization",
        otlp_attributes: &[("cpu.mode", "steal")],
        unit: Ratio,
        kind: Gauge,
        help: "Fraction of CPU time stolen by the hypervisor.",
        accessor: field!(Host, cpu_steal_ratio),
        ..base(Group::HostCpu)
    },
    MetricDef {
        prometheus: "gpuscope_host_load1",
        otlp: "system.cpu.load_average.1m",
        unit: Count,
        kind: Gauge,
        help: "One-minute load average.",
        accessor: field!(Host, load1),
        ..base(Group::HostCpu)
    },
    MetricDef {
        prometheus: "gpuscope_host_load5",
        otlp: "system.cpu.load_average.5m",
        unit: Count,
        kind: Gauge,
        help: "Five-minute load average.",
        accessor: field!(Host, load5),
        ..base(Group::HostCpu)
    },
    MetricDef {
        prometheus: "gpuscope_host_load15",
        otlp: "system.cpu.load_average.15m",
        unit: Count,
        kind: Gauge,
        help: "Fifteen-minute load average.",
        accessor: field!(Host, load15),
        ..base(Group::HostCpu)
    },
    MetricDef {
        prometheus: "gpuscope_host_uptime_seconds",
        otlp: "system.uptime",
        unit: Seconds,
        kind: Gauge,
        help: "Time since the host booted.",
        accessor: field!(Host, uptime_seconds),
        ..base(Group::HostCpu)
    },
    MetricDef {
        prometheus: "gpuscope_host_memory_total_bytes",
        otlp: "system.memory.limit",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Total memory.",
        accessor: field!(Host, memory_total_bytes),
        ..base(Group::HostMemory)
    },
    MetricDef {
        prometheus: "gpuscope_host_memory_available_bytes",
        otlp: "gpuscope.host.memory.available",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Memory available for new work.",
        accessor: field!(Host, memory_available_bytes),
        ..base(Group::HostMemory)
    },
    MetricDef {
        prometheus: "gpuscope_host_swap_total_bytes",
        otlp: "gpuscope.host.swap.limit",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Swap space (0 on a host without swap).",
        accessor: field!(Host, swap_total_bytes),
        ..base(Group::HostMemory)
    },
    MetricDef {
        prometheus: "gpuscope_host_swap_used_bytes",
        otlp: "system.paging.usage",
        otlp_attributes: &[("system.paging.state", "used")],
        unit: Bytes,
        kind: UpDownCounter,
        help: "Swap in use.",
        accessor: field!(Host, swap_used_bytes),
        ..base(Group::HostMemory)
    },
    MetricDef {
        prometheus: "gpuscope_host_cpu_core_busy_ratio",
        otlp: "gpuscope.host.cpu.core.utilization",
        otlp_attributes: &[("cpu.mode", "busy")],
        unit: Ratio,
        kind: Gauge,
        help: "Busy fraction of one core.",
        accessor: field!(Cpu, busy_ratio),
        ..base(Group::HostCpu)
    },
    MetricDef {
        prometheus: "gpuscope_host_cpu_core_iowait_ratio",
        otlp: "gpuscope.host.cpu.core.utilization",
        otlp_attributes: &[("cpu.mode", "iowait")],
        unit: Ratio,
        kind: Gauge,
        help: "I/O wait fraction of one core.",
        accessor: field!(Cpu, iowait_ratio),
        ..base(Group::HostCpu)
    },
    // ---- network
    MetricDef {
        prometheus: "gpuscope_host_network_speed_bytes_per_second",
        otlp: "gpuscope.host.network.speed",
        unit: BytesPerSecond,
        kind: Gauge,
        help: "Link speed of the interface.",
        accessor: field!(Nic, speed_bytes_per_second),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_receive_bytes_total",
        otlp: "system.network.io",
        otlp_attributes: &[("network.io.direction", "receive")],
        unit: Bytes,
        kind: Counter,
        help: "Bytes received.",
        accessor: field!(Nic, rx_bytes_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_transmit_bytes_total",
        otlp: "system.network.io",
        otlp_attributes: &[("network.io.direction", "transmit")],
        unit: Bytes,
        kind: Counter,
        help: "Bytes sent.",
        accessor: field!(Nic, tx_bytes_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_receive_packets_total",
        otlp: "system.network.packet.count",
        otlp_attributes: &[("network.io.direction", "receive")],
        unit: Count,
        kind: Counter,
        help: "Packets received.",
        accessor: field!(Nic, rx_packets_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_transmit_packets_total",
        otlp: "system.network.packet.count",
        otlp_attributes: &[("network.io.direction", "transmit")],
        unit: Count,
        kind: Counter,
        help: "Packets sent.",
        accessor: field!(Nic, tx_packets_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_receive_errors_total",
        otlp: "system.network.errors",
        otlp_attributes: &[("network.io.direction", "receive")],
        unit: Count,
        kind: Counter,
        help: "Receive errors.",
        accessor: field!(Nic, rx_errors_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_transmit_errors_total",
        otlp: "system.network.errors",
        otlp_attributes: &[("network.io.direction", "transmit")],
        unit: Count,
        kind: Counter,
        help: "Transmit errors.",
        accessor: field!(Nic, tx_errors_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_receive_dropped_total",
        otlp: "system.network.packet.dropped",
        otlp_attributes: &[("network.io.direction", "receive")],
        unit: Count,
        kind: Counter,
        help: "Received packets dropped.",
        accessor: field!(Nic, rx_dropped_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_receive_bytes_per_second",
        otlp: "gpuscope.host.network.throughput",
        otlp_attributes: &[("network.io.direction", "receive")],
        unit: BytesPerSecond,
        kind: Gauge,
        help: "Receive rate over the last sampling interval.",
        accessor: field!(Nic, rx_bytes_per_second),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_transmit_bytes_per_second",
        otlp: "gpuscope.host.network.throughput",
        otlp_attributes: &[("network.io.direction", "transmit")],
        unit: BytesPerSecond,
        kind: Gauge,
        help: "Transmit rate over the last sampling interval.",
        accessor: field!(Nic, tx_bytes_per_second),
        ..base(Group::Network)
    },
    // ---- network link health
    MetricDef {
        prometheus: "gpuscope_host_network_speed_max_bytes_per_second",
        otlp: "gpuscope.host.network.speed.max",
        unit: BytesPerSecond,
        kind: Gauge,
        help: "The fastest rate the adapter can train at (InfiniBand: from the HCA model).",
        accessor: field!(Nic, speed_max_bytes_per_second),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_link_width",
        otlp: "gpuscope.host.network.link.width",
        unit: Count,
        kind: Gauge,
        help: "Lanes the link trained at (InfiniBand 4X is 4).",
        accessor: field!(Nic, link_width),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_link_width_max",
        otlp: "gpuscope.host.network.link.width.max",
        unit: Count,
        kind: Gauge,
        help: "Lanes the adapter supports (InfiniBand: from the HCA model).",
        accessor: field!(Nic, link_width_max),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_up",
        otlp: "gpuscope.host.network.up",
        unit: State,
        kind: Gauge,
        help: "1 when the link carries traffic (Ethernet operstate up, InfiniBand port ACTIVE), else 0.",
        accessor: field!(Nic, up),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_infiniband_state",
        otlp: "gpuscope.host.network.infiniband.state",
        unit: State,
        kind: Gauge,
        help: "InfiniBand logical port state (1 DOWN, 2 INIT, 3 ARMED, 4 ACTIVE, 5 ACTIVE_DEFER).",
        accessor: field!(Nic, ib_state),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_infiniband_physical_state",
        otlp: "gpuscope.host.network.infiniband.physical_state",
        unit: State,
        kind: Gauge,
        help: "InfiniBand physical port state (2 Polling, 3 Disabled, 5 LinkUp, 6 LinkErrorRecovery, ...).",
        accessor: field!(Nic, ib_phys_state),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_carrier_changes_total",
        otlp: "gpuscope.host.network.carrier_changes",
        unit: Count,
        kind: Counter,
        help: "Times the Ethernet carrier went up or down.",
        accessor: field!(Nic, carrier_changes_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_infiniband_symbol_errors_total",
        otlp: "gpuscope.host.network.infiniband.errors",
        otlp_attributes: &[("error.type", "symbol")],
        unit: Count,
        kind: Counter,
        help: "InfiniBand symbol errors (bit errors on a lane).",
        accessor: field!(Nic, symbol_errors_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_infiniband_link_error_recovery_total",
        otlp: "gpuscope.host.network.infiniband.errors",
        otlp_attributes: &[("error.type", "link_error_recovery")],
        unit: Count,
        kind: Counter,
        help: "InfiniBand link error recoveries (the link retrained).",
        accessor: field!(Nic, link_error_recovery_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_infiniband_link_downed_total",
        otlp: "gpuscope.host.network.infiniband.errors",
        otlp_attributes: &[("error.type", "link_downed")],
        unit: Count,
        kind: Counter,
        help: "InfiniBand link-down events.",
        accessor: field!(Nic, link_downed_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_infiniband_link_integrity_errors_total",
        otlp: "gpuscope.host.network.infiniband.errors",
        otlp_attributes: &[("error.type", "link_integrity")],
        unit: Count,
        kind: Counter,
        help: "InfiniBand local link integrity errors.",
        accessor: field!(Nic, link_integrity_errors_total),
        ..base(Group::Network)
    },
    MetricDef {
        prometheus: "gpuscope_host_network_infiniband_buffer_overrun_errors_total",
        otlp: "gpuscope.host.network.infiniband.errors",
        otlp_attributes: &[("error.type", "buffer_overrun")],
        unit: Count,
        kind: Counter,
        help: "InfiniBand excessive buffer overrun errors.",
        accessor: field!(Nic, buffer_overrun_errors_total),
        ..base(Group::Network)
    },
    // ---- storage
    MetricDef {
        prometheus: "gpuscope_host_disk_read_bytes_total",
        otlp: "system.disk.io",
        otlp_attributes: &[("disk.io.direction", "read")],
        unit: Bytes,
        kind: Counter,
        help: "Bytes read.",
        accessor: field!(Disk, read_bytes_total),
        ..base(Group::Disk)
    },
    MetricDef {
        prometheus: "gpuscope_host_disk_written_bytes_total",
        otlp: "system.disk.io",
        otlp_attributes: &[("disk.io.direction", "write")],
        unit: Bytes,
        kind: Counter,
        help: "Bytes written.",
        accessor: field!(Disk, write_bytes_total),
        ..base(Group::Disk)
    },
    MetricDef {
        prometheus: "gpuscope_host_disk_reads_completed_total",
        otlp: "system.disk.operations",
        otlp_attributes: &[("disk.io.direction", "read")],
        unit: Count,
        kind: Counter,
        help: "Reads completed.",
        accessor: field!(Disk, reads_total),
        ..base(Group::Disk)
    },
    MetricDef {
        prometheus: "gpuscope_host_disk_writes_completed_total",
        otlp: "system.disk.operations",
        otlp_attributes: &[("disk.io.direction", "write")],
        unit: Count,
        kind: Counter,
        help: "Writes completed.",
        accessor: field!(Disk, writes_total),
        ..base(Group::Disk)
    },
    MetricDef {
        prometheus: "gpuscope_host_disk_busy_seconds_total",
        otlp: "system.disk.io_time",
        unit: Seconds,
        kind: Counter,
        help: "Time the device was busy.",
        accessor: field!(Disk, busy_seconds_total),
        ..base(Group::Disk)
    },
    MetricDef {
        prometheus: "gpuscope_host_disk_read_bytes_per_second",
        otlp: "gpuscope.host.disk.throughput",
        otlp_attributes: &[("disk.io.direction", "read")],
        unit: BytesPerSecond,
        kind: Gauge,
        help: "Read rate over the last sampling interval.",
        accessor: field!(Disk, read_bytes_per_second),
        ..base(Group::Disk)
    },
    MetricDef {
        prometheus: "gpuscope_host_disk_write_bytes_per_second",
        otlp: "gpuscope.host.disk.throughput",
        otlp_attributes: &[("disk.io.direction", "write")],
        unit: BytesPerSecond,
        kind: Gauge,
        help: "Write rate over the last sampling interval.",
        accessor: field!(Disk, write_bytes_per_second),
        ..base(Group::Disk)
    },
    MetricDef {
        prometheus: "gpuscope_host_disk_busy_ratio",
        otlp: "gpuscope.host.disk.utilization",
        unit: Ratio,
        kind: Gauge,
        help: "Busy fraction over the last sampling interval.",
        accessor: field!(Disk, busy_ratio),
        ..base(Group::Disk)
    },
    // ---- filesystems
    MetricDef {
        prometheus: "gpuscope_host_filesystem_size_bytes",
        otlp: "system.filesystem.limit",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Size of the filesystem.",
        accessor: field!(Fs, size_bytes),
        ..base(Group::Disk)
    },
    MetricDef {
        prometheus: "gpuscope_host_filesystem_free_bytes",
        otlp: "gpuscope.host.filesystem.free",
        unit: Bytes,
        kind: UpDownCounter,
        help: "Free space on the filesystem, the blocks reserved for root included.",
        accessor: field!(Fs, free_bytes),
        ..base(Group::Disk)
    },
    MetricDef {
        prometheus: "gpuscope_host_filesystem_avail_bytes",
        otlp: "system.filesystem.usage",
        otlp_attributes: &[("system.filesystem.state", "free")],
        unit: Bytes,
        kind: UpDownCounter,
        help: "Space on the filesystem available to unprivileged users.",
        accessor: field!(Fs, avail_bytes),
        ..base(Group::Disk)
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalogue::Group;
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
        let gpu_rows = CATALOGUE.iter().filter(|m| m.scope() != super::super::Scope::Mig);
        let aliases: Vec<_> = gpu_rows.filter_map(|m| m.dcgm.map(|d| d.name)).collect();
        let unique: HashSet<_> = aliases.iter().collect();
        assert_eq!(unique.len(), aliases.len());
        // A MIG row's series join the family of the GPU row with the same alias, as in
        // dcgm-exporter; kind and scale must agree.
        for m in CATALOGUE.iter().filter(|m| m.scope() == super::super::Scope::Mig) {
            let Some(a) = m.dcgm else { continue };
            let gpu = CATALOGUE
                .iter()
                .find(|g| g.scope() == super::super::Scope::Gpu && g.dcgm.map(|d| d.name) == Some(a.name));
            let g = gpu.and_then(|g| g.dcgm).unwrap_or_else(|| panic!("{} has no GPU row", a.name));
            assert_eq!((g.kind, g.scale, g.renamed, g.renamed_4_10), (a.kind, a.scale, a.renamed, a.renamed_4_10));
        }
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

    /// Each dcgm-exporter profile names every alias once; 4.9 renamed all but the ECC counters
    /// (outside its default set), the unitless state fields (DCGM 4.7 renamed only fields whose
    /// unit changed) and the PCIe rates, which 4.10 renamed.
    #[test]
    fn dcgm_profiles_name_every_alias_once() {
        use crate::catalogue::DcgmProfile;
        // A MIG row shares its GPU row's alias (checked above), so the GPU rows name them all.
        let gpu_rows = CATALOGUE.iter().filter(|m| m.scope() != super::super::Scope::Mig);
        let aliases: Vec<DcgmAlias> = gpu_rows.filter_map(|m| m.dcgm).collect();
        for p in DcgmProfile::ALL {
            let names: HashSet<_> = aliases.iter().map(|a| a.name_in(*p)).collect();
            assert_eq!(names.len(), aliases.len(), "{p:?}");
        }
        let kept: Vec<&str> = aliases.iter().filter(|a| a.renamed == a.name).map(|a| a.name).collect();
        assert_eq!(
            kept,
            [
                "DCGM_FI_PROF_PCIE_TX_BYTES",
                "DCGM_FI_PROF_PCIE_RX_BYTES",
                "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
                "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
                "DCGM_FI_DEV_MIG_MODE",
                "DCGM_FI_DEV_PERSISTENCE_MODE",
                "DCGM_FI_DEV_ECC_CURRENT",
                "DCGM_FI_DEV_ECC_PENDING",
                "DCGM_FI_DEV_PSTATE"
            ]
        );
        let renamed_4_10: Vec<&str> =
            aliases.iter().filter(|a| a.renamed_4_10 != a.renamed).map(|a| a.renamed_4_10).collect();
        assert_eq!(renamed_4_10, ["DCGM_FI_PROF_PCIE_TX_BYTES_PER_SECOND", "DCGM_FI_PROF_PCIE_RX_BYTES_PER_SECOND"]);
        // The unit changes of 4.9: %, MHz, MiB and mJ became ratio, Hz, bytes and J.
        assert_eq!(
            aliases.iter().filter(|a| a.scale != 1.0).count(),
            12,
            "our ten of NVIDIA's eleven (no NVLink total), and the fan speed (% → ratio) and video clock (MHz → Hz), outside its default set"
        );
        assert!(aliases.iter().all(|a| a.scale_in(DcgmProfile::V4_9) == 1.0));
    }

    #[test]
    fn every_row_has_a_group_and_groups_run_together() {
        // Rows stay in emission order (the golden files pin it), so a group may come in more than
        // one run; these are the ones that do, and a new row belongs next to its group.
        let mut runs: Vec<Group> = Vec::new();
        for m in CATALOGUE {
            assert!(Group::ALL.contains(&m.group), "{}", m.prometheus);
            if runs.last() != Some(&m.group) {
                runs.push(m.group);
            }
        }
        let mut split: Vec<Group> =
            Group::ALL.iter().copied().filter(|g| runs.iter().filter(|r| *r == g).count() > 1).collect();
        split.sort();
        assert_eq!(split, vec![Group::State, Group::HostCpu], "runs: {runs:?}");
        for g in Group::ALL {
            assert!(CATALOGUE.iter().any(|m| m.group == *g), "{} has no signal", g.as_str());
        }
    }

    #[test]
    fn the_units_in_the_names_are_the_units() {
        let suffixed = [Ratio, Bytes, BytesPerSecond, Celsius, Watts, Joules, Hertz, Seconds];
        for m in CATALOGUE {
            let base = m.prometheus.strip_suffix("_total").unwrap_or(m.prometheus);
            for u in suffixed {
                if let Some(suffix) = u.prometheus_suffix()
                    && base.ends_with(suffix)
                {
                    assert_eq!(m.unit, u, "{} ends in {suffix}", m.prometheus);
                }
            }
        }
    }

    #[test]
    fn gpu_identity_rides_on_gpu_up_only() {
        let rows: Vec<_> = CATALOGUE.iter().filter(|m| m.carries_gpu_identity).map(|m| m.prometheus).collect();
        assert_eq!(rows, vec!["gpuscope_gpu_up"]);
        let up = CATALOGUE.iter().find(|m| m.carries_gpu_identity).map(|m| m.accessor.scope());
        assert_eq!(up, Some(super::super::Scope::Gpu));
    }

    #[test]
    fn dcgm_aliases_are_on_unlabelled_gpu_rows() {
        for m in CATALOGUE.iter().filter(|m| m.dcgm.is_some()) {
            assert!(
                matches!(m.accessor, Accessor::Gpu(..) | Accessor::Mig(..)),
                "{}: dcgm-exporter has per-GPU and per-MIG-instance series only",
                m.prometheus
            );
        }
    }
}
