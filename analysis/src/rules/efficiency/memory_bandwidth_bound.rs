//! `memory-bandwidth-bound`: DRAM busy while the math pipes are not.

use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, gpu_hit, pct};
use gpuscope_core::Severity;

settings! {
    /// DRAM activity at or above this is bandwidth-bound.
    dram_high = 0.6,
    /// Tensor activity below this (with high DRAM) is not compute-bound.
    dram_bound_tensor_max = 0.2,
    /// FP32 activity below this (with high DRAM) is not compute-bound.
    dram_bound_fp32_max = 0.3,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "memory-bandwidth-bound",
    title: "memory bandwidth, not arithmetic, limits the kernels",
    scope: RuleScope::Gpu,
    severity: Severity::Info,
    timing: STD,
    condition: "dram >= 0.6 and tensor < 0.2 and fp32 < 0.3",
    recommendation: "Memory-bandwidth bound. Fuse elementwise ops, use fused/flash attention, keep activations in bf16/fp8, raise arithmetic intensity.",
    action: None,
    workloads: "any",
    explained_by_waiting: true,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.memory_bandwidth_bound;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let m = |f: fn(&gpuscope_core::GpuSample) -> Option<f64>| w.gpu_mean(g.index, c.now_ms, c.span(), f);
        let (Some(dram), Some(tensor), Some(fp32)) =
            (m(|g| g.dram_active_ratio), m(|g| g.tensor_active_ratio), m(|g| g.fp32_active_ratio))
        else {
            continue;
        };
        if dram >= t.dram_high && tensor < t.dram_bound_tensor_max && fp32 < t.dram_bound_fp32_max {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} is memory-bandwidth bound: DRAM {} busy, tensor {} and FP32 {}",
                    g.index,
                    pct(dram),
                    pct(tensor),
                    pct(fp32)
                ),
                vec![
                    ev("dram", dram, t.dram_high),
                    ev("tensor", tensor, t.dram_bound_tensor_max),
                    ev("fp32", fp32, t.dram_bound_fp32_max),
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

    fn pipes(dram: Option<f64>, tensor: Option<f64>, fp32: Option<f64>) -> crate::window::NodeWindow {
        let g = GpuSample { dram_active_ratio: dram, tensor_active_ratio: tensor, fp32_active_ratio: fp32, ..gpu(0) };
        steady(node("n0", vec![g]))
    }

    #[test]
    fn dram_just_below_the_threshold_is_not_a_hit() {
        assert!(eval("memory-bandwidth-bound", &pipes(Some(0.59), Some(0.1), Some(0.1))).is_empty());
    }

    #[test]
    fn dram_just_above_with_idle_math_is_a_hit_on_that_gpu() {
        let hits = eval("memory-bandwidth-bound", &pipes(Some(0.61), Some(0.19), Some(0.29)));
        assert_eq!(
            evidence(one_hit(&hits, &[0])),
            vec![("dram".into(), 0.61, 0.6), ("tensor".into(), 0.19, 0.2), ("fp32".into(), 0.29, 0.3)]
        );
        assert!(eval("memory-bandwidth-bound", &pipes(Some(0.8), Some(0.21), Some(0.1))).is_empty(), "tensor busy");
        assert!(eval("memory-bandwidth-bound", &pipes(Some(0.8), Some(0.1), Some(0.31))).is_empty(), "FP32 busy");
    }

    #[test]
    fn an_absent_pipe_is_not_idle() {
        assert!(eval("memory-bandwidth-bound", &pipes(Some(0.9), None, Some(0.0))).is_empty());
        assert!(eval("memory-bandwidth-bound", &pipes(Some(0.9), Some(0.0), None)).is_empty());
        assert!(eval("memory-bandwidth-bound", &pipes(None, Some(0.0), Some(0.0))).is_empty());
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let section = "[rules.memory-bandwidth-bound]\n";
        let w = pipes(Some(0.55), Some(0.1), Some(0.1));
        assert_eq!(eval_toml("memory-bandwidth-bound", &format!("{section}dram_high = 0.5"), &w).len(), 1);
        let w = pipes(Some(0.7), Some(0.25), Some(0.1));
        assert_eq!(eval_toml("memory-bandwidth-bound", &format!("{section}dram_bound_tensor_max = 0.3"), &w).len(), 1);
        let w = pipes(Some(0.7), Some(0.1), Some(0.35));
        assert_eq!(eval_toml("memory-bandwidth-bound", &format!("{section}dram_bound_fp32_max = 0.4"), &w).len(), 1);
    }
}
