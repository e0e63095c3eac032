//! The generated dashboards against the dashboard schema Grafana publishes on npm
//! (`@grafana/schema`, installed by scripts/test into tests/grafana-schema): the TypeScript
//! compiler checks each JSON model as a `Dashboard`, and refuses one with a wrong field.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn checker() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/grafana-schema");
    assert!(
        dir.join("node_modules/@grafana/schema").is_dir() && dir.join("node_modules/typescript").is_dir(),
        "@grafana/schema is not installed in {}: run scripts/test (npm ci there)",
        dir.display()
    );
    dir.join("check.mjs")
}

fn check(files: &[PathBuf]) -> Output {
    Command::new("node").arg(checker()).args(files).output().expect("node is installed (scripts/test installs nodejs)")
}

fn dashboards() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/grafana");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    v.sort();
    v
}

#[test]
fn generated_dashboards_conform_to_grafanas_published_schema() {
    let files = dashboards();
    assert_eq!(files.len(), 4, "{files:?}");
    let out = check(&files);
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 dashboard(s) conform"));
}

#[test]
fn a_dashboard_with_a_wrong_field_is_refused() {
    let mut d: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&dashboards()[0]).unwrap()).unwrap();
    d["panels"][1]["gridPos"]["h"] = serde_json::json!("tall");
    d["graphTooltip"] = serde_json::json!("shared");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.json");
    std::fs::write(&file, serde_json::to_string_pretty(&d).unwrap()).unwrap();
    let out = check(&[file]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("broken.ts") && err.contains("not assignable"), "{err}");
}
