//! `gpuscope demo`: a simulated node, the real agent (NVML through the simulated library, host
//! signals from a simulated /proc), OTLP to an in-process collector, and the findings printed
//! as they open and close.

use anyhow::{Context, Result};
use gpuscope_agent::{AgentOptions, Engine};
use gpuscope_analysis::AnalysisConfig;
use gpuscope_collector::CollectorConfig;
use gpuscope_exporters::otlp::{Identity, Protocol, PushConfig, Pusher};
use gpuscope_exporters::prometheus::{self, Endpoint, Names};
use gpuscope_sim::clock::{ENV_NODE, ENV_SCENARIO, ENV_SPEED, ENV_START, SimClock, unix_now};
use gpuscope_sim::procfs::TreeWriter;
use gpuscope_sim::{Scenario, Simulation};
use std::net::SocketAddr;
use std::time::Duration;

/// Demo options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Scenario to play (built-in name or file).
    #[arg(long, default_value = "dataloader-stall")]
    pub scenario: String,
    /// Scenario seconds per wall-clock second.
    #[arg(long, default_value_t = 10.0)]
    pub speed: f64,
    /// Print findings as lines (the interactive TUI is not built yet, so this is the default).
    #[arg(long)]
    pub headless: bool,
    /// Stop after this many wall-clock seconds.
    #[arg(long)]
    pub duration: Option<f64>,
    /// Where the agent's Prometheus endpoint listens.
    #[arg(long, default_value = "127.0.0.1:9466")]
    pub metrics: SocketAddr,
    /// Where the collector's findings API listens.
    #[arg(long, default_value = "127.0.0.1:9467")]
    pub api: SocketAddr,
}

/// Runs the demo.
pub fn run(a: &DemoArgs) -> Result<()> {
    if a.speed <= 0.0 || a.speed > 100.0 {
        return Err(crate::config::UsageError(format!("--speed must be in (0, 100], not {}", a.speed)).into());
    }
    let scenario = Scenario::load(&a.scenario)?;
    let sim = Simulation::new(scenario.clone(), 0)?;
    let lib = crate::cmd::sim::find_lib(None)?;
    let start = unix_now();
    // SAFETY: no other thread exists yet; the simulated NVML library reads these at its first init.
    unsafe {
        std::env::set_var(ENV_SCENARIO, &a.scenario);
        std::env::set_var(ENV_START, format!("{start:.6}"));
        std::env::set_var(ENV_SPEED, a.speed.to_string());
        std::env::set_var(ENV_NODE, "0");
    }
    crate::logging("warn");
    let root = std::env::temp_dir().join(format!("gpuscope-demo-{}", std::process::id()));
    let mut writer = TreeWriter::new(&root).with_context(|| format!("cannot create {}", root.display()))?;
    let clock = SimClock { start_unix: start, speed: a.speed, frozen: None };
    writer.write(&sim, &clock, 0.0).context("cannot write the simulated /proc")?;
    std::thread::Builder::new().name("gpuscope-sim-proc".into()).spawn(move || {
        loop {
            if let Err(e) = writer.write(&sim, &clock, clock.now()) {
                tracing::warn!("simulated /proc: {e}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })?;

    // One sample per workload second (at least every 100 ms of wall time).
    let interval = Duration::from_secs_f64((1.0 / a.speed).max(0.1));
    let opts = AgentOptions {
        nvml_lib: Some(lib),
        interval,
        slow_interval: Duration::from_secs_f64((30.0 / a.speed).max(interval.as_secs_f64())),
        procfs_root: root.join("proc"),
        sysfs_root: root.join("sys"),
        pod_logs_root: root.join("var/log/pods"),
        ..AgentOptions::default()
    };
    let engine = Engine::start(opts).context("cannot start sampling")?;
    let rx = engine.subscribe();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let result = rt.block_on(async {
        let collector = gpuscope_collector::start(CollectorConfig {
            grpc: "127.0.0.1:0".parse()?,
            http: "127.0.0.1:0".parse()?,
            api: a.api,
            analysis: AnalysisConfig { time_scale: Some(1.0 / a.speed), ..AnalysisConfig::default() },
            ..CollectorConfig::default()
        })
        .await
        .context("cannot start the collector")?;
        let pusher = Pusher::new(
            PushConfig {
                endpoint: format!("http://{}", collector.http),
                protocol: Protocol::HttpProtobuf,
                interval,
                headers: Vec::new(),
                gzip: true,
                spill_dir: None,
                spill_max_bytes: 64 << 20,
                timeout: Duration::from_secs(5),
                ca_file: None,
            },
            Identity { instance: scenario.hostname(0), start_unix_nano: (start * 1e9) as u64 },
        )?;
        let stats = pusher.stats();
        tokio::spawn(pusher.run(rx.clone()));
        let listener = tokio::net::TcpListener::bind(a.metrics)
            .await
            .with_context(|| format!("cannot listen on {}", a.metrics))?;
        let metrics_addr = listener.local_addr()?;
        tokio::spawn(prometheus::serve(
            listener,
            rx,
            Endpoint { names: Names::default(), labels: Vec::new(), otlp: Some(stats) },
            std::future::pending(),
        ));
        println!("gpuscope demo: scenario {} at {}x speed on {}", scenario.name, a.speed, scenario.hostname(0));
        println!("  {}", scenario.description.split_whitespace().collect::<Vec<_>>().join(" "));
        let expect = if scenario.expect.is_empty() { "none".to_string() } else { scenario.expect.join(", ") };
        println!("  expected findings: {expect}");
        println!("  agent metrics: http://{metrics_addr}/metrics   findings: http://{}/api/v1/findings", collector.api);
        println!("  (scenario time in brackets; Ctrl-C to stop)\n");
        let mut seen_open = 0usize;
        let mut seen_closed = std::collections::HashSet::new();
        let until = a.duration.map(|d| tokio::time::Instant::now() + Duration::from_secs_f64(d));
        let stop = crate::cmd::agent::shutdown();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                () = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
            if until.is_some_and(|u| tokio::time::Instant::now() >= u) {
                break;
            }
            let st = collector.state.lock().unwrap_or_else(|e| e.into_inner());
            let workload = |ms: u64| (ms as f64 / 1000.0 - start).max(0.0) * a.speed;
            for r in st.findings.iter().skip(seen_open) {
                let f = &r.finding;
                println!(
                    "[{:>6.0}s] OPEN  {:<22} {:<9} {}",
                    workload(r.opened_ms),
                    f.rule,
                    f.severity.as_str(),
                    f.summary
                );
                println!("          advice: {}", f.recommendation);
            }
            seen_open = st.findings.len();
            for (i, r) in st.findings.iter().enumerate() {
                if let Some(c) = r.closed_ms
                    && seen_closed.insert(i)
                {
                    println!(
                        "[{:>6.0}s] CLOSE {:<22} (open {:.0}s)",
                        workload(c),
                        r.finding.rule,
                        (c - r.opened_ms) as f64 / 1000.0 * a.speed
                    );
                }
            }
        }
        anyhow::Ok(())
    });
    engine.stop();
    let _ = std::fs::remove_dir_all(&root);
    result
}
