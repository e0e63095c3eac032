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

/// The timers of one member of a finding: one GPU of a GPU-scope rule, or the node or job of
/// the others. Time counts only while data covers it: a gap in a node's samples, or a sample
/// that lacks what the rule reads, pauses the timers instead of resetting them.
struct Member {
    /// Group the member belongs to.
    group: String,
    /// When the condition was first seen, ms (the finding's `since`).
    first_ms: u64,
    /// Covered time the condition has held, ms.
    held_ms: u64,
    /// Covered time the condition has not held since it last did (an open member), ms.
    false_ms: u64,
    /// Data time of the last evaluation that judged this member, ms.
    last_ms: u64,
    /// Longest stretch without data while the condition was held or clearing, ms.
    longest_gap_ms: u64,
    /// Open: its sustain period passed.
    open: bool,
    /// The rule and its last hit.
    rule: &'static RuleInfo,
    hit: Hit,
}

/// One published finding: the open members of one rule on one node (and job) with one cause.
struct Group {
    /// The finding as published.
    finding: Finding,
    /// Every GPU that was an open member during its life.
    gpus: std::collections::BTreeSet<u32>,
}

/// The analysis state of a fleet (or one node).
pub struct Analyzer {
    cfg: AnalysisConfig,
    nodes: BTreeMap<String, NodeWindow>,
    members: BTreeMap<String, Member>,
    groups: BTreeMap<String, Group>,
    retention_ms: u64,
    full_ms: u64,
    /// How far a node's data may lag the fleet's newest sample and still be judged (its own
    /// newest span is used); beyond it the node has stopped reporting.
    max_lag_ms: u64,
    /// A spacing between a node's samples longer than this is a gap in its data: the smoothing
    /// span (a span without a sample leaves the rules nothing to average).
    gap_ms: u64,
    /// Nodes with new data since the last evaluation.
    dirty: std::collections::BTreeSet<String>,
}

/// Workload seconds a node's newest sample may lag the fleet's newest and still be judged on
/// its own latest span: a job member whose last batch is late is compared with the others on
/// its newest data instead of dropping out of the comparison.
const MAX_LAG_S: f64 = 60.0;

/// The group (published finding) of a hit: rule, job, node and cause.
fn group_key(rule: &RuleInfo, h: &Hit) -> String {
    let cause = h.cause.as_deref().or(h.action.map(|a| a.as_str())).unwrap_or("");
    format!("{}|{}|{}|{cause}", rule.id, h.job.as_deref().unwrap_or(""), h.node.as_deref().unwrap_or(""))
}

/// The member of a hit: its group, and the GPU for GPU-scope rules.
fn member_key(rule: &RuleInfo, h: &Hit) -> String {
    let group = group_key(rule, h);
    match (rule.scope, h.gpus.as_slice()) {
        (crate::rules::RuleScope::Gpu, [g]) => format!("{group}|{g}"),
        _ => group,
    }
}

