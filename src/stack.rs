//! The one place that turns a typed configuration into running parts: an agent (sampling
//! engine, Prometheus endpoint, OTLP pusher) and a collector (receivers, analysis, API). The
//! `agent`, `collector` and `demo` commands start them here; each handle owns its runtime,
//! knows its bound addresses, exposes its streams (snapshots, finding changes) and stops cleanly.

use crate::config::{AgentConfig, CollectorSettings};
use anyhow::{Context, Result};
use gpuscope_agent::Engine;
use gpuscope_core::NodeSnapshot;
use gpuscope_core::api::FindingEvent;
use gpuscope_exporters::otlp::{Identity, Pusher};
use gpuscope_exporters::prometheus::{self, Endpoint, Names};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinHandle;

/// How long a stop waits for the endpoint and the collector's tasks to wind down.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A running agent: samples on its own thread, serves `/metrics` and pushes OTLP while
/// [`RunningAgent::run_until`] drives it.
pub struct RunningAgent {
    /// One thread serves scrapes and pushes (the caller's, inside `run_until`): encoding a
    /// snapshot is cheap, and the agent must stay small.
    runtime: Runtime,
    engine: Engine,
    metrics: SocketAddr,
    stop_serving: oneshot::Sender<()>,
    serving: JoinHandle<std::io::Result<()>>,
    pushing: Option<JoinHandle<()>>,
    cupti: Option<Arc<gpuscope_agent::cupti::Receiver>>,
}

impl RunningAgent {
    /// Binds the Prometheus endpoint, sets up the OTLP push (when configured) and starts sampling.
    pub fn start(cfg: &AgentConfig) -> Result<RunningAgent> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(cfg.listen))
            .with_context(|| format!("cannot listen on {}", cfg.listen))?;
        let metrics = listener.local_addr().context("cannot read the endpoint's address")?;
        let pusher = match cfg.push_config() {
            Some(pc) => {
                let instance =
                    cfg.hostname.clone().unwrap_or_else(|| gpuscope_agent::engine::system_hostname(&cfg.procfs_root));
                let start_unix_nano = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                let endpoint = pc.endpoint.clone();
                let pusher = Pusher::new(pc, Identity { instance, start_unix_nano })?;
                tracing::info!("pushing OTLP to {endpoint}");
                Some(pusher)
            }
            None => None,
        };
        let cupti = if cfg.cupti.enabled {
            let opts = gpuscope_agent::cupti::ReceiverOptions::new(cfg.cupti.socket.clone(), cfg.procfs_root.clone());
            Some(gpuscope_agent::cupti::Receiver::start(opts).context("cannot start the CUPTI receiver ([cupti])")?)
        } else {
            None
        };
        let endpoint = Endpoint {
            names: Names { native: cfg.native_metrics, dcgm: cfg.compat.dcgm_profile() },
            labels: cfg.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            otlp: pusher.as_ref().map(|p| p.stats()),
            profiler: cupti.clone().map(|r| r as Arc<dyn gpuscope_core::api::KernelProfiler>),
        };
        let web = match &cfg.web_config_file {
            Some(path) => {
                let w = prometheus::web_config::Watched::new(path.clone())?;
                tracing::info!("web configuration {}: {}", path.display(), w.current().describe());
                Some(Arc::new(w))
            }
            None => None,
        };
        let scheme = if web.as_ref().is_some_and(|w| w.current().tls.is_some()) { "https" } else { "http" };
        let engine = Engine::start(gpuscope_agent::AgentOptions { cupti: cupti.clone(), ..cfg.agent_options() })
            .context("cannot start the sampling thread")?;
        let snapshots = engine.subscribe();
        let pushing = pusher.map(|p| runtime.spawn(p.run(snapshots.clone())));
        let (stop_serving, stopped) = oneshot::channel::<()>();
        let serving = runtime.spawn(prometheus::serve(listener, snapshots, endpoint, web, async {
            let _ = stopped.await;
        }));
        tracing::info!("listening on {scheme}://{metrics}/metrics");
        Ok(RunningAgent { runtime, engine, metrics, stop_serving, serving, pushing, cupti })
    }

    /// Where the Prometheus endpoint listens.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics
    }

    /// The latest snapshot, updated after every sampling pass (the demo's UI reads it).
    pub fn snapshots(&self) -> watch::Receiver<Arc<NodeSnapshot>> {
        self.engine.subscribe()
    }

    /// Serves scrapes and pushes until `until` resolves (on the calling thread), returning its output.
    pub fn run_until<F: Future>(&self, until: F) -> F::Output {
        self.runtime.block_on(until)
    }

    /// Stops serving (letting scrapes in flight finish), stops pushing and sampling. Call it
    /// outside async code.
    pub fn stop(self) -> Result<()> {
        let RunningAgent { runtime, engine, stop_serving, serving, pushing, cupti, .. } = self;
        let _ = stop_serving.send(());
        let served = runtime.block_on(async { tokio::time::timeout(STOP_GRACE, serving).await });
        if let Some(p) = pushing {
            p.abort();
        }
        runtime.shutdown_timeout(STOP_GRACE);
        engine.stop();
        if let Some(c) = cupti {
            c.stop();
        }
        match served {
            Ok(Ok(result)) => result.context("the Prometheus endpoint failed"),
            Ok(Err(e)) => Err(e).context("the Prometheus endpoint failed"),
            // Slow clients are not worth waiting for on the way out.
            Err(_) => Ok(()),
        }
    }
}

