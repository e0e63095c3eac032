//! The collector: receives OTLP metrics from many agents (and any other OTLP exporter) over
//! gRPC and HTTP, keeps a window per node, runs the analysis and publishes findings on an HTTP
//! API, as a change stream and as Prometheus metrics, with their history in SQLite.
//!
//! Where things are: `receiver/` (one file per OTLP transport) → `ingest` (decode, bounded
//! queue, counters) → `analyze` (the loop that owns changes to `state`, whose findings live in
//! `history`) → `store` (SQLite, written by its own thread). `api/` reads the state and serves
//! it; `listener` accepts connections (TLS included); `respond` builds HTTP answers.

mod analyze;
mod api;
pub mod auth;
pub mod decode;
mod error;
pub mod history;
mod ingest;
mod listener;
mod receiver;
mod respond;
pub mod state;
pub mod store;

pub use error::StartError;
pub use listener::ConnLimits;
pub use state::NodeLimits;

use gpuscope_analysis::AnalysisConfig;
use gpuscope_core::api::FindingEvent;
use state::State;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::sync::{broadcast, mpsc};

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
    /// Bearer token OTLP pushes must present, and API requests too unless `api_token` is set
    /// (`None`: no authentication).
    pub token: Option<String>,
    /// Bearer token API requests (findings, nodes, the event stream, `/metrics`) must present
    /// instead of `token`; `/healthz` stays open for liveness probes.
    pub api_token: Option<String>,
    /// Serve OTLP and the API over TLS with this PEM certificate chain and key.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
    /// With TLS, require every client (OTLP and API) to present a certificate signed by this CA.
    pub tls_client_ca: Option<std::path::PathBuf>,
    /// Closed findings kept in memory (default 10,000, about 10 MB); older ones are dropped
    /// from memory first (lowest id) and, with a store, still listed from it.
    pub closed_findings_kept: usize,
    /// What a client may hold on each listener (connections, timeouts).
    pub limits: ConnLimits,
    /// Nodes held and how long a silent one is kept in memory.
    pub nodes: NodeLimits,
    /// How far ahead of the receive time a sample may be timestamped, ms (clock skew).
    pub max_clock_skew_ms: u64,
    /// GPUs kept per node sample.
    pub max_gpus_per_node: usize,
    /// GPU processes kept per node sample.
    pub max_processes_per_node: usize,
    /// Pushes a second one client address may make (bursts of twice that); infinite: no limit.
    pub max_pushes_per_client_per_s: f64,
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
            api_token: None,
            tls: None,
            tls_client_ca: None,
            closed_findings_kept: 10_000,
            limits: ConnLimits::default(),
            nodes: NodeLimits::default(),
            max_clock_skew_ms: 60_000,
            max_gpus_per_node: 64,
            max_processes_per_node: 1024,
            max_pushes_per_client_per_s: 50.0,
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
    /// The state, for in-process inspection (tests); everything else reads it through the API or
    /// [`Running::subscribe`], so the analysis loop stays its only writer.
    pub state: Arc<Mutex<State>>,
    events: broadcast::Sender<FindingEvent>,
}

impl Running {
    /// Every finding that opens or closes from now on, in order. A receiver that falls more
    /// than 1024 events behind skips the oldest (`RecvError::Lagged`).
    pub fn subscribe(&self) -> broadcast::Receiver<FindingEvent> {
        self.events.subscribe()
    }
}

