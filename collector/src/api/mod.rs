//! The findings API: `/api/v1/nodes`, `/api/v1/nodes/{node}`, `/api/v1/findings`,
//! `/api/v1/jobs`, the change stream `/api/v1/stream`, `/metrics` and `/healthz`. It answers
//! with the typed views of `gpuscope_core::api` and only reads the state: staleness is
//! computed at the time of the answer.

pub mod metrics;
pub mod stream;

use crate::history::FindingFilter;
use crate::ingest::Counters;
use crate::respond::{Resp, json, text};
use crate::state::{State, now_ms};
use crate::store::Store;
use gpuscope_core::api::{FindingEvent, FindingRecord, JobView, NodeDetail, NodeView};
use hyper::body::Incoming;
use hyper::header::{ALLOW, AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Findings `/api/v1/findings` returns without a `limit` parameter.
pub const DEFAULT_LIMIT: usize = 1000;
/// The most findings one answer holds; a larger `limit` is lowered to this.
pub const MAX_LIMIT: usize = 10_000;

/// What the API reads.
pub struct Api {
    /// The state (read only here).
    pub state: Arc<Mutex<State>>,
    /// Finding changes, for the stream.
    pub events: broadcast::Sender<FindingEvent>,
    /// The receivers' counters, for `/metrics`.
    pub counters: Arc<Counters>,
    /// A read connection to the store, for closed findings no longer in memory.
    pub store: Option<Arc<Mutex<Store>>>,
    /// Bearer token every request but `/healthz` must present (`None`: open).
    pub token: Option<crate::auth::Token>,
    /// Nodes to forget, to the analysis loop (the state's only writer).
    pub forget: tokio::sync::mpsc::Sender<crate::analyze::Forget>,
}

impl Api {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Answers one request to the API listener.
pub async fn handle(api: Arc<Api>, req: Request<Incoming>) -> Resp {
    let path = req.uri().path();
    let q = req.uri().query().unwrap_or("");
    let now = now_ms();
    let method = req.method().clone();
    // Node names, GPU serials, PIDs, users, pods: everything but liveness needs the token.
    if path != "/healthz"
        && !crate::auth::admitted(api.token.as_ref(), req.headers().get(AUTHORIZATION).and_then(|v| v.to_str().ok()))
    {
        let mut r = text(StatusCode::UNAUTHORIZED, "a bearer token is required\n");
        r.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        return r;
    }
    let node_path = path.strip_prefix("/api/v1/nodes/");
    if method == Method::DELETE
        && let Some(raw) = node_path
    {
        let Some(name) = percent_decode(raw) else {
            return text(StatusCode::BAD_REQUEST, "the node name is not valid percent-encoded UTF-8\n");
        };
        return forget(&api, name).await;
    }
    // Everything else only reads.
    if method != Method::GET && method != Method::HEAD {
        let allow = if node_path.is_some() { "GET, HEAD, DELETE" } else { "GET, HEAD" };
        let mut r = text(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed here; use {allow}\n"));
        r.headers_mut().insert(ALLOW, HeaderValue::from_static(allow));
        return r;
    }
    match path {
        "/api/v1/stream" => stream::stream(api.events.subscribe()),
        "/api/v1/nodes" => json(StatusCode::OK, &nodes(&api.state(), now)),
        _ if node_path.is_some() => {
            let Some(name) = node_path.and_then(percent_decode) else {
                return text(StatusCode::BAD_REQUEST, "the node name is not valid percent-encoded UTF-8\n");
            };
            match node(&api.state(), &name, now) {
                Some(d) => json(StatusCode::OK, &d),
                None => text(StatusCode::NOT_FOUND, format!("no node {name:?}\n")),
            }
        }
        "/api/v1/findings" => {
            let param = |key| query_param(q, key).map(|v| percent_decode(v).ok_or(key)).transpose();
            let (node, rule) = match (param("node"), param("rule")) {
                (Ok(node), Ok(rule)) => (node, rule),
                (Err(key), _) | (_, Err(key)) => {
                    return text(StatusCode::BAD_REQUEST, format!("{key} is not valid percent-encoded UTF-8\n"));
                }
            };
            let filter =
                FindingFilter { active: query_param(q, "active").map(|v| v == "true" || v == "1"), node, rule };
            let limit = match query_param(q, "limit").map(str::parse::<usize>) {
                None => DEFAULT_LIMIT,
                Some(Ok(n)) => n.min(MAX_LIMIT),
                Some(Err(_)) => return text(StatusCode::BAD_REQUEST, "limit must be a whole number\n"),
            };
            match findings(&api, filter, limit).await {
                Ok(list) => json(StatusCode::OK, &list),
                Err(e) => text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")),
            }
        }
        "/api/v1/jobs" => json(StatusCode::OK, &jobs(&api.state())),
        "/metrics" => text(StatusCode::OK, metrics::render(&api.state(), &api.counters, api.store.is_some(), now)),
        "/healthz" => text(StatusCode::OK, "ok\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// `DELETE /api/v1/nodes/{node}`: 204 once forgotten, 404 when unknown.
async fn forget(api: &Api, name: String) -> Resp {
    let (answer, known) = tokio::sync::oneshot::channel();
    if api.forget.send((name.clone(), answer)).await.is_err() {
        return text(StatusCode::SERVICE_UNAVAILABLE, "the analysis has stopped\n");
    }
    match known.await {
        Ok(true) => {
            tracing::info!(node = ?name, "node forgotten through the API");
            let mut r = text(StatusCode::NO_CONTENT, "");
            *r.body_mut() = crate::respond::full(bytes::Bytes::new());
            r
        }
        Ok(false) => text(StatusCode::NOT_FOUND, format!("no node {name:?}\n")),
        Err(_) => text(StatusCode::SERVICE_UNAVAILABLE, "the analysis has stopped\n"),
    }
}

/// `%XX` escapes decoded (a node called `rack/1` is `/api/v1/nodes/rack%2F1`); `None` when an
/// escape is malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).filter(|h| h.iter().all(u8::is_ascii_hexdigit))?;
            out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn query_param<'a>(q: &'a str, key: &str) -> Option<&'a str> {
    q.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| *k == key).map(|(_, v)| v)
}

/// Every known node, by name.
fn nodes(st: &State, now: u64) -> Vec<NodeView> {
    st.nodes.keys().filter_map(|n| st.node_view(n, now)).collect()
}

/// One node, its newest snapshot and its open findings.
fn node(st: &State, name: &str, now: u64) -> Option<NodeDetail> {
    Some(NodeDetail {
        node: st.node_view(name, now)?,
        latest: (*st.nodes.get(name)?.latest).clone(),
        findings: st.active().filter(|r| r.finding.scope.node.as_deref() == Some(name)).cloned().collect(),
    })
}

/// Every job with its nodes and the rules of its open findings.
fn jobs(st: &State) -> Vec<JobView> {
    let mut jobs: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, v) in &st.nodes {
        if let Some(j) = &v.job {
            jobs.entry(j).or_default().push(name.clone());
        }
    }
    jobs.into_iter()
        .map(|(job, nodes)| JobView {
            findings: st
                .active()
                .filter(|r| r.finding.scope.job.as_deref() == Some(job))
                .map(|r| r.finding.rule.clone())
                .collect(),
            job: job.to_string(),
            nodes,
        })
        .collect()
}

/// The newest `limit` findings matching `filter`, oldest first: from memory, and from the
/// store as well when memory no longer holds every closed finding.
async fn findings(api: &Api, filter: FindingFilter, limit: usize) -> Result<Vec<FindingRecord>, FindingsError> {
    let (memory, complete) = {
        let st = api.state();
        (st.findings.matching(&filter, limit), st.findings.is_complete())
    };
    // Open findings are never evicted, so only a query that may want closed ones reads the store.
    let Some(store) = api.store.clone().filter(|_| !complete && filter.active != Some(true)) else {
        return Ok(memory.into_iter().map(|(_, r)| r).collect());
    };
    let f = filter.clone();
    let stored =
        tokio::task::spawn_blocking(move || store.lock().unwrap_or_else(|e| e.into_inner()).findings(&f, limit))
            .await??;
    Ok(merge(memory, stored, &filter, limit))
}

/// Why the findings could not be listed.
#[derive(Debug, thiserror::Error)]
enum FindingsError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The blocking read was cancelled or panicked.
    #[error("reading the findings store failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Both lists by id, memory winning (the store's copy may lag behind its writer), the newest
/// `limit` that match, oldest first.
fn merge(
    memory: Vec<(i64, FindingRecord)>,
    stored: Vec<(i64, FindingRecord)>,
    filter: &FindingFilter,
    limit: usize,
) -> Vec<FindingRecord> {
    let mut by_id: BTreeMap<i64, FindingRecord> = stored.into_iter().collect();
    by_id.extend(memory);
    let mut out: Vec<FindingRecord> = by_id.into_values().rev().filter(|r| filter.matches(r)).take(limit).collect();
    out.reverse();
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
    use super::*;
    use crate::history::tests::finding;

    #[test]
    fn merge_prefers_memory_and_keeps_the_newest() {
        let rec = |g: u32, closed: Option<u64>| FindingRecord {
            finding: finding("a", "n0", g),
            opened_ms: 1,
            closed_ms: closed,
        };
        let stored = vec![(1, rec(1, Some(5))), (2, rec(2, Some(5))), (3, rec(3, None))];
        let memory = vec![(3, rec(3, Some(9))), (4, rec(4, None))];
        let all = merge(memory.clone(), stored.clone(), &FindingFilter::default(), 10);
        assert_eq!(all.iter().map(|r| r.finding.scope.gpus[0]).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(all[2].closed_ms, Some(9), "memory's copy wins");
        let closed = FindingFilter { active: Some(false), ..Default::default() };
        let two = merge(memory, stored, &closed, 2);
        assert_eq!(two.iter().map(|r| r.finding.scope.gpus[0]).collect::<Vec<_>>(), vec![2, 3]);
    }

    #[test]
    fn names_are_percent_decoded() {
        assert_eq!(percent_decode("rack%2F1").as_deref(), Some("rack/1"));
        assert_eq!(percent_decode("n%C3%A9").as_deref(), Some("né"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%ff"), None, "not UTF-8");
    }

    #[test]
    fn query_parameters_are_read_by_name() {
        assert_eq!(query_param("active=true&node=n0", "node"), Some("n0"));
        assert_eq!(query_param("active=true", "limit"), None);
    }
}
