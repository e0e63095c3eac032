//! The real `gpuscope` binary's simulator commands, as a user runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::process::{Command, Output};

fn gpuscope(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gpuscope")).args(args).output().expect("run gpuscope")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn list_names_every_scenario_with_its_findings() {
    let o = gpuscope(&["sim", "list"]);
    assert!(o.status.success());
    let text = stdout(&o);
    let builtin = gpuscope_sim::scenario::BUILTIN.len();
    assert!(builtin >= 39, "{builtin} built-in scenarios");
    assert_eq!(text.lines().count(), builtin + 1, "a header and every built-in scenario");
    assert!(text.lines().any(|l| l.starts_with("workstation-inference ") && l.contains("RTX6000-ADA")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("net-link-degraded ")), "{text}");
    assert!(text.lines().any(|l| l.starts_with("mig-inference ") && l.contains("H100-SXM5-80GB")), "{text}");
    let line = text.lines().find(|l| l.starts_with("gpu-lost ")).expect("gpu-lost");
    assert!(line.contains("H100-SXM5-80GB") && line.contains("gpu-lost, xid-error"), "{line}");
    assert!(text.lines().any(|l| l.starts_with("straggler ") && l.contains("    4 ")));
    assert!(text.lines().any(|l| l.starts_with("straggler-throttled ") && l.contains("    8 ")), "{text}");
    let quiet = text.lines().find(|l| l.starts_with("vllm-preallocated ")).expect("vllm-preallocated");
    assert!(quiet.trim_end().ends_with("(none)"), "{quiet}");
}

#[test]
fn show_json_gives_the_engine_values() {
    let o = gpuscope(&["sim", "show", "dataloader-stall", "--at", "200", "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["phase"], "data-loader stall");
    assert_eq!(v["gpus"].as_array().map(Vec::len), Some(4));
    let sm = v["gpus"][0]["state"]["sm_active"].as_f64().expect("sm_active");
    assert!((sm - 0.27).abs() <= 0.05 + 1e-9);
    let busy: Vec<f64> = v["host"]["core_busy"].as_array().expect("cores").iter().filter_map(|x| x.as_f64()).collect();
    assert_eq!(busy.len(), 64);
    assert_eq!(v["gpus"][0]["processes"][0]["pid"], 52001);
}

#[test]
fn env_prints_exports_that_point_at_the_built_library() {
    let root = tempfile::tempdir().expect("tmp");
    let root_s = root.path().to_str().expect("utf-8 path");
    let o = gpuscope(&["sim", "env", "straggler", "--node", "2", "--speed", "10", "--root", root_s]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = stdout(&o);
    assert!(text.contains("export GPUSCOPE_SIM_SCENARIO='straggler'"));
    assert!(text.contains("export GPUSCOPE_SIM_NODE=2"));
    assert!(text.contains("export GPUSCOPE_SIM_SPEED=10"));
    assert!(text.contains(&format!(
        "export GPUSCOPE_PROCFS_ROOT='{}/proc'",
        root.path().canonicalize().expect("root").display()
    )));
    let lib_line = text.lines().find(|l| l.starts_with("export GPUSCOPE_SIM_NVML_LIB=")).expect("lib export");
    let lib = lib_line.trim_start_matches("export GPUSCOPE_SIM_NVML_LIB=").trim_matches('\'');
    assert!(std::path::Path::new(lib).is_file(), "{lib} exists");
    let dir_line = text.lines().find(|l| l.starts_with("export LD_LIBRARY_PATH=")).expect("ld path");
    let dir = dir_line.trim_start_matches("export LD_LIBRARY_PATH='").split('\'').next().expect("dir");
    let soname = std::path::Path::new(dir).join("libnvidia-ml.so.1");
    assert_eq!(std::fs::canonicalize(soname).expect("symlink"), std::fs::canonicalize(lib).expect("lib"));
    // Node 4 of a 4-node job does not exist.
    let bad = gpuscope(&["sim", "env", "straggler", "--node", "4"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("node index 4"));
}

#[test]
fn run_writes_a_proc_tree() {
    let root = tempfile::tempdir().expect("tmp");
    let o = gpuscope(&[
        "sim",
        "run",
        "--scenario",
        "healthy-inference",
        "--root",
        root.path().to_str().expect("utf-8"),
        "--once-at",
        "30",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let status = std::fs::read_to_string(root.path().join("proc/7310/status")).expect("status");
    assert!(status.starts_with("Name:\tvllm\n"));
    let cgroup = std::fs::read_to_string(root.path().join("proc/7311/cgroup")).expect("cgroup");
    assert!(
        cgroup.starts_with("0::/kubepods.slice/kubepods-pod1e4d0b2f_6c8a_4d3e_9f7b_2a3c4d5e6f70.slice/crio-"),
        "{cgroup}"
    );
    assert_eq!(std::fs::read_to_string(root.path().join("sys/class/net/eth0/speed")).expect("speed"), "25000\n");
}

#[test]
fn a_malformed_scenario_file_is_a_clear_error_with_exit_code_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("typo.toml");
    std::fs::write(
        &path,
        "[[gpus]]\nmodel = \"H100-SXM5-80GB\"\n[[phases]]\nduration_s = 60\n[phases.gpu]\nutl = 0.9\n",
    )
    .expect("write");
    let o = gpuscope(&["sim", "show", path.to_str().expect("utf-8")]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("typo.toml") && err.contains("utl"), "{err}");
    let missing = gpuscope(&["sim", "show", "no-such-scenario"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("healthy-bf16-training"), "lists the built-in names");
}

#[test]
fn rules_list_names_every_rule_and_the_docs_are_current() {
    let o = gpuscope(&["rules", "list"]);
    assert!(o.status.success());
    let text = stdout(&o);
    assert_eq!(text.lines().count(), 33, "a header and the 32 rules of RULES.md");
    assert!(text.lines().any(|l| l.starts_with("xid-error ") && l.contains("gpu") && l.contains("now")));
    let md = stdout(&gpuscope(&["rules", "list", "--markdown"]));
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/rules.md")).expect("docs/rules.md");
    assert_eq!(md, doc, "docs/rules.md is stale: regenerate with `gpuscope rules list --markdown > docs/rules.md`");
}