/// A running collector on its own runtime (two worker threads).
pub struct RunningCollector {
    runtime: Runtime,
    running: gpuscope_collector::Running,
}

impl RunningCollector {
    /// Binds every listener and starts the receivers and the analysis.
    pub fn start(cfg: &CollectorSettings) -> Result<RunningCollector> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .context("cannot start the async runtime")?;
        let running = runtime
            .block_on(gpuscope_collector::start(cfg.collector_config()))
            .context("cannot start the collector")?;
        Ok(RunningCollector { runtime, running })
    }

    /// Where OTLP/gRPC listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.running.grpc
    }

    /// Where OTLP/HTTP listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.running.http
    }

    /// Where the findings API listens.
    pub fn api_addr(&self) -> SocketAddr {
        self.running.api
    }

    /// Every finding that opens or closes from now on, in order.
    pub fn subscribe(&self) -> broadcast::Receiver<FindingEvent> {
        self.running.subscribe()
    }

    /// Runs `until` on the calling thread (with this runtime's signals and timers), returning its output.
    pub fn run_until<F: Future>(&self, until: F) -> F::Output {
        self.runtime.block_on(until)
    }

    /// Stops the receivers, the analysis and the API (closing the store). Call it outside async code.
    pub fn stop(self) {
        let RunningCollector { runtime, running } = self;
        drop(running);
        runtime.shutdown_timeout(STOP_GRACE);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

    use super::*;

    fn local() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    fn refused(addr: SocketAddr) -> bool {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err()
    }

    #[test]
    fn a_collector_binds_its_addresses_and_releases_them_on_stop() {
        let cfg = CollectorSettings { grpc: local(), http: local(), api: local(), ..CollectorSettings::default() };
        let c = RunningCollector::start(&cfg).unwrap();
        let addrs = [c.grpc_addr(), c.http_addr(), c.api_addr()];
        assert!(addrs.iter().all(|a| a.port() != 0 && !refused(*a)), "{addrs:?}");
        c.stop();
        assert!(addrs.iter().all(|a| refused(*a)), "still listening after stop: {addrs:?}");
    }

    #[test]
    fn an_agent_serves_metrics_and_pushes_until_stopped() {
        let root = std::env::temp_dir().join(format!("gpuscope-stack-test-{}", std::process::id()));
        std::fs::create_dir_all(root.join("proc")).unwrap();
        let collector = RunningCollector::start(&CollectorSettings {
            grpc: local(),
            http: local(),
            api: local(),
            ..CollectorSettings::default()
        })
        .unwrap();
        let cfg = AgentConfig {
            listen: local(),
            interval: Duration::from_millis(100),
            otlp_interval: Duration::from_millis(100),
            otlp_endpoint: Some(crate::config::agent::OtlpEndpoint::http(collector.http_addr())),
            // No NVML and an empty /proc: every sampler fails, the agent still serves.
            nvml_lib: Some(root.join("no-libnvidia-ml.so")),
            procfs_root: root.join("proc"),
            sysfs_root: root.join("sys"),
            hostname: Some("stack-test".into()),
            ..AgentConfig::default()
        };
        let agent = RunningAgent::start(&cfg).unwrap();
        let addr = agent.metrics_addr();
        assert_ne!(addr.port(), 0);
        let mut snapshots = agent.snapshots();
        let body = agent.run_until(async {
            snapshots.changed().await.unwrap();
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
            let mut body = String::new();
            s.read_to_string(&mut body).await.unwrap();
            body
        });
        assert!(body.contains("gpuscope_agent_sampler_up"), "{body}");
        assert_eq!(agent.snapshots().borrow().node.hostname, "stack-test");
        agent.stop().unwrap();
        assert!(refused(addr), "still listening after stop");
        collector.stop();
        let _ = std::fs::remove_dir_all(&root);
    }
}
