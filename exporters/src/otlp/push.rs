//! Pushing OTLP to a collector over gRPC or HTTP/protobuf, gzip-compressed, with custom headers
//! (a bearer token), and a bounded on-disk spill queue: batches that cannot be delivered now are
//! kept in order and replayed first when the collector answers again.

use super::{Identity, aggregate, encode};
use bytes::Bytes;
use gpuscope_core::NodeSnapshot;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC (port 4317).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (port 4318, `/v1/metrics`).
    HttpProtobuf,
}

/// Why a pusher could not be set up; each message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The spill directory could not be created.
    #[error(
        "cannot create the OTLP spill directory {}: {source} (make it writable for the agent, or set otlp_spill_dir to \"\" to keep batches in memory)",
        path.display()
    )]
    SpillDir {
        /// The directory.
        path: PathBuf,
        /// What the file system said.
        source: std::io::Error,
    },
    /// The CA file could not be read as PEM.
    #[error(
        "cannot read the TLS CA file {}: {source} (otlp_ca_file must be a readable PEM file of the CA that signed the collector's certificate)",
        path.display()
    )]
    CaFile {
        /// The CA file.
        path: PathBuf,
        /// What the PEM reader said.
        source: rustls::pki_types::pem::Error,
    },
    /// The CA file holds a certificate that cannot serve as a trust anchor.
    #[error(
        "TLS CA file {}: {source} (otlp_ca_file must hold the CA certificate that signed the collector's certificate)",
        path.display()
    )]
    CaCertificate {
        /// The CA file.
        path: PathBuf,
        /// Why the certificate was refused.
        source: rustls::Error,
    },
    /// The TLS client could not be configured.
    /// The client certificate or its key cannot be used.
    #[error("OTLP client certificate {}: {message} (otlp_client_cert and otlp_client_key must be a PEM certificate chain and its private key)", path.display())]
    ClientCert {
        /// The certificate or key file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    #[error("cannot set up the OTLP client's TLS: {0} (a build of gpuscope without TLS 1.2/1.3 support?)")]
    ClientSetup(#[source] rustls::Error),
}

/// Push settings.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// Collector base URL, e.g. `http://collector:4318` (HTTP) or `http://collector:4317` (gRPC).
    pub endpoint: String,
    /// Transport.
    pub protocol: Protocol,
    /// One point per series per this interval (the samples in it are aggregated).
    pub interval: Duration,
    /// Extra request headers (`authorization = "Bearer …"`).
    pub headers: Vec<(String, String)>,
    /// Compress requests.
    pub gzip: bool,
    /// Where undeliverable batches wait; `None` keeps them in memory only.
    pub spill_dir: Option<PathBuf>,
    /// Bound of the spill queue, bytes; the oldest batches are dropped (and counted) beyond it.
    pub spill_max_bytes: u64,
    /// Per-request timeout.
    pub timeout: Duration,
    /// PEM file of the CA that signed the collector's certificate (for `https://` endpoints).
    pub ca_file: Option<PathBuf>,
    /// PEM certificate chain and key presented to a collector that requires client
    /// certificates (mTLS).
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Counters of the pusher (exported as self metrics).
#[derive(Debug, Default)]
pub struct PushStats {
    /// Batches delivered.
    pub sent: AtomicU64,
    /// Batches that failed with a retryable error (and were queued).
    pub retryable_failures: AtomicU64,
    /// Batches the collector refused as invalid (not retried).
    pub rejected: AtomicU64,
    /// Batches dropped because the spill queue was full.
    pub dropped: AtomicU64,
    /// Batches waiting in the spill queue now.
    pub queued: AtomicU64,
}

enum Failure {
    /// Worth retrying: after the collector's Retry-After when it gave one; why, for the log.
    Retry(Option<Duration>, String),
    Reject(String),
}

/// An outage as the log tells it: one warning when it starts, a reminder at most every
/// [`OUTAGE_REMINDER`], one line when it ends with what it cost.
struct Outage {
    since: tokio::time::Instant,
    last_warned: tokio::time::Instant,
    /// Counters when it began: queued now minus these is what the outage queued.
    sent_before: u64,
    dropped_before: u64,
    peak_queued: u64,
}

/// How often a continuing outage is logged again.
const OUTAGE_REMINDER: Duration = Duration::from_secs(60);

enum Transport {
    Http(Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>),
    Grpc(Option<MetricsServiceClient<tonic::transport::Channel>>),
}

/// The push loop.
pub struct Pusher {
    cfg: PushConfig,
    id: Identity,
    stats: Arc<PushStats>,
    /// Batches waiting, oldest first: in memory, or as files in the spill directory.
    queue: std::collections::VecDeque<Queued>,
    queued_bytes: u64,
    seq: u64,
    transport: Transport,
}

/// One waiting batch, gzip-compressed: an encoded batch repeats its attribute names and values
/// on every point and shrinks about twentyfold, and so many more minutes of outage fit the bound.
enum Queued {
    Memory(Vec<u8>),
    File(PathBuf, u64),
}

/// Suffix of a spilled, compressed batch (`<seq>.otlp.gz`); `.otlp` files (uncompressed, from
/// earlier versions) are still replayed.
const SPILL_SUFFIX: &str = ".otlp.gz";

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 8), flate2::Compression::fast());
    gz.write_all(body)?;
    gz.finish()
}

