//! The OTLP/gRPC receiver.

use crate::server::{Outcome, Shared, accept};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

struct Receiver(Arc<Shared>);

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let count = |refused: bool, key: &'static str| {
            let mut st = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
            let m = if refused { &mut st.counters.refused } else { &mut st.counters.requests };
            *m.entry(key).or_insert(0) += 1;
        };
        let auth = request.metadata().get("authorization").and_then(|v| v.to_str().ok());
        if !crate::server::authorized(&self.0, auth) {
            count(true, "grpc_unauthorized");
            return Err(Status::unauthenticated("a bearer token is required"));
        }
        match accept(&self.0, request.get_ref()) {
            Outcome::Accepted { rejected, message } => {
                count(false, "grpc");
                Ok(Response::new(ExportMetricsServiceResponse {
                    partial_success: (rejected > 0).then_some(ExportMetricsPartialSuccess {
                        rejected_data_points: rejected,
                        error_message: message,
                    }),
                }))
            }
            Outcome::Busy => {
                count(true, "grpc_busy");
                Err(Status::unavailable("analysis queue full, retry later"))
            }
        }
    }
}

/// Serves OTLP/gRPC on `listener` (gzip accepted, messages up to `max_body` bytes).
pub async fn serve(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    tls: Option<tonic::transport::ServerTlsConfig>,
) -> Result<(), tonic::transport::Error> {
    let max = shared.max_body;
    let svc = MetricsServiceServer::new(Receiver(shared))
        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
        .max_decoding_message_size(max);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .layer(tower::util::MapResponseLayer::new(invalid_argument))
        .add_service(svc)
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
        .await
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
