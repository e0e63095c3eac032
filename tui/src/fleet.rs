//! Fleet mode: the collector's API read over HTTP or HTTPS on threads of their own (the UI never
//! waits on the network). Every second the poller fetches the node list (each node's GPU count,
//! mean SM activity and power; from a collector older than that, a few nodes' details in turn),
//! the active findings, the jobs and the node the user drilled into; a failure is reported and
//! the next second tries again, so a restarted collector is picked up by itself. The event
//! stream brings finding changes between polls.

use crate::update::Input;
use gpuscope_core::NodeSnapshot;
use gpuscope_core::api::{FindingRecord, JobView, NodeDetail, NodeView};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why the collector could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The URL is not one fleet mode can use.
    #[error("bad collector URL {url:?}: {why}")]
    Url {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// The CA file for `https://` could not be used.
    #[error("CA file {path}: {why}")]
    Ca {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// No connection, a timeout, a reset, a certificate the CA did not sign.
    #[error("collector unreachable: {0}")]
    Unreachable(String),
    /// The collector answered with an error status.
    #[error("collector answered {status} to {path}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The request path.
        path: String,
    },
    /// The answer was not what the API defines.
    #[error("unexpected answer to {path}: {why}")]
    Decode {
        /// The request path.
        path: String,
        /// What did not parse.
        why: String,
    },
}

/// An HTTP/1.1 client for the collector's API (`http://host:port`, or `https://host:port`
/// verified against a CA file, as the agent's OTLP push does).
#[derive(Debug, Clone)]
pub struct Client {
    authority: String,
    /// The host part, the name the server's certificate must carry.
    host: String,
    token: Option<String>,
    tls: Option<Arc<rustls::ClientConfig>>,
}

/// A connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// rustls settings trusting only the CA(s) in `ca_file`.
fn tls_config(ca_file: &Path) -> Result<rustls::ClientConfig, FleetError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let bad = |why: String| FleetError::Ca { path: ca_file.display().to_string(), why };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).map_err(|e| bad(e.to_string()))? {
        roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(bad("holds no PEM certificate".into()));
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// How long one request may take; a slower collector is shown as unreachable.
const TIMEOUT: Duration = Duration::from_secs(3);

impl Client {
    /// A client for `url` (`http://host:port` or `https://host:port`, a trailing `/` allowed),
    /// sending `token` as a bearer token when given; `https://` needs `ca_file`, the CA that
    /// signed the collector's certificate.
    pub fn new(url: &str, token: Option<String>, ca_file: Option<&Path>) -> Result<Client, FleetError> {
        let bad = |why: &str| FleetError::Url { url: url.to_string(), why: why.to_string() };
        let (rest, tls) = if let Some(r) = url.strip_prefix("http://") {
            (r, None)
        } else if let Some(r) = url.strip_prefix("https://") {
            let ca = ca_file
                .ok_or_else(|| bad("https:// needs --ca-file, the CA that signed the collector's certificate"))?;
            (r, Some(Arc::new(tls_config(ca)?)))
        } else {
            return Err(bad("it must start with http:// or https://"));
        };
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(bad("expected http://host:port"));
        }
        let authority = if authority.contains(':') { authority.to_string() } else { format!("{authority}:9467") };
        // "[::1]:9467" → "::1"; "host:9467" → "host".
        let host = authority.rsplit_once(':').map_or(authority.as_str(), |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        if tls.is_some() && rustls::pki_types::ServerName::try_from(host.as_str()).is_err() {
            return Err(bad("the host is not a name or address a certificate can carry"));
        }
        Ok(Client { authority, host, token, tls })
    }

    /// An I/O failure as the collector being unreachable.
    fn unreachable(&self, e: std::io::Error) -> FleetError {
        FleetError::Unreachable(format!("{}: {e}", self.authority))
    }

    /// Connects, sends `GET path` with the token and `header` (one header line with its CRLF),
    /// and returns the connection to read the answer from, reads timing out after `read_timeout`.
    fn send(&self, path: &str, header: &str, read_timeout: Duration) -> Result<BufReader<Conn>, FleetError> {
        let addr = self
            .authority
            .to_socket_addrs()
            .map_err(|e| self.unreachable(e))?
            .next()
            .ok_or_else(|| FleetError::Unreachable(format!("{}: no address", self.authority)))?;
        let s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| self.unreachable(e))?;
        s.set_read_timeout(Some(read_timeout)).map_err(|e| self.unreachable(e))?;
        s.set_write_timeout(Some(TIMEOUT)).map_err(|e| self.unreachable(e))?;
        let mut conn = match &self.tls {
            None => Conn::Plain(s),
            Some(cfg) => {
                let name = rustls::pki_types::ServerName::try_from(self.host.clone())
                    .map_err(|e| FleetError::Unreachable(format!("{}: {e}", self.authority)))?;
                let c = rustls::ClientConnection::new(cfg.clone(), name)
                    .map_err(|e| FleetError::Unreachable(format!("{}: {e}", self.authority)))?;
                Conn::Tls(Box::new(rustls::StreamOwned::new(c, s)))
            }
        };
        let auth = self.token.as_ref().map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n{auth}{header}\r\n", self.authority);
        // Over TLS the handshake happens here: a certificate the CA did not sign fails now.
        conn.write_all(request.as_bytes()).map_err(|e| self.unreachable(e))?;
        conn.flush().map_err(|e| self.unreachable(e))?;
        Ok(BufReader::new(conn))
    }

    /// GETs `path` and decodes its JSON.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, FleetError> {
        let unreachable = |e: std::io::Error| self.unreachable(e);
        let mut r = self.send(path, "Connection: close\r\n", TIMEOUT)?;
        let mut status_line = String::new();
        r.read_line(&mut status_line).map_err(unreachable)?;
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| FleetError::Decode { path: path.into(), why: format!("status line {status_line:?}") })?;
        let chunked = read_headers(&mut r).map_err(unreachable)?;
        let mut body = Vec::new();
        r.read_to_end(&mut body).map_err(unreachable)?;
        if chunked {
            body = dechunk(&body)
                .ok_or_else(|| FleetError::Decode { path: path.into(), why: "bad chunked body".into() })?;
        }
        if status != 200 {
            return Err(FleetError::Status { status, path: path.into() });
        }
        serde_json::from_slice(&body).map_err(|e| FleetError::Decode { path: path.into(), why: e.to_string() })
    }
}

