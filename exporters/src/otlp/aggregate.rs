//! One point per series per push interval: gauges become their mean over the interval (clock
//! event reasons thereby become fractions of time, rounded to the bitmask), counters and
//! identity come from the newest sample.

use gpuscope_core::NodeSnapshot;
use gpuscope_core::catalogue::{Accessor, CATALOGUE, MetricKind};

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

/// Aggregates samples of one node (oldest first) into one snapshot stamped with the newest time.
pub fn aggregate(samples: &[NodeSnapshot]) -> Option<NodeSnapshot> {
    let mut out = samples.last()?.clone();
    if samples.len() == 1 {
        return Some(out);
    }
    for m in CATALOGUE.iter().filter(|m| m.kind == MetricKind::Gauge) {
        match m.accessor {
            Accessor::Gpu(get, set) => {
                for g in out.gpus.iter_mut().filter(|g| !g.lost) {
                    let v: Vec<f64> = samples
                        .iter()
                        .filter_map(|s| s.gpus.iter().find(|x| x.index == g.index))
                        .filter_map(get)
                        .collect();
                    if let Some(x) = mean(&v) {
                        set(g, x);
                    }
                }
            }
            Accessor::Process(get, set) => {
                for p in &mut out.processes {
                    let v: Vec<f64> = samples
                        .iter()
                        .filter_map(|s| s.processes.iter().find(|x| x.pid == p.pid && x.gpu_index == p.gpu_index))
                        .filter_map(get)
                        .collect();
                    if let Some(x) = mean(&v) {
                        set(p, x);
                    }
                }
            }
            Accessor::Host(get, set) => {
                let v: Vec<f64> = samples.iter().filter_map(|s| s.host.as_ref()).filter_map(get).collect();
                if let (Some(h), Some(x)) = (out.host.as_mut(), mean(&v)) {
                    set(h, x);
                }
            }
            Accessor::Cpu(get, set) => {
                if let Some(h) = out.host.as_mut() {
                    for c in &mut h.cpus {
                        let v: Vec<f64> = samples
                            .iter()
                            .filter_map(|s| s.host.as_ref()?.cpus.iter().find(|x| x.cpu == c.cpu))
                            .filter_map(get)
                            .collect();
                        if let Some(x) = mean(&v) {
                            set(c, x);
                        }
                    }
                }
            }
            Accessor::Nic(get, set) => {
                if let Some(h) = out.host.as_mut() {
                    for n in &mut h.nics {
                        let v: Vec<f64> = samples
                            .iter()
                            .filter_map(|s| s.host.as_ref()?.nics.iter().find(|x| x.name == n.name))
                            .filter_map(get)
                            .collect();
                        if let Some(x) = mean(&v) {
                            set(n, x);
                        }
                    }
                }
            }
            Accessor::Disk(get, set) => {
                if let Some(h) = out.host.as_mut() {
                    for d in &mut h.disks {
                        let v: Vec<f64> = samples
                            .iter()
                            .filter_map(|s| s.host.as_ref()?.disks.iter().find(|x| x.name == d.name))
                            .filter_map(get)
                            .collect();
                        if let Some(x) = mean(&v) {
                            set(d, x);
                        }
                    }
                }
            }
            Accessor::GpuLabelled(get, set) => {
                for g in out.gpus.iter_mut().filter(|g| !g.lost) {
                    let per: Vec<Vec<(String, f64)>> =
                        samples.iter().filter_map(|s| s.gpus.iter().find(|x| x.index == g.index)).map(get).collect();
                    for (label, _) in get(g) {
                        let v: Vec<f64> =
                            per.iter().filter_map(|p| p.iter().find(|(l, _)| *l == label).map(|x| x.1)).collect();
                        if let Some(x) = mean(&v) {
                            set(g, &label, x);
                        }
                    }
                }
            }
            Accessor::NvLink(..) => {}
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpuscope_core::GpuSample;

    #[test]
    fn gauges_average_counters_take_the_newest() {
        let s = |t: u64, power: f64, energy: f64, reasons: u64| NodeSnapshot {
            timestamp_ms: t,
            gpus: vec![GpuSample {
                index: 0,
                power_watts: Some(power),
                energy_joules: Some(energy),
                clock_event_reasons: Some(reasons),
                ..GpuSample::default()
            }],
            ..NodeSnapshot::default()
        };
        let a = aggregate(&[s(1000, 100.0, 10.0, 0x4), s(2000, 200.0, 20.0, 0x4), s(3000, 300.0, 30.0, 0)])
            .expect("aggregate");
        assert_eq!(a.timestamp_ms, 3000);
        assert_eq!(a.gpus[0].power_watts, Some(200.0));
        assert_eq!(a.gpus[0].energy_joules, Some(30.0));
        assert_eq!(a.gpus[0].clock_event_reasons, Some(0x4), "power cap held two thirds of the interval");
    }
}
