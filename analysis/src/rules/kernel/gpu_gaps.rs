//! `gpu-gaps`: long idle gaps between a process's kernels. Kernel-level: it needs CUPTI activity records, so it has
//! no evaluation yet, and no thresholds until it has one.

use crate::rules::{RuleInfo, RuleScope, STD};
use gpuscope_core::Severity;

settings! {}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "gpu-gaps",
    title: "the GPU sits idle between kernels",
    scope: RuleScope::Process,
    severity: Severity::Warning,
    timing: STD,
    condition: "GPU idle gaps > 500 ms between kernels while the process runs (needs CUPTI)",
    recommendation: "The CPU side stalls between GPU work: profile the host (data loading, checkpointing, logging).",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: None,
    promql: &[],
};
