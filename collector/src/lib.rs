//! The collector: receives OTLP metrics from many agents (and any other OTLP exporter) over
//! gRPC and HTTP, keeps a window per node, runs the analysis and publishes findings on an HTTP
//! API and as Prometheus metrics.

pub mod decode;
pub mod grpc;
pub mod server;
pub mod state;
pub mod store;

use gpuscope_analysis::AnalysisConfig;
use server::{Batch, Shared};
use state::State;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// Collector settings.
#[derive(Debug, Clone)]
pub struct CollectorConfig {
    /// OTLP/gRPC address (4317).
    pub grpc: SocketAddr,
    /// OTLP/HTTP address (4318).
    pub http: SocketAddr,
    /// Findings API and metrics address (9467).
    pub api: SocketAddr,
    /// Largest request, bytes.
    pub max_body: usize,
    /// Batches queued between receiving and analysis before answering "busy".
    pub queue: usize,
    /// A node silent this long is flagged stale, ms.
    pub stale_after_ms: u64,
    /// The rules' configuration.
    pub analysis: AnalysisConfig,
    /// SQLite database for findings history and node inventory (`None`: memory only).
    pub store: Option<std::path::PathBuf>,
    /// Bearer token OTLP pushes must present (`None`: no authentication).
    pub token: Option<String>,
    /// Serve OTLP and the API over TLS with this PEM certificate chain and key.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// Loads a PEM certificate chain and private key into a rustls server configuration.
pub fn tls_server_config(cert: &std::path::Path, key: &std::path::Path) -> std::io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |what: &str, p: &std::path::Path, e: &dyn std::fmt::Display| {
        std::io::Error::other(format!("TLS {what} {}: {e}", p.display()))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad("certificate", cert, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| bad("certificate", cert, &e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad("key", key, &e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| bad("setup", cert, &e))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| bad("certificate", cert, &e))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

impl Default for CollectorConfig {
    fn default() -> Self {
        CollectorConfig {
            grpc: SocketAddr::from(([0, 0, 0, 0], 4317)),
            http: SocketAddr::from(([0, 0, 0, 0], 4318)),
            api: SocketAddr::from(([0, 0, 0, 0], 9467)),
            max_body: 16 << 20,
            queue: 1024,
            stale_after_ms: 60_000,
            analysis: AnalysisConfig::default(),
            store: None,
            token: None,
            tls: None,
        }
    }
}

/// A running collector's addresses and state.
pub struct Running {
    /// Where OTLP/gRPC listens.
    pub grpc: SocketAddr,
    /// Where OTLP/HTTP listens.
    pub http: SocketAddr,
    /// Where the API listens.
    pub api: SocketAddr,
    /// The state.
    pub state: Arc<Mutex<State>>,
    events: tokio::sync::broadcast::Sender<gpuscope_core::api::FindingEvent>,
}

impl Running {
    /// Every finding that opens or closes from now on, in order. A receiver that falls more
    /// than 1024 events behind skips the oldest (`RecvError::Lagged`).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<gpuscope_core::api::FindingEvent> {
        self.events.subscribe()
    }
}

/// Binds every listener and starts the receivers and the analysis on the current runtime.
pub async fn start(cfg: CollectorConfig) -> std::io::Result<Running> {
    let grpc_l = TcpListener::bind(cfg.grpc).await?;
    let http_l = TcpListener::bind(cfg.http).await?;
    let api_l = TcpListener::bind(cfg.api).await?;
    let (grpc, http, api) = (grpc_l.local_addr()?, http_l.local_addr()?, api_l.local_addr()?);
    let store = match &cfg.store {
        Some(p) => Some(store::Store::open(p).map_err(|e| std::io::Error::other(e.to_string()))?),
        None => None,
    };
    let state = Arc::new(Mutex::new(State::new(cfg.analysis.clone(), cfg.stale_after_ms, store)));
    let (tx, mut rx) = mpsc::channel::<Batch>(cfg.queue.max(1));
    let (changes, _) = tokio::sync::broadcast::channel(1024);
    let shared = Arc::new(Shared {
        state: state.clone(),
        queue: tx,
        max_body: cfg.max_body,
        token: cfg.token.clone(),
        changes: changes.clone(),
    });
    let (events, _) = tokio::sync::broadcast::channel(1024);
    let events_tx = events.clone();
    let st = state.clone();
    // The analysis runs off the receivers: they only decode and queue.
    tokio::spawn(async move {
        // Rules run over every node, so they run on a cadence, not per batch: every 250 ms, or
        // four times as long as the last evaluation took, so that on a large fleet evaluation
        // never takes more than a fifth of a core from ingestion.
        let mut last_eval = std::time::Instant::now();
        let mut cadence = std::time::Duration::from_millis(250);
        loop {
            let batch = match tokio::time::timeout(cadence, rx.recv()).await {
                Ok(Some(b)) => Some(b),
                Ok(None) => return,
                Err(_) => None,
            };
            let mut s = st.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(b) = batch {
                s.ingest_only(b);
            }
            if last_eval.elapsed() >= cadence {
                last_eval = std::time::Instant::now();
                for c in s.evaluate() {
                    // Nobody listening is fine.
                    let _ = changes.send(c);
                }
                for e in s.take_events() {
                    // Nobody listening is fine.
                    let _ = events_tx.send(e);
                }
                s.check_liveness();
                cadence = (last_eval.elapsed() * 4).max(std::time::Duration::from_millis(250));
            }
        }
    });
    let acceptor = match &cfg.tls {
        Some((cert, key)) => Some(tokio_rustls::TlsAcceptor::from(tls_server_config(cert, key)?)),
        None => None,
    };
    let grpc_tls = match &cfg.tls {
        Some((cert, key)) => Some(
            tonic::transport::ServerTlsConfig::new()
                .identity(tonic::transport::Identity::from_pem(std::fs::read(cert)?, std::fs::read(key)?)),
        ),
        None => None,
    };
    tokio::spawn(server::serve(http_l, shared.clone(), true, acceptor.clone()));
    tokio::spawn(server::serve(api_l, shared.clone(), false, acceptor));
    tokio::spawn(async move {
        if let Err(e) = grpc::serve(grpc_l, shared, grpc_tls).await {
            tracing::error!("OTLP/gRPC receiver stopped: {e}");
        }
    });
    tracing::info!(%grpc, %http, %api, "collector listening (OTLP gRPC, OTLP HTTP, API)");
    Ok(Running { grpc, http, api, state, events })
}