/// Binds every listener and starts the receivers and the analysis on the current runtime.
pub async fn start(cfg: CollectorConfig) -> Result<Running, StartError> {
    let limits = connection_limits(cfg.limits);
    let (grpc_l, grpc) = listener::bind("OTLP/gRPC", cfg.grpc).await?;
    let (http_l, http) = listener::bind("OTLP/HTTP", cfg.http).await?;
    let (api_l, api) = listener::bind("the API", cfg.api).await?;
    let tls = match (
        cfg.tls.as_ref().map(|(cert, key)| listener::TlsFiles::read(cert, key)).transpose()?,
        &cfg.tls_client_ca,
    ) {
        (Some(files), Some(ca)) => Some(files.with_client_ca(ca)?),
        (tls, _) => tls,
    };
    let acceptor = tls.as_ref().map(listener::TlsFiles::acceptor).transpose()?;

    let (state, writer, reader) = match &cfg.store {
        Some(path) => {
            let store = store::Store::open(path)?;
            let state = State::restore(cfg.analysis.clone(), cfg.stale_after_ms, cfg.closed_findings_kept, &store)?;
            // A second connection for the API's reads: WAL lets it read while the writer writes.
            let reader = Arc::new(Mutex::new(store::Store::open(path)?));
            let writer =
                store::writer::StoreWriter::spawn(store, store::writer::QUEUE).map_err(StartError::StoreWriter)?;
            (state, Some(writer), Some(reader))
        }
        None => (State::new(cfg.analysis.clone(), cfg.stale_after_ms, cfg.closed_findings_kept), None, None),
    };
    let state = state.with_node_limits(cfg.nodes);
    let (forget, forget_rx) = mpsc::channel(16);
    let state = Arc::new(Mutex::new(state));
    let counters = Arc::new(ingest::Counters::default());
    let (queue, batches) = mpsc::channel::<ingest::Batch>(cfg.queue.max(1));
    let (events, _) = broadcast::channel(1024);

    // The analysis runs off the receivers: they only decode and queue.
    tokio::spawn(
        analyze::Analysis {
            state: state.clone(),
            queue: batches,
            events: events.clone(),
            counters: counters.clone(),
            writer,
            forget: forget_rx,
        }
        .run(),
    );
    let push_token = cfg.token.as_deref().and_then(auth::Token::new);
    let api_token = cfg.api_token.as_deref().and_then(auth::Token::new).or_else(|| push_token.clone());
    let mut ingest = ingest::Ingest::new(queue, cfg.max_body, push_token.clone(), counters.clone());
    ingest.body_read_timeout = limits.body_read_timeout;
    ingest.rate = ingest::RateLimit::new(cfg.max_pushes_per_client_per_s);
    ingest.limits = decode::Limits {
        now_ms: 0,
        max_future_ms: cfg.max_clock_skew_ms,
        max_gpus: cfg.max_gpus_per_node,
        max_processes: cfg.max_processes_per_node,
    };
    let ingest = Arc::new(ingest);
    let conns = counters.connections.clone();
    let api_ctx = Arc::new(api::Api {
        state: state.clone(),
        events: events.clone(),
        counters,
        store: reader,
        forget,
        token: api_token.clone(),
    });
    let server = |listener, which| listener::Server {
        listener,
        which,
        tls: acceptor.clone(),
        limits,
        counters: conns.clone(),
        handler: (),
    };
    let http_ingest = ingest.clone();
    tokio::spawn(
        server(http_l, listener::Listener::OtlpHttp)
            .with(move |req| receiver::http::handle(http_ingest.clone(), req))
            .serve(),
    );
    tokio::spawn(server(api_l, listener::Listener::Api).with(move |req| api::handle(api_ctx.clone(), req)).serve());
    let grpc_svc = receiver::grpc::service(ingest);
    let body_read_timeout = limits.body_read_timeout;
    tokio::spawn(
        server(grpc_l, listener::Listener::OtlpGrpc)
            .with(move |req| receiver::grpc::handle(grpc_svc.clone(), body_read_timeout, req))
            .serve(),
    );
    tracing::info!(%grpc, %http, %api, "collector listening (OTLP gRPC, OTLP HTTP, API)");
    let on_off = |t: &Option<auth::Token>| {
        if t.is_some() { "bearer token required" } else { "OFF (anyone who reaches the port)" }
    };
    let everywhere = [grpc, http, api].iter().any(|a| a.ip().is_unspecified());
    if everywhere && (push_token.is_none() || api_token.is_none()) && cfg.tls_client_ca.is_none() {
        tracing::warn!(
            "listening on every interface without authentication: anyone who reaches these ports can push, and read node names, serials, PIDs and users; set token_file (and tls_cert/tls_key), or listen on 127.0.0.1"
        );
    }
    tracing::info!(
        "authentication: OTLP pushes {}; API {}; TLS {}",
        on_off(&push_token),
        on_off(&api_token),
        match (&cfg.tls, &cfg.tls_client_ca) {
            (Some(_), Some(_)) => "on, client certificates required",
            (Some(_), None) => "on",
            _ => "off (plain text)",
        }
    );
    Ok(Running { grpc, http, api, state, events })
}

/// The configured limits, with the connection cap lowered where the open-files limit could not
/// hold three full listeners (the store, the log and the runtime keep a few files of their own).
/// The soft limit is raised to the hard limit first.
fn connection_limits(mut limits: ConnLimits) -> ConnLimits {
    const RESERVED_FILES: u64 = 128;
    let files = match listener::raise_open_files_limit() {
        Ok((before, after)) => {
            if after > before {
                tracing::info!("open files limit raised from {before} to {after}");
            }
            after
        }
        Err(e) => {
            tracing::warn!("cannot read or raise the open files limit: {e}");
            return limits;
        }
    };
    let fit = (files.saturating_sub(RESERVED_FILES) / 3).max(1);
    if limits.max_connections as u64 > fit {
        tracing::warn!(
            "max_connections {} per listener does not fit the open files limit {files}: lowered to {fit}",
            limits.max_connections
        );
        limits.max_connections = fit as usize;
    }
    limits
}
