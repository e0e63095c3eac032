//! `thermal-throttle`: thermal slowdown active, or the GPU close to its slowdown temperature.

use super::{HW_THERMAL, SW_THERMAL};
use crate::rules::{Ctx, Hit, PromAlert, RuleInfo, RuleScope, STD, ev, gpu_hit, pct};
use gpuscope_core::{Action, Severity};

settings! {
    /// Within this many °C of the slowdown temperature.
    thermal_margin_c = 5.0,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "thermal-throttle",
    title: "the GPU is throttled by heat",
    scope: RuleScope::Gpu,
    severity: Severity::Warning,
    timing: STD,
    condition: "SW or HW thermal slowdown active, or temperature within 5 C of the slowdown threshold",
    recommendation: "Cooling problem: airflow, fans, inlet temperature, thermal paste.",
    action: Some(Action::Monitor),
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[PromAlert {
        variant: "",
        expr: r#"max without (reason) (gpuscope_gpu_clock_event_active{reason=~"sw_thermal_slowdown|hw_thermal_slowdown"}) == 1 or (gpuscope_gpu_slowdown_temperature_celsius - gpuscope_gpu_temperature_celsius <= 5)"#,
        for_s: 60,
        severity: Severity::Warning,
        summary: "GPU {{ $labels.gpu }} on {{ $labels.instance }} is slowed for heat (thermal slowdown active, or within 5 C of its slowdown temperature).",
        advice: None,
    }],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.thermal_throttle;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let active =
            w.gpu_fraction(g.index, c.now_ms, c.span(), |g| g.reasons.map(|r| r & (SW_THERMAL | HW_THERMAL) != 0));
        let temp = w.gpu_mean(g.index, c.now_ms, c.span(), |g| g.temperature_celsius);
        let near = match (temp, g.slowdown_temperature_celsius) {
            (Some(t0), Some(slow)) => t0 >= slow - t.thermal_margin_c,
            _ => false,
        };
        if active.is_some_and(|f| f > 0.0) || near {
            let mut evidence = Vec::new();
            if let Some(f) = active.filter(|f| *f > 0.0) {
                evidence.push(ev("thermal_slowdown_fraction", f, 0.0));
            }
            if let (Some(t0), Some(slow)) = (temp, g.slowdown_temperature_celsius) {
                evidence.push(ev("temperature_celsius", t0, slow - t.thermal_margin_c));
            }
            out.push(gpu_hit(
                node,
                s,
                g.index,
                format!(
                    "GPU {} runs hot: {}{}",
                    g.index,
                    temp.zip(g.slowdown_temperature_celsius)
                        .map_or(String::new(), |(t0, sl)| format!("{t0:.0} °C against a slowdown at {sl:.0} °C")),
                    active
                        .filter(|f| *f > 0.0)
                        .map_or(String::new(), |f| format!(", thermal slowdown active {} of the time", pct(f)))
                ),
                evidence,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{HW_THERMAL, SW_POWER_CAP};
    use crate::rules::testkit::*;
    use gpuscope_core::GpuSample;

    /// A GPU at `temp` °C with its slowdown at 90 °C and these clock event reasons.
    fn hot(temp: Option<f64>, reasons: Option<u64>) -> crate::window::NodeWindow {
        let g = GpuSample {
            temperature_celsius: temp,
            slowdown_temperature_celsius: Some(90.0),
            clock_event_reasons: reasons,
            ..gpu(1)
        };
        steady(node("n0", vec![gpu(0), g]))
    }

    #[test]
    fn a_temperature_just_below_the_margin_is_not_a_hit() {
        assert!(eval("thermal-throttle", &hot(Some(84.9), Some(SW_POWER_CAP))).is_empty());
    }

    #[test]
    fn a_temperature_just_above_is_a_hit_on_that_gpu() {
        let hits = eval("thermal-throttle", &hot(Some(85.1), Some(0)));
        let h = one_hit(&hits, &[1]);
        assert_eq!(evidence(h), vec![("temperature_celsius".into(), 85.1, 85.0)]);
        assert_eq!(h.summary, "GPU 1 runs hot: 85 °C against a slowdown at 90 °C");
    }

    #[test]
    fn an_active_thermal_slowdown_is_a_hit_at_any_temperature() {
        let hits = eval("thermal-throttle", &hot(None, Some(HW_THERMAL)));
        assert_eq!(evidence(one_hit(&hits, &[1])), vec![("thermal_slowdown_fraction".into(), 1.0, 0.0)]);
    }

    #[test]
    fn absent_temperature_and_reasons_are_no_hit() {
        assert!(eval("thermal-throttle", &hot(None, None)).is_empty());
    }

    #[test]
    fn the_threshold_is_read_from_the_rules_section() {
        let w = hot(Some(82.0), Some(0));
        assert_eq!(eval_toml("thermal-throttle", "[rules.thermal-throttle]\nthermal_margin_c = 10", &w).len(), 1);
    }
}
