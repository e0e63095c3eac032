//! The HTTP side: `/metrics` (content negotiation, gzip), `/healthz`, `/readyz`, and the CUPTI
//! kernel profiles: `GET /api/v1/profiles` (the latest of every profiled process) and
//! `POST /api/v1/profile?pid=N&duration_ms=D` (one window on request).
//!
//! Each scrape encodes the latest published snapshot; it never touches NVML, so the cost of a
//! scrape does not depend on how often Prometheus scrapes.

use super::encode::{Format, Names, write};
use super::web_config::WebConfig;
use bytes::Bytes;
use gpuscope_core::NodeSnapshot;
use gpuscope_core::exposition::{Kind, Writer};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{ACCEPT, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the endpoint serves.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Name sets.
    pub names: Names,
    /// Labels added to every series.
    pub labels: Vec<(String, String)>,
    /// The OTLP pusher's counters, when pushing.
    pub otlp: Option<Arc<crate::otlp::PushStats>>,
    /// The CUPTI receiver, which runs profiling windows on request; `None` when it is off.
    pub profiler: Option<Arc<dyn gpuscope_core::api::KernelProfiler>>,
}

struct State {
    endpoint: Endpoint,
    rx: watch::Receiver<Arc<NodeSnapshot>>,
    scrapes: AtomicU64,
    encode_nanos: AtomicU64,
}

fn negotiate(req: &Request<Incoming>) -> Format {
    let accept = req.headers().get(ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("");
    if accept.contains("application/openmetrics-text") { Format::OpenMetrics } else { Format::Text }
}

fn wants_gzip(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().split(';').next() == Some("gzip")))
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn metrics(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let format = negotiate(req);
    let snap = state.rx.borrow().clone();
    let mut body = String::with_capacity(64 * 1024);
    write(&mut Writer::new(&mut body, format).with_labels(&state.endpoint.labels), &snap, state.endpoint.names);
    let scrapes = state.scrapes.fetch_add(1, Ordering::Relaxed) + 1;
    let nanos = state.encode_nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
    if state.endpoint.names.native {
        self_metrics(&mut body, format, scrapes, nanos, state.endpoint.otlp.as_deref());
    }
    Writer::new(&mut body, format).finish();
    let mut resp = if wants_gzip(req) {
        let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(body.len() / 4), flate2::Compression::fast());
        match gz.write_all(body.as_bytes()).and_then(|()| gz.finish()) {
            Ok(bytes) => {
                let mut r = Response::new(Full::new(Bytes::from(bytes)));
                r.headers_mut().insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            Err(_) => Response::new(Full::new(Bytes::from(body))),
        }
    } else {
        Response::new(Full::new(Bytes::from(body)))
    };
    resp.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(format.content_type()));
    resp
}

/// The endpoint's and the OTLP pusher's counters (without node labels).
fn self_metrics(
    body: &mut String,
    format: Format,
    scrapes: u64,
    encode_nanos: u64,
    otlp: Option<&crate::otlp::PushStats>,
) {
    let mut w = Writer::new(body, format);
    w.header("gpuscope_exporter_scrapes_total", Kind::Counter, "Scrapes of /metrics served.");
    w.sample("gpuscope_exporter_scrapes_total", &[], scrapes as f64);
    w.header("gpuscope_exporter_encode_seconds_total", Kind::Counter, "Time spent encoding scrapes.");
    w.sample("gpuscope_exporter_encode_seconds_total", &[], encode_nanos as f64 / 1e9);
    if let Some(p) = otlp {
        use std::sync::atomic::Ordering::Relaxed;
        for (name, help, v) in [
            ("gpuscope_otlp_batches_sent_total", "OTLP batches delivered.", &p.sent),
            (
                "gpuscope_otlp_retryable_failures_total",
                "OTLP sends that failed and will be retried.",
                &p.retryable_failures,
            ),
            (
                "gpuscope_otlp_batches_rejected_total",
                "OTLP batches the collector refused as invalid (not retried).",
                &p.rejected,
            ),
            (
                "gpuscope_otlp_batches_dropped_total",
                "OTLP batches dropped because the spill queue was full.",
                &p.dropped,
            ),
        ] {
            w.header(name, Kind::Counter, help);
            w.sample(name, &[], v.load(Relaxed) as f64);
        }
        w.header("gpuscope_otlp_queue_batches", Kind::Gauge, "OTLP batches waiting for the collector.");
        w.sample("gpuscope_otlp_queue_batches", &[], p.queued.load(Relaxed) as f64);
    }
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn json<T: serde::Serialize>(value: &T) -> Response<Full<Bytes>> {
    match serde_json::to_vec_pretty(value) {
        Ok(body) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            r
        }
        Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode the answer: {e}\n")),
    }
}

/// How long `/api/v1/profile` waits past the window's end for its summary: the library sends it
/// after flushing CUPTI's buffers, which takes a few milliseconds, or longer on a busy host.
const PROFILE_GRACE: std::time::Duration = std::time::Duration::from_secs(5);
/// The window `/api/v1/profile` asks for without `duration_ms`.
const DEFAULT_PROFILE_MS: u64 = 500;

/// The value of query parameter `key`, if given.
fn query_param<'a>(req: &'a Request<Incoming>, key: &str) -> Option<&'a str> {
    req.uri().query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

