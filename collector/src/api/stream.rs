//! `GET /api/v1/stream`: one server-sent event per finding opened or closed.

use crate::respond::Resp;
use bytes::Bytes;
use gpuscope_core::api::{FindingClosed, FindingEvent, FindingOpened};
use http_body_util::{BodyExt, StreamBody};
use hyper::Response;
use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use tokio::sync::broadcast;
use tokio_stream::StreamExt;

/// The event stream of `changes`; a client that falls behind skips what it missed.
pub fn stream(changes: broadcast::Receiver<FindingEvent>) -> Resp {
    let events = tokio_stream::wrappers::BroadcastStream::new(changes).filter_map(|e| {
        let frame = sse(&e.ok()?)?;
        Some(Ok::<_, std::convert::Infallible>(hyper::body::Frame::data(Bytes::from(frame))))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(events)));
    r.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    r.headers_mut().insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// One event: `opened` carries the finding's fields and when it opened, `closed` the finding
/// and when it opened and closed.
fn sse(e: &FindingEvent) -> Option<String> {
    let (kind, body) = match e {
        FindingEvent::Opened(r) => (
            "opened",
            serde_json::to_string(&FindingOpened { finding: r.finding.clone(), opened_ms: Some(r.opened_ms) }).ok()?,
        ),
        FindingEvent::Closed(r) => (
            "closed",
            serde_json::to_string(&FindingClosed {
                closed_ms: r.closed_ms?,
                opened_ms: Some(r.opened_ms),
                finding: r.finding.clone(),
            })
            .ok()?,
        ),
    };
    Some(format!("event: {kind}\ndata: {body}\n\n"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
    use super::*;
    use crate::history::tests::finding;
    use gpuscope_core::api::FindingRecord;

    #[test]
    fn events_carry_the_finding_and_the_close_time() {
        let f = finding("gpu-lost", "n0", 3);
        let open = FindingRecord { finding: f.clone(), opened_ms: 10, closed_ms: None };
        let text = sse(&FindingEvent::Opened(open.clone())).unwrap();
        let data: serde_json::Value =
            serde_json::from_str(text.strip_prefix("event: opened\ndata: ").unwrap().trim_end()).unwrap();
        // The finding's own fields (a reader of the finding alone still reads it), and when.
        let mut want = serde_json::to_value(&f).unwrap();
        want["opened_ms"] = serde_json::json!(10);
        assert_eq!(data, want);
        assert_eq!(serde_json::from_value::<gpuscope_core::Finding>(data).unwrap(), f);
        let text = sse(&FindingEvent::Closed(FindingRecord { closed_ms: Some(20), ..open })).unwrap();
        let data: serde_json::Value =
            serde_json::from_str(text.strip_prefix("event: closed\ndata: ").unwrap().trim_end()).unwrap();
        assert_eq!(data, serde_json::json!({ "finding": f, "opened_ms": 10, "closed_ms": 20 }));
    }
}
