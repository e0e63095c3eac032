//! Kernel-level rules: they read what the CUPTI injection library measured inside a process
//! (`NodeSnapshot::kernel_profiles`), one finding per process.
//!
//! **Two windows.** A process is profiled in short windows (0.5 s every 30 s by default, the
//! period stretched by the overhead budget), and a snapshot carries only its latest window. A
//! single window is a half-second sample of a job: a checkpoint, an evaluation pass or a warm-up
//! can make any one of them look wrong. So a rule holds for a process only when its condition
//! held in the process's latest window **and** in the window before it (consecutive: at most
//! three periods apart, see [`NodeWindow::kernel_previous`]), and its evidence reports the
//! weaker of the two values. That requirement is the sustain period, whatever the period in
//! effect, so these rules open as soon as it is met ([`KERNEL`]); they close after 60 s without
//! it, two windows at the default period (the latest window is judged until the next replaces
//! it).

pub mod fp32_gemm_kernels;
#[cfg(test)]
mod from_records;
pub mod gpu_gaps;
pub mod pageable_memcpy;
pub mod short_kernels;
pub mod sync_heavy;

use crate::config::Timing;
use crate::rules::{Ctx, Hit};
use crate::window::NodeWindow;
use gpuscope_core::{Evidence, KernelProfile, NodeSnapshot};

/// Timing of the kernel-level rules: the two-window requirement is their sustain period.
pub(crate) const KERNEL: Timing = Timing { sustain_s: 0.0, clear_s: 60.0 };

/// (node, window, latest snapshot, profile) for every profiled process of every node with data.
pub(crate) fn profiles<'a>(
    c: &'a Ctx,
) -> impl Iterator<Item = (&'a str, &'a NodeWindow, &'a NodeSnapshot, &'a KernelProfile)> {
    c.latest().flat_map(|(n, w, s)| s.kernel_profiles.iter().map(move |p| (n, w, s, p)))
}

/// The value `f` reads from the latest and the previous window of `p`, when both have one; the
/// caller judges both.
pub(crate) fn both<T>(w: &NodeWindow, p: &KernelProfile, f: impl Fn(&KernelProfile) -> Option<T>) -> Option<(T, T)> {
    let prev = w.kernel_previous(p)?;
    Some((f(p)?, f(prev)?))
}

/// Who the finding is about: the process, its user, and its pod or container, where known.
pub(crate) fn who(p: &KernelProfile) -> String {
    crate::rules::process_who(
        &p.name,
        p.pid,
        p.user.as_deref(),
        p.namespace.as_deref(),
        p.pod.as_deref(),
        p.container.as_deref(),
    )
}

/// A process-scope hit: on the process's GPUs, one finding per process (its PID is the cause
/// that tells it apart from another process's finding of the same rule on the node).
pub(crate) fn process_hit(
    node: &str,
    s: &NodeSnapshot,
    p: &KernelProfile,
    summary: String,
    evidence: Vec<Evidence>,
) -> Hit {
    Hit {
        node: Some(node.to_string()),
        gpus: p.gpus.clone(),
        job: s.node.job.clone(),
        severity: None,
        summary,
        evidence,
        action: None,
        recommendation: None,
        cause: Some(format!("process {}", p.pid)),
    }
}

