//! The collector's state: per-node windows and liveness, the analyzer, open findings and their
//! history, and counters for its own metrics.

use crate::store::Store;
use gpuscope_analysis::{AnalysisConfig, Analyzer, Change};
use gpuscope_core::api::FindingEvent;
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
    /// Timestamp of the first sample received since the collector started, ms.
    pub first_sample_ms: u64,
    /// Largest gap between consecutive sample timestamps received, ms (lost data shows here).
    pub max_gap_ms: u64,
    /// Samples that arrived older than one already received.
    pub out_of_order_total: u64,
    /// No data for longer than the staleness limit.
    pub stale: bool,
    /// GPUs in the newest sample.
    pub gpus: usize,
    /// The newest sample.
    #[serde(skip)]
    pub latest: Arc<NodeSnapshot>,
}

pub use gpuscope_core::api::FindingRecord;

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
    store: Option<Store>,
    /// Row id of each record in `findings` (same order), when stored.
    ids: Vec<Option<i64>>,
    /// Records that were open when the collector last stopped: closed unless re-detected.
    restored: Vec<usize>,
    started_ms: u64,
    persisted_nodes: BTreeMap<String, u64>,
    /// Per node: XID counts seen so far and the events derived from their increases.
    xids: BTreeMap<String, XidTrack>,
    /// Finding changes not yet published on the stream.
    events: Vec<FindingEvent>,
}

/// XID counts seen per (GPU, code), and the events derived from their increases.
type XidTrack = (BTreeMap<(u32, u64), u64>, Vec<gpuscope_core::XidEvent>);

/// Wall time after a restart within which a finding that was open must be detected again.
const RESTORE_GRACE_MS: u64 = 180_000;

impl State {
    /// State restored from `store` (findings history, known nodes), or empty without one.
    pub fn new(cfg: AnalysisConfig, stale_after_ms: u64, store: Option<Store>) -> State {
        let mut st = State {
            analyzer: Analyzer::new(cfg, 900.0),
            nodes: BTreeMap::new(),
            findings: Vec::new(),
            counters: Counters::default(),
            stale_after_ms,
            newest_sample_ms: 0,
            store: None,
            ids: Vec::new(),
            restored: Vec::new(),
            started_ms: now_ms(),
            persisted_nodes: BTreeMap::new(),
            xids: BTreeMap::new(),
            events: Vec::new(),
        };
        if let Some(store) = store {
            match store.load() {
                Ok(rows) => {
                    for (id, r) in rows {
                        if r.closed_ms.is_none() {
                            st.restored.push(st.findings.len());
                        }
                        st.findings.push(r);
                        st.ids.push(Some(id));
                    }
                }
                Err(e) => tracing::error!("{e}"),
            }
            if let Ok(nodes) = store.nodes() {
                for (node, job, last_seen_ms) in nodes {
                    let latest = Arc::new(NodeSnapshot::default());
                    st.nodes.insert(
                        node.clone(),
                        NodeView {
                            node,
                            job,
                            last_seen_ms,
                            last_sample_ms: 0,
                            samples_total: 0,
                            first_sample_ms: 0,
                            max_gap_ms: 0,
                            out_of_order_total: 0,
                            stale: true,
                            gpus: 0,
                            latest,
                        },
                    );
                }
            }
            st.store = Some(store);
        }
        st
    }

    fn persist_new(&mut self, r: FindingRecord) {
        let id = self.store.as_ref().and_then(|s| s.insert(&r).map_err(|e| tracing::error!("{e}")).ok());
        self.findings.push(r);
        self.ids.push(id);
    }

    fn persist(&self, i: usize) {
        if let (Some(s), Some(Some(id))) = (&self.store, self.ids.get(i))
            && let Err(e) = s.update(*id, &self.findings[i])
        {
            tracing::error!("{e}");
        }
    }

    fn persist_node(&mut self, node: &str) {
        let wall = now_ms();
        // Inventory rows are refreshed at most every 10 s per node.
        if self.persisted_nodes.get(node).is_some_and(|t| wall.saturating_sub(*t) < 10_000) {
            return;
        }
        let (Some(store), Some(v)) = (&self.store, self.nodes.get(node)) else { return };
        let gpus: Vec<serde_json::Value> = v
            .latest
            .gpus
            .iter()
            .map(|g| serde_json::json!({"index": g.index, "uuid": g.uuid, "model": g.model}))
            .collect();
        let inventory =
            serde_json::json!({ "gpus": gpus, "driver": v.latest.driver.as_ref().map(|d| &d.driver_version) })
                .to_string();
        if let Err(e) = store.upsert_node(node, v.job.as_deref(), wall, &inventory) {
            tracing::error!("{e}");
        }
        self.persisted_nodes.insert(node.to_string(), wall);
    }

    /// Ingests decoded snapshots and evaluates the rules at the newest sample time.
    pub fn ingest(&mut self, snaps: Vec<NodeSnapshot>) -> Vec<Change> {
        self.ingest_only(snaps);
        self.evaluate()
    }

