//! `gpu-lost`: the GPU fell off the bus.

use crate::rules::{Ctx, EVENT, Hit, PromAlert, RuleInfo, RuleScope, ev, gpu_hit};
use gpuscope_core::{Action, Severity};

settings! {}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "gpu-lost",
    title: "the GPU fell off the bus",
    scope: RuleScope::Gpu,
    severity: Severity::Critical,
    timing: EVENT,
    condition: "NVML reports the GPU lost, or XID 79",
    recommendation: "Critical: drain the node and reboot; a repeat means hardware.",
    action: Some(Action::RebootNode),
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[PromAlert {
        variant: "",
        expr: r#"gpuscope_gpu_up == 0 or max without (xid) (increase(gpuscope_gpu_xid_errors_total{xid="79"}[5m]) > 0 or (gpuscope_gpu_xid_errors_total{xid="79"} unless gpuscope_gpu_xid_errors_total{xid="79"} offset 5m))"#,
        for_s: 0,
        severity: Severity::Critical,
        summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} has fallen off the bus (lost, or XID 79).",
        advice: None,
    }],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let mut out = Vec::new();
    for (node, _, s) in c.latest() {
        for g in &s.gpus {
            let xid79 = s.xid_events.iter().any(|e| e.gpu == g.index && e.code == 79);
            if g.lost || xid79 {
                let mut h = gpu_hit(
                    node,
                    s,
                    g.index,
                    format!(
                        "GPU {} ({}) {}",
                        g.index,
                        g.uuid,
                        if g.lost { "has fallen off the bus" } else { "reported XID 79 (fell off the bus)" }
                    ),
                    vec![ev("gpu_lost", if g.lost { 1.0 } else { 0.0 }, 1.0)],
                );
                h.severity = Some(Severity::Critical);
                out.push(h);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{GpuSample, NodeSnapshot, XidEvent};

    fn with(lost: bool, xid: Option<u64>) -> crate::window::NodeWindow {
        let events = xid.map(|code| XidEvent { unix_ms: NOW_MS, gpu: 3, code }).into_iter().collect();
        steady(NodeSnapshot { xid_events: events, ..node("n0", vec![gpu(0), GpuSample { lost, ..gpu(3) }]) })
    }

    #[test]
    fn an_answering_gpu_and_another_xid_are_not_a_hit() {
        assert!(eval("gpu-lost", &with(false, None)).is_empty());
        assert!(eval("gpu-lost", &with(false, Some(78))).is_empty());
    }

    #[test]
    fn a_lost_gpu_is_a_hit_on_that_gpu_only() {
        let hits = eval("gpu-lost", &with(true, None));
        let h = one_hit(&hits, &[3]);
        assert_eq!(evidence(h), vec![("gpu_lost".into(), 1.0, 1.0)]);
        assert_eq!(h.summary, "GPU 3 (GPU-3) has fallen off the bus");
    }

    #[test]
    fn xid_79_is_a_hit() {
        let hits = eval("gpu-lost", &with(false, Some(79)));
        assert_eq!(evidence(one_hit(&hits, &[3])), vec![("gpu_lost".into(), 0.0, 1.0)]);
    }
}
