//! Configuration files run against the real binary (`--check-config`): every file under
//! `tests/configs/valid/<command>/` is accepted, every file under `tests/configs/invalid/<command>/`
//! exits with code 2 and a message naming the file and the text its `# expect:` line gives.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixtures(kind: &str, command: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/configs").join(kind).join(command);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

/// `gpuscope <command> --check-config -c <file>`, with no GPUSCOPE_* variable of the caller's.
fn check(command: &str, file: &Path) -> Output {
    let mut c = Command::new(common::bin());
    c.args([command, "--check-config", "-c", file.to_str().unwrap()]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("GPUSCOPE_") {
            c.env_remove(k);
        }
    }
    c.output().unwrap()
}

fn valid(command: &str, extra: &[PathBuf]) {
    for file in fixtures("valid", command).iter().chain(extra) {
        let out = check(command, file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{} refused: {err}", file.display());
        assert!(!out.stdout.is_empty(), "{} printed no configuration", file.display());
    }
}

fn invalid(command: &str) {
    for file in fixtures("invalid", command) {
        let text = std::fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .find_map(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} has no `# expect:` line", file.display()));
        let out = check(command, &file);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", file.display());
        let name = file.file_name().unwrap().to_str().unwrap();
        assert!(err.contains(name) && err.contains(expect), "{}: expected {expect:?} in {err}", file.display());
    }
}

fn shipped(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy").join(name)
}

#[test]
fn valid_agent_configurations_are_accepted() {
    valid("agent", &[shipped("agent.toml")]);
}

#[test]
fn invalid_agent_configurations_name_the_key_and_the_file() {
    invalid("agent");
}

#[test]
fn valid_collector_configurations_are_accepted() {
    valid("collector", &[shipped("collector.toml")]);
}

#[test]
fn invalid_collector_configurations_name_the_key_and_the_file() {
    invalid("collector");
}

#[test]
fn the_effective_configuration_layers_file_environment_and_flags() {
    let file = fixtures("valid", "agent").into_iter().find(|p| p.ends_with("minimal.toml")).unwrap();
    let out = Command::new(common::bin())
        .args(["agent", "--check-config", "-c", file.to_str().unwrap(), "--interval-ms", "2000", "--label", "b=flag"])
        .env("GPUSCOPE_INTERVAL_MS", "1500")
        .env("GPUSCOPE_SLOW_INTERVAL_MS", "45000")
        .env("GPUSCOPE_LABELS", "a=env,b=env")
        .env_remove("GPUSCOPE_LISTEN")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // The file's listen, the environment's slow interval, the flag's interval; flags replace
    // the variable's labels.
    for line in ["listen = \"127.0.0.1:9466\"", "interval_ms = 2000", "slow_interval_ms = 45000", "b = \"flag\""] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    assert!(!text.contains("a = \"env\""), "{text}");
}

#[test]
fn a_bad_value_in_the_environment_names_the_variable() {
    let out = Command::new(common::bin())
        .args(["collector", "--check-config"])
        .env("GPUSCOPE_COLLECTOR_QUEUE_BATCHES", "many")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("GPUSCOPE_COLLECTOR_QUEUE_BATCHES=\"many\""), "{err}");
}