    /// Adds snapshots to their windows without evaluating the rules (a burst is evaluated once).
    pub fn ingest_only(&mut self, snaps: Vec<NodeSnapshot>) {
        let wall = now_ms();
        let mut touched = Vec::new();
        let mut snaps = snaps;
        snaps.sort_by_key(|s| s.timestamp_ms);
        for mut s in snaps {
            self.derive_xid_events(&mut s);
            self.counters.snapshots += 1;
            touched.push(s.node.hostname.clone());
            self.newest_sample_ms = self.newest_sample_ms.max(s.timestamp_ms);
            let s = Arc::new(s);
            let v = self.nodes.entry(s.node.hostname.clone()).or_insert_with(|| NodeView {
                node: s.node.hostname.clone(),
                job: None,
                last_seen_ms: wall,
                last_sample_ms: 0,
                samples_total: 0,
                first_sample_ms: s.timestamp_ms,
                max_gap_ms: 0,
                out_of_order_total: 0,
                stale: false,
                gpus: 0,
                latest: s.clone(),
            });
            v.last_seen_ms = wall;
            v.samples_total += 1;
            v.stale = false;
            if v.last_sample_ms > 0 && s.timestamp_ms < v.last_sample_ms {
                v.out_of_order_total += 1;
            } else if v.last_sample_ms > 0 {
                v.max_gap_ms = v.max_gap_ms.max(s.timestamp_ms - v.last_sample_ms);
            }
            if v.samples_total == 1 || v.first_sample_ms == 0 {
                v.first_sample_ms = s.timestamp_ms;
            }
            if s.timestamp_ms >= v.last_sample_ms {
                v.last_sample_ms = s.timestamp_ms;
                v.job = s.node.job.clone();
                v.gpus = s.gpus.len();
                v.latest = s.clone();
            }
            self.analyzer.ingest(s);
        }
        touched.sort();
        touched.dedup();
        for n in touched {
            self.persist_node(&n);
        }
    }

    /// Evaluates the rules at the newest sample time and records what opened and closed.
    pub fn evaluate(&mut self) -> Vec<Change> {
        let changes = self.analyzer.evaluate(self.newest_sample_ms);
        for c in &changes {
            match c {
                Change::Opened(f) => {
                    tracing::info!(rule = %f.rule, node = ?f.scope.node, gpus = ?f.scope.gpus, "finding opened: {}", f.summary);
                    // A finding that was open before a restart continues as the same record.
                    let i = match self.open_index(f) {
                        Some(i) => {
                            self.restored.retain(|x| *x != i);
                            self.findings[i].finding = f.clone();
                            self.persist(i);
                            i
                        }
                        None => {
                            self.persist_new(FindingRecord {
                                finding: f.clone(),
                                opened_ms: self.newest_sample_ms,
                                closed_ms: None,
                            });
                            self.findings.len() - 1
                        }
                    };
                    self.events.push(FindingEvent::Opened(self.findings[i].clone()));
                }
                Change::Closed { finding, at_ms } => {
                    tracing::info!(rule = %finding.rule, node = ?finding.scope.node, "finding closed");
                    if let Some(i) = self.open_index(finding) {
                        self.findings[i].closed_ms = Some(*at_ms);
                        self.findings[i].finding = finding.clone();
                        self.persist(i);
                        self.events.push(FindingEvent::Closed(self.findings[i].clone()));
                    }
                }
            }
        }
        // Keep the open findings' text current.
        let active: Vec<gpuscope_core::Finding> = self.analyzer.active().into_iter().cloned().collect();
        for f in active {
            if let Some(i) = self.open_index(&f) {
                self.findings[i].finding = f;
            }
        }
        changes
    }

    /// OTLP carries XID counts per code; an increase is an event at that sample's time, which
    /// the rules read as the agent's event list.
    fn derive_xid_events(&mut self, s: &mut NodeSnapshot) {
        let (seen, recent) = self.xids.entry(s.node.hostname.clone()).or_default();
        for g in &s.gpus {
            for (code, n) in &g.xid_counts {
                let before = seen.insert((g.index, *code), *n).unwrap_or(0);
                for _ in before..*n {
                    recent.push(gpuscope_core::XidEvent { unix_ms: s.timestamp_ms, gpu: g.index, code: *code });
                }
            }
        }
        let excess = recent.len().saturating_sub(256);
        recent.drain(..excess);
        if s.xid_events.is_empty() {
            s.xid_events = recent.clone();
        }
    }

    fn open_index(&self, f: &gpuscope_core::Finding) -> Option<usize> {
        self.findings.iter().rposition(|r| r.closed_ms.is_none() && same(&r.finding, f))
    }

    /// Marks nodes that stopped reporting, and closes findings restored from the store that
    /// were not detected again after a restart.
    pub fn check_liveness(&mut self) {
        let wall = now_ms();
        if !self.restored.is_empty() && wall.saturating_sub(self.started_ms) > RESTORE_GRACE_MS {
            for i in std::mem::take(&mut self.restored) {
                if self.findings[i].closed_ms.is_none() {
                    self.findings[i].closed_ms = Some(wall);
                    self.persist(i);
                }
            }
        }
        for v in self.nodes.values_mut() {
            let stale = wall.saturating_sub(v.last_seen_ms) > self.stale_after_ms;
            if stale && !v.stale {
                tracing::warn!(node = %v.node, "node stopped reporting");
            }
            v.stale = stale;
        }
    }

    /// Finding changes since the last call, oldest first (for the change stream).
    pub fn take_events(&mut self) -> Vec<FindingEvent> {
        std::mem::take(&mut self.events)
    }

    /// Open findings.
    pub fn active(&self) -> impl Iterator<Item = &FindingRecord> {
        self.findings.iter().filter(|r| r.closed_ms.is_none())
    }
}

fn same(a: &Finding, b: &Finding) -> bool {
    a.rule == b.rule && a.scope == b.scope
}