fn gunzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::with_capacity(data.len() * 8);
    flate2::read::GzDecoder::new(data).read_to_end(&mut out)?;
    Ok(out)
}

impl Queued {
    fn len(&self) -> u64 {
        match self {
            Queued::Memory(b) => b.len() as u64,
            Queued::File(_, n) => *n,
        }
    }

    /// Forgets the batch (removes its file).
    fn discard(self) {
        if let Queued::File(p, _) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Pusher {
    /// A pusher; the spill directory is created and earlier batches in it are kept for replay.
    pub fn new(cfg: PushConfig, id: Identity) -> Result<Pusher, PushError> {
        if let Some(d) = &cfg.spill_dir {
            std::fs::create_dir_all(d).map_err(|source| PushError::SpillDir { path: d.clone(), source })?;
        }
        let transport = match cfg.protocol {
            Protocol::HttpProtobuf => {
                let tls = tls_client_config(cfg.ca_file.as_deref(), cfg.client_cert.as_ref())?;
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(tls)
                    .https_or_http()
                    .enable_http1()
                    .build();
                Transport::Http(Client::builder(TokioExecutor::new()).build(https))
            }
            Protocol::Grpc => {
                // Checked now, so that a bad file is a start-up error rather than every batch refused.
                tls_client_config(cfg.ca_file.as_deref(), cfg.client_cert.as_ref())?;
                Transport::Grpc(None)
            }
        };
        let mut p = Pusher {
            cfg,
            id,
            stats: Arc::new(PushStats::default()),
            queue: Default::default(),
            queued_bytes: 0,
            seq: 0,
            transport,
        };
        // Batches a previous run left behind go first; the directory is read only here. A
        // write a crash interrupted left a .tmp file: never a batch, removed.
        if let Some(d) = &p.cfg.spill_dir {
            for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
                if e.file_name().to_string_lossy().ends_with(".tmp") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        for (seq, path) in p.spilled() {
            let len = std::fs::metadata(&path).map_or(0, |m| m.len());
            p.queued_bytes += len;
            p.queue.push_back(Queued::File(path, len));
            p.seq = seq + 1;
        }
        p.stats.queued.store(p.queue.len() as u64, Ordering::Relaxed);
        Ok(p)
    }

    /// The counters.
    pub fn stats(&self) -> Arc<PushStats> {
        self.stats.clone()
    }

    fn spilled(&self) -> Vec<(u64, PathBuf)> {
        let Some(d) = &self.cfg.spill_dir else { return Vec::new() };
        let mut v: Vec<(u64, PathBuf)> = std::fs::read_dir(d)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        let n = e.file_name().to_string_lossy().into_owned();
                        n.strip_suffix(SPILL_SUFFIX)
                            .or_else(|| n.strip_suffix(".otlp"))
                            .and_then(|s| s.parse::<u64>().ok())
                            .map(|s| (s, e.path()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Queues a batch behind the ones already waiting, dropping the oldest beyond the bound.
    fn enqueue(&mut self, body: Vec<u8>) {
        let body = match gzip(&body) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("cannot compress a batch: {e}; dropped");
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        let entry = match &self.cfg.spill_dir {
            Some(d) => {
                let path = d.join(format!("{:020}{SPILL_SUFFIX}", self.seq));
                self.seq += 1;
                let tmp = d.join(format!("{:020}.tmp", self.seq - 1));
                let written = std::fs::File::create(&tmp)
                    .and_then(|mut f| f.write_all(&body))
                    .and_then(|()| std::fs::rename(&tmp, &path));
                match written {
                    Ok(()) => Some(Queued::File(path, body.len() as u64)),
                    Err(e) => {
                        // A full disk must not fill up with halves of batches.
                        let _ = std::fs::remove_file(&tmp);
                        tracing::warn!("cannot spill a batch to {}: {e}; dropped", path.display());
                        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                        None
                    }
                }
            }
            None => Some(Queued::Memory(body)),
        };
        if let Some(e) = entry {
            self.queued_bytes += e.len();
            self.queue.push_back(e);
        }
        while self.queued_bytes > self.cfg.spill_max_bytes && self.queue.len() > 1 {
            if let Some(oldest) = self.queue.pop_front() {
                self.queued_bytes -= oldest.len();
                oldest.discard();
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.stats.queued.store(self.queue.len() as u64, Ordering::Relaxed);
    }

    async fn send(&mut self, body: &[u8]) -> Result<(), Failure> {
        match &mut self.transport {
            Transport::Http(client) => {
                let url = format!("{}/v1/metrics", self.cfg.endpoint.trim_end_matches('/'));
                let payload = if self.cfg.gzip {
                    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    gz.write_all(body)
                        .and_then(|()| gz.finish())
                        .map_err(|e| Failure::Retry(None, format!("cannot gzip a batch: {e}")))?
                } else {
                    body.to_vec()
                };
                let mut req = hyper::Request::post(&url).header(CONTENT_TYPE, "application/x-protobuf");
                if self.cfg.gzip {
                    req = req.header(CONTENT_ENCODING, "gzip");
                }
                for (k, v) in &self.cfg.headers {
                    req = req.header(k.as_str(), v.as_str());
                }
                let req = req
                    .body(Full::new(Bytes::from(payload)))
                    .map_err(|e| Failure::Reject(format!("bad request: {e}")))?;
                let resp = tokio::time::timeout(self.cfg.timeout, client.request(req))
                    .await
                    .map_err(|_| Failure::Retry(None, format!("no answer within {:?}", self.cfg.timeout)))?
                    .map_err(|e| Failure::Retry(None, error_chain(&e)))?;
                let status = resp.status();
                let retry_after = resp
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs);
                if status.is_success() {
                    return Ok(());
                }
                let text = resp
                    .into_body()
                    .collect()
                    .await
                    .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                    .unwrap_or_default();
                match status.as_u16() {
                    429 | 502 | 503 | 504 => Err(Failure::Retry(retry_after, format!("{status}: {}", text.trim()))),
                    _ => Err(Failure::Reject(format!("{status}: {}", text.trim()))),
                }
            }
            Transport::Grpc(client) => {
                if client.is_none() {
                    let mut ep = tonic::transport::Endpoint::from_shared(self.cfg.endpoint.clone())
                        .map_err(|e| Failure::Reject(format!("bad endpoint {}: {e}", self.cfg.endpoint)))?
                        .timeout(self.cfg.timeout);
                    if self.cfg.endpoint.starts_with("https://") {
                        let mut tls = tonic::transport::ClientTlsConfig::new();
                        if let Some(ca) = &self.cfg.ca_file {
                            let pem = std::fs::read(ca)
                                .map_err(|e| Failure::Reject(format!("cannot read {}: {e}", ca.display())))?;
                            tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(pem));
                        }
                        if let Some((cert, key)) = &self.cfg.client_cert {
                            let read = |p: &PathBuf| {
                                std::fs::read(p)
                                    .map_err(|e| Failure::Reject(format!("cannot read {}: {e}", p.display())))
                            };
                            tls = tls.identity(tonic::transport::Identity::from_pem(read(cert)?, read(key)?));
                        }
                        ep = ep.tls_config(tls).map_err(|e| Failure::Reject(format!("TLS setup: {e}")))?;
                    }
                    let ch = ep.connect_lazy();
                    let mut c = MetricsServiceClient::new(ch);
                    if self.cfg.gzip {
                        c = c.send_compressed(tonic::codec::CompressionEncoding::Gzip);
                    }
                    *client = Some(c);
                }
                let Some(c) = client.as_mut() else { return Err(Failure::Retry(None, "no gRPC channel".into())) };
                let msg = ExportMetricsServiceRequest::decode(body).map_err(|e| Failure::Reject(e.to_string()))?;
                let mut req = tonic::Request::new(msg);
                for (k, v) in &self.cfg.headers {
                    if let (Ok(k), Ok(v)) =
                        (k.to_ascii_lowercase().parse::<tonic::metadata::MetadataKey<_>>(), v.parse())
                    {
                        req.metadata_mut().insert(k, v);
                    }
                }
                match c.export(req).await {
                    Ok(_) => Ok(()),
                    Err(s) => match s.code() {
                        tonic::Code::Unavailable
                        | tonic::Code::ResourceExhausted
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::Aborted
                        | tonic::Code::Cancelled
                        | tonic::Code::OutOfRange
                        | tonic::Code::DataLoss => {
                            let why = match std::error::Error::source(&s) {
                                Some(cause) => format!("{:?}: {} ({})", s.code(), s.message(), error_chain(cause)),
                                None => format!("{:?}: {}", s.code(), s.message()),
                            };
                            Err(Failure::Retry(None, why))
                        }
                        _ => Err(Failure::Reject(format!("{:?}: {}", s.code(), s.message()))),
                    },
                }
            }
        }
    }

    /// Delivers the queue in order; while the collector is not taking data, the wait it asked
    /// for (if any) and why.
    async fn drain(&mut self) -> Result<(), (Option<Duration>, String)> {
        while let Some(front) = self.queue.front() {
            let body = match front {
                Queued::Memory(b) => gunzip(b).map_err(|e| format!("in memory: {e}")),
                Queued::File(p, _) => std::fs::read(p)
                    .and_then(|b| if p.to_string_lossy().ends_with(".gz") { gunzip(&b) } else { Ok(b) })
                    .map_err(|e| format!("{}: {e}", p.display())),
            };
            let outcome = match body {
                Ok(body) => self.send(&body).await,
                Err(why) => Err(Failure::Reject(format!("unreadable spilled batch {why}"))),
            };
            match outcome {
                Ok(()) => self.stats.sent.fetch_add(1, Ordering::Relaxed),
                Err(Failure::Retry(after, why)) => {
                    self.stats.retryable_failures.fetch_add(1, Ordering::Relaxed);
                    return Err((after, why));
                }
                Err(Failure::Reject(why)) => {
                    // Resending an invalid (or unreadable) batch would fail forever.
                    tracing::warn!("dropping a batch: {why}");
                    self.stats.rejected.fetch_add(1, Ordering::Relaxed)
                }
            };
            if let Some(done) = self.queue.pop_front() {
                self.queued_bytes -= done.len();
                done.discard();
            }
            self.stats.queued.store(self.queue.len() as u64, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Logs a failed delivery: at once when the collector stops taking data, then at most every
    /// [`OUTAGE_REMINDER`] while it stays so.
    fn log_failure(&self, outage: &mut Option<Outage>, why: &str) {
        let now = tokio::time::Instant::now();
        let queued = self.stats.queued.load(Ordering::Relaxed);
        match outage {
            None => {
                tracing::warn!(
                    "OTLP push to {} failing: {why}; batches are queued ({queued} now) and retried",
                    self.cfg.endpoint
                );
                *outage = Some(Outage {
                    since: now,
                    last_warned: now,
                    sent_before: self.stats.sent.load(Ordering::Relaxed),
                    dropped_before: self.stats.dropped.load(Ordering::Relaxed),
                    peak_queued: queued,
                });
            }
            Some(o) => {
                o.peak_queued = o.peak_queued.max(queued);
                if now.duration_since(o.last_warned) >= OUTAGE_REMINDER {
                    o.last_warned = now;
                    tracing::warn!(
                        "OTLP push to {} still failing after {} s: {why}; {queued} batches queued, {} dropped so far",
                        self.cfg.endpoint,
                        now.duration_since(o.since).as_secs(),
                        self.stats.dropped.load(Ordering::Relaxed) - o.dropped_before
                    );
                }
            }
        }
    }

    /// One line when deliveries work again: how long they did not and what that cost.
    fn log_recovery(&self, o: &Outage) {
        tracing::info!(
            "OTLP push to {} recovered after {} s: {} batches were queued at most, {} replayed, {} dropped",
            self.cfg.endpoint,
            o.since.elapsed().as_secs(),
            o.peak_queued,
            self.stats.sent.load(Ordering::Relaxed) - o.sent_before,
            self.stats.dropped.load(Ordering::Relaxed) - o.dropped_before
        );
    }

    /// Runs until `rx` closes: buffers every new snapshot and pushes each interval.
    pub async fn run(mut self, mut rx: watch::Receiver<Arc<NodeSnapshot>>) {
        let mut buf: Vec<NodeSnapshot> = Vec::new();
        let mut tick = tokio::time::interval(self.cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff_until: Option<tokio::time::Instant> = None;
        let mut backoff = Duration::from_millis(500);
        let mut outage: Option<Outage> = None;
        loop {
            tokio::select! {
                changed = rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let snap = rx.borrow_and_update().clone();
                    if snap.timestamp_ms > 0 {
                        buf.push((*snap).clone());
                    }
                }
                _ = tick.tick() => {
                    if let Some(agg) = aggregate(&buf) {
                        let req = encode(&[&agg], &self.id);
                        self.enqueue(req.encode_to_vec());
                        buf.clear();
                    }
                    if backoff_until.is_some_and(|t| tokio::time::Instant::now() < t) {
                        continue;
                    }
                    match self.drain().await {
                        Ok(()) => {
                            backoff_until = None;
                            backoff = Duration::from_millis(500);
                            if let Some(o) = outage.take() {
                                self.log_recovery(&o);
                            }
                        }
                        Err((after, why)) => {
                            // Honour Retry-After; else back off exponentially up to 30 s.
                            let wait = after.unwrap_or(backoff);
                            backoff = (backoff * 2).min(Duration::from_secs(30));
                            backoff_until = Some(tokio::time::Instant::now() + wait);
                            self.log_failure(&mut outage, &why);
                        }
                    }
                }
            }
        }
    }
}

/// An error and its causes on one line ("connection refused" is a cause, not the error's text).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// rustls client settings trusting the CA in `ca_file` (none: no server can be verified, so
/// `https://` fails with a clear error while `http://` works), presenting `client_cert` (chain
/// and key files) to a collector that asks for one.
fn tls_client_config(
    ca_file: Option<&std::path::Path>,
    client_cert: Option<&(PathBuf, PathBuf)>,
) -> Result<rustls::ClientConfig, PushError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = ca_file {
        let unreadable = |source| PushError::CaFile { path: ca.to_path_buf(), source };
        for cert in CertificateDer::pem_file_iter(ca).map_err(unreadable)? {
            roots
                .add(cert.map_err(unreadable)?)
                .map_err(|source| PushError::CaCertificate { path: ca.to_path_buf(), source })?;
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(PushError::ClientSetup)?
        .with_root_certificates(roots);
    let Some((cert, key)) = client_cert else { return Ok(builder.with_no_client_auth()) };
    let bad = |path: &PathBuf| {
        let path = path.clone();
        move |e: &dyn std::fmt::Display| PushError::ClientCert { path, message: e.to_string() }
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert)(&e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad(cert)(&e))?;
    if chain.is_empty() {
        return Err(bad(cert)(&"no certificate in the file"));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key)(&e))?;
    builder.with_client_auth_cert(chain, key_der).map_err(|e| bad(key)(&e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use super::*;

    fn config() -> PushConfig {
        PushConfig {
            endpoint: "https://collector:4318".into(),
            protocol: Protocol::HttpProtobuf,
            interval: Duration::from_secs(10),
            headers: Vec::new(),
            gzip: true,
            spill_dir: None,
            spill_max_bytes: 1 << 20,
            timeout: Duration::from_secs(10),
            ca_file: None,
            client_cert: None,
        }
    }

    fn identity() -> Identity {
        Identity { instance: "node-0".into(), start_unix_nano: 0 }
    }

    #[test]
    fn a_missing_ca_file_names_the_file_and_the_key() {
        let cfg = PushConfig { ca_file: Some("/nonexistent/ca.pem".into()), ..config() };
        let Err(e) = Pusher::new(cfg, identity()) else { panic!("a missing CA file must fail") };
        assert!(matches!(e, PushError::CaFile { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(msg.contains("/nonexistent/ca.pem") && msg.contains("otlp_ca_file"), "{msg}");
    }

    #[test]
    fn a_spill_directory_that_cannot_be_created_names_the_directory() {
        let file = tempfile_path("spill-blocker");
        std::fs::write(&file, b"a file, not a directory").unwrap();
        let dir = file.join("spill");
        let cfg = PushConfig { spill_dir: Some(dir.clone()), ..config() };
        let Err(e) = Pusher::new(cfg, identity()) else { panic!("a spill directory under a file must fail") };
        assert!(matches!(&e, PushError::SpillDir { path, .. } if *path == dir), "{e:?}");
        assert!(e.to_string().contains("otlp_spill_dir"), "{e}");
        let _ = std::fs::remove_file(&file);
    }

    fn tempfile_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("gpuscope-push-test-{}-{name}", std::process::id()))
    }
}
