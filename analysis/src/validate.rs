//! Physical limits, in one place: values no device can produce are dropped (and counted by the
//! caller) before any rule sees them. Rates the agent measured over wall time are compared in
//! workload time (after the time scale), so an accelerated simulation is judged by the same
//! limits as a real node.

use gpuscope_core::{GpuSample, NodeSnapshot};

/// Why a value was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Impossible {
    /// A ratio (utilization, activity, busy fraction) above 1 or below 0.
    Ratio,
    /// A network port's rate above its link speed.
    NicRate,
    /// A PCIe rate above what the link's generation and width carry.
    PcieRate,
    /// An NVMe device busy for more than all of the time.
    DiskBusy,
    /// More memory used (or available) than there is.
    Memory,
    /// A negative or non-finite rate.
    Rate,
}

impl Impossible {
    /// Every reason, in the order the metrics list them.
    pub const ALL: [Impossible; 6] = [
        Impossible::Ratio,
        Impossible::NicRate,
        Impossible::PcieRate,
        Impossible::DiskBusy,
        Impossible::Memory,
        Impossible::Rate,
    ];

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Impossible::Ratio => "ratio_out_of_range",
            Impossible::NicRate => "nic_rate_above_link_speed",
            Impossible::PcieRate => "pcie_rate_above_link",
            Impossible::DiskBusy => "disk_busy_above_one",
            Impossible::Memory => "memory_above_total",
            Impossible::Rate => "rate_not_finite_or_negative",
        }
    }
}

/// Measurement slack: a rate or a busy fraction measured over an interval whose ends are read a
/// little apart can exceed its limit by a few percent. Within it the value is clamped to the
/// limit; beyond it, dropped.
pub const SLACK: f64 = 1.05;

/// PCIe payload bandwidth per lane and direction, bytes/s, by generation (after encoding).
fn pcie_lane_bytes_per_s(generation: u32) -> Option<f64> {
    Some(match generation {
        1 => 0.25e9,
        2 => 0.5e9,
        3 => 0.985e9,
        4 => 1.969e9,
        5 => 3.938e9,
        6 => 7.877e9,
        _ => return None,
    })
}

/// Checks `v` (in workload units: the stored value times `scale`) against `limit`: clamped to
/// it within the slack, dropped beyond. Pushes the reason of a drop.
fn limit(v: &mut Option<f64>, scale: f64, limit: f64, why: Impossible, out: &mut Vec<Impossible>) {
    let Some(x) = *v else { return };
    if !x.is_finite() || x < 0.0 {
        *v = None;
        out.push(if x.is_finite() && why == Impossible::Ratio { Impossible::Ratio } else { Impossible::Rate });
        return;
    }
    let w = x * scale;
    if w > limit * SLACK {
        *v = None;
        out.push(why);
    } else if w > limit {
        *v = Some(limit / scale);
    }
}

fn ratio(v: &mut Option<f64>, out: &mut Vec<Impossible>) {
    limit(v, 1.0, 1.0, Impossible::Ratio, out);
}

fn gpu(g: &mut GpuSample, scale: f64, out: &mut Vec<Impossible>) {
    for v in [
        &mut g.utilization_ratio,
        &mut g.memory_copy_utilization_ratio,
        &mut g.encoder_utilization_ratio,
        &mut g.decoder_utilization_ratio,
        &mut g.graphics_active_ratio,
        &mut g.sm_active_ratio,
        &mut g.sm_occupancy_ratio,
        &mut g.tensor_active_ratio,
        &mut g.fp64_active_ratio,
        &mut g.fp32_active_ratio,
        &mut g.fp16_active_ratio,
        &mut g.dram_active_ratio,
        &mut g.fan_speed_ratio,
    ] {
        ratio(v, out);
    }
    if let (Some(used), Some(total)) = (g.memory_used_bytes, g.memory_total_bytes)
        && used > total
    {
        g.memory_used_bytes = None;
        out.push(Impossible::Memory);
    }
    let link = g.pcie_link_generation.and_then(pcie_lane_bytes_per_s).zip(g.pcie_link_width);
    for v in [&mut g.pcie_rx_bytes_per_second, &mut g.pcie_tx_bytes_per_second] {
        match link {
            Some((lane, width)) if width > 0 => limit(v, scale, lane * f64::from(width), Impossible::PcieRate, out),
            _ => limit(v, scale, f64::INFINITY, Impossible::Rate, out),
        }
    }
    for v in [&mut g.nvlink_rx_bytes_per_second, &mut g.nvlink_tx_bytes_per_second] {
        limit(v, scale, f64::INFINITY, Impossible::Rate, out);
    }
}

