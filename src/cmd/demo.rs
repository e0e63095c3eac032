//! `gpuscope demo`: a simulated node, the real agent (NVML through the simulated library, host
//! signals from a simulated /proc), OTLP to an in-process collector, and the terminal UI on
//! top of them (the agent's snapshots, the collector's findings); `--headless` prints the
//! findings as they open and close instead.

use crate::cmd::demo_cuda;
use crate::config::agent::{CuptiConfig, OtlpEndpoint};
use crate::config::{AgentConfig, CollectorSettings, UsageError};
use crate::signals::Shutdown;
use crate::stack::{RunningAgent, RunningCollector};
use anyhow::{Context, Result};
use gpuscope_analysis::AnalysisConfig;
use gpuscope_core::api::FindingEvent;
use gpuscope_sim::clock::{ENV_NODE, ENV_SCENARIO, ENV_SPEED, ENV_START, SimClock, unix_now};
use gpuscope_sim::procfs::{COUNTER_STEP_MS, TreeWriter};
use gpuscope_sim::{Scenario, Simulation};
use gpuscope_tui::feed;
use gpuscope_tui::{App, Input, SourceKind};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;

/// Demo options.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Scenario to play (built-in name or file).
    #[arg(long, default_value = "dataloader-stall")]
    pub scenario: String,
    /// Scenario seconds per wall-clock second.
    #[arg(long, default_value_t = 10.0)]
    pub speed: f64,
    /// Print findings as lines instead of opening the terminal UI (for scripts and CI).
    #[arg(long)]
    pub headless: bool,
    /// Look of the terminal UI (signals are always off: the demo's processes are simulated).
    #[command(flatten)]
    pub ui: crate::cmd::top::UiArgs,
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

/// The simulated /proc and /sys: a directory and the thread that keeps writing it. Dropping it
/// stops the thread first, then removes the directory, so nothing writes into a removed tree.
struct SimulatedHost {
    root: PathBuf,
    stop: Arc<AtomicBool>,
    writers: Vec<std::thread::JoinHandle<()>>,
}

impl SimulatedHost {
    /// Writes the tree once (the agent reads the host name at start), then every 50 ms, with
    /// the traffic counters on a thread of their own every 20 ms (a whole-tree write can take
    /// longer than that, and counters that move only with it give uneven rates).
    fn start(root: PathBuf, sim: Simulation, clock: SimClock) -> Result<SimulatedHost> {
        let mut host = SimulatedHost { root, stop: Arc::new(AtomicBool::new(false)), writers: Vec::new() };
        let mut tree = TreeWriter::new(&host.root).with_context(|| format!("cannot create {}", host.root.display()))?;
        tree.write(&sim, &clock, 0.0).context("cannot write the simulated /proc")?;
        let counters = tree.counter_writer();
        let sim = Arc::new(sim);
        let (stop, csim) = (host.stop.clone(), sim.clone());
        host.writers.push(std::thread::Builder::new().name("gpuscope-sim-counters".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = counters.write_counters(&csim, clock.now()) {
                    tracing::warn!("simulated /proc counters: {e}");
                }
                std::thread::sleep(Duration::from_millis(COUNTER_STEP_MS));
            }
        })?);
        let stop = host.stop.clone();
        host.writers.push(std::thread::Builder::new().name("gpuscope-sim-proc".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Err(e) = tree.write(&sim, &clock, clock.now()) {
                    tracing::warn!("simulated /proc: {e}");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        })?);
        Ok(host)
    }
}

impl Drop for SimulatedHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.writers.drain(..) {
            let _ = w.join();
        }
        if let Err(e) = std::fs::remove_dir_all(&self.root)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("cannot remove {}: {e}", self.root.display());
        }
    }
}

