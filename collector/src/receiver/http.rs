//! The OTLP/HTTP receiver: `POST /v1/metrics`, protobuf or JSON, optionally gzip.

use crate::ingest::{Ingest, Outcome, Refusal, Transport};
use crate::listener::Peer;
use crate::respond::{Resp, busy, full, json, text};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use prost::Message;
use std::io::Read;
use std::sync::Arc;

/// Answers one request to the OTLP/HTTP listener.
pub async fn handle(ingest: Arc<Ingest>, req: Request<Incoming>) -> Resp {
    if req.uri().path() != "/v1/metrics" {
        return text(StatusCode::NOT_FOUND, "OTLP metrics go to /v1/metrics\n");
    }
    export(&ingest, req).await
}

async fn export(ingest: &Ingest, req: Request<Incoming>) -> Resp {
    let refuse = |reason: Refusal, status: StatusCode, message: String| {
        ingest.counters.refused(reason);
        text(status, message)
    };
    if req.method() != Method::POST {
        return text(StatusCode::METHOD_NOT_ALLOWED, "POST OTLP metrics here\n");
    }
    if !ingest.authorized(req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok())) {
        return refuse(Refusal::HttpUnauthorized, StatusCode::UNAUTHORIZED, "a bearer token is required\n".into());
    }
    if !ingest.rate.allow(req.extensions().get::<Peer>().map(|p| p.0)) {
        let mut r = refuse(
            Refusal::HttpRateLimited,
            StatusCode::TOO_MANY_REQUESTS,
            "too many pushes from this address\n".into(),
        );
        r.headers_mut().insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
        return r;
    }
    let ctype = req.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let is_json = ctype.starts_with("application/json");
    if !is_json && !ctype.starts_with("application/x-protobuf") {
        return refuse(
            Refusal::HttpUnsupportedType,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("unsupported content type {ctype:?}: use application/x-protobuf or application/json\n"),
        );
    }
    // Reading an encoding it does not know as none would hand the decoder compressed bytes.
    let gzip = match req.headers().get(CONTENT_ENCODING).map(|v| v.to_str().map(|s| s.trim().to_ascii_lowercase())) {
        None => false,
        Some(Ok(e)) if e == "gzip" || e == "x-gzip" => true,
        Some(Ok(e)) if e == "identity" || e.is_empty() => false,
        Some(e) => {
            return refuse(
                Refusal::HttpUnsupportedType,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("unsupported content encoding {:?}: send gzip or none\n", e.unwrap_or_default()),
            );
        }
    };
    let collected =
        tokio::time::timeout(ingest.body_read_timeout, Limited::new(req.into_body(), ingest.max_body).collect());
    let Ok(collected) = collected.await else {
        return refuse(
            Refusal::HttpBodyTimeout,
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {} s\n", ingest.body_read_timeout.as_secs_f64()),
        );
    };
    let body = match collected {
        Ok(b) => b.to_bytes(),
        Err(e) => {
            let status = if e.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::BAD_REQUEST
            };
            return refuse(Refusal::HttpTooLarge, status, format!("cannot read the body: {e}\n"));
        }
    };
    let body: Vec<u8> = if gzip {
        let mut out = Vec::new();
        // Bounded: a small gzip bomb must not blow up memory. Every member is read: a gzip
        // stream may be several concatenated (RFC 1952), and other exporters' libraries write them.
        let mut dec = flate2::read::MultiGzDecoder::new(body.as_ref()).take(ingest.max_body as u64 + 1);
        if let Err(e) = dec.read_to_end(&mut out) {
            return refuse(Refusal::HttpBadRequest, StatusCode::BAD_REQUEST, format!("bad gzip body: {e}\n"));
        }
        if out.len() > ingest.max_body {
            return refuse(
                Refusal::HttpTooLarge,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over {} bytes once decompressed\n", ingest.max_body),
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
            return refuse(Refusal::HttpBadRequest, StatusCode::BAD_REQUEST, format!("malformed OTLP request: {e}\n"));
        }
    };
    match ingest.accept(Transport::Http, &req) {
        Outcome::Accepted { rejected, message } => {
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
        Outcome::Busy => busy(),
    }
}
