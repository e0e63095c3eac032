//! The findings history in memory: every open finding, indexed by (rule, scope) so that opening
//! and closing never scan, and the newest closed findings up to a bound. Older closed findings
//! are evicted from memory; with a store they stay queryable there (the API reads them back).
//!
//! Every record has an id, allocated here in opening order. With a store the id is the row id:
//! the store's writer runs on its own thread, and allocating ids here means an update never
//! waits for the insert to tell it which row to change.

use gpuscope_core::Finding;
use gpuscope_core::api::FindingRecord;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Which findings a query wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FindingFilter {
    /// Only open (`Some(true)`) or only closed (`Some(false)`) findings.
    pub active: Option<bool>,
    /// Only findings on this node.
    pub node: Option<String>,
    /// Only findings of this rule.
    pub rule: Option<String>,
}

impl FindingFilter {
    /// Whether `r` matches.
    pub fn matches(&self, r: &FindingRecord) -> bool {
        self.active.is_none_or(|a| a == r.closed_ms.is_none())
            && self.node.as_deref().is_none_or(|n| r.finding.scope.node.as_deref() == Some(n))
            && self.rule.as_deref().is_none_or(|x| r.finding.rule == x)
    }
}

/// What identifies an open finding of a rule: node, job and cause. Not its GPUs: a finding
/// that groups a node's GPUs keeps its record while GPUs join it.
type Identity = (Option<String>, Option<String>, Option<String>);

fn identity(f: &Finding) -> Identity {
    (f.scope.node.clone(), f.scope.job.clone(), f.cause.clone())
}

/// Open findings and the newest closed ones, by id.
#[derive(Debug)]
pub struct History {
    records: BTreeMap<i64, FindingRecord>,
    open: BTreeSet<i64>,
    closed: BTreeSet<i64>,
    /// rule → identity → id of the open record.
    open_by_key: HashMap<String, HashMap<Identity, i64>>,
    closed_kept: usize,
    next_id: i64,
    /// Closed findings that are not in memory (evicted, or left in the store at start).
    not_in_memory: u64,
}

impl History {
    /// An empty history keeping at most `closed_kept` closed findings; ids start after `last_id`.
    pub fn new(closed_kept: usize, last_id: i64) -> History {
        History {
            records: BTreeMap::new(),
            open: BTreeSet::new(),
            closed: BTreeSet::new(),
            open_by_key: HashMap::new(),
            closed_kept,
            next_id: last_id + 1,
            not_in_memory: 0,
        }
    }

    /// Takes in a record read back from the store (its id already allocated there).
    pub fn restore(&mut self, id: i64, r: FindingRecord) {
        self.next_id = self.next_id.max(id + 1);
        self.insert(id, r);
    }

    /// Notes `n` closed findings that stay in the store only.
    pub fn left_in_store(&mut self, n: u64) {
        self.not_in_memory += n;
    }