/// Reads an answer's header lines up to the blank line; whether its body is chunked.
fn read_headers(r: &mut impl BufRead) -> std::io::Result<bool> {
    let mut chunked = false;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h == "\r\n" {
            return Ok(chunked);
        }
        let h = h.to_ascii_lowercase();
        chunked |= h.starts_with("transfer-encoding:") && h.contains("chunked");
    }
}

impl Client {
    /// Reads the collector's event stream (`/api/v1/stream`), calling `on_event(kind, data)` for
    /// each server-sent event, until the connection ends, fails, or stays silent for a minute
    /// (then the caller reconnects), or `on_event` returns false.
    pub fn events(&self, mut on_event: impl FnMut(&str, &str) -> bool) -> Result<(), FleetError> {
        let unreachable = |e: std::io::Error| self.unreachable(e);
        let path = "/api/v1/stream";
        let mut r = self.send(path, "Accept: text/event-stream\r\n", Duration::from_secs(60))?;
        let mut line = String::new();
        r.read_line(&mut line).map_err(unreachable)?;
        let status: u16 = line.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        if status != 200 {
            return Err(FleetError::Status { status, path: path.into() });
        }
        let chunked = read_headers(&mut r).map_err(unreachable)?;
        let mut text = String::new();
        loop {
            let mut piece = Vec::new();
            if chunked {
                let mut size = String::new();
                if r.read_line(&mut size).map_err(unreachable)? == 0 {
                    return Ok(());
                }
                let n = usize::from_str_radix(size.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| FleetError::Decode { path: path.into(), why: format!("chunk size {size:?}") })?;
                if n == 0 {
                    return Ok(());
                }
                piece.resize(n + 2, 0);
                r.read_exact(&mut piece).map_err(unreachable)?;
                piece.truncate(n);
            } else {
                let mut l = String::new();
                if r.read_line(&mut l).map_err(unreachable)? == 0 {
                    return Ok(());
                }
                piece = l.into_bytes();
            }
            text.push_str(&String::from_utf8_lossy(&piece));
            while let Some(end) = text.find("\n\n") {
                let block: String = text.drain(..end + 2).collect();
                let field = |name: &str| {
                    block
                        .lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim_start().to_string())
                        .unwrap_or_default()
                };
                if !on_event(&field("event:"), &field("data:")) {
                    return Ok(());
                }
            }
        }
    }
}

