//! `comm-bound`: collective communication saturates NVLink or a NIC while the SMs wait.

use super::job_gpu_activity;
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, node_hit, pct};
use gpuscope_core::Severity;

settings! {
    /// SM activity (or utilization) of the job's GPUs below this is "the SMs wait".
    sm_active_low = 0.5,
    /// NVLink or NIC traffic at or above this fraction of capacity.
    link_high = 0.7,
    /// Per-link NVLink bandwidth per direction, bytes/s (NVLink 2–4: 25 GB/s).
    nvlink_link_bytes_per_second = 25e9,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "comm-bound",
    title: "collective communication dominates",
    scope: RuleScope::Node,
    severity: Severity::Warning,
    timing: STD,
    condition: "sm_active < 0.5 and NVLink or a NIC >= 0.7 of its bandwidth",
    recommendation: "Collective communication dominates. Overlap communication with compute (bucket sizes in DDP/FSDP), gradient accumulation, compression, check topology.",
    action: None,
    workloads: "any",
    explained_by_waiting: true,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.comm_bound;
    let mut out = Vec::new();
    for (node, w, s) in c.latest() {
        let Some((act, name, gpus)) = job_gpu_activity(c, w, s) else { continue };
        if act >= t.sm_active_low {
            continue;
        }
        let mut busiest: Option<(String, f64)> = None;
        let mut consider = |what: String, frac: f64| {
            if busiest.as_ref().is_none_or(|b| frac > b.1) {
                busiest = Some((what, frac));
            }
        };
        for g in s.gpus.iter().filter(|g| !g.lost) {
            let links = g.nvlinks.iter().filter(|l| l.active == Some(true)).count();
            if links == 0 {
                continue;
            }
            let cap = links as f64 * t.nvlink_link_bytes_per_second;
            for f in [
                |g: &gpuscope_core::GpuSample| g.nvlink_rx_bytes_per_second,
                |g: &gpuscope_core::GpuSample| g.nvlink_tx_bytes_per_second,
            ] {
                if let Some(r) = w.gpu_mean(g.index, c.now_ms, c.span(), f) {
                    consider(format!("nvlink:gpu{}", g.index), c.workload_rate(r) / cap);
                }
            }
        }
        for nic in s.host.as_ref().map(|h| h.nics.as_slice()).unwrap_or_default() {
            let Some(speed) = nic.speed_bytes_per_second else { continue };
            for rx in [true, false] {
                let r = w.host_mean(c.now_ms, c.span(), |h| {
                    h.nics
                        .iter()
                        .find(|n| n.name == nic.name)
                        .and_then(|n| if rx { n.rx_bytes_per_second } else { n.tx_bytes_per_second })
                });
                if let Some(r) = r {
                    consider(format!("nic:{}", nic.name), c.workload_rate(r) / speed);
                }
            }
        }
        if let Some((what, frac)) = busiest.filter(|b| b.1 >= t.link_high) {
            out.push(node_hit(
                node,
                s,
                gpus,
                format!("Communication saturates {what} ({} of its bandwidth) while {name} is {}", pct(frac), pct(act)),
                vec![ev(&format!("{what}_fraction"), frac, t.link_high), ev(name, act, t.sm_active_low)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{GpuSample, HostSample, NicKind, NicSample, NodeSnapshot, NvLinkSample};

    /// A 100 Gb/s InfiniBand NIC receiving `rx_fraction` of its speed.
    fn nic(sm: Option<f64>, speed: Option<f64>, rx_fraction: f64) -> crate::window::NodeWindow {
        let nic = NicSample {
            name: "ib0".into(),
            kind: NicKind::Infiniband,
            speed_bytes_per_second: speed,
            rx_bytes_per_second: Some(rx_fraction * 12.5e9),
            tx_bytes_per_second: Some(0.0),
            ..NicSample::default()
        };
        steady(busy_host("n0", sm, HostSample { nics: vec![nic], ..HostSample::default() }))
    }

    /// GPU 0 with two active NVLinks sending `bytes_per_second`.
    fn nvlink(bytes_per_second: f64) -> crate::window::NodeWindow {
        let link = |link| NvLinkSample { link, active: Some(true), ..NvLinkSample::default() };
        let g = GpuSample {
            sm_active_ratio: Some(0.2),
            nvlinks: vec![link(0), link(1)],
            nvlink_tx_bytes_per_second: Some(bytes_per_second),
            ..gpu(0)
        };
        steady(NodeSnapshot { processes: vec![process(0, 1 << 30)], ..node("n0", vec![g]) })
    }

    #[test]
    fn a_nic_just_below_the_threshold_is_not_a_hit() {
        assert!(eval("comm-bound", &nic(Some(0.2), Some(12.5e9), 0.69)).is_empty());
        assert!(eval("comm-bound", &nic(Some(0.51), Some(12.5e9), 1.0)).is_empty(), "the SMs are busy");
    }

    #[test]
    fn a_nic_just_above_is_a_hit_on_the_node() {
        let hits = eval("comm-bound", &nic(Some(0.49), Some(12.5e9), 0.71));
        assert_eq!(
            evidence(one_hit(&hits, &[0])),
            vec![("nic:ib0_fraction".into(), 0.71, 0.7), ("sm_active".into(), 0.49, 0.5)]
        );
    }

    #[test]
    fn nvlink_against_its_per_link_bandwidth() {
        assert!(eval("comm-bound", &nvlink(0.69 * 50e9)).is_empty());
        let hits = eval("comm-bound", &nvlink(0.71 * 50e9));
        assert_eq!(evidence(one_hit(&hits, &[0]))[0], ("nvlink:gpu0_fraction".into(), 0.71, 0.7));
    }

    #[test]
    fn an_absent_link_speed_or_activity_is_no_hit() {
        assert!(eval("comm-bound", &nic(Some(0.2), None, 1.0)).is_empty());
        assert!(eval("comm-bound", &nic(None, Some(12.5e9), 1.0)).is_empty());
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let section = "[rules.comm-bound]\n";
        let w = nic(Some(0.2), Some(12.5e9), 0.65);
        assert_eq!(eval_toml("comm-bound", &format!("{section}link_high = 0.6"), &w).len(), 1);
        let w = nic(Some(0.55), Some(12.5e9), 0.9);
        assert_eq!(eval_toml("comm-bound", &format!("{section}sm_active_low = 0.6"), &w).len(), 1);
        let w = nvlink(0.5 * 50e9);
        assert_eq!(eval_toml("comm-bound", &format!("{section}nvlink_link_bytes_per_second = 15e9"), &w).len(), 1);
    }
}
