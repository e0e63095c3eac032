//! `loadgen`: replays realistic OTLP from N simulated nodes into a real `gpuscope collector`
//! (started here, as its own process, so its CPU and memory are measured alone) and reports
//! data points/s per core with analysis on, finding latency, memory per tracked node, and the
//! raw decode rate of the same payloads on one core (the ceiling), all from the same run.
//!
//! cargo run --release -p gpuscope-bench --bin loadgen -- --nodes 1000 --steps 30

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use gpuscope_core::NodeSnapshot;
use gpuscope_exporters::otlp::{Identity, encode};
use gpuscope_sim::{Scenario, Simulation};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    nodes: usize,
    steps: usize,
    interval_s: u64,
    concurrency: usize,
    latency_probes: usize,
    gpuscope: String,
}

fn args() -> Result<Args> {
    let mut a =
        Args { nodes: 1000, steps: 30, interval_s: 10, concurrency: 16, latency_probes: 50, gpuscope: String::new() };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--nodes" => a.nodes = val.parse().context("--nodes")?,
            "--steps" => a.steps = val.parse().context("--steps")?,
            "--interval-s" => a.interval_s = val.parse().context("--interval-s")?,
            "--concurrency" => a.concurrency = val.parse().context("--concurrency")?,
            "--latency-probes" => a.latency_probes = val.parse().context("--latency-probes")?,
            "--gpuscope" => a.gpuscope = val,
            other => bail!("unknown argument {other}"),
        }
        i += 2;
    }
    if a.gpuscope.is_empty() {
        let exe = std::env::current_exe()?;
        a.gpuscope = exe.with_file_name("gpuscope").display().to_string();
    }
    Ok(a)
}

fn proc_cpu_s(pid: u32) -> f64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = s.rsplit_once(')').map(|x| x.1).unwrap_or("").split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) / 100.0
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn points(req: &opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest) -> usize {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.len(),
            Some(Data::Sum(s)) => s.data_points.len(),
            _ => 0,
        })
        .sum()
}

/// The body one node pushes at one step: its own host name and timestamp.
fn body(template: &NodeSnapshot, node: usize, step: usize, interval_s: u64, lost: bool) -> Vec<u8> {
    let mut s = template.clone();
    s.node.hostname = format!("node-{node:05}");
    s.timestamp_ms = gpuscope_sim::snapshot::T0_MS + step as u64 * interval_s * 1000;
    if lost && let Some(g) = s.gpus.first_mut() {
        *g = gpuscope_core::GpuSample {
            index: g.index,
            uuid: g.uuid.clone(),
            model: g.model.clone(),
            lost: true,
            ..Default::default()
        };
    }
    let req = encode(&[&s], &Identity { instance: s.node.hostname.clone(), start_unix_nano: 1 });
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(&req.encode_to_vec());
    gz.finish().unwrap_or_default()
}

