//! `gpuscope`: the GPU observability agent's command-line entry point.

mod cmd;
mod config;
mod dashboards;
mod logging;
mod signals;
mod stack;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use std::process::ExitCode;

// The collector decodes and drops many small objects per request; glibc malloc spent half of its
// time in allocation under load (bench/README.md), mimalloc a fraction of that.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// GPU observability and profiling agent.
#[derive(Debug, Parser)]
#[command(name = "gpuscope", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start-up: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the node agent: GPU and host samplers behind a Prometheus endpoint (:9466).
    Agent(cmd::agent::AgentCommand),
    /// Print one snapshot of this node: GPUs, GPU processes and host, as a table or JSON.
    Query {
        #[command(flatten)]
        config: config::AgentArgs,
        /// Print JSON (the snapshot format documented in docs/query-json.md).
        #[arg(long)]
        json: bool,
        /// Milliseconds between the two readings that rates and profiling ratios need.
        #[arg(long, default_value_t = 500)]
        gap_ms: u64,
    },
    /// One kernel-level profiling window of a CUDA process (CUPTI), through the local agent.
    Profile(cmd::profile::ProfileArgs),
    /// Run the collector: OTLP receivers (gRPC :4317, HTTP :4318), analysis, findings API (:9467).
    Collector(config::CollectorArgs),
    /// The interactive terminal UI: this node's GPUs, processes, host and findings, or a recording.
    Top(cmd::top::TopArgs),
    /// Write a compact, rotating recording of this node's snapshots and findings (a flight recorder).
    Record(cmd::record::RecordArgs),
    /// The whole stack in one process on a simulated node: agent, collector and the terminal UI.
    Demo(cmd::demo::DemoArgs),
    /// Install the agent as a hardened systemd service with a default configuration.
    Install(cmd::install::InstallArgs),
    /// The bottleneck and health rules.
    #[command(subcommand)]
    Rules(cmd::rules::RulesCommand),
    /// The generated Grafana dashboards and Prometheus recording and alerting rules.
    #[command(subcommand)]
    Dashboards(cmd::dashboards::DashboardsCommand),
    /// Simulated GPU nodes: list and inspect scenarios, point NVML at the simulator, write /proc.
    #[command(subcommand)]
    Sim(cmd::sim::SimCommand),
}

fn main() -> ExitCode {
    // Parsed in two steps so that a bad value from a GPUSCOPE_* variable names the variable.
    let matches = Cli::command().try_get_matches().unwrap_or_else(|e| {
        config::name_the_variable(e, &Cli::command()).exit();
    });
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if !matches!(cli.command, Command::Agent(_) | Command::Collector(_) | Command::Demo(_) | Command::Record(_)) {
        // One-shot commands die quietly on a closed pipe (`gpuscope sim show … | head`), as
        // Unix tools do; the agent keeps Rust's default so a vanished scraper cannot kill it.
        // SAFETY: restoring a default signal disposition at start-up, before any threads.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }

    let result = match cli.command {
        Command::Agent(o) => cmd::agent::run(&o),
        Command::Query { config, json, gap_ms } => cmd::query::run(&config, json, gap_ms),
        Command::Install(a) => cmd::install::run(&a),
        Command::Profile(a) => cmd::profile::run(&a),
        Command::Collector(a) => cmd::collector::run(&a),
        Command::Demo(a) => cmd::demo::run(&a),
        Command::Top(a) => cmd::top::run(&a),
        Command::Record(a) => cmd::record::run(&a),
        Command::Rules(c) => cmd::rules::run(c),
        Command::Dashboards(c) => cmd::dashboards::run(c),
        Command::Sim(c) => cmd::sim::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpuscope: {e:#}");
            // Bad input (configuration, a scenario, a flag value) is a usage error, as clap's own are.
            let usage = e.downcast_ref::<config::UsageError>().is_some()
                || e.downcast_ref::<gpuscope_sim::ScenarioError>().is_some()
                || e.downcast_ref::<gpuscope_tui::recording::RecordingError>().is_some_and(|r| {
                    use gpuscope_tui::recording::RecordingError as R;
                    matches!(r, R::NotARecording { .. } | R::Version { .. })
                });
            if usage { ExitCode::from(2) } else { ExitCode::from(1) }
        }
    }
}
