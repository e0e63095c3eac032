//! `pcie-replay`: the PCIe link replays packets too often (signal integrity).

use crate::rules::{Ctx, EVENT, Hit, PromAlert, RuleInfo, RuleScope, ev, gpu_hit};
use gpuscope_core::{Action, Severity};

settings! {
    /// PCIe replays per minute above this.
    pcie_replays_per_min = 8.0,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "pcie-replay",
    title: "PCIe replays are rising (signal integrity)",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: EVENT,
    condition: "PCIe replay counter rises > 8 per minute",
    recommendation: "Signal-integrity problem: reseat, check the slot and riser.",
    action: Some(Action::Monitor),
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[PromAlert {
        variant: "",
        expr: "rate(gpuscope_gpu_pcie_replays_total[1m]) * 60 > 8",
        for_s: 0,
        severity: Severity::Warning,
        summary: r#"GPU {{ $labels.gpu }} on {{ $labels.instance }}: the PCIe link replays {{ $value | printf "%.0f" }} times a minute (more than 8)."#,
        advice: None,
    }],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.pcie_replay;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let Some((inc, secs)) = w.gpu_increase(g.index, c.now_ms, c.ms(60.0), |g| g.pcie_replays.map(|v| v as f64))
        else {
            continue;
        };
        if secs < 20.0 * c.scale {
            continue;
        }
        let per_min = inc / (secs / c.scale) * 60.0;
        if per_min > t.pcie_replays_per_min {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!("GPU {}'s PCIe link replays {per_min:.0} times a minute", g.index),
                vec![ev("pcie_replays_per_minute", per_min, t.pcie_replays_per_min)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::GpuSample;

    /// A minute of GPU 3 whose replay counter rises by `per_min`; `None` leaves it unread.
    fn replaying(per_min: Option<u64>) -> crate::window::NodeWindow {
        series(60, |t| {
            let g = GpuSample { pcie_replays_total: per_min.map(|n| 1000 + n * t / 60), ..gpu(3) };
            node("n0", vec![g])
        })
    }

    #[test]
    fn replays_at_the_threshold_are_not_a_hit() {
        assert!(eval("pcie-replay", &replaying(Some(8))).is_empty());
    }

    #[test]
    fn replays_just_above_are_a_hit_on_that_gpu() {
        let hits = eval("pcie-replay", &replaying(Some(9)));
        let h = one_hit(&hits, &[3]);
        assert_eq!(evidence(h), vec![("pcie_replays_per_minute".into(), 9.0, 8.0)]);
        assert_eq!(h.summary, "GPU 3's PCIe link replays 9 times a minute");
    }

    #[test]
    fn an_absent_counter_is_no_hit() {
        assert!(eval("pcie-replay", &replaying(None)).is_empty());
    }

    #[test]
    fn the_threshold_is_read_from_the_rules_section() {
        let w = replaying(Some(6));
        assert_eq!(eval_toml("pcie-replay", "[rules.pcie-replay]\npcie_replays_per_min = 5", &w).len(), 1);
    }
}
