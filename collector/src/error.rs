//! Why the collector could not start.

use std::net::SocketAddr;
use std::path::PathBuf;

/// A start-up failure, naming what to fix (the address, the file, the database).
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not bind its address.
    #[error("cannot listen for {what} on {addr}: {source} — is another process using the port?")]
    Bind {
        /// Which listener (OTLP/gRPC, OTLP/HTTP, API).
        what: &'static str,
        /// The configured address.
        addr: SocketAddr,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A TLS certificate or key file could not be read.
    #[error("cannot read the TLS {what} {}: {source}", path.display())]
    TlsFile {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's reason.
        source: std::io::Error,
    },
    /// A TLS certificate or key file holds no usable PEM.
    #[error("TLS {what} {}: {source} — expected a PEM file", path.display())]
    TlsPem {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        source: rustls::pki_types::pem::Error,
    },
    /// The certificate and key do not make a TLS configuration (wrong key, unsupported type).
    #[error("TLS certificate {} with key {}: {source}", cert.display(), key.display())]
    TlsConfig {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// The client CA file holds a certificate that cannot be a trust anchor.
    #[error("TLS client CA {}: {source} — expected the PEM certificate of the CA that signs the clients' certificates", path.display())]
    TlsClientCa {
        /// The file.
        path: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
    /// The findings store could not be opened.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The store's writer thread could not be started.
    #[error("cannot start the findings store writer: {0}")]
    StoreWriter(std::io::Error),
}
