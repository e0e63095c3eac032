//! Golden output: what the real agent serves on `/metrics` and pushes over OTLP for a scenario
//! frozen at one instant, compared with checked-in files. Any change to names, labels, units,
//! order, help texts or values shows up as a diff; set `GPUSCOPE_BLESS=1` to rewrite the files
//! after an intended change (and review the diff like code).
//!
//! Only what depends on the wall clock is masked: sampling durations, timestamps, and the
//! agent's own counters (scrapes served, encode time, OTLP batches); and the filesystems' sizes,
//! which are those of the test machine's disk (the simulated mount points live in the tree).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Clock, NodeSpec, get, start};
use flate2::read::GzDecoder;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use prost::Message;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

/// Series whose values follow the wall clock, not the scenario.
const VOLATILE: &[&str] = &[
    "gpuscope_agent_sample_duration_seconds",
    "gpuscope_agent_last_sample_timestamp_seconds",
    "gpuscope_agent_sampler_last_success_timestamp_seconds",
    "gpuscope_otlp_batches_sent_total",
    "gpuscope_otlp_retryable_failures_total",
    "gpuscope_otlp_batches_rejected_total",
    "gpuscope_otlp_batches_dropped_total",
    "gpuscope_otlp_queue_batches",
    "gpuscope_exporter_scrapes_total",
    "gpuscope_exporter_encode_seconds_total",
    // How many passes ran before the scrape, and whether the XID thread began another wait.
    "gpuscope_agent_nvml_calls_total",
];

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(name)
}

/// Compares `actual` with the golden file, or rewrites it with `GPUSCOPE_BLESS=1`.
fn check(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("GPUSCOPE_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with GPUSCOPE_BLESS=1 to create it)", path.display()));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .enumerate()
            .filter(|(_, (e, a))| e != a)
            .take(10)
            .map(|(i, (e, a))| format!("line {}:\n  golden: {e}\n  actual: {a}", i + 1))
            .collect();
        panic!(
            "{name} differs from {} ({} vs {} lines); first differences:\n{}",
            path.display(),
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

/// Rounds to 9 significant digits: a gauge averaged over two or three identical samples may
/// differ from the sample in its last bit.
fn round(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    format!("{}", format!("{v:.8e}").parse::<f64>().unwrap())
}

/// The text exposition with wall-clock values masked.
fn masked_metrics(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let name = line.split(['{', ' ']).next().unwrap_or("");
        if !line.starts_with('#') && VOLATILE.contains(&name) {
            let (series, _) = line.rsplit_once(' ').unwrap();
            writeln!(out, "{series} <wall-clock>").unwrap();
        } else if !line.starts_with('#') && name.starts_with("gpuscope_host_filesystem_") {
            let (series, _) = line.rsplit_once(' ').unwrap();
            writeln!(out, "{series} <test machine's disk>").unwrap();
        } else {
            writeln!(out, "{line}").unwrap();
        }
    }
    out
}

fn scrape(addr: &str, headers: &[(&str, &str)]) -> String {
    let (status, _, body) = get(addr, "/metrics", headers);
    assert_eq!(status, 200);
    String::from_utf8(body).unwrap()
}

/// Scrapes after the agent has published a snapshot with rates (the second pass onwards).
fn settled_agent(scenario: &str, t: f64, args: &[&str]) -> common::Node {
    let mut spec = NodeSpec::new(scenario, Clock::Frozen(t));
    spec.extra_args = args.iter().map(|s| s.to_string()).collect();
    let node = start(spec);
    // Rates need two passes: wait for the third snapshot.
    let mut seen = Vec::new();
    common::eventually(30, || {
        let t = node.metrics().one("gpuscope_agent_last_sample_timestamp_seconds", &[]);
        if !seen.contains(&t.to_bits()) {
            seen.push(t.to_bits());
        }
        (seen.len() >= 3).then_some(())
    });
    node
}

#[test]
fn metrics_endpoint_matches_the_golden_files() {
    for (scenario, t) in [
        ("healthy-bf16-training", 300.0),
        ("nccl-over-tcp", 200.0),
        ("gpu-lost", 400.0),
        ("workstation-inference", 120.0),
    ] {
        let node = settled_agent(scenario, t, &[]);
        check(&format!("metrics-{scenario}.txt"), &masked_metrics(&scrape(&node.addr, &[])));
    }
    // MIG instances in native and dcgm-exporter names (GPU_I_PROFILE / GPU_I_ID).
    let node = settled_agent("mig-inference", 120.0, &["--compat", "dcgm"]);
    check("metrics-mig-inference-dcgm.txt", &masked_metrics(&scrape(&node.addr, &[])));
    let node = settled_agent("xid-error", 300.0, &["--compat", "dcgm"]);
    check("metrics-xid-error-dcgm.txt", &masked_metrics(&scrape(&node.addr, &[])));
    let om = scrape(&node.addr, &[("Accept", "application/openmetrics-text; version=1.0.0")]);
    check("metrics-xid-error-dcgm.openmetrics.txt", &masked_metrics(&om));
    // dcgm-exporter 4.10's names (4.9's plus `_PER_SECOND` on the PCIe rates), base units and
    // labels.
    let node = settled_agent("xid-error", 300.0, &["--compat", "dcgm-4.10"]);
    check("metrics-xid-error-dcgm-4.10.txt", &masked_metrics(&scrape(&node.addr, &[])));
}

