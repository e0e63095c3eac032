//! `ecc-uncorrectable`: the volatile uncorrectable ECC count rose.

use crate::rules::{Ctx, EVENT, Hit, PromAlert, RuleInfo, RuleScope, ev, gpu_hit};
use gpuscope_core::{Action, Severity};

settings! {
    /// How long an uncorrectable error keeps its finding open: the span of counter readings
    /// looked at, seconds (the analyzer keeps at least this much history).
    event_hold_s = 300.0,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "ecc-uncorrectable",
    title: "uncorrectable ECC errors",
    scope: RuleScope::Gpu,
    severity: Severity::Critical,
    timing: EVENT,
    condition: "volatile uncorrectable ECC count increases",
    recommendation: "Drain and reset the GPU; run diagnostics.",
    action: Some(Action::ResetGpu),
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[PromAlert {
        variant: "",
        expr: "increase(gpuscope_gpu_ecc_uncorrected_volatile_errors_total[5m]) > 0",
        for_s: 0,
        severity: Severity::Critical,
        summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} had {{ $value }} uncorrectable ECC error(s) in the last 5 minutes.",
        advice: None,
    }],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let span = c.ms(c.cfg.rules.ecc_uncorrectable.event_hold_s);
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let Some((inc, _)) = w.gpu_increase(g.index, c.now_ms, span, |g| g.ecc_uncorrected.map(|v| v as f64)) else {
            continue;
        };
        // The first reading of a fresh agent is compared with the GPU's driver-load state: a
        // non-zero volatile count at first sight is a new error since the last reset.
        let first = w
            .thin(c.now_ms, span)
            .find_map(|s| s.gpus.iter().find(|x| x.index == g.index)?.ecc_uncorrected)
            .unwrap_or(0);
        let total = inc + first as f64;
        if total > 0.0 {
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!("GPU {} had {total:.0} uncorrectable ECC error(s) since its last reset", g.index),
                vec![ev("ecc_uncorrected_volatile", total, 0.0)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::rules::testkit::*;
    use gpuscope_core::GpuSample;

    /// Five minutes of GPU 0 whose volatile count is `count(t)`.
    fn counted(count: impl Fn(u64) -> Option<u64>) -> crate::window::NodeWindow {
        series(300, |t| node("n0", vec![GpuSample { ecc_uncorrected_volatile_total: count(t), ..gpu(0) }]))
    }

    #[test]
    fn a_count_that_stays_zero_is_not_a_hit() {
        assert!(eval("ecc-uncorrectable", &counted(|_| Some(0))).is_empty());
    }

    #[test]
    fn a_count_that_rises_by_one_is_a_hit_on_that_gpu() {
        let hits = eval("ecc-uncorrectable", &counted(|t| Some(u64::from(t >= 200))));
        let h = one_hit(&hits, &[0]);
        assert_eq!(evidence(h), vec![("ecc_uncorrected_volatile".into(), 1.0, 0.0)]);
        assert_eq!(h.summary, "GPU 0 had 1 uncorrectable ECC error(s) since its last reset");
    }

    #[test]
    fn an_absent_count_is_not_zero_and_not_an_error() {
        assert!(eval("ecc-uncorrectable", &counted(|_| None)).is_empty());
    }

    #[test]
    fn the_hold_is_read_from_the_rules_section() {
        // An error seen only in the first 50 s of a 7-minute window, the count unread since.
        let w = series(420, |t| {
            node("n0", vec![GpuSample { ecc_uncorrected_volatile_total: (t < 50).then_some(1), ..gpu(0) }])
        });
        assert!(eval("ecc-uncorrectable", &w).is_empty(), "older than the default 300 s");
        assert_eq!(eval_toml("ecc-uncorrectable", "[rules.ecc-uncorrectable]\nevent_hold_s = 400", &w).len(), 1);
    }
}
