//! Listening: binding the three addresses, the HTTP accept loop (HTTP/1 and HTTP/2, optionally
//! TLS) and the TLS configuration both HTTP listeners and the gRPC server use.

use crate::error::StartError;
use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

/// Connections the kernel may queue before they are accepted. A burst of connections (a
/// thousand agents after a network blip, or a flood) must not fill a short queue: the kernel then
/// drops the handshakes it cannot queue and every client, hostile or not, waits for a
/// retransmission (a second or more). The kernel caps it at `net.core.somaxconn`.
const BACKLOG: u32 = 4096;

/// Binds `addr` for the listener called `what`.
pub async fn bind(what: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_err = |source| StartError::Bind { what, addr, source };
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() }
        .map_err(bind_err)?;
    // As std's and tokio's own bind do: a restarted collector can bind while old connections linger.
    socket.set_reuseaddr(true).map_err(bind_err)?;
    socket.bind(addr).map_err(bind_err)?;
    let l = socket.listen(BACKLOG).map_err(bind_err)?;
    let local = l.local_addr().map_err(bind_err)?;
    Ok((l, local))
}

/// A PEM certificate chain and private key, read once for both TLS stacks.
pub struct TlsFiles {
    cert_path: PathBuf,
    key_path: PathBuf,
    cert: Vec<u8>,
    key: Vec<u8>,
    /// The CA client certificates must be signed by (mTLS), with its path.
    client_ca: Option<(PathBuf, Vec<u8>)>,
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
            client_ca: None,
        })
    }

    /// Requires clients to present a certificate signed by the CA in `path` (mTLS).
    pub fn with_client_ca(mut self, path: &Path) -> Result<TlsFiles, StartError> {
        let pem = std::fs::read(path).map_err(|source| StartError::TlsFile {
            what: "client CA",
            path: path.to_path_buf(),
            source,
        })?;
        self.client_ca = Some((path.to_path_buf(), pem));
        Ok(self)
    }

    /// The rustls acceptor for the HTTP listeners (ALPN: h2, then HTTP/1.1).
    pub fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, StartError> {
        let pem = pem;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&self.cert)
            .collect::<Result<_, _>>()
            .map_err(pem("certificate", &self.cert_path))?;
        let key = PrivateKeyDer::from_pem_slice(&self.key).map_err(pem("key", &self.key_path))?;
        let config_err =
            |source| StartError::TlsConfig { cert: self.cert_path.clone(), key: self.key_path.clone(), source };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(config_err)?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some((path, pem)) => {
                let mut roots = rustls::RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(pem) {
                    let c = c.map_err(self::pem("client CA", path))?;
                    roots.add(c).map_err(|source| StartError::TlsClientCa { path: path.clone(), source })?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                    .build()
                    .map_err(|e| StartError::TlsClientCa {
                        path: path.clone(),
                        source: rustls::Error::General(e.to_string()),
                    })?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let mut cfg = builder.with_single_cert(certs, key).map_err(config_err)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
    }
}

/// The address a request came from (a request extension), for per-client limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer(pub std::net::IpAddr);

/// Which listener a connection came to (the `listener` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The findings API, event stream and `/metrics`.
    Api,
    /// OTLP/gRPC.
    OtlpGrpc,
    /// OTLP/HTTP.
    OtlpHttp,
}

impl Listener {
    /// Every listener, in label order.
    pub const ALL: [Listener; 3] = [Listener::Api, Listener::OtlpGrpc, Listener::OtlpHttp];

    /// The `listener` label value.
    pub fn label(self) -> &'static str {
        match self {
            Listener::Api => "api",
            Listener::OtlpGrpc => "otlp_grpc",
            Listener::OtlpHttp => "otlp_http",
        }
    }
}

/// Why the server closed a connection before its client did (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// A request head was started and not finished within the header-read timeout.
    HeaderTimeout,
    /// No request for the idle timeout (an idle keep-alive connection or one that never spoke).
    IdleTimeout,
    /// The listener already held its maximum of connections: closed as soon as accepted.
    OverLimit,
}

