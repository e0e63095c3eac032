//! gpuscope's shared vocabulary: the node snapshot every sampler fills and every exporter reads,
//! the findings the analysis produces, and the metric catalogue that declares each signal once
//! (Prometheus name, OTLP name, unit, kind, help, dcgm-exporter alias) and walks from a row to its
//! series; and the Prometheus text writer every `/metrics` uses.
//!
//! Values that could not be read are `None`: absent is never encoded as zero.

pub mod api;
pub mod catalogue;
pub mod exposition;
pub mod finding;
pub mod model;
pub mod units;
pub mod workload;

pub use catalogue::{Accessor, CATALOGUE, DcgmAlias, DcgmProfile, Group, MetricDef, MetricKind, Scope};
pub use finding::{Action, Evidence, Finding, FindingScope, Severity};
pub use model::*;
pub use units::Unit;
pub use workload::{Workload, WorkloadClass};
