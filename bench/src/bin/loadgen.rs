//! `loadgen`: replays realistic OTLP from N simulated nodes into a real `gpuscope collector`
//! (started here, as its own process, so its CPU and memory are measured alone) and reports
//! data points/s per core with analysis on, finding latency, memory per tracked node, and the
//! raw decode rate of the same payloads on one core (the ceiling), all from the same run.
//!
//! Two modes. Burst (default): every node's samples as fast as the collector takes them, the
//! throughput ceiling. `--paced`: every node pushes once per interval at its own moment, spread
//! evenly, as a fleet of agents does; it shows whether the collector keeps up with that fleet
//! (how many cores it needs, whether pushes are ever refused or fall behind schedule) and
//! measures finding latency while the load runs.
//!
//! Every body is encoded and compressed before the clock starts, so the load generator's own
//! work while measuring is only sending.
//!
//! cargo run --release -p gpuscope-bench --bin loadgen -- --nodes 1000 --steps 30
//! cargo run --release -p gpuscope-bench --bin loadgen -- --nodes 10000 --steps 6 --paced

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use gpuscope_core::NodeSnapshot;
use gpuscope_exporters::otlp::{Identity, encode};
use gpuscope_sim::{Scenario, Simulation};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// The same allocator as the collector, so that the decode ceiling measured here is comparable.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    nodes: usize,
    steps: usize,
    interval_s: u64,
    concurrency: usize,
    latency_probes: usize,
    paced: bool,
    gpuscope: String,
}

