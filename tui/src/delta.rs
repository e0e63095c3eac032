//! The snapshot codec of recording format 2 (docs/recording.md): a snapshot is the set of its
//! JSON leaves, each named once by its path and numbered in order of first appearance; a record
//! carries only the leaves that changed since the one before, so an hour of a node costs about
//! what changed in it rather than what it holds.
//!
//! Gauges are kept to [`DIGITS`] significant digits, finer than any source the agent reads
//! (NVML power is whole milliwatts: six digits from 100 to 999 W; utilization is whole percent).
//! Without it, noise in the last digits of a ratio — which carries no information — would change
//! every leaf in every record. Counters (`…_total`, `…_joules`) and integers stay exact.

use gpuscope_core::NodeSnapshot;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// Significant digits a gauge is stored with.
pub const DIGITS: usize = 6;
/// The largest array index a path may name: a damaged or hostile file must not make the reader
/// allocate without bound (a snapshot's longest array, its CPUs or processes, is far shorter).
const MAX_INDEX: u64 = 1 << 16;
/// The deepest path a file may name (a snapshot is four levels deep).
const MAX_DEPTH: usize = 16;

/// One step of a leaf's path: an object key, or an array index.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Seg {
    /// Index into an array.
    Index(u64),
    /// Key of an object.
    Key(String),
}

/// What one snapshot record holds: paths first seen here, the changed leaves, the gone ones.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Delta {
    /// Paths first seen in this record; they take the next numbers, in this order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub new: Vec<Vec<Seg>>,
    /// Changed leaves as pairs: the gap to the previous changed number (number − previous − 1,
    /// the first counted from −1), then the value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub set: Vec<Value>,
    /// Numbers of the leaves the snapshot no longer has (ascending).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub del: Vec<u32>,
}

/// Why a delta could not be applied.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeltaError {
    /// The record names a leaf number no path was declared for.
    #[error("leaf {0} was never declared")]
    Undeclared(u64),
    /// `set` is not a list of (gap, value) pairs.
    #[error("set is not a list of (gap, value) pairs")]
    Pairs,
    /// A path is deeper or names a larger index than any snapshot has.
    #[error("a path is out of bounds (deeper than {MAX_DEPTH} or an index above {MAX_INDEX})")]
    Bounds,
    /// The leaves do not make a snapshot.
    #[error("the leaves do not make a snapshot: {0}")]
    Snapshot(String),
}

/// Counters, and values whose every digit matters, stay exact.
fn exact(key: Option<&Seg>) -> bool {
    matches!(key, Some(Seg::Key(k)) if k.ends_with("_total") || k.ends_with("_joules") || k.ends_with("_ms"))
}

fn rounded(x: f64) -> f64 {
    if !x.is_finite() || x == 0.0 {
        return x;
    }
    // Scientific notation with DIGITS − 1 decimals is exactly DIGITS significant digits.
    format!("{x:.*e}", DIGITS - 1).parse().unwrap_or(x)
}

fn leaves(v: &Value, path: &mut Vec<Seg>, out: &mut Vec<(Vec<Seg>, Value)>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, x) in m {
                path.push(Seg::Key(k.clone()));
                leaves(x, path, out);
                path.pop();
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for (i, x) in a.iter().enumerate() {
                path.push(Seg::Index(i as u64));
                leaves(x, path, out);
                path.pop();
            }
        }
        Value::Number(n) if n.is_f64() && !exact(path.last()) => {
            let x = n.as_f64().map_or(v.clone(), |x| serde_json::json!(rounded(x)));
            out.push((path.clone(), x));
        }
        // Scalars, and empty objects and arrays (a leaf of their own, so they come back).
        _ => out.push((path.clone(), v.clone())),
    }
}

/// Turns snapshots into deltas against the one before.
#[derive(Debug, Default)]
pub struct Encoder {
    ids: HashMap<Vec<Seg>, u32>,
    values: HashMap<u32, Value>,
}

