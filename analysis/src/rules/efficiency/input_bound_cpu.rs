//! `input-bound-cpu`: the GPUs wait while the host CPUs are saturated.

use super::job_gpu_activity;
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, node_hit, pct};
use gpuscope_core::Severity;

settings! {
    /// SM activity (or utilization) of the job's GPUs below this is "the GPUs wait".
    sm_active_low = 0.5,
    /// Host CPU busy at or above this starves the input pipeline.
    cpu_busy_high = 0.9,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "input-bound-cpu",
    title: "the host CPUs cannot feed the GPUs",
    scope: RuleScope::Node,
    severity: Severity::Warning,
    timing: STD,
    condition: "sm_active < 0.5 on the job's GPUs and host cpu_busy >= 0.9",
    recommendation: "The input pipeline cannot feed the GPUs. More DataLoader workers, move decoding/augmentation to the GPU (e.g. DALI), cache preprocessed data, persistent_workers, check CPU limits of the container.",
    action: None,
    workloads: "any",
    explained_by_waiting: true,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.input_bound_cpu;
    let mut out = Vec::new();
    for (node, w, s) in c.latest() {
        let Some((act, name, gpus)) = job_gpu_activity(c, w, s) else { continue };
        let Some(busy) = w.host_mean(c.now_ms, c.span(), |h| h.cpu_busy_ratio) else { continue };
        if act < t.sm_active_low && busy >= t.cpu_busy_high {
            out.push(node_hit(
                node,
                s,
                gpus,
                format!(
                    "The host CPUs are {} busy while the GPUs wait ({} {}): the input pipeline cannot keep up",
                    pct(busy),
                    name,
                    pct(act)
                ),
                vec![ev(name, act, t.sm_active_low), ev("cpu_busy", busy, t.cpu_busy_high)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::HostSample;

    fn host(sm: Option<f64>, cpu_busy: Option<f64>) -> crate::window::NodeWindow {
        steady(busy_host("n0", sm, HostSample { cpu_busy_ratio: cpu_busy, ..HostSample::default() }))
    }

    #[test]
    fn cpu_busy_just_below_the_threshold_is_not_a_hit() {
        assert!(eval("input-bound-cpu", &host(Some(0.2), Some(0.89))).is_empty());
        assert!(eval("input-bound-cpu", &host(Some(0.51), Some(1.0))).is_empty(), "the GPUs are busy");
    }

    #[test]
    fn cpu_busy_just_above_while_the_gpus_wait_is_a_hit_on_the_node() {
        let hits = eval("input-bound-cpu", &host(Some(0.49), Some(0.91)));
        assert_eq!(
            evidence(one_hit(&hits, &[0])),
            vec![("sm_active".into(), 0.49, 0.5), ("cpu_busy".into(), 0.91, 0.9)]
        );
    }

    #[test]
    fn absent_signals_are_not_low_or_busy() {
        assert!(eval("input-bound-cpu", &host(Some(0.1), None)).is_empty());
        assert!(eval("input-bound-cpu", &host(None, Some(1.0))).is_empty());
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let w = host(Some(0.2), Some(0.85));
        assert_eq!(eval_toml("input-bound-cpu", "[rules.input-bound-cpu]\ncpu_busy_high = 0.8", &w).len(), 1);
        let w = host(Some(0.55), Some(0.95));
        assert_eq!(eval_toml("input-bound-cpu", "[rules.input-bound-cpu]\nsm_active_low = 0.6", &w).len(), 1);
    }
}