fn main() -> Result<()> {
    let a = args()?;
    // Templates: a healthy 8×H100 training node at 16 different moments (realistic noise).
    let sim = Simulation::new(Scenario::load("healthy-bf16-training")?, 0)?;
    let templates: Vec<NodeSnapshot> =
        (0..16).map(|i| gpuscope_sim::snapshot::snapshot(&sim, 100.0 + i as f64 * 7.0)).collect();
    let sample_req = encode(&[&templates[0]], &Identity { instance: "x".into(), start_unix_nano: 1 });
    let pts = points(&sample_req);
    let raw = sample_req.encode_to_vec();
    // Ceiling: decode the same payloads on this core, protobuf only and through the catalogue.
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < Duration::from_secs(2) {
        let r =
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest::decode(raw.as_slice())?;
        n += points(&r);
    }
    let proto_rate = n as f64 / t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut n = 0;
    while t.elapsed() < Duration::from_secs(2) {
        let r =
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest::decode(raw.as_slice())?;
        let d = gpuscope_collector::decode::decode(&r);
        n += pts * d.snapshots.len();
    }
    let decode_rate = n as f64 / t.elapsed().as_secs_f64();

    // The collector under test, alone in its process.
    let mut child = Command::new(&a.gpuscope)
        .args(["collector", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--api", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", a.gpuscope))?;
    let pid = child.id();
    let mut lines = BufReader::new(child.stderr.take().context("stderr")?).lines();
    let (http, api) = loop {
        let l = lines.next().context("collector exited")??;
        if let Some(rest) = l.split("OTLP HTTP on ").nth(1) {
            let http = rest.split(',').next().unwrap_or_default().trim().to_string();
            let api =
                rest.split("API on http://").nth(1).and_then(|x| x.split('/').next()).unwrap_or_default().to_string();
            break (http, api);
        }
    };
    std::thread::spawn(move || for _ in lines {});
    std::thread::sleep(Duration::from_millis(300));
    let rss0 = rss_mb(pid);

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let url = format!("http://{http}/v1/metrics");
    let post = |client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
                url: String,
                b: Vec<u8>| async move {
        loop {
            let Ok(req) = hyper::Request::post(&url)
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "gzip")
                .body(Full::new(Bytes::from(b.clone())))
            else {
                return false;
            };
            match client.request(req).await {
                Ok(r) if r.status().is_success() => return true,
                // 503: the queue is full; back off like an agent does.
                Ok(r) if r.status().as_u16() == 503 => tokio::time::sleep(Duration::from_millis(50)).await,
                _ => return false,
            }
        }
    };
    let cpu0 = proc_cpu_s(pid);
    let t0 = Instant::now();
    let sent = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(a.concurrency));
        let mut ok = 0usize;
        for step in 0..a.steps {
            let mut tasks = Vec::new();
            for node in 0..a.nodes {
                let b = body(&templates[(node + step) % templates.len()], node, step, a.interval_s, false);
                let Ok(permit) = sem.clone().acquire_owned().await else { break };
                let (c, u) = (client.clone(), url.clone());
                tasks.push(tokio::spawn(async move {
                    let r = post(c, u, b).await;
                    drop(permit);
                    r
                }));
            }
            for t in tasks {
                ok += usize::from(t.await.unwrap_or(false));
            }
        }
        ok
    });
    let wall = t0.elapsed().as_secs_f64();
    // Wait for the queue to drain into the windows.
    std::thread::sleep(Duration::from_millis(500));
    let cpu = proc_cpu_s(pid) - cpu0;
    let rss1 = rss_mb(pid);

    // Finding latency: probes where GPU 0 falls off the bus; gpu-lost opens at once.
    let mut stream = std::net::TcpStream::connect(&api)?;
    write!(stream, "GET /api/v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut latencies = Vec::new();
    for p in 0..a.latency_probes {
        let node = p * (a.nodes / a.latency_probes.max(1)).max(1);
        let b = body(&templates[0], node, a.steps, a.interval_s, true);
        let sent_at = Instant::now();
        rt.block_on(post(client.clone(), url.clone(), b));
        let want = format!("node-{node:05}");
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        loop {
            if stream.read(&mut byte)? == 0 {
                bail!("stream closed");
            }
            buf.push(byte[0]);
            if byte[0] == b'\n' {
                let line = String::from_utf8_lossy(&buf).to_string();
                buf.clear();
                if line.starts_with("data: ") && line.contains("\"gpu-lost\"") && line.contains(&want) {
                    latencies.push(sent_at.elapsed().as_secs_f64() * 1000.0);
                    break;
                }
            }
        }
    }
    latencies.sort_by(|x, y| x.total_cmp(y));
    let pct = |q: f64| {
        latencies.get(((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN)
    };
    let _ = child.kill();
    let _ = child.wait();

    let total_points = (sent * pts) as f64;
    let per_core = total_points / cpu.max(1e-9);
    let out = serde_json::json!({
        "nodes": a.nodes,
        "steps_per_node": a.steps,
        "points_per_push": pts,
        "pushes_accepted": sent,
        "wall_s": wall,
        "collector_cpu_s": cpu,
        "points_per_s_per_core_with_analysis": per_core,
        "protobuf_decode_points_per_s_one_core": proto_rate,
        "catalogue_decode_points_per_s_one_core": decode_rate,
        "finding_latency_ms_p50": pct(0.5),
        "finding_latency_ms_p99": pct(0.99),
        "collector_rss_mb_before": rss0,
        "collector_rss_mb_after": rss1,
        "kb_per_node": (rss1 - rss0) * 1024.0 / a.nodes as f64,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    println!(
        "\n{} nodes x {} pushes of {} points: collector {:.0} points/s per core with analysis ({:.2}x the one-core protobuf decode rate of {:.0}/s, {:.2}x catalogue decode {:.0}/s)",
        a.nodes,
        a.steps,
        pts,
        per_core,
        per_core / proto_rate,
        proto_rate,
        per_core / decode_rate,
        decode_rate
    );
    println!(
        "finding latency p50 {:.1} ms, p99 {:.1} ms; memory {:.0} KB per node holding {} samples",
        pct(0.5),
        pct(0.99),
        (rss1 - rss0) * 1024.0 / a.nodes as f64,
        a.steps
    );
    Ok(())
}
