//! End to end: a real Prometheus with the generated rules scrapes a real agent on a simulated
//! node whose GPU falls off the bus (XID 79); the standalone PromQL alerts fire and go to a real
//! Alertmanager (Debian's `prometheus-alertmanager`), which delivers them to a webhook receiver
//! with the rule's advice in the annotations.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::{Clock, NodeSpec, Proc, Prometheus, eventually, free_port, get, start, unix_now};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A webhook receiver: every POST body it gets, on a channel.
fn webhook() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; len];
            if reader.read_exact(&mut body).is_err() {
                continue;
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            if tx.send(String::from_utf8_lossy(&body).to_string()).is_err() {
                break;
            }
        }
    });
    (addr, rx)
}

#[test]
fn a_lost_gpu_reaches_the_webhook_through_alertmanager_with_the_advice() {
    let (hook, bodies) = webhook();
    let am_dir = tempfile::tempdir().unwrap();
    let am_cfg = am_dir.path().join("alertmanager.yml");
    std::fs::write(
        &am_cfg,
        format!(
            "route:\n  receiver: hook\n  group_by: ['alertname', 'instance', 'gpu']\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\n\
             receivers:\n  - name: hook\n    webhook_configs:\n      - url: 'http://{hook}/hook'\n        send_resolved: false\n"
        ),
    )
    .unwrap();
    let am = format!("127.0.0.1:{}", free_port());
    let _am = Proc(
        Command::new("prometheus-alertmanager")
            .args([
                &format!("--config.file={}", am_cfg.display()),
                &format!("--storage.path={}", am_dir.path().join("data").display()),
                &format!("--web.listen-address={am}"),
                // One instance, no gossip port to collide with other tests.
                "--cluster.listen-address=",
                "--log.level=warn",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus-alertmanager is installed (scripts/test installs the Debian package)"),
    );
    eventually(30, || std::net::TcpStream::connect(&am).ok().filter(|_| get(&am, "/-/ready", &[]).0 == 200));

    // Scenario second 100 now, ten scenario seconds a second: GPU 3 falls off the bus (XID 79 at
    // scenario second 120) two seconds in.
    let mut spec = NodeSpec::new("gpu-lost", Clock::Running { start: unix_now() - 10.0 });
    spec.interval_ms = 250;
    spec.extra_env = vec![("GPUSCOPE_SIM_SPEED".into(), "10".into())];
    let node = start(spec);
    let rules = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/dashboards/alerts.yml")).unwrap();
    let prom = Prometheus::start(
        &format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['alerts.yml']\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['{am}']\n\
             scrape_configs:\n  - job_name: gpuscope\n    static_configs:\n      - targets: ['{}']\n",
            node.addr
        ),
        &[("alerts.yml", &rules)],
    );

    // The webhook gets the GPU-lost alert, from Prometheus through Alertmanager.
    let mut seen = Vec::new();
    let alert = eventually(60, || {
        while let Ok(body) = bodies.try_recv() {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            seen.extend(v["alerts"].as_array().unwrap().iter().cloned());
        }
        seen.iter().find(|a| a["labels"]["alertname"] == "GpuscopeGpuLost").cloned()
    });
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["severity"], "critical");
    assert_eq!(alert["labels"]["gpu"], "3");
    assert_eq!(alert["labels"]["instance"], node.addr.as_str());
    assert_eq!(alert["labels"]["rule"], "gpu-lost");
    let rule = gpuscope_analysis::rule("gpu-lost").unwrap();
    assert_eq!(alert["annotations"]["advice"], rule.recommendation);
    assert_eq!(alert["annotations"]["runbook_url"], rule.docs().as_str());
    assert_eq!(
        alert["annotations"]["summary"],
        format!("GPU 3 on {} has fallen off the bus (lost, or XID 79).", node.addr).as_str()
    );
    // XID 79 is also the reboot class of xid-error: its alert follows, with that class's advice.
    let xid = eventually(30, || {
        while let Ok(body) = bodies.try_recv() {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            seen.extend(v["alerts"].as_array().unwrap().iter().cloned());
        }
        seen.iter().find(|a| a["labels"]["alertname"] == "GpuscopeXidErrorReboot").cloned()
    });
    assert_eq!(xid["labels"]["xid"], "79");
    assert_eq!(xid["labels"]["severity"], "critical");
    let reboot = gpuscope_analysis::xid::XidClass::Reboot.advice().2;
    assert_eq!(xid["annotations"]["advice"], reboot);
    // Only the lost GPU alerts: the node's other GPUs are healthy.
    assert!(seen.iter().all(|a| a["labels"]["gpu"] == "3"), "{seen:?}");
    // And Prometheus holds the same alerts as firing.
    let firing = prom.query("ALERTS{alertstate=\"firing\", rule=\"gpu-lost\"}");
    assert_eq!(firing.len(), 1, "{firing:?}");
}
