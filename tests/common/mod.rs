//! Helpers for end-to-end tests: a simulated node (the /proc writer and the real agent binary
//! against the simulated NVML library) and a minimal HTTP client.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // shared by several test crates

pub mod cupti;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_gpuscope")
}

pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

/// The simulated NVML library next to the binary.
pub fn nvml_lib() -> PathBuf {
    let dir = Path::new(bin()).parent().unwrap().to_path_buf();
    [dir.join("libgpuscope_nvml_sim.so"), dir.join("deps/libgpuscope_nvml_sim.so")]
        .into_iter()
        .find(|p| p.is_file())
        .expect("libgpuscope_nvml_sim.so is built (cargo build --workspace)")
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// How the simulated clock runs.
#[derive(Clone, Copy)]
pub enum Clock {
    /// Frozen at this scenario second (exact values).
    Frozen(f64),
    /// Running, with scenario second 0 at this Unix time.
    Running { start: f64 },
}

/// A simulated node: the /proc writer plus the agent. Fields drop in order: the processes go
/// before their directory does.
pub struct Node {
    pub agent: Proc,
    pub writer: Option<Proc>,
    pub root: tempfile::TempDir,
    pub addr: String,
    pub stderr: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

pub struct NodeSpec<'a> {
    pub scenario: &'a str,
    pub clock: Clock,
    pub node: u32,
    pub interval_ms: u64,
    pub slow_interval_ms: u64,
    pub extra_args: Vec<String>,
    pub extra_env: Vec<(String, String)>,
    pub nvml_lib: Option<PathBuf>,
}

impl<'a> NodeSpec<'a> {
    pub fn new(scenario: &'a str, clock: Clock) -> Self {
        NodeSpec {
            scenario,
            clock,
            node: 0,
            interval_ms: 200,
            slow_interval_ms: 1000,
            extra_args: Vec::new(),
            extra_env: Vec::new(),
            nvml_lib: None,
        }
    }
}

pub fn start(spec: NodeSpec<'_>) -> Node {
    let root = tempfile::tempdir().unwrap();
    let root_s = root.path().to_str().unwrap().to_string();
    let mut w = Command::new(bin());
    w.args(["sim", "run", "--scenario", spec.scenario, "--root", &root_s, "--node", &spec.node.to_string()]);
    let writer = match spec.clock {
        Clock::Frozen(t) => {
            let st = w.args(["--once-at", &t.to_string()]).status().unwrap();
            assert!(st.success());
            None
        }
        Clock::Running { start } => {
            let speed = spec
                .extra_env
                .iter()
                .find(|(k, _)| k == "GPUSCOPE_SIM_SPEED")
                .map_or("1".to_string(), |(_, v)| v.clone());
            w.args(["--start", &format!("{start:.6}"), "--interval-ms", "50", "--speed", &speed]);
            Some(Proc(w.stdout(Stdio::null()).spawn().unwrap()))
        }
    };
    // Give the writer its first pass.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !root.path().join("proc/stat").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut a = Command::new(bin());
    a.args([
        "agent",
        "--listen",
        "127.0.0.1:0",
        "--interval-ms",
        &spec.interval_ms.to_string(),
        "--slow-interval-ms",
        &spec.slow_interval_ms.to_string(),
    ]);
    a.args(&spec.extra_args);
    for k in [
        "GPUSCOPE_SIM_TIME",
        "GPUSCOPE_SIM_START",
        "GPUSCOPE_SIM_SPEED",
        "GPUSCOPE_LOG",
        "GPUSCOPE_COMPAT",
        "GPUSCOPE_LISTEN",
    ] {
        a.env_remove(k);
    }
    a.env("GPUSCOPE_SIM_SCENARIO", spec.scenario)
        .env("GPUSCOPE_SIM_NODE", spec.node.to_string())
        .env("GPUSCOPE_NVML_LIB", spec.nvml_lib.unwrap_or_else(nvml_lib))
        .env("GPUSCOPE_PROCFS_ROOT", root.path().join("proc"))
        .env("GPUSCOPE_SYSFS_ROOT", root.path().join("sys"))
        .env("GPUSCOPE_POD_LOGS_ROOT", root.path().join("var/log/pods"))
        .env("GPUSCOPE_PASSWD_FILE", root.path().join("etc/passwd"));
    match spec.clock {
        Clock::Frozen(t) => {
            a.env("GPUSCOPE_SIM_TIME", t.to_string());
        }
        Clock::Running { start } => {
            a.env("GPUSCOPE_SIM_START", format!("{start:.6}"));
        }
    }
    for (k, v) in spec.extra_env {
        a.env(k, v);
    }
    let mut child = a.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    let (addr, https) = loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("agent did not start: {log:?}"));
        log.push(line.clone());
        if let Some((scheme, rest)) = line.split_once("listening on ").and_then(|(_, r)| r.split_once("://")) {
            break (rest.trim_end_matches("/metrics").trim().to_string(), scheme == "https");
        }
    };
    let node = Node { root, addr, writer, agent: Proc(child), stderr: rx, log };
    // Over TLS (a web configuration file) the caller knows how to ask.
    if !https {
        node.wait_ready();
    }
    node
}

