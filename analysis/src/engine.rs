//! The analyzer: keeps a window per node, evaluates every rule, and turns conditions into
//! findings with hysteresis (open after `sustain`, close after `clear`), so they do not flap.

use crate::config::AnalysisConfig;
use crate::rules::{Ctx, Hit, RULES, RuleInfo};
use crate::window::NodeWindow;
use gpuscope_core::{Finding, FindingScope, NodeSnapshot};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A finding opened or closed.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// A condition held for its sustain period.
    Opened(Finding),
    /// An open finding's condition stayed false for its clear period; `at_ms` is when.
    Closed {
        /// The finding as it was last seen.
        finding: Finding,
        /// When it closed, ms since the epoch.
        at_ms: u64,
    },
}

struct State {
    first_ms: u64,
    last_true_ms: u64,
    open: Option<Finding>,
}

/// The analysis state of a fleet (or one node).
pub struct Analyzer {
    cfg: AnalysisConfig,
    nodes: BTreeMap<String, NodeWindow>,
    states: BTreeMap<String, State>,
    retention_ms: u64,
    full_ms: u64,
    /// How far a node's data may lag the fleet's newest sample and still be judged (its own
    /// newest span is used); beyond it the node has stopped reporting.
    max_lag_ms: u64,
    /// Nodes with new data since the last evaluation.
    dirty: std::collections::BTreeSet<String>,
    /// The last hits of the GPU- and node-scope rules, per node.
    node_hits: BTreeMap<String, Vec<(&'static RuleInfo, Hit)>>,
    /// The last hits of the job-scope rules, per job.
    job_hits: BTreeMap<String, Vec<(&'static RuleInfo, Hit)>>,
}

/// Workload seconds a node's newest sample may lag the fleet's newest and still be judged on
/// its own latest span: a job member whose last batch is late is compared with the others on
/// its newest data instead of dropping out of the comparison.
const MAX_LAG_S: f64 = 60.0;

fn key(rule: &str, h: &Hit) -> String {
    let gpus: Vec<String> = h.gpus.iter().map(u32::to_string).collect();
    format!("{rule}|{}|{}|{}", h.job.as_deref().unwrap_or(""), h.node.as_deref().unwrap_or(""), gpus.join(","))
}

impl Analyzer {
    /// An analyzer keeping `retention_s` seconds of history per node (at least the longest window
    /// a rule needs).
    pub fn new(cfg: AnalysisConfig, retention_s: f64) -> Analyzer {
        let needed = cfg.history_s().max(retention_s);
        let retention_ms = (needed * cfg.scale() * 1000.0) as u64;
        // Whole snapshots for twice the smoothing span (the short-span rules average over it).
        let full_ms = (2.0 * cfg.eval_span_s * cfg.scale() * 1000.0) as u64;
        // The collector's default staleness limit: a node silent for longer is no longer judged.
        let max_lag_ms = (MAX_LAG_S * cfg.scale() * 1000.0) as u64;
        Analyzer {
            max_lag_ms,
            cfg,
            nodes: BTreeMap::new(),
            states: BTreeMap::new(),
            retention_ms,
            full_ms,
            dirty: Default::default(),
            node_hits: BTreeMap::new(),
            job_hits: BTreeMap::new(),
        }
    }

    /// Adds a snapshot to its node's window.
    pub fn ingest(&mut self, snap: Arc<NodeSnapshot>) {
        let node = snap.node.hostname.clone();
        self.dirty.insert(node.clone());
        let (retention, full, lag) = (self.retention_ms, self.full_ms, self.max_lag_ms);
        self.nodes.entry(node).or_insert_with(|| NodeWindow::new(retention, full, lag)).push(snap);
    }

    /// The window of `node`.
    pub fn window(&self, node: &str) -> Option<&NodeWindow> {
        self.nodes.get(node)
    }

    /// Forgets a node (it stopped reporting and its findings closed).
    pub fn remove_node(&mut self, node: &str) {
        self.nodes.remove(node);
        self.node_hits.remove(node);
    }

    /// Evaluates the rules at `now_ms` and returns what opened and closed. GPU and node rules
    /// run only for nodes with new data, job rules only for jobs with such a member; the other
    /// nodes keep their last result, so a fleet costs what its fresh data costs.
    pub fn evaluate(&mut self, now_ms: u64) -> Vec<Change> {
        let dirty = std::mem::take(&mut self.dirty);
        let job_of = |w: &NodeWindow| w.latest().and_then(|s| s.node.job.clone());
        let jobs: std::collections::BTreeSet<String> =
            dirty.iter().filter_map(|n| self.nodes.get(n)).filter_map(job_of).collect();
        let node_ctx = Ctx {
            now_ms,
            nodes: self.nodes.iter().filter(|(n, _)| dirty.contains(*n)).map(|(n, w)| (n.as_str(), w)).collect(),
            cfg: &self.cfg,
            scale: self.cfg.scale(),
        };
        let job_ctx = Ctx {
            now_ms,
            nodes: self
                .nodes
                .iter()
                .filter(|(_, w)| job_of(w).is_some_and(|j| jobs.contains(&j)))
                .map(|(n, w)| (n.as_str(), w))
                .collect(),
            cfg: &self.cfg,
            scale: self.cfg.scale(),
        };
        let mut fresh_nodes: BTreeMap<String, Vec<(&'static RuleInfo, Hit)>> =
            dirty.iter().map(|n| (n.clone(), Vec::new())).collect();
        let mut fresh_jobs: BTreeMap<String, Vec<(&'static RuleInfo, Hit)>> =
            jobs.iter().map(|j| (j.clone(), Vec::new())).collect();
        for rule in RULES.iter().filter(|r| self.cfg.enabled(r.id)) {
            let Some(eval) = rule.eval else { continue };
            if rule.scope == crate::rules::RuleScope::Job {
                for h in eval(&job_ctx) {
                    if let Some(v) = h.job.as_ref().and_then(|j| fresh_jobs.get_mut(j)) {
                        v.push((rule, h));
                    }
                }
            } else {
                for h in eval(&node_ctx) {
                    if let Some(v) = h.node.as_ref().and_then(|n| fresh_nodes.get_mut(n)) {
                        v.push((rule, h));
                    }
                }
            }
        }
        drop(node_ctx);
        drop(job_ctx);
        self.node_hits.extend(fresh_nodes);
        self.job_hits.extend(fresh_jobs);
        let mut hits: BTreeMap<String, (&'static RuleInfo, Hit)> = BTreeMap::new();
        for (rule, h) in self.node_hits.values().chain(self.job_hits.values()).flatten() {
            hits.insert(key(rule.id, h), (rule, h.clone()));
        }
        let mut changes = Vec::new();
        for (k, (rule, h)) in &hits {
            let timing = self.cfg.timing(rule.id, rule.timing);
            let st =
                self.states.entry(k.clone()).or_insert(State { first_ms: now_ms, last_true_ms: now_ms, open: None });
            st.last_true_ms = now_ms;
            let finding = Finding {
                rule: rule.id.to_string(),
                severity: h.severity.unwrap_or(rule.severity),
                scope: FindingScope { node: h.node.clone(), gpus: h.gpus.clone(), job: h.job.clone() },
                since_ms: st.first_ms,
                summary: h.summary.clone(),
                evidence: h.evidence.clone(),
                recommendation: h.recommendation.clone().unwrap_or_else(|| rule.recommendation.to_string()),
                docs: Some(rule.docs()),
                action: h.action.or(rule.action),
            };
            match &mut st.open {
                Some(open) => *open = finding,
                None if now_ms.saturating_sub(st.first_ms) as f64 >= timing.sustain_s * 1000.0 => {
                    st.open = Some(finding.clone());
                    changes.push(Change::Opened(finding));
                }
                None => {}
            }
        }
        let cfg = &self.cfg;
        self.states.retain(|k, st| {
            if hits.contains_key(k) {
                return true;
            }
            let Some(open) = &st.open else { return false };
            let own = crate::rules::rule(&open.rule)
                .map_or(crate::config::Timing { sustain_s: 60.0, clear_s: 60.0 }, |r| r.timing);
            let clear_ms = (cfg.timing(&open.rule, own).clear_s * 1000.0) as u64;
            if now_ms.saturating_sub(st.last_true_ms) >= clear_ms {
                changes.push(Change::Closed { finding: open.clone(), at_ms: now_ms });
                false
            } else {
                true
            }
        });
        changes
    }

    /// Findings open now.
    pub fn active(&self) -> Vec<&Finding> {
        self.states.values().filter_map(|s| s.open.as_ref()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpuscope_core::{GpuSample, NodeInfo};

    fn snap(t_s: u64, used_fraction: f64) -> Arc<NodeSnapshot> {
        snap_of("n0", t_s, used_fraction)
    }

    fn snap_of(node: &str, t_s: u64, used_fraction: f64) -> Arc<NodeSnapshot> {
        let total = 80u64 << 30;
        Arc::new(NodeSnapshot {
            node: NodeInfo { hostname: node.into(), ..NodeInfo::default() },
            timestamp_ms: t_s * 1000,
            gpus: vec![GpuSample {
                index: 0,
                memory_total_bytes: Some(total),
                memory_used_bytes: Some((total as f64 * used_fraction) as u64),
                ..GpuSample::default()
            }],
            ..NodeSnapshot::default()
        })
    }

    /// Memory at 97 % for 70 s, 30 s below, 40 s above, 70 s below.
    #[test]
    fn findings_open_after_sustain_and_do_not_flap() {
        let mut a = Analyzer::new(AnalysisConfig::default(), 600.0);
        let mut log = Vec::new();
        for t in 0..=210u64 {
            let full = t < 70 || (100..140).contains(&t);
            a.ingest(snap(t, if full { 0.97 } else { 0.5 }));
            for c in a.evaluate(t * 1000) {
                match c {
                    Change::Opened(f) => log.push(("open", t, f.since_ms / 1000)),
                    Change::Closed { at_ms, .. } => log.push(("close", at_ms / 1000, 0)),
                }
            }
        }
        assert_eq!(
            log,
            vec![("open", 60, 0), ("close", 199, 0)],
            "one finding, opened after 60 s, closed 60 s after the last hit"
        );
        assert!(a.active().is_empty());
    }

    #[test]
    fn disabled_rules_and_overridden_timing() {
        let mut cfg = AnalysisConfig::default();
        cfg.rules.memory_near_full.sustain_s = Some(5.0);
        let mut a = Analyzer::new(cfg.clone(), 600.0);
        let mut opened = None;
        for t in 0..20u64 {
            a.ingest(snap(t, 0.99));
            if a.evaluate(t * 1000).iter().any(|c| matches!(c, Change::Opened(_))) {
                opened.get_or_insert(t);
            }
        }
        assert_eq!(opened, Some(5));
        cfg.rules.memory_near_full.disabled = true;
        let mut a = Analyzer::new(cfg, 600.0);
        for t in 0..100u64 {
            a.ingest(snap(t, 0.99));
            assert!(a.evaluate(t * 1000).is_empty());
        }
    }

    /// Only nodes with new data are evaluated; a node that goes quiet keeps its last result
    /// (the collector flags it stale) instead of having its findings closed for lack of data.
    #[test]
    fn quiet_nodes_keep_their_findings_while_others_report() {
        let mut a = Analyzer::new(AnalysisConfig::default(), 600.0);
        for t in 0..=70u64 {
            a.ingest(snap_of("full", t, 0.99));
            a.ingest(snap_of("fine", t, 0.5));
            a.evaluate(t * 1000);
        }
        assert_eq!(a.active().len(), 1);
        for t in 71..=300u64 {
            a.ingest(snap_of("fine", t, 0.5));
            assert!(a.evaluate(t * 1000).is_empty());
        }
        assert_eq!(a.active()[0].scope.node.as_deref(), Some("full"));
        // Its next sample says the memory was freed: the finding closes after the clear period.
        let mut closed = None;
        for t in 301..=400u64 {
            a.ingest(snap_of("full", t, 0.5));
            if a.evaluate(t * 1000).iter().any(|c| matches!(c, Change::Closed { .. })) {
                closed.get_or_insert(t);
            }
        }
        assert_eq!(closed, Some(360), "60 s after the last evaluation that still saw it");
    }
    /// A four-node job whose slow member's batches arrive 15 s late (more than the 10 s
    /// smoothing span): it is still compared with the others on its own newest data, so the
    /// straggler finding opens instead of being reset at every late batch.
    #[test]
    fn a_late_member_is_judged_on_its_own_newest_data() {
        let member = |node: &str, t_s: u64, sm: f64| {
            Arc::new(NodeSnapshot {
                node: NodeInfo { hostname: node.into(), job: Some("j".into()), ..NodeInfo::default() },
                timestamp_ms: t_s * 1000,
                gpus: vec![GpuSample {
                    index: 0,
                    sm_active_ratio: Some(sm),
                    utilization_ratio: Some(0.9),
                    ..GpuSample::default()
                }],
                ..NodeSnapshot::default()
            })
        };
        let mut a = Analyzer::new(AnalysisConfig::default(), 600.0);
        let mut opened = Vec::new();
        for t in 15..=200u64 {
            for n in ["n0", "n1", "n3"] {
                a.ingest(member(n, t, 0.86));
            }
            a.ingest(member("n2", t - 15, 0.61));
            for c in a.evaluate(t * 1000) {
                if let Change::Opened(f) = c {
                    opened.push((f.rule, f.scope.node));
                }
            }
        }
        assert_eq!(opened, vec![("straggler".to_string(), Some("n2".to_string()))]);
    }
}
