//! Samplers: each fills its part of the node snapshot and fails alone.

mod fan;
pub mod filesystem;
pub mod host;
mod mig;
pub mod nvml;
pub mod process;
mod topology;
pub mod xid;

use gpuscope_core::NodeSnapshot;
use std::time::Instant;

/// Why a sampling pass of one sampler failed.
#[derive(Debug, thiserror::Error)]
pub enum SampleError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// File path.
        path: String,
        /// Underlying error.
        source: std::io::Error,
    },
    /// A file did not parse.
    #[error("cannot parse {path}: {message}")]
    Parse {
        /// File path.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// NVML could not be loaded or initialised.
    #[error("{0}")]
    Nvml(String),
    /// The sampler panicked; the pass went on without its signals.
    #[error("sampler panicked: {0}")]
    Panicked(String),
}

/// One sampling pass: when it runs and whether slow signals are due.
#[derive(Debug, Clone, Copy)]
pub struct Pass {
    /// Monotonic time of the pass.
    pub now: Instant,
    /// Wall-clock time of the pass, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// Slow signals are due in this pass.
    pub slow: bool,
}

/// A source of signals.
pub trait Sampler: Send {
    /// Name used in logs and self metrics.
    fn name(&self) -> &'static str;
    /// Fills this sampler's part of `snap`.
    fn sample(&mut self, snap: &mut NodeSnapshot, pass: &Pass) -> Result<(), SampleError>;
}

/// Reads a file to a string, naming it in the error.
pub(crate) fn read(path: &std::path::Path) -> Result<String, SampleError> {
    std::fs::read_to_string(path).map_err(|source| SampleError::Read { path: path.display().to_string(), source })
}

/// Rate of change of a counter between two readings; `None` when unknown or reset.
pub(crate) fn rate(prev: Option<(u64, Instant)>, now: u64, at: Instant) -> Option<f64> {
    let (p, then) = prev?;
    let dt = at.duration_since(then).as_secs_f64();
    (now >= p && dt > 0.0).then(|| (now - p) as f64 / dt)
}
