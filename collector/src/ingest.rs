//! The ingest path both receivers share: authorize, decode, queue for the analysis (bounded:
//! a full queue answers "busy" instead of growing), and count the outcome. Counters are atomics,
//! so a request never waits on the state the analysis and the API use.

use crate::decode::{Limit, Limits, decode_with};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::sync::mpsc;

/// A decoded batch on its way to the analysis.
pub type Batch = Vec<gpuscope_core::NodeSnapshot>;

/// The transport an accepted request came over (the `transport` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// OTLP/gRPC.
    Grpc,
    /// OTLP/HTTP.
    Http,
}

impl Transport {
    /// Every transport, in label order (the order `/metrics` lists them).
    pub const ALL: [Transport; 2] = [Transport::Grpc, Transport::Http];

    /// The `transport` label value.
    pub fn label(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
        }
    }
}

/// Why a request was refused (the `reason` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// gRPC: the analysis queue was full.
    GrpcBusy,
    /// gRPC: the client pushed faster than its rate limit.
    GrpcRateLimited,
    /// gRPC: missing or wrong bearer token.
    GrpcUnauthorized,
    /// HTTP: malformed body (protobuf, JSON or gzip).
    HttpBadRequest,
    /// HTTP: the body did not arrive within the body-read timeout.
    HttpBodyTimeout,
    /// HTTP: the analysis queue was full.
    HttpBusy,
    /// HTTP: the client pushed faster than its rate limit.
    HttpRateLimited,
    /// HTTP: body over the limit (before or after decompression).
    HttpTooLarge,
    /// HTTP: missing or wrong bearer token.
    HttpUnauthorized,
    /// HTTP: neither protobuf nor JSON.
    HttpUnsupportedType,
}

impl Refusal {
    /// Every reason, in label order (the order `/metrics` lists them).
    pub const ALL: [Refusal; 10] = [
        Refusal::GrpcBusy,
        Refusal::GrpcRateLimited,
        Refusal::GrpcUnauthorized,
        Refusal::HttpBadRequest,
        Refusal::HttpBodyTimeout,
        Refusal::HttpBusy,
        Refusal::HttpRateLimited,
        Refusal::HttpTooLarge,
        Refusal::HttpUnauthorized,
        Refusal::HttpUnsupportedType,
    ];

    /// The `reason` label value.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::GrpcBusy => "grpc_busy",
            Refusal::GrpcRateLimited => "grpc_rate_limited",
            Refusal::GrpcUnauthorized => "grpc_unauthorized",
            Refusal::HttpBadRequest => "http_bad_request",
            Refusal::HttpBodyTimeout => "http_body_timeout",
            Refusal::HttpBusy => "http_busy",
            Refusal::HttpRateLimited => "http_rate_limited",
            Refusal::HttpTooLarge => "http_too_large",
            Refusal::HttpUnauthorized => "http_unauthorized",
            Refusal::HttpUnsupportedType => "http_unsupported_type",
        }
    }
}

/// The collector's own counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    requests: [AtomicU64; Transport::ALL.len()],
    refused: [AtomicU64; Refusal::ALL.len()],
    points_rejected: AtomicU64,
    snapshots: AtomicU64,
    store_writes_dropped: AtomicU64,
    limited: [AtomicU64; Limit::ALL.len()],
    /// Connections per listener.
    pub connections: Arc<crate::listener::ConnCounters>,
}

impl Counters {
    /// Counts an accepted request.
    pub fn request(&self, t: Transport) {
        self.requests[t as usize].fetch_add(1, Relaxed);
    }

    /// Counts a refused request.
    pub fn refused(&self, r: Refusal) {
        self.refused[r as usize].fetch_add(1, Relaxed);
    }

    /// Counts snapshots handed to the analysis.
    pub fn snapshots_ingested(&self, n: usize) {
        self.snapshots.fetch_add(n as u64, Relaxed);
    }

    /// Accepted requests over `t`.
    pub fn requests(&self, t: Transport) -> u64 {
        self.requests[t as usize].load(Relaxed)
    }

    /// Requests refused for `r`.
    pub fn refusals(&self, r: Refusal) -> u64 {
        self.refused[r as usize].load(Relaxed)
    }

    /// Data points that could not be used.
    pub fn points_rejected(&self) -> u64 {
        self.points_rejected.load(Relaxed)
    }

    /// Snapshots ingested.
    pub fn snapshots(&self) -> u64 {
        self.snapshots.load(Relaxed)
    }

    /// Counts a findings-store write dropped because the store's writer could not keep up.
    pub fn store_write_dropped(&self) {
        self.store_writes_dropped.fetch_add(1, Relaxed);
    }

    /// Counts what a limit refused.
    pub fn limited(&self, why: Limit, n: u64) {
        self.limited[why as usize].fetch_add(n, Relaxed);
    }

    /// What `why` refused so far.
    pub fn limited_total(&self, why: Limit) -> u64 {
        self.limited[why as usize].load(Relaxed)
    }

    /// Findings-store writes dropped.
    pub fn store_writes_dropped(&self) -> u64 {
        self.store_writes_dropped.load(Relaxed)
    }
}

/// A token bucket per client address: `per_s` pushes a second, bursts of twice that (at least
/// 10). One agent pushes once per interval (1–10 s), or faster while it replays a spill queue.
pub struct RateLimit {
    per_s: f64,
    burst: f64,
    buckets: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (f64, std::time::Instant)>>,
}

/// Client addresses tracked at most; beyond, the full (idle) buckets are forgotten first.
const RATE_BUCKETS: usize = 65_536;

