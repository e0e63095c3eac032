//! The collector's state: per-node windows and liveness, the analyzer, open findings and their
//! history, and counters for its own metrics.

use gpuscope_analysis::{AnalysisConfig, Analyzer, Change};
use gpuscope_core::{Finding, NodeSnapshot};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What the collector knows of one node.
#[derive(Debug, Clone, Serialize)]
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
    /// No data for longer than the staleness limit.
    pub stale: bool,
    /// GPUs in the newest sample.
    pub gpus: usize,
    /// The newest sample.
    #[serde(skip)]
    pub latest: Arc<NodeSnapshot>,
}

/// A finding with its lifetime.
#[derive(Debug, Clone, Serialize)]
pub struct FindingRecord {
    /// The finding (as last evaluated).
    #[serde(flatten)]
    pub finding: Finding,
    /// When it opened (data time), ms.
    pub opened_ms: u64,
    /// When it closed, if it did.
    pub closed_ms: Option<u64>,
}

/// Counters for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct Counters {
    /// Requests accepted per transport.
    pub requests: BTreeMap<&'static str, u64>,
    /// Requests refused as malformed (400), too large (413) or while full (503).
    pub refused: BTreeMap<&'static str, u64>,
    /// Data points decoded into snapshots.
    pub points_accepted: u64,
    /// Data points that could not be used.
    pub points_rejected: u64,
    /// Snapshots ingested.
    pub snapshots: u64,
}

/// Everything the API reads.
pub struct State {
    analyzer: Analyzer,
    /// Nodes by host name.
    pub nodes: BTreeMap<String, NodeView>,
    /// Every finding, open and closed, oldest first.
    pub findings: Vec<FindingRecord>,
    /// Counters.
    pub counters: Counters,
    stale_after_ms: u64,
    newest_sample_ms: u64,
}

impl State {
    /// Empty state.
    pub fn new(cfg: AnalysisConfig, stale_after_ms: u64) -> State {
        State {
            analyzer: Analyzer::new(cfg, 900.0),
            nodes: BTreeMap::new(),
            findings: Vec::new(),
            counters: Counters::default(),
            stale_after_ms,
            newest_sample_ms: 0,
        }
    }

    /// Ingests decoded snapshots and evaluates the rules at the newest sample time.
    pub fn ingest(&mut self, snaps: Vec<NodeSnapshot>) -> Vec<Change> {
        let wall = now_ms();
        for s in snaps {
            self.counters.snapshots += 1;
            self.newest_sample_ms = self.newest_sample_ms.max(s.timestamp_ms);
            let s = Arc::new(s);
            let v = self.nodes.entry(s.node.hostname.clone()).or_insert_with(|| NodeView {
                node: s.node.hostname.clone(),
                job: None,
                last_seen_ms: wall,
                last_sample_ms: 0,
                samples_total: 0,
                stale: false,
                gpus: 0,
                latest: s.clone(),
            });
            v.last_seen_ms = wall;
            v.samples_total += 1;
            v.stale = false;
            if s.timestamp_ms >= v.last_sample_ms {
                v.last_sample_ms = s.timestamp_ms;
                v.job = s.node.job.clone();
                v.gpus = s.gpus.len();
                v.latest = s.clone();
            }
            self.analyzer.ingest(s);
        }
        let changes = self.analyzer.evaluate(self.newest_sample_ms);
        for c in &changes {
            match c {
                Change::Opened(f) => {
                    tracing::info!(rule = %f.rule, node = ?f.scope.node, gpus = ?f.scope.gpus, "finding opened: {}", f.summary);
                    self.findings.push(FindingRecord {
                        finding: f.clone(),
                        opened_ms: self.newest_sample_ms,
                        closed_ms: None,
                    });
                }
                Change::Closed { finding, at_ms } => {
                    tracing::info!(rule = %finding.rule, node = ?finding.scope.node, "finding closed");
                    if let Some(r) =
                        self.findings.iter_mut().rev().find(|r| r.closed_ms.is_none() && same(&r.finding, finding))
                    {
                        r.closed_ms = Some(*at_ms);
                        r.finding = finding.clone();
                    }
                }
            }
        }
        // Keep the open findings' text current.
        for f in self.analyzer.active() {
            if let Some(r) = self.findings.iter_mut().rev().find(|r| r.closed_ms.is_none() && same(&r.finding, f)) {
                r.finding = f.clone();
            }
        }
        changes
    }

    /// Marks nodes that stopped reporting.
    pub fn check_liveness(&mut self) {
        let wall = now_ms();
        for v in self.nodes.values_mut() {
            let stale = wall.saturating_sub(v.last_seen_ms) > self.stale_after_ms;
            if stale && !v.stale {
                tracing::warn!(node = %v.node, "node stopped reporting");
            }
            v.stale = stale;
        }
    }

    /// Open findings.
    pub fn active(&self) -> impl Iterator<Item = &FindingRecord> {
        self.findings.iter().filter(|r| r.closed_ms.is_none())
    }
}

fn same(a: &Finding, b: &Finding) -> bool {
    a.rule == b.rule && a.scope == b.scope
}
