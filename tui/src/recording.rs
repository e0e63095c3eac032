//! The flight recorder's file format (docs/recording.md): one gzip stream, flushed after every
//! record, holding a header line and then one JSON record per line. A crash mid-write leaves a
//! stream that decodes up to the last flush, and the reader keeps every complete line, so a
//! truncated file replays up to its last complete record.
//!
//! Snapshots are written as deltas (format 2, `crate::delta`): a record carries only the leaves
//! that changed since the previous snapshot of the same file.

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use gpuscope_core::NodeSnapshot;
use gpuscope_core::api::{FindingEvent, FindingRecord};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The `format` value of a recording's header.
pub const FORMAT: &str = "gpuscope-recording";
/// The format version this build writes and reads.
pub const VERSION: u32 = 2;

/// Why a recording could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// The file could not be opened, written or renamed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said (in the message, not repeated as a cause).
        error: std::io::Error,
    },
    /// The file is not a recording.
    #[error("{path} is not a gpuscope recording: {why}")]
    NotARecording {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// The recording was written by a newer format version.
    #[error("{path} is a version {version} recording; this gpuscope reads versions up to {VERSION}")]
    Version {
        /// The file.
        path: PathBuf,
        /// The version it declares.
        version: u32,
    },
    /// A snapshot record could not be applied to the ones before it.
    #[error("{path}: record {record}: {error}")]
    Delta {
        /// The file.
        path: PathBuf,
        /// Its number among the file's records (the header is 0).
        record: usize,
        /// What is wrong.
        error: crate::delta::DeltaError,
    },
    /// A record could not be encoded.
    #[error("cannot encode a record: {0}")]
    Encode(#[from] serde_json::Error),
}

/// The first line of a recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always [`FORMAT`].
    pub format: String,
    /// The format version.
    pub version: u32,
    /// Host name of the recorded node.
    pub node: String,
    /// When recording of this file started, ms since the epoch.
    pub started_ms: u64,
}

/// One line after the header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Record {
    /// A whole snapshot of the node (what version 1 writes; read in any version).
    Snapshot {
        /// The snapshot.
        snapshot: Box<NodeSnapshot>,
    },
    /// A snapshot as what changed since the previous one (version 2).
    Delta(crate::delta::Delta),
    /// A finding opened or closed.
    Finding {
        /// The change.
        event: Box<FindingEvent>,
    },
}

/// Size limits of a recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// A file is rotated once it holds this many compressed bytes.
    pub max_bytes: u64,
    /// Rotated files kept (`FILE.1` … `FILE.N`); older ones are deleted.
    pub keep: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_bytes: 64 << 20, keep: 3 }
    }
}

/// Counts what reaches the file, so rotation goes by the compressed size.
struct Counting {
    file: File,
    written: u64,
}

impl Write for Counting {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// Writes a recording, rotating it at its size limit.
pub struct Recorder {
    path: PathBuf,
    limits: Limits,
    node: String,
    out: GzEncoder<Counting>,
    /// Each file's deltas start from nothing, so each file replays on its own.
    delta: crate::delta::Encoder,
    /// Findings open now: repeated at the head of a rotated file, so each file stands alone.
    open: Vec<FindingRecord>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RecordingError + '_ {
    move |error| RecordingError::Io { path: path.to_path_buf(), error }
}

fn rotated(path: &Path, n: u32) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(format!(".{n}"));
    PathBuf::from(p)
}

impl Recorder {
    /// Starts a new recording at `path` (replacing a file there) for node `node`.
    pub fn create(path: &Path, node: &str, now_ms: u64, limits: Limits) -> Result<Recorder, RecordingError> {
        let out = Self::open(path, node, now_ms)?;
        Ok(Recorder {
            path: path.to_path_buf(),
            limits,
            node: node.to_string(),
            out,
            delta: crate::delta::Encoder::default(),
            open: Vec::new(),
        })
    }

