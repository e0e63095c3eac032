//! Shutdown on SIGINT (Ctrl-C), SIGTERM (systemd, Kubernetes) or SIGHUP (the terminal closed:
//! the demo's UI must still clean up), for every long-running command.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// SIGINT, SIGTERM and SIGHUP, caught from the moment this is created (so a signal that arrives while a
/// command is still starting up is not lost, and does not kill it before it can clean up).
pub struct Shutdown {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Shutdown {
    /// Starts catching the three signals; call it inside a tokio runtime.
    pub fn catch() -> std::io::Result<Shutdown> {
        Ok(Shutdown {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// Resolves on the first SIGINT, SIGTERM or SIGHUP.
    pub async fn recv(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
            _ = self.hangup.recv() => {}
        }
    }
}

/// Resolves on SIGINT, SIGTERM or SIGHUP (on Ctrl-C alone where they cannot be caught).
pub async fn shutdown() {
    match Shutdown::catch() {
        Ok(mut s) => s.recv().await,
        Err(e) => {
            tracing::warn!("cannot catch SIGTERM ({e}); stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
