//! `pcie-h2d-bound`: host-to-device copies fill the PCIe link while the SMs wait.

use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, gpu_hit, pct};
use gpuscope_core::Severity;

settings! {
    /// PCIe receive at or above this fraction of the link's bandwidth.
    pcie_rx_high = 0.6,
    /// SM activity (or utilization) below this is "the SMs wait".
    sm_active_low = 0.5,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "pcie-h2d-bound",
    title: "host-to-device copies dominate",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: STD,
    condition: "pcie_rx >= 0.6 of the link's bandwidth and sm_active < 0.5",
    recommendation: "Host-to-device copies dominate. Pin host memory (pin_memory=True), copy with non_blocking=True, keep data on the GPU between steps, batch small transfers.",
    action: None,
    workloads: "any",
    explained_by_waiting: true,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.pcie_h2d_bound;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let (Some(gen_), Some(width)) = (g.pcie_link_generation, g.pcie_link_width) else { continue };
        let Some(rx) = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.pcie_rx_bytes_per_second) else { continue };
        let Some((act, name)) = c.activity(w, g.index) else { continue };
        let frac = rx / gpuscope_core::units::pcie_bytes_per_second(gen_, width);
        if frac >= t.pcie_rx_high && act < t.sm_active_low {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} receives {:.1} GB/s over PCIe Gen{gen_} x{width} ({} of the link) while {} is {}",
                    g.index,
                    rx / 1e9,
                    pct(frac),
                    name,
                    pct(act)
                ),
                vec![ev("pcie_rx_fraction", frac, t.pcie_rx_high), ev(name, act, t.sm_active_low)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::GpuSample;
    use gpuscope_core::units::pcie_bytes_per_second;

    /// A Gen4 x16 GPU receiving `rx_fraction` of its link.
    fn copying(rx_fraction: Option<f64>, sm: Option<f64>) -> crate::window::NodeWindow {
        let g = GpuSample {
            pcie_link_generation: Some(4),
            pcie_link_width: Some(16),
            pcie_rx_bytes_per_second: rx_fraction.map(|f| f * pcie_bytes_per_second(4, 16)),
            sm_active_ratio: sm,
            ..gpu(5)
        };
        steady(node("n0", vec![g]))
    }

    #[test]
    fn pcie_receive_just_below_the_threshold_is_not_a_hit() {
        assert!(eval("pcie-h2d-bound", &copying(Some(0.59), Some(0.2))).is_empty());
        assert!(eval("pcie-h2d-bound", &copying(Some(0.9), Some(0.51))).is_empty(), "the SMs are busy");
    }

    #[test]
    fn pcie_receive_just_above_is_a_hit_on_that_gpu() {
        let hits = eval("pcie-h2d-bound", &copying(Some(0.61), Some(0.49)));
        let h = one_hit(&hits, &[5]);
        assert_eq!(evidence(h), vec![("pcie_rx_fraction".into(), 0.61, 0.6), ("sm_active".into(), 0.49, 0.5)]);
        assert!(h.summary.contains("over PCIe Gen4 x16 (61% of the link)"), "{}", h.summary);
    }

    #[test]
    fn absent_pcie_traffic_or_activity_is_no_hit() {
        assert!(eval("pcie-h2d-bound", &copying(None, Some(0.0))).is_empty());
        assert!(eval("pcie-h2d-bound", &copying(Some(1.0), None)).is_empty());
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let w = copying(Some(0.55), Some(0.2));
        assert_eq!(eval_toml("pcie-h2d-bound", "[rules.pcie-h2d-bound]\npcie_rx_high = 0.5", &w).len(), 1);
        let w = copying(Some(0.7), Some(0.55));
        assert_eq!(eval_toml("pcie-h2d-bound", "[rules.pcie-h2d-bound]\nsm_active_low = 0.6", &w).len(), 1);
    }
}
