//! `pcie-link-degraded`: a loaded GPU's PCIe link trained below its capability.

use crate::rules::{Ctx, Hit, PromAlert, RuleInfo, RuleScope, STD, ev, gpu_hit};
use gpuscope_core::{Action, Severity};

settings! {
    /// Utilization at or above this is "under load" (idle links train down to save power).
    load_util = 0.5,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "pcie-link-degraded",
    title: "the PCIe link trained below its capability",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: STD,
    condition: "current PCIe generation or width below the maximum while under load",
    recommendation: "Link trained below capability: reseat, check riser/BIOS/ASPM.",
    action: Some(Action::Monitor),
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[PromAlert {
        variant: "",
        expr: "(gpuscope_gpu_pcie_link_generation < gpuscope_gpu_pcie_link_generation_max or gpuscope_gpu_pcie_link_width < gpuscope_gpu_pcie_link_width_max) and on (instance, gpu) (gpuscope_gpu_utilization_ratio >= 0.5)",
        for_s: 60,
        severity: Severity::Warning,
        summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }}: the PCIe link trained below its maximum generation or width under load.",
        advice: None,
    }],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.pcie_link_degraded;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let (Some(gen_), Some(gmax), Some(width), Some(wmax)) =
            (g.pcie_link_generation, g.pcie_link_generation_max, g.pcie_link_width, g.pcie_link_width_max)
        else {
            continue;
        };
        // Idle GPUs train their links down to save power: only a loaded GPU tells.
        let Some(util) = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.utilization_ratio) else { continue };
        if util >= t.load_util && (gen_ < gmax || width < wmax) {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {}'s PCIe link runs at Gen{gen_} x{width} under load; it is capable of Gen{gmax} x{wmax}",
                    g.index
                ),
                vec![
                    ev("pcie_link_generation", f64::from(gen_), f64::from(gmax)),
                    ev("pcie_link_width", f64::from(width), f64::from(wmax)),
                ],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::GpuSample;

    /// A GPU at `util` whose Gen5 x16 link trained to Gen4 x16.
    fn link(util: Option<f64>, max_read: bool) -> crate::window::NodeWindow {
        let g = GpuSample {
            utilization_ratio: util,
            pcie_link_generation: Some(4),
            pcie_link_generation_max: max_read.then_some(5),
            pcie_link_width: Some(16),
            pcie_link_width_max: Some(16),
            ..gpu(6)
        };
        steady(node("n0", vec![g]))
    }

    #[test]
    fn load_just_below_the_threshold_is_not_a_hit() {
        assert!(eval("pcie-link-degraded", &link(Some(0.49), true)).is_empty());
    }

    #[test]
    fn load_just_above_is_a_hit_on_that_gpu() {
        let hits = eval("pcie-link-degraded", &link(Some(0.51), true));
        let h = one_hit(&hits, &[6]);
        assert_eq!(
            evidence(h),
            vec![("pcie_link_generation".into(), 4.0, 5.0), ("pcie_link_width".into(), 16.0, 16.0)]
        );
        assert_eq!(h.summary, "GPU 6's PCIe link runs at Gen4 x16 under load; it is capable of Gen5 x16");
    }

    #[test]
    fn absent_utilization_or_capability_is_no_hit() {
        assert!(eval("pcie-link-degraded", &link(None, true)).is_empty());
        assert!(eval("pcie-link-degraded", &link(Some(1.0), false)).is_empty());
    }

    #[test]
    fn the_threshold_is_read_from_the_rules_section() {
        let w = link(Some(0.45), true);
        assert_eq!(eval_toml("pcie-link-degraded", "[rules.pcie-link-degraded]\nload_util = 0.4", &w).len(), 1);
    }
}