impl Encoder {
    /// The delta from the previous snapshot (from nothing, for the first) to `s`.
    pub fn encode(&mut self, s: &NodeSnapshot) -> Result<Delta, serde_json::Error> {
        let v = serde_json::to_value(s)?;
        let mut all = Vec::new();
        leaves(&v, &mut Vec::new(), &mut all);
        let mut d = Delta::default();
        let mut changed: Vec<(u32, Value)> = Vec::new();
        let mut live = HashSet::with_capacity(all.len());
        for (path, value) in all {
            let id = match self.ids.get(&path) {
                Some(id) => *id,
                None => {
                    let id = self.ids.len() as u32;
                    self.ids.insert(path.clone(), id);
                    d.new.push(path);
                    id
                }
            };
            live.insert(id);
            if self.values.get(&id) != Some(&value) {
                self.values.insert(id, value.clone());
                changed.push((id, value));
            }
        }
        d.del = self.values.keys().copied().filter(|id| !live.contains(id)).collect();
        d.del.sort_unstable();
        for id in &d.del {
            self.values.remove(id);
        }
        changed.sort_unstable_by_key(|(id, _)| *id);
        let mut last: i64 = -1;
        for (id, value) in changed {
            d.set.push(Value::from(i64::from(id) - last - 1));
            d.set.push(value);
            last = i64::from(id);
        }
        Ok(d)
    }
}

/// Puts `v` at `path` in `tree`, making the objects and arrays on the way.
fn insert(tree: &mut Value, path: &[Seg], v: Value) -> Result<(), DeltaError> {
    if path.len() > MAX_DEPTH {
        return Err(DeltaError::Bounds);
    }
    let mut node = tree;
    for seg in path {
        node = match seg {
            Seg::Key(k) => {
                if !node.is_object() {
                    *node = Value::Object(Map::new());
                }
                let Value::Object(m) = node else { unreachable!("made an object above") };
                m.entry(k.clone()).or_insert(Value::Null)
            }
            Seg::Index(i) => {
                if *i > MAX_INDEX {
                    return Err(DeltaError::Bounds);
                }
                if !node.is_array() {
                    *node = Value::Array(Vec::new());
                }
                let Value::Array(a) = node else { unreachable!("made an array above") };
                let i = *i as usize;
                if a.len() <= i {
                    a.resize(i + 1, Value::Null);
                }
                &mut a[i]
            }
        };
    }
    *node = v;
    Ok(())
}

/// Rebuilds snapshots from deltas.
#[derive(Debug, Default)]
pub struct Decoder {
    paths: Vec<Vec<Seg>>,
    values: Vec<Option<Value>>,
    tree: Value,
}

