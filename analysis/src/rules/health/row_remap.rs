//! `row-remap`: a row remapping is pending (reset to apply) or failed.

use crate::rules::{Ctx, EVENT, Hit, PromAlert, RuleInfo, RuleScope, ev, gpu_hit};
use gpuscope_core::{Action, Severity};

settings! {}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "row-remap",
    title: "memory row remapping is pending or failed",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: EVENT,
    condition: "row remapping pending (warning) or failed (critical)",
    recommendation: "Pending: schedule a GPU reset. Failed: field diagnostic / RMA.",
    action: Some(Action::ResetGpu),
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[
        PromAlert {
            variant: "Pending",
            expr: "gpuscope_gpu_row_remap_pending == 1",
            for_s: 0,
            severity: Severity::Warning,
            summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }}: a row remapping is pending until the next reset.",
            advice: None,
        },
        PromAlert {
            variant: "Failed",
            expr: "gpuscope_gpu_row_remap_failed == 1",
            for_s: 0,
            severity: Severity::Critical,
            summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }}: a row remapping failed.",
            advice: None,
        },
    ],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let mut out = Vec::new();
    for (node, _, s, g) in c.gpus() {
        let failed = g.row_remap_failed == Some(true);
        if g.row_remap_pending == Some(true) || failed {
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                if failed {
                    format!("GPU {}: a row remapping failed", g.index)
                } else {
                    format!("GPU {}: a row remapping is pending until the next reset", g.index)
                },
                vec![
                    ev("row_remap_pending", f64::from(u8::from(g.row_remap_pending == Some(true))), 1.0),
                    ev("row_remap_failed", f64::from(u8::from(failed)), 1.0),
                ],
            );
            if failed {
                h.severity = Some(Severity::Critical);
                h.action = Some(Action::FieldDiagnostic);
            }
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{Action, GpuSample, Severity};

    fn remap(pending: Option<bool>, failed: Option<bool>) -> crate::window::NodeWindow {
        steady(node("n0", vec![gpu(0), GpuSample { row_remap_pending: pending, row_remap_failed: failed, ..gpu(1) }]))
    }

    #[test]
    fn nothing_pending_or_failed_is_not_a_hit() {
        assert!(eval("row-remap", &remap(Some(false), Some(false))).is_empty());
    }

    #[test]
    fn a_pending_remap_is_a_warning_on_that_gpu() {
        let hits = eval("row-remap", &remap(Some(true), Some(false)));
        let h = one_hit(&hits, &[1]);
        assert_eq!(evidence(h), vec![("row_remap_pending".into(), 1.0, 1.0), ("row_remap_failed".into(), 0.0, 1.0)]);
        assert_eq!((h.severity, h.action), (None, None), "the rule's defaults: warning, reset");
    }

    #[test]
    fn a_failed_remap_is_critical() {
        let hits = eval("row-remap", &remap(Some(false), Some(true)));
        let h = one_hit(&hits, &[1]);
        assert_eq!((h.severity, h.action), (Some(Severity::Critical), Some(Action::FieldDiagnostic)));
    }

    #[test]
    fn absent_remap_state_is_no_hit() {
        assert!(eval("row-remap", &remap(None, None)).is_empty());
    }
}
