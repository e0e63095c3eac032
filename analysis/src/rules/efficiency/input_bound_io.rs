//! `input-bound-io`: the GPUs wait while storage is the bottleneck.

use super::job_gpu_activity;
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, STD, ev, node_hit, pct};
use gpuscope_core::Severity;

settings! {
    /// SM activity (or utilization) of the job's GPUs below this is "the GPUs wait".
    sm_active_low = 0.5,
    /// I/O wait at or above this means storage cannot keep up.
    iowait_high = 0.1,
    /// NVMe busy fraction at or above this is saturated.
    nvme_busy_high = 0.9,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "input-bound-io",
    title: "storage cannot feed the GPUs",
    scope: RuleScope::Node,
    severity: Severity::Warning,
    timing: STD,
    condition: "sm_active < 0.5 and (iowait >= 0.1 or an NVMe device >= 0.9 busy)",
    recommendation: "Storage cannot feed the job. Stage the data set on local NVMe, use large sequential record formats (WebDataset, TFRecord, Parquet shards), raise prefetch, add reader threads.",
    action: None,
    workloads: "any",
    explained_by_waiting: true,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.input_bound_io;
    let mut out = Vec::new();
    for (node, w, s) in c.latest() {
        let Some((act, name, gpus)) = job_gpu_activity(c, w, s) else { continue };
        if act >= t.sm_active_low {
            continue;
        }
        let iowait = w.host_mean(c.now_ms, c.span(), |h| h.cpu_iowait_ratio);
        let disks: Vec<String> =
            s.host.as_ref().map(|h| h.disks.iter().map(|d| d.name.clone()).collect()).unwrap_or_default();
        let busiest = disks
            .iter()
            .filter_map(|d| {
                w.host_mean(c.now_ms, c.span(), |h| h.disks.iter().find(|x| &x.name == d).and_then(|x| x.busy_ratio))
                    .map(|b| c.workload_rate(b))
                    .map(|b| (d.clone(), (b * c.scale).min(1.0)))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1));
        let mut evidence = vec![ev(name, act, t.sm_active_low)];
        let mut why = Vec::new();
        if let Some(wt) = iowait.filter(|w| *w >= t.iowait_high) {
            evidence.push(ev("iowait", wt, t.iowait_high));
            why.push(format!("the CPUs wait on I/O {} of the time", pct(wt)));
        }
        if let Some((d, b)) = busiest.filter(|(_, b)| *b >= t.nvme_busy_high) {
            evidence.push(ev(&format!("nvme_busy:{d}"), b, t.nvme_busy_high));
            why.push(format!("{d} is {} busy", pct(b)));
        }
        if !why.is_empty() {
            out.push(node_hit(
                node,
                s,
                gpus,
                format!("Storage cannot feed the GPUs ({} {}): {}", name, pct(act), why.join(", ")),
                evidence,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{DiskSample, HostSample};

    fn host(sm: Option<f64>, iowait: Option<f64>, nvme_busy: Option<f64>) -> crate::window::NodeWindow {
        let disk = DiskSample { name: "nvme0n1".into(), busy_ratio: nvme_busy, ..DiskSample::default() };
        let h = HostSample { cpu_iowait_ratio: iowait, disks: vec![disk], ..HostSample::default() };
        steady(busy_host("n0", sm, h))
    }

    #[test]
    fn iowait_and_nvme_just_below_their_thresholds_are_not_a_hit() {
        assert!(eval("input-bound-io", &host(Some(0.2), Some(0.09), Some(0.89))).is_empty());
        assert!(eval("input-bound-io", &host(Some(0.51), Some(0.5), Some(1.0))).is_empty(), "the GPUs are busy");
    }

    #[test]
    fn iowait_just_above_is_a_hit_on_the_node() {
        let hits = eval("input-bound-io", &host(Some(0.49), Some(0.11), Some(0.2)));
        let h = one_hit(&hits, &[0]);
        assert_eq!(evidence(h), vec![("sm_active".into(), 0.49, 0.5), ("iowait".into(), 0.11, 0.1)]);
        assert_eq!(h.summary, "Storage cannot feed the GPUs (sm_active 49%): the CPUs wait on I/O 11% of the time");
    }

    #[test]
    fn a_saturated_nvme_device_just_above_is_a_hit() {
        let hits = eval("input-bound-io", &host(Some(0.3), Some(0.0), Some(0.91)));
        assert_eq!(
            evidence(one_hit(&hits, &[0])),
            vec![("sm_active".into(), 0.3, 0.5), ("nvme_busy:nvme0n1".into(), 0.91, 0.9)]
        );
    }

    #[test]
    fn absent_storage_signals_are_not_busy() {
        assert!(eval("input-bound-io", &host(Some(0.1), None, None)).is_empty());
        assert!(eval("input-bound-io", &host(None, Some(0.5), Some(1.0))).is_empty(), "GPU activity unknown");
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let section = "[rules.input-bound-io]\n";
        let w = host(Some(0.2), Some(0.08), None);
        assert_eq!(eval_toml("input-bound-io", &format!("{section}iowait_high = 0.05"), &w).len(), 1);
        let w = host(Some(0.2), None, Some(0.85));
        assert_eq!(eval_toml("input-bound-io", &format!("{section}nvme_busy_high = 0.8"), &w).len(), 1);
        let w = host(Some(0.55), Some(0.5), None);
        assert_eq!(eval_toml("input-bound-io", &format!("{section}sm_active_low = 0.6"), &w).len(), 1);
    }
}