/// A finding change from the collector's event stream, as a record (from a collector that
/// does not say when a finding opened, the arrival time stands in until the next poll).
pub fn parse_event(kind: &str, data: &str, now_ms: u64) -> Option<gpuscope_core::api::FindingEvent> {
    use gpuscope_core::api::{FindingClosed, FindingEvent, FindingOpened};
    match kind {
        "opened" => {
            let o: FindingOpened = serde_json::from_str(data).ok()?;
            Some(FindingEvent::Opened(FindingRecord {
                finding: o.finding,
                opened_ms: o.opened_ms.unwrap_or(now_ms),
                closed_ms: None,
            }))
        }
        "closed" => {
            let c: FindingClosed = serde_json::from_str(data).ok()?;
            Some(FindingEvent::Closed(FindingRecord {
                finding: c.finding,
                opened_ms: c.opened_ms.unwrap_or(c.closed_ms),
                closed_ms: Some(c.closed_ms),
            }))
        }
        _ => None,
    }
}

/// Follows the collector's event stream until the UI goes, reconnecting a second after it drops.
pub fn stream(client: Client, tx: Sender<Input>) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("gpuscope-tui-stream".into()).spawn(move || {
        loop {
            let mut gone = false;
            // Failures show through the polls; the stream only makes changes arrive sooner.
            let _ = client.events(|kind, data| {
                let Some(e) = parse_event(kind, data, now_ms()) else { return true };
                gone = tx.send(Input::FleetEvent(Box::new(e))).is_err();
                !gone
            });
            if gone {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    })
}

fn dechunk(mut b: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = b.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&b[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        b = &b[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(b.get(..size)?);
        b = b.get(size + 2..)?;
    }
}

/// One poll of the collector.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetUpdate {
    /// Every node the collector knows.
    pub nodes: Vec<NodeView>,
    /// Open findings, fleet-wide.
    pub findings: Vec<FindingRecord>,
    /// Jobs and their members.
    pub jobs: Vec<JobView>,
    /// Newest snapshots of some nodes (a few per poll, in turn).
    pub latest: Vec<NodeSnapshot>,
    /// When the answer arrived, ms since the epoch.
    pub at_ms: u64,
}

/// Node details fetched per poll besides the drilled-in node: 200 nodes are all refreshed
/// within ten seconds without a burst of requests every second.
const DETAILS_PER_POLL: usize = 20;

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Polls the collector every `every` until the UI goes. `follow` names the node the user drilled
/// into (`None` when back on the fleet list); its detail is fetched on every poll.
pub fn poll(
    client: Client,
    every: Duration,
    follow: Receiver<Option<String>>,
    tx: Sender<Input>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name("gpuscope-tui-fleet".into()).spawn(move || {
        let mut followed: Option<String> = None;
        let mut turn = 0usize;
        loop {
            let started = Instant::now();
            while let Ok(f) = follow.try_recv() {
                followed = f;
            }
            let polled = (|| -> Result<FleetUpdate, FleetError> {
                let nodes: Vec<NodeView> = client.get("/api/v1/nodes")?;
                let findings = client.get("/api/v1/findings?active=true")?;
                let jobs = client.get("/api/v1/jobs")?;
                let mut latest = Vec::new();
                // Only nodes listed without their SM activity and power (a collector older
                // than those fields) need their details, a few per poll.
                let lacking: Vec<&NodeView> = nodes
                    .iter()
                    .filter(|n| n.gpus > 0 && n.sm_active_mean.is_none() && n.power_watts.is_none())
                    .collect();
                for i in 0..DETAILS_PER_POLL.min(lacking.len()) {
                    let n = lacking[(turn + i) % lacking.len()];
                    let d: NodeDetail = client.get(&format!("/api/v1/nodes/{}", n.node))?;
                    latest.push(d.latest);
                }
                turn = turn.wrapping_add(DETAILS_PER_POLL);
                Ok(FleetUpdate { nodes, findings, jobs, latest, at_ms: now_ms() })
            })();
            let mut inputs = match polled {
                Ok(u) => vec![Input::Fleet(Box::new(u))],
                Err(e) => vec![Input::Failed(e.to_string())],
            };
            if let Some(node) = &followed {
                match client.get::<NodeDetail>(&format!("/api/v1/nodes/{node}")) {
                    Ok(d) => inputs.push(Input::Node(Box::new(d))),
                    Err(FleetError::Status { status: 404, .. }) => {
                        inputs.push(Input::Failed(format!("the collector no longer knows {node}")))
                    }
                    // Already reported by the fleet poll.
                    Err(_) => {}
                }
            }
            for i in inputs {
                if tx.send(i).is_err() {
                    return;
                }
            }
            std::thread::sleep(every.saturating_sub(started.elapsed()));
        }
    })
}

/// Fleet-wide view of one node, as the list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeRow {
    /// Host name.
    pub node: String,
    /// Job label.
    pub job: Option<String>,
    /// GPUs in its newest sample.
    pub gpus: usize,
    /// Mean SM activity over its GPUs; unknown until its detail was read, or without GPM.
    pub sm_active: Option<f64>,
    /// Power over its GPUs; unknown until read.
    pub power_watts: Option<f64>,
    /// Open findings by severity: info, warning, critical.
    pub findings: [usize; 3],
    /// No data for longer than the collector's staleness limit.
    pub stale: bool,
    /// The job's straggler.
    pub straggler: bool,
}

