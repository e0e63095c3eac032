//! OTLP: snapshots encoded as OTLP metrics through the catalogue (semantic-convention names,
//! the samples' own timestamps, cumulative counters).

pub mod aggregate;
pub mod encode;
pub mod push;

pub use aggregate::aggregate;
pub use encode::{Identity, encode};
pub use push::{Protocol, PushConfig, PushError, PushStats, Pusher};