impl Closed {
    /// Every reason, in label order.
    pub const ALL: [Closed; 3] = [Closed::HeaderTimeout, Closed::IdleTimeout, Closed::OverLimit];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::OverLimit => "over_limit",
        }
    }
}

/// Connection counts per listener, for `/metrics` (atomics: the accept loops never lock).
#[derive(Debug, Default)]
pub struct ConnCounters {
    open: [AtomicU64; Listener::ALL.len()],
    closed: [[AtomicU64; Closed::ALL.len()]; Listener::ALL.len()],
}

impl ConnCounters {
    /// Connections open now on `l`.
    pub fn open(&self, l: Listener) -> u64 {
        self.open[l as usize].load(Relaxed)
    }

    /// Connections `l` closed for `why`.
    pub fn closed(&self, l: Listener, why: Closed) -> u64 {
        self.closed[l as usize][why as usize].load(Relaxed)
    }

    fn count_closed(&self, l: Listener, why: Closed) {
        self.closed[l as usize][why as usize].fetch_add(1, Relaxed);
    }
}

/// What one listener lets a client hold: connections, and how long a connection may sit without
/// completing a request. Together with the body-read timeout the handlers apply, nothing a client
/// opens stays open unless it is answered or streamed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections held at once; the next ones are closed as soon as they are accepted (refused,
    /// never queued, so the listen backlog does not fill and nobody waits behind them).
    pub max_connections: usize,
    /// A request head must arrive within this of its first byte (slow-header clients).
    pub header_read_timeout: Duration,
    /// A connection with no request in progress is closed after this (idle keep-alive, or a
    /// client that connects and says nothing; a TLS handshake counts as saying nothing).
    pub idle_timeout: Duration,
    /// A request body must arrive within this (slow-body clients); the handlers apply it.
    pub body_read_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_read_timeout: Duration::from_secs(30),
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit, returning both soft limits
/// (before, after). The usual soft limit, 1,024, is what a thousand idle connections exhaust; past
/// it, `accept` fails for every listener at once. The hard limit is what the administrator allows.
pub fn raise_open_files_limit() -> std::io::Result<(u64, u64)> {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes into the struct it is given and reads nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let before = lim.rlim_cur;
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: setrlimit reads the struct it is given; raising the soft limit up to the hard
        // limit needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok((before, lim.rlim_cur))
}

/// When a connection last changed between "a request is in progress", "idle" and "a request
/// head is arriving", for its watchdog.
struct Activity {
    started: Instant,
    /// Requests whose answer is not finished (a streamed answer counts until its end).
    in_flight: AtomicUsize,
    /// When `in_flight` last fell to 0, ms since `started`.
    idle_since_ms: AtomicU64,
    /// When the first byte arrived while nothing was in flight, ms since `started` + 1 (0: none).
    head_since_ms: AtomicU64,
    wake: Notify,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            started: Instant::now(),
            in_flight: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            head_since_ms: AtomicU64::new(0),
            wake: Notify::new(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    fn read_some(&self) {
        if self.in_flight.load(Relaxed) == 0
            && self.head_since_ms.compare_exchange(0, self.now_ms() + 1, Relaxed, Relaxed).is_ok()
        {
            self.wake.notify_one();
        }
    }

    fn request_started(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Relaxed);
        self.head_since_ms.store(0, Relaxed);
        InFlight(self.clone())
    }

