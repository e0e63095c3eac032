//! Listening: binding the three addresses, the HTTP accept loop (HTTP/1 and HTTP/2, optionally
//! TLS) and the TLS configuration both HTTP listeners and the gRPC server use.

use crate::error::StartError;
use crate::respond::Resp;
use hyper::Request;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Binds `addr` for the listener called `what`.
pub async fn bind(what: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_err = |source| StartError::Bind { what, addr, source };
    let l = TcpListener::bind(addr).await.map_err(bind_err)?;
    let local = l.local_addr().map_err(bind_err)?;
    Ok((l, local))
}

/// A PEM certificate chain and private key, read once for both TLS stacks.
pub struct TlsFiles {
    cert_path: PathBuf,
    key_path: PathBuf,
    cert: Vec<u8>,
    key: Vec<u8>,
}

impl TlsFiles {
    /// Reads both files.
    pub fn read(cert: &Path, key: &Path) -> Result<TlsFiles, StartError> {
        let read = |what, path: &Path| {
            std::fs::read(path).map_err(|source| StartError::TlsFile { what, path: path.to_path_buf(), source })
        };
        Ok(TlsFiles {
            cert: read("certificate", cert)?,
            key: read("key", key)?,
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
        })
    }

    /// The rustls acceptor for the HTTP listeners (ALPN: h2, then HTTP/1.1).
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, StartError> {
        let pem = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| StartError::TlsPem { what, path, source }
        };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<_, _>>()
            .map_err(pem("certificate", &self.cert_path))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(pem("key", &self.key_path))?;
        let config_err =
            |source| StartError::TlsConfig { cert: self.cert_path.clone(), key: self.key_path.clone(), source };
        let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(config_err)?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(config_err)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
    }

    /// The TLS configuration of the gRPC server.
    pub fn grpc(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(&self.cert, &self.key))
    }
}

/// Serves HTTP on `listener`, over TLS with `tls`, answering every request with `handler`.
pub async fn serve<H, F>(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, handler: H)
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Resp> + Send + 'static,
{
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let handler = handler.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let resp = handler(req);
                async move { Ok::<_, std::convert::Infallible>(resp.await) }
            });
            let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            match tls {
                Some(acceptor) => match acceptor.accept(stream).await {
                    Ok(tls_stream) => {
                        let _ = builder.serve_connection(TokioIo::new(tls_stream), svc).await;
                    }
                    Err(e) => tracing::debug!("TLS handshake failed: {e}"),
                },
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
    use super::*;

    #[test]
    fn tls_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let e = TlsFiles::read(&missing, &missing).err().unwrap();
        assert!(matches!(e, StartError::TlsFile { what: "certificate", .. }), "{e}");
        assert!(e.to_string().contains("missing.pem"), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let e = TlsFiles::read(&junk, &junk).unwrap().acceptor().err().unwrap();
        assert!(matches!(e, StartError::TlsPem { what: "key", .. }), "{e}");
        assert!(e.to_string().contains("junk.pem"), "{e}");
    }
}