/// A duration in the unit that reads best: µs below a millisecond, ms below a second.
pub(crate) fn duration(secs: f64) -> String {
    if secs < 1e-3 {
        format!("{:.1} µs", secs * 1e6)
    } else if secs < 1.0 {
        format!("{:.0} ms", secs * 1e3)
    } else {
        format!("{secs:.1} s")
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;

    /// The two-window requirement on the window history: a process's previous window is the one
    /// before its latest, not one from another process under the same PID or from before a pause.
    #[test]
    fn the_previous_window_is_consecutive_and_of_the_same_process() {
        // Windows at 0, 30 and 60 s: the latest (60 s) follows the one at 30 s.
        let w = profiled(60, vec![gpu(0)], |_| kernel_profile(4242));
        let s = w.latest().expect("data");
        let p = &s.kernel_profiles[0];
        assert_eq!(p.windows_total, 3);
        let prev = w.kernel_previous(p).expect("a previous window");
        assert_eq!((prev.windows_total, p.window_end_unix_ms - prev.window_end_unix_ms), (2, 30_000));
        // The first window has none.
        let w = profiled(20, vec![gpu(0)], |_| kernel_profile(4242));
        assert!(w.kernel_previous(&w.latest().expect("data").kernel_profiles[0]).is_none());
        // A new process under the same PID (its window count starts again) has none.
        let w = profiled(60, vec![gpu(0)], |k| {
            let mut p = kernel_profile(4242);
            if k == 2 {
                p.windows_total = 1;
            }
            p
        });
        let s = w.latest().expect("data");
        assert_eq!(s.kernel_profiles[0].windows_total, 1);
        assert!(w.kernel_previous(&s.kernel_profiles[0]).is_none());
        // Windows more than three periods apart (a period of 5 s: 30 s is six) are not consecutive.
        let w = profiled(60, vec![gpu(0)], |_| gpuscope_core::KernelProfile {
            period_seconds: 5.0,
            ..kernel_profile(4242)
        });
        assert!(w.kernel_previous(&w.latest().expect("data").kernel_profiles[0]).is_none());
    }

    /// Through the analyzer: two processes waiting on their GPUs from second 0, profiled every
    /// 30 s. Each opens its own finding at the second window (30 s), naming the process; when
    /// one stops waiting (its window at 90 s), its finding closes 60 s after its last hit (89 s).
    #[test]
    fn findings_open_at_the_second_window_one_per_process_and_close_after_sixty_seconds() {
        use crate::engine::{Analyzer, Change};
        use gpuscope_core::{KernelProfile, NodeInfo, NodeSnapshot};
        let mut a = Analyzer::new(crate::config::AnalysisConfig::default(), 600.0);
        let mut log = Vec::new();
        for t in 0..=200u64 {
            let k = t / PERIOD_S;
            let window = |pid: u32, sync: f64| KernelProfile {
                sync_seconds: sync,
                windows_total: k + 1,
                window_end_unix_ms: k * PERIOD_S * 1000,
                pod: Some(format!("train-{pid}")),
                namespace: Some("ml".into()),
                ..kernel_profile(pid)
            };
            let snap = NodeSnapshot {
                node: NodeInfo { hostname: "n0".into(), ..NodeInfo::default() },
                timestamp_ms: t * 1000,
                gpus: vec![gpu(0)],
                kernel_profiles: vec![window(100, 0.2), window(200, if k >= 3 { 0.0 } else { 0.2 })],
                ..NodeSnapshot::default()
            };
            a.ingest(std::sync::Arc::new(snap));
            for c in a.evaluate(t * 1000) {
                match c {
                    Change::Opened(f) => log.push(("open", t, f.cause.unwrap_or_default(), f.summary)),
                    Change::Closed { finding, at_ms } => {
                        log.push(("close", at_ms / 1000, finding.cause.unwrap_or_default(), String::new()))
                    }
                }
            }
        }
        let wait = |pid| {
            format!(
                "python ({pid}, pod ml/train-{pid}) spends 40% of its profiling windows waiting for the GPU in synchronization calls (200 ms of the latest 500 ms)"
            )
        };
        assert_eq!(
            log,
            vec![
                ("open", 30, "process 100".into(), wait(100)),
                ("open", 30, "process 200".into(), wait(200)),
                ("close", 149, "process 200".into(), String::new()),
            ]
        );
    }

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(super::duration(4e-6), "4.0 µs");
        assert_eq!(super::duration(0.72), "720 ms");
        assert_eq!(super::duration(2.5), "2.5 s");
    }
}
