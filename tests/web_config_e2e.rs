//! The agent's Prometheus endpoint behind an exporter-toolkit web configuration file: a real
//! Prometheus (Debian's package) scrapes it over TLS with basic authentication, exactly as it
//! scrapes node_exporter; a wrong password is refused; a changed file takes effect without a
//! restart; with a client CA, only a Prometheus presenting a certificate it signed gets in.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::{Clock, NodeSpec, Prometheus, start};
use std::process::Command;

/// The web configuration: TLS with the files next to it (relative paths, as exporter-toolkit
/// resolves them) and one user, `prom`, with `password` (bcrypt, `$2y$` as htpasswd writes it).
fn web_config(password: &str) -> String {
    let hash = bcrypt::hash(password, 10).unwrap().replacen("$2b$", "$2y$", 1);
    format!(
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  min_version: TLS12\nbasic_auth_users:\n  prom: {hash}\n"
    )
}

/// `up` of each job, by job name.
fn up(prom: &Prometheus) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> =
        prom.query("up").into_iter().map(|(m, v)| (m["job"].as_str().unwrap().to_string(), v)).collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn last_error(prom: &Prometheus, job: &str) -> String {
    prom.api("targets")["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["labels"]["job"] == job)
        .map(|t| t["lastError"].as_str().unwrap_or("").to_string())
        .unwrap_or_default()
}

#[test]
fn prometheus_scrapes_the_agent_over_tls_with_basic_auth_and_a_changed_file_applies() {
    let dir = tempfile::tempdir().unwrap();
    common::certificates(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(&web, web_config("first-pass")).unwrap();
    let mut spec = NodeSpec::new("healthy-bf16-training", Clock::Frozen(100.0));
    spec.extra_args = vec!["--web.config.file".into(), web.to_str().unwrap().into()];
    let node = start(spec);
    assert!(node.log.iter().any(|l| l.contains("TLS on, basic authentication on (1 users)")), "{:?}", node.log);
    assert!(node.log.iter().any(|l| l.contains(&format!("listening on https://{}/metrics", node.addr))));

    // Plain HTTP gets no metrics.
    let mut s = std::net::TcpStream::connect(&node.addr).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    std::io::Write::write_all(&mut s, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let _ = std::io::Read::read_to_end(&mut s, &mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("gpuscope_"), "metrics over plain HTTP");

    let ca = dir.path().join("ca.pem");
    let job = |name: &str, password: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {}\n    basic_auth:\n      username: prom\n      password: {password}\n    static_configs:\n      - targets: ['{}']\n",
            ca.display(),
            node.addr
        )
    };
    let prom = Prometheus::start(
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n{}{}",
            job("first", "first-pass"),
            job("second", "second-pass")
        ),
        &[],
    );
    let want = |first: f64, second: f64| vec![("first".to_string(), first), ("second".to_string(), second)];
    let settled = |first, second| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let now = up(&prom);
            if now == want(first, second) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "up: {now:?}; errors: {:?}, {:?}",
                last_error(&prom, "first"),
                last_error(&prom, "second")
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    };
    settled(1.0, 0.0);
    assert!(last_error(&prom, "second").contains("401"), "{}", last_error(&prom, "second"));
    // The scraped series are the agent's (the scenario's node, through TLS).
    let scrapes = prom.query("gpuscope_exporter_scrapes_total{job=\"first\"}");
    assert_eq!(scrapes.len(), 1, "{scrapes:?}");

    // A new password: the file is read again at the next connections, no restart.
    std::fs::write(&web, web_config("second-pass")).unwrap();
    settled(0.0, 1.0);
    // A broken file is refused and the previous configuration stays.
    std::fs::write(&web, "basic_auth_users:\n  prom: not-a-hash\n").unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(up(&prom), want(0.0, 1.0));
}

/// Mutual TLS as exporter-toolkit configures it (`client_auth_type: RequireAndVerifyClientCert`):
/// a real Prometheus presenting a certificate the client CA signed scrapes the agent; the same
/// Prometheus without a client certificate is refused at the handshake.
#[test]
fn prometheus_with_a_client_certificate_scrapes_and_one_without_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, _, _, client_cert, client_key] = common::mtls_certificates(dir.path());
    let web = dir.path().join("web.yml");
    std::fs::write(
        &web,
        "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n  \
         client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n",
    )
    .unwrap();
    let mut spec = NodeSpec::new("healthy-bf16-training", Clock::Frozen(100.0));
    spec.extra_args = vec!["--web.config.file".into(), web.to_str().unwrap().into()];
    let node = start(spec);
    assert!(node.log.iter().any(|l| l.contains("client certificates required")), "{:?}", node.log);
    let job = |name: &str, client: &str| {
        format!(
            "  - job_name: {name}\n    scheme: https\n    tls_config:\n      ca_file: {}\n{client}    static_configs:\n      - targets: ['{}']\n",
            ca.display(),
            node.addr
        )
    };
    let with_cert = format!("      cert_file: {}\n      key_file: {}\n", client_cert.display(), client_key.display());
    let prom = Prometheus::start(
        &format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n{}{}",
            job("with_cert", &with_cert),
            job("without_cert", "")
        ),
        &[],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let want = vec![("with_cert".to_string(), 1.0), ("without_cert".to_string(), 0.0)];
    while up(&prom) != want {
        assert!(
            std::time::Instant::now() < deadline,
            "up: {:?}; errors: {:?}, {:?}",
            up(&prom),
            last_error(&prom, "with_cert"),
            last_error(&prom, "without_cert")
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let scrapes = prom.query("gpuscope_exporter_scrapes_total{job=\"with_cert\"}");
    assert_eq!(scrapes.len(), 1, "{scrapes:?}");
    assert!(!last_error(&prom, "without_cert").is_empty());
}

/// A web configuration file that cannot be used stops the agent at start, naming the key.
#[test]
fn a_bad_web_configuration_file_stops_the_agent_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "tls_server_config:\n  cert_file: missing.pem\n  key_file: missing.key\n").unwrap();
    let out = Command::new(common::bin())
        .args(["agent", "--listen", "127.0.0.1:0", "--web.config.file", web.to_str().unwrap()])
        .env("GPUSCOPE_NVML_LIB", common::nvml_lib())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("tls_server_config.cert_file") && err.contains("missing.pem"), "{err}");
}
