//! `gpu-gaps`: long idle gaps between a process's kernels.

use crate::rules::kernel::{KERNEL, both, duration, process_hit, profiles, who};
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, ev, pct};
use gpuscope_core::Severity;

settings! {
    /// The longest idle gap between two kernels of the process (any of its GPUs) above this, seconds, is a hit.
    gap_s = 0.5,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "gpu-gaps",
    title: "the GPU sits idle between kernels",
    scope: RuleScope::Process,
    severity: Severity::Warning,
    timing: KERNEL,
    condition: "an idle gap > 500 ms between the process's kernels, in two consecutive profiling windows (a gap is only seen inside a window: it needs windows longer than the default 0.5 s, GPUSCOPE_CUPTI_WINDOW_MS in the process, or on-demand ones)",
    recommendation: "The CPU side stalls between GPU work: profile the host (data loading, checkpointing, logging).",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.gpu_gaps;
    let mut out = Vec::new();
    for (node, w, s, p) in profiles(c) {
        // A gap is time between two kernels inside one window (the time before the first and
        // after the last kernel is not one), so no gap is longer than the window.
        let Some((a, b)) = both(w, p, |p| p.gpu_gap_max_seconds) else { continue };
        let low = a.min(b);
        if low > t.gap_s {
            let mut summary = format!(
                "{}: its GPU sat idle for {} between two kernels",
                who(p),
                duration(p.gpu_gap_max_seconds.unwrap_or(low))
            );
            if let Some(idle) = p.gpu_gap_seconds.filter(|_| p.window_seconds > 0.0) {
                summary +=
                    &format!(" ({} of the latest profiling window idle between kernels)", pct(idle / p.window_seconds));
            }
            out.push(process_hit(node, s, p, summary, vec![ev("gpu_gap_max_s", low, t.gap_s)]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::KernelProfile;

    /// A 2 s window whose longest gap between kernels is `gap` seconds, 1.2 s idle in all.
    fn gaps(gap: Option<f64>) -> KernelProfile {
        KernelProfile {
            window_seconds: 2.0,
            gpu_gap_max_seconds: gap,
            gpu_gap_seconds: gap.map(|_| 1.2),
            ..kernel_profile(4242)
        }
    }

    #[test]
    fn a_gap_over_half_a_second_in_two_windows_is_a_hit() {
        let w = profiled(60, vec![gpu(0)], |k| gaps(Some(if k == 2 { 0.9 } else { 0.6 })));
        let hits = eval("gpu-gaps", &w);
        let h = one_hit(&hits, &[0]);
        assert_eq!(evidence(h), vec![("gpu_gap_max_s".into(), 0.6, 0.5)]);
        assert_eq!(
            h.summary,
            "python (4242): its GPU sat idle for 900 ms between two kernels (60% of the latest profiling window idle between kernels)"
        );
    }

    #[test]
    fn a_gap_of_exactly_the_threshold_or_in_one_window_is_not_a_hit() {
        assert!(eval("gpu-gaps", &profiled(60, vec![gpu(0)], |_| gaps(Some(0.5)))).is_empty());
        let w = profiled(60, vec![gpu(0)], |k| gaps(Some(if k == 2 { 1.5 } else { 0.1 })));
        assert!(eval("gpu-gaps", &w).is_empty());
        // No kernels, or fewer than two: no gap measured, not a gap of 0.
        assert!(eval("gpu-gaps", &profiled(60, vec![gpu(0)], |_| gaps(None))).is_empty());
    }

    #[test]
    fn the_threshold_is_read_from_the_rules_section() {
        let w = profiled(60, vec![gpu(0)], |_| gaps(Some(0.3)));
        assert!(eval("gpu-gaps", &w).is_empty());
        assert_eq!(eval_toml("gpu-gaps", "[rules.gpu-gaps]\ngap_s = 0.25", &w).len(), 1);
    }
}
