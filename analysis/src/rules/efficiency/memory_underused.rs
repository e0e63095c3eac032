//! `memory-underused`: a busy-enough GPU uses little of its memory: room for a larger batch.

use super::held;
use crate::rules::{Ctx, Hit, LONG, RuleInfo, RuleScope, ev, gpu_hit, pct, workload};
use gpuscope_core::{Severity, WorkloadClass};

settings! {
    /// Memory used below this fraction of total is under-used.
    memory_low = 0.5,
    /// SM activity (or utilization) below this leaves room for more work.
    sm_active_low = 0.5,
    /// SM activity (or utilization) below this is idle: gpu-idle-allocated's business, not this rule's.
    idle = 0.05,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "memory-underused",
    title: "a training job uses less than half of the GPU memory",
    scope: RuleScope::Gpu,
    severity: Severity::Info,
    timing: LONG,
    condition: "a training process holds the GPU, mem_used < 0.5 of total and sm_active < 0.5 for 10 min",
    recommendation: "Room for a larger batch (mind convergence: scale the learning rate), or pack more work onto the GPU.",
    action: None,
    workloads: "training only: a larger batch is training advice; inference servers provision memory for latency and notebooks for exploration",
    explained_by_waiting: true,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.memory_underused;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        // Batch-size advice is training advice: an inference server provisions memory for
        // latency, a notebook for exploration; an unclassified process is not judged on a guess.
        if !held(s).contains(&g.index) || workload(s, g.index) != Some(WorkloadClass::Training) {
            continue;
        }
        let (Some(used), Some(total)) = (g.memory_used_bytes, g.memory_total_bytes) else { continue };
        let Some((act, name)) = c.activity(w, g.index) else { continue };
        let frac = used as f64 / total as f64;
        // An idle GPU is gpu-idle-allocated's business, not a batch-size question.
        if frac < t.memory_low && act < t.sm_active_low && act >= t.idle {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} uses {} of its memory and {} {}: room for a larger batch",
                    g.index,
                    pct(frac),
                    name,
                    pct(act)
                ),
                vec![ev("memory_used_fraction", frac, t.memory_low), ev(name, act, t.sm_active_low)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{GpuSample, NodeSnapshot, WorkloadClass};

    const TOTAL: u64 = 80 << 30;

    fn held(used_fraction: Option<f64>, sm: Option<f64>) -> crate::window::NodeWindow {
        let g = GpuSample {
            memory_total_bytes: Some(TOTAL),
            memory_used_bytes: used_fraction.map(|f| (TOTAL as f64 * f) as u64),
            sm_active_ratio: sm,
            ..gpu(1)
        };
        steady(NodeSnapshot { processes: vec![process(1, 1 << 30)], ..node("n0", vec![gpu(0), g]) })
    }

    #[test]
    fn memory_just_above_the_threshold_is_not_a_hit() {
        assert!(eval("memory-underused", &held(Some(0.51), Some(0.3))).is_empty());
        assert!(eval("memory-underused", &held(Some(0.2), Some(0.51))).is_empty(), "the SMs are busy");
        assert!(eval("memory-underused", &held(Some(0.2), Some(0.04))).is_empty(), "idle is another rule's");
    }

    #[test]
    fn memory_just_below_is_a_hit_on_that_gpu() {
        let hits = eval("memory-underused", &held(Some(0.49), Some(0.06)));
        assert_eq!(
            evidence(one_hit(&hits, &[1])),
            vec![("memory_used_fraction".into(), 0.49, 0.5), ("sm_active".into(), 0.06, 0.5)]
        );
    }

    #[test]
    fn absent_memory_or_activity_is_not_low() {
        assert!(eval("memory-underused", &held(None, Some(0.3))).is_empty());
        assert!(eval("memory-underused", &held(Some(0.1), None)).is_empty());
        let unheld = GpuSample {
            memory_total_bytes: Some(TOTAL),
            memory_used_bytes: Some(0),
            sm_active_ratio: Some(0.3),
            ..gpu(0)
        };
        assert!(eval("memory-underused", &steady(node("n0", vec![unheld]))).is_empty(), "no process");
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let section = "[rules.memory-underused]\n";
        let w = held(Some(0.55), Some(0.3));
        assert_eq!(eval_toml("memory-underused", &format!("{section}memory_low = 0.6"), &w).len(), 1);
        let w = held(Some(0.2), Some(0.55));
        assert_eq!(eval_toml("memory-underused", &format!("{section}sm_active_low = 0.6"), &w).len(), 1);
        let w = held(Some(0.2), Some(0.03));
        assert_eq!(eval_toml("memory-underused", &format!("{section}idle = 0.02"), &w).len(), 1);
    }

    /// A Triton server at moderate load and a notebook are not told to raise a batch size.
    #[test]
    fn only_training_is_judged() {
        for class in [WorkloadClass::Inference, WorkloadClass::Notebook, WorkloadClass::Unknown] {
            let g = GpuSample {
                memory_total_bytes: Some(TOTAL),
                memory_used_bytes: Some(TOTAL / 4),
                sm_active_ratio: Some(0.3),
                ..gpu(0)
            };
            let p = gpuscope_core::ProcessSample { workload: Some(class), ..process(0, TOTAL / 4) };
            let w = steady(NodeSnapshot { processes: vec![p], ..node("n0", vec![g]) });
            assert!(eval("memory-underused", &w).is_empty(), "{class}");
        }
    }
}
