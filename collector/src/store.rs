//! The SQLite store: findings history and node inventory, so both survive a restart, and the
//! closed findings the memory no longer holds stay queryable. The collector reads it
//! synchronously at start; afterwards every write goes through [`writer::StoreWriter`], off the
//! async runtime.

pub mod writer;

use crate::history::FindingFilter;
use gpuscope_core::Finding;
use gpuscope_core::api::FindingRecord;
use rusqlite::{Connection, OptionalExtension, Params, params};
use std::path::Path;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite said no.
    #[error("findings store {path}: {source}")]
    Sqlite {
        /// Database path.
        path: String,
        /// Underlying error.
        source: rusqlite::Error,
    },
}

/// A stored node: (job, first seen ms, last seen ms, inventory JSON).
pub type StoredNode = (Option<String>, u64, u64, String);

/// One change for the store to make, queued to its writer.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreWrite {
    /// A finding opened: insert it under the id the history allocated.
    Insert {
        /// Row id.
        id: i64,
        /// The record.
        record: FindingRecord,
    },
    /// A finding was re-evaluated or closed.
    Update {
        /// Row id.
        id: i64,
        /// The record as it is now.
        record: FindingRecord,
    },
    /// A node's inventory and last sight.
    Node {
        /// Host name.
        node: String,
        /// Job label.
        job: Option<String>,
        /// When it was seen (wall clock), ms.
        seen_ms: u64,
        /// Inventory JSON.
        inventory: String,
    },
    /// A node was forgotten (through the API): its inventory row goes; its findings stay.
    ForgetNode {
        /// Host name.
        node: String,
    },
}

/// Findings read back at start: the open ones and the newest closed ones.
#[derive(Debug, Default)]
pub struct Restored {
    /// (row id, record), oldest first.
    pub findings: Vec<(i64, FindingRecord)>,
    /// Closed findings left in the store (older than those read).
    pub closed_left: u64,
    /// The highest row id in use.
    pub last_id: i64,
}

/// The open database.
pub struct Store {
    conn: Connection,
    path: String,
}

