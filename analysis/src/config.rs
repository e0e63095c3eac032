//! The analysis configuration: the settings common to every rule, and one `[rules.<id>]`
//! section per rule with its own thresholds (`rules/`); every default comes from `RULES.md`.

pub use crate::rules::RulesConfig;
use serde::Deserialize;

/// Timing of one rule.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// The condition must hold this long before the finding opens.
    pub sustain_s: f64,
    /// The condition must stay false this long before the finding closes.
    pub clear_s: f64,
}

/// The analysis configuration (TOML: `eval_span_s`, `time_scale`, `[rules.<id>]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisConfig {
    /// Seconds of samples averaged when a condition is evaluated (smooths the noise), every rule.
    pub eval_span_s: f64,
    /// Wall seconds per workload second: 1 on real nodes. A simulator running at speed S
    /// compresses time, so 1/S here scales every period and window, and turns the rates the
    /// agent derives from counters (NIC, NVMe, NVLink) back into workload rates.
    pub time_scale: Option<f64>,
    /// Each rule's settings and thresholds, by rule id.
    pub rules: RulesConfig,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        AnalysisConfig { eval_span_s: 10.0, time_scale: None, rules: RulesConfig::default() }
    }
}

impl AnalysisConfig {
    /// The timing of `rule` in wall seconds: its override, else the rule's own, scaled.
    pub fn timing(&self, rule: &str, own: Timing) -> Timing {
        let r = self.rules.common(rule);
        Timing {
            sustain_s: r.and_then(|r| r.sustain_s).unwrap_or(own.sustain_s) * self.scale(),
            clear_s: r.and_then(|r| r.clear_s).unwrap_or(own.clear_s) * self.scale(),
        }
    }

    /// Wall seconds per workload second.
    pub fn scale(&self) -> f64 {
        self.time_scale.filter(|s| *s > 0.0).unwrap_or(1.0)
    }

    /// Whether `rule` is enabled.
    pub fn enabled(&self, rule: &str) -> bool {
        !self.rules.common(rule).is_some_and(|r| r.disabled)
    }

    /// Seconds of history the rules look back at most (workload seconds): the HW slowdown
    /// window and the event holds.
    pub fn history_s(&self) -> f64 {
        let r = &self.rules;
        r.hw_slowdown.hw_slowdown_window_s.max(r.xid_error.event_hold_s).max(r.ecc_uncorrectable.event_hold_s)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // tests fail by panicking
    use super::*;

    fn parse(text: &str) -> Result<AnalysisConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn a_valid_file_sets_common_settings_and_rule_sections() {
        let cfg = parse(
            "eval_span_s = 5\ntime_scale = 0.5\n\n\
             [rules.no-tensor-cores]\nfp32_high = 0.25\nsustain_s = 30\n\n\
             [rules.memory-near-full]\ndisabled = true\n\n\
             [rules.hw-slowdown]\nhw_slowdown_window_s = 900\n",
        )
        .unwrap();
        assert_eq!((cfg.eval_span_s, cfg.scale()), (5.0, 0.5));
        assert_eq!(cfg.rules.no_tensor_cores.fp32_high, 0.25);
        assert_eq!(cfg.rules.no_tensor_cores.tensor_low, 0.05, "the others keep their defaults");
        let own = Timing { sustain_s: 60.0, clear_s: 60.0 };
        assert_eq!(cfg.timing("no-tensor-cores", own), Timing { sustain_s: 15.0, clear_s: 30.0 });
        assert!(!cfg.enabled("memory-near-full"));
        assert!(cfg.enabled("no-tensor-cores"));
        assert_eq!(cfg.history_s(), 900.0);
        assert_eq!(parse("").unwrap(), AnalysisConfig::default());
        assert_eq!(AnalysisConfig::default().history_s(), 600.0);
    }

    #[test]
    fn an_unknown_rule_id_is_an_error_that_names_it() {
        let e = parse("[rules.no-tensor-core]\nfp32_high = 0.2\n").unwrap_err();
        assert!(e.contains("unknown field `no-tensor-core`"), "{e}");
    }

    #[test]
    fn an_unknown_threshold_key_is_an_error_that_names_it() {
        let e = parse("[rules.no-tensor-cores]\nfp64_high = 0.2\n").unwrap_err();
        assert!(e.contains("unknown field `fp64_high`"), "{e}");
        let e = parse("[thresholds]\nfp32_high = 0.2\n").unwrap_err();
        assert!(e.contains("unknown field `thresholds`"), "the old flat table is gone: {e}");
    }

    #[test]
    fn a_wrong_type_is_an_error_that_names_the_key() {
        let e = parse("[rules.retired-pages]\nretired_pages_max = \"sixty\"\n").unwrap_err();
        assert!(e.contains("retired_pages_max") && e.contains("invalid type"), "{e}");
        let e = parse("[rules.gpu-lost]\ndisabled = 1\n").unwrap_err();
        assert!(e.contains("disabled") && e.contains("invalid type"), "{e}");
    }
}
