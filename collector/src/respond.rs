//! Response helpers shared by the OTLP/HTTP receiver and the API.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use hyper::{Response, StatusCode};

/// A response with any body (whole or streamed).
pub type Resp = Response<BoxBody<Bytes, std::convert::Infallible>>;

/// A whole body.
pub fn full(b: impl Into<Bytes>) -> BoxBody<Bytes, std::convert::Infallible> {
    Full::new(b.into()).boxed()
}

/// A plain-text answer.
pub fn text(status: StatusCode, body: impl Into<String>) -> Resp {
    let mut r = Response::new(full(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// A pretty-printed JSON answer.
pub fn json(status: StatusCode, v: &impl serde::Serialize) -> Resp {
    let body = serde_json::to_vec_pretty(v).unwrap_or_default();
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// 503 with `Retry-After: 1`: the analysis queue is full.
pub fn busy() -> Resp {
    let mut r = text(StatusCode::SERVICE_UNAVAILABLE, "analysis queue full, retry later\n");
    r.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("1"));
    r
}
