//! `gpuscope agent`: the node daemon (samplers + Prometheus endpoint + OTLP push).

use crate::config::{AgentArgs, AgentConfig};
use crate::stack::RunningAgent;
use anyhow::Result;

/// Agent options.
#[derive(Debug, Clone, clap::Args)]
pub struct AgentCommand {
    /// Configuration: a file, GPUSCOPE_* variables and flags.
    #[command(flatten)]
    pub args: AgentArgs,
    /// Load and check the configuration, print the effective one and exit.
    #[arg(long)]
    pub check_config: bool,
}

/// Runs the agent until SIGINT or SIGTERM.
pub fn run(a: &AgentCommand) -> Result<()> {
    let cfg = AgentConfig::load(&a.args)?;
    if a.check_config {
        print!("{}", cfg.to_toml()?);
        return Ok(());
    }
    // The allocator (mimalloc, for the collector's sake) reserves large aligned arenas; where
    // transparent huge pages are on for every mapping, the kernel backs them with 2 MiB pages,
    // doubling the agent's small resident set (23 MB instead of 11 MB, bench/README.md). The
    // flag covers the whole process; failure is harmless.
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    crate::logging::init(cfg.log_level.as_str());
    let agent = RunningAgent::start(&cfg)?;
    agent.run_until(crate::signals::shutdown());
    tracing::info!("shutting down");
    agent.stop()
}