    fn open(path: &Path, node: &str, now_ms: u64) -> Result<GzEncoder<Counting>, RecordingError> {
        let file = File::create(path).map_err(io(path))?;
        let mut out = GzEncoder::new(Counting { file, written: 0 }, Compression::default());
        let header = Header { format: FORMAT.into(), version: VERSION, node: node.into(), started_ms: now_ms };
        serde_json::to_writer(&mut out, &header)?;
        out.write_all(b"\n").map_err(io(path))?;
        out.flush().map_err(io(path))?;
        Ok(out)
    }

    /// Appends a snapshot (flushed: a crash after this call keeps it).
    pub fn snapshot(&mut self, s: &NodeSnapshot) -> Result<(), RecordingError> {
        self.rotate_if_full(s.timestamp_ms)?;
        let d = self.delta.encode(s)?;
        self.write(&Record::Delta(d))
    }

    /// Appends a finding change.
    pub fn finding(&mut self, e: &FindingEvent) -> Result<(), RecordingError> {
        match e {
            FindingEvent::Opened(r) => self.open.push(r.clone()),
            FindingEvent::Closed(r) => {
                self.open.retain(|o| !(o.finding.rule == r.finding.rule && o.finding.scope == r.finding.scope))
            }
        }
        self.write(&Record::Finding { event: Box::new(e.clone()) })
    }

    /// Compressed bytes in the current file so far.
    pub fn bytes_written(&self) -> u64 {
        self.out.get_ref().written
    }

    fn write(&mut self, r: &Record) -> Result<(), RecordingError> {
        let mut line = serde_json::to_vec(r)?;
        line.push(b'\n');
        let path = self.path.clone();
        self.out.write_all(&line).map_err(io(&path))?;
        // A sync flush: the record is decodable from the file now.
        self.out.flush().map_err(io(&path))
    }

    fn rotate_if_full(&mut self, now_ms: u64) -> Result<(), RecordingError> {
        if self.bytes_written() < self.limits.max_bytes {
            return Ok(());
        }
        let fresh_path = self.path.clone();
        // Finish the current stream before renaming it, so the rotated file is complete.
        let done = std::mem::replace(&mut self.out, Self::open(&rotated(&fresh_path, 0), &self.node, now_ms)?);
        done.finish().map_err(io(&fresh_path))?;
        if self.limits.keep == 0 {
            let _ = std::fs::remove_file(&fresh_path);
        } else {
            for n in (1..self.limits.keep).rev() {
                let from = rotated(&fresh_path, n);
                if from.exists() {
                    std::fs::rename(&from, rotated(&fresh_path, n + 1)).map_err(io(&from))?;
                }
            }
            std::fs::rename(&fresh_path, rotated(&fresh_path, 1)).map_err(io(&fresh_path))?;
        }
        // The new stream was opened under a temporary name; it becomes FILE.
        let tmp = rotated(&fresh_path, 0);
        std::fs::rename(&tmp, &fresh_path).map_err(io(&tmp))?;
        self.delta = crate::delta::Encoder::default();
        for r in std::mem::take(&mut self.open) {
            self.finding(&FindingEvent::Opened(r))?;
        }
        Ok(())
    }

    /// Ends the gzip stream cleanly.
    pub fn finish(self) -> Result<(), RecordingError> {
        let path = self.path.clone();
        self.out.finish().map_err(io(&path))?;
        Ok(())
    }
}

/// A recording read back.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Its header.
    pub header: Option<Header>,
    /// Snapshots, in file order.
    pub snapshots: Vec<Arc<NodeSnapshot>>,
    /// Finding changes, in file order.
    pub findings: Vec<FindingEvent>,
    /// The file ended inside a record (a crash mid-write): everything before it was read.
    pub truncated: bool,
}

