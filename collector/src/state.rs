//! The collector's state: per-node windows and what it knows of each node, the analyzer, and
//! the findings history. Only the analysis loop changes it ([`State::ingest_only`],
//! [`State::evaluate`], [`State::check_liveness`]); the API reads it. It does no I/O after it
//! is built: what the store must record is queued in [`State::take_writes`].

use crate::history::History;
use crate::store::{Store, StoreError, StoreWrite};
use gpuscope_analysis::validate::{Impossible, sanitize};
use gpuscope_analysis::{AnalysisConfig, Analyzer, Change};
use gpuscope_core::NodeSnapshot;
use gpuscope_core::api::{FindingEvent, FindingRecord, NodeView};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the epoch.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// What the collector knows of one node.
#[derive(Debug, Clone)]
pub struct Node {
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
    /// The newest sample.
    pub latest: Arc<NodeSnapshot>,
    /// Whether the analysis loop has already logged it as stale.
    reported_stale: bool,
    /// Timestamps of its newest samples, to recognise a batch received twice.
    recent: std::collections::VecDeque<u64>,
}

/// Sample timestamps remembered per node to recognise one received twice: a minute at 1 s, or a
/// spilled batch replayed after its first send timed out.
const RECENT_TIMESTAMPS: usize = 64;

/// Everything the API reads.
pub struct State {
    analyzer: Analyzer,
    /// Nodes by host name.
    pub nodes: BTreeMap<String, Node>,
    /// Open findings and the newest closed ones, oldest first.
    pub findings: History,
    stale_after_ms: u64,
    newest_sample_ms: u64,
    /// Whether changes are queued for a store.
    stored: bool,
    writes: Vec<StoreWrite>,
    /// Findings that were open when the collector last stopped: closed unless re-detected.
    restored: BTreeSet<i64>,
    started_ms: u64,
    persisted_nodes: BTreeMap<String, u64>,
    /// Per node: XID counts seen so far and the events derived from their increases.
    xids: BTreeMap<String, XidTrack>,
    /// Values dropped as physically impossible, by reason.
    pub impossible: BTreeMap<Impossible, u64>,
    /// Nodes held in memory at most; samples of more are refused.
    max_nodes: usize,
    /// A node silent this long is dropped from memory (its history stays in the store), ms.
    evict_after_ms: u64,
    /// Samples refused because they would have made a node beyond `max_nodes`.
    pub nodes_refused: u64,
    /// Nodes dropped from memory after `evict_after_ms` of silence.
    pub nodes_evicted: u64,
    /// Samples whose node and timestamp were already received (a batch sent again after a
    /// timeout whose answer was lost): not counted or analysed twice.
    pub duplicates: u64,
}

/// How many nodes the collector holds and how long it keeps a silent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeLimits {
    /// Nodes held in memory at most; samples of more are refused.
    pub max_nodes: usize,
    /// A node silent this long is dropped from memory, ms.
    pub evict_after_ms: u64,
}

impl Default for NodeLimits {
    fn default() -> Self {
        // 10,000 nodes is the fleet one collector is built for; twice that leaves room for
        // renames and replaced hosts until the silent ones are evicted a day later.
        NodeLimits { max_nodes: 20_000, evict_after_ms: 24 * 3600 * 1000 }
    }
}

/// XID counts seen per (GPU, code), and the events derived from their increases.
type XidTrack = (BTreeMap<(u32, u64), u64>, Vec<gpuscope_core::XidEvent>);

/// Wall time after a restart within which a finding that was open must be detected again.
const RESTORE_GRACE_MS: u64 = 180_000;