/// The fleet as the UI knows it.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    /// The last successful poll.
    pub last: FleetUpdate,
    /// Newest snapshot per node (filled a few nodes per poll).
    pub latest: BTreeMap<String, NodeSnapshot>,
    /// The collector's address, for the title.
    pub url: String,
    /// The last poll failed with this; `None` when it answered.
    pub error: Option<String>,
    /// Since when the collector has not answered.
    pub down_since_ms: Option<u64>,
    /// Selected row.
    pub selected: usize,
    /// Text a node or job name must contain.
    pub filter: String,
    /// The node drilled into, whose panels replace the list.
    pub drilled: Option<String>,
    /// Row order, an index into [`SORTS`].
    pub sort: usize,
}

/// Orders of the node list (`s` cycles): grouped by job with the worst nodes first, or by one
/// column across the fleet.
pub const SORTS: [&str; 4] = ["job", "SM active", "power", "findings"];

impl Fleet {
    /// Applies a poll.
    pub fn apply(&mut self, u: FleetUpdate) {
        for s in &u.latest {
            self.latest.insert(s.node.hostname.clone(), s.clone());
        }
        self.error = None;
        self.down_since_ms = None;
        self.last = FleetUpdate { latest: Vec::new(), ..u };
    }

    /// Applies a change from the event stream at once (the next poll confirms it).
    pub fn apply_event(&mut self, e: &gpuscope_core::api::FindingEvent) {
        use gpuscope_core::api::FindingEvent;
        let same = |a: &FindingRecord, b: &FindingRecord| {
            a.finding.rule == b.finding.rule && a.finding.scope == b.finding.scope
        };
        match e {
            FindingEvent::Opened(r) => {
                if !self.last.findings.iter().any(|x| same(x, r)) {
                    self.last.findings.push(r.clone());
                }
            }
            FindingEvent::Closed(r) => self.last.findings.retain(|x| !same(x, r)),
        }
    }

    /// Records a failed poll (the data shown stays, marked as old).
    pub fn failed(&mut self, why: String, now_ms: u64) {
        self.error = Some(why);
        self.down_since_ms.get_or_insert(now_ms);
    }

