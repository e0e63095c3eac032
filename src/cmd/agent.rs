//! `gpuscope agent`: the node daemon (samplers + Prometheus endpoint).

use crate::config::{AgentConfig, Compat, Overrides};
use anyhow::{Context, Result};
use gpuscope_agent::Engine;
use gpuscope_exporters::prometheus::{self, Endpoint, Names};

/// Runs the agent until SIGINT or SIGTERM.
pub fn run(o: &Overrides) -> Result<()> {
    let cfg = AgentConfig::load(o)?;
    // The allocator (mimalloc, for the collector's sake) reserves large aligned arenas; where
    // transparent huge pages are on for every mapping, the kernel backs them with 2 MiB pages,
    // doubling the agent's small resident set (23 MB instead of 11 MB, bench/README.md). The
    // flag covers the whole process; failure is harmless.
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    crate::logging(&cfg.log_level);
    let opts = cfg.agent_options();
    let engine = Engine::start(opts.clone()).context("cannot start the sampling thread")?;
    let rx = engine.subscribe();
    let push = match cfg.push_config() {
        Some(pc) => {
            let instance = if opts.hostname.is_empty() {
                gpuscope_agent::engine::system_hostname(&opts.procfs_root)
            } else {
                opts.hostname.clone()
            };
            let start =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            let endpoint = pc.endpoint.clone();
            let pusher = gpuscope_exporters::otlp::Pusher::new(
                pc,
                gpuscope_exporters::otlp::Identity { instance, start_unix_nano: start },
            )
            .context("cannot create the OTLP spill directory")?;
            tracing::info!("pushing OTLP to {endpoint}");
            Some(pusher)
        }
        None => None,
    };
    let endpoint = Endpoint {
        names: Names { native: cfg.native_metrics, dcgm: cfg.compat == Compat::Dcgm },
        labels: cfg.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        otlp: push.as_ref().map(|p| p.stats()),
    };
    // One thread serves scrapes: encoding a snapshot is cheap, and the agent must stay small.
    let rt =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let addr = cfg.listen_addr();
    let result = rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener.local_addr()?;
        if let Some(p) = push {
            tokio::spawn(p.run(rx.clone()));
        }
        tracing::info!("listening on http://{local}/metrics");
        prometheus::serve(listener, rx, endpoint, shutdown()).await?;
        tracing::info!("shutting down");
        anyhow::Ok(())
    });
    engine.stop();
    result
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown() {
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