    /// Resolves when the connection has outlived its limits, with the reason.
    async fn expired(&self, limits: &ConnLimits) -> Closed {
        loop {
            let notified = self.wake.notified();
            let (deadline, why) = if self.in_flight.load(Relaxed) > 0 {
                // Checked again when the request ends (it wakes this).
                (self.now_ms() + limits.idle_timeout.as_millis() as u64, None)
            } else {
                match self.head_since_ms.load(Relaxed) {
                    0 => (
                        self.idle_since_ms.load(Relaxed) + limits.idle_timeout.as_millis() as u64,
                        Some(Closed::IdleTimeout),
                    ),
                    t => (t - 1 + limits.header_read_timeout.as_millis() as u64, Some(Closed::HeaderTimeout)),
                }
            };
            let now = self.now_ms();
            if let Some(why) = why
                && now >= deadline
            {
                return why;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(deadline.saturating_sub(now))) => {}
                _ = notified => {}
            }
        }
    }
}

/// A request in progress on a connection; dropped when its answer has been sent.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Relaxed) == 1 {
            self.0.idle_since_ms.store(self.0.now_ms(), Relaxed);
            self.0.wake.notify_one();
        }
    }
}

/// The socket (or TLS stream), noting when bytes arrive.
struct Watched<T> {
    io: T,
    activity: Arc<Activity>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read_some();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// An answer's body that keeps its request counted as in progress until it has been sent (an
/// event stream stays in progress while it is open).
struct Counted<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B: Body + Unpin> Body for Counted<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// One accept loop: `listener` as `which`, over TLS with `tls`, HTTP/1 and HTTP/2, every request
/// answered by `handler`, within `limits`.
pub struct Server<H> {
    /// The bound socket.
    pub listener: TcpListener,
    /// Which listener this is, for the counters and the log.
    pub which: Listener,
    /// TLS, when configured.
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    /// What a client may hold.
    pub limits: ConnLimits,
    /// Connection counters (shared with `/metrics`).
    pub counters: Arc<ConnCounters>,
    /// Answers a request.
    pub handler: H,
}

impl Server<()> {
    /// The same listener with its handler.
    pub fn with<H>(self, handler: H) -> Server<H> {
        let Server { listener, which, tls, limits, counters, handler: () } = self;
        Server { listener, which, tls, limits, counters, handler }
    }
}

impl<H, F, B> Server<H>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// Accepts connections until the runtime stops.
    pub async fn serve(self) {
        let Server { listener, which, tls, limits, counters, handler } = self;
        let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(listener = which.label(), "accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                // Closing at once costs nothing and queues nobody.
                drop(stream);
                counters.count_closed(which, Closed::OverLimit);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (handler, tls, counters) = (handler.clone(), tls.clone(), counters.clone());
            tokio::spawn(async move {
                counters.open[which as usize].fetch_add(1, Relaxed);
                let activity = Arc::new(Activity::new());
                let why = tokio::select! {
                    () = connection(stream, peer.ip(), tls, handler, activity.clone()) => None,
                    why = activity.expired(&limits) => Some(why),
                };
                // Dropping the connection's future closed it.
                if let Some(why) = why {
                    counters.count_closed(which, why);
                }
                counters.open[which as usize].fetch_sub(1, Relaxed);
                drop(slot);
            });
        }
    }
}

/// Maps a PEM error of the `what` file at `path`.
fn pem(what: &'static str, path: &Path) -> impl FnOnce(rustls::pki_types::pem::Error) -> StartError {
    let path = path.to_path_buf();
    move |source| StartError::TlsPem { what, path, source }
}

/// Serves one connection until it ends.
async fn connection<H, F, B>(
    stream: TcpStream,
    peer: std::net::IpAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handler: H,
    activity: Arc<Activity>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: Body<Data = Bytes> + Unpin + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let svc_activity = activity.clone();
    let svc = service_fn(move |mut req: Request<Incoming>| {
        let in_flight = svc_activity.request_started();
        req.extensions_mut().insert(Peer(peer));
        let resp = handler(req);
        async move {
            let resp = resp.await;
            Ok::<_, std::convert::Infallible>(resp.map(|body| Counted { body, _in_flight: in_flight }))
        }
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    // Streams one HTTP/2 connection may run at once (each holds a request's body).
    builder.http2().max_concurrent_streams(64);
    let stream = Watched { io: stream, activity: activity.clone() };
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
