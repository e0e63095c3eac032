//! `gpuscope collector`: OTLP receivers, analysis and the findings API.

use crate::config::{CollectorArgs, CollectorSettings};
use crate::stack::RunningCollector;
use anyhow::Result;

/// Runs the collector until SIGINT/SIGTERM.
pub fn run(a: &CollectorArgs) -> Result<()> {
    let loaded = CollectorSettings::load(a)?;
    if a.check_config {
        print!("{}", loaded.settings.to_toml()?);
        println!("\n# [analysis]: {}", loaded.analysis_from);
        return Ok(());
    }
    crate::logging::init("info");
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let collector = RunningCollector::start(&loaded.settings)?;
    // The API is served over TLS with the OTLP receivers: the address printed is the one to use.
    let scheme = if loaded.settings.tls_cert.is_some() { "https" } else { "http" };
    tracing::info!(
        "OTLP gRPC on {}, OTLP HTTP on {}, API on {scheme}://{}/api/v1/findings",
        collector.grpc_addr(),
        collector.http_addr(),
        collector.api_addr()
    );
    collector.run_until(crate::signals::shutdown());
    collector.stop();
    Ok(())
}
