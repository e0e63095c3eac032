//! `hw-slowdown`: hardware cuts the clocks again and again (HW slowdown, power brake).

use super::{HW_POWER_BRAKE, HW_SLOWDOWN};
use crate::rules::{Ctx, Hit, PromAlert, RuleInfo, RuleScope, STD, ev, gpu_hit};
use gpuscope_core::{Action, Severity};

settings! {
    /// HW slowdown or power brake onsets per minute at or above this.
    hw_slowdown_per_min = 0.6,
    /// Window for counting the onsets, seconds (the analyzer keeps at least this much history).
    hw_slowdown_window_s = 600.0,
}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "hw-slowdown",
    title: "hardware slowdown cuts the clocks",
    scope: RuleScope::Gpu,
    severity: Severity::Critical,
    timing: STD,
    condition: "HW slowdown or HW power brake onsets >= 0.6 per minute over 10 min",
    recommendation: "Clocks cut hard by hardware: power supply or external power brake, or overheating. Check PSU/PDU and cooling; drain if persistent.",
    action: Some(Action::Drain),
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: Some(eval),
    promql: &[PromAlert {
        variant: "",
        expr: r#"sum without (reason) (changes(gpuscope_gpu_clock_event_active{reason=~"hw_slowdown|hw_power_brake_slowdown"}[10m])) / 2 / 10 >= 0.6"#,
        for_s: 60,
        severity: Severity::Critical,
        summary: r#"GPU {{ $labels.gpu }} on {{ $labels.instance }}: hardware slowdown or power brake {{ $value | printf "%.1f" }} times a minute over 10 minutes."#,
        advice: None,
    }],
};

fn eval(c: &Ctx) -> Vec<Hit> {
    let t = &c.cfg.rules.hw_slowdown;
    let mut out = Vec::new();
    for (node, w, s, g) in c.gpus() {
        let span = c.ms(t.hw_slowdown_window_s);
        let states: Vec<(u64, bool)> = w
            .thin(c.now_ms, span)
            .filter_map(|snap| {
                let gs = snap.gpus.iter().find(|x| x.index == g.index)?;
                gs.reasons.map(|r| (snap.timestamp_ms, r & (HW_SLOWDOWN | HW_POWER_BRAKE) != 0))
            })
            .collect();
        let (Some(first), Some(last)) = (states.first(), states.last()) else { continue };
        let minutes = (last.0 - first.0) as f64 / 1000.0 / 60.0 / c.scale;
        // Onsets: inactive → active transitions (a held state counts once).
        let onsets = states.windows(2).filter(|p| !p[0].1 && p[1].1).count() + usize::from(first.1);
        if minutes >= 1.0 {
            let per_min = onsets as f64 / minutes;
            if per_min >= t.hw_slowdown_per_min {
                out.push(gpu_hit(
                    node,
                    s,
                    g.index,
                    format!(
                        "Hardware cut GPU {}'s clocks {onsets} times in {minutes:.0} min (HW slowdown / power brake)",
                        g.index
                    ),
                    vec![ev("hw_slowdown_per_minute", per_min, t.hw_slowdown_per_min)],
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{HW_POWER_BRAKE, HW_SLOWDOWN};
    use crate::rules::testkit::*;
    use gpuscope_core::GpuSample;

    /// Ten minutes of GPU 2 with `onsets` HW slowdowns (or power brakes) of 5 s, 100 s apart.
    fn slowed(onsets: u64, reasons_read: bool) -> crate::window::NodeWindow {
        series(600, |t| {
            let on = t % 100 >= 50 && t % 100 < 55 && t / 100 < onsets;
            let bit = if t / 100 % 2 == 0 { HW_SLOWDOWN } else { HW_POWER_BRAKE };
            let g = GpuSample { clock_event_reasons: reasons_read.then_some(if on { bit } else { 0 }), ..gpu(2) };
            node("n0", vec![gpu(0), g])
        })
    }

    #[test]
    fn onsets_just_below_the_rate_are_not_a_hit() {
        assert!(eval("hw-slowdown", &slowed(5, true)).is_empty());
    }

    #[test]
    fn onsets_at_the_rate_are_a_hit_on_that_gpu() {
        let hits = eval("hw-slowdown", &slowed(6, true));
        let h = one_hit(&hits, &[2]);
        assert_eq!(evidence(h), vec![("hw_slowdown_per_minute".into(), 0.6, 0.6)]);
        assert_eq!(h.summary, "Hardware cut GPU 2's clocks 6 times in 10 min (HW slowdown / power brake)");
    }

    #[test]
    fn absent_reasons_are_no_hit() {
        assert!(eval("hw-slowdown", &slowed(6, false)).is_empty());
    }

    #[test]
    fn the_thresholds_are_read_from_the_rules_section() {
        let section = "[rules.hw-slowdown]\n";
        let w = slowed(5, true);
        assert_eq!(eval_toml("hw-slowdown", &format!("{section}hw_slowdown_per_min = 0.5"), &w).len(), 1);
        // The last 4 minutes hold 2 onsets (at 450 and 550 s): 0.5 a minute.
        let w = slowed(6, true);
        assert!(eval_toml("hw-slowdown", &format!("{section}hw_slowdown_window_s = 240"), &w).is_empty());
    }
}
