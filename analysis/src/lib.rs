//! The bottleneck and health rules of `RULES.md`, one module per rule under `rules/` (its
//! metadata, thresholds, evaluation and tests): pure functions from windows of node snapshots to
//! findings, and the hysteresis that opens a finding only after its condition held for a sustain
//! period and closes it only after it stayed false for a clear period.

pub mod config;
pub mod engine;
pub mod rules;
pub mod validate;
pub mod window;
pub mod xid;

pub use config::{AnalysisConfig, Timing};
pub use engine::{Analyzer, Change};
pub use rules::{PromAlert, RULES, RuleInfo, RuleScope, RulesConfig, Threshold, rule};
pub use window::NodeWindow;
