//! The collector's API vocabulary: what `/api/v1/…` answers and what its change stream carries.
//! The collector serves these types and its clients (the TUI's fleet mode, tests) read them, so
//! both sides agree on one definition instead of ad-hoc JSON.

use crate::finding::Finding;
use crate::model::NodeSnapshot;
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

/// The payload of a `closed` server-sent event on `/api/v1/stream`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingClosed {
    /// When it closed (data time), ms since the epoch.
    pub closed_ms: u64,
    /// When it opened (wall clock, as `FindingRecord::opened_ms`); absent from collectors older
    /// than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_ms: Option<u64>,
    /// The finding as it was last seen.
    pub finding: Finding,
}

/// The payload of an `opened` server-sent event on `/api/v1/stream`: the finding's own fields,
/// and when it opened.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FindingOpened {
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
    /// When it opened (wall clock, as `FindingRecord::opened_ms`); absent from collectors older
    /// than this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_ms: Option<u64>,
}

/// What the collector knows of one node (`/api/v1/nodes` lists these).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// Host name.
    pub node: String,
    /// Job label.
    pub job: Option<String>,
    /// When its last batch arrived (wall clock), ms.
    pub last_seen_ms: u64,
    /// Timestamp of its newest sample, ms.
    pub last_sample_ms: u64,
    /// Samples received.
    pub samples_total: u64,
    /// Timestamp of the first sample received since the collector started, ms.
    pub first_sample_ms: u64,
    /// Largest gap between consecutive sample timestamps received, ms (lost data shows here).
    pub max_gap_ms: u64,
    /// Samples that arrived older than one already received.
    pub out_of_order_total: u64,
    /// No data for longer than the staleness limit, at the time of the answer.
    pub stale: bool,
    /// GPUs in the newest sample.
    pub gpus: usize,
    /// Mean SM activity over its GPUs in the newest sample; absent where no GPU reported it.
    #[serde(default)]
    pub sm_active_mean: Option<f64>,
    /// Power drawn by its GPUs together in the newest sample; absent where none reported it.
    #[serde(default)]
    pub power_watts: Option<f64>,
}

/// One node in detail (`/api/v1/nodes/{node}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDetail {
    /// What the collector knows of it.
    pub node: NodeView,
    /// Its newest snapshot (empty for a node known only from the store since a restart).
    pub latest: NodeSnapshot,
    /// Its open findings, oldest first.
    pub findings: Vec<FindingRecord>,
}

/// One job and its nodes (`/api/v1/jobs` lists these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobView {
    /// Job label.
    pub job: String,
    /// Host names of its nodes, sorted.
    pub nodes: Vec<String>,
    /// Rule ids of its open findings, oldest first.
    pub findings: Vec<String>,
}

/// Why the agent cannot ask a process for a profiling window (`POST /api/v1/profile`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileRefusal {
    /// No injection library of that process is connected to the agent.
    #[error("no gpuscope injection library connected for pid {pid}")]
    NotConnected {
        /// Host PID asked for.
        pid: u32,
    },
    /// Too many requests to that process wait for their windows.
    #[error("too many profiling windows requested from pid {pid} are still running")]
    Busy {
        /// Host PID asked for.
        pid: u32,
    },
    /// The request could not be sent on the process's connection.
    #[error("cannot send the window request to pid {pid}: {message}")]
    Failed {
        /// Host PID asked for.
        pid: u32,
        /// What went wrong.
        message: String,
    },
    /// The request itself is out of range (the window length).
    #[error("{message}")]
    Invalid {
        /// What is wrong with it.
        message: String,
    },
}

/// What can run a profiling window on request: the agent's CUPTI receiver. The HTTP endpoint
/// knows it through this trait, so it needs nothing of the agent's internals.
pub trait KernelProfiler: Send + Sync + std::fmt::Debug {
    /// Asks the injection library in `pid` (host PID) for one window of `window`; `reply` gets the
    /// process's profile once that window's summary arrives, and is dropped unanswered when the
    /// connection closes first.
    fn request_window(
        &self,
        pid: u32,
        window: std::time::Duration,
        reply: Box<dyn FnOnce(crate::model::KernelProfile) + Send>,
    ) -> Result<(), ProfileRefusal>;
}
