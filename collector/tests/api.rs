//! The collector in process: OTLP/HTTP in, the typed API out. Every endpoint's answer reads
//! back into `gpuscope_core::api`'s types without losing a field, `Running::subscribe` sees
//! findings open and close, and closed findings evicted from memory are still listed from the
//! store.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use gpuscope_collector::{CollectorConfig, Running, start};
use gpuscope_core::api::{FindingEvent, FindingRecord, JobView, NodeDetail, NodeView};
use gpuscope_core::{GpuSample, NodeInfo, NodeSnapshot};
use prost::Message;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One HTTP/1.1 exchange: (status, body).
fn request(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    s.write_all(body).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let head_end = out.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let status = std::str::from_utf8(&out[9..12]).unwrap().parse().unwrap();
    (status, out[head_end + 4..].to_vec())
}

/// GETs `path` and reads it as `T`, checking that `T` holds every field of the answer.
fn get<T: serde::de::DeserializeOwned + serde::Serialize>(addr: SocketAddr, path: &str) -> T {
    let (status, body) = request(addr, "GET", path, b"");
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    let typed: T = serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{path}: {e}"));
    let raw: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), raw, "{path}: the typed answer round-trips");
    typed
}

fn snap(t_ms: u64, lost_gpu: Option<u32>) -> NodeSnapshot {
    NodeSnapshot {
        node: NodeInfo { hostname: "n0".into(), job: Some("j".into()), ..NodeInfo::default() },
        timestamp_ms: t_ms,
        gpus: (0..4)
            .map(|i| GpuSample {
                index: i,
                uuid: format!("GPU-{i}"),
                model: "NVIDIA L4".into(),
                lost: lost_gpu == Some(i),
                ..GpuSample::default()
            })
            .collect(),
        ..NodeSnapshot::default()
    }
}

fn push(c: &Running, s: &NodeSnapshot) {
    push_all(c, &[s]);
}

fn push_all(c: &Running, s: &[&NodeSnapshot]) {
    let id = gpuscope_exporters::otlp::Identity { instance: "n0".into(), start_unix_nano: 1 };
    let body = gpuscope_exporters::otlp::encode(s, &id).encode_to_vec();
    assert_eq!(request(c.http, "POST", "/v1/metrics", &body).0, 200);
}

fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn gpus_of(list: &[FindingRecord]) -> Vec<u32> {
    list.iter().map(|r| r.finding.scope.gpus[0]).collect()
}

#[test]
fn typed_answers_change_stream_and_findings_evicted_to_the_store() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let c = rt
        .block_on(start(CollectorConfig {
            grpc: local,
            http: local,
            api: local,
            store: Some(dir.path().join("c.db")),
            closed_findings_kept: 1,
            ..CollectorConfig::default()
        }))
        .unwrap();
    let mut events = c.subscribe();
    let mut next_gpu_lost_event = || loop {
        let e =
            rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), events.recv()).await }).unwrap().unwrap();
        if e.record().finding.rule == "gpu-lost" {
            return e;
        }
    };
    // GPUs 0, 1 and 2 fall off the bus in turn and come back: three findings open and close.
    let t0 = 1_700_000_000_000;
    for g in 0..3u32 {
        let t = t0 + u64::from(g) * 100_000;
        push(&c, &snap(t, Some(g)));
        let opened = next_gpu_lost_event();
        assert!(matches!(&opened, FindingEvent::Opened(r) if r.finding.scope.gpus == [g] && r.closed_ms.is_none()));
        // Back, reporting every 5 s for 70 s: the clear period counts time the data covers.
        let back: Vec<NodeSnapshot> = (1..=14).map(|i| snap(t + i * 5_000, None)).collect();
        push_all(&c, &back.iter().collect::<Vec<_>>());
        let closed = next_gpu_lost_event();
        assert!(matches!(&closed, FindingEvent::Closed(r) if r.finding.scope.gpus == [g] && r.closed_ms.is_some()));
    }
    // GPU 3 is lost and stays so.
    push(&c, &snap(t0 + 400_000, Some(3)));
    assert!(matches!(next_gpu_lost_event(), FindingEvent::Opened(_)));

    // Memory holds one closed finding; the other two come from the store once written.
    assert_eq!(c.state.lock().unwrap().findings.iter().filter(|r| r.closed_ms.is_some()).count(), 1);
    let closed: Vec<FindingRecord> = eventually(10, || {
        let l: Vec<FindingRecord> = get(c.api, "/api/v1/findings?active=false&rule=gpu-lost");
        (l.len() == 3).then_some(l)
    });
    assert_eq!(gpus_of(&closed), vec![0, 1, 2]);
    let all: Vec<FindingRecord> = get(c.api, "/api/v1/findings?rule=gpu-lost");
    assert_eq!(gpus_of(&all), vec![0, 1, 2, 3]);
    assert_eq!(all[3].closed_ms, None);
    let newest: Vec<FindingRecord> = get(c.api, "/api/v1/findings?rule=gpu-lost&limit=2");
    assert_eq!(gpus_of(&newest), vec![2, 3]);
    let open: Vec<FindingRecord> = get(c.api, "/api/v1/findings?active=true&node=n0&rule=gpu-lost");
    assert_eq!(gpus_of(&open), vec![3]);
    assert_eq!(request(c.api, "GET", "/api/v1/findings?limit=many", b"").0, 400);

    let nodes: Vec<NodeView> = get(c.api, "/api/v1/nodes");
    assert_eq!(nodes.len(), 1);
    assert_eq!((nodes[0].node.as_str(), nodes[0].job.as_deref(), nodes[0].gpus), ("n0", Some("j"), 4));
    assert_eq!(nodes[0].samples_total, 3 * 15 + 1);
    assert!(!nodes[0].stale);
    let detail: NodeDetail = get(c.api, "/api/v1/nodes/n0");
    assert_eq!(detail.node, nodes[0]);
    assert_eq!(detail.latest.gpus[3].model, "NVIDIA L4");
    assert!(detail.latest.gpus[3].lost);
    assert!(detail.findings.iter().any(|r| r.finding.rule == "gpu-lost" && r.finding.scope.gpus == [3]));
    assert_eq!(request(c.api, "GET", "/api/v1/nodes/n9", b"").0, 404);
    let jobs: Vec<JobView> = get(c.api, "/api/v1/jobs");
    assert_eq!((jobs[0].job.as_str(), jobs[0].nodes.as_slice()), ("j", ["n0".to_string()].as_slice()));
    assert!(jobs[0].findings.contains(&"gpu-lost".to_string()));

    let (status, metrics) = request(c.api, "GET", "/metrics", b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains(
            "gpuscope_finding_active{rule=\"gpu-lost\",severity=\"critical\",node=\"n0\",gpu=\"3\",gpuscope_job=\"j\"} 1"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("gpuscope_collector_requests_total{transport=\"http\"} 7\n"), "{metrics}");
    assert!(metrics.contains("gpuscope_collector_snapshots_total 46\n"), "{metrics}");
    assert!(metrics.contains("gpuscope_collector_nodes{state=\"reporting\"} 1\n"), "{metrics}");
    // With a store, its dropped writes are counted (none: the writer kept up with 7 pushes).
    assert!(metrics.contains("gpuscope_collector_store_writes_dropped_total 0\n"), "{metrics}");
}
