//! `gpuscope`: the GPU observability agent's command-line entry point.

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// GPU observability and profiling agent.
#[derive(Debug, Parser)]
#[command(name = "gpuscope", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Simulated GPU nodes: list and inspect scenarios, point NVML at the simulator, write /proc.
    #[command(subcommand)]
    Sim(cmd::sim::SimCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sim(c) => cmd::sim::run(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gpuscope: {e:#}");
            // Bad input (a scenario, a flag value) is a usage error, as clap's own are.
            ExitCode::from(2)
        }
    }
}
