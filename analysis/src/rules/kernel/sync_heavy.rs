//! `sync-heavy`: the host waits on the GPU too often.

use crate::rules::kernel::{KERNEL, both, duration, process_hit, profiles, who};
use crate::rules::{Ctx, Hit, RuleInfo, RuleScope, ev, pct};
use gpuscope_core::{KernelProfile, Severity};

settings! {
    /// Share of the profiling window spent in device/stream/event synchronization at or above this is a hit.
    sync_share = 0.10,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "sync-heavy",
    title: "the host synchronizes with the GPU too often",
    scope: RuleScope::Process,
    severity: Severity::Warning,
    timing: KERNEL,
    condition: "time in device/stream synchronization >= 10% of the profiling window, in two consecutive windows",
    recommendation: "The host waits on the GPU too often: remove .item(), .cpu(), printing tensors and explicit synchronizations from the step loop; use events.",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[],
};

/// Synchronization time as a share of the window. Several host threads can wait at once, so
/// the sum can pass the window's length: the share stops at 1 (the whole window was waited).
fn share(p: &KernelProfile) -> Option<f64> {
    (p.window_seconds > 0.0).then(|| (p.sync_seconds / p.window_seconds).min(1.0))
}

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.sync_heavy;
    let mut out = Vec::new();
    for (node, w, s, p) in profiles(c) {
        let Some((a, b)) = both(w, p, share) else { continue };
        let low = a.min(b);
        if low >= t.sync_share {
            out.push(process_hit(
                node,
                s,
                p,
                format!(
                    "{} spends {} of its profiling windows waiting for the GPU in synchronization calls ({} of the latest {})",
                    who(p),
                    pct(low),
                    duration(p.sync_seconds),
                    duration(p.window_seconds)
                ),
                vec![ev("sync_share", low, t.sync_share)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::KernelProfile;

    fn waits(sync: f64) -> KernelProfile {
        KernelProfile { sync_seconds: sync, ..kernel_profile(4242) }
    }

    #[test]
    fn a_tenth_of_two_windows_in_synchronization_is_a_hit() {
        // 50 ms of a 0.5 s window, then 60 ms: the weaker is the evidence.
        let w = profiled(60, vec![gpu(0)], |k| waits(if k == 2 { 0.06 } else { 0.05 }));
        let hits = eval("sync-heavy", &w);
        let h = one_hit(&hits, &[0]);
        assert_eq!(evidence(h), vec![("sync_share".into(), 0.1, 0.1)]);
        assert_eq!(
            h.summary,
            "python (4242) spends 10% of its profiling windows waiting for the GPU in synchronization calls (60 ms of the latest 500 ms)"
        );
    }

    #[test]
    fn just_below_or_in_one_window_only_is_not_a_hit() {
        assert!(eval("sync-heavy", &profiled(60, vec![gpu(0)], |_| waits(0.049))).is_empty());
        let w = profiled(60, vec![gpu(0)], |k| waits(if k == 2 { 0.3 } else { 0.0 }));
        assert!(eval("sync-heavy", &w).is_empty(), "one window");
        assert!(eval("sync-heavy", &profiled(29, vec![gpu(0)], |_| waits(0.3))).is_empty(), "the first window");
    }

    #[test]
    fn several_waiting_threads_count_as_the_whole_window_and_the_threshold_is_read() {
        let w = profiled(60, vec![gpu(0)], |_| waits(0.8));
        assert_eq!(evidence(&eval("sync-heavy", &w)[0]), vec![("sync_share".into(), 1.0, 0.1)]);
        let w = profiled(60, vec![gpu(0)], |_| waits(0.03));
        assert!(eval("sync-heavy", &w).is_empty());
        assert_eq!(eval_toml("sync-heavy", "[rules.sync-heavy]\nsync_share = 0.05", &w).len(), 1);
    }
}
