//! The generated dashboards and rules against real peers: the committed files are what the
//! generator writes; a real Prometheus (Debian's package) scraping real agents on simulated
//! scenarios and a real collector, with the generated recording rules loaded, answers every
//! query of every panel of every dashboard with data (template variables resolved as Grafana
//! does), and chosen panels with the scenarios' values; NVIDIA's own dcgm-exporter dashboard
//! works against an agent in legacy `--compat dcgm` mode.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use common::{Clock, NodeSpec, Prometheus, collector, eventually, start, unix_now};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// `gpuscope dashboards export` into a fresh directory: (relative path, content) per file.
fn exported() -> Vec<(String, String)> {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::bin())
        .args(["dashboards", "export", "--out", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let list = Command::new(common::bin()).args(["dashboards", "list"]).output().unwrap();
    String::from_utf8(list.stdout)
        .unwrap()
        .lines()
        .map(|p| (p.to_string(), std::fs::read_to_string(dir.path().join(p)).unwrap()))
        .collect()
}

#[test]
fn the_committed_dashboards_and_rules_are_what_the_generator_writes() {
    let files = exported();
    assert!(files.len() >= 8, "{files:?}");
    for (path, content) in files {
        let committed = std::fs::read_to_string(repo("dashboards").join(&path))
            .unwrap_or_else(|e| panic!("dashboards/{path}: {e} (run `gpuscope dashboards export`)"));
        assert!(
            committed == content,
            "dashboards/{path} is stale: regenerate with `gpuscope dashboards export` (from the repository root)"
        );
    }
}

/// The dashboards' JSON models.
fn dashboards() -> Vec<(String, Value)> {
    exported()
        .into_iter()
        .filter(|(p, _)| p.ends_with(".json"))
        .map(|(p, c)| (p, serde_json::from_str(&c).unwrap()))
        .collect()
}

/// Every query of a panel (rows hold none; text panels hold none).
fn queries(d: &Value) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().unwrap() {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                p["title"].as_str().unwrap().to_string(),
                t["expr"].as_str().unwrap().to_string(),
                t["instant"].as_bool().unwrap_or(false),
            ));
        }
    }
    out
}

/// A label value in a PromQL regex, escaped as Grafana's Prometheus datasource does.
fn regex_escape(v: &str) -> String {
    v.chars().map(|c| if "\\^$.|?*+()[]{}".contains(c) { format!("\\\\{c}") } else { c.to_string() }).collect()
}

/// The test's range: long enough for the slowest rate windows, short enough that every node
/// reported in it.
const RANGE_S: f64 = 60.0;

/// Replaces Grafana's variables in `expr` by `values` (name → value) and the built-ins.
fn substitute(expr: &str, values: &[(String, String)]) -> String {
    let mut e = expr
        .replace("$__rate_interval", "20s")
        .replace("$__interval", "5s")
        .replace("$__range_s", &format!("{RANGE_S:.0}"))
        .replace("$__range", &format!("{RANGE_S:.0}s"));
    let mut sorted: Vec<&(String, String)> = values.iter().collect();
    sorted.sort_by_key(|(n, _)| std::cmp::Reverse(n.len()));
    for (name, value) in sorted {
        e = e.replace(&format!("${{{name}}}"), value).replace(&format!("${name}"), value);
    }
    e
}

/// Resolves a dashboard's query variables in order, as Grafana does with "All" selected: a
/// variable's `label_values(expr, label)` runs with the earlier variables substituted; "All" is
/// its `allValue`, or the alternation of every value. A variable without values fails.
fn resolve(prom: &Prometheus, d: &Value, failures: &mut Vec<String>, name: &str) -> Vec<(String, String)> {
    let mut values: Vec<(String, String)> = Vec::new();
    for v in d["templating"]["list"].as_array().unwrap() {
        if v["type"] != "query" {
            continue;
        }
        let var = v["name"].as_str().unwrap().to_string();
        let def = v["query"]["query"].as_str().unwrap();
        let inner = def.strip_prefix("label_values(").and_then(|s| s.strip_suffix(')')).unwrap();
        let (expr, label) = inner.rsplit_once(',').unwrap();
        let found = prom.label_values(&substitute(expr.trim(), &values), label.trim(), RANGE_S);
        if found.is_empty() {
            failures.push(format!("{name}: variable {var} ({def}) has no values"));
        }
        let all = match v["allValue"].as_str() {
            Some(a) => a.to_string(),
            None => format!("({})", found.iter().map(|f| regex_escape(f)).collect::<Vec<_>>().join("|")),
        };
        values.push((var, all));
    }
    values
}

/// A fleet of simulated nodes behind one collector and one Prometheus with the generated rules.
struct Fleet {
    prom: Prometheus,
    _nodes: Vec<common::Node>,
    _collector: common::Collector,
    _cupti: tempfile::TempDir,
    healthy: String,
}