/// Reads a recording, keeping every complete record of a truncated one.
pub fn read(path: &Path) -> Result<Recording, RecordingError> {
    let file = File::open(path).map_err(io(path))?;
    let mut raw = Vec::new();
    // A truncated gzip stream fails at its end; what decoded before the failure is kept.
    let mut truncated = MultiGzDecoder::new(BufReader::new(file)).read_to_end(&mut raw).is_err();
    let not = |why: String| RecordingError::NotARecording { path: path.to_path_buf(), why };
    // A record is complete when its newline is in the file: a cut-off last line is dropped.
    let complete = raw.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    truncated |= complete < raw.len();
    raw.truncate(complete);
    let mut lines = raw.split(|b| *b == b'\n');
    let first = lines.next().filter(|l| !l.is_empty()).ok_or_else(|| not("no header (empty or not gzip)".into()))?;
    let header: Header = serde_json::from_slice(first).map_err(|e| not(format!("bad header: {e}")))?;
    if header.format != FORMAT {
        return Err(not(format!("format is {:?}", header.format)));
    }
    if header.version > VERSION {
        return Err(RecordingError::Version { path: path.to_path_buf(), version: header.version });
    }
    let mut rec = Recording { header: Some(header), ..Recording::default() };
    let mut deltas = crate::delta::Decoder::default();
    for (n, line) in lines.enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Record>(line) {
            Ok(Record::Snapshot { snapshot }) => rec.snapshots.push(Arc::new(*snapshot)),
            Ok(Record::Delta(d)) => {
                let s = deltas.apply(d).map_err(|error| RecordingError::Delta {
                    path: path.to_path_buf(),
                    record: n + 1,
                    error,
                })?;
                rec.snapshots.push(Arc::new(s));
            }
            Ok(Record::Finding { event }) => rec.findings.push(*event),
            Err(e) => return Err(not(format!("bad record: {e}"))),
        }
    }
    rec.truncated = truncated;
    Ok(rec)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use gpuscope_core::{Finding, Severity};

    fn snap(ms: u64) -> NodeSnapshot {
        NodeSnapshot {
            timestamp_ms: ms,
            node: gpuscope_core::NodeInfo { hostname: "n1".into(), ..Default::default() },
            ..NodeSnapshot::default()
        }
    }

    fn finding() -> FindingRecord {
        FindingRecord {
            finding: Finding {
                rule: "r".into(),
                severity: Severity::Info,
                scope: Default::default(),
                since_ms: 1,
                summary: "s".into(),
                evidence: vec![],
                recommendation: "a".into(),
                docs: None,
                action: None,
                cause: None,
            },
            opened_ms: 2000,
            closed_ms: None,
        }
    }

    #[test]
    fn a_recording_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.gsr");
        let mut r = Recorder::create(&path, "n1", 0, Limits::default()).unwrap();
        for s in 0..5 {
            r.snapshot(&snap(s * 1000)).unwrap();
        }
        r.finding(&FindingEvent::Opened(finding())).unwrap();
        r.finish().unwrap();
        let back = read(&path).unwrap();
        assert_eq!(back.header.unwrap().node, "n1");
        assert_eq!(back.snapshots.len(), 5);
        assert_eq!(back.snapshots[4].timestamp_ms, 4000);
        assert_eq!(back.findings, vec![FindingEvent::Opened(finding())]);
        assert!(!back.truncated);
    }

    #[test]
    fn a_file_cut_anywhere_replays_up_to_its_last_complete_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.gsr");
        let mut r = Recorder::create(&path, "n1", 0, Limits::default()).unwrap();
        let mut sizes = Vec::new();
        for s in 0..20 {
            r.snapshot(&snap(s * 1000)).unwrap();
            sizes.push(r.bytes_written());
        }
        // No finish(): the writer "crashed". Cut the file at every length after the 10th record.
        drop(r);
        let full = std::fs::read(&path).unwrap();
        let cut = dir.path().join("cut.gsr");
        for len in (sizes[9] as usize)..full.len() {
            std::fs::write(&cut, &full[..len]).unwrap();
            let back = read(&cut).unwrap();
            let flushed = sizes.iter().filter(|s| **s as usize <= len).count();
            let n = back.snapshots.len();
            // Every flushed record is back; the next one only when its newline got decoded
            // (a cut inside the flush marker that follows it).
            assert!(n == flushed || n == flushed + 1, "cut at {len} of {}: {n} records, {flushed} flushed", full.len());
            if sizes.contains(&(len as u64)) {
                assert_eq!(n, flushed, "a cut at a flush boundary");
            }
            let times: Vec<u64> = back.snapshots.iter().map(|s| s.timestamp_ms).collect();
            assert_eq!(times, (0..n as u64).map(|i| i * 1000).collect::<Vec<_>>());
            assert!(back.truncated || n == 20);
        }
    }

    #[test]
    fn rotation_bounds_the_files_and_each_file_stands_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.gsr");
        let mut r = Recorder::create(&path, "n1", 0, Limits { max_bytes: 400, keep: 2 }).unwrap();
        r.finding(&FindingEvent::Opened(finding())).unwrap();
        for s in 0..400 {
            let mut x = snap(s * 1000);
            // Values that change every record, so the stream grows.
            x.node.machine_id = Some(format!("{:x}", s * 7919));
            r.snapshot(&x).unwrap();
        }
        r.finish().unwrap();
        assert!(rotated(&path, 1).exists() && rotated(&path, 2).exists());
        assert!(!rotated(&path, 3).exists(), "only `keep` rotated files stay");
        for p in [path.clone(), rotated(&path, 1), rotated(&path, 2)] {
            let back = read(&p).unwrap();
            assert!(!back.snapshots.is_empty(), "{}", p.display());
            assert_eq!(
                back.findings,
                vec![FindingEvent::Opened(finding())],
                "the open finding is repeated in {}",
                p.display()
            );
            assert!(std::fs::metadata(&p).unwrap().len() < 400 + 2000, "{} is bounded", p.display());
        }
        let newest = read(&path).unwrap();
        assert_eq!(newest.snapshots.last().unwrap().timestamp_ms, 399_000);
    }

    #[test]
    fn version_1_files_of_whole_snapshots_still_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.gsr");
        let mut out = GzEncoder::new(File::create(&path).unwrap(), Compression::default());
        out.write_all(br#"{"format":"gpuscope-recording","version":1,"node":"n1","started_ms":0}"#).unwrap();
        out.write_all(b"\n").unwrap();
        for s in 0..3 {
            serde_json::to_writer(&mut out, &Record::Snapshot { snapshot: Box::new(snap(s * 1000)) }).unwrap();
            out.write_all(b"\n").unwrap();
        }
        out.finish().unwrap();
        let back = read(&path).unwrap();
        assert_eq!(
            back.snapshots.iter().map(|s| (**s).clone()).collect::<Vec<_>>(),
            (0..3).map(|s| snap(s * 1000)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_damaged_delta_names_the_file_and_the_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.gsr");
        let mut out = GzEncoder::new(File::create(&path).unwrap(), Compression::default());
        out.write_all(br#"{"format":"gpuscope-recording","version":2,"node":"n1","started_ms":0}"#).unwrap();
        out.write_all(b"\n").unwrap();
        serde_json::to_writer(&mut out, &Record::Delta(crate::delta::Encoder::default().encode(&snap(0)).unwrap()))
            .unwrap();
        out.write_all(b"\n{\"kind\":\"delta\",\"set\":[900,1]}\n").unwrap();
        out.finish().unwrap();
        let e = read(&path).unwrap_err().to_string();
        assert!(e.contains("bad.gsr") && e.contains("record 2") && e.contains("leaf 900"), "{e}");
    }

    #[test]
    fn other_files_and_newer_versions_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, b"hello").unwrap();
        assert!(matches!(read(&path), Err(RecordingError::NotARecording { .. })));
        let mut out = GzEncoder::new(File::create(&path).unwrap(), Compression::default());
        out.write_all(br#"{"format":"gpuscope-recording","version":99,"node":"n","started_ms":0}"#).unwrap();
        out.write_all(b"\n").unwrap();
        out.finish().unwrap();
        let e = read(&path).unwrap_err();
        assert!(e.to_string().contains("version 99"), "{e}");
        assert!(matches!(read(&dir.path().join("missing")), Err(RecordingError::Io { .. })));
    }
}
