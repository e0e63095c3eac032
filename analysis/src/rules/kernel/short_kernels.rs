//! `short-kernels`: kernels so short that launch overhead dominates. Kernel-level: it needs CUPTI activity records, so it has
//! no evaluation yet, and no thresholds until it has one.

use crate::rules::{RuleInfo, RuleScope, STD};
use gpuscope_core::Severity;

settings! {}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "short-kernels",
    title: "kernels too short for their launch overhead",
    scope: RuleScope::Process,
    severity: Severity::Info,
    timing: STD,
    condition: "median kernel duration < 10 us and kernels are launch-limited (needs CUPTI)",
    recommendation: "Launch overhead dominates: CUDA Graphs, torch.compile, fusion.",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: None,
    promql: &[],
};
