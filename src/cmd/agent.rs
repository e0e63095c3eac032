//! `gpuscope agent`: the node daemon (samplers + Prometheus endpoint).

use crate::config::{AgentConfig, Compat, Overrides};
use anyhow::{Context, Result};
use gpuscope_agent::Engine;
use gpuscope_exporters::prometheus::{self, Endpoint, Names};

/// Runs the agent until SIGINT or SIGTERM.
pub fn run(o: &Overrides) -> Result<()> {
    let cfg = AgentConfig::load(o)?;
    crate::logging(&cfg.log_level);
    let engine = Engine::start(cfg.agent_options()).context("cannot start the sampling thread")?;
    let rx = engine.subscribe();
    let endpoint = Endpoint {
        names: Names { native: cfg.native_metrics, dcgm: cfg.compat == Compat::Dcgm },
        labels: cfg.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
    };
    // One thread serves scrapes: encoding a snapshot is cheap, and the agent must stay small.
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let addr = cfg.listen_addr();
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        tracing::info!("listening on http://{local}/metrics");
        prometheus::serve(listener, rx, endpoint, shutdown()).await?;
        tracing::info!("shutting down");
        anyhow::Ok(())
    });
    engine.stop();
    result
}

async fn shutdown() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
