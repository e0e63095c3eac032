//! The collector's API vocabulary: what `/api/v1/…` answers and what its change stream carries.
//! The collector serves these types and its clients (the TUI's fleet mode, tests) read them, so
//! both sides agree on one definition instead of ad-hoc JSON.

use crate::finding::Finding;
use serde::{Deserialize, Serialize};

/// A finding with its lifetime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingRecord {
    /// The finding (as last evaluated).
    #[serde(flatten)]
    pub finding: Finding,
    /// When it opened (data time), ms since the epoch.
    pub opened_ms: u64,
    /// When it closed, if it did.
    pub closed_ms: Option<u64>,
}

/// A change of the findings, as the collector's stream publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", content = "record", rename_all = "snake_case")]
pub enum FindingEvent {
    /// A finding opened (its record has no `closed_ms`).
    Opened(FindingRecord),
    /// A finding closed (its record carries `closed_ms`).
    Closed(FindingRecord),
}

impl FindingEvent {
    /// The record the event is about.
    pub fn record(&self) -> &FindingRecord {
        match self {
            FindingEvent::Opened(r) | FindingEvent::Closed(r) => r,
        }
    }
}
