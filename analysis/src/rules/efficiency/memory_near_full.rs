//! `memory-near-full`: GPU memory close to out-of-memory.

use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, gpu_hit, pct};
use gpuscope_core::Severity;

settings! {
    /// Memory used at or above this fraction of total risks out-of-memory.
    memory_high = 0.95,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "memory-near-full",
    title: "GPU memory is nearly full and still growing",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: STD,
    condition: "mem_used >= 0.95 of total",
    recommendation: "Risk of out-of-memory. Activation checkpointing, mixed precision, smaller micro-batch with gradient accumulation.",
    action: None,
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.memory_near_full;
    let mut out = Vec::new();
    for (node, _, s, g) in c.gpus() {
        let (Some(used), Some(total)) = (g.memory_used_bytes, g.memory_total_bytes) else { continue };
        let frac = used as f64 / total as f64;
        if frac >= t.memory_high {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} memory is {} full ({:.1} of {:.1} GiB)",
                    g.index,
                    pct(frac),
                    used as f64 / 1073741824.0,
                    total as f64 / 1073741824.0
                ),
                vec![ev("memory_used_fraction", frac, t.memory_high)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::GpuSample;

    const TOTAL: u64 = 80 << 30;

    fn used(fraction: Option<f64>) -> crate::window::NodeWindow {
        let g = GpuSample {
            memory_total_bytes: Some(TOTAL),
            memory_used_bytes: fraction.map(|f| (TOTAL as f64 * f) as u64),
            ..gpu(7)
        };
        steady(node("n0", vec![g]))
    }

    #[test]
    fn memory_just_below_the_threshold_is_not_a_hit() {
        assert!(eval("memory-near-full", &used(Some(0.94))).is_empty());
    }

    #[test]
    fn memory_just_above_is_a_hit_on_that_gpu() {
        let hits = eval("memory-near-full", &used(Some(0.96)));
        let h = one_hit(&hits, &[7]);
        assert_eq!(evidence(h), vec![("memory_used_fraction".into(), 0.96, 0.95)]);
        assert_eq!(h.summary, "GPU 7 memory is 96% full (76.8 of 80.0 GiB)");
    }

    #[test]
    fn absent_memory_is_no_hit() {
        assert!(eval("memory-near-full", &used(None)).is_empty());
    }

    #[test]
    fn the_threshold_is_read_from_the_rules_section() {
        let w = used(Some(0.9));
        assert_eq!(eval_toml("memory-near-full", "[rules.memory-near-full]\nmemory_high = 0.85", &w).len(), 1);
    }
}