impl State {
    /// An empty state, keeping at most `closed_kept` closed findings in memory.
    pub fn new(cfg: AnalysisConfig, stale_after_ms: u64, closed_kept: usize) -> State {
        State {
            impossible: BTreeMap::new(),
            analyzer: Analyzer::new(cfg, 900.0),
            nodes: BTreeMap::new(),
            findings: History::new(closed_kept, 0),
            stale_after_ms,
            newest_sample_ms: 0,
            stored: false,
            writes: Vec::new(),
            restored: BTreeSet::new(),
            started_ms: now_ms(),
            persisted_nodes: BTreeMap::new(),
            xids: BTreeMap::new(),
            max_nodes: NodeLimits::default().max_nodes,
            evict_after_ms: NodeLimits::default().evict_after_ms,
            nodes_refused: 0,
            nodes_evicted: 0,
            duplicates: 0,
        }
    }

    /// The same state holding at most `limits.max_nodes` nodes and evicting silent ones.
    pub fn with_node_limits(mut self, limits: NodeLimits) -> State {
        self.max_nodes = limits.max_nodes.max(1);
        self.evict_after_ms = limits.evict_after_ms;
        let wall = now_ms();
        // Nodes restored from the store: only those seen recently enough, the newest first.
        self.nodes.retain(|_, v| wall.saturating_sub(v.last_seen_ms) <= self.evict_after_ms);
        if self.nodes.len() > self.max_nodes {
            // Newest first; among nodes last seen at the same time, the later names first.
            let mut by_age: Vec<(u64, String)> = self.nodes.iter().map(|(n, v)| (v.last_seen_ms, n.clone())).collect();
            by_age.sort_unstable_by(|a, b| b.cmp(a));
            for (_, name) in by_age.into_iter().skip(self.max_nodes) {
                self.nodes.remove(&name);
            }
        }
        self
    }

    /// Drops `name` from memory: its window, its newest sample, its XID tracking; its open
    /// findings close at `now_ms` (their history stays). Whether it was known.
    fn drop_node(&mut self, name: &str, now_ms: u64) -> bool {
        let known = self.nodes.remove(name).is_some();
        self.analyzer.remove_node(name);
        self.xids.remove(name);
        self.persisted_nodes.remove(name);
        let open: Vec<i64> = self
            .findings
            .active()
            .filter(|r| r.finding.scope.node.as_deref() == Some(name))
            .filter_map(|r| self.findings.open_id(&r.finding))
            .collect();
        for id in open {
            self.restored.remove(&id);
            if let Some(r) = self.findings.close(id, now_ms, None) {
                self.write(StoreWrite::Update { id, record: r });
            }
        }
        known
    }

    /// Forgets `name` (the API's `DELETE /api/v1/nodes/{node}`): dropped from memory and from the
    /// store's inventory, so that it is not listed again unless it reports again. Its findings
    /// history stays. Whether it was known.
    pub fn forget(&mut self, name: &str) -> bool {
        let known = self.drop_node(name, now_ms());
        if known {
            self.write(StoreWrite::ForgetNode { node: name.to_string() });
        }
        known
    }

    /// State restored from `store` (open findings, the newest closed ones, known nodes); from
    /// now on its changes are queued for the store.
    pub fn restore(
        cfg: AnalysisConfig,
        stale_after_ms: u64,
        closed_kept: usize,
        store: &Store,
    ) -> Result<State, StoreError> {
        let mut st = State::new(cfg, stale_after_ms, closed_kept);
        let restored = store.load_recent(closed_kept)?;
        st.findings = History::new(closed_kept, restored.last_id);
        st.findings.left_in_store(restored.closed_left);
        for (id, r) in restored.findings {
            if r.closed_ms.is_none() {
                st.restored.insert(id);
            }
            st.findings.restore(id, r);
        }
        for (name, job, last_seen_ms) in store.nodes()? {
            let node = Node {
                job,
                last_seen_ms,
                last_sample_ms: 0,
                samples_total: 0,
                first_sample_ms: 0,
                max_gap_ms: 0,
                out_of_order_total: 0,
                latest: Arc::new(NodeSnapshot::default()),
                // Known from before the restart: silent until it reports again, not news.
                reported_stale: true,
                recent: std::collections::VecDeque::new(),
            };
            st.nodes.insert(name, node);
        }
        st.stored = true;
        Ok(st)
    }