/// Runs the demo.
pub fn run(a: &DemoArgs) -> Result<()> {
    if a.speed <= 0.0 || a.speed > 100.0 {
        return Err(UsageError(format!("--speed must be in (0, 100], not {}", a.speed)).into());
    }
    let scenario = Scenario::load(&a.scenario)?;
    let sim = Simulation::new(scenario.clone(), 0)?;
    let theme = a.ui.theme()?;
    if !a.headless {
        crate::cmd::top::need_terminal("run `gpuscope demo --headless` for the findings as lines")?;
    }
    let lib = crate::cmd::sim::find_lib(None)?;
    let start = unix_now();
    // SAFETY: no other thread exists yet; the simulated NVML library reads these at its first init.
    unsafe {
        std::env::set_var(ENV_SCENARIO, &a.scenario);
        std::env::set_var(ENV_START, format!("{start:.6}"));
        std::env::set_var(ENV_SPEED, a.speed.to_string());
        std::env::set_var(ENV_NODE, "0");
    }
    // Log lines would tear the UI's screen: silent there unless GPUSCOPE_LOG asks.
    crate::logging::init(if a.headless { "warn" } else { "off" });

    // One sample per workload second (at least every 100 ms of wall time).
    let interval = Duration::from_secs_f64((1.0 / a.speed).max(0.1));
    let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
    let collector = RunningCollector::start(&CollectorSettings {
        grpc: localhost,
        http: localhost,
        api: a.api,
        analysis: AnalysisConfig { time_scale: Some(1.0 / a.speed), ..AnalysisConfig::default() },
        ..CollectorSettings::default()
    })?;
    // From here on Ctrl-C and SIGTERM end the demo through the clean-up below.
    let mut stop = collector.run_until(async { Shutdown::catch() }).context("cannot catch SIGINT/SIGTERM")?;
    // Subscribed before anything is pushed, so that no finding is missed.
    let mut events = collector.subscribe();

    let root = std::env::temp_dir().join(format!("gpuscope-demo-{}", std::process::id()));
    let clock = SimClock { start_unix: start, speed: a.speed, frozen: None };
    let host = SimulatedHost::start(root.clone(), sim, clock)?;
    let agent = RunningAgent::start(&AgentConfig {
        listen: a.metrics,
        interval,
        slow_interval: Duration::from_secs_f64((30.0 / a.speed).max(interval.as_secs_f64())),
        nvml_lib: Some(lib),
        procfs_root: root.join("proc"),
        sysfs_root: root.join("sys"),
        pod_logs_root: root.join("var/log/pods"),
        passwd_file: root.join("etc/passwd"),
        otlp_endpoint: Some(OtlpEndpoint::http(collector.http_addr())),
        otlp_interval: interval,
        otlp_spill_max_bytes: 64 << 20,
        cupti: CuptiConfig { enabled: true, socket: root.join("cupti.sock") },
        ..AgentConfig::default()
    })?;
    // One profiled CUDA process on the node, when its programs are built.
    let cuda = demo_cuda::start(&scenario, &a.scenario, &root.join("proc"), &root.join("cupti.sock"))?;
    let cuda_line = match &cuda {
        Ok(p) => format!(
            "kernel profiles: pid {} plays the CUDA workload of {} (simulated CUPTI); `gpuscope profile --pid {}` shows its kernels",
            p.pid(),
            p.workload,
            p.pid()
        ),
        Err(why) => format!("kernel profiles: off ({why})"),
    };

    let duration = a.duration.map(Duration::from_secs_f64);
    let mut ui = None;
    if a.headless {
        println!("gpuscope demo: scenario {} at {}x speed on {}", scenario.name, a.speed, scenario.hostname(0));
        println!("  {}", scenario.description.split_whitespace().collect::<Vec<_>>().join(" "));
        let mut expect = scenario.expect.clone();
        if let Ok(p) = &cuda {
            expect.extend(p.expect.iter().cloned());
        }
        let expect = if expect.is_empty() { "none".to_string() } else { expect.join(", ") };
        println!("  expected findings: {expect}");
        println!("  {cuda_line}");
        println!(
            "  agent metrics: http://{}/metrics   findings: http://{}/api/v1/findings",
            agent.metrics_addr(),
            collector.api_addr()
        );
        println!("  (scenario time in brackets; Ctrl-C to stop)\n");

        agent.run_until(async {
            let until = async {
                match duration {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::pin!(until);
            let mut listening = true;
            loop {
                tokio::select! {
                    () = stop.recv() => break,
                    () = &mut until => break,
                    event = events.recv(), if listening => match event {
                        Ok(e) => print_event(&e, start, a.speed),
                        Err(RecvError::Lagged(n)) => tracing::warn!("{n} finding changes were not printed"),
                        Err(RecvError::Closed) => listening = false,
                    },
                }
            }
        });
    } else {
        // Printed before the UI takes the screen: it shows again when the UI quits.
        eprintln!("gpuscope demo: {cuda_line}");
        let (tx, rx) = std::sync::mpsc::channel();
        let mut app = App::new(SourceKind::Demo { scenario: scenario.name.clone() }, theme);
        // The processes on screen are simulated: their PIDs belong to nobody on this machine.
        app.readonly = true;
        app.speed = a.speed;
        feed::snapshots(agent.snapshots(), None, None, tx.clone())?;
        feed::findings(events, tx.clone())?;
        feed::terminal_events(tx.clone())?;
        let (done, ui_done) = tokio::sync::oneshot::channel::<()>();
        let handle = std::thread::Builder::new().name("gpuscope-tui".into()).spawn(move || {
            let result = crate::cmd::top::run_ui(app, rx, None);
            let _ = done.send(());
            result
        })?;
        agent.run_until(async {
            let until = async {
                match duration {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = stop.recv() => {}
                () = until => {}
                _ = ui_done => return,
            }
            // A signal or the end of --duration: the UI quits and restores the terminal.
            let _ = tx.send(Input::Shutdown);
        });
        ui = Some(handle);
    }
    // The simulated node goes first, whatever becomes of a UI whose terminal hung up; its CUDA
    // process before the agent whose socket it writes to.
    drop(cuda);
    let stopped = agent.stop();
    collector.stop();
    drop(host);
    let ui_result = match ui.map(|h| h.join()) {
        None => Ok(()),
        Some(Ok(r)) => r,
        Some(Err(_)) => Err(anyhow::anyhow!("the terminal UI panicked")),
    };
    ui_result.and(stopped)
}

/// One line per change, in scenario seconds since the start.
fn print_event(event: &FindingEvent, start_unix: f64, speed: f64) {
    let workload = |ms: u64| (ms as f64 / 1000.0 - start_unix).max(0.0) * speed;
    match event {
        FindingEvent::Opened(r) => {
            let f = &r.finding;
            println!("[{:>6.0}s] OPEN  {:<22} {:<9} {}", workload(r.opened_ms), f.rule, f.severity.as_str(), f.summary);
            println!("          advice: {}", f.recommendation);
        }
        FindingEvent::Closed(r) => {
            let closed = r.closed_ms.unwrap_or(r.opened_ms);
            println!(
                "[{:>6.0}s] CLOSE {:<22} (open {:.0}s)",
                workload(closed),
                r.finding.rule,
                closed.saturating_sub(r.opened_ms) as f64 / 1000.0 * speed
            );
        }
    }
}
