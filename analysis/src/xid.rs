//! XID classification (RULES.md `xid-error`): what the code means and what to do.

use gpuscope_core::{Action, Severity};

/// What kind of fault an XID signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XidClass {
    /// The application did something wrong.
    Application,
    /// The GPU needs a reset.
    Reset,
    /// The node needs a reboot (the GPU fell off the bus).
    Reboot,
    /// An NVLink fault.
    NvLink,
    /// A memory fault.
    Memory,
    /// Not in the table.
    Other,
}

/// Classifies an XID code.
pub fn classify(code: u64) -> XidClass {
    match code {
        13 | 31 | 43 | 45 | 68 | 69 | 94 => XidClass::Application,
        46 | 62 | 64 | 95 | 109 | 119 | 120 | 136 | 140 | 143 | 155 | 156 => XidClass::Reset,
        79 => XidClass::Reboot,
        74 | 144..=150 => XidClass::NvLink,
        48 | 63 | 92 => XidClass::Memory,
        _ => XidClass::Other,
    }
}

impl XidClass {
    /// Severity, action and advice.
    pub const fn advice(self) -> (Severity, Action, &'static str) {
        match self {
            XidClass::Application => (
                Severity::Warning,
                Action::RestartApp,
                "Application fault: debug the job (compute-sanitizer, CUDA_LAUNCH_BLOCKING=1). The same XID across different jobs on this GPU points to hardware.",
            ),
            XidClass::Reset => (
                Severity::Critical,
                Action::ResetGpu,
                "Drain the node and reset the GPU, then run diagnostics (dcgmi diag -r 3).",
            ),
            XidClass::Reboot => (
                Severity::Critical,
                Action::RebootNode,
                "The GPU fell off the bus: drain and reboot the node; a repeat means hardware.",
            ),
            XidClass::NvLink => (
                Severity::Critical,
                Action::Drain,
                "NVLink fault: check link state and Fabric Manager; field diagnostic if it repeats.",
            ),
            XidClass::Memory => (
                Severity::Critical,
                Action::ResetGpu,
                "Memory fault: reset the GPU to apply remapping/retirement; field diagnostic if it repeats.",
            ),
            XidClass::Other => (
                Severity::Warning,
                Action::Monitor,
                "Look the code up in NVIDIA's XID catalogue and watch for repeats.",
            ),
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            XidClass::Application => "application",
            XidClass::Reset => "reset",
            XidClass::Reboot => "reboot",
            XidClass::NvLink => "nvlink",
            XidClass::Memory => "memory",
            XidClass::Other => "other",
        }
    }
}
