//! `app-clocks-capped`: application clocks hold the GPU below its maximum.

use super::APP_CLOCKS;
use crate::rules::{Ctx, Hit, PromAlert, RuleInfo, RuleScope, STD, ev, gpu_hit};
use gpuscope_core::Severity;

settings! {
    /// The applications-clocks reason active at least this fraction of the smoothing span.
    active_fraction = 0.5,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "app-clocks-capped",
    title: "application clocks cap the GPU",
    scope: RuleScope::Gpu,
    severity: Severity::Info,
    timing: STD,
    condition: "applications-clocks-setting clock event active",
    recommendation: "Application clocks cap the GPU; reset them (nvidia-smi -rac) unless intended.",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[PromAlert {
        variant: "",
        expr: r#"avg_over_time(gpuscope_gpu_clock_event_active{reason="applications_clocks_setting"}[1m]) >= 0.5"#,
        for_s: 60,
        severity: Severity::Info,
        summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }}: application clocks cap the GPU.",
        advice: None,
    }],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.app_clocks_capped;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let Some(f) = w.gpu_fraction(g.index, c.now_ms, c.span(), |g| g.reasons.map(|r| r & APP_CLOCKS != 0)) else {
            continue;
        };
        if f >= t.active_fraction {
            let clock = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.sm_clock_hertz).unwrap_or(0.0);
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!("Application clocks hold GPU {} at {:.0} MHz", g.index, clock / 1e6),
                vec![ev("applications_clocks_fraction", f, t.active_fraction)],
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::APP_CLOCKS;
    use crate::rules::testkit::*;
    use gpuscope_core::GpuSample;

    /// The applications-clocks reason active in the first `active` of 11 samples.
    fn held(active: u64, reasons_read: bool) -> crate::window::NodeWindow {
        series(10, |t| {
            let g = GpuSample {
                clock_event_reasons: reasons_read.then_some(if t < active { APP_CLOCKS } else { 0 }),
                sm_clock_hertz: Some(1.2e9),
                ..gpu(0)
            };
            node("n0", vec![g])
        })
    }

    #[test]
    fn active_just_below_half_the_span_is_not_a_hit() {
        assert!(eval("app-clocks-capped", &held(5, true)).is_empty());
    }

    #[test]
    fn active_just_above_is_a_hit_on_that_gpu() {
        let hits = eval("app-clocks-capped", &held(6, true));
        let h = one_hit(&hits, &[0]);
        assert_eq!(evidence(h), vec![("applications_clocks_fraction".into(), 0.545455, 0.5)]);
        assert_eq!(h.summary, "Application clocks hold GPU 0 at 1200 MHz");
    }

    #[test]
    fn absent_reasons_are_no_hit() {
        assert!(eval("app-clocks-capped", &held(11, false)).is_empty());
    }

    #[test]
    fn the_threshold_is_read_from_the_rules_section() {
        let w = held(5, true);
        assert_eq!(eval_toml("app-clocks-capped", "[rules.app-clocks-capped]\nactive_fraction = 0.4", &w).len(), 1);
    }
}
