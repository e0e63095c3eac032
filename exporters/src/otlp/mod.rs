//! OTLP: snapshots encoded as OTLP metrics through the catalogue (semantic-convention names,
//! the samples' own timestamps, cumulative counters).

pub mod encode;

pub use encode::{Identity, encode};
