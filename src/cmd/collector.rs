//! `gpuscope collector`: OTLP receivers, analysis and the findings API.

use crate::config::UsageError;
use anyhow::{Context, Result};
use gpuscope_analysis::AnalysisConfig;
use gpuscope_collector::CollectorConfig;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Collector options.
#[derive(Debug, Clone, clap::Args)]
pub struct CollectorArgs {
    /// OTLP/gRPC listen address.
    #[arg(long, default_value = "0.0.0.0:4317")]
    pub grpc: SocketAddr,
    /// OTLP/HTTP listen address.
    #[arg(long, default_value = "0.0.0.0:4318")]
    pub http: SocketAddr,
    /// Findings API and metrics listen address.
    #[arg(long, default_value = "0.0.0.0:9467")]
    pub api: SocketAddr,
    /// Rule thresholds and timing (TOML: eval_span_s, time_scale, [rules.<id>]; see docs/rules.md).
    #[arg(long)]
    pub analysis_config: Option<PathBuf>,
    /// Wall seconds per workload second (1/speed for a simulator running faster than real time).
    #[arg(long)]
    pub time_scale: Option<f64>,
    /// Flag a node that has not reported for this many seconds.
    #[arg(long, default_value_t = 60.0)]
    pub stale_after_s: f64,
    /// SQLite database for findings history and node inventory (kept across restarts).
    #[arg(long, env = "GPUSCOPE_COLLECTOR_STORE")]
    pub store: Option<PathBuf>,
    /// Serve OTLP and the API over TLS: PEM certificate chain.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Serve OTLP and the API over TLS: PEM private key.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require this bearer token on OTLP pushes.
    #[arg(long, env = "GPUSCOPE_COLLECTOR_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// Reads the analysis configuration; a mistake names the key and the file.
pub fn analysis_config(a: &CollectorArgs) -> Result<AnalysisConfig, UsageError> {
    let mut cfg = match &a.analysis_config {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| UsageError(format!("cannot read {}: {e}", p.display())))?;
            toml::from_str(&text)
                .map_err(|e| UsageError(format!("config file {}: {}", p.display(), e.to_string().trim_end())))?
        }
        None => AnalysisConfig::default(),
    };
    if let Some(s) = a.time_scale {
        if s <= 0.0 {
            return Err(UsageError(format!("--time-scale must be positive, not {s}")));
        }
        cfg.time_scale = Some(s);
    }
    Ok(cfg)
}

/// Runs the collector until SIGINT/SIGTERM.
pub fn run(a: &CollectorArgs) -> Result<()> {
    let analysis = analysis_config(a)?;
    crate::logging("info");
    let cfg = CollectorConfig {
        grpc: a.grpc,
        http: a.http,
        api: a.api,
        stale_after_ms: (a.stale_after_s * 1000.0) as u64,
        analysis,
        store: a.store.clone(),
        token: a.token.clone(),
        tls: a.tls_cert.clone().zip(a.tls_key.clone()),
        ..CollectorConfig::default()
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        let running = gpuscope_collector::start(cfg).await.context("cannot listen")?;
        tracing::info!(
            "OTLP gRPC on {}, OTLP HTTP on {}, API on http://{}/api/v1/findings",
            running.grpc,
            running.http,
            running.api
        );
        crate::cmd::agent::shutdown().await;
        anyhow::Ok(())
    })
}
