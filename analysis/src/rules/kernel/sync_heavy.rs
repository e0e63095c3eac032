//! `sync-heavy`: the host waits on the GPU too often. Kernel-level: it needs CUPTI activity records, so it has
//! no evaluation yet, and no thresholds until it has one.

use crate::rules::{RuleInfo, RuleScope, STD};
use gpuscope_core::Severity;

settings! {}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "sync-heavy",
    title: "the host synchronizes with the GPU too often",
    scope: RuleScope::Process,
    severity: Severity::Warning,
    timing: STD,
    condition: "time in device/stream synchronization >= 10% of the window (needs CUPTI)",
    recommendation: "The host waits on the GPU too often: remove .item(), .cpu(), printing tensors and explicit synchronizations from the step loop; use events.",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: None,
    promql: &[],
};