/// Drops (or clamps, within [`SLACK`]) the values of `s` no device can produce, `scale` being
/// wall seconds per workload second; returns why, one entry per value dropped.
pub fn sanitize(s: &mut NodeSnapshot, scale: f64) -> Vec<Impossible> {
    let mut out = Vec::new();
    let scale = if scale.is_finite() && scale > 0.0 { scale } else { 1.0 };
    for g in &mut s.gpus {
        gpu(g, scale, &mut out);
    }
    for p in &mut s.processes {
        ratio(&mut p.sm_utilization_ratio, &mut out);
        ratio(&mut p.memory_utilization_ratio, &mut out);
        ratio(&mut p.encoder_utilization_ratio, &mut out);
        ratio(&mut p.decoder_utilization_ratio, &mut out);
    }
    if let Some(h) = &mut s.host {
        for v in [&mut h.cpu_busy_ratio, &mut h.cpu_iowait_ratio, &mut h.cpu_steal_ratio] {
            ratio(v, &mut out);
        }
        for c in &mut h.cpus {
            ratio(&mut c.busy_ratio, &mut out);
            ratio(&mut c.iowait_ratio, &mut out);
        }
        if let (Some(avail), Some(total)) = (h.memory_available_bytes, h.memory_total_bytes)
            && avail > total
        {
            h.memory_available_bytes = None;
            out.push(Impossible::Memory);
        }
        for n in &mut h.nics {
            let speed = n.speed_bytes_per_second.filter(|s| *s > 0.0);
            for v in [&mut n.rx_bytes_per_second, &mut n.tx_bytes_per_second] {
                match speed {
                    Some(sp) => limit(v, scale, sp, Impossible::NicRate, &mut out),
                    None => limit(v, scale, f64::INFINITY, Impossible::Rate, &mut out),
                }
            }
        }
        for d in &mut h.disks {
            // The agent measures busy time over wall time: in workload time it is the same
            // fraction times the scale, at most all of the time.
            limit(&mut d.busy_ratio, scale, 1.0, Impossible::DiskBusy, &mut out);
            for v in [&mut d.read_bytes_per_second, &mut d.write_bytes_per_second] {
                limit(v, scale, f64::INFINITY, Impossible::Rate, &mut out);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpuscope_core::{DiskSample, HostSample, NicSample};

    fn node() -> NodeSnapshot {
        NodeSnapshot {
            gpus: vec![GpuSample {
                utilization_ratio: Some(1.2),
                sm_active_ratio: Some(1.03),
                tensor_active_ratio: Some(0.5),
                memory_used_bytes: Some(90),
                memory_total_bytes: Some(80),
                pcie_link_generation: Some(4),
                pcie_link_width: Some(16),
                // Gen4 x16 carries 31.5 GB/s per direction.
                pcie_rx_bytes_per_second: Some(40e9),
                pcie_tx_bytes_per_second: Some(31e9),
                ..GpuSample::default()
            }],
            host: Some(HostSample {
                nics: vec![NicSample {
                    name: "ib0".into(),
                    speed_bytes_per_second: Some(50e9),
                    rx_bytes_per_second: Some(80e9),
                    tx_bytes_per_second: Some(51e9),
                    ..NicSample::default()
                }],
                disks: vec![DiskSample { name: "nvme0n1".into(), busy_ratio: Some(6.0), ..DiskSample::default() }],
                ..HostSample::default()
            }),
            ..NodeSnapshot::default()
        }
    }

    #[test]
    fn impossible_values_are_dropped_and_near_misses_clamped() {
        let mut s = node();
        let why = sanitize(&mut s, 1.0);
        let g = &s.gpus[0];
        assert_eq!(g.utilization_ratio, None, "120 % utilization");
        assert_eq!(g.sm_active_ratio, Some(1.0), "3 % over: measurement slack");
        assert_eq!(g.tensor_active_ratio, Some(0.5));
        assert_eq!(g.memory_used_bytes, None);
        assert_eq!(g.pcie_rx_bytes_per_second, None, "40 GB/s on a Gen4 x16 link");
        assert_eq!(g.pcie_tx_bytes_per_second, Some(31e9));
        let h = s.host.as_ref().unwrap();
        assert_eq!(h.nics[0].rx_bytes_per_second, None, "80 GB/s on a 400 Gb/s port");
        assert_eq!(h.nics[0].tx_bytes_per_second, Some(50e9), "2 % over: clamped to the link speed");
        assert_eq!(h.disks[0].busy_ratio, None);
        let mut why = why;
        why.sort();
        assert_eq!(
            why,
            vec![
                Impossible::Ratio,
                Impossible::NicRate,
                Impossible::PcieRate,
                Impossible::DiskBusy,
                Impossible::Memory
            ]
        );
    }

    /// At 20x speed the agent measures 20x the rates over wall time: the limits apply to the
    /// workload's rates, after the time scale.
    #[test]
    fn limits_apply_after_the_time_scale() {
        let mut s = node();
        sanitize(&mut s, 0.05);
        let h = s.host.as_ref().unwrap();
        assert_eq!(h.disks[0].busy_ratio, Some(6.0), "30 % busy in workload time");
        assert_eq!(h.nics[0].rx_bytes_per_second, Some(80e9), "4 GB/s in workload time");
        assert_eq!(s.gpus[0].utilization_ratio, None, "a ratio is not a rate: no scaling");
    }
}