/// A minimal OTLP/HTTP sink: answers every POST with an empty success and hands the
/// decompressed bodies over.
fn otlp_sink() -> (String, mpsc::Receiver<Vec<u8>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { return };
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut r = BufReader::new(conn.try_clone().unwrap());
                let mut w = conn;
                loop {
                    let mut len = 0usize;
                    let mut gzip = false;
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if l.is_empty() {
                            break;
                        }
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        if l.starts_with("content-encoding:") && l.contains("gzip") {
                            gzip = true;
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    if gzip {
                        let mut out = Vec::new();
                        GzDecoder::new(body.as_slice()).read_to_end(&mut out).unwrap();
                        body = out;
                    }
                    let _ = tx.send(body);
                    let ok = "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
                    if w.write_all(ok.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, rx)
}

fn attr_text(kv: &KeyValue) -> String {
    let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => format!("{s:?}"),
        Some(any_value::Value::IntValue(i)) => format!("{i}i"),
        Some(any_value::Value::DoubleValue(d)) => round(*d),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        other => format!("{other:?}"),
    };
    format!("{}={v}", kv.key)
}

/// One line per resource attribute, metric and data point; times become whether they are set.
fn render_otlp(req: &ExportMetricsServiceRequest) -> String {
    let mut out = String::new();
    for rm in &req.resource_metrics {
        for a in rm.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or_default() {
            writeln!(out, "resource {}", attr_text(a)).unwrap();
        }
        for sm in &rm.scope_metrics {
            let scope = sm.scope.as_ref().map(|s| s.name.as_str()).unwrap_or("");
            writeln!(out, "scope {scope}").unwrap();
            for m in &sm.metrics {
                let (kind, points) = match &m.data {
                    Some(metric::Data::Gauge(g)) => ("gauge".to_string(), &g.data_points),
                    Some(metric::Data::Sum(s)) => (
                        format!("sum temporality={} monotonic={}", s.aggregation_temporality, s.is_monotonic),
                        &s.data_points,
                    ),
                    other => panic!("unexpected data {other:?}"),
                };
                writeln!(out, "metric {} unit={:?} {kind} help={:?}", m.name, m.unit, m.description).unwrap();
                for p in points {
                    let attrs: Vec<String> = p.attributes.iter().map(attr_text).collect();
                    let host_disk =
                        ["system.filesystem.limit", "system.filesystem.usage", "gpuscope.host.filesystem.free"];
                    let v = match p.value {
                        _ if host_disk.contains(&m.name.as_str()) => "<test machine's disk>".into(),
                        Some(number_data_point::Value::AsDouble(d)) => round(d),
                        Some(number_data_point::Value::AsInt(i)) => format!("{i}i"),
                        None => "none".into(),
                    };
                    writeln!(
                        out,
                        "  point start={} time={} {{{}}} {v}",
                        p.start_time_unix_nano != 0,
                        p.time_unix_nano != 0,
                        attrs.join(",")
                    )
                    .unwrap();
                }
            }
        }
    }
    out
}

#[test]
fn otlp_payload_matches_the_golden_files() {
    for (scenario, t) in [
        ("healthy-bf16-training", 300.0),
        ("nccl-over-tcp", 200.0),
        ("gpu-lost", 400.0),
        ("workstation-inference", 120.0),
        ("mig-inference", 120.0),
    ] {
        let (sink, bodies) = otlp_sink();
        let mut spec = NodeSpec::new(scenario, Clock::Frozen(t));
        spec.extra_args = ["--otlp-endpoint", &format!("http://{sink}"), "--otlp-interval-ms", "400"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let _node = start(spec);
        // The first pushes may precede the first rates; the third carries a settled snapshot.
        let mut body = Vec::new();
        for _ in 0..3 {
            body = bodies.recv_timeout(Duration::from_secs(30)).expect("an OTLP push");
        }
        let req = ExportMetricsServiceRequest::decode(body.as_slice()).unwrap();
        check(&format!("otlp-{scenario}.txt"), &render_otlp(&req));
    }
}