impl Node {
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if get(&self.addr, "/readyz", &[]).0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("agent never became ready");
    }

    /// Scrapes /metrics (text format) after letting `passes` sampling intervals go by.
    pub fn metrics(&self) -> Metrics {
        let (status, _, body) = get(&self.addr, "/metrics", &[]);
        assert_eq!(status, 200);
        Metrics::parse(&String::from_utf8(body).unwrap())
    }

    pub fn raw_metrics(&self, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
        get(&self.addr, "/metrics", headers)
    }

    /// Everything the agent logged so far.
    pub fn drain_log(&mut self) -> Vec<String> {
        while let Ok(l) = self.stderr.try_recv() {
            self.log.push(l);
        }
        self.log.clone()
    }
}

/// A minimal HTTP/1.1 GET.
pub fn get(addr: &str, path: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    request(addr, "GET", path, headers, &[])
}

pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    // A server may answer before reading the whole body (413 on the announced length) and
    // close: the rest of the write then fails, and the answer is still there to read.
    let wrote = s.write_all(body);
    let mut buf = Vec::new();
    let read = s.read_to_end(&mut buf);
    assert!(!buf.is_empty(), "no answer from {addr} (write: {wrote:?}, read: {read:?})");
    let split = buf.windows(4).position(|w| w == b"\r\n\r\n").expect("header end");
    let head = String::from_utf8_lossy(&buf[..split]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let hdrs: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())))
        .collect();
    let mut payload = buf[split + 4..].to_vec();
    if hdrs.iter().any(|(k, v)| k == "transfer-encoding" && v == "chunked") {
        payload = dechunk(&payload);
    }
    (status, hdrs, payload)
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = b.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(String::from_utf8_lossy(&b[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[end + 2..end + 2 + size]);
        b = &b[end + 2 + size + 2..];
    }
    out
}

/// One parsed sample: (name, labels, value).
pub type Sample = (String, Vec<(String, String)>, f64);

/// Parsed Prometheus text.
pub struct Metrics {
    pub text: String,
    pub samples: Vec<Sample>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut samples = Vec::new();
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n.to_string(), parse_labels(rest.trim_end_matches('}'))),
                None => (series.to_string(), Vec::new()),
            };
            samples.push((name, labels, value.parse().unwrap_or(f64::NAN)));
        }
        Metrics { text: text.to_string(), samples }
    }

    /// Values of `name` whose labels include all of `want`.
    pub fn find(&self, name: &str, want: &[(&str, &str)]) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && want.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v)))
            .map(|(_, _, v)| *v)
            .collect()
    }

    /// The single value of `name` with these labels.
    pub fn one(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        let v = self.find(name, want);
        assert_eq!(v.len(), 1, "{name}{want:?}: {v:?}");
        v[0]
    }

    pub fn labels_of(&self, name: &str, want: &[(&str, &str)]) -> Vec<Vec<(String, String)>> {
        self.samples
            .iter()
            .filter(|(n, l, _)| n == name && want.iter().all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v)))
            .map(|(_, l, _)| l.clone())
            .collect()
    }
}

