//! `pageable-memcpy`: asynchronous copies that pageable host memory makes synchronous. Kernel-level: it needs CUPTI activity records, so it has
//! no evaluation yet, and no thresholds until it has one.

use crate::rules::{RuleInfo, RuleScope, STD};
use gpuscope_core::Severity;

settings! {}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "pageable-memcpy",
    title: "copies from pageable host memory",
    scope: RuleScope::Process,
    severity: Severity::Warning,
    timing: STD,
    condition: "asynchronous copies from or to pageable host memory (needs CUPTI)",
    recommendation: "The copy silently becomes synchronous. Pin host memory (pin_memory=True, tensor.pin_memory()).",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: None,
    promql: &[],
};
