//! The real agent pushing OTLP to the real collector: the demo, authentication, malformed
//! input, outages with the spill queue, restarts with the findings store, and several nodes in
//! one job.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::{Clock, NodeSpec, collector, eventually, request, start, unix_now};
use std::process::Command;
use std::time::Duration;

fn agent_to(c: &common::Collector, scenario: &str, clock: Clock, extra: &[&str]) -> common::Node {
    let mut spec = NodeSpec::new(scenario, clock);
    spec.extra_args = ["--otlp-endpoint", &format!("http://{}", c.http), "--otlp-interval-ms", "200"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    spec.extra_args.extend(extra.iter().map(|s| s.to_string()));
    start(spec)
}

#[test]
fn demo_prints_the_finding_as_it_opens_and_closes() {
    let out = Command::new(common::bin())
        .args([
            "demo",
            "--headless",
            "--speed",
            "20",
            "--duration",
            "30",
            "--metrics",
            "127.0.0.1:0",
            "--api",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let open = text.lines().find(|l| l.contains("OPEN  input-bound-cpu")).unwrap_or_else(|| panic!("{text}"));
    let close = text.lines().find(|l| l.contains("CLOSE input-bound-cpu")).unwrap_or_else(|| panic!("{text}"));
    // Scenario seconds in brackets: the stall runs 120–360 s; 60 s sustain and 60 s clear. It
    // opens during the stall, not before its sustain, and closes after it, not before its clear
    // (on a busy machine, samples come in sparser and the timers, which count only the time
    // their data covers, run later: the bounds are what the rule means, not a timing).
    let secs = |l: &str| l.trim_start_matches('[').split('s').next().unwrap().trim().parse::<f64>().unwrap();
    assert!((170.0..360.0).contains(&secs(open)), "{open}");
    assert!((400.0..=600.0).contains(&secs(close)), "{close}");
    assert!(text.contains("advice: The input pipeline cannot feed the GPUs"));
    assert_eq!(text.matches("OPEN  input-bound-cpu").count(), 1, "{text}");
    // The node's profiled CUDA process (the workspace is built: its programs are there) plays
    // SIMT SGEMMs: the kernel-level finding names it. Nothing else opens.
    let pid = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("kernel profiles: pid "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{text}"));
    assert!(text.contains(&format!("kernel profiles: pid {pid} plays the CUDA workload of cuda-fp32-sgemm")), "{text}");
    assert!(text.contains("expected findings: input-bound-cpu, fp32-gemm-kernels"), "{text}");
    let kernel = text.lines().find(|l| l.contains("OPEN  fp32-gemm-kernels")).unwrap_or_else(|| panic!("{text}"));
    assert!(kernel.contains(&format!("(its kernels: gpuscope profile --pid {pid} on gpu-node-0)")), "{kernel}");
    let mut opened: Vec<&str> =
        text.lines().filter_map(|l| l.split("OPEN  ").nth(1)?.split_whitespace().next()).collect();
    opened.sort_unstable();
    opened.dedup();
    assert_eq!(opened, ["fp32-gemm-kernels", "input-bound-cpu"], "nothing else opens: {text}");
}

/// The demo's simulated /proc (`$TMPDIR/gpuscope-demo-<pid>`) while it runs, and what is left after.
fn demo_leaves(args: &[&str], stop: impl FnOnce(&std::process::Child)) -> (std::process::ExitStatus, Vec<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let mut demo = Command::new(common::bin())
        .args(["demo", "--headless", "--speed", "20", "--metrics", "127.0.0.1:0", "--api", "127.0.0.1:0"])
        .args(args)
        .env("TMPDIR", tmp.path())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let dir = tmp.path().join(format!("gpuscope-demo-{}", demo.id()));
    eventually(20, || dir.join("proc/stat").exists().then_some(()));
    stop(&demo);
    let status = demo.wait().unwrap();
    let left = std::fs::read_dir(tmp.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned());
    (status, left.filter(|n| n.starts_with("gpuscope-demo-")).collect())
}

#[test]
fn demo_removes_its_directory_when_its_duration_ends() {
    let (status, left) = demo_leaves(&["--duration", "3"], |_| {});
    assert!(status.success(), "{status}");
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn demo_removes_its_directory_on_sigterm_and_ctrl_c() {
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let (status, left) = demo_leaves(&[], |demo| {
            // SAFETY: signals a child process this test started and has not reaped.
            assert_eq!(unsafe { libc::kill(demo.id() as i32, signal) }, 0);
        });
        assert!(status.success(), "signal {signal}: {status}");
        assert!(left.is_empty(), "signal {signal} left behind: {left:?}");
    }
}

#[test]
fn bad_requests_are_refused_and_the_collector_keeps_serving() {
    let c = collector(&["--token", "s3cret"], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"));
    let auth = ("Authorization", "Bearer s3cret");
    let post = |headers: &[(&str, &str)], body: &[u8]| request(&c.http, "POST", "/v1/metrics", headers, body).0;
    let proto = ("Content-Type", "application/x-protobuf");
    assert_eq!(post(&[proto], b""), 401, "no token");
    assert_eq!(post(&[proto, ("Authorization", "Bearer wrong")], b""), 401);
    assert_eq!(post(&[proto, auth], b"\xff\xff\xff\xff garbage"), 400, "malformed protobuf");
    assert_eq!(post(&[proto, auth], &[0x0a, 0x10, 0x0a]), 400, "truncated protobuf");
    assert_eq!(
        post(&[("Content-Type", "text/plain"), auth], b"hello"),
        415,
        "OTLP says 415 for an unsupported content type"
    );
    assert_eq!(post(&[("Content-Type", "application/json"), auth], b"{\"resourceMetrics\": ["), 400, "truncated JSON");
    assert_eq!(post(&[proto, auth, ("Content-Encoding", "gzip")], b"not gzip"), 400);
    let big = vec![0u8; 17 << 20];
    assert_eq!(post(&[proto, auth], &big), 413, "over the 16 MiB limit");
    // An empty, valid request is accepted.
    assert_eq!(post(&[proto, auth], b""), 200);
    assert_eq!(common::get(&c.api, "/healthz", &[]).0, 200, "still serving");
    // The token guards the API too.
    assert_eq!(common::get(&c.api, "/metrics", &[]).0, 401);
    let m = String::from_utf8(common::get(&c.api, "/metrics", &[auth]).2).unwrap();
    assert!(m.contains("gpuscope_collector_refused_total{reason=\"http_bad_request\"} 4"), "{m}");
    assert!(m.contains("gpuscope_collector_refused_total{reason=\"http_unauthorized\"} 2"));
    assert!(m.contains("gpuscope_collector_refused_total{reason=\"http_too_large\"} 1"));
    assert!(m.contains("gpuscope_collector_refused_total{reason=\"http_unsupported_type\"} 1"));
}

/// A gzip body may hold several members (RFC 1952; Go's and zlib's readers read them all), and
/// protobuf messages concatenate: two members, two nodes, both arrive.
#[test]
fn a_gzip_body_of_several_members_is_read_to_the_end() {
    use prost::Message;
    use std::io::Write;
    // The simulator's snapshots are stamped from its fixed epoch (2027-01-15), which may be ahead
    // of the clock: allow ten years of skew.
    let c = collector(&["--max-clock-skew-s", "315360000"], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"));
    let sim = gpuscope_sim::Simulation::new(gpuscope_sim::Scenario::load("healthy-bf16-training").unwrap(), 0).unwrap();
    let mut body = Vec::new();
    for host in ["gz-a", "gz-b"] {
        let mut s = gpuscope_sim::snapshot::snapshot(&sim, 10.0);
        s.node.hostname = host.into();
        let id = gpuscope_exporters::otlp::Identity { instance: host.into(), start_unix_nano: 1 };
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&gpuscope_exporters::otlp::encode(&[&s], &id).encode_to_vec()).unwrap();
        body.extend(gz.finish().unwrap());
    }
    let headers = [("Content-Type", "application/x-protobuf"), ("Content-Encoding", "gzip")];
    assert_eq!(request(&c.http, "POST", "/v1/metrics", &headers, &body).0, 200);
    let nodes = eventually(10, || {
        let v = c.api_json("/api/v1/nodes");
        let names: Vec<String> = v.as_array()?.iter().filter_map(|n| n["node"].as_str().map(String::from)).collect();
        (names.len() == 2).then_some(names)
    });
    assert_eq!(nodes, vec!["gz-a", "gz-b"]);
    // The node list carries what the fleet view shows: mean SM activity and total power of the
    // newest sample.
    let s = gpuscope_sim::snapshot::snapshot(&sim, 10.0);
    let sm: f64 = s.gpus.iter().filter_map(|g| g.sm_active_ratio).sum::<f64>() / s.gpus.len() as f64;
    let watts: f64 = s.gpus.iter().filter_map(|g| g.power_watts).sum();
    let v = c.api_json("/api/v1/nodes");
    for n in v.as_array().unwrap() {
        assert!((n["sm_active_mean"].as_f64().unwrap() - sm).abs() < 1e-12, "{n}");
        assert!((n["power_watts"].as_f64().unwrap() - watts).abs() < 1e-9, "{n}");
    }
}

#[test]
fn an_outage_loses_nothing_and_a_restart_keeps_the_history() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("collector.db");
    let spill = dir.path().join("spill");
    let db_s = db.to_str().unwrap().to_string();
    let c = collector(&["--store", &db_s], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"));
    let (grpc, http, api) = (c.grpc.clone(), c.http.clone(), c.api.clone());
    // GPU 3 falls off the bus 2 s from now: a finding that opens at once.
    let node = agent_to(
        &c,
        "gpu-lost",
        Clock::Running { start: unix_now() - 118.0 },
        &["--otlp-spill-dir", spill.to_str().unwrap()],
    );
    eventually(20, || c.rules().contains(&"gpu-lost".to_string()).then_some(()));
    let before = c.api_json("/api/v1/nodes/lost-node-0");
    let last_before = before["node"]["last_sample_ms"].as_u64().unwrap();
    // Outage: the collector goes away for 3 s while the agent keeps sampling.
    drop(c);
    std::thread::sleep(Duration::from_secs(3));
    let queued = std::fs::read_dir(&spill).unwrap().count();
    assert!(queued >= 10, "batches wait on disk during the outage: {queued}");
    let c = collector(&["--store", &db_s], (&grpc, &http, &api));
    let n = eventually(20, || {
        let n = c.api_json("/api/v1/nodes/lost-node-0");
        (n["node"]["samples_total"].as_u64().unwrap_or(0) > queued as u64).then_some(n)
    });
    // The new collector's history starts where the old one's ended: the samples taken during
    // the 3 s outage arrive from the spill queue, in order. (Without the queue the first sample
    // would come after the outage, ≥ 3 s later.) The bound is half the outage rather than the
    // 200 ms interval: a pass the busy machine delays is no loss, and the agent's own counters
    // below say whether anything was lost.
    let first_after = n["node"]["first_sample_ms"].as_u64().unwrap();
    assert!(
        first_after > last_before && first_after - last_before < 1500,
        "gap across the outage {} ms",
        first_after - last_before
    );
    assert!(n["node"]["max_gap_ms"].as_u64().unwrap() < 1500, "{n}");
    assert_eq!(n["node"]["out_of_order_total"], 0);
    // The queue drains (a batch may be in flight at any one moment), and the agent dropped or
    // had rejected no batch.
    eventually(10, || (std::fs::read_dir(&spill).unwrap().count() == 0).then_some(()));
    let m = node.metrics();
    assert_eq!(m.one("gpuscope_otlp_batches_dropped_total", &[]), 0.0);
    assert_eq!(m.one("gpuscope_otlp_batches_rejected_total", &[]), 0.0);
    // The history survived the restart: the finding is still there, still open, one record.
    let f = c.api_json("/api/v1/findings?rule=gpu-lost");
    assert_eq!(f.as_array().unwrap().len(), 1, "{f}");
    assert_eq!(f[0]["closed_ms"], serde_json::Value::Null);
    assert_eq!(f[0]["scope"]["gpus"], serde_json::json!([3]));
    drop(node);
}

#[test]
fn several_nodes_one_job_and_the_straggler_is_named() {
    let c = collector(&["--time-scale", "0.1"], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"));
    let start_at = unix_now();
    let mut nodes = Vec::new();
    for n in 0..4 {
        let mut spec = NodeSpec::new("straggler", Clock::Running { start: start_at });
        spec.node = n;
        spec.interval_ms = 100;
        spec.extra_env = vec![("GPUSCOPE_SIM_SPEED".into(), "10".into())];
        // The scheduler's job label, as a platform would set it (GPUSCOPE_JOB or the config).
        spec.extra_args =
            ["--otlp-endpoint", &format!("http://{}", c.http), "--otlp-interval-ms", "100", "--job", "llm-4node"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        nodes.push(start(spec));
    }
    let f = eventually(40, || {
        let f = c.api_json("/api/v1/findings?rule=straggler");
        (!f.as_array().unwrap().is_empty()).then_some(f)
    });
    assert_eq!(f[0]["scope"]["node"], "strag-2");
    assert_eq!(f[0]["scope"]["job"], "llm-4node");
    let jobs = c.api_json("/api/v1/jobs");
    assert_eq!(jobs[0]["job"], "llm-4node");
    assert_eq!(jobs[0]["nodes"], serde_json::json!(["strag-0", "strag-1", "strag-2", "strag-3"]));
    assert_eq!(c.rules(), vec!["straggler".to_string()], "nothing else opens");
    let m = String::from_utf8(common::get(&c.api, "/metrics", &[]).2).unwrap();
    assert!(m.contains("gpuscope_finding_active{rule=\"straggler\",severity=\"warning\",node=\"strag-2\",gpu=\"0,1,2,3\",gpuscope_job=\"llm-4node\"} 1"), "{m}");
    // No store, so no store writes to count: the series is absent, not 0.
    assert!(!m.contains("gpuscope_collector_store_writes_dropped_total"), "{m}");
    drop(nodes);
}

#[test]
fn grpc_push_with_a_bearer_token_and_the_agents_own_counters() {
    let c = collector(&["--token", "t0ken"], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"));
    let spec = |token: &str| {
        let mut s = NodeSpec::new("healthy-inference", Clock::Running { start: unix_now() - 30.0 });
        s.extra_args = [
            "--otlp-endpoint",
            &format!("http://{}", c.grpc),
            "--otlp-protocol",
            "grpc",
            "--otlp-interval-ms",
            "200",
            "--hostname",
            token,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        s.extra_env = vec![("GPUSCOPE_OTLP_HEADERS".into(), format!("authorization=Bearer {token}"))];
        s
    };
    let good = start(spec("t0ken"));
    let bad = start(spec("wrong"));
    let n = eventually(20, || {
        let (status, _, body) = common::get(&c.api, "/api/v1/nodes/t0ken", &[("Authorization", "Bearer t0ken")]);
        (status == 200).then(|| serde_json::from_slice::<serde_json::Value>(&body).unwrap())
    });
    assert_eq!(n["latest"]["gpus"][0]["model"], "NVIDIA L4");
    // The counters are read while batches keep flowing: wait for a moment between sends (the
    // collector can hold a batch before the agent has counted its answer).
    eventually(10, || {
        let m = good.metrics();
        (m.one("gpuscope_otlp_batches_sent_total", &[]) >= 1.0 && m.one("gpuscope_otlp_queue_batches", &[]) == 0.0)
            .then_some(())
    });
    // A wrong token is refused as UNAUTHENTICATED: not retried, not queued, counted.
    let mb = eventually(20, || {
        let m = bad.metrics();
        (m.one("gpuscope_otlp_batches_rejected_total", &[]) >= 1.0 && m.one("gpuscope_otlp_queue_batches", &[]) == 0.0)
            .then_some(m)
    });
    assert_eq!(mb.one("gpuscope_otlp_batches_sent_total", &[]), 0.0);
    assert_eq!(common::get(&c.api, "/api/v1/nodes/wrong", &[("Authorization", "Bearer t0ken")]).0, 404);
}

#[test]
fn finding_changes_stream_as_server_sent_events() {
    use std::io::{BufRead, BufReader, Write};
    let c = collector(&[], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"));
    let mut s = std::net::TcpStream::connect(&c.api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET /api/v1/stream HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let _node = agent_to(&c, "gpu-lost", Clock::Running { start: unix_now() - 119.0 }, &[]);
    let mut lines = BufReader::new(s).lines().map_while(Result::ok);
    assert!(lines.next().unwrap().contains("200"));
    let mut got = Vec::new();
    for line in lines.by_ref() {
        if line.starts_with("event: ") || line.starts_with("data: ") {
            got.push(line.clone());
        }
        if line.starts_with("data: ") && line.contains("\"rule\":\"xid-error\"") || got.len() >= 4 {
            break;
        }
    }
    assert!(got.iter().any(|l| l == "event: opened"), "{got:?}");
    let data = got.iter().find(|l| l.contains("gpu-lost")).unwrap_or_else(|| panic!("{got:?}"));
    let f: serde_json::Value = serde_json::from_str(data.trim_start_matches("data: ")).unwrap();
    assert_eq!(f["scope"]["gpus"], serde_json::json!([3]));
    assert_eq!(f["severity"], "critical");
}

/// A collector serving OTLP and its API over TLS with a certificate from `certificates`; with
/// the CA's and the server certificate's files.
fn tls_collector(dir: &std::path::Path) -> (common::Collector, std::path::PathBuf, std::path::PathBuf) {
    let (ca, cert, key) = common::certificates(dir);
    let c = collector(
        &["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()],
        ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"),
    );
    (c, ca, cert)
}

#[test]
fn otlp_over_tls_on_both_transports() {
    let dir = tempfile::tempdir().unwrap();
    let (c, ca, cert) = tls_collector(dir.path());
    let port = |a: &str| a.rsplit(':').next().unwrap().to_string();
    let mut nodes = Vec::new();
    for (protocol, addr, host) in [("http/protobuf", &c.http, "tls-http"), ("grpc", &c.grpc, "tls-grpc")] {
        let mut s = NodeSpec::new("healthy-inference", Clock::Running { start: unix_now() - 30.0 });
        s.extra_args = [
            "--otlp-endpoint",
            &format!("https://localhost:{}", port(addr)),
            "--otlp-protocol",
            protocol,
            "--otlp-interval-ms",
            "200",
            "--hostname",
            host,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        s.extra_env = vec![("GPUSCOPE_OTLP_CA_FILE".into(), ca.to_str().unwrap().into())];
        nodes.push(start(s));
    }
    // The API is TLS too: read it through the agents' counters and a plain request that fails.
    let sent = |n: &common::Node| n.metrics().one("gpuscope_otlp_batches_sent_total", &[]);
    eventually(20, || (sent(&nodes[0]) >= 2.0 && sent(&nodes[1]) >= 2.0).then_some(()));
    for n in &nodes {
        // Between sends the queue is empty (a batch may be in flight at any one moment).
        eventually(10, || (n.metrics().one("gpuscope_otlp_queue_batches", &[]) == 0.0).then_some(()));
    }
    // Plain HTTP to the TLS port gets no OTLP answer.
    let plain = std::panic::catch_unwind(|| {
        request(&c.http, "POST", "/v1/metrics", &[("Content-Type", "application/x-protobuf")], b"").0
    });
    assert!(plain.map_or(true, |s| s != 200), "a plain-text request must not be served");
    // An agent without the CA cannot push (and says why in its counters).
    let mut s = NodeSpec::new("healthy-inference", Clock::Running { start: unix_now() - 30.0 });
    s.extra_args = ["--otlp-endpoint", &format!("https://localhost:{}", port(&c.http)), "--otlp-interval-ms", "200"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    s.extra_env = vec![("GPUSCOPE_OTLP_CA_FILE".into(), cert.to_str().unwrap().into())];
    let wrong = start(s);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(wrong.metrics().one("gpuscope_otlp_batches_sent_total", &[]), 0.0, "a server certificate is not a CA");
}

#[test]
fn top_fleet_client_reads_the_api_and_its_event_stream_over_tls() {
    use gpuscope_core::api::NodeView;
    use gpuscope_tui::fleet::{Client, FleetError};
    let dir = tempfile::tempdir().unwrap();
    let (c, ca, cert) = tls_collector(dir.path());
    let port = |a: &str| a.rsplit(':').next().unwrap().to_string();
    // GPU 3 falls off the bus 3 s after the agent starts: a finding opens while the stream is read.
    let mut s = NodeSpec::new("gpu-lost", Clock::Running { start: unix_now() - 117.0 });
    s.extra_args = ["--otlp-endpoint", &format!("https://localhost:{}", port(&c.http)), "--otlp-interval-ms", "200"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    s.extra_env = vec![("GPUSCOPE_OTLP_CA_FILE".into(), ca.to_str().unwrap().into())];
    let _node = start(s);
    let url = format!("https://localhost:{}", port(&c.api));
    let client = Client::new(&url, Some("secret".into()), Some(&ca)).unwrap();
    let stream = client.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = stream.events(|kind, data| {
            let _ = tx.send((kind.to_string(), data.to_string()));
            kind != "opened"
        });
    });
    let nodes: Vec<NodeView> = eventually(20, || {
        client.get::<Vec<NodeView>>("/api/v1/nodes").ok().filter(|n| n.iter().any(|v| v.node == "lost-node-0"))
    });
    assert_eq!(nodes.len(), 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let opened = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let (kind, data) = rx.recv_timeout(left).expect("an opened event over TLS");
        if kind == "opened" {
            break data;
        }
    };
    assert!(opened.contains("gpu-lost"), "{opened}");
    // A certificate the given CA did not sign is refused: here the server's own certificate
    // stands in for a CA.
    let wrong = Client::new(&url, None, Some(&cert)).unwrap();
    let e = wrong.get::<Vec<NodeView>>("/api/v1/nodes").unwrap_err();
    assert!(matches!(e, FleetError::Unreachable(_)), "{e}");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    // Plain HTTP to the TLS port gets no answer it could mistake for the API.
    let plain = Client::new(&format!("http://127.0.0.1:{}", port(&c.api)), None, None).unwrap();
    assert!(plain.get::<Vec<NodeView>>("/api/v1/nodes").is_err());
}
