//! The collector under hostile clients, end to end on loopback: connections held open (idle,
//! slow headers, slow bodies) and a listener's connection cap.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::{Collector, collector_with, eventually, request};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// A collector started with the usual 1,024 open-files soft limit (whatever this test process
/// has), as a service manager or a login shell gives it.
fn collector_at_1024_files(args: &[&str]) -> Collector {
    collector_with(args, ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"), |c| {
        // SAFETY: runs in the child between fork and exec; setrlimit is async-signal-safe.
        unsafe {
            c.pre_exec(|| {
                let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
                if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                lim.rlim_cur = lim.rlim_max.min(1024);
                if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
}

/// This test process holds thousands of sockets: its soft limit goes up to its hard limit.
fn raise_own_files_limit(need: u64) {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain system calls on a struct this function owns.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        lim.rlim_cur = lim.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
    }
    assert!(lim.rlim_cur >= need, "this test needs {need} open files; the hard limit is {}", lim.rlim_cur);
}

/// One OTLP/JSON push: `host`'s GPU 0 drawing `watts` at `t_ms`.
pub fn push_body(host: &str, t_ms: u64, watts: f64) -> Vec<u8> {
    serde_json::json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": host}}]},
        "scopeMetrics": [{"metrics": [{"name": "hw.power", "gauge": {"dataPoints": [{
            "attributes": [
                {"key": "gpuscope.gpu.index", "value": {"stringValue": "0"}},
                {"key": "hw.id", "value": {"stringValue": "GPU-0"}}
            ],
            "timeUnixNano": (t_ms * 1_000_000).to_string(),
            "asDouble": watts
        }]}}]}]
    }]})
    .to_string()
    .into_bytes()
}

fn now_ms() -> u64 {
    (common::unix_now() * 1000.0) as u64
}

