//! The OTLP/gRPC receiver.

use crate::ingest::{Ingest, Outcome, Refusal, Transport};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The OTLP metrics service over the shared ingest path.
pub struct Receiver(Arc<Ingest>);

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let auth = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
        if !self.0.authorized(auth) {
            self.0.counters.refused(Refusal::GrpcUnauthorized);
            return Err(Status::unauthenticated("a bearer token is required"));
        }
        if !self.0.rate.allow(request.extensions().get::<crate::listener::Peer>().map(|p| p.0)) {
            self.0.counters.refused(Refusal::GrpcRateLimited);
            return Err(Status::resource_exhausted("too many pushes from this address, retry later"));
        }
        match self.0.accept(Transport::Grpc, request.get_ref()) {
            Outcome::Accepted { rejected, message } => Ok(Response::new(ExportMetricsServiceResponse {
                partial_success: (rejected > 0)
                    .then_some(ExportMetricsPartialSuccess { rejected_data_points: rejected, error_message: message }),
            })),
            Outcome::Busy => Err(Status::unavailable("analysis queue full, retry later")),
        }
    }
}

/// The OTLP/gRPC service (gzip accepted, messages up to the ingest's body limit), served by the
/// same accept loop as the HTTP listeners, so the same connection limits and timeouts hold.
pub fn service(ingest: Arc<Ingest>) -> MetricsServiceServer<Receiver> {
    let max = ingest.max_body;
    MetricsServiceServer::new(Receiver(ingest))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(max)
}

/// Answers one request to the OTLP/gRPC listener: a request whose message has not arrived within
/// the body-read timeout gets DEADLINE_EXCEEDED.
pub async fn handle(
    mut svc: MetricsServiceServer<Receiver>,
    body_read_timeout: std::time::Duration,
    req: http::Request<hyper::body::Incoming>,
) -> http::Response<tonic::body::Body> {
    use tower::Service;
    match tokio::time::timeout(body_read_timeout, svc.call(req)).await {
        Ok(Ok(resp)) => invalid_argument(resp),
        Ok(Err(never)) => match never {},
        Err(_) => Status::deadline_exceeded("the request was not received within the body-read timeout").into_http(),
    }
}

/// tonic answers a request it cannot decode with INTERNAL; for a client that is INVALID_ARGUMENT
/// (its request is malformed, retrying will not help), as OTLP's retry rules expect.
fn invalid_argument<B>(mut resp: http::Response<B>) -> http::Response<B> {
    let decode_failure = resp.headers().get("grpc-status").is_some_and(|s| s == "13")
        && resp.headers().get("grpc-message").and_then(|m| m.to_str().ok()).is_some_and(|m| m.contains("decode"));
    if decode_failure {
        resp.headers_mut().insert("grpc-status", http::HeaderValue::from_static("3"));
    }
    resp
}
