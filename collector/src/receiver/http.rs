//! HTTP: the OTLP/HTTP receiver (`POST /v1/metrics`, protobuf or JSON, gzip) and the findings
//! API (`/api/v1/…`, `/metrics`, `/healthz`).

use crate::decode::decode;
use crate::state::State;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::Incoming;
use hyper::header::{CONTENT_ENCODING, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use std::io::Read;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A decoded batch on its way to the analysis.
pub type Batch = Vec<gpuscope_core::NodeSnapshot>;

/// What the HTTP handlers share.
pub struct Shared {
    /// The state the API reads.
    pub state: Arc<Mutex<State>>,
    /// The bounded queue into the analysis.
    pub queue: mpsc::Sender<Batch>,
    /// Largest accepted request body (after decompression), bytes.
    pub max_body: usize,
    /// Bearer token required of OTLP pushes.
    pub token: Option<String>,
    /// Finding changes, for the server-sent-events stream.
    pub changes: tokio::sync::broadcast::Sender<gpuscope_analysis::Change>,
}

/// Whether an `authorization` header value satisfies the configured token.
pub fn authorized(shared: &Shared, header: Option<&str>) -> bool {
    match &shared.token {
        None => true,
        Some(t) => header.and_then(|h| h.strip_prefix("Bearer ")).is_some_and(|h| h.trim() == t),
    }
}

type Resp = Response<BoxBody<Bytes, std::convert::Infallible>>;

fn full(b: impl Into<Bytes>) -> BoxBody<Bytes, std::convert::Infallible> {
    Full::new(b.into()).boxed()
}

fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    let mut r = Response::new(full(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

fn json(status: StatusCode, v: &impl serde::Serialize) -> Resp {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn count(shared: &Shared, refused: bool, key: &'static str) {
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    let m = if refused { &mut st.counters.refused } else { &mut st.counters.requests };
    *m.entry(key).or_insert(0) += 1;
}

/// Decodes, queues and answers one OTLP export; shared by the HTTP and gRPC receivers.
pub enum Outcome {
    /// Queued; `rejected` points were unusable.
    Accepted {
        /// Unusable points.
        rejected: i64,
        /// Why.
        message: String,
    },
    /// The queue is full: try again later.
    Busy,
}

/// Queues a decoded request.
pub fn accept(shared: &Shared, req: &ExportMetricsServiceRequest) -> Outcome {
    let d = decode(req);
    let points: i64 = d.snapshots.len() as i64;
    match shared.queue.try_send(d.snapshots) {
        Ok(()) => {
            let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
            st.counters.points_rejected += d.rejected as u64;
            st.counters.points_accepted += points as u64;
            Outcome::Accepted { rejected: d.rejected, message: d.reasons.join("; ") }
        }
        Err(_) => Outcome::Busy,
    }
}

async fn otlp(shared: &Shared, req: Request<Incoming>) -> Resp {
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "POST OTLP metrics here\n");
    }
    if !authorized(shared, req.headers().get(hyper::header::AUTHORIZATION).and_then(|v| v.to_str().ok())) {
        count(shared, true, "http_unauthorized");
        return text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
    }
    let ctype = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let is_json = ctype.starts_with("application/json");
    if !is_json && !ctype.starts_with("application/x-protobuf") {
        count(shared, true, "http_unsupported_type");
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content type {ctype:?}: use application/x-protobuf or application/json\n"),
        );
    }
    let gzip = req.headers().get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()) == Some("gzip");
    let body = match Limited::new(req.into_body(), shared.max_body).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            count(shared, true, "http_too_large");
            let status = if e.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return text(status, format!("cannot read the body: {e}\n"));
        }
    };
    let body: Vec<u8> = if gzip {
        let mut out = Vec::new();
        // Bounded: a small gzip bomb must not blow up memory. Every member is read: a gzip
        // stream may be several concatenated (RFC 1952), and other exporters' libraries write them.
        let mut dec = flate2::read::MultiGzDecoder::new(body.as_ref()).take(shared.max_body as u64 + 1);
        if let Err(e) = dec.read_to_end(&mut out) {
            count(shared, true, "http_bad_request");
            return text(StatusCode::BAD_REQUEST, format!("bad gzip body: {e}\n"));
        }
        if out.len() > shared.max_body {
            count(shared, true, "http_too_large");
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over {} bytes once decompressed\n", shared.max_body),
            );
        }
        out
    } else {
        body.to_vec()
    };
    let parsed: Result<ExportMetricsServiceRequest, String> = if is_json {
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    } else {
        ExportMetricsServiceRequest::decode(body.as_slice()).map_err(|e| e.to_string())
    };
    let req = match parsed {
        Ok(r) => r,
        Err(e) => {
            count(shared, true, "http_bad_request");
            return text(StatusCode::BAD_REQUEST, format!("malformed OTLP request: {e}\n"));
        }
    };
    match accept(shared, &req) {
        Outcome::Accepted { rejected, message } => {
            count(shared, false, "http");
            let resp = ExportMetricsServiceResponse {
                partial_success: (rejected > 0)
                    .then_some(ExportMetricsPartialSuccess { rejected_data_points: rejected, error_message: message }),
            };
            if is_json {
                json(StatusCode::OK, &resp)
            } else {
                let mut r = Response::new(full(resp.encode_to_vec()));
                r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/x-protobuf"));
                r
            }
        }
        Outcome::Busy => {
            count(shared, true, "http_busy");
            let mut r = text(StatusCode::SERVICE_UNAVAILABLE, "analysis queue full, retry later\n");
            r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
            r
        }
    }
}

