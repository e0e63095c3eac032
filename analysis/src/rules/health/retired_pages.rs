//! `retired-pages`: page retirement at its limit, or a retirement pending.

use crate::rules::{Ctx, EVENT, Hit, PromAlert, RuleInfo, RuleScope, ev, gpu_hit};
use gpuscope_core::{Action, Severity};

settings! {
    /// Retired pages at or above this are at the limit.
    retired_pages_max = 60.0,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "retired-pages",
    title: "retired memory pages are pending or at the limit",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: EVENT,
    condition: "retired pages >= 60, or a retirement pending",
    recommendation: "Pending: reset to apply. At the limit: field diagnostic / RMA.",
    action: Some(Action::ResetGpu),
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[PromAlert {
        variant: "",
        expr: "gpuscope_gpu_retired_pages >= 60 or (gpuscope_gpu_retired_pages_pending == 1)",
        for_s: 0,
        severity: Severity::Warning,
        summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }}: a page retirement is pending or the retired pages ({{ $value }}) reached the limit of 60.",
        advice: None,
    }],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.retired_pages;
    let mut out = Vec::new();
    for (node, _, s, g) in c.gpus() {
        let pages = g.retired_pages_total.map(|p| p as f64);
        let pending = g.retired_pages_pending == Some(true);
        let at_limit = pages.is_some_and(|p| p >= t.retired_pages_max);
        if pending || at_limit {
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} has {} retired pages{}",
                    g.index,
                    pages.map_or("?".into(), |p| format!("{p:.0}")),
                    if pending { ", a retirement pending until the next reset" } else { "" }
                ),
                vec![
                    ev("retired_pages", pages.unwrap_or(0.0), t.retired_pages_max),
                    ev("retired_pages_pending", f64::from(u8::from(pending)), 1.0),
                ],
            );
            if at_limit {
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

    fn retired(pages: Option<u64>, pending: Option<bool>) -> crate::window::NodeWindow {
        steady(node("n0", vec![GpuSample { retired_pages_total: pages, retired_pages_pending: pending, ..gpu(2) }]))
    }

    #[test]
    fn pages_just_below_the_limit_are_not_a_hit() {
        assert!(eval("retired-pages", &retired(Some(59), Some(false))).is_empty());
    }

    #[test]
    fn pages_at_the_limit_are_critical_on_that_gpu() {
        let hits = eval("retired-pages", &retired(Some(60), Some(false)));
        let h = one_hit(&hits, &[2]);
        assert_eq!(evidence(h), vec![("retired_pages".into(), 60.0, 60.0), ("retired_pages_pending".into(), 0.0, 1.0)]);
        assert_eq!((h.severity, h.action), (Some(Severity::Critical), Some(Action::FieldDiagnostic)));
    }

    #[test]
    fn a_pending_retirement_is_a_warning_even_with_the_count_unread() {
        let hits = eval("retired-pages", &retired(None, Some(true)));
        let h = one_hit(&hits, &[2]);
        assert_eq!(h.summary, "GPU 2 has ? retired pages, a retirement pending until the next reset");
        assert_eq!(h.severity, None);
    }

    #[test]
    fn absent_counts_are_no_hit() {
        assert!(eval("retired-pages", &retired(None, None)).is_empty());
    }

    #[test]
    fn the_limit_is_read_from_the_rules_section() {
        let w = retired(Some(55), Some(false));
        assert_eq!(eval_toml("retired-pages", "[rules.retired-pages]\nretired_pages_max = 50", &w).len(), 1);
    }
}
