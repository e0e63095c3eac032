//! Findings: what the analysis concluded, with its evidence and advice.

use serde::{Deserialize, Serialize};

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// An opportunity.
    Info,
    /// The job is slower or costlier than it should be.
    Warning,
    /// Hardware or a job failure: act now.
    Critical,
}

impl Severity {
    /// Lower-case label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// What an operator should do about a health finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Keep watching.
    Monitor,
    /// Restart the application.
    RestartApp,
    /// Reset the GPU.
    ResetGpu,
    /// Reboot the node.
    RebootNode,
    /// Drain the node of work.
    Drain,
    /// Run the field diagnostic / RMA.
    FieldDiagnostic,
}

impl Action {
    /// The name as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Monitor => "monitor",
            Action::RestartApp => "restart-app",
            Action::ResetGpu => "reset-gpu",
            Action::RebootNode => "reboot-node",
            Action::Drain => "drain",
            Action::FieldDiagnostic => "field-diagnostic",
        }
    }
}

/// Where a finding applies.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FindingScope {
    /// Node host name, when the finding concerns one node.
    pub node: Option<String>,
    /// GPU indices concerned (empty for node- or job-wide findings).
    pub gpus: Vec<u32>,
    /// Job name, when known.
    pub job: Option<String>,
}

/// One observed value behind a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Signal name as in RULES.md (`sm_active`, `cpu_busy`, …).
    pub signal: String,
    /// Observed value (window mean unless the rule says otherwise).
    pub value: f64,
    /// The threshold it was compared with.
    pub threshold: f64,
    /// The GPU it was observed on, in a finding that groups several GPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<u32>,
}

/// A conclusion of the analysis with its advice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id from RULES.md, e.g. `no-tensor-cores`.
    pub rule: String,
    /// How urgent it is.
    pub severity: Severity,
    /// Where it applies.
    pub scope: FindingScope,
    /// When the condition started to hold, milliseconds since the Unix epoch.
    pub since_ms: u64,
    /// One-sentence statement of what is wrong.
    pub summary: String,
    /// Observed values and thresholds.
    pub evidence: Vec<Evidence>,
    /// What to change.
    pub recommendation: String,
    /// Link to documentation.
    pub docs: Option<String>,
    /// Operator action for health findings.
    pub action: Option<Action>,
    /// What distinguishes this finding from others of its rule on the same node and job (an XID
    /// class, a workload class), when the rule tells causes apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}
