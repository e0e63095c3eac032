//! `gpuscope dashboards …`: the generated Grafana dashboards, provisioning and Prometheus rules.

use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;

/// Dashboards subcommands.
#[derive(Debug, Subcommand)]
pub enum DashboardsCommand {
    /// Write the dashboards, Grafana provisioning files and Prometheus rules into a directory
    /// (the repository's `dashboards/` is this output).
    Export {
        /// Directory to write into (created if missing).
        #[arg(long, default_value = "dashboards")]
        out: PathBuf,
    },
    /// List the generated files.
    List,
}

/// Runs a dashboards subcommand.
pub fn run(cmd: DashboardsCommand) -> Result<()> {
    match cmd {
        DashboardsCommand::List => {
            for f in crate::dashboards::files() {
                println!("{}", f.path);
            }
            Ok(())
        }
        DashboardsCommand::Export { out } => {
            for f in crate::dashboards::files() {
                let path = out.join(f.path);
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                }
                std::fs::write(&path, f.content).with_context(|| format!("cannot write {}", path.display()))?;
                println!("{}", path.display());
            }
            Ok(())
        }
    }
}