/// A normal push and a normal API call, each timed; both must succeed.
fn normal_calls(c: &Collector) -> (Duration, Duration) {
    let t = Instant::now();
    let (status, _, body) = request(
        &c.http,
        "POST",
        "/v1/metrics",
        &[("Content-Type", "application/json")],
        &push_body("normal", now_ms(), 300.0),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let push = t.elapsed();
    let t = Instant::now();
    let (status, _, _) = common::get(&c.api, "/api/v1/nodes", &[]);
    assert_eq!(status, 200);
    (push, t.elapsed())
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median push and API latencies over `n` calls.
fn latencies(c: &Collector, n: usize) -> (Duration, Duration) {
    let (push, api): (Vec<_>, Vec<_>) = (0..n).map(|_| normal_calls(c)).unzip();
    (median(push), median(api))
}

fn metric(c: &Collector, series: &str) -> f64 {
    let text = String::from_utf8(common::get(&c.api, "/metrics", &[]).2).unwrap();
    let line = text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("no {series} in {text}"));
    line.rsplit_once(' ').unwrap().1.parse().unwrap()
}

/// Reads every socket until the server closes it; returns, per socket, how long after `since`
/// that was seen (`None`: still open at `until`).
fn wait_closed(socks: &mut [TcpStream], since: Instant, until: Instant) -> Vec<Option<Duration>> {
    for s in socks.iter() {
        s.set_nonblocking(true).unwrap();
    }
    let mut closed = vec![None; socks.len()];
    let mut buf = [0u8; 4096];
    while Instant::now() < until && closed.iter().any(Option::is_none) {
        for (s, c) in socks.iter_mut().zip(closed.iter_mut()).filter(|(_, c)| c.is_none()) {
            loop {
                match s.read(&mut buf) {
                    Ok(0) => *c = Some(since.elapsed()),
                    Ok(_) => continue, // an answer (408) before the close
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => *c = Some(since.elapsed()), // reset
                }
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    closed
}

/// Issue 13, item 1: 2,000 connections held open to OTLP/HTTP — 700 silent, 700 sending a request
/// head a byte at a time, 600 sending a body a byte at a time — lock nobody out: a push and an
/// API call made while they are held answer within 100 ms of the same calls made before, and the
/// server closes every one of them within its timeouts, each for its reason. Before, the
/// collector ran out of its 1,024 files and every listener stopped answering.
#[test]
fn two_thousand_hostile_connections_lock_nobody_out_and_are_closed_within_the_timeouts() {
    // Long enough that on a busy machine every connection is accepted before the first expires.
    let (header_s, body_s, idle_s) = (8, 8, 12);
    let c = collector_at_1024_files(&[
        // The slow bodies are 600 pushes from one address: lift the per-client rate limit, which
        // would refuse most of them at once, so that the timeouts are what closes them.
        "--max-pushes-per-client-per-s",
        "100000",
        "--header-read-timeout-s",
        &header_s.to_string(),
        "--body-read-timeout-s",
        &body_s.to_string(),
        "--idle-timeout-s",
        &idle_s.to_string(),
    ]);
    assert!(
        c.log.iter().any(|l| l.contains("open files limit raised from 1024 to")),
        "the collector raises its soft limit: {:?}",
        c.log
    );
    raise_own_files_limit(2_500);
    let before = latencies(&c, 7);

    let connect = || TcpStream::connect(&c.http).unwrap();
    let opened = Instant::now();
    let silent: Vec<TcpStream> = (0..700).map(|_| connect()).collect();
    let mut slow_head: Vec<TcpStream> = (0..700).map(|_| connect()).collect();
    let mut slow_body: Vec<TcpStream> = (0..600).map(|_| connect()).collect();
    for s in &mut slow_head {
        s.write_all(b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\n").unwrap();
    }
    for s in &mut slow_body {
        s.write_all(b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100000\r\n\r\n\x0a").unwrap();
    }
    // Both kinds keep trickling a byte every half second until the server hangs up.
    let trickle = |mut socks: Vec<TcpStream>, byte: &'static [u8]| {
        std::thread::spawn(move || {
            let end = Instant::now() + Duration::from_secs(15);
            while Instant::now() < end {
                socks.retain_mut(|s| s.write_all(byte).is_ok());
                std::thread::sleep(Duration::from_millis(500));
            }
        })
    };
    let head_clones: Vec<TcpStream> = slow_head.iter().map(|s| s.try_clone().unwrap()).collect();
    let body_clones: Vec<TcpStream> = slow_body.iter().map(|s| s.try_clone().unwrap()).collect();
    let trickles = [trickle(head_clones, b"X"), trickle(body_clones, b"\x00")];
    // Accepted as fast as the collector can: the kernel queues the rest meanwhile.
    let open_now = || metric(&c, "gpuscope_collector_connections{listener=\"otlp_http\"}");
    let accepting = Instant::now();
    while open_now() < 2_000.0 {
        let closed: Vec<String> = String::from_utf8(common::get(&c.api, "/metrics", &[]).2)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("gpuscope_collector_connections") && !l.ends_with(" 0"))
            .map(String::from)
            .collect();
        assert!(accepting.elapsed() < Duration::from_secs(30), "not all held at once: {closed:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let all_open = opened.elapsed();
    let during = latencies(&c, 7);
    let still_held = open_now();
    assert!(still_held >= 2_000.0, "the connections were held while measuring: {still_held}");
    eprintln!("median push, API: {before:?} before, {during:?} with 2,000 connections held (opened in {all_open:?})");
    let allowed = Duration::from_millis(100);
    assert!(during.0 <= before.0 + allowed, "push: {:?} while held, {:?} before", during.0, before.0);
    assert!(during.1 <= before.1 + allowed, "API: {:?} while held, {:?} before", during.1, before.1);

    // Each is closed by its own deadline (from when it was opened, here at most `all_open`
    // ago); a second of grace for the watchdog's wake-up on a busy machine.
    let grace = all_open + Duration::from_secs(2);
    let until = opened + Duration::from_secs(idle_s) + grace + Duration::from_secs(3);
    // All watched at once: each close is seen when it happens, whatever the kind.
    let (n_silent, n_head) = (silent.len(), slow_head.len());
    let mut all: Vec<TcpStream> = silent.into_iter().chain(slow_head).chain(slow_body).collect();
    let closed = wait_closed(&mut all, opened, until);
    let (silent_closed, rest) = closed.split_at(n_silent);
    let (head_closed, body_closed) = rest.split_at(n_head);
    // A slow body is answered 408 at its timeout; the connection then closes within the header
    // timeout at most (the rest of the body is never read as a request).
    for (what, closed, first, limit) in [
        ("silent", silent_closed, idle_s, idle_s),
        ("slow head", head_closed, header_s, header_s),
        ("slow body", body_closed, body_s, body_s + header_s),
    ] {
        let open = closed.iter().filter(|c| c.is_none()).count();
        assert_eq!(open, 0, "{open} {what} connections still open");
        let latest = closed.iter().flatten().max().unwrap();
        assert!(*latest <= Duration::from_secs(limit) + grace, "{what}: last closed after {latest:?}");
        let earliest = closed.iter().flatten().min().unwrap();
        assert!(*earliest >= Duration::from_secs(first) - Duration::from_millis(100), "{what}: {earliest:?}");
    }
    for t in trickles {
        t.join().unwrap();
    }
    let closed = |reason: &str| {
        metric(
            &c,
            &format!("gpuscope_collector_connections_closed_total{{listener=\"otlp_http\",reason=\"{reason}\"}}"),
        )
    };
    assert_eq!(closed("idle_timeout"), 700.0);
    assert!(closed("header_timeout") >= 700.0, "{}", closed("header_timeout"));
    assert_eq!(metric(&c, "gpuscope_collector_refused_total{reason=\"http_body_timeout\"}"), 600.0);
    eventually(5, || (metric(&c, "gpuscope_collector_connections{listener=\"otlp_http\"}") == 0.0).then_some(()));
    normal_calls(&c);
}

/// A listener holds at most `max_connections`: the next ones are closed as they are accepted
/// (refused, not queued) and counted, and the other listeners keep answering.
#[test]
fn connections_over_the_cap_are_closed_at_once_and_counted() {
    let c = collector_at_1024_files(&["--max-connections", "100"]);
    let mut socks: Vec<TcpStream> = (0..300).map(|_| TcpStream::connect(&c.http).unwrap()).collect();
    let start = Instant::now();
    let closed = wait_closed(&mut socks, start, start + Duration::from_secs(3));
    let refused = closed.iter().filter(|c| c.is_some()).count();
    assert_eq!(refused, 200, "all but 100 are closed at once");
    assert_eq!(
        metric(&c, "gpuscope_collector_connections_closed_total{listener=\"otlp_http\",reason=\"over_limit\"}"),
        200.0
    );
    assert_eq!(metric(&c, "gpuscope_collector_connections{listener=\"otlp_http\"}"), 100.0);
    // The API has its own cap.
    assert_eq!(common::get(&c.api, "/healthz", &[]).0, 200);
    drop(socks);
    eventually(5, || (metric(&c, "gpuscope_collector_connections{listener=\"otlp_http\"}") == 0.0).then_some(()));
    normal_calls(&c);
}

fn push(c: &Collector, body: &[u8]) -> (u16, String) {
    let (status, _, body) = request(&c.http, "POST", "/v1/metrics", &[("Content-Type", "application/json")], body);
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// One OTLP/JSON push of `host` at `t_ms` with `gpus` GPUs drawing `watts`.
fn push_gpus(host: &str, t_ms: u64, gpus: u32, watts: f64) -> Vec<u8> {
    let points: Vec<serde_json::Value> = (0..gpus)
        .map(|i| {
            serde_json::json!({
                "attributes": [
                    {"key": "gpuscope.gpu.index", "value": {"stringValue": i.to_string()}},
                    {"key": "hw.id", "value": {"stringValue": format!("GPU-{i}")}}
                ],
                "timeUnixNano": (t_ms * 1_000_000).to_string(),
                "asDouble": watts
            })
        })
        .collect();
    serde_json::json!({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "host.name", "value": {"stringValue": host}}]},
        "scopeMetrics": [{"metrics": [{"name": "hw.power", "gauge": {"dataPoints": points}}]}]
    }]})
    .to_string()
    .into_bytes()
}

fn node_names(c: &Collector) -> Vec<String> {
    c.api_json("/api/v1/nodes").as_array().unwrap().iter().map(|n| n["node"].as_str().unwrap().to_string()).collect()
}

/// Issue 13, item 2: one sample timestamped an hour or centuries ahead no longer freezes its
/// node. It is refused (partial success, counted); the samples after it are taken as usual.
#[test]
fn a_sample_from_the_future_is_refused_and_does_not_freeze_its_node() {
    let c = collector_with(&["--max-clock-skew-s", "30"], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"), |_| {});
    let now = now_ms();
    assert_eq!(push(&c, &push_body("n0", now - 2_000, 100.0)).0, 200);
    for ahead_ms in [3_600_000, 500 * 365 * 86_400_000] {
        let (status, answer) = push(&c, &push_body("n0", now + ahead_ms, 999.0));
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains("ahead of the collector's clock"), "partial success says why: {answer}");
    }
    // Within the skew is fine: 10 s ahead.
    assert_eq!(push(&c, &push_body("n0", now + 10_000, 250.0)).0, 200);
    let later = now + 10_001;
    assert_eq!(push(&c, &push_body("n0", later, 200.0)).0, 200);
    let n = eventually(10, || {
        let n = c.api_json("/api/v1/nodes/n0");
        (n["node"]["samples_total"] == 3).then_some(n)
    });
    assert_eq!(n["node"]["last_sample_ms"], later, "{n}");
    assert_eq!(n["node"]["out_of_order_total"], 0, "{n}");
    assert_eq!(n["latest"]["gpus"][0]["power_watts"], 200.0, "{n}");
    assert_eq!(metric(&c, "gpuscope_collector_limited_total{reason=\"future_timestamp\"}"), 2.0);
}

/// Issue 13, item 3: what one client can make the collector hold is bounded — nodes, GPUs per
/// node, name and attribute sizes — and each refusal is counted by reason; a node can be
/// forgotten through the API; a name with a newline cannot forge a log line; names with a slash
/// are found percent-encoded; the API answers only its methods; a batch sent twice counts once.
#[test]
fn nodes_gpus_and_names_are_bounded_and_a_node_can_be_forgotten() {
    let c = collector_with(
        &["--max-nodes", "3", "--max-gpus-per-node", "2"],
        ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"),
        |_| {},
    );
    let now = now_ms();
    for host in ["a", "rack/1", "c", "d"] {
        assert_eq!(push(&c, &push_gpus(host, now, 1, 100.0)).0, 200);
    }
    assert_eq!(push(&c, &push_gpus("a", now + 1, 5, 100.0)).0, 200);
    let huge = "h".repeat(1 << 20);
    let (status, answer) = push(&c, &push_gpus(&huge, now, 1, 100.0));
    assert_eq!((status, answer.contains("no host.name")), (200, true), "{answer}");
    let (status, answer) = push(&c, &push_gpus("evil\n2026-01-01T00:00:00Z  INFO forged", now, 1, 100.0));
    assert_eq!((status, answer.contains("is not a host name")), (200, true), "{answer}");
    let a = eventually(10, || {
        let a = c.api_json("/api/v1/nodes/a");
        (a["node"]["samples_total"] == 2).then_some(a)
    });
    assert_eq!(a["latest"]["gpus"].as_array().unwrap().len(), 2, "GPUs beyond the limit are dropped: {a}");
    assert_eq!(node_names(&c), ["a", "c", "rack/1"], "d was one node too many");
    let limited = |reason: &str| metric(&c, &format!("gpuscope_collector_limited_total{{reason=\"{reason}\"}}"));
    assert_eq!(limited("too_many_nodes"), 1.0);
    assert_eq!(limited("too_many_gpus"), 3.0);
    assert_eq!(limited("attribute_too_long"), 1.0);
    assert_eq!(limited("invalid_host_name"), 1.0);

    // A name with a slash, percent-encoded.
    assert_eq!(common::get(&c.api, "/api/v1/nodes/rack%2F1", &[]).0, 200);
    assert_eq!(common::get(&c.api, "/api/v1/nodes/rack%2", &[]).0, 400);
    // Only GET (and HEAD) reads; DELETE forgets a node.
    for method in ["POST", "PUT", "PATCH"] {
        let (status, headers, _) = request(&c.api, method, "/api/v1/nodes", &[], b"");
        assert_eq!(status, 405, "{method}");
        assert!(headers.iter().any(|(k, v)| k == "allow" && v == "GET, HEAD"), "{headers:?}");
    }
    assert_eq!(request(&c.api, "DELETE", "/api/v1/nodes/rack%2F1", &[], b"").0, 204);
    assert_eq!(request(&c.api, "DELETE", "/api/v1/nodes/rack%2F1", &[], b"").0, 404);
    assert_eq!(common::get(&c.api, "/api/v1/nodes/rack%2F1", &[]).0, 404);
    // Room again for d. Its batch sent twice (an answer lost to a timeout) counts once.
    let d = push_gpus("d", now, 1, 100.0);
    assert_eq!(push(&c, &d).0, 200);
    assert_eq!(push(&c, &d).0, 200);
    assert_eq!(push(&c, &push_gpus("d", now + 1000, 1, 100.0)).0, 200);
    let d = eventually(10, || {
        let d = c.api_json("/api/v1/nodes/d");
        (d["node"]["last_sample_ms"] == now + 1000).then_some(d)
    });
    assert_eq!(d["node"]["samples_total"], 2, "{d}");
    assert_eq!(metric(&c, "gpuscope_collector_duplicate_samples_total"), 1.0);
    assert_eq!(node_names(&c), ["a", "c", "d"]);
    // Nothing a client sent became a log line of its own.
    let log: Vec<String> = c.stderr.try_iter().collect();
    assert!(log.iter().all(|l| !l.starts_with("2026-01-01")), "{log:?}");
    assert!(log.iter().any(|l| l.contains("node forgotten through the API") && l.contains("\"rack/1\"")), "{log:?}");
}

/// Issue 13, item 3: a node silent for the eviction time leaves memory (and the node list); it
/// comes back when it reports again.
#[test]
fn a_silent_node_is_evicted_from_memory_and_comes_back_when_it_reports() {
    let c = collector_with(
        &["--evict-after-s", "2", "--stale-after-s", "1"],
        ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"),
        |_| {},
    );
    for host in ["quiet-0", "quiet-1"] {
        assert_eq!(push(&c, &push_gpus(host, now_ms(), 1, 100.0)).0, 200);
    }
    eventually(10, || (node_names(&c).len() == 2).then_some(()));
    eventually(15, || node_names(&c).is_empty().then_some(()));
    assert_eq!(metric(&c, "gpuscope_collector_nodes_evicted_total"), 2.0);
    assert_eq!(common::get(&c.api, "/api/v1/nodes/quiet-0", &[]).0, 404);
    assert_eq!(push(&c, &push_gpus("quiet-0", now_ms(), 1, 100.0)).0, 200);
    eventually(10, || (node_names(&c) == ["quiet-0"]).then_some(()));
}

/// Issue 13, item 4: with a token, every surface that tells anything needs it — the findings,
/// nodes and jobs, the event stream and `/metrics` — not only pushes; `/healthz` stays open for
/// probes. The token comes from a file; the scheme is case-insensitive; the start-up log says
/// what is protected; the API can have its own token, which cannot push.
#[test]
fn a_token_protects_pushes_and_every_api_surface() {
    let dir = tempfile::tempdir().unwrap();
    let push_file = dir.path().join("push.token");
    let api_file = dir.path().join("api.token");
    std::fs::write(&push_file, "s3cret\n").unwrap();
    std::fs::write(&api_file, "r3ader\n").unwrap();
    let addrs = ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0");
    let c = collector_with(&["--token-file", push_file.to_str().unwrap()], addrs, |_| {});
    assert!(
        c.log.iter().any(|l| l.contains(
            "authentication: OTLP pushes bearer token required; API bearer token required; TLS off (plain text)"
        )),
        "{:?}",
        c.log
    );
    let body = push_body("n0", now_ms(), 100.0);
    let json = ("Content-Type", "application/json");
    let post = |auth: &[(&str, &str)]| {
        let headers: Vec<(&str, &str)> = std::iter::once(json).chain(auth.iter().copied()).collect();
        request(&c.http, "POST", "/v1/metrics", &headers, &body).0
    };
    assert_eq!(post(&[]), 401);
    assert_eq!(post(&[("Authorization", "BEARER s3cret")]), 200, "the scheme is case-insensitive");
    for path in ["/api/v1/nodes", "/api/v1/nodes/n0", "/api/v1/findings", "/api/v1/jobs", "/api/v1/stream", "/metrics"]
    {
        let (status, headers, _) = common::get(&c.api, path, &[]);
        assert_eq!(status, 401, "{path} without the token");
        assert!(headers.iter().any(|(k, v)| k == "www-authenticate" && v == "Bearer"), "{path}: {headers:?}");
        assert_eq!(common::get(&c.api, path, &[("Authorization", "Bearer wrong")]).0, 401, "{path}");
        if path != "/api/v1/stream" {
            assert_eq!(common::get(&c.api, path, &[("Authorization", "bearer s3cret")]).0, 200, "{path}");
        }
    }
    assert_eq!(request(&c.api, "DELETE", "/api/v1/nodes/n0", &[], b"").0, 401);
    assert_eq!(common::get(&c.api, "/healthz", &[]).0, 200);
    // The stream answers with the token (its headers arrive; the body stays open).
    let mut s = TcpStream::connect(&c.api).unwrap();
    s.write_all(b"GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer s3cret\r\n\r\n").unwrap();
    let mut head = [0u8; 12];
    s.read_exact(&mut head).unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    drop(c);

    // A separate API token: readers cannot push and agents cannot read.
    let c = collector_with(
        &["--token-file", push_file.to_str().unwrap(), "--api-token-file", api_file.to_str().unwrap()],
        addrs,
        |_| {},
    );
    assert_eq!(common::get(&c.api, "/api/v1/nodes", &[("Authorization", "Bearer r3ader")]).0, 200);
    assert_eq!(common::get(&c.api, "/api/v1/nodes", &[("Authorization", "Bearer s3cret")]).0, 401);
    let (status, _, _) = request(
        &c.http,
        "POST",
        "/v1/metrics",
        &[json, ("Authorization", "Bearer r3ader")],
        &push_body("n0", now_ms(), 1.0),
    );
    assert_eq!(status, 401);
}

/// An empty or unreadable token file, or a token given twice, stops the collector at start with
/// the key and the file named.
#[test]
fn a_bad_token_file_is_a_start_up_error_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.token");
    std::fs::write(&empty, "\n").unwrap();
    let missing = dir.path().join("missing.token");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(common::bin())
            .args(["collector", "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--api", "127.0.0.1:0"])
            .args(args)
            .env_remove("GPUSCOPE_COLLECTOR_TOKEN")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["--token-file", empty.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("flag --token-file: key `token_file`") && err.contains("is empty"), "{err}");
    let (code, err) = run(&["--api-token-file", missing.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("key `api_token_file`: cannot read") && err.contains("missing.token"), "{err}");
    let (code, err) = run(&["--token", "a", "--token-file", empty.to_str().unwrap()]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("set token or token_file, not both"), "{err}");
}

/// Issue 13, item 4: mutual TLS for OTLP. With a client CA, the collector's receivers take
/// pushes only from agents presenting a certificate it signed, over HTTP and gRPC; an agent
/// without one delivers nothing.
#[test]
fn otlp_over_mutual_tls_on_both_transports() {
    let dir = tempfile::tempdir().unwrap();
    let [ca, cert, key, client_cert, client_key] = common::mtls_certificates(dir.path());
    let c = collector_with(
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
            "--tls-client-ca",
            ca.to_str().unwrap(),
        ],
        ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"),
        |_| {},
    );
    assert!(c.log.iter().any(|l| l.contains("TLS on, client certificates required")), "{:?}", c.log);
    let port = |a: &str| a.rsplit(':').next().unwrap().to_string();
    let agent = |protocol: &str, addr: &str, host: &str, with_cert: bool| {
        let mut s =
            common::NodeSpec::new("healthy-inference", common::Clock::Running { start: common::unix_now() - 30.0 });
        s.extra_args = [
            "--otlp-endpoint",
            &format!("https://localhost:{}", port(addr)),
            "--otlp-protocol",
            protocol,
            "--otlp-interval-ms",
            "200",
            "--hostname",
            host,
            "--otlp-ca-file",
            ca.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if with_cert {
            s.extra_args.extend(
                [
                    "--otlp-client-cert",
                    client_cert.to_str().unwrap(),
                    "--otlp-client-key",
                    client_key.to_str().unwrap(),
                ]
                .map(String::from),
            );
        }
        common::start(s)
    };
    let good = [agent("http/protobuf", &c.http, "mtls-http", true), agent("grpc", &c.grpc, "mtls-grpc", true)];
    let bad = [agent("http/protobuf", &c.http, "no-cert-http", false), agent("grpc", &c.grpc, "no-cert-grpc", false)];
    let sent = |n: &common::Node| n.metrics().one("gpuscope_otlp_batches_sent_total", &[]);
    eventually(20, || good.iter().all(|n| sent(n) >= 2.0).then_some(()));
    let failures = |n: &common::Node| n.metrics().one("gpuscope_otlp_retryable_failures_total", &[]);
    eventually(20, || bad.iter().all(|n| failures(n) >= 2.0).then_some(()));
    for n in &bad {
        assert_eq!(sent(n), 0.0, "no client certificate, nothing delivered");
    }
}

/// A client certificate without its key, or one that cannot be read, stops the agent at start.
#[test]
fn a_client_certificate_without_its_key_is_a_start_up_error() {
    let out = std::process::Command::new(common::bin())
        .args([
            "agent",
            "--listen",
            "127.0.0.1:0",
            "--otlp-endpoint",
            "https://localhost:1",
            "--otlp-ca-file",
            "/nonexistent/ca.pem",
        ])
        .args(["--otlp-client-cert", "/nonexistent/client.pem"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("key `otlp_client_cert`: needs otlp_client_key"), "{err}");
}

/// Issue 13, item 7: an unknown Content-Encoding is refused with 415 instead of being read as
/// none; an OTLP header value with a line break is a start-up error instead of every batch
/// dropped later.
#[test]
fn an_unknown_encoding_is_415_and_a_header_with_a_line_break_stops_the_agent() {
    let c = collector_with(&[], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"), |_| {});
    let body = push_body("enc", now_ms(), 1.0);
    let post = |encoding: &str| {
        request(
            &c.http,
            "POST",
            "/v1/metrics",
            &[("Content-Type", "application/json"), ("Content-Encoding", encoding)],
            &body,
        )
        .0
    };
    assert_eq!(post("br"), 415);
    assert_eq!(post("deflate"), 415);
    assert_eq!(post("identity"), 200);
    assert_eq!(metric(&c, "gpuscope_collector_refused_total{reason=\"http_unsupported_type\"}"), 2.0);

    let out = std::process::Command::new(common::bin())
        .args(["agent", "--listen", "127.0.0.1:0", "--otlp-endpoint", "http://127.0.0.1:1"])
        .env("GPUSCOPE_OTLP_HEADERS", "authorization=Bearer abc\r\nX-Injected: 1")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("key `otlp_headers`") && err.contains("control character"), "{err}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits for a log line of `node` containing `text`.
fn log_line(node: &mut common::Node, text: &str, secs: u64) -> String {
    eventually(secs, || node.drain_log().into_iter().find(|l| l.contains(text)))
}

/// Issue 13, item 5: an outage of the collector is in the agent's log — one warning when pushes
/// start failing, with the reason, and one line when they work again with how much was queued,
/// replayed and dropped; an endpoint that does not resolve says so.
#[test]
fn the_agent_logs_an_outage_once_and_its_recovery_with_what_it_cost() {
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut spec =
        common::NodeSpec::new("healthy-inference", common::Clock::Running { start: common::unix_now() - 30.0 });
    spec.extra_args = ["--otlp-endpoint", &endpoint, "--otlp-interval-ms", "200"].map(String::from).to_vec();
    let mut node = common::start(spec);
    let failing = log_line(&mut node, "OTLP push to", 20);
    assert!(failing.contains(&format!("OTLP push to {endpoint} failing:")) && failing.contains("refused"), "{failing}");
    std::thread::sleep(Duration::from_secs(2));
    let log = node.drain_log();
    assert_eq!(log.iter().filter(|l| l.contains("failing")).count(), 1, "one line per outage, not per batch: {log:?}");
    let addr = format!("127.0.0.1:{port}");
    let _c = collector_with(&[], ("127.0.0.1:0", &addr, "127.0.0.1:0"), |_| {});
    let recovered = log_line(&mut node, "recovered after", 20);
    let numbers: Vec<u64> =
        recovered.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).map(|s| s.parse().unwrap()).collect();
    // "... recovered after S s: Q batches were queued at most, R replayed, D dropped"
    let [.., queued, replayed, dropped] = numbers[..] else { panic!("{recovered}") };
    assert!(queued >= 5 && replayed >= queued && dropped == 0, "{recovered}");

    let mut spec =
        common::NodeSpec::new("healthy-inference", common::Clock::Running { start: common::unix_now() - 30.0 });
    spec.extra_args = ["--otlp-endpoint", "http://no-such-host.invalid:4318"].map(String::from).to_vec();
    let mut node = common::start(spec);
    let failing = log_line(&mut node, "OTLP push to", 30);
    assert!(failing.contains("no-such-host.invalid") && failing.contains("dns"), "{failing}");
}

/// Issue 13, item 6: spilled batches are stored compressed (a fraction of their encoded size),
/// a write that failed or a crash left leaves no `.tmp` file behind, and the compressed batches
/// replay to the collector once it is back. Prints the figures the documentation states.
#[test]
fn spilled_batches_are_compressed_and_replay_and_no_tmp_file_is_left() {
    use prost::Message;
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spill");
    std::fs::create_dir_all(&spill).unwrap();
    std::fs::write(spill.join("00000000000000000007.tmp"), b"half a batch from a crash").unwrap();
    let port = free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    // 8 GPUs at 1 s, one batch a second: the case the documentation sizes the bound for.
    let mut spec =
        common::NodeSpec::new("healthy-bf16-training", common::Clock::Running { start: common::unix_now() - 100.0 });
    spec.interval_ms = 1000;
    spec.extra_args =
        ["--otlp-endpoint", &endpoint, "--otlp-interval-ms", "1000", "--otlp-spill-dir", spill.to_str().unwrap()]
            .map(String::from)
            .to_vec();
    let node = common::start(spec);
    let files = || {
        let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(&spill).unwrap().map(|e| e.unwrap().path()).collect();
        v.sort();
        v
    };
    eventually(30, || (files().len() >= 4).then_some(()));
    let spilled = files();
    assert!(spilled.iter().all(|p| p.to_string_lossy().ends_with(".otlp.gz")), "{spilled:?}");
    let (mut stored, mut encoded) = (0usize, 0usize);
    for p in &spilled[..4] {
        let gz = std::fs::read(p).unwrap();
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut raw).unwrap();
        let req =
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest::decode(&raw[..]).unwrap();
        assert!(!req.resource_metrics.is_empty());
        stored += gz.len();
        encoded += raw.len();
    }
    let ratio = encoded as f64 / stored as f64;
    let per_batch = stored as f64 / 4.0;
    eprintln!(
        "8-GPU batch: {:.0} bytes encoded, {per_batch:.0} stored ({ratio:.1}x); 256 MiB holds {:.1} h at one batch a second",
        encoded as f64 / 4.0,
        (256u64 << 20) as f64 / per_batch / 3600.0
    );
    assert!(ratio >= 5.0, "compressed {ratio:.1}x");

    let addr = format!("127.0.0.1:{port}");
    let c = collector_with(&[], ("127.0.0.1:0", &addr, "127.0.0.1:0"), |_| {});
    eventually(30, || files().is_empty().then_some(()));
    let n = c.api_json("/api/v1/nodes");
    assert_eq!(n.as_array().unwrap().len(), 1, "{n}");
    assert!(n[0]["samples_total"].as_u64().unwrap() >= 4, "{n}");
    drop(node);
}

/// Issue 13, item 1: pushes are rate-limited per client address: past its burst a client gets
/// 429 with Retry-After (counted), and its bucket refills with time.
#[test]
fn pushes_beyond_a_clients_rate_are_answered_429() {
    let c =
        collector_with(&["--max-pushes-per-client-per-s", "5"], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"), |_| {});
    let t = Instant::now();
    let statuses: Vec<u16> = (0..40)
        .map(|i| {
            let (status, headers, _) = request(
                &c.http,
                "POST",
                "/v1/metrics",
                &[("Content-Type", "application/json")],
                &push_body("fast", now_ms() + i, 1.0),
            );
            if status == 429 {
                assert!(headers.iter().any(|(k, v)| k == "retry-after" && v == "1"), "{headers:?}");
            }
            status
        })
        .collect();
    let ok = statuses.iter().filter(|s| **s == 200).count() as f64;
    let limited = statuses.iter().filter(|s| **s == 429).count();
    // A burst of 10, then 5 a second for as long as the loop took.
    assert!(ok <= 10.0 + 5.0 * t.elapsed().as_secs_f64() + 1.0, "{statuses:?}");
    assert!(limited > 0 && ok as usize + limited == 40, "{statuses:?}");
    assert_eq!(metric(&c, "gpuscope_collector_refused_total{reason=\"http_rate_limited\"}"), limited as f64);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(push(&c, &push_body("fast", now_ms() + 100, 1.0)).0, 200, "the bucket refills");
}