/// `POST /api/v1/profile?pid=N&duration_ms=D`: asks the injection library in `pid` for one
/// window of `D` ms (1..=60000, default 500) and answers with the process's profile from it.
async fn profile(state: &State, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::POST {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "only POST\n");
        r.headers_mut().insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let Some(profiler) = state.endpoint.profiler.clone() else {
        return plain(StatusCode::NOT_FOUND, "kernel-level profiling is off in this agent ([cupti] enabled = false)\n");
    };
    let pid = match query_param(req, "pid").map(str::parse::<u32>) {
        Some(Ok(pid)) if pid > 0 => pid,
        Some(_) => return plain(StatusCode::BAD_REQUEST, "pid must be a process id (a positive integer)\n"),
        None => return plain(StatusCode::BAD_REQUEST, "pid is missing: POST /api/v1/profile?pid=N&duration_ms=D\n"),
    };
    let ms = match query_param(req, "duration_ms").map(str::parse::<u64>) {
        None => DEFAULT_PROFILE_MS,
        Some(Ok(ms)) if (1..=60_000).contains(&ms) => ms,
        Some(_) => return plain(StatusCode::BAD_REQUEST, "duration_ms must be 1 to 60000 (milliseconds)\n"),
    };
    let window = std::time::Duration::from_millis(ms);
    let (tx, rx) = tokio::sync::oneshot::channel();
    let reply = Box::new(move |p: gpuscope_core::KernelProfile| {
        let _ = tx.send(p);
    });
    if let Err(refusal) = profiler.request_window(pid, window, reply) {
        use gpuscope_core::api::ProfileRefusal as R;
        let status = match refusal {
            R::NotConnected { .. } => StatusCode::NOT_FOUND,
            R::Busy { .. } => StatusCode::TOO_MANY_REQUESTS,
            R::Failed { .. } => StatusCode::BAD_GATEWAY,
            R::Invalid { .. } => StatusCode::BAD_REQUEST,
        };
        return text(status, format!("{refusal}\n"));
    }
    match tokio::time::timeout(window + PROFILE_GRACE, rx).await {
        Ok(Ok(mut p)) => {
            // The receiver knows the process by PID; the sampling pass has named it.
            if let Some(named) = state.rx.borrow().kernel_profiles.iter().find(|x| x.pid == pid) {
                p.name.clone_from(&named.name);
                p.user.clone_from(&named.user);
                p.container.clone_from(&named.container);
                p.pod.clone_from(&named.pod);
                p.namespace.clone_from(&named.namespace);
                p.pod_uid.clone_from(&named.pod_uid);
                p.gpus.clone_from(&named.gpus);
                p.overhead_cpu_ratio = named.overhead_cpu_ratio;
            }
            json(&p)
        }
        Ok(Err(_)) => text(
            StatusCode::BAD_GATEWAY,
            format!("the injection library of pid {pid} disconnected before its window ended\n"),
        ),
        Err(_) => text(
            StatusCode::GATEWAY_TIMEOUT,
            format!(
                "no summary from pid {pid} within {:.1} s (is its injection library from this gpuscope release?)\n",
                (window + PROFILE_GRACE).as_secs_f64()
            ),
        ),
    }
}

async fn route(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.uri().path() == "/api/v1/profile" {
        return profile(state, &req).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match req.uri().path() {
        "/metrics" => metrics(state, &req),
        "/healthz" => plain(StatusCode::OK, "ok\n"),
        // Ready once the first sampling pass has been published.
        "/readyz" if state.rx.borrow().timestamp_ms > 0 => plain(StatusCode::OK, "ready\n"),
        "/readyz" => plain(StatusCode::SERVICE_UNAVAILABLE, "no sample yet\n"),
        "/api/v1/profiles" => {
            let snap = state.rx.borrow().clone();
            json(&snap.kernel_profiles)
        }
        "/" => plain(
            StatusCode::OK,
            "gpuscope agent: /metrics /healthz /readyz /api/v1/profiles, POST /api/v1/profile?pid=N&duration_ms=D\n",
        ),
        _ => plain(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Serves the endpoint on `listener` until `shutdown` resolves; with `web`, TLS and basic
/// authentication as its web configuration file says.
pub async fn serve(
    listener: TcpListener,
    rx: watch::Receiver<Arc<NodeSnapshot>>,
    endpoint: Endpoint,
    web: Option<Arc<super::web_config::Watched>>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let state = Arc::new(State { endpoint, rx, scrapes: AtomicU64::new(0), encode_nanos: AtomicU64::new(0) });
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: wait and go on serving.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let state = state.clone();
        // TLS and HTTP/2 as the configuration says when the connection opens; who may ask, at
        // each request (a scraper keeps its connection open for hours).
        let watched = web.clone();
        let web = web.as_ref().map(|w| w.current());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                let cfg = watched.as_ref().map(|w| w.current());
                async move {
                    let Some(cfg) = cfg else {
                        return Ok::<_, std::convert::Infallible>(route(&state, req).await);
                    };
                    if cfg.requires_auth() {
                        let header = WebConfig::credentials(&req);
                        let check = cfg.clone();
                        // bcrypt blocks for tens of milliseconds: off the runtime.
                        let ok =
                            tokio::task::spawn_blocking(move || check.admits(header.as_deref())).await.unwrap_or(false);
                        if !ok {
                            let mut r = WebConfig::unauthorized();
                            cfg.decorate(&mut r);
                            return Ok(r);
                        }
                    }
                    let mut r = route(&state, req).await;
                    cfg.decorate(&mut r);
                    Ok(r)
                }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            if web.as_ref().is_some_and(|w| !w.http2) {
                builder = builder.http1_only();
            }
            match web.as_ref().and_then(|w| w.tls.clone()) {
                Some(acceptor) => {
                    // A client that never finishes its handshake does not hold the task forever.
                    let handshake = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream));
                    match handshake.await {
                        Ok(Ok(tls)) => {
                            let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                        }
                        Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                        Err(_) => tracing::debug!("TLS handshake timed out"),
                    }
                }
                None => {
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                }
            }
        });
    }
}
