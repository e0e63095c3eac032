//! `fp64-heavy`: double precision dominates the GPU's work.

use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, gpu_hit, pct};
use gpuscope_core::Severity;

settings! {
    /// FP64 pipe activity at or above this (and above FP32 and tensor together) is FP64-heavy.
    fp64_high = 0.2,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "fp64-heavy",
    title: "double precision dominates the arithmetic",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: STD,
    condition: "fp64 >= 0.2 and fp64 > fp32 + tensor",
    recommendation: "Double precision dominates, usually by accident (NumPy float64 defaults). Cast inputs and parameters to fp32/bf16.",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.fp64_heavy;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let m = |f: fn(&gpuscope_core::GpuSample) -> Option<f64>| w.gpu_mean(g.index, c.now_ms, c.span(), f);
        let (Some(fp64), Some(fp32), Some(tensor)) =
            (m(|g| g.fp64_active_ratio), m(|g| g.fp32_active_ratio), m(|g| g.tensor_active_ratio))
        else {
            continue;
        };
        if fp64 >= t.fp64_high && fp64 > fp32 + tensor {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} spends {} of its cycles in FP64, more than FP32 and tensor together",
                    g.index,
                    pct(fp64)
                ),
                vec![ev("fp64", fp64, t.fp64_high), ev("fp32+tensor", fp32 + tensor, fp64)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::GpuSample;

    fn pipes(fp64: Option<f64>, fp32: Option<f64>, tensor: Option<f64>) -> crate::window::NodeWindow {
        let g = GpuSample { fp64_active_ratio: fp64, fp32_active_ratio: fp32, tensor_active_ratio: tensor, ..gpu(1) };
        steady(node("n0", vec![gpu(0), g]))
    }

    #[test]
    fn fp64_just_below_the_threshold_is_not_a_hit() {
        assert!(eval("fp64-heavy", &pipes(Some(0.19), Some(0.05), Some(0.0))).is_empty());
    }

    #[test]
    fn fp64_just_above_is_a_hit_on_that_gpu() {
        let hits = eval("fp64-heavy", &pipes(Some(0.21), Some(0.05), Some(0.05)));
        assert_eq!(evidence(one_hit(&hits, &[1])), vec![("fp64".into(), 0.21, 0.2), ("fp32+tensor".into(), 0.1, 0.21)]);
        assert!(eval("fp64-heavy", &pipes(Some(0.21), Some(0.15), Some(0.07))).is_empty(), "not dominant");
    }

    #[test]
    fn an_absent_pipe_is_not_zero() {
        assert!(eval("fp64-heavy", &pipes(None, Some(0.0), Some(0.0))).is_empty());
        assert!(eval("fp64-heavy", &pipes(Some(0.9), None, Some(0.0))).is_empty());
        assert!(eval("fp64-heavy", &pipes(Some(0.9), Some(0.0), None)).is_empty());
    }

    #[test]
    fn the_threshold_is_read_from_the_rules_section() {
        let w = pipes(Some(0.15), Some(0.0), Some(0.0));
        assert!(eval("fp64-heavy", &w).is_empty());
        assert_eq!(eval_toml("fp64-heavy", "[rules.fp64-heavy]\nfp64_high = 0.1", &w).len(), 1);
    }
}