/// Scenario speed: ten workload seconds per second, so findings open within seconds.
const SPEED: &str = "10";

fn fleet() -> Fleet {
    let c = collector(&["--time-scale", "0.1"], ("127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"));
    // Scenario second 100 now: the straggler's job runs, the notebook sits idle, and the lost GPU
    // falls off the bus two wall seconds later (at scenario second 120).
    let t0 = unix_now() - 10.0;
    let mut nodes = Vec::new();
    let mut node = |scenario: &str, n: u32, extra: &[&str]| {
        let mut spec = NodeSpec::new(scenario, Clock::Running { start: t0 });
        spec.node = n;
        spec.interval_ms = 250;
        spec.extra_env = vec![("GPUSCOPE_SIM_SPEED".into(), SPEED.into())];
        spec.extra_args = ["--otlp-endpoint", &format!("http://{}", c.http), "--otlp-interval-ms", "250"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect();
        nodes.push(start(spec));
    };
    node("straggler-2node", 0, &["--job", "llm-2node"]);
    node("straggler-2node", 1, &["--job", "llm-2node"]);
    node("gpu-lost", 0, &[]);
    node("gpu-idle-allocated", 0, &[]);
    node("healthy-inference", 0, &[]);
    // An H100 split into MIG instances: the per-instance panels.
    node("mig-inference", 0, &[]);
    // A V100: page retirement instead of row remapping.
    node("retired-pages", 0, &[]);
    // The training node also serves dcgm-exporter's legacy names, for NVIDIA's dashboard, and
    // receives kernel profiles: this test process plays its trainer's injection library.
    let cupti = tempfile::tempdir().unwrap();
    let socket = cupti.path().join("cupti.sock");
    node(
        "healthy-bf16-training",
        0,
        &["--compat", "dcgm", "--cupti-enabled", "true", "--cupti-socket", socket.to_str().unwrap()],
    );
    let healthy = nodes.last().unwrap().addr.clone();
    common::cupti::be_the_trainer(&nodes.last().unwrap().root.path().join("proc"));
    let mut library = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        // One window a second until the agent goes away with the fleet.
        loop {
            let mut s = common::cupti::summary(common::cupti::unix_ns(), 500_000_000);
            s.period_ns = 1_000_000_000;
            if library.write_all(&gpuscope_cupti::wire::encode(&s).unwrap()).is_err() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(1));
        }
    });
    let targets: Vec<String> = nodes.iter().map(|n| format!("'{}'", n.addr)).collect();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: ['alerts.yml']\nscrape_configs:\n  \
         - job_name: gpuscope\n    static_configs:\n      - targets: [{}]\n  \
         - job_name: gpuscope-collector\n    static_configs:\n      - targets: ['{}']\n",
        targets.join(", "),
        c.api
    );
    let rules = std::fs::read_to_string(repo("dashboards/alerts.yml")).unwrap();
    let prom = Prometheus::start(&config, &[("alerts.yml", &rules)]);
    eventually(40, || (prom.query("up == 1").len() == 9).then_some(()));
    // The collector's findings have opened and the recording rules have a few evaluations.
    eventually(60, || {
        let open = |rule: &str| !prom.query(&format!("gpuscope_finding_active{{rule=\"{rule}\"}}")).is_empty();
        (open("straggler") && open("gpu-lost") && open("xid-error")).then_some(())
    });
    eventually(30, || {
        let idle = prom.query("count_over_time(gpuscope:gpu_idle_allocated:bool[30s])");
        idle.iter().any(|(_, v)| *v >= 10.0).then_some(())
    });
    Fleet { prom, _nodes: nodes, _collector: c, _cupti: cupti, healthy }
}

/// The single value of `q` whose series has label `key` = `value`.
fn value_where(prom: &Prometheus, q: &str, key: &str, value: &str) -> f64 {
    let r: Vec<f64> = prom.query(q).into_iter().filter(|(l, _)| l[key] == value).map(|(_, v)| v).collect();
    assert_eq!(r.len(), 1, "{q} where {key}={value}: {r:?}");
    r[0]
}

