//! The budget controller: how far apart windows must be for the library to stay within its
//! overhead budget. Pure arithmetic on measured costs; the worker measures, this decides.
//!
//! Two costs: launch counting runs all the time (`idle_cost_ns` over `idle_ns`: a rate `c`, a
//! fraction of one CPU), a window costs `window_cost_ns` once per period. Over a period `P` the
//! library spends about `c·P + W`; staying within `budget·P` needs `P ≥ W / (budget − c)`. The
//! period in effect is the configured one, stretched to that bound when needed, capped. When
//! counting alone exceeds the budget no period helps: the cap is used (and reported).

use std::time::Duration;

/// What the last cycle (the idle span before a window, then the window) cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CycleCost {
    /// Wall time outside windows, ns.
    pub idle_ns: u64,
    /// Time spent in the library's callbacks over `idle_ns`, ns.
    pub idle_cost_ns: u64,
    /// What the window cost: its callbacks, CUPTI's extra CPU time while tracing, and the
    /// processing of its records, ns.
    pub window_cost_ns: u64,
}

/// Decides the period between windows from the measured costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetController {
    // Parts per million of one CPU: integer arithmetic keeps the period exact and reproducible.
    budget_ppm: u64,
    default_period_ns: u64,
    max_period_ns: u64,
}

fn ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl BudgetController {
    /// A controller for `budget` (a fraction of one CPU, clamped to (0, 1]) that never goes
    /// below `default_period` nor above `max_period`.
    pub fn new(budget: f64, default_period: Duration, max_period: Duration) -> Self {
        let budget_ppm = (budget.clamp(0.0, 1.0) * 1e6).round() as u64;
        BudgetController {
            budget_ppm: budget_ppm.max(1),
            default_period_ns: ns(default_period),
            max_period_ns: ns(max_period).max(ns(default_period)),
        }
    }

    /// The period to use after a cycle that cost `cost`, ns.
    pub fn period_ns(&self, cost: &CycleCost) -> u64 {
        // Everything in ppm-ns (u128): budget·P − c·P ≥ W ⇔ P·(ppm·idle − 1e6·idle_cost) ≥ 1e6·W·idle.
        let idle = u128::from(cost.idle_ns);
        let (headroom, needed) = if idle == 0 {
            (u128::from(self.budget_ppm), u128::from(cost.window_cost_ns) * 1_000_000)
        } else {
            let spent = u128::from(cost.idle_cost_ns) * 1_000_000;
            let allowed = u128::from(self.budget_ppm) * idle;
            if spent >= allowed {
                return self.max_period_ns;
            }
            (allowed - spent, u128::from(cost.window_cost_ns) * 1_000_000 * idle)
        };
        let period = needed.div_ceil(headroom);
        u64::try_from(period).unwrap_or(u64::MAX).clamp(self.default_period_ns, self.max_period_ns)
    }
}