    fn write(&mut self, w: StoreWrite) {
        if self.stored {
            self.writes.push(w);
        }
    }

    /// Store writes queued since the last call, oldest first.
    pub fn take_writes(&mut self) -> Vec<StoreWrite> {
        std::mem::take(&mut self.writes)
    }

    fn persist_node(&mut self, node: &str) {
        let wall = now_ms();
        // Inventory rows are refreshed at most every 10 s per node.
        if !self.stored || self.persisted_nodes.get(node).is_some_and(|t| wall.saturating_sub(*t) < 10_000) {
            return;
        }
        let Some(v) = self.nodes.get(node) else { return };
        let gpus: Vec<serde_json::Value> = v
            .latest
            .gpus
            .iter()
            .map(|g| serde_json::json!({"index": g.index, "uuid": g.uuid, "model": g.model}))
            .collect();
        let inventory =
            serde_json::json!({ "gpus": gpus, "driver": v.latest.driver.as_ref().map(|d| &d.driver_version) })
                .to_string();
        let job = v.job.clone();
        self.write(StoreWrite::Node { node: node.to_string(), job, seen_ms: wall, inventory });
        self.persisted_nodes.insert(node.to_string(), wall);
    }

    /// Adds snapshots to their windows without evaluating the rules (a burst is evaluated once).
    pub fn ingest_only(&mut self, snaps: Vec<NodeSnapshot>) {
        let wall = now_ms();
        let mut touched = Vec::new();
        let mut snaps = snaps;
        snaps.sort_by_key(|s| s.timestamp_ms);
        for mut s in snaps {
            // Values no device can produce never reach the rules, the API or the store.
            // Physical limits apply to workload rates: after the analysis's time scale.
            for why in sanitize(&mut s, self.analyzer.config().scale()) {
                *self.impossible.entry(why).or_default() += 1;
            }
            if !self.nodes.contains_key(&s.node.hostname) && self.nodes.len() >= self.max_nodes {
                self.nodes_refused += 1;
                continue;
            }
            if let Some(v) = self.nodes.get(&s.node.hostname)
                && v.recent.contains(&s.timestamp_ms)
            {
                self.duplicates += 1;
                continue;
            }
            self.derive_xid_events(&mut s);
            touched.push(s.node.hostname.clone());
            self.newest_sample_ms = self.newest_sample_ms.max(s.timestamp_ms);
            let s = Arc::new(s);
            let v = self.nodes.entry(s.node.hostname.clone()).or_insert_with(|| Node {
                job: None,
                last_seen_ms: wall,
                last_sample_ms: 0,
                samples_total: 0,
                first_sample_ms: s.timestamp_ms,
                max_gap_ms: 0,
                out_of_order_total: 0,
                latest: s.clone(),
                reported_stale: false,
                recent: std::collections::VecDeque::new(),
            });
            if v.recent.len() == RECENT_TIMESTAMPS {
                v.recent.pop_front();
            }
            v.recent.push_back(s.timestamp_ms);
            v.last_seen_ms = wall;
            v.samples_total += 1;
            v.reported_stale = false;
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

    /// Evaluates the rules at the newest sample time, records what opened and closed, and
    /// returns the changes, oldest first.
    pub fn evaluate(&mut self) -> Vec<FindingEvent> {
        let mut events = Vec::new();
        for c in self.analyzer.evaluate(self.newest_sample_ms) {
            match c {
                Change::Opened(f) => {
                    tracing::info!(rule = %f.rule, node = ?f.scope.node, gpus = ?f.scope.gpus, "finding opened: {}", f.summary.escape_debug());
                    // A finding that was open before a restart continues as the same record.
                    let record = match self.findings.open_id(&f) {
                        Some(id) => {
                            self.restored.remove(&id);
                            let Some(r) = self.findings.set_finding(id, f).cloned() else { continue };
                            self.write(StoreWrite::Update { id, record: r.clone() });
                            r
                        }
                        None => {
                            let r = FindingRecord { finding: f, opened_ms: self.newest_sample_ms, closed_ms: None };
                            let id = self.findings.open(r.clone());
                            self.write(StoreWrite::Insert { id, record: r.clone() });
                            r
                        }
                    };
                    events.push(FindingEvent::Opened(record));
                }
                Change::Closed { finding, at_ms } => {
                    tracing::info!(rule = %finding.rule, node = ?finding.scope.node, "finding closed");
                    if let Some(id) = self.findings.open_id(&finding)
                        && let Some(r) = self.findings.close(id, at_ms, Some(finding))
                    {
                        self.write(StoreWrite::Update { id, record: r.clone() });
                        events.push(FindingEvent::Closed(r));
                    }
                }
            }
        }
        // Keep the open findings' text current.
        for f in self.analyzer.active() {
            if let Some(id) = self.findings.open_id(f) {
                self.findings.set_finding(id, f.clone());
            }
        }
        events
    }

    /// Logs nodes that stopped reporting (once each time), and closes findings restored from
    /// the store that were not detected again within the grace period after a restart.
    pub fn check_liveness(&mut self, now_ms: u64) {
        if !self.restored.is_empty() && now_ms.saturating_sub(self.started_ms) > RESTORE_GRACE_MS {
            for id in std::mem::take(&mut self.restored) {
                if let Some(r) = self.findings.close(id, now_ms, None) {
                    self.write(StoreWrite::Update { id, record: r });
                }
            }
        }
        for (name, v) in &mut self.nodes {
            let stale = now_ms.saturating_sub(v.last_seen_ms) > self.stale_after_ms;
            if stale && !v.reported_stale {
                // Debug-quoted: a name is whatever a client sent.
                tracing::warn!(node = ?name, "node stopped reporting");
            }
            v.reported_stale = stale;
        }
        let evict: Vec<String> = self
            .nodes
            .iter()
            .filter(|(_, v)| now_ms.saturating_sub(v.last_seen_ms) > self.evict_after_ms)
            .map(|(n, _)| n.clone())
            .collect();
        for name in evict {
            tracing::info!(node = ?name, "node evicted from memory after {} s of silence", self.evict_after_ms / 1000);
            self.drop_node(&name, now_ms);
            self.nodes_evicted += 1;
        }
    }

    /// Whether `node` has been silent for longer than the staleness limit at `now_ms`.
    pub fn is_stale(&self, node: &Node, now_ms: u64) -> bool {
        now_ms.saturating_sub(node.last_seen_ms) > self.stale_after_ms
    }

    /// The API's view of `name` at `now_ms`.
    pub fn node_view(&self, name: &str, now_ms: u64) -> Option<NodeView> {
        let v = self.nodes.get(name)?;
        Some(NodeView {
            node: name.to_string(),
            job: v.job.clone(),
            last_seen_ms: v.last_seen_ms,
            last_sample_ms: v.last_sample_ms,
            samples_total: v.samples_total,
            first_sample_ms: v.first_sample_ms,
            max_gap_ms: v.max_gap_ms,
            out_of_order_total: v.out_of_order_total,
            stale: self.is_stale(v, now_ms),
            gpus: v.latest.gpus.len(),
            sm_active_mean: v.latest.sm_active_mean(),
            power_watts: v.latest.gpu_power_watts(),
        })
    }

    /// Open findings, oldest first.
    pub fn active(&self) -> impl Iterator<Item = &FindingRecord> {
        self.findings.active()
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
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
    use super::*;
    use gpuscope_core::{GpuSample, NodeInfo};

    fn snap(node: &str, t_ms: u64, lost_gpu: Option<u32>) -> NodeSnapshot {
        NodeSnapshot {
            node: NodeInfo { hostname: node.into(), job: Some("j".into()), ..NodeInfo::default() },
            timestamp_ms: t_ms,
            gpus: (0..4).map(|i| GpuSample { index: i, lost: lost_gpu == Some(i), ..GpuSample::default() }).collect(),
            ..NodeSnapshot::default()
        }
    }

    /// GPU `g` lost at `t_ms`, back the next second and reporting every second for 70 s (past
    /// the 60 s clear period, which counts only time the data covers).
    fn lose_and_recover(st: &mut State, g: u32, t_ms: u64) -> Vec<FindingEvent> {
        st.ingest_only(vec![snap("n0", t_ms, Some(g))]);
        let mut events = st.evaluate();
        for s in 1..=70 {
            st.ingest_only(vec![snap("n0", t_ms + s * 1000, None)]);
            events.extend(st.evaluate());
        }
        events
    }

    #[test]
    fn staleness_is_computed_when_read() {
        let mut st = State::new(AnalysisConfig::default(), 60_000, 10);
        st.ingest_only(vec![snap("n0", 1_000, None)]);
        let now = now_ms();
        assert!(!st.node_view("n0", now).unwrap().stale);
        assert!(st.node_view("n0", now + 60_001).unwrap().stale, "no call in between marks it");
        assert_eq!(st.node_view("n0", now).unwrap().gpus, 4);
        assert!(st.node_view("n1", now).is_none());
    }

    #[test]
    fn findings_open_close_and_queue_their_writes_with_the_ids_they_keep() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.db")).unwrap();
        let mut st = State::restore(AnalysisConfig::default(), 60_000, 1, &store).unwrap();
        for g in 0..3 {
            let events = lose_and_recover(&mut st, g, 1_000_000 + g as u64 * 100_000);
            let kinds: Vec<_> = events
                .iter()
                .map(|e| (matches!(e, FindingEvent::Opened(_)), e.record().finding.rule.as_str()))
                .collect();
            assert_eq!(kinds, vec![(true, "gpu-lost"), (false, "gpu-lost")]);
        }
        assert_eq!(st.findings.len(), 1, "one closed finding kept in memory");
        assert!(!st.findings.is_complete());
        let writes = st.take_writes();
        let ids: Vec<i64> = writes
            .iter()
            .filter_map(|w| match w {
                StoreWrite::Insert { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, vec![1, 2, 3]);
        store.apply(&writes).unwrap();
        let all = store.load().unwrap();
        assert_eq!(all.len(), 3);
        assert!(all.iter().all(|(_, r)| r.closed_ms.is_some()), "every close reached the store");
        assert!(st.take_writes().is_empty());
    }

    #[test]
    fn a_restored_finding_continues_when_seen_again_and_closes_after_the_grace_when_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("c.db")).unwrap();
        let open = |g| {
            let mut finding = crate::history::tests::finding("gpu-lost", &format!("n{g}"), g);
            finding.severity = gpuscope_core::Severity::Critical;
            finding.scope.job = Some("j".into());
            FindingRecord { finding, opened_ms: 1, closed_ms: None }
        };
        store.insert(&open(0)).unwrap();
        store.insert(&open(1)).unwrap();
        let mut st = State::restore(AnalysisConfig::default(), 60_000, 10, &store).unwrap();
        // GPU 0 is still lost: the same record (id 1) continues.
        st.ingest_only(vec![snap("n0", 2_000_000, Some(0))]);
        let events = st.evaluate();
        assert_eq!(events.len(), 1);
        assert_eq!(st.findings.open_id(&events[0].record().finding), Some(1));
        assert_eq!(st.findings.len(), 2);
        st.check_liveness(now_ms());
        assert_eq!(st.active().count(), 2, "within the grace period");
        st.check_liveness(now_ms() + RESTORE_GRACE_MS + 1);
        let open_nodes: Vec<_> = st.active().map(|r| r.finding.scope.node.clone()).collect();
        assert_eq!(open_nodes, vec![Some("n0".to_string())], "n1 was not seen again");
    }
}