/// GPU indices as a short list: "0-3", "0, 2, 5-7".
pub fn gpu_list(gpus: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < gpus.len() {
        let mut j = i;
        while j + 1 < gpus.len() && gpus[j + 1] == gpus[j] + 1 {
            j += 1;
        }
        parts.push(if j > i + 1 {
            format!("{}\u{2013}{}", gpus[i], gpus[j])
        } else if j == i + 1 {
            format!("{}, {}", gpus[i], gpus[j])
        } else {
            gpus[i].to_string()
        });
        i = j + 1;
    }
    parts.join(", ")
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
        let gap_ms = (cfg.eval_span_s * cfg.scale() * 1000.0) as u64;
        Analyzer {
            max_lag_ms,
            gap_ms,
            cfg,
            nodes: BTreeMap::new(),
            members: BTreeMap::new(),
            groups: BTreeMap::new(),
            retention_ms,
            full_ms,
            dirty: Default::default(),
        }
    }

    /// Adds a snapshot to its node's window.
    pub fn ingest(&mut self, snap: Arc<NodeSnapshot>) {
        let node = snap.node.hostname.clone();
        self.dirty.insert(node.clone());
        let (retention, full, lag) = (self.retention_ms, self.full_ms, self.max_lag_ms);
        self.nodes.entry(node).or_insert_with(|| NodeWindow::new(retention, full, lag)).push(snap);
    }

    /// The configuration it judges with.
    pub fn config(&self) -> &AnalysisConfig {
        &self.cfg
    }

    /// The window of `node`.
    pub fn window(&self, node: &str) -> Option<&NodeWindow> {
        self.nodes.get(node)
    }

    /// Forgets a node (it stopped reporting and its findings closed).
    pub fn remove_node(&mut self, node: &str) {
        self.nodes.remove(node);
    }

    /// Evaluates the rules at `now_ms` and returns what opened and closed. GPU and node rules
    /// run only for nodes with new data, job rules only for jobs with such a member; the members
    /// of the others are not judged (their timers pause), so a fleet costs what its fresh data
    /// costs.
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
        let mut node_hits: Vec<(&'static RuleInfo, Hit)> = Vec::new();
        let mut job_hits: Vec<(&'static RuleInfo, Hit)> = Vec::new();
        for rule in RULES.iter().filter(|r| self.cfg.enabled(r.id)) {
            let Some(eval) = rule.eval else { continue };
            if rule.scope == crate::rules::RuleScope::Job {
                job_hits.extend(eval(&job_ctx).into_iter().filter(|h| h.job.is_some()).map(|h| (rule, h)));
            } else {
                node_hits.extend(eval(&node_ctx).into_iter().filter(|h| h.node.is_some()).map(|h| (rule, h)));
            }
        }
        drop(node_ctx);
        drop(job_ctx);
        let node_hits = crate::rules::explained_by_jobs(node_hits, &job_hits);
        let mut hits: BTreeMap<String, (&'static RuleInfo, Hit)> = BTreeMap::new();
        for (rule, h) in node_hits.into_iter().chain(job_hits) {
            hits.insert(member_key(rule, &h), (rule, h));
        }
        // The data time each member is judged at: its node's newest sample (a job's: the
        // evaluation time), and whether that data may lack the rule's input.
        let nodes = &self.nodes;
        let judged = |rule: &RuleInfo, h: &Hit| -> Option<(u64, bool)> {
            if rule.scope == crate::rules::RuleScope::Job {
                let job = h.job.as_deref()?;
                if !jobs.contains(job) {
                    return None;
                }
                let incomplete =
                    nodes.values().filter(|w| job_of(w).as_deref() == Some(job)).any(|w| w.newest_incomplete());
                return Some((now_ms, incomplete));
            }
            let node = h.node.as_deref()?;
            if !dirty.contains(node) {
                return None;
            }
            let w = nodes.get(node)?;
            let t = w.newest_ms()?;
            Some((t, w.newest_incomplete()))
        };
        let coverage = |rule: &RuleInfo, h: &Hit, from: u64, to: u64| -> (u64, u64) {
            match h.node.as_deref().and_then(|n| nodes.get(n)).filter(|_| rule.scope != crate::rules::RuleScope::Job) {
                Some(w) => w.coverage(from, to, self.gap_ms),
                None => {
                    let d = to.saturating_sub(from);
                    if d > 2 * self.gap_ms { (0, d) } else { (d, 0) }
                }
            }
        };
        let hit_keys: std::collections::BTreeSet<String> = hits.keys().cloned().collect();
        let cfg = &self.cfg;
        for (k, (rule, h)) in hits {
            let Some((data_ms, _)) = judged(rule, &h) else { continue };
            let sustain_ms = cfg.timing(rule.id, rule.timing).sustain_s * 1000.0;
            let m = self.members.entry(k).or_insert_with(|| Member {
                group: group_key(rule, &h),
                first_ms: data_ms,
                held_ms: 0,
                false_ms: 0,
                last_ms: data_ms,
                longest_gap_ms: 0,
                open: false,
                rule,
                hit: h.clone(),
            });
            let (covered, gap) = coverage(rule, &h, m.last_ms, data_ms);
            m.held_ms += covered;
            m.false_ms = 0;
            m.longest_gap_ms = m.longest_gap_ms.max(gap);
            m.last_ms = m.last_ms.max(data_ms);
            m.hit = h;
            if !m.open && m.held_ms as f64 >= sustain_ms {
                m.open = true;
            }
        }
        self.members.retain(|k, m| {
            if hit_keys.contains(k) {
                return true;
            }
            // Not judged now (no new data): paused.
            let Some((data_ms, incomplete)) = judged(m.rule, &m.hit) else { return true };
            let (covered, gap) = coverage(m.rule, &m.hit, m.last_ms, data_ms);
            m.last_ms = m.last_ms.max(data_ms);
            m.longest_gap_ms = m.longest_gap_ms.max(gap);
            if incomplete {
                // The rule may only be missing its input: paused, not reset.
                return true;
            }
            if !m.open {
                return false;
            }
            m.false_ms += covered;
            (m.false_ms as f64) < cfg.timing(m.rule.id, m.rule.timing).clear_s * 1000.0
        });
        // The published findings: each group's open members.
        let mut open: BTreeMap<&str, Vec<&Member>> = BTreeMap::new();
        for m in self.members.values().filter(|m| m.open) {
            open.entry(m.group.as_str()).or_default().push(m);
        }
        let mut changes = Vec::new();
        let span_s = cfg.eval_span_s;
        let scale = cfg.scale();
        self.groups.retain(|k, g| {
            if open.contains_key(k.as_str()) {
                return true;
            }
            changes.push(Change::Closed { finding: g.finding.clone(), at_ms: now_ms });
            false
        });
        for (k, members) in open {
            let existing = self.groups.get(k);
            let mut gpus = existing.map(|g| g.gpus.clone()).unwrap_or_default();
            let rule = members[0].rule;
            if rule.scope == crate::rules::RuleScope::Gpu {
                gpus.extend(members.iter().flat_map(|m| m.hit.gpus.iter().copied()));
            }
            let finding = publish(&members, &gpus, span_s, scale);
            match self.groups.get_mut(k) {
                Some(g) => {
                    g.finding = finding;
                    g.gpus = gpus;
                }
                None => {
                    changes.push(Change::Opened(finding.clone()));
                    self.groups.insert(k.to_string(), Group { finding, gpus });
                }
            }
        }
        changes
    }

    /// Findings open now.
    pub fn active(&self) -> Vec<&Finding> {
        self.groups.values().map(|g| &g.finding).collect()
    }
}

/// The finding of a group's open members: one finding naming every GPU, the per-GPU values in
/// its evidence, and the longest gap in the data while it held when there was one.
fn publish(members: &[&Member], gpus: &std::collections::BTreeSet<u32>, span_s: f64, scale: f64) -> Finding {
    let first = members[0];
    let rule = first.rule;
    let gpu_scope = rule.scope == crate::rules::RuleScope::Gpu;
    let mut members = members.to_vec();
    members.sort_by_key(|m| m.hit.gpus.first().copied());
    let gpus: Vec<u32> = if gpu_scope { gpus.iter().copied().collect() } else { first.hit.gpus.clone() };
    let summary = if gpu_scope && gpus.len() > 1 {
        format!("GPUs {}: {}", gpu_list(&gpus), rule.title)
    } else {
        first.hit.summary.clone()
    };
    let mut evidence: Vec<gpuscope_core::Evidence> = if gpu_scope {
        members
            .iter()
            .flat_map(|m| {
                let gpu = m.hit.gpus.first().copied();
                m.hit.evidence.iter().cloned().map(move |e| gpuscope_core::Evidence { gpu, ..e })
            })
            .collect()
    } else {
        first.hit.evidence.clone()
    };
    let longest_gap_s = members.iter().map(|m| m.longest_gap_ms).max().unwrap_or(0) as f64 / 1000.0 / scale;
    if longest_gap_s > span_s {
        evidence.push(crate::rules::ev("data_gap_s", longest_gap_s, span_s));
    }
    Finding {
        rule: rule.id.to_string(),
        severity: members.iter().map(|m| m.hit.severity.unwrap_or(rule.severity)).max().unwrap_or(rule.severity),
        scope: FindingScope { node: first.hit.node.clone(), gpus, job: first.hit.job.clone() },
        since_ms: members.iter().map(|m| m.first_ms).min().unwrap_or(first.first_ms),
        summary,
        evidence,
        recommendation: first.hit.recommendation.clone().unwrap_or_else(|| rule.recommendation.to_string()),
        docs: Some(rule.docs()),
        action: first.hit.action.or(rule.action),
        cause: first.hit.cause.clone(),
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

    /// Only nodes with new data are evaluated; a node that goes quiet keeps its findings (the
    /// collector flags it stale) instead of having them closed for lack of data.
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
        assert_eq!(closed, Some(361), "after 60 s of data without it: the silence paused the clear timer");
    }
    /// A four-node job whose slow member's batches arrive 15 s late (more than the 10 s
    /// smoothing span): it is still compared with the others on its own newest data, so the
    /// straggler finding opens instead of being reset at every late batch.
    #[test]
    fn a_late_member_is_judged_on_its_own_newest_data() {
        let member = |node: &str, t_s: u64, sm: f64, util: f64| {
            Arc::new(NodeSnapshot {
                node: NodeInfo { hostname: node.into(), job: Some("j".into()), ..NodeInfo::default() },
                timestamp_ms: t_s * 1000,
                gpus: vec![GpuSample {
                    index: 0,
                    sm_active_ratio: Some(sm),
                    utilization_ratio: Some(util),
                    ..GpuSample::default()
                }],
                ..NodeSnapshot::default()
            })
        };
        let mut a = Analyzer::new(AnalysisConfig::default(), 600.0);
        let mut opened = Vec::new();
        for t in 15..=200u64 {
            for n in ["n0", "n1", "n3"] {
                a.ingest(member(n, t, 0.86, 0.95));
            }
            // Held back (its GPUs half idle), while the others wait for it.
            a.ingest(member("n2", t - 15, 0.61, 0.6));
            for c in a.evaluate(t * 1000) {
                if let Change::Opened(f) = c {
                    opened.push((f.rule, f.scope.node));
                }
            }
        }
        assert_eq!(opened, vec![("straggler".to_string(), Some("n2".to_string()))]);
    }

    /// Four GPUs of one node, idle but held by a process; `gpus_from(t)` says which are idle.
    fn idle_node(t: u64, idle: impl Fn(u32) -> bool, with_processes: bool) -> Arc<NodeSnapshot> {
        let gpus = (0..4u32)
            .map(|i| GpuSample {
                index: i,
                sm_active_ratio: Some(if idle(i) { 0.01 } else { 0.8 }),
                memory_total_bytes: Some(80 << 30),
                memory_used_bytes: Some(10 << 30),
                ..GpuSample::default()
            })
            .collect();
        let processes = if with_processes {
            (0..4u32)
                .map(|i| gpuscope_core::ProcessSample {
                    pid: 100 + i,
                    name: "python".into(),
                    gpu_index: i,
                    gpu_memory_bytes: Some(10 << 30),
                    ..Default::default()
                })
                .collect()
        } else {
            Vec::new()
        };
        Arc::new(NodeSnapshot {
            node: NodeInfo { hostname: "n0".into(), ..NodeInfo::default() },
            timestamp_ms: t * 1000,
            gpus,
            processes,
            ..NodeSnapshot::default()
        })
    }

    /// Runs `snaps(t)` (None: no sample that second) for `secs` seconds, returning the changes
    /// with their time.
    fn run(secs: u64, snaps: impl Fn(u64) -> Option<Arc<NodeSnapshot>>) -> (Analyzer, Vec<(u64, Change)>) {
        let mut a = Analyzer::new(AnalysisConfig::default(), 900.0);
        let mut log = Vec::new();
        for t in 0..=secs {
            if let Some(s) = snaps(t) {
                a.ingest(s);
            }
            log.extend(a.evaluate(t * 1000).into_iter().map(|c| (t, c)));
        }
        (a, log)
    }

    /// One rule on four GPUs of a node is one finding naming them, with each GPU's values in
    /// its evidence; a GPU whose condition starts later joins it after its own sustain period
    /// instead of opening a second finding, and the finding closes when the last one clears.
    #[test]
    fn one_rule_on_several_gpus_of_a_node_is_one_finding() {
        // GPUs 0-2 idle from the start, GPU 3 from 100 s; all busy again from 800 s.
        let (a, log) = run(900, |t| Some(idle_node(t, |g| t < 800 && (g < 3 || t >= 100), true)));
        let opened: Vec<&Finding> =
            log.iter().filter_map(|(_, c)| if let Change::Opened(f) = c { Some(f) } else { None }).collect();
        assert_eq!(opened.len(), 1, "{log:#?}");
        assert_eq!(log[0].0, 600);
        let f = opened[0];
        assert_eq!(f.scope.gpus, vec![0, 1, 2]);
        assert_eq!(f.summary, "GPUs 0\u{2013}2: the GPU is held by a process but idle");
        let gpus: Vec<Option<u32>> = f.evidence.iter().map(|e| e.gpu).collect();
        // Each GPU's activity and idle GPU-hours.
        assert_eq!(gpus, vec![Some(0), Some(0), Some(1), Some(1), Some(2), Some(2)]);
        let closed: Vec<(u64, &Finding)> = log
            .iter()
            .filter_map(|(t, c)| if let Change::Closed { finding, .. } = c { Some((*t, finding)) } else { None })
            .collect();
        assert_eq!(closed.len(), 1);
        // The 10 s mean drops below the idle threshold with the first busy sample (800 s).
        assert_eq!(closed[0].0, 859, "60 s after the last GPU's last idle evaluation (799 s)");
        assert_eq!(closed[0].1.scope.gpus, vec![0, 1, 2, 3], "GPU 3 joined at 700 s");
        assert!(a.active().is_empty());
    }

    /// A 10-minute condition whose samples sometimes lack the process list (a /proc read that
    /// raced) and sometimes do not arrive at all: the missing data pauses the timer, it does not
    /// reset it, and a long silence is reported in the evidence.
    #[test]
    fn missing_data_pauses_the_timers_and_a_long_gap_is_reported() {
        let sparse = |t: u64| {
            if (300..330).contains(&t) {
                return None; // 30 s without any sample
            }
            Some(idle_node(t, |g| g == 0, !t.is_multiple_of(45)))
        };
        let (_, log) = run(900, sparse);
        let opened: Vec<(u64, &Finding)> =
            log.iter().filter_map(|(t, c)| if let Change::Opened(f) = c { Some((*t, f)) } else { None }).collect();
        assert_eq!(opened.len(), 1, "{log:#?}");
        // 600 s of data: the 30 s silence does not count, nor do the seconds of the incomplete
        // samples (when the rule could not see the process), thirteen of them before 645 s.
        let (t, f) = opened[0];
        assert!((630..=650).contains(&t), "opened at {t}");
        assert_eq!(f.since_ms, 1000, "since the first sample that showed it");
        let gap = f.evidence.iter().find(|e| e.signal == "data_gap_s").expect("the gap is reported");
        assert_eq!((gap.value, gap.threshold), (31.0, 10.0));
        // Without the fix the timer restarted at every incomplete sample and never reached 600 s.
    }

    /// Data that says the condition is gone resets a timer that has not fired, even when the
    /// same evaluation's data is complete (pausing is for missing data only).
    #[test]
    fn complete_data_without_the_condition_still_resets() {
        let (_, log) = run(900, |t| Some(idle_node(t, |g| g == 0 && t % 300 != 0, true)));
        assert!(log.is_empty(), "{log:#?}");
    }

    /// A signal that flickers (absent in one sample of seven, as a /proc/stat read between two
    /// writes gives no ratio) pauses only the evaluations of those samples: an open finding
    /// still closes after its clear period, a few seconds later.
    #[test]
    fn a_flickering_signal_does_not_hold_a_finding_open() {
        let (_, log) = run(1000, |t| Some(idle_node(t, |g| g == 0 && t < 800, t % 7 != 0)));
        let times: Vec<(u64, bool)> = log.iter().map(|(t, c)| (*t, matches!(c, Change::Opened(_)))).collect();
        // 600 s of data take 700 s when one sample in seven says nothing; 60 s take 70 s.
        assert_eq!(times.len(), 2, "{log:#?}");
        assert!(times[0].1 && (695..=705).contains(&times[0].0), "{times:?}");
        assert!(!times[1].1 && (865..=875).contains(&times[1].0), "closed at {:?}", times[1]);
    }
}