impl Store {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let p = path.display().to_string();
        let err = |source| StoreError::Sqlite { path: p.clone(), source };
        let conn = Connection::open(path).map_err(err)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS findings (
                 id INTEGER PRIMARY KEY,
                 rule TEXT NOT NULL,
                 severity TEXT NOT NULL,
                 node TEXT,
                 gpus TEXT NOT NULL,
                 job TEXT,
                 since_ms INTEGER NOT NULL,
                 opened_ms INTEGER NOT NULL,
                 closed_ms INTEGER,
                 finding TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS findings_open ON findings (closed_ms);
             CREATE TABLE IF NOT EXISTS nodes (
                 node TEXT PRIMARY KEY,
                 job TEXT,
                 first_seen_ms INTEGER NOT NULL,
                 last_seen_ms INTEGER NOT NULL,
                 inventory TEXT NOT NULL
             );",
        )
        .map_err(err)?;
        Ok(Store { conn, path: p })
    }

    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite { path: self.path.clone(), source }
    }

    /// Every finding ever recorded, oldest first, with its row id.
    pub fn load(&self) -> Result<Vec<(i64, FindingRecord)>, StoreError> {
        self.records("SELECT id, finding, opened_ms, closed_ms FROM findings ORDER BY id", [])
    }

    /// Every open finding and the newest `closed` closed ones (by id), oldest first.
    pub fn load_recent(&self, closed: usize) -> Result<Restored, StoreError> {
        let findings = self.records(
            "SELECT id, finding, opened_ms, closed_ms FROM findings WHERE closed_ms IS NULL OR id IN
                 (SELECT id FROM findings WHERE closed_ms IS NOT NULL ORDER BY id DESC LIMIT ?1)
             ORDER BY id",
            params![closed as i64],
        )?;
        let (closed_total, last_id): (i64, i64) = self
            .conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM findings WHERE closed_ms IS NOT NULL), COALESCE(MAX(id), 0) FROM findings",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| self.err(e))?;
        let closed_read = findings.iter().filter(|(_, r)| r.closed_ms.is_some()).count() as u64;
        Ok(Restored { findings, closed_left: (closed_total as u64).saturating_sub(closed_read), last_id })
    }

    /// The newest `limit` findings matching `filter`, oldest first, with their row ids.
    pub fn findings(&self, filter: &FindingFilter, limit: usize) -> Result<Vec<(i64, FindingRecord)>, StoreError> {
        let mut out = self.records(
            "SELECT id, finding, opened_ms, closed_ms FROM findings
             WHERE (?1 IS NULL OR (closed_ms IS NULL) = ?1) AND (?2 IS NULL OR node = ?2) AND (?3 IS NULL OR rule = ?3)
             ORDER BY id DESC LIMIT ?4",
            params![filter.active, filter.node, filter.rule, limit.min(i64::MAX as usize) as i64],
        )?;
        out.reverse();
        Ok(out)
    }

    fn records(&self, sql: &str, args: impl Params) -> Result<Vec<(i64, FindingRecord)>, StoreError> {
        let mut st = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_map(args, |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, Option<i64>>(3)?))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, json, opened, closed) = row.map_err(|e| self.err(e))?;
            // A row written by a newer version that this one cannot read is skipped, not fatal.
            let Ok(finding) = serde_json::from_str::<Finding>(&json) else { continue };
            out.push((id, FindingRecord { finding, opened_ms: opened as u64, closed_ms: closed.map(|c| c as u64) }));
        }
        Ok(out)
    }

    /// Records a newly opened finding under the next free row id; returns it.
    pub fn insert(&self, r: &FindingRecord) -> Result<i64, StoreError> {
        let id: i64 = self
            .conn
            .query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM findings", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        self.insert_as(id, r)?;
        Ok(id)
    }

    /// Records a newly opened finding under row id `id`.
    pub fn insert_as(&self, id: i64, r: &FindingRecord) -> Result<(), StoreError> {
        let f = &r.finding;
        let gpus: Vec<String> = f.scope.gpus.iter().map(u32::to_string).collect();
        self.conn
            .execute(
                "INSERT INTO findings (id, rule, severity, node, gpus, job, since_ms, opened_ms, closed_ms, finding) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    id,
                    f.rule,
                    f.severity.as_str(),
                    f.scope.node,
                    gpus.join(","),
                    f.scope.job,
                    f.since_ms as i64,
                    r.opened_ms as i64,
                    r.closed_ms.map(|c| c as i64),
                    serde_json::to_string(f).unwrap_or_default()
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Updates a finding (its latest text, and its close time once closed).
    pub fn update(&self, id: i64, r: &FindingRecord) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE findings SET severity = ?2, closed_ms = ?3, finding = ?4 WHERE id = ?1",
                params![
                    id,
                    r.finding.severity.as_str(),
                    r.closed_ms.map(|c| c as i64),
                    serde_json::to_string(&r.finding).unwrap_or_default()
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Makes `writes` in one transaction; one that fails is logged and the others still land.
    pub fn apply(&self, writes: &[StoreWrite]) -> Result<(), StoreError> {
        // One transaction per batch: one commit instead of one per row.
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        for w in writes {
            let done = match w {
                StoreWrite::Insert { id, record } => self.insert_as(*id, record),
                StoreWrite::Update { id, record } => self.update(*id, record),
                StoreWrite::Node { node, job, seen_ms, inventory } => {
                    self.upsert_node(node, job.as_deref(), *seen_ms, inventory)
                }
                StoreWrite::ForgetNode { node } => self.forget_node(node),
            };
            if let Err(e) = done {
                tracing::error!("{e}");
            }
        }
        tx.commit().map_err(|e| self.err(e))
    }

    /// Records a node's inventory and last sight.
    pub fn upsert_node(&self, node: &str, job: Option<&str>, seen_ms: u64, inventory: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO nodes (node, job, first_seen_ms, last_seen_ms, inventory) VALUES (?1, ?2, ?3, ?3, ?4)
                 ON CONFLICT(node) DO UPDATE SET job = ?2, last_seen_ms = ?3, inventory = ?4",
                params![node, job, seen_ms as i64, inventory],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Removes `node`'s inventory row, so that a restart does not bring it back.
    pub fn forget_node(&self, node: &str) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM nodes WHERE node = ?1", params![node]).map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The stored inventory of `node`: (job, first seen, last seen, inventory JSON).
    pub fn node(&self, node: &str) -> Result<Option<StoredNode>, StoreError> {
        self.conn
            .query_row(
                "SELECT job, first_seen_ms, last_seen_ms, inventory FROM nodes WHERE node = ?1",
                params![node],
                |r| {
                    Ok((
                        r.get::<_, Option<String>>(0)?,
                        r.get::<_, i64>(1)? as u64,
                        r.get::<_, i64>(2)? as u64,
                        r.get::<_, String>(3)?,
                    ))
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every stored node: (node, job, last seen).
    pub fn nodes(&self) -> Result<Vec<(String, Option<String>, u64)>, StoreError> {
        let mut st =
            self.conn.prepare("SELECT node, job, last_seen_ms FROM nodes ORDER BY node").map_err(|e| self.err(e))?;
        let rows =
            st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? as u64))).map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpuscope_core::{FindingScope, Severity};

    #[test]
    fn findings_and_nodes_survive_reopening() {
        let dir = std::env::temp_dir().join(format!("gpuscope-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("c.db");
        let f = Finding {
            rule: "gpu-lost".into(),
            severity: Severity::Critical,
            scope: FindingScope { node: Some("n0".into()), gpus: vec![3], job: None },
            since_ms: 5,
            summary: "GPU 3 fell off the bus".into(),
            evidence: vec![],
            recommendation: "reboot".into(),
            docs: None,
            action: None,
            cause: None,
        };
        {
            let s = Store::open(&path).expect("open");
            let id = s.insert(&FindingRecord { finding: f.clone(), opened_ms: 10, closed_ms: None }).expect("insert");
            s.update(id, &FindingRecord { finding: f.clone(), opened_ms: 10, closed_ms: Some(20) }).expect("update");
            s.upsert_node("n0", Some("job"), 100, "{}").expect("node");
            s.upsert_node("n0", Some("job"), 200, "{\"gpus\":8}").expect("node");
        }
        let s = Store::open(&path).expect("reopen");
        let all = s.load().expect("load");
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1.finding, f);
        assert_eq!(all[0].1.closed_ms, Some(20));
        assert_eq!(s.node("n0").expect("query"), Some((Some("job".into()), 100, 200, "{\"gpus\":8}".into())));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn recent_findings_and_filtered_queries_read_the_newest_rows() {
        let dir = tempfile::tempdir().expect("dir");
        let s = Store::open(&dir.path().join("c.db")).expect("open");
        let rec = |rule: &str, node: &str, closed_ms: Option<u64>| FindingRecord {
            finding: crate::history::tests::finding(rule, node, 0),
            opened_ms: 1,
            closed_ms,
        };
        // ids 1..=6: closed, closed, open, closed, closed, open.
        let rows = [
            rec("a", "n0", Some(2)),
            rec("b", "n1", Some(2)),
            rec("a", "n0", None),
            rec("b", "n0", Some(3)),
            rec("a", "n1", Some(4)),
            rec("b", "n1", None),
        ];
        s.apply(
            &rows
                .iter()
                .enumerate()
                .map(|(i, r)| StoreWrite::Insert { id: i as i64 + 1, record: r.clone() })
                .collect::<Vec<_>>(),
        )
        .expect("apply");
        let recent = s.load_recent(2).expect("recent");
        assert_eq!(recent.findings.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![3, 4, 5, 6]);
        assert_eq!((recent.closed_left, recent.last_id), (2, 6));
        let ids = |v: Vec<(i64, FindingRecord)>| v.into_iter().map(|(id, _)| id).collect::<Vec<_>>();
        let closed = FindingFilter { active: Some(false), ..Default::default() };
        assert_eq!(ids(s.findings(&closed, 10).expect("query")), vec![1, 2, 4, 5]);
        assert_eq!(ids(s.findings(&closed, 2).expect("query")), vec![4, 5]);
        let open_a = FindingFilter { active: Some(true), rule: Some("a".into()), ..Default::default() };
        assert_eq!(ids(s.findings(&open_a, 10).expect("query")), vec![3]);
        let n1 = FindingFilter { node: Some("n1".into()), ..Default::default() };
        assert_eq!(ids(s.findings(&n1, 10).expect("query")), vec![2, 5, 6]);
        assert_eq!(s.insert(&rows[0]).expect("insert"), 7, "the next free id");
    }
}
