//! `gpuscope record FILE`: the flight recorder. Samples this node like the agent, runs the rules
//! locally, and writes snapshots and findings to a compact, rotating recording
//! (docs/recording.md) that `gpuscope top --replay FILE` plays back.

use crate::cmd::top::positive;
use crate::config::{AgentArgs, AgentConfig, UsageError};
use crate::signals::Shutdown;
use anyhow::{Context, Result, bail};
use gpuscope_analysis::AnalysisConfig;
use gpuscope_tui::Input;
use gpuscope_tui::feed::{self, LocalAnalysis};
use gpuscope_tui::recording::{Limits, Recorder};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// `record` options.
#[derive(Debug, Clone, clap::Args)]
pub struct RecordArgs {
    /// The recording to write (replaced if it exists).
    pub file: PathBuf,
    /// Wall seconds per workload second for the rules' periods (1 on a real node; a simulated
    /// node running at speed S needs 1/S).
    #[arg(long, value_name = "RATIO")]
    pub time_scale: Option<f64>,
    /// How to sample this node (the agent's settings).
    #[command(flatten)]
    pub config: AgentArgs,
    /// Rotate the file when it reaches this many MiB (compressed).
    #[arg(long, default_value_t = 64)]
    pub max_mib: u64,
    /// Rotated files to keep (FILE.1 … FILE.N).
    #[arg(long, default_value_t = 3)]
    pub keep: u32,
    /// Stop after this many seconds (else on Ctrl-C or SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
}

/// Records until the duration ends or a signal arrives.
pub fn run(a: &RecordArgs) -> Result<()> {
    if a.max_mib == 0 {
        bail!(UsageError("--max-mib must be at least 1".into()));
    }
    if a.time_scale.is_some_and(|s| !positive(s)) {
        bail!(UsageError("--time-scale must be positive".into()));
    }
    if a.duration.is_some_and(|d| !positive(d)) {
        bail!(UsageError("--duration must be positive".into()));
    }
    let cfg = AgentConfig::load(&a.config)?;
    crate::logging::init(cfg.log_level.as_str());
    let node = cfg.hostname.clone().unwrap_or_else(|| gpuscope_agent::engine::system_hostname(&cfg.procfs_root));
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
    let limits = Limits { max_bytes: a.max_mib << 20, keep: a.keep };
    let recorder = Recorder::create(&a.file, &node, now_ms, limits)?;
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    let mut stop = runtime.block_on(async { Shutdown::catch() }).context("cannot catch SIGINT/SIGTERM")?;
    let engine = gpuscope_agent::Engine::start(cfg.agent_options()).context("cannot start the sampling thread")?;
    let (tx, rx) = mpsc::channel();
    let feeding = feed::snapshots(
        engine.subscribe(),
        Some(LocalAnalysis::new(AnalysisConfig { time_scale: a.time_scale, ..AnalysisConfig::default() })),
        Some(recorder),
        tx,
    )?;
    eprintln!(
        "gpuscope record: {} from {node} (rotates at {} MiB, keeps {}); Ctrl-C to stop",
        a.file.display(),
        a.max_mib,
        a.keep
    );
    let duration = a.duration.map(Duration::from_secs_f64);
    runtime.block_on(async {
        match duration {
            Some(d) => tokio::select! { () = stop.recv() => {}, () = tokio::time::sleep(d) => {} },
            None => stop.recv().await,
        }
    });
    // Stopping the engine ends the feed, which finishes the file.
    engine.stop();
    let _ = feeding.join();
    let (mut snapshots, mut findings, mut failure) = (0u64, 0u64, None);
    for input in rx.try_iter() {
        match input {
            Input::Snapshot(_) => snapshots += 1,
            Input::Finding(_) => findings += 1,
            Input::Failed(why) => failure = Some(why),
            _ => {}
        }
    }
    if let Some(why) = failure {
        bail!("{why}");
    }
    let size = std::fs::metadata(&a.file).map_or(0, |m| m.len());
    eprintln!(
        "gpuscope record: {snapshots} snapshots, {findings} finding changes, {size} bytes in {}",
        a.file.display()
    );
    Ok(())
}