#[test]
fn every_panel_query_returns_data_and_nvidias_dashboard_works_in_legacy_mode() {
    let started = std::time::Instant::now();
    let f = fleet();
    let prom = &f.prom;
    let mut failures = Vec::new();
    let mut panels = 0;
    let mut resolved = Vec::new();
    for (path, d) in dashboards() {
        let values = resolve(prom, &d, &mut failures, &path);
        for (title, expr, instant) in queries(&d) {
            panels += 1;
            let q = substitute(&expr, &values);
            let has_data = if instant {
                !prom.query(&q).is_empty()
            } else {
                prom.query_range(&q, RANGE_S, 5.0).iter().any(|(_, v)| !v.is_empty())
            };
            if !has_data {
                failures.push(format!("{path}: panel {title:?} returns nothing: {q}"));
            }
        }
        resolved.push((path, d, values));
    }
    assert!(failures.is_empty(), "{} of {panels} queries failed:\n{}", failures.len(), failures.join("\n"));
    assert!(panels > 100, "{panels} queries");

    // Chosen panels, with the values the scenarios set.
    let panel = |file: &str, title: &str| -> String {
        let (_, d, values) = resolved.iter().find(|(p, _, _)| p.ends_with(file)).unwrap();
        let (_, expr, _) = queries(d).into_iter().find(|(t, _, _)| t == title).unwrap_or_else(|| panic!("{title}"));
        substitute(&expr, values)
    };
    // One GPU fell off the bus (gpu-lost, GPU 3); one is held by an idle notebook (GPU 1).
    assert_eq!(prom.query(&panel("fleet.json", "Unhealthy (lost)"))[0].1, 1.0);
    assert_eq!(prom.query(&panel("fleet.json", "Idle but allocated"))[0].1, 1.0);
    // The training node's GPUs each hold 62 GiB.
    // A scrape that runs past its 1 s timeout on a busy machine marks that node's series stale
    // until the next one: wait for a scrape that made it rather than read one instant.
    let used_q = panel("node.json", "Framebuffer memory in use");
    let training = eventually(30, || {
        let used = prom.query(&used_q);
        let t: Vec<f64> = used.iter().filter(|(l, _)| l["host"] == "dgx-h100-0").map(|(_, v)| *v).collect();
        (!t.is_empty()).then_some(t)
    });
    assert_eq!(training, vec![(62u64 << 30) as f64; 8]);
    // The job's two members, four GPUs each.
    let members = prom.query(&panel("job.json", "Members"));
    let mut m: Vec<(String, f64)> =
        members.iter().map(|(l, v)| (l["node"].as_str().unwrap().to_string(), *v)).collect();
    m.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(m, vec![("pair-0".to_string(), 4.0), ("pair-1".to_string(), 4.0)]);
    // Findings carry their rule's advice.
    let open = prom.query(&panel("findings.json", "Open findings with advice"));
    let lost = open.iter().find(|(l, _)| l["rule"] == "gpu-lost").expect("gpu-lost is open");
    assert_eq!(lost.0["node"], "lost-node-0");
    assert_eq!(lost.0["gpu"], "3");
    assert_eq!(lost.0["severity"], "critical");
    let advice = gpuscope_analysis::rule("gpu-lost").unwrap().recommendation;
    assert_eq!(lost.0["advice"], advice);

    // NVIDIA's dashboard, its variables and queries as published, against the legacy names.
    let nv: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("tests/data/dcgm-exporter-dashboard-queries.json")).unwrap(),
    )
    .unwrap();
    let mut values = Vec::new();
    for v in nv["variables"].as_array().unwrap() {
        let def = v["definition"].as_str().unwrap();
        let inner = def.strip_prefix("label_values(").and_then(|s| s.strip_suffix(')')).unwrap();
        let (expr, label) = inner.rsplit_once(',').unwrap();
        let found = prom.label_values(expr.trim(), label.trim(), RANGE_S);
        assert!(!found.is_empty(), "{def}");
        if v["name"] == "instance" {
            assert_eq!(found, vec![f.healthy.clone()], "only the dcgm-compatible agent serves DCGM_FI_*");
        }
        values.push((
            v["name"].as_str().unwrap().to_string(),
            found.iter().map(|x| regex_escape(x)).collect::<Vec<_>>().join("|"),
        ));
    }
    for p in nv["panels"].as_array().unwrap() {
        let q = substitute(p["expr"].as_str().unwrap(), &values);
        assert!(!prom.query(&q).is_empty(), "NVIDIA panel {} returns nothing: {q}", p["title"]);
    }
    // Same values as the native series, in dcgm-exporter's units.
    let gpu0 = |q: &str| value_where(prom, q, "gpu", "0");
    let native = |name: &str| value_where(prom, &format!("{name}{{instance=\"{}\"}}", f.healthy), "gpu", "0");
    let fb = gpu0(&substitute(nv["panels"][6]["expr"].as_str().unwrap(), &values));
    assert_eq!(fb, 62.0 * 1024.0, "FB_USED in MiB");
    let clock = gpu0(&substitute(nv["panels"][4]["expr"].as_str().unwrap(), &values));
    assert_eq!(
        clock,
        (native("gpuscope_gpu_sm_clock_hertz") / 1e6).round() * 1e6,
        "SM clock in MHz, scaled by the dashboard"
    );
    eprintln!("{panels} panel queries on real data in {:.0} s", started.elapsed().as_secs_f64());
}