    /// Records a newly opened finding and returns its id.
    pub fn open(&mut self, r: FindingRecord) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        self.insert(id, r);
        id
    }

    fn insert(&mut self, id: i64, r: FindingRecord) {
        if r.closed_ms.is_none() {
            let by_scope = self.open_by_key.entry(r.finding.rule.clone()).or_default();
            // Two open records of one key only come from a store written by hand: the index
            // points to the newest, the older stays open until the restore grace closes it.
            by_scope.insert(identity(&r.finding), id);
            self.open.insert(id);
        } else {
            self.closed.insert(id);
        }
        self.records.insert(id, r);
        self.evict();
    }

    /// The id of the open record of `f`'s rule, node, job and cause.
    pub fn open_id(&self, f: &Finding) -> Option<i64> {
        self.open_by_key.get(f.rule.as_str())?.get(&identity(f)).copied()
    }

    /// The record `id`, if it is in memory.
    pub fn get(&self, id: i64) -> Option<&FindingRecord> {
        self.records.get(&id)
    }

    /// Replaces the finding of the record `id` (its latest evaluation).
    pub fn set_finding(&mut self, id: i64, f: Finding) -> Option<&FindingRecord> {
        let r = self.records.get_mut(&id)?;
        r.finding = f;
        Some(r)
    }

    /// Closes the open record `id` at `closed_ms`, with `f` as its last evaluation when given,
    /// and returns the closed record (before any eviction drops it from memory).
    pub fn close(&mut self, id: i64, closed_ms: u64, f: Option<Finding>) -> Option<FindingRecord> {
        if !self.open.remove(&id) {
            return None;
        }
        let r = self.records.get_mut(&id)?;
        if let Some(by_scope) = self.open_by_key.get_mut(r.finding.rule.as_str())
            && by_scope.get(&identity(&r.finding)) == Some(&id)
        {
            by_scope.remove(&identity(&r.finding));
            if by_scope.is_empty() {
                self.open_by_key.remove(r.finding.rule.as_str());
            }
        }
        if let Some(f) = f {
            r.finding = f;
        }
        r.closed_ms = Some(closed_ms);
        let closed = r.clone();
        self.closed.insert(id);
        self.evict();
        Some(closed)
    }

    /// Drops the oldest (lowest id) closed findings beyond the bound.
    fn evict(&mut self) {
        while self.closed.len() > self.closed_kept {
            if let Some(id) = self.closed.pop_first() {
                self.records.remove(&id);
                self.not_in_memory += 1;
            }
        }
    }

    /// Open findings, oldest first.
    pub fn active(&self) -> impl Iterator<Item = &FindingRecord> {
        self.open.iter().filter_map(|id| self.records.get(id))
    }

    /// Every finding in memory, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &FindingRecord> {
        self.records.values()
    }

    /// Findings in memory.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no finding is in memory.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Whether every finding ever recorded is in memory (nothing evicted or left in the store).
    pub fn is_complete(&self) -> bool {
        self.not_in_memory == 0
    }

    /// The newest `limit` findings in memory that match `filter`, oldest first, with their ids.
    pub fn matching(&self, filter: &FindingFilter, limit: usize) -> Vec<(i64, FindingRecord)> {
        let mut out: Vec<(i64, FindingRecord)> = if filter.active == Some(true) {
            self.open
                .iter()
                .rev()
                .filter_map(|id| Some((*id, self.records.get(id)?)))
                .filter(|(_, r)| filter.matches(r))
                .take(limit)
                .map(|(id, r)| (id, r.clone()))
                .collect()
        } else {
            self.records
                .iter()
                .rev()
                .filter(|(_, r)| filter.matches(r))
                .take(limit)
                .map(|(id, r)| (*id, r.clone()))
                .collect()
        };
        out.reverse();
        out
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
    use super::*;
    use gpuscope_core::{FindingScope, Severity};

    pub(crate) fn finding(rule: &str, node: &str, gpu: u32) -> Finding {
        Finding {
            rule: rule.into(),
            severity: Severity::Warning,
            scope: FindingScope { node: Some(node.into()), gpus: vec![gpu], job: None },
            since_ms: 1,
            summary: format!("{rule} on {node}/{gpu}"),
            evidence: vec![],
            recommendation: String::new(),
            docs: None,
            action: None,
            cause: None,
        }
    }

    fn record(f: Finding, opened_ms: u64) -> FindingRecord {
        FindingRecord { finding: f, opened_ms, closed_ms: None }
    }

    #[test]
    fn open_findings_are_found_by_rule_node_job_and_cause_and_closed_ones_are_bounded() {
        let mut h = History::new(2, 0);
        let ids: Vec<i64> =
            (0..5).map(|g| h.open(record(finding("gpu-lost", &format!("n{g}"), g), 10 + g as u64))).collect();
        assert_eq!(ids, vec![1, 2, 3, 4, 5]);
        assert_eq!(h.open_id(&finding("gpu-lost", "n3", 3)), Some(4));
        assert_eq!(h.open_id(&finding("gpu-lost", "n3", 1)), Some(4), "its GPUs do not identify it");
        assert_eq!(h.open_id(&finding("gpu-lost", "n7", 3)), None);
        assert_eq!(h.open_id(&finding("xid-error", "n0", 3)), None);
        // Close all but the last: the two newest closed stay, the oldest two are evicted.
        for id in &ids[..4] {
            let closed = h.close(*id, 100 + *id as u64, None).unwrap();
            assert_eq!(closed.closed_ms, Some(100 + *id as u64));
        }
        assert!(h.close(1, 200, None).is_none(), "closing twice does nothing");
        assert_eq!(h.open_id(&finding("gpu-lost", "n0", 0)), None);
        let in_memory: Vec<u32> = h.iter().map(|r| r.finding.scope.gpus[0]).collect();
        assert_eq!(in_memory, vec![2, 3, 4], "closed 2 and 3 kept, open 4");
        assert!(!h.is_complete());
        assert_eq!(h.active().count(), 1);
        // The same key opens again as a new record.
        let again = h.open(record(finding("gpu-lost", "n0", 0), 300));
        assert_eq!(again, 6);
        assert_eq!(h.open_id(&finding("gpu-lost", "n0", 0)), Some(6));
    }

    #[test]
    fn matching_returns_the_newest_matches_oldest_first() {
        let mut h = History::new(100, 0);
        for g in 0..6 {
            let id = h.open(record(finding(if g % 2 == 0 { "a" } else { "b" }, "n0", g), g as u64));
            if g < 4 {
                h.close(id, 50, None);
            }
        }
        let ids = |v: Vec<(i64, FindingRecord)>| v.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        assert_eq!(ids(h.matching(&FindingFilter::default(), 3)), vec![4, 5, 6]);
        let rule_a = FindingFilter { rule: Some("a".into()), ..Default::default() };
        assert_eq!(ids(h.matching(&rule_a, 10)), vec![1, 3, 5]);
        let open = FindingFilter { active: Some(true), ..Default::default() };
        assert_eq!(ids(h.matching(&open, 10)), vec![5, 6]);
        let closed = FindingFilter { active: Some(false), ..Default::default() };
        assert_eq!(ids(h.matching(&closed, 2)), vec![3, 4]);
        assert!(h.matching(&FindingFilter::default(), 0).is_empty());
    }

    #[test]
    fn restored_records_keep_their_ids_and_new_ones_follow() {
        let mut h = History::new(10, 0);
        h.restore(7, record(finding("a", "n0", 0), 1));
        h.restore(9, FindingRecord { closed_ms: Some(5), ..record(finding("a", "n0", 1), 1) });
        h.left_in_store(3);
        assert_eq!(h.open_id(&finding("a", "n0", 0)), Some(7));
        assert_eq!(h.open(record(finding("b", "n0", 0), 2)), 10);
        assert!(!h.is_complete());
    }
}
