//! `fp32-gemm-kernels`: matrix math in kernels that do not use the tensor cores. Kernel-level: it needs CUPTI activity records, so it has
//! no evaluation yet, and no thresholds until it has one.

use crate::rules::{RuleInfo, RuleScope, STD};
use gpuscope_core::Severity;

settings! {}

/// The rule.
pub const RULE: RuleInfo = RuleInfo {
    id: "fp32-gemm-kernels",
    title: "matrix kernels run without tensor cores",
    scope: RuleScope::Process,
    severity: Severity::Warning,
    timing: STD,
    condition: ">= 50% of matmul/convolution kernel time in kernels without tensor cores (needs CUPTI)",
    recommendation: "Same fix as no-tensor-cores, with the top offending kernels as evidence.",
    action: None,
    workloads: "any",
    explained_by_waiting: false,
    thresholds: Settings::THRESHOLDS,
    eval: None,
    promql: &[],
};
