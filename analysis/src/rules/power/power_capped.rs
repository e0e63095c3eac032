//! `power-capped`: the software power cap holds the SM clock down.

use super::SW_POWER_CAP;
use crate::rules::{Ctx, Hit, PromAlert, RuleInfo, RuleScope, STD, ev, gpu_hit, pct};
use gpuscope_core::Severity;

settings! {
    /// SW power cap active at least this fraction of the last minute.
    power_cap_fraction = 0.5,
    /// SM clock below this fraction of its maximum.
    clock_low = 0.9,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "power-capped",
    title: "the power cap holds the clocks down",
    scope: RuleScope::Gpu,
    severity: Severity::Info,
    timing: STD,
    condition: "SW power cap active >= 50% of the window and SM clock < 0.9 of max",
    recommendation: "Power-bound. Normal for some workloads at full load; if the power limit is below the default limit, it was lowered: restore it. For efficiency, a lower limit can save energy with little slowdown on memory-bound work.",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[PromAlert {
        variant: "",
        expr: r#"avg_over_time(gpuscope_gpu_clock_event_active{reason="sw_power_cap"}[1m]) >= 0.5 and on (instance, gpu) (gpuscope_gpu_sm_clock_hertz / gpuscope_gpu_sm_clock_max_hertz < 0.9)"#,
        for_s: 60,
        severity: Severity::Info,
        summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} is held at its power cap {{ $value | humanizePercentage }} of the time with the SM clock below 90% of its maximum.",
        advice: None,
    }],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.power_capped;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let span = c.ms(60.0).max(c.span());
        let Some(frac) = w.gpu_fraction(g.index, c.now_ms, span, |g| g.reasons.map(|r| r & SW_POWER_CAP != 0)) else {
            continue;
        };
        let (Some(clock), Some(max)) =
            (w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.sm_clock_hertz), g.sm_clock_max_hertz)
        else {
            continue;
        };
        if frac >= t.power_cap_fraction && clock < t.clock_low * max {
            let mut h = gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} is power-capped {} of the time at {:.0} MHz ({} of its maximum clock)",
                    g.index,
                    pct(frac),
                    clock / 1e6,
                    pct(clock / max)
                ),
                vec![
                    ev("sw_power_cap_fraction", frac, t.power_cap_fraction),
                    ev("sm_clock_fraction", clock / max, t.clock_low),
                ],
            );
            if let (Some(limit), Some(default)) = (g.power_limit_watts, g.power_default_limit_watts)
                && limit < default
            {
                h.severity = Some(gpuscope_core::Severity::Warning);
                h.summary.push_str(&format!(
                    "; its power limit was lowered to {limit:.0} W from the default {default:.0} W"
                ));
                h.evidence.push(ev("power_limit_watts", limit, default));
                h.recommendation = Some(format!(
                    "The power limit was lowered from {default:.0} W to {limit:.0} W: restore it (nvidia-smi -pl {default:.0}) unless the cap is intended."
                ));
            }
            out.push(h);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::SW_POWER_CAP;
    use crate::rules::testkit::*;
    use gpuscope_core::{GpuSample, Severity};

    /// A GPU with a 2 GHz maximum clock running at `clock_fraction` of it; the power cap is
    /// active in the first `capped` of the 11 samples.
    fn capped(capped: u64, clock_fraction: Option<f64>, reasons_read: bool) -> crate::window::NodeWindow {
        series(10, |t| {
            let g = GpuSample {
                sm_clock_max_hertz: Some(2e9),
                sm_clock_hertz: clock_fraction.map(|f| f * 2e9),
                clock_event_reasons: reasons_read.then_some(if t < capped { SW_POWER_CAP } else { 0 }),
                ..gpu(4)
            };
            node("n0", vec![g])
        })
    }

    #[test]
    fn a_clock_just_above_the_threshold_is_not_a_hit() {
        assert!(eval("power-capped", &capped(11, Some(0.91), true)).is_empty());
        assert!(eval("power-capped", &capped(5, Some(0.5), true)).is_empty(), "capped 5 of 11 samples");
    }

    #[test]
    fn a_clock_just_below_while_capped_is_a_hit_on_that_gpu() {
        let hits = eval("power-capped", &capped(6, Some(0.89), true));
        let h = one_hit(&hits, &[4]);
        assert_eq!(
            evidence(h),
            vec![("sw_power_cap_fraction".into(), 0.545455, 0.5), ("sm_clock_fraction".into(), 0.89, 0.9)]
        );
        assert_eq!(h.severity, None, "the limit was not lowered");
    }

    #[test]
    fn a_lowered_power_limit_escalates() {
        let w = series(10, |_| {
            let g = GpuSample {
                sm_clock_max_hertz: Some(2e9),
                sm_clock_hertz: Some(1.5e9),
                clock_event_reasons: Some(SW_POWER_CAP),
                power_limit_watts: Some(500.0),
                power_default_limit_watts: Some(700.0),
                ..gpu(4)
            };
            node("n0", vec![g])
        });
        let hits = eval("power-capped", &w);
        let h = one_hit(&hits, &[4]);
        assert_eq!(h.severity, Some(Severity::Warning));
        assert!(h.recommendation.as_deref().is_some_and(|r| r.contains("nvidia-smi -pl 700")));
    }

    #[test]
    fn absent_reasons_or_clocks_are_no_hit() {
        assert!(eval("power-capped", &capped(11, Some(0.5), false)).is_empty());
        assert!(eval("power-capped", &capped(11, None, true)).is_empty());
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let w = capped(11, Some(0.92), true);
        assert_eq!(eval_toml("power-capped", "[rules.power-capped]\nclock_low = 0.95", &w).len(), 1);
        let w = capped(5, Some(0.5), true);
        assert_eq!(eval_toml("power-capped", "[rules.power-capped]\npower_cap_fraction = 0.4", &w).len(), 1);
    }
}