fn args() -> Result<Args> {
    let mut a = Args {
        nodes: 1000,
        steps: 30,
        interval_s: 10,
        concurrency: 16,
        latency_probes: 50,
        paced: false,
        gpuscope: String::new(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        if v[i] == "--paced" {
            a.paced = true;
            i += 1;
            continue;
        }
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
    if a.nodes == 0 || a.steps == 0 || a.interval_s == 0 {
        bail!("--nodes, --steps and --interval-s must be positive");
    }
    if a.paced && a.steps < 2 {
        bail!("--paced needs at least 2 steps (the first one is the warm-up)");
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

fn host(node: usize) -> String {
    format!("node-{node:05}")
}

/// The body one node pushes at one step: its own host name and timestamp; with `lost`, GPU 0
/// has fallen off the bus (`gpu-lost` opens at the next evaluation).
fn body(template: &NodeSnapshot, node: usize, step: usize, interval_s: u64, lost: bool) -> Bytes {
    let mut s = template.clone();
    s.node.hostname = host(node);
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
    // Exact size: a fleet's worth of bodies is held at once (a 10-minute window of 10,000 nodes
    // is 600,000 of them).
    Bytes::from(gz.finish().unwrap_or_default().into_boxed_slice())
}

/// Every body of the run, `[step][node]`, encoded on all cores before anything is measured.
fn encode_all(templates: &[NodeSnapshot], a: &Args, probe: &(dyn Fn(usize, usize) -> bool + Sync)) -> Vec<Vec<Bytes>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    (0..a.steps)
        .map(|step| {
            let chunk = a.nodes.div_ceil(threads);
            std::thread::scope(|sc| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        sc.spawn(move || {
                            (t * chunk..((t + 1) * chunk).min(a.nodes))
                                .map(|n| {
                                    body(
                                        &templates[(n + step) % templates.len()],
                                        n,
                                        step,
                                        a.interval_s,
                                        probe(n, step),
                                    )
                                })
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
            })
        })
        .collect()
}

/// Pushes one body; on 503 (the collector's queue is full) it backs off like an agent and
/// retries. Returns whether it was accepted.
async fn post(client: Client<HttpConnector, Full<Bytes>>, url: Arc<str>, b: Bytes, busy: Arc<AtomicUsize>) -> bool {
    loop {
        let Ok(req) = hyper::Request::post(url.as_ref())
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "gzip")
            .body(Full::new(b.clone()))
        else {
            return false;
        };
        match client.request(req).await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) if r.status().as_u16() == 503 => {
                busy.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            _ => return false,
        }
    }
}

/// Follows `/api/v1/stream` on its own thread and records when `gpu-lost` opened per node.
fn watch_gpu_lost(api: &str) -> Result<Arc<Mutex<HashMap<String, Instant>>>> {
    let mut stream = std::net::TcpStream::connect(api)?;
    write!(stream, "GET /api/v1/stream HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let seen = Arc::new(Mutex::new(HashMap::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            let Some(data) = line.strip_prefix("data: ") else { continue };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else { continue };
            if v["rule"] == "gpu-lost"
                && let Some(node) = v["scope"]["node"].as_str()
            {
                s2.lock().unwrap_or_else(|e| e.into_inner()).entry(node.to_string()).or_insert_with(Instant::now);
            }
        }
    });
    Ok(seen)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    sorted.get(((sorted.len() as f64 * q).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN)
}

/// Latencies (ms) from each probe's push to its `gpu-lost` event, sorted; waits up to 10 s.
fn latencies(sent: &Mutex<HashMap<String, Instant>>, seen: &Mutex<HashMap<String, Instant>>) -> Vec<f64> {
    let want = sent.lock().unwrap_or_else(|e| e.into_inner()).len();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.lock().unwrap_or_else(|e| e.into_inner()).len() < want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let (sent, seen) = (sent.lock().unwrap_or_else(|e| e.into_inner()), seen.lock().unwrap_or_else(|e| e.into_inner()));
    let mut l: Vec<f64> = sent
        .iter()
        .filter_map(|(n, t)| seen.get(n).map(|s| s.saturating_duration_since(*t).as_secs_f64() * 1000.0))
        .collect();
    l.sort_by(|x, y| x.total_cmp(y));
    l
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

    // Probe nodes, spread over the fleet. Paced: their GPU 0 is lost in the last step, while the
    // load runs. Burst: they push after the load, one at a time.
    let probe_every = (a.nodes / a.latency_probes.max(1)).max(1);
    let probe_nodes: Vec<usize> = (0..a.latency_probes.min(a.nodes)).map(|p| p * probe_every).collect();
    let last = a.steps - 1;
    let is_probe = |n: usize, step: usize| {
        a.paced && step == last && n.is_multiple_of(probe_every) && n / probe_every < a.latency_probes
    };
    let t = Instant::now();
    let bodies = encode_all(&templates, &a, &is_probe);
    let encode_s = t.elapsed().as_secs_f64();
    let body_bytes: usize = bodies.iter().flatten().map(Bytes::len).sum::<usize>() / (a.nodes * a.steps);

    // The collector under test, alone in its process.
    let mut child = Command::new(&a.gpuscope)
        .args(["collector", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--api", "127.0.0.1:0"])
        // Thousands of simulated nodes share one address here; the per-client limit is for real ones.
        .args(["--max-pushes-per-client-per-s", "1000000000"])
        // The batches are stamped from the simulator's fixed epoch, which may be ahead of the clock.
        .args(["--max-clock-skew-s", "315360000"])
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
    let seen = watch_gpu_lost(&api)?;
    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build()?;
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let url: Arc<str> = format!("http://{http}/v1/metrics").into();
    let busy = Arc::new(AtomicUsize::new(0));
    let cpu0 = proc_cpu_s(pid);
    let t0 = Instant::now();
    // Paced: collector CPU at every step boundary, and how late each push left.
    let mut step_cpu = vec![cpu0];
    let mut lags_ms: Vec<f64> = Vec::new();
    let sent = rt.block_on(async {
        let sem = Arc::new(tokio::sync::Semaphore::new(a.concurrency));
        let start = tokio::time::Instant::now();
        let mut tasks = Vec::new();
        let mut ok = 0usize;
        for (step, row) in bodies.iter().enumerate() {
            for (node, b) in row.iter().enumerate() {
                // Paced: this push's moment in the schedule.
                let at = a.paced.then(|| {
                    start + Duration::from_secs_f64((step as f64 + node as f64 / a.nodes as f64) * a.interval_s as f64)
                });
                if let Some(at) = at {
                    tokio::time::sleep_until(at).await;
                    if node == 0 && step > 0 {
                        step_cpu.push(proc_cpu_s(pid));
                    }
                }
                let Ok(permit) = sem.clone().acquire_owned().await else { break };
                if let Some(at) = at {
                    lags_ms.push(at.elapsed().as_secs_f64() * 1000.0);
                    if is_probe(node, step) {
                        sent_at.lock().unwrap_or_else(|e| e.into_inner()).insert(host(node), Instant::now());
                    }
                }
                let (c, u, b, busy) = (client.clone(), url.clone(), b.clone(), busy.clone());
                tasks.push(tokio::spawn(async move {
                    let r = post(c, u, b, busy).await;
                    drop(permit);
                    r
                }));
            }
            if !a.paced {
                // Steps follow each other: a node's samples arrive in order.
                for t in tasks.drain(..) {
                    ok += usize::from(t.await.unwrap_or(false));
                }
            }
        }
        if a.paced {
            tokio::time::sleep_until(start + Duration::from_secs(a.steps as u64 * a.interval_s)).await;
            step_cpu.push(proc_cpu_s(pid));
        }
        for t in tasks {
            ok += usize::from(t.await.unwrap_or(false));
        }
        ok
    });
    let wall = t0.elapsed().as_secs_f64();
    // Wait for the queue to drain into the windows.
    std::thread::sleep(Duration::from_millis(500));
    let cpu = proc_cpu_s(pid) - cpu0;
    let rss1 = rss_mb(pid);

    if !a.paced {
        // Finding latency on an idle collector: one probe at a time.
        for &node in &probe_nodes {
            let b = body(&templates[0], node, a.steps, a.interval_s, true);
            sent_at.lock().unwrap_or_else(|e| e.into_inner()).insert(host(node), Instant::now());
            rt.block_on(post(client.clone(), url.clone(), b, busy.clone()));
            let deadline = Instant::now() + Duration::from_secs(10);
            while !seen.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&host(node)) && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    let lat = latencies(&sent_at, &seen);
    let _ = child.kill();
    let _ = child.wait();

    let total_points = (sent * pts) as f64;
    let per_core = total_points / cpu.max(1e-9);
    let kb_per_node = (rss1 - rss0) * 1024.0 / a.nodes as f64;
    let mut out = serde_json::json!({
        "mode": if a.paced { "paced" } else { "burst" },
        "nodes": a.nodes,
        "steps_per_node": a.steps,
        "points_per_push": pts,
        "gzip_bytes_per_push": body_bytes,
        "encode_s_before_start": encode_s,
        "pushes_offered": a.nodes * a.steps,
        "pushes_accepted": sent,
        "busy_answers_503": busy.load(Ordering::Relaxed),
        "wall_s": wall,
        "collector_cpu_s": cpu,
        "points_per_s_per_core_with_analysis": per_core,
        "protobuf_decode_points_per_s_one_core": proto_rate,
        "catalogue_decode_points_per_s_one_core": decode_rate,
        "finding_latency_probes": lat.len(),
        "finding_latency_ms_p50": percentile(&lat, 0.5),
        "finding_latency_ms_p99": percentile(&lat, 0.99),
        "collector_rss_mb_before": rss0,
        "collector_rss_mb_after": rss1,
        "kb_per_node": kb_per_node,
    });
    println!(
        "{} nodes x {} pushes of {} points ({} bytes gzip): collector {:.0} points/s per core with analysis ({:.2}x the one-core protobuf decode rate of {:.0}/s, {:.2}x catalogue decode {:.0}/s)",
        a.nodes,
        a.steps,
        pts,
        body_bytes,
        per_core,
        per_core / proto_rate,
        proto_rate,
        per_core / decode_rate,
        decode_rate
    );
    if a.paced {
        // Cores the collector used in each interval after the first (the warm-up creates nodes).
        let cores: Vec<f64> = step_cpu.windows(2).map(|w| (w[1] - w[0]) / a.interval_s as f64).collect();
        let steady = &cores[1.min(cores.len())..];
        let mean_cores = steady.iter().sum::<f64>() / steady.len().max(1) as f64;
        let max_cores = steady.iter().copied().fold(0.0, f64::max);
        lags_ms.sort_by(|x, y| x.total_cmp(y));
        let offered_pts = (a.nodes * pts) as f64 / a.interval_s as f64;
        out["offered_points_per_s"] = offered_pts.into();
        out["collector_cores_per_interval"] = cores.clone().into();
        out["collector_cores_steady_mean"] = mean_cores.into();
        out["collector_cores_steady_max"] = max_cores.into();
        out["send_lag_ms_p50"] = percentile(&lags_ms, 0.5).into();
        out["send_lag_ms_p99"] = percentile(&lags_ms, 0.99).into();
        out["send_lag_ms_max"] = lags_ms.last().copied().unwrap_or(f64::NAN).into();
        println!(
            "paced: {} pushes/s offered ({:.2} M points/s), {} of {} accepted, {} answered busy; collector used {:.2} cores (max {:.2}) per interval after warm-up; sends late by p99 {:.1} ms, max {:.1} ms",
            a.nodes as f64 / a.interval_s as f64,
            offered_pts / 1e6,
            sent,
            a.nodes * a.steps,
            busy.load(Ordering::Relaxed),
            mean_cores,
            max_cores,
            percentile(&lags_ms, 0.99),
            lags_ms.last().copied().unwrap_or(f64::NAN),
        );
    }
    println!(
        "finding latency ({} probes{}) p50 {:.1} ms, p99 {:.1} ms; memory {:.0} KB per node holding {} samples",
        lat.len(),
        if a.paced { ", under load" } else { ", idle collector" },
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        kb_per_node,
        a.steps
    );
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