fn parse_labels(s: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some(eq) = rest.find('=') {
        let key = rest[..eq].trim_start_matches(',').to_string();
        let mut val = String::new();
        let mut chars = rest[eq + 2..].char_indices();
        let mut end = 0;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(if n == 'n' { '\n' } else { n });
                    }
                }
                '"' => {
                    end = eq + 2 + i + 1;
                    break;
                }
                c => val.push(c),
            }
        }
        out.push((key, val));
        rest = &rest[end..];
    }
    out
}

/// `gpuscope sim show NAME --at T --json`.
pub fn engine(scenario: &str, t: f64, node: u32) -> serde_json::Value {
    let out = Command::new(bin())
        .args(["sim", "show", scenario, "--at", &t.to_string(), "--node", &node.to_string(), "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Polls `f` until it returns Some or the time runs out.
pub fn eventually<T>(secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "condition not met within {secs} s");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A running `gpuscope collector`.
pub struct Collector {
    pub proc: Proc,
    pub grpc: String,
    pub http: String,
    pub api: String,
    pub stderr: mpsc::Receiver<String>,
    /// What it logged until it was listening.
    pub log: Vec<String>,
}

/// Starts a collector on the given addresses (use 127.0.0.1:0 for any port).
pub fn collector(args: &[&str], addrs: (&str, &str, &str)) -> Collector {
    collector_with(args, addrs, |_| {})
}

/// Starts a collector as [`collector`] does, with `adjust` applied to its command first.
pub fn collector_with(args: &[&str], addrs: (&str, &str, &str), adjust: impl FnOnce(&mut Command)) -> Collector {
    let mut c = Command::new(bin());
    c.args(["collector", "--grpc", addrs.0, "--http", addrs.1, "--api", addrs.2]).args(args);
    adjust(&mut c);
    c.env_remove("GPUSCOPE_COLLECTOR_TOKEN").env_remove("GPUSCOPE_COLLECTOR_STORE");
    // Owned by Proc from the start, so a failed start still reaps it.
    let mut proc = Proc(c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap());
    let stderr = proc.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut log = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("collector did not start: {log:?}"));
        log.push(line.clone());
        if let Some(rest) = line.split("OTLP gRPC on ").nth(1) {
            let grpc = rest.split(',').next().unwrap().trim().to_string();
            let http = rest.split("OTLP HTTP on ").nth(1).unwrap().split(',').next().unwrap().trim().to_string();
            let api = rest.split("API on ").nth(1).unwrap().split("://").nth(1).unwrap().split('/').next().unwrap();
            let api = api.trim().to_string();
            return Collector { proc, grpc, http, api, stderr: rx, log };
        }
    }
}

impl Collector {
    pub fn api_json(&self, path: &str) -> serde_json::Value {
        let (status, _, body) = get(&self.api, path, &[]);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }

    /// Rule ids of every finding recorded (open or closed).
    pub fn rules(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .api_json("/api/v1/findings")
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["rule"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

/// A free TCP port on the loopback interface, picked by the kernel.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Percent-encodes a query parameter.
pub fn url_encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A real Prometheus server (Debian's package) on a free port, with its own data directory.
pub struct Prometheus {
    pub addr: String,
    pub dir: tempfile::TempDir,
    _proc: Proc,
}

impl Prometheus {
    /// Starts Prometheus with `config` (prometheus.yml) and waits until it is ready. `extra`
    /// files are written next to the configuration first (rule files it names).
    pub fn start(config: &str, extra: &[(&str, &str)]) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in extra {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        let cfg = dir.path().join("prometheus.yml");
        std::fs::write(&cfg, config).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let proc = Proc(
            Command::new("prometheus")
                .args([
                    &format!("--config.file={}", cfg.display()),
                    &format!("--storage.tsdb.path={}", dir.path().join("data").display()),
                    &format!("--web.listen-address={addr}"),
                    "--log.level=warn",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus is installed (scripts/test installs the Debian package)"),
        );
        eventually(30, || TcpStream::connect(&addr).ok().filter(|_| get(&addr, "/-/ready", &[]).0 == 200));
        Prometheus { addr, dir, _proc: proc }
    }

    /// `GET /api/v1/<path>`: the `data` of a successful answer.
    pub fn api(&self, path: &str) -> serde_json::Value {
        let (status, _, body) = get(&self.addr, &format!("/api/v1/{path}"), &[]);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["status"], "success", "{path}: {v}");
        v["data"].clone()
    }

    /// Instant query: (labels, value) per series.
    pub fn query(&self, q: &str) -> Vec<(serde_json::Value, f64)> {
        self.api(&format!("query?query={}", url_encode(q)))["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["metric"].clone(), r["value"][1].as_str().unwrap().parse().unwrap()))
            .collect()
    }

    /// Range query over the last `secs` seconds: (labels, values) per series.
    pub fn query_range(&self, q: &str, secs: f64, step: f64) -> Vec<(serde_json::Value, Vec<f64>)> {
        let end = unix_now();
        let path = format!("query_range?query={}&start={:.3}&end={end:.3}&step={step}", url_encode(q), end - secs);
        self.api(&path)["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let vals = r["values"].as_array().unwrap().iter().map(|v| v[1].as_str().unwrap().parse().unwrap());
                (r["metric"].clone(), vals.collect())
            })
            .collect()
    }

    /// The values of `label` over the series matching `selector` in the last `secs` seconds.
    pub fn label_values(&self, selector: &str, label: &str, secs: f64) -> Vec<String> {
        let end = unix_now();
        let data = self.api(&format!("series?match[]={}&start={:.3}&end={end:.3}", url_encode(selector), end - secs));
        let mut v: Vec<String> =
            data.as_array().unwrap().iter().filter_map(|s| s[label].as_str().map(str::to_string)).collect();
        v.sort();
        v.dedup();
        v
    }
}

/// A CA and a server certificate for localhost signed by it, as files in `dir`: (ca, cert, key).
pub fn certificates(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let [ca, cert, key, _, _] = mtls_certificates(dir);
    (ca, cert, key)
}

/// A CA, a server certificate for localhost signed by it, and a client certificate signed by
/// it, as files in `dir`: (ca, server cert, server key, client cert, client key).
pub fn mtls_certificates(dir: &std::path::Path) -> [std::path::PathBuf; 5] {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(names).unwrap().signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    };
    let (server, server_key) = leaf(vec!["localhost".into(), "127.0.0.1".into()]);
    let (client, client_key) = leaf(vec!["agent-1".into()]);
    let files = ["ca.pem", "server.pem", "server.key", "client.pem", "client.key"].map(|f| dir.join(f));
    for (path, pem) in files.iter().zip([ca_cert.pem(), server, server_key, client, client_key]) {
        std::fs::write(path, pem).unwrap();
    }
    files
}

/// `gpuscope query --json` against the node's simulated tree, frozen at `t`.
pub fn query_json(node: &Node, scenario: &str, t: f64) -> serde_json::Value {
    let out = std::process::Command::new(bin())
        .args(["query", "--json", "--gap-ms", "150"])
        .env("GPUSCOPE_SIM_SCENARIO", scenario)
        .env("GPUSCOPE_SIM_TIME", t.to_string())
        .env("GPUSCOPE_NVML_LIB", nvml_lib())
        .env("GPUSCOPE_PROCFS_ROOT", node.root.path().join("proc"))
        .env("GPUSCOPE_SYSFS_ROOT", node.root.path().join("sys"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
