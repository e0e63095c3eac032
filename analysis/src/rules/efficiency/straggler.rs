//! `straggler`: one node or GPU of a job lags while the others wait for it.

use super::{job_hit, jobs};
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, pct};
use crate::window::mean;
use gpuscope_core::Severity;
use std::collections::BTreeMap;

settings! {
    /// SM activity (or utilization) this far below the job's median names a straggler.
    straggler_gap = 0.15,
    /// The others' utilization at or above this shows them waiting at collectives.
    straggler_others_util = 0.8,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "straggler",
    title: "one member of a synchronous job slows all the others",
    scope: RuleScope::Job,
    severity: Severity::Warning,
    timing: STD,
    condition: "one node or GPU >= 15 points of sm_active below the job's median while the others wait",
    recommendation: "One member slows the whole job. Look at that GPU/node: throttling, a bad NIC, a noisy neighbour.",
    action: None,
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
};

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
}

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.straggler;
    let mut out = Vec::new();
    for (job, members) in jobs(c) {
        // Every GPU of the job: (node, gpu, activity, utilization).
        let mut gpus: Vec<(&str, u32, f64, Option<f64>)> = Vec::new();
        for (node, w, s) in &members {
            for g in s.gpus.iter().filter(|g| !g.lost) {
                if let Some((a, _)) = c.activity(w, g.index) {
                    gpus.push((node, g.index, a, w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.utilization_ratio)));
                }
            }
        }
        if gpus.len() < 2 {
            continue;
        }
        let name = if members.iter().any(|(_, _, s)| s.gpus.iter().any(|g| g.sm_active_ratio.is_some())) {
            "sm_active"
        } else {
            "util"
        };
        // Node level first: the median of the nodes' means.
        let mut per_node: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for (n, _, a, _) in &gpus {
            per_node.entry(n).or_default().push(*a);
        }
        let node_means: Vec<(&str, f64)> = per_node.iter().filter_map(|(n, v)| mean(v).map(|m| (*n, m))).collect();
        let mut all: Vec<f64> = node_means.iter().map(|x| x.1).collect();
        let slow_nodes: Vec<(&str, f64)> = if node_means.len() >= 2 {
            let med = median(&mut all).unwrap_or(0.0);
            node_means.iter().filter(|(_, m)| *m <= med - t.straggler_gap).copied().collect()
        } else {
            Vec::new()
        };
        let waiting = |exclude: &dyn Fn(&str, u32) -> bool| {
            let others: Vec<f64> = gpus.iter().filter(|(n, g, _, _)| !exclude(n, *g)).filter_map(|x| x.3).collect();
            mean(&others).is_some_and(|u| u >= t.straggler_others_util)
        };
        if slow_nodes.len() == 1 {
            let (n, m) = slow_nodes[0];
            let mut others: Vec<f64> = node_means.iter().filter(|x| x.0 != n).map(|x| x.1).collect();
            let med = median(&mut others).unwrap_or(0.0);
            if waiting(&|node, _| node == n) {
                let node_gpus: Vec<u32> = gpus.iter().filter(|x| x.0 == n).map(|x| x.1).collect();
                out.push(job_hit(
                    &job,
                    Some(n),
                    node_gpus,
                    format!(
                        "Node {n} is the straggler of job {job}: {name} {} against the others' median {}",
                        pct(m),
                        pct(med)
                    ),
                    vec![ev(name, m, med - t.straggler_gap), ev("job_median", med, med)],
                ));
            }
            continue;
        }
        // Else one GPU below the job's median.
        let mut acts: Vec<f64> = gpus.iter().map(|x| x.2).collect();
        let med = median(&mut acts).unwrap_or(0.0);
        let slow: Vec<&(&str, u32, f64, Option<f64>)> = gpus.iter().filter(|x| x.2 <= med - t.straggler_gap).collect();
        if slow.len() == 1 {
            let (n, g, a, _) = *slow[0];
            if waiting(&|node, gpu| node == n && gpu == g) {
                out.push(job_hit(
                    &job,
                    Some(n),
                    vec![g],
                    format!(
                        "GPU {g} on {n} is the straggler of job {job}: {name} {} against the job's median {}",
                        pct(a),
                        pct(med)
                    ),
                    vec![ev(name, a, med - t.straggler_gap), ev("job_median", med, med)],
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use crate::window::NodeWindow;
    use gpuscope_core::{GpuSample, NodeInfo, NodeSnapshot};

    /// A member of job `llm` whose two GPUs run at SM activity `sm` and utilization `util`.
    fn member(host: &str, sm: [Option<f64>; 2], util: f64) -> NodeWindow {
        let gpus = (0..2u32)
            .map(|i| GpuSample { sm_active_ratio: sm[i as usize], utilization_ratio: Some(util), ..gpu(i) })
            .collect();
        let node = NodeInfo { hostname: host.into(), job: Some("llm".into()), ..NodeInfo::default() };
        steady(NodeSnapshot { node, gpus, ..NodeSnapshot::default() })
    }

    /// Three members at 90 % SM activity but `slow` on n2, the others at 95 % utilization.
    fn job(toml: &str, slow: [Option<f64>; 2], others_util: f64) -> Vec<crate::rules::Hit> {
        let cfg = toml::from_str(toml).unwrap_or_else(|e| panic!("{e}"));
        let fast = [Some(0.9), Some(0.9)];
        let (a, b, c) = (member("n0", fast, others_util), member("n1", fast, others_util), member("n2", slow, 0.95));
        eval_with("straggler", &cfg, &[("n0", &a), ("n1", &b), ("n2", &c)])
    }

    #[test]
    fn a_node_just_within_the_gap_is_not_a_straggler() {
        assert!(job("", [Some(0.76), Some(0.76)], 0.95).is_empty());
        assert!(job("", [Some(0.5), Some(0.5)], 0.79).is_empty(), "the others do not wait");
    }

    #[test]
    fn a_node_just_beyond_the_gap_is_named() {
        let hits = job("", [Some(0.74), Some(0.74)], 0.95);
        assert_eq!(hits.len(), 1, "{hits:#?}");
        let h = &hits[0];
        assert_eq!((h.job.as_deref(), h.node.as_deref(), h.gpus.clone()), (Some("llm"), Some("n2"), vec![0, 1]));
        assert_eq!(evidence(h), vec![("sm_active".into(), 0.74, 0.75), ("job_median".into(), 0.9, 0.9)]);
    }

    #[test]
    fn one_gpu_beyond_the_gap_is_named() {
        let hits = job("", [Some(0.9), Some(0.7)], 0.95);
        assert_eq!(hits.len(), 1, "{hits:#?}");
        assert_eq!((hits[0].node.as_deref(), hits[0].gpus.clone()), (Some("n2"), vec![1]));
        assert_eq!(evidence(&hits[0]), vec![("sm_active".into(), 0.7, 0.75), ("job_median".into(), 0.9, 0.9)]);
    }

    #[test]
    fn absent_activity_is_not_slow() {
        assert!(job("", [None, None], 0.95).is_empty());
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        assert_eq!(job("[rules.straggler]\nstraggler_gap = 0.1", [Some(0.78), Some(0.78)], 0.95).len(), 1);
        assert_eq!(job("[rules.straggler]\nstraggler_others_util = 0.7", [Some(0.5), Some(0.5)], 0.75).len(), 1);
    }
}