/// The window's cost from what the worker measured: the larger of the library's own time (its
/// worker's CPU time for the window's processing plus its callbacks inside the window) and the
/// process's extra CPU time over that span compared with its rate while idle — the second
/// catches CUPTI's own tracing work, which happens inside the driver and no callback sees.
pub fn window_cost_ns(
    own_ns: u64,
    span_ns: u64,
    process_cpu_span_ns: u64,
    idle_process_cpu_ns: u64,
    idle_ns: u64,
) -> u64 {
    let expected = if idle_ns == 0 {
        0
    } else {
        u64::try_from(u128::from(idle_process_cpu_ns) * u128::from(span_ns) / u128::from(idle_ns)).unwrap_or(u64::MAX)
    };
    own_ns.max(process_cpu_span_ns.saturating_sub(expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: u64 = 1_000_000_000;

    fn controller() -> BudgetController {
        BudgetController::new(0.01, Duration::from_secs(30), Duration::from_secs(600))
    }

    /// A cycle at `rate` launches/s: counting costs `count_ns` per launch outside the 0.5 s
    /// window, and each launch inside it costs `traced_ns` (CUPTI's record + our processing).
    fn cycle(rate: u64, count_ns: u64, traced_ns: u64) -> CycleCost {
        let idle_ns = 29_500 * MS;
        CycleCost {
            idle_ns,
            idle_cost_ns: rate * idle_ns / S * count_ns,
            window_cost_ns: rate / 2 * (count_ns + traced_ns),
        }
    }

    #[test]
    fn twenty_thousand_launches_per_second_stretch_the_period_to_the_computed_value() {
        // 20,000/s × 100 ns counting = 0.2 % of a CPU, leaving 0.8 % for windows; a window of
        // 10,000 traced launches at 29.9 µs + 0.1 µs = 300 ms needs 300 ms / 0.008 = 37.5 s.
        let cost = cycle(20_000, 100, 29_900);
        assert_eq!(cost, CycleCost { idle_ns: 29_500 * MS, idle_cost_ns: 59 * MS, window_cost_ns: 300 * MS });
        assert_eq!(controller().period_ns(&cost), 37_500 * MS);
    }

    #[test]
    fn the_period_returns_to_the_default_when_the_rate_drops() {
        let c = controller();
        assert_eq!(c.period_ns(&cycle(20_000, 100, 29_900)), 37_500 * MS);
        // 100/s: a window costs 1.5 ms, far inside 1 % of 30 s.
        assert_eq!(c.period_ns(&cycle(100, 100, 29_900)), 30 * S);
        assert_eq!(c.period_ns(&CycleCost::default()), 30 * S);
    }

    #[test]
    fn cheap_tracing_keeps_the_default_even_at_a_high_rate() {
        // 20,000/s with 1 µs per traced launch: 10 ms per window, 0.008 × 30 s = 240 ms allowed.
        assert_eq!(controller().period_ns(&cycle(20_000, 100, 900)), 30 * S);
    }

    #[test]
    fn counting_alone_over_budget_gives_the_cap() {
        // 20,000/s × 600 ns = 1.2 % of a CPU before any window.
        assert_eq!(controller().period_ns(&cycle(20_000, 600, 1_000)), 600 * S);
    }

    #[test]
    fn a_very_expensive_window_is_capped() {
        let cost = CycleCost { idle_ns: 0, idle_cost_ns: 0, window_cost_ns: 10 * S };
        // 10 s / 0.01 = 1000 s > the 600 s cap.
        assert_eq!(controller().period_ns(&cost), 600 * S);
        let cost = CycleCost { idle_ns: 0, idle_cost_ns: 0, window_cost_ns: 4 * S };
        assert_eq!(controller().period_ns(&cost), 400 * S);
    }

    #[test]
    fn a_larger_budget_stretches_less() {
        let c = BudgetController::new(0.05, Duration::from_secs(30), Duration::from_secs(600));
        // 300 ms / (0.05 − 0.002) = 6.25 s → the default.
        assert_eq!(c.period_ns(&cycle(20_000, 100, 29_900)), 30 * S);
        let cost = CycleCost { idle_ns: 0, idle_cost_ns: 0, window_cost_ns: 2 * S };
        assert_eq!(c.period_ns(&cost), 40 * S);
    }

    #[test]
    fn the_window_cost_is_the_larger_of_own_time_and_extra_process_cpu() {
        // Idle: 1 CPU-second over 10 s (10 %). The window span of 1 s burned 400 ms of process
        // CPU: 100 ms expected, 300 ms extra.
        assert_eq!(window_cost_ns(20 * MS, S, 400 * MS, S, 10 * S), 300 * MS);
        // Less process CPU than expected (noise): own time stands.
        assert_eq!(window_cost_ns(20 * MS, S, 50 * MS, S, 10 * S), 20 * MS);
        // No idle span measured yet: all of the span's process CPU counts.
        assert_eq!(window_cost_ns(20 * MS, S, 70 * MS, 0, 0), 70 * MS);
    }
}
