//! `host-thread-bound`: one busy host thread while the other cores and the GPUs wait.

use super::job_gpu_activity;
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, node_hit, pct};
use crate::window::mean;
use gpuscope_core::Severity;

settings! {
    /// SM activity (or utilization) of the job's GPUs below this is "the GPUs wait".
    sm_active_low = 0.5,
    /// The busiest core at or above this (the others idle) is one host thread bounding the job.
    hot_core = 0.95,
    /// The other cores' mean busy fraction below this counts as idle.
    other_cores_max = 0.3,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "host-thread-bound",
    title: "one host thread limits the GPUs",
    scope: RuleScope::Node,
    severity: Severity::Warning,
    timing: STD,
    condition: "one core >= 0.95 busy, mean of the others < 0.3, sm_active < 0.5",
    recommendation: "A single host thread (often the Python training loop) is the bottleneck: CUDA Graphs / torch.compile to cut launch work, larger batch, move logging/metrics off the hot loop.",
    action: None,
    workloads: "any",
    explained_by_waiting: true,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.host_thread_bound;
    let mut out = Vec::new();
    for (node, w, s) in c.latest() {
        let Some((act, name, gpus)) = job_gpu_activity(c, w, s) else { continue };
        let ncpu = s.host.as_ref().map_or(0, |h| h.cpus.len());
        if act >= t.sm_active_low || ncpu < 2 {
            continue;
        }
        let cores: Vec<Option<f64>> =
            (0..ncpu).map(|i| w.host_mean(c.now_ms, c.span(), |h| h.cpus.get(i).and_then(|x| x.busy_ratio))).collect();
        let Some((hot, hot_busy)) =
            cores.iter().enumerate().filter_map(|(i, b)| b.map(|b| (i, b))).max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            continue;
        };
        let others: Vec<f64> = cores.iter().enumerate().filter(|(i, _)| *i != hot).filter_map(|(_, b)| *b).collect();
        let Some(rest) = mean(&others) else { continue };
        if hot_busy >= t.hot_core && rest < t.other_cores_max {
            out.push(node_hit(
                node,
                s,
                gpus,
                format!(
                    "CPU {hot} is {} busy while the other cores average {}: one host thread bounds the job ({} {})",
                    pct(hot_busy),
                    pct(rest),
                    name,
                    pct(act)
                ),
                vec![
                    ev(&format!("cpu{hot}_busy"), hot_busy, t.hot_core),
                    ev("other_cores_busy", rest, t.other_cores_max),
                    ev(name, act, t.sm_active_low),
                ],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{CpuSample, HostSample};

    /// Core 1 at `hot`, the three others at `rest`.
    fn cores(sm: Option<f64>, hot: Option<f64>, rest: Option<f64>) -> crate::window::NodeWindow {
        let cpus = (0..4u32)
            .map(|cpu| CpuSample { cpu, busy_ratio: if cpu == 1 { hot } else { rest }, ..CpuSample::default() })
            .collect();
        steady(busy_host("n0", sm, HostSample { cpus, ..HostSample::default() }))
    }

    #[test]
    fn a_core_just_below_the_threshold_is_not_a_hit() {
        assert!(eval("host-thread-bound", &cores(Some(0.2), Some(0.94), Some(0.1))).is_empty());
        assert!(eval("host-thread-bound", &cores(Some(0.2), Some(1.0), Some(0.31))).is_empty(), "others busy");
    }

    #[test]
    fn a_core_just_above_while_the_others_idle_is_a_hit_on_the_node() {
        let hits = eval("host-thread-bound", &cores(Some(0.49), Some(0.96), Some(0.29)));
        assert_eq!(
            evidence(one_hit(&hits, &[0])),
            vec![
                ("cpu1_busy".into(), 0.96, 0.95),
                ("other_cores_busy".into(), 0.29, 0.3),
                ("sm_active".into(), 0.49, 0.5)
            ]
        );
    }

    #[test]
    fn absent_core_readings_are_not_idle() {
        assert!(eval("host-thread-bound", &cores(Some(0.2), Some(1.0), None)).is_empty());
        assert!(eval("host-thread-bound", &cores(Some(0.2), None, None)).is_empty());
        assert!(eval("host-thread-bound", &cores(None, Some(1.0), Some(0.0))).is_empty());
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let section = "[rules.host-thread-bound]\n";
        let w = cores(Some(0.2), Some(0.9), Some(0.1));
        assert_eq!(eval_toml("host-thread-bound", &format!("{section}hot_core = 0.85"), &w).len(), 1);
        let w = cores(Some(0.2), Some(1.0), Some(0.35));
        assert_eq!(eval_toml("host-thread-bound", &format!("{section}other_cores_max = 0.4"), &w).len(), 1);
        let w = cores(Some(0.55), Some(1.0), Some(0.1));
        assert_eq!(eval_toml("host-thread-bound", &format!("{section}sm_active_low = 0.6"), &w).len(), 1);
    }
}
