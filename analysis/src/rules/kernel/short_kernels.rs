//! `short-kernels`: kernels so short that launch overhead dominates.

use crate::rules::kernel::{KERNEL, both, duration, process_hit, profiles, who};
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, ev};
use gpuscope_core::Severity;

settings! {
    /// Median kernel duration below this, seconds, is "short" (the median is known to a power of two: its histogram bucket's floor).
    median_s = 10e-6,
    /// Kernel launches per second at or above this make the process launch-limited: each launch costs the host a few microseconds in the driver and tens in a framework, more than such a kernel runs.
    launch_rate_min = 5000.0,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "short-kernels",
    title: "kernels too short for their launch overhead",
    scope: RuleScope::Process,
    severity: Severity::Info,
    timing: KERNEL,
    condition: "median kernel duration < 10 us and >= 5000 kernel launches/s (launch-limited), in two consecutive profiling windows",
    recommendation: "Launch overhead dominates: CUDA Graphs, torch.compile, fusion.",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.short_kernels;
    let mut out = Vec::new();
    for (node, w, s, p) in profiles(c) {
        let Some(((med_a, rate_a), (med_b, rate_b))) =
            both(w, p, |p| Some((p.median_kernel_seconds?, p.launches_per_second?)))
        else {
            continue;
        };
        let (median, rate) = (med_a.max(med_b), rate_a.min(rate_b));
        if median < t.median_s && rate >= t.launch_rate_min {
            out.push(process_hit(
                node,
                s,
                p,
                format!(
                    "{} launches {rate:.0} kernels a second whose median runs under {}: launch overhead dominates",
                    who(p),
                    duration(t.median_s)
                ),
                vec![ev("median_kernel_s", median, t.median_s), ev("launches_per_second", rate, t.launch_rate_min)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::KernelProfile;

    fn launches(median: Option<f64>, rate: Option<f64>) -> KernelProfile {
        KernelProfile { median_kernel_seconds: median, launches_per_second: rate, ..kernel_profile(4242) }
    }

    #[test]
    fn short_kernels_at_a_high_launch_rate_in_two_windows_are_a_hit() {
        // Medians of 4.1 µs and 8.2 µs (bucket floors), 12,000 then 20,000 launches/s.
        let w = profiled(60, vec![gpu(0)], |k| {
            if k == 2 { launches(Some(4.096e-6), Some(20_000.0)) } else { launches(Some(8.192e-6), Some(12_000.0)) }
        });
        let hits = eval("short-kernels", &w);
        let h = one_hit(&hits, &[0]);
        assert_eq!(
            evidence(h),
            vec![("median_kernel_s".into(), 8e-6, 1e-5), ("launches_per_second".into(), 12_000.0, 5000.0)]
        );
        assert_eq!(
            h.summary,
            "python (4242) launches 12000 kernels a second whose median runs under 10.0 µs: launch overhead dominates"
        );
    }

    #[test]
    fn longer_kernels_a_low_rate_or_one_window_are_not_a_hit() {
        let hit = |median, rate| eval("short-kernels", &profiled(60, vec![gpu(0)], |_| launches(median, rate))).len();
        assert_eq!(hit(Some(8.192e-6), Some(5000.0)), 1);
        assert_eq!(hit(Some(16.384e-6), Some(50_000.0)), 0, "median bucket 16 µs");
        assert_eq!(hit(Some(8.192e-6), Some(4999.0)), 0, "below the launch-rate floor");
        assert_eq!(hit(None, Some(50_000.0)), 0, "no kernels in the window");
        assert_eq!(hit(Some(1e-6), None), 0, "launch rate unknown");
        let w = profiled(60, vec![gpu(0)], |k| launches(Some(2e-6), Some(if k == 1 { 100.0 } else { 30_000.0 })));
        assert!(eval("short-kernels", &w).is_empty(), "the window before was not launch-limited");
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let w = profiled(60, vec![gpu(0)], |_| launches(Some(8.192e-6), Some(2000.0)));
        assert!(eval("short-kernels", &w).is_empty());
        assert_eq!(eval_toml("short-kernels", "[rules.short-kernels]\nlaunch_rate_min = 1000", &w).len(), 1);
        assert!(
            eval_toml("short-kernels", "[rules.short-kernels]\nlaunch_rate_min = 1000\nmedian_s = 5e-6", &w).is_empty()
        );
    }
}