fn query_param<'a>(q: &'a str, key: &str) -> Option<&'a str> {
    q.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// `GET /api/v1/stream`: one server-sent event per finding opened or closed.
fn stream(shared: &Shared) -> Resp {
    use tokio_stream::StreamExt;
    let events = tokio_stream::wrappers::BroadcastStream::new(shared.changes.subscribe()).filter_map(|c| {
        let c = c.ok()?;
        let (kind, body) = match &c {
            gpuscope_analysis::Change::Opened(f) => ("opened", serde_json::to_string(f).ok()?),
            gpuscope_analysis::Change::Closed { finding, at_ms } => {
                ("closed", serde_json::to_string(&serde_json::json!({ "finding": finding, "closed_ms": at_ms })).ok()?)
            }
        };
        Some(Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(format!(
            "event: {kind}\ndata: {body}\n\n"
        )))))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(events)));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut().insert(hyper::header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

fn api(shared: &Shared, req: &Request<Incoming>) -> Resp {
    let path = req.uri().path();
    if path == "/api/v1/stream" {
        return stream(shared);
    }
    let q = req.uri().query().unwrap_or("");
    let mut st = shared.state.lock().unwrap_or_else(|e| e.into_inner());
    st.check_liveness();
    match path {
        "/api/v1/nodes" => json(StatusCode::OK, &st.nodes.values().collect::<Vec<_>>()),
        p if p.starts_with("/api/v1/nodes/") => {
            let name = &p["/api/v1/nodes/".len()..];
            match st.nodes.get(name) {
                Some(v) => {
                    let findings: Vec<_> =
                        st.active().filter(|r| r.finding.scope.node.as_deref() == Some(name)).collect();
                    json(StatusCode::OK, &serde_json::json!({ "node": v, "latest": *v.latest, "findings": findings }))
                }
                None => text(StatusCode::NOT_FOUND, format!("no node {name:?}\n")),
            }
        }
        "/api/v1/findings" => {
            let active = query_param(q, "active").map(|v| v == "true" || v == "1");
            let node = query_param(q, "node");
            let rule = query_param(q, "rule");
            let list: Vec<_> = st
                .findings
                .iter()
                .filter(|r| active.is_none_or(|a| a == r.closed_ms.is_none()))
                .filter(|r| node.is_none_or(|n| r.finding.scope.node.as_deref() == Some(n)))
                .filter(|r| rule.is_none_or(|x| r.finding.rule == x))
                .collect();
            json(StatusCode::OK, &list)
        }
        "/api/v1/jobs" => {
            let mut jobs: std::collections::BTreeMap<&str, Vec<&str>> = std::collections::BTreeMap::new();
            for v in st.nodes.values() {
                if let Some(j) = &v.job {
                    jobs.entry(j).or_default().push(&v.node);
                }
            }
            let list: Vec<_> = jobs
                .iter()
                .map(|(j, members)| {
                    let findings: Vec<_> = st
                        .active()
                        .filter(|r| r.finding.scope.job.as_deref() == Some(*j))
                        .map(|r| &r.finding.rule)
                        .collect();
                    serde_json::json!({ "job": j, "nodes": members, "findings": findings })
                })
                .collect();
            json(StatusCode::OK, &list)
        }
        "/metrics" => text(StatusCode::OK, metrics(&st)),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// Findings and the collector's own health, in Prometheus text format.
pub fn metrics(st: &State) -> String {
    let mut out = String::from(
        "# HELP gpuscope_finding_active 1 while a finding is open.\n# TYPE gpuscope_finding_active gauge\n",
    );
    for r in st.active() {
        let f = &r.finding;
        let gpus: Vec<String> = f.scope.gpus.iter().map(u32::to_string).collect();
        out.push_str(&format!(
            "gpuscope_finding_active{{rule=\"{}\",severity=\"{}\",node=\"{}\",gpu=\"{}\",job=\"{}\"}} 1\n",
            esc(&f.rule),
            f.severity.as_str(),
            esc(f.scope.node.as_deref().unwrap_or("")),
            gpus.join(","),
            esc(f.scope.job.as_deref().unwrap_or(""))
        ));
    }
    out.push_str("# HELP gpuscope_collector_nodes Nodes known, by liveness.\n# TYPE gpuscope_collector_nodes gauge\n");
    let stale = st.nodes.values().filter(|v| v.stale).count();
    out.push_str(&format!("gpuscope_collector_nodes{{state=\"reporting\"}} {}\n", st.nodes.len() - stale));
    out.push_str(&format!("gpuscope_collector_nodes{{state=\"stale\"}} {stale}\n"));
    out.push_str("# HELP gpuscope_collector_requests_total OTLP requests accepted, by transport.\n# TYPE gpuscope_collector_requests_total counter\n");
    for (k, v) in &st.counters.requests {
        out.push_str(&format!("gpuscope_collector_requests_total{{transport=\"{k}\"}} {v}\n"));
    }
    out.push_str("# HELP gpuscope_collector_refused_total OTLP requests refused, by reason.\n# TYPE gpuscope_collector_refused_total counter\n");
    for (k, v) in &st.counters.refused {
        out.push_str(&format!("gpuscope_collector_refused_total{{reason=\"{k}\"}} {v}\n"));
    }
    out.push_str(&format!(
        "# HELP gpuscope_collector_snapshots_total Node snapshots ingested.\n# TYPE gpuscope_collector_snapshots_total counter\ngpuscope_collector_snapshots_total {}\n",
        st.counters.snapshots
    ));
    out.push_str(&format!(
        "# HELP gpuscope_collector_rejected_points_total Data points that could not be used.\n# TYPE gpuscope_collector_rejected_points_total counter\ngpuscope_collector_rejected_points_total {}\n",
        st.counters.points_rejected
    ));
    out
}

/// Serves OTLP/HTTP (when `otlp`) or the API on `listener`, over TLS with `tls`.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    otlp_endpoint: bool,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let shared = shared.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let shared = shared.clone();
                async move {
                    let resp = if otlp_endpoint {
                        if req.uri().path() == "/v1/metrics" {
                            otlp(&shared, req).await
                        } else {
                            text(StatusCode::NOT_FOUND, "OTLP metrics go to /v1/metrics\n")
                        }
                    } else {
                        api(&shared, &req)
                    };
                    Ok::<_, std::convert::Infallible>(resp)
                }
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
