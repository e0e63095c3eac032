//! The simulated GPU node: gpuscope's test bed on machines without GPUs.
//!
//! A [`Scenario`](scenario::Scenario) (TOML) describes a node and a timeline; the
//! [`Simulation`](engine::Simulation) turns it into every signal at any scenario time,
//! deterministically. Two front-ends play it: the NVML-compatible shared library in `sim/nvml`
//! and the /proc + /sys tree writer in [`procfs`].

pub mod clock;
pub mod cuda;
pub mod engine;
pub mod mig;
pub mod noise;
pub mod presets;
pub mod procfs;
pub mod scenario;
pub mod snapshot;
pub mod topology;

pub use clock::SimClock;
pub use engine::Simulation;
pub use scenario::{Scenario, ScenarioError};
