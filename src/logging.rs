//! Logging to stderr for every command.

/// Starts logging to stderr at `level` (GPUSCOPE_LOG, in tracing's filter syntax, wins).
pub fn init(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GPUSCOPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(ansi)
        .try_init();
}