    /// The rows, grouped by job (jobs by name, nodes without one last), worst first inside a job.
    pub fn rows(&self) -> Vec<NodeRow> {
        let needle = self.filter.to_lowercase();
        let mut rows: Vec<NodeRow> = self
            .last
            .nodes
            .iter()
            .filter(|n| {
                needle.is_empty()
                    || n.node.to_lowercase().contains(&needle)
                    || n.job.as_deref().is_some_and(|j| j.to_lowercase().contains(&needle))
            })
            .map(|n| {
                let mine: Vec<&FindingRecord> = self
                    .last
                    .findings
                    .iter()
                    .filter(|f| f.finding.scope.node.as_deref() == Some(n.node.as_str()))
                    .collect();
                let mut findings = [0usize; 3];
                for f in &mine {
                    findings[f.finding.severity as usize] += 1;
                }
                let latest = self.latest.get(&n.node);
                NodeRow {
                    node: n.node.clone(),
                    job: n.job.clone(),
                    gpus: n.gpus,
                    // The node list carries both; a collector from before it did comes with
                    // the details fetched in turn.
                    sm_active: n.sm_active_mean.or_else(|| latest?.sm_active_mean()),
                    power_watts: n.power_watts.or_else(|| latest?.gpu_power_watts()),
                    findings,
                    stale: n.stale,
                    straggler: mine.iter().any(|f| f.finding.rule == "straggler"),
                }
            })
            .collect();
        let worst =
            |a: &NodeRow, b: &NodeRow| b.findings[2].cmp(&a.findings[2]).then(b.findings[1].cmp(&a.findings[1]));
        // Unknown values sort last in every order.
        let num = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => a.total_cmp(&b),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        };
        rows.sort_by(|a, b| {
            match self.sort {
                1 => num(a.sm_active, b.sm_active),
                2 => num(b.power_watts, a.power_watts).then(std::cmp::Ordering::Equal),
                3 => worst(a, b).then(b.findings[0].cmp(&a.findings[0])),
                _ => (a.job.is_none(), &a.job).cmp(&(b.job.is_none(), &b.job)).then(worst(a, b)),
            }
            .then(a.node.cmp(&b.node))
        });
        rows
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn urls_are_checked() {
        assert!(Client::new("http://127.0.0.1:9467/", None, None).is_ok());
        let c = Client::new("http://collector", None, None).unwrap();
        assert_eq!((c.authority.as_str(), c.host.as_str()), ("collector:9467", "collector"));
        assert_eq!(Client::new("http://[::1]:80", None, None).unwrap().host, "::1");
        let e = Client::new("https://x:1", None, None).unwrap_err().to_string();
        assert!(e.contains("needs --ca-file"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "").unwrap();
        let e = Client::new("https://x:1", None, Some(&empty)).unwrap_err().to_string();
        assert!(e.contains("empty.pem") && e.contains("no PEM certificate"), "{e}");
        let e = Client::new("https://x:1", None, Some(&dir.path().join("missing.pem"))).unwrap_err().to_string();
        assert!(e.contains("missing.pem"), "{e}");
        assert!(Client::new("collector:9467", None, None).is_err());
        assert!(Client::new("http://x:1/api", None, None).is_err());
    }

    #[test]
    fn a_dead_collector_is_an_error_not_a_hang() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let e = Client::new(&format!("http://{addr}"), None, None)
            .unwrap()
            .get::<Vec<NodeView>>("/api/v1/nodes")
            .unwrap_err();
        assert!(matches!(e, FleetError::Unreachable(_)), "{e}");
    }

    #[test]
    fn the_event_stream_is_read_as_it_arrives() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut req = Vec::new();
            let mut byte = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
                req.push(byte[0]);
            }
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
                .unwrap();
            // One event split over two chunks, then a second one.
            for part in ["event: opened\ndata: {\"a\"", ":1}\n\n", "event: closed\ndata: 2\n\n"] {
                s.write_all(format!("{:x}\r\n{part}\r\n", part.len()).as_bytes()).unwrap();
                s.flush().unwrap();
            }
            s.write_all(b"0\r\n\r\n").unwrap();
        });
        let mut seen = Vec::new();
        Client::new(&format!("http://{addr}"), None, None)
            .unwrap()
            .events(|k, d| {
                seen.push((k.to_string(), d.to_string()));
                true
            })
            .unwrap();
        server.join().unwrap();
        assert_eq!(seen, vec![("opened".into(), "{\"a\":1}".into()), ("closed".into(), "2".into())]);
        assert!(parse_event("opened", "not json", 1).is_none());
    }

    #[test]
    fn streamed_findings_keep_when_they_opened() {
        use gpuscope_core::api::FindingEvent;
        let f = gpuscope_core::Finding {
            rule: "gpu-lost".into(),
            severity: gpuscope_core::Severity::Critical,
            scope: Default::default(),
            since_ms: 1,
            summary: "s".into(),
            evidence: vec![],
            recommendation: "r".into(),
            docs: None,
            action: None,
            cause: None,
        };
        let mut data = serde_json::to_value(&f).unwrap();
        let old = data.to_string();
        data["opened_ms"] = serde_json::json!(5000);
        let opened = |d: &str| match parse_event("opened", d, 9000) {
            Some(FindingEvent::Opened(r)) => (r.finding == f, r.opened_ms),
            other => panic!("{other:?}"),
        };
        assert_eq!(opened(&data.to_string()), (true, 5000));
        assert_eq!(opened(&old), (true, 9000), "an older collector: the arrival time stands in");
        let closed = serde_json::json!({"finding": f, "opened_ms": 5000, "closed_ms": 7000}).to_string();
        match parse_event("closed", &closed, 9000) {
            Some(FindingEvent::Closed(r)) => assert_eq!((r.opened_ms, r.closed_ms), (5000, Some(7000))),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(), b"abcde");
        assert!(dechunk(b"9\r\nabc").is_none());
    }
}
