//! The standalone PromQL alerts on series recorded from every shipped scenario: each scenario is
//! played through the simulator for its whole timeline, every 15 s (Prometheus's default scrape
//! interval) encoded exactly as the agent's Prometheus endpoint serves it, and handed to
//! `promtool test rules` as input series. Over the scenario's time the PromQL alerts that fire
//! are exactly those of the Rust rules the scenario expects (where the rule has a PromQL
//! version), and none fires on a healthy scenario.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use gpuscope_analysis::RULES;
use gpuscope_core::NodeSnapshot;
use gpuscope_exporters::prometheus::{Format, Names, encode};
use gpuscope_sim::Simulation;
use gpuscope_sim::scenario::{BUILTIN, Scenario};
use gpuscope_sim::snapshot::snapshot;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Seconds between recorded samples (Prometheus's default scrape interval).
const STEP: u64 = 15;

/// The XID counters the agent keeps (events seen since it started, by GPU and code), which the
/// simulator's snapshot leaves to the agent.
fn count_xids(s: &mut NodeSnapshot) {
    for g in &mut s.gpus {
        g.xid_counts.clear();
        for e in s.xid_events.iter().filter(|e| e.gpu == g.index) {
            *g.xid_counts.entry(e.code).or_insert(0) += 1;
        }
    }
}

/// Metric names the PromQL alerts read.
fn names_read() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for r in RULES {
        for a in r.promql {
            let mut rest = a.expr;
            while let Some(i) = rest.find("gpuscope_") {
                let tail = &rest[i..];
                let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
                names.insert(tail[..end].to_string());
                rest = &tail[end..];
            }
        }
    }
    names
}

/// One scenario as promtool input series: series (with `instance` and `job`) → value per step.
fn record(name: &str, secs: u64, wanted: &BTreeSet<String>) -> BTreeMap<String, Vec<Option<String>>> {
    let sc = Scenario::load(name).unwrap();
    let steps = (secs / STEP + 1) as usize;
    let mut series: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for n in 0..sc.node_count() {
        let sim = Simulation::new(sc.clone(), n).unwrap();
        for step in 0..steps {
            let mut snap = snapshot(&sim, (step as u64 * STEP) as f64);
            count_xids(&mut snap);
            let mut text = String::new();
            encode(&snap, Format::Text, Names::default(), &[], &mut text);
            for line in text.lines().filter(|l| !l.starts_with('#')) {
                let Some((key, value)) = line.rsplit_once(' ') else { continue };
                let metric = key.split('{').next().unwrap_or(key);
                if !wanted.contains(metric) {
                    continue;
                }
                let target = format!("instance=\"{name}-{n}\",job=\"gpuscope\"");
                let key = match key.split_once('{') {
                    Some((m, labels)) => format!("{m}{{{target},{labels}"),
                    None => format!("{key}{{{target}}}"),
                };
                series.entry(key).or_insert_with(|| vec![None; steps])[step] = Some(value.to_string());
            }
        }
    }
    series
}

#[test]
fn promql_alerts_fire_on_the_same_scenarios_as_their_rules_and_on_no_healthy_one() {
    let wanted = names_read();
    let with_promql: BTreeSet<&str> = RULES.iter().filter(|r| !r.promql.is_empty()).map(|r| r.id).collect();
    let mut tests = String::from("rule_files: ['alerts.yml']\nevaluation_interval: 15s\ntests:\n");
    let mut expected_total = 0;
    for (name, _) in BUILTIN {
        let sc = Scenario::load(name).unwrap();
        // As long as the Rust rules' scenario test plays it: the 10-minute rules need 1000 s.
        let secs = if sc.needs_long_play() { 1000 } else { 500 };
        let series = record(name, secs, &wanted);
        writeln!(tests, "  # {name}\n  - interval: {STEP}s\n    input_series:").unwrap();
        for (key, values) in &series {
            let v: Vec<&str> = values.iter().map(|v| v.as_deref().unwrap_or("_")).collect();
            writeln!(tests, "      - series: '{key}'\n        values: '{}'", v.join(" ")).unwrap();
        }
        // Every PromQL alert that fired at any time of the scenario, by rule.
        let expect: BTreeSet<&str> = sc.expect.iter().map(String::as_str).filter(|r| with_promql.contains(r)).collect();
        expected_total += expect.len();
        writeln!(
            tests,
            "    promql_expr_test:\n      - expr: 'group by (rule) (max_over_time(ALERTS{{alertstate=\"firing\", source=\"promql\"}}[{}s]))'\n        eval_time: {secs}s\n        exp_samples:",
            secs + STEP
        )
        .unwrap();
        for r in &expect {
            writeln!(tests, "          - labels: '{{rule=\"{r}\"}}'\n            value: 1").unwrap();
        }
        if expect.is_empty() {
            tests.truncate(tests.trim_end_matches("        exp_samples:\n").len());
            tests.push_str("        exp_samples: []\n");
        }
    }
    // Every rule with a PromQL version is expected by at least one scenario.
    for r in &with_promql {
        assert!(
            BUILTIN.iter().any(|(n, _)| Scenario::load(n).unwrap().expect.iter().any(|e| e == r)),
            "{r} has no scenario"
        );
    }
    assert!(expected_total >= with_promql.len());
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/alerts.yml"), dir.path().join("alerts.yml"))
        .unwrap();
    std::fs::write(dir.path().join("scenarios_test.yml"), &tests).unwrap();
    let out = Command::new("promtool")
        .args(["test", "rules", "scenarios_test.yml"])
        .current_dir(dir.path())
        .output()
        .expect("promtool is installed (scripts/test installs Debian's prometheus package)");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        // Name the scenarios whose alerts differ: promtool reports failing groups in order.
        let kept = dir.keep();
        panic!("promtool test rules (input in {}):\n{}", kept.display(), &text[..text.len().min(20000)]);
    }
}
