//! The SQLite store: findings history and node inventory, so both survive a restart.

use crate::state::FindingRecord;
use gpuscope_core::Finding;
use rusqlite::{Connection, OptionalExtension, params};
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
        let mut st = self
            .conn
            .prepare("SELECT id, finding, opened_ms, closed_ms FROM findings ORDER BY id")
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
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

    /// Records a newly opened finding; returns its row id.
    pub fn insert(&self, r: &FindingRecord) -> Result<i64, StoreError> {
        let f = &r.finding;
        let gpus: Vec<String> = f.scope.gpus.iter().map(u32::to_string).collect();
        self.conn
            .execute(
                "INSERT INTO findings (rule, severity, node, gpus, job, since_ms, opened_ms, closed_ms, finding) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
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
        Ok(self.conn.last_insert_rowid())
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
}
