//! Shutdown on SIGINT (Ctrl-C) or SIGTERM (systemd, Kubernetes), for every long-running command.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGINT and SIGTERM, caught from the moment this is created (so a signal that arrives while a
/// command is still starting up is not lost, and does not kill it before it can clean up).
pub struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
}

impl Shutdown {
    /// Starts catching both signals; call it inside a tokio runtime.
    pub fn catch() -> std::io::Result<Shutdown> {
        Ok(Shutdown { interrupt: signal(SignalKind::interrupt())?, terminate: signal(SignalKind::terminate())? })
    }

    /// Resolves on the first SIGINT or SIGTERM.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

/// Resolves on SIGINT or SIGTERM (on Ctrl-C alone where SIGTERM cannot be caught).
pub async fn shutdown() {
    match Shutdown::catch() {
        Ok(mut s) => s.recv().await,
        Err(e) => {
            tracing::warn!("cannot catch SIGTERM ({e}); stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