impl Decoder {
    /// Applies `d` to the snapshot before and returns the snapshot it makes.
    pub fn apply(&mut self, d: Delta) -> Result<NodeSnapshot, DeltaError> {
        let mut reshaped = !d.new.is_empty() || !d.del.is_empty();
        for p in d.new {
            if p.len() > MAX_DEPTH || p.iter().any(|s| matches!(s, Seg::Index(i) if *i > MAX_INDEX)) {
                return Err(DeltaError::Bounds);
            }
            self.paths.push(p);
            self.values.push(None);
        }
        if !d.set.len().is_multiple_of(2) {
            return Err(DeltaError::Pairs);
        }
        let mut last: i64 = -1;
        let mut changed = Vec::with_capacity(d.set.len() / 2);
        let mut pairs = d.set.into_iter();
        while let (Some(gap), Some(value)) = (pairs.next(), pairs.next()) {
            let gap = gap.as_u64().ok_or(DeltaError::Pairs)?;
            let id = u64::try_from(last).map_or(gap, |l| l.saturating_add(1).saturating_add(gap));
            let slot =
                usize::try_from(id).ok().and_then(|i| self.values.get_mut(i)).ok_or(DeltaError::Undeclared(id))?;
            // A leaf that comes back (a field that was absent) changes the shape.
            reshaped |= slot.is_none();
            *slot = Some(value.clone());
            changed.push((id as usize, value));
            last = i64::try_from(id).map_err(|_| DeltaError::Undeclared(id))?;
        }
        for id in d.del {
            let slot = self.values.get_mut(id as usize).ok_or(DeltaError::Undeclared(u64::from(id)))?;
            *slot = None;
        }
        if reshaped {
            let mut tree = Value::Null;
            for (path, value) in self.paths.iter().zip(&self.values) {
                if let Some(v) = value {
                    insert(&mut tree, path, v.clone())?;
                }
            }
            self.tree = tree;
        } else {
            for (id, value) in changed {
                insert(&mut self.tree, &self.paths[id], value)?;
            }
        }
        NodeSnapshot::deserialize(&self.tree).map_err(|e| DeltaError::Snapshot(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use gpuscope_core::{GpuSample, HostSample, ProcessSample};

    fn snap(t: u64) -> NodeSnapshot {
        NodeSnapshot {
            timestamp_ms: t * 1000,
            gpus: vec![GpuSample {
                index: 0,
                power_watts: Some(453.949_189_163_838_2 + t as f64),
                utilization_ratio: Some(0.97),
                energy_joules: Some(123_456.789_012_345 + t as f64),
                ..GpuSample::default()
            }],
            processes: (0..(t % 3)).map(|i| ProcessSample { pid: 10 + i as u32, ..ProcessSample::default() }).collect(),
            host: Some(HostSample::default()),
            ..NodeSnapshot::default()
        }
    }

    #[test]
    fn snapshots_come_back_with_gauges_to_six_digits_and_counters_exact() {
        let (mut e, mut d) = (Encoder::default(), Decoder::default());
        for t in 0..7 {
            let s = snap(t);
            let back = d.apply(e.encode(&s).unwrap()).unwrap();
            let mut want = s.clone();
            want.gpus[0].power_watts = Some(rounded(453.949_189_163_838_2 + t as f64));
            assert_eq!(back, want, "t={t}");
            assert_eq!(back.gpus[0].energy_joules, s.gpus[0].energy_joules, "a counter stays exact");
            assert_eq!(back.processes.len(), (t % 3) as usize, "processes come and go");
        }
        assert_eq!(rounded(453.949_189_163_838_2), 453.949);
        assert_eq!(rounded(0.000_123_456_789), 0.000_123_457);
    }

    #[test]
    fn only_what_changed_is_carried() {
        let mut e = Encoder::default();
        let first = e.encode(&snap(0)).unwrap();
        assert!(!first.new.is_empty());
        let again = e.encode(&snap(0)).unwrap();
        assert_eq!(again, Delta::default(), "an unchanged snapshot is an empty record");
        let next = e.encode(&snap(3)).unwrap();
        // timestamp, power, energy: three pairs; no process came or went (3 % 3 == 0).
        assert_eq!(next.set.len(), 6, "{next:?}");
        assert!(next.new.is_empty() && next.del.is_empty());
    }

    #[test]
    fn damaged_deltas_are_errors_not_panics() {
        let mut d = Decoder::default();
        let bad = |v: serde_json::Value| serde_json::from_value::<Delta>(v).unwrap();
        assert_eq!(d.apply(bad(serde_json::json!({"set": [5, 1]}))), Err(DeltaError::Undeclared(5)));
        assert_eq!(d.apply(bad(serde_json::json!({"new": [["a"]], "set": [0]}))), Err(DeltaError::Pairs));
        let mut d = Decoder::default();
        assert_eq!(d.apply(bad(serde_json::json!({"new": [["gpus", 4_000_000_000u64]]}))), Err(DeltaError::Bounds));
        let mut d = Decoder::default();
        let r = d.apply(bad(serde_json::json!({"new": [["timestamp_ms"]], "set": [0, "soon"]})));
        assert!(matches!(r, Err(DeltaError::Snapshot(_))), "{r:?}");
    }
}