impl RateLimit {
    /// `per_s` pushes a second per client (infinite: no limit).
    pub fn new(per_s: f64) -> RateLimit {
        RateLimit { per_s, burst: (per_s * 2.0).max(10.0), buckets: Default::default() }
    }

    /// Whether `client` may push now (and takes one token if so).
    pub fn allow(&self, client: Option<std::net::IpAddr>) -> bool {
        let Some(ip) = client.filter(|_| self.per_s.is_finite()) else { return true };
        let now = std::time::Instant::now();
        let mut b = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if b.len() >= RATE_BUCKETS && !b.contains_key(&ip) {
            let (per_s, burst) = (self.per_s, self.burst);
            b.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * per_s < burst);
            if b.len() >= RATE_BUCKETS {
                b.clear();
            }
        }
        let (tokens, at) = b.entry(ip).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * self.per_s).min(self.burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What an export came to.
#[derive(Debug, PartialEq, Eq)]
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

/// What both receivers share: the queue into the analysis, the limits and the counters.
pub struct Ingest {
    queue: mpsc::Sender<Batch>,
    /// Largest accepted request body (after decompression), bytes.
    pub max_body: usize,
    /// How long a request body may take to arrive.
    pub body_read_timeout: std::time::Duration,
    /// What one push may carry (the receive time is filled in per request).
    pub limits: Limits,
    /// Pushes per second and client address.
    pub rate: RateLimit,
    token: Option<crate::auth::Token>,
    /// The counters `/metrics` shows.
    pub counters: Arc<Counters>,
}

impl Ingest {
    /// An ingest path into `queue`, requiring `token` when set.
    pub fn new(
        queue: mpsc::Sender<Batch>,
        max_body: usize,
        token: Option<crate::auth::Token>,
        counters: Arc<Counters>,
    ) -> Ingest {
        Ingest {
            queue,
            max_body,
            body_read_timeout: std::time::Duration::from_secs(30),
            limits: Limits::NONE,
            rate: RateLimit::new(f64::INFINITY),
            token,
            counters,
        }
    }

    /// Whether an `authorization` header value satisfies the configured token.
    pub fn authorized(&self, header: Option<&str>) -> bool {
        crate::auth::admitted(self.token.as_ref(), header)
    }

    /// Decodes and queues one export, counting the request as accepted over `transport` or
    /// refused as busy.
    pub fn accept(&self, transport: Transport, req: &ExportMetricsServiceRequest) -> Outcome {
        let d = decode_with(req, &Limits { now_ms: crate::state::now_ms(), ..self.limits });
        match self.queue.try_send(d.snapshots) {
            Ok(()) => {
                for why in Limit::ALL {
                    self.counters.limited(why, d.limited[why as usize]);
                }
                self.counters.points_rejected.fetch_add(d.rejected.max(0) as u64, Relaxed);
                self.counters.request(transport);
                Outcome::Accepted { rejected: d.rejected, message: d.reasons.join("; ") }
            }
            Err(_) => {
                self.counters.refused(match transport {
                    Transport::Grpc => Refusal::GrpcBusy,
                    Transport::Http => Refusal::HttpBusy,
                });
                Outcome::Busy
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
    use super::*;

    /// `/metrics` lists labels in this order, as it did when the counters were sorted maps.
    #[test]
    fn labels_are_listed_in_sorted_order_and_index_their_counters() {
        let t: Vec<_> = Transport::ALL.iter().map(|t| t.label()).collect();
        assert!(t.is_sorted(), "{t:?}");
        let r: Vec<_> = Refusal::ALL.iter().map(|r| r.label()).collect();
        assert!(r.is_sorted(), "{r:?}");
        assert!(Transport::ALL.iter().enumerate().all(|(i, t)| *t as usize == i));
        assert!(Refusal::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
    }

    #[test]
    fn a_client_gets_its_burst_then_its_rate() {
        let r = RateLimit::new(5.0);
        let a = Some(std::net::IpAddr::from([10, 0, 0, 1]));
        let allowed = (0..30).filter(|_| r.allow(a)).count();
        assert!((10..=11).contains(&allowed), "a burst of 10: {allowed}");
        assert!(r.allow(Some(std::net::IpAddr::from([10, 0, 0, 2]))), "another client has its own bucket");
        assert!(RateLimit::new(f64::INFINITY).allow(a));
        assert!(r.allow(None), "no address known (in-process): not limited");
    }

    #[test]
    fn a_full_queue_answers_busy_and_both_outcomes_are_counted() {
        let (tx, mut rx) = mpsc::channel(1);
        let ingest = Ingest::new(tx, 1 << 20, crate::auth::Token::new("s3cret"), Arc::default());
        let req = ExportMetricsServiceRequest::default();
        assert!(matches!(ingest.accept(Transport::Http, &req), Outcome::Accepted { rejected: 0, .. }));
        assert_eq!(ingest.accept(Transport::Grpc, &req), Outcome::Busy);
        rx.try_recv().unwrap();
        assert!(matches!(ingest.accept(Transport::Grpc, &req), Outcome::Accepted { .. }));
        let c = &ingest.counters;
        assert_eq!((c.requests(Transport::Http), c.requests(Transport::Grpc)), (1, 1));
        assert_eq!(c.refusals(Refusal::GrpcBusy), 1);
        assert_eq!(c.refusals(Refusal::HttpBusy), 0);
        assert!(ingest.authorized(Some("Bearer s3cret")));
        assert!(!ingest.authorized(Some("Bearer other")));
        assert!(!ingest.authorized(None));
    }
}
