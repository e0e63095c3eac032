//! `nvlink-errors`: NVLink CRC, replay or recovery errors, or a link down.

use crate::rules::{Ctx, EVENT, Hit, PromAlert, RuleInfo, RuleScope, ev, gpu_hit};
use gpuscope_core::{Action, Severity};

settings! {
    /// NVLink CRC errors per second at or above this are critical.
    nvlink_crc_per_s_critical = 100.0,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "nvlink-errors",
    title: "NVLink errors or a link down",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: EVENT,
    condition: "NVLink CRC errors rising (>= 100/s critical), any replay/recovery error, or a link down",
    recommendation: "NVLink fault: check link state and Fabric Manager; field diagnostic if it persists.",
    action: Some(Action::Monitor),
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[
        PromAlert {
            variant: "",
            expr: "sum without (link) (increase(gpuscope_gpu_nvlink_crc_errors_total[2m]) + increase(gpuscope_gpu_nvlink_replay_errors_total[2m]) + increase(gpuscope_gpu_nvlink_recovery_errors_total[2m])) > 0 or count without (link) (gpuscope_gpu_nvlink_up == 0)",
            for_s: 0,
            severity: Severity::Warning,
            summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }}: {{ $value }} NVLink errors in the last 2 minutes, or links down.",
            advice: None,
        },
        PromAlert {
            variant: "Critical",
            expr: "sum without (link) (rate(gpuscope_gpu_nvlink_crc_errors_total[1m])) >= 100",
            for_s: 0,
            severity: Severity::Critical,
            summary: r#"GPU {{ $labels.gpu }} on {{ $labels.instance }}: {{ $value | printf "%.0f" }} NVLink CRC errors per second (100 or more)."#,
            advice: None,
        },
    ],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.nvlink_errors;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        if g.nvlinks.is_empty() {
            continue;
        }
        let span = c.ms(120.0);
        let crc = w.gpu_increase(g.index, c.now_ms, span, |g| g.nvlink_crc.map(|v| v as f64));
        let replay =
            w.gpu_increase(g.index, c.now_ms, span, |g| g.nvlink_replay.map(|v| v as f64)).map_or(0.0, |x| x.0);
        let recovery =
            w.gpu_increase(g.index, c.now_ms, span, |g| g.nvlink_recovery.map(|v| v as f64)).map_or(0.0, |x| x.0);
        let down = g.nvlinks.iter().filter(|l| l.active == Some(false)).count();
        let crc_rate = crc.filter(|(_, secs)| *secs > 0.0).map_or(0.0, |(inc, secs)| inc / (secs / c.scale));
        if crc_rate > 0.0 || replay > 0.0 || recovery > 0.0 || down > 0 {
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} NVLink: {crc_rate:.0} CRC errors/s, {replay:.0} replay and {recovery:.0} recovery errors, {down} link(s) down",
                    g.index
                ),
                vec![
                    ev("nvlink_crc_per_second", crc_rate, t.nvlink_crc_per_s_critical),
                    ev("nvlink_replay_errors", replay, 0.0),
                    ev("nvlink_recovery_errors", recovery, 0.0),
                    ev("nvlink_links_down", down as f64, 0.0),
                ],
            );
            if crc_rate >= t.nvlink_crc_per_s_critical || down > 0 {
                h.severity = Some(Severity::Critical);
                h.action = Some(Action::Drain);
            }
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::{Action, GpuSample, NvLinkSample, Severity};

    /// Two minutes of GPU 0 with two active links whose CRC counters rise by `crc_per_s` each
    /// second in total; `None` leaves them unread.
    fn crc(crc_per_s: Option<u64>) -> crate::window::NodeWindow {
        series(120, |t| {
            let link = |link| NvLinkSample {
                link,
                active: Some(true),
                crc_errors_total: crc_per_s.map(|r| r * t / 2),
                replay_errors_total: Some(0),
                recovery_errors_total: Some(0),
                ..NvLinkSample::default()
            };
            node("n0", vec![GpuSample { nvlinks: vec![link(0), link(1)], ..gpu(0) }])
        })
    }

    #[test]
    fn quiet_links_are_not_a_hit() {
        assert!(eval("nvlink-errors", &crc(Some(0))).is_empty());
    }

    #[test]
    fn crc_errors_just_below_the_critical_rate_are_a_warning() {
        let hits = eval("nvlink-errors", &crc(Some(98)));
        let h = one_hit(&hits, &[0]);
        assert_eq!(evidence(h)[0], ("nvlink_crc_per_second".into(), 98.0, 100.0));
        assert_eq!(h.severity, None);
    }

    #[test]
    fn crc_errors_just_above_are_critical() {
        let hits = eval("nvlink-errors", &crc(Some(102)));
        let h = one_hit(&hits, &[0]);
        assert_eq!((h.severity, h.action), (Some(Severity::Critical), Some(Action::Drain)));
    }

    #[test]
    fn absent_counters_are_no_hit() {
        assert!(eval("nvlink-errors", &crc(None)).is_empty());
        assert!(eval("nvlink-errors", &steady(node("n0", vec![gpu(0)]))).is_empty(), "no NVLink");
    }

    #[test]
    fn the_critical_rate_is_read_from_the_rules_section() {
        let hits = eval_toml("nvlink-errors", "[rules.nvlink-errors]\nnvlink_crc_per_s_critical = 50", &crc(Some(60)));
        assert_eq!(one_hit(&hits, &[0]).severity, Some(Severity::Critical));
    }
}
